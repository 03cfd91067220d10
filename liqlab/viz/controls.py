"""The JupyterLab explorer's panel: one ipywidget per engine parameter, read back into HeatmapParams, and
written out as the papermill parameters of the heatmap notebook.

Controls are named after the engine parameters (:class:`liqlab.engine.params.HeatmapParams` fields), take
their defaults and descriptions from it; ``colour_mapping`` is the one view setting. Units: hours, USD,
UTC. ipywidgets and papermill are imported only when a function runs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

__all__ = [
    "CONTROLLED",
    "MAX_AGE_CHOICES",
    "BIN_WIDTH_CHOICES",
    "NONE",
    "NOTEBOOK",
    "make_controls",
    "params_from_controls",
    "export_parameters",
    "declared_parameters",
    "default_export",
]

#: Engine parameters (HeatmapParams fields) that have a control, in panel order.
CONTROLLED: tuple[str, ...] = (
    "venues", "start", "end", "side_split", "entry_price", "oi_decrease", "clearing", "margin_model",
    "leverage_preset", "half_life_hours", "max_age_hours", "bin_width",
)

#: Choices of the max-age control (hours; None = never) and of the bin-width control (None = default).
MAX_AGE_CHOICES: tuple[float, ...] = (6.0, 12.0, 24.0, 72.0, 168.0, 336.0, 720.0)
BIN_WIDTH_CHOICES: dict[str, tuple[float, ...]] = {
    "bp": (2.0, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0),
    "usd": (0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 50.0, 100.0),
}

#: Option value standing for None in a Dropdown (ipywidgets shows a None value as "nothing selected").
NONE: str = "none"

#: The notebook whose papermill parameters the explorer's export writes (relative to the repository root).
NOTEBOOK = "notebooks/02_heatmap.ipynb"

_REPO = Path(__file__).resolve().parents[2]


def export_parameters(params, dataset: str | os.PathLike | None = None, *, mapping: str | None = None,
                      declared=None) -> dict[str, Any]:
    """Papermill parameters for notebooks/02_heatmap.ipynb reproducing ``params``.

    Parameters
    ----------
    params : HeatmapParams
        The engine parameters to reproduce.
    dataset : str or os.PathLike, optional
        The dataset path.
    mapping : str, optional
        The colour mapping.
    declared : set of str, optional
        Names the notebook declares: an engine value it cannot take raises ParameterError; optional
        extras (``interactive``, ``mapping``) it lacks are left out.

    Returns
    -------
    dict
        ``dataset``, ``interactive: False`` (a scheduled run writes the static explorer), ``mapping`` and the
        engine fields that differ from the HeatmapParams defaults, by their engine names, YAML-safe
        (inf → 'inf', tuples → lists).
    """
    from liqlab.engine.params import HeatmapParams
    from liqlab.errors import ParameterError

    cur, dflt = params.to_dict(), HeatmapParams().to_dict()
    out: dict[str, Any] = {}
    if dataset is not None:
        out["dataset"] = str(dataset)
    out["interactive"] = False
    if mapping is not None:
        out["mapping"] = mapping
    out.update({k: v for k, v in cur.items() if v != dflt[k]})
    if declared is not None:
        optional = ("interactive", "mapping")
        missing = [k for k in out if k not in declared and k not in optional]
        if missing:
            raise ParameterError(f"export: {NOTEBOOK} declares no parameter {missing[0]!r} (declared: {sorted(declared)})")
        out = {k: v for k, v in out.items() if k in declared}
    return out


def default_export() -> Path:
    """Where the explorer exports by default.

    Returns
    -------
    pathlib.Path
        reports/explore of the repository checkout liqlab runs from, else of the working directory.
    """
    base = _REPO if (_REPO / "pyproject.toml").is_file() else Path.cwd()
    return base / "reports" / "explore"


def declared_parameters(notebook: str | os.PathLike | None = None) -> set[str] | None:
    """Names a notebook's ``parameters`` cell declares (papermill.inspect_notebook).

    Parameters
    ----------
    notebook : str or os.PathLike, optional
        The notebook; default :data:`NOTEBOOK` of the checkout liqlab runs from.

    Returns
    -------
    set of str or None
        None without the notebook.
    """
    path = Path(notebook) if notebook is not None else _REPO / NOTEBOOK
    if not path.is_file():
        return None
    import papermill

    return set(papermill.inspect_notebook(str(path)))


def _tooltip(name: str, info: dict) -> str:
    unit = f" ({info['unit']})" if info.get("unit") else ""
    return f"{name}: {info['description']}{unit}; default {info['default']!r}"


def _age_label(h: float) -> str:
    """A max-age choice as shown in the dropdown: '6 h', '3 d'."""
    return f"{h / 24:g} d" if h >= 24 and h % 24 == 0 else f"{h:g} h"


def make_controls(params, venues: tuple[str, ...], data_range: tuple[str, str], mapping: str) -> dict[str, Any]:
    """The panel's ipywidgets.

    Parameters
    ----------
    params : HeatmapParams
        The values shown.
    venues : tuple of str
        Every venue of the data (the venue selector's options).
    data_range : tuple of str
        First and last bar time of the data (ISO, UTC): the start/end placeholders.
    mapping : str
        The colour mapping shown.

    Returns
    -------
    dict
        One widget per name of :data:`CONTROLLED` (description = the engine name, tooltip = its
        HeatmapParams description with unit and default) plus ``colour_mapping`` (a view setting).
    """
    import ipywidgets as w

    from liqlab.engine.params import LEVERAGE_PRESETS, param_info
    from liqlab.viz.colour import MAPPINGS

    info = param_info()
    style = {"description_width": "120px"}
    lay = w.Layout(width="310px")
    c: dict[str, Any] = {}

    def common(name):
        return {"description": name, "tooltip": _tooltip(name, info[name]), "style": style, "layout": lay}

    sel = list(venues) if params.venues is None else [v for v in venues if v in params.venues]
    c["venues"] = w.SelectMultiple(options=list(venues), value=sel, rows=min(4, max(2, len(venues))), **common("venues"))
    for name, placeholder in (("start", data_range[0]), ("end", data_range[1])):
        c[name] = w.Text(value=getattr(params, name) or "", placeholder=f"{placeholder} (data {name})",
                         continuous_update=False, **common(name))
    for name in ("side_split", "entry_price", "oi_decrease", "clearing", "margin_model"):
        c[name] = w.Dropdown(options=list(info[name]["choices"]), value=getattr(params, name), **common(name))
    c["leverage_preset"] = w.Dropdown(options=list(LEVERAGE_PRESETS), value=params.leverage_preset, **common("leverage_preset"))
    hl = float(params.half_life_hours)
    c["half_life_hours"] = w.FloatSlider(value=hl if math.isfinite(hl) else 0.0, min=0.0,
                                         max=max(720.0, hl if math.isfinite(hl) else 0.0), step=1.0,
                                         readout_format=".0f", **common("half_life_hours"))
    c["half_life_hours"].tooltip += " · 0 on the slider = no decay"
    ages = sorted(set(MAX_AGE_CHOICES) | ({float(params.max_age_hours)} if params.max_age_hours is not None else set()))
    c["max_age_hours"] = w.Dropdown(options=[("never", NONE)] + [(_age_label(a), a) for a in ages],
                                    value=NONE if params.max_age_hours is None else float(params.max_age_hours),
                                    **common("max_age_hours"))
    unit = params.bin_unit
    widths = sorted(set(BIN_WIDTH_CHOICES[unit]) | ({float(params.bin_width)} if params.bin_width is not None else set()))
    c["bin_width"] = w.Dropdown(options=[("default", NONE)] + [(f"{x:g} {unit}", x) for x in widths],
                                value=NONE if params.bin_width is None else float(params.bin_width), **common("bin_width"))
    c["colour_mapping"] = w.Dropdown(options=list(MAPPINGS), value=mapping, description="colour_mapping",
                                     tooltip="colour_mapping: USD → colour on one fixed scale (log, linear or "
                                             "percentile); recoloured in the browser, no rebuild",
                                     style=style, layout=lay)
    return c


def params_from_controls(base, values: dict[str, Any], all_venues: tuple[str, ...]):
    """HeatmapParams from the panel's values.

    Parameters
    ----------
    base : HeatmapParams
        The parameters without a control (and the starting point).
    values : dict
        Control values by engine name (keys starting with '_' and ``colour_mapping`` are ignored).
        venues: all selected → None; start/end: '' → None; half-life 0 → no decay.
    all_venues : tuple of str
        Every venue of the data.

    Returns
    -------
    HeatmapParams
        ``base`` with the values applied.

    Raises
    ------
    ParameterError
        Naming the parameter (no venue selected, or a value the engine refuses).
    """
    from liqlab.errors import ParameterError

    v = {k: x for k, x in values.items() if not k.startswith("_")}
    v.pop("colour_mapping", None)
    sel = tuple(x for x in all_venues if x in tuple(v["venues"]))
    if not sel:
        raise ParameterError("venues: select at least one venue")
    v["venues"] = None if len(sel) == len(all_venues) else sel
    for name in ("start", "end"):
        s = (v[name] or "").strip()
        v[name] = s or None
    hl = float(v["half_life_hours"])
    v["half_life_hours"] = math.inf if hl <= 0 else hl
    return base.replace(**v)
