"""One module per ``pixelnerf`` subcommand, named after it, each with ``add_arguments(parser)``
and ``run(args) -> int``: parse, build the typed config, call the library. No library module
parses arguments."""
