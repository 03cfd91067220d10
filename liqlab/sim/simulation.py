"""Agent-based simulated perpetual-futures market → a dataset collection plus ``truth/``.

The market, per 1-minute bar (UTC, bars labelled by their open time):

- **Price** (its own RNG stream): a latent index whose 1m log returns follow GARCH(1,1) with
  Student-t innovations; intrabar high/low from the Brownian-bridge extreme distribution. Each venue's
  mark price = index × exp(smooth AR(1) basis); its last price adds small noise and wicks (venue
  streams). Nothing the traders do enters these streams.
- **Traders** (their own streams, per venue): positions arrive (Poisson, busier when volatile), pick a
  side (bias + a little trend following), a USD size (lognormal), a leverage from a configurable mix
  (capped by the venue's tier), a holding time (lognormal, shorter for high leverage). They pay/receive
  funding every 8h (moves their liquidation price, docs/MARGIN.md) and are liquidated when the venue's
  mark high/low reaches their liquidation price (``liqlab.engine.margin``, the venue's tiered rules).
- **Feedback knobs** (both 0 = the null world, price exogenous): ``cascade_impact`` (net forced
  orders move the price within the bar, square-root impact, so liquidations can cascade) and ``hunt_intensity`` (a trader
  drifts the price toward the heavier nearby cluster of liquidation levels).
- Open interest (max of speculators' long and short base units), funding (premium from the long/short
  imbalance, clamped like the exchanges), volume and taker-buy volume follow from the agents.

Positions are individual (about 1e6 for the default 30 days × 3 venues); the per-bar loop keeps each
venue's open longs/shorts in heaps keyed by liquidation price (numba), so the liquidation check costs
O(log n) per liquidation. See docs/SIMULATOR.md for the defaults and the reasoning behind them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from liqlab.errors import ParameterError

__all__ = ["SimulationConfig", "Market", "simulate", "simulate_market", "KNOWN_VENUES", "SIM_VERSION", "WORLDS"]

SIM_VERSION = 2  # bump when the simulator's output for a given config changes (invalidates --reuse)
KNOWN_VENUES = ("binanceusdm", "bybit", "okx")
MINUTES_PER_YEAR = 525_600.0
_HIST_BIN = 0.001  # hunter's histogram of liquidation levels: log-price bins of 10 bp
_HIST_HALF = 4_000  # bins on each side of base_price (± 4 in log price)

# Retail-heavy leverage mix (share of positions by count); see docs/SIMULATOR.md.
DEFAULT_LEVERAGES = (2.0, 3.0, 5.0, 10.0, 20.0, 25.0, 50.0, 75.0, 100.0, 125.0)
DEFAULT_LEVERAGE_WEIGHTS = (0.05, 0.06, 0.12, 0.22, 0.18, 0.10, 0.12, 0.05, 0.06, 0.04)
DEFAULT_VENUE_SHARES = (("binanceusdm", 0.5), ("bybit", 0.3), ("okx", 0.2))

# Named worlds: field overrides applied before the caller's own. 'default' is SimulationConfig's defaults
# (entries bursty in time and price, open interest with the real market's stylized facts);
# 'homogeneous' is the first simulator: a steady Poisson stream, lognormal sizes, a fixed leverage mix.
WORLDS: dict[str, dict[str, Any]] = {
    "default": {},
    "homogeneous": {"arrivals_per_min": 20.0, "activity_vol_elasticity": 0.5,
                    "herding_branching": 0.0, "sentiment_sd": 0.0, "breakout_intensity": 0.0, "fade_intensity": 0.0,
                    "whale_share": 0.0, "whale_event_share": 0.0, "leverage_vol_elasticity": 0.0, "size_max_usd": 1.5e7},
}


@dataclass(frozen=True)
class SimulationConfig:
    """Every knob of the simulated market (units in the names/comments; times UTC)."""

    days: float = 30.0  # simulated (output) span
    world: str = "default"  # the preset the other fields started from (WORLDS); a label, set by make_config
    seed: int = 0  # price and venue-noise streams (and traders unless trader_seed is set)
    venues: tuple[str, ...] = KNOWN_VENUES
    start: str = "2025-01-01T00:00:00+00:00"  # first output bar (UTC, whole minute)
    bar: str = "1m"  # only 1m bars
    symbol: str = "BTC/USDT:USDT"
    base_price: float = 60_000.0  # index price (USD) at `start`
    warmup_days: float = 20.0  # simulated before `start` so the market starts with open positions
    # price: GARCH(1,1) on 1m log returns, Student-t innovations (unit variance)
    annual_vol: float = 0.5  # unconditional volatility (fraction per year)
    garch_alpha: float = 0.03
    garch_beta: float = 0.967
    t_dof: float = 4.0
    # venues: mark = index·exp(basis), last = mark·exp(noise) with wicks
    venue_shares: tuple[tuple[str, float], ...] = DEFAULT_VENUE_SHARES  # share of trader arrivals
    basis_bp: float = 2.0  # sd of the AR(1) mark-index basis (bp)
    basis_halflife_min: float = 30.0
    last_noise_bp: float = 1.0  # sd of last-vs-mark noise at open/close (bp)
    wick_bp: float = 3.0  # scale of last-price wicks beyond the mark's range (bp, half-normal)
    background_volume_usd: float = 4e6  # non-speculator volume per minute, all venues (USD)
    # traders
    trader_seed: int | None = None  # None → seed
    arrivals_per_min: float = 16.0  # new positions per minute over all venues (× venue share)
    activity_vol_elasticity: float = 1.0  # arrivals ∝ (σ_t/σ̄)^this
    long_share: float = 0.52  # probability a new position is long
    trend_following: float = 0.1  # + this·tanh(60m return / its sd) on the long probability
    size_median_usd: float = 100_000.0  # lognormal position notional (USD)
    size_sigma: float = 1.6
    size_leverage_exponent: float = 1.2  # median size ∝ (leverage/10)^(−this): high leverage = small tickets
    size_max_usd: float = 3e8  # clipped (also to half the venue's tier cap)
    leverages: tuple[float, ...] = DEFAULT_LEVERAGES
    leverage_weights: tuple[float, ...] = DEFAULT_LEVERAGE_WEIGHTS  # by count, before tier caps
    holding_median_hours: float = 16.0  # lognormal voluntary holding time at 10x
    holding_sigma: float = 1.0
    holding_max_days: float = 20.0  # voluntary holding times are capped here
    holding_leverage_exponent: float = 0.8  # median ∝ (leverage/10)^(−this)
    # behaviour that concentrates entries in time and price (liqlab.sim.traders; docs/SIMULATOR.md "Traders").
    # The 'homogeneous' world (WORLDS) sets them all to 0: the first simulator's steady Poisson stream.
    herding_branching: float = 0.7  # followers per position (Hawkes branching ratio, < 1); base rate × (1 − this)
    herding_delay_min: float = 2.0  # mean delay of a follower after its parent (minutes, exponential)
    herding_side: float = 0.5  # probability a follower takes its parent's side
    breakout_intensity: float = 2.0  # breakout arrivals per bar per sd beyond the range, × the venue's mean rate
    breakout_window_min: float = 240.0  # the recent range: highest/lowest latent close of this many minutes
    fade_intensity: float = 3.0  # dip-buyers per bar per sd beyond fade_threshold, × the venue's mean rate
    fade_window_min: float = 60.0  # horizon of the move that fade traders react to (minutes)
    fade_threshold: float = 2.0  # |move| in sds of that horizon before fade traders open against it
    whale_share: float = 0.001  # share of positions opened by large accounts (Pareto-tailed sizes)
    whale_event_share: float = 0.03  # the same share among breakout and fade arrivals (large accounts act on events)
    whale_min_usd: float = 2e6  # Pareto scale of large accounts' notional (USD)
    whale_alpha: float = 1.15  # Pareto tail index of large accounts' notional
    sentiment_sd: float = 0.06  # sd of the crowd's swing in long probability (market-wide, slowly mean-reverting)
    sentiment_halflife_hours: float = 48.0  # half-life of those swings
    leverage_vol_elasticity: float = 0.5  # leverage mix tilt: weight ∝ w·exp(−this·ln(σ_t/σ̄)·ln(L/10))
    # funding (every funding_hours from 00:00 UTC; rate = premium + clamp(interest − premium, ±band))
    funding_hours: int = 8
    funding_interest: float = 0.0001
    funding_band: float = 0.0005
    funding_cap: float = 0.003  # |rate| ≤ cap per interval
    funding_sensitivity: float = 0.01  # premium per unit of mean (L − S)/(L + S) notional imbalance
    funding_noise: float = 0.00002  # sd of an exogenous premium term
    # feedback knobs (0 = exogenous price: the magnet null)
    cascade_impact: float = 0.0  # bar's move = this × 1% × sqrt(net forced USD / impact_depth_usd)
    impact_depth_usd: float = 1e8
    impact_halflife_min: float = 60.0  # the price impact decays toward the latent path (inf = permanent)
    hunt_intensity: float = 0.0  # drift per minute toward the heavier side, in units of σ_t
    hunt_range: float = 0.02  # hunter looks at levels within this log distance of the index
    # output
    oi_minutes: int = 5  # open-interest sampling period

    def __post_init__(self) -> None:
        _check_config(self)

    @property
    def venue_share(self) -> dict[str, float]:
        return dict(self.venue_shares)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples → lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def config_hash(self) -> str:
        blob = json.dumps({"config": self.to_dict(), "sim_version": SIM_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _check_config(c: SimulationConfig) -> None:
    def bad(name: str, why: str) -> None:
        raise ParameterError(f"{name}: {why}, got {getattr(c, name)!r}")

    if not (isinstance(c.days, (int, float)) and math.isfinite(c.days) and c.days > 0):
        bad("days", "must be > 0")
    if c.days * 1440 < 1:
        bad("days", "must cover at least one minute")
    if not (isinstance(c.seed, (int, np.integer)) and c.seed >= 0):
        bad("seed", "must be an integer >= 0")
    if c.trader_seed is not None and not (isinstance(c.trader_seed, (int, np.integer)) and c.trader_seed >= 0):
        bad("trader_seed", "must be an integer >= 0 or None")
    if not c.venues:
        bad("venues", "must name at least one venue")
    unknown = [v for v in c.venues if v not in KNOWN_VENUES]
    if unknown:
        raise ParameterError(f"venues: unknown venue(s) {unknown}; known: {', '.join(KNOWN_VENUES)}")
    if len(set(c.venues)) != len(c.venues):
        bad("venues", "has duplicates")
    shares = dict(c.venue_shares)
    missing = [v for v in c.venues if v not in shares]
    if missing:
        raise ParameterError(f"venue_shares: no share for venue(s) {missing}")
    if any(not (s >= 0 and math.isfinite(s)) for s in shares.values()):
        bad("venue_shares", "must be finite and >= 0")
    if c.bar != "1m":
        bad("bar", "only '1m' bars are simulated")
    try:
        ts = _utc(c.start)
    except (ValueError, TypeError):
        bad("start", "must be an ISO UTC time like '2025-01-01T00:00:00Z'")
    if ts != ts.floor("1min"):
        bad("start", "must be a whole minute")
    if "/" not in c.symbol:
        bad("symbol", "must be a ccxt unified symbol like 'BTC/USDT:USDT'")
    pos = ["base_price", "annual_vol", "t_dof", "basis_halflife_min", "impact_depth_usd",
           "impact_halflife_min", "size_median_usd", "size_max_usd", "holding_median_hours", "holding_max_days", "hunt_range"]
    for name in pos:
        v = getattr(c, name)
        if not (isinstance(v, (int, float)) and v > 0 and not math.isnan(v)):
            bad(name, "must be > 0")
    nonneg = ["warmup_days", "basis_bp", "last_noise_bp", "wick_bp", "background_volume_usd", "arrivals_per_min",
              "activity_vol_elasticity", "trend_following", "size_sigma", "size_leverage_exponent", "holding_sigma", "holding_leverage_exponent",
              "funding_interest", "funding_band", "funding_cap", "funding_sensitivity", "funding_noise",
              "cascade_impact", "hunt_intensity", "garch_alpha", "garch_beta", "herding_delay_min",
              "breakout_intensity", "fade_intensity", "fade_threshold", "whale_share", "leverage_vol_elasticity",
              "sentiment_sd"]
    for name in nonneg:
        v = getattr(c, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            bad(name, "must be finite and >= 0")
    for name in ("breakout_window_min", "fade_window_min", "whale_min_usd", "whale_alpha", "sentiment_halflife_hours"):
        v = getattr(c, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            bad(name, "must be finite and > 0")
    if not (0 <= c.herding_branching < 1):
        bad("herding_branching", "must be in [0, 1) (a branching ratio of 1 or more never dies out)")
    for name in ("herding_side", "whale_share", "whale_event_share"):
        if not (0 <= getattr(c, name) <= 1):
            bad(name, "must be in [0, 1]")
    if c.world not in WORLDS:
        raise ParameterError(f"world: unknown world {c.world!r}; known: {', '.join(WORLDS)}")
    if c.t_dof <= 2:
        bad("t_dof", "must be > 2 (finite variance)")
    if c.garch_alpha + c.garch_beta >= 1:
        raise ParameterError(f"garch_alpha + garch_beta must be < 1 (stationary), got {c.garch_alpha + c.garch_beta!r}")
    if not (0 <= c.long_share <= 1):
        bad("long_share", "must be in [0, 1]")
    if len(c.leverages) == 0 or len(c.leverages) != len(c.leverage_weights):
        raise ParameterError("leverages/leverage_weights: need the same, non-zero number of entries")
    if any(not (math.isfinite(x) and x >= 1) for x in c.leverages):
        bad("leverages", "must be finite and >= 1")
    w = np.asarray(c.leverage_weights, dtype=float)
    if not (np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() > 0):
        bad("leverage_weights", "must be >= 0 with a positive sum")
    if not (isinstance(c.funding_hours, (int, np.integer)) and 1 <= c.funding_hours <= 24 and 24 % c.funding_hours == 0):
        bad("funding_hours", "must be an integer dividing 24")
    if not (isinstance(c.oi_minutes, (int, np.integer)) and 1 <= c.oi_minutes <= 1440 and 1440 % c.oi_minutes == 0):
        bad("oi_minutes", "must be an integer dividing 1440")


def _utc(x) -> "Any":
    import pandas as pd

    ts = pd.Timestamp(x)
    if ts is pd.NaT:
        raise ValueError("NaT")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


_FIELDS = {f.name for f in dataclasses.fields(SimulationConfig)}


def make_config(config: SimulationConfig | Mapping[str, Any] | None = None, **overrides: Any) -> SimulationConfig:
    """A SimulationConfig from a config, a dict and/or keyword overrides (unknown names → ParameterError).

    ``world`` (a key of :data:`WORLDS`) picks the preset the other values start from.
    """
    if isinstance(config, SimulationConfig):
        base = config.to_dict()
    elif config is None:
        base = {}
    elif isinstance(config, Mapping):
        base = dict(config)
    else:
        raise ParameterError(f"config: expected SimulationConfig or dict, got {type(config).__name__}")
    # a world's preset sits under the caller's own values (for a SimulationConfig, a world given in the
    # overrides replaces the config's behaviour fields: simulate(cfg, world="homogeneous"))
    world = overrides.get("world", base.get("world", "default"))
    if world not in WORLDS:
        raise ParameterError(f"world: unknown world {world!r}; known: {', '.join(WORLDS)}")
    if isinstance(config, SimulationConfig):
        base = {**base, **(WORLDS[world] if "world" in overrides else {}), **overrides}
    else:
        base = {**WORLDS[world], **base, **overrides}
    unknown = sorted(set(base) - _FIELDS)
    if unknown:
        raise ParameterError(f"unknown simulation parameter(s) {unknown}")
    if "venues" in base:
        v = base["venues"]
        base["venues"] = tuple(s.strip() for s in v.split(",") if s.strip()) if isinstance(v, str) else tuple(v)
    if "venue_shares" in base:
        vs = base["venue_shares"]
        items = vs.items() if isinstance(vs, Mapping) else vs
        base["venue_shares"] = tuple((str(k), float(s)) for k, s in items)
    for name in ("leverages", "leverage_weights"):
        if name in base:
            base[name] = tuple(float(x) for x in base[name])
    return SimulationConfig(**base)


# ------------------------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class Market:
    """A simulated market in memory: the collection, its truth, and phase timings (seconds)."""

    collection: Any  # liqlab.io.dataset.Collection
    truth: Any  # liqlab.sim.truth.Truth
    config: SimulationConfig
    timings: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ streams


def _stream(*key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=key[0], spawn_key=tuple(key[1:]))))


def _venue_key(venue: str) -> int:
    return zlib.crc32(venue.encode())


# --------------------------------------------------------------------------------------------- price


def _latent_path(c: SimulationConfig, nb: int, warm: int) -> dict[str, np.ndarray]:
    """Latent index (log) per bar from the price stream only: open, high, low, close, conditional sd."""
    rng = _stream(c.seed, 0)
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


def _venue_prices(c: SimulationConfig, venue: str, lat: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Exogenous (feedback-free) log mark and last prices of one venue, from the venue's stream."""
    rng = _stream(c.seed, 1, _venue_key(venue))
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


