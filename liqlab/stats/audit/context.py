"""What the audit's claims read from one dataset: the heatmap and its per-step series, built once.

:class:`Subject` is one dataset or collection under audit (real or synthetic) with its default-parameter
heatmap and :class:`Steps`, the per-step series (time step Δ, UTC) the claims share: the price range and
return of each step, the heatmap notional its bars sweep from the snapshot before the step, the realized
liquidations (NaN where the data has none), open interest and traded volume, and the training mask (the
first :data:`liqlab._util.TRAIN_FRACTION` of the steps, the only part any choice may read).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from liqlab._util import TRAIN_FRACTION

__all__ = ["Steps", "Subject", "make_subject", "step_series"]


@dataclass(frozen=True, eq=False)
class Steps:
    """Per-step series of one subject, all (T,) in time order (steps [start, end), UTC).

    ``range_log`` = log(high/low) of the step's bars; ``ret`` = log(close/open); ``swept_long``/
    ``swept_short`` USD notional the step's bars sweep from the snapshot before it; ``realized_long``/
    ``realized_short`` USD liquidated in the step (NaN: no realized data); ``oi_usd`` open interest (USD)
    at the step's start summed over venues; ``volume_usd`` traded volume (NaN when not reported);
    ``hour`` UTC hour of the step's start; ``train`` True on the first TRAIN_FRACTION of valid steps;
    ``valid`` steps with bars.
    """

    start: np.ndarray
    end: np.ndarray
    range_log: np.ndarray
    ret: np.ndarray
    swept_long: np.ndarray
    swept_short: np.ndarray
    realized_long: np.ndarray
    realized_short: np.ndarray
    oi_usd: np.ndarray
    volume_usd: np.ndarray
    hour: np.ndarray
    train: np.ndarray
    valid: np.ndarray

    @property
    def realized(self) -> np.ndarray:
        """(T,) realized liquidations, both sides (USD; NaN without realized data)."""
        return self.realized_long + self.realized_short

    @property
    def swept(self) -> np.ndarray:
        """(T,) swept heatmap notional, both sides (USD)."""
        return self.swept_long + self.swept_short

    @property
    def has_realized(self) -> bool:
        """Whether any step has realized liquidations."""
        return bool(np.isfinite(self.realized).any())

    @property
    def test(self) -> np.ndarray:
        """(T,) valid steps after the training window."""
        return self.valid & ~self.train


def _train_mask(valid: np.ndarray, fraction: float = TRAIN_FRACTION) -> np.ndarray:
    idx = np.flatnonzero(valid)
    out = np.zeros(len(valid), dtype=bool)
    if len(idx):
        out[idx[: int(math.floor(fraction * len(idx)))]] = True
    return out


def step_series(hm, data) -> Steps:
    """The per-step series of a heatmap and its data (one venue's bars for price, every venue's sweep).

    Parameters
    ----------
    hm : Heatmap
        Built from ``data``; its output steps are the audit's steps.
    data : Dataset or Collection
        Bars, open interest and (optionally) realized liquidations.

    Returns
    -------
    Steps
    """
    import pandas as pd

    from liqlab.stats.steps import heatmap_step_edges, heatmap_swept, realized_per_step, step_bars, venue_datasets

    start, end, _ = heatmap_step_edges(hm)
    dss = venue_datasets(data)
    bars = [step_bars(d, start, end) for d in dss]
    sl, ss = heatmap_swept(hm, data, bars)
    b0 = bars[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        rng = np.log(b0.high / b0.low)
        ret = np.log(b0.close / b0.open)
    has_liq = any(d.liquidations is not None and len(d.liquidations) for d in dss)
    if has_liq:
        rl, rs = realized_per_step(data, start, end)
    else:
        rl = rs = np.full(len(end), np.nan)
    oi = np.sum([np.nan_to_num(b.oi_usd) for b in bars], axis=0)
    vols = [b.volume_usd for b in bars if np.isfinite(b.volume_usd).any()]
    vol = np.sum(vols, axis=0) if vols else np.full(len(end), np.nan)
    valid = np.isfinite(rng) & np.isfinite(sl) & np.isfinite(ss)
    hour = pd.DatetimeIndex(start).hour.to_numpy()
    return Steps(start=start, end=end, range_log=rng, ret=ret, swept_long=sl, swept_short=ss, realized_long=rl,
                 realized_short=rs, oi_usd=oi, volume_usd=vol, hour=hour, train=_train_mask(valid), valid=valid)


@dataclass(frozen=True, eq=False)
class Subject:
    """One dataset or collection under audit: its name, 'real' or 'synthetic', the data, and (lazily) its
    default-parameter heatmap and step series at the audit's time step."""

    name: str
    kind: str
    data: Any
    step: str = "1h"
    seed: int | None = None  # the simulator's seed of a simulated world (None: not simulated by the audit)

    @functools.cached_property
    def memo(self) -> dict:
        """Results shared by several claims on this subject (e.g. the magnet events), computed once."""
        return {}

    @functools.cached_property
    def heatmap(self):
        """The heatmap with the engine's default parameters at ``step`` (or the data's bars if coarser)."""
        from liqlab.engine.heatmap import build_heatmap
        from liqlab.stats.steps import validation_step

        return build_heatmap(self.data, time_step=validation_step(self.data, self.data, self.step), progress=False)

    @functools.cached_property
    def steps(self) -> Steps:
        """:func:`step_series` of :attr:`heatmap`."""
        return step_series(self.heatmap, self.data)

    @property
    def venues(self) -> tuple[str, ...]:
        """The venues of the data."""
        return tuple(getattr(self.data, "venues", None) or (self.data.venue,))

    @property
    def symbol(self) -> str:
        """The data's ccxt symbol."""
        return str(self.data.symbol)

    @property
    def bar_hours(self) -> float:
        """Bar length of the data, hours."""
        from liqlab.stats.steps import data_step

        return data_step(self.data).total_seconds() / 3600.0


def make_subject(data, name: str | None = None, step: str = "1h") -> Subject:
    """A :class:`Subject` from a Dataset, a Collection or a path (loaded).

    Parameters
    ----------
    data : Dataset, Collection or path
    name : str, optional
        Label in the report (default: the folder name, else the symbol).
    step : str
        The audit's time step (pandas offset).

    Returns
    -------
    Subject
    """
    from liqlab.io.dataset import Collection, Dataset, load

    if not isinstance(data, (Dataset, Collection)):
        data = load(data)
    label = name or (data.path.name if getattr(data, "path", None) is not None else str(data.symbol))
    return Subject(name=label, kind="synthetic" if data.synthetic else "real", data=data, step=step)
