"""Appending to a built map: ``Heatmap.extend(new_data)`` computes only the steps new data can change.

The contract (docs/ENGINE.md, "Appending to a map"): ``build_heatmap(data, p, extendable=True).extend(new)``
gives the same arrays, array for array, as ``build_heatmap(data ∪ new, p)``. How:

- The *frontier* f is the first step that rows arriving later (each table's new rows are later than its
  last stored row) can change: the step of the last bar, of the last open-interest row and (with funding
  drift) of the last funding payment, over the venues. Steps before f are final.
- An append re-runs the fine pass on a window of each venue's arrays that holds steps ≥ f and the rows
  before them that their intervals read (:func:`liqlab.engine.fine.fine_window`), continuing the running
  sums that span the history (off-grid USD, Σ log OI factors, funding drift, taker volume) from the
  values saved at f, and re-runs the step recursion from the state saved at the end of step f − 1
  (:func:`liqlab.engine.kernel.run_window`). It saves the new frontier's sums and state on the way.
- Everything per snapshot (weighted maps, layer sums, agreement with its per-snapshot maximum, the
  reference close) is recomputed for steps ≥ f only; totals are continued in the order a build adds them.
- The price grid is global: when the union's grid differs from the map's (a price beyond the traded
  range the grid was laid on, or a new median for default USD bins), or a venue skipped for too little
  data becomes buildable, the append rebuilds from the stored arrays (``hm.live.info['rebuilt']``).

The map's arrays live in buffers with spare rows: an append writes rows ≥ f in place, so the map it was
called on sees its open steps change, and only the newest map of a chain may be extended.
Times int64 ns UTC; maps time × price (T, B) USD; layers (K, T, B).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liqlab.errors import ParameterError
from liqlab.engine.inputs import StepInputs, VenueSteps

__all__ = ["build_extendable", "extend"]

#: Step arrays of VenueSteps spliced at the frontier.
_STEP_FIELDS = ("lo", "hi", "g", "rm_long", "rm_short", "shift", "volume_usd", "close")
#: Bar columns kept per venue (taker and mark when the data has them).
_BAR_COLS = ("ts", "open", "high", "low", "close", "volume", "taker", "mark")
_SIDES = ("long", "short")


class _Grow:
    """A growable array along axis ``axis``: ``view(n)`` is the first n rows; spare rows avoid copies."""

    def __init__(self, arr: np.ndarray, axis: int = 0, spare: int = 0):
        shape = list(arr.shape)
        n = shape[axis]
        shape[axis] = n + spare
        self.buf = np.empty(shape, arr.dtype)
        self.axis = axis
        self.n = 0
        self.put(0, arr)

    def _sl(self, a: int, b: int):
        return (slice(None),) * self.axis + (slice(a, b),)

    def put(self, at: int, arr: np.ndarray) -> None:
        """Rows ``at``.. become ``arr`` (later rows are dropped)."""
        n = at + arr.shape[self.axis]
        if n > self.buf.shape[self.axis]:
            shape = list(self.buf.shape)
            shape[self.axis] = max(2 * shape[self.axis], n + 64)
            new = np.empty(shape, self.buf.dtype)
            new[self._sl(0, at)] = self.buf[self._sl(0, at)]
            self.buf = new
        self.buf[self._sl(at, n)] = arr
        self.n = n

    def view(self, n: int | None = None) -> np.ndarray:
        return self.buf[self._sl(0, self.n if n is None else n)]


@dataclass(eq=False)
class _VenueState:
    """One venue's stored arrays, the sums and recursion state at the frontier, and its step inputs."""

    ds: Any                          # the Dataset's metadata and tiers (tables empty)
    cols: dict[str, _Grow]           # bar, OI and funding columns
    lp: Any = None                   # LPCoefficients (linear contracts: data-independent)
    carry: Any = None                # FineCarry at the frontier
    X: dict = field(default_factory=dict)       # side -> (K, B) float64 at the end of step f − 1
    phi: dict = field(default_factory=dict)     # side -> (K, T) highest-leverage factors
    dep: dict = field(default_factory=dict)     # side -> (K,) deposited USD of steps < f, per layer
    csr: dict = field(default_factory=dict)     # side -> [ptr (T+1,), _Grow k, _Grow b, _Grow v]
    steps: dict = field(default_factory=dict)   # _STEP_FIELDS -> (T,)
    vs: VenueSteps | None = None
    notes: dict = field(default_factory=dict)
    diffs: tuple = (np.zeros(0, np.int64), np.zeros(0, np.int64))   # bar spacings (ns) and their counts

    def col(self, name: str) -> np.ndarray | None:
        g = self.cols.get(name)
        return None if g is None else g.view()


