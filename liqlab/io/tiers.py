"""Exchange tier tables: the maintenance-margin brackets a venue publishes, as immutable data.

A :class:`TierTable` holds one venue's brackets for one contract (floors and caps of the position notional:
USD for linear contracts, coin for inverse ones; maintenance-margin rate; maintenance amount in the same unit
as the notional; max leverage). Tables come from the JSON files bundled in ``liqlab/data/tiers``
(:func:`default_tiers`) or from an exchange's ccxt ``fetch_leverage_tiers`` payload
(:func:`normalize_ccxt_tiers`). The liquidation formulas that use them live in :mod:`liqlab.engine.margin`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from liqlab._util import canonical_venue
from liqlab.errors import DataError, ParameterError

__all__ = ["TierTable", "maintenance_amounts", "default_tiers", "available_tiers", "normalize_ccxt_tiers"]

TIERS_DIR = Path(__file__).resolve().parents[1] / "data" / "tiers"
_FRAME_COLUMNS = (
    "tier", "min_notional", "max_notional", "maintenance_margin_rate", "maintenance_amount", "max_leverage",
)


def maintenance_amounts(min_notional: Sequence[float] | np.ndarray, mmr: Sequence[float] | np.ndarray) -> np.ndarray:
    """Maintenance amount per tier by the recursion cum_n = floor_n·(MMR_n − MMR_{n−1}) + cum_{n−1}, cum_1 = 0.

    Same recursion as Bybit's MM deduction. Rounded to 1e-8 so that float noise from the MMR differences
    does not show (exchange values are exact decimals).

    Parameters
    ----------
    min_notional : array-like
        Tier floors, shape (n_tiers,) (USD for linear contracts).
    mmr : array-like
        Maintenance margin rates (fractions), shape (n_tiers,).

    Returns
    -------
    np.ndarray
        float64, shape (n_tiers,), in the units of ``min_notional``.
    """
    floor = np.asarray(min_notional, dtype=np.float64)
    rate = np.asarray(mmr, dtype=np.float64)
    if floor.shape != rate.shape or floor.ndim != 1:
        raise ParameterError("maintenance_amounts: min_notional and mmr must be 1-D arrays of the same length")
    if floor.size == 0:
        return np.zeros(0)
    steps = np.empty_like(floor)
    steps[0] = 0.0
    steps[1:] = floor[1:] * np.diff(rate)
    return np.round(np.cumsum(steps), 8)


def _readonly(x: Any) -> np.ndarray:
    a = np.array(x, dtype=np.float64)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class TierTable:
    """One venue's maintenance-margin brackets for one symbol.

    Arrays have one entry per tier (sorted by ``min_notional``); notionals in USD for linear
    contracts, in coin for inverse (``kind='inverse'``). ``mmr`` is a fraction, ``maintenance_amount``
    (Binance ``cum`` / Bybit MM deduction) in the notional's unit, ``max_leverage`` a multiple.
    A position of notional n is in tier i when ``min_notional[i] <= n < max_notional[i]``.
    """

    venue: str
    symbol: str
    as_of: str
    source: str
    min_notional: np.ndarray
    max_notional: np.ndarray
    mmr: np.ndarray
    maintenance_amount: np.ndarray
    max_leverage: np.ndarray
    kind: str = "linear"
    notes: str = ""

    def __post_init__(self) -> None:
        for f in ("min_notional", "max_notional", "mmr", "maintenance_amount", "max_leverage"):
            object.__setattr__(self, f, _readonly(getattr(self, f)))
        n = len(self.min_notional)
        label = f"tier table {self.venue} {self.symbol} ({self.as_of})"
        if n == 0:
            raise DataError(f"{label}: no tiers")
        for f in ("max_notional", "mmr", "maintenance_amount", "max_leverage"):
            if len(getattr(self, f)) != n:
                raise DataError(f"{label}: column {f} has {len(getattr(self, f))} rows, expected {n}")
        if self.kind not in ("linear", "inverse"):
            raise DataError(f"{label}: kind must be 'linear' or 'inverse', got {self.kind!r}")

        def fail(mask: np.ndarray, problem: str) -> None:
            if mask.any():
                i = int(np.flatnonzero(mask)[0])
                raise DataError(f"{label}: tier {i + 1}: {problem}")

        lo, hi = self.min_notional, self.max_notional
        fail(~np.isfinite(lo) | (lo < 0), "min_notional must be finite and >= 0")
        fail(~(hi > lo), "max_notional must exceed min_notional")
        fail(~((self.mmr > 0) & (self.mmr < 1)), "maintenance margin rate must be in (0, 1)")
        fail(~np.isfinite(self.maintenance_amount), "maintenance amount is not finite")
        fail(~(self.max_leverage >= 1), "max_leverage must be >= 1")
        fail(np.r_[False, np.diff(lo) <= 0], "tiers must be sorted by min_notional (strictly increasing)")

    def __len__(self) -> int:
        return len(self.min_notional)

    def __repr__(self) -> str:
        return (f"TierTable({self.venue!r}, {self.symbol!r}, as_of={self.as_of!r}, {len(self)} tiers, "
                f"mmr {self.mmr[0]:.4%}..{self.mmr[-1]:.4%}, kind={self.kind!r})")

    @property
    def cap(self) -> float:
        """Largest notional the table allows (last tier's max_notional)."""
        return float(self.max_notional[-1])

    def bracket(self, notional: float | np.ndarray) -> np.ndarray:
        """Tier index (0-based) of each notional (vectorised).

        Notionals beyond the last cap map to the last tier, negative ones to tier 0; NaN maps to tier 0
        (callers mask NaN themselves).

        Parameters
        ----------
        notional : float or np.ndarray
            Position notional (USD for linear), any shape.

        Returns
        -------
        np.ndarray
            int, the shape of ``notional``.
        """
        n = np.asarray(notional, dtype=np.float64)
        idx = np.searchsorted(self.min_notional, n, side="right") - 1
        return np.clip(idx, 0, len(self) - 1)

    def cum_from_recursion(self) -> np.ndarray:
        """Maintenance amounts recomputed from floors and MMRs (see :func:`maintenance_amounts`)."""
        return maintenance_amounts(self.min_notional, self.mmr)

    def with_cum_recomputed(self) -> "TierTable":
        """A copy whose maintenance amounts come from the recursion."""
        return dataclasses.replace(self, maintenance_amount=self.cum_from_recursion())

    def to_frame(self):
        """The dataset's ``leverage_tiers`` table (tier 1-based, USD notional for linear)."""
        import pandas as pd

        return pd.DataFrame({
            "tier": np.arange(1, len(self) + 1, dtype=np.float64),
            "min_notional": np.array(self.min_notional),
            "max_notional": np.array(self.max_notional),
            "maintenance_margin_rate": np.array(self.mmr),
            "maintenance_amount": np.array(self.maintenance_amount),
            "max_leverage": np.array(self.max_leverage),
        })

    @classmethod
    def from_frame(cls, df, *, venue: str, symbol: str, as_of: str = "", source: str = "dataset leverage_tiers",
                   kind: str = "linear", notes: str = "") -> "TierTable":
        """Build from a ``leverage_tiers`` frame; a missing/NaN ``maintenance_amount`` column is recomputed by the
        recursion (all rows, so the column stays consistent).

        Parameters
        ----------
        df : pd.DataFrame
            n_tiers rows × the ``leverage_tiers`` columns (USD notional).
        venue, symbol : str
        as_of, source, kind, notes : str
            Labels carried by the table.

        Returns
        -------
        TierTable
        """
        required = [c for c in _FRAME_COLUMNS if c not in ("tier", "maintenance_amount")]
        missing = [c for c in required if c not in df.columns]
        if missing:
            raise DataError(f"leverage_tiers ({venue} {symbol}): missing column(s) {missing}")
        df = df.sort_values("min_notional", kind="stable")
        lo = df["min_notional"].to_numpy(dtype=np.float64)
        mmr = df["maintenance_margin_rate"].to_numpy(dtype=np.float64)
        cum = (df["maintenance_amount"].to_numpy(dtype=np.float64) if "maintenance_amount" in df.columns
               else np.full(len(df), np.nan))
        if np.isnan(cum).any():
            cum = maintenance_amounts(lo, mmr)
        return cls(venue=venue, symbol=symbol, as_of=as_of, source=source, min_notional=lo,
                   max_notional=df["max_notional"].to_numpy(dtype=np.float64), mmr=mmr, maintenance_amount=cum,
                   max_leverage=df["max_leverage"].to_numpy(dtype=np.float64), kind=kind, notes=notes)

    @classmethod
    def flat(cls, mmr: float, *, max_leverage: float = math.inf, kind: str = "linear") -> "TierTable":
        """A single tier with the given MMR and no maintenance amount (any notional).

        Parameters
        ----------
        mmr : float
            Maintenance margin rate in (0, 1).
        max_leverage : float
        kind : {'linear', 'inverse'}

        Returns
        -------
        TierTable
        """
        if not (0 < float(mmr) < 1):
            raise ParameterError(f"mmr must be in (0, 1), got {mmr!r}")
        return cls(venue="flat", symbol="*", as_of="", source=f"single tier, MMR {float(mmr):g}",
                   min_notional=[0.0], max_notional=[math.inf], mmr=[float(mmr)], maintenance_amount=[0.0],
                   max_leverage=[max_leverage if max_leverage != math.inf else 1e12], kind=kind)


# --------------------------------------------------------------------------------------------------
# bundled defaults


def _canonical_symbol(symbol: str) -> str:
    """'BTC/USDT:USDT', 'BTCUSDT', 'BTC-USDT-SWAP', 'btc' → 'BTC/USDT:USDT'; 'BTC/USD:BTC' kept."""
    s = str(symbol).strip().upper()
    if "/" in s:
        base, rest = s.split("/", 1)
        quote, _, settle = rest.partition(":")
        return f"{base}/{quote}:{settle or quote}"
    if s.endswith("-USDT-SWAP"):
        return f"{s[:-10]}/USDT:USDT"
    if s.endswith("-USD-SWAP"):
        return f"{s[:-9]}/USD:{s[:-9]}"
    if s.endswith("USDT"):
        return f"{s[:-4]}/USDT:USDT"
    return f"{s}/USDT:USDT"


def _table_from_json(path: Path) -> TierTable:
    """Load one bundled JSON table; OKX tables in contracts are converted at their reference price."""
    try:
        d = json.loads(path.read_text())
        rows = d["tiers"]
        unit = d.get("unit", "usd")
        mult = 1.0
        if unit == "contracts":
            mult = float(d["contract_size"]) * float(d["reference_price"])
        elif unit not in ("usd", "coin"):
            raise DataError(f"{path}: unknown unit {unit!r}")
        lo = np.array([float(r["min"]) for r in rows]) * mult
        hi = np.array([float(r["max"]) for r in rows]) * mult
        mmr = np.array([float(r["mmr"]) for r in rows])
        lev = np.array([float(r["max_leverage"]) for r in rows])
        cum = np.array([np.nan if r.get("cum") is None else float(r["cum"]) * mult for r in rows])
    except (KeyError, ValueError, TypeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: malformed tier file ({e.__class__.__name__}: {e})") from None
    if np.isnan(cum).any():
        cum = maintenance_amounts(lo, mmr)
    notes = d.get("notes", "")
    if isinstance(notes, list):
        notes = " ".join(notes)
    return TierTable(venue=d["venue"], symbol=d["symbol"], as_of=str(d["as_of"]), source=d["source"],
                     min_notional=lo, max_notional=hi, mmr=mmr, maintenance_amount=cum, max_leverage=lev,
                     kind=d.get("kind", "linear"), notes=notes)


@functools.lru_cache(maxsize=1)
def _bundled() -> dict[tuple[str, str], tuple[TierTable, ...]]:
    out: dict[tuple[str, str], list[TierTable]] = {}
    for p in sorted(TIERS_DIR.glob("*.json")):
        t = _table_from_json(p)
        out.setdefault((t.venue, _canonical_symbol(t.symbol)), []).append(t)
    return {k: tuple(sorted(v, key=lambda t: t.as_of)) for k, v in out.items()}


def available_tiers() -> list[tuple[str, str, str]]:
    """(venue, symbol, as_of) of every bundled table.

    Returns
    -------
    list of (str, str, str)
    """
    return [(t.venue, t.symbol, t.as_of) for k in sorted(_bundled()) for t in _bundled()[k]]


def default_tiers(venue: str, symbol: str = "BTC/USDT:USDT", *, as_of: str | None = None,
                  fallback: bool = False) -> TierTable:
    """The bundled tier table of ``venue`` ('binanceusdm'|'bybit'|'okx') for ``symbol``.

    Parameters
    ----------
    venue : str
        Venue name or alias ('binance', 'okex', ...).
    symbol : str
        Any common spelling ('BTC/USDT:USDT', 'BTCUSDT', 'BTC-USDT-SWAP').
    as_of : str, optional
        ISO date: the newest table dated on or before it (the oldest one if all are later); None → the newest.
    fallback : bool
        For an unknown symbol return the labelled generic table (venue 'generic') instead of raising.

    Returns
    -------
    TierTable

    Raises
    ------
    ParameterError
        Unknown venue, or unknown symbol without ``fallback``.
    """
    v = canonical_venue(venue)
    known_venues = sorted({k[0] for k in _bundled()} - {"generic"})
    if v is None or v not in known_venues:
        raise ParameterError(f"default_tiers: unknown venue {venue!r}; known: {', '.join(known_venues)}")
    sym = _canonical_symbol(symbol)
    tables = _bundled().get((v, sym))
    if tables is None:
        if fallback:
            tables = _bundled()[("generic", "*/USDT:USDT")]
        else:
            known = sorted(s for (vv, s) in _bundled() if vv == v)
            raise ParameterError(f"default_tiers: no bundled tiers for symbol {symbol!r} on {v}; "
                                 f"known: {', '.join(known)} (or pass fallback=True for the generic table)")
    if as_of is None:
        return tables[-1]
    older = [t for t in tables if t.as_of <= str(as_of)]
    return older[-1] if older else tables[0]


# --------------------------------------------------------------------------------------------------
# ccxt normaliser


def _num(x: Any) -> float:
    if x is None or (isinstance(x, str) and x.strip() == ""):
        return math.nan
    return float(x)


def normalize_ccxt_tiers(tiers: Sequence[Mapping[str, Any]], *, venue: str, contract_size: float = 1.0,
                         price: float | None = None, symbol: str | None = None, as_of: str | None = None,
                         kind: str = "linear") -> TierTable:
    """Turn ccxt ``fetch_market_leverage_tiers`` output (one symbol's list) into a :class:`TierTable`.

    Binance: maintenance amount = ``info['cum']``; Bybit: ``info['mmDeduction']``; OKX: min/maxNotional are
    contracts (minSz/maxSz) → × ``contract_size`` × ``price`` (USD; ``price`` required). Missing amounts
    are recomputed by the recursion. Bad rows raise DataError naming the row and field.

    Parameters
    ----------
    tiers : sequence of mapping
        ccxt tier structures, one symbol.
    venue : str
    contract_size : float
        Base units per contract (OKX).
    price : float, optional
        USD price converting OKX contract notionals.
    symbol, as_of : str, optional
        Labels.
    kind : {'linear', 'inverse'}

    Returns
    -------
    TierTable
        USD notional floors and caps (linear).
    """
    v = canonical_venue(venue)
    if v is None:
        raise ParameterError(f"normalize_ccxt_tiers: unknown venue {venue!r}; known: binanceusdm, bybit, okx")
    if isinstance(tiers, Mapping):
        raise ParameterError("normalize_ccxt_tiers: pass one symbol's list of tiers (fetch_market_leverage_tiers), "
                             "not the {symbol: tiers} dict of fetch_leverage_tiers")
    if len(tiers) == 0:
        raise DataError(f"ccxt tiers ({v}): empty list")
    mult = 1.0
    if v == "okx":
        if price is None or not (float(price) > 0) or not (float(contract_size) > 0):
            raise ParameterError("normalize_ccxt_tiers: okx tiers are in contracts; pass contract_size > 0 and "
                                 "price > 0 (USD per coin) to convert them to USD notional")
        mult = float(contract_size) * float(price)
    amount_key = {"binanceusdm": "cum", "binancecoinm": "cum", "bybit": "mmDeduction"}.get(v)
    rows = []
    for i, t in enumerate(tiers):
        try:
            lo = _num(t.get("minNotional"))
            hi = _num(t.get("maxNotional"))
            mmr = _num(t.get("maintenanceMarginRate"))
            lev = _num(t.get("maxLeverage"))
            info = t.get("info") or {}
            cum = _num(info.get(amount_key)) if amount_key else math.nan
        except (TypeError, ValueError, AttributeError) as e:
            raise DataError(f"ccxt tiers ({v}) row {i}: not a number ({e})") from None
        for name, val in (("minNotional", lo), ("maxNotional", hi), ("maintenanceMarginRate", mmr),
                          ("maxLeverage", lev)):
            if not math.isfinite(val):
                raise DataError(f"ccxt tiers ({v}) row {i}: {name} missing or not finite ({t.get(name)!r})")
        rows.append((lo * mult, hi * mult, mmr, cum * mult, lev))
    rows.sort(key=lambda r: r[0])
    a = np.array(rows, dtype=np.float64)
    cum = a[:, 3]
    if np.isnan(cum).any():
        cum = maintenance_amounts(a[:, 0], a[:, 2])
    sym = symbol or next((t.get("symbol") for t in tiers if t.get("symbol")), None) or "?"
    if as_of is None:
        as_of = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    src = f"ccxt fetch_market_leverage_tiers ({v})"
    notes = f"contracts × {contract_size:g} × price {float(price):g} USD" if v == "okx" else ""
    return TierTable(venue=v, symbol=str(sym), as_of=str(as_of), source=src, min_notional=a[:, 0],
                     max_notional=a[:, 1], mmr=a[:, 2], maintenance_amount=cum, max_leverage=a[:, 4],
                     kind="inverse" if v == "binancecoinm" else kind, notes=notes)


