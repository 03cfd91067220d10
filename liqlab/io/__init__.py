"""Data in: the dataset format and everything that reads, writes or acquires it.

The format's rules (:mod:`~liqlab.io.schema`: tables, columns, units, checks, meta.json notes), the on-disk
dataset (:mod:`~liqlab.io.dataset`), atomic writes (:mod:`~liqlab.io.atomic`), exchange tier tables
(:mod:`~liqlab.io.tiers`), fetching over ccxt (:mod:`~liqlab.io.fetch`, a package: venues, the paged walk,
one fetcher per table), file importers (:mod:`~liqlab.io.importers`, one module per format), the websocket
recorder (:mod:`~liqlab.io.record`: config, events, parts writer, replay playback, REST polls, the session)
and coverage summaries (:mod:`~liqlab.io.coverage`). This is the only layer that touches the network
(inside ``fetch`` and ``record``). It imports nothing from liqlab but :mod:`liqlab.errors` and
:mod:`liqlab._util`.
"""
