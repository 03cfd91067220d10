"""The engine's grids: price bins and position-size nodes (docs/DESIGN.md, "Heatmap engine").

:func:`make_grid` gives the bin edges (log-spaced in basis points, or linear in USD) covering the data's
price range; :func:`bin_centres` the prices the maps report; :func:`size_nodes` the position notionals
(USD) per leverage layer that spread a layer's liquidation prices over margin tiers.
"""

from __future__ import annotations

import math

import numpy as np

from liqlab.errors import DataError, ParameterError
from liqlab.engine.params import DEFAULT_BIN_BP, HeatmapParams

__all__ = ["make_grid", "bin_centres", "size_nodes", "SIZE_NODES", "MAX_BINS"]

#: Most price bins a grid may have (a finer width is refused, naming ``bin_width``).
MAX_BINS = 20_000

#: Number of equal-probability nodes used for a lognormal position-size distribution (position_size_sigma > 0).
SIZE_NODES = 9


def _nice(x: float) -> float:
    """Round x down to 1, 2 or 5 × 10^n."""
    e = 10 ** math.floor(math.log10(x))
    for m in (5, 2, 1):
        if m * e <= x:
            return m * e
    return e


def make_grid(low: float, high: float, median_price: float, params: HeatmapParams) -> tuple[np.ndarray, float]:
    """Bin edges covering [low·(1−price_range), high·(1+price_range)] and the bin width used.

    ``bp``: log-spaced, edges = lo·exp(i·ln(1 + bw/1e4)). ``usd``: linear, width in USD (default
    DEFAULT_BIN_BP of the median price rounded down to 1/2/5·10^n), the low edge a multiple of it.

    Parameters
    ----------
    low, high : float
        Lowest and highest traded price (USD).
    median_price : float
        Median close (USD); sets the default USD width and its 50 % cap.
    params : HeatmapParams
        ``price_range``, ``bin_unit`` and ``bin_width`` are used.

    Returns
    -------
    edges : numpy.ndarray
        (B+1,) float64 USD, increasing.
    bin_width : float
        Basis points (``bp``) or USD (``usd``).
    """
    pr = float(params.price_range)
    lo = low * (1.0 - pr)
    hi = high * (1.0 + pr)
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo > 0):
        raise DataError(f"price range {low}..{high}: cannot build a price grid")
    if params.bin_unit == "bp":
        bw = float(params.bin_width) if params.bin_width is not None else DEFAULT_BIN_BP
        step = math.log1p(bw * 1e-4)
        n = int(math.ceil(math.log(hi / lo) / step))
        if n > MAX_BINS:
            raise ParameterError(f"bin_width: {bw:g} bp gives {n} bins over {lo:.6g}..{hi:.6g} (max {MAX_BINS})")
        edges = lo * np.exp(step * np.arange(n + 1, dtype=np.float64))
    else:
        bw = float(params.bin_width) if params.bin_width is not None else _nice(median_price * DEFAULT_BIN_BP * 1e-4)
        if bw > 0.5 * median_price:  # the same 50% cap as for bp widths (HeatmapParams.validate)
            raise ParameterError(f"bin_width: {bw:g} USD is wider than 50% of the median price "
                                 f"({median_price:.6g} USD); use a smaller width")
        lo = math.floor(lo / bw) * bw
        if lo <= 0:
            lo = bw * 0.5
        n = int(math.ceil((hi - lo) / bw))
        if n > MAX_BINS:
            raise ParameterError(f"bin_width: {bw:g} USD gives {n} bins over {lo:.6g}..{hi:.6g} (max {MAX_BINS})")
        edges = lo + bw * np.arange(n + 1, dtype=np.float64)
    return edges, bw


def bin_centres(edges: np.ndarray, unit: str) -> np.ndarray:
    """Bin centres: geometric mean of the edges for bp bins, arithmetic for USD bins.

    Parameters
    ----------
    edges : numpy.ndarray
        (B+1,) bin edges (USD).
    unit : str
        ``'bp'`` or ``'usd'`` (``HeatmapParams.bin_unit``).

    Returns
    -------
    numpy.ndarray
        (B,) float64 USD.
    """
    if unit == "bp":
        return np.sqrt(edges[:-1] * edges[1:])
    return 0.5 * (edges[:-1] + edges[1:])


def size_nodes(params: HeatmapParams) -> tuple[np.ndarray, np.ndarray]:
    """Position notionals per leverage layer and their notional shares.

    The median at leverage L is ``position_size_usd``·(L/10)^(−position_size_leverage_exponent).
    ``position_size_sigma`` = 0: that single size (Q = 1). Otherwise SIZE_NODES equal-probability
    quantiles of the lognormal share-of-notional distribution with that median and log-sd
    ``position_size_sigma``.

    Parameters
    ----------
    params : HeatmapParams
        ``leverages`` and the ``position_size_*`` fields are used.

    Returns
    -------
    sizes : numpy.ndarray
        (K, Q) float64 USD.
    shares : numpy.ndarray
        (Q,) float64, summing to 1.
    """
    from scipy.special import ndtri

    from liqlab.engine.kernel import LEVERAGE_REF

    lev = np.asarray(params.leverages, dtype=np.float64)
    med = float(params.position_size_usd) * (lev / LEVERAGE_REF) ** (-float(params.position_size_leverage_exponent))
    sig = float(params.position_size_sigma)
    if sig <= 0:
        return med[:, None], np.ones(1)
    q = (np.arange(SIZE_NODES) + 0.5) / SIZE_NODES
    return med[:, None] * np.exp(sig * ndtri(q))[None, :], np.full(SIZE_NODES, 1.0 / SIZE_NODES)
