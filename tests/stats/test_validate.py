"""Tests of liqlab.stats.validate: metrics on constructed cases with known answers, sweeps, aggregation."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from liqlab.stats import validate as V
from liqlab.io.dataset import Dataset, make_meta
from liqlab.errors import DataError, ParameterError

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
small_ints = st.integers(-5, 5).map(float)  # many ties


def _arr(n_min=3, n_max=60, elements=finite):
    return hnp.arrays(np.float64, st.integers(n_min, n_max), elements=elements)


def test_verdict_says_nothing_plainly():
    b = {"r2_gain": {"gain": -0.001, "ci": [-0.01, 0.008]}, "partial_spearman": {"estimate": 0.01, "ci": [-0.02, 0.04]}}
    text = V.verdict({"long": b, "short": b}, synthetic=False)
    assert text.count("adds nothing measurable beyond the excursion") == 2
    good = {"r2_gain": {"gain": 0.05, "ci": [0.02, 0.08]}, "partial_spearman": {"estimate": 0.2, "ci": [0.1, 0.3]}}
    assert "adds to the excursion" in V.verdict({"long": good, "short": b}, synthetic=True)
    assert V.verdict({"long": good, "short": b}, synthetic=True).startswith("[synthetic data]")


# ---------------------------------------------------------------------------------------- sweeps


def test_swept_notional_uses_snapshot_before_the_step():
    prices = np.array([90.0, 95.0, 100.0, 105.0, 110.0])
    L = np.zeros((3, 5))
    S = np.zeros((3, 5))
    L[0, 1] = 7.0  # long level at 95 in snapshot 0
    L[1, 0] = 3.0  # long level at 90 in snapshot 1
    S[0, 3] = 11.0  # short level at 105 in snapshot 0
    L[2, :] = 1000.0  # snapshot 2 is never used (no step after it)
    low = np.array([99.0, 95.0, 91.0])  # step 1 reaches exactly 95 (centre >= low -> swept)
    high = np.array([101.0, 104.9, 200.0])
    sl, ss = V.swept_notional(L, S, prices, low, high)
    assert math.isnan(sl[0]) and math.isnan(ss[0])
    assert sl[1] == 7.0 and ss[1] == 0.0  # 105 not reached by 104.9
    assert sl[2] == 0.0  # 90 not reached by 91
    assert ss[2] == 0.0  # snapshot 1 has no short levels


def test_swept_notional_gap_is_nan_and_shapes_checked():
    prices = np.array([1.0, 2.0])
    L = np.ones((3, 2))
    sl, ss = V.swept_notional(L, L, prices, np.array([1.0, np.nan, 0.5]), np.array([2.0, np.nan, 3.0]))
    assert math.isnan(sl[1]) and sl[2] == 2.0 and ss[2] == 2.0
    with pytest.raises(ParameterError):
        V.swept_notional(L, L, prices, np.ones(2), np.ones(3))


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_swept_notional_matches_brute_force(data):
    T = data.draw(st.integers(2, 6))
    B = data.draw(st.integers(1, 8))
    prices = np.cumsum(data.draw(hnp.arrays(np.float64, B, elements=st.floats(0.5, 3)))) + 50
    L = data.draw(hnp.arrays(np.float64, (T, B), elements=st.floats(0, 100)))
    S = data.draw(hnp.arrays(np.float64, (T, B), elements=st.floats(0, 100)))
    low = data.draw(hnp.arrays(np.float64, T, elements=st.floats(40, 80)))
    high = low + data.draw(hnp.arrays(np.float64, T, elements=st.floats(0, 20)))
    sl, ss = V.swept_notional(L, S, prices, low, high)
    for j in range(1, T):
        assert sl[j] == pytest.approx(L[j - 1][prices >= low[j]].sum())
        assert ss[j] == pytest.approx(S[j - 1][prices <= high[j]].sum())


# ------------------------------------------------------------------------------ bars and realized


def _ds(n=24, freq="5min", liq=None, volume=True, start="2024-01-01"):
    ts = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    o = 100 + np.arange(n, dtype=float)
    ohlcv = pd.DataFrame({"ts": ts, "open": o, "high": o + 2, "low": o - 1, "close": o + 1,
                          "volume": np.full(n, 3.0 if volume else 0.0)})
    oi = pd.DataFrame({"ts": ts, "open_interest": np.full(n, 10.0), "open_interest_value": 1000.0 + np.arange(n)})
    fund = pd.DataFrame({"ts": ts[:1], "funding_rate": [0.0001]})
    meta = make_meta("binanceusdm", "BTC/USDT:USDT", source="test", synthetic=True)
    return Dataset(meta=meta, ohlcv=ohlcv, open_interest=oi, funding=fund, liquidations=liq)


def _steps(start, n, step):
    s = pd.date_range(start, periods=n, freq=step).to_numpy().astype("datetime64[ns]")
    return s, s + np.timedelta64(pd.Timedelta(step).value, "ns")


def test_step_bars_aggregates_finer_bars():
    ds = _ds(24, "5min")  # two hours of 5m bars
    start, end = _steps("2024-01-01", 3, "1h")  # third hour has no bars
    b = V.step_bars(ds, start, end)
    assert b.open[0] == 100 and b.close[0] == 112 and b.high[0] == 113 and b.low[0] == 99
    assert b.open[1] == 112 and b.high[1] == 125 and b.low[1] == 111
    assert math.isnan(b.high[2])
    assert b.volume_usd[0] == pytest.approx(3.0 * (101 + np.arange(12)).sum())
    assert b.oi_usd[0] == 1000.0 and b.oi_usd[1] == 1012.0  # OI at the step's start (no look-ahead)


def test_step_bars_without_volume_gives_nan_volume_and_no_volume_baseline():
    b = V.step_bars(_ds(24, "5min", volume=False), *_steps("2024-01-01", 2, "1h"))
    assert np.isnan(b.volume_usd).all()
    assert "volume" not in V.baseline_series([b])


def test_baseline_series_known_values():
    b = V.step_bars(_ds(3, "1h"), *_steps("2024-01-01", 3, "1h"))
    base = V.baseline_series([b, b])  # two venues: sums
    exl, exs = base["excursion_oi"]
    np.testing.assert_allclose(exl, 2 * 1.0 / b.open * b.oi_usd)
    np.testing.assert_allclose(exs, 2 * 2.0 / b.open * b.oi_usd)
    np.testing.assert_allclose(base["abs_return_oi"][0], 2 * 1.0 / b.open * b.oi_usd)
    np.testing.assert_allclose(base["volume"][0], 2 * 3.0 * b.close)


def _liq(ts, side, value, price=None):
    ts = pd.to_datetime(pd.Series(ts), utc=True)
    return pd.DataFrame({"ts": ts, "side": side, "price": price if price is not None else [np.nan] * len(ts),
                         "amount": np.zeros(len(ts)), "value": np.asarray(value, float)})


def test_realized_per_step_sums_events_and_marks_uncovered_steps():
    liq = _liq(["2024-01-01 00:10", "2024-01-01 00:20", "2024-01-01 01:05", "2024-01-01 01:06"],
               ["long", "long", "short", "long"], [1.0, 2.0, 5.0, 4.0], price=[99.0, 98.0, 120.0, 110.0])
    ds = _ds(24, "5min", liq=liq)
    start, end = _steps("2023-12-31 23:00", 4, "1h")  # first and last steps are outside the events
    rl, rs = V.realized_per_step(ds, start, end)
    assert math.isnan(rl[0]) and math.isnan(rl[3])
    assert rl[1] == 3.0 and rs[1] == 0.0 and rl[2] == 4.0 and rs[2] == 5.0


def test_realized_per_step_per_bar_sums_and_step_inference():
    ts = pd.date_range("2024-01-01", periods=4, freq="1h", tz="UTC")
    liq = _liq(list(ts) * 2, ["long"] * 4 + ["short"] * 4, [1, 2, 3, 4, 10, 20, 30, 40])
    liq = liq.sort_values("ts", kind="stable").reset_index(drop=True)
    ds = _ds(48, "5min", liq=liq)
    assert V.infer_step(liq) == pd.Timedelta("1h")
    assert V.validation_step(ds, ds) == "1h"  # 5m bars, 1h sums -> 1h
    assert V.validation_step(ds, ds, "4h") == "4h"
    rl, rs = V.realized_per_step(ds, *_steps("2024-01-01", 2, "2h"))  # aggregate the finer sums
    np.testing.assert_allclose(rl, [3, 7])
    np.testing.assert_allclose(rs, [30, 70])


def test_realized_per_step_needs_a_table():
    with pytest.raises(DataError, match="no liquidations table"):
        V.realized_per_step(_ds(), *_steps("2024-01-01", 2, "1h"))


def test_metric_table_flattens_report():
    block = {"long": {"spearman": 0.5, "top_decile_capture": 0.3, "auc_p95": 0.8},
             "short": {"spearman": 0.4, "top_decile_capture": 0.2, "auc_p95": 0.7}}
    rep = {"heatmap": block, "baselines": {"excursion_oi": block, "naive_map": {"error": "x"}},
           "side_split": {"both": block}}
    t = V.metric_table(rep)
    assert list(t["predictor"]) == ["heatmap", "excursion_oi", "side_split=both"]
    assert t.loc[0, "spearman_long"] == 0.5 and t.loc[2, "auc_p95_short"] == 0.7
    json.dumps(rep)


# ------------------------------------------------------------------- end to end with a given map


def _constructed_market(T=80, seed=0):
    """Hourly bars whose lows reach 95 on known steps; a map with one long level at 95 (value v_j in the
    snapshot before step j) and one short level at 105; realized = exactly what the map says is swept."""
    from types import SimpleNamespace

    from liqlab.engine.params import HeatmapParams

    rng = np.random.default_rng(seed)
    ts = pd.date_range("2024-03-01", periods=T, freq="1h", tz="UTC")
    down = rng.uniform(0, 8, T)  # low = 100 - down: crosses 95 when down >= 5
    up = rng.uniform(0, 8, T)
    o = np.full(T, 100.0)
    ohlcv = pd.DataFrame({"ts": ts, "open": o, "high": o + up, "low": o - down, "close": o, "volume": np.ones(T)})
    oi = pd.DataFrame({"ts": ts, "open_interest": np.ones(T), "open_interest_value": np.full(T, 1e6)})
    prices = np.arange(90.0, 111.0)
    L = np.zeros((T, prices.size))
    S = np.zeros((T, prices.size))
    vl = rng.uniform(1, 10, T)
    vs = rng.uniform(1, 10, T)
    L[:, 5] = vl  # level at 95
    S[:, 15] = vs  # level at 105
    real_long = np.where(down[1:] >= 5, vl[:-1], 0.0) * 1000
    real_short = np.where(up[1:] >= 5, vs[:-1], 0.0) * 1000
    rows = []
    for j in range(1, T):
        rows.append((ts[j], "long", real_long[j - 1]))
        rows.append((ts[j], "short", real_short[j - 1]))
    liq = _liq([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    meta = make_meta("binanceusdm", "BTC/USDT:USDT", source="test", synthetic=True)
    ds = Dataset(meta=meta, ohlcv=ohlcv, open_interest=oi, funding=pd.DataFrame({"ts": ts[:1], "funding_rate": [0.0]}),
                 liquidations=liq)
    times = (ts + pd.Timedelta("1h")).tz_localize(None).to_numpy().astype("datetime64[ns]")
    hm = SimpleNamespace(times=times, prices=prices, long=L, short=S, venue_long={"binanceusdm": L},
                         venue_short={"binanceusdm": S}, params=HeatmapParams(time_step="1h"),
                         replay=SimpleNamespace(step_hours=1.0))
    return ds, hm


def test_validate_with_a_map_that_predicts_exactly():
    ds, hm = _constructed_market()
    res = V.validate(ds, heatmap=hm, side_splits=None, naive=False, placebo=False, n_boot=100)
    rep = res.report
    assert rep["synthetic"] is True and rep["data"]["time_step"] == "1h"
    assert rep["data"]["n_steps_scored"] == 79  # step 0 has no prior snapshot
    for side in V.SIDES:
        m = rep["heatmap"][side]
        assert m["spearman"] == pytest.approx(1.0)
        assert m["top_decile_capture"] == pytest.approx(V.top_decile_capture(res.series[f"realized_{side}"].to_numpy()[1:],
                                                                             res.series[f"realized_{side}"].to_numpy()[1:]))
        assert m["auc_p95"] == pytest.approx(1.0)
        assert set(rep["baselines"]) == {"excursion_oi", "abs_return_oi", "volume"}
        for b in rep["baselines"].values():
            assert set(b[side]) == set(V.METRICS)
        assert rep["baselines"]["excursion_oi"][side]["spearman"] < 0.95  # the map beats the excursion here
    np.testing.assert_allclose(res.series["heatmap_long"].to_numpy()[1:], res.series["realized_long"].to_numpy()[1:] / 1000)
    json.dumps(rep)


def test_validate_window_scores_only_later_steps(tmp_path):
    ds, hm = _constructed_market()
    res = V.validate(ds, heatmap=hm, side_splits=None, naive=False, placebo=False, n_boot=50, window=("2024-03-02T00:00Z", None))
    assert res.report["data"]["n_steps_scored"] == 80 - 24
    out = res.to_json(tmp_path / "rep.json")
    assert json.loads(out.read_text())["heatmap"]["long"]["spearman"] == pytest.approx(1.0)


def test_validate_too_few_overlapping_steps_raises():
    ds, hm = _constructed_market()
    with pytest.raises(DataError, match="only 0 steps"):
        V.validate(ds, heatmap=hm, side_splits=None, naive=False, placebo=False, window=("2030-01-01", None))


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys):
    from liqlab.app.cli import main

    assert main(["validate", str(tmp_path / "missing"), "--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("liqlab validate: error:") and "\n" not in err and "missing" in err
    assert main(["validate", str(tmp_path), "--json", str(tmp_path / "r.json"), "--half-life", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "half_life_hours" in err and "\n" not in err
    assert not (tmp_path / "r.json").exists()


# ------------------------------------------------------------------------------- with the engine


def test_validate_on_the_simulator_full_report(small_sim, tmp_path, capsys):
    from liqlab.app.cli import main

    out = tmp_path / "val.json"
    assert main(["validate", str(small_sim), "--json", str(out), "--n-boot", "50"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("[synthetic data]") and "excursion_oi" in text
    rep = json.loads(out.read_text())
    assert rep["synthetic"] is True
    names = set(V.METRICS)
    assert set(rep["heatmap"]["long"]) == names
    assert set(rep["baselines"]) == set(V.BASELINES)
    assert set(rep["beyond_placebo"]) >= set(V.SIDES)
    assert "Beyond the price path's geometry" in rep["verdict"]
    for b in rep["baselines"].values():
        assert set(b["long"]) == names and set(b["short"]) == names
    assert set(rep["side_split"]) == set(V.SIDE_SPLITS)
    assert all("error" not in v for v in rep["side_split"].values())  # the simulator has taker volume
    for side in V.SIDES:
        be = rep["beyond_excursion"][side]
        assert -1 <= be["partial_spearman"]["estimate"] <= 1
        assert be["r2_gain"]["n_test"] > 0
    assert rep["verdict"].startswith("[synthetic data]")
    assert rep["params"]["time_step"] == "1h"


def test_naive_map_never_clears_or_decays(small_sim):
    from liqlab.io.dataset import load_collection
    from liqlab.engine.params import HeatmapParams

    coll = load_collection(small_sim)
    nm = V.naive_maps(coll, HeatmapParams())
    for v in coll.venues:
        tot = nm.venue_long[v].sum(axis=1) + nm.venue_short[v].sum(axis=1)
        assert (np.diff(tot) >= -1e-6 * tot.max()).all()  # stored notional only grows
        rv = nm.replay.venue(v)
        # what is stored at the end is everything deposited on the grid (nothing cleared or decayed)
        w = nm.params.weights()
        assert nm.venue_long[v][-1].sum() == pytest.approx(np.bincount(rv.fresh_long[1], rv.fresh_long[3],
                                                                       minlength=len(w)) @ w, rel=1e-5)


def test_verdict_reports_the_placebo_plainly():
    b = {"r2_gain": {"gain": 0.1, "ci": [0.05, 0.15]}, "partial_spearman": {"estimate": 0.3, "ci": [0.2, 0.4]}}
    m = {s: {"spearman": 0.6} for s in V.SIDES}
    pm = {s: {"spearman": 0.7} for s in V.SIDES}
    bp = {s: {"estimate": 0.01, "ci": [-0.02, 0.04]} for s in V.SIDES}
    text = V.verdict({"long": b, "short": b}, False, {"heatmap": m, "placebo_map": pm, "beyond_placebo": bp})
    assert text.count("ranks realized liquidations better than the heatmap") == 2
    assert text.count("open-interest information adds nothing measurable") == 2


def test_validate_aggregates_finer_bars_to_the_realized_step(small_sim):
    """1m simulator bars and events, scored at a 4h step: realized sums and bar extremes agree."""
    from liqlab.io.dataset import load_collection

    coll = load_collection(small_sim)
    res = V.validate(coll, time_step="4h", side_splits=None, naive=False, placebo=False, n_boot=20)
    s = res.series
    assert res.report["data"]["time_step"] == "4h"
    assert (s["end"] - s["start"]).eq(pd.Timedelta("4h")).all()
    total = sum(float(d.liquidations["value"].sum()) for d in coll)
    scored = s[["realized_long", "realized_short"]].sum().sum()
    assert scored == pytest.approx(total, rel=1e-9)  # every event lands in exactly one 4h step


@pytest.mark.real_data
def test_real_coinglass_excursion_baseline_reproduces_the_reported_figure(real_data, tmp_path):
    """On the real 1h file the excursion × OI baseline reaches Spearman ≈ 0.74 long / 0.71 short."""
    from liqlab.io.importers import import_files

    src = real_data / "coinglass_btc_1h_liquidations_oi_2025-12-04_2026-05-24.csv"
    if not src.exists():
        pytest.skip(f"{src.name} absent")
    ds = import_files("coinglass-csv", [src], tmp_path / "cg", exchange="binanceusdm", symbol="BTC/USDT:USDT",
                      progress=False).path
    res = V.validate(ds, side_splits=None, naive=False, placebo=False, n_boot=20)
    exc = res.report["baselines"]["excursion_oi"]
    assert exc["long"]["spearman"] == pytest.approx(0.74, abs=0.01)
    assert exc["short"]["spearman"] == pytest.approx(0.71, abs=0.01)
    assert "volume" not in res.report["baselines"]  # the file has no volume
    assert res.report["synthetic"] is False and res.report["data"]["n_steps_scored"] > 4000


def test_cli_liquidations_from_another_dataset_at_a_coarser_step(small_sim, tmp_path):
    """Realized liquidations given as 2h per-bar sums in another dataset: the validation step becomes 2h."""
    from liqlab.app.cli import main
    from liqlab.io.dataset import load_collection, write_dataset

    coll = load_collection(small_sim)
    ev = pd.concat([d.liquidations for d in coll], ignore_index=True)
    ev["bucket"] = ev["ts"].dt.floor("2h")
    sums = ev.groupby(["bucket", "side"], as_index=False)["value"].sum().rename(columns={"bucket": "ts"})
    sums = sums.sort_values(["ts", "side"], kind="stable").reset_index(drop=True)
    sums["price"] = np.nan
    sums["amount"] = 0.0
    other = dataclasses.replace(coll.datasets[0], liquidations=sums[["ts", "side", "price", "amount", "value"]])
    write_dataset(other, tmp_path / "sums")
    out = tmp_path / "v.json"
    assert main(["validate", str(small_sim), "--liquidations", str(tmp_path / "sums"), "--json", str(out),
                 "--no-side-splits", "--n-boot", "20"]) == 0
    rep = json.loads(out.read_text())
    assert rep["data"]["time_step"] == "2h" and rep["data"]["realized_source"].endswith("sums")
    assert rep["data"]["realized_long_usd"] + rep["data"]["realized_short_usd"] <= ev["value"].sum() * (1 + 1e-9)


def test_cli_without_realized_liquidations_says_where_to_get_them(small_sim, tmp_path, capsys):
    from liqlab.app.cli import main
    from liqlab.io.dataset import load_collection, write_dataset

    ds = load_collection(small_sim).datasets[0]
    write_dataset(dataclasses.replace(ds, liquidations=None), tmp_path / "noliq")
    for cmd in (["validate", str(tmp_path / "noliq"), "--json", str(tmp_path / "v.json")],
                ["fit", str(tmp_path / "noliq"), "--out", str(tmp_path / "p.yaml")]):
        assert main(cmd) == 2
        err = capsys.readouterr().err.strip()
        assert "no liquidations table" in err and "--liquidations" in err and "\n" not in err
    assert not (tmp_path / "v.json").exists() and not (tmp_path / "p.yaml").exists()


def test_verdict_shows_the_precision_that_decides_and_a_consistent_link():
    b = {"r2_gain": {"gain": 0.1, "ci": [0.05, 0.15], "r2_base": 0.2, "r2_full": 0.28},
         "partial_spearman": {"estimate": 0.3, "ci": [0.2, 0.4]}}

    def text(hp, pp, est, ci):
        return V.verdict({"long": b, "short": b}, False, {
            "heatmap": {s: {"spearman": hp} for s in V.SIDES}, "placebo_map": {s: {"spearman": pp} for s in V.SIDES},
            "beyond_placebo": {s: {"estimate": est, "ci": ci} for s in V.SIDES}})

    t = text(0.8501, 0.8504, 0.05, [0.01, 0.09])  # both print as 0.850 at 3 decimals
    assert "better than the heatmap (Spearman 0.8504 vs 0.8501); even so, given the placebo" in t
    assert "open-interest information adds a little" in t
    t = text(0.85, 0.85, 0.2, [0.1, 0.3])
    assert "ranks realized liquidations as well as the heatmap (Spearman 0.850 vs 0.850); even so" in t
    t = text(0.9, 0.7, 0.2, [0.1, 0.3])
    assert "worse than the heatmap (Spearman 0.700 vs 0.900); given the placebo" in t and "even so" not in t
    assert "out-of-sample R² +0.200 with the excursion alone, +0.280 with the heatmap" in t


def r2_level_shift(seed: int = 3, n: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pred, excursion, realized) USD series whose realized level jumps 50x in the test window, so the
    excursion model (fitted before the jump) predicts the test steps worse than their mean (R² < 0)."""
    rng = np.random.default_rng(seed)
    exc = np.exp(rng.normal(size=n))
    cut = int(0.6 * n)
    real = np.r_[np.exp(rng.normal(size=cut)), 50 * np.exp(rng.normal(size=n - cut))]
    pred = real * np.exp(rng.normal(0, 1.0, n))
    return pred, exc, real


def test_r2_gain_is_bounded_by_one_and_reported_beside_both_r2():
    g = V.r2_gain(*r2_level_shift(), n_boot=300)
    assert g["r2_base"] < 0  # the base model predicts the test steps worse than their mean
    assert g["gain"] == pytest.approx((g["r2_full"] - g["r2_base"]) / (1 - g["r2_base"]))
    assert g["gain"] <= 1 and g["ci"][0] <= g["gain"] <= g["ci"][1] <= 1
    both_negative = {"r2_gain": {**g, "r2_full": -0.5, "r2_base": -2.0, "gain": 0.5, "ci": [0.3, 0.7]},
                     "partial_spearman": {"estimate": 0.3, "ci": [0.2, 0.4]}}
    t = V.verdict({"long": both_negative, "short": both_negative}, False)
    assert t.count("but neither model predicts the test steps better than their own mean (both R² < 0)") == 2
