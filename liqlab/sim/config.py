"""The simulated market's knobs: :class:`SimulationConfig`, the named worlds, and :func:`make_config`.

Every field has its unit in its name or comment (USD, base units, minutes, fractions; times UTC); what the
knobs model and why the defaults are what they are is in docs/SIMULATOR.md. A world (:data:`WORLDS`) is a
preset of fields the caller's own values override. The config is checked when it is made: a bad value
raises :class:`~liqlab.errors.ParameterError` naming the field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from liqlab._util import VENUES, utc
from liqlab.errors import ParameterError

__all__ = ["SimulationConfig", "make_config", "WORLDS", "SYMBOL_PRESETS", "SYMBOL_SEED_OFFSETS", "symbol_names", "SIM_VERSION", "POPULATION_LEVERAGES",
           "POPULATION_LEVERAGE_WEIGHTS", "DEFAULT_VENUE_SHARES", "MINUTES_PER_YEAR"]

SIM_VERSION = 2  # bump when the simulator's output for a given config changes (invalidates --reuse)
MINUTES_PER_YEAR = 525_600.0

POPULATION_LEVERAGES: tuple[float, ...] = (2.0, 3.0, 5.0, 10.0, 20.0, 25.0, 50.0, 75.0, 100.0, 125.0)
"""Leverages the simulated traders choose from (x), with :data:`POPULATION_LEVERAGE_WEIGHTS`.

This is the TRUE population of the simulated market (a retail-heavy mix, docs/SIMULATOR.md). It is not
:data:`liqlab.engine.params.DEFAULT_LEVERAGES`, the layers a heatmap is built from (an estimate's
leverage set, without 2x and 3x); the two differ on purpose, so the engine never gets the truth for free.
"""

POPULATION_LEVERAGE_WEIGHTS: tuple[float, ...] = (0.05, 0.06, 0.12, 0.22, 0.18, 0.10, 0.12, 0.05, 0.06, 0.04)
"""Share of new positions (by count, before tier caps) at each of :data:`POPULATION_LEVERAGES`."""

DEFAULT_VENUE_SHARES: tuple[tuple[str, float], ...] = (("binanceusdm", 0.5), ("bybit", 0.3), ("okx", 0.2))
"""Share of trader arrivals per venue."""

WORLDS: dict[str, dict[str, Any]] = {
    "default": {},
    "homogeneous": {"arrivals_per_min": 20.0, "activity_vol_elasticity": 0.5,
                    "herding_branching": 0.0, "sentiment_sd": 0.0, "breakout_intensity": 0.0, "fade_intensity": 0.0,
                    "whale_share": 0.0, "whale_event_share": 0.0, "leverage_vol_elasticity": 0.0, "size_max_usd": 1.5e7},
}
"""Named worlds: field overrides applied before the caller's own.

'default' is :class:`SimulationConfig`'s defaults (entries bursty in time and price, open interest with
the real market's stylized facts); 'homogeneous' is the first simulator: a steady Poisson stream,
lognormal sizes, a fixed leverage mix.
"""

SYMBOL_PRESETS: dict[str, dict[str, Any]] = {
    "BTC": {"symbol": "BTC/USDT:USDT", "base_price": 60_000.0, "annual_vol": 0.5, "arrivals_per_min": 16.0,
            "size_median_usd": 100_000.0, "whale_min_usd": 2e6, "size_max_usd": 3e8, "background_volume_usd": 4e6},
    "ETH": {"symbol": "ETH/USDT:USDT", "base_price": 3_300.0, "annual_vol": 0.65, "arrivals_per_min": 12.0,
            "size_median_usd": 60_000.0, "whale_min_usd": 1.2e6, "size_max_usd": 1.5e8, "background_volume_usd": 2.4e6},
}
"""Per-asset presets (``make_config(asset=...)``): the ccxt symbol, the index price at the start (USD), the
annual volatility, and the scale of open interest (arrivals per minute, position sizes in USD) and of
traded volume (background USD per minute).

