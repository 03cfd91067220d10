"""liqlab.app.bench: smoke test on a tiny case (prints valid JSON; no timing assertions)."""

from __future__ import annotations

import json

import pytest

from liqlab.app.bench import run_bench, synthetic_dataset
from liqlab.errors import ParameterError


def test_bench_cli_prints_json_lines(capsys):
    from liqlab.app.cli import main

    assert main(["bench", "--cases", "year,scaling,rebuild", "--repeats", "1", "--bars", "3000", "--bins", "40",
                 "--rebuild-days", "0.5", "--no-progress"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [json.loads(x) for x in lines]
    assert [r["case"] for r in rows] == ["year", "scaling_0.25", "scaling_0.5", "scaling_1", "rebuild_0.5d_3venues"]
    for r in rows:
        assert r["synthetic"] is True
        for key in ("bars", "bins", "leverages", "seconds", "peak_memory_bytes", "output_bytes", "peak_over_output"):
            assert key in r
        assert r["seconds"] >= 0 and r["output_bytes"] > 0
    assert rows[0]["bars"] == 3000 and rows[0]["bins"] == 40 and rows[0]["leverages"] == 8
    for r in rows[:4]:  # year and scaling: the full build, with the fine pass and the kernel re-timed alone
        assert r["fine_pass_seconds"] > 0 and r["kernel_seconds"] > 0 and r["steps"] * r["bins"] > 0
        assert r["peak_over_output"] == pytest.approx(r["peak_memory_bytes"] / r["output_bytes"], rel=1e-2)
    assert [r["bars"] for r in rows[1:4]] == [750, 1500, 3000]


def test_bench_numpy_kernel_and_bad_case():
    (r,) = list(run_bench(("year",), repeats=1, bars=600, bins=20, use_numba=False, progress=False))
    assert r["numba"] is False and r["steps"] == 10
    with pytest.raises(ParameterError, match="cases"):
        list(run_bench(("warp",)))


def test_bench_facts_case():
    (r,) = list(run_bench(("facts",), repeats=1, rebuild_days=0.5, progress=False))
    assert r["case"] == "facts_0.5d_3venues" and r["synthetic"] is True
    assert r["oi_rows"] == 3 * 144 and r["steps"] == ["native", "1h"] and r["seconds"] >= 0


def test_synthetic_dataset_is_labelled_and_valid():
    from liqlab.io.dataset import validate_table

    ds = synthetic_dataset(500, seed=3)
    assert ds.synthetic and "synthetic" in ds.meta["source"]
    validate_table("ohlcv", ds.ohlcv)
    validate_table("open_interest", ds.open_interest)
    assert len(ds.open_interest) == 100


def test_bench_append_case_reports_identity_and_rebuild_time():
    (r,) = list(run_bench(("append",), repeats=1, rebuild_days=0.5, progress=False))
    assert r["case"] == "append" and r["synthetic"] is True
    assert r["identical_to_rebuild"] is True
    assert len(r["seconds_all"]) >= 9 and r["seconds"] > 0 and r["full_rebuild_seconds"] > 0
