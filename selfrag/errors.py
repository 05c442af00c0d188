"""User-facing errors. Entry points print them as one line and exit with status 2."""

from __future__ import annotations


class SelfRagError(Exception):
    """A problem with the user's input or configuration, reported without a traceback."""


class InputError(SelfRagError):
    """Bad content in an input file, located by file, line and field."""

    def __init__(self, path, message: str, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = str(path), line, field
        where = self.path + (f", line {line}" if line is not None else "")
        what = f"field {field!r}: " if field else ""
        super().__init__(f"{where}: {what}{message}")
