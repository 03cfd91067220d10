"""The magnet test over a grid of engine (leverage mix, half-life) × test (k, H, r) settings, with a
chronological split: every configuration is scored on the first part (BY q-values, Hansen's SPA,
Romano–Wolf StepM against the null), the best is frozen and tested once on the rest."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from liqlab._util import TRAIN_FRACTION, jsonable, progress as progress_bar
from liqlab.errors import ParameterError
from liqlab.stats.magnet.events import decided, events_for, touch_dataset
from liqlab.stats.magnet.inference import by_qvalues, spa_grid, summarize
from liqlab.stats.magnet.params import HOUR_NS, MagnetParams

__all__ = ["HEATMAP_GRID_KEYS", "GridResult", "parse_grid", "run_grid"]

HEATMAP_GRID_KEYS = ("leverage_preset", "half_life_hours", "max_age_hours", "leverage_weights")
OOS_FIELDS = ("n_events", "untouched_share", "p_hat", "lift", "ci_low", "ci_high", "p_value", "p_value_hac")


@dataclass(frozen=True)
class GridResult:
    """Per-configuration in-sample results, SPA/StepM/BY, the frozen choice and its out-of-sample test."""

    table: pd.DataFrame
    summary: dict


def _grid_configs(grid: Mapping[str, Sequence]) -> list[dict[str, Any]]:
    keys = list(grid)
    names = {f.name for f in dataclasses.fields(MagnetParams)}
    for k in keys:
        if k not in names and k not in HEATMAP_GRID_KEYS:
            raise ParameterError(f"grid: unknown parameter {k!r}; use MagnetParams fields or {list(HEATMAP_GRID_KEYS)}")
        if isinstance(grid[k], (str, bytes)) or len(grid[k]) == 0:
            raise ParameterError(f"grid: {k!r} needs a non-empty list of values")
    return [dict(zip(keys, vals)) for vals in itertools.product(*(list(grid[k]) for k in keys))]


def parse_grid(text: str) -> dict[str, list]:
    """Parse a grid given as text.

    Parameters
    ----------
    text : str
        ``name=v1,v2`` parts separated by ``;``, e.g. ``'half_life_hours=24,168;k_atr=2,3'``. Numbers
        become floats ('inf' included; integers for ``atr_periods`` and ``smooth_bins``), other values stay text.

    Returns
    -------
    dict[str, list]
        e.g. ``{'half_life_hours': [24.0, 168.0], 'k_atr': [2.0, 3.0]}``.
    """
    out: dict[str, list] = {}
    for part in filter(None, (s.strip() for s in text.split(";"))):
        if "=" not in part:
            raise ParameterError(f"grid: expected name=v1,v2 in {part!r}")
        k, v = part.split("=", 1)
        vals: list[Any] = []
        for s in filter(None, (x.strip() for x in v.split(","))):
            try:
                vals.append(float(s) if s.lower() not in ("inf",) else math.inf)
            except ValueError:
                vals.append(s)
        out[k.strip()] = [int(x) if k.strip() in ("atr_periods", "smooth_bins") else x for x in vals]
    return out


def _split_configs(cfg: Mapping[str, Any], params: MagnetParams) -> tuple[tuple, MagnetParams]:
    """(the engine part of a configuration as a hashable key, the test part applied to ``params``)."""
    hkey = tuple((k, cfg[k]) for k in HEATMAP_GRID_KEYS if k in cfg)
    return hkey, params.replace(**{k: v for k, v in cfg.items() if k not in HEATMAP_GRID_KEYS})


@dataclass
class _InSample:
    """The in-sample pass: the period grid of the losses and a heatmap per engine setting."""

    t0: int            # first bar (ns)
    t_split: int       # split time (ns)
    bucket: int        # loss period (ns): the shortest horizon
    n_buckets: int
    base: Any          # the heatmap of the base engine parameters
    cache: dict        # engine key -> heatmap

    def heatmap(self, hkey: tuple):
        if hkey not in self.cache:
            self.cache[hkey] = self.base.with_params(**dict(hkey)) if hkey else self.base
        return self.cache[hkey]


def _score_config(ins: _InSample, ds, cfg: Mapping[str, Any], params: MagnetParams, losses: np.ndarray) -> dict:
    """Score one configuration on the in-sample part; add its per-period loss −Σ(Y − p0) to ``losses``."""
    hkey, pm = _split_configs(cfg, params)
    ev = events_for(ins.heatmap(hkey), ds, pm, end=ins.t_split)
    res = summarize(ev, pm)
    dec = decided(ev)
    b = (dec["t"].astype("int64").to_numpy() - ins.t0) // ins.bucket
    np.add.at(losses, np.clip(b, 0, ins.n_buckets - 1), -(dec["y"].to_numpy(float) - pm.p0))
    z = res["lift"] / res["se_hac"] if res.get("se_hac") else math.nan
    return {**{k: (v if not isinstance(v, tuple) else str(v)) for k, v in cfg.items()},
            "n_events": res["n_events"], "untouched_share": res["untouched_share"], "p_hat": res["p_hat"],
            "lift": res["lift"], "ci_low": res["ci_low"], "ci_high": res["ci_high"],
            "p_value": res["p_value"], "z_hac": z}


def run_grid(data, grid: Mapping[str, Sequence], heatmap_params, params: MagnetParams, *,
             split: float = TRAIN_FRACTION, heatmap=None, progress: bool | None = None) -> GridResult:
    """Grid over engine × test settings with a chronological split.

    In-sample = decision windows ending before the split time; every configuration gets p̂, lift and a
    bootstrap p-value, BY q-values, and the per-period loss −Σ(Y − p0) on a common period grid (the
    shortest horizon) for Hansen's SPA and Romano–Wolf StepM against the null. The configuration with
    the largest in-sample HAC z is frozen and tested once on the out-of-sample part.

    Parameters
    ----------
    data : Dataset, Collection or path
    grid : Mapping[str, Sequence]
        Values per parameter: MagnetParams fields or ``HEATMAP_GRID_KEYS``.
    heatmap_params : HeatmapParams, dict or None
        The engine parameters the grid varies.
    params : MagnetParams
    split : float
        Share of the time span used for selection, in [0.1, 0.9].
    heatmap : Heatmap, optional
        A prebuilt heatmap of ``heatmap_params``.
    progress : bool or None
        Progress bar (None = on a terminal).

    Returns
    -------
    GridResult
        ``table``: one row per configuration; ``summary``: SPA/StepM, the choice and its out-of-sample test.
    """
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.engine.params import HeatmapParams

    if not 0.1 <= split <= 0.9:
        raise ParameterError(f"split: fraction of time used for selection must be in [0.1, 0.9], got {split}")
    data, ds = touch_dataset(data, params.venue)
    configs = _grid_configs(grid)
    base = heatmap if heatmap is not None else build_heatmap(data, HeatmapParams.coerce(heatmap_params), progress=False)
    t0, t1 = int(ds.ohlcv["ts"].iloc[0].value), int(ds.ohlcv["ts"].iloc[-1].value)
    t_split = t0 + int(split * (t1 - t0))
    hmin = min(float(c.get("horizon_hours", params.horizon_hours)) for c in configs)
    bucket = int(round(hmin * HOUR_NS))
    ins = _InSample(t0=t0, t_split=t_split, bucket=bucket, n_buckets=max(1, (t_split - t0) // bucket + 1),
                    base=base, cache={})
    losses = np.zeros((ins.n_buckets, len(configs)))
    rows = [_score_config(ins, ds, cfg, params, losses[:, m])
            for m, cfg in enumerate(progress_bar(configs, desc="grid", enabled=progress))]
    table = pd.DataFrame(rows)
    table["q_value_by"] = by_qvalues(table["p_value"])
    spa = spa_grid(losses, reps=params.bootstrap_reps, seed=params.seed, alpha=params.alpha)
    table["stepm_superior"] = [i in spa["stepm_superior"] for i in range(len(configs))]
    zs = table["z_hac"].to_numpy(float)
    best = int(np.nanargmax(np.where(np.isfinite(zs), zs, -np.inf))) if np.isfinite(zs).any() else 0
    hkey, pm = _split_configs(configs[best], params)
    oos = summarize(events_for(ins.heatmap(hkey), ds, pm, start=t_split), pm)
    summary = {
        "n_configs": len(configs), "split": split, "split_time": str(pd.Timestamp(t_split, tz="UTC")),
        "period_hours": hmin, **spa, "chosen": jsonable(configs[best]), "chosen_in_sample": jsonable(rows[best]),
        "out_of_sample": jsonable({k: oos[k] for k in OOS_FIELDS}),
        "min_q_value_by": float(np.nanmin(table["q_value_by"])) if table["q_value_by"].notna().any() else math.nan,
    }
    return GridResult(table=table, summary=summary)
