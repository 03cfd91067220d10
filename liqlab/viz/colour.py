"""The explorer's colour scale: USD notional → palette index → RGBA, on one fixed scale.

Long liquidations (below price) are blue, short liquidations (above price) red; the same notional gets the
same colour at any price and time (no per-column normalisation). Three mappings: linear, log (``LOG_RANGE``
decades below the scale maximum) and percentile (quantiles of the map's nonzero cells). Every function here
has a JavaScript twin in ``js/colour.js`` that the page runs when the colour controls move; the browser
tests check that both give the same pixels. Numpy only: no Bokeh models are built here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "N_COLOURS",
    "LOG_RANGE",
    "MAPPINGS",
    "LAYERS",
    "BACKGROUND",
    "palettes",
    "quantile_thresholds",
    "colour_levels",
    "rgba_image",
    "default_scale",
    "default_low_cut",
    "colour_ticks",
    "colouring",
    "usd",
]

#: Colours per side's palette.
N_COLOURS: int = 256
#: The log mapping spans vmax / LOG_RANGE .. vmax (USD).
LOG_RANGE: float = 1000.0
#: Colour mappings, the first is the default.
MAPPINGS: tuple[str, ...] = ("log", "linear", "percentile")
#: What the image shows, the first is the default: both sides blended, one side, or one panel per side.
LAYERS: tuple[str, ...] = ("blend", "long", "short", "side by side")

# Palette anchors (dark background): low notional is dim, high notional bright.
_LONG_ANCHORS = ("#0b1f4a", "#1450b4", "#2f8cf0", "#8fd0ff", "#e8f7ff")
_SHORT_ANCHORS = ("#4a0b12", "#b4141e", "#f0452f", "#ffa98f", "#fff0e8")
#: Background of the heatmap figures (dark, so low notional stays visible).
BACKGROUND: str = "#0d1017"


def _ramp(anchors: tuple[str, ...], n: int = N_COLOURS) -> np.ndarray:
    """(n, 3) uint8 RGB interpolated linearly between the anchor colours."""
    rgb = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in anchors], dtype=np.float64)
    x = np.linspace(0.0, 1.0, len(anchors))
    t = np.linspace(0.0, 1.0, n)
    return np.stack([np.interp(t, x, rgb[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


def palettes(n: int = N_COLOURS) -> dict[str, Any]:
    """The long (blue) and short (red) palettes.

    Parameters
    ----------
    n : int
        Colours per palette.

    Returns
    -------
    dict
        ``long_hex`` / ``short_hex``: lists of n '#rrggbb' strings; ``long_u32`` / ``short_u32``: (n,) uint32
        opaque RGBA (little-endian: red in the low byte), dim to bright.
    """
    out: dict[str, Any] = {}
    for side, anchors in (("long", _LONG_ANCHORS), ("short", _SHORT_ANCHORS)):
        rgb = _ramp(anchors, n).astype(np.uint32)
        out[f"{side}_hex"] = ["#%02x%02x%02x" % tuple(int(c) for c in row) for row in rgb]
        out[f"{side}_u32"] = (rgb[:, 0] | (rgb[:, 1] << 8) | (rgb[:, 2] << 16) | (np.uint32(255) << 24)).astype(np.uint32)
    return out


def quantile_thresholds(long: np.ndarray, short: np.ndarray | None, n: int = N_COLOURS) -> np.ndarray:
    """Thresholds of the percentile mapping.

    Parameters
    ----------
    long, short : numpy.ndarray
        Maps of any shape (USD notional per cell); ``short`` may be None.
    n : int
        Colours per palette.

    Returns
    -------
    numpy.ndarray
        (n-1,) float64 USD: the value at rank floor(i·m/n) of the m sorted nonzero float32 cells of both
        sides, i = 1..n-1 (all inf when the map is empty).
    """
    parts = [np.asarray(long, dtype=np.float32).ravel()]
    if short is not None:
        parts.append(np.asarray(short, dtype=np.float32).ravel())
    v = np.concatenate(parts)
    s = np.sort(v[v > 0])
    m = len(s)
    if m == 0:
        return np.full(n - 1, np.inf)
    idx = np.minimum(m - 1, (np.arange(1, n, dtype=np.int64) * m) // n)
    return s[idx].astype(np.float64)


def colour_levels(values: np.ndarray, mapping: str, vmax: float, qs: np.ndarray | None = None,
                  n: int = N_COLOURS, log_range: float = LOG_RANGE, vmin: float = 0.0) -> np.ndarray:
    """Palette index per cell on a fixed USD scale (twin of ``liqlab_colour.levels`` in js/colour.js).

    Parameters
    ----------
    values : numpy.ndarray
        USD notional per cell, any shape (read as float32, as the page does).
    mapping : {'log', 'linear', 'percentile'}
        linear: floor(v/vmax·n); log: decades from vmax/log_range to vmax; percentile: the number of
        ``qs`` thresholds <= v.
    vmax : float
        Top of the scale (USD).
    qs : numpy.ndarray, optional
        (n-1,) thresholds of :func:`quantile_thresholds`; required by the percentile mapping.
    n : int
        Colours per palette.
    log_range : float
        Span of the log mapping (ratio vmax / lowest coloured value).
    vmin : float
        The low cut (USD): cells below it get -1 (transparent), like empty cells.

    Returns
    -------
    numpy.ndarray
        int16, the shape of ``values``: 0..n-1, -1 where there is no notional or less than ``vmin``.
    """
    from liqlab.errors import ParameterError

    v = np.asarray(values, dtype=np.float32).astype(np.float64)
    pos = (v > 0) & (v >= max(float(vmin), 0.0))
    out = np.full(v.shape, -1, dtype=np.int16)
    if mapping == "percentile":
        if qs is None:
            raise ParameterError("mapping: 'percentile' needs the quantile thresholds")
        lev = np.searchsorted(qs, v[pos], side="right")
    elif mapping == "log":
        lmin = math.log10(vmax / log_range)
        t = (np.log10(v[pos]) - lmin) / (math.log10(vmax) - lmin)
        lev = np.floor(t * n)
    elif mapping == "linear":
        lev = np.floor(v[pos] / vmax * n)
    else:
        raise ParameterError(f"mapping: must be one of {list(MAPPINGS)}, got {mapping!r}")
    out[pos] = np.clip(lev, 0, n - 1).astype(np.int16)
    return out


def _paint(lev_l: np.ndarray, lev_s: np.ndarray, pal_l: np.ndarray, pal_s: np.ndarray, which: str) -> np.ndarray:
    """RGBA uint32 per cell: a side's colour, the level-weighted mix where both sides have notional."""
    a = lev_l if which != "short" else np.full_like(lev_l, -1)
    b = lev_s if which != "long" else np.full_like(lev_s, -1)
    out = np.zeros(a.shape, dtype=np.uint32)
    only_a = (a >= 0) & (b < 0)
    only_b = (b >= 0) & (a < 0)
    both = (a >= 0) & (b >= 0)
    out[only_a] = pal_l[a[only_a]]
    out[only_b] = pal_s[b[only_b]]
    if both.any():
        ca = pal_l[a[both]].astype(np.int64)
        cb = pal_s[b[both]].astype(np.int64)
        wa = a[both].astype(np.int64) + 1
        wb = b[both].astype(np.int64) + 1
        ws = wa + wb
        ch = [((((ca >> s) & 255) * wa + ((cb >> s) & 255) * wb) // ws) for s in (0, 8, 16)]
        out[both] = (ch[0] | (ch[1] << 8) | (ch[2] << 16) | (255 << 24)).astype(np.uint32)
    return out


def rgba_image(long: np.ndarray, short: np.ndarray, mapping: str = "log", vmax: float | None = None,
               layers: str = "blend", vmin: float | None = None) -> np.ndarray:
    """The two maps as one image on one fixed USD scale.

    Parameters
    ----------
    long, short : numpy.ndarray
        Maps of the same shape (USD notional per cell), e.g. (price bin × snapshot).
    mapping : {'log', 'linear', 'percentile'}
        USD → colour mapping (:func:`colour_levels`).
    vmax : float, optional
        Top of the scale (USD); default :func:`default_scale`.
    layers : {'blend', 'long', 'short'}
        Both sides (mixed where both have notional) or one side.
    vmin : float, optional
        The low cut (USD): cells below it are transparent; default :func:`default_low_cut`.

    Returns
    -------
    numpy.ndarray
        uint32 RGBA per cell, the shape of ``long`` (0 = transparent).
    """
    if vmax is None:
        vmax = default_scale(long, short)
    return colouring(long, short, mapping, layers, vmax, vmin)[0]["image"][0]


def default_scale(long: np.ndarray, short: np.ndarray) -> float:
    """The fixed colour-scale maximum of two maps.

    Parameters
    ----------
    long, short : numpy.ndarray
        Maps of any shape (USD notional per cell).

    Returns
    -------
    float
        The 99.5th percentile of the nonzero cells of both maps (USD); 1.0 when both are empty.
    """
    v = np.concatenate([np.asarray(long, dtype=np.float64).ravel(), np.asarray(short, dtype=np.float64).ravel()])
    v = v[v > 0]
    if v.size == 0:
        return 1.0
    return float(max(np.quantile(v, 0.995), 1e-9))


def default_low_cut(vmax: float) -> float:
    """The default low cut of the colour scale: the bottom of the log mapping.

    Parameters
    ----------
    vmax : float
        Top of the scale (USD).

    Returns
    -------
    float
        ``vmax / LOG_RANGE`` (USD): cells holding less are transparent, so near-zero notional (decayed
        levels of 1e-20 USD) is not painted like a real level.
    """
    return float(vmax) / LOG_RANGE


def colour_ticks(mapping: str, vmax: float, qs: np.ndarray | None, n: int = N_COLOURS) -> tuple[list[float], list[float]]:
    """Colour-bar ticks (twin of ``liqlab_colour.ticks`` in js/colour.js).

    Parameters
    ----------
    mapping : {'log', 'linear', 'percentile'}
        The colour mapping.
    vmax : float
        Top of the scale (USD).
    qs : numpy.ndarray or None
        (n-1,) percentile thresholds (USD), used by the percentile mapping only.
    n : int
        Colours per palette.

    Returns
    -------
    tuple of list of float
        Tick positions in [0, 1] along the bar and the USD value each stands for.
    """
    if mapping == "log":
        lmin, lmax = math.log10(vmax / LOG_RANGE), math.log10(vmax)
        pos = [(e - lmin) / (lmax - lmin) for e in range(math.ceil(lmin), math.floor(lmax) + 1)]
        val = [10.0 ** e for e in range(math.ceil(lmin), math.floor(lmax) + 1)]
        return pos + [1.0], val + [vmax]
    if mapping == "percentile":
        r = [round(p * n) for p in (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)]
        return [x / n for x in r], [float(qs[x - 1]) for x in r]
    return [i / 4 for i in range(5)], [vmax * i / 4 for i in range(5)]


def colouring(long: np.ndarray, short: np.ndarray, mapping: str, layers: str,
              vmax: float, vmin: float | None = None) -> tuple[dict[str, list], np.ndarray, np.ndarray]:
    """The page's ``heatmap`` source image columns for one set of colour choices, and the colour-bar ticks.

    Parameters
    ----------
    long, short : numpy.ndarray
        (B, To) float32 USD: price bin × shown snapshot.
    mapping : {'log', 'linear', 'percentile'}
        The colour mapping.
    layers : {'blend', 'long', 'short', 'side by side'}
        What the image shows.
    vmax : float
        Top of the scale (USD).
    vmin : float, optional
        The low cut (USD; cells below are transparent); default :func:`default_low_cut`.

    Returns
    -------
    images : dict
        ``image``: [(B, To) uint32 RGBA]; ``image2``: [the short panel's image when ``layers`` is
        'side by side', else a (1, 1) zero image (the page allocates it on demand: smaller files)].
    tick_pos, tick_val : numpy.ndarray
        Colour-bar tick positions in [0, 1] and their USD values.
    """
    pal = palettes()
    qs = quantile_thresholds(long, short) if mapping == "percentile" else None
    cut = default_low_cut(vmax) if vmin is None else float(vmin)
    lev_l = colour_levels(long, mapping, vmax, qs, vmin=cut)
    lev_s = colour_levels(short, mapping, vmax, qs, vmin=cut)
    sbs = layers == "side by side"
    img = _paint(lev_l, lev_s, pal["long_u32"], pal["short_u32"], "long" if sbs else layers)
    img2 = _paint(lev_l, lev_s, pal["long_u32"], pal["short_u32"], "short") if sbs else np.zeros((1, 1), np.uint32)
    pos, val = colour_ticks(mapping, vmax, qs)
    return {"image": [img], "image2": [img2]}, np.array(pos), np.array(val)


def usd(v: float) -> str:
    """A short USD label (twin of the colour bars' JS formatter).

    Parameters
    ----------
    v : float
        Amount (USD).

    Returns
    -------
    str
        '$950', '$1.2k', '$35k', '$1.2M', '$3.4B'; '-' when not finite.
    """
    if not math.isfinite(v):
        return "-"
    a = abs(v)
    for div, suf in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"${v / div:.{0 if a >= 10 * div else 1}f}{suf}"
    return f"${v:.0f}"
