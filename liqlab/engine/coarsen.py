"""Coarsening a heatmap in time: the same map rebuilt at a multiple of its time step, under a cell cap.

A view that must stay below a number of (time × price) cells (the browser explorer) asks the engine for a
coarser map instead of thinning it itself: :func:`coarsen` rebuilds from the data at the smallest
multiple of ``time_step`` that fits, so every shown value is an exact engine value at its step.
:func:`coarsening_factor` is the arithmetic shared with views that thin snapshots instead (no data at
hand), :func:`step_alias` the pandas offset alias (and label) of a step length.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["coarsening_factor", "step_alias", "coarsen"]


def step_alias(hours: float) -> str:
    """The pandas offset alias of a step length, also used as its label.

    Parameters
    ----------
    hours : float
        Step length (hours).

    Returns
    -------
    str
        '3d' for whole days, '4h' for whole hours, else minutes ('30min').
    """
    if hours >= 24 and abs(hours / 24 - round(hours / 24)) < 1e-9:
        return f"{round(hours / 24)}d"
    if hours >= 1 and abs(hours - round(hours)) < 1e-9:
        return f"{round(hours)}h"
    return f"{round(hours * 60)}min"


def coarsening_factor(n_steps: int, n_bins: int, max_cells: int) -> int:
    """How many steps must become one to keep a map under a cell cap.

    Parameters
    ----------
    n_steps, n_bins : int
        The map's shape T × B (time × price).
    max_cells : int
        The cap on T × B.

    Returns
    -------
    int
        1 when the map fits, else ceil(T·B / max_cells).

    Raises
    ------
    ParameterError
        ``max_cells`` < 1, or one snapshot (B bins) is already over the cap.
    """
    from liqlab.errors import ParameterError

    if max_cells < 1:
        raise ParameterError(f"max_cells: must be >= 1, got {max_cells}")
    if n_steps * n_bins <= max_cells:
        return 1
    if n_bins > max_cells:
        raise ParameterError(f"max_cells: {max_cells} is below the {n_bins} price bins of one snapshot; use a wider bin_width")
    return math.ceil(n_steps * n_bins / max_cells)


def coarsen(hm: Any, data: Any, max_cells: int) -> tuple[Any, str]:
    """``hm`` rebuilt from ``data`` at the smallest multiple of its time step that keeps it under a cell cap.

    Parameters
    ----------
    hm : Heatmap
        The map (T × B, time × price) built from ``data`` with ``hm.params``.
    data : Dataset, Collection or path
        The data ``hm`` was built from.
    max_cells : int
        Cap on T × B.

    Returns
    -------
    heatmap : Heatmap
        ``hm`` itself when it fits, else ``build_heatmap(data, hm.params.replace(time_step=...))``.
    note : str
        '' or what was coarsened and why (shown under the plot).

    Raises
    ------
    ParameterError
        As :func:`coarsening_factor`.
    """
    from liqlab.engine.heatmap import build_heatmap

    T, B = np.asarray(hm.long).shape
    factor = coarsening_factor(T, B, max_cells)
    if factor == 1:
        return hm, ""
    hours = float(hm.params.step_hours)
    while True:  # the time range's rounding may need one more step
        new_step = step_alias(hours * factor)
        out = build_heatmap(data, hm.params.replace(time_step=new_step))
        T, B = np.asarray(out.long).shape
        if T * B <= max_cells:
            break
        factor += 1
    note = f"time step coarsened from {step_alias(hours)} to {new_step} to keep {T}×{B} cells ≤ {max_cells:,} (rebuilt)"
    return out, note
