"""Stylized facts of simulated worlds against the real market's bands (liqlab.stats.facts.REAL_BANDS).

    python examples/world_facts.py --seeds 100-109 [--world default] [--venue binanceusdm] [--days 30] [--set NAME=VALUE]

Simulates each seed in memory (SYNTHETIC data), prints the banded facts per seed and the share of seeds
inside each band. Seeds 10-15 were used to choose the default world's knobs; 100-109 are for reporting.
"""

from __future__ import annotations

import argparse

import pandas as pd


def seeds_arg(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b) + 1) if b else [int(a)])
    return out


def main() -> None:
    from liqlab.stats.facts import band_check, stylized_facts
    from liqlab.sim.simulation import simulate_market

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=seeds_arg, default=seeds_arg("100-109"))
    ap.add_argument("--world", default="default")
    ap.add_argument("--venue", default="binanceusdm")
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a SimulationConfig field (repeatable)")
    a = ap.parse_args()
    overrides = {k: float(v) for k, _, v in (x.partition("=") for x in a.set)}
    checks = []
    for s in a.seeds:
        m = simulate_market(days=a.days, seed=s, venues=(a.venue,), world=a.world, **overrides)
        f = stylized_facts({f"seed {s}": m.collection})
        checks.append(band_check(f))
    c = pd.concat(checks, ignore_index=True)
    c["name"] = c["step"].str.replace("native", "5m") + " " + c["fact"]
    table = c.pivot(index="dataset", columns="name", values="value")
    pd.set_option("display.width", 200)
    print(f"SYNTHETIC: world {a.world!r} {overrides or ''}, {a.venue}, {a.days:g} days")
    print(table.round(3).to_string())
    print("share of seeds inside the band:")
    print(c.groupby("name")["inside"].mean().round(2).to_string())
    print(f"seeds inside every band: {int(c.groupby('dataset')['inside'].all().sum())} of {len(a.seeds)}")


if __name__ == "__main__":
    main()
