"""Application: the ``liqlab`` command, scheduled reports, notebook runs and benchmarks.

The command line (:mod:`~liqlab.app.cli`, one module per subcommand in ``commands/``), data acquisition for
commands and notebooks (:mod:`~liqlab.app.sources`), papermill runs (:mod:`~liqlab.app.runner`), the
scheduled report (:mod:`~liqlab.app.report`) and the benchmarks (:mod:`~liqlab.app.bench`). It sits on
top and may import every layer; no layer imports it.
"""
