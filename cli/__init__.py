"""The ``automl`` command line: thin Typer commands that parse, call the ``automl`` package and print."""
