"""One module per ``liqlab`` subcommand: ``HELP``, ``add_arguments(parser)``, ``run(args) -> int``."""
