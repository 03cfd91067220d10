"""The engine against the simulator's truth over several seeds: OI map, price-only placebo map, the gap.

    python examples/score_seeds.py --seeds 100-109 [--world default] [--out /tmp/score_seeds] [engine flags as JSON]

Each seed is simulated (SYNTHETIC, 30 days × 3 venues) into OUT/seed-S and scored with `liqlab score`'s
function (true leverage mix, default engine parameters unless --params gives a JSON dict). Prints one
row per seed and the means. Seeds 0-15 were used while building the engine and the default world;
100-109 are the reporting seeds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from world_facts import seeds_arg


def main() -> None:
    import liqlab
    from liqlab.stats.score import score

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=seeds_arg, default=seeds_arg("100-109"))
    ap.add_argument("--world", default="default")
    ap.add_argument("--out", default="/tmp/score_seeds")
    ap.add_argument("--params", default="{}", help="engine parameters as a JSON dict")
    a = ap.parse_args()
    params = json.loads(a.params)
    rows = []
    print(f"SYNTHETIC: world {a.world!r}; engine {params or 'defaults'}; true leverage mix")
    print(f"{'seed':>5} {'OI long':>8} {'plc long':>8} {'gain':>7} {'OI short':>8} {'plc short':>9} {'gain':>7}")
    for s in a.seeds:
        path = Path(a.out) / a.world / f"seed-{s}"
        liqlab.simulate(days=30, seed=s, world=a.world, out=path, reuse=True, progress=False)
        r = score(str(path), params, presets=False, progress=False)
        oi = [r["runs"]["true_mix"][k]["spearman_mean"] for k in ("long", "short")]
        pl = [r["runs"]["placebo_true_mix"][k]["spearman_mean"] for k in ("long", "short")]
        rows.append(oi + pl)
        print(f"{s:>5} {oi[0]:>8.3f} {pl[0]:>8.3f} {oi[0] - pl[0]:>+7.3f} {oi[1]:>8.3f} {pl[1]:>9.3f} {oi[1] - pl[1]:>+7.3f}",
              flush=True)
    m = np.mean(rows, axis=0)
    g = np.array(rows)
    print(f"{'mean':>5} {m[0]:>8.3f} {m[2]:>8.3f} {m[0] - m[2]:>+7.3f} {m[1]:>8.3f} {m[3]:>9.3f} {m[1] - m[3]:>+7.3f}")
    print(f"seeds with a positive gain: long {(g[:, 0] > g[:, 2]).sum()}/{len(g)}, short {(g[:, 1] > g[:, 3]).sum()}/{len(g)}; "
          f"seeds >= 0.8 (OI map): long {(g[:, 0] >= 0.8).sum()}, short {(g[:, 1] >= 0.8).sum()}")


if __name__ == "__main__":
    main()
