#!/usr/bin/env bash
# The GPU report's runs (reports/gpu-h200/README.md), on the GPU machine, in /root/xb: this
# project's scripts and scenarios with the xbench binary beside them, ONNX Runtime's CUDA build
# unpacked into /root/ort (../shared/gpu/README.md), the OpenVINO and WebGPU plugins in /root/ep.
#
#   scripts/gpu/lease.sh OUT PHASE...
#
# Phases, in the order they are run:
#   export      the paper's four models, random weights (bert-base also in fp16)
#   variants    BERT-base's TorchScript export and the variants of scripts/gpu/p2_variants.py
#   p2          the batch-32 target: variants, provider options, attention environment variables
#   mlx         MLX for CUDA (pack-lease.sh's XB_MLX_WHEELS pieces in /root/ort) into /root/mlxsite
#   frameworks  the paper grid across ONNX Runtime (xbench, Python), PyTorch and MLX, in one report;
#               then P2b (scenarios/gpu/p2b.yaml): the best ONNX configuration against PyTorch,
#               end to end with pinned copies and device-resident on both sides
#   fuse        BERT-base's fused fp16 TorchScript variant only (what p2b needs), without p2's search
#   fwshard     shard XB_SHARD (e.g. 2/3) of XB_SCENARIO (default scenarios/gpu/frameworks.yaml), so
#               that each part fits one command; `xbench report` of the shards' results merges them
#   p2b         P2b alone (XB_SCENARIO, default scenarios/gpu/p2b.yaml), after fuse
#   p3          the paper grid on ort-cuda, wall time: parallel loads, optimized graphs kept
#   p3ab        the same grid with this build and with xbench-baseline (pack-lease.sh's
#               XB_BASELINE), alternated; then this build serial, debug-logged, pinned, CUDA graph;
#               and cuda-agreement.yaml (ort-cuda against ort-cpu)
#   shards      the paper grid and the operation benchmark over two GPUs, merged (needs --shard)
#   eps         OpenVINO against ort-cpu on the host CPU; WebGPU with the Vulkan loader
#   gen         Qwen2.5-0.5B exported with its cache; generation on ort-cuda against ort-cpu
#               (scenarios/gpu/generate-agree.yaml), the full grid on ort-cuda (generate-grid.yaml),
#               and the bare Python IO-binding decode loop (scripts/gpu/decode_loop.py) beside it
#   gen2        after gen's export (and mlx): generation across frameworks (generate-frameworks.yaml:
#               ort-cuda, PyTorch, MLX against ort-cpu); ort-cuda with and without the decode-step
#               CUDA graphs, in one run (generate-graph.yaml)
#   gen2loop    xbench's decode step and the bare loop alternated three times (generate-loop.yaml,
#               decode_loop.py at batch 1, 4, 16)
#   gen3        after gen's export: where ONNX Runtime puts the decoder's nodes (placement.py), then
#               ort-cuda as usual, with pinned copies and with the decode-step CUDA graphs against
#               ort-cpu (generate-graph.yaml)
#   gen3loop    the three ort-cuda series and the bare loop alternated, rounds XB_ROUNDS (default
#               "1 2"; generate-loop.yaml, decode_loop.py at batch 1, 4, 16)
# Every step logs its command, exit code and wall time to logs/steps.txt and goes on regardless;
# each phase leaves OUT/PHASE.tgz (its results folders and logs).
set -u -o pipefail
out=${1:?usage: lease.sh OUT PHASE...}
shift
root=${XB_ROOT:-/root/xb}
cd "$root" || exit 1
mkdir -p logs runs "$out"
export ORT_DYLIB_PATH=/root/ort/libonnxruntime.so.1.31.1
nv=$(python3 -c 'import nvidia; print(list(nvidia.__path__)[0])' 2>/dev/null) || nv=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH=/root/ort:$nv/cu13/lib:$nv/cudnn/lib:$nv/nccl/lib:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1 XBENCH_HOME=$root/.xbench
xb=$root/xbench
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
loads=--parallel-loads

