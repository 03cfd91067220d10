"""Tests of liqlab.stats.calibrate: seeding, dask == serial, checkpoint/resume, worker death, summary, CLI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from liqlab.stats.calibrate import (
    CONTRAST_FIELDS,
    RANDOM_WALK_SETTINGS,
    Setting,
    calibrate,
    comparable,
    execute,
    make_tasks,
    parse_settings,
    run_task,
    summarize_results,
    task_seed,
)
from liqlab.errors import DataError, ParameterError

SMALL = dict(days=3.0, model="random-walk", magnet_params={"bootstrap_reps": 99, "atr_periods": 12})


def small_tasks(runs=4, settings=RANDOM_WALK_SETTINGS[:2], **kw):
    return make_tasks(settings, runs, **{**SMALL, **kw})


def test_task_seeds_are_stable_and_distinct():
    assert task_seed(0, "null", 3) == task_seed(0, "null", 3)
    seeds = {task_seed(b, s, r) for b in (0, 1) for s in ("null", "hunt-1") for r in range(50)}
    assert len(seeds) == 200
    t = small_tasks()
    assert len(t) == 8 and len({x["task_hash"] for x in t}) == 8


def test_checkpoint_resumes_after_interruption(tmp_path):
    tasks = small_tasks()
    calls = []

    def flaky(task):
        if len(calls) == 5:
            raise KeyboardInterrupt
        calls.append(task["task_id"])
        return run_task(task)

    with pytest.raises(KeyboardInterrupt):
        execute(tasks, workers=0, checkpoint=tmp_path / "ck", task_fn=flaky, progress=False)
    lines = (tmp_path / "ck" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 5
    calls.clear()
    resumed, info = execute(tasks, workers=0, checkpoint=tmp_path / "ck", task_fn=run_task, progress=False)
    assert info["resumed"] == 5
    full, _ = execute(tasks, workers=0, progress=False)
    assert comparable(resumed) == comparable(full)
    assert len((tmp_path / "ck" / "results.jsonl").read_text().splitlines()) == 8
    # results of other tasks are neither mixed in nor dropped from the file
    other = small_tasks(base_seed=1)
    _, info2 = execute(other[:1], workers=0, checkpoint=tmp_path / "ck", progress=False)
    assert info2["resumed"] == 0
    assert len((tmp_path / "ck" / "results.jsonl").read_text().splitlines()) == 9
    _, info3 = execute(tasks, workers=0, checkpoint=tmp_path / "ck", progress=False)
    assert info3["resumed"] == 8


def test_corrupt_checkpoint_line_is_a_data_error(tmp_path):
    ck = tmp_path / "results.jsonl"
    ck.write_text('{"task_id": "null/0"}\n{not json\n')
    with pytest.raises(DataError, match=r"results.jsonl: line 2"):
        execute(small_tasks(), workers=0, checkpoint=ck, progress=False)


def _die_once(task):
    """Kill the worker process the first time task '/1' runs (a marker file remembers), then behave."""
    from liqlab.stats.calibrate import run_task

    flag = Path(task["_marker"])
    if task["task_id"].endswith("/1") and not flag.exists():
        flag.write_text("died")
        os._exit(1)
    return run_task({k: v for k, v in task.items() if k != "_marker"})


@pytest.mark.slow
def test_worker_death_is_retried_on_an_existing_scheduler(tmp_path):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    from dask.distributed import LocalCluster

    tasks = [dict(t, _marker=str(tmp_path / "died.flag")) for t in small_tasks(runs=2, settings=RANDOM_WALK_SETTINGS[:1])]
    # through an existing scheduler (the --scheduler ADDRESS path); its nannies restart the dead worker
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster:
        res, info = execute(tasks, scheduler=cluster.scheduler_address, task_fn=_die_once, progress=False)
    assert (tmp_path / "died.flag").exists() and info["n_workers"] == 2
    serial, _ = execute([{k: v for k, v in t.items() if k != "_marker"} for t in tasks], workers=0, progress=False)
    assert comparable(res) == comparable(serial)


def test_summary_rates_ci_and_timing():
    settings = (Setting("null"), Setting("drift-0.04", effect=0.04))
    mk = lambda s, i, p, lift: {"setting": s, "run": i, "p_value": p, "lift": lift, "n_events": 10,  # noqa: E731
                                "untouched_share": 0.3, "timing": {"simulation": 1.0, "heatmap": 2.0, "test": 0.5, "bootstrap": 0.25}}
    res = [mk("null", i, 0.01 if i < 5 else 0.5, 0.1) for i in range(100)]
    res += [mk("drift-0.04", i, 0.01, 0.2 if i < 90 else -0.2) for i in range(100)]
    s = summarize_results(res, settings)
    assert s["null_rejection_rate"] == 0.05
    lo, hi = s["null_rejection_ci"]
    assert lo < 0.05 < hi and hi < 0.12
    assert s["power"]["drift-0.04"] == 0.9  # only rejections in the magnet direction count
    assert s["smallest_effect_80_power"] == "drift-0.04"
    assert s["timing_total_seconds"]["heatmap"] == 400.0
    assert s["timing_mean_seconds_per_run"]["bootstrap"] == 0.25


def test_calibrate_random_walk_report():
    rep = calibrate(runs=3, settings=RANDOM_WALK_SETTINGS[:2], workers=0, progress=False, **SMALL)
    assert rep["synthetic"] is True and rep["runs_per_setting"] == 3
    assert set(rep["settings"]) == {"null", "drift-0.01"}
    assert 0 <= rep["null_rejection_rate"] <= 1 and len(rep["results"]) == 6
    assert set(rep["timing_total_seconds"]) == {"simulation", "heatmap", "test", "bootstrap"}
    json.dumps(rep)  # JSON-serialisable


def test_parse_settings_and_errors():
    s = parse_settings("null;hunt=0.5;hunt=1,cascade=0.2;drift=0.02")
    assert [x.name for x in s] == ["null", "hunt-0.5", "hunt-1-cascade-0.2", "drift-0.02"]
    assert s[0].is_null and s[2].cascade_impact == 0.2
    with pytest.raises(ParameterError, match="--settings"):
        parse_settings("speed=3")
    with pytest.raises(ParameterError, match="model"):
        make_tasks(RANDOM_WALK_SETTINGS, 2, model="nope")
    with pytest.raises(ParameterError, match="runs"):
        make_tasks(RANDOM_WALK_SETTINGS, 0)


def test_cli_calibrate_random_walk_and_bad_input(tmp_path, capsys):
    from liqlab.app.cli import main

    out = tmp_path / "cal.json"
    rc = main(["calibrate", "--runs", "2", "--model", "random-walk", "--days", "6", "--workers", "0",
               "--settings", "null;drift=0.02", "--bootstrap-reps", "99", "--json", str(out), "--no-progress"])
    assert rc == 0
    rep = json.loads(out.read_text())
    assert "null_rejection_rate" in rep and "drift-0.02" in rep["power"]
    printed = capsys.readouterr().out
    assert "null rejection rate" in printed and "bootstrap" in printed
    rc = main(["calibrate", "--runs", "2", "--model", "random-walk", "--settings", "bogus=1", "--json", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "--settings" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_simulator_calibration_on_two_workers_equals_serial():
    """The real pipeline (simulate -> heatmap -> placebo -> test): 4 runs x 2 settings, tiny days."""
    settings = (Setting("null"), Setting("hunt-0.4", hunt_intensity=0.4))
    tasks = make_tasks(settings, 4, days=2.0, model="simulator", magnet_params={"bootstrap_reps": 99, "atr_periods": 6})
    serial, _ = execute(tasks, workers=0, progress=False)
    par, info = execute(tasks, workers=2, progress=False)
    assert info["n_workers"] == 2
    assert comparable(par) == comparable(serial)
    assert all(r["n_candidates"] > 0 for r in serial)
    assert all(set(r["timing"]) == {"simulation", "heatmap", "test", "bootstrap"} for r in serial)
    assert all(set(CONTRAST_FIELDS) <= set(r) for r in serial)
    assert all(0 <= r["discordant_share"] <= 1 and 0 <= r["excess_discordant_share"] <= 1 for r in serial)
    s = summarize_results(serial, settings)
    assert "null_contrast_rejection_rate" in s and "hunt-0.4" in s["power_oi_vs_placebo"]
    assert {"power_oi_vs_placebo_excess", "power_oi_vs_placebo_race", "power_oi_vs_placebo_paired"} <= set(s)


def test_world_is_passed_to_the_simulation_and_checked():
    from liqlab.sim.simulation import WORLDS

    settings = (Setting("null"),)
    for w in WORLDS:
        assert all(t["world"] == w for t in make_tasks(settings, 2, model="simulator", world=w))
    a, b = (make_tasks(settings, 1, world=w)[0] for w in ("default", "homogeneous"))
    assert a["seed"] == b["seed"] and a["task_hash"] != b["task_hash"]  # a checkpoint never mixes worlds
    with pytest.raises(ParameterError, match="--world: unknown world 'flat'"):
        make_tasks(settings, 1, world="flat")


def test_unreachable_scheduler_is_a_parameter_error():
    with pytest.raises(ParameterError, match="--scheduler tcp://127.0.0.1:9"):
        execute(small_tasks(runs=1, settings=RANDOM_WALK_SETTINGS[:1]), scheduler="tcp://127.0.0.1:9",
                connect_timeout="1s", progress=False)
