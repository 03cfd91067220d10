"""liqlab.app.sources: where a notebook's dataset comes from (sample, fetch, import); no network here."""

from __future__ import annotations

import pytest

from liqlab._util import VENUES
from liqlab.app.sources import ORIGINS, acquire
from liqlab.errors import ParameterError


def test_unknown_origin_names_the_parameter_and_the_choices(tmp_path):
    with pytest.raises(ParameterError, match=r"source: must be one of \('sample', 'fetch', 'import'\), got 'ftp'"):
        acquire("ftp", tmp_path / "d")
    assert ORIGINS == ("sample", "fetch", "import")


def test_fetch_and_import_need_their_parameters(tmp_path):
    with pytest.raises(ParameterError, match="fetch_since: required"):
        acquire("fetch", tmp_path / "d")
    with pytest.raises(ParameterError, match="import_format and import_files: both required"):
        acquire("import", tmp_path / "d", import_format="freqtrade", import_files=" , ")
    assert not (tmp_path / "d").exists()


def test_sample_simulates_every_venue_once(tmp_path, monkeypatch):
    import liqlab.sim.simulation as sim

    calls = []
    monkeypatch.setattr(sim, "simulate", lambda **kw: calls.append(kw) or kw["out"].mkdir())
    path = tmp_path / "sample"
    assert acquire("sample", path) == path
    assert acquire("sample", path) == path  # present: left alone
    assert len(calls) == 1 and calls[0]["venues"] == VENUES and calls[0]["days"] == 30 and calls[0]["seed"] == 0


def test_fetch_passes_split_exchanges_and_times(tmp_path, monkeypatch):
    import liqlab.io.fetch as fetch

    calls = []
    monkeypatch.setattr(fetch, "fetch", lambda *a, **kw: calls.append((a, kw)))
    acquire("fetch", tmp_path / "d", exchanges="bybit, okx", since="2025-01-01", until="2025-01-02")
    (args, kw), = calls
    assert args == (["bybit", "okx"], "BTC/USDT:USDT") and kw["since"] == "2025-01-01" and kw["until"] == "2025-01-02"
