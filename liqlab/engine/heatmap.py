"""Liquidation heatmap estimation: ``build_heatmap`` → ``Heatmap`` (docs/DESIGN.md, "Heatmap engine").

Two stages:

1. the *fine pass* (:mod:`liqlab.engine.fine`): per venue, bars and open-interest observations become
   per-step inputs — fresh deposits per leverage layer (CSR), clearing thresholds, OI factors, removals,
   funding shifts — held in a :class:`~liqlab.engine.inputs.StepInputs` on the grid of
   :mod:`liqlab.engine.grid`;
2. the *step recursion* (:mod:`liqlab.engine.kernel`): decay, clearing, removal, deposits and max age, per
   leverage layer. :func:`assemble` runs it and weighs the layers; ``Heatmap.with_params`` re-runs only
   this stage.

The fine pass and the assembly's weighted sums are numpy with numba twins of their hot loops in
:mod:`liqlab.engine.fine_kernels` (same float64 operations in the same order: the same arrays), selected like
the step recursion (``use_numba``, ``LIQLAB_NO_NUMBA=1``).

Units: USD notional (quote currency) per price bin; times are UTC, ``times[j]`` is the END of step j.
Arrays are time × price (T, B); layers are leverage × time × price (K, T, B).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqlab.errors import ParameterError
from liqlab.engine.agreement import agreement as _agreement
from liqlab.engine.params import HeatmapParams, param_info, preset_weights, LEVERAGE_PRESETS
from liqlab._util import utc
from liqlab.engine.grid import bin_centres
from liqlab.engine.inputs import StepInputs

__all__ = ["build_heatmap", "Heatmap", "assemble", "RELATIVE_BASES"]


# ------------------------------------------------------------------------------------------- build


def build_heatmap(data, params: HeatmapParams | dict | None = None, *, progress: bool | None = None,
                  use_numba: bool | None = None, max_memory: int | str | None = None, extendable: bool = False,
                  **overrides) -> "Heatmap":
    """Estimate the liquidation heatmap of a Dataset, Collection or path (USD notional, time × price).

    Parameters
    ----------
    data : Dataset, Collection, str or os.PathLike
        The market data (one venue or several of one asset).
    params : HeatmapParams or dict, optional
        The engine's parameters (defaults: :class:`~liqlab.engine.params.HeatmapParams`).
    progress : bool or None
        A progress bar over venues (None = only on a terminal).
    use_numba : bool or None
        True/False forces the numba kernels; None = numba unless ``LIQLAB_NO_NUMBA`` is set.
    max_memory : int, str or None
        Byte budget (int or '8G'; None = half the available memory, see :mod:`liqlab.engine.memory`): a
        build whose output would not fit is refused before anything large is allocated.
    extendable : bool
        Keep the data's arrays and the recursion state so that :meth:`Heatmap.extend` can append new rows
        (:func:`liqlab.engine.extend.build_extendable`; the same arrays).
    **overrides
        Single parameter fields replacing those of ``params``.

    Returns
    -------
    Heatmap
        Maps (T, B) USD, layers (K, T, B), per-venue maps, step inputs and ``meta`` (notes a dict).
    """
    from liqlab.engine import build
    from liqlab.engine.memory import check_heatmap_fits
    from liqlab.io.dataset import as_collection

    p = HeatmapParams.coerce(params, **overrides)
    coll = build.select(as_collection(data), p)
    grid = build.shared_grid(coll, p)
    check_heatmap_fits(grid.T, len(grid.edges) - 1, p, grid.bin_width, grid.n_venues, max_memory)
    if extendable:
        from liqlab.engine.extend import build_extendable

        return build_extendable(coll, p, use_numba=use_numba)
    venues, notes = build.fine_passes(coll, p, grid, progress=progress, use_numba=use_numba)
    inputs = StepInputs(venues=tuple(venues), leverages=np.asarray(p.leverages, dtype=np.float64),
                        step_hours=p.step_hours, n_bins=len(grid.edges) - 1, times=grid.times, edges=grid.edges)
    return assemble(inputs, p, build.build_meta(coll, p, grid, venues, notes), use_numba=use_numba)


# ---------------------------------------------------------------------------------------- assembly


def assemble(replay: StepInputs, params: HeatmapParams, meta: dict, *, use_numba: bool | None = None) -> "Heatmap":
    """Run the step recursion for the selected venues and build the Heatmap (USD, time × price).

    Parameters
    ----------
    replay : StepInputs
        The step inputs of every built venue.
    params : HeatmapParams
        The parameters; ``venues`` selects which step inputs run, the layer weights weigh them.
    meta : dict
        Metadata carried into ``Heatmap.meta`` (``venues``, ``dropped_usd`` and ``deposited_usd`` set here).
    use_numba : bool or None
        True/False forces the numba kernels; None = numba unless ``LIQLAB_NO_NUMBA`` is set.

    Returns
    -------
    Heatmap
        long/short (T, B) float64 USD, layers (K, T, B) float32, per-venue maps (T, B) float32.
    """
    from liqlab.engine.kernel import max_age_steps, run_steps

    w = params.weights()
    if len(w) != len(replay.leverages) or not np.allclose(np.asarray(params.leverages, float), replay.leverages):
        raise ParameterError("leverages: differ from the replay's leverage set; rebuild with build_heatmap")
    names = params.venues if params.venues is not None else replay.venue_names
    sel = [replay.venue(n) for n in names]
    A = max_age_steps(params.max_age_hours, replay.step_hours)
    T = len(replay.times)
    long_layers = short_layers = None
    venue_long: dict[str, np.ndarray] = {}
    venue_short: dict[str, np.ndarray] = {}
    long = short = None
    for rv in sel:
        L, S = run_steps(rv, w, params.half_life_hours, A, params.oi_decrease, use_numba=use_numba,
                         half_life_exponent=params.half_life_exponent)
        vl, vs = _weighted(L, w, use_numba), _weighted(S, w, use_numba)
        venue_long[rv.venue] = vl.astype(np.float32)
        venue_short[rv.venue] = vs.astype(np.float32)
        if long_layers is None:
            long_layers, short_layers = L, S
            long, short = vl, vs        # = _weighted(long_layers, w) while there is one venue
        else:
            long_layers += L
            short_layers += S
            long = short = None
        del L, S, vl, vs
    if long is None:
        long = _weighted(long_layers, w, use_numba)
        short = _weighted(short_layers, w, use_numba)
    agreement = _agreement(venue_long, venue_short, params.agreement_threshold, params.agreement_window_bins,
                           _block_rows(len(replay.edges) - 1))
    close = _close(sel, T)
    meta = dict(meta)
    meta["venues"] = [rv.venue for rv in sel]
    meta["dropped_usd"] = {rv.venue: {"long": float(rv.dropped_long @ w), "short": float(rv.dropped_short @ w)} for rv in sel}
    meta["deposited_usd"] = {rv.venue: {"long": float(_csr_weighted_total(rv.fresh_long, w)),
                                        "short": float(_csr_weighted_total(rv.fresh_short, w))} for rv in sel}
    return Heatmap(times=replay.times, prices=bin_centres(replay.edges, params.bin_unit), edges=replay.edges,
                   long=long, short=short, leverages=replay.leverages.copy(), weights=w, long_layers=long_layers,
                   short_layers=short_layers, venue_long=venue_long, venue_short=venue_short, agreement=agreement,
                   close=close, params=params, meta=meta, replay=replay)


def _csr_weighted_total(csr, w) -> float:
    ptr, k, b, v = csr
    return float(np.dot(np.bincount(k, weights=v, minlength=len(w)), w)) if len(v) else 0.0


#: Elements (float64) per row block in the assembly's blocked loops: temporaries stay in the CPU cache.
_BLOCK_ELEMS = 1 << 15


def _block_rows(B: int) -> int:
    """Rows of B elements per block: about _BLOCK_ELEMS elements, at least one row."""
    return max(1, _BLOCK_ELEMS // max(B, 1))


def _row_blocks(T: int, B: int):
    """Slices over T rows of B elements, _block_rows(B) rows each."""
    step = _block_rows(B)
    return (slice(r0, min(T, r0 + step)) for r0 in range(0, T, step))


def _weighted(layers: np.ndarray, w: np.ndarray, use_numba: bool | None = None) -> np.ndarray:
    """Σ_k w_k·layers[k] in float64 (T, B) for layers (K, T, B): from 0, layers k = 0..K−1 in order, zero
    weights skipped (the same sums whatever the blocking; the numba twin adds in the same order)."""
    from liqlab.engine import fine_kernels

    fn = fine_kernels.compiled_loop("weighted", use_numba)
    if fn is not None:
        return fine_kernels.weighted(fn, layers, w)
    K, T, B = layers.shape
    out = np.zeros((T, B), dtype=np.float64)
    tmp = np.empty((min(T, _block_rows(B)), B), dtype=np.float64)
    for rows in _row_blocks(T, B):
        o = out[rows]
        t = tmp[: o.shape[0]]
        for k in range(K):
            if w[k] != 0.0:
                np.multiply(layers[k, rows], w[k], out=t)
                o += t
    return out


def _close(sel, T: int) -> np.ndarray:
    """Mean over venues of each venue's last close in the step (carried forward through empty steps)."""
    cols = []
    for rv in sel:
        c = pd.Series(rv.close).ffill().to_numpy()
        cols.append(c)
    arr = np.vstack(cols)
    with np.errstate(invalid="ignore"):
        cnt = np.isfinite(arr).sum(axis=0)
        s = np.nansum(arr, axis=0)
        return np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan)


