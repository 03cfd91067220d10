"""liqlab levels: the clusters table as CSV/JSON, the same numbers as the explorer's clusters table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from liqlab.app.cli import main
from liqlab.engine.heatmap import build_heatmap
from liqlab.engine.levels import levels, pull
from liqlab.io.dataset import load_collection


@pytest.fixture(scope="module")
def saved(small_sim, tmp_path_factory):
    """The small simulation's default map, saved as .npz (what `liqlab heatmap --out X.npz` writes)."""
    hm = build_heatmap(load_collection(small_sim), progress=False)
    path = tmp_path_factory.mktemp("levels") / "hm.npz"
    hm.save(path)
    return hm, path


def test_csv_matches_the_explorer_clusters_table(saved, tmp_path, capsys):
    from liqlab.viz.state import _clusters_source

    hm, path = saved
    j = len(hm.times) - 13
    at = pd.Timestamp(hm.times[j], tz="UTC").isoformat()
    out = tmp_path / "levels.csv"
    assert main(["levels", str(path), "--at", at, "--format", "csv", "--out", str(out), "--top", "10"]) == 0
    got = pd.read_csv(out)
    src = _clusters_source(hm, j)
    np.testing.assert_allclose(got["price"], src["price"], rtol=1e-12)
    np.testing.assert_allclose(got["notional_usd"], src["notional"], rtol=1e-12)
    np.testing.assert_allclose(got["distance_pct"], src["distance_pct"], rtol=1e-9)
    np.testing.assert_allclose(got["age_hours"], src["age_hours"], rtol=1e-9)
    assert list(got["side"]) == list(src["side"])
    assert [str(v).split(" ")[0] for v in src["venues"]] == [str(v) for v in got["venues"]]
    assert (pd.to_datetime(got["time"]) == pd.Timestamp(hm.times[j], tz="UTC")).all()
    lev = got[[c for c in got.columns if c.startswith("lev_")]].sum(axis=1)
    np.testing.assert_allclose(lev, got["notional_usd"], rtol=1e-6)
    pu = pull(hm, j, within_pct=5.0)
    assert got["pull_above_usd"].iloc[0] == pytest.approx(pu["above_usd"], rel=1e-12)
    assert got["pull_below_usd"].iloc[0] == pytest.approx(pu["below_usd"], rel=1e-12)


def test_json_from_the_dataset_equals_the_saved_map(saved, small_sim, tmp_path):
    hm, _ = saved
    out = tmp_path / "levels.json"
    assert main(["levels", str(small_sim), "--format", "json", "--out", str(out), "--pull-pct", "2",
                 "--min-usd", "1e5", "--no-progress"]) == 0
    rows = json.loads(out.read_text())
    want = levels(hm, min_usd=1e5)
    assert len(rows) == len(want) > 0
    assert [r["price"] for r in rows] == pytest.approx(list(want["price"]), rel=1e-12)
    assert all(r["pull_pct"] == 2.0 and r["notional_usd"] >= 1e5 for r in rows)
    assert set(rows[0]) >= {"time", "price", "side", "notional_usd", "distance_pct", "age_hours", "venues", "lev_10"}


@pytest.mark.parametrize("argv, pattern", [
    (["--format", "xml"], "--format"),
    (["--at", "yesterday-ish"], "--at"),
    (["--at", "1999-01-01"], "--at: 1999-01-01"),
    (["--top", "-3"], "--top"),
    (["--pull-pct", "0"], "pull_pct"),
    (["--half-life", "12"], "half_life_hours"),
])
def test_bad_input_is_one_line_and_exit_2(saved, tmp_path, capsys, argv, pattern):
    _, path = saved
    out = tmp_path / "x.csv"
    out.write_text("keep me")
    assert main(["levels", str(path), "--out", str(out)] + argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("liqlab levels: error:") and pattern in err
    assert out.read_text() == "keep me"


def test_bad_data_is_one_line(tmp_path, capsys):
    bad = tmp_path / "hm.npz"
    bad.write_bytes(b"not a zip")
    assert main(["levels", str(bad)]) == 2
    assert main(["levels", str(tmp_path / "missing")]) == 2
    errs = capsys.readouterr().err.strip().splitlines()
    assert len(errs) == 2 and str(bad) in errs[0] and "missing" in errs[1]
