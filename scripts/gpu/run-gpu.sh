#!/usr/bin/env bash
# The GPU report: run on the GPU machine from the project root, after ONNX Runtime's CUDA build
# has been unpacked into /root/ort (../shared/gpu/README.md) and the xbench binary copied to .devbin/.
#   scripts/gpu/run-gpu.sh OUT_DIR
# Exports the paper's models (random weights, fp32 and fp16), runs the paper grid on ort-cuda end to
# end and device-resident, fuses BERT-base with ONNX Runtime's transformer optimizer, and times
# Python onnxruntime and PyTorch eager on the same token ids. Every step logs its exit code and the
# next step runs regardless.
set -u
out=${1:?usage: run-gpu.sh OUT_DIR}
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
$py -c "import onnxscript, tokenizers" 2>/dev/null || step "install onnxscript/tokenizers" $py -m pip install -q --no-index --find-links .gpuwheels --target /root/pylib onnxscript onnx_ir ml_dtypes tokenizers
$py -c "import torch, transformers, onnx, onnxruntime; print('torch', torch.__version__, 'transformers', transformers.__version__, 'onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__, onnxruntime.get_available_providers())"
step "export fp32 + fp16" $py scripts/export_models.py --random --fp16
step "fuse bert-base (fp16)" $py -m onnxruntime.transformers.optimizer --input models/bert-base-uncased/model.onnx \
  --output models/bert-base-uncased-fused-fp16/model.onnx --model_type bert --num_heads 12 --hidden_size 768 --float16 --use_gpu
cp models/bert-base-uncased/tokenizer.json models/bert-base-uncased-fused-fp16/ 2>/dev/null
printf 'architecture: bert\nonnx: model.onnx\ntokenizer: tokenizer.json\nmax_positions: 512\nweights: random\ndescription: bert-base-uncased fp16 with ONNX Runtime transformer fusions (onnxruntime.transformers.optimizer)\n' > models/bert-base-uncased-fused-fp16/model.yaml
$xb runtimes
step "paper grid, ort-cuda, end-to-end" $xb scenario scenarios/paper.yaml --runtimes ort-cuda --out "$work/paper-cuda"
step "paper grid, ort-cuda, device-resident" $xb scenario scenarios/paper.yaml --runtimes ort-cuda --timing device-resident --out "$work/paper-cuda-device"
step "paper grid fp16, end-to-end" $xb scenario scenarios/paper-fp16.yaml --out "$work/paper-fp16"
step "bert-base b32 variants, end-to-end" $xb scenario scenarios/bert-base-b32.yaml --out "$work/b32"
step "bert-base b32 variants, device-resident" $xb scenario scenarios/bert-base-b32.yaml --timing device-resident --out "$work/b32-device"
step "paper grid, ort-cuda, in one process" $xb scenario scenarios/paper.yaml --runtimes ort-cuda --in-process --quiet --out "$work/paper-cuda-inprocess"
step "feeds" $xb feeds scenarios/paper.yaml --out "$work/feeds.json"
step "baselines" $py scripts/gpu_compare.py --feeds "$work/feeds.json" --xbench "$work/paper-cuda/results.json" "$work/paper-cuda-device/results.json" "$work/paper-cuda-inprocess/results.json" --out "$work/compare.md"
$xb feeds scenarios/bert-base-b32.yaml --out "$work/feeds-b32.json" && \
  step "baselines b32" $py scripts/gpu_compare.py --feeds "$work/feeds-b32.json" --xbench "$work/b32/results.json" "$work/b32-device/results.json" --iterations 50 --warmup 10 --out "$work/compare-b32.md"
rm -f "$work"/feeds*.json
tar czf "$out/gpu-reports.tgz" -C "$work" .
ls -la "$out"
