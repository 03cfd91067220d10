"""Trader behaviour of the simulated market: when positions open, on which side, how large, at which leverage.

Everything here is drawn before the bar loop, from the **latent** (exogenous) price path and each venue's
own random streams, so with both feedback knobs of the simulator at 0 the price stays exogenous whatever
the traders do (the magnet test's null). What the knobs model, and why, is in docs/SIMULATOR.md
("Traders"); their defaults live in :class:`liqlab.sim.config.SimulationConfig`.

Populations of arrivals (per venue):

- **base** traders: a Poisson stream whose rate rises with volatility;
- **breakout** traders: open in the direction of a move that leaves the recent range;
- **fade** traders: buy the dip / sell the rip after a large short-term move;
- **followers**: every position spawns further positions (a Hawkes process in its cluster
  representation): herding that makes arrivals come in bursts, mostly on the parent's side.

Sizes have a Pareto tail (a few large accounts); the leverage mix tilts toward low leverage when
volatility is high. This module imports numpy only; the caller passes the config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Arrivals", "arrivals", "attributes", "leverage_choice", "sentiment", "sizes"]

KIND_BASE, KIND_BREAKOUT, KIND_FADE, KIND_FOLLOWER = 0, 1, 2, 3
KIND_NAMES = ("base", "breakout", "fade", "follower")


@dataclass(frozen=True)
class Arrivals:
    """Arrivals of one venue beyond the base stream: entry bar, population kind, forced side.

    ``entry``: int64 bar index; ``kind``: int8 (KIND_*); ``side_hint``: int8, +1 long, −1 short,
    0 = the side is drawn like a base trader's (bias + trend following). Sorted by nothing.
    """

    entry: np.ndarray
    kind: np.ndarray
    side_hint: np.ndarray

    @classmethod
    def empty(cls) -> "Arrivals":
        """No arrivals (length-0 arrays of the right dtypes)."""
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0, np.int8))

    def __len__(self) -> int:
        return len(self.entry)


def base_rate(c: Any, share: float, sd: np.ndarray) -> np.ndarray:
    """Base traders' arrival rate per bar of a venue.

    ``arrivals_per_min × share × (σ_t/σ̄)^activity_vol_elasticity`` normalised to the path's mean, times
    (1 − ``herding_branching``) so that followers bring the mean back to ``arrivals_per_min``.

    Parameters
    ----------
    c : SimulationConfig
    share : float
        The venue's share of arrivals.
    sd : np.ndarray
        (bars,) conditional sd of each bar's latent log return.

    Returns
    -------
    np.ndarray
        (bars,) expected new positions per bar (positions/min).
    """
    act = (sd / c.bar_sd) ** c.activity_vol_elasticity
    return c.arrivals_per_min * share * act / act.mean() * (1.0 - c.herding_branching)


def sentiment(c: Any, nb: int, rng: np.random.Generator) -> np.ndarray:
    """The crowd's market-wide swing in long probability per bar, added to every venue's long share.

    An AR(1) with stationary sd ``sentiment_sd`` and half-life ``sentiment_halflife_hours``.

    Parameters
    ----------
    c : SimulationConfig
    nb : int
        Bars.
    rng : numpy.random.Generator
        The sentiment stream (nothing is drawn when ``sentiment_sd`` is 0).

    Returns
    -------
    np.ndarray
        (nb,) probability offsets (zeros when ``sentiment_sd`` is 0).
    """
    if c.sentiment_sd <= 0:
        return np.zeros(nb)
    from scipy.signal import lfilter

    phi = 0.5 ** (1.0 / (c.sentiment_halflife_hours * 60.0))
    eps = rng.standard_normal(nb) * c.sentiment_sd * math.sqrt(1.0 - phi * phi)
    eps[0] = rng.standard_normal() * c.sentiment_sd
    return lfilter([1.0], [1.0, -phi], eps)


def _running_extreme(x: np.ndarray, window: int, op: str) -> np.ndarray:
    """max (op='max') or min of x over the ``window`` bars before each bar (NaN for the first)."""
    import pandas as pd

    s = pd.Series(x).shift(1).rolling(window, min_periods=window)
    return (s.max() if op == "max" else s.min()).to_numpy()


def breakout_rate(c: Any, close: np.ndarray, sd: np.ndarray, mean_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Breakout traders' arrival rates per bar.

    A bar whose latent close exceeds the highest close of the previous ``breakout_window_min`` bars by
    z bar-sds draws ``breakout_intensity × mean_rate × min(z, 5)`` longs (shorts below the lowest close).

    Parameters
    ----------
    c : SimulationConfig
    close : np.ndarray
        (bars,) latent log close.
    sd : np.ndarray
        (bars,) conditional sd of each bar's log return.
    mean_rate : float
        The venue's mean arrival rate (positions/min).

    Returns
    -------
    (np.ndarray, np.ndarray)
        (up, down): (bars,) expected long and short breakout arrivals per bar (positions/min).
    """
    if c.breakout_intensity <= 0:
        z0 = np.zeros(len(close))
        return z0, z0
    w = max(2, int(round(c.breakout_window_min)))
    up = np.nan_to_num((close - _running_extreme(close, w, "max")) / sd, nan=0.0)
    dn = np.nan_to_num((_running_extreme(close, w, "min") - close) / sd, nan=0.0)
    k = c.breakout_intensity * mean_rate
    return k * np.clip(up, 0.0, 5.0), k * np.clip(dn, 0.0, 5.0)


