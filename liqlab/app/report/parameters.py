"""The parameter check a report runs before anything executes.

Every parameter (from the config, a parameters file or ``-p``) is checked against the ``parameters``
cell of each notebook that receives it: a name no notebook declares, a name a given notebook does not
declare, or a value of the wrong type raises :class:`~liqlab.errors.ParameterError` naming the notebook
and the parameter. Values are made plain JSON first (YAML dates become ISO text, paths text).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from liqlab._util import jsonable
from liqlab.app.report.config import ReportConfig
from liqlab.app.runner import _type_ok, notebook_parameters
from liqlab.errors import ParameterError

__all__ = ["check_parameters"]


def _plain(config: ReportConfig) -> ReportConfig:
    return replace(config, parameters=jsonable(config.parameters),
                   notebooks=tuple(replace(n, parameters=jsonable(n.parameters)) for n in config.notebooks))


def _per_notebook(overrides: dict, stems: list[str]) -> dict[str, dict]:
    """Pop the ``<notebook stem>: {...}`` entries out of ``overrides``: stem -> its parameters."""
    per_nb: dict[str, dict] = {s: {} for s in stems}
    for key in list(overrides):
        k = key[:-6] if isinstance(key, str) and key.endswith(".ipynb") else key
        if k in per_nb and isinstance(overrides[key], Mapping):
            per_nb[k] = dict(overrides.pop(key))
    return per_nb


def _check_types(name_of_notebook: str, params: Mapping, declared: Mapping) -> None:
    for name, value in params.items():
        p = declared[name]
        if not _type_ok(value, p):
            want = p.type_name + (" or None" if p.optional else "")
            raise ParameterError(
                f"{name_of_notebook}: parameter {name!r} must be {want}, got {type(value).__name__} {value!r}"
            )


def check_parameters(config: ReportConfig, overrides: Mapping | None = None) -> dict[str, dict]:
    """Check every parameter against each notebook's ``parameters`` cell before anything runs.

    Parameters
    ----------
    config : ReportConfig
        The report (its ``parameters`` and each notebook's own).
    overrides : mapping, optional
        ``name: value`` for every notebook declaring it, or ``<notebook stem>: {name: value}``.

    Returns
    -------
    dict
        Notebook stem -> its parameters as plain JSON values (without the per-dataset/run values the
        run fills in).

    Raises
    ------
    ParameterError
        Two notebooks share a name, an unknown name, or a wrong type (notebook and parameter named).
    """
    overrides = jsonable(dict(overrides or {}))
    config = _plain(config)
    declared = {spec.stem: notebook_parameters(spec.path) for spec in config.notebooks}
    stems = [spec.stem for spec in config.notebooks]
    if len(set(stems)) != len(stems):
        raise ParameterError(f"report {config.name}: two notebooks share the name {sorted({s for s in stems if stems.count(s) > 1})}")
    per_nb = _per_notebook(overrides, stems)
    global_params = {**config.parameters, **overrides}
    for name in global_params:
        if not any(name in d for d in declared.values()):
            raise ParameterError(
                f"report {config.name}: unknown parameter {name!r}: no notebook declares it "
                f"({', '.join(p.path.name for p in config.notebooks)})"
            )
    out: dict[str, dict] = {}
    for spec in config.notebooks:
        params_decl = declared[spec.stem]
        params: dict[str, Any] = {k: v for k, v in global_params.items() if k in params_decl}
        strict = {**spec.parameters, **per_nb[spec.stem]}
        for name in strict:
            if name not in params_decl:
                known = ", ".join(sorted(params_decl)) or "none"
                raise ParameterError(f"{spec.path.name}: unknown parameter {name!r} (declared: {known})")
        params.update(strict)
        _check_types(spec.path.name, params, params_decl)
        out[spec.stem] = jsonable(params)
    return out
