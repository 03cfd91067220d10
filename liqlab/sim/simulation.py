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

:func:`simulate_market` runs four named steps, each in its own module: the exogenous paths
(:mod:`~liqlab.sim.prices`), the traders' positions (:mod:`~liqlab.sim.positions`), the bar loop
(:mod:`~liqlab.sim.market_loop`) and the tables (:mod:`~liqlab.sim.tables`); the knobs are in
:mod:`~liqlab.sim.config` (:class:`SimulationConfig`, :data:`WORLDS` and :func:`make_config` are
importable from here too). :func:`simulate` adds writing to a folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liqlab._util import progress as progress_bar
from liqlab.errors import ParameterError
from liqlab.sim.config import SIM_VERSION, WORLDS, SimulationConfig, make_config
from liqlab.sim.market_loop import run_market
from liqlab.sim.positions import draw_positions
from liqlab.sim.prices import Clock, latent_path, make_clock, venue_prices
from liqlab.sim.tables import SOURCE, Run, assemble

__all__ = ["SimulationConfig", "Market", "simulate", "simulate_assets", "simulate_market", "make_config", "write_market",
           "is_simulation", "same_simulation", "SIM_VERSION", "WORLDS"]


_FORMER_SOURCE = "liqlab.simulation"  # the same simulator's label before the package had layers


@dataclass(frozen=True, eq=False)
class Market:
    """A simulated market in memory: the collection, its truth, and phase timings (seconds)."""

    collection: Any  # liqlab.io.dataset.Collection
    truth: Any  # liqlab.sim.truth.Truth
    config: SimulationConfig
    timings: dict = field(default_factory=dict)


def simulate_market(config: SimulationConfig | Mapping[str, Any] | None = None, *, progress: bool | None = False,
                    **overrides: Any) -> Market:
    """Simulate in memory (no files): the fast path for calibration.

    Parameters
    ----------
    config : SimulationConfig, mapping or None
        See :func:`~liqlab.sim.config.make_config`.
    progress : bool or None
        A progress bar over the four steps (None: only on a terminal).
    **overrides
        Config fields that win over ``config`` (e.g. ``days=3, seed=1, world="homogeneous"``).

    Returns
    -------
    Market
        The collection (one synthetic dataset per venue, 1m bars over ``days`` from ``start``, UTC), its
        truth and ``timings`` (seconds per step: prices, traders, market, tables).
    """
    c = make_config(config, **overrides)
    timings: dict[str, float] = {}
    with progress_bar(total=4, desc="simulate", enabled=progress) as bar:
        def step(name: str, fn: Callable, *args: Any) -> Any:  # one timed, counted step
            t = time.perf_counter()
            out = fn(*args)
            timings[name] = time.perf_counter() - t
            bar.update(1)
            return out

        clock = make_clock(c)
        lat, vps = step("prices", _prices, c, clock)
        pool = step("traders", draw_positions, c, lat, vps)
        state = step("market", run_market, c, clock, lat, vps, pool)
        coll, truth = step("tables", assemble, Run(config=c, clock=clock, lat=lat, vps=vps, pool=pool, state=state))
    return Market(collection=coll, truth=truth, config=c, timings=timings)


def _prices(c: SimulationConfig, clock: Clock) -> tuple[dict, list[dict]]:
    """The latent path and every venue's prices, (nb,) arrays each."""
    lat = latent_path(c, clock.nb, clock.warm)
    return lat, [venue_prices(c, v, lat) for v in c.venues]


# ---------------------------------------------------------------------------------------------- write