step() {
  local name=$1; shift
  local t=$(date +%s%N)
  echo "== $name: $*" | tee -a logs/steps.txt
  "$@"
  local rc=$?
  echo "== $name: rc=$rc, $(( ($(date +%s%N) - t) / 1000000 )) ms wall" | tee -a logs/steps.txt
  return $rc
}
# One xbench run: its folder under runs/, its terminal output in runs/NAME.log.
xrun() {
  local name=$1; shift
  step "$name" timeout "${TMO:-300}" "$xb" scenario "$@" --out "runs/$name" 2>&1 | tee "runs/$name.log" | tail -4
}
table() { [ -f "runs/$1/results.json" ] && python3 scripts/gpu/plan_next.py table "runs/$1/results.json" | tee "runs/$1.table"; }
pack() { tar czf "$out/$1.tgz" --exclude='.outputs' --exclude='outputs' logs $(for n in "${@:2}"; do ls -d runs/"$n" runs/"$n".log runs/"$n".table 2>/dev/null; done); ls -la "$out"; }
# Python onnxruntime-gpu, and MLX where the mlx phase installed it.
gpu_ort() { export PYTHONPATH=/root/ort/py${MLXSITE:+:$MLXSITE}; }
[ -d /root/mlxsite ] && MLXSITE=/root/mlxsite

phase_export() {
  nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, transformers, onnx, onnxruntime; print('torch', torch.__version__, 'transformers', transformers.__version__, 'onnx', onnx.__version__, 'onnxruntime (image)', onnxruntime.__version__)"
  step export-bert-base python3 scripts/export_models.py --random --models bert-base-uncased --fp16
  step export-others python3 scripts/export_models.py --random --models bert-large-uncased,roberta-base,xlm-roberta-base
  touch logs/export.done
}

phase_variants() {
  gpu_ort
  for _ in $(seq 120); do [ -f logs/export.done ] && break; sleep 2; done
  step fuse-torchscript python3 scripts/gpu/fuse_variants.py
  step p2-variants-build python3 scripts/gpu/p2_variants.py
  "$xb" models 2>&1 | tail -30 > logs/models.txt
}

phase_p2() {
  gpu_ort
  "$xb" runtimes 2>&1 | tee logs/runtimes.txt
  python3 scripts/gpu/plan_next.py filter scenarios/gpu/p2-variants.yaml models scenarios/gpu/run-p2-variants.yaml
  xrun p2-variants scenarios/gpu/run-p2-variants.yaml --no-tf32 $loads
  table p2-variants
  best=$(python3 scripts/gpu/plan_next.py variants runs/p2-variants/results.json 468x32 device-graph)
  echo "best variant: $best" | tee -a logs/steps.txt
  for s in p2-options p2-env frameworks; do
    python3 scripts/gpu/plan_next.py rename scenarios/gpu/$s.yaml bert-base-uncased-ts-fused-fp16 "$best" scenarios/gpu/run-$s.yaml
  done
  xrun p2-options scenarios/gpu/run-p2-options.yaml --no-tf32 $loads
  table p2-options
  xrun p2-env-none scenarios/gpu/run-p2-env.yaml
  for v in ORT_DISABLE_FLASH_ATTENTION ORT_DISABLE_FUSED_ATTENTION ORT_DISABLE_TRT_FLASH_ATTENTION ORT_ENABLE_FUSED_CAUSAL_ATTENTION; do
    (export "$v=1"; xrun "p2-env-$v" scenarios/gpu/run-p2-env.yaml)
    table "p2-env-$v"
  done
  table p2-env-none
  python3 scripts/gpu/plan_next.py options runs/p2-options/results.json 468x32 "$best" scenarios/gpu/p2-options.yaml scenarios/gpu/run-frameworks.yaml scenarios/gpu/run-frameworks.yaml | tee -a logs/steps.txt
  cp scenarios/gpu/run-*.yaml logs/
  pack p2 p2-variants p2-options p2-env-none p2-env-ORT_DISABLE_FLASH_ATTENTION p2-env-ORT_DISABLE_FUSED_ATTENTION p2-env-ORT_DISABLE_TRT_FLASH_ATTENTION p2-env-ORT_ENABLE_FUSED_CAUSAL_ATTENTION
}