@dataclass(eq=False)
class _State:
    """The map's shared state; ``generation`` names the newest map of the chain."""

    params: Any
    coll: Any                        # Collection of the light datasets (metadata)
    venues: dict[str, _VenueState]
    skipped: dict[str, str]          # venue -> note, for venues with too little data
    use_numba: bool | None
    grid: Any = None
    frontier: int = 0
    out: dict = field(default_factory=dict)     # output buffers
    generation: int = 0


@dataclass(frozen=True, eq=False)
class Live:
    """``Heatmap.live``: the state an extendable map appends with, which map of the chain this is, and
    ``info`` of the last append: ``frontier_step``, ``steps_recomputed``, ``rebuilt`` (the grid or the
    venue set changed, so every step was recomputed)."""

    state: _State
    generation: int
    info: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------------- public


def build_extendable(data, params=None, *, use_numba: bool | None = None, **overrides):
    """``build_heatmap`` that keeps what :func:`extend` needs (the data's arrays, the frontier state).

    Parameters
    ----------
    data : Dataset, Collection, str or os.PathLike
        The market data (linear contracts).
    params : HeatmapParams or dict, optional
        The engine's parameters.
    use_numba : bool or None
        As for :func:`~liqlab.engine.heatmap.build_heatmap`.
    **overrides
        Single parameter fields.

    Returns
    -------
    Heatmap
        The arrays ``build_heatmap`` gives, with ``live`` set.
    """
    from liqlab.engine import build
    from liqlab.engine.fine import venue_arrays
    from liqlab.engine.params import HeatmapParams
    from liqlab.io.dataset import Collection, as_collection

    p = HeatmapParams.coerce(params, **overrides)
    coll = build.select(as_collection(data), p)
    venues, skipped, light = {}, {}, []
    for ds in coll:
        if ds.meta.get("kind") == "inverse":
            raise ParameterError(f"extend: {ds.venue} is an inverse contract (its liquidation prices depend on the "
                                 f"median price of the whole history); build it with build_heatmap")
        empty = {n: (df.iloc[:0] if df is not None else None) for n, df in
                 (("ohlcv", ds.ohlcv), ("open_interest", ds.open_interest), ("funding", ds.funding))}
        lds = dataclasses.replace(ds, liquidations=None, **empty)
        light.append(lds)
        va = venue_arrays(ds)
        cols = {c: _Grow(getattr(va, c), spare=4096) for c in _BAR_COLS if getattr(va, c) is not None}
        cols.update({c: _Grow(getattr(va, c), spare=1024) for c in ("oi_ts", "oi", "oi_value", "funding_ts",
                                                                     "funding_rate")})
        venues[ds.venue] = _VenueState(ds=lds, cols=cols, diffs=_count(np.diff(va.ts)))
    state = _State(params=p, coll=Collection(datasets=tuple(light), path=coll.path), venues=venues, skipped=skipped,
                   use_numba=use_numba)
    return _advance(state, rebuilt=False)


