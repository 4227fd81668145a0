#!/usr/bin/env bash
# Runs the memory scenarios with several builds of xbench, alternating builds round by round so
# that a busy machine slows each of them alike, and prints peak memory, load time and cell means.
# Usage: reports/memory-cpu/measure.sh OUT ROUNDS NAME=XBENCH_BINARY...
# (XBENCH_HOME must name the folder holding ONNX Runtime, e.g. the checkout's .xbench.)
set -euo pipefail
out=$1 rounds=$2
shift 2
here=$(dirname "$0")
for round in $(seq 1 "$rounds"); do
    for variant in "$@"; do
        name=${variant%%=*} bin=${variant#*=}
        for s in small speed large; do
            [ "$s" = large ] && [ "$round" -gt 1 ] && continue
            "$bin" scenario "$here/$s.yaml" --models-dir models --out "$out/$name/$s-$round" --quiet --ignore-failures > /dev/null
        done
    done
done
python3 "$here/summary.py" "$out" "$@"