phase_mlx() {
  ls /root/ort/mlx.* > /dev/null || { echo "no MLX pieces in /root/ort" | tee -a logs/steps.txt; return; }
  mkdir -p /root/mlxwheels /root/mlxsite
  cat /root/ort/mlx.* | tar xf - -C /root/mlxwheels && rm /root/ort/mlx.*
  step mlx-install python3 -m pip install -q --no-index --no-deps --no-compile --target /root/mlxsite /root/mlxwheels/*.whl
  MLXSITE=/root/mlxsite
  gpu_ort
  step mlx-check python3 -c "import mlx.core as mx, mlx_transformers; print('mlx', mx.__version__, mx.default_device())" 2>&1 | tail -3
}

phase_frameworks() {
  gpu_ort
  [ -f scenarios/gpu/run-frameworks.yaml ] || cp scenarios/gpu/frameworks.yaml scenarios/gpu/run-frameworks.yaml
  # Every group loaded at once holds every model in host and GPU memory together: only on the larger machine.
  local fl=$loads; [ "$gpus" -lt 2 ] && fl=
  TMO=540 xrun frameworks scenarios/gpu/run-frameworks.yaml --no-tf32 $fl -i
  table frameworks > /dev/null
  TMO=300 xrun p2b scenarios/gpu/p2b.yaml --no-tf32 -i
  cp scenarios/gpu/run-frameworks.yaml logs/
  pack frameworks frameworks p2b
}

phase_fuse() {
  gpu_ort
  for _ in $(seq 150); do [ -f logs/export.done ] && break; sleep 2; done
  step fuse-torchscript python3 scripts/gpu/fuse_variants.py
}

phase_fwshard() {
  gpu_ort
  local s=${XB_SHARD:?set XB_SHARD=I/N} name
  local f=${XB_SCENARIO:-scenarios/gpu/frameworks.yaml}
  name=$(basename "$f" .yaml)-${s/\//of}
  TMO=${TMO:-580} xrun "$name" "$f" --no-tf32 -i --shard "$s"
  pack "$name" "$name"
}

phase_p2b() {
  gpu_ort
  local f=${XB_SCENARIO:-scenarios/gpu/p2b.yaml} name
  name=$(basename "$f" .yaml)
  TMO=${TMO:-300} xrun "$name" "$f" --no-tf32 -i
  table "$name" > /dev/null
  pack "$name" "$name"
}

phase_p3() {
  gpu_ort
  local p=scenarios/paper.yaml
  xrun p3-parallel-1 $p --runtimes ort-cuda --parallel-loads
  xrun p3-serial $p --runtimes ort-cuda
  rm -rf .xbench/optimized
  xrun p3-cached-first scenarios/gpu/paper-cached.yaml --parallel-loads
  xrun p3-cached-second scenarios/gpu/paper-cached.yaml --parallel-loads
  xrun p3-cached-third scenarios/gpu/paper-cached.yaml --parallel-loads
  xrun p3-parallel-2 $p --runtimes ort-cuda --parallel-loads
  xrun p3-graph $p --runtimes ort-cuda --parallel-loads --cuda-graph
  ls -la .xbench/optimized > logs/optimized.txt 2>&1
  grep -h "time:" runs/p3-*.log | tee logs/p3-times.txt
  pack p3 p3-parallel-1 p3-serial p3-cached-first p3-cached-second p3-cached-third p3-parallel-2 p3-graph
}

phase_p3ab() {
  gpu_ort
  local p=scenarios/paper.yaml new=$xb base=$root/xbench-baseline
  for i in 1 2 3; do
    xb=$base xrun "p3-baseline-$i" $p --runtimes ort-cuda --parallel-loads
    xb=$new xrun "p3-new-$i" $p --runtimes ort-cuda --parallel-loads
  done
  xb=$base xrun p3-baseline-serial $p --runtimes ort-cuda
  xrun p3-new-serial $p --runtimes ort-cuda
  RUST_LOG=xbench=debug xrun p3-new-debug $p --runtimes ort-cuda --parallel-loads
  xrun p3-new-pinned $p --runtimes ort-cuda --parallel-loads --pinned-io
  xrun p3-new-graph $p --runtimes ort-cuda --parallel-loads --cuda-graph
  xrun cuda-agreement-new scenarios/cuda-agreement.yaml --no-tf32 --parallel-loads
  # How often the GPU's energy counter moves (idle): readings every 5 ms for 3 s.
  timeout 3 nvidia-smi --query-gpu=timestamp,total_energy_consumption --format=csv,noheader,nounits -lms 5 > logs/energy-counter.txt 2>&1
  grep -H "time:" runs/p3-*.log | tee logs/p3ab-times.txt
  pack p3ab cuda-agreement-new p3-baseline-1 p3-new-1 p3-baseline-2 p3-new-2 p3-baseline-3 p3-new-3 p3-baseline-serial p3-new-serial p3-new-debug p3-new-pinned p3-new-graph
}

phase_shards() {
  gpu_ort
  if ! "$xb" scenario --help | grep -q -- --shard; then echo "this xbench has no --shard" | tee -a logs/steps.txt; return; fi
  if [ "$gpus" -lt 2 ]; then echo "one GPU here: no shard run" | tee -a logs/steps.txt; return; fi
  local p=scenarios/paper.yaml
  xrun paper-one-gpu $p --runtimes ort-cuda --parallel-loads
  local t=$(date +%s%N)
  ( "$xb" scenario $p --runtimes ort-cuda --parallel-loads --shard 1/2 --device 0 --out runs/paper-shard1 > runs/paper-shard1.log 2>&1 ) &
  ( "$xb" scenario $p --runtimes ort-cuda --parallel-loads --shard 2/2 --device 1 --out runs/paper-shard2 > runs/paper-shard2.log 2>&1 ) &
  wait
  echo "== paper over 2 GPUs: $(( ($(date +%s%N) - t) / 1000000 )) ms wall" | tee -a logs/steps.txt
  step paper-merge "$xb" report runs/paper-shard1/results.json runs/paper-shard2/results.json --out runs/paper-merged 2>&1 | tail -5
  TMO=400 xrun ops-one-gpu scenarios/ops.yaml --runtimes ort-cuda -i
  t=$(date +%s%N)
  ( timeout 400 "$xb" scenario scenarios/ops.yaml --runtimes ort-cuda -i --shard 1/2 --device 0 --out runs/ops-shard1 > runs/ops-shard1.log 2>&1 ) &
  ( timeout 400 "$xb" scenario scenarios/ops.yaml --runtimes ort-cuda -i --shard 2/2 --device 1 --out runs/ops-shard2 > runs/ops-shard2.log 2>&1 ) &
  wait
  echo "== ops over 2 GPUs: $(( ($(date +%s%N) - t) / 1000000 )) ms wall" | tee -a logs/steps.txt
  step ops-merge "$xb" report runs/ops-shard1/results.json runs/ops-shard2/results.json --out runs/ops-merged 2>&1 | tail -5
  grep -h "time:" runs/paper-*.log runs/ops-*.log | tee logs/shard-times.txt
  pack shards paper-one-gpu paper-shard1 paper-shard2 paper-merged ops-one-gpu ops-shard1 ops-shard2 ops-merged
}

phase_eps() {
  gpu_ort
  local ov=/root/ep/ov/libonnxruntime_providers_openvino_plugin.so wg=/root/ep/libonnxruntime_providers_webgpu.so
  lscpu | grep -E "Model name|Flags" | sed 's/\(.\{400\}\).*/\1 …/' | tee logs/cpu.txt
  grep -o -w -E "avx512_bf16|amx_bf16|amx_tile|avx512f" /proc/cpuinfo | sort | uniq -c | tee -a logs/cpu.txt
  "$xb" runtimes --ep-lib openvino=$ov --ep-lib webgpu=$wg 2>&1 | tee logs/runtimes-eps-before-loader.txt
  xrun openvino scenarios/gpu/openvino-bert-base.yaml --ep-lib openvino=$ov -i
  table openvino
  # The Vulkan and GL loaders (Debian packages) for Dawn, as the device notes say.
  for f in /root/ep/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
  ldconfig -p | grep -E "libvulkan|libEGL" | tee logs/loaders.txt
  ls /usr/local/nvidia/share/vulkan/icd.d/ /etc/vulkan/icd.d/ /usr/share/vulkan/icd.d/ 2>&1 | tee -a logs/loaders.txt
  [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ] && export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  "$xb" runtimes --ep-lib webgpu=$wg 2>&1 | tee logs/runtimes-eps-after-loader.txt
  xrun webgpu scenarios/gpu/webgpu-bert-base.yaml --ep-lib webgpu=$wg -i
  table webgpu
  pack eps openvino webgpu
}

