#!/usr/bin/env python3
# xbench-framework: mlx
"""xbench external runtime: the model in MLX through mlx-transformers (the paper's own code path).

Speaks protocol 1 of docs/runtime-protocol.md over stdin/stdout (see protocol.py). Options (strings):

  device   cpu (default) | gpu: Metal on macOS, CUDA on Linux (the GPU is hello's `device` index)
  dtype    fp32 (default) | fp16 | bf16: the weights (model.set_dtype). mlx-transformers 0.3.0 builds
           the attention mask in float32, so from the first attention on MLX promotes activations to
           float32: an fp16 or bf16 run computes most products in float32 on half-precision
           weights, and its outputs are float32 (written as computed); see mask_dtype
  mask_dtype  float32 (default: as mlx-transformers builds it) | dtype: fp16/bf16 only; the mask
           built in `dtype`, so that the whole forward pass and the outputs are in half precision
  compile  false (default) | true: the forward wrapped in mx.compile, traced for each input shape
           before the warm-up (untimed)
  tf32     false (default) | true: GPU only. MLX lets float32 matrix products use reduced precision
           (TF32 on CUDA) unless MLX_ENABLE_TF32=0; this program sets MLX_ENABLE_TF32=0 unless
           tf32 is true, and reports precision tf32 when it is
  timing   end-to-end (default) | device-resident
  weights  auto (default) | checkpoint | onnx | seed (mlx_model.py says what each does)
  seed     0 (default): the seed for `weights: seed`

Timers, each iteration read with perf_counter_ns:
  end-to-end       the cell's numpy arrays made into mx.arrays (a copy into MLX's memory: ordinary
                   host memory on the CPU, CUDA managed memory on CUDA, unified memory on Apple
                   silicon), the forward pass, mx.eval on every output (it returns once they are computed),
                   and each output copied into a numpy array (np.array);
  device-resident  the inputs made into mx.arrays and evaluated before the clock; the forward pass
                   and mx.eval on every output; outputs stay MLX arrays, converted after timing.
`ready` carries `timing` and `host_memory`, and notes saying which weights were used.

Generation (hello's `task: generate`, docs/runtime-protocol.md): the decoder is mlx-transformers'
LlamaForCausalLM (model_type llama; qwen2 as Llama with q/k/v biases), built and decoded by
mlx_generate.py; `ready` says `generate: true` and what a timed prefill and step cover. `device`,
`dtype`, `tf32`, `weights` and `seed` apply as above (mlx-transformers' Llama builds its mask in the
weights' type, so an fp16 generation stays in fp16; its logits are cast to float32; bf16 is refused:
that mask goes through numpy, which has no bfloat16);
`compile`, `timing` and `mask_dtype` are refused there: each step's cache is one position longer
(mx.compile would trace every step again), and a step's span starts and ends with ids in host memory.

The Hugging Face Hub is never asked (HF_HUB_OFFLINE=1 is set before anything is imported).
Needs mlx (`mlx[cpu]` on Linux without a GPU, `mlx[cuda13]` for CUDA, `mlx` on macOS),
mlx-transformers, transformers < 6, numpy, safetensors, PyYAML; `onnx` for `weights: onnx`.
`xbench setup runtime mlx` makes such an environment.
"""

from __future__ import annotations

import inspect
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"  # a model name that is not a local path must never reach the Hub
os.environ["TRANSFORMERS_OFFLINE"] = "1"
if not __package__:  # run by path: the package `runtimes` is found in the folder above this file
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtimes import protocol
from runtimes.protocol import AdapterError, Cell, CellResult, GenerateCell, GenerateResult, Hello, Ready

OPTIONS = {"device": "cpu", "dtype": "fp32", "mask_dtype": "float32", "compile": "false", "tf32": "false", "timing": "end-to-end", "weights": "auto", "seed": "0"}
SETUP = "run `xbench setup runtime mlx` (or pip install mlx mlx-transformers for the python3 this runtime uses)"


