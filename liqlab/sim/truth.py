"""The simulator's ground truth: read ``truth/`` and compute the true liquidation heatmap.

``truth/`` (written by :mod:`liqlab.sim.simulation`):

- ``ledger.parquet``: one row per position outstanding at or after the start: position_id, venue,
  side, notional_usd (USD at entry), amount (base), leverage (after the tier cap), leverage_drawn, tier,
  entry_time, entry_price, liq_price_initial, lp_funding_coef, funding_index_entry, planned_end_time,
  end_time (NaT = still open), status ('closed'|'liquidated'|'open'), liq_price_end.
- ``events.parquet``: realized liquidations: ts, venue, side, price (USD), amount (base), value (USD),
  position_id (also each venue dataset's ``liquidations.parquet``).
- ``funding_index.parquet``: ts, venue, funding_rate, mark_price, index (cumulative Σ rate·mark, USD per
  base unit, after the payment at ts).
- ``bars.parquet``: ts, venue, mark_high, mark_low, mark_close, long/short_open_usd, long/short_open_base
  (state after each bar).
- ``index.parquet``: ts, latent_close (exogenous path), index_close, impact (log), sigma (1m sd).
- ``config.json``: every simulation parameter, the true leverage mix (``leverages``,
  ``leverage_weights``), tier tables used, conventions.

Times are UTC; bars and events are labelled by the bar's open time. A position is outstanding at the
instant τ iff ``entry_time < τ <= end_time``; its liquidation price then is
``liq_price_initial + lp_funding_coef·(index_venue(τ) − funding_index_entry)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from liqlab._util import to_ns
from liqlab.errors import DataError, ParameterError
from liqlab.io.dataset import read_json

__all__ = ["Truth", "load_truth", "true_heatmap", "outstanding_notional", "liq_price_at"]

TRUTH_TABLES = ("ledger", "events", "funding_index", "bars", "index")


@dataclass(frozen=True, eq=False)
class Truth:
    """The simulator's truth (DataFrames as described in the module docstring)."""

    ledger: Any  # pd.DataFrame
    events: Any
    funding_index: Any
    leverage_mix: dict  # {'leverages': [...], 'leverage_weights': [...]} (true mix by count)
    config: dict  # truth/config.json
    bars: Any = None
    index: Any = None
    path: Path | None = None

    @property
    def venues(self) -> tuple[str, ...]:
        """The simulated venues (the config's order; else the ledger's, sorted)."""
        return tuple(self.config.get("config", {}).get("venues", sorted(set(self.ledger["venue"]))))


def load_truth(path: str | os.PathLike) -> Truth:
    """Read a simulation's truth.

    Parameters
    ----------
    path : str or os.PathLike
        The ``truth/`` folder, or the collection folder holding it.

    Returns
    -------
    Truth
        The tables of the module docstring (``bars`` and ``index`` None when an older simulation lacks them).

    Raises
    ------
    DataError
        No ``config.json``, a missing or unreadable required table, or a ledger without its columns.
    """
    import pyarrow.parquet as pq

    p = Path(path)
    if (p / "truth" / "config.json").exists():
        p = p / "truth"
    cfg_file = p / "config.json"
    if not cfg_file.exists():
        raise DataError(f"{p}: not a simulation truth folder (no config.json)")
    cfg = read_json(cfg_file)
    tables: dict[str, Any] = {}
    for name in TRUTH_TABLES:
        f = p / f"{name}.parquet"
        if not f.exists():
            if name in ("bars", "index"):
                tables[name] = None
                continue
            raise DataError(f"{f}: missing (required truth table)")
        try:
            tables[name] = pq.read_table(f).to_pandas()
        except Exception as exc:  # noqa: BLE001 - any reader failure is bad input
            raise DataError(f"{f}: cannot read parquet ({str(exc).splitlines()[0] if str(exc) else exc!r})") from None
    led = tables["ledger"]
    need = ("venue", "side", "notional_usd", "entry_time", "end_time", "liq_price_initial", "lp_funding_coef",
            "funding_index_entry")
    missing = [c for c in need if c not in led.columns]
    if missing:
        raise DataError(f"{p / 'ledger.parquet'}: missing column(s) {missing}")
    mix = {"leverages": cfg.get("leverages", []), "leverage_weights": cfg.get("leverage_weights", [])}
    return Truth(ledger=led, events=tables["events"], funding_index=tables["funding_index"], leverage_mix=mix,
                 config=cfg, bars=tables["bars"], index=tables["index"], path=p)


# ------------------------------------------------------------------------------------------ helpers


def _col_ns(s) -> np.ndarray:
    """A datetime column → int64 ns, NaT → int64 max (never ends)."""
    import pandas as pd

    idx = pd.DatetimeIndex(s)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    v = idx.as_unit("ns").asi8.copy()
    v[idx.isna()] = np.iinfo(np.int64).max
    return v


