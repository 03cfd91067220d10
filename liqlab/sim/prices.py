"""The exogenous paths of the simulated market: its clock, random streams, latent index and venue prices.

Nothing the traders do enters these paths: the latent index (log USD) follows GARCH(1,1) with Student-t
innovations on 1-minute bars, with intrabar high/low from the Brownian-bridge extreme distribution; each
venue's mark price is the index times a smooth AR(1) basis, its last price adds small noise and wicks.
Each comes from its own random stream (:func:`stream`), so changing one part of the simulator never
reshuffles another's draws.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from liqlab._util import utc
from liqlab.sim.config import MINUTES_PER_YEAR, SimulationConfig

__all__ = ["Clock", "make_clock", "stream", "venue_key", "latent_path", "venue_prices"]


@dataclass(frozen=True)
class Clock:
    """The simulated bars: ``warm`` warm-up bars, then the output bars from ``start`` (1-minute, UTC)."""

    start: Any  # pd.Timestamp (UTC): open of the first output bar
    warm: int  # warm-up bars simulated before ``start``
    nb: int  # bars simulated in all (warm-up + output)
    start_min: int  # ``start`` in minutes since the epoch
    minute: np.ndarray  # (nb,) int64: minutes since the epoch of each bar's open
    times: Any  # pd.DatetimeIndex (nb,), UTC: each bar's open


def make_clock(c: SimulationConfig) -> Clock:
    """The bars a config simulates.

    Parameters
    ----------
    c : SimulationConfig
        Uses ``start``, ``warmup_days`` and ``days``.

    Returns
    -------
    Clock
        ``round(warmup_days·1440)`` warm-up bars followed by ``round(days·1440)`` output bars.
    """
    import pandas as pd

    start = utc(c.start)
    warm = int(round(c.warmup_days * 1440))
    nout = int(round(c.days * 1440))
    nb = warm + nout
    start_min = int(start.value // 60_000_000_000)
    minute = start_min - warm + np.arange(nb, dtype=np.int64)  # minutes since epoch of each bar's open
    times = pd.DatetimeIndex((minute * 60_000_000_000).astype("datetime64[ns]"), tz="UTC")
    return Clock(start=start, warm=warm, nb=nb, start_min=start_min, minute=minute, times=times)


def stream(*key: int) -> np.random.Generator:
    """An independent random stream: PCG64 seeded by ``SeedSequence(entropy=key[0], spawn_key=key[1:])``.

    Parameters
    ----------
    *key : int
        The seed, then the stream's address (e.g. ``seed, 1, venue_key(venue)`` for a venue's prices).

    Returns
    -------
    numpy.random.Generator
    """
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=key[0], spawn_key=tuple(key[1:]))))


def venue_key(venue: str) -> int:
    """A venue's part of a stream address.

    Parameters
    ----------
    venue : str

    Returns
    -------
    int
        CRC-32 of the name, so a venue's streams do not depend on which other venues are simulated.
    """
    return zlib.crc32(venue.encode())


def latent_path(c: SimulationConfig, nb: int, warm: int) -> dict[str, np.ndarray]:
    """The latent index per bar, from the price stream only.

    Parameters
    ----------
    c : SimulationConfig
        Uses ``seed``, ``annual_vol``, ``t_dof``, ``garch_alpha``, ``garch_beta`` and ``base_price``.
    nb : int
        Bars to simulate.
    warm : int
        Warm-up bars: the index at the open of bar ``warm`` is ``base_price``.

    Returns
    -------
    dict of str to np.ndarray
        Each (nb,) float64: ``open``, ``high``, ``low``, ``close`` (log USD), ``sd`` (conditional sd of
        the bar's log return) and ``ret`` (the bar's log return).
    """
    rng = stream(c.seed, 0)
    var_bar = c.annual_vol**2 / MINUTES_PER_YEAR
    nu = c.t_dof
    z = rng.standard_t(nu, size=nb) * math.sqrt((nu - 2.0) / nu)
    u = rng.random((2, nb))
    h = _garch_variance(z, var_bar * (1.0 - c.garch_alpha - c.garch_beta), c.garch_alpha, c.garch_beta, var_bar)
    sd = np.sqrt(h)
    r = sd * z
    close = np.cumsum(r)
    # index at `start` (= close of the last warm-up bar, or open of bar 0) is base_price
    anchor = close[warm - 1] if warm > 0 else 0.0
    close = close - anchor + math.log(c.base_price)
    open_ = np.empty(nb)
    open_[0] = close[0] - r[0]
    open_[1:] = close[:-1]
    # extremes of a Brownian bridge from open to close with variance h over the bar
    up = 0.5 * (r + np.sqrt(r * r - 2.0 * h * np.log(u[0])))
    dn = 0.5 * (r - np.sqrt(r * r - 2.0 * h * np.log(u[1])))
    return {"open": open_, "high": open_ + up, "low": open_ + dn, "close": close, "sd": sd, "ret": r}



def _garch_variance(z: np.ndarray, omega: float, alpha: float, beta: float, h0: float) -> np.ndarray:
    """h_t = ω + α·h_{t−1}·z²_{t−1} + β·h_{t−1} (per-bar variance of log returns)."""
    a = alpha * z * z + beta
    h = np.empty(len(z))
    x = h0
    for t in range(len(z)):  # 50k steps, plain Python is ~30 ms
        h[t] = x
        x = omega + a[t] * x
    return h


def venue_prices(c: SimulationConfig, venue: str, lat: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Exogenous (feedback-free) prices and noise of one venue, from the venue's own stream.

    Parameters
    ----------
    c : SimulationConfig
        Uses ``seed``, the basis, noise, wick and funding-noise fields.
    venue : str
        The venue (its stream address is :func:`venue_key`).
    lat : dict
        :func:`latent_path`'s output.

    Returns
    -------
    dict of str to np.ndarray
        Each (nb,) float64: log mark ``m_high``, ``m_low``, ``m_close``; log last ``l_open``, ``l_high``,
        ``l_low``, ``l_close``; ``vol_noise`` (volume multiplier, mean 1), ``taker_noise`` (standard
        normal) and ``fund_noise`` (funding premium noise, per interval).
    """
    rng = stream(c.seed, 1, venue_key(venue))
    nb = len(lat["close"])
    phi = 0.5 ** (1.0 / c.basis_halflife_min)
    eps = rng.standard_normal(nb) * (c.basis_bp * 1e-4 * math.sqrt(1 - phi * phi))
    eps[0] = rng.standard_normal() * c.basis_bp * 1e-4
    from scipy.signal import lfilter

    basis = lfilter([1.0], [1.0, -phi], eps)
    noise = rng.standard_normal((3, nb))
    wick = np.abs(rng.standard_normal((2, nb))) * (c.wick_bp * 1e-4)
    m_close = lat["close"] + basis
    m_high = lat["high"] + basis
    m_low = lat["low"] + basis
    l_close = m_close + noise[0] * (c.last_noise_bp * 1e-4)
    l_open = np.empty(nb)
    l_open[1:] = l_close[:-1]
    l_open[0] = lat["open"][0] + basis[0] + noise[1, 0] * (c.last_noise_bp * 1e-4)
    l_high = np.maximum(m_high + wick[0], np.maximum(l_open, l_close))
    l_low = np.minimum(m_low - wick[1], np.minimum(l_open, l_close))
    vol_noise = rng.lognormal(-0.125, 0.5, nb)  # mean 1
    taker_noise = rng.standard_normal(nb)
    fund_noise = rng.standard_normal(nb) * c.funding_noise
    return {"m_high": m_high, "m_low": m_low, "m_close": m_close, "l_open": l_open, "l_high": l_high,
            "l_low": l_low, "l_close": l_close, "vol_noise": vol_noise, "taker_noise": taker_noise,
            "fund_noise": fund_noise}

