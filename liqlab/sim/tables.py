"""From the bar loop's arrays to the simulated market's tables: one dataset per venue, and the truth.

Each venue's dataset (ohlcv, open_interest, funding, liquidations, leverage_tiers) has the layout of real
data (:mod:`liqlab.io.dataset`), covers the output bars only (the warm-up is dropped) and is labelled
synthetic in its meta. The truth (:class:`liqlab.sim.truth.Truth`) holds the position ledger, realized
liquidations, funding index, per-bar state, index path and the config with the true leverage mix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from liqlab._util import utc
from liqlab.sim import traders
from liqlab.sim.config import SIM_VERSION, SimulationConfig
from liqlab.sim.market_loop import MarketState
from liqlab.sim.positions import Pool
from liqlab.sim.prices import Clock

__all__ = ["Run", "assemble", "truth_config", "collection_meta", "SOURCE"]

SOURCE = "liqlab.sim.simulation"
"""The ``source`` of every dataset, collection and truth the simulator writes."""

_STATUS_NAMES = np.array(["open", "open", "closed", "liquidated"], dtype=object)


@dataclass(frozen=True, eq=False)
class Run:
    """One simulation's pieces, as :func:`liqlab.sim.simulation.simulate_market` made them."""

    config: SimulationConfig
    clock: Clock
    lat: dict  # latent path, (nb,) arrays
    vps: list  # each venue's prices, (nb,) arrays
    pool: Pool
    state: MarketState


def assemble(run: Run) -> tuple[Any, Any]:
    """The collection (one synthetic dataset per venue) and the truth of a simulation.

    Parameters
    ----------
    run : Run

    Returns
    -------
    (Collection, Truth)
        Tables over the output bars (UTC, bars labelled by their open time); prices USD, amounts base.
    """
    import pandas as pd

    from liqlab.io.dataset import Collection
    from liqlab.sim.truth import Truth

    c, st, w0 = run.config, run.state, run.clock.warm
    imp = tuple(np.exp(a[w0:]) for a in (st.imp_start, st.imp_min, st.imp_max, st.imp_end))
    parts = [_venue_parts(run, i, venue, imp) for i, venue in enumerate(c.venues)]
    ledger = _ledger(run)
    events = pd.concat([p["events"] for p in parts], ignore_index=True)
    events = events.sort_values(["ts", "position_id"], kind="stable").reset_index(drop=True)
    events = events[["ts", "venue", "side", "price", "amount", "value", "position_id"]]
    bars_df = pd.concat([p["bars"] for p in parts], ignore_index=True)
    fund_df = pd.concat([p["funding_index"] for p in parts], ignore_index=True).sort_values(
        ["venue", "ts"], kind="stable").reset_index(drop=True)
    truth_cfg = truth_config(c, ledger, run.pool.tiers)
    truth = Truth(ledger=ledger, events=events, funding_index=fund_df,
                  leverage_mix={"leverages": truth_cfg["leverages"], "leverage_weights": truth_cfg["leverage_weights"]},
                  config=truth_cfg, bars=bars_df, index=_index_path(run), path=None)
    coll = Collection(datasets=tuple(p["dataset"] for p in parts), path=None, meta=collection_meta(c))
    return coll, truth


def _venue_parts(run: Run, i: int, venue: str, imp: tuple) -> dict[str, Any]:
    """Venue ``i``'s dataset and its rows of the truth's events, bars and funding index."""
    from liqlab.io.dataset import Dataset, make_meta, validate_table, with_note

    c = run.config
    e_open, e_min, e_max, e_end = imp
    liq, sel = _liquidations(run, i)
    funding, fund_index = _funding(run, i, venue)
    tiers = run.pool.tiers[i]
    meta = make_meta(venue, c.symbol, source=SOURCE, synthetic=True, created_at=run.clock.start.isoformat(),
                     simulation={"seed": c.seed, "config_hash": c.config_hash(), "sim_version": SIM_VERSION},
                     tiers_as_of=tiers.as_of)
    meta = with_note(meta, "synthetic", "SYNTHETIC: simulated by liqlab.sim.simulation (agent-based market; not "
                     f"real exchange data); seed {c.seed}, config {c.config_hash()}")
    dataset = Dataset(meta=meta, ohlcv=validate_table("ohlcv", _ohlcv(run, i, venue, imp)),
                      open_interest=validate_table("open_interest", _open_interest(run, i)),
                      funding=validate_table("funding", funding), liquidations=validate_table("liquidations", liq),
                      leverage_tiers=tiers.to_frame())
    return {"dataset": dataset, "events": liq.assign(venue=venue, position_id=sel.astype(np.int64)),
            "bars": _truth_bars(run, i, venue, e_min, e_max, e_end), "funding_index": fund_index}