def _funding_steps(truth: Truth, venue: str) -> tuple[np.ndarray, np.ndarray]:
    """(funding times ns, index after each) of one venue, sorted."""
    f = truth.funding_index
    sel = f.loc[f["venue"] == venue]
    t = _col_ns(sel["ts"])
    order = np.argsort(t, kind="stable")
    return t[order], sel["index"].to_numpy(dtype=np.float64)[order]


def liq_price_at(truth: Truth, when) -> np.ndarray:
    """Every ledger position's liquidation price at one instant.

    Parameters
    ----------
    truth : Truth
    when : time
        The instant (UTC; ISO text, Timestamp, datetime64).

    Returns
    -------
    np.ndarray
        (ledger rows,) liquidation price (USD) after the funding paid up to ``when``; NaN for positions
        not outstanding then (``entry_time < when <= end_time``).
    """
    tau = int(to_ns(when)[0])
    led = truth.ledger
    out = np.full(len(led), np.nan)
    entry = _col_ns(led["entry_time"])
    end = _col_ns(led["end_time"])
    vcode, vnames = _factorize(led["venue"])
    for code, v in enumerate(vnames):
        ft, fi = _funding_steps(truth, v)
        k = np.searchsorted(ft, tau, side="right")
        idx = fi[k - 1] if k > 0 else 0.0
        m = (vcode == code) & (entry < tau) & (tau <= end)
        out[m] = (led["liq_price_initial"].to_numpy()[m]
                  + led["lp_funding_coef"].to_numpy()[m] * (idx - led["funding_index_entry"].to_numpy()[m]))
    return out


