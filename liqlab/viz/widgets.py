"""Exploring in JupyterLab: ipywidgets controls that rebuild the heatmap with the Python engine (docs/EXPLORE.md).

``explore(data, **params)`` returns one ipywidgets layout: a panel of controls (one per engine
parameter, named after it, default from :class:`liqlab.engine.params.HeatmapParams`, tooltip = its
description) next to the static explorer of :mod:`liqlab.viz.plot` wrapped in ``jupyter_bokeh.BokehModel``.
A change rebuilds with the engine (in a worker thread, debounced, newest request wins) and replaces
the data of the EXISTING Bokeh sources in place (:func:`liqlab.viz.state.explorer_state` built in the worker,
copied by :func:`liqlab.viz.explorer.update_explorer`): no new plot,
zoom/pan kept, the browser-side sliders keep working on the new map. A bad combination shows one line
in the panel and leaves the last good map on screen.

:class:`Explorer` is the object behind it (``.widget``, ``.controls``, ``.request_rebuild()``,
``.wait()``, ``.export()``); ``synchronous=True`` rebuilds in the calling thread (tests, scripts).
Units: USD notional, hours, UTC; maps are time × price. Nothing is imported or computed at import.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liqlab._util import VENUES, one_line
from liqlab.viz.controls import (
    CONTROLLED, NONE, NOTEBOOK, declared_parameters, default_export, export_parameters, make_controls,
    params_from_controls,
)
from liqlab.viz.view import _build_key, view_heatmap

__all__ = ["DEBOUNCE_S", "Explorer", "bench_rebuild", "explore"]

#: Seconds a control must rest before a rebuild starts (rapid changes collapse into one rebuild).
DEBOUNCE_S: float = 0.25


# ---------------------------------------------------------------------------------------- explorer


@dataclass(frozen=True)
class _Outcome:
    gen: int
    hm: Any = None            # the heatmap shown (fitted, venues applied)
    state: Any = None         # its plot.ExplorerState, built in the worker (only copied on the loop)
    layout: Any = None        # instead of ``state``: a whole new Bokeh explorer (another venue set)
    data: Any = None          # a newly loaded dataset (the dataset control changed), else None
    cache: Any = None         # the engine cache that goes with it
    params: Any = None        # the requested HeatmapParams
    error: str = ""           # one line, '' on success
    engine_s: float = 0.0     # build_heatmap / with_params
    view_data_s: float = 0.0  # the state (or new layout) built in the worker
    superseded: bool = False


def _panel_message(exc: BaseException) -> str:
    """The panel's one-line message for a failed rebuild: liqlab's own errors as they are, anything else
    marked as an internal error with its type."""
    from liqlab.errors import LiqlabError

    msg = one_line(exc)
    return msg if isinstance(exc, LiqlabError) else f"internal error: {type(exc).__name__}: {msg}"


class Explorer:
    """ipywidgets panel + Bokeh explorer kept in sync with the Python engine.

    ``data``: Dataset, Collection or path. ``params``: HeatmapParams/dict; ``overrides`` replace
    single fields. ``debounce`` (s): quiet time before a rebuild. ``synchronous``: rebuild in the
    calling thread (no timer, no worker); otherwise timers run on the kernel's asyncio loop (or a
    private loop thread when none is running) and the engine in one worker thread.
    """

    def __init__(self, data, params=None, *, debounce: float = DEBOUNCE_S, synchronous: bool = False,
                 mapping: str | None = None, max_cells: int | None = None,
                 export_to: str | os.PathLike | None = None,
                 width: int = 900, height: int = 520, **overrides):
        import inspect

        import ipywidgets as w
        from jupyter_bokeh.widgets import BokehModel

        from liqlab.engine.params import HeatmapParams
        from liqlab.io.dataset import as_collection
        from liqlab.viz import plot

        self.data = as_collection(data)
        self.dataset_path = getattr(self.data, "path", None)
        if self.dataset_path is None and isinstance(data, (str, os.PathLike)):
            self.dataset_path = Path(data)
        self.venues: tuple[str, ...] = tuple(self.data.venues)
        self.debounce = float(debounce)
        self.synchronous = bool(synchronous)
        self.max_cells = plot.MAX_CELLS if max_cells is None else int(max_cells)
        self._base = HeatmapParams.coerce(params, **overrides)
        self._cache: dict = {}
        self._plot_kw = {"width": width, "height": height}
        mapping = mapping or inspect.signature(plot.explorer).parameters["mapping"].default
        # the first map is built now, in this thread (explore() returns a ready widget)
        t0 = time.perf_counter()
        self.heatmap = view_heatmap(self.data, self._base, self.max_cells, _cache=self._cache)
        self.params = self._base
        self.layout = plot.explorer(self.heatmap, self.data, mapping=mapping, max_cells=self.max_cells, **self._plot_kw)
        self._models = {m.name: m for m in self.layout.references() if getattr(m, "name", None)}  # updated in place
        self.last_timing: dict[str, float] = {"engine_s": time.perf_counter() - t0, "view_s": 0.0, "total_s": 0.0}
        starts = [d.ohlcv["ts"].iloc[0] for d in self.data if len(d.ohlcv)]
        ends = [d.ohlcv["ts"].iloc[-1] for d in self.data if len(d.ohlcv)]
        rng = (min(starts).isoformat() if starts else "", max(ends).isoformat() if ends else "")
        self.controls = make_controls(self._base, self.venues, rng, mapping)
        self._dataset_text = str(self.dataset_path) if self.dataset_path is not None else ""
        self.dataset = w.Text(value=self._dataset_text, placeholder="(data given in memory)", description="dataset",
                              tooltip="dataset: a dataset directory or collection folder (notebook 02's `dataset`); "
                                      "a new path is loaded and rebuilt (a different venue set gets a new plot)",
                              continuous_update=False, style={"description_width": "120px"}, layout=w.Layout(width="310px"))
        self.dataset.observe(self._on_control, names="value")
        self.status = w.HTML(value=self._status_html("ready", "ok"), layout=w.Layout(width="310px"))
        self.export_path = w.Text(value=str(export_to or default_export()), description="export to",
                                  tooltip="path stem: writes <stem>.html (standalone explorer) and <stem>.yaml "
                                          "(papermill -f parameters of notebook 02)",
                                  style={"description_width": "120px"}, layout=w.Layout(width="310px"))
        self.export_button = w.Button(description="Export", tooltip="write the current view as HTML + parameters as YAML",
                                      icon="download", layout=w.Layout(width="310px"))
        self.export_button.on_click(lambda _b: self._export_clicked())
        self.bokeh = BokehModel(self.layout)
        panel = w.VBox([w.HTML("<b>engine parameters</b> (rebuilt in the kernel)"), self.dataset,
                        *[self.controls[n] for n in CONTROLLED], w.HTML("<b>view</b>"), self.controls["colour_mapping"],
                        self.export_path, self.export_button, self.status],
                       layout=w.Layout(width="330px", flex="0 0 auto"))
        self.widget = w.HBox([panel, self.bokeh])
        self.widget.explorer = self  # reachable from the returned layout
        # threading state
        self._lock = threading.Lock()
        self._gen = 0
        self._idle = threading.Event()
        self._idle.set()
        self._timer = None
        self._executor = None
        self._loop = None
        self._own_loop_thread: threading.Thread | None = None
        self.stats = {"requests": 0, "builds": 0, "applied": 0, "stale_dropped": 0, "failed": 0, "cache_hits": 0}
        self.error = ""
        self._last_exc: BaseException | None = None  # the exception behind the last error line (debugging)
        for name in CONTROLLED:
            self.controls[name].observe(self._on_control, names="value")
        self.controls["colour_mapping"].observe(self._on_mapping, names="value")
        self._applying = False   # True while update_explorer writes into the page's models
        self._quiet = False      # True while a control follows an in-page change (no rebuild)
        self._watch_page()
        if not self.synchronous:
            self._resolve_loop()

    # ------------------------------------------------------------------------------ public API

    @property
    def busy(self) -> bool:
        """True while a requested rebuild has not been applied (or failed) yet."""
        return not self._idle.is_set()

    def values(self) -> dict[str, Any]:
        """Current control values.

        Returns
        -------
        dict
            Value per engine parameter name of ``CONTROLLED`` (widget values; the NONE option → None).
        """
        return {n: (None if self.controls[n].value == NONE else self.controls[n].value) for n in CONTROLLED}

    def request_rebuild(self, changed: str | None = None) -> int:
        """Ask for a rebuild with the current control values.

        Debounced (``debounce`` s) unless synchronous; a newer request makes older results stale (dropped).

        Parameters
        ----------
        changed : str, optional
            The control that moved (named in the message if the rebuild fails).

        Returns
        -------
        int
            The request's generation number.
        """
        values = self.values()
        values["_dataset"] = self.dataset.value
        if changed is not None:
            values["_changed"] = changed
            values["_changed_value"] = values["_dataset"] if changed == "dataset" else values.get(changed)
        with self._lock:
            self._gen += 1
            gen = self._gen
            self._idle.clear()
        self.stats["requests"] += 1
        self.status.value = self._status_html("rebuilding…", "busy")
        if self.synchronous:
            self._apply(self._compute(gen, values))
            return gen
        self._loop.call_soon_threadsafe(self._schedule, gen, values)
        return gen

    def wait(self, timeout: float = 60.0) -> Explorer:
        """Block until the latest requested rebuild is applied or failed (tests, scripts).

        Not from the kernel's event-loop thread (the rebuild is applied there): RuntimeError.

        Parameters
        ----------
        timeout : float
            Seconds to wait before TimeoutError.

        Returns
        -------
        Explorer
            ``self``.
        """
        if self.synchronous:
            return self
        if self._on_loop_thread():
            raise RuntimeError("Explorer.wait() would block the event loop that applies the rebuild; await it instead")
        if not self._idle.wait(timeout):
            raise TimeoutError(f"explorer rebuild not done after {timeout:g} s")
        self._barrier(timeout)
        return self

    def export(self, stem: str | os.PathLike | None = None) -> tuple[Path, Path]:
        """Write the current view as HTML and its parameters as YAML (atomic writes).

        ``<stem>.html`` is the standalone explorer (sliders working, BokehJS inline); ``<stem>.yaml`` the
        papermill ``-f`` file for notebook 02 (page-side half-life, weights and venues included).

        Parameters
        ----------
        stem : str or os.PathLike, optional
            Path without suffix (a .html/.yaml/.yml suffix is dropped); default the ``export to`` field.

        Returns
        -------
        tuple of pathlib.Path
            (html, yaml).
        """
        import yaml

        from liqlab.io import atomic
        from liqlab.viz import plot

        stem = Path(stem if stem is not None else self.export_path.value)
        if stem.suffix in (".html", ".yaml", ".yml"):
            stem = stem.with_suffix("")
        hm, kw = self._page_view()
        html = stem.with_name(stem.name + ".html")
        ypath = stem.with_name(stem.name + ".yaml")
        plot.save_explorer(hm, html, self.data, max_cells=self.max_cells, **kw, **self._plot_kw)
        nb = export_parameters(self._params_of(hm), self.dataset_path.resolve() if self.dataset_path else None,
                                 mapping=kw.get("mapping"), declared=declared_parameters())
        head = (f"# liqlab explorer view{' (SYNTHETIC data)' if hm.synthetic else ''}: "
                f"papermill {NOTEBOOK} out.ipynb -f {ypath.name}\n")
        atomic.write_text(ypath, head + yaml.safe_dump(nb, sort_keys=False))
        return html, ypath

    def close(self) -> None:
        """Stop the worker and (if it was started) the private event-loop thread; close the widgets.

        Returns
        -------
        None
        """
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._own_loop_thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._own_loop_thread.join(timeout=10)
            self._loop.close()
            self._own_loop_thread = None
        import ipywidgets as w

        for wd in (*self.controls.values(), self.dataset, self.status, self.export_path, self.export_button, self.widget):
            wd.close()
        w.DOMWidget.close(self.bokeh)  # jupyter_bokeh's close() detaches from the document; its __del__ does that once

    # --------------------------------------------------------------------------------- internals

    def _status_html(self, text: str, kind: str) -> str:
        import html

        colour = {"ok": "#2e7d32", "busy": "#b26a00", "error": "#c62828"}[kind]
        icon = {"ok": "✓", "busy": "⏳", "error": "⚠"}[kind]
        syn = " · <b>SYNTHETIC data</b>" if self.data.synthetic else ""
        return (f"<div class='liqlab-status liqlab-{kind}' style='color:{colour};white-space:nowrap;overflow:hidden;"
                f"text-overflow:ellipsis' title='{html.escape(text, quote=True)}'>{icon} {html.escape(text)}{syn}</div>")

    def _watch_page(self) -> None:
        """Let the half-life, venue, preset and colour-mapping controls follow the page's own widgets (the
        browser has already re-run the recursion, so no kernel rebuild; the next rebuild starts from them)."""
        hl = self._models.get("half_life")
        if hl is not None:
            hl.on_change("value", self._page_half_life)
        for v in self.venues:
            t = self._models.get(f"venue_{v}")
            if t is not None:
                t.on_change("active", self._page_venues)
        for page, control in (("colour_mapping", "colour_mapping"), ("leverage_preset", "leverage_preset")):
            m = self._models.get(page)
            if m is not None:
                m.on_change("value", lambda attr, old, new, c=control: self._follow(c, new))

    def _follow(self, name: str, value) -> None:
        c = self.controls[name]
        if self._applying or c.value == value or (hasattr(c, "options") and name != "venues" and value not in c.options):
            return  # (the page's preset can be 'custom': no such control value)
        self._quiet = True
        try:
            self.controls[name].value = value
        finally:
            self._quiet = False

    def _page_half_life(self, attr, old, new) -> None:
        self._follow("half_life_hours", float(new))

    def _page_venues(self, attr, old, new) -> None:
        on = tuple(v for v in self.venues if getattr(self._models.get(f"venue_{v}"), "active", False))
        self._follow("venues", on)

    def _on_control(self, change) -> None:
        if self._quiet:
            return
        name = "dataset" if change["owner"] is self.dataset else next(
            (n for n, c in self.controls.items() if c is change["owner"]), None)
        if name == "leverage_preset":
            self._base = dataclasses.replace(self._base, leverage_weights=None)  # a chosen preset replaces explicit weights
        self.request_rebuild(changed=name)

    def _on_mapping(self, change) -> None:
        sel = self._models["colour_mapping"]

        def set_mapping():
            sel.value = change["new"]

        self._post(set_mapping)

    def _post(self, fn: Callable[[], None]) -> None:
        if self.synchronous:
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)

    def _resolve_loop(self) -> None:
        import asyncio

        try:
            self._loop = asyncio.get_running_loop()  # the kernel's loop (code runs inside it in Jupyter)
        except RuntimeError:
            loop = asyncio.new_event_loop()
            t = threading.Thread(target=loop.run_forever, name="liqlab-explore-loop", daemon=True)
            t.start()
            self._loop, self._own_loop_thread = loop, t

    def _on_loop_thread(self) -> bool:
        import asyncio

        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _barrier(self, timeout: float) -> None:
        """Wait until callbacks already posted to the loop have run."""
        done = threading.Event()
        self._loop.call_soon_threadsafe(done.set)
        if not done.wait(timeout):
            raise TimeoutError(f"explorer event loop busy after {timeout:g} s")

    def _schedule(self, gen: int, values: dict) -> None:  # on the loop
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(self.debounce, self._launch, gen, values)

    def _launch(self, gen: int, values: dict) -> None:  # on the loop
        from concurrent.futures import ThreadPoolExecutor

        self._timer = None
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="liqlab-explore")
        fut = self._loop.run_in_executor(self._executor, self._compute, gen, values)
        fut.add_done_callback(lambda f: self._apply(f.result()))

    def _compute(self, gen: int, values: dict) -> _Outcome:  # worker thread (or caller when synchronous)
        from liqlab.viz import plot

        if gen != self._gen:
            return _Outcome(gen, superseded=True)
        t0 = time.perf_counter()
        try:
            data, cache, new = self.data, self._cache, None
            path = (values.get("_dataset") or "").strip()
            if path and path != self._dataset_text:  # the dataset control changed: load it here, in the worker
                from liqlab.io.dataset import as_collection

                data = new = as_collection(path)
                cache = {}
                if tuple(data.venues) != self.venues:
                    values = dict(values, venues=list(data.venues))  # another venue set: all of them
            params = params_from_controls(self._base, values, tuple(data.venues))
            hits = cache.get("fitted", (None,))[0] == (_build_key(params), self.max_cells)
            hm = view_heatmap(data, params, self.max_cells, _cache=cache)
            self.stats["builds"] += 1
            self.stats["cache_hits"] += int(bool(hits))
            if gen != self._gen:
                return _Outcome(gen, superseded=True)
            t1 = time.perf_counter()
            colours = plot.page_colours(self._models)
            state = layout = None
            if new is not None and tuple(new.venues) != self.venues:  # another venue set: new toggles, new scale
                layout = plot.explorer(hm, data, mapping=colours["mapping"], max_cells=self.max_cells, **self._plot_kw)
            else:
                state = plot.explorer_state(hm, data, max_cells=self.max_cells, **colours)
            return _Outcome(gen, hm=hm, state=state, layout=layout, params=params, data=new,
                            cache=cache if new is not None else None, engine_s=t1 - t0,
                            view_data_s=time.perf_counter() - t1)
        except Exception as exc:  # noqa: BLE001 - any failure becomes the one-line panel message
            self._last_exc = exc
            msg, name = _panel_message(exc), values.get("_changed")
            if name and not msg.startswith(name):
                msg = f"{name}={values.get('_changed_value')!r}: {msg}"
            return _Outcome(gen, error=msg, engine_s=time.perf_counter() - t0)

    def _apply(self, out: _Outcome) -> None:  # on the loop (or caller when synchronous)
        from liqlab.viz import plot

        with self._lock:
            stale = out.gen != self._gen
        if stale:
            self.stats["stale_dropped"] += 1
            return
        t0 = time.perf_counter()
        if not out.error:
            self._applying = True
            try:
                swap = out.layout is not None
                if swap:
                    self._swap_layout(out.layout)  # another venue set: the page needs new toggles
                else:
                    plot.update_explorer(self.layout, out.state, models=self._models)
                if out.data is not None:
                    self._adopt_data(out.data, out.cache)
                if swap:
                    self._watch_page()
                self.heatmap, self.params = out.hm, out.params
                self.stats["applied"] += 1
            except Exception as exc:  # noqa: BLE001
                self._last_exc = exc
                out = dataclasses.replace(out, error=_panel_message(exc))
            finally:
                self._applying = False
        view_s = out.view_data_s + time.perf_counter() - t0
        self.last_timing = {"engine_s": out.engine_s, "view_s": view_s, "total_s": out.engine_s + view_s,
                            "view_data_s": out.view_data_s, "apply_s": view_s - out.view_data_s}
        if out.error:
            self.stats["failed"] += 1
            self.error = out.error
            self.status.value = self._status_html(f"{out.error} — keeping the last good map", "error")
        else:
            self.error = ""
            self.status.value = self._status_html(
                f"rebuilt in {out.engine_s + view_s:.2f} s (engine {out.engine_s:.2f} s, view data "
                f"{out.view_data_s:.2f} s, update {view_s - out.view_data_s:.2f} s)", "ok")
        with self._lock:
            if out.gen == self._gen:
                self._idle.set()

    def _swap_layout(self, fresh) -> None:
        """Show ``fresh`` (a new Bokeh explorer) in place of the current one, in a new BokehModel."""
        import ipywidgets as w
        from jupyter_bokeh.widgets import BokehModel

        old = self.bokeh
        self.layout = fresh
        self._models = {m.name: m for m in fresh.references() if getattr(m, "name", None)}
        self.bokeh = BokehModel(fresh)
        self.widget.children = (self.widget.children[0], self.bokeh)
        w.DOMWidget.close(old)  # (jupyter_bokeh's own close() runs once, from __del__)

    def _adopt_data(self, data, cache) -> None:
        """Make ``data`` (loaded by the dataset control) the explorer's data; the controls follow quietly."""
        self.data, self._cache = data, cache
        self.dataset_path = getattr(data, "path", None) or Path(self.dataset.value.strip())
        self._dataset_text = self.dataset.value.strip()
        if tuple(data.venues) != self.venues:
            self.venues = tuple(data.venues)
            self._quiet = True
            try:
                self.controls["venues"].options = list(self.venues)
                self.controls["venues"].value = list(self.venues)
            finally:
                self._quiet = False
        starts = [d.ohlcv["ts"].iloc[0] for d in data if len(d.ohlcv)]
        ends = [d.ohlcv["ts"].iloc[-1] for d in data if len(d.ohlcv)]
        if starts:
            self.controls["start"].placeholder = f"{min(starts).isoformat()} (data start)"
            self.controls["end"].placeholder = f"{max(ends).isoformat()} (data end)"

    def _page_view(self) -> tuple[Any, dict]:
        """The heatmap and view settings currently on the page (browser-side half-life, leverage weights
        and venue toggles included: jupyter_bokeh syncs them back into the Bokeh models)."""
        import numpy as np

        from liqlab.viz import plot

        hm, lay = self.heatmap, self._models
        changes: dict[str, Any] = {}
        hl = lay.get("half_life")
        if hl is not None:
            v = float(hl.value)
            page_hl = math.inf if v <= 0 else v
            if page_hl != float(hm.params.half_life_hours):
                changes["half_life_hours"] = page_hl
        raw = []
        for lv in np.asarray(hm.leverages, dtype=np.float64):
            s = lay.get(f"lev_{lv:g}")
            raw.append(max(0.0, float(s.value)) if s is not None else math.nan)
        raw = np.asarray(raw)
        if np.all(np.isfinite(raw)) and raw.sum() > 0 and not np.allclose(raw / raw.sum(), hm.weights, rtol=0, atol=1e-12):
            changes["leverage_weights"] = tuple(float(x) for x in raw / raw.sum())
        on = [v for v in hm.replay.venue_names if getattr(lay.get(f"venue_{v}"), "active", True)]
        if on and tuple(on) != tuple(hm.meta.get("venues", ())):
            changes["venues"] = None if len(on) == len(hm.replay.venue_names) else tuple(on)
        if changes:
            hm = hm.with_params(**changes)
        kw = plot.page_colours(lay)
        t = lay.get("time")
        if t is not None:
            kw["time_index"] = int(t.value)
        return hm, kw

    def _params_of(self, hm):
        """The requested parameters with the page-side kernel-level changes of ``hm`` (the shown
        heatmap's time_step may be coarser than requested: the requested one is kept)."""
        p = self.params
        changes = {k: getattr(hm.params, k) for k in ("half_life_hours", "leverage_weights", "venues")
                   if getattr(hm.params, k) != getattr(p, k)}
        return p.replace(**changes) if changes else p

    def _export_clicked(self) -> None:
        self.status.value = self._status_html("exporting…", "busy")

        def work():
            try:
                html, ypath = self.export()
                return self._status_html(f"exported {html} and {ypath.name}", "ok")
            except Exception as exc:  # noqa: BLE001
                self._last_exc = exc
                return self._status_html(f"export failed: {_panel_message(exc)}", "error")

        if self.synchronous:
            self.status.value = work()
            return
        from concurrent.futures import ThreadPoolExecutor

        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="liqlab-explore")
        fut = self._loop.run_in_executor(self._executor, work)
        fut.add_done_callback(lambda f: setattr(self.status, "value", f.result()))