def _ohlcv(run: Run, i: int, venue: str, imp: tuple) -> Any:
    """Venue ``i``'s 1m bars: last-price OHLC (USD) with impact, volume and taker-buy volume (base), mark."""
    import pandas as pd

    c, st, lat, vp, w0 = run.config, run.state, run.lat, run.vps[i], run.clock.warm
    e_open, e_min, e_max, e_end = imp
    o = np.exp(vp["l_open"][w0:]) * e_open
    h = np.exp(vp["l_high"][w0:]) * e_max
    lo_ = np.exp(vp["l_low"][w0:]) * e_min
    cl = np.exp(vp["l_close"][w0:]) * e_end
    mark = st.mcl[i, w0:] * e_end
    vol_scale = lat["sd"] / c.bar_sd
    bg_usd = c.background_volume_usd * c.venue_share[venue] * vol_scale[w0:] * vp["vol_noise"][w0:]
    z = lat["ret"][w0:] / lat["sd"][w0:]
    share = np.clip(0.5 + 0.15 * np.tanh(z) + 0.05 * vp["taker_noise"][w0:], 0.02, 0.98)
    buy = st.flows[i, 0, w0:]
    sell = st.flows[i, 1, w0:]
    volume = bg_usd / cl + buy + sell
    taker_buy = np.minimum(bg_usd * share / cl + buy, volume)
    return pd.DataFrame({"ts": run.clock.times[w0:], "open": o, "high": h, "low": lo_, "close": cl, "volume": volume,
                         "taker_buy_volume": taker_buy, "mark_close": mark})


def _open_interest(run: Run, i: int) -> Any:
    """Venue ``i``'s open interest (base and USD) at the instant each ``oi_minutes`` bar opens."""
    import pandas as pd

    c, st, clock = run.config, run.state, run.clock
    w0 = clock.warm
    oi_bars = np.flatnonzero((clock.minute[w0:] % c.oi_minutes) == 0) + w0  # OI at the instant each such bar opens
    prev = oi_bars - 1
    has_prev = prev >= 0
    oi_base = np.where(has_prev, np.maximum(st.oi[i, 0, np.maximum(prev, 0)], st.oi[i, 1, np.maximum(prev, 0)]), 0.0)
    oi_px = np.where(has_prev, st.mcl[i, np.maximum(prev, 0)] * np.exp(st.imp_end[np.maximum(prev, 0)]),
                     st.mcl[i, oi_bars])
    return pd.DataFrame({"ts": clock.times[oi_bars], "open_interest": oi_base, "open_interest_value": oi_base * oi_px})


def _funding(run: Run, i: int, venue: str) -> tuple[Any, Any]:
    """Venue ``i``'s funding: the dataset's rates (output bars) and the truth's funding index (all bars)."""
    import pandas as pd

    st, times, w0 = run.state, run.clock.times, run.clock.warm
    fb = np.flatnonzero(st.fund_bar & (np.arange(run.clock.nb) > 0))
    fb_out = fb[fb >= w0]
    funding = pd.DataFrame({"ts": times[fb_out], "funding_rate": st.frate[i, fb_out]})
    index = pd.DataFrame({
        "ts": times[fb], "venue": venue, "funding_rate": st.frate[i, fb],
        "mark_price": st.mcl[i, fb - 1] * np.exp(st.imp_end[fb - 1]), "index": st.cindex[i, fb]})
    return funding, index


def _liquidations(run: Run, i: int) -> tuple[Any, np.ndarray]:
    """Venue ``i``'s realized liquidations in the output bars (by bar, then position) and their positions."""
    import pandas as pd

    st, pool = run.state, run.pool
    sel = np.flatnonzero((pool.venue == i) & (st.status == 3) & (st.end_bar >= run.clock.warm))
    sel = sel[np.lexsort((sel, st.end_bar[sel]))]
    sides = np.where(pool.cols["side"][sel] == 1, "long", "short").astype(object)
    liq = pd.DataFrame({"ts": run.clock.times[st.end_bar[sel]], "side": sides, "price": st.lp_cur[sel],
                        "amount": st.q[sel], "value": st.q[sel] * st.lp_cur[sel]})
    return liq, sel


def _truth_bars(run: Run, i: int, venue: str, e_min: np.ndarray, e_max: np.ndarray, e_end: np.ndarray) -> Any:
    """Venue ``i``'s per-bar state for the truth: marks with impact (USD), open positions (USD and base)."""
    import pandas as pd

    st, w0 = run.state, run.clock.warm
    return pd.DataFrame({
        "ts": run.clock.times[w0:], "venue": venue, "mark_high": st.mhi[i, w0:] * e_max,
        "mark_low": st.mlo[i, w0:] * e_min, "mark_close": st.mcl[i, w0:] * e_end, "long_open_usd": st.oi[i, 2, w0:],
        "short_open_usd": st.oi[i, 3, w0:], "long_open_base": st.oi[i, 0, w0:], "short_open_base": st.oi[i, 1, w0:]})