# -------------------------------------------------------------------------------------------- agents


def _agents(c: SimulationConfig, venue: str, lat: dict[str, np.ndarray], vp: dict[str, np.ndarray],
            sentiment: np.ndarray) -> dict[str, np.ndarray]:
    """Pre-drawn positions of one venue (traders' own streams): entry bar, side, size, leverage, plan.

    Base traders come from the venue's trader stream in the order the first simulator drew them, so the
    ``homogeneous`` world is unchanged; breakout, fade and follower arrivals, whale sizes and the
    volatility tilt of leverage use a second stream of the venue (``liqlab.sim.traders``).
    """
    from liqlab.sim import traders
    from liqlab.engine.margin import lp_affine, model_for_venue
    from liqlab.io.tiers import default_tiers

    seed = c.seed if c.trader_seed is None else c.trader_seed
    rng = _stream(seed, 2, _venue_key(venue))
    rng_x = _stream(seed, 3, _venue_key(venue))
    nb = len(lat["close"])
    sd_bar = math.sqrt(c.annual_vol**2 / MINUTES_PER_YEAR)
    lam = traders.base_rate(c, c.venue_share[venue], lat["sd"])
    counts = rng.poisson(lam)
    entry = np.repeat(np.arange(nb, dtype=np.int64), counts)
    # side: bias + trend following on the past hour's latent return
    r60 = np.zeros(nb)
    r60[60:] = lat["close"][60:] - lat["close"][:-60]
    p_long = np.clip(c.long_share + c.trend_following * np.tanh(r60 / (sd_bar * math.sqrt(60.0))) + sentiment,
                     0.02, 0.98)
    base = traders.attributes(c, rng, entry, None, p_long, lat["sd"])
    extra = traders.arrivals(c, lat["close"], lat["sd"], float(c.arrivals_per_min * c.venue_share[venue]),
                             entry, base["side"], rng_x)
    kind = np.zeros(len(entry), np.int8)
    if len(extra):
        more = traders.attributes(c, rng_x, extra.entry, extra.side_hint, p_long, lat["sd"])
        base = {k: np.concatenate([base[k], more[k]]) for k in base}
        entry = np.concatenate([entry, extra.entry])
        kind = np.concatenate([kind, extra.kind])
    n = len(entry)
    side = base["side"]
    tiers = default_tiers(venue, c.symbol, as_of=str(_utc(c.start).date()), fallback=True)
    lev_drawn = np.asarray(c.leverages, dtype=float)[traders.leverage_choice(c, base["u_lev"], base["sd"])]
    size = traders.sizes(c, lev_drawn, base["z_size"], 0.5 * tiers.cap, rng_x, kind)
    tier = tiers.bracket(size)
    lev = np.minimum(lev_drawn, tiers.max_leverage[tier])
    hold_med = c.holding_median_hours * 60.0 * (lev / 10.0) ** (-c.holding_leverage_exponent)
    hold = np.minimum(hold_med * np.exp(c.holding_sigma * base["z_hold"]), c.holding_max_days * 1440.0)
    plan_end = entry + np.maximum(1, np.ceil(hold)).astype(np.int64)
    lo, hi = vp["l_low"][entry], vp["l_high"][entry]
    ep_exo = np.exp(lo + base["u_entry"] * (hi - lo))
    model = model_for_venue(venue)
    rho, _ = lp_affine(lev, side.astype(float), model=model, tiers=tiers, notional=size)
    rho_f, _ = lp_affine(lev, side.astype(float), model=model, tiers=tiers, notional=size, funding=0.01)
    coef = (rho_f - rho) / 0.01  # ∂LP/∂(funding paid per base unit, USD): 1/(1 ∓ MMR) binance, 1 bybit/okx
    if n and not (np.all(np.isfinite(rho)) and np.all(np.isfinite(coef))):
        raise ParameterError(f"{venue}: a position's liquidation price is undefined (size/leverage beyond tiers)")
    return {"entry": entry, "side": side, "notional": size, "lev": lev, "lev_drawn": lev_drawn,
            "tier": (tier + 1).astype(np.int16), "plan_end": plan_end, "ep_exo": ep_exo, "rho": rho,
            "coef": coef, "kind": kind, "tiers": tiers}


