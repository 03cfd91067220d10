"""The live map's data side: load the recorder's dataset, append to the map, status, alerts, refresh interval.

Times UTC; prices and notionals USD; the map time × price (see :mod:`liqlab.engine.extend`).
"""

from __future__ import annotations

import html
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FeedOptions", "LiveFeed", "realized_vol"]

#: One-minute bars per year: annualises the realized volatility of 1m returns.
MINUTES_PER_YEAR = 525_600


@dataclass(frozen=True)
class FeedOptions:
    """How the live map refreshes and alerts.

    ``interval`` seconds between refreshes, ``fast_interval`` while the realized volatility of the last
    ``vol_minutes`` one-minute closes (annualised, fraction) exceeds ``vol_threshold``; alerts are clusters
    of at least ``alert_usd`` USD within ``alert_pct`` % of the price; ``params`` the engine's parameters.
    """

    interval: float = 60.0
    fast_interval: float = 15.0
    vol_threshold: float = 1.0
    vol_minutes: int = 15
    alert_pct: float = 2.0
    alert_usd: float = 0.0
    params: Any = None


def realized_vol(close: np.ndarray, minutes: int) -> float:
    """Annualised realized volatility of the last ``minutes`` one-minute log returns.

    Parameters
    ----------
    close : numpy.ndarray
        (n,) one-minute closes (USD).
    minutes : int
        Returns used.

    Returns
    -------
    float
        sqrt(mean r² · MINUTES_PER_YEAR) (fraction per year); NaN with fewer than two closes.
    """
    c = np.asarray(close, dtype=np.float64)[-(minutes + 1):]
    if len(c) < 2:
        return math.nan
    r = np.diff(np.log(c))
    return float(np.sqrt(np.mean(r * r) * MINUTES_PER_YEAR))


class LiveFeed:
    """The map of the dataset at ``path``, appended to as the recorder writes (shared by every session).

    ``hm`` is None until the dataset holds enough to build a map; ``generation`` counts the maps shown.
    """

    def __init__(self, path: str | Path, options: FeedOptions):
        self.path = Path(path)
        self.options = options
        self.hm = None
        self.data = None
        self.generation = 0
        self.error = ""
        self.last_refresh = -math.inf
        self.lock = threading.Lock()

    def refresh_if_due(self) -> None:
        """Refresh when the interval has passed since the last refresh (one refresh for all sessions)."""
        with self.lock:
            if time.monotonic() - self.last_refresh >= 0.9 * self.interval():
                self.refresh()

    def refresh(self) -> None:
        """Load the dataset and build the map (first time) or append what arrived since."""
        from liqlab.engine.heatmap import build_heatmap
        from liqlab._util import one_line
        from liqlab.errors import LiqlabError
        from liqlab.io.dataset import load

        self.last_refresh = time.monotonic()
        try:
            data = load(self.path)
            if self.hm is None:
                hm = build_heatmap(data, self.options.params, progress=False, extendable=True)
            else:
                hm = self.hm.extend(data)
        except LiqlabError as exc:
            self.error = str(exc)
            self.hm = None   # a failed append (say, a new venue): the next refresh builds the map afresh
            return
        except Exception as exc:   # a half-written part file, a reader error: shown, retried next refresh
            self.error = one_line(exc)
            return
        self.error = ""
        changed = self.hm is None or len(hm.times) != len(self.hm.times) or hm.live.info["steps_recomputed"] > 0
        self.hm, self.data = hm, data
        if changed:
            self.generation += 1

    def interval(self) -> float:
        """Seconds until the next refresh: ``fast_interval`` while the recent volatility is high."""
        v = self.volatility()
        o = self.options
        return o.fast_interval if (math.isfinite(v) and v > o.vol_threshold) else o.interval

    def volatility(self) -> float:
        """Realized volatility of the last ``vol_minutes`` minutes, mean over venues (annualised fraction)."""
        if self.data is None:
            return math.nan
        vols = [realized_vol(ds.ohlcv["close"].to_numpy(), self.options.vol_minutes) for ds in self.data]
        vols = [v for v in vols if math.isfinite(v)]
        return float(np.mean(vols)) if vols else math.nan

    def status_html(self) -> str:
        """One line: the data's last bar and its age, the recorder's gaps, the refresh interval, errors."""
        import pandas as pd

        if self.data is None:
            msg = html.escape(self.error) if self.error else "waiting for data"
            return f"<b>live map</b> · {self.path} · {msg}"
        last = max(ds.ohlcv["ts"].iloc[-1] for ds in self.data if len(ds.ohlcv))
        age = (pd.Timestamp.now(tz="UTC") - last).total_seconds()
        parts = [f"<b>live map</b> · data to {last:%Y-%m-%d %H:%M} UTC (age {_age(age)})",
                 f"map to {pd.Timestamp(self.hm.times[-1], tz='UTC'):%Y-%m-%d %H:%M} UTC",
                 self._gaps(), f"refresh every {self.interval():g} s (15-min vol {self.volatility():.0%}/yr)"]
        if self.hm.synthetic:
            parts.insert(0, "<b>SYNTHETIC data</b>")
        if self.error:
            parts.append(f"last refresh failed: {html.escape(self.error)}")
        return " · ".join(parts)

    def _gaps(self) -> str:
        """The recorder's gaps (``meta['recording']['gaps']``) and the bar tables' gaps (io.coverage)."""
        from liqlab.io.coverage import coverage

        cov = coverage(self.data)
        bar_gaps = cov[cov["table"] == "ohlcv"]
        n_bar = int(bar_gaps["gaps"].fillna(0).sum())
        rec = [g for ds in self.data for g in (ds.meta.get("recording") or {}).get("gaps", [])]
        open_gap = [g for g in rec if g.get("end") is None]
        text = f"gaps: {len(rec)} in the recording, {n_bar} in the bars"
        return text + (" · <b>a venue is disconnected</b>" if open_gap else "")

    def alerts_html(self) -> str:
        """The clusters within ``alert_pct`` % of the price at the last snapshot (engine.levels.alerts)."""
        from liqlab.engine.levels import alerts

        if self.hm is None:
            return ""
        o = self.options
        df = alerts(self.hm, within_pct=o.alert_pct, min_usd=o.alert_usd)
        head = f"<b>alerts</b>: clusters ≥ {o.alert_usd:,.0f} USD within {o.alert_pct:g} % of the price"
        if df.empty:
            return head + ": none"
        rows = "".join(f"<tr><td>{r.side}</td><td>{r.price:,.1f}</td><td>{r.distance_pct:+.2f} %</td>"
                       f"<td>{r.notional_usd:,.0f}</td><td>{r.venues}</td></tr>" for r in df.head(10).itertuples())
        return (head + f" ({len(df)})<table class='liqlab-alerts'><tr><th>side</th><th>price</th><th>distance</th>"
                f"<th>USD</th><th>venues</th></tr>{rows}</table>")


def _age(seconds: float) -> str:
    """Seconds as text: 42 s, 7 min, 3.2 h, 12 d."""
    s = abs(seconds)
    if s < 120:
        return f"{seconds:.0f} s"
    if s < 7200:
        return f"{seconds / 60:.0f} min"
    if s < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} d"
