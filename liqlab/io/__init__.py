"""Data in: the dataset format and everything that reads, writes or acquires it.

The on-disk dataset (parquet tables + meta.json, :mod:`~liqlab.io.dataset`), atomic writes
(:mod:`~liqlab.io.atomic`), exchange tier tables (:mod:`~liqlab.io.tiers`), fetching over ccxt
(:mod:`~liqlab.io.fetch`), file importers (:mod:`~liqlab.io.importers`), the websocket recorder
(:mod:`~liqlab.io.record`) and coverage summaries (:mod:`~liqlab.io.coverage`). This is the only layer that
touches the network. It imports nothing from liqlab but :mod:`liqlab.errors` and :mod:`liqlab._util`.
"""
