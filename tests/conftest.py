"""Shared fixtures. Add fixtures additively; keep them cheap (session scope for simulations)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# the shared browser and JupyterLab drivers (tests/browser.py, tests/jupyterlab_server.py) import by name
# from any test folder
sys.path.insert(0, str(Path(__file__).resolve().parent))
# test modules share their data builders by module name (test_dataset.make_dataset,
# test_validate._constructed_market, ...): every test folder is importable, whatever the run's order
for _layer in ("io", "engine", "sim", "stats", "viz", "app"):
    sys.path.insert(1, str(Path(__file__).resolve().parent / _layer))


def real_data_dir() -> Path | None:
    """The real reference data folder ($LIQLAB_REAL_DATA or ../shared/data/real), or None if absent."""
    env = os.environ.get("LIQLAB_REAL_DATA")
    p = Path(env) if env else REPO.parent / "shared" / "data" / "real"
    return p if p.is_dir() and any(p.iterdir()) else None


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Path of the real data folder; skips the test cleanly when it is absent."""
    p = real_data_dir()
    if p is None:
        pytest.skip("real reference data folder absent (set LIQLAB_REAL_DATA or provide ../shared/data/real)")
    return p


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def small_sim(tmp_path_factory) -> Path:
    """A small simulated 3-venue collection (3 days, seed 0), written once per test session."""
    from liqlab.sim.simulation import simulate

    out = tmp_path_factory.mktemp("sim") / "small"
    simulate(days=3, seed=0, venues=("binanceusdm", "bybit", "okx"), out=out, progress=False)
    return out


@pytest.fixture(scope="session")
def month_sim(tmp_path_factory) -> Path:
    """A 30-day simulated 3-venue collection (seed 0, ~7 s), written once per test session
    (browser timing at 720 hourly steps; added for tests/viz/test_plot_browser.py)."""
    from liqlab.sim.simulation import simulate

    out = tmp_path_factory.mktemp("sim") / "month"
    simulate(days=30, seed=0, venues=("binanceusdm", "bybit", "okx"), out=out, progress=False)
    return out


@pytest.fixture
def no_network(monkeypatch):
    """Any real socket connection or DNS lookup in this process fails the test (the fakes open none)."""
    import socket

    def refuse(*a, **k):
        raise OSError("real network access attempted in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="session")
def two_assets(tmp_path_factory) -> Path:
    """BTC and ETH simulated side by side (`liqlab simulate --symbols BTC,ETH`: <out>/BTC, <out>/ETH; 2 days,
    2 venues, seed 0), written once per test session."""
    from liqlab.sim.simulation import simulate_assets

    out = tmp_path_factory.mktemp("sim") / "assets"
    simulate_assets("BTC,ETH", out, days=2, seed=0, venues=("binanceusdm", "okx"), progress=False)
    return out
