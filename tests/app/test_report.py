"""liqlab report: dated run folders, index, latest, parameter checks, failures, lock, stale banner.

Notebooks here are tiny throwaway ones built in tmp dirs (the real ones are exercised by the last test
only when they exist). Each papermill execution starts a kernel (~1-2 s), so runs are kept few.
"""

from __future__ import annotations

import json
import time
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml

from liqlab.app import report
from liqlab.app.report import folders
from liqlab.io.dataset import Dataset, make_meta, write_dataset
from liqlab.errors import FetchError, ParameterError

REPO = Path(__file__).resolve().parents[2]

OK_SOURCE = """
import json, pathlib
out = {"label": label, "n": n,
       "top_clusters": [{"price": 101000.0, "side": "short", "notional": 2.5e7}],
       "magnet": {"lift": 1.25 + n, "p_value": 0.01},
       "validation": {"spearman": 0.4, "baselines": {"naive": {"spearman": 0.1}}}}
if results_path:
    pathlib.Path(results_path).write_text(json.dumps(out))
print("dataset", dataset)
"""


def _notebook(path: Path, params: str, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test notebook"), cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


@pytest.fixture()
def nbdir(tmp_path) -> Path:
    d = tmp_path / "nbs"
    d.mkdir()
    _notebook(d / "ok.ipynb", "dataset = None\nresults_path = None\nn: int = 3\nlabel = 'x'\nfraction = 0.5", OK_SOURCE)
    _notebook(d / "boom.ipynb", "dataset = None\nresults_path = None", "print('before')\nraise RuntimeError('kaboom in cell')")
    return d


@pytest.fixture()
def tiny_dataset(tmp_path) -> Path:
    """A hand-made synthetic dataset of 6 hourly bars ending 3 hours before now (UTC)."""
    end = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=3)
    ts = pd.date_range(end=end, periods=6, freq="1h", tz="UTC")
    close = 100.0 + np.arange(6)
    ohlcv = pd.DataFrame({"ts": ts, "open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 5.0})
    oi = pd.DataFrame({"ts": ts, "open_interest": 10.0, "open_interest_value": 10.0 * close})
    funding = pd.DataFrame({"ts": ts[:1], "funding_rate": [0.0001]})
    meta = make_meta("binanceusdm", "BTC/USDT:USDT", source="test fixture", synthetic=True)
    out = tmp_path / "data" / "tiny"
    write_dataset(Dataset(meta=meta, ohlcv=ohlcv, open_interest=oi, funding=funding), out)
    return out


def _config(nbdir: Path, data: Path, tmp_path: Path, notebooks=("ok.ipynb",), **kw) -> report.ReportConfig:
    raw = {"name": "t", "notebooks": [str(nbdir / n) for n in notebooks], "datasets": [str(data)],
           "reports_dir": str(tmp_path / "reports"), **kw}
    return report.config_from_mapping(raw, tmp_path, "test")


def test_two_runs_give_two_folders_index_and_latest(nbdir, tiny_dataset, tmp_path):
    cfg = _config(nbdir, tiny_dataset, tmp_path, parameters={"n": 2})
    fixed = datetime(2026, 11, 25, 10, 15, 30, tzinfo=timezone.utc)
    r1 = report.run_report(cfg, progress=False, now=fixed)
    r2 = report.run_report(cfg, progress=False, now=fixed)  # same second: still a new folder
    assert (r1.status, r2.status) == ("ok", "ok")
    assert r1.run_dir.name == "20261125T101530Z" and r2.run_dir.name == "20261125T101530Z-2"
    for r in (r1, r2):
        files = {p.name for p in r.run_dir.iterdir()}
        assert {"ok.ipynb", "ok.html", "ok.json", "run.json"} <= files
        rec = json.loads((r.run_dir / "run.json").read_text())
        assert rec["status"] == "ok" and rec["notebooks"][0]["status"] == "ok"
        assert rec["data"][0]["synthetic"] is True
    # results JSON written by the notebook with the injected parameter
    res = json.loads((r2.run_dir / "ok.json").read_text())
    assert res["n"] == 2
    executed = nbformat.read(str(r2.run_dir / "ok.ipynb"), as_version=4)
    assert any(str(tiny_dataset.resolve()) in "".join(o.get("text", "") for o in c.get("outputs", []))
               for c in executed.cells if c.cell_type == "code")
    latest = report.resolve_latest(tmp_path / "reports" / "t")
    assert latest is not None and latest.name == r2.run_dir.name
    index = (tmp_path / "reports" / "index.html").read_text()
    assert r1.run_dir.name in index and r2.run_dir.name in index
    assert "t/20261125T101530Z-2/ok.html" in index
    assert "3.25" in index and "0.01" in index  # magnet lift (1.25 + n) and p-value from the results JSON
    assert "synthetic" in index
    assert "http://" not in index and "https://" not in index
    page = (r1.run_dir / "ok.html").read_text()
    assert "<script src=\"http" not in page and "cdnjs" not in page


def test_unknown_parameter_fails_before_execution(nbdir, tiny_dataset, tmp_path):
    cfg = _config(nbdir, tiny_dataset, tmp_path)
    over = tmp_path / "over.yaml"
    over.write_text(yaml.safe_dump({"ok": {"no_such_param": 1}}))
    with pytest.raises(ParameterError, match=r"ok\.ipynb.*no_such_param"):
        report.run_report(cfg, overrides=report.load_overrides(over), progress=False)
    assert not (tmp_path / "reports" / "t").exists() or report.list_runs(tmp_path / "reports" / "t") == []
    # a global name no notebook declares is refused too, and so is a wrong type
    with pytest.raises(ParameterError, match="typo_name"):
        report.check_parameters(cfg, {"typo_name": 3})
    with pytest.raises(ParameterError, match=r"ok\.ipynb.*'n' must be int"):
        report.check_parameters(cfg, {"n": "three"})
    with pytest.raises(ParameterError, match=r"'fraction' must be float"):
        report.check_parameters(cfg, {"ok.ipynb": {"fraction": True}})
    assert report.check_parameters(cfg, {"fraction": 1})["ok"] == {"fraction": 1}  # int is a fine float


def test_cli_parameters_file_unknown_name_is_one_line_exit_2(nbdir, tiny_dataset, tmp_path):
    over = tmp_path / "over.yaml"
    over.write_text("ok:\n  nope: 1\n")
    res = subprocess.run(
        [sys.executable, "-m", "liqlab", "report", "--name", "t", "--notebook", str(nbdir / "ok.ipynb"),
         "--dataset", str(tiny_dataset), "--reports-dir", str(tmp_path / "reports"), "--parameters", str(over)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "ok.ipynb" in res.stderr and "nope" in res.stderr
    assert not (tmp_path / "reports" / "t").exists()


def test_failing_notebook_is_contained(nbdir, tiny_dataset, tmp_path):
    good = report.run_report(_config(nbdir, tiny_dataset, tmp_path), progress=False)
    before = {p.name: p.read_bytes() for p in good.run_dir.iterdir()}
    bad = report.run_report(_config(nbdir, tiny_dataset, tmp_path, notebooks=("boom.ipynb",)), progress=False)
    assert bad.status == "failed" and bad.exit_code == 1
    assert good.run_dir != bad.run_dir
    # the partly executed notebook with the error is kept, plus its HTML
    nb = nbformat.read(str(bad.run_dir / "boom.ipynb"), as_version=4)
    text = json.dumps(nb)
    assert "kaboom in cell" in text and "before" in text
    assert (bad.run_dir / "boom.html").exists()
    rec = json.loads((bad.run_dir / "run.json").read_text())
    assert rec["status"] == "failed" and "kaboom" in rec["errors"][0]
    # earlier run untouched, latest still points to it, index shows the failed row
    assert {p.name: p.read_bytes() for p in good.run_dir.iterdir()} == before
    assert report.resolve_latest(tmp_path / "reports" / "t") == good.run_dir
    index = (tmp_path / "reports" / "index.html").read_text()
    row = next(line for line in index.splitlines() if bad.run_dir.name in line and "<tr>" in line)
    assert "class='failed'" in row and "kaboom" in row


def test_second_concurrent_run_is_refused(nbdir, tiny_dataset, tmp_path):
    reports = tmp_path / "reports"
    with report.report_lock(reports / "t"):
        res = subprocess.run(
            [sys.executable, "-m", "liqlab", "report", "--name", "t", "--notebook", str(nbdir / "ok.ipynb"),
             "--dataset", str(tiny_dataset), "--reports-dir", str(reports)],
            capture_output=True, text=True, cwd=tmp_path,
        )
    assert res.returncode == 3
    assert "already running" in res.stderr and "Traceback" not in res.stderr
    assert report.list_runs(reports / "t") == []
    with pytest.raises(report.ReportLocked):
        with report.report_lock(reports / "t"):
            with report.report_lock(reports / "t"):
                pass


def test_refresh_failure_gives_stale_banner_or_failure(nbdir, tiny_dataset, tmp_path):
    calls = []

    def offline_refresh(path, options):
        calls.append((path, options))
        raise FetchError("binanceusdm: cannot reach the exchange (NetworkError: connection refused)")

    cfg = _config(nbdir, tiny_dataset, tmp_path, refresh={"exchanges": ["binanceusdm"]})
    res = report.run_report(cfg, refresh_fn=offline_refresh, progress=False)
    assert calls and calls[0][1] == {"exchanges": ["binanceusdm"]}
    assert res.status == "stale" and res.exit_code == 0
    nb = nbformat.read(str(res.run_dir / "ok.ipynb"), as_version=4)
    banner = nb.cells[0]
    assert banner.cell_type == "markdown" and "STALE DATA" in banner.source and "connection refused" in banner.source
    age = res.record["data"][0]["age_hours"]
    assert 3.0 <= age < 5.0 and f"{age:.1f} hours old" in banner.source
    assert "STALE DATA" in (res.run_dir / "ok.html").read_text()
    assert "refresh failed" in (tmp_path / "reports" / "index.html").read_text()

    strict = report.run_report(cfg, refresh_fn=offline_refresh, require_fresh=True, progress=False)
    assert strict.status == "failed" and strict.exit_code == 1
    assert not (strict.run_dir / "ok.ipynb").exists()
    assert "require-fresh" in strict.record["errors"][0]
    assert report.resolve_latest(tmp_path / "reports" / "t") == res.run_dir


def test_retention_removes_oldest_but_keeps_latest(tmp_path):
    rdir = tmp_path / "reports" / "r"
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    runs = [report.new_run_dir(rdir, t0 + timedelta(hours=i)) for i in range(5)]
    folders.set_latest(rdir, runs[0])
    removed = folders.apply_retention(rdir, 2)
    left = [p.name for p in report.list_runs(rdir)]
    assert runs[0].name in left and runs[4].name in left and len(left) == 2
    assert sorted(removed) == sorted(r.name for r in runs[1:4])


def test_latest_pointer_file_where_symlinks_fail(tmp_path, monkeypatch):
    rdir = tmp_path / "r"
    run = report.new_run_dir(rdir, datetime(2026, 1, 1, tzinfo=timezone.utc))

    def no_symlink(*a, **k):
        raise OSError("symlinks not supported")

    monkeypatch.setattr(os, "symlink", no_symlink)
    folders.set_latest(rdir, run)
    assert (rdir / "latest").is_file() and report.resolve_latest(rdir) == run


def test_key_figures_tolerate_missing_and_odd_keys():
    assert report.key_figures({}) == []
    assert report.key_figures(["not", "a", "dict"]) == []
    figs = dict(map(tuple, report.key_figures({
        "magnet": {"lift": 1.5, "p_value": 0.03}, "top_clusters": [{"side": "long", "price": 95000}, "junk"],
        "validation": {"spearman": {"engine": 0.31, "naive": 0.05}}, "other": None})))
    assert figs["magnet.lift"] == "1.5" and figs["magnet.p_value"] == "0.03"
    assert figs["validation.spearman.engine"] == "0.31" and figs["top clusters"] == "long 95,000"


def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("reports:\n  x:\n    notebooks: []\n")
    with pytest.raises(ParameterError, match="notebooks"):
        report.load_config(bad)
    bad.write_text("reports:\n  x:\n    notebooks: [a.ipynb]\n    retention: 0\n")
    with pytest.raises(ParameterError, match="retention"):
        report.load_config(bad)
    bad.write_text("reports: [\n")
    with pytest.raises(ParameterError, match="invalid YAML"):
        report.load_config(bad)


@pytest.mark.slow
def test_example_config_runs_on_a_small_simulation(small_sim, tmp_path):
    """The committed examples/reports.yaml, pointed at a small simulated collection (when notebooks exist)."""
    configs = report.load_config(REPO / "examples" / "reports.yaml")
    assert configs and all(c.retention >= 1 for c in configs)
    cfg = configs[0]
    present = tuple(s for s in cfg.notebooks if s.path.exists())
    if not any(s.stem == "01_data" for s in present):
        pytest.fail("notebooks/01_data.ipynb is missing")
    cfg = report.with_options(cfg, notebooks=present, datasets=(small_sim,), reports_dir=tmp_path / "reports")
    res = report.run_report(cfg, progress=False)
    assert res.status == "ok", res.record.get("errors")
    assert report.resolve_latest(tmp_path / "reports" / cfg.name) == res.run_dir
    assert (tmp_path / "reports" / "index.html").exists()


BOKEH_SOURCE = """
from bokeh.io import output_notebook, show
from bokeh.layouts import column
from bokeh.models import CustomJS, Div, Slider
from bokeh.resources import INLINE
output_notebook(resources=INLINE, hide_banner=True)
slider = Slider(start=0, end=10, value=1, step=1, title="x", name="liqlab_slider")
div = Div(text="value 1", name="liqlab_div")
slider.js_on_change("value", CustomJS(args=dict(div=div), code="div.text = 'value ' + cb_obj.value"))
show(column(slider, div))
"""


@pytest.mark.browser
def test_exported_html_keeps_bokeh_sliders_working_offline(tiny_dataset, tmp_path):
    """The report HTML carries BokehJS inline: in headless Chromium (no network) the slider's CustomJS runs."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "bk.ipynb", "dataset = None", BOKEH_SOURCE)
    cfg = report.config_from_mapping({"name": "bk", "notebooks": [str(nbs / "bk.ipynb")], "datasets": [str(tiny_dataset)],
                                      "reports_dir": str(tmp_path / "reports")}, tmp_path, "test")
    res = report.run_report(cfg, progress=False)
    assert res.status == "ok", res.record.get("errors")
    page = res.run_dir / "bk.html"
    text = page.read_text()
    assert "cdn.bokeh.org" not in text and "<script src=\"http" not in text
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.get(page.as_uri())
        js_model = "return (window.Bokeh && Bokeh.documents.length) ? Bokeh.documents[0].get_model_by_name(arguments[0]) !== null : false"
        t0 = time.monotonic()
        while not driver.execute_script(js_model, "liqlab_slider") and time.monotonic() - t0 < 20:
            time.sleep(0.1)
        assert driver.execute_script(js_model, "liqlab_slider"), "BokehJS did not render the document"
        driver.execute_script("Bokeh.documents[0].get_model_by_name('liqlab_slider').value = 7")
        assert driver.execute_script("return Bokeh.documents[0].get_model_by_name('liqlab_div').text") == "value 7"
    finally:
        driver.quit()


def test_default_refresh_asks_fetch_for_what_the_collection_holds(tiny_dataset, monkeypatch):
    """The refresh step goes through liqlab.io.fetch.fetch (replaced here: no network in tests)."""
    import liqlab.io.fetch

    calls = []
    monkeypatch.setattr(liqlab.io.fetch, "fetch", lambda *a, **k: calls.append((a, k)))
    report.default_refresh(tiny_dataset.parent, {"retries": 1})
    (args, kw), = calls
    assert args == (["binanceusdm"], "BTC/USDT:USDT")
    first = pd.read_parquet(tiny_dataset / "ohlcv.parquet")["ts"].min()
    assert pd.Timestamp(kw["since"]) == first and kw["out"] == tiny_dataset.parent and kw["retries"] == 1


def test_yaml_dates_in_parameters_become_iso_strings(nbdir, tiny_dataset, tmp_path):
    cfg = _config(nbdir, tiny_dataset, tmp_path)
    over = tmp_path / "o.yaml"
    over.write_text("label: 2024-01-03\n")
    assert report.check_parameters(cfg, report.load_overrides(over))["ok"] == {"label": "2024-01-03"}


def test_a_run_killed_mid_way_is_marked_interrupted_by_the_next(nbdir, tiny_dataset, tmp_path):
    """kill -9 leaves run.json at 'running' (no finally runs); the next run, holding the lock, closes it."""
    cfg = _config(nbdir, tiny_dataset, tmp_path)
    killed = tmp_path / "reports" / "t" / "20200101T000000Z"
    killed.mkdir(parents=True)
    (killed / "run.json").write_text(json.dumps({"name": "t", "run": killed.name, "status": "running",
                                                 "pid": 2**22 + 3, "notebooks": [], "data": []}))
    # while another run holds the lock, the index already shows the dead run as interrupted
    with report.report_lock(tmp_path / "reports" / "t"):
        index = report.write_index(tmp_path / "reports").read_text()
    assert "class='interrupted'>interrupted<" in index and "class='running'" not in index
    res = report.run_report(cfg, progress=False)
    assert res.status == "ok"
    rec = json.loads((killed / "run.json").read_text())
    assert rec["status"] == "interrupted" and "pid" not in rec and "killed?" in rec["errors"][0]
    index = (tmp_path / "reports" / "index.html").read_text()
    assert "class='interrupted'>interrupted<" in index and "class='running'" not in index


def test_index_only_uses_the_config_reports_dir(tmp_path, monkeypatch):
    from liqlab.app.cli import main

    cfg = tmp_path / "conf" / "r.yaml"
    cfg.parent.mkdir()
    cfg.write_text(f"reports_dir: ../elsewhere\nreports:\n  a:\n    notebooks: [{REPO / 'notebooks' / '01_data.ipynb'}]\n")
    (tmp_path / "elsewhere" / "a" / "20250101T000000Z").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--index-only", "--config", str(cfg)]) == 0
    assert (tmp_path / "elsewhere" / "index.html").exists() and not (tmp_path / "reports").exists()
