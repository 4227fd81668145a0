#!/usr/bin/env bash
# Runs every ONNX backend node test case through xbench on ort-cpu and tract-cpu, each on its own
# test data with its expected outputs as the reference, and prints the outcomes per runtime, with
# Python onnxruntime's own verdict on the same cases as the referee.
#
#   scripts/node-cases.sh [WORK_DIR]        (default: target/node-cases; about 10 minutes on 2 cores)
#
# Needs python3 with onnx, onnxruntime and numpy importable (e.g. PYTHONPATH set to a folder made
# with `pip install --target DIR onnx==1.23.2 onnxruntime==1.31.1 numpy==2.4.6`), and a release build.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$here/target/node-cases}
xbench=${XBENCH:-$here/target/release/xbench}
rm -rf "$work" && mkdir -p "$work"
python3 "$here/scripts/onnx_node_cases.py" write "$work/cases"
python3 "$here/scripts/onnx_node_cases.py" referee "$work/cases" --json "$work/referee.json" --jobs 2
python3 "$here/scripts/onnx_node_cases.py" scenario "$work/cases" > "$work/cases.yaml"
# Cells that fail or disagree are what is being counted: --ignore-failures.
"$xbench" scenario "$work/cases.yaml" --models-dir "$work/cases" --out "$work/run" --quiet --ignore-failures
python3 "$here/scripts/onnx_node_cases.py" tally "$work/run/results.json" --referee "$work/referee.json"
