"""``selfrag <command>``: the project's own commands (the original's scripts keep their paths).

    selfrag serve ...   an OpenAI-compatible server for a local model (see selfrag.serve)
    selfrag demo ...    the offline quick-start demo (see selfrag.demo)
"""

from __future__ import annotations

import sys

COMMANDS = {"serve": "selfrag.serve.__main__", "demo": "selfrag.demo"}


def main(argv: list[str] | None = None) -> int:
    import importlib

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    status = importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
