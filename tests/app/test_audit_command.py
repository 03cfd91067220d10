"""``liqlab audit``: bad input gives one line and exit 2; raw folders of real files are recognised."""

from __future__ import annotations

import pytest

from liqlab.app.cli import main


@pytest.mark.parametrize("args,pattern", [
    (["--claims", "1,9"], "--claims: ids must be in 1-8"),
    (["--claims", "one"], "--claims: comma-separated integers"),
])
def test_bad_claims(repo, tmp_path, capsys, args, pattern):
    rc = main(["audit", str(repo / "data" / "sample"), "--json", str(tmp_path / "a.json"), *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and pattern in err and len(err.splitlines()) == 1
    assert not (tmp_path / "a.json").exists()


def test_missing_and_unusable_inputs(tmp_path, capsys):
    assert main(["audit", str(tmp_path / "nope"), "--json", str(tmp_path / "a.json")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "prices.csv").write_text("timestamp,price_close\n1,2\n")
    assert main(["audit", str(tmp_path / "raw"), "--json", str(tmp_path / "a.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "open interest" in err and len(err.splitlines()) == 1


def test_bad_settings_file(repo, tmp_path, capsys):
    f = tmp_path / "s.json"
    f.write_text('{"sim_days": -1}')
    assert main(["audit", str(repo / "data" / "sample"), "--settings", str(f), "--json", str(tmp_path / "a.json")]) == 2
    assert "sim_days" in capsys.readouterr().err


def test_raw_folder_detection(tmp_path):
    from liqlab.app.commands.audit import _symbol, raw_real_files

    (tmp_path / "eth_oi.csv").write_text("timestamp,price_close,oi_close\n")
    (tmp_path / "btc_prices.csv").write_text("timestamp,price_close\n")
    assert [p.name for p in raw_real_files(tmp_path)] == ["eth_oi.csv"]
    assert _symbol(tmp_path / "eth_oi.csv") == "ETH/USDT:USDT"
    from liqlab.errors import DataError

    with pytest.raises(DataError, match="asset"):
        _symbol(tmp_path / "oi.csv")
