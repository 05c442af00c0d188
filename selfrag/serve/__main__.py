"""``selfrag serve`` / ``python -m selfrag.serve``: put a model behind an OpenAI-compatible API.

Example (the offline default model on this machine)::

    selfrag serve --model_name smollm2-135m --port 8000
    curl http://127.0.0.1:8000/v1/completions -H 'Content-Type: application/json' \\
         -d '{"model": "smollm2-135m", "prompt": "### Instruction:\\nHi\\n\\n### Response:\\n"}'

Any client of the ``openai`` package works with ``base_url="http://127.0.0.1:8000/v1"`` and any
non-empty API key (the server checks none; bind it to 127.0.0.1, the default).
"""

from __future__ import annotations

import argparse
import logging

from selfrag.cli import add_model_flags, entry_point, resolve_device

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="selfrag serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_flags(parser)
    parser.add_argument("--served_model_name", default=None,
                        help="name clients send as 'model' (default: --model_name)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: local only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max_batch", type=int, default=64,
                        help="most prompts generated together across concurrent requests")
    parser.add_argument("--batch_window_ms", type=float, default=10.0,
                        help="how long a batch waits for more requests before it starts")
    return parser


@entry_point
def main(argv: list[str] | None = None) -> None:
    import uvicorn

    from selfrag.lm import load_lm
    from selfrag.serve.app import create_app

    args = build_parser().parse_args(argv)
    lm = load_lm(args.backend, args.model_name, device=resolve_device(args.device),
                 dtype=args.dtype, batch_size=args.batch_size, world_size=args.world_size,
                 download_dir=args.download_dir, tokenizer_path=args.tokenizer_path)
    app = create_app(lm, args.served_model_name or args.model_name, max_batch=args.max_batch,
                     batch_window=args.batch_window_ms / 1000)
    logger.info("serving %s on http://%s:%d/v1", args.model_name, args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    raise SystemExit(main())
