"""Heatmap files: one ``.npz`` with the grids, maps, venue maps, agreement, step inputs and a JSON header.

Layers are not stored: :func:`load_heatmap` re-runs the step recursion from the stored step inputs (the
same numbers). The format is ``liqlab-heatmap`` version 1; its array names keep the prefix ``replay/``
for the step inputs, so files written by earlier versions load unchanged (their notes, a list of lines,
become the notes dict).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from liqlab.errors import DataError, ParameterError
from liqlab.engine.inputs import CSR_NAMES, StepInputs, VenueSteps
from liqlab.engine.params import HeatmapParams

__all__ = ["save_heatmap", "load_heatmap"]

_STEP_FIELDS = ("lo", "hi", "g", "rm_long", "rm_short", "shift", "volume_usd", "close", "dropped_long", "dropped_short")


def save_heatmap(hm, path) -> Path:
    """Write a heatmap to an ``.npz`` file, atomically.

    Parameters
    ----------
    hm : Heatmap
        An absolute heatmap (relative views are refused: recompute them with ``.relative()``).
    path : str or os.PathLike
        Target file (``.npz``).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from liqlab.io import atomic

    path = Path(path)
    if "relative_window" in hm.meta:
        raise ParameterError("save: save the absolute heatmap (relative views are recomputed with .relative())")
    arrays: dict[str, np.ndarray] = {
        "times": hm.times.astype("datetime64[ns]").astype(np.int64), "prices": hm.prices,
        "edges": hm.edges, "long": hm.long, "short": hm.short, "leverages": hm.leverages,
        "weights": hm.weights, "agreement": hm.agreement, "close": hm.close,
    }
    for name in hm.venue_long:
        arrays[f"venue_long/{name}"] = hm.venue_long[name]
        arrays[f"venue_short/{name}"] = hm.venue_short[name]
    for i, rv in enumerate(hm.replay.venues):
        for f in _STEP_FIELDS:
            arrays[f"replay/{i}/{f}"] = getattr(rv, f)
        if rv.oi_usd is not None:
            arrays[f"replay/{i}/oi_usd"] = rv.oi_usd
        for side in ("long", "short"):
            for name, a in zip(CSR_NAMES, getattr(rv, f"fresh_{side}")):
                arrays[f"replay/{i}/fresh_{side}/{name}"] = a
    header = {
        "format": "liqlab-heatmap", "version": 1, "params": hm.params.to_dict(), "meta": hm.meta,
        "replay": {"step_hours": hm.replay.step_hours, "n_bins": hm.replay.n_bins,
                   "venues": [{"venue": rv.venue, "info": rv.info} for rv in hm.replay.venues]},
    }
    arrays["header"] = np.frombuffer(json.dumps(header, default=str).encode(), dtype=np.uint8)
    with atomic.atomic_path(path, ".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return path


def load_heatmap(path, *, use_numba: bool | None = None):
    """Read a file written by :func:`save_heatmap` (layers recomputed from the step inputs).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file.
    use_numba : bool or None
        True/False forces the numba kernels; None = numba unless ``LIQLAB_NO_NUMBA`` is set.

    Returns
    -------
    Heatmap
        Raises ``DataError`` naming the file when it is not a liqlab heatmap.
    """
    from liqlab.engine.heatmap import assemble
    from liqlab.io.dataset import notes_dict

    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
        header = json.loads(bytes(z["header"]).decode())
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: not a liqlab heatmap file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if header.get("format") != "liqlab-heatmap":
        raise DataError(f"{path}: not a liqlab heatmap file (format {header.get('format')!r})")
    params = HeatmapParams.from_dict(header["params"])
    inputs = _step_inputs(z, header["replay"])
    meta = {k: v for k, v in header["meta"].items() if k not in ("dropped_usd", "deposited_usd")}
    meta["notes"] = notes_dict(meta.get("notes"))
    return assemble(inputs, params, meta, use_numba=use_numba)


def _step_inputs(z, rh: dict) -> StepInputs:
    """The stored step inputs: arrays ``replay/<i>/...`` of the npz ``z``, header part ``rh``."""
    lev = z["leverages"]
    venues = []
    for i, vinfo in enumerate(rh["venues"]):
        g = lambda f: z[f"replay/{i}/{f}"]  # noqa: E731
        venues.append(VenueSteps(
            venue=vinfo["venue"], info=vinfo.get("info", {}),
            fresh_long=tuple(g(f"fresh_long/{n}") for n in CSR_NAMES),
            fresh_short=tuple(g(f"fresh_short/{n}") for n in CSR_NAMES),
            lo=g("lo"), hi=g("hi"), g=g("g"), rm_long=g("rm_long"), rm_short=g("rm_short"), shift=g("shift"),
            volume_usd=g("volume_usd"), close=g("close"), n_bins=int(rh["n_bins"]),
            step_hours=float(rh["step_hours"]), leverages=lev, dropped_long=g("dropped_long"),
            dropped_short=g("dropped_short"),
            oi_usd=g("oi_usd") if f"replay/{i}/oi_usd" in z.files else None))
    return StepInputs(venues=tuple(venues), leverages=lev, step_hours=float(rh["step_hours"]),
                      n_bins=int(rh["n_bins"]), times=z["times"].astype("datetime64[ns]"), edges=z["edges"])
