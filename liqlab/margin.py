"""Liquidation-price math and exchange tier tables (isolated margin, one position).

Units: prices in quote currency (USD/USDT); linear tier notionals in USD; inverse tier notionals in
coin (base units). All functions are vectorised numpy (broadcasting over entry, leverage, side,
notional); there is no Python loop over rows. Formulas follow docs/MARGIN.md:

- ``binance`` (isolated, no added margin), s = +1 long / -1 short, N = entry notional (USD):
  ``LP = EP·[(1 − s/L)(1 + s·fee) + F − s·cum/N] / (1 − s·MMR)``
- ``bybit`` and ``okx`` (the Bybit form with OKX tiers; an approximation):
  ``LP = EP·[1 − s/L + s·MMR + s·fee·(1 − s/L) + F − s·ded/N]``
- ``flat``: ``LP = EP·(1 − s/L)`` (no maintenance margin; fee and funding still apply)
- inverse: ``LP = EP·k / D`` with ``D = 1 + s/L − F − s·fee·(1 + s/L) + s·cum/PV`` and
  ``k = 1 + s·MMR`` (binance) or ``D − s·MMR`` in the denominator (bybit/okx); ``D ≤ 0`` → +inf.

``fee`` = ``fee_rate`` (estimated fee to close at the bankruptcy price, reserved from the margin);
``F`` = ``funding`` (cumulative funding paid per unit of entry notional since entry, + = longs paid).
For a fixed USD notional the tier does not depend on the entry price, so LP = a·EP + b exactly
(:func:`lp_affine`; b = 0 for linear contracts). 'binance' re-selects the tier at the liquidation
notional (Binance FAQ); 'bybit'/'okx' keep the entry tier. Leverage above the entry tier's max leverage
→ NaN (``over_max='nan'``) or clipped (``'clip'``), never silently accepted.
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

from .errors import DataError, ParameterError

__all__ = [
    "TierTable",
    "MODELS",
    "maintenance_amounts",
    "default_tiers",
    "available_tiers",
    "normalize_ccxt_tiers",
    "model_for_venue",
    "parse_side",
    "liquidation_price",
    "lp_affine",
    "bankruptcy_price",
    "OVER_MAX",
]

MODELS = ("binance", "bybit", "okx", "flat")
TIERS_DIR = Path(__file__).resolve().parent / "data" / "tiers"
MAX_TIER_PASSES = 6  # tier re-selection passes (Binance: recompute when LP lands in another bracket)
_VENUE_ALIASES = {
    "binance": "binanceusdm",
    "binanceusdm": "binanceusdm",
    "binancecoinm": "binancecoinm",
    "bybit": "bybit",
    "okx": "okx",
    "okex": "okx",
}
_VENUE_MODEL = {"binanceusdm": "binance", "binancecoinm": "binance", "bybit": "bybit", "okx": "okx"}
_FRAME_COLUMNS = (
    "tier", "min_notional", "max_notional", "maintenance_margin_rate", "maintenance_amount", "max_leverage",
)


# --------------------------------------------------------------------------------------------------
# tier tables


def maintenance_amounts(min_notional: Sequence[float] | np.ndarray, mmr: Sequence[float] | np.ndarray) -> np.ndarray:
    """Maintenance amount per tier by the recursion cum_n = floor_n·(MMR_n − MMR_{n−1}) + cum_{n−1}, cum_1 = 0.

    Same recursion as Bybit's MM deduction. Units: those of ``min_notional`` (USD for linear). Rounded to
    1e-8 so that float noise from the MMR differences does not show (exchange values are exact decimals).
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
        """Tier index (0-based) of each notional (vectorised). Notionals beyond the last cap map to the
        last tier, negative ones to tier 0; NaN maps to tier 0 (callers mask NaN themselves)."""
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
        """Build from a ``leverage_tiers`` frame; a missing/NaN ``maintenance_amount`` column is recomputed
        by the recursion (all rows, so the column stays consistent)."""
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
        """A single tier with the given MMR and no maintenance amount (any notional)."""
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
    """(venue, symbol, as_of) of every bundled table."""
    return [(t.venue, t.symbol, t.as_of) for k in sorted(_bundled()) for t in _bundled()[k]]


