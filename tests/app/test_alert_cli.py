"""liqlab alert: JSON lines per large cluster near price, exit 1/0/2, --json and --exec (no network)."""

from __future__ import annotations

import json
import stat
import sys

import pytest

from liqlab.app.alerts import alert_env, alert_records
from liqlab.app.cli import main
from liqlab.engine.levels import alerts
from test_levels_cli import saved  # noqa: F401 - the shared saved map (a module-scoped fixture)


def _threshold(hm, within):
    """A min_usd that keeps some but not all of the clusters within ``within`` % (the median of them)."""
    near = alerts(hm, within_pct=within, min_usd=0.0)
    assert len(near) >= 2
    return float(near["notional_usd"].median())


def test_lines_exit_1_and_json_file(saved, tmp_path, capsys):
    hm, path = saved
    min_usd = _threshold(hm, 3.0)
    out = tmp_path / "alerts.jsonl"
    assert main(["alert", str(path), "--within-pct", "3", "--min-usd", repr(min_usd), "--json", str(out)]) == 1
    lines = capsys.readouterr().out.splitlines()
    recs = [json.loads(x) for x in lines]
    want = alerts(hm, within_pct=3.0, min_usd=min_usd)
    assert len(recs) == len(want) >= 1
    assert [r["price"] for r in recs] == list(want["price"])
    for r in recs:
        assert r["notional_usd"] >= min_usd and abs(r["distance_pct"]) <= 3.0
        assert r["synthetic"] is True and r["symbol"] == hm.meta["symbol"]
        assert (r["side"] == "long") == (r["distance_pct"] < 0)
    assert out.read_text().splitlines() == lines


def test_none_exits_0_with_an_empty_file(saved, tmp_path, capsys):
    _, path = saved
    out = tmp_path / "alerts.jsonl"
    assert main(["alert", str(path), "--within-pct", "1", "--min-usd", "1e15", "--json", str(out)]) == 0
    assert capsys.readouterr().out == "" and out.read_text() == ""


def test_exec_runs_a_script_per_alert(saved, tmp_path, capsys):
    hm, path = saved
    min_usd = _threshold(hm, 3.0)
    log = tmp_path / "log.txt"
    script = tmp_path / "hook.py"
    script.write_text(
        "import os, sys\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(os.environ['LIQLAB_ALERT_SIDE'] + ' ' + os.environ['LIQLAB_ALERT_PRICE'] + ' '"
        " + sys.stdin.read())\n")
    cmd = f"{sys.executable} {script}"
    assert main(["alert", str(path), "--within-pct", "3", "--min-usd", repr(min_usd), "--exec", cmd]) == 1
    recs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    got = log.read_text().splitlines()
    assert len(got) == len(recs)
    for line, rec in zip(got, recs):
        side, price, payload = line.split(" ", 2)
        assert side == rec["side"] and float(price) == rec["price"] and json.loads(payload) == rec


def test_failing_exec_warns_and_keeps_exit_1(saved, tmp_path, capsys):
    hm, path = saved
    script = tmp_path / "fail.sh"
    script.write_text("#!/bin/sh\necho boom >&2\nexit 3\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    assert main(["alert", str(path), "--within-pct", "3", "--min-usd", "0", "--exec", str(script)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err and all(e.startswith("liqlab alert: warning: --exec: alert") and "exited 3 (boom)" in e for e in err)


@pytest.mark.parametrize("argv, pattern", [
    (["--within-pct", "0", "--min-usd", "1"], "--within-pct"),
    (["--within-pct", "nan", "--min-usd", "1"], "--within-pct"),
    (["--within-pct", "2", "--min-usd", "-1"], "--min-usd"),
    (["--within-pct", "2", "--min-usd", "1", "--exec", "no-such-program-xyz --flag"], "--exec: no-such-program-xyz"),
    (["--within-pct", "2", "--min-usd", "1", "--exec", "'unbalanced"], "--exec"),
    (["--within-pct", "2"], "--min-usd"),
])
def test_bad_input_exit_2(saved, capsys, argv, pattern):
    _, path = saved
    try:
        code = main(["alert", str(path)] + argv)
    except SystemExit as exc:  # argparse's own refusal (a missing required option)
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and pattern in err


def test_records_refuse_a_relative_map_and_env_names(saved):
    hm, _ = saved
    with pytest.raises(Exception, match="USD heatmap"):
        alert_records(hm.relative("1D"), within_pct=2, min_usd=1)
    env = alert_env({"side": "long", "price": 1.5, "synthetic": True, "venue_names": None})
    assert env["LIQLAB_ALERT_SIDE"] == "long" and env["LIQLAB_ALERT_PRICE"] == "1.5"
    assert env["LIQLAB_ALERT_SYNTHETIC"] == "true" and env["LIQLAB_ALERT_VENUE_NAMES"] == ""
    assert json.loads(env["LIQLAB_ALERT_JSON"])["side"] == "long"
