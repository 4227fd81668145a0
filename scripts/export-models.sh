#!/usr/bin/env bash
# Exports the paper's four models to models/<name>/model.onnx and checks each against PyTorch.
# Creates the virtual environment .venv-export/ (git-ignored) on first use.
# Arguments go to scripts/export_models.py, e.g. --random, --fp16, --models bert-base-uncased.
# Decoders with their key/value cache: --decoder [--models smollm-135m,qwen2.5-0.5b] [--fp16].
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-export
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-export.txt
exec "$venv/bin/python" scripts/export_models.py "$@"
