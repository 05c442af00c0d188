"""Unicode clean-up applied to passages and queries before encoding (the original
``src/normalize_text.normalize``).

The table is written from a description of the original's behaviour, not copied: control characters
go, layout separators become spaces, and typographic variants of dashes, quotes, primes, the
ellipsis and slashes collapse to their ASCII forms. Tilde variants are left alone, as in the
original.
"""

from __future__ import annotations

_REMOVE = {c: None for c in range(0x20) if chr(c) not in "\t\n\r\x0b\x0c"}
_REMOVE[0x7F] = None  # DEL
_REMOVE[0xAD] = None  # soft hyphen

_SPACE = "\x0b\x0c\x85"  # vertical tab, form feed, next line (NEL)
_HYPHENS = "\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe58\ufe63\uff0d"
_DOUBLE_QUOTES = "\u201c\u201d\u201e\u201f\u00ab\u00bb\u275d\u275e\u2e42\u301d\u301e\u301f\uff02"
_SINGLE_QUOTES = (
    "\u2018\u2019\u201a\u201b\u2039\u203a\u275b\u275c\u0060\u00b4\u02b9\u02bb\u02bc\u02bd\u02c8"
    "\u02ca\u02cb\uff07"
)
_PRIMES = {"\u2032": "'", "\u2033": "''", "\u2034": "'''", "\u2057": "''''",
           "\u2035": "'", "\u2036": "''", "\u2037": "'''"}
_SLASHES = "\u2044\u2215\u29f8\uff0f"

_TABLE: dict[int, str | None] = dict(_REMOVE)
_TABLE.update({ord(c): " " for c in _SPACE})
_TABLE.update({ord(c): "-" for c in _HYPHENS})
_TABLE.update({ord(c): '"' for c in _DOUBLE_QUOTES})
_TABLE.update({ord(c): "'" for c in _SINGLE_QUOTES})
_TABLE.update({ord(c): s for c, s in _PRIMES.items()})
_TABLE.update({ord(c): "/" for c in _SLASHES})
_TABLE[ord("\u2026")] = "..."  # horizontal ellipsis


def normalize_text(text: str) -> str:
    """Return ``text`` with the original's character mapping applied (length may change)."""
    return text.translate(_TABLE)