def extend(hm, new_data):
    """The map with new data appended; the same arrays as a full build on the union of the data.

    Parameters
    ----------
    hm : Heatmap
        The newest map of a chain started by ``build_heatmap(..., extendable=True)``.
    new_data : Dataset, Collection, str or os.PathLike
        Rows that arrived since, per venue of the map (more venues are refused). Rows at or before a
        table's last stored time are skipped: they are the rows the map holds (a recorder only appends).

    Returns
    -------
    Heatmap
        ``live.info``: frontier step, steps recomputed, whether the grid forced a rebuild.
    """
    from liqlab.engine import build
    from liqlab.engine.fine import venue_arrays
    from liqlab.io.dataset import as_collection

    live = getattr(hm, "live", None)
    if live is None:
        raise ParameterError("extend: this map keeps no extension state; build it with "
                             "build_heatmap(..., extendable=True)")
    if "relative_window" in hm.meta:
        raise ParameterError("extend: a relative map cannot be extended; extend the USD map, then call .relative()")
    st = live.state
    if live.generation != st.generation:
        raise ParameterError("extend: this map was extended already; extend the newest map of the chain")
    new = build.select(as_collection(new_data), st.params)
    for ds in new:
        if ds.venue not in st.venues:
            raise ParameterError(f"extend: venue {ds.venue!r} is not in this map ({', '.join(st.venues)}); rebuild")
        _append(st.venues[ds.venue], venue_arrays(ds))
    return _advance(st, rebuilt=False)


# --------------------------------------------------------------------------------------- the data