def outstanding_notional(truth: Truth, times, venues: Iterable[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """USD notional outstanding at each instant, straight from the ledger.

    Parameters
    ----------
    truth : Truth
    times : sequence of times
        (T,) instants (UTC).
    venues : iterable of str or str, optional
        Only these venues (default all).

    Returns
    -------
    (np.ndarray, np.ndarray)
        (long, short), each (T,) float64: notional at entry (USD) of positions with
        ``entry_time < τ <= end_time``.
    """
    tt = to_ns(times)
    led = _select(truth, venues)
    entry = _col_ns(led["entry_time"])
    end = _col_ns(led["end_time"])
    long_ = (led["side"] == "long").to_numpy(dtype=bool)
    n = led["notional_usd"].to_numpy(dtype=np.float64)
    out = []
    for side in (long_, ~long_):
        e, x, w = entry[side], end[side], n[side]
        oe = np.argsort(e, kind="stable")
        ox = np.argsort(x, kind="stable")
        ce = np.r_[0.0, np.cumsum(w[oe])]
        cx = np.r_[0.0, np.cumsum(w[ox])]
        # opened before tau minus ended before tau
        out.append(ce[np.searchsorted(e[oe], tt, side="left")] - cx[np.searchsorted(x[ox], tt, side="left")])
    return out[0], out[1]


def _factorize(col) -> tuple[np.ndarray, list[str]]:
    import pandas as pd

    codes, names = pd.factorize(col, sort=True)
    return np.asarray(codes), [str(x) for x in names]


def _select(truth: Truth, venues: Iterable[str] | None):
    led = truth.ledger
    if venues is None:
        return led
    venues = [venues] if isinstance(venues, str) else list(venues)
    have = set(led["venue"].unique()) | set(truth.venues)
    unknown = [v for v in venues if v not in have]
    if unknown:
        raise ParameterError(f"venues: unknown venue(s) {unknown}; truth has {sorted(have)}")
    return led.loc[led["venue"].isin(venues)]


# ------------------------------------------------------------------------------------- the true map


def true_heatmap(truth: Truth, times, edges, venues: Iterable[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """True outstanding liquidation notional (USD at entry) per price bin at each instant.

    Each position outstanding at τ (entry_time < τ <= end_time) adds its notional to the bin holding its
    liquidation price at τ (which moves at each funding payment); prices outside the edges are dropped.

    Vectorised: each position's life is cut into funding epochs (constant LP); each piece adds +N at its
    first snapshot and −N after its last in a (T+1)·B difference grid (bincount), then a cumsum over T.

    Parameters
    ----------
    truth : Truth
    times : sequence of times
        (T,) instants (UTC), sorted ascending.
    edges : array_like
        (B+1,) strictly increasing price bin edges (USD).
    venues : iterable of str or str, optional
        Only these venues (default all).

    Returns
    -------
    (np.ndarray, np.ndarray)
        (long, short), each (T, B) float64, time x price, USD: long = liquidations of long positions
        (below price).

    Raises
    ------
    ParameterError
        Unsorted times, bad edges or an unknown venue.
    """
    tt, e = _grid(times, edges)
    T, B = len(tt), len(e) - 1
    led = _select(truth, venues)
    out_long = np.zeros((T + 1) * B)
    out_short = np.zeros((T + 1) * B)
    if len(led) and T:
        entry = _col_ns(led["entry_time"])
        end = _col_ns(led["end_time"])
        lp0 = led["liq_price_initial"].to_numpy(dtype=np.float64)
        coef = led["lp_funding_coef"].to_numpy(dtype=np.float64)
        c0 = led["funding_index_entry"].to_numpy(dtype=np.float64)
        n = led["notional_usd"].to_numpy(dtype=np.float64)
        is_long = (led["side"] == "long").to_numpy(dtype=bool)
        vcode, vnames = _factorize(led["venue"])
        # snapshot index range of each position: tau_j with entry < tau_j <= end
        j_lo = np.searchsorted(tt, entry, side="right")
        j_hi = np.searchsorted(tt, end, side="right")
        for code, v in enumerate(vnames):
            m = np.flatnonzero((vcode == code) & (j_hi > j_lo))
            if not len(m):
                continue
            rep, index, a, b = _epochs(tt, *_funding_steps(truth, str(v)), j_lo, j_hi, m)
            lp = lp0[rep] + coef[rep] * (index - c0[rep])
            bins = np.searchsorted(e, lp, side="right") - 1
            inb = (bins >= 0) & (bins < B)
            rep, a, b, bins = rep[inb], a[inb], b[inb], bins[inb]
            w = n[rep]
            lg = is_long[rep]
            for out, sel in ((out_long, lg), (out_short, ~lg)):
                idx = np.r_[a[sel] * B + bins[sel], b[sel] * B + bins[sel]]
                val = np.r_[w[sel], -w[sel]]
                out += np.bincount(idx, weights=val, minlength=(T + 1) * B)
    long_ = np.cumsum(out_long.reshape(T + 1, B), axis=0)[:T]
    short = np.cumsum(out_short.reshape(T + 1, B), axis=0)[:T]
    # float rounding of the running sums: clip tiny negatives
    np.maximum(long_, 0.0, out=long_)
    np.maximum(short, 0.0, out=short)
    return long_, short


def _grid(times, edges) -> tuple[np.ndarray, np.ndarray]:
    """Checked snapshot times (int64 ns, sorted) and price edges (float64, strictly increasing, USD)."""
    tt = to_ns(times)
    if len(tt) > 1 and np.any(np.diff(tt) < 0):
        raise ParameterError("times: must be sorted ascending")
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or len(e) < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
        raise ParameterError("edges: need >= 2 finite, strictly increasing price edges (USD)")
    return tt, e


def _epochs(tt: np.ndarray, ft: np.ndarray, fi: np.ndarray, j_lo: np.ndarray, j_hi: np.ndarray,
            m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut positions ``m``'s snapshot ranges ``[j_lo, j_hi)`` at the venue's funding times ``ft``.

    Returns one row per non-empty piece: (position, funding index during the piece, first snapshot,
    end snapshot), so the liquidation price is constant on each piece.
    """
    T = len(tt)
    # epoch boundaries in snapshot indices: epoch k covers snapshots [sb[k], sb[k+1])
    # with index value ix[k] (k = 0: before the first funding, index 0)
    sb = np.r_[0, np.searchsorted(tt, ft, side="left"), T]
    ix = np.r_[0.0, fi]
    # the epoch of a snapshot index j is the last k with sb[k] <= j
    k_lo = np.searchsorted(sb, j_lo[m], side="right") - 1
    k_hi = np.searchsorted(sb, j_hi[m] - 1, side="right") - 1
    cnt = k_hi - k_lo + 1
    rep = np.repeat(m, cnt)
    k = np.repeat(k_lo - np.cumsum(np.r_[0, cnt[:-1]]), cnt) + np.arange(cnt.sum())
    a = np.maximum(sb[k], j_lo[rep])
    b = np.minimum(sb[k + 1], j_hi[rep])
    ok = b > a
    return rep[ok], ix[k[ok]], a[ok], b[ok]


def summary(truth: Truth) -> dict[str, Any]:
    """Small tables describing the truth: outcomes per venue, the leverage mix, realized liquidations.

    Positions opened during the simulator's warm-up (before the first bar of the data) are included:
    they are part of the open interest at the start.

    Parameters
    ----------
    truth : Truth

    Returns
    -------
    dict of str to pd.DataFrame
        'outcomes by venue', 'leverage mix', 'realized liquidations'; notional in USD.
    """
    import pandas as pd

    led = truth.ledger
    outcomes = (
        led.groupby(["venue", "status"])["notional_usd"].agg(positions="size", notional_usd="sum")
        .unstack("status").fillna(0)
    )
    outcomes.columns = [f"{a}_{b}" for a, b in outcomes.columns]
    by_lev = led.groupby("leverage_drawn").agg(
        positions=("notional_usd", "size"),
        notional_usd=("notional_usd", "sum"),
        liquidated_share=("status", lambda s: float((s == "liquidated").mean())),
    )
    mix = truth.leverage_mix
    true_w = pd.Series(mix.get("leverage_weights", []), index=mix.get("leverages", []), dtype=float)
    by_lev["true_weight_new_notional"] = true_w.reindex(by_lev.index)
    ev = truth.events
    realized = ev.groupby(["venue", "side"])["value"].agg(events="size", value_usd="sum").unstack("side").fillna(0)
    realized.columns = [f"{a}_{b}" for a, b in realized.columns]
    return {"outcomes by venue": outcomes, "leverage mix": by_lev, "realized liquidations": realized}
