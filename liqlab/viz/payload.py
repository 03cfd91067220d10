"""The engine's step inputs as the page's ``replay`` source: what js/recursion.js re-runs in the browser.

``Heatmap.replay`` holds, per venue, the per-step inputs of the step recursion (fresh deposits per leverage
layer as CSR arrays, clearing bounds, OI factors, removals, funding shifts). The page gets them as one
column-data row per venue of typed arrays, so moving a half-life, leverage-weight or venue control re-runs
the recursion in the browser with the same numbers as ``Heatmap.with_params``. (The source keeps the
name ``replay`` in the page; it has nothing to do with the websocket recorder's replay playback.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["replay_payload", "venue_names", "active_venues"]

#: Columns of the ``replay`` source, one row per venue.
_COLUMNS = ("venue", "long_ptr", "long_k", "long_b", "long_v", "short_ptr", "short_k", "short_b", "short_v",
            "lo", "hi", "g", "rm_long", "rm_short", "shift")


def _step_inputs(hm) -> Any:
    """The heatmap's step inputs (the one place the view reads them from)."""
    return hm.replay


def _venue_steps(inputs) -> list[tuple[str, Any]]:
    """[(venue, its step inputs)] (``venues`` as a dict or a sequence of objects with ``.venue``)."""
    v = getattr(inputs, "venues", None)
    if isinstance(v, dict):
        return list(v.items())
    if v is not None:
        return [(getattr(x, "venue", f"venue{i}"), x) for i, x in enumerate(v)]
    raise TypeError("step inputs have no 'venues'")


def _csr(x) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if isinstance(x, dict):
        return x["ptr"], x["k"], x["b"], x["v"]
    if isinstance(x, (tuple, list)):
        return tuple(x)  # type: ignore[return-value]
    return x.ptr, x.k, x.b, x.v


def replay_payload(hm) -> dict[str, list]:
    """Column data of the page's ``replay`` source.

    Parameters
    ----------
    hm : Heatmap
        The map whose step inputs (``hm.replay``) the page re-runs.

    Returns
    -------
    dict
        One row per venue: ``venue`` and 1-D typed arrays — the fresh deposits of each side as CSR
        (``<side>_ptr`` int32 per step, ``<side>_k`` leverage layer int32, ``<side>_b`` price bin int32,
        ``<side>_v`` USD float64), clearing bounds ``lo``/``hi`` (bin, int32), OI factor ``g``, removals
        ``rm_long``/``rm_short`` (float64) and the funding ``shift`` (bins, int32) per step.

    Raises
    ------
    ValueError
        More deposits than the browser's int32 indices hold.
    """
    cols: dict[str, list] = {k: [] for k in _COLUMNS}
    for name, vr in _venue_steps(_step_inputs(hm)):
        cols["venue"].append(str(name))
        for side in ("long", "short"):
            ptr, k, b, v = _csr(getattr(vr, f"fresh_{side}"))
            if len(ptr) and int(ptr[-1]) >= 2**31:
                raise ValueError("replay too large for the browser (2^31 deposits)")
            cols[f"{side}_ptr"].append(np.ascontiguousarray(ptr, dtype=np.int32))
            cols[f"{side}_k"].append(np.ascontiguousarray(k, dtype=np.int32))
            cols[f"{side}_b"].append(np.ascontiguousarray(b, dtype=np.int32))
            cols[f"{side}_v"].append(np.ascontiguousarray(v, dtype=np.float64))
        for col, dtype in (("lo", np.int32), ("hi", np.int32), ("g", np.float64), ("rm_long", np.float64),
                           ("rm_short", np.float64), ("shift", np.int32)):
            cols[col].append(np.ascontiguousarray(getattr(vr, col), dtype=dtype))
    return cols


def venue_names(hm) -> list[str]:
    """The venues of a heatmap's step inputs.

    Parameters
    ----------
    hm : Heatmap
        Any heatmap.

    Returns
    -------
    list of str
        Every venue the page has a toggle for, in the step inputs' order.
    """
    return [name for name, _ in _venue_steps(_step_inputs(hm))]


def active_venues(hm) -> list[str]:
    """The venues a heatmap's maps sum.

    Parameters
    ----------
    hm : Heatmap
        Its ``params.venues`` is the selection (None = all).

    Returns
    -------
    list of str
        The selected venues, in the order of :func:`venue_names`.
    """
    v = getattr(hm.params, "venues", None)
    names = venue_names(hm)
    return list(names) if v is None else [x for x in names if x in v]
