"""Coverage-guided fuzz targets, one per parser (atheris): ``make fuzz FUZZ_SECONDS=60``.

Each ``fuzz_<parser>.py`` defines ``one_input(data: bytes) -> None``, which feeds hostile bytes to one parser
and asserts its contract (it returns a value or raises only its own documented error; never anything else),
and ``SEEDS``, a few valid inputs to start from. ``test_targets.py`` runs every target over its seeds in
``make test``, so a target cannot rot; ``run.py`` runs them under atheris, bounded in time.
"""