def is_simulation(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a collection written by :func:`simulate`.

    Parameters
    ----------
    path : str or os.PathLike
        A collection folder.

    Returns
    -------
    bool
        True when its ``truth/config.json`` names the simulator as its source (its current label or the
        one earlier versions of liqlab wrote).
    """
    f = Path(path) / "truth" / "config.json"
    try:
        return json.loads(f.read_text()).get("source") in (SOURCE, _FORMER_SOURCE)
    except (OSError, ValueError, AttributeError):
        return False


def same_simulation(path: str | os.PathLike, config: SimulationConfig) -> bool:
    """Whether ``path`` already holds a complete simulation of exactly this config.

    Parameters
    ----------
    path : str or os.PathLike
        A collection folder.
    config : SimulationConfig

    Returns
    -------
    bool
        True when the saved config and its hash match and every venue's dataset is there.
    """
    f = Path(path) / "truth" / "config.json"
    try:
        saved = json.loads(f.read_text())
    except (OSError, ValueError):
        return False
    return saved.get("config_hash") == config.config_hash() and saved.get("config") == config.to_dict() and all(
        (Path(path) / v / "meta.json").exists() for v in config.venues)


def _check_out(out: Path) -> None:
    """Refuse an output path that is a file, or a non-empty folder that does not hold a simulation."""
    if out.exists() and not out.is_dir():
        raise ParameterError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not is_simulation(out):
        raise ParameterError(f"--out {out}: folder exists and does not hold a liqlab simulation; "
                             "choose an empty or new folder (existing data is never overwritten)")


def write_market(market: Market, out: str | os.PathLike) -> Path:
    """Write a simulated market to a folder atomically (all of it or nothing).

    Parameters
    ----------
    market : Market
    out : str or os.PathLike
        A new or empty folder, or one holding an earlier simulation (replaced as a whole).

    Returns
    -------
    Path
        ``out``: one dataset folder per venue, ``collection.json`` and ``truth/`` (liqlab.sim.truth).

    Raises
    ------
    ParameterError
        ``out`` is a file, or a non-empty folder that does not hold a simulation (never overwritten).
    """
    from liqlab.io import atomic
    from liqlab.io.dataset import write_dataset

    out = Path(out)
    _check_out(out)
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
    """Simulate a market; write it to ``out`` (collection + truth/) if given; return the collection.

    Parameters
    ----------
    config : SimulationConfig, mapping or None
        See :func:`~liqlab.sim.config.make_config`; keyword ``overrides`` win (``simulate(days=3, seed=1)``).
    out : str, os.PathLike or None
        Folder to write (see :func:`write_market`); None keeps the market in memory.
    progress : bool or None
        A progress bar (None: only on a terminal).
    reuse : bool
        If ``out`` already holds a simulation of the same config, load and return it unchanged
        (``meta["reused"]`` is True).
    **overrides
        Config fields.

    Returns
    -------
    Collection
        One synthetic dataset per venue; ``meta["timings"]`` has seconds per step when it was just
        simulated (and ``write`` when written).
    """
    from liqlab.io.dataset import load_collection

    c = make_config(config, **overrides)
    if out is not None:
        _check_out(Path(out))
        if reuse and same_simulation(Path(out), c):
            coll = load_collection(out)
            return dataclasses.replace(coll, meta={**coll.meta, "reused": True})
    market = simulate_market(c, progress=progress)
    timings = dict(market.timings)
    if out is None:
        return dataclasses.replace(market.collection, meta={**market.collection.meta, "timings": timings})
    t = time.perf_counter()
    write_market(market, out)
    timings["write"] = time.perf_counter() - t
    coll = load_collection(out)
    return dataclasses.replace(coll, meta={**coll.meta, "timings": timings})


def simulate_assets(assets: str | Sequence[str], out: str | os.PathLike | None = None, *, progress: bool | None = None,
                    reuse: bool = False, **overrides: Any) -> dict[str, Any]:
    """Simulate one market per asset preset (BTC, ETH; :data:`~liqlab.sim.config.SYMBOL_PRESETS`).

    Layout: with one asset the collection goes to ``out`` itself (as :func:`simulate`); with several,
    each goes to ``out/<ASSET>/`` (``out/BTC/``, ``out/ETH/``), a complete collection with its own
    ``truth/``. Each collection is written atomically; a failure leaves the ones already written.

    Parameters
    ----------
    assets : str or sequence of str
        Asset names ('BTC,ETH' or ['BTC', 'ETH']).
    out : str, os.PathLike or None
        Folder (None: in memory).
    progress, reuse, **overrides
        As :func:`simulate` (``seed`` gets each asset's offset, see :func:`~liqlab.sim.config.make_config`).

    Returns
    -------
    dict
        Asset name → Collection, in the given order.
    """
    from liqlab.sim.config import symbol_names

    names = symbol_names(assets)
    if out is not None and len(names) > 1:
        root = Path(out)
        if root.exists() and not root.is_dir():
            raise ParameterError(f"--out {root}: exists and is not a directory")
        targets = {n: root / n for n in names}
    else:
        targets = {n: out for n in names}
    for n, t in targets.items():  # every target checked before anything is simulated
        make_config(asset=n, **overrides)
        if t is not None:
            _check_out(Path(t))
    return {n: simulate(out=t, progress=progress, reuse=reuse, asset=n, **overrides) for n, t in targets.items()}