def default_tiers(venue: str, symbol: str = "BTC/USDT:USDT", *, as_of: str | None = None,
                  fallback: bool = False) -> TierTable:
    """The bundled tier table of ``venue`` ('binanceusdm'|'bybit'|'okx') for ``symbol``.

    ``as_of`` (ISO date): the newest table dated on or before it (the oldest one if all are later);
    None → the newest. Unknown venue or symbol → ParameterError, unless ``fallback=True``, which returns
    the labelled generic table (venue 'generic') for an unknown symbol.
    """
    v = _VENUE_ALIASES.get(str(venue).strip().lower())
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
    """
    v = _VENUE_ALIASES.get(str(venue).strip().lower())
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


# --------------------------------------------------------------------------------------------------
# liquidation prices


def model_for_venue(venue: str) -> str:
    """Margin model of a venue: binanceusdm/binancecoinm → 'binance', bybit → 'bybit', okx → 'okx'."""
    v = _VENUE_ALIASES.get(str(venue).strip().lower())
    if v is None:
        raise ParameterError(f"unknown venue {venue!r} for a margin model; known: binanceusdm, bybit, okx")
    return _VENUE_MODEL[v]


def parse_side(side: Any) -> np.ndarray:
    """'long'/'short' (or 'buy'/'sell'), +1/−1, or an array of them → float array of ±1."""
    a = np.asarray(side)
    if a.dtype.kind in "USOT":
        low = np.char.lower(np.char.strip(a.astype(str)))
        out = np.where(np.isin(low, ("long", "buy", "1", "1.0", "+1")), 1.0,
                       np.where(np.isin(low, ("short", "sell", "-1", "-1.0")), -1.0, np.nan))
        if np.isnan(out).any():
            bad = a[np.isnan(out)].ravel()[0]
            raise ParameterError(f"side must be 'long'/'short' or +1/-1, got {bad!r}")
        return out
    s = a.astype(np.float64)
    if not np.isin(s, (1.0, -1.0)).all():
        bad = s[~np.isin(s, (1.0, -1.0))].ravel()[0]
        raise ParameterError(f"side must be 'long'/'short' or +1/-1, got {bad!r}")
    return s


def _resolve(model: str, tiers: TierTable | float | None, inverse: bool) -> TierTable | None:
    if model not in MODELS:
        raise ParameterError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    if model == "flat":
        return None
    if tiers is None:
        if inverse:
            raise ParameterError("inverse=True needs explicit tiers (coin notionals) or a float MMR")
        return default_tiers({"binance": "binanceusdm", "bybit": "bybit", "okx": "okx"}[model])
    if isinstance(tiers, TierTable):
        if (tiers.kind == "inverse") != inverse:
            raise ParameterError(f"tiers of {tiers.venue} {tiers.symbol} are {tiers.kind} but inverse={inverse}")
        return tiers
    try:
        return TierTable.flat(float(tiers), kind="inverse" if inverse else "linear")
    except (TypeError, ValueError):
        raise ParameterError(f"tiers must be a TierTable, a float MMR or None, got {type(tiers).__name__}") from None


def _check_leverage(lev: np.ndarray) -> None:
    if not np.all(np.isfinite(lev)) or np.any(lev < 1):
        bad = lev[~(np.isfinite(lev) & (lev >= 1))].ravel()[0]
        raise ParameterError(f"leverage must be finite and >= 1, got {bad!r}")


def _check_rates(fee_rate: np.ndarray, funding: np.ndarray) -> None:
    if not np.all(np.isfinite(fee_rate)) or np.any((fee_rate < 0) | (fee_rate >= 0.1)):
        raise ParameterError("fee_rate must be in [0, 0.1) (fraction of notional, e.g. 0.00055)")
    if not np.all(np.isfinite(funding)) or np.any(np.abs(funding) >= 1):
        raise ParameterError("funding must be a finite fraction with |funding| < 1 (cumulative, per unit notional)")


def _linear_coeff(model: str, s, lev, mmr, cum_over_n, fee, funding) -> np.ndarray:
    """a in LP = a·EP for a linear contract with the given tier parameters (all broadcast)."""
    if model == "binance":
        return ((1.0 - s / lev) * (1.0 + s * fee) + funding - s * cum_over_n) / (1.0 - s * mmr)
    # bybit / okx / flat (flat passes mmr = cum = 0)
    return 1.0 - s / lev + s * mmr + s * fee * (1.0 - s / lev) + funding - s * cum_over_n


def _inverse_lp(model: str, ep, s, lev, mmr, cum_over_pv, fee, funding) -> np.ndarray:
    d = 1.0 + s / lev - funding - s * fee * (1.0 + s / lev) + s * cum_over_pv
    if model == "binance":
        num, den = 1.0 + s * mmr, d
    else:
        num, den = 1.0, d - s * mmr
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = ep * num / den
    return np.where(den > 0, lp, np.inf)


OVER_MAX = ("nan", "clip")


def _select_tiers(table: TierTable, entry: np.ndarray, value_at_lp) -> np.ndarray:
    """Final bracket after re-selection at the liquidation notional, starting from ``entry``.

    ``value_at_lp(idx) -> notional at the LP computed with bracket idx``. Iterates at most
    MAX_TIER_PASSES times (vectorised over rows); a row that still oscillates keeps the last bracket.
    """
    idx = entry.copy()
    for _ in range(MAX_TIER_PASSES):
        v = value_at_lp(idx)
        new = np.where(np.isfinite(v), table.bracket(v), idx)
        if np.array_equal(new, idx):
            break
        idx = new
    return idx


def _apply_max(table: TierTable, lev: np.ndarray, entry: np.ndarray, over_max: str) -> tuple[np.ndarray, np.ndarray]:
    """(leverage used, rows to blank) under the over-max rule: 'nan' blanks rows whose leverage exceeds the
    entry tier's max leverage; 'clip' lowers it to that max (a trader asking for more gets the max)."""
    if over_max not in OVER_MAX:
        raise ParameterError(f"over_max must be one of {', '.join(OVER_MAX)}, got {over_max!r}")
    cap = table.max_leverage[entry]
    if over_max == "clip":
        return np.minimum(lev, cap), np.zeros(np.shape(entry), dtype=bool)
    return lev, lev > cap * (1 + 1e-9)


