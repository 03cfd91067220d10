"""Every malformed or adversarial input liqlab promises to handle, run through the CLI, with a tally.

Each case builds small hand-made files in a temporary folder and runs one command (in-process through
``liqlab.app.cli.main``; in a subprocess where the exit status of a real process matters: a closed pipe, an
address-space limit). It is classified as

- *handled*: a refusal exits with the expected status and ONE stderr line that names the file, line or
  parameter (the case's pattern); an accepted input (epoch seconds, ISO offsets, ...) exits 0 and its
  check confirms the imported data is right;
- *traceback*: an exception escaped, or "Traceback" was printed;
- *silent misread*: a refusal was expected but the command exited 0 (or an accepted input's data is wrong);
- *data changed*: files that existed before a refused command are not byte-identical afterwards;
- *killed or hung*: the process died of a signal or ran past the case's time limit;
- *unclear*: refused, but not with the expected status / one clear line.

``python tests/app/test_bad_inputs.py`` prints the tally; ``test_tally`` asserts it (run with ``-s`` to see it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
SYM = "BTC/USDT:USDT"
MIN = 60_000
T0 = int(pd.Timestamp("2024-03-01", tz="UTC").value // 1_000_000)
HOUR = 3_600_000
KLINE_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
                "taker_buy_quote_volume,ignore")
CG_HEADER = "timestamp,price_open,price_high,price_low,price_close,oi_close"
CG_LIQ_HEADER = CG_HEADER + ",liquidation_long_usd,liquidation_short_usd"
GIB = 2**30


# ------------------------------------------------------------------------------------------ inputs


def px(i: int) -> float:
    return round(60_000 + 400 * np.sin(i / 7) + i * 2.0, 1)


def kline_lines(start: int, n: int, step: int = MIN, time=lambda ms: str(ms)) -> list[str]:
    out = []
    for i in range(start, start + n):
        o, c = px(i), px(i + 1)
        t = T0 + i * step
        out.append(f"{time(t)},{o},{max(o, c) + 3},{min(o, c) - 3},{c},10,{t + step - 1},{10 * c},5,4,{4 * c},0")
    return out


def cg_lines(n: int, step: int = HOUR, start: int = 0, time=lambda ms: str(ms), liq: bool = False) -> list[str]:
    out = []
    for k in range(start, start + n):
        o, c = px(k), px(k + 1)
        row = f"{time(T0 + k * step)},{o},{max(o, c) + 40},{min(o, c) - 40},{c},{6e9 + 1e6 * np.sin(k)}"
        if liq:
            row += f",{1e5 * (1 + k % 5) * (c < o)},{1e5 * (1 + k % 3) * (c > o)}"
        out.append(row)
    return out


def write(path: Path, lines: list[str], header: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(([header] if header else []) + lines) + "\n")
    return path


def iso_offset(ms: int) -> str:
    """The instant of epoch ``ms`` written with a +02:00, -05:30 or Z offset (alternating)."""
    t = pd.Timestamp(ms, unit="ms", tz="UTC")
    k = (ms // HOUR) % 3
    if k == 0:
        return (t + pd.Timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    if k == 1:
        return (t - pd.Timedelta(hours=5, minutes=30)).strftime("%Y-%m-%dT%H:%M:%S-05:30")
    return t.strftime("%Y-%m-%d %H:%M:%SZ")


def imported(tmp: Path, name: str, lines: list[str], header: str, fmt: str = "coinglass-csv") -> Path:
    """A dataset imported (with the library) from one hand-made file; returns its folder."""
    from liqlab.io.importers import import_files

    f = write(tmp / "src" / f"{name}.csv", lines, header)
    return import_files(fmt, [f], tmp / name, exchange="binanceusdm", symbol=SYM).path


def collection(tmp: Path) -> Path:
    """A collection folder with one 96-hour venue (prices, OI, realized liquidations)."""
    from liqlab.io.importers import import_files

    f = write(tmp / "src" / "cg.csv", cg_lines(96, liq=True), CG_LIQ_HEADER)
    import_files("coinglass-csv", [f], tmp / "data" / "binanceusdm", exchange="binanceusdm", symbol=SYM)
    return tmp / "data"


def same_tables(a: Path, b: Path) -> bool:
    from liqlab.io.dataset import load_dataset

    ta, tb = load_dataset(a).tables(), load_dataset(b).tables()
    if ta.keys() != tb.keys():
        return False
    for k in ta:
        try:
            pd.testing.assert_frame_equal(ta[k], tb[k])
        except AssertionError:
            return False
    return True


def damaged(tmp: Path, how: str) -> Path:
    """A collection whose only venue was edited after writing: one bad price / wick / exchange id."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = collection(tmp)
    v = data / "binanceusdm"
    if how == "exchange":
        meta = json.loads((v / "meta.json").read_text())
        meta["exchange"] = "binanceus"
        (v / "meta.json").write_text(json.dumps(meta))
        return data
    df = pq.read_table(v / "ohlcv.parquet").to_pandas()
    if how == "price":
        df.loc[10, ["open", "high", "low", "close"]] = 1e300
    else:  # a 1000x wick under an ordinary bar
        df.loc[10, "low"] = df.loc[10, "low"] / 1000
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), v / "ohlcv.parquet")
    return data


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` cannot be written to. chmod 0555; as root (which ignores modes) the calls that create
    files and folders in it are refused with EACCES as the kernel would refuse a normal user."""
    folder.mkdir(parents=True, exist_ok=True)
    mode = folder.stat().st_mode
    os.chmod(folder, 0o555)
    inside = str(folder.resolve())

    def refused(p) -> bool:
        return str(Path(p).resolve()).startswith(inside)

    real_mkstemp, real_mkdtemp, real_mkdir = tempfile.mkstemp, tempfile.mkdtemp, os.mkdir

    def mkstemp(*a, dir=None, **k):
        if dir is not None and refused(dir):
            raise PermissionError(13, "Permission denied", str(dir))
        return real_mkstemp(*a, dir=dir, **k)

    def mkdtemp(*a, dir=None, **k):
        if dir is not None and refused(dir):
            raise PermissionError(13, "Permission denied", str(dir))
        return real_mkdtemp(*a, dir=dir, **k)

    def mkdir(p, *a, **k):
        if refused(Path(p).parent):
            raise PermissionError(13, "Permission denied", str(p))
        return real_mkdir(p, *a, **k)

    try:
        if os.geteuid() == 0:
            with mock.patch("tempfile.mkstemp", mkstemp), mock.patch("tempfile.mkdtemp", mkdtemp), \
                    mock.patch("os.mkdir", mkdir):
                yield
        else:
            yield
    finally:
        os.chmod(folder, mode)


@contextlib.contextmanager
def no_network() -> Iterator[None]:
    def refuse(*a, **k):
        raise OSError("network unreachable (test)")

    with mock.patch.object(socket.socket, "connect", refuse), mock.patch.object(socket.socket, "connect_ex", refuse), \
            mock.patch.object(socket, "getaddrinfo", refuse):
        yield


@contextlib.contextmanager
def available(nbytes: int) -> Iterator[None]:
    """The memory available to the process, as liqlab.engine.memory sees it (default budget = half of it)."""
    with mock.patch("liqlab.engine.memory.available_bytes", return_value=nbytes):
        yield


# ------------------------------------------------------------------------------------------- cases


@dataclasses.dataclass
class Case:
    """One input. ``setup(tmp)`` returns the argv (or a callable returning (rc, out, err)) and the paths
    that must stay byte-identical. ``expect``: regex the single stderr line must match (a refusal), or
    None (an accepted input, judged by ``check(tmp, out, err)``)."""

    name: str
    klass: str
    setup: Callable[[Path], tuple[list[str] | Callable, list[Path]]]
    expect: str | None = None
    check: Callable[[Path, str, str], bool] | None = None
    code: int = 2
    context: Callable[[Path], contextlib.AbstractContextManager] | None = None
    subprocess: bool = False
    limit_as: int | None = None  # address-space limit of the subprocess (bytes)
    timeout: float = 60.0


def _import(src: list[Path] | Path, out: Path, fmt: str = "coinglass-csv", *extra: str) -> list[str]:
    files = [str(p) for p in (src if isinstance(src, list) else [src])]
    return ["import", "--format", fmt, *files, "--out", str(out), "--exchange", "binanceusdm", "--symbol", SYM,
            "--no-progress", *extra]


def _bv(tmp: Path, out: str, lines: list[str], name: str = "BTCUSDT-1m-2024-03-01.csv") -> Path:
    from liqlab.io.importers import import_files

    f = write(tmp / f"src-{out}" / name, lines, KLINE_HEADER)
    return import_files("binance-vision", [f], tmp / out, exchange="binanceusdm", symbol=SYM).path


def _seconds(ms: int) -> str:
    return str(ms // 1000)


def _micro(ms: int) -> str:
    return str(ms * 1000)


def case_seconds_into_ms(tmp):
    stored = _bv(tmp, "ds", kline_lines(0, 60))
    f = write(tmp / "sec" / "BTCUSDT-1m-2024-03-01.csv", kline_lines(60, 60, time=_seconds), KLINE_HEADER)
    return _import(f, stored, "binance-vision"), []


def check_seconds_into_ms(tmp, out, err):
    ref = _bv(tmp, "ref", kline_lines(0, 120))
    return same_tables(tmp / "ds", ref)


def case_accept_units(time):
    def setup(tmp):
        f = write(tmp / "u.csv", cg_lines(48, time=time), CG_HEADER)
        return _import(f, tmp / "got"), []
    return setup


def check_same_as_ms(tmp, out, err):
    ref = imported(tmp, "ref", cg_lines(48), CG_HEADER)
    return same_tables(tmp / "got", ref)


def case_iso_offsets(tmp):
    f = write(tmp / "iso.csv", cg_lines(48, time=iso_offset), CG_HEADER.replace("timestamp", "datetime_utc"))
    return _import(f, tmp / "got"), []


def refuse_import(lines_fn, header=CG_HEADER, name="bad.csv", fmt="coinglass-csv"):
    """Setup: a good stored dataset, then the bad file imported into it (the dataset must not change)."""
    def setup(tmp):
        stored = (_bv(tmp, "ds", kline_lines(-3000, 60)) if fmt == "binance-vision"
                  else imported(tmp, "ds", cg_lines(24, start=-200), CG_HEADER))
        f = write(tmp / "bad" / name, lines_fn(), header)
        return _import(f, stored, fmt), [stored]
    return setup


def case_oi_cannot_tell(tmp):
    f = write(tmp / "short.csv", cg_lines(12), CG_HEADER)
    return _import(f, tmp / "got"), []


def check_oi_cannot_tell(tmp, out, err):
    from liqlab.io.dataset import load_dataset

    note = load_dataset(tmp / "got").meta["notes"]["open_interest_alignment"]
    return note.startswith("NOT measured") and re.fullmatch(r"liqlab import: warning: \S+short\.csv: cannot tell "
                                                            r"whether oi_close is the OI at the bar's open.*", err.strip()) is not None


def case_oi_open(tmp):
    rng = np.random.default_rng(1)
    p = 60_000 * np.exp(np.cumsum(rng.normal(0, 1e-3, 401)))
    base = 90_000 + np.cumsum(rng.normal(0, 5, 401))
    lines = [f"{T0 + k * 5 * MIN},{p[k]:.4f},{max(p[k], p[k + 1]) * 1.0005:.4f},{min(p[k], p[k + 1]) * 0.9995:.4f},"
             f"{p[k + 1]:.4f},{base[k] * p[k]:.4f}" for k in range(400)]
    np.save(tmp / "truth.npy", base[:400])
    return _import(write(tmp / "oi.csv", lines, CG_HEADER), tmp / "got"), []


def check_oi_open(tmp, out, err):
    from liqlab.io.dataset import load_dataset

    oi = load_dataset(tmp / "got").open_interest
    return bool(np.allclose(oi["open_interest"], np.load(tmp / "truth.npy"), rtol=1e-9)) and err.strip() == ""


def case_cli(argv_fn, protect_fn=None):
    def setup(tmp):
        argv = argv_fn(tmp)
        return argv, (protect_fn(tmp) if protect_fn else [])
    return setup


def _data(tmp):
    return collection(tmp)


def heatmap_case(*extra: str):
    """Setup: ``liqlab heatmap DATA --out hm.npz EXTRA...`` on :func:`collection`."""
    return case_cli(lambda t: ["heatmap", str(_data(t)), "--out", str(t / "hm.npz"), *extra])


def _orphan(tmp):
    import shutil

    data = collection(tmp)
    shutil.copytree(data / "binanceusdm", data / "bybit")
    (data / "bybit" / "meta.json").unlink()
    return data


def _ro(tmp: Path) -> list[Path]:
    """The read-only output folder of a case (made before the digest, so its listing is compared)."""
    (tmp / "ro").mkdir(exist_ok=True)
    return [tmp / "ro"]


def _bad_utf8(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() + b"\xff\xfe caf\xe9\n")
    return path


def _report_config(tmp: Path, reports_dir: str = "reports") -> Path:
    cfg = tmp / "cfg" / "reports.yaml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(f"reports_dir: {reports_dir}\nreports:\n  s:\n    notebooks: [{REPO / 'notebooks' / '01_data.ipynb'}]\n")
    return cfg


def case_killed_report(tmp):
    cfg = _report_config(tmp, "../rep")
    run = tmp / "rep" / "s" / "20250101T000000Z"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"name": "s", "run": run.name, "status": "running", "pid": 2**22 + 7,
                                              "notebooks": [], "data": []}))
    return ["report", "--index-only", "--config", str(cfg)], [run]


def check_killed_report(tmp, out, err):
    """The index lands in the config's reports_dir (not ./reports) and shows the killed run as interrupted."""
    index = tmp / "rep" / "index.html"
    return index.exists() and "interrupted" in index.read_text() and not (tmp / "reports").exists()


def case_record_offline(tmp):
    # import ccxt.pro before the clock starts: a cold import can take longer than --duration on a loaded
    # machine, and the case is about the recorder's failing attempts, not about the import
    import ccxt.pro  # noqa: F401

    def run():
        from liqlab.app.cli import main

        t0 = time.monotonic()
        err = io.StringIO()
        with no_network(), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(["record", "--exchange", "binanceusdm", "--out", str(tmp / "rec"), "--duration", "1.5",
                       "--no-rest", "--backoff", "0.2"])
            gc.collect()  # an unclosed aiohttp session warns here
        took = time.monotonic() - t0
        text = err.getvalue()
        lines = [ln for ln in text.splitlines() if ln.startswith("liqlab record:")]
        if took > 1.5 + 10 or "Unclosed" in text:
            return 99, "", text  # past --duration, or a session left open
        return rc, "", "\n".join(lines)
    return run, []


def case_verdict_tie(tmp):
    def run():
        from liqlab.stats import validate as V

        b = {"r2_gain": {"gain": 0.1, "ci": [0.05, 0.15], "r2_base": 0.2, "r2_full": 0.28},
             "partial_spearman": {"estimate": 0.3, "ci": [0.2, 0.4]}}
        text = V.verdict({"long": b, "short": b}, False, {
            "heatmap": {s: {"spearman": 0.8501} for s in V.SIDES},
            "placebo_map": {s: {"spearman": 0.8504} for s in V.SIDES},
            "beyond_placebo": {s: {"estimate": 0.05, "ci": [0.01, 0.09]} for s in V.SIDES}})
        return 0, text, ""
    return run, []


def check_verdict_tie(tmp, out, err):
    return ("better than the heatmap (Spearman 0.8504 vs 0.8501); even so, given the placebo" in out
            and "R² +0.200 with the excursion alone, +0.280 with the heatmap" in out)


def case_r2_bounded(tmp):
    def run():
        from liqlab.stats import validate as V

        stats_tests = str(REPO / "tests" / "stats")  # the fixture lives beside the validation tests
        if stats_tests not in sys.path:
            sys.path.insert(0, stats_tests)
        from test_validate import r2_level_shift

        return 0, json.dumps(V.r2_gain(*r2_level_shift(), n_boot=300)), ""
    return run, []


def check_r2_bounded(tmp, out, err):
    g = json.loads(out)
    return (g["r2_base"] < 0 and g["gain"] <= 1 and g["ci"][1] <= 1
            and abs(g["gain"] - (g["r2_full"] - g["r2_base"]) / (1 - g["r2_base"])) < 1e-9)


def _memory_subprocess(tmp):
    return ["heatmap", str(collection(tmp)), "--out", str(tmp / "hm.npz"), "--time-step", "1s", "--no-progress"], []


CASES: list[Case] = [
    # 1. epoch units and bar spacing
    Case("epoch seconds merged into a 2024 ms dataset", "1 epoch unit", case_seconds_into_ms, check=check_seconds_into_ms),
    Case("epoch seconds (coinglass)", "1 epoch unit", case_accept_units(_seconds), check=check_same_as_ms),
    Case("epoch microseconds (coinglass)", "1 epoch unit", case_accept_units(_micro), check=check_same_as_ms),
    Case("epoch nanoseconds (coinglass)", "1 epoch unit", case_accept_units(lambda ms: str(ms * 1_000_000)),
         check=check_same_as_ms),
    Case("1m file name, bars 1 s apart", "1 epoch unit",
         refuse_import(lambda: kline_lines(0, 10, step=1000), KLINE_HEADER, "BTCUSDT-1m-2024-03-01.csv", "binance-vision"),
         r"BTCUSDT-1m-2024-03-01\.csv line 3: bar 1s after the previous one, but its name says 1m apart"),
    Case("epoch numbers in no unit", "1 epoch unit",
         refuse_import(lambda: [r.replace(str(T0), str(T0 // 100_000), 1) for r in cg_lines(3)]),
         r"bad\.csv line 2: column 'timestamp': '17092512' is not an epoch time in s, ms, µs or ns"),
    Case("seconds and microseconds in one file", "1 epoch unit",
         refuse_import(lambda: cg_lines(2, time=_seconds) + cg_lines(2, start=2, time=_micro)),
         r"bad\.csv line 4: column 'timestamp' is in microseconds but line 2 is in seconds"),
    Case("bars 60 ms apart", "1 epoch unit", refuse_import(lambda: cg_lines(10, step=60)),
         r"bad\.csv: bars 60ms apart is not a bar size"),
    # 2. dates
    Case("dd/mm datetime_utc", "2 dates",
         refuse_import(lambda: [r.replace(str(T0 + k * HOUR), pd.Timestamp(T0 + k * HOUR, unit='ms').strftime('%d/%m/%Y %H:%M'), 1)
                                for k, r in enumerate(cg_lines(3))], CG_HEADER.replace("timestamp", "datetime_utc")),
         r"bad\.csv line 2: column 'datetime_utc': '01/03/2024 00:00' is not an ISO 8601 time .*ambiguous"),
    Case("ISO 8601 with +02:00 / -05:30 / Z offsets", "2 dates", case_iso_offsets, check=check_same_as_ms),
    Case("timestamp and datetime_utc disagree", "2 dates",
         refuse_import(lambda: [f"{T0 + k * HOUR},{pd.Timestamp(T0 + (k + (k == 2)) * HOUR, unit='ms', tz='UTC').isoformat()},"
                                + r.split(',', 1)[1] for k, r in enumerate(cg_lines(4))],
                       CG_HEADER.replace("timestamp", "timestamp,datetime_utc")),
         r"bad\.csv line 4: timestamp is 2024-03-01T02:00:00\+00:00 but datetime_utc says"),
    # 3. open-interest instant
    Case("OI instant cannot be told (12 rows)", "3 OI instant", case_oi_cannot_tell, check=check_oi_cannot_tell),
    Case("OI at the bar open (measured)", "3 OI instant", case_oi_open, check=check_oi_open),
    # 4. mixed bar sizes
    Case("30m file ending in 5m rows", "4 mixed bars",
         refuse_import(lambda: cg_lines(20, step=30 * MIN) + cg_lines(6, step=5 * MIN, start=120)),
         r"bad\.csv line 23: bar 5m after the previous one, but most rows are 30m apart"),
    Case("5m file ending in 30m rows", "4 mixed bars",
         refuse_import(lambda: cg_lines(30, step=5 * MIN) + cg_lines(4, step=30 * MIN, start=6)),
         r"bad\.csv line 33: rows from here are 30m apart, but most rows are 5m apart \(mixed bar sizes\)"),
    # 5. memory
    Case("heatmap --time-step 1s, 8 GiB available", "5 memory",
         heatmap_case("--time-step", "1s"),
         r"the heatmap \(345,600 steps of time_step=1s x \d+ price bins of bin_width=10 bp x 8 leverage layers x 1 "
         r"venue\(s\)\) needs about [\d.]+ GiB, over the memory budget of 4\.0 GiB \(--max-memory",
         context=lambda t: available(8 * GIB)),
    Case("heatmap --max-memory 1M", "5 memory",
         heatmap_case("--max-memory", "1M"),
         r"the heatmap \(96 steps of time_step=1h .* over the memory budget of 976\.6 KiB"),
    Case("heatmap --max-memory lots", "5 memory",
         heatmap_case("--max-memory", "lots"),
         r"--max-memory: not a size like 4G, 512M or 1\.5GiB: 'lots'"),
    Case("fit --max-memory 2M", "5 memory",
         case_cli(lambda t: ["fit", str(_data(t)), "--out", str(t / "p.yaml"), "--max-memory", "2M", "--no-progress"]),
         r"fit holds up to 6 heatmaps at once .*the heatmap \(96 steps .* over the memory budget of 325\.5 KiB"),
    Case("heatmap 1s under a 3 GiB address-space limit (subprocess)", "5 memory", _memory_subprocess,
         r"time_step=1s .* over the memory budget of", subprocess=True, limit_as=3 * GIB, timeout=120),
    # 6. venue folder without meta.json
    Case("info: venue folder without meta.json", "6 venue w/o meta",
         case_cli(lambda t: ["info", str(_orphan(t))], lambda t: [t / "data"]),
         r"data/bybit/meta\.json: missing \(the folder holds dataset tables but has no meta\.json"),
    Case("heatmap: venue folder without meta.json", "6 venue w/o meta",
         case_cli(lambda t: ["heatmap", str(_orphan(t)), "--out", str(t / "hm.npz")], lambda t: [t / "data"]),
         r"data/bybit/meta\.json: missing"),
    # 7. one line, not a traceback
    Case("import into a read-only folder", "7 tracebacks",
         case_cli(lambda t: _import(write(t / "a.csv", cg_lines(24), CG_HEADER), t / "ro" / "ds"), _ro),
         r"ro/ds: cannot write \(Permission denied\)", context=lambda t: read_only(t / "ro")),
    Case("import into a dataset in a read-only folder", "7 tracebacks",
         case_cli(lambda t: _import(write(t / "b.csv", cg_lines(24, start=24), CG_HEADER),
                                    imported(t / "ro", "ds", cg_lines(24), CG_HEADER)), _ro),
         r"ro/ds: cannot write \(Permission denied\)", context=lambda t: read_only(t / "ro")),
    Case("heatmap --out in a read-only folder", "7 tracebacks",
         case_cli(lambda t: ["heatmap", str(_data(t)), "--out", str(t / "ro" / "hm.npz")], lambda t: _ro(t) + [t / "data"]),
         r"ro/hm\.npz: cannot write \(Permission denied\)", context=lambda t: read_only(t / "ro")),
    Case("validate --json in a read-only folder", "7 tracebacks",
         case_cli(lambda t: ["validate", str(_data(t)), "--json", str(t / "ro" / "v.json")], _ro),
         r"ro/v\.json: cannot write \(Permission denied\)", context=lambda t: read_only(t / "ro")),
    Case("report --reports-dir in a read-only folder", "7 tracebacks",
         case_cli(lambda t: ["report", "--config", str(_report_config(t)), "--reports-dir", str(t / "ro" / "r"),
                             "--no-progress"], _ro),
         r"ro/r.*Permission denied", context=lambda t: read_only(t / "ro")),
    Case("import --out naming a file", "7 tracebacks",
         case_cli(lambda t: _import(write(t / "c.csv", cg_lines(24), CG_HEADER), write(t / "notadir.txt", ["x"])),
                  lambda t: [t / "notadir.txt"]),
         r"notadir\.txt: is a file; give a folder"),
    Case("heatmap --out naming a folder", "7 tracebacks",
         case_cli(lambda t: (t / "x.npz").mkdir() or ["heatmap", str(_data(t)), "--out", str(t / "x.npz")]),
         r"x\.npz: is a folder; give a file name"),
    Case("heatmap --out below a file", "7 tracebacks",
         case_cli(lambda t: ["heatmap", str(_data(t)), "--out", str(write(t / "f.txt", ["x"]) / "hm.npz")],
                  lambda t: [t / "f.txt"]),
         r"f\.txt/hm\.npz: \S+f\.txt is a file, not a folder"),
    Case("validate --json naming a folder", "7 tracebacks",
         case_cli(lambda t: (t / "v.json").mkdir() or ["validate", str(_data(t)), "--json", str(t / "v.json")]),
         r"v\.json: is a folder; give a file name"),
    Case("report --reports-dir naming a file", "7 tracebacks",
         case_cli(lambda t: ["report", "--config", str(_report_config(t)), "--reports-dir", str(write(t / "r.txt", ["x"])),
                             "--no-progress"], lambda t: [t / "r.txt"]),
         r"r\.txt/s: \S+r\.txt is a file, not a folder"),
    Case("--params-file with non-UTF-8 bytes", "7 tracebacks",
         case_cli(lambda t: ["heatmap", str(_data(t)), "--out", str(t / "hm.npz"), "--params-file",
                             str(_bad_utf8(t / "p.yaml", "half_life_hours: 12\n"))]),
         r"params file \S+p\.yaml line 2: not UTF-8 text \(byte 20"),
    Case("report --config with non-UTF-8 bytes", "7 tracebacks",
         case_cli(lambda t: ["report", "--config", str(_bad_utf8(t / "c.yaml", "reports: {}\n"))]),
         r"--config \S+c\.yaml line 2: not UTF-8 text"),
    Case("report --parameters with non-UTF-8 bytes", "7 tracebacks",
         case_cli(lambda t: ["report", "--config", str(_report_config(t)), "--parameters",
                             str(_bad_utf8(t / "params.yaml", "n: 1\n"))]),
         r"--parameters \S+params\.yaml line 2: not UTF-8 text"),
    Case("validate --score-start yesterday", "7 tracebacks",
         case_cli(lambda t: ["validate", str(_data(t)), "--json", str(t / "v.json"), "--score-start", "yesterday"]),
         r"--score-start: not a UTC time like '2025-01-31' .*: 'yesterday'"),
    Case("heatmap --leverages -5,10", "7 tracebacks",
         heatmap_case("--leverages", "-5,10"),
         r"leverages: each leverage must be a number in \[1, 1000\], got -5\.0"),
    Case("info DATA with the reader gone (closed pipe, subprocess)", "7 tracebacks",
         case_cli(lambda t: ["info", str(_data(t))]), r"^$", code=141, subprocess=True),
    # 8. reports after a crash
    Case("report killed with -9, then --index-only --config", "8 reports", case_killed_report, check=check_killed_report),
    # 9. recorder with no network
    Case("record --duration 1.5 with no network", "9 record", case_record_offline,
         r"liqlab record: error: binanceusdm: markets for BTC/USDT:USDT not loaded within --duration 1\.5 s "
         r"\(last error: binanceusdm: \w+"),
    # 10. statistics that read wrong
    Case("verdict: placebo 0.8504 vs heatmap 0.8501", "10 statistics", case_verdict_tie, check=check_verdict_tie),
    Case("R² gain when the baseline R² < 0", "10 statistics", case_r2_bounded, check=check_r2_bounded),
    # 11. smaller ones
    Case("info: a 1e300 price", "11 smaller", case_cli(lambda t: ["info", str(damaged(t, "price"))], lambda t: [t / "data"]),
         r"ohlcv\.parquet: row 10 \(ts 2024-03-01T10:00:00\+00:00\): open 1e\+300 is beyond 1e\+09"),
    Case("info: a 1000x wick", "11 smaller", case_cli(lambda t: ["info", str(damaged(t, "wick"))], lambda t: [t / "data"]),
         r"ohlcv\.parquet: row 10 .*: high [\d.]+ is over 100x the low [\d.]+ in one bar"),
    Case("info: unknown exchange id", "11 smaller",
         case_cli(lambda t: ["info", str(damaged(t, "exchange"))], lambda t: [t / "data"]),
         r"meta\.json: unknown exchange 'binanceus'; known: binanceusdm"),
    Case("import an empty file", "11 smaller",
         refuse_import(lambda: [], None, "BTCUSDT-1m-2024-03-01.csv", "binance-vision"),
         r"BTCUSDT-1m-2024-03-01\.csv: empty file \(no rows\)"),
    Case("import a header-only file", "11 smaller", refuse_import(lambda: []),
         r"bad\.csv: only a header \(line 1\), no data rows"),
    Case("heatmap --bin-width 1e9 --bin-unit usd", "11 smaller",
         heatmap_case("--bin-width", "1e9", "--bin-unit", "usd"),
         r"bin_width: 1e\+09 USD is wider than 50% of the median price"),
    Case("heatmap --oi-proxy volume on data without traded volume", "11 smaller",
         case_cli(lambda t: ["heatmap", str(_data(t)), "--out", str(t / "hm.npz"), "--oi-proxy", "volume"],
                  lambda t: [t / "data"]),
         r"data/binanceusdm: volume: missing or non-positive in every bar; no open-interest proxy from traded volume"),
    Case("liqlab --version", "11 smaller", case_cli(lambda t: ["--version"]),
         check=lambda t, out, err: re.fullmatch(r"liqlab \d+\.\d+\.\d+", out.strip()) is not None),
    Case("magnet --help shows defaults", "11 smaller", case_cli(lambda t: ["magnet", "--help"]),
         check=lambda t, out, err: all(s in re.sub(r"\s+", " ", out) for s in ("(default 999)", "(default 1h)", "(default: 0.6)"))),
]


# ---------------------------------------------------------------------------------------- running


def _digest(paths: list[Path]) -> dict[str, str]:
    out = {}
    for p in paths:
        files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file()) if p.exists() else []
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
        if p.is_dir():
            out[str(p) + "/"] = ",".join(sorted(str(q.relative_to(p)) for q in p.rglob("*")))
    return out


class _Hung(BaseException):
    pass


def _alarm(signum, frame):
    raise _Hung()


def _in_process(argv, timeout: float) -> tuple[int | None, str, str, bool]:
    """(exit status, stdout, stderr, traceback?) of ``liqlab.app.cli.main(argv)`` (or of a callable)."""
    from liqlab.app.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    tb = False
    try:
        if callable(argv):
            rc, o, e = argv()
            out.write(o)
            err.write(e)
        else:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    rc = main(argv)
                except SystemExit as exc:  # argparse: --help, --version, usage errors
                    rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except _Hung:
        return None, out.getvalue(), err.getvalue(), False
    except Exception:  # noqa: BLE001 - what the tally counts
        err.write(traceback.format_exc())
        rc, tb = 1, True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return rc, out.getvalue(), err.getvalue(), tb


def _in_subprocess(argv, timeout: float, limit_as: int | None, close_stdout: bool) -> tuple[int | None, str, str]:
    def limits():
        if limit_as:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))

    proc = subprocess.Popen([sys.executable, "-m", "liqlab", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=limits, cwd=REPO)
    if close_stdout:  # the reader goes away before anything is written (`liqlab info DATA | head`)
        proc.stdout.close()
    try:
        _, err = proc.communicate(timeout=timeout) if not close_stdout else (None, proc.stderr.read())
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None, "", ""
    return proc.returncode, "", err.decode(errors="replace")


def run_case(case: Case, tmp: Path) -> tuple[str, str]:
    """(outcome, detail) of one case in its own folder ``tmp``."""
    cwd = os.getcwd()
    os.chdir(tmp)  # a command that wrongly falls back to ./reports writes here, not into the repository
    try:
        argv, protected = case.setup(tmp)
        before = _digest(protected)
        ctx = case.context(tmp) if case.context else contextlib.nullcontext()
        with ctx:
            if case.subprocess:
                rc, out, err = _in_subprocess(argv, case.timeout, case.limit_as, close_stdout=case.code == 141)
                tb = "Traceback" in err
            else:
                rc, out, err, tb = _in_process(argv, case.timeout)
        after = _digest(protected)
        right = case.check(tmp, out, err) if case.expect is None and rc == 0 and not tb else None
    except Exception:  # noqa: BLE001 - the setup or check hit a bug of the code under test
        return "traceback", traceback.format_exc().strip().splitlines()[-1]
    finally:
        os.chdir(cwd)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    if rc is None or (isinstance(rc, int) and rc < 0):
        return "killed or hung", f"exit {rc}"
    if tb or "Traceback" in err:
        return "traceback", err.strip().splitlines()[-1] if err.strip() else "traceback"
    if before != after:
        return "data changed", ", ".join(sorted(set(before) ^ set(after)) or [k for k in before if before[k] != after.get(k)])[:200]
    if case.expect is None:  # an accepted input
        if rc != 0:
            return "unclear", f"exit {rc}: {err.strip()[:200]}"
        return ("handled", "accepted, data right") if right else ("silent misread", out[:200] + err[:200])
    if rc == 0:
        return "silent misread", f"exit 0: {out.strip()[:200]}"
    one = len(lines) <= 1 and re.search(case.expect, lines[0] if lines else "") is not None
    if rc != case.code or not one:
        return "unclear", f"exit {rc}: {err.strip()[:300]}"
    return "handled", lines[0] if lines else f"exit {rc}, nothing on stderr"


OUTCOMES = ("handled", "traceback", "silent misread", "data changed", "killed or hung", "unclear")


def tally(root: Path, verbose: bool = True) -> tuple[Counter, list[tuple[Case, str, str]]]:
    counts: Counter = Counter()
    results = []
    for i, case in enumerate(CASES):
        tmp = root / f"case{i:02d}"
        tmp.mkdir(parents=True)
        outcome, detail = run_case(case, tmp)
        counts[outcome] += 1
        results.append((case, outcome, detail))
        if verbose:
            print(f"{outcome:>15}  [{case.klass}] {case.name}: {detail[:160]}")
    return counts, results


def format_tally(counts: Counter) -> str:
    return (f"inputs tried {sum(counts.values())}, handled cleanly {counts['handled']}, tracebacks "
            f"{counts['traceback']}, silent misreads {counts['silent misread']}, data changed {counts['data changed']}, "
            f"killed or hung {counts['killed or hung']}, unclear {counts['unclear']}")


def test_tally(tmp_path):
    counts, results = tally(tmp_path)
    print(format_tally(counts))
    bad = [(c.name, o, d) for c, o, d in results if o != "handled"]
    assert bad == [], bad
    assert {c.klass.split()[0] for c in CASES} == {str(k) for k in range(1, 12)}  # every class has cases


if __name__ == "__main__":  # python tests/app/test_bad_inputs.py
    with tempfile.TemporaryDirectory() as d:
        c, _ = tally(Path(d))
        print(format_tally(c))
        sys.exit(0 if c["handled"] == sum(c.values()) else 1)
