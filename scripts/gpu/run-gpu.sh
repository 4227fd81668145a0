#!/usr/bin/env bash
# The GPU report: run on the GPU machine from the project root, after ONNX Runtime's CUDA build
# has been unpacked into /root/ort (../shared/gpu/README.md) and the xbench binary copied to .devbin/.
#   scripts/gpu/run-gpu.sh OUT_DIR [prepare|measure|all]
# prepare: exports the paper's models (random weights, fp32 and fp16) and the fused BERT-base
#          variants (ONNX Runtime's transformer optimizer on the dynamo and TorchScript exports);
# measure: runs the paper grid on ort-cuda in each timing and I/O mode, the BERT-base batch-32
#          variants, and both again beside Python onnxruntime and PyTorch, run as external
#          runtimes (scripts/runtimes/, docs/runtime-protocol.md) on the same token ids.
# Every step logs its exit code and wall time, and the next step runs regardless.
set -u
out=${1:?usage: run-gpu.sh OUT_DIR [prepare|measure|all]}
phase=${2:-all}
mkdir -p "$out"
work=/tmp/xbench-gpu && mkdir -p "$work"
export ORT_DYLIB_PATH=/root/ort/libonnxruntime.so.1.31.1
nv=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH=/root/ort:$nv/cu13/lib:$nv/cudnn/lib:${LD_LIBRARY_PATH:-}
export PYTHONPATH=/root/ort/py:/root/pylib
py=/opt/torch/.venv/bin/python; [ -x "$py" ] || py=python3
xb=.devbin/xbench
step() { local name=$1; shift; local t=$(date +%s%N); "$@"; local rc=$?; echo "== $name: rc=$rc, $(( ($(date +%s%N) - t) / 1000000 )) ms wall"; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
if [ "$phase" != measure ]; then
$py -c "import onnxscript, tokenizers" 2>/dev/null || step "install onnxscript/tokenizers" $py -m pip install -q --no-index --find-links .gpuwheels --target /root/pylib onnxscript onnx_ir ml_dtypes tokenizers
$py -c "import torch, transformers, onnx, onnxruntime; print('torch', torch.__version__, 'transformers', transformers.__version__, 'onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__, onnxruntime.get_available_providers())"
step "export fp32 + fp16" $py scripts/export_models.py --random --fp16
step "fuse bert-base (dynamo export, fp16)" $py -m onnxruntime.transformers.optimizer --input models/bert-base-uncased/model.onnx \
  --output models/bert-base-uncased-fused-fp16/model.onnx --model_type bert --num_heads 12 --hidden_size 768 --float16 --use_gpu
cp models/bert-base-uncased/tokenizer.json models/bert-base-uncased-fused-fp16/ 2>/dev/null
printf 'architecture: bert\nonnx: model.onnx\ntokenizer: tokenizer.json\nmax_positions: 512\nweights: random\ndescription: bert-base-uncased fp16 with ONNX Runtime transformer fusions (onnxruntime.transformers.optimizer)\ncompare_with: bert-base-uncased\n' > models/bert-base-uncased-fused-fp16/model.yaml
step "TorchScript export + fusions (fp16)" $py scripts/gpu/fuse_variants.py
ls -la models/bert-base-uncased-ts-fp32 models/bert-base-uncased-ts-fused-fp16
# model.yaml keys this binary does not know yet would stop it: keep them only if it reads them.
$xb models 2>&1 | grep -q "unknown field" && sed -i '/^compare_with:/d' models/*/model.yaml
$xb models 2>&1 | tail -20
fi
[ "$phase" = prepare ] && exit 0

$xb runtimes
p=scenarios/paper.yaml
step "paper, end-to-end" $xb scenario $p --runtimes ort-cuda --out "$work/paper-cuda"
step "paper, end-to-end, parallel loads" $xb scenario $p --runtimes ort-cuda --parallel-loads --out "$work/paper-cuda-parallel"
step "paper, end-to-end, pinned I/O" $xb scenario $p --runtimes ort-cuda --pinned-io --out "$work/paper-cuda-pinned"
step "paper, end-to-end, CUDA graphs, parallel loads" $xb scenario $p --runtimes ort-cuda --cuda-graph --parallel-loads --out "$work/paper-cuda-graph"
step "agreement with ort-cpu: end-to-end" $xb scenario scenarios/cuda-agreement.yaml --out "$work/cuda-agreement"
step "agreement with ort-cpu: end-to-end, TF32 off" $xb scenario scenarios/cuda-agreement.yaml --no-tf32 --out "$work/cuda-agreement-no-tf32"
step "agreement with ort-cpu: end-to-end, CUDA graphs" $xb scenario scenarios/cuda-agreement.yaml --cuda-graph --out "$work/cuda-agreement-graph"
step "agreement with ort-cpu: end-to-end, CUDA graphs, TF32 off" $xb scenario scenarios/cuda-agreement.yaml --cuda-graph --no-tf32 --out "$work/cuda-agreement-graph-no-tf32"
step "agreement with ort-cpu: device-resident, CUDA graphs" $xb scenario scenarios/cuda-agreement.yaml --timing device-resident --cuda-graph --out "$work/cuda-agreement-device-graph"
step "paper, device-resident" $xb scenario $p --runtimes ort-cuda --timing device-resident --out "$work/paper-cuda-device"
step "paper, device-resident, CUDA graphs" $xb scenario $p --runtimes ort-cuda --timing device-resident --cuda-graph --out "$work/paper-cuda-device-graph"
step "paper fp16, end-to-end" $xb scenario scenarios/paper-fp16.yaml --out "$work/paper-fp16"
b=scenarios/bert-base-b32.yaml
step "b32 variants, end-to-end" $xb scenario $b --out "$work/b32"
step "b32 variants, device-resident" $xb scenario $b --timing device-resident --out "$work/b32-device"
step "b32 variants, device-resident, CUDA graphs" $xb scenario $b --timing device-resident --cuda-graph --out "$work/b32-device-graph"
step "b32 variants, end-to-end, CUDA graphs" $xb scenario $b --cuda-graph --out "$work/b32-graph"
# Baselines in the same reports as ort-cuda, on the same token ids, outputs compared with ort-cuda's:
# Python onnxruntime as people call it (numpy in and out), PyTorch fp32 and fp16 (eager attention),
# and PyTorch fp16 with SDPA attention, plain and captured in a CUDA graph. The adapters run under
# the python3 found first on PATH: $py's.
ad=$PWD/scripts/runtimes
baselines="[ort-cuda, {name: ort-python, external: $ad/ort_python.py, options: {provider: cuda}}, {name: torch-fp32, external: $ad/torch_hf.py, options: {device: cuda}}, {name: torch-fp16, external: $ad/torch_hf.py, options: {device: cuda, dtype: fp16}}, {name: torch-fp16-sdpa, external: $ad/torch_hf.py, options: {device: cuda, dtype: fp16, attention: sdpa}}, {name: torch-fp16-sdpa-graph, external: $ad/torch_hf.py, options: {device: cuda, dtype: fp16, attention: sdpa, cuda_graph: true}}]"
for s in paper:$p b32:$b; do
  sed -e 's/^name: .*/&-baselines/' -e "s|^runtimes: .*|runtimes: $baselines|" "${s#*:}" > "$work/${s%%:*}-baselines.yaml"
done
pybin=$(dirname "$(command -v "$py")")
step "paper beside Python onnxruntime and PyTorch" env PATH="$pybin:$PATH" $xb scenario "$work/paper-baselines.yaml" --out "$work/paper-baselines"
step "paper beside Python onnxruntime and PyTorch, ort-cuda with CUDA graphs" env PATH="$pybin:$PATH" $xb scenario "$work/paper-baselines.yaml" --cuda-graph --out "$work/paper-baselines-graph"
step "b32 variants beside Python onnxruntime and PyTorch" env PATH="$pybin:$PATH" $xb scenario "$work/b32-baselines.yaml" --out "$work/b32-baselines"
tar czf "$out/gpu-reports.tgz" -C "$work" .
ls -la "$out"
