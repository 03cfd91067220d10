"""Liquidation-price math (isolated margin, one position); the tier tables it reads are in :mod:`liqlab.io.tiers`.

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

from typing import Any

import numpy as np

from liqlab.errors import ParameterError
from liqlab._util import canonical_venue
from liqlab.io.tiers import TierTable, default_tiers

__all__ = [
    "MODELS",
    "model_for_venue",
    "parse_side",
    "liquidation_price",
    "lp_affine",
    "bankruptcy_price",
    "OVER_MAX",
]

MODELS = ("binance", "bybit", "okx", "flat")
MAX_TIER_PASSES = 6  # tier re-selection passes (Binance: recompute when LP lands in another bracket)
_VENUE_MODEL = {"binanceusdm": "binance", "binancecoinm": "binance", "bybit": "bybit", "okx": "okx"}


# --------------------------------------------------------------------------------------------------
# liquidation prices


def model_for_venue(venue: str) -> str:
    """The margin formula a venue uses.

    Parameters
    ----------
    venue : str
        A ccxt id or alias (binanceusdm/binancecoinm, bybit, okx).

    Returns
    -------
    str
        'binance', 'bybit' or 'okx'; an unknown venue raises ParameterError.
    """
    v = canonical_venue(venue)
    if v is None:
        raise ParameterError(f"unknown venue {venue!r} for a margin model; known: binanceusdm, bybit, okx")
    return _VENUE_MODEL[v]


def parse_side(side: Any) -> np.ndarray:
    """Position sides as ±1.

    Parameters
    ----------
    side : str, number or array_like
        'long'/'short' (or 'buy'/'sell'), +1/−1, or an array of them.

    Returns
    -------
    numpy.ndarray
        float64 of ±1 (long = +1), the shape of ``side``; anything else raises ParameterError.
    """
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
    """The liquidation price of linear contracts as an affine function of entry: LP = a·entry + b (USD).

    The tier is ``tier`` (0-based index) if given, else the bracket of ``notional`` (USD) — for 'binance'
    re-selected at the liquidation notional N·a (entry-independent, so the result is exact for any entry) —
    else tier 0 with no maintenance-amount term. Leverage above the entry tier's max leverage → NaN
    (``over_max='nan'``) or clipped to it (``'clip'``); notional at or beyond the table's cap → NaN.
    b is 0 for a fixed USD notional (kept so callers need not special-case).

    Parameters
    ----------
    leverage : float or array_like
        Leverage(s), ≥ 1.
    side : str, number or array_like
        See :func:`parse_side`.
    model : str
        'binance', 'bybit', 'okx' or 'flat'.
    tiers : TierTable, float or None
        The tier table, a flat maintenance margin rate, or None (the model's default).
    notional : float or array_like, optional
        Position notional (USD), selecting the tier.
    tier : int or array_like, optional
        0-based tier index (instead of ``notional``).
    fee_rate, funding : float or array_like
        Fractions of notional added to the maintenance requirement.
    over_max : str
        'nan' or 'clip' for a leverage above the tier's maximum.

    Returns
    -------
    a, b : numpy.ndarray
        float64, broadcast over leverage × side × notional; b in USD.
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
    """Price at which the isolated margin EP/L is exhausted (0 % margin).

    Parameters
    ----------
    entry : float or array_like
        Entry price (USD).
    leverage : float or array_like
        Leverage, ≥ 1.
    side : str, number or array_like
        See :func:`parse_side` (s = ±1).
    inverse : bool
        Coin-margined contract.

    Returns
    -------
    float or numpy.ndarray
        EP(1 − s/L) linear, EP/(1 + s/L) inverse (+inf for a 1x inverse short), USD; a float for scalar
        arguments.
    """
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
