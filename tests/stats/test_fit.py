"""Tests of liqlab.stats.fit: distances, objective, the fast layer sweeps, and a fit with a known answer."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqlab.stats import fit as F
from liqlab.stats import validate as V
from liqlab.errors import DataError, ParameterError

def test_objective_is_mean_spearman_on_mask():
    x = np.arange(20.0)
    mask = np.ones(20, bool)
    assert F.objective(x, -x, x, x, mask) == pytest.approx(0.0)  # (+1 + -1) / 2
    assert F.objective(x, x, x**2, x, mask) == pytest.approx(1.0)
    mask[10:] = False
    y = x.copy()
    y[10:] = -y[10:]  # disagreement only outside the mask
    assert F.objective(x, x, y, y, mask) == pytest.approx(1.0)
    assert F.objective(np.ones(20), x, x, x, mask) == pytest.approx(0.5)  # undefined side counts 0


# ------------------------------------------------------------------------- selection of the dynamics


def test_bootstrap_objectives_are_the_objective_on_each_resample():
    rng = np.random.default_rng(3)
    n = 60
    real_l, real_s = rng.gamma(1.0, 1.0, n), rng.gamma(1.0, 1.0, n)
    swept = [(real_l + rng.normal(0, s, n), real_s + rng.normal(0, s, n)) for s in (0.1, 1.0)]
    swept.append((np.ones(n), real_s))  # a constant side: undefined, counts 0 as in objective()
    idx = np.vstack([np.arange(n), V.block_bootstrap_indices(n, 3, seed=1)])
    boot = F.bootstrap_objectives(swept, real_l, real_s, idx)
    assert boot.shape == (4, 3)
    for r, ix in enumerate(idx):
        for c, (sl, ss) in enumerate(swept):
            want = F.objective(sl[ix], ss[ix], real_l[ix], real_s[ix], np.ones(n, bool))
            assert boot[r, c] == pytest.approx(want, abs=1e-12)


def test_one_standard_error_rule_keeps_the_starting_rule_unless_beaten_beyond_noise():
    objectives = np.array([0.900, 0.899, 0.850])
    preferred = np.array([False, True, True])
    base = np.linspace(0.85, 0.95, 50)
    noisy = np.column_stack([base, base - 0.001 + np.tile([0.002, -0.002], 25), base - 0.05])
    pick, se = F.select_configuration(objectives, noisy, preferred)
    assert pick == 1 and se[0] == 0 and se[1] == pytest.approx(0.002, rel=0.05)  # gap 0.001 < SE: keep the rule
    firm = np.column_stack([base, base - 0.001 + np.tile([1e-5, -1e-5], 25), base - 0.05])
    assert F.select_configuration(objectives, firm, preferred)[0] == 0  # gap 0.001 >> SE: the best wins
    assert F.select_configuration(objectives, noisy, np.array([True, False, False]))[0] == 0  # best is preferred
    assert F.select_configuration(objectives, noisy, np.array([False, False, True]))[0] == 0  # none preferred within SE
    with pytest.raises(ParameterError, match="shapes"):
        F.select_configuration(objectives, noisy[:, :2], preferred)


def test_one_standard_error_rule_picks_the_known_truth_over_a_lucky_rival():
    """Realized = a known map's sweep × noise. The truth (the starting rule) predicts with that map; a
    rival (another rule) is the map blurred by independent noise: worse in expectation, but on some
    draws ahead on the training objective by chance. On such a draw the rule keeps the truth. A rival
    that is really better (here: the realized series itself) is chosen."""
    rng = np.random.default_rng(7)
    n = 400
    x_l, x_s = rng.gamma(0.5, 1.0, n), rng.gamma(0.5, 1.0, n)  # the true map's sweeps
    real_l, real_s = x_l * rng.lognormal(0, 1.0, n), x_s * rng.lognormal(0, 1.0, n)
    idx = V.block_bootstrap_indices(n, F.SELECTION_BOOT, seed=0)
    preferred = np.array([True, False])
    mask = np.ones(n, bool)

    def choose(rival):
        swept = [(x_l, x_s), rival]
        obj = np.array([F.objective(sl, ss, real_l, real_s, mask) for sl, ss in swept])
        pick, se = F.select_configuration(obj, F.bootstrap_objectives(swept, real_l, real_s, idx), preferred)
        return obj, pick, se

    for _ in range(200):  # a draw on which the blurred rival is ahead by chance
        obj, pick, se = choose((x_l * rng.lognormal(0, 0.1, n), x_s * rng.lognormal(0, 0.1, n)))
        if obj[1] > obj[0]:
            break
    assert obj[1] > obj[0] and obj[1] - obj[0] <= se[0]  # ahead, by less than one SE
    assert pick == 0
    obj, pick, se = choose((real_l, real_s))
    assert obj[1] - obj[0] > se[0] and pick == 1


# ---------------------------------------------------------------------------------- with the engine


@pytest.fixture(scope="module")
def sim(small_sim):
    from liqlab.io.dataset import load_collection

    return load_collection(small_sim)


def _realized_from_map(sim, burn_in_noise_hours: float = 0.0, **params):
    """A liquidations dataset whose per-step sums are exactly what the heatmap with ``params`` sweeps,
    except in the steps starting within ``burn_in_noise_hours`` of the data start: there they are
    large and unrelated to the map (what a burn-in must keep out of the fit)."""
    from liqlab.engine.heatmap import build_heatmap

    hm = build_heatmap(sim, **params)
    start, _end, _ = V.heatmap_step_edges(hm)
    sl, ss = V.heatmap_swept(hm, sim)
    early = start < start[0] + np.timedelta64(int(burn_in_noise_hours * 3600), "s")
    rng = np.random.default_rng(1)
    top = float(np.nanmax(np.concatenate([sl, ss])))
    sl = np.where(early, top * rng.uniform(1, 2, sl.size), sl)
    ss = np.where(early, top * rng.uniform(1, 2, ss.size), ss)
    ok = np.isfinite(sl) & np.isfinite(ss)
    ts = pd.to_datetime(start[ok]).tz_localize("UTC")
    n = int(ok.sum())
    liq = pd.DataFrame({"ts": np.repeat(ts, 2), "side": ["long", "short"] * n, "price": np.nan,
                        "amount": 0.0, "value": np.column_stack([sl[ok], ss[ok]]).ravel()})
    return dataclasses.replace(sim.datasets[0], liquidations=liq)


def test_fit_recovers_a_known_configuration(sim, tmp_path):
    from liqlab.engine.params import HeatmapParams

    # high leverages only, so that price crosses every layer's levels in these three days
    lev = (25.0, 50.0, 75.0, 100.0, 125.0)
    true_w = np.array([0.1, 0.4, 0.05, 0.3, 0.15])
    truth = {"oi_decrease": "ignore", "leverage_weights": tuple(true_w), "half_life_hours": 24.0, "half_life_exponent": 0.0}
    liq = _realized_from_map(sim, leverages=lev, **truth)
    kw = dict(liquidations=liq, oi_rules=("proportional", "ignore"), half_lives=(24.0, 168.0),
              half_life_exponents=(0.0, 1.0), leverages=lev, burn_in_hours=0, n_boot=20, truth=None, progress=False)
    # started from the defaults ('proportional'): the truth has the best objective, but on these 43
    # training steps 'proportional' trails it by less than one SE, so the starting rule is kept
    res0 = F.fit(sim, **kw)
    sel = res0.selection
    assert (sel["best"]["oi_decrease"], sel["best"]["half_life_hours"], sel["best"]["half_life_exponent"]) == ("ignore", 24.0, 0.0)
    assert sel["best"]["objective"] == pytest.approx(1.0)
    # the chosen configuration is the best one with the starting rule (which half-life that is depends on
    # the simulated world)
    prop = res0.trials[res0.trials["oi_decrease"] == "proportional"].sort_values("objective", ascending=False).iloc[0]
    assert res0.params.oi_decrease == "proportional"
    assert (res0.params.half_life_hours, res0.params.half_life_exponent) == (prop["half_life_hours"], prop["half_life_exponent"])
    assert 0 < 1.0 - sel["chosen"]["objective"] <= sel["chosen"]["se_of_gap_to_best"]
    assert sel["reason"].startswith("one-standard-error rule")
    # started from the truth's rule: everything is recovered
    res = F.fit(sim, oi_decrease="ignore", **kw)
    p = res.params
    assert all(res.mix["identifiable"])
    assert res.objective_train == pytest.approx(1.0)
    assert p.oi_decrease == "ignore" and p.half_life_hours == 24.0 and p.half_life_exponent == 0.0
    # realized = the map's sweep exactly, so β = the true weights and the intercepts vanish
    np.testing.assert_allclose(p.weights(), true_w, atol=1e-5)
    np.testing.assert_allclose(res.mix["coef"], true_w, rtol=1e-4)
    assert max(res.mix["intercepts_usd_per_step"]) < 1e-6 * np.nanmean(liq.liquidations["value"])
    assert res.objective_test == pytest.approx(1.0)
    assert res.test_report["heatmap"]["long"]["spearman"] == pytest.approx(1.0)
    assert set(res.test_report["baselines"]) >= {"excursion_oi", "abs_return_oi", "naive_map"}
    assert res.train[1] <= res.test[0]  # the test window comes after the training window
    # saved parameters load back (YAML and JSON) as the same HeatmapParams
    for name in ("fit.yaml", "fit.json"):
        path = res.save_params(tmp_path / name)
        assert HeatmapParams.from_file(path) == p
    json.dumps(res.to_dict())


def test_burn_in_keeps_the_first_hours_out_of_the_fit(sim):
    """Realized = the map of a known configuration, except in the first 12 h, where they are unrelated
    and larger than anything later. With a 12 h burn-in the fit recovers the configuration and its
    mix exactly; without one those steps enter the objective and the regression."""
    lev = (25.0, 50.0, 75.0, 100.0, 125.0)
    true_w = np.array([0.1, 0.4, 0.05, 0.3, 0.15])
    truth = {"oi_decrease": "proportional", "leverage_weights": tuple(true_w), "half_life_hours": 168.0,
             "half_life_exponent": 1.0}
    liq = _realized_from_map(sim, burn_in_noise_hours=12.0, leverages=lev, **truth)
    kw = dict(liquidations=liq, oi_rules=("proportional", "ignore"), half_lives=(6.0, 168.0),
              half_life_exponents=(0.0, 1.0), leverages=lev, n_boot=20, truth=None, progress=False)
    res = F.fit(sim, burn_in_hours=12.0, **kw)
    p = res.params
    assert (p.oi_decrease, p.half_life_hours, p.half_life_exponent) == ("proportional", 168.0, 1.0)
    assert res.objective_train == pytest.approx(1.0)
    np.testing.assert_allclose(p.weights(), true_w, atol=1e-5)
    assert res.burn_in_hours == 12.0 and res.to_dict()["burn_in_hours"] == 12.0
    first = pd.Timestamp(sim.datasets[0].ohlcv.ts.min())
    assert pd.Timestamp(res.train[0]) >= first + pd.Timedelta(hours=12)
    lan = res.landscape()
    assert lan["train_gap_to_runner_up"] > 0 and lan["runner_up"]["objective"] < res.objective_train
    res0 = F.fit(sim, burn_in_hours=0.0, **kw)
    assert res0.objective_train < 0.99  # the unrelated first hours count without a burn-in
    assert pd.Timestamp(res0.train[0]) < first + pd.Timedelta(hours=12)
    assert res0.test == res.test  # the burn-in only shortens the training window


def test_fit_picks_the_best_training_configuration_and_reports_the_truth(sim):
    res = F.fit(sim, oi_rules=("proportional",), half_lives=(24.0, 168.0), half_life_exponents=(0.0, 1.0),
                n_boot=20, progress=False)
    # 3 days: the default burn-in is a quarter of the training window (from the data start), not 72 h
    first = pd.Timestamp(sim.datasets[0].ohlcv.ts.min())
    span = (pd.Timestamp(res.train[1]) - first) / pd.Timedelta(hours=1)
    assert res.burn_in_hours == pytest.approx(F.BURN_IN_MAX_SHARE * span, abs=1.01) and res.burn_in_hours < F.BURN_IN_HOURS
    t = res.trials
    assert len(t) == 4 and set(t.half_life_exponent) == {0.0, 1.0}
    assert res.objective_train == pytest.approx(float(t.objective.max()))  # one OI rule: the best wins
    row = t.loc[t.objective.idxmax()]
    assert (res.params.half_life_hours, res.params.half_life_exponent) == (row.half_life_hours, row.half_life_exponent)
    sel = res.to_dict()["selection"]
    assert sel["chosen"] == sel["best"] and sel["reason"] == "highest training objective"
    assert t.se_of_gap_to_best[t.objective.idxmax()] == 0 and (t.se_of_gap_to_best >= 0).all()
    assert res.truth is not None  # truth/ found next to the simulated collection
    assert 0 <= res.truth["total_variation"] <= 1
    assert set(res.truth) >= {"notional", "by_count", "fitted_weights", "layer_swept_share"}
    share = np.array(res.truth["layer_swept_share"])
    assert share.sum() == pytest.approx(1.0) and (share >= 0).all()
    ident = res.truth["identifiable"]
    assert set(ident["leverages"]) == {l for l, s in zip(res.params.leverages, share) if s >= F.IDENTIFIABLE_SHARE}
    assert 0 <= ident["total_variation"] <= 1
    assert ident["swept_mass"]["fitted"] == pytest.approx(sum(res.mix["coef"]))
    assert -1 <= res.truth["objective_train_true_mix"] <= 1 and -1 <= res.truth["objective_test_true_mix"] <= 1
    assert res.test_report["synthetic"] is True


def test_fit_rejects_bad_parameters(sim):
    with pytest.raises(ParameterError, match="oi_rules"):
        F.fit(sim, oi_rules=("sometimes",))
    with pytest.raises(ParameterError, match="half_lives"):
        F.fit(sim, half_lives=(0.0,))
    with pytest.raises(ParameterError, match="half_life_exponents"):
        F.fit(sim, half_life_exponents=(5.0,))
    with pytest.raises(ParameterError, match="train_fraction"):
        F.fit(sim, train_fraction=1.5)
    for bad in (-1.0, math.inf, "72"):
        with pytest.raises(ParameterError, match="burn_in_hours"):
            F.fit(sim, burn_in_hours=bad)
    with pytest.raises(DataError, match="burn_in_hours: 72 h leaves 0 of the"):
        F.fit(sim, oi_rules=("ignore",), half_lives=(24.0,), half_life_exponents=(0.0,), burn_in_hours=72,
              progress=False)  # 3 days


def test_cli_fit_writes_params_usable_by_heatmap(small_sim, tmp_path, capsys):
    from liqlab.app.cli import main
    from liqlab.engine.params import HeatmapParams

    out = tmp_path / "p.yaml"
    rep = tmp_path / "fit.json"
    rc = main(["fit", str(small_sim), "--out", str(out), "--json", str(rep), "--half-lives", "24,inf",
               "--oi-rules", "ignore", "--half-life-exponents", "0", "--burn-in", "6", "--n-boot", "20", "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "fitted:" in text and "[synthetic data]" in text
    assert "(first 6 h left out)" in text and "runner-up:" in text
    assert json.loads(rep.read_text())["burn_in_hours"] == 6.0
    p = HeatmapParams.from_file(out)
    assert p.oi_decrease == "ignore" and p.half_life_hours in (24.0, math.inf)
    assert json.loads(rep.read_text())["params"] == p.to_dict()
    assert main(["fit", str(small_sim), "--out", str(out), "--half-lives", "x"]) == 2
    assert main(["fit", str(small_sim), "--out", str(out), "--half-life-exponents", "x"]) == 2
    capsys.readouterr()
    assert main(["fit", str(small_sim), "--out", str(out), "--half-lives", "24", "--burn-in", "72",
                 "--no-progress"]) == 2  # 72 h of a 3-day sample leave no training step
    assert "burn_in_hours" in capsys.readouterr().err


def test_fitted_params_drive_the_heatmap_and_magnet_notebooks(small_sim, tmp_path):
    """A params file from the fit is a notebook parameter (``params_file``) of 02 and 03, as of 04."""
    from liqlab.engine.params import HeatmapParams
    from liqlab.app.runner import execute_notebook

    nbs = Path(__file__).resolve().parents[2] / "notebooks"
    p = HeatmapParams(leverage_weights=(0.0, 0.1, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1), half_life_hours=24.0,
                      half_life_exponent=1.0, oi_decrease="ignore")
    pf = F.save_params(p, tmp_path / "fitted.yaml")
    res = tmp_path / "02.json"
    run = execute_notebook(nbs / "02_heatmap.ipynb", tmp_path / "out",
                           {"dataset": str(small_sim), "params_file": str(pf), "results_path": str(res),
                            "leverage_preset": "uniform"}, html=False)
    assert run.ok, run.error
    assert json.loads(res.read_text())["params"] == p.replace(leverage_preset="uniform").to_dict()  # names override
    res = tmp_path / "03.json"
    run = execute_notebook(nbs / "03_magnet.ipynb", tmp_path / "out",
                           {"dataset": str(small_sim), "params_file": str(pf), "results_path": str(res), "grid": None,
                            "pipeline_reps": 0, "bootstrap_reps": 99}, html=False)
    assert run.ok, run.error
    assert json.loads(res.read_text())["heatmap_params"] == p.to_dict()