def fade_rate(c: Any, close: np.ndarray, sd: np.ndarray, mean_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Fade (dip-buying) traders' arrival rates per bar.

    When the latent move over the last ``fade_window_min`` bars is more than ``fade_threshold`` sds
    (of that horizon), ``fade_intensity × mean_rate × (|z| − threshold)`` (at most 5) positions open
    against the move: longs after a drop, shorts after a rally.

    Parameters
    ----------
    c, close, sd, mean_rate
        As for :func:`breakout_rate`.

    Returns
    -------
    (np.ndarray, np.ndarray)
        (long, short): (bars,) expected fade arrivals per bar (positions/min).
    """
    n = len(close)
    if c.fade_intensity <= 0:
        z0 = np.zeros(n)
        return z0, z0
    w = max(1, int(round(c.fade_window_min)))
    move = np.zeros(n)
    move[w:] = close[w:] - close[:-w]
    z = move / (sd * math.sqrt(w))
    excess = np.clip(np.abs(z) - c.fade_threshold, 0.0, 5.0)
    k = c.fade_intensity * mean_rate
    return k * excess * (z < 0), k * excess * (z > 0)


def arrivals(c: Any, close: np.ndarray, sd: np.ndarray, mean_rate: float, parents_entry: np.ndarray,
             parents_side: np.ndarray, rng: np.random.Generator) -> Arrivals:
    """Breakout, fade and follower arrivals of one venue (drawn from ``rng``, the venue's extra stream).

    The base traders, with breakout and fade arrivals, are the immigrants of the follower cascade: each
    position spawns Poisson(``herding_branching``) followers ``1 + Exp(herding_delay_min)`` bars later,
    on its side with probability ``herding_side``, else on a freshly drawn side (hint 0). Followers
    spawn followers.

    Parameters
    ----------
    c : SimulationConfig
    close, sd : np.ndarray
        (bars,) latent log close and conditional sd of each bar's log return.
    mean_rate : float
        The venue's mean arrival rate (positions/min).
    parents_entry, parents_side : np.ndarray
        (n,) the base traders' entry bars (int64) and sides (+1 long, −1 short).
    rng : numpy.random.Generator

    Returns
    -------
    Arrivals
        The arrivals beyond the base stream (entries within the bars only).
    """
    nb = len(close)
    ent, kind, hint = [], [], []
    for rate_pair, k in ((breakout_rate(c, close, sd, mean_rate), KIND_BREAKOUT),
                         (fade_rate(c, close, sd, mean_rate), KIND_FADE)):
        for lam, s in zip(rate_pair, (1, -1)):
            if not lam.any():
                continue
            counts = rng.poisson(lam)
            e = np.repeat(np.arange(nb, dtype=np.int64), counts)
            ent.append(e)
            kind.append(np.full(len(e), k, np.int8))
            hint.append(np.full(len(e), s, np.int8))
    gen_e = np.concatenate([parents_entry.astype(np.int64)] + ent)
    gen_s = np.concatenate([parents_side.astype(np.int8)] + hint)
    if c.herding_branching > 0:
        for _ in range(200):  # subcritical (branching < 1): generations die out geometrically
            if len(gen_e) == 0:
                break
            kids = rng.poisson(c.herding_branching, len(gen_e))
            pe = np.repeat(gen_e, kids)
            ps = np.repeat(gen_s, kids)
            delay = 1 + np.floor(rng.exponential(c.herding_delay_min, len(pe))).astype(np.int64)
            same = rng.random(len(pe)) < c.herding_side
            e = pe + delay
            ok = e < nb
            e, s = e[ok], np.where(same, ps, 0).astype(np.int8)[ok]
            ent.append(e)
            kind.append(np.full(len(e), KIND_FOLLOWER, np.int8))
            hint.append(s)
            # a follower with a drawn side passes on its own side once drawn; approximating it by the
            # parent's side keeps the cascade one pass (followers of followers herd on the burst's side)
            gen_e, gen_s = e, np.where(s == 0, ps[ok], s).astype(np.int8)
    if not ent:
        return Arrivals.empty()
    return Arrivals(np.concatenate(ent), np.concatenate(kind), np.concatenate(hint))


def leverage_choice(c: Any, u: np.ndarray, sd_at_entry: np.ndarray) -> np.ndarray:
    """Which of ``c.leverages`` each new position takes.

    The count mix ``leverage_weights`` is tilted by volatility: weight_k ∝ w_k·exp(−η·ln(σ_t/σ̄)·ln(L_k/10)),
    η = ``leverage_vol_elasticity``: calmer markets choose higher leverage. η = 0 is the plain mix
    (and the same draw as ``Generator.choice`` with the same uniforms).

    Parameters
    ----------
    c : SimulationConfig
    u : np.ndarray
        (n,) uniforms, one per position.
    sd_at_entry : np.ndarray
        (n,) conditional sd of the log return at each entry bar.

    Returns
    -------
    np.ndarray
        (n,) int64 indices into ``c.leverages``.
    """
    w = np.asarray(c.leverage_weights, dtype=float)
    w = w / w.sum()
    if c.leverage_vol_elasticity == 0 or len(u) == 0:
        cdf = np.cumsum(w)
        cdf /= cdf[-1]
        return np.searchsorted(cdf, u, side="right").astype(np.int64)
    lev = np.asarray(c.leverages, dtype=float)
    z = np.log(sd_at_entry / c.bar_sd)
    out = np.empty(len(u), dtype=np.int64)
    chunk = 200_000
    for a in range(0, len(u), chunk):
        logit = np.log(np.maximum(w, 1e-300))[None, :] - c.leverage_vol_elasticity * z[a:a + chunk, None] * np.log(lev / 10.0)[None, :]
        p = np.exp(logit - logit.max(axis=1, keepdims=True)) * (w > 0)
        cdf = np.cumsum(p, axis=1)
        cdf /= cdf[:, -1:]
        out[a:a + chunk] = (cdf < u[a:a + chunk, None]).sum(axis=1)
    return np.minimum(out, len(w) - 1)


def sizes(c: Any, lev_drawn: np.ndarray, normal: np.ndarray, cap: float, rng: np.random.Generator | None,
          kind: np.ndarray | None = None) -> np.ndarray:
    """USD notional of new positions.

    Body: lognormal, median ``size_median_usd·(L/10)^−size_leverage_exponent``, σ ``size_sigma``
    (``normal`` are its standard normals). Tail: a share ``whale_share`` of positions are large
    accounts, Pareto with index ``whale_alpha`` above ``whale_min_usd`` (drawn from ``rng``). All clipped
    at ``min(size_max_usd, cap)``. Large accounts act on events: among breakout and fade arrivals
    (``kind``) the share is ``whale_event_share``.

    Parameters
    ----------
    c : SimulationConfig
    lev_drawn : np.ndarray
        (n,) drawn leverage (x).
    normal : np.ndarray
        (n,) standard normals of the lognormal body.
    cap : float
        Largest notional (USD), e.g. half the venue's tier cap.
    rng : numpy.random.Generator or None
        Stream of the large accounts' draws (None: no large accounts).
    kind : np.ndarray, optional
        (n,) population of each position (KIND_*).

    Returns
    -------
    np.ndarray
        (n,) notional (USD).
    """
    med = c.size_median_usd * (lev_drawn / 10.0) ** (-c.size_leverage_exponent)
    size = med * np.exp(c.size_sigma * normal)
    if (c.whale_share > 0 or c.whale_event_share > 0) and rng is not None and len(size):
        share = np.full(len(size), c.whale_share)
        if kind is not None:
            share[(kind == KIND_BREAKOUT) | (kind == KIND_FADE)] = c.whale_event_share
        whale = rng.random(len(size)) < share
        pareto = c.whale_min_usd * (1.0 - rng.random(len(size))) ** (-1.0 / c.whale_alpha)
        size = np.where(whale, np.maximum(size, pareto), size)
    return np.minimum(size, min(c.size_max_usd, cap))


def attributes(c: Any, rng: np.random.Generator, entry: np.ndarray, side_hint: np.ndarray | None,
               p_long: np.ndarray, sd: np.ndarray) -> dict[str, np.ndarray]:
    """The uniform/normal draws of positions in a fixed order, and the side: one code path for all.

    With no hint the order of draws is the base stream's historical order, so a world without the new
    behaviours reproduces the earlier simulator exactly.

    Parameters
    ----------
    c : SimulationConfig
    rng : numpy.random.Generator
    entry : np.ndarray
        (n,) entry bars (int64).
    side_hint : np.ndarray or None
        (n,) int8: +1 long, −1 short, 0 = drawn like a base trader's side; None = all drawn.
    p_long : np.ndarray
        (bars,) probability that a drawn side is long.
    sd : np.ndarray
        (bars,) conditional sd of each bar's log return.

    Returns
    -------
    dict of str to np.ndarray
        Each (n,): ``side`` (int8 ±1), ``u_lev`` (uniforms for :func:`leverage_choice`), ``z_size`` and
        ``z_hold`` (standard normals), ``u_entry`` (uniform position of the entry in the bar's range),
        ``sd`` (the entry bar's sd).
    """
    n = len(entry)
    u_side = rng.random(n)
    side = np.where(u_side < p_long[entry], 1, -1).astype(np.int8)
    if side_hint is not None:
        side = np.where(side_hint != 0, side_hint, side).astype(np.int8)
    u_lev = rng.random(n)
    z_size = rng.standard_normal(n)
    z_hold = rng.standard_normal(n)
    u_entry = rng.random(n)
    return {"side": side, "u_lev": u_lev, "z_size": z_size, "z_hold": z_hold, "u_entry": u_entry,
            "sd": sd[entry]}