def _common_args(model, tiers, leverage, side, fee_rate, funding, over_max, *, inverse: bool):
    """Checked (table, leverage, side, fee, funding) arrays shared by the linear and inverse paths."""
    if over_max not in OVER_MAX:
        raise ParameterError(f"over_max must be one of {', '.join(OVER_MAX)}, got {over_max!r}")
    table = _resolve(model, tiers, inverse=inverse)
    lev = np.asarray(leverage, dtype=np.float64)
    _check_leverage(lev)
    s = parse_side(side)
    fee = np.asarray(fee_rate, dtype=np.float64)
    fund = np.asarray(funding, dtype=np.float64)
    _check_rates(fee, fund)
    return table, lev, s, fee, fund


def lp_affine(leverage: float | np.ndarray, side: Any, *, model: str = "binance",
              tiers: TierTable | float | None = None, notional: float | np.ndarray | None = None,
              tier: int | np.ndarray | None = None, fee_rate: float | np.ndarray = 0.0,
              funding: float | np.ndarray = 0.0, over_max: str = "nan") -> tuple[np.ndarray, np.ndarray]:
    """(a, b) with LP = a·entry + b (USD) for linear contracts, broadcast over leverage/side/notional.

    The tier is ``tier`` (0-based index) if given, else the bracket of ``notional`` (USD) — for 'binance'
    re-selected at the liquidation notional N·a (entry-independent, so the result is exact for any entry) —
    else tier 0 with no maintenance-amount term. Leverage above the entry tier's max leverage → NaN
    (``over_max='nan'``) or clipped to it (``'clip'``); notional at or beyond the table's cap → NaN.
    b is 0 for a fixed USD notional (kept so callers need not special-case).
    """
    table, lev, s, fee, fund = _common_args(model, tiers, leverage, side, fee_rate, funding, over_max, inverse=False)
    if table is None:  # flat
        a = _linear_coeff("flat", s, lev, 0.0, 0.0, fee, fund)
        return a, np.zeros_like(a)
    n = None if notional is None else np.asarray(notional, dtype=np.float64)
    if n is not None and (np.any(~(n > 0))):
        raise ParameterError("notional must be > 0 (USD)")
    shape = np.broadcast_shapes(lev.shape, s.shape, fee.shape, fund.shape, () if n is None else n.shape,
                                () if tier is None else np.shape(tier))
    if tier is not None:
        t = np.asarray(tier)
        if t.dtype.kind not in "iu" or np.any((t < 0) | (t >= len(table))):
            raise ParameterError(f"tier must be an integer index in [0, {len(table) - 1}]")
        entry = np.broadcast_to(t, shape)
    elif n is None:
        entry = np.zeros(shape, dtype=np.intp)
    else:
        entry = np.broadcast_to(table.bracket(n), shape)
    lev_used, bad = _apply_max(table, lev, entry, over_max)

    def coeff(idx: np.ndarray) -> np.ndarray:
        cum_n = 0.0 if n is None else table.maintenance_amount[idx] / n
        return _linear_coeff(model, s, lev_used, table.mmr[idx], cum_n, fee, fund)

    idx = entry
    if tier is None and n is not None and model == "binance":
        idx = _select_tiers(table, entry, lambda i: n * coeff(i))
    # bybit/okx keep the entry tier: their documented MM is on the entry position value
    a = np.broadcast_to(coeff(idx), shape).astype(np.float64)
    if n is not None:
        bad = bad | (n >= table.cap)
    a = np.where(bad, np.nan, a)
    return a, np.where(bad, np.nan, 0.0)


