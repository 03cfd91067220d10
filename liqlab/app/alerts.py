"""Alerts as records: what ``liqlab alert`` prints, what ``--exec`` receives, what a report's banner shows.

One record per cluster of :func:`liqlab.engine.levels.alerts` (at least ``min_usd`` USD within
``within_pct`` % of the latest price). A record is a flat dict of strict JSON values: time (ISO UTC, the
snapshot), symbol, synthetic, side, price (USD), distance_pct (%), notional_usd (USD), age_hours,
venues (int agreeing) and venue_names.

``--exec CMD`` runs CMD once per record (no shell: CMD is split like a shell command line; use
``sh -c '...'`` for pipes), with the record as one JSON line on its stdin and as environment variables
``LIQLAB_ALERT_<FIELD>`` (upper case: ``LIQLAB_ALERT_SIDE``, ``LIQLAB_ALERT_PRICE``, ...) plus
``LIQLAB_ALERT_JSON`` holding the whole line.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence

from liqlab._util import jsonable
from liqlab.errors import ParameterError

__all__ = ["ALERT_FIELDS", "DEFAULT_WITHIN_PCT", "DEFAULT_MIN_USD", "alert_records", "alert_env", "exec_argv",
           "run_exec"]

#: The fields of an alert record, in output order.
ALERT_FIELDS: tuple[str, ...] = ("time", "symbol", "synthetic", "side", "price", "distance_pct", "notional_usd",
                                 "age_hours", "venues", "venue_names")

#: Defaults of a report's alert banner: clusters of at least 10 M USD within 2 % of the latest price.
DEFAULT_WITHIN_PCT: float = 2.0
DEFAULT_MIN_USD: float = 1e7


def alert_records(hm, *, within_pct: float, min_usd: float) -> list[dict]:
    """The alerts of a map's latest snapshot as records (largest first).

    Parameters
    ----------
    hm : Heatmap
        A USD map (T × B, time × price).
    within_pct : float
        Largest distance from the latest reference price (%, > 0).
    min_usd : float
        Smallest cluster (USD, ≥ 0).

    Returns
    -------
    list of dict
        One record per alert with the fields of :data:`ALERT_FIELDS` (strict JSON values).

    Raises
    ------
    ParameterError
        A relative map (its values are not USD), or a bad threshold.
    """
    from liqlab.engine.levels import alerts

    if "relative_window" in (hm.meta or {}):
        raise ParameterError("alerts: need a USD heatmap, not a relative one (min_usd is in USD)")
    rows = alerts(hm, within_pct=within_pct, min_usd=min_usd)
    symbol = str(hm.meta.get("symbol", ""))
    out = []
    for r in rows.to_dict(orient="records"):
        rec = {"symbol": symbol, "synthetic": bool(hm.synthetic), **r}
        out.append(jsonable({k: rec[k] for k in ALERT_FIELDS}))
    return out


def alert_env(record: Mapping) -> dict[str, str]:
    """The environment variables ``--exec`` adds for one alert.

    Parameters
    ----------
    record : mapping
        An alert record.

    Returns
    -------
    dict
        ``LIQLAB_ALERT_<FIELD>`` → text of each field (empty for null; true/false for booleans), and
        ``LIQLAB_ALERT_JSON`` → the record as one JSON line.
    """
    env = {}
    for k, v in record.items():
        text = "" if v is None else (("true" if v else "false") if isinstance(v, bool) else str(v))
        env[f"LIQLAB_ALERT_{k.upper()}"] = text
    env["LIQLAB_ALERT_JSON"] = json.dumps(record, allow_nan=False)
    return env


def exec_argv(cmd: str) -> list[str]:
    """The argument vector of ``--exec CMD``, checked before any alert is sent.

    Parameters
    ----------
    cmd : str
        A command line (split like a shell would, without running a shell).

    Returns
    -------
    list of str
        The program (found on PATH or as a path) and its arguments.

    Raises
    ------
    ParameterError
        Empty or unbalanced quoting, or the program is not found / not executable.
    """
    try:
        argv = shlex.split(cmd)
    except ValueError as exc:
        raise ParameterError(f"--exec: cannot split {cmd!r} ({exc})") from None
    if not argv:
        raise ParameterError("--exec: empty command")
    if shutil.which(argv[0]) is None:
        raise ParameterError(f"--exec: {argv[0]}: not found or not executable")
    return argv


def run_exec(argv: Sequence[str], records: Sequence[Mapping], *, timeout: float = 60.0) -> list[str]:
    """Run a command once per alert, the record on stdin (one JSON line) and in the environment.

    Parameters
    ----------
    argv : sequence of str
        From :func:`exec_argv`.
    records : sequence of mapping
        The alert records.
    timeout : float
        Seconds each run may take.

    Returns
    -------
    list of str
        One line per failed run (non-zero exit, timeout); empty when all succeeded.
    """
    problems = []
    for i, rec in enumerate(records):
        env = {**os.environ, **alert_env(rec)}
        line = json.dumps(rec, allow_nan=False) + "\n"
        try:
            res = subprocess.run(list(argv), input=line, text=True, env=env, timeout=timeout,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        except subprocess.TimeoutExpired:
            problems.append(f"--exec: alert {i + 1}: {argv[0]} did not finish within {timeout:g} s")
            continue
        except OSError as exc:   # not executable, a bad interpreter line: reported, the other alerts still run
            problems.append(f"--exec: alert {i + 1}: {argv[0]}: {exc.strerror or exc}")
            continue
        if res.returncode != 0:
            err = " ".join((res.stderr or "").split())[:200]
            problems.append(f"--exec: alert {i + 1}: {argv[0]} exited {res.returncode}" + (f" ({err})" if err else ""))
    return problems
