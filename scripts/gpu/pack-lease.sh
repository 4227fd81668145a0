#!/usr/bin/env bash
# Packs what scripts/gpu/lease.sh needs on the GPU machine into folders .gj1, .gj2, … of the
# checkout that travels to it (git-ignored through .git/info/exclude), each at most PART_MIB
# (default 28) so that it fits beside the working tree in one command:
#   xb.tar.xz    the xbench binary (target/release) with scripts/ and scenarios/ of this checkout
#   gl.tar       the Vulkan and GL loader packages (Debian, amd64) Dawn needs for WebGPU
#   epb.tar.xz   the OpenVINO plugin (CPU device only) and the WebGPU plugin, from .xbench/ep-*
#   ort.NNN      ONNX Runtime's CUDA build (../shared/gpu/pack-ort-gpu.sh's tarball) in 1 MiB pieces
# Usage, from this checkout:  scripts/gpu/pack-lease.sh DEST_CHECKOUT [PART_MIB]
# A command takes at most 64 MiB with the working tree: PART_MIB plus the tree's size must stay
# under it (14 with the 47 MiB tree of December 2026; the part is refused otherwise).
# With XB_BASELINE=PATH, that xbench binary goes along as xbench-baseline (builds compared side by
# side); with XB_NO_EPS=1, the loaders and plugins stay behind (runs on ort-cuda only); with
# XB_MLX_WHEELS=DIR, the wheels in DIR (mlx, mlx-cuda-13, mlx-transformers for Python 3.12) go
# along as 1 MiB pieces mlx.NNN after ONNX Runtime's (lease.sh's mlx phase joins and installs them).
# On the machine: .gj1 unpacks xb.tar.xz into /root/xb and gl.tar into /root/ep/gl, .gj2
# unpacks epb.tar.xz into /root/ep, every folder's ort.* is copied to /root/ort, and the last one
# joins them: cat ort.* | xz -d | tar xf -  (reports/gpu-h200/README.md lists the commands).
set -euo pipefail
dest=${1:?usage: pack-lease.sh DEST_CHECKOUT [PART_MIB]}
part=$(( ${2:-28} * 1048576 ))
src=$(git rev-parse --show-toplevel)
ortxz=${XDG_CACHE_HOME:-$HOME/.cache}/ort-gpu-1.31.1/ortgpu.tar.xz
[ -f "$ortxz" ] || { echo "run ../shared/gpu/pack-ort-gpu.sh first (it makes $ortxz)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/xb" "$tmp/ep/ov" "$tmp/gl" "$tmp/ort"
cp "$src/target/release/xbench" "$tmp/xb/"
[ -n "${XB_BASELINE:-}" ] && cp "$XB_BASELINE" "$tmp/xb/xbench-baseline"
cp -r "$src/scripts" "$src/scenarios" "$tmp/xb/"
find "$tmp/xb" -name __pycache__ -prune -exec rm -rf {} +
(cd "$tmp/xb" && tar cf - . | xz -T0 -6 > "$tmp/xb.tar.xz")
if [ -n "${XB_NO_EPS:-}" ]; then
  : > "$tmp/epb.tar.xz"; tar cf "$tmp/gl.tar" --files-from /dev/null
else
ov=$dest/.xbench/ep-onnxruntime-ep-openvino-1.8.1
for f in libonnxruntime_providers_openvino_plugin.so libopenvino.so.2641 libopenvino_intel_cpu_plugin.so libopenvino_onnx_frontend.so.2641 \
  libopenvino_ir_frontend.so.2641 libopenvino_auto_plugin.so libopenvino_hetero_plugin.so libopenvino_auto_batch_plugin.so \
  libtbb.so.12 libtbbbind_2_5.so.3 libtbbmalloc.so.2 libtbbmalloc_proxy.so.2 libhwloc.so.15; do cp "$ov/$f" "$tmp/ep/ov/"; done
cp "$dest/.xbench/ep-onnxruntime-ep-webgpu-0.4.0/libonnxruntime_providers_webgpu.so" "$tmp/ep/"
(cd "$tmp/ep" && tar cf - . | xz -T0 -6 > "$tmp/epb.tar.xz")
(cd "$dest/.gl" && tar cf "$tmp/gl.tar" ./*.deb)
fi
(cd "$tmp/ort" && split -b 1M -a 3 -d "$ortxz" ort.)
if [ -n "${XB_MLX_WHEELS:-}" ]; then
  (cd "$XB_MLX_WHEELS" && tar cf - ./*.whl) | (cd "$tmp/ort" && split -b 1M -a 3 -d - mlx.)
fi
# Fill the folders in order: xb and gl first, the plugins next, then ONNX Runtime's pieces.
rm -rf "$dest"/.gj[0-9]*
exclude="$(git -C "$dest" rev-parse --path-format=absolute --git-common-dir)/info/exclude"
grep -qx '/.gj*/' "$exclude" 2>/dev/null || echo '/.gj*/' >> "$exclude"
n=1 used=0
put() {
  local size; size=$(stat -c %s "$1")
  if [ $((used + size)) -gt "$part" ]; then n=$((n + 1)); used=0; fi
  mkdir -p "$dest/.gj$n"; cp "$1" "$dest/.gj$n/"; used=$((used + size))
}
put "$tmp/xb.tar.xz"; put "$tmp/gl.tar"
n=2 used=0; put "$tmp/epb.tar.xz"
for f in "$tmp"/ort/ort.* "$tmp"/ort/mlx.*; do
  [ -e "$f" ] || continue
  # the first folder's room goes to ONNX Runtime too
  if [ "$n" = 2 ] && [ ! -e "$dest/.gj1/full" ] && [ $(( $(du -sb "$dest/.gj1" | cut -f1) + 1048576 )) -le "$part" ]; then
    cp "$f" "$dest/.gj1/"; continue
  fi
  touch "$dest/.gj1/full"; put "$f"
done
rm -f "$dest/.gj1/full"
du -sh "$dest"/.gj[0-9]*
echo "$n folders"
