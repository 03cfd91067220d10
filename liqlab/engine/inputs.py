"""The step inputs: what the fine pass hands to the step recursion (docs/DESIGN.md, "Step inputs").

:class:`VenueSteps` holds one venue's per-step inputs on the shared grid (fresh deposits per leverage
layer as a CSR by step, clearing thresholds, OI factors, removals, funding shifts); :class:`StepInputs`
holds every built venue's, with the grid. ``Heatmap.with_params``, ``Heatmap.load`` and the browser
explorer re-run the recursion from these alone. (They are the engine's inputs, not a websocket
playback: that is :func:`liqlab.io.record.load_replay`.)

Shapes: T output steps, B price bins, K leverage layers; values USD notional.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from liqlab.errors import ParameterError

__all__ = ["VenueSteps", "StepInputs", "CSR_NAMES", "empty_csr"]

#: Names of the four arrays of a step CSR, in order: row pointers by step, layer, bin, value (USD).
CSR_NAMES = ("ptr", "k", "b", "v")


def empty_csr(n_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A step CSR without entries.

    Parameters
    ----------
    n_steps : int
        T, the number of steps.

    Returns
    -------
    tuple of numpy.ndarray
        (ptr int64 (T+1,) zeros, k int32 (0,), b int32 (0,), v float64 (0,)).
    """
    return (np.zeros(n_steps + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float64))


@dataclass(frozen=True, eq=False)
class VenueSteps:
    """One venue's step inputs (T steps, B bins, K layers); see docs/DESIGN.md "Step inputs".

    fresh_long/fresh_short: CSR by step (ptr int64 (T+1,), k int32, b int32, v float64 USD unweighted).
    lo/hi int32 (T,): clearing thresholds; g float64 (T,): OI factor product; rm_long/rm_short float64
    (T,): USD removed by highest_leverage; shift int32 (T,): funding shift in bins; volume_usd (T,)
    traded USD; close (T,) last close in the step (NaN if no bar); dropped_long/short (K,) USD
    deposited off the grid (unweighted per layer); info: counts and the margin model used; oi_usd (T,)
    open interest in USD at the end of each step (the last observation, NaN before the first one or
    after a gap longer than ``oi_max_gap_hours``; None in files written before it was kept).
    """

    venue: str
    fresh_long: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    fresh_short: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    lo: np.ndarray
    hi: np.ndarray
    g: np.ndarray
    rm_long: np.ndarray
    rm_short: np.ndarray
    shift: np.ndarray
    volume_usd: np.ndarray
    close: np.ndarray
    n_bins: int
    step_hours: float
    leverages: np.ndarray
    dropped_long: np.ndarray
    dropped_short: np.ndarray
    info: dict = field(default_factory=dict)
    oi_usd: np.ndarray | None = None

    @property
    def n_steps(self) -> int:
        """T, the number of steps."""
        return int(self.g.shape[0])

    def truncated(self, n_steps: int, value_scale: np.ndarray | None = None) -> "VenueSteps":
        """The first steps only.

        Parameters
        ----------
        n_steps : int
            Steps to keep (from the first).
        value_scale : numpy.ndarray, optional
            (n_steps,) factor multiplying each step's fresh values (USD).

        Returns
        -------
        VenueSteps
            The same venue with (n_steps,) arrays.
        """
        def csr(c):
            ptr, k, b, v = c
            ptr2 = ptr[: n_steps + 1]
            e = int(ptr2[-1])
            v2 = v[:e]
            if value_scale is not None:
                steps = np.repeat(np.arange(n_steps), np.diff(ptr2))
                v2 = v2 * value_scale[steps]
            return (ptr2, k[:e], b[:e], v2)

        sl = slice(0, n_steps)
        return dataclasses.replace(
            self, fresh_long=csr(self.fresh_long), fresh_short=csr(self.fresh_short), lo=self.lo[sl],
            hi=self.hi[sl], g=self.g[sl], rm_long=self.rm_long[sl], rm_short=self.rm_short[sl],
            shift=self.shift[sl], volume_usd=self.volume_usd[sl], close=self.close[sl],
            oi_usd=None if self.oi_usd is None else self.oi_usd[sl])


@dataclass(frozen=True, eq=False)
class StepInputs:
    """Step inputs of every built venue, on one shared time and price grid.

    ``times`` (T,) datetime64[ns] UTC, the end of each step; ``edges`` (B+1,) bin edges (USD);
    ``leverages`` (K,); ``venues`` one :class:`VenueSteps` per built venue.
    """

    venues: tuple[VenueSteps, ...]
    leverages: np.ndarray
    step_hours: float
    n_bins: int
    times: np.ndarray
    edges: np.ndarray

    def venue(self, name: str) -> VenueSteps:
        """One venue's step inputs.

        Parameters
        ----------
        name : str
            The venue's ccxt id.

        Returns
        -------
        VenueSteps
            Raises ``ParameterError`` (naming ``venues``) when the venue was not built.
        """
        for v in self.venues:
            if v.venue == name:
                return v
        raise ParameterError(f"venues: {name!r} not in this heatmap's replay; have {[v.venue for v in self.venues]}")

    @property
    def venue_names(self) -> tuple[str, ...]:
        """The built venues, in build order."""
        return tuple(v.venue for v in self.venues)