phase_gen() {
  gpu_ort
  [ -f models/qwen2.5-0.5b/model.onnx ] || step export-qwen python3 scripts/export_models.py --decoder --models qwen2.5-0.5b --out-root models
  TMO=300 xrun gen-agree scenarios/gpu/generate-agree.yaml --no-tf32 -i
  TMO=420 xrun gen-grid scenarios/gpu/generate-grid.yaml --no-tf32 -i
  for b in 1 4 16; do
    step "decode-loop-b$b" python3 scripts/gpu/decode_loop.py models/qwen2.5-0.5b/model.onnx --prompt 128 --new 128 --batch "$b" --runs 3 --no-tf32 | tee -a logs/decode-loop.jsonl
  done
  grep '^{' logs/decode-loop.jsonl > runs/decode-loop.jsonl 2>/dev/null  # its JSON lines only
  pack gen gen-agree gen-grid decode-loop.jsonl
}

phase_gen2() {
  gpu_ort
  for _ in $(seq 150); do [ -f models/qwen2.5-0.5b/model.onnx ] && break; sleep 2; done
  TMO=420 xrun gen-fw scenarios/gpu/generate-frameworks.yaml --no-tf32
  TMO=300 xrun gen-graph scenarios/gpu/generate-graph.yaml --no-tf32 -i
  pack gen2 gen-fw gen-graph
}

