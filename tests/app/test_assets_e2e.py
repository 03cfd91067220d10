"""Two assets end to end through the command line: simulate BTC and ETH, heatmaps, relative view, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from liqlab.app.cli import main
from liqlab.engine.heatmap import Heatmap
from liqlab.engine.levels import compare_assets

REPO = Path(__file__).resolve().parents[2]


def test_simulate_heatmap_relative_report(tmp_path, capsys):
    sim = tmp_path / "sim"
    assert main(["simulate", "--days", "1.5", "--venues", "binanceusdm,okx", "--symbols", "BTC,ETH",
                 "--out", str(sim), "--quiet"]) == 0
    maps = {}
    for asset in ("BTC", "ETH"):
        out = tmp_path / f"{asset}.npz"
        assert main(["heatmap", str(sim / asset), "--out", str(out), "--no-progress"]) == 0
        maps[asset] = Heatmap.load(out)
        assert maps[asset].synthetic and maps[asset].meta["symbol"].startswith(asset)
    capsys.readouterr()
    # the relative view: per venue the notional over its own market, both bases finite where the market traded
    for basis in ("volume", "open_interest"):
        table = compare_assets(maps, n=3, basis=basis, window="1D")
        assert list(table["asset"].unique()) == ["BTC", "ETH"]
        assert np.isfinite(table["relative"]).all() and (table["relative"] > 0).all()
    btc, eth = maps["BTC"], maps["ETH"]
    assert eth.close[-1] < btc.close[-1] / 5          # two markets, two price levels
    # the report: one banner per dataset, the cross-asset notebook once with both datasets
    reports = tmp_path / "reports"
    rc = main(["report", "--name", "assets", "--notebook", str(REPO / "notebooks" / "06_assets.ipynb"),
               "--dataset", str(sim / "BTC"), "--dataset", str(sim / "ETH"), "--reports-dir", str(reports),
               "-p", "source=given", "-p", "window=1D", "-p", "basis=open_interest", "--no-progress",
               "--alert-within-pct", "3", "--alert-min-usd", "0"])
    out = capsys.readouterr().out
    assert rc == 0, out
    run = json.loads((reports / "assets" / "latest" / "run.json").read_text())
    assert [n["name"] for n in run["notebooks"]] == ["06_assets"] and run["status"] == "ok"
    assert [d["label"] for d in run["data"]] == ["BTC", "ETH"] and all(d["alerts"]["alerts"] for d in run["data"])
    res = json.loads((reports / "assets" / "latest" / "06_assets.json").read_text())
    assert res["synthetic"] is True and res["basis"] == "open_interest"
    assert {c["asset"] for c in res["clusters"]} == {"BTC", "ETH"}
    assert "BTC: " in out and "ETH: " in out   # the alert lines of the console summary