def liquidation_price(entry: float | np.ndarray, leverage: float | np.ndarray, side: Any, *,
                      model: str = "binance", tiers: TierTable | float | None = None,
                      notional: float | np.ndarray | None = None, fee_rate: float | np.ndarray = 0.0,
                      funding: float | np.ndarray = 0.0, inverse: bool = False,
                      over_max: str = "nan") -> float | np.ndarray:
    """Isolated-margin liquidation price (USD per coin), broadcast over all array arguments.

    entry: entry price (USD, > 0). leverage: >= 1. side: 'long'/'short' or ±1 (arrays allowed).
    model: 'binance' | 'bybit' | 'okx' (Bybit form, OKX tiers; approximation) | 'flat' (EP(1 ∓ 1/L)).
    tiers: TierTable, a float (single MMR, no maintenance amount) or None (the model venue's bundled BTC
    table). notional: position size used to pick the tier — USD at entry for linear, USD face value Q for
    inverse (tier value Q/EP in coin); None → tier 1 without maintenance amount. 'binance': if the notional
    at the LP falls in another bracket the LP is recomputed with that bracket (repeated until stable);
    'bybit'/'okx' keep the entry tier (their documented MM is on the entry position value).
    fee_rate: estimated fee to close (fraction; reserved from margin, LP moves toward entry).
    funding: cumulative funding paid per unit of entry notional since entry (+ = longs paid): both sides
    move up by ≈ EP·funding/(1 ∓ MMR). inverse: coin-margined formulas (docs/MARGIN.md).
    Leverage above the entry tier's max leverage → NaN (``over_max='nan'``, default) or clipped to that
    max (``over_max='clip'``); notional at or beyond the table's cap → NaN. A long LP <= 0 or a short LP = +inf means the position cannot be liquidated.
    Returns a float for scalar inputs, else an array.
    """
    ep = np.asarray(entry, dtype=np.float64)
    if np.any(~(ep > 0)) or not np.all(np.isfinite(ep)):
        raise ParameterError("entry price must be finite and > 0")
    scalar = all(np.ndim(x) == 0 for x in (entry, leverage, fee_rate, funding)) and \
        (notional is None or np.ndim(notional) == 0) and (isinstance(side, str) or np.ndim(side) == 0)
    if not inverse:
        a, b = lp_affine(leverage, side, model=model, tiers=tiers, notional=notional, fee_rate=fee_rate,
                         funding=funding, over_max=over_max)
        lp = a * ep + b
    else:
        lp = _inverse(ep, leverage, side, model, tiers, notional, fee_rate, funding, over_max)
    return float(lp) if scalar else lp


def _inverse(ep, leverage, side, model, tiers, notional, fee_rate, funding, over_max) -> np.ndarray:
    table, lev, s, fee, fund = _common_args(model, tiers, leverage, side, fee_rate, funding, over_max, inverse=True)
    if table is None:
        return _inverse_lp("flat", ep, s, lev, 0.0, 0.0, fee, fund)
    q = None if notional is None else np.asarray(notional, dtype=np.float64)
    if q is not None and np.any(~(q > 0)):
        raise ParameterError("notional must be > 0 (USD face value for inverse)")
    shape = np.broadcast_shapes(ep.shape, lev.shape, s.shape, fee.shape, fund.shape, () if q is None else q.shape)
    entry = (np.zeros(shape, dtype=np.intp) if q is None else np.broadcast_to(table.bracket(q / ep), shape))
    lev_used, bad = _apply_max(table, lev, entry, over_max)

    def lp_with(idx: np.ndarray) -> np.ndarray:
        cum_pv = 0.0 if q is None else table.maintenance_amount[idx] * ep / q  # cum / (Q/EP)
        return _inverse_lp(model, ep, s, lev_used, table.mmr[idx], cum_pv, fee, fund)

    idx = entry
    if q is not None and model == "binance":
        def value(i):
            with np.errstate(divide="ignore"):
                return q / lp_with(i)

        idx = _select_tiers(table, entry, value)
    lp = np.broadcast_to(lp_with(idx), shape).astype(np.float64)
    if q is not None:
        bad = bad | (q / ep >= table.cap)
    return np.where(bad, np.nan, lp)


def bankruptcy_price(entry: float | np.ndarray, leverage: float | np.ndarray, side: Any, *,
                     inverse: bool = False) -> float | np.ndarray:
    """Price at which the isolated margin EP/L is exhausted (0% margin): EP(1 − s/L) linear,
    EP/(1 + s/L) inverse (+inf for a 1x inverse short)."""
    ep = np.asarray(entry, dtype=np.float64)
    lev = np.asarray(leverage, dtype=np.float64)
    _check_leverage(lev)
    s = parse_side(side)
    if inverse:
        den = 1.0 + s / lev
        with np.errstate(divide="ignore"):
            out = np.where(den > 0, ep / np.where(den > 0, den, 1.0), np.inf)
    else:
        out = ep * (1.0 - s / lev)
    scalar = np.ndim(entry) == 0 and np.ndim(leverage) == 0 and (isinstance(side, str) or np.ndim(side) == 0)
    return float(out) if scalar else out
