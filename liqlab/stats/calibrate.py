"""Calibration of the magnet test on simulated markets, run as tasks on dask.distributed.

A task is (setting, run) -> result dict: simulate one market (seeded from (base_seed, setting, run)),
build its heatmap, run the first-passage test, record p̂, lift, p-value and the stage timings. The
rejection rate at α under the null setting (``cascade_impact = hunt_intensity = 0``) must be close to
α; under the hunter settings it is the power. Results are identical for the same seeds whatever the
number of workers (every task carries its own seed; results are sorted by (setting, run)).

Execution: a ``LocalCluster`` of worker processes (one thread each) over the cores by default, or an
existing scheduler (``scheduler=ADDRESS``), or ``workers=0`` to run serially in this process. Tasks
are submitted with ``retries=2`` (a worker that dies has its tasks rerun), a tqdm bar follows
``as_completed``, and each finished result is checkpointed (the JSON-lines file is rewritten
atomically) so an interrupted calibration resumes where it stopped.

Models: ``simulator`` (liqlab.sim.simulation + the heatmap engine, the real calibration) and
``random-walk`` (a driftless log random walk with clusters placed at random and an optional drift
toward the cluster of ``effect`` per-bar standard deviations: a fast check of the statistic itself).
Times UTC, durations in seconds, prices USD.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from liqlab._util import jsonable, one_line, progress as progress_bar
from liqlab.errors import DataError, ParameterError

__all__ = [
    "Setting",
    "DEFAULT_SETTINGS",
    "MODELS",
    "task_seed",
    "make_tasks",
    "run_task",
    "calibrate",
    "summarize_results",
    "parse_settings",
]

MODELS = ("simulator", "random-walk")
STAGES = ("simulation", "heatmap", "test", "bootstrap")
RESULT_FIELDS = ("n_events", "n_candidates", "untouched_share", "double_touches", "p_hat", "lift",
                 "ci_low", "ci_high", "p_value", "p_value_hac")
#: OI-vs-placebo contrasts (see ``magnet.placebo_contrasts``). contrast_* is the primary: the side race
#: at decision times where the OI-specific (excess) map and the placebo map pick opposite sides
#: (``excess_discordant_share`` of the common times). excess_* is the mirror test on the excess maps at
#: all times; race_* the side race where the OI map and the placebo map pick opposite sides
#: (``discordant_share``); paired_* the paired difference Λ_OI − Λ_placebo.
CONTRAST_FIELDS = ("placebo_lift", "excess_discordant_share", "contrast_n", "contrast_p_hat", "contrast_lift",
                   "contrast_p_value", "excess_n", "excess_lift", "excess_p_value", "n_common", "discordant_share",
                   "race_n", "race_lift", "race_p_value", "paired_n", "paired_diff", "paired_p_value")


@dataclass(frozen=True)
class Setting:
    """One calibration setting: simulator knobs (0 = no magnet) or, for the random-walk model,
    ``effect`` = drift toward the cluster in per-bar standard deviations."""

    name: str
    cascade_impact: float = 0.0
    hunt_intensity: float = 0.0
    effect: float = 0.0

    @property
    def is_null(self) -> bool:
        """True for the null setting: no cascade impact, no hunting, no drift toward clusters."""
        return self.cascade_impact == 0 and self.hunt_intensity == 0 and self.effect == 0

    @property
    def size(self) -> float:
        """Effect size used to order power results (hunt intensity, else cascade impact, else effect)."""
        return self.hunt_intensity or self.cascade_impact or self.effect


#: Null plus hunters switched on at increasing intensity (simulator model).
DEFAULT_SETTINGS: tuple[Setting, ...] = (
    Setting("null"),
    Setting("hunt-0.1", hunt_intensity=0.1),
    Setting("hunt-0.2", hunt_intensity=0.2),
    Setting("hunt-0.4", hunt_intensity=0.4),
)

#: Null plus drift toward the cluster (random-walk model), in per-bar standard deviations.
RANDOM_WALK_SETTINGS: tuple[Setting, ...] = (
    Setting("null"),
    Setting("drift-0.01", effect=0.01),
    Setting("drift-0.02", effect=0.02),
    Setting("drift-0.04", effect=0.04),
)


def parse_settings(text: str) -> tuple[Setting, ...]:
    """'null;hunt=0.5;cascade=0.3;hunt=1,cascade=0.5;drift=0.02' -> Settings (names derived).

    Parameters
    ----------
    text : str
        Settings separated by ``;``, each ``null`` or ``name=value`` pairs joined by ``,``.

    Returns
    -------
    tuple of Setting
    """
    keys = {"hunt": "hunt_intensity", "cascade": "cascade_impact", "drift": "effect"}
    out = []
    for part in filter(None, (s.strip() for s in text.split(";"))):
        if part == "null":
            out.append(Setting("null"))
            continue
        kw: dict[str, float] = {}
        for item in part.split(","):
            if "=" not in item or item.split("=")[0].strip() not in keys:
                raise ParameterError(f"--settings: expected 'null' or hunt=X,cascade=Y,drift=Z items, got {item!r}")
            k, v = item.split("=", 1)
            try:
                kw[keys[k.strip()]] = float(v)
            except ValueError:
                raise ParameterError(f"--settings: {k.strip()} needs a number, got {v!r}") from None
        name = "-".join(f"{k}-{v:g}" for k, v in ((k, kw[keys[k]]) for k in keys if keys[k] in kw))
        out.append(Setting(name, **kw))
    if not out:
        raise ParameterError("--settings: no settings given")
    if len({s.name for s in out}) != len(out):
        raise ParameterError("--settings: duplicate setting")
    return tuple(out)


def task_seed(base_seed: int, setting: str, run: int) -> int:
    """Seed of one task from (base_seed, setting name, run): stable across processes and machines.

    Parameters
    ----------
    base_seed : int
    setting : str
        Setting name.
    run : int
        Run number.

    Returns
    -------
    int
        A seed in [0, 2**31).
    """
    ss = np.random.SeedSequence([int(base_seed), zlib.crc32(setting.encode()), int(run)])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def make_tasks(
    settings: Sequence[Setting], runs: int, *, base_seed: int = 0, days: float = 30.0, venue: str = "binanceusdm",
    model: str = "simulator", heatmap_params: Mapping | None = None, magnet_params: Mapping | None = None,
    world: str = "default",
) -> list[dict[str, Any]]:
    """One task dict per (setting, run); everything a worker needs, JSON-serialisable. ``world`` is the
    simulated world (``liqlab.sim.simulation.WORLDS``) of the simulator model.

    Parameters
    ----------
    settings : sequence of Setting
    runs : int
        Runs per setting.
    base_seed : int
    days : float
        Length of each simulated market (days).
    venue : str
        The simulated venue.
    model : str
        "simulator" or "random-walk".
    heatmap_params, magnet_params : Mapping, optional
        Changes to the calibration engine and test defaults.
    world : str

    Returns
    -------
    list of dict
    """
    if model not in MODELS:
        raise ParameterError(f"model: must be one of {list(MODELS)}, got {model!r}")
    if not (isinstance(runs, int) and runs >= 1):
        raise ParameterError(f"runs: must be an integer >= 1, got {runs!r}")
    if not days > 0:
        raise ParameterError(f"days: must be > 0, got {days!r}")
    from liqlab.sim.simulation import WORLDS

    if world not in WORLDS:
        raise ParameterError(f"--world: unknown world {world!r}; known: {', '.join(WORLDS)}")
    tasks = []
    for s in settings:
        for r in range(runs):
            t = {"setting": asdict(s), "run": r, "seed": task_seed(base_seed, s.name, r), "days": float(days),
                 "venue": venue, "model": model, "world": world, "heatmap_params": dict(heatmap_params or {}),
                 "magnet_params": dict(magnet_params or {})}
            t["task_id"] = f"{s.name}/{r}"
            t["task_hash"] = hashlib.sha256(json.dumps(t, sort_keys=True, default=str).encode()).hexdigest()[:16]
            tasks.append(t)
    return tasks


# ------------------------------------------------------------------------------------------ tasks

#: calibration engine defaults (on top of HeatmapParams defaults): hourly snapshots, one venue.
CALIBRATION_HEATMAP = {"time_step": "1h"}


def run_task(task: Mapping[str, Any]) -> dict[str, Any]:
    """Run one calibration task; returns the result fields plus ``timing`` (seconds per stage).

    Parameters
    ----------
    task : Mapping
        One :func:`make_tasks` entry.

    Returns
    -------
    dict
        ``RESULT_FIELDS`` (and ``CONTRAST_FIELDS`` with a placebo map), the task's identity and ``timing``.
    """
    from liqlab.stats.magnet import MagnetParams, find_events, lift_test

    timing = dict.fromkeys(STAGES, 0.0)
    mp = MagnetParams().replace(**task.get("magnet_params", {}), seed=int(task["seed"]) % (2**31))
    setting = Setting(**task["setting"])
    placebo = None
    if task["model"] == "random-walk":
        t0 = time.perf_counter()
        times, prices, long, short, bars, funding = _random_walk_market(task["seed"], task["days"], setting.effect, mp)
        timing["simulation"] = time.perf_counter() - t0
    else:
        times, prices, long, short, bars, funding, placebo = _simulated_market(task, setting, timing)
    t0 = time.perf_counter()
    ev = find_events(times, prices, long, short, bars, mp, funding=funding)
    if placebo:
        ev_pl = find_events(placebo[0], placebo[1], placebo[2], placebo[3], bars, mp, funding=funding)
    timing["test"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    y = ev.loc[ev["y"].notna(), "y"].to_numpy(float)
    res = lift_test(y, mp.p0, reps=mp.bootstrap_reps, seed=mp.seed, alpha=mp.alpha)
    if placebo:
        from liqlab.stats.magnet import placebo_contrasts

        pc = placebo_contrasts(times, prices, long, short, placebo[2], placebo[3], bars, mp, ev=ev, ev_placebo=ev_pl,
                               funding=funding)
        yp = ev_pl.loc[ev_pl["y"].notna(), "y"].to_numpy(float)
        res["placebo_lift"] = float(yp.mean() - mp.p0) if len(yp) else math.nan
        res.update(_flat_contrasts(pc))
    timing["bootstrap"] = time.perf_counter() - t0
    out = {"task_id": task["task_id"], "task_hash": task["task_hash"], "setting": setting.name,
           "run": int(task["run"]), "seed": int(task["seed"])}
    res["n_candidates"] = int(len(ev))
    res["untouched_share"] = float(ev["untouched"].mean()) if len(ev) else math.nan
    res["double_touches"] = int(ev["double"].sum())
    for k in RESULT_FIELDS + (CONTRAST_FIELDS if placebo else ()):
        v = res.get(k, math.nan)
        out[k] = jsonable(v)
    out["timing"] = {k: round(v, 4) for k, v in timing.items()}
    return out


def _flat_contrasts(pc: Mapping[str, Any]) -> dict[str, Any]:
    """The per-run CONTRAST_FIELDS of a ``magnet.placebo_contrasts`` result."""
    os_, ex, dc = pc["oi_specific"], pc["excess"], pc["oi_map"]
    return {"excess_discordant_share": os_["discordant_share"], "contrast_n": os_["n_events"],
            "contrast_p_hat": os_["p_hat"], "contrast_lift": os_["lift"], "contrast_p_value": os_["p_value"],
            "excess_n": ex["n_events"], "excess_lift": ex["lift"], "excess_p_value": ex["p_value"],
            "n_common": dc["n_common"], "discordant_share": dc["discordant_share"], "race_n": dc["n_events"],
            "race_lift": dc["lift"], "race_p_value": dc["p_value"], "paired_n": dc["paired"]["n_paired"],
            "paired_diff": dc["paired"]["lift_diff"], "paired_p_value": dc["paired"]["diff_p_value"]}


def _simulated_market(task: Mapping[str, Any], setting: Setting, timing: dict[str, float]):
    """Simulate one venue in memory and build its heatmap (engine at ``CALIBRATION_HEATMAP`` steps) and
    the placebo heatmap (same engine, constant OI increments) for the OI − placebo contrast."""
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.engine.params import HeatmapParams
    from liqlab.stats.magnet import Bars
    from liqlab.stats.magnet.events import funding_arrays
    from liqlab.sim.simulation import simulate_market

    t0 = time.perf_counter()
    market = simulate_market(days=task["days"], seed=int(task["seed"]), venues=(task["venue"],), progress=False,
                             world=task.get("world", "default"),
                             cascade_impact=setting.cascade_impact, hunt_intensity=setting.hunt_intensity)
    ds = market.collection[task["venue"]]
    timing["simulation"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    hp = HeatmapParams().replace(**{**CALIBRATION_HEATMAP, **task.get("heatmap_params", {})})
    hm = build_heatmap(ds, hp)
    bars = Bars.from_frame(ds.ohlcv)
    funding = funding_arrays(ds)
    placebo = None
    if task.get("contrast", True):
        from liqlab.stats.nulls import placebo_data

        hpl = build_heatmap(placebo_data(ds), hp)
        placebo = (hpl.times, hpl.prices, hpl.long, hpl.short)
    timing["heatmap"] = time.perf_counter() - t0
    return hm.times, hm.prices, hm.long, hm.short, bars, funding, placebo


def _random_walk_market(seed: int, days: float, effect: float, mp, sd: float = 5e-4, bin_bp: float = 5.0):
    """A 1m log random walk; every H-hour block has one cluster (random side, distance 0.5–1.5 σ_H)
    in the maps, and the block's increments drift toward it by ``effect``·sd per bar (0 = null)."""
    from liqlab.stats.magnet import HOUR_NS, Bars

    rng = np.random.default_rng(seed)
    bar_ns = 60_000_000_000
    n = int(days * 1440)
    per_block = int(round(mp.horizon_hours * 60))
    n_blocks = -(-n // per_block)
    side = rng.choice(np.array([-1, 1]), size=n_blocks)
    sub = 2  # two ticks per bar give highs and lows
    inc = rng.normal(0.0, sd / math.sqrt(sub), size=(n, sub))
    drift = np.repeat(side * effect * sd, per_block)[:n]
    inc += (drift / sub)[:, None]
    x = math.log(50_000.0) + np.cumsum(inc.ravel())
    x = np.r_[math.log(50_000.0), x].reshape(-1)
    ticks = np.exp(x)
    op = ticks[0:-1:sub][:n]
    seg = np.stack([ticks[i : i + n * sub : sub] for i in range(sub + 1)], axis=1)[:n]
    bars = Bars(ts=np.arange(n, dtype=np.int64) * bar_ns + 1_704_067_200_000_000_000, open=op,
                high=seg.max(axis=1), low=seg.min(axis=1), close=seg[:, -1], bar_ns=bar_ns)
    step = HOUR_NS
    times = bars.ts[0] + np.arange(1, int(days * 24) + 1, dtype=np.int64) * step
    lo, hi = math.log(bars.low.min()) - 0.05, math.log(bars.high.max()) + 0.05
    prices = np.exp(np.arange(lo, hi, bin_bp * 1e-4))
    lp = np.log(prices)
    long = np.zeros((len(times), len(prices)))
    short = np.zeros_like(long)
    sig_h = sd * math.sqrt(per_block)
    for j, t in enumerate(times):
        i_now = int(np.searchsorted(bars.ts, t - bar_ns, "right")) - 1
        P = math.log(bars.close[i_now])
        blk = min(int((t - bars.ts[0]) // (per_block * bar_ns)), n_blocks - 1)
        s = side[blk]
        d = rng.uniform(0.5, 1.5) * sig_h
        b = int(np.argmin(np.abs(lp - (P + s * d))))
        (short if s > 0 else long)[j, b] = 2e6
        d2 = rng.uniform(0.5, 1.5) * sig_h
        b2 = int(np.argmin(np.abs(lp - (P - s * d2))))
        (long if s > 0 else short)[j, b2] = 1e6
    return times, prices, long, short, bars, None


# ------------------------------------------------------------------------------------- execution


def _load_checkpoint(path: Path, wanted: Mapping[str, str]) -> tuple[dict[str, dict], list[dict]]:
    """Split the checkpoint into results of wanted tasks (task_id -> result, where the task_hash
    matches) and all other records (kept verbatim, never dropped when the file is rewritten)."""
    done: dict[str, dict] = {}
    others: list[dict] = []
    if not path.exists():
        return done, others
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {i}: not valid JSON ({exc.msg}); delete the file to start over") from None
        if not isinstance(r, dict) or "task_id" not in r:
            raise DataError(f"{path}: line {i}: not a calibration result (no task_id)")
        if wanted.get(r["task_id"]) == r.get("task_hash"):
            done[r["task_id"]] = r
        else:
            others.append(r)
    return done, others


def _write_checkpoint(path: Path, results: Mapping[str, dict], others: Sequence[dict] = ()) -> None:
    """Rewrite the JSON-lines checkpoint atomically: other records first, then results by task_id."""
    from liqlab.io import atomic

    lines = [json.dumps(r, sort_keys=True) for r in others]
    lines += [json.dumps(results[k], sort_keys=True) for k in sorted(results)]
    atomic.write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def execute(
    tasks: Sequence[Mapping[str, Any]],
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    progress: bool | None = None,
    task_fn: Callable[[Mapping[str, Any]], dict] = run_task,
    connect_timeout: str = "30s",
) -> tuple[list[dict], dict[str, Any]]:
    """Run tasks (serially if ``workers == 0``, else on dask) with checkpoint/resume.

    Parameters
    ----------
    tasks : sequence of Mapping
        :func:`make_tasks` entries.
    scheduler : str, optional
        Address of a dask scheduler.
    workers : int, optional
        0 = serial; None = one per core.
    checkpoint : str or PathLike, optional
        ``.jsonl`` file (or folder) of finished results, read to resume.
    progress : bool or None
        Progress bar (None = on a terminal).
    task_fn : callable
        What runs one task.
    connect_timeout : str
        Dask connection timeout.

    Returns
    -------
    tuple
        (results sorted by task order, info: ``n_workers``, ``resumed``, ``wall_seconds``).
    """
    t_wall = time.perf_counter()
    ck, done, others = _resume(checkpoint, tasks)
    resumed = len(done)
    todo = [t for t in tasks if t["task_id"] not in done]
    bar = progress_bar(total=len(tasks), desc="calibrate", unit="run", enabled=progress, leave=True)
    bar.update(resumed)

    def finish(r: dict) -> None:
        done[r["task_id"]] = r
        if ck is not None:
            _write_checkpoint(ck, done, others)
        bar.update(1)

    n_workers = 0
    try:
        if todo and workers == 0 and scheduler is None:
            for t in todo:
                finish(task_fn(t))
        elif todo:
            n_workers = _run_dask(todo, task_fn, finish, scheduler, workers, connect_timeout)
    finally:
        bar.close()
    results = [done[t["task_id"]] for t in tasks]
    return results, {"n_workers": n_workers, "resumed": resumed, "wall_seconds": time.perf_counter() - t_wall}


def _resume(checkpoint, tasks) -> tuple[Path | None, dict[str, dict], list[dict]]:
    """(checkpoint file or None, finished results of these tasks by id, other lines kept) to resume from."""
    if checkpoint is None:
        return None, {}, []
    ck = Path(checkpoint)
    if ck.suffix != ".jsonl":
        ck = ck / "results.jsonl"
    ck.parent.mkdir(parents=True, exist_ok=True)
    done, others = _load_checkpoint(ck, {t["task_id"]: t["task_hash"] for t in tasks})
    return ck, done, others


def _run_dask(todo, task_fn, finish, scheduler, workers, connect_timeout) -> int:
    """Run ``todo`` on dask (a LocalCluster, or ``scheduler``), calling ``finish`` per result; the worker count."""
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ParameterError(f"--scheduler {scheduler}: cannot connect ({one_line(exc)})") from None
    else:
        nw = workers if workers else (os.cpu_count() or 1)
        cluster = LocalCluster(n_workers=nw, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    try:
        n_workers = len(client.scheduler_info().get("workers", {}))
        futures = [client.submit(task_fn, t, key=f"calibrate-{t['task_hash']}-{t['task_id']}",
                                 retries=2, pure=False) for t in todo]
        for fut in as_completed(futures):
            finish(fut.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return n_workers


def _binom_ci(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Clopper–Pearson interval."""
    from scipy.stats import beta

    if n == 0:
        return math.nan, math.nan
    lo = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


def _mean(rs: Sequence[Mapping[str, Any]], key: str) -> float | None:
    v = [r[key] for r in rs if r.get(key) is not None]
    return float(np.mean(v)) if v else None


def _contrast_summary(valid: Sequence[Mapping[str, Any]], s: Setting, alpha: float) -> dict[str, Any]:
    """Rejection rates (positive direction unless null, Clopper–Pearson CI) of each OI-vs-placebo
    contrast (CONTRAST_FIELDS prefixes), over runs with a placebo map; a run with too few events for
    a statistic counts as not rejecting it."""
    out: dict[str, Any] = {}
    with_pl = [r for r in valid if "discordant_share" in r]
    if not with_pl:
        return out
    for name, p_key, eff_key in (("contrast", "contrast_p_value", "contrast_lift"),
                                 ("excess", "excess_p_value", "excess_lift"), ("race", "race_p_value", "race_lift"),
                                 ("paired", "paired_p_value", "paired_diff")):
        rej = [r for r in with_pl if r.get(p_key) is not None and r[p_key] <= alpha
               and (s.is_null or (r[eff_key] or 0) > 0)]
        lo, hi = _binom_ci(len(rej), len(with_pl), alpha)
        out.update({f"{name}_rejection_rate": len(rej) / len(with_pl), f"{name}_ci_low": lo, f"{name}_ci_high": hi,
                    f"{name}_testable_runs": sum(r.get(p_key) is not None for r in with_pl)})
    out.update(mean_placebo_lift=_mean(with_pl, "placebo_lift"), mean_discordant_share=_mean(with_pl, "discordant_share"),
               mean_contrast_n=_mean(with_pl, "contrast_n"), mean_contrast_lift=_mean(with_pl, "contrast_lift"),
               mean_race_n=_mean(with_pl, "race_n"), mean_race_lift=_mean(with_pl, "race_lift"),
               mean_excess_discordant_share=_mean(with_pl, "excess_discordant_share"),
               mean_excess_lift=_mean(with_pl, "excess_lift"),
               mean_paired_diff=_mean(with_pl, "paired_diff"))
    return out


def summarize_results(results: Sequence[Mapping[str, Any]], settings: Sequence[Setting], alpha: float = 0.05,
                      power_target: float = 0.8) -> dict[str, Any]:
    """Rejection rate (two-sided bootstrap p <= alpha) per setting with Clopper–Pearson CI; power counts
    rejections with positive lift. Timing totals and means per stage.

    Parameters
    ----------
    results : sequence of Mapping
        :func:`run_task` results.
    settings : sequence of Setting
    alpha : float
        Test size.
    power_target : float
        Power that defines the smallest detectable effect.

    Returns
    -------
    dict
        Rejection rates with CIs per setting, power, contrasts' rates and timing.
    """
    per: dict[str, Any] = {}
    for s in settings:
        rs = [r for r in results if r["setting"] == s.name]
        valid = [r for r in rs if r["p_value"] is not None]
        rej = [r for r in valid if r["p_value"] <= alpha]
        pos = [r for r in rej if (r["lift"] or 0) > 0]
        k = len(pos) if not s.is_null else len(rej)
        lo, hi = _binom_ci(k, len(valid), alpha)
        lifts = [r["lift"] for r in valid]
        per[s.name] = {
            **{k2: v for k2, v in asdict(s).items() if k2 != "name"},
            "runs": len(rs), "valid_runs": len(valid),
            "rejection_rate": k / len(valid) if valid else None, "ci_low": lo, "ci_high": hi,
            "rejection_rate_any_sign": len(rej) / len(valid) if valid else None,
            "mean_lift": float(np.mean(lifts)) if lifts else None,
            "mean_n_events": float(np.mean([r["n_events"] for r in rs])) if rs else None,
            **_contrast_summary(valid, s, alpha),
            "mean_untouched_share": float(np.nanmean([r["untouched_share"] if r["untouched_share"] is not None else np.nan for r in rs])) if rs else None,
        }
    out: dict[str, Any] = {"alpha": alpha, "settings": per}
    nulls = [s for s in settings if s.is_null]
    if nulls:
        n0 = per[nulls[0].name]
        out["null_rejection_rate"] = n0["rejection_rate"]
        out["null_rejection_ci"] = [n0["ci_low"], n0["ci_high"]]
    power = {s.name: per[s.name]["rejection_rate"] for s in settings if not s.is_null}
    out["power"] = power
    if nulls and "contrast_rejection_rate" in per[nulls[0].name]:
        out["null_contrast_rejection_rate"] = per[nulls[0].name]["contrast_rejection_rate"]
        out["null_contrast_ci"] = [per[nulls[0].name]["contrast_ci_low"], per[nulls[0].name]["contrast_ci_high"]]
    cpow = {s.name: per[s.name].get("contrast_rejection_rate") for s in settings if not s.is_null}
    if any(v is not None for v in cpow.values()):
        out["power_oi_vs_placebo"] = cpow
        for name in ("excess", "race", "paired"):
            out[f"power_oi_vs_placebo_{name}"] = {s.name: per[s.name].get(f"{name}_rejection_rate")
                                                  for s in settings if not s.is_null}
    detected = sorted((s for s in settings if not s.is_null and (per[s.name]["rejection_rate"] or 0) >= power_target),
                      key=lambda s: s.size)
    out["smallest_effect_80_power"] = detected[0].name if detected else None
    timing = {k: float(sum(r["timing"][k] for r in results)) for k in STAGES}
    n = max(len(results), 1)
    out["timing_total_seconds"] = timing
    out["timing_mean_seconds_per_run"] = {k: v / n for k, v in timing.items()}
    return out


def calibrate(
    runs: int = 200,
    settings: Sequence[Setting] | None = None,
    *,
    days: float = 30.0,
    venue: str = "binanceusdm",
    model: str = "simulator",
    base_seed: int = 0,
    scheduler: str | None = None,
    workers: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    progress: bool | None = None,
    heatmap_params: Mapping | None = None,
    magnet_params: Mapping | None = None,
    alpha: float = 0.05,
    world: str = "default",
) -> dict[str, Any]:
    """Calibrate the magnet test: ``runs`` simulated markets per setting -> rejection rates, power,
    timing. ``workers=0`` runs serially; otherwise dask (LocalCluster or ``scheduler``).

    Parameters
    ----------
    runs : int
        Simulated markets per setting.
    settings : sequence of Setting, optional
        Default: the null and a few effects.
    days, venue, model, base_seed, heatmap_params, magnet_params, world
        As in :func:`make_tasks`.
    scheduler, workers, checkpoint, progress
        As in :func:`execute`.
    alpha : float
        Test size.

    Returns
    -------
    dict
        The report: null_rejection_rate with its binomial CI, power per setting, smallest effect with
        >= 80% power, timing per stage, wall time, per-run results.
    """
    if settings is None:
        settings = DEFAULT_SETTINGS if model == "simulator" else RANDOM_WALK_SETTINGS
    mp = dict(magnet_params or {})
    mp.setdefault("alpha", alpha)
    tasks = make_tasks(settings, runs, base_seed=base_seed, days=days, venue=venue, model=model,
                       heatmap_params=heatmap_params, magnet_params=mp, world=world)
    results, info = execute(tasks, scheduler=scheduler, workers=workers, checkpoint=checkpoint, progress=progress)
    report = {"model": model, "world": world if model == "simulator" else None, "runs_per_setting": runs, "days": days, "venue": venue, "base_seed": base_seed,
              "synthetic": True, "heatmap_params": {**(CALIBRATION_HEATMAP if model == "simulator" else {}),
                                                    **dict(heatmap_params or {})},
              "magnet_params": mp, **summarize_results(results, settings, alpha), **info, "results": results}
    return report


def comparable(results: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Results without timing (what must be identical across worker counts).

    Parameters
    ----------
    results : sequence of Mapping

    Returns
    -------
    list of dict
    """
    return [{k: v for k, v in r.items() if k != "timing"} for r in results]