#: The divisors of ``Heatmap.relative``.
RELATIVE_BASES: tuple[str, ...] = ("volume", "open_interest")


def _relative_divisors(hm: "Heatmap", window: str, basis: str) -> tuple[dict[str, np.ndarray], str]:
    """Per venue shown, the (T,) USD divisor of :meth:`Heatmap.relative`, and the units text of the result."""
    from liqlab.engine.params import step_hours as _sh

    from liqlab.io.schema import OI_PROXY_NOTE, OPEN_INTEREST_NOTE, notes_dict

    if basis not in RELATIVE_BASES:
        raise ParameterError(f"basis: must be one of {list(RELATIVE_BASES)}, got {basis!r}")
    proxied = [k for k, v in notes_dict(hm.meta.get("notes")).items()
               if k.endswith("/" + OPEN_INTEREST_NOTE) and v == OI_PROXY_NOTE]
    if basis == "open_interest" and proxied:
        raise ParameterError(f"relative: basis='open_interest' on a map whose open interest is a proxy "
                             f"({', '.join(k.split('/')[0] for k in proxied)}); use basis='volume'")
    out = {}
    if basis == "open_interest":
        for name in hm.venue_long:
            oi = hm.replay.venue(name).oi_usd
            if oi is None or len(oi) != len(hm.times):
                raise ParameterError(f"basis: {name}: these step inputs hold no open interest per step; "
                                     "rebuild the map from the data (build_heatmap)")
            out[name] = np.where(np.isfinite(oi), oi, np.nan)
        return out, "fraction of the venue's open interest (USD/USD)"
    try:
        n = max(1, int(round(_sh(window) / hm.replay.step_hours)))
    except ParameterError:
        raise ParameterError(f"window: not a fixed pandas offset like '7D': {window!r}") from None
    for name in hm.venue_long:
        v = hm.replay.venue(name).volume_usd
        c = np.cumsum(np.r_[0.0, v])
        idx = np.arange(1, len(v) + 1)
        out[name] = c[idx] - c[np.maximum(idx - n, 0)]
    return out, f"fraction of trailing {window} traded volume (USD/USD)"


