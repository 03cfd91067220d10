"""Does `liqlab fit`'s choice of dynamics carry over to unseen simulation seeds? [synthetic data]

For each seed: simulate a market (30 days, 3 venues; an existing folder is reused), fit it with
`liqlab.stats.fit.fit` on the simulator's own leverage set (read from truth/config.json, prior = the
``balanced`` preset over it), then score against the simulator's truth with `liqlab.stats.score.score`.
Both scores are the score's ``true_mix`` run (true leverage weights): once with the fitted half-life,
γ and OI rule (what ``liqlab score DATA --params-file fitted.yaml`` reports) and once with the default
dynamics. One row per seed, then the means and the number of seeds reaching 0.8 on both sides.

``--landscape`` adds, per seed, every searched configuration's training objective next to its own
truth score (true mix, that configuration's dynamics) and the rank correlation of the two across
configurations: does the fit's criterion order the configurations the way the truth does?

    python examples/fit_carryover.py --seeds 10-19 --out /tmp/carryover --jobs 2
    python examples/fit_carryover.py --seeds 10,11 --out /tmp/carryover --landscape --json /tmp/carryover.json

Each seed's fitted parameters are kept as OUT/pS.yaml, so the CLI reproduces a row:
``liqlab score OUT/simS --params-file OUT/pS.yaml --table`` (row ``true_mix``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

TARGET = 0.8  # mean Spearman against the truth, each side


def parse_seeds(text: str) -> list[int]:
    """'10-19' or '10,12,15' or a mix ('10-12,20') -> sorted unique seeds."""
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-", 1)
            out.update(range(int(a), int(b) + 1))
        elif part:
            out.add(int(part))
    return sorted(out)


def _label(rule: str, half_life: float, gamma: float) -> str:
    return f"{rule} {half_life:g}h g{gamma:g}"


def _config_truth_scores(path: Path, trials) -> list[tuple[float, float]]:
    """Truth score (mean Spearman long, short; true mix) of every trial's dynamics: one engine build per
    OI rule, then kernel re-runs only (the metric and burn-in of `liqlab score`)."""
    from liqlab.io.dataset import load_collection
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.engine.params import HeatmapParams
    from liqlab.stats.score import DEFAULT_BAND, DEFAULT_BURN_IN_HOURS, score_maps
    from liqlab.sim.truth import load_truth, true_heatmap

    truth = load_truth(path)
    coll = load_collection(path)
    mix = truth.leverage_mix
    p = HeatmapParams(leverages=tuple(mix["leverages"]), leverage_weights=tuple(mix["leverage_weights"]))
    out: dict[tuple, tuple[float, float]] = {}
    true_maps = None
    for rule in dict.fromkeys(trials.oi_decrease):
        h = build_heatmap(coll, p.replace(oi_decrease=rule), progress=False)
        if true_maps is None:
            true_maps = true_heatmap(truth, h.times, h.edges, venues=h.meta["venues"])
            j0 = min(int(math.ceil(DEFAULT_BURN_IN_HOURS / h.replay.step_hours)), len(h.times) - 1)
        for r in trials[trials.oi_decrease == rule].itertuples():
            hh = h.with_params(half_life_hours=r.half_life_hours, half_life_exponent=r.half_life_exponent)
            s = score_maps(hh.long, hh.short, *true_maps, hh.prices, hh.close, band=DEFAULT_BAND, start_index=j0)
            out[(rule, r.half_life_hours, r.half_life_exponent)] = (s["long"]["spearman_mean"], s["short"]["spearman_mean"])
    return [out[(r.oi_decrease, r.half_life_hours, r.half_life_exponent)] for r in trials.itertuples()]


def run_seed(seed: int, out: Path, days: float, venues: str, fit_kwargs: dict, landscape: bool) -> dict[str, Any]:
    """Simulate (unless present), fit, score fitted and default dynamics for one seed."""
    from liqlab.stats.fit import fit
    from liqlab.engine.params import HeatmapParams
    from liqlab.stats.score import score
    from liqlab.sim.simulation import simulate
    from liqlab.sim.truth import load_truth

    t0 = time.perf_counter()
    path = out / f"sim{seed}"
    if not (path / "truth" / "config.json").exists():
        simulate(days=days, seed=seed, venues=tuple(venues.split(",")), out=path, progress=False)
    lev = tuple(float(x) for x in load_truth(path).leverage_mix["leverages"])
    res = fit(path, params=HeatmapParams(leverages=lev), progress=False, **fit_kwargs)
    res.save_params(out / f"p{seed}.yaml")
    fitted = score(path, res.params, presets=False)["runs"]["true_mix"]
    default = score(path, HeatmapParams(leverages=lev), presets=False)["runs"]["true_mix"]
    p = res.params
    row: dict[str, Any] = {
        "seed": seed, "chosen": _label(p.oi_decrease, p.half_life_hours, p.half_life_exponent),
        "objective_train": res.objective_train,
        "fitted_long": fitted["long"]["spearman_mean"], "fitted_short": fitted["short"]["spearman_mean"],
        "default_long": default["long"]["spearman_mean"], "default_short": default["short"]["spearman_mean"],
        "landscape": res.landscape(),
    }
    if landscape:
        t = res.trials
        ts = _config_truth_scores(path, t)
        row["configs"] = [{"config": _label(r.oi_decrease, r.half_life_hours, r.half_life_exponent),
                           "objective_train": float(r.objective), "objective_test": float(r.objective_test),
                           "truth_long": a, "truth_short": b} for r, (a, b) in zip(t.itertuples(), ts)]
    row["seconds"] = time.perf_counter() - t0
    return row


def _spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b)[0])


def format_landscape(row: dict[str, Any]) -> str:
    """Per configuration (best training objective first): objective train/test and the truth score."""
    cs = sorted(row["configs"], key=lambda c: -c["objective_train"])
    lines = [f"seed {row['seed']}: {'config':<26} {'obj train':>9} {'obj test':>9} {'truth L':>8} {'truth S':>8}"]
    for c in cs:
        lines.append(f"{'':>9}{c['config']:<26} {c['objective_train']:>9.4f} {c['objective_test']:>9.4f} "
                     f"{c['truth_long']:>8.3f} {c['truth_short']:>8.3f}")
    truth = [(c["truth_long"] + c["truth_short"]) / 2 for c in cs]
    lines.append(f"{'':>9}rank correlation across configurations, training objective vs truth score: "
                 f"{_spearman([c['objective_train'] for c in cs], truth):.3f}; objective range "
                 f"{cs[-1]['objective_train']:.4f}..{cs[0]['objective_train']:.4f}, truth range "
                 f"{min(truth):.3f}..{max(truth):.3f}")
    return "\n".join(lines)


def format_table(rows: list[dict[str, Any]]) -> str:
    """One line per seed and the summary (means, seeds with both sides >= TARGET)."""
    head = (f"{'seed':>5} {'chosen (OI rule, half-life, γ)':<30} {'obj':>6} {'fitted L':>9} {'fitted S':>9} "
            f"{'default L':>10} {'default S':>10}")
    lines = ["[synthetic data] mean Spearman against the truth, true leverage mix", head]
    for r in rows:
        lines.append(f"{r['seed']:>5} {r['chosen']:<30} {r['objective_train']:>6.3f} {r['fitted_long']:>9.3f} "
                     f"{r['fitted_short']:>9.3f} {r['default_long']:>10.3f} {r['default_short']:>10.3f}")
    n = len(rows)
    mean = {k: sum(r[k] for r in rows) / n for k in ("fitted_long", "fitted_short", "default_long", "default_short")}
    ok_f = sum(r["fitted_long"] >= TARGET and r["fitted_short"] >= TARGET for r in rows)
    ok_d = sum(r["default_long"] >= TARGET and r["default_short"] >= TARGET for r in rows)
    lines.append(f"{'mean':>5} {'':<30} {'':>6} {mean['fitted_long']:>9.3f} {mean['fitted_short']:>9.3f} "
                 f"{mean['default_long']:>10.3f} {mean['default_short']:>10.3f}")
    lines.append(f"seeds with both sides >= {TARGET}: fitted {ok_f}/{n}, defaults {ok_d}/{n}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", required=True, help="e.g. 10-19 or 10,12,15")
    ap.add_argument("--out", required=True, type=Path, help="folder for the simulations (simS) and fitted params (pS.yaml)")
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--venues", default="binanceusdm,bybit,okx")
    ap.add_argument("--burn-in", type=float, default=None, metavar="HOURS",
                    help="fit's burn-in (default: the fit's own default)")
    ap.add_argument("--n-boot", type=int, default=100, help="bootstrap replications of the fit's test report")
    ap.add_argument("--jobs", type=int, default=1, help="seeds run in parallel")
    ap.add_argument("--landscape", action="store_true", help="also every configuration's objective and truth score")
    ap.add_argument("--json", type=Path, default=None, help="write all rows as JSON here")
    a = ap.parse_args(argv)
    try:
        seeds = parse_seeds(a.seeds)
    except ValueError:
        print(f"--seeds: not a list of integers or ranges: {a.seeds!r}", file=sys.stderr)
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    kw: dict[str, Any] = {"n_boot": a.n_boot}
    if a.burn_in is not None:
        kw["burn_in_hours"] = a.burn_in
    args = [(s, a.out, a.days, a.venues, kw, a.landscape) for s in seeds]
    if a.jobs > 1:
        with ProcessPoolExecutor(a.jobs) as ex:
            rows = list(ex.map(run_seed, *zip(*args)))
    else:
        rows = [run_seed(*x) for x in args]
    if a.landscape:
        for r in rows:
            print(format_landscape(r))
        rho = [_spearman([c["objective_train"] for c in r["configs"]],
                         [c["truth_long"] + c["truth_short"] for c in r["configs"]]) for r in rows]
        print(f"mean rank correlation (objective vs truth) over seeds: {sum(rho) / len(rho):.3f}")
    print(format_table(rows))
    if a.json:
        a.json.write_text(json.dumps({"synthetic": True, "rows": rows}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