BTC is exactly :class:`SimulationConfig`'s defaults. ETH is scaled to the early-2025 USD-M perpetual
markets in round numbers: price about 3,300 USD, volatility about 1.3 × BTC's, open interest about 0.45 ×
and traded volume about 0.6 × BTC's in USD. Values the caller gives win over the preset.
"""

SYMBOL_SEED_OFFSETS: dict[str, int] = {"BTC": 0, "ETH": 1_000_003}
"""Added to ``seed`` by a preset, so two assets simulated with the same seed get independent paths
(BTC's offset is 0: its markets are those of the plain seed). ETH's offset is far from any seed range in use,
so ETH at seed s never shares its random streams with BTC at a neighbouring seed."""


def symbol_names(text: str | tuple | list) -> tuple[str, ...]:
    """Asset names of :data:`SYMBOL_PRESETS` from comma-separated text or a list (upper-cased, checked).

    Parameters
    ----------
    text : str, tuple or list
        E.g. ``'BTC,ETH'``.

    Returns
    -------
    tuple of str
        The names, in the given order.

    Raises
    ------
    ParameterError
        Empty, a duplicate, or an unknown asset (the known ones are listed).
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(str(x).strip().upper() for x in items if str(x).strip())
    if not names:
        raise ParameterError(f"symbols: name at least one of {', '.join(SYMBOL_PRESETS)}")
    unknown = [n for n in names if n not in SYMBOL_PRESETS]
    if unknown:
        raise ParameterError(f"symbols: unknown asset(s) {unknown}; known: {', '.join(SYMBOL_PRESETS)}")
    if len(set(names)) != len(names):
        raise ParameterError(f"symbols: {','.join(names)} has duplicates")
    return names


@dataclass(frozen=True)
class SimulationConfig:
    """Every knob of the simulated market (units in the names/comments; times UTC)."""

    days: float = 30.0  # simulated (output) span
    world: str = "default"  # the preset the other fields started from (WORLDS); a label, set by make_config
    seed: int = 0  # price and venue-noise streams (and traders unless trader_seed is set)
    venues: tuple[str, ...] = VENUES
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
    leverages: tuple[float, ...] = POPULATION_LEVERAGES
    leverage_weights: tuple[float, ...] = POPULATION_LEVERAGE_WEIGHTS  # by count, before tier caps
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
    margin_topup: float = 0.0  # probability that a position about to be liquidated adds margin instead (once)
    # output
    oi_minutes: int = 5  # open-interest sampling period

    def __post_init__(self) -> None:
        _check_config(self)

    @property
    def bar_sd(self) -> float:
        """The unconditional sd of a 1-minute log return, ``annual_vol / sqrt(MINUTES_PER_YEAR)`` (σ̄)."""
        return math.sqrt(self.annual_vol**2 / MINUTES_PER_YEAR)

    @property
    def venue_share(self) -> dict[str, float]:
        """Share of trader arrivals per venue, ``{venue: share}``."""
        return dict(self.venue_shares)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON values.

        Returns
        -------
        dict
            Every field; tuples become lists. A field added later (``_LATER_FIELDS``) is left out while it
            holds its default, so older configurations keep their hash and outputs.
        """
        d = json.loads(json.dumps(dataclasses.asdict(self)))
        for name, default in _LATER_FIELDS.items():
            if d.get(name) == default:
                del d[name]
        return d

    def config_hash(self) -> str:
        """A short fingerprint of the config and :data:`SIM_VERSION` (16 hex digits).

        Returns
        -------
        str
            Equal for configs that simulate the same market (``--reuse`` and the datasets' meta use it).
        """
        blob = json.dumps({"config": self.to_dict(), "sim_version": SIM_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _bad(c: SimulationConfig, name: str, why: str) -> None:
    raise ParameterError(f"{name}: {why}, got {getattr(c, name)!r}")


def _check_config(c: SimulationConfig) -> None:
    """Raise ParameterError naming the first bad field (checks run in this order)."""
    _check_span_and_venues(c)
    _check_numbers(c)
    _check_mix_and_periods(c)


def _check_span_and_venues(c: SimulationConfig) -> None:
    if not (isinstance(c.days, (int, float)) and math.isfinite(c.days) and c.days > 0):
        _bad(c, "days", "must be > 0")
    if c.days * 1440 < 1:
        _bad(c, "days", "must cover at least one minute")
    if not (isinstance(c.seed, (int, np.integer)) and c.seed >= 0):
        _bad(c, "seed", "must be an integer >= 0")
    if c.trader_seed is not None and not (isinstance(c.trader_seed, (int, np.integer)) and c.trader_seed >= 0):
        _bad(c, "trader_seed", "must be an integer >= 0 or None")
    if not c.venues:
        _bad(c, "venues", "must name at least one venue")
    unknown = [v for v in c.venues if v not in VENUES]
    if unknown:
        raise ParameterError(f"venues: unknown venue(s) {unknown}; known: {', '.join(VENUES)}")
    if len(set(c.venues)) != len(c.venues):
        _bad(c, "venues", "has duplicates")
    shares = dict(c.venue_shares)
    missing = [v for v in c.venues if v not in shares]
    if missing:
        raise ParameterError(f"venue_shares: no share for venue(s) {missing}")
    if any(not (s >= 0 and math.isfinite(s)) for s in shares.values()):
        _bad(c, "venue_shares", "must be finite and >= 0")
    if c.bar != "1m":
        _bad(c, "bar", "only '1m' bars are simulated")
    try:
        ts = utc(c.start)
    except (ValueError, TypeError):
        _bad(c, "start", "must be an ISO UTC time like '2025-01-01T00:00:00Z'")
    if ts != ts.floor("1min"):
        _bad(c, "start", "must be a whole minute")
    if "/" not in c.symbol:
        _bad(c, "symbol", "must be a ccxt unified symbol like 'BTC/USDT:USDT'")


_POSITIVE = ("base_price", "annual_vol", "t_dof", "basis_halflife_min", "impact_depth_usd", "impact_halflife_min",
             "size_median_usd", "size_max_usd", "holding_median_hours", "holding_max_days", "hunt_range")
_NONNEGATIVE = ("warmup_days", "basis_bp", "last_noise_bp", "wick_bp", "background_volume_usd", "arrivals_per_min",
                "activity_vol_elasticity", "trend_following", "size_sigma", "size_leverage_exponent", "holding_sigma",
                "holding_leverage_exponent", "funding_interest", "funding_band", "funding_cap", "funding_sensitivity",
                "funding_noise", "cascade_impact", "hunt_intensity", "garch_alpha", "garch_beta", "herding_delay_min",
                "breakout_intensity", "fade_intensity", "fade_threshold", "whale_share", "leverage_vol_elasticity",
                "sentiment_sd")
_LATER_FIELDS: dict[str, Any] = {"margin_topup": 0.0}
"""Fields added after the simulator's outputs were first fixed, with their defaults: :meth:`SimulationConfig.to_dict`
leaves one out while it holds its default, so the config hash, ``truth/config.json`` and every output of an
existing configuration stay byte-identical."""
_FINITE_POSITIVE = ("breakout_window_min", "fade_window_min", "whale_min_usd", "whale_alpha", "sentiment_halflife_hours")


def _check_numbers(c: SimulationConfig) -> None:
    for name in _POSITIVE:
        v = getattr(c, name)
        if not (isinstance(v, (int, float)) and v > 0 and not math.isnan(v)):
            _bad(c, name, "must be > 0")
    for name in _NONNEGATIVE:
        v = getattr(c, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            _bad(c, name, "must be finite and >= 0")
    for name in _FINITE_POSITIVE:
        v = getattr(c, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            _bad(c, name, "must be finite and > 0")
    if not (0 <= c.herding_branching < 1):
        _bad(c, "herding_branching", "must be in [0, 1) (a branching ratio of 1 or more never dies out)")
    for name in ("herding_side", "whale_share", "whale_event_share", "margin_topup"):
        if not (0 <= getattr(c, name) <= 1):
            _bad(c, name, "must be in [0, 1]")


def _check_mix_and_periods(c: SimulationConfig) -> None:
    if c.world not in WORLDS:
        raise ParameterError(f"world: unknown world {c.world!r}; known: {', '.join(WORLDS)}")
    if c.t_dof <= 2:
        _bad(c, "t_dof", "must be > 2 (finite variance)")
    if c.garch_alpha + c.garch_beta >= 1:
        raise ParameterError(f"garch_alpha + garch_beta must be < 1 (stationary), got {c.garch_alpha + c.garch_beta!r}")
    if not (0 <= c.long_share <= 1):
        _bad(c, "long_share", "must be in [0, 1]")
    if len(c.leverages) == 0 or len(c.leverages) != len(c.leverage_weights):
        raise ParameterError("leverages/leverage_weights: need the same, non-zero number of entries")
    if any(not (math.isfinite(x) and x >= 1) for x in c.leverages):
        _bad(c, "leverages", "must be finite and >= 1")
    w = np.asarray(c.leverage_weights, dtype=float)
    if not (np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() > 0):
        _bad(c, "leverage_weights", "must be >= 0 with a positive sum")
    if not (isinstance(c.funding_hours, (int, np.integer)) and 1 <= c.funding_hours <= 24 and 24 % c.funding_hours == 0):
        _bad(c, "funding_hours", "must be an integer dividing 24")
    if not (isinstance(c.oi_minutes, (int, np.integer)) and 1 <= c.oi_minutes <= 1440 and 1440 % c.oi_minutes == 0):
        _bad(c, "oi_minutes", "must be an integer dividing 1440")


_FIELDS = {f.name for f in dataclasses.fields(SimulationConfig)}


def make_config(config: SimulationConfig | Mapping[str, Any] | None = None, *, asset: str | None = None,
                **overrides: Any) -> SimulationConfig:
    """A checked :class:`SimulationConfig` from a config, a dict and/or keyword overrides.

    Parameters
    ----------
    config : SimulationConfig, mapping or None
        The starting values (None: the defaults). Comma-separated text is accepted for ``venues``, a
        mapping for ``venue_shares``.
    **overrides
        Field values that win over ``config``. ``world`` (a key of :data:`WORLDS`) picks the preset the
        other values start from; for a SimulationConfig, a world given here replaces its behaviour fields.
    asset : str, optional
        A key of :data:`SYMBOL_PRESETS` ('BTC', 'ETH'): its fields sit under the caller's own values
        (for a SimulationConfig they replace its asset fields) and ``seed`` gets the asset's
        :data:`SYMBOL_SEED_OFFSETS`.

    Returns
    -------
    SimulationConfig

    Raises
    ------
    ParameterError
        An unknown field name, an unknown world or a bad value (the message names it).
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
    if asset is not None:
        base = _with_asset(base, asset, isinstance(config, SimulationConfig), overrides)
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


def _with_asset(base: dict, asset: str, replace_fields: bool, overrides: Mapping[str, Any]) -> dict:
    """``base`` with an asset preset under the caller's values (over them for a SimulationConfig) and its seed offset."""
    (name,) = symbol_names([asset])
    preset = SYMBOL_PRESETS[name]
    merged = {**base, **preset, **overrides} if replace_fields else {**preset, **base}
    seed = merged.get("seed", SimulationConfig.__dataclass_fields__["seed"].default)
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        merged["seed"] = int(seed) + SYMBOL_SEED_OFFSETS[name]
    return merged