# ---------------------------------------------------------------------------------- the bar loop


def _hpush(keys, ids, base, size, key, pid):
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if keys[base + parent] <= key:
            break
        keys[base + i] = keys[base + parent]
        ids[base + i] = ids[base + parent]
        i = parent
    keys[base + i] = key
    ids[base + i] = pid
    return size + 1


def _hsift(keys, ids, base, size, i):
    key = keys[base + i]
    pid = ids[base + i]
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and keys[base + c + 1] < keys[base + c]:
            c += 1
        if keys[base + c] >= key:
            break
        keys[base + i] = keys[base + c]
        ids[base + i] = ids[base + c]
        i = c
    keys[base + i] = key
    ids[base + i] = pid


def _hpop(keys, ids, base, size):
    size -= 1
    if size > 0:
        keys[base] = keys[base + size]
        ids[base] = ids[base + size]
        _hsift(keys, ids, base, size, 0)
    return size


def _hbin(lp, origin, nbins):
    if lp <= 0.0:
        return 0
    b = int((math.log(lp) - origin) / 0.001)
    return min(max(b, 0), nbins - 1)


def _market_loop(mhi, mlo, mcl, idx_cl, sd, fund_bar, fund_noise,
                 p_venue, p_side, p_entry, p_notional, p_ep_exo, p_rho, p_coef, close_order, p_plan_end,
                 heap_off, prm,
                 status, end_bar, ep, q, lp0, cidx, lp_cur,
                 imp_start, imp_min, imp_max, imp_end, oi, flows, frate, cindex):
    """Sequential market over all bars (see module docstring). Writes into the output arrays.

    oi[v, k, t]: k = 0 long base, 1 short base, 2 long USD, 3 short USD (state after bar t).
    flows[v, k, t]: speculators' base units: k = 0 bought, 1 sold (opens, closes, liquidations).
    """
    nv, nb = mcl.shape
    n = p_entry.shape[0]
    cascade, depth, decay, hunt, hunt_bins = prm[0], prm[1], prm[2], prm[3], int(prm[4])
    origin, interest, band, cap, sens = prm[5], prm[6], prm[7], prm[8], prm[9]
    nh = int(prm[10])
    hunting = hunt > 0.0
    hkey = np.empty((2, max(n, 1)))
    hid = np.empty((2, max(n, 1)), dtype=np.int64)
    hsize = np.zeros((2, nv), dtype=np.int64)
    hist = np.zeros((2, nh))
    hb = np.zeros(max(n, 1), dtype=np.int64)
    C = np.zeros(nv)
    imb_sum = np.zeros(nv)
    imb_n = np.zeros(nv)
    tot = np.zeros((nv, 4))
    imp = 0.0
    po = 0
    pc = 0
    for t in range(nb):
        # ---- funding at the open of bar t: rate from the interval's imbalance; LPs move; heaps rebuilt
        if fund_bar[t] and t > 0:
            for v in range(nv):
                avg = imb_sum[v] / imb_n[v] if imb_n[v] > 0 else 0.0
                prem = sens * avg + fund_noise[v, t]
                rate = prem + min(max(interest - prem, -band), band)
                rate = min(max(rate, -cap), cap)
                C[v] += rate * mcl[v, t - 1] * math.exp(imp_end[t - 1])
                frate[v, t] = rate
                imb_sum[v] = 0.0
                imb_n[v] = 0.0
                base = heap_off[v]
                for s in range(2):
                    k = 0
                    for j in range(hsize[s, v]):
                        pid = hid[s, base + j]
                        if status[pid] == 1:
                            new = lp0[pid] + p_coef[pid] * (C[v] - cidx[pid])
                            if hunting:
                                hist[s, hb[pid]] -= p_notional[pid]
                                hb[pid] = _hbin(new, origin, nh)
                                hist[s, hb[pid]] += p_notional[pid]
                            lp_cur[pid] = new
                            hkey[s, base + k] = -new if s == 0 else new
                            hid[s, base + k] = pid
                            k += 1
                    hsize[s, v] = k
                    for i in range(k // 2 - 1, -1, -1):
                        _hsift(hkey[s], hid[s], base, k, i)
        for v in range(nv):
            cindex[v, t] = C[v]
        # ---- liquidations: mark low/high against the heap tops; forced flow may cascade
        imp_start[t] = imp
        lo = imp
        hi = imp
        net = 0.0  # net forced selling in this bar (USD): long liquidations sell, short ones buy
        for _ in range(100):
            flow_long = 0.0
            flow_short = 0.0
            for v in range(nv):
                base = heap_off[v]
                thr = -(mlo[v, t] * math.exp(lo))
                while hsize[0, v] > 0 and hkey[0, base] <= thr:
                    pid = hid[0, base]
                    hsize[0, v] = _hpop(hkey[0], hid[0], base, hsize[0, v])
                    if status[pid] == 1:
                        status[pid] = 3
                        end_bar[pid] = t
                        flow_long += q[pid] * lp_cur[pid]
                        tot[v, 0] -= q[pid]
                        tot[v, 2] -= p_notional[pid]
                        flows[v, 1, t] += q[pid]
                        if hunting:
                            hist[0, hb[pid]] -= p_notional[pid]
                thr = mhi[v, t] * math.exp(hi)
                while hsize[1, v] > 0 and hkey[1, base] <= thr:
                    pid = hid[1, base]
                    hsize[1, v] = _hpop(hkey[1], hid[1], base, hsize[1, v])
                    if status[pid] == 1:
                        status[pid] = 3
                        end_bar[pid] = t
                        flow_short += q[pid] * lp_cur[pid]
                        tot[v, 1] -= q[pid]
                        tot[v, 3] -= p_notional[pid]
                        flows[v, 0, t] += q[pid]
                        if hunting:
                            hist[1, hb[pid]] -= p_notional[pid]
            if cascade == 0.0 or (flow_long == 0.0 and flow_short == 0.0):
                break
            # square-root impact of the bar's cumulative net forced flow (concave: cascades stay finite)
            net += flow_long - flow_short
            jump = cascade * 0.01 * math.sqrt(abs(net) / depth)
            imp = imp_start[t] - jump if net > 0 else imp_start[t] + jump
            lo = min(lo, imp)
            hi = max(hi, imp)
        imp_min[t] = lo
        imp_max[t] = hi
        imp_end[t] = imp
        # ---- voluntary closes planned for this bar
        while pc < n and p_plan_end[close_order[pc]] <= t:
            pid = close_order[pc]
            pc += 1
            if status[pid] == 1:
                status[pid] = 2
                end_bar[pid] = t
                v = p_venue[pid]
                s = 0 if p_side[pid] == 1 else 1
                tot[v, s] -= q[pid]
                tot[v, 2 + s] -= p_notional[pid]
                flows[v, 1 - s, t] += q[pid]  # a long closes by selling
                if hunting:
                    hist[s, hb[pid]] -= p_notional[pid]
        # ---- new positions (checked for liquidation from the next bar on)
        while po < n and p_entry[po] == t:
            pid = po
            po += 1
            v = p_venue[pid]
            s = 0 if p_side[pid] == 1 else 1
            e = p_ep_exo[pid] * math.exp(imp_start[t])
            ep[pid] = e
            q[pid] = p_notional[pid] / e
            lp = p_rho[pid] * e
            lp0[pid] = lp
            lp_cur[pid] = lp
            cidx[pid] = C[v]
            status[pid] = 1
            hsize[s, v] = _hpush(hkey[s], hid[s], heap_off[v], hsize[s, v], -lp if s == 0 else lp, pid)
            tot[v, s] += q[pid]
            tot[v, 2 + s] += p_notional[pid]
            flows[v, s, t] += q[pid]  # a long opens by buying
            if hunting:
                hb[pid] = _hbin(lp, origin, nh)
                hist[s, hb[pid]] += p_notional[pid]
        for v in range(nv):
            for k in range(4):
                oi[v, k, t] = tot[v, k]
            both = tot[v, 2] + tot[v, 3]
            if both > 0:
                imb_sum[v] += (tot[v, 2] - tot[v, 3]) / both
                imb_n[v] += 1.0
        # ---- impact decays; the hunter pushes toward the heavier nearby side
        drift = 0.0
        if hunting and t + 1 < nb:
            ib = _hbin(idx_cl[t] * math.exp(imp), origin, nh)
            below = 0.0
            above = 0.0
            for d in range(1, hunt_bins + 1):
                w = 1.0 - (d - 0.5) / hunt_bins
                if ib - d >= 0:
                    below += w * hist[0, ib - d]
                if ib + d < nh:
                    above += w * hist[1, ib + d]
            if above + below > 0:
                drift = hunt * sd[t + 1] * (above - below) / (above + below)
        imp = imp * decay + drift


_JIT: dict[str, Any] = {}
_JIT_LOCK = threading.Lock()


def _kernel():
    """The numba-compiled bar loop (compiled once per process, cached on disk)."""
    with _JIT_LOCK:
        if "loop" not in _JIT:
            import numba

            g = globals()
            for name in ("_hpush", "_hsift", "_hpop", "_hbin"):  # the loop calls them by global name
                g[name] = numba.njit(cache=True, nogil=True)(g[name])
            _JIT["loop"] = numba.njit(cache=True, nogil=True)(_market_loop)
        return _JIT["loop"]


# ------------------------------------------------------------------------------------------ assembly


def simulate_market(config: SimulationConfig | Mapping[str, Any] | None = None, *, progress: bool | None = False,
                    **overrides: Any) -> Market:
    """Simulate in memory (no files): the fast path for calibration. Returns a :class:`Market`."""
    import pandas as pd

    from liqlab.sim import traders
    from liqlab.io.dataset import Collection, Dataset, make_meta, validate_table
    from liqlab.sim.truth import Truth

    c = make_config(config, **overrides)
    timings: dict[str, float] = {}
    bar = _progress(progress, total=4)
    t0 = time.perf_counter()

    start = _utc(c.start)
    warm = int(round(c.warmup_days * 1440))
    nout = int(round(c.days * 1440))
    nb = warm + nout
    start_min = int(start.value // 60_000_000_000)
    minute = start_min - warm + np.arange(nb, dtype=np.int64)  # minutes since epoch of each bar's open
    times = pd.DatetimeIndex((minute * 60_000_000_000).astype("datetime64[ns]"), tz="UTC")

    lat = _latent_path(c, nb, warm)
    vps = [_venue_prices(c, v, lat) for v in c.venues]
    timings["prices"] = time.perf_counter() - t0
    bar.update(1)

    t1 = time.perf_counter()
    sentiment = traders.sentiment(c, nb, _stream(c.trader_seed if c.trader_seed is not None else c.seed, 4))
    ags = [_agents(c, v, lat, vp, sentiment) for v, vp in zip(c.venues, vps)]
    nv = len(c.venues)
    cat = {k: np.concatenate([a[k] for a in ags]) for k in ("entry", "side", "notional", "lev", "lev_drawn", "tier",
                                                             "plan_end", "ep_exo", "rho", "coef", "kind")}
    vidx = np.concatenate([np.full(len(a["entry"]), i, dtype=np.int64) for i, a in enumerate(ags)])
    heap_off = np.zeros(nv + 1, dtype=np.int64)
    heap_off[1:] = np.cumsum([len(a["entry"]) for a in ags])
    order = np.argsort(cat["entry"], kind="stable")
    cat = {k: v[order] for k, v in cat.items()}
    vidx = vidx[order]
    n = len(vidx)
    close_order = np.argsort(cat["plan_end"], kind="stable").astype(np.int64)
    timings["traders"] = time.perf_counter() - t1
    bar.update(1)

    t2 = time.perf_counter()
    loop = _kernel()
    fund_period = c.funding_hours * 60
    fund_bar = (minute % fund_period) == 0
    mhi = np.exp(np.stack([vp["m_high"] for vp in vps]))
    mlo = np.exp(np.stack([vp["m_low"] for vp in vps]))
    mcl = np.exp(np.stack([vp["m_close"] for vp in vps]))
    fnoise = np.stack([vp["fund_noise"] for vp in vps])
    idx_close = np.exp(lat["close"])
    decay = 0.5 ** (1.0 / c.impact_halflife_min) if math.isfinite(c.impact_halflife_min) else 1.0
    origin = math.log(c.base_price) - _HIST_HALF * _HIST_BIN
    prm = np.array([c.cascade_impact, c.impact_depth_usd, decay, c.hunt_intensity,
                    max(1, int(round(c.hunt_range / _HIST_BIN))), origin, c.funding_interest, c.funding_band,
                    c.funding_cap, c.funding_sensitivity, 2 * _HIST_HALF], dtype=np.float64)
    status = np.zeros(n, dtype=np.int8)
    end_bar = np.full(n, -1, dtype=np.int64)
    ep, q, lp0, cidx, lp_cur = (np.zeros(n) for _ in range(5))
    imp_start, imp_min, imp_max, imp_end = (np.zeros(nb) for _ in range(4))
    oi = np.zeros((nv, 4, nb))
    flows = np.zeros((nv, 2, nb))
    frate = np.zeros((nv, nb))
    cindex = np.zeros((nv, nb))
    loop(mhi, mlo, mcl, idx_close, lat["sd"], fund_bar, fnoise,
         vidx, cat["side"], cat["entry"], cat["notional"], cat["ep_exo"], cat["rho"], cat["coef"], close_order,
         cat["plan_end"], heap_off, prm,
         status, end_bar, ep, q, lp0, cidx, lp_cur, imp_start, imp_min, imp_max, imp_end, oi, flows, frate, cindex)
    timings["market"] = time.perf_counter() - t2
    bar.update(1)

    # ---- tables
    t3 = time.perf_counter()
    w0 = warm
    out_times = times[w0:]
    created = start.isoformat()
    note = ("SYNTHETIC: simulated by liqlab.sim.simulation (agent-based market; not real exchange data); "
            f"seed {c.seed}, config {c.config_hash()}")
    vol_scale = lat["sd"] / math.sqrt(c.annual_vol**2 / MINUTES_PER_YEAR)
    oi_bars = np.flatnonzero((minute[w0:] % c.oi_minutes) == 0) + w0  # OI at the instant each such bar opens
    datasets = []
    ev_frames = []
    bar_frames = []
    fund_frames = []
    status_name = np.array(["open", "open", "closed", "liquidated"], dtype=object)
    for i, venue in enumerate(c.venues):
        vp = vps[i]
        ags_t = ags[i]["tiers"]
        e_open, e_min, e_max, e_end = (np.exp(a[w0:]) for a in (imp_start, imp_min, imp_max, imp_end))
        o = np.exp(vp["l_open"][w0:]) * e_open
        h = np.exp(vp["l_high"][w0:]) * e_max
        lo_ = np.exp(vp["l_low"][w0:]) * e_min
        cl = np.exp(vp["l_close"][w0:]) * e_end
        mark = mcl[i, w0:] * e_end
        bg_usd = c.background_volume_usd * c.venue_share[venue] * vol_scale[w0:] * vp["vol_noise"][w0:]
        z = lat["ret"][w0:] / lat["sd"][w0:]
        share = np.clip(0.5 + 0.15 * np.tanh(z) + 0.05 * vp["taker_noise"][w0:], 0.02, 0.98)
        buy = flows[i, 0, w0:]
        sell = flows[i, 1, w0:]
        volume = bg_usd / cl + buy + sell
        taker_buy = np.minimum(bg_usd * share / cl + buy, volume)
        ohlcv = pd.DataFrame({"ts": out_times, "open": o, "high": h, "low": lo_, "close": cl, "volume": volume,
                              "taker_buy_volume": taker_buy, "mark_close": mark})
        prev = oi_bars - 1
        has_prev = prev >= 0
        oi_base = np.where(has_prev, np.maximum(oi[i, 0, np.maximum(prev, 0)], oi[i, 1, np.maximum(prev, 0)]), 0.0)
        oi_px = np.where(has_prev, mcl[i, np.maximum(prev, 0)] * np.exp(imp_end[np.maximum(prev, 0)]),
                         mcl[i, oi_bars])
        oi_df = pd.DataFrame({"ts": times[oi_bars], "open_interest": oi_base, "open_interest_value": oi_base * oi_px})
        fb = np.flatnonzero(fund_bar & (np.arange(nb) > 0))
        fb_out = fb[fb >= w0]
        funding = pd.DataFrame({"ts": times[fb_out], "funding_rate": frate[i, fb_out]})
        fund_frames.append(pd.DataFrame({
            "ts": times[fb], "venue": venue, "funding_rate": frate[i, fb],
            "mark_price": mcl[i, fb - 1] * np.exp(imp_end[fb - 1]), "index": cindex[i, fb]}))
        sel = np.flatnonzero((vidx == i) & (status == 3) & (end_bar >= w0))
        sel = sel[np.lexsort((sel, end_bar[sel]))]
        sides = np.where(cat["side"][sel] == 1, "long", "short").astype(object)
        liq = pd.DataFrame({"ts": times[end_bar[sel]], "side": sides, "price": lp_cur[sel], "amount": q[sel],
                            "value": q[sel] * lp_cur[sel]})
        ev_frames.append(liq.assign(venue=venue, position_id=sel.astype(np.int64)))
        meta = make_meta(venue, c.symbol, source="liqlab.sim.simulation", synthetic=True, created_at=created,
                         notes=note, simulation={"seed": c.seed, "config_hash": c.config_hash(),
                                                 "sim_version": SIM_VERSION},
                         tiers_as_of=ags_t.as_of)
        datasets.append(Dataset(meta=meta, ohlcv=validate_table("ohlcv", ohlcv), open_interest=validate_table(
            "open_interest", oi_df), funding=validate_table("funding", funding),
            liquidations=validate_table("liquidations", liq), leverage_tiers=ags_t.to_frame()))
        bar_frames.append(pd.DataFrame({
            "ts": out_times, "venue": venue, "mark_high": mhi[i, w0:] * e_max, "mark_low": mlo[i, w0:] * e_min,
            "mark_close": mark, "long_open_usd": oi[i, 2, w0:], "short_open_usd": oi[i, 3, w0:],
            "long_open_base": oi[i, 0, w0:], "short_open_base": oi[i, 1, w0:]}))

    keep = np.flatnonzero((status == 1) | (end_bar >= w0))
    ends = end_bar[keep]
    is_open = status[keep] == 1
    end_ns = np.where(is_open, np.iinfo(np.int64).min, (start_min - warm + np.maximum(ends, 0)) * 60_000_000_000)
    end_ts = pd.DatetimeIndex(end_ns.astype("datetime64[ns]"), tz="UTC")
    venues_arr = np.asarray(c.venues, dtype=object)
    ledger = pd.DataFrame({
        "position_id": keep.astype(np.int64),
        "venue": venues_arr[vidx[keep]],
        "side": np.where(cat["side"][keep] == 1, "long", "short").astype(object),
        "notional_usd": cat["notional"][keep],
        "amount": q[keep],
        "leverage": cat["lev"][keep],
        "leverage_drawn": cat["lev_drawn"][keep],
        "tier": cat["tier"][keep],
        "population": np.asarray(traders.KIND_NAMES, dtype=object)[cat["kind"][keep]],
        "entry_time": times[cat["entry"][keep]],
        "entry_price": ep[keep],
        "liq_price_initial": lp0[keep],
        "lp_funding_coef": cat["coef"][keep],
        "funding_index_entry": cidx[keep],
        "planned_end_time": pd.DatetimeIndex(
            ((start_min - warm + cat["plan_end"][keep]) * 60_000_000_000).astype("datetime64[ns]"), tz="UTC"),
        "end_time": end_ts,
        "status": status_name[status[keep]],
        "liq_price_end": lp_cur[keep],
    })
    events = pd.concat(ev_frames, ignore_index=True)
    events = events.sort_values(["ts", "position_id"], kind="stable").reset_index(drop=True)
    events = events[["ts", "venue", "side", "price", "amount", "value", "position_id"]]
    bars_df = pd.concat(bar_frames, ignore_index=True)
    fund_df = pd.concat(fund_frames, ignore_index=True).sort_values(["venue", "ts"], kind="stable").reset_index(drop=True)
    index_df = pd.DataFrame({"ts": out_times, "latent_close": idx_close[w0:], "index_close": idx_close[w0:] * np.exp(
        imp_end[w0:]), "impact": imp_end[w0:], "sigma": lat["sd"][w0:]})
    truth_cfg = _truth_config(c, ledger, [a["tiers"] for a in ags])
    truth = Truth(ledger=ledger, events=events, funding_index=fund_df,
                  leverage_mix={"leverages": truth_cfg["leverages"], "leverage_weights": truth_cfg["leverage_weights"]},
                  config=truth_cfg, bars=bars_df, index=index_df, path=None)
    coll = Collection(datasets=tuple(datasets), path=None, meta=_collection_meta(c))
    timings["tables"] = time.perf_counter() - t3
    bar.update(1)
    bar.close()
    return Market(collection=coll, truth=truth, config=c, timings=timings)


def _truth_config(c: SimulationConfig, ledger, tiers) -> dict[str, Any]:
    levels = np.asarray(c.leverages, dtype=float)
    w_count = np.asarray(c.leverage_weights, dtype=float)
    w_count = w_count / w_count.sum()
    expected = w_count * (levels / 10.0) ** (-c.size_leverage_exponent)  # E[size | leverage] ∝ this
    expected = expected / expected.sum()
    new = ledger["entry_time"] >= _utc(c.start)
    lev = ledger["leverage_drawn"].to_numpy()[new.to_numpy()]
    notional = ledger["notional_usd"].to_numpy()[new.to_numpy()]
    k = np.clip(np.searchsorted(levels, lev), 0, len(levels) - 1)
    realized = np.bincount(k, weights=notional, minlength=len(levels))
    realized = realized / realized.sum() if realized.sum() > 0 else expected
    capped_mask = ledger["leverage"].to_numpy()[new.to_numpy()] < lev
    capped = float(notional[capped_mask].sum() / notional.sum()) if notional.sum() > 0 else 0.0
    return {
        "synthetic": True,
        "source": "liqlab.sim.simulation",
        "sim_version": SIM_VERSION,
        "config_hash": c.config_hash(),
        "config": c.to_dict(),
        "leverages": [float(x) for x in levels],
        "leverage_weights": [float(x) for x in realized],
        "expected_notional_weights": [float(x) for x in expected],
        "count_weights": [float(x) for x in w_count],
        "tier_capped_notional_share": capped,
        "leverage_mix_note": ("leverage_weights: the TRUE MIX as shares of the new USD notional opened during the "
                              "simulated span, by drawn leverage (what a heatmap engine's deposit weights "
                              "estimate); expected_notional_weights: its expectation, count_weights × "
                              "(leverage/10)^-size_leverage_exponent normalised (before size clipping); "
                              "count_weights: shares of new positions by count (the config); "
                              "tier_capped_notional_share: new notional whose leverage the venue's tier "
                              "capped below the drawn one (its LP uses the capped leverage)"),
        "tiers": {t.venue if t.venue != "generic" else v: {"as_of": t.as_of, "source": t.source}
                  for v, t in zip(c.venues, tiers)},
        "conventions": {
            "times": "UTC; bars labelled by open time; entry_time/end_time = open time of the bar it happened in",
            "outstanding": "a position is outstanding at instant tau iff entry_time < tau <= end_time (NaT = open)",
            "liq_price": ("LP(tau) = liq_price_initial + lp_funding_coef * (index(tau) - funding_index_entry), "
                          "index(tau) = funding_index 'index' of the venue at the last funding ts <= tau (0 before)"),
            "open_interest": "base units = max(speculators' long, short); at the instant ts (after bars opening before ts)",
            "notional": "USD notional at entry",
        },
    }


def _collection_meta(c: SimulationConfig) -> dict[str, Any]:
    return {"synthetic": True, "source": "liqlab.sim.simulation", "symbol": c.symbol, "venues": list(c.venues),
            "seed": c.seed, "config_hash": c.config_hash(), "sim_version": SIM_VERSION,
            "notes": "SYNTHETIC simulated market; ground truth in truth/ (see docs/SIMULATOR.md)"}


def _progress(progress: bool | None, total: int):
    from tqdm.auto import tqdm

    if progress is None:
        progress = sys.stderr.isatty()
    return tqdm(total=total, desc="simulate", disable=not progress, leave=False)


# ---------------------------------------------------------------------------------------------- write


def is_simulation(path: str | os.PathLike) -> bool:
    """True when ``path`` holds a collection written by :func:`simulate` (it has truth/config.json)."""
    f = Path(path) / "truth" / "config.json"
    try:
        return json.loads(f.read_text()).get("source") == "liqlab.sim.simulation"
    except (OSError, ValueError, AttributeError):
        return False


def same_simulation(path: str | os.PathLike, config: SimulationConfig) -> bool:
    """True when ``path`` already holds a complete simulation of exactly this config."""
    f = Path(path) / "truth" / "config.json"
    try:
        saved = json.loads(f.read_text())
    except (OSError, ValueError):
        return False
    return saved.get("config_hash") == config.config_hash() and saved.get("config") == config.to_dict() and all(
        (Path(path) / v / "meta.json").exists() for v in config.venues)


def write_market(market: Market, out: str | os.PathLike) -> Path:
    """Write the collection (one dataset dir per venue), collection.json and truth/ atomically."""
    from liqlab.io import atomic
    from liqlab.io.dataset import write_dataset

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not is_simulation(out):
        raise ParameterError(f"--out {out}: folder exists and does not hold a liqlab simulation; "
                             "choose an empty or new folder (existing data is never overwritten)")
    tr = market.truth
    with atomic.atomic_dir(out) as stage:
        for ds in market.collection.datasets:
            write_dataset(ds, stage / ds.venue)
        tdir = stage / "truth"
        tdir.mkdir()
        atomic.write_parquet(tdir / "ledger.parquet", tr.ledger)
        atomic.write_parquet(tdir / "events.parquet", tr.events)
        atomic.write_parquet(tdir / "funding_index.parquet", tr.funding_index)
        atomic.write_parquet(tdir / "bars.parquet", tr.bars)
        atomic.write_parquet(tdir / "index.parquet", tr.index)
        atomic.write_json(tdir / "config.json", tr.config)
        atomic.write_json(stage / "collection.json", market.collection.meta)
    return out


def simulate(config: SimulationConfig | Mapping[str, Any] | None = None, out: str | os.PathLike | None = None, *,
             progress: bool | None = None, reuse: bool = False, **overrides: Any):
    """Simulate a market; write it to ``out`` (collection + truth/) if given; return the Collection.

    ``config``: a SimulationConfig or dict; keyword overrides win (e.g. ``simulate(days=3, seed=1)``).
    ``reuse``: if ``out`` already holds a simulation of the same config, load and return it unchanged.
    The returned collection's ``meta`` has ``timings`` (seconds per phase) when it was just simulated.
    """
    import dataclasses as dc

    from liqlab.io.dataset import load_collection

    c = make_config(config, **overrides)
    if out is not None:
        o = Path(out)
        if o.exists() and not o.is_dir():
            raise ParameterError(f"--out {o}: exists and is not a directory")
        if o.is_dir() and any(o.iterdir()) and not is_simulation(o):
            raise ParameterError(f"--out {o}: folder exists and does not hold a liqlab simulation; "
                                 "choose an empty or new folder (existing data is never overwritten)")
        if reuse and same_simulation(o, c):
            coll = load_collection(o)
            return dc.replace(coll, meta={**coll.meta, "reused": True})
    market = simulate_market(c, progress=progress)
    timings = dict(market.timings)
    if out is None:
        return dc.replace(market.collection, meta={**market.collection.meta, "timings": timings})
    t = time.perf_counter()
    write_market(market, out)
    timings["write"] = time.perf_counter() - t
    coll = load_collection(out)
    return dc.replace(coll, meta={**coll.meta, "timings": timings})
