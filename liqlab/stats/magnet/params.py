"""The magnet test's parameters (:class:`MagnetParams`, THE home of its defaults) and the bars that
decide touches (:class:`Bars`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from liqlab._util import to_ns
from liqlab.errors import DataError, ParameterError

__all__ = ["HOUR_NS", "Bars", "MagnetParams", "coerce_params"]

HOUR_NS = 3_600_000_000_000


@dataclass(frozen=True)
class MagnetParams:
    """Parameters of the magnet test (THE place where its defaults live)."""

    horizon_hours: float = 1.0        # H: decision spacing and first-passage window (hours)
    k_atr: float = 1.0                # band: clusters within k·ATR of the price
    atr_hours: float = 1.0            # length of one ATR period (hours)
    atr_periods: int = 24             # ATR / volatility averaging window (periods); also the warm-up
    min_distance_bp: float = 10.0     # d_min: ignore levels closer than this (bp of log price)
    smooth_bins: int = 1              # ±w bins boxcar smoothing of the maps before taking the peak
    min_dominance: float = 1.0        # r: keep events with D >= r
    momentum_hours: float = 24.0      # momentum control lookback (hours)
    post_hours: float = 1.0           # acceleration window after a touch (hours)
    p0: float = 0.5                   # null probability of the cluster winning
    alpha: float = 0.05               # test size
    bootstrap_reps: int = 999         # stationary-bootstrap replications
    seed: int = 0                     # bootstrap / random-level seed
    venue: str | None = None          # venue whose bars decide touches (None: first / binanceusdm)

    def __post_init__(self):
        for name in ("horizon_hours", "k_atr", "atr_hours", "post_hours", "momentum_hours"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ParameterError(f"MagnetParams.{name} must be a positive number, got {v!r}")
        if not (isinstance(self.atr_periods, int) and self.atr_periods >= 2):
            raise ParameterError(f"MagnetParams.atr_periods must be an integer >= 2, got {self.atr_periods!r}")
        if not (isinstance(self.smooth_bins, int) and self.smooth_bins >= 0):
            raise ParameterError(f"MagnetParams.smooth_bins must be an integer >= 0, got {self.smooth_bins!r}")
        if not (math.isfinite(self.min_distance_bp) and self.min_distance_bp >= 0):
            raise ParameterError(f"MagnetParams.min_distance_bp must be >= 0, got {self.min_distance_bp!r}")
        if not (self.min_dominance >= 0):
            raise ParameterError(f"MagnetParams.min_dominance must be >= 0, got {self.min_dominance!r}")
        if not (0 < self.p0 < 1):
            raise ParameterError(f"MagnetParams.p0 must be in (0, 1), got {self.p0!r}")
        if not (0 < self.alpha < 1):
            raise ParameterError(f"MagnetParams.alpha must be in (0, 1), got {self.alpha!r}")
        if not (isinstance(self.bootstrap_reps, int) and self.bootstrap_reps >= 19):
            raise ParameterError(f"MagnetParams.bootstrap_reps must be an integer >= 19, got {self.bootstrap_reps!r}")

    def replace(self, **changes: Any) -> "MagnetParams":
        """A copy with some fields changed; unknown names raise ParameterError."""
        names = {f.name for f in dataclasses.fields(self)}
        bad = sorted(set(changes) - names)
        if bad:
            raise ParameterError(f"unknown magnet parameter(s) {bad}; known: {sorted(names)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON-ready)."""
        return dataclasses.asdict(self)


def coerce_params(params: MagnetParams | Mapping | None, overrides: Mapping[str, Any]) -> MagnetParams:
    """MagnetParams from an instance, a dict of fields or None (defaults), then ``overrides``.

    Parameters
    ----------
    params : MagnetParams, Mapping or None
    overrides : Mapping
        Field changes applied last; unknown names raise ParameterError.

    Returns
    -------
    MagnetParams
    """
    if params is None:
        params = MagnetParams()
    elif isinstance(params, Mapping):
        params = MagnetParams().replace(**params)
    return params.replace(**overrides) if overrides else params


@dataclass(frozen=True)
class Bars:
    """OHLC bars of one venue: ``ts`` = bar open time (int64 ns UTC), prices in USD, (N,) each."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    bar_ns: int

    @classmethod
    def from_frame(cls, ohlcv: pd.DataFrame, source: str = "ohlcv") -> "Bars":
        """From a dataset ``ohlcv`` table (``ts`` column UTC). Bar length = the median spacing."""
        if len(ohlcv) < 3:
            raise DataError(f"{source}: need at least 3 bars for the magnet test, got {len(ohlcv)}")
        ts = to_ns(ohlcv["ts"].to_numpy())
        bar_ns = int(np.median(np.diff(ts)))
        f = lambda c: np.ascontiguousarray(ohlcv[c].to_numpy(dtype=np.float64))  # noqa: E731
        return cls(ts=ts, open=f("open"), high=f("high"), low=f("low"), close=f("close"), bar_ns=bar_ns)

    @classmethod
    def from_arrays(cls, ts, high, low, close, open=None, bar_ns: int | None = None) -> "Bars":
        """From arrays (times in any form :func:`liqlab._util.to_ns` reads; open defaults to the previous close)."""
        ts = to_ns(np.asarray(ts))
        close = np.asarray(close, dtype=np.float64)
        if open is None:
            open = np.r_[close[:1], close[:-1]]
        if bar_ns is None:
            bar_ns = int(np.median(np.diff(ts)))
        return cls(ts=ts, open=np.asarray(open, float), high=np.asarray(high, float),
                   low=np.asarray(low, float), close=close, bar_ns=int(bar_ns))

    def between(self, start_ns: int | None, end_ns: int | None) -> "Bars":
        """The bars opening in [start_ns, end_ns) (None = open end)."""
        a = 0 if start_ns is None else int(np.searchsorted(self.ts, start_ns, "left"))
        b = len(self.ts) if end_ns is None else int(np.searchsorted(self.ts, end_ns, "left"))
        return Bars(self.ts[a:b], self.open[a:b], self.high[a:b], self.low[a:b], self.close[a:b], self.bar_ns)