def _index_path(run: Run) -> Any:
    """The truth's index path over the output bars: latent and impacted close (USD), log impact, 1m sd."""
    import pandas as pd

    st, lat, w0 = run.state, run.lat, run.clock.warm
    return pd.DataFrame({"ts": run.clock.times[w0:], "latent_close": st.idx_close[w0:],
                         "index_close": st.idx_close[w0:] * np.exp(st.imp_end[w0:]), "impact": st.imp_end[w0:],
                         "sigma": lat["sd"][w0:]})


def _ledger(run: Run) -> Any:
    """One row per position still open or ended in the output bars (columns: liqlab.sim.truth)."""
    import pandas as pd

    c, st, clock, cat = run.config, run.state, run.clock, run.pool.cols
    warm, start_min = clock.warm, clock.start_min
    keep = np.flatnonzero((st.status == 1) | (st.end_bar >= warm))
    ends = st.end_bar[keep]
    is_open = st.status[keep] == 1
    end_ns = np.where(is_open, np.iinfo(np.int64).min, (start_min - warm + np.maximum(ends, 0)) * 60_000_000_000)
    planned_ns = (start_min - warm + cat["plan_end"][keep]) * 60_000_000_000
    return pd.DataFrame({
        "position_id": keep.astype(np.int64),
        "venue": np.asarray(c.venues, dtype=object)[run.pool.venue[keep]],
        "side": np.where(cat["side"][keep] == 1, "long", "short").astype(object),
        "notional_usd": cat["notional"][keep],
        "amount": st.q[keep],
        "leverage": cat["lev"][keep],
        "leverage_drawn": cat["lev_drawn"][keep],
        "tier": cat["tier"][keep],
        "population": np.asarray(traders.KIND_NAMES, dtype=object)[cat["kind"][keep]],
        "entry_time": clock.times[cat["entry"][keep]],
        "entry_price": st.ep[keep],
        "liq_price_initial": st.lp0[keep],
        "lp_funding_coef": cat["coef"][keep],
        "funding_index_entry": st.cidx[keep],
        "planned_end_time": pd.DatetimeIndex(planned_ns.astype("datetime64[ns]"), tz="UTC"),
        "end_time": pd.DatetimeIndex(end_ns.astype("datetime64[ns]"), tz="UTC"),
        "status": _STATUS_NAMES[st.status[keep]],
        "liq_price_end": st.lp_cur[keep],
    })


def truth_config(c: SimulationConfig, ledger: Any, tiers: Any) -> dict[str, Any]:
    """The truth's ``config.json``: every parameter, the true leverage mix, tier tables, conventions.

    Parameters
    ----------
    c : SimulationConfig
    ledger : pd.DataFrame
        The truth's ledger (positions entered before ``c.start`` are left out of the mix).
    tiers : sequence of TierTable
        Each venue's tier table, in the order of ``c.venues``.

    Returns
    -------
    dict
        JSON-ready; ``leverage_weights`` is the true mix as shares of new USD notional by drawn leverage.
    """
    levels = np.asarray(c.leverages, dtype=float)
    w_count = np.asarray(c.leverage_weights, dtype=float)
    w_count = w_count / w_count.sum()
    expected = w_count * (levels / 10.0) ** (-c.size_leverage_exponent)  # E[size | leverage] ∝ this
    expected = expected / expected.sum()
    new = ledger["entry_time"] >= utc(c.start)
    lev = ledger["leverage_drawn"].to_numpy()[new.to_numpy()]
    notional = ledger["notional_usd"].to_numpy()[new.to_numpy()]
    k = np.clip(np.searchsorted(levels, lev), 0, len(levels) - 1)
    realized = np.bincount(k, weights=notional, minlength=len(levels))
    realized = realized / realized.sum() if realized.sum() > 0 else expected
    capped_mask = ledger["leverage"].to_numpy()[new.to_numpy()] < lev
    capped = float(notional[capped_mask].sum() / notional.sum()) if notional.sum() > 0 else 0.0
    return {
        "synthetic": True,
        "source": SOURCE,
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


def collection_meta(c: SimulationConfig) -> dict[str, Any]:
    """The simulated collection's ``collection.json`` (labelled synthetic; ``notes`` a dict).

    Parameters
    ----------
    c : SimulationConfig

    Returns
    -------
    dict
    """
    return {"synthetic": True, "source": SOURCE, "symbol": c.symbol, "venues": list(c.venues),
            "seed": c.seed, "config_hash": c.config_hash(), "sim_version": SIM_VERSION,
            "notes": {"synthetic": "SYNTHETIC simulated market; ground truth in truth/ (see docs/SIMULATOR.md)"}}