def explore(data, **params):
    """The JupyterLab explorer: controls + the Bokeh explorer in a ``jupyter_bokeh.BokehModel``.

    Display it as a cell's result after ``bokeh.io.output_notebook(resources=bokeh.resources.INLINE)``.

    Parameters
    ----------
    data : Dataset, Collection or path
        The data.
    **params
        HeatmapParams fields; Explorer options (``debounce``, ``mapping``, ``max_cells``, ``export_to``,
        ``width``, ``height``) are passed through.

    Returns
    -------
    ipywidgets.HBox
        The layout; the :class:`Explorer` is at its ``.explorer``.
    """
    return Explorer(data, **params).widget


# ------------------------------------------------------------------------------------------- bench


def bench_rebuild(data=None, *, days: float = 30.0, repeats: int = 3, progress: bool = False) -> dict[str, Any]:
    """Kernel-side rebuild time of the JupyterLab explorer: a control change → engine → the Bokeh sources updated.

    Synchronous; nothing printed. Two changes are timed, best of ``repeats``: ``side_split`` (a 'build'
    parameter: fine pass + kernel + view) and ``half_life_hours`` (a 'kernel' parameter: step recursion +
    view).

    Parameters
    ----------
    data : Dataset, Collection or path, optional
        Default data/sample if present, else a fresh ``days``-day 3-venue simulation (1m bars, SYNTHETIC).
    days : float
        Days of the fallback simulation.
    repeats : int
        Timings per change.
    progress : bool
        Progress bar of the fallback simulation.

    Returns
    -------
    dict
        JSON-friendly figures: ``seconds`` (best full rebuild, s), ``engine_seconds``, ``view_seconds``,
        ``kernel_only_seconds``, ``first_view_seconds``, ``seconds_all``, sizes (``venues``, ``bars``,
        ``shown_steps``, ``bins``, ``shown_time_step``), ``synthetic`` and ``target_seconds``.
    """
    import tempfile

    from liqlab.io.dataset import load

    tmp = None
    if data is None:
        sample = Path(__file__).resolve().parents[2] / "data" / "sample"
        if (sample / "collection.json").is_file():
            data = load(sample)
        else:
            from liqlab.sim.simulation import simulate

            tmp = tempfile.TemporaryDirectory(prefix="liqlab-bench-explore-")
            simulate(days=int(days), seed=0, venues=VENUES, out=Path(tmp.name) / "sim",
                     progress=progress)
            data = load(Path(tmp.name) / "sim")
    try:
        t0 = time.perf_counter()
        ex = Explorer(data, synchronous=True)
        first = time.perf_counter() - t0
        try:
            full: list[dict] = []
            kern: list[dict] = []
            splits = [c for c in ex.controls["side_split"].options if c != ex.controls["side_split"].value]
            for i in range(max(1, int(repeats))):
                ex.controls["side_split"].value = splits[i % len(splits)]
                full.append(dict(ex.last_timing))
                ex.controls["half_life_hours"].value = 24.0 + i
                kern.append(dict(ex.last_timing))
                if ex.error:
                    raise RuntimeError(f"bench_rebuild: rebuild failed: {ex.error}")
            T, B = ex.heatmap.long.shape
            best_f = min(full, key=lambda t: t["total_s"])
            best_k = min(kern, key=lambda t: t["total_s"])
            return {
                "case": "explore_rebuild", "synthetic": bool(data.synthetic), "venues": len(ex.venues),
                "bars": int(sum(len(d.ohlcv) for d in ex.data)), "shown_steps": int(T), "bins": int(B),
                "shown_time_step": ex.heatmap.params.time_step, "first_view_seconds": round(first, 4),
                "seconds": round(best_f["total_s"], 4), "engine_seconds": round(best_f["engine_s"], 4),
                "view_seconds": round(best_f["view_s"], 4), "kernel_only_seconds": round(best_k["total_s"], 4),
                "seconds_all": [round(t["total_s"], 4) for t in full], "target_seconds": 0.5,
            }
        finally:
            ex.close()
    finally:
        if tmp is not None:
            tmp.cleanup()