def import_mlx() -> Any:
    try:
        import mlx.core as mx
        import mlx_transformers  # noqa: F401
    except ImportError as err:
        raise AdapterError(f"{err.name or 'mlx'} is not installed for {sys.executable}: {SETUP}") from None
    return mx


def blas(mx: Any, gpu: bool) -> str:
    """The matrix-product library MLX uses, where it can be told."""
    if gpu:
        return "cuBLAS" if mx.cuda.is_available() else "Metal (MLX's own kernels)"
    if platform.system() == "Darwin":
        return "Accelerate"
    libs = Path(mx.__file__).resolve().parent.parent / "mlx_cpu.libs"
    found = sorted(p.name for p in libs.glob("libblas*")) if libs.is_dir() else []
    if found:
        return f"reference BLAS ({found[0]}, bundled with the mlx-cpu wheel)"
    return "unknown"


class MlxHF:
    def __init__(self) -> None:
        self.mx: Any = None
        self.model: Any = None
        self.forward: Any = None
        self.compiled = False
        self.resident = False
        self.accepted: set[str] = set()
        self.output_names: list[str] = []
        self.traced: set[tuple] = set()
        self.input_names: list[str] = []
        self.decoding: Any = None

    def load(self, hello: Hello) -> Ready:
        opts = protocol.Options(hello.options, OPTIONS)
        gpu = opts.text("device", ("cpu", "gpu")) == "gpu"
        dtype_name = opts.text("dtype", ("fp32", "fp16", "bf16"))
        half_mask = opts.text("mask_dtype", ("float32", "dtype")) == "dtype"
        if half_mask and dtype_name == "fp32":
            raise AdapterError("option mask_dtype: dtype applies to dtype fp16 or bf16 (an fp32 run builds its mask in float32 anyway)")
        self.compiled = opts.flag("compile")
        tf32 = opts.flag("tf32")
        self.resident = opts.text("timing", ("end-to-end", "device-resident")) == "device-resident"
        weights = opts.text("weights", ("auto", "checkpoint", "onnx", "seed"))
        seed = opts.integer("seed") or 0
        if "tf32" in hello.options and not gpu:
            raise AdapterError("option tf32 applies to device gpu only (MLX's CPU backend computes float32 in float32)")
        if not hello.model.dir.is_dir():
            raise AdapterError(f"the model folder {hello.model.dir} is not a folder")
        os.environ["MLX_ENABLE_TF32"] = "1" if tf32 else "0"  # read once, when MLX first needs it
        mx = self.mx = import_mlx()
        from runtimes import mlx_generate, mlx_model

        device = self._device(gpu, hello.device)
        mx.set_default_device(device)
        dtype = {"fp32": mx.float32, "fp16": mx.float16, "bf16": mx.bfloat16}[dtype_name]
        try:  # a dtype the device cannot multiply fails here, once, not in every cell
            probe = mx.ones((4, 4), dtype=dtype)
            mx.eval(probe @ probe)
        except Exception as err:
            raise AdapterError(f"MLX on {device} cannot compute in {dtype_name}: {protocol.describe(err)}; use another dtype") from None

        generating = hello.task == "generate"
        if generating:
            for name, why in (("compile", "each step's cache is one position longer, so mx.compile would trace every step anew"),
                              ("timing", "a generation's timed spans start and end with the ids in host memory"),
                              ("mask_dtype", "mlx-transformers' Llama builds its mask in the weights' type already")):
                if name in hello.options:
                    raise AdapterError(f"option {name} does not apply to generation ({why}); leave it out of a `generate:` scenario")
            if dtype_name == "bf16":
                raise AdapterError("dtype bf16 cannot generate: mlx-transformers' Llama builds its attention mask through numpy, which has no bfloat16; use fp16 or fp32")
            built = mlx_generate.build(hello, weights, seed)
            mlx_generate.check_layout(built.model, hello.decoder)
        else:
            self.output_names = [o.name for o in hello.model.outputs] or ["last_hidden_state"]
            built = mlx_model.build(hello, weights, seed, "pooler_output" in self.output_names)
        self.model = built.model
        if dtype != mx.float32:
            self.model.set_dtype(dtype)
            if generating:
                mlx_generate.keep_rotary_float32(self.model)
        if half_mask:
            mlx_model.mask_in(type(self.model), dtype)
        self.accepted = set(inspect.signature(self.model.__call__).parameters)
        self.forward = mx.compile(self._forward) if self.compiled else self._forward

        backend = ("cuda" if mx.cuda.is_available() else "metal") if gpu else "cpu"
        where = f"{mx.device_info(device).get('device_name', 'GPU')} ({backend}:{hello.device})" if gpu else protocol.cpu_name()
        precision = "tf32" if gpu and tf32 and dtype_name == "fp32" else dtype_name
        host_memory = self._host_memory(backend)
        library = blas(mx, gpu)
        notes = [
            f"weights: {built.weights}",
            f"configuration: {built.configuration}",
            f"backend {backend}, device {mx.default_device()}",
            f"matrix products: {library}",
            "model.eval() (dropout off)",
        ]
        if backend == "cpu" and library.startswith("reference BLAS"):
            notes.append("the Linux CPU wheel bundles the reference BLAS (no optimised kernels): expect matrix products far slower than in other runtimes")
        if gpu:
            notes.append(f"MLX_ENABLE_TF32={os.environ['MLX_ENABLE_TF32']}: float32 matrix products {'may use TF32' if tf32 else 'in full float32'}")
        if half_mask:
            notes.append(f"{dtype_name} weights, attention mask built in {dtype_name} (mask_dtype: dtype): the forward pass and its outputs are {dtype_name}")
        elif dtype_name != "fp32":
            notes.append(
                f"{dtype_name} weights; mlx-transformers' float32 attention mask promotes activations to float32 from the first attention on, "
                "so most products run in float32 and the outputs are float32"
            )
        if self.compiled:
            notes.append("mx.compile, traced for each input shape before the warm-up")
        if generating:
            self.decoding = mlx_generate.MlxDecoding(self.model)
            notes.append("generation: mlx-transformers' LlamaForCausalLM and DynamicCache, greedy mx.argmax")
        if hello.threads:
            notes.append(f"hello's threads ({hello.threads}) not applied: MLX has no thread setting")
        if built.not_used:
            notes.append("not used: " + "; ".join(built.not_used))
        return Ready(
            engine="mlx",
            version=f"MLX {mx.__version__} (mlx-transformers {mlx_model.package_version('mlx-transformers')}, transformers {mlx_model.package_version('transformers')})",
            device=where,
            precision=precision,
            placement=[(backend, 1)],
            threads="MLX's own (no thread setting)",
            timer=mlx_generate.timer(backend) if generating else self._timer(backend),
            timer_label="prefill and steps, ids from and to numpy" if generating else self._timer_label(),
            timing="device-resident" if self.resident else "end-to-end",
            host_memory="none" if self.resident else host_memory,
            extra={"weights": built.strategy, "blas": library, "notes": "; ".join(notes)},
            generate=generating,
            generate_timer=mlx_generate.timer(backend) if generating else "",
        )

    def _device(self, gpu: bool, index: int) -> Any:
        mx = self.mx
        if not gpu:
            return mx.cpu
        if not mx.is_available(mx.gpu):
            raise AdapterError(
                f"device gpu was asked for, but MLX {mx.__version__} has no GPU backend here (the installed MLX is the CPU build); "
                "install mlx[cuda13] on Linux with an NVIDIA GPU (`xbench setup runtime mlx --gpu`), or use macOS for Metal"
            )
        count = mx.device_count(mx.gpu)
        if index >= count:
            raise AdapterError(f"GPU {index} was asked for, but MLX sees {count}")
        return mx.Device(mx.gpu, index)

    @staticmethod
    def _host_memory(backend: str) -> str:
        if backend == "cpu":
            return "none"
        return "unified"  # Metal: Apple silicon's unified memory; CUDA: MLX allocates host-visible arrays as CUDA managed memory

    def _timer_label(self) -> str:
        how = " (mx.compile)" if self.compiled else ""
        return ("device-resident" if self.resident else "end-to-end") + how

    def _timer(self, backend: str) -> str:
        what = "the mx.compile'd forward pass" if self.compiled else "the forward pass"
        if self.resident:
            where = " (on CUDA in managed memory, which moves to the GPU when the GPU first reads it)" if backend == "cuda" else ""
            return (
                f"device-resident: inputs made into mx.arrays{where} and evaluated before the clock; {what}, then mx.eval on every output "
                "(it returns once they are computed); outputs stay MLX arrays and are converted to numpy only after timing"
            )
        memory = {
            "cpu": "a copy into MLX's host memory",
            "cuda": "a copy into CUDA managed memory, which MLX uses for arrays made on the host; outputs are computed in device memory and moved to managed memory when read",
            "metal": "a copy into Apple silicon's unified memory",
        }[backend]
        return (
            f"end-to-end: the cell's numpy arrays made into mx.arrays ({memory}), {what}, mx.eval on every output "
            "(it returns once they are computed), and every output copied into a numpy array (np.array)"
        )

    def _forward(self, *arrays: Any) -> list[Any]:
        out = self.model(**dict(zip(self.input_names, arrays)), return_dict=True)
        return [getattr(out, name) for name in self.output_names]

    def run_cell(self, cell: Cell) -> CellResult:
        import numpy as np

        mx = self.mx
        if self.decoding is not None:
            raise AdapterError("this program runs decoders only to generate (a `generate:` scenario), not as one forward pass per cell")
        host = protocol.load_arrays(cell.inputs)  # numpy arrays, read before any timing
        refused = sorted(set(host) - self.accepted)
        if refused:
            raise AdapterError(f"{type(self.model).__name__} takes no {', '.join(refused)}")
        for name in self.output_names:
            if name not in ("last_hidden_state", "pooler_output"):
                raise AdapterError(f"the model gives no `{name}`, which the ONNX model declares as an output")
        self.input_names = sorted(host)
        arrays = [host[name] for name in self.input_names]
        forward = self.forward

        prepare_started = time.perf_counter_ns()
        resident = [mx.array(a) for a in arrays]
        mx.eval(resident)
        key = tuple((name, a.shape, str(a.dtype)) for name, a in zip(self.input_names, arrays))
        if self.compiled and key not in self.traced:
            mx.eval(forward(*resident))  # traces and compiles for this shape, untimed
            self.traced.add(key)
        if self.resident:

            def step() -> list[Any]:
                outs = forward(*resident)
                mx.eval(outs)
                return outs

        else:

            def step() -> list[Any]:
                outs = forward(*[mx.array(a) for a in arrays])
                mx.eval(outs)
                return [np.array(o.view(mx.uint16)) if o.dtype == mx.bfloat16 else np.array(o) for o in outs]

        prepare_ms = protocol.elapsed_ms(prepare_started)
        timed = protocol.time_iterations(step, cell.warmup, cell.iterations, cell.min_time_s)
        outputs = {}
        for name, value in zip(self.output_names, timed.last):
            if isinstance(value, np.ndarray):
                value = mx.array(value).view(mx.bfloat16) if value.dtype == np.uint16 else mx.array(value)
            outputs[name] = value
        mx.save_safetensors(str(cell.outputs), outputs)  # bf16 written as BF16
        return CellResult(timed.samples_ms, prepare_ms, timed.warmup_ms)

    def generate(self, cell: GenerateCell) -> GenerateResult:
        if self.decoding is None:
            raise AdapterError("a `generate` message to a program loaded without `task: generate`")
        started = time.perf_counter_ns()
        self.decoding.reset()  # nothing else to prepare: the model is loaded, each generation starts a new cache
        prepare_ms = protocol.elapsed_ms(started)
        result = protocol.time_generations(cell, self.decoding)
        result.prepare_ms = prepare_ms
        return result

    def peak_device_mib(self) -> float | None:
        mx = self.mx
        if mx is None or mx.default_device().type == mx.cpu:
            return None
        return mx.get_peak_memory() / 2**20


if __name__ == "__main__":
    sys.exit(protocol.serve(MlxHF()))
