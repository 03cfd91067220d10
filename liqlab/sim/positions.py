"""The simulated traders' positions, drawn before the bar loop: entry bar, side, size, leverage, plan.

Per venue, :func:`venue_positions` draws every position of the whole run from the traders' own random
streams and the latent (exogenous) price path (behaviours in :mod:`liqlab.sim.traders`); each position's
liquidation price is affine in its entry price (the venue's margin rules and tier table,
:mod:`liqlab.engine.margin`). :func:`draw_positions` pools the venues, sorted by entry bar, in the layout
the bar loop (:mod:`liqlab.sim.market_loop`) reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from liqlab._util import utc
from liqlab.errors import ParameterError
from liqlab.sim import traders
from liqlab.sim.config import SimulationConfig
from liqlab.sim.prices import stream, venue_key

__all__ = ["Pool", "venue_positions", "draw_positions", "POSITION_COLUMNS"]

POSITION_COLUMNS = ("entry", "side", "notional", "lev", "lev_drawn", "tier", "plan_end", "ep_exo", "rho", "coef", "kind")
"""Per-position arrays of :func:`venue_positions` (all but its ``tiers`` entry)."""


@dataclass(frozen=True, eq=False)
class Pool:
    """Every venue's positions in one set of arrays, sorted by entry bar (stable), shape (n,) each.

    ``cols``: :data:`POSITION_COLUMNS` (entry/plan_end: int64 bars; side: +1 long, −1 short; notional:
    USD; lev, lev_drawn: x; tier: int16, 1-based; ep_exo: exogenous entry price, USD; rho: LP/entry
    price; coef: ∂LP/∂funding index; kind: traders.KIND_*). ``venue``: int64 venue index. ``heap_off``:
    (nv + 1,) start of each venue's heap region. ``close_order``: positions by planned end (stable).
    ``tiers``: each venue's tier table.
    """

    cols: dict[str, np.ndarray]
    venue: np.ndarray
    heap_off: np.ndarray
    close_order: np.ndarray
    tiers: tuple

    def __len__(self) -> int:
        return len(self.venue)


def venue_positions(c: SimulationConfig, venue: str, lat: dict[str, np.ndarray], vp: dict[str, np.ndarray],
                    sentiment: np.ndarray) -> dict[str, Any]:
    """Pre-drawn positions of one venue (traders' own streams), in the order they were drawn.

    Base traders come from the venue's trader stream in the order the first simulator drew them, so the
    ``homogeneous`` world is unchanged; breakout, fade and follower arrivals, whale sizes and the
    volatility tilt of leverage use a second stream of the venue (:mod:`liqlab.sim.traders`).

    Parameters
    ----------
    c : SimulationConfig
    venue : str
    lat : dict
        The latent path (:func:`liqlab.sim.prices.latent_path`), (nb,) arrays.
    vp : dict
        The venue's prices (:func:`liqlab.sim.prices.venue_prices`), (nb,) arrays.
    sentiment : np.ndarray
        (nb,) market-wide swing of the long probability (:func:`liqlab.sim.traders.sentiment`).

    Returns
    -------
    dict
        :data:`POSITION_COLUMNS`, each (n,), and ``tiers`` (the venue's tier table).

    Raises
    ------
    ParameterError
        When a position's liquidation price is undefined (size or leverage beyond the tier table).
    """
    from liqlab.engine.margin import lp_affine, model_for_venue
    from liqlab.io.tiers import default_tiers

    seed = c.seed if c.trader_seed is None else c.trader_seed
    rng_x = stream(seed, 3, venue_key(venue))
    entry, kind, base = _arrivals(c, venue, lat, sentiment, stream(seed, 2, venue_key(venue)), rng_x)
    n = len(entry)
    side = base["side"]
    tiers = default_tiers(venue, c.symbol, as_of=str(utc(c.start).date()), fallback=True)
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


def _arrivals(c: SimulationConfig, venue: str, lat: dict[str, np.ndarray], sentiment: np.ndarray,
              rng: np.random.Generator, rng_x: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
    """Entry bars, population kinds and drawn attributes (side, uniforms, normals) of one venue's positions.

    Base traders first (``rng``, the first simulator's draw order), then breakout, fade and follower
    arrivals (``rng_x``).
    """
    nb = len(lat["close"])
    sd_bar = c.bar_sd
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
    return entry, kind, base


def draw_positions(c: SimulationConfig, lat: dict[str, np.ndarray], vps: list[dict[str, np.ndarray]]) -> Pool:
    """Every venue's positions, pooled and sorted by entry bar.

    Parameters
    ----------
    c : SimulationConfig
    lat : dict
        The latent path, (nb,) arrays.
    vps : list of dict
        Each venue's prices, in the order of ``c.venues``.

    Returns
    -------
    Pool
    """
    seed = c.trader_seed if c.trader_seed is not None else c.seed
    sentiment = traders.sentiment(c, len(lat["close"]), stream(seed, 4))
    ags = [venue_positions(c, v, lat, vp, sentiment) for v, vp in zip(c.venues, vps)]
    nv = len(c.venues)
    cat = {k: np.concatenate([a[k] for a in ags]) for k in POSITION_COLUMNS}
    vidx = np.concatenate([np.full(len(a["entry"]), i, dtype=np.int64) for i, a in enumerate(ags)])
    heap_off = np.zeros(nv + 1, dtype=np.int64)
    heap_off[1:] = np.cumsum([len(a["entry"]) for a in ags])
    order = np.argsort(cat["entry"], kind="stable")
    cat = {k: v[order] for k, v in cat.items()}
    vidx = vidx[order]
    close_order = np.argsort(cat["plan_end"], kind="stable").astype(np.int64)
    return Pool(cols=cat, venue=vidx, heap_off=heap_off, close_order=close_order,
                tiers=tuple(a["tiers"] for a in ags))
