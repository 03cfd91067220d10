"""The nulls every test in :mod:`liqlab.stats` is measured against (docs/MAGNET.md, docs/VALIDATION.md).

- :func:`placebo_data`, THE price-only placebo: the same data with open interest replaced by steady
  growth, used by the magnet test, its calibration, the validation baselines and the truth score. A
  heatmap built from it keeps the price path's geometry (levels at fixed distances from each deposit
  price, cleared when traded through, decayed) but none of the information in open-interest changes.
- :func:`volume_oi_proxy`, not a null but the same kind of stand-in: open interest built from traded volume
  for data that has none (deposits proportional to turnover; labelled "not observed" on every map).
- :func:`bootstrap_path_dataset`, the pipeline null: the same open interest with a new, block-resampled
  price path, so any link between the path and open interest is gone.

Both work on a Dataset or a Collection (each venue on its own for the placebo, one common resampling for
the path) and label the result in ``meta["notes"]``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from liqlab._util import to_ns
from liqlab.errors import DataError, ParameterError
from liqlab.io.schema import OI_PROXY_NOTE
from liqlab.stats.resample import stationary_block_length

__all__ = ["OI_PROXY_FRACTION", "OI_PROXY_NOTE", "PLACEBO_NOTE", "bootstrap_path_dataset", "placebo_data",
           "volume_oi_proxy"]

PLACEBO_NOTE = "open interest replaced by constant increments of its mean absolute change (price-only placebo)"
# share of each bar's traded volume taken as newly opened open interest (docs/LEVELS.md, "Several assets")
OI_PROXY_FRACTION = 0.03


def placebo_data(data, *, per_observation_base: float | None = None):
    """The same data with open interest replaced by steady growth (the price-only placebo).

    Each venue's open interest becomes ``oi[0] + step·i`` at its own observation times: it starts at the
    venue's first observation and grows by the same ``step`` (base units) at every observation, never
    decreasing. ``step`` is the mean absolute change of the real series, so the placebo map receives
    deposits at the real series' turnover: the same engine (clearing, decay, side split, margin model)
    sees the same USD scale and loses only the timing and sign information of open-interest changes.
    ``open_interest_value`` is the new base amount times the last close at or before each observation.

    Parameters
    ----------
    data : Dataset or Collection
        Prices (``ohlcv``) and open interest (``open_interest``, at least 2 rows per venue).
    per_observation_base : float, optional
        The increment per observation in base units, instead of the mean absolute change.

    Returns
    -------
    Dataset or Collection
        Same type as ``data``; prices and every other table unchanged, ``meta["notes"]["placebo"]`` set.
    """
    from liqlab.io.dataset import Collection

    if isinstance(data, Collection):
        return dataclasses.replace(data, datasets=tuple(_placebo_one(d, per_observation_base) for d in data.datasets))
    return _placebo_one(data, per_observation_base)


def _placebo_one(ds, per_observation_base: float | None):
    from liqlab.io.dataset import with_note

    oi = ds.open_interest
    if len(oi) < 2:
        raise DataError(f"{ds.path or ds.name}: open_interest needs >= 2 rows for a placebo")
    base = oi["open_interest"].to_numpy(float)
    step = per_observation_base if per_observation_base is not None else float(np.mean(np.abs(np.diff(base))))
    if not step > 0:
        step = max(float(np.mean(base)), 1.0) * 1e-4
    new_oi = base[0] + step * np.arange(len(base))
    new = oi.copy()
    new["open_interest"] = new_oi
    new["open_interest_value"] = new_oi * _close_asof(ds.ohlcv, oi["ts"])
    return dataclasses.replace(ds, open_interest=new, meta=with_note(ds.meta, "placebo", PLACEBO_NOTE))


def volume_oi_proxy(data, *, fraction: float = OI_PROXY_FRACTION):
    """The same data with a synthetic open interest built from traded volume (an explicit proxy, labelled).

    Per venue, with bars i = 0..n-1 (open times ``ts_i``, base-unit volume ``v_i``, bar length Δ the median
    spacing of the bars), the proxy is observed at ``ts_0`` and at every bar's close ``ts_i + Δ``:
    ``oi = fraction·(v̄ + [0, v_0, v_0+v_1, …])`` (base units), v̄ the mean volume (a positive starting
    level, so the first bar's increment counts). It never decreases; bar i's increment is
    ``fraction·v_i``, which the engine turns into a deposit of ``fraction·v_i·P`` USD at the bar's entry
    price P (``fraction`` × the bar's USD turnover at ``entry_price="close"``). The level itself is
    cumulative turnover, not an open interest: use ``Heatmap.relative(basis="volume")``, not
    ``basis="open_interest"``. ``open_interest_value`` is the base amount × the last close at or before
    each observation. Bars without a finite volume count as zero turnover.

    Parameters
    ----------
    data : Dataset or Collection
        Prices with traded volume (``ohlcv``, base units); any observed open interest is replaced.
    fraction : float
        Share of traded volume taken as newly opened positions, in (0, 1] (default :data:`OI_PROXY_FRACTION`).

    Returns
    -------
    Dataset or Collection
        Same type as ``data``; prices and every other table unchanged; ``meta["notes"]["open_interest"]`` =
        :data:`OI_PROXY_NOTE` (copied by the engine into the map's notes).

    Raises
    ------
    ParameterError
        ``fraction`` outside (0, 1].
    DataError
        A venue whose volume is missing or non-positive in every bar (named).
    """
    from liqlab.io.dataset import Collection

    if not 0 < fraction <= 1:
        raise ParameterError(f"fraction: {fraction!r}: the share of traded volume must be in (0, 1]")
    if isinstance(data, Collection):
        return dataclasses.replace(data, datasets=tuple(_proxy_one(d, fraction) for d in data.datasets))
    return _proxy_one(data, fraction)


def _proxy_one(ds, fraction: float):
    from liqlab.io.schema import OPEN_INTEREST_NOTE, with_note

    o = ds.ohlcv
    v = o["volume"].to_numpy(float) if "volume" in o.columns else np.zeros(len(o))
    v = np.where(np.isfinite(v) & (v > 0), v, 0.0)
    if not (v > 0).any():
        raise DataError(f"{ds.path or ds.name}: volume: missing or non-positive in every bar; "
                        "no open-interest proxy from traded volume")
    if len(o) < 2:
        raise DataError(f"{ds.path or ds.name}: ohlcv needs >= 2 bars for an open-interest proxy")
    t = to_ns(o["ts"])
    bar_ns = int(np.median(np.diff(t)))
    ts = pd.to_datetime(np.concatenate([t[:1], t + bar_ns]), utc=True)
    oi = fraction * (v.mean() + np.concatenate([[0.0], np.cumsum(v)]))
    new = pd.DataFrame({"ts": ts, "open_interest": oi})
    new["open_interest_value"] = oi * _close_asof(o, new["ts"])
    return dataclasses.replace(ds, open_interest=new, meta=with_note(ds.meta, OPEN_INTEREST_NOTE, OI_PROXY_NOTE))


def _close_asof(ohlcv: pd.DataFrame, ts: pd.Series) -> np.ndarray:
    """The last close (USD) at or before each time of ``ts`` (the first close before the first bar), (n,)."""
    t_bar = to_ns(ohlcv["ts"])
    close = ohlcv["close"].to_numpy(float)
    i = np.searchsorted(t_bar, to_ns(ts), side="right") - 1
    return close[np.clip(i, 0, len(close) - 1)]


def bootstrap_path_dataset(ds, *, seed: int, block_bars: float | None = None):
    """The same data with a new price path: stationary-block-bootstrapped bars (the pipeline null).

    Each bar is (log open/prev close, log high/prev close, log low/prev close, log close/prev close);
    blocks of these tuples (mean length ``block_bars``) are resampled and chained from the first close,
    which keeps volatility clustering and every OHLC relation but removes any link between the path and
    open interest. Open interest keeps its base amounts (USD value recomputed at the new price); volume,
    taker and funding series are kept. Mark close, if present, follows the new close.

    Parameters
    ----------
    ds : Dataset or Collection
        The data; a Collection is resampled venue by venue with the same ``seed``.
    seed : int
        Seed of the resampling.
    block_bars : float, optional
        Mean block length in bars (default Politis–White on |log returns|, at least 30).

    Returns
    -------
    Dataset or Collection
        Same type as ``ds``, ``meta["notes"]["pipeline_null"]`` set (synthetic path).
    """
    from arch.bootstrap import StationaryBootstrap

    from liqlab.io.dataset import Collection, with_note

    if isinstance(ds, Collection):
        return dataclasses.replace(ds, datasets=tuple(bootstrap_path_dataset(d, seed=seed, block_bars=block_bars)
                                                      for d in ds.datasets))
    o = ds.ohlcv
    cl = o["close"].to_numpy(float)
    prev = np.r_[o["open"].to_numpy(float)[:1], cl[:-1]]
    rel = np.column_stack([np.log(o[c].to_numpy(float) / prev) for c in ("open", "high", "low", "close")])
    if block_bars is None:
        block_bars = max(30.0, stationary_block_length(np.abs(rel[:, 3])))
    bs = StationaryBootstrap(block_bars, np.arange(len(cl)), seed=np.random.default_rng(seed))
    idx = bs.bootstrap(1).__next__()[0][0]
    new, new_close = _chain_bars(o, rel[idx], prev[0])
    oi = ds.open_interest.copy()
    px = np.interp(to_ns(oi["ts"]).astype(float), to_ns(o["ts"]).astype(float), new_close)
    oi["open_interest_value"] = oi["open_interest"].to_numpy(float) * px
    meta = with_note(ds.meta, "pipeline_null", f"block-bootstrapped price path (seed {seed})")
    return dataclasses.replace(ds, ohlcv=new, open_interest=oi, meta=meta)


def _chain_bars(o: pd.DataFrame, r: np.ndarray, first_prev: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Bars rebuilt from resampled log ratios ``r`` (n, 4) chained from ``first_prev``; (table, closes (n,))."""
    new_close = first_prev * np.exp(np.cumsum(r[:, 3]))
    new_prev = np.r_[first_prev, new_close[:-1]]
    new = o.copy()
    new["open"] = new_prev * np.exp(r[:, 0])
    new["close"] = new_close
    new["high"] = np.maximum(new_prev * np.exp(r[:, 1]), np.maximum(new["open"], new["close"]))
    new["low"] = np.minimum(new_prev * np.exp(r[:, 2]), np.minimum(new["open"], new["close"]))
    if "mark_close" in new:
        new["mark_close"] = new_close
    return new, new_close
