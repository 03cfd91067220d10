"""The scheduled report's alert banner: the same alerts as ``liqlab alert``, settings from the config."""

from __future__ import annotations

import html
import json

import nbformat
import pytest

from liqlab.app import report
from liqlab.app.alerts import alert_records
from liqlab.app.cli import main
from liqlab.app.report.alerts import DEFAULT_ALERTS, alert_settings, alert_text
from liqlab.engine.heatmap import build_heatmap
from liqlab.engine.levels import alerts
from liqlab.errors import ParameterError
from liqlab.io.dataset import load_collection
from test_report import _notebook


def test_settings_defaults_and_errors():
    assert alert_settings(None, "w") == DEFAULT_ALERTS and alert_settings(True, "w") == DEFAULT_ALERTS
    assert alert_settings(False, "w") is None
    assert alert_settings({"min_usd": "5e6"}, "w") == {"within_pct": DEFAULT_ALERTS["within_pct"], "min_usd": 5e6}
    for bad, pattern in (({"within_pct": 0}, "w.within_pct"), ({"min_usd": -1}, "w.min_usd"),
                         ({"pct": 1}, "unknown key"), ("x", "expected false")):
        with pytest.raises(ParameterError, match=pattern):
            alert_settings(bad, "w")


def test_banner_shows_the_alerts_of_liqlab_alert(small_sim, tmp_path, capsys):
    hm = build_heatmap(load_collection(small_sim), half_life_hours=24.0, progress=False)
    near = alerts(hm, within_pct=3.0, min_usd=0.0)
    min_usd = float(near["notional_usd"].median())   # some clusters qualify, some do not
    want = alert_records(hm, within_pct=3.0, min_usd=min_usd)
    assert 1 <= len(want) < len(near)
    nb = _notebook(tmp_path / "nb.ipynb", "dataset = None\nhalf_life_hours = None", "print(dataset)")
    cfg = report.config_from_mapping({"name": "a", "notebooks": [str(nb)], "datasets": [str(small_sim)],
                                      "reports_dir": str(tmp_path / "reports"), "parameters": {"half_life_hours": 24.0},
                                      "alerts": {"within_pct": 3.0, "min_usd": min_usd}}, tmp_path, "test")
    res = report.run_report(cfg, progress=False)
    assert res.status == "ok", res.record.get("errors")
    got = res.record["data"][0]["alerts"]
    assert got["alerts"] == want and got["within_pct"] == 3.0
    run_json = json.loads((res.run_dir / "run.json").read_text())
    assert run_json["data"][0]["alerts"]["alerts"] == want
    cell = nbformat.read(str(res.run_dir / "nb.ipynb"), as_version=4).cells[0]
    assert "liqlab-alert-banner" in cell.metadata["tags"] and "SYNTHETIC" in cell.source
    assert f"{len(want)} alert" in cell.source and cell.source.count("<tr>") == len(want) + 1
    assert alert_text(got) in html.unescape((tmp_path / "reports" / "index.html").read_text())
    # the command line says the same, and --no-alerts turns the banner off
    assert main(["report", "--name", "b", "--notebook", str(nb), "--dataset", str(small_sim), "--reports-dir",
                 str(tmp_path / "reports"), "--no-progress", "--alert-within-pct", "3", "--alert-min-usd",
                 repr(min_usd), "-p", "half_life_hours=24"]) == 0
    assert alert_text(got) in capsys.readouterr().out
    assert main(["report", "--name", "c", "--notebook", str(nb), "--dataset", str(small_sim), "--reports-dir",
                 str(tmp_path / "reports"), "--no-progress", "--no-alerts"]) == 0
    latest = report.resolve_latest(tmp_path / "reports" / "c")
    assert "alerts" not in json.loads((latest / "run.json").read_text())["data"][0]


def test_bad_alert_flag_is_one_line(tmp_path, capsys):
    nb = _notebook(tmp_path / "nb.ipynb", "dataset = None", "print(1)")
    assert main(["report", "--name", "x", "--notebook", str(nb), "--alert-min-usd", "-5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--alert-min-usd" in err


def test_a_map_that_cannot_be_built_gives_an_error_line(tmp_path):
    from liqlab.app.report.alerts import dataset_alerts

    info = dataset_alerts(tmp_path / "nothing-here", DEFAULT_ALERTS, {})
    assert "alerts" not in info and info["error"] and alert_text(info).startswith("alerts not computed:")


def test_asset_parameters_label_by_symbol_and_keep_labels_unique(two_assets, small_sim):
    from liqlab.app.runner import asset_parameters

    got = asset_parameters([two_assets / "BTC", two_assets / "ETH"])
    assert got["assets"] == ["BTC", "ETH"] and got["datasets"][1].endswith("ETH")
    twice = asset_parameters([two_assets / "BTC", small_sim])       # two BTC collections: folder names
    assert twice["assets"] == ["BTC", small_sim.name]
    one_venue = asset_parameters([two_assets / "ETH" / "okx"])      # a dataset directory
    assert one_venue["assets"] == ["ETH"]
