"""liqlab.stats.score: metric definition on constructed maps, and the run on a small simulation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqlab.errors import DataError, ParameterError
from liqlab.stats.score import format_table, score, score_maps

PRICES = np.linspace(50_000, 70_000, 201)  # 100 USD bins
CLOSE = np.full(4, 60_000.0)


def _maps(seed=0):
    rng = np.random.default_rng(seed)
    tl = np.zeros((4, 201))
    ts = np.zeros((4, 201))
    tl[:, PRICES < 60_000] = rng.gamma(0.5, 1e6, (4, int((PRICES < 60_000).sum())))
    ts[:, PRICES > 60_000] = rng.gamma(0.5, 1e6, (4, int((PRICES > 60_000).sum())))
    return tl, ts


def test_perfect_and_inverted_estimates():
    tl, ts = _maps()
    r = score_maps(tl, ts, tl, ts, PRICES, CLOSE)
    for side in ("long", "short"):
        assert r[side]["spearman_mean"] == pytest.approx(1.0)
        assert r[side]["notional_ratio_median"] == pytest.approx(1.0)
        assert r[side]["n_snapshots"] == 4
        assert 0.1 < r[side]["top_decile_share"] <= 1.0
    inv = score_maps(-tl + tl.max() + 1, ts, tl, ts, PRICES, CLOSE)
    assert inv["long"]["spearman_mean"] < -0.99 and inv["long"]["top_decile_share"] < 0.1


def test_bins_on_the_wrong_side_and_outside_the_band_are_ignored():
    tl, ts = _maps(1)
    est = tl.copy()
    est[:, PRICES > 60_000] = 5e9         # long estimate above price: never scored
    est[:, PRICES < 60_000 * 0.8] = 5e9   # beyond the 20% band: never scored
    r = score_maps(est, ts, tl, ts, PRICES, CLOSE, band=0.2)
    assert r["long"]["spearman_mean"] == pytest.approx(1.0)


def test_few_bins_are_skipped_and_counted():
    tl = np.zeros((2, 201))
    tl[:, 10] = 1.0
    r = score_maps(tl, tl, tl, tl, PRICES, np.full(2, 60_000.0))
    assert r["long"]["n_snapshots"] == 0 and r["long"]["n_skipped"] == 2 and math.isnan(r["long"]["spearman_mean"])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1000), scale=st.floats(1e-3, 1e3), power=st.floats(0.2, 5.0))
def test_rank_metrics_ignore_monotone_rescaling(seed, scale, power):
    """Spearman and top-decile share depend only on the order of the estimate, not its units."""
    tl, ts = _maps(seed)
    est_l = np.random.default_rng(seed + 1).gamma(1.0, 1.0, tl.shape) * (tl > 0)
    a = score_maps(est_l, ts, tl, ts, PRICES, CLOSE)
    b = score_maps(scale * est_l ** power, ts, tl, ts, PRICES, CLOSE)
    assert a["long"]["spearman_mean"] == pytest.approx(b["long"]["spearman_mean"], abs=1e-9)
    assert a["long"]["top_decile_share"] == pytest.approx(b["long"]["top_decile_share"], abs=1e-9)
    assert -1.0 <= a["long"]["spearman_p10"] <= a["long"]["spearman_mean"] <= 1.0


def test_score_small_simulation(small_sim):
    r = score(small_sim, burn_in_hours=24, progress=False)
    assert r["synthetic"] is True and r["metric"]["burn_in_hours"] == 24
    assert {"true_mix", "params", "preset:balanced", "preset:uniform"} <= set(r["runs"])
    assert len(r["true_mix"]["leverages"]) == len(r["true_mix"]["leverage_weights"])
    for run in r["runs"].values():
        for side in ("long", "short"):
            m = run[side]
            assert m["n_snapshots"] > 0
            assert -1.0 <= m["spearman_mean"] <= 1.0 and 0.0 <= m["top_decile_share"] <= 1.0
    # the estimate is informative: clearly better than an unrelated map (rank corr 0, top-decile share 0.1)
    assert r["runs"]["true_mix"]["long"]["spearman_mean"] > 0.2
    assert r["runs"]["true_mix"]["short"]["top_decile_share"] > 0.15
    assert "true_mix" in format_table(r)
    json.dumps(r)


def test_score_errors(tmp_path, small_sim, capsys):
    from liqlab.app.cli import main

    with pytest.raises(DataError, match="truth"):
        score(tmp_path)
    with pytest.raises(ParameterError, match="band"):
        score(small_sim, band=1.5)
    assert main(["score", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "truth" in err and len(err.splitlines()) == 1


def test_score_cli_table(small_sim, capsys):
    from liqlab.app.cli import main

    assert main(["score", str(small_sim), "--burn-in", "24", "--no-presets", "--table", "--no-progress",
                 "--half-life", "48"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    r = json.loads(out[0])
    assert set(r["runs"]) == {"true_mix", "placebo_true_mix", "params"} and r["params"]["half_life_hours"] == 48.0
    assert out[1].startswith("run") and any(line.startswith("true_mix") for line in out[2:])
    gain = r["oi_gain"]
    for side in ("long", "short"):
        assert gain[side] == r["runs"]["true_mix"][side]["spearman_mean"] - r["runs"]["placebo_true_mix"][side]["spearman_mean"]
    assert "open interest's gain" in out[-1]


def test_score_placebo_run_differs_from_the_oi_map_and_can_be_skipped(small_sim):
    from liqlab.stats.score import score

    r = score(str(small_sim), presets=False, burn_in_hours=24, progress=False)
    a, b = r["runs"]["true_mix"], r["runs"]["placebo_true_mix"]
    assert a["long"]["spearman_mean"] != b["long"]["spearman_mean"]
    assert a["long"]["n_snapshots"] == b["long"]["n_snapshots"]
    r2 = score(str(small_sim), presets=False, placebo=False, burn_in_hours=24, progress=False)
    assert "placebo_true_mix" not in r2["runs"] and r2["oi_gain"] is None
