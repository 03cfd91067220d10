"""liqlab serve, as a user meets it: a replayed recording, the Bokeh server, the page in headless Chromium."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqlab.app.serve.feed import FeedOptions, LiveFeed, realized_vol
from liqlab.io.dataset import load

REPO = Path(__file__).resolve().parents[2]
FRAMES = REPO / "data" / "replay" / "sample_2days.jsonl.gz"

LAST_TIME = ("const d = Bokeh.documents[0]; const g = d && d.get_model_by_name('grid');"
             " if (!g) return null; const t = g.data.times[0]; return t[t.length - 1];")
IMAGE_SUM = ("const h = Bokeh.documents[0].get_model_by_name('heatmap'); const a = h.data.image[0];"
             " let s = 0; for (let i = 0; i < a.length; i += 7) s = (s * 31 + a[i]) % 1000000007; return s;")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "liqlab.app.cli", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Until the server accepts connections (fails early when it exited)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.stdout.read()
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"serve: port {port} not open after {timeout}s")


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.stdout.read() if proc.stdout else ""


def test_realized_vol_annualises_one_minute_returns():
    r = np.full(15, 0.001)
    close = 100.0 * np.exp(np.r_[0.0, np.cumsum(r)])
    assert realized_vol(close, 15) == pytest.approx(0.001 * np.sqrt(525_600))
    assert np.isnan(realized_vol(close[:1], 15))


def test_feed_waits_for_data_then_builds_and_appends(tmp_path):
    feed = LiveFeed(tmp_path, FeedOptions(interval=60.0, fast_interval=15.0, vol_threshold=1e9))
    feed.refresh()
    assert feed.hm is None and "waiting" in feed.status_html() or feed.error
    sample = load(REPO / "data" / "sample")
    feed = LiveFeed(REPO / "data" / "sample", FeedOptions(vol_threshold=1e9, alert_pct=5.0))
    feed.refresh()
    assert feed.hm is not None and feed.generation == 1 and feed.interval() == 60.0
    assert "SYNTHETIC" in feed.status_html() and "gaps:" in feed.status_html()
    assert feed.alerts_html().startswith("<b>alerts</b>")
    assert len(feed.hm.times) == len(pd.date_range(sample.datasets[0].ohlcv["ts"].iloc[0], periods=720, freq="1h"))
    fast = LiveFeed(REPO / "data" / "sample", FeedOptions(vol_threshold=0.0))
    fast.refresh()
    assert fast.interval() == 15.0


@pytest.mark.browser
def test_live_map_advances_in_chromium_while_the_recorder_replays(tmp_path):
    from tests.browser import browser_missing, chromium_session, console, js_errors, wait_for

    if browser_missing():
        pytest.skip(browser_missing())
    out, port = tmp_path / "live", _free_port()
    rec = _start("record", "--replay", str(FRAMES), "--speed", "1800", "--out", str(out), "--status-every", "5")
    srv = None
    try:
        for _ in range(100):                                   # the recorder has written bars and OI
            if (out / "okx" / "open_interest.parquet").exists() and len(load(out).datasets[-1].open_interest) > 2:
                break
            time.sleep(0.2)
        srv = _start("serve", str(out), "--port", str(port), "--interval", "2", "--fast-interval", "2")
        _wait_port(port, srv)
        with chromium_session() as drv:
            drv.get(f"http://127.0.0.1:{port}/")
            t0 = wait_for(drv, LAST_TIME, timeout=30)
            img0 = drv.execute_script(IMAGE_SUM)
            t1 = wait_for(drv, LAST_TIME.replace("return t[t.length - 1];", f"return t[t.length - 1] > {t0} && t[t.length - 1];"),
                          timeout=20)
            assert t1 > t0
            wait_for(drv, f"{IMAGE_SUM.replace('return s;', f'return s !== {img0};')}", timeout=10)
            status = drv.execute_script("return Bokeh.documents[0].get_model_by_name('live_status').text")
            assert "data to" in status and "gaps:" in status
            assert js_errors(drv, console(drv)) == []
    finally:
        srv_log = _stop(srv) if srv is not None else ""
        rec_log = _stop(rec)
    assert "Traceback" not in srv_log + rec_log, srv_log + rec_log
    coll = load(out)
    assert all(len(ds.ohlcv) > 0 and ds.synthetic for ds in coll)


@pytest.mark.parametrize("argv, word", [
    (["serve", "no/such/folder"], "DATA"),
    (["serve", "data/sample", "--interval", "0"], "--interval"),
    (["serve", "data/sample", "--port", "70000"], "--port"),
    (["record", "--replay", str(FRAMES), "--speed", "-1", "--out", "OUT"], "--speed"),
])
def test_bad_serve_and_replay_options_are_one_line_exit_2(argv, word, capsys, tmp_path, monkeypatch):
    from liqlab.app.cli import main

    monkeypatch.chdir(REPO)
    argv = [a.replace("OUT", str(tmp_path / "o")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and word in err and "Traceback" not in err
