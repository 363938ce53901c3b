"""The atheris entry point every target shares (imported only when a target runs as a script)."""

from __future__ import annotations

import sys
from collections.abc import Callable


def fuzz(one_input: Callable[[bytes], None]) -> None:
    import atheris  # type: ignore[import-untyped]  # the `fuzz` extra: only the fuzz runs need it

    atheris.instrument_all()  # coverage of every module already imported (the parser under test)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