# ----------------------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class Heatmap:
    """Estimated liquidation levels: USD notional per price bin per output step (time × price).

    ``long``: long positions' liquidation levels (below price); ``short``: above price. ``times[j]`` is
    the end of step j (UTC). ``replay`` holds the step inputs the recursion re-runs from
    (:class:`~liqlab.engine.inputs.StepInputs`); ``meta['notes']`` is a dict of topic → one line. See
    docs/DESIGN.md "Result" and docs/ENGINE.md.
    """

    times: np.ndarray
    prices: np.ndarray
    edges: np.ndarray
    long: np.ndarray
    short: np.ndarray
    leverages: np.ndarray
    weights: np.ndarray
    long_layers: np.ndarray
    short_layers: np.ndarray
    venue_long: dict
    venue_short: dict
    agreement: np.ndarray
    close: np.ndarray
    params: HeatmapParams
    meta: dict
    replay: StepInputs
    live: Any = None

    def extend(self, new_data) -> "Heatmap":
        """This map with the rows that arrived since appended: :func:`liqlab.engine.extend.extend`.

        Parameters
        ----------
        new_data : Dataset, Collection, str or os.PathLike
            New rows per venue (rows at or before a table's last stored time are skipped).

        Returns
        -------
        Heatmap
            The same arrays as ``build_heatmap`` on the union of the data; ``live.info`` says what was recomputed.
        """
        from liqlab.engine.extend import extend

        return extend(self, new_data)

    # ------------------------------------------------------------------------------ basic accessors

    @property
    def synthetic(self) -> bool:
        """True when the data (or any venue of it) is synthetic."""
        return bool(self.meta.get("synthetic", False))

    @property
    def title(self) -> str:
        """A label for plots: symbol, venues, and SYNTHETIC when the data is."""
        t = f"{self.meta.get('symbol', '')} liquidation heatmap ({', '.join(self.meta.get('venues', []))})"
        return ("SYNTHETIC — " + t) if self.synthetic else t

    def index_at(self, t=None) -> int:
        """The snapshot nearest a time.

        Parameters
        ----------
        t : str, datetime, Timestamp, int or None
            A time (naive = UTC), an index (negative counts from the end), or None for the last snapshot.

        Returns
        -------
        int
            Index into ``times`` (0..T−1); anything else raises ParameterError naming ``t``.
        """
        T = len(self.times)
        if t is None:
            return T - 1
        if isinstance(t, (int, np.integer)) and not isinstance(t, bool):
            j = int(t)
            if not -T <= j < T:
                raise ParameterError(f"t: index {j} outside 0..{T - 1}")
            return j % T
        try:
            ts = utc(t)
        except (ValueError, TypeError):
            raise ParameterError(f"t: not a timestamp or index: {t!r}") from None
        tv = self.times.astype("datetime64[ns]").astype(np.int64)
        return int(np.argmin(np.abs(tv - ts.value)))

    def profile(self, t=None) -> pd.DataFrame:
        """The map at one snapshot.

        Parameters
        ----------
        t : str, datetime, Timestamp, int or None
            See :meth:`index_at` (None = last).

        Returns
        -------
        pandas.DataFrame
            B rows: price (bin centre, USD), long, short (USD notional).
        """
        j = self.index_at(t)
        return pd.DataFrame({"price": self.prices, "long": self.long[j], "short": self.short[j]})

    def mix(self, weights) -> tuple[np.ndarray, np.ndarray]:
        """The maps for other leverage weights: a weighted sum of the layers (no kernel run).

        Exact for 'proportional'/'ignore'; for 'highest_leverage' the layers depend on the weights, so use
        ``with_params(leverage_weights=...)``.

        Parameters
        ----------
        weights : array_like
            (K,) finite, non-negative, not all zero (normalised here).

        Returns
        -------
        long, short : numpy.ndarray
            (T, B) float64 USD.
        """
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != self.weights.shape or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
            raise ParameterError(f"weights: need {len(self.weights)} finite non-negative weights, got {weights!r}")
        w = w / w.sum()
        return _weighted(self.long_layers, w), _weighted(self.short_layers, w)

    def band(self, mixes: dict | None = None) -> dict[str, np.ndarray]:
        """Per-cell low / median / high over plausible leverage mixes.

        Parameters
        ----------
        mixes : dict, optional
            Name → (K,) weights (default: every preset of ``LEVERAGE_PRESETS``).

        Returns
        -------
        dict
            {'long': (3, T, B), 'short': (3, T, B), 'mixes': names}: rows are min, median, max (USD).
        """
        if mixes is None:
            mixes = {n: preset_weights(n, self.leverages) for n in LEVERAGE_PRESETS}
        ls, ss = [], []
        for name, w in mixes.items():
            if self.params.oi_decrease == "highest_leverage":
                h = self.with_params(leverage_weights=tuple(float(x) for x in np.asarray(w) / np.sum(w)))
                ls.append(h.long)
                ss.append(h.short)
            else:
                lo, sh = self.mix(w)
                ls.append(lo)
                ss.append(sh)
        L = np.stack(ls)
        S = np.stack(ss)
        q = lambda a: np.stack([a.min(axis=0), np.median(a, axis=0), a.max(axis=0)])  # noqa: E731
        return {"long": q(L), "short": q(S), "mixes": list(mixes)}

    def top_clusters(self, t=None, n: int = 10) -> pd.DataFrame:
        """The largest clusters at one snapshot.

        A cluster is a local maximum of one side's map (the peak rule of :func:`liqlab.engine.levels.peak_bins`);
        :func:`liqlab.engine.levels.levels` gives the same rows with per-leverage columns.

        Parameters
        ----------
        t : str, datetime, Timestamp, int or None
            See :meth:`index_at` (None = last).
        n : int
            Most clusters returned, largest first.

        Returns
        -------
        pandas.DataFrame
            Columns time (UTC), price (USD), side, notional (USD in that bin), distance_pct (price vs
            reference close, %), age_hours (notional-weighted mean age of the levels in the bin), venues
            (venues agreeing), single_venue.
        """
        from liqlab.engine.levels import levels

        lv = levels(self, t, n=n)
        nv = len(self.meta.get("venues", []))
        out = pd.DataFrame({"time": lv["time"], "price": lv["price"], "side": lv["side"],
                            "notional": lv["notional_usd"], "distance_pct": lv["distance_pct"],
                            "age_hours": lv["age_hours"], "venues": lv["venues"],
                            "single_venue": (lv["venues"] <= 1) & (nv > 1)})
        return out.reset_index(drop=True)

    def _mean_age(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Notional-weighted mean age (hours) per bin at snapshot j, per side (NaN where empty).

        Re-runs the recursion on steps 0..j with each deposit scaled by (its step + 1): every operation
        is a per-bin linear scaling, so the ratio to the plain run is the mean deposit step. Exact for
        'proportional'/'ignore'; approximate for 'highest_leverage' (removals follow the scaled mass).
        """
        from liqlab.engine.kernel import max_age_steps, run_steps

        p = self.params
        A = max_age_steps(p.max_age_hours, self.replay.step_hours)
        names = p.venues if p.venues is not None else self.replay.venue_names
        scale = np.arange(1, j + 2, dtype=np.float64)
        zl = np.zeros(len(self.prices))
        zs = np.zeros(len(self.prices))
        xl = np.zeros(len(self.prices))
        xs = np.zeros(len(self.prices))
        for name in names:
            rv = self.replay.venue(name)
            base = rv.truncated(j + 1)
            sc = rv.truncated(j + 1, value_scale=scale)
            L0, S0 = run_steps(base, self.weights, p.half_life_hours, A, p.oi_decrease, half_life_exponent=p.half_life_exponent)
            L1, S1 = run_steps(sc, self.weights, p.half_life_hours, A, p.oi_decrease, half_life_exponent=p.half_life_exponent)
            xl += self.weights @ L0[:, -1, :].astype(np.float64)
            xs += self.weights @ S0[:, -1, :].astype(np.float64)
            zl += self.weights @ L1[:, -1, :].astype(np.float64)
            zs += self.weights @ S1[:, -1, :].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            dep_l = np.where(xl > 0, zl / xl, np.nan) - 1.0
            dep_s = np.where(xs > 0, zs / xs, np.nan) - 1.0
        h = self.replay.step_hours
        return (j - dep_l) * h, (j - dep_s) * h

    # ------------------------------------------------------------------------------------- re-runs

    def with_params(self, **changes) -> "Heatmap":
        """Re-run the step recursion only, from the stored step inputs.

        Parameters
        ----------
        **changes
            Parameters whose metadata says rerun='kernel' (half_life_hours, leverage_preset,
            leverage_weights, max_age_hours, venues, agreement_*). Others need ``build_heatmap``:
            ParameterError names them.

        Returns
        -------
        Heatmap
            Relative again when this one is.
        """
        info = param_info()
        bad = [k for k in changes if k in info and info[k]["rerun"] == "build"]
        if bad:
            raise ParameterError(f"{bad[0]}: changing it needs a full rebuild (build_heatmap); with_params re-runs only "
                                 f"{sorted(k for k, i in info.items() if i['rerun'] != 'build')}")
        p = self.params.replace(**changes)
        if p.venues is not None:
            for v in p.venues:
                self.replay.venue(v)
        drop = ("dropped_usd", "deposited_usd", "units", "relative_window", "relative_basis")
        meta = {k: v for k, v in self.meta.items() if k not in drop}
        h = assemble(self.replay, p, meta)
        if "relative_window" in self.meta:
            h = h.relative(self.meta["relative_window"] or "7D", basis=self.meta.get("relative_basis", "volume"))
        return h

    def relative_divisor(self, window: str = "7D", *, basis: str = "volume") -> tuple[np.ndarray, str]:
        """What :meth:`relative` divides the aggregate map by, without dividing the map.

        Parameters
        ----------
        window, basis
            As for :meth:`relative`.

        Returns
        -------
        divisor : numpy.ndarray
            (T,) USD per snapshot, summed over the venues shown (0 where unknown).
        units : str
            The units text of the relative map.
        """
        vols, units = _relative_divisors(self, window, basis)
        return sum(vols.values()), units

    def relative(self, window: str = "7D", *, basis: str = "volume") -> "Heatmap":
        """The map on a scale that compares assets and venues: notional divided by a size of the market.

        ``basis='volume'``: by the trailing traded volume (USD) over ``window``; ``basis='open_interest'``:
        by the open interest (USD) at each snapshot (``window`` is not used). Per venue by that venue's
        own divisor; the aggregate and the layers by the sum over venues.

        Parameters
        ----------
        window : str
            A fixed pandas offset ('7D'), the current step included (volume basis).
        basis : {'volume', 'open_interest'}
            What the notional is divided by.

        Returns
        -------
        Heatmap
            Maps in USD/USD (NaN where the divisor is 0 or unknown); ``meta['units']``,
            ``meta['relative_basis']`` and ``meta['relative_window']`` (None for open interest) set.
        """
        if "relative_window" in self.meta:
            raise ParameterError("relative: this heatmap is already relative")
        vols, units = _relative_divisors(self, window, basis)
        tot = sum(vols.values())

        def div(a, d):
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(d[:, None] > 0, a / np.where(d > 0, d, 1.0)[:, None], np.nan)

        def div3(a, d):
            with np.errstate(invalid="ignore", divide="ignore"):
                r = np.where(d[None, :, None] > 0, a / np.where(d > 0, d, 1.0)[None, :, None], np.nan)
            return r.astype(np.float32)

        meta = dict(self.meta)
        meta["units"] = units
        meta["relative_basis"] = basis
        meta["relative_window"] = window if basis == "volume" else None
        return dataclasses.replace(
            self, long=div(self.long, tot), short=div(self.short, tot),
            long_layers=div3(self.long_layers, tot), short_layers=div3(self.short_layers, tot),
            venue_long={k: div(v, vols[k]).astype(np.float32) for k, v in self.venue_long.items()},
            venue_short={k: div(v, vols[k]).astype(np.float32) for k, v in self.venue_short.items()},
            meta=meta)

    # --------------------------------------------------------------------------------- export / io

    def to_frame(self) -> pd.DataFrame:
        """The map as a long-format table.

        Returns
        -------
        pandas.DataFrame
            One row per non-empty cell: time (UTC), price (USD), long, short (USD notional).
        """
        T, B = self.long.shape
        nz = (self.long > 0) | (self.short > 0)
        jj, bb = np.nonzero(nz)
        return pd.DataFrame({
            "time": pd.to_datetime(self.times[jj]).tz_localize("UTC"), "price": self.prices[bb],
            "long": self.long[jj, bb], "short": self.short[jj, bb]})

    def save(self, path) -> Path:
        """Write an .npz (atomically): grids, maps, venue maps, agreement, step inputs, JSON params/meta.

        Parameters
        ----------
        path : str or os.PathLike
            Target file (``.npz``). Layers are not stored; :meth:`load` recomputes them (same numbers).

        Returns
        -------
        pathlib.Path
            The file written (see :func:`liqlab.engine.store.save_heatmap`).
        """
        from liqlab.engine.store import save_heatmap

        return save_heatmap(self, path)

    @classmethod
    def load(cls, path, *, use_numba: bool | None = None) -> "Heatmap":
        """Read a file written by :meth:`save`: :func:`liqlab.engine.store.load_heatmap`.

        Parameters
        ----------
        path, use_numba
            The ``.npz`` file; the kernel choice for re-running the layers (as in :func:`build_heatmap`).

        Returns
        -------
        Heatmap
        """
        from liqlab.engine.store import load_heatmap

        return load_heatmap(path, use_numba=use_numba)

    def summary(self) -> dict[str, Any]:
        """A small JSON-friendly description.

        Returns
        -------
        dict
            symbol, venues, synthetic, steps, bins, leverages, start/end (UTC), price range (USD), USD totals
            at the last snapshot, dropped_usd and notes (a dict of topic → line).
        """
        return {
            "symbol": self.meta.get("symbol"), "venues": self.meta.get("venues"), "synthetic": self.synthetic,
            "steps": int(len(self.times)), "bins": int(len(self.prices)), "leverages": [float(x) for x in self.leverages],
            "start": self.meta.get("data_start"), "end": self.meta.get("data_end"),
            "price_min": float(self.edges[0]), "price_max": float(self.edges[-1]),
            "last_long_usd": float(self.long[-1].sum()) if len(self.long) else 0.0,
            "last_short_usd": float(self.short[-1].sum()) if len(self.short) else 0.0,
            "dropped_usd": self.meta.get("dropped_usd"), "notes": self.meta.get("notes"),
        }