phase_gen2loop() {
  gpu_ort
  for r in 1 2 3; do
    TMO=300 xrun "gen-loop-$r" scenarios/gpu/generate-loop.yaml --no-tf32 -i
    for b in 1 4 16; do
      step "decode-loop-$r-b$b" python3 scripts/gpu/decode_loop.py models/qwen2.5-0.5b/model.onnx --prompt 128 --new 128 --batch "$b" --runs 3 --no-tf32 | tee -a logs/decode-loop-abab.jsonl
    done
  done
  grep '^{' logs/decode-loop-abab.jsonl > runs/decode-loop-abab.jsonl 2>/dev/null  # its JSON lines only
  pack gen2loop gen-loop-1 gen-loop-2 gen-loop-3 decode-loop-abab.jsonl
}

phase_gen3() {
  gpu_ort
  for _ in $(seq 240); do [ -f models/qwen2.5-0.5b/model.yaml ] && break; sleep 2; done
  step placement python3 scripts/gpu/placement.py models/qwen2.5-0.5b/model.onnx > runs/placement.txt 2>&1
  cat runs/placement.txt | tail -20
  TMO=300 xrun gen-graph scenarios/gpu/generate-graph.yaml --no-tf32 -i
  pack gen3 gen-graph placement.txt
}

phase_gen3loop() {
  gpu_ort
  local r b names=""
  for r in ${XB_ROUNDS:-1 2}; do
    TMO=280 xrun "gen-loop-$r" scenarios/gpu/generate-loop.yaml --no-tf32 -i
    for b in 1 4 16; do
      step "decode-loop-$r-b$b" python3 scripts/gpu/decode_loop.py models/qwen2.5-0.5b/model.onnx --prompt 128 --new 128 --batch "$b" --runs 2 --no-tf32 | tee -a logs/decode-loop-abab.jsonl
    done
    names="$names gen-loop-$r"
  done
  grep '^{' logs/decode-loop-abab.jsonl > runs/decode-loop-abab.jsonl 2>/dev/null  # its JSON lines only
  local rounds=${XB_ROUNDS:-1 2}
  pack "gen3loop-${rounds// /-}" $names decode-loop-abab.jsonl
}

for phase in "$@"; do
  echo "==== phase $phase ($(date -u +%H:%M:%S))" | tee -a logs/steps.txt
  "phase_$phase"
done
