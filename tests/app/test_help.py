"""Every subcommand's --help prints and exits 0 (argparse expands % in help texts, so a stray % is a crash)."""

from __future__ import annotations

import pytest

from liqlab.app.cli import COMMANDS, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_of_every_command(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: liqlab " + command)
