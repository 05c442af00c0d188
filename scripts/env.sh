# Sourced by the scripts of the README (demo.sh, test.sh, reproduce_small.sh): from the
# repository root, install (into ./.venv, quick when nothing changed), activate, go offline.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install.sh
# shellcheck disable=SC1091
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
