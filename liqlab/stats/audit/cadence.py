"""Claim 8: vendors refresh their heatmaps every 60 s (every 15 s in high volatility).

Not testable from public data: a vendor's refresh cadence is a property of its servers, visible only in
timestamped snapshots of its own map, which are not published; liqlab builds its own map from public
inputs (open interest every 5 minutes at best), so its cadence says nothing about a vendor's.
"""

from __future__ import annotations

__all__ = ["CLAIM", "HYPOTHESIS", "STATISTIC", "WHY", "NOTES"]

CLAIM = "Vendor heatmaps refresh every 60 s, and every 15 s in high volatility."
HYPOTHESIS = "H1: the intervals between a vendor's successive map snapshots are about 60 s, shorter when volatile."
STATISTIC = "none computed: would be the distribution of intervals between changes of archived vendor snapshots"
WHY = ("a vendor's refresh cadence is visible only in timestamped archives of its own map, which no public dataset "
       "holds; a recorder polling the vendor's page every few seconds for weeks (with the vendor's permission) would "
       "carry it")
NOTES = ("liqlab's own map updates with its inputs: public open interest arrives every 5 minutes at best, so any "
         "cadence finer than that on a vendor's map comes from inputs that are not public.")
