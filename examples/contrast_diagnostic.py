"""Where do the engine's OI map, the placebo map and the OI-specific excess map put the dominant cluster,
compared with the simulator's TRUE liquidation map? And the oracle side race (true map vs placebo).

    python examples/contrast_diagnostic.py --seeds 101 102 103 104 [--world default] [--hunt 0]
    python examples/contrast_diagnostic.py --seeds 200 201 202 203 204 205 206 207 208 209 --hunt 0.4 --oracle

SYNTHETIC data (liqlab.sim.simulation, 30 days, one venue, heatmap 1h, MagnetParams defaults). Per seed:
how often the true cluster is on the other side of price from the placebo's, and which map follows the
truth there; with --oracle, ``discordant_contrast`` of the true map's events against the placebo's
(the OI-specific side race fed a perfect map). Docs: docs/MAGNET.md, "Honest results".
"""

from __future__ import annotations

import argparse

import numpy as np


def one_seed(seed: int, world: str, hunt: float, venue: str, days: float, oracle: bool) -> None:
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.stats.magnet import Bars, MagnetParams, discordant_contrast, excess_maps, find_events
    from liqlab.stats.nulls import placebo_data
    from liqlab.engine.params import HeatmapParams
    from liqlab.sim.simulation import simulate_market
    from liqlab.sim.truth import true_heatmap

    mp = MagnetParams()
    m = simulate_market(days=days, seed=seed, venues=(venue,), world=world, hunt_intensity=hunt)
    ds = m.collection[venue]
    hp = HeatmapParams().replace(time_step="1h")
    hm, hpl = build_heatmap(ds, hp), build_heatmap(placebo_data(ds), hp)
    bars = Bars.from_frame(ds.ohlcv)
    p = hm.prices
    mid = np.sqrt(p[1:] * p[:-1])
    edges = np.r_[p[0] ** 2 / mid[0], mid, p[-1] ** 2 / mid[-1]]
    tl, ts = true_heatmap(m.truth, hm.times, edges, venues=(venue,))
    evt = find_events(hm.times, p, tl, ts, bars, mp)
    evp = find_events(hpl.times, p, hpl.long, hpl.short, bars, mp)
    if oracle:
        r = discordant_contrast(evt, evp, mp)
        print(f"seed {seed}: true vs placebo on opposite sides {r['discordant_share']:.3f}, {r['n_events']} races, "
              f"lift {r['lift']:+.3f}, p {r['p_value']}", flush=True)
        return
    ev = find_events(hm.times, p, hm.long, hm.short, bars, mp).set_index("step")
    evx = find_events(hm.times, p, *excess_maps(hm.long, hm.short, hpl.long, hpl.short), bars, mp).set_index("step")
    evt, evp = evt.set_index("step"), evp.set_index("step")
    c = ev.index.intersection(evp.index).intersection(evx.index).intersection(evt.index)
    T, P, O, X = (e.loc[c, "side"].to_numpy() for e in (evt, evp, ev, evx))
    d, dx = T != P, X != P
    print(f"seed {seed}: {len(c)} common times; true != placebo {d.mean():.3f}; there OI map == true "
          f"{np.mean(O[d] == T[d]):.3f}, excess == true {np.mean(X[d] == T[d]):.3f}; excess != placebo "
          f"{dx.mean():.3f}, there excess == true {np.mean(X[dx] == T[dx]):.3f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103, 104])
    ap.add_argument("--world", default="default")
    ap.add_argument("--hunt", type=float, default=0.0, help="hunt_intensity of the simulated markets")
    ap.add_argument("--venue", default="binanceusdm")
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--oracle", action="store_true", help="the side race with the true map in place of the excess map")
    a = ap.parse_args()
    for s in a.seeds:
        one_seed(s, a.world, a.hunt, a.venue, a.days, a.oracle)


if __name__ == "__main__":
    main()