def _count(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u, c = np.unique(d, return_counts=True)
    return u.astype(np.int64), c.astype(np.int64)


def _append(v: _VenueState, va) -> None:
    """Append a venue's rows later than its stored ones (per table)."""
    ts = v.col("ts")
    last = ts[-1] if len(ts) else np.iinfo(np.int64).min
    k = int(np.searchsorted(va.ts, last, "right"))
    if k < len(va.ts):
        new_ts = va.ts[k:]
        for c in _BAR_COLS:
            arr = getattr(va, c)
            if c in v.cols:
                if arr is None:
                    raise ParameterError(f"extend: {va.venue}: new bars lack the column {c!r} the map's bars have")
                v.cols[c].put(v.cols[c].n, arr[k:])
        u, n = _count(np.diff(np.r_[ts[-1:], new_ts]))
        vals = np.r_[v.diffs[0], u]
        cnt = np.r_[v.diffs[1], n]
        uu, inv = np.unique(vals, return_inverse=True)
        v.diffs = (uu, np.bincount(inv, weights=cnt).astype(np.int64))
    for tcol, vcols in (("oi_ts", ("oi", "oi_value")), ("funding_ts", ("funding_rate",))):
        old, t_new = v.col(tcol), getattr(va, tcol)
        k = int(np.searchsorted(t_new, old[-1], "right")) if len(old) else 0
        if k < len(t_new):
            for c in (tcol, *vcols):
                v.cols[c].put(v.cols[c].n, getattr(va, c)[k:])


def _median_spacing(diffs: tuple[np.ndarray, np.ndarray]) -> int:
    """``int(np.median(spacings))`` from the spacings' counts (the same number, without the array)."""
    u, c = diffs
    n = int(c.sum())
    cum = np.cumsum(c)
    hi = u[int(np.searchsorted(cum, n // 2 + 1, "left"))]
    if n % 2:
        return int(np.float64(hi))
    lo = u[int(np.searchsorted(cum, n // 2, "left"))]
    return int((np.float64(lo) + np.float64(hi)) / 2.0)


def _window(v: _VenueState, t0: int, step_ns: int, f: int, funding: bool, taker: bool):
    """The rows of one venue a fine-pass window from step f needs (views), and the bar sums before it
    (only with ``taker``: the taker side split is their one reader)."""
    from liqlab.engine.fine import VenueArrays

    ts, oi_ts, f_ts = v.col("ts"), v.col("oi_ts"), v.col("funding_ts")
    start = t0 + f * step_ns
    ir = int(np.searchsorted(ts, t0, "left"))
    i0 = min(int(np.searchsorted(ts, start, "left")), len(ts) - 1)
    kr = int(np.searchsorted(oi_ts, t0, "left"))
    k0 = max(int(np.searchsorted(oi_ts, start, "right")) - 1, kr)
    if k0 < len(oi_ts):                                   # the bar before the first interval's start
        i0 = min(i0, int(np.searchsorted(ts, oi_ts[k0], "left")) - 1)
    m0 = int(np.searchsorted(f_ts, start, "left"))
    if funding and m0 < len(f_ts):                        # the bar a funding payment is priced with
        i0 = min(i0, int(np.searchsorted(ts, f_ts[m0], "right")) - 1)
    i0 = max(i0, ir)
    sums = {}
    for c in ("volume", "taker"):
        x = v.col(c)
        sums[c] = float(np.cumsum(x[ir:i0])[-1]) if taker and x is not None and i0 > ir else 0.0
    cut = {c: v.col(c)[i0:] if c in v.cols else None for c in _BAR_COLS}
    va = VenueArrays(venue=v.ds.venue, oi_ts=oi_ts[k0:], oi=v.col("oi")[k0:], oi_value=v.col("oi_value")[k0:],
                     funding_ts=f_ts[m0:],
                     funding_rate=v.col("funding_rate")[m0:], **cut)
    return va, sums


# ---------------------------------------------------------------------------------- grid, frontier


def _grid(st: _State):
    """The grid a build on the stored arrays lays (as :func:`liqlab.engine.build.shared_grid`)."""
    from liqlab._util import utc
    from liqlab.engine.build import Grid
    from liqlab.engine.grid import make_grid

    p = st.params
    step_ns = int(round(p.step_hours * 3600e9))
    firsts, lasts, lows, highs, closes = [], [], [], [], []
    for v in st.venues.values():
        ts = v.col("ts")
        if len(ts) == 0:
            continue
        firsts.append(ts[0])
        lasts.append(ts[-1] + (_median_spacing(v.diffs) if len(ts) > 1 else step_ns))
        lo, hi = v.col("low"), v.col("high")
        if p.clearing == "mark" and "mark" in v.cols:
            lo, hi = np.minimum(lo, v.col("mark")), np.maximum(hi, v.col("mark"))
        lows.append(lo.min())
        highs.append(hi.max())
        closes.append(v.col("close"))
    t_first = utc(p.start).value if p.start is not None else min(firsts)
    t0 = (t_first // step_ns) * step_ns
    t_last = utc(p.end).value if p.end is not None else max(lasts)
    T = int(-(-(t_last - t0) // step_ns))
    median = float(np.median(np.concatenate(closes))) if p.bin_unit == "usd" else 0.0
    edges, bw = make_grid(min(lows), max(highs), median, p)
    return Grid(t0=t0, step_ns=step_ns, T=T, edges=edges, bin_width=bw, n_venues=len(firsts))


def _frontier(st: _State, grid, built: list[str]) -> int:
    """The first step later rows can change: the step of each venue's last bar, last OI row and (with
    funding drift) last funding payment in range, the earliest over the venues."""
    t0, dt, T = grid.t0, grid.step_ns, grid.T
    end = t0 + T * dt
    f = T - 1
    for name in built:
        v = st.venues[name]
        ts = v.col("ts")
        i = int(np.searchsorted(ts, end, "left")) - 1
        if i >= 0:
            f = min(f, int((ts[i] - t0) // dt))
        oi_ts = v.col("oi_ts")
        i = int(np.searchsorted(oi_ts, end, "right")) - 1
        if i >= 0 and oi_ts[i] >= t0:
            f = min(f, int(-(-(oi_ts[i] - t0) // dt)) - 1)
        f_ts = v.col("funding_ts")
        i = int(np.searchsorted(f_ts, end, "left")) - 1
        if st.params.funding_drift and i >= 0 and f_ts[i] >= t0:
            f = min(f, int((f_ts[i] - t0) // dt))
    return max(f, 0)


def _buildable(st: _State) -> list[str]:
    """Venues a build builds (bars and at least two OI rows), in collection order; notes for the others."""
    built = []
    st.skipped = {}
    for name, v in st.venues.items():
        n_b, n_oi = len(v.col("ts")), len(v.col("oi_ts"))
        if n_b == 0 or n_oi < 2:
            st.skipped[f"{name}/skipped"] = (f"{name}: too little data in range (bars {n_b}, OI rows {n_oi}); skipped")
        else:
            built.append(name)
    return built


# ------------------------------------------------------------------------------------------ advance


def _advance(st: _State, *, rebuilt: bool):
    """Recompute the steps from the frontier on, save the new frontier's state, return the map."""
    from liqlab.engine.build import build_meta, no_usable_venue, oi_source_note

    built = _buildable(st)
    if not built:
        raise no_usable_venue(st.coll)
    grid = _grid(st)
    old = st.grid
    if old is not None and (grid.t0 != old.t0 or not np.array_equal(grid.edges, old.edges)
                            or built != [n for n, v in st.venues.items() if v.vs is not None]):
        rebuilt = True                      # a new grid or venue set: every step from the start
        for v in st.venues.values():
            v.carry, v.vs, v.X, v.phi, v.dep, v.csr, v.steps = None, None, {}, {}, {}, {}, {}
        st.out = {}
        st.frontier = 0
    f = st.frontier
    f_new = max(_frontier(st, grid, built), f)
    layers = {name: _venue_window(st, st.venues[name], grid, f, f_new) for name in built}
    vss = [st.venues[n].vs for n in built]
    notes = dict(st.skipped)
    for n in built:
        notes.update(st.venues[n].notes)
        notes.update(oi_source_note(st.venues[n].ds))
    meta = build_meta(st.coll, st.params, grid, vss, notes)
    hm = _write_outputs(st, grid, f, layers, vss, meta)
    st.grid, st.frontier = grid, f_new
    st.generation += 1
    info = {"frontier_step": f_new, "steps_recomputed": grid.T - f, "rebuilt": bool(rebuilt)}
    return dataclasses.replace(hm, live=Live(state=st, generation=st.generation, info=info))


def _venue_window(st: _State, v: _VenueState, grid, f: int, f_new: int) -> dict[str, np.ndarray]:
    """One venue: the fine-pass window from step f spliced into its step inputs, the recursion from the
    saved state; saves the sums and state at ``f_new``. Returns side → (K, T − f, B) float32 layers."""
    from liqlab.engine.deposits import lp_coefficients
    from liqlab.engine.fine import FineCarry, VenueArrays, fine_window, oi_usd_steps
    from liqlab.engine.kernel import max_age_steps, run_window

    p, T = st.params, grid.T
    va, sums = _window(v, grid.t0, grid.step_ns, f, bool(p.funding_drift), p.side_split == "taker")
    carry = dataclasses.replace(v.carry or FineCarry(), first_step=f, cut_step=f_new, volume0=sums["volume"],
                                taker0=sums["taker"])

    def lp_fn(closes: np.ndarray):
        if v.lp is None:
            v.lp = lp_coefficients(v.ds, p, float(np.median(closes)))
        return v.lp

    win, notes, v.carry = fine_window(va, lp_fn, p, grid.t0, T, grid.edges, carry, use_numba=st.use_numba)
    v.notes.update(notes)
    v.steps = {n: getattr(win, n) if f == 0 else np.concatenate([v.steps[n][:f], getattr(win, n)[f:]])
               for n in _STEP_FIELDS}
    full = VenueArrays(venue=v.ds.venue, **{c: v.col(c) for c in VenueArrays.__dataclass_fields__ if c != "venue"})
    v.steps["oi_usd"] = oi_usd_steps(full, v.steps["close"], p, grid.t0, T, grid.step_ns)
    fresh, total = {}, {}
    for side in _SIDES:
        fresh[side], total[side] = _splice_csr(v, side, getattr(win, f"fresh_{side}"), f, f_new, len(p.leverages))
    v.vs = VenueSteps(venue=v.ds.venue, fresh_long=fresh["long"], fresh_short=fresh["short"], n_bins=len(grid.edges) - 1,
                      step_hours=p.step_hours, leverages=win.leverages, dropped_long=win.dropped_long,
                      dropped_short=win.dropped_short, info=_info(v, win, grid, p), **v.steps)
    v.vs.info["deposited"] = total          # popped by _write_outputs
    K = len(p.leverages)
    A = max_age_steps(p.max_age_hours, p.step_hours)
    w = p.weights()
    X = v.X or {s: np.zeros((K, len(grid.edges) - 1)) for s in _SIDES}
    phi = {s: np.concatenate([v.phi[s][:, :f], np.ones((K, T - f))], axis=1) if v.phi else np.ones((K, T))
           for s in _SIDES}
    run = dict(weights=w, half_life_hours=p.half_life_hours, max_age_steps=A, oi_decrease=p.oi_decrease,
               use_numba=st.use_numba, half_life_exponent=p.half_life_exponent)
    first = run_window(v.vs, j0=f, j1=f_new, state={s: (X[s], phi[s]) for s in _SIDES}, **run) if f_new > f else None
    v.X = {s: X[s].copy() for s in _SIDES}
    last = run_window(v.vs, j0=f_new, j1=T, state={s: (X[s], phi[s]) for s in _SIDES}, **run)
    v.phi = phi
    return {s: last[s] if first is None else np.concatenate([first[s], last[s]], axis=1) for s in _SIDES}


def _splice_csr(v: _VenueState, side: str, wcsr: tuple, f: int, f_new: int, K: int) -> tuple[tuple, np.ndarray]:
    """The venue's fresh CSR with the window's entries (steps ≥ f) in place of its own; saves the
    deposited sums per layer of steps < f_new. Returns (the CSR as views, (K,) deposited USD in total)."""
    wptr, wk, wb, wv = wcsr
    if f == 0 or side not in v.csr:
        v.csr[side] = [wptr, _Grow(wk, spare=1 << 16), _Grow(wb, spare=1 << 16), _Grow(wv, spare=1 << 16)]
        ptr = wptr
        v.dep[side] = np.zeros(K)
    else:
        ptr_old, gk, gb, gv = v.csr[side]
        e = int(ptr_old[f])
        gk.put(e, wk)
        gb.put(e, wb)
        gv.put(e, wv)
        ptr = np.concatenate([ptr_old[: f + 1], e + wptr[f + 1:]])
        v.csr[side][0] = ptr
    _, gk, gb, gv = v.csr[side]
    k, b, val = gk.view(), gb.view(), gv.view()
    acc = np.array(v.dep[side], dtype=np.float64)
    a, c = int(ptr[f]), int(ptr[f_new])
    np.add.at(acc, k[a:c], val[a:c])            # the build's per-layer sum, in entry order
    v.dep[side] = acc.copy()
    np.add.at(acc, k[c:], val[c:])
    return (ptr, k, b, val), acc


def _info(v: _VenueState, win: VenueSteps, grid, p) -> dict:
    """The venue's fine-pass info over the whole history (counts, margin model, total funding shift)."""
    ts, oi_ts = v.col("ts"), v.col("oi_ts")
    end = grid.t0 + grid.T * grid.step_ns
    n_bars = int(np.searchsorted(ts, end, "left") - np.searchsorted(ts, grid.t0, "left"))
    a = int(np.searchsorted(oi_ts, grid.t0, "left"))
    b = int(np.searchsorted(oi_ts, end, "right"))
    info: dict[str, Any] = {"bars": n_bars, "oi_observations": int(b - a)}
    if b - a >= 2 and n_bars:
        t, oi = oi_ts[a:b], v.col("oi")[a:b]
        resets = int((((t[1:] - t[:-1]) > p.oi_max_gap_hours * 3600e9) | (oi[:-1] <= 0)).sum())
        if resets:
            info["oi_resets"] = resets
    old = v.vs.info if v.vs is not None else {}
    if "margin" in win.info or "margin" in old:
        info["margin"] = win.info.get("margin", old.get("margin"))
    if p.funding_drift and len(v.col("funding_ts")) and n_bars:
        info["funding_shift_bins"] = win.info.get("funding_shift_bins", old.get("funding_shift_bins", 0))
    return info


def _write_outputs(st: _State, grid, f: int, layers: dict, vss: list, meta: dict):
    """Rows ≥ f of every output array (as ``assemble`` computes them) written into the buffers; the map."""
    from liqlab.engine.agreement import agreement
    from liqlab.engine.grid import bin_centres
    from liqlab.engine.heatmap import Heatmap, _block_rows, _close, _weighted

    p = st.params
    w = p.weights()
    names = list(p.venues) if p.venues is not None else [rv.venue for rv in vss]
    by_name = {rv.venue: rv for rv in vss}
    B = len(grid.edges) - 1
    spare = max(24, grid.T // 8)
    o = st.out
    vl_rows, vs_rows = {}, {}
    for i, name in enumerate(names):
        L, S = layers[name]["long"], layers[name]["short"]
        vl, vs = _weighted(L, w, st.use_numba), _weighted(S, w, st.use_numba)
        vl_rows[name], vs_rows[name] = vl.astype(np.float32), vs.astype(np.float32)
        if i == 0:
            ll, ss, long, short = L, S, vl, vs
        else:
            ll += L
            ss += S
    if len(names) > 1:
        long, short = _weighted(ll, w, st.use_numba), _weighted(ss, w, st.use_numba)
    agr = agreement(vl_rows, vs_rows, p.agreement_threshold, p.agreement_window_bins, _block_rows(B))
    rows = {"long": long, "short": short, "long_layers": ll, "short_layers": ss, "agreement": agr,
            **{f"vl:{n}": vl_rows[n] for n in names}, **{f"vs:{n}": vs_rows[n] for n in names}}
    for key, arr in rows.items():
        axis = 1 if key.endswith("_layers") else 0
        if key not in o:
            o[key] = _Grow(arr, axis=axis, spare=spare)
        else:
            o[key].put(f, arr)
    sel = [by_name[n] for n in names]
    meta["venues"] = names
    meta["dropped_usd"] = {rv.venue: {"long": float(rv.dropped_long @ w), "short": float(rv.dropped_short @ w)}
                           for rv in sel}
    meta["deposited_usd"] = {rv.venue: {s: float(np.dot(rv.info["deposited"][s], w)) for s in _SIDES} for rv in sel}
    for rv in vss:
        rv.info.pop("deposited", None)
    replay = StepInputs(venues=tuple(vss), leverages=np.asarray(p.leverages, dtype=np.float64), step_hours=p.step_hours,
                        n_bins=B, times=grid.times, edges=grid.edges)
    T = grid.T
    return Heatmap(times=replay.times, prices=bin_centres(grid.edges, p.bin_unit), edges=grid.edges,
                   long=o["long"].view(T), short=o["short"].view(T), leverages=replay.leverages.copy(), weights=w,
                   long_layers=o["long_layers"].view(T), short_layers=o["short_layers"].view(T),
                   venue_long={n: o[f"vl:{n}"].view(T) for n in names},
                   venue_short={n: o[f"vs:{n}"].view(T) for n in names}, agreement=o["agreement"].view(T),
                   close=_close(sel, T), params=p, meta=meta, replay=replay)
