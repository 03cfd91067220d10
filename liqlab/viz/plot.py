"""Bokeh views of a heatmap: the static figure and the interactive explorer (CustomJS, no kernel).

Functions build and return Bokeh models; they never call ``show()``. Long liquidations (below price)
are blue, short liquidations (above price) red, on one fixed USD colour scale (same notional, same
colour at any price and time; linear, log or percentile mapping). The explorer carries the engine's
step inputs (``Heatmap.replay``) into the page, and ``liqlab/js/*.js`` re-runs the step recursion in
the browser when the ``half_life`` / ``lev_<L>`` sliders or a venue toggle move, giving the same
numbers as ``Heatmap.with_params`` (see docs/EXPLORER.md for the contract and the named models).
What the explorer shows is computed once, by ``explorer_state`` (no Bokeh models); ``explorer`` builds
its models from it and ``update_explorer`` copies it into a live page.

Arrays sent to the browser are (price bin × snapshot) float32, at most ``MAX_CELLS`` cells.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MAX_CELLS",
    "N_COLOURS",
    "LOG_RANGE",
    "MAPPINGS",
    "heatmap_figure",
    "explorer",
    "explorer_state",
    "ExplorerState",
    "page_colours",
    "SOURCES",
    "save_explorer",
    "explorer_html",
    "update_explorer",
    "colour_levels",
    "quantile_thresholds",
    "rgba_image",
    "default_scale",
    "js_source",
]

#: Cap on price bins × snapshots sent to the browser (each cell costs ~4 float32/uint32 arrays, 16 B).
#: Above it the time step is coarsened (by rebuilding at a multiple of ``time_step`` when the data is
#: at hand, otherwise by showing every n-th snapshot); a note on the plot says so.
MAX_CELLS: int = 500_000
#: Colours per side's palette.
N_COLOURS: int = 256
#: The log mapping spans vmax / LOG_RANGE .. vmax (USD).
LOG_RANGE: float = 1000.0
MAPPINGS: tuple[str, ...] = ("log", "linear", "percentile")
LAYERS: tuple[str, ...] = ("blend", "long", "short", "side by side")
#: Above this many visible snapshots the price is drawn as a line instead of candles.
CANDLE_LIMIT: int = 300

# Palette anchors (dark background): low notional is dim, high notional bright.
_LONG_ANCHORS = ("#0b1f4a", "#1450b4", "#2f8cf0", "#8fd0ff", "#e8f7ff")
_SHORT_ANCHORS = ("#4a0b12", "#b4141e", "#f0452f", "#ffa98f", "#fff0e8")
_BACKGROUND = "#0d1017"


# ------------------------------------------------------------------------------------------ colours


def _ramp(anchors: tuple[str, ...], n: int = N_COLOURS) -> np.ndarray:
    """(n, 3) uint8 RGB interpolated linearly between the anchor colours."""
    rgb = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in anchors], dtype=np.float64)
    x = np.linspace(0.0, 1.0, len(anchors))
    t = np.linspace(0.0, 1.0, n)
    return np.stack([np.interp(t, x, rgb[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


def palettes(n: int = N_COLOURS) -> dict[str, Any]:
    """Long (blue) and short (red) palettes as hex lists and as opaque RGBA uint32 (little-endian)."""
    out: dict[str, Any] = {}
    for side, anchors in (("long", _LONG_ANCHORS), ("short", _SHORT_ANCHORS)):
        rgb = _ramp(anchors, n).astype(np.uint32)
        out[f"{side}_hex"] = ["#%02x%02x%02x" % tuple(int(c) for c in row) for row in rgb]
        out[f"{side}_u32"] = (rgb[:, 0] | (rgb[:, 1] << 8) | (rgb[:, 2] << 16) | (np.uint32(255) << 24)).astype(np.uint32)
    return out


def quantile_thresholds(long: np.ndarray, short: np.ndarray | None, n: int = N_COLOURS) -> np.ndarray:
    """(n-1,) USD thresholds of the percentile mapping: value at rank floor(i·m/n) of the m sorted
    nonzero float32 cells of both sides, i = 1..n-1 (inf when the map is empty)."""
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
                  n: int = N_COLOURS, log_range: float = LOG_RANGE) -> np.ndarray:
    """Palette index per cell (int16, same shape; -1 = no notional) on a fixed USD scale ``vmax``.

    linear: floor(v/vmax·n); log: decades from vmax/log_range to vmax; percentile: number of
    ``qs`` thresholds <= v. Clipped to 0..n-1. Twin of ``liqlab_colour.levels`` (js/colour.js).
    """
    from liqlab.errors import ParameterError

    v = np.asarray(values, dtype=np.float32).astype(np.float64)
    pos = v > 0
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
               layers: str = "blend") -> np.ndarray:
    """RGBA uint32 image (same shape as ``long``) of the two maps on one fixed USD scale.

    layers: 'blend' (both), 'long' or 'short'. ``vmax`` defaults to :func:`default_scale`.
    """
    if vmax is None:
        vmax = default_scale(long, short)
    return _colouring(long, short, mapping, layers, vmax)[0]["image"][0]


def default_scale(long: np.ndarray, short: np.ndarray) -> float:
    """Fixed colour-scale maximum (USD): the 99.5th percentile of the nonzero cells of both maps."""
    v = np.concatenate([np.asarray(long, dtype=np.float64).ravel(), np.asarray(short, dtype=np.float64).ravel()])
    v = v[v > 0]
    if v.size == 0:
        return 1.0
    return float(max(np.quantile(v, 0.995), 1e-9))


def _ticks(mapping: str, vmax: float, qs: np.ndarray | None, n: int = N_COLOURS) -> tuple[list[float], list[float]]:
    """Colour-bar tick positions in [0, 1] and the USD value each stands for (twin of colour.js)."""
    if mapping == "log":
        lmin, lmax = math.log10(vmax / LOG_RANGE), math.log10(vmax)
        pos = [(e - lmin) / (lmax - lmin) for e in range(math.ceil(lmin), math.floor(lmax) + 1)]
        val = [10.0 ** e for e in range(math.ceil(lmin), math.floor(lmax) + 1)]
        return pos + [1.0], val + [vmax]
    if mapping == "percentile":
        r = [round(p * n) for p in (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)]
        return [x / n for x in r], [float(qs[x - 1]) for x in r]
    return [i / 4 for i in range(5)], [vmax * i / 4 for i in range(5)]


def usd(v: float) -> str:
    """Short USD label: $950, $1.2k, $35k, $1.2M, $3.4B."""
    if not math.isfinite(v):
        return "-"
    a = abs(v)
    for div, suf in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"${v / div:.{0 if a >= 10 * div else 1}f}{suf}"
    return f"${v:.0f}"


# ------------------------------------------------------------------------------------ the view data


@dataclass(frozen=True)
class View:
    """What the browser gets: the heatmap used, display stride/offset and the (B, To) float32 maps."""

    hm: Any
    stride: int              # show every stride-th step of hm (1 = all)
    offset: int              # first shown step ((T - 1) % stride, so the last step is shown)
    long: np.ndarray         # (B, To) float32 USD
    short: np.ndarray        # (B, To) float32 USD
    times_ms: np.ndarray     # (To,) float64, ms since epoch UTC, end of each shown step
    close: np.ndarray        # (To,) float64 reference price at those times
    note: str                # '' or what was coarsened and why

    @property
    def step_hours(self) -> float:
        return float(self.hm.params.step_hours) * self.stride


def _hm_step_hours(hm) -> float:
    return float(hm.params.step_hours)


def _times_ms(times) -> np.ndarray:
    """Milliseconds since the epoch (float64) of datetime64 values or a tz-aware pandas column (UTC)."""
    if isinstance(times, np.ndarray) and np.issubdtype(times.dtype, np.datetime64):
        return times.astype("datetime64[ns]").astype(np.int64).astype(np.float64) / 1e6
    import pandas as pd

    idx = pd.DatetimeIndex(times)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.as_unit("ns").asi8.astype(np.float64) / 1e6


def _fmt_hours(h: float) -> str:
    if h >= 24 and abs(h / 24 - round(h / 24)) < 1e-9:
        return f"{round(h / 24)}d"
    if h >= 1 and abs(h - round(h)) < 1e-9:
        return f"{round(h)}h"
    return f"{round(h * 60)}min"


def prepare(hm, data=None, max_cells: int = MAX_CELLS) -> View:
    """Fit ``hm`` under the cell cap: rebuild at a coarser time step when ``data`` is given, otherwise
    show every n-th snapshot (the browser still re-runs every step, so values stay exact)."""
    from liqlab.errors import ParameterError

    if max_cells < 1:
        raise ParameterError(f"max_cells: must be >= 1, got {max_cells}")
    T, B = np.asarray(hm.long).shape
    note = ""
    stride = 1
    if T * B > max_cells:
        factor = math.ceil(T * B / max_cells)
        old = _fmt_hours(_hm_step_hours(hm))
        if B > max_cells:
            raise ParameterError(f"max_cells: {max_cells} is below the {B} price bins of one snapshot; use a wider bin_width")
        if data is not None:
            from liqlab.engine.heatmap import build_heatmap

            new_step = _fmt_hours(_hm_step_hours(hm) * factor)
            hm = build_heatmap(data, hm.params.replace(time_step=new_step))
            T, B = np.asarray(hm.long).shape
            while T * B > max_cells:  # rounding of the time range
                factor += 1
                new_step = _fmt_hours(float(hm.params.step_hours) / (factor - 1) * factor)
                hm = build_heatmap(data, hm.params.replace(time_step=new_step))
                T, B = np.asarray(hm.long).shape
            note = f"time step coarsened from {old} to {new_step} to keep {T}×{B} cells ≤ {max_cells:,} (rebuilt)"
        else:
            stride = factor
            note = (f"showing one {old} snapshot in {stride} ({_fmt_hours(_hm_step_hours(hm) * stride)} apart) "
                    f"to keep cells ≤ {max_cells:,}; values are exact at the shown times")
    offset = (T - 1) % stride
    long = np.ascontiguousarray(np.asarray(hm.long)[offset::stride].T, dtype=np.float32)
    short = np.ascontiguousarray(np.asarray(hm.short)[offset::stride].T, dtype=np.float32)
    times_ms = _times_ms(hm.times)[offset::stride]
    close = np.asarray(hm.close, dtype=np.float64)[offset::stride]
    return View(hm=hm, stride=stride, offset=offset, long=long, short=short, times_ms=times_ms, close=close, note=note)


# --------------------------------------------------------------------------------- replay payload


def _venue_replays(replay) -> list[tuple[str, Any]]:
    """[(venue, VenueSteps)] from the step inputs (``venues`` as dict or sequence of objects with ``.venue``)."""
    v = getattr(replay, "venues", None)
    if isinstance(v, dict):
        return list(v.items())
    if v is not None:
        return [(getattr(x, "venue", f"venue{i}"), x) for i, x in enumerate(v)]
    raise TypeError("replay has no 'venues'")


def _csr(x) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if isinstance(x, dict):
        return x["ptr"], x["k"], x["b"], x["v"]
    if isinstance(x, (tuple, list)):
        return tuple(x)  # type: ignore[return-value]
    return x.ptr, x.k, x.b, x.v


def replay_payload(replay) -> dict[str, list]:
    """Column data of the ``replay`` source: one row per venue, each cell a 1-D typed array."""
    cols: dict[str, list] = {k: [] for k in (
        "venue", "long_ptr", "long_k", "long_b", "long_v", "short_ptr", "short_k", "short_b", "short_v",
        "lo", "hi", "g", "rm_long", "rm_short", "shift")}
    for name, vr in _venue_replays(replay):
        cols["venue"].append(str(name))
        for side in ("long", "short"):
            ptr, k, b, v = _csr(getattr(vr, f"fresh_{side}"))
            if len(ptr) and int(ptr[-1]) >= 2**31:
                raise ValueError("replay too large for the browser (2^31 deposits)")
            cols[f"{side}_ptr"].append(np.ascontiguousarray(ptr, dtype=np.int32))
            cols[f"{side}_k"].append(np.ascontiguousarray(k, dtype=np.int32))
            cols[f"{side}_b"].append(np.ascontiguousarray(b, dtype=np.int32))
            cols[f"{side}_v"].append(np.ascontiguousarray(v, dtype=np.float64))
        cols["lo"].append(np.ascontiguousarray(vr.lo, dtype=np.int32))
        cols["hi"].append(np.ascontiguousarray(vr.hi, dtype=np.int32))
        cols["g"].append(np.ascontiguousarray(vr.g, dtype=np.float64))
        cols["rm_long"].append(np.ascontiguousarray(vr.rm_long, dtype=np.float64))
        cols["rm_short"].append(np.ascontiguousarray(vr.rm_short, dtype=np.float64))
        cols["shift"].append(np.ascontiguousarray(vr.shift, dtype=np.int32))
    return cols


def _agree_text(hm, j: int, b: int) -> str:
    """'n (venue, ...)': venues whose own map (long + short) has a cluster within ±window bins of bin b
    at step j (the engine's agreement rule; the page's ``cellInfo`` writes the same text)."""
    p = hm.params
    w = int(p.agreement_window_bins)
    names = []
    for v in hm.venue_long:
        m = hm.venue_long[v][j].astype(np.float64) + hm.venue_short[v][j]
        seg = m[max(0, b - w): b + w + 1]
        mx = m.max() if m.size else 0.0
        if ((seg > 0) & (seg >= p.agreement_threshold * mx)).any():
            names.append(v)
    return f"{len(names)} ({', '.join(names)})" if names else "0"


def _max_age_steps(params) -> int:
    from liqlab.engine.kernel import max_age_steps

    return max_age_steps(params.max_age_hours, params.step_hours)


def _meta(hm) -> dict:
    return dict(getattr(hm, "meta", None) or {})


def _venue_names(hm) -> list[str]:
    return [name for name, _ in _venue_replays(hm.replay)]


def _active_venues(hm) -> list[str]:
    v = getattr(hm.params, "venues", None)
    names = _venue_names(hm)
    return list(names) if v is None else [x for x in names if x in v]


def _param_text(hm, view: View) -> str:
    p = hm.params
    bw = p.bin_width if p.bin_width is not None else _meta(hm).get("bin_width")
    bins = f"{float(bw):.4g} {p.bin_unit}" if bw is not None else p.bin_unit
    return (f"bins {bins} · step {_fmt_hours(view.step_hours)} · "
            f"OI decrease {p.oi_decrease} · side split {p.side_split} · entry {p.entry_price}")


def _title_html(hm, view: View, venues: list[str], weights: np.ndarray) -> str:
    """Initial title (the JS twin ``titleText`` rewrites it when controls move)."""
    meta = _meta(hm)
    syn = "<b style='color:#d9534f'>SYNTHETIC</b> · " if meta.get("synthetic") else ""
    hl = float(hm.params.half_life_hours)
    hl_txt = f"{hl:g} h" if math.isfinite(hl) else "no decay"
    lev = np.asarray(hm.leverages, dtype=np.float64)
    parts = [f"{lev[k]:g}x {round(100 * weights[k])}%" for k in range(len(lev)) if weights[k] > 0.005]
    return (f"<div style='font-size:14px'>{syn}<b>{meta.get('symbol', '')}</b> liquidation heatmap · "
            f"{' + '.join(venues) if venues else 'no venue'}<br><span style='font-size:12px;color:#555'>half-life {hl_txt}"
            f" · leverage {', '.join(parts)} · {_param_text(hm, view)}</span></div>")


# ----------------------------------------------------------------------------------- price & events


def _datasets(data) -> list:
    if data is None:
        return []
    if isinstance(data, (str, os.PathLike)):
        from liqlab.io.dataset import load

        data = load(data)
    return list(getattr(data, "datasets", None) or [data])


def price_bars(data, times_ms: np.ndarray, step_hours: float, venue: str | None = None) -> dict[str, np.ndarray] | None:
    """OHLC per shown step (bars whose open time is in [end − step, end)), from ``venue`` (or the
    first dataset); None without data. Columns t (step centre, ms), open, high, low, close, width (ms)."""
    dss = _datasets(data)
    if not dss:
        return None
    ds = next((d for d in dss if d.venue == venue), dss[0])
    o = ds.ohlcv
    ts = _times_ms(o["ts"])
    step_ms = step_hours * 3_600_000.0
    j = np.searchsorted(times_ms, ts, side="right")
    ok = (j < len(times_ms)) & (ts >= times_ms[np.minimum(j, len(times_ms) - 1)] - step_ms)
    if not ok.any():
        return None
    j = j[ok]
    op, hi, lo, cl = (o[c].to_numpy(dtype=np.float64)[ok] for c in ("open", "high", "low", "close"))
    idx, first = np.unique(j, return_index=True)
    last = np.r_[first[1:], len(j)] - 1
    return {
        "t": times_ms[idx] - step_ms / 2,
        "open": op[first],
        "high": np.maximum.reduceat(hi, first),
        "low": np.minimum.reduceat(lo, first),
        "close": cl[last],
        "width": np.full(len(idx), step_ms * 0.7),
        "up": (cl[last] >= op[first]).astype(np.int8),
    }


def liquidation_events(data, times_ms: np.ndarray, step_hours: float, venues: list[str] | None = None) -> dict[str, np.ndarray] | None:
    """Realized liquidations as markers, one per shown step and side (summed over venues, so the page
    stays fast): t (step centre, ms), price (value-weighted mean; an event without a price counts at its
    bar's close), value (USD), count, side, size (px, ∝ sqrt(value)), colour. None when there are none."""
    import pandas as pd

    rows = []
    for ds in _datasets(data):
        if venues is not None and ds.venue not in venues:
            continue
        lq = ds.liquidations
        if lq is None or len(lq) == 0:
            continue
        px = lq["price"].to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isnan(px).any():
            o = ds.ohlcv
            k = np.searchsorted(_times_ms(o["ts"]), _times_ms(lq["ts"]), side="right") - 1
            fill = o["close"].to_numpy(dtype=np.float64)[np.clip(k, 0, len(o) - 1)]
            px = np.where(np.isnan(px), fill, px)
        rows.append(pd.DataFrame({"t": _times_ms(lq["ts"]), "price": px,
                                  "value": lq["value"].to_numpy(dtype=np.float64),
                                  "side": lq["side"].astype(str).to_numpy()}))
    if not rows:
        return None
    df = pd.concat(rows, ignore_index=True)
    step_ms = step_hours * 3_600_000.0
    j = np.searchsorted(times_ms, df["t"].to_numpy(), side="right")
    keep = (j < len(times_ms)) & (df["t"].to_numpy() >= times_ms[np.minimum(j, len(times_ms) - 1)] - step_ms)
    df = df[keep].assign(j=j[keep], pv=lambda x: x["price"] * x["value"])
    if df.empty:
        return None
    g = df.groupby(["j", "side"], sort=True).agg(value=("value", "sum"), pv=("pv", "sum"), count=("value", "size")).reset_index()
    value = g["value"].to_numpy(np.float64)
    side = g["side"].to_numpy(dtype=object)
    vmax = float(value.max()) or 1.0
    return {
        "t": times_ms[g["j"].to_numpy()] - step_ms / 2, "price": g["pv"].to_numpy(np.float64) / np.where(value > 0, value, 1.0),
        "value": value, "count": g["count"].to_numpy(np.int64), "side": side,
        "size": 4.0 + 22.0 * np.sqrt(value / vmax),
        "colour": np.where(side == "long", "#5aa9ff", "#ff6b5a").astype(object),
    }


# ---------------------------------------------------------------------------------------- JS code


def js_source(*names: str) -> str:
    """The CustomJS library files (``liqlab/js/<name>.js``), concatenated; default: all three."""
    from importlib.resources import files

    names = names or ("recursion", "colour", "explorer")
    return "\n".join(files("liqlab").joinpath("viz", "js", f"{n}.js").read_text(encoding="utf-8") for n in names)


def _ctx_code(args: dict, body: str) -> str:
    keys = ", ".join(f"{k}: {k}" for k in args)
    return js_source() + f"\nvar ctx = {{{keys}}};\n" + body


# ----------------------------------------------------------------------------------- the figures


def _image_geometry(view: View, edges: np.ndarray) -> dict[str, list]:
    step_ms = view.step_hours * 3_600_000.0
    x0 = float(view.times_ms[0])
    return {"x": [x0], "y": [float(edges[0])], "dw": [step_ms * len(view.times_ms)], "dh": [float(edges[-1] - edges[0])]}


def _is_log_grid(edges: np.ndarray) -> bool:
    e = np.asarray(edges, dtype=np.float64)
    if len(e) < 3 or np.any(e <= 0):
        return False
    d = np.diff(e)
    if np.allclose(d, d[0], rtol=1e-6):
        return False
    r = e[1:] / e[:-1]
    return bool(np.allclose(r, r[0], rtol=1e-6))


def _main_figure(view: View, hm, width: int, height: int, title: str | None = None, x_range=None, y_range=None):
    from bokeh.models import DatetimeTickFormatter, NumeralTickFormatter
    from bokeh.plotting import figure

    edges = np.asarray(hm.edges, dtype=np.float64)
    kw: dict[str, Any] = dict(
        width=width, height=height, x_axis_type="datetime",
        y_axis_type="log" if _is_log_grid(edges) else "linear",
        tools="pan,wheel_zoom,box_zoom,reset,save", active_scroll="wheel_zoom",
        background_fill_color=_BACKGROUND, border_fill_color="#ffffff", output_backend="canvas",
    )
    if title:
        kw["title"] = title
    if x_range is not None:
        kw["x_range"] = x_range
    else:
        step_ms = view.step_hours * 3_600_000.0
        kw["x_range"] = (float(view.times_ms[0]), float(view.times_ms[-1] + step_ms))
    kw["y_range"] = y_range if y_range is not None else (float(edges[0]), float(edges[-1]))
    fig = figure(**kw)
    fig.grid.grid_line_alpha = 0.12
    fig.yaxis.formatter = NumeralTickFormatter(format="0,0")
    fig.xaxis.formatter = DatetimeTickFormatter(days="%b %d", hours="%b %d %H:%M", minutes="%H:%M")
    fig.yaxis.axis_label = "price (USD)"
    return fig


def _colouring(long: np.ndarray, short: np.ndarray, mapping: str, layers: str,
               vmax: float) -> tuple[dict[str, list], np.ndarray, np.ndarray]:
    """The ``heatmap`` source's image columns for one set of colour choices and the colour-bar ticks.

    ``long``/``short``: (B, To) float32 USD; ``vmax``: USD. Returns ({'image': [(B, To) uint32 RGBA],
    'image2': [the short panel's image when ``layers`` is 'side by side', else a (1, 1) zero image]},
    tick positions in [0, 1], their USD values)."""
    pal = palettes()
    qs = quantile_thresholds(long, short) if mapping == "percentile" else None
    lev_l, lev_s = colour_levels(long, mapping, vmax, qs), colour_levels(short, mapping, vmax, qs)
    sbs = layers == "side by side"
    img = _paint(lev_l, lev_s, pal["long_u32"], pal["short_u32"], "long" if sbs else layers)
    # the second panel's image is only sent when shown (the page allocates it on demand): smaller files
    img2 = _paint(lev_l, lev_s, pal["long_u32"], pal["short_u32"], "short") if sbs else np.zeros((1, 1), np.uint32)
    pos, val = _ticks(mapping, vmax, qs)
    return {"image": [img], "image2": [img2]}, np.array(pos), np.array(val)


def _colour_bars(fig, ticks: list[float], pal: dict, grid_src, heatmap_src):
    """Two colour bars (long blue, short red) in USD; ``ticks`` are positions in [0, 1] labelled by JS."""
    from bokeh.models import ColorBar, CustomJSTickFormatter, FixedTicker, LinearColorMapper

    bars = []
    code = """
const tk = heatmap.__liqlab_ticks || {pos: grid.data.tick_pos[0], val: grid.data.tick_val[0]};
let best = 0, bd = Infinity;
for (let i = 0; i < tk.pos.length; i++) { const dd = Math.abs(tk.pos[i] - tick); if (dd < bd) { bd = dd; best = i; } }
const v = tk.val[best], a = Math.abs(v);
if (!isFinite(v)) return "-";
if (a >= 1e9) return "$" + (v / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "B";
if (a >= 1e6) return "$" + (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
if (a >= 1e3) return "$" + (v / 1e3).toFixed(a >= 1e4 ? 0 : 1) + "k";
return "$" + v.toFixed(0);
"""
    for side in ("long", "short"):
        mapper = LinearColorMapper(palette=pal[f"{side}_hex"], low=0.0, high=1.0)
        cb = ColorBar(color_mapper=mapper, ticker=FixedTicker(ticks=list(ticks)), width=10,
                      formatter=CustomJSTickFormatter(args=dict(heatmap=heatmap_src, grid=grid_src), code=code),
                      title=f"{side} (USD)", name=f"colourbar_{side}", label_standoff=4,
                      major_label_text_font_size="9px", title_text_font_size="10px")
        fig.add_layout(cb, "right")
        bars.append(cb)
    return bars


def _price_data(view: View, hm, data) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """Columns of the ``price_line`` source (t: step centre, ms; close) and of the ``price`` candles
    (t, open, high, low, close, width: ms, colour; None without bars in ``data``)."""
    bars = price_bars(data, view.times_ms, view.step_hours, (_active_venues(hm) or [None])[0])
    if bars is None:
        step_ms = view.step_hours * 3_600_000.0
        return {"t": view.times_ms - step_ms / 2, "close": view.close}, None
    line = {"t": bars["t"], "close": bars["close"]}
    bars = dict(bars)
    bars["colour"] = np.where(bars.pop("up") > 0, "#d9d9d9", "#7a7a7a").astype(object)
    return line, bars


def _price_glyphs(fig, line_src, bars_src=None):
    """Candles from ``bars_src`` (if any) and a close line from ``line_src`` (shown for zoomed-out
    views); returns (candle renderers, line renderer)."""
    halo = fig.line("t", "close", source=line_src, color="#000000", line_width=3.2, alpha=0.55)
    line = fig.line("t", "close", source=line_src, color="#f2f2f2", line_width=1.3, alpha=0.95,
                    legend_label="price")
    line.js_link("visible", halo, "visible")
    candles: list = []
    if bars_src is not None:
        candles.append(fig.segment("t", "high", "t", "low", source=bars_src, color="colour", line_width=1))
        candles.append(fig.vbar("t", "width", "open", "close", source=bars_src, fill_color="colour", line_color="colour"))
        many = len(bars_src.data["t"]) > CANDLE_LIMIT
        for r in candles:
            r.visible = not many
        line.visible = halo.visible = many
    fig.legend.location = "bottom_left"
    fig.legend.background_fill_alpha = 0.3
    fig.legend.label_text_color = "#dddddd"
    fig.legend.label_text_font_size = "9px"
    return candles, line


def _events_glyph(fig, src):
    """Realized-liquidation markers from ``src`` (the ``liquidations`` source; nothing when None)."""
    from bokeh.models import HoverTool

    if src is None:
        return None
    r = fig.scatter("t", "price", source=src, size="size", fill_color="colour", line_color="#ffffff",
                    line_width=0.5, fill_alpha=0.45, line_alpha=0.7, legend_label="realized liquidations")
    fig.add_tools(HoverTool(renderers=[r], tooltips=[("realized", "@side liquidations (@count events)"),
                                                     ("value", "@value{$0,0}"), ("mean price", "@price{0,0.00}"),
                                                     ("step centre", "@t{%F %H:%M}")],
                            formatters={"@t": "datetime"}))
    return r


def heatmap_figure(hm, data=None, *, mapping: str = "log", layers: str = "blend", width: int = 900,
                   height: int = 520, vmax: float | None = None, max_cells: int = MAX_CELLS):
    """Static view (no controls): time × price image (long blue below, short red above, fixed USD
    scale), price candles or line, realized liquidations when ``data`` has them, colour bars in USD,
    hover with time, price, long and short notional. Returns a Bokeh layout (column)."""
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource, Div, HoverTool

    from liqlab.errors import ParameterError

    if mapping not in MAPPINGS:
        raise ParameterError(f"mapping: must be one of {list(MAPPINGS)}, got {mapping!r}")
    if layers not in ("blend", "long", "short"):
        raise ParameterError(f"layers: must be one of ['blend', 'long', 'short'], got {layers!r}")
    view = prepare(hm, data, max_cells)
    hm = view.hm
    vmax = float(vmax) if vmax is not None else default_scale(view.long, view.short)
    images, tick_pos, tick_val = _colouring(view.long, view.short, mapping, layers, vmax)
    edges = np.asarray(hm.edges, dtype=np.float64)
    src = ColumnDataSource({"image": images["image"], "long": [view.long], "short": [view.short],
                            **_image_geometry(view, edges)}, name="heatmap")
    grid = ColumnDataSource({"tick_pos": [tick_pos], "tick_val": [tick_val]}, name="grid")
    fig = _main_figure(view, hm, width, height)
    r = fig.image_rgba("image", x="x", y="y", dw="dw", dh="dh", source=src)
    fig.add_tools(HoverTool(renderers=[r], tooltips=[("time", "$x{%F %H:%M}"), ("price", "$y{0,0.00}"),
                                                     ("long", "@long{$0,0}"), ("short", "@short{$0,0}")],
                            formatters={"$x": "datetime"}))
    _colour_bars(fig, [float(x) for x in tick_pos], palettes(), grid, src)
    line, bars = _price_data(view, hm, data)
    _price_glyphs(fig, ColumnDataSource(line, name="price_line"),
                  ColumnDataSource(bars, name="price") if bars is not None else None)
    ev = liquidation_events(data, view.times_ms, view.step_hours, _active_venues(hm))
    _events_glyph(fig, ColumnDataSource(ev, name="liquidations") if ev is not None else None)
    weights = np.asarray(hm.weights, dtype=np.float64)
    head = Div(text=_title_html(hm, view, _active_venues(hm), weights), name="title")
    parts = [head, fig]
    if view.note:
        parts.append(Div(text=f"<i>{view.note}</i>", name="note"))
    return column(*parts)


#: The explorer's named sources in the order :func:`update_explorer` replaces them (``replay`` last: its
#: change makes the page drop its JS state).
SOURCES: tuple[str, ...] = ("grid", "profile", "clusters", "price", "price_line", "liquidations", "heatmap", "replay")


def _lev_name(lv: float) -> str:
    """Name of the weight slider of leverage ``lv`` (``lev_<L>``)."""
    return f"lev_{lv:g}"


@dataclass(frozen=True)
class ExplorerState:
    """Everything of an explorer page that follows its heatmap: :func:`explorer` builds its models from
    it and :func:`update_explorer` copies it into a live page (one source of truth for both).

    ``sources``: ColumnDataSource data by model name (every name of :data:`SOURCES` except ``price``
    and ``liquidations`` when ``data`` gives no candles / no realized liquidations); ``heatmap`` holds
    the (price bin × snapshot) float32 USD maps and their RGBA images. ``controls``: model properties
    by model name, in the order they are set — ``half_life`` (hours), ``time`` (snapshot index) and
    ``lev_<L>`` (start, end, value), ``leverage_preset`` (value), ``venue_<name>`` (active),
    ``time_marker`` / ``close_marker`` (location: ms / USD). ``texts``: HTML or text of ``title``,
    ``note`` and ``profile_title``. ``mapping``, ``layers``, ``vmax`` (USD): the colour choices the
    images and the colour-bar ticks were made with. ``view``: the fitted view (``view.hm`` is shown).
    Read-only: the models built from it share its arrays.
    """

    view: View
    sources: dict[str, dict[str, Any]]
    controls: dict[str, dict[str, Any]]
    texts: dict[str, str]
    mapping: str
    layers: str
    vmax: float

    @property
    def colours(self) -> dict[str, Any]:
        """The colour choices of ``sources['heatmap']`` as keywords: mapping, layers, vmax (USD)."""
        return {"mapping": self.mapping, "layers": self.layers, "vmax": self.vmax}


def page_colours(models: Mapping[str, Any]) -> dict[str, Any]:
    """The colour choices an explorer page shows now, from its named models (name → model), as
    :func:`explorer_state` keywords: mapping, layers, vmax (USD; the ``colour_max`` slider is log10)."""
    return {"mapping": models["colour_mapping"].value, "layers": LAYERS[models["layers"].active],
            "vmax": 10.0 ** float(models["colour_max"].value)}


def explorer_state(hm, data=None, *, mapping: str = MAPPINGS[0], layers: str = LAYERS[0], vmax: float | None = None,
                   max_cells: int = MAX_CELLS, time_index: int | None = None, note: str = "") -> ExplorerState:
    """What the explorer of ``hm`` shows (no Bokeh models: cheap, and safe to build off the document's
    thread). Arguments as :func:`explorer`: ``vmax`` (USD) defaults to :func:`default_scale` of the
    fitted maps, ``time_index`` (shown snapshot) to the latest, ``note`` is appended to the cell-cap note."""
    from liqlab.errors import ParameterError
    from liqlab.engine.params import LEVERAGE_PRESETS, preset_weights

    if mapping not in MAPPINGS:
        raise ParameterError(f"mapping: must be one of {list(MAPPINGS)}, got {mapping!r}")
    if layers not in LAYERS:
        raise ParameterError(f"layers: must be one of {list(LAYERS)}, got {layers!r}")
    if "relative_window" in _meta(hm):
        raise ParameterError("hm: the explorer re-runs USD heatmaps; build it from the USD heatmap, not hm.relative()")
    view = prepare(hm, data, max_cells)
    hm = view.hm
    params = hm.params
    edges = np.asarray(hm.edges, dtype=np.float64)
    prices = np.asarray(hm.prices, dtype=np.float64)
    leverages = np.asarray(hm.leverages, dtype=np.float64)
    weights = np.asarray(hm.weights, dtype=np.float64)
    active = _active_venues(hm)
    B, To = view.long.shape
    T = int(np.asarray(hm.long).shape[0])
    vmax = float(vmax) if vmax is not None else default_scale(view.long, view.short)
    images, tick_pos, tick_val = _colouring(view.long, view.short, mapping, layers, vmax)
    ti = To - 1 if time_index is None else int(np.clip(time_index, 0, To - 1))
    j = view.offset + ti * view.stride   # the shown snapshot's step of hm
    pal = palettes()
    meta = _meta(hm)

    sources: dict[str, dict[str, Any]] = {}
    sources["grid"] = {
        "n_steps": [T], "n_bins": [B], "n_lev": [len(leverages)], "stride": [view.stride],
        "step_hours": [float(params.step_hours)], "times": [view.times_ms], "prices": [prices], "edges": [edges],
        "close": [view.close], "leverages": [leverages], "half_life_exponent": [float(params.half_life_exponent)],
        "oi_decrease": [str(params.oi_decrease)],
        "max_age_steps": [_max_age_steps(params)], "n_colours": [N_COLOURS], "log_range": [LOG_RANGE],
        "palette_long": [pal["long_u32"]], "palette_short": [pal["short_u32"]],
        "agreement_threshold": [float(getattr(params, "agreement_threshold", 0.25))],
        "agreement_window_bins": [int(getattr(params, "agreement_window_bins", 1))],
        "symbol": [str(meta.get("symbol", ""))], "synthetic": [bool(meta.get("synthetic", False))],
        "param_text": [_param_text(hm, view)], "tick_pos": [tick_pos], "tick_val": [tick_val],
        "preset_names": [list(LEVERAGE_PRESETS)],
        "preset_weights": [np.concatenate([preset_weights(n, leverages) for n in LEVERAGE_PRESETS])],
    }
    sources["profile"] = {"price": prices, "height": np.diff(edges) * 0.9,
                          "long": view.long[:, ti].astype(np.float64), "short": view.short[:, ti].astype(np.float64)}
    cl = hm.top_clusters(j, n=10)
    cl_price = cl["price"].to_numpy(np.float64)
    sources["clusters"] = {
        "price": cl_price, "side": cl["side"].to_numpy(dtype=object),
        "notional": cl["notional"].to_numpy(np.float64), "distance_pct": cl["distance_pct"].to_numpy(np.float64),
        "age_hours": cl["age_hours"].to_numpy(np.float64),
        "venues": np.array([_agree_text(hm, j, int(b)) for b in np.searchsorted(edges, cl_price) - 1], dtype=object),
    }
    line, bars = _price_data(view, hm, data)
    if bars is not None:
        sources["price"] = bars
    sources["price_line"] = line
    ev = liquidation_events(data, view.times_ms, view.step_hours, active)
    if ev is not None:
        sources["liquidations"] = ev
    sources["heatmap"] = {**images, "long": [view.long], "short": [view.short], **_image_geometry(view, edges),
                          "h_time": [0], "h_price": [0], "h_age": [0], "h_venues": [0]}
    sources["replay"] = replay_payload(hm.replay)

    hl = float(params.half_life_hours)
    hl = hl if math.isfinite(hl) else 0.0   # the slider's 0 = no decay
    controls: dict[str, dict[str, Any]] = {
        "half_life": {"start": 0.0, "end": max(720.0, hl), "value": hl},
        "time": {"start": 0, "end": max(To - 1, 1), "value": ti},
        "leverage_preset": {"value": params.leverage_preset if params.leverage_weights is None else "custom"},
        **{f"venue_{v}": {"active": v in active} for v in _venue_names(hm)},
        **{_lev_name(lv): {"start": 0.0, "end": 1.0, "value": float(w)} for lv, w in zip(leverages, weights)},
        "time_marker": {"location": float(view.times_ms[ti])},
        "close_marker": {"location": float(view.close[ti])},
    }
    notes = " · ".join(x for x in (view.note, note) if x)
    texts = {"title": _title_html(hm, view, active, weights), "note": f"<i>{notes}</i>" if notes else "",
             "profile_title": f"profile {_fmt_ms(view.times_ms[ti])}"}
    return ExplorerState(view=view, sources=sources, controls=controls, texts=texts, mapping=mapping, layers=layers,
                         vmax=vmax)


def explorer(hm, data=None, *, mapping: str = MAPPINGS[0], layers: str = LAYERS[0], width: int = 900,
             height: int = 520, vmax: float | None = None, max_cells: int = MAX_CELLS, time_index: int | None = None,
             note: str = ""):
    """The interactive explorer (works without a kernel: all controls are CustomJS).

    Named models: sliders ``half_life`` (hours, 0 = no decay) and ``lev_<L>`` (raw weights, normalised
    to sum 1), toggles ``venue_<name>``, select ``colour_mapping``, radio ``layers``, slider
    ``colour_max`` (log10 USD), slider ``time`` (snapshot index); sources ``heatmap`` (image, image2,
    long, short: (price bin × snapshot) float32 USD), ``replay``, ``grid``, ``profile``, ``clusters``,
    ``price`` (candles), ``liquidations``. ``data`` (Dataset/Collection/path) adds candles and realized
    liquidations and lets the cell cap rebuild at a coarser time step. Everything that follows the
    heatmap comes from :func:`explorer_state`. Returns a Bokeh layout.
    """
    from bokeh.layouts import column, row
    from bokeh.models import (
        ColumnDataSource, CustomJS, CustomJSHover, DataTable, Div, HoverTool, NumberFormatter, RadioButtonGroup,
        Select, Slider, Span, TableColumn, Toggle,
    )
    from bokeh.plotting import figure

    from liqlab.engine.params import LEVERAGE_PRESETS

    st = explorer_state(hm, data, mapping=mapping, layers=layers, vmax=vmax, max_cells=max_cells,
                        time_index=time_index, note=note)
    view, c = st.view, st.controls
    hm = view.hm
    edges = np.asarray(hm.edges, dtype=np.float64)
    src = {nm: ColumnDataSource(d, name=nm) for nm, d in st.sources.items()}
    heatmap_src, replay_src, grid_src = src["heatmap"], src["replay"], src["grid"]
    profile_src, clusters_src = src["profile"], src["clusters"]

    # ---- main figure(s)
    fig = _main_figure(view, hm, width, height)
    fig.name = "main"
    rimg = fig.image_rgba("image", x="x", y="y", dw="dw", dh="dh", source=heatmap_src)
    rimg.name = "heatmap_image"
    fig2 = _main_figure(view, hm, width, height, title="short liquidations (side by side)",
                        x_range=fig.x_range, y_range=fig.y_range)
    fig2.name = "main_short"
    rimg2 = fig2.image_rgba("image2", x="x", y="y", dw="dw", dh="dh", source=heatmap_src)
    rimg2.name = "heatmap_image_short"
    fig2.visible = st.layers == "side by side"
    pal = palettes()
    cbars = _colour_bars(fig, [float(x) for x in st.sources["grid"]["tick_pos"][0]], pal, grid_src, heatmap_src)
    candles, line = _price_glyphs(fig, src["price_line"], src.get("price"))
    _price_glyphs(fig2, src["price_line"], src.get("price"))   # the same sources: one update serves both panels
    _events_glyph(fig, src.get("liquidations"))
    tspan = Span(dimension="height", line_color="#ffd54f", line_dash="dashed", line_width=1, name="time_marker",
                 **c["time_marker"])
    fig.add_layout(tspan)

    # ---- controls
    half_life = Slider(name="half_life", title="half-life, hours (0 = no decay)", step=1.0, width=220,
                       **c["half_life"])
    levs = [Slider(name=_lev_name(lv), title=f"weight {lv:g}x", step=0.01, width=220, format="0.00",
                   **c[_lev_name(lv)]) for lv in st.sources["grid"]["leverages"][0]]
    toggles = [Toggle(name=f"venue_{v}", label=v, button_type="primary", width=220, **c[f"venue_{v}"])
               for v in st.sources["replay"]["venue"]]
    preset_sel = Select(name="leverage_preset", title="leverage preset (sets the weights)",
                        options=[*LEVERAGE_PRESETS, "custom"], width=220, **c["leverage_preset"])
    mapping_sel = Select(name="colour_mapping", title="colour mapping (fixed USD scale)", value=st.mapping,
                         options=list(MAPPINGS), width=220)
    layers_btn = RadioButtonGroup(name="layers", labels=list(LAYERS), active=LAYERS.index(st.layers), width=220)
    lg = math.log10(st.vmax)
    scale = Slider(name="colour_max", title="colour scale max, log10 USD", start=round(lg - 3, 2),
                   end=round(lg + 2, 2), step=0.05, value=lg, width=220)
    time_sl = Slider(name="time", title="profile snapshot (index, latest = right)", step=1, width=220, **c["time"])
    title = Div(text=st.texts["title"], name="title", width=width + 300)

    # ---- side panel
    prof = figure(width=260, height=height, y_range=fig.y_range, y_axis_type="log" if _is_log_grid(edges) else "linear",
                  title=st.texts["profile_title"], tools="pan,wheel_zoom,reset", x_axis_label="USD",
                  name="profile_figure")
    prof.title.name = "profile_title"
    prof.hbar(y="price", height="height", right="long", left=0, source=profile_src, color="#2f8cf0", legend_label="long")
    prof.hbar(y="price", height="height", right="short", left=0, source=profile_src, color="#f0452f", legend_label="short")
    prof.xaxis.formatter = _usd_axis()
    prof.xaxis.ticker.desired_num_ticks = 3
    prof.yaxis.visible = False
    prof.legend.location = "top_right"
    prof.legend.label_text_font_size = "9px"
    pspan = Span(dimension="width", line_color="#333333", line_dash="dotted", name="close_marker", **c["close_marker"])
    prof.add_layout(pspan)
    table = DataTable(source=clusters_src, name="clusters_table", width=width, height=260, index_position=None, columns=[
        TableColumn(field="price", title="price", formatter=NumberFormatter(format="0,0.00"), width=90),
        TableColumn(field="side", title="side", width=50),
        TableColumn(field="notional", title="notional (USD)", formatter=NumberFormatter(format="$0,0"), width=120),
        TableColumn(field="distance_pct", title="distance %", formatter=NumberFormatter(format="+0.00"), width=70),
        TableColumn(field="age_hours", title="age (h)", formatter=NumberFormatter(format="0.0"), width=60),
        TableColumn(field="venues", title="venues agreeing", width=230),
    ])

    # ---- callbacks (one CustomJS shared by every control: the library is in the page once)
    args = dict(heatmap=heatmap_src, replay=replay_src, grid=grid_src, profile=profile_src, clusters=clusters_src,
                half_life=half_life, levs=levs, preset=preset_sel, venue_toggles=toggles, mapping=mapping_sel,
                layers=layers_btn,
                scale=scale, time=time_sl, title=title, cbars=cbars, fig2=fig2, tspan=tspan, pspan=pspan,
                ptitle=prof.title)
    main_cb = CustomJS(args=args, code=_ctx_code(args, """
let ev = "params";
if (cb_obj === time) ev = "time";
else if (cb_obj === mapping || cb_obj === scale || cb_obj === layers) ev = "colour";
else if (cb_obj === replay || cb_obj === grid) ev = "external";
else if (cb_obj === preset) ev = "preset";
liqlab_explorer.handle(ctx, ev);
"""))
    half_life.js_on_change("value", main_cb)
    for s in levs:
        s.js_on_change("value", main_cb)
    for t in toggles:
        t.js_on_change("active", main_cb)
    mapping_sel.js_on_change("value", main_cb)
    preset_sel.js_on_change("value", main_cb)
    layers_btn.js_on_change("active", main_cb)
    scale.js_on_change("value", main_cb)
    time_sl.js_on_change("value", main_cb)
    replay_src.js_on_change("data", main_cb)
    fig.js_on_event("tap", CustomJS(args=dict(time=time_sl, grid=grid_src), code="""
const t = grid.data.times[0], n = t.length, step = n > 1 ? t[1] - t[0] : 1;
let i = Math.floor((cb_obj.x - t[0]) / step);
time.value = Math.max(0, Math.min(n - 1, i));
"""))
    if candles:
        fig.x_range.js_on_change("end", CustomJS(args=dict(candles=candles, line=line, grid=grid_src, limit=CANDLE_LIMIT), code="""
const t = grid.data.times[0], step = t.length > 1 ? t[1] - t[0] : 1;
const n = (cb_obj.end - cb_obj.start) / step, few = n <= limit;
for (const r of candles) if (r.visible !== few) r.visible = few;
if (line.visible === few) line.visible = !few;
"""))
    hover_args = dict(args)
    fmt = {k: CustomJSHover(args=hover_args, name=f"hover_{k}",
                            code=_ctx_code(hover_args, f"return liqlab_explorer.hover(ctx, '{k}', special_vars);"))
           for k in ("time", "price", "age", "venues")}
    # Bokeh allows one formatter per field: one per-image scalar column per custom hover row.
    tooltips = [("time", "@h_time{custom}"), ("price", "@h_price{custom}"), ("long", "@long{$0,0}"),
                ("short", "@short{$0,0}"), ("age (notional-weighted)", "@h_age{custom}"),
                ("venues agreeing", "@h_venues{custom}")]
    fig.add_tools(HoverTool(renderers=[rimg], tooltips=tooltips, formatters={f"@h_{k}": f for k, f in fmt.items()}))
    fig2.add_tools(HoverTool(renderers=[rimg2], tooltips=tooltips, formatters={f"@h_{k}": f for k, f in fmt.items()}))

    controls = column(
        Div(text="<b>controls</b> (recomputed in the browser)"), half_life, preset_sel, *levs,
        Div(text="<b>venues</b>"), *toggles, mapping_sel, layers_btn, scale, time_sl, width=240,
    )
    parts = [title, row(controls, column(fig, fig2, table), prof)]
    parts.append(Div(text=st.texts["note"], name="note", width=width + 300))
    return column(*parts, name="liqlab_explorer")


def _fmt_ms(ms: float) -> str:
    import pandas as pd

    return pd.Timestamp(int(ms), unit="ms", tz="UTC").strftime("%m-%d %H:%M UTC")


def _usd_axis():
    from bokeh.models import NumeralTickFormatter

    return NumeralTickFormatter(format="$0a")


# ------------------------------------------------------------------------------------------ saving


def explorer_html(hm, data=None, *, title: str | None = None, **kw) -> str:
    """The explorer as one self-contained HTML page (BokehJS inline, no CDN, no server).

    The note on the plot states the file size (a placeholder in the note is filled in after rendering)."""
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    meta = _meta(hm)
    page_title = title or f"liqlab heatmap {meta.get('symbol', '')}{' (SYNTHETIC)' if meta.get('synthetic') else ''}"
    note = kw.pop("note", "")
    token = "@@LIQLAB_FILE_MB@@"
    size_note = f"file size {token} MB (BokehJS inline, opens offline)"
    layout = explorer(hm, data, note=" · ".join(x for x in (note, size_note) if x), **kw)
    html = file_html(layout, resources=INLINE, title=page_title)
    if html.count(token) != 1:  # pragma: no cover - the note is serialised once
        return html.replace(token, "?")
    mb = (len(html.encode("utf-8")) - len(token)) / 1e6
    return html.replace(token, f"{mb:.1f}")


def save_explorer(hm, path: str | os.PathLike, data=None, **kw) -> Path:
    """Write the explorer as a standalone HTML file (inline resources), atomically. Returns the path."""
    from liqlab.io import atomic

    path = Path(path)
    atomic.write_text(path, explorer_html(hm, data, **kw))
    return path


def update_explorer(layout, state: ExplorerState, *, models: Mapping[str, Any] | None = None) -> None:
    """Show ``state`` (:func:`explorer_state` of a new heatmap of the same leverage set and venues; the
    grid and time range may change) in an explorer built by :func:`explorer`, in place (e.g. from
    ipywidgets through jupyter_bokeh). Build the state off the document's thread (e.g. in a worker):
    only the copying happens here.

    The page keeps its colour choices (mapping, layers, USD scale): a state made with other choices is
    recoloured with them, so the page then shows what ``explorer(hm, data, mapping=, layers=, vmax=)``
    with the page's choices would. Sources are replaced first, ``replay`` last (its change makes the
    page drop its JS state), then the controls (half-life, time, preset, venues, leverage weights, the
    time and close markers), then the texts (title, note, profile title). ``models``: the layout's
    named models (name → model) if the caller keeps them; default: one walk of ``layout``."""
    from liqlab.errors import ParameterError

    # one walk of the model graph (select_one walks all of it on every call)
    olds = models if models is not None else {m.name: m for m in layout.references() if getattr(m, "name", None)}
    want = [float(x) for x in np.asarray(state.sources["grid"]["leverages"][0], dtype=np.float64)]
    have = [float(x) for x in np.asarray(olds["grid"].data["leverages"][0], dtype=np.float64)]
    if want != have:  # the lev_<L> sliders are wired to the layers in this order
        raise ParameterError(f"leverages: the explorer has sliders for {have}, the new heatmap needs {want}; "
                             "build a new explorer for a new leverage set")
    sources = state.sources
    page = page_colours(olds)
    if page != state.colours:  # the page's colour choices (fixed USD scale) applied to the new map
        hd = sources["heatmap"]
        images, pos, val = _colouring(hd["long"][0], hd["short"][0], **page)
        sources = {**sources, "heatmap": {**hd, **images},
                   "grid": {**sources["grid"], "tick_pos": [pos], "tick_val": [val]}}
    for nm in SOURCES:
        old, new = olds.get(nm), sources.get(nm)
        if old is not None and new is not None:
            old.data = dict(new)
    ticks = [float(x) for x in sources["grid"]["tick_pos"][0]]
    for side in ("long", "short"):
        cb = olds.get(f"colourbar_{side}")
        if cb is not None:
            cb.ticker.ticks = ticks
    for nm, props in state.controls.items():
        old = olds.get(nm)
        if old is not None:
            old.update(**props)
    for nm, text in state.texts.items():
        old = olds.get(nm)
        if old is not None:
            old.text = text
