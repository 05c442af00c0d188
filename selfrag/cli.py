"""Helpers shared by the entry points: error reporting and logging."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from selfrag.errors import SelfRagError


def run_main(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> int:
    """Call ``main``; a :class:`SelfRagError` becomes one ``error:`` line and exit status 2."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        main(argv)
    except SelfRagError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def flag_error(flag: str, message: str) -> SelfRagError:
    return SelfRagError(f"{flag}: {message}")
