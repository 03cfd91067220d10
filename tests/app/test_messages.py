"""liqlab.app.messages: the one stderr line format of every command (errors, warnings, run records)."""

from __future__ import annotations

import contextlib
import io

from liqlab.app.messages import error_line, exception_summary, print_message, warning_line


def test_error_and_warning_lines_have_one_format_on_one_line():
    assert error_line("info", "bad\n  file   x.parquet") == "liqlab info: error: bad file x.parquet"
    assert warning_line("import", "cannot tell\tunits") == "liqlab import: warning: cannot tell units"
    assert error_line("fit", KeyError()) == "liqlab fit: error: KeyError"  # no text: the type names it


def test_cli_errors_go_through_the_helper(tmp_path):
    from liqlab.app.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["info", str(tmp_path / "absent")])
    lines = err.getvalue().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("liqlab info: error: ")
    assert str(tmp_path / "absent") in lines[0]


def test_print_helpers_write_one_line_and_survive_a_closed_pipe():
    out = io.StringIO()
    print_message("report", "s: nb failed", stream=out)
    print_message("import", "odd", warning=True, stream=out)
    assert out.getvalue() == "liqlab report: error: s: nb failed\nliqlab import: warning: odd\n"

    class Gone(io.StringIO):
        def write(self, s):
            raise BrokenPipeError

    print_message("info", "x", stream=Gone())  # the reader went away: nothing raised


def test_exception_summary_is_type_and_first_line():
    assert exception_summary(ValueError("boom  here\nTraceback lines")) == "ValueError: boom here"
    assert exception_summary(RuntimeError()) == "RuntimeError"
