#!/usr/bin/env python3
# xbench-framework: torch
"""xbench external runtime: the model rebuilt in PyTorch with transformers.

Speaks protocol 1 of docs/runtime-protocol.md over stdin/stdout (see protocol.py). Options (strings):

  device      cpu (default) | cuda (the GPU is hello's `device` index)
  dtype       fp32 (default) | fp16 | bf16: the weights and the arithmetic
  attention   eager (default) | sdpa
  compile     empty (default): eager; else a torch.compile mode: default, reduce-overhead,
              max-autotune, max-autotune-no-cudagraphs (compiled per input shape, untimed)
  cuda_graph  false (default) | true: the forward captured in a torch.cuda.CUDAGraph per input shape,
              with static input buffers that each timed iteration copies the host inputs into
  timing      end-to-end (default) | device-resident: the inputs copied to the device before the
              clock, the outputs left there, the device synchronized
  io          CUDA, end to end only: pinned (default) | pageable. pinned: the cell's input tensors
              are put in page-locked host buffers before timing (allocated once per shape), each
              iteration copies them to the device with non_blocking=True and the outputs into
              page-locked host buffers with non_blocking=True, then synchronizes; pageable: inputs
              moved with .to() from ordinary host memory and outputs copied out with .cpu()
  tf32        false (default) | true: CUDA only; lets fp32 matrix products use TF32 (precision tf32)
  seed        0 (default): the seed for `weights: seed`
  weights     auto (default) | checkpoint | onnx | seed
  cache       generation only: dynamic (default) | static (torch_generate.py)

In a generation scenario (hello's `task: generate`) torch_generate.py loads the causal language
model and answers `generate` messages; its opening comment says how and which options apply.

The model (hf_model.py): its configuration comes from the model folder's config.json when there
is one, else from model.yaml's `architecture` and the matching configuration embedded in
scripts/export_models.py. Its weights, with `auto` tried in this order:
  checkpoint  model.safetensors / pytorch_model.bin (+ config.json) in the folder: from_pretrained;
  onnx        the ONNX file's initializers, matched by name to the model's parameters (a common
              prefix such as `model.` stripped; 2-D weights transposed where the graph uses them as
              the right-hand side of MatMul); every parameter must be matched;
  seed        only when model.yaml says `weights: random`: torch.manual_seed(seed), then the model
              class built from the configuration with eager attention, as the export script does.
`ready` says which were used (fields `weights` and `notes`).

Timer (perf_counter_ns around each iteration), end to end: the host input tensors are copied to
the device (pinned or pageable, as `io` says), the forward pass runs under
torch.inference_mode(), the outputs the ONNX model declares are copied to host memory, and the
device is synchronized. Device-resident: the forward pass on inputs already on the device and
the synchronization only. On the CPU nothing is copied either way. `ready` carries `timing` and
`host_memory` (none, pinned or pageable).

Needs torch, transformers, safetensors, numpy, PyYAML; `onnx` for `weights: onnx`.
"""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if not __package__:  # run by path: the package `runtimes` is found in the folder above this file
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtimes import hf_model, protocol, torch_generate
from runtimes.protocol import AdapterError, Cell, CellResult, Hello, Ready

OPTIONS = {
    "device": "cpu",
    "dtype": "fp32",
    "attention": "eager",
    "compile": "",
    "cuda_graph": "false",
    "timing": "end-to-end",
    "io": "",
    "tf32": "false",
    "seed": "0",
    "weights": "auto",
    "cache": "",
}
COMPILE_MODES = ("", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def output(out: Any, name: str, to_host: bool = True) -> Any:
    """The transformers output standing for the ONNX output `name` (e.g. last_hidden_state)."""
    try:
        tensor = out[name]
    except KeyError:
        raise AdapterError(f"the model gives no `{name}`, which the ONNX model declares as an output") from None
    return tensor.cpu() if to_host else tensor


class TorchHF:
    """The model in PyTorch: eager, compiled, or replayed from a CUDA graph per input shape."""

    def __init__(self) -> None:
        self.model: Any = None
        self.forward: Callable[..., Any] = lambda **_: None
        self.device: Any = None
        self.cuda = False
        self.cuda_graph = False
        self.compiled = False
        self.output_names: list[str] = []
        self.accepted: set[str] = set()
        self.graphs: dict[tuple, tuple[Any, dict[str, Any], dict[str, Any]]] = {}  # shape -> graph, inputs, outputs
        self.prepared_shapes: set[tuple] = set()
        self.resident = False
        self.io = ""  # pinned | pageable on CUDA end to end; "" otherwise (nothing moves while timed)
        self.generator: torch_generate.TorchGenerator | None = None

    def load(self, hello: Hello) -> Ready:
        import torch
        import transformers

        opts = protocol.Options(hello.options, OPTIONS)
        if hello.task == "generate":
            self.generator, ready = torch_generate.load(hello, opts)
            return ready
        if opts.text("cache"):
            raise AdapterError("option cache applies to generation scenarios only (a scenario with `generate:`)")
        device_kind = opts.text("device", ("cpu", "cuda"))
        dtype_name = opts.text("dtype", ("fp32", "fp16", "bf16"))
        attention = opts.text("attention", ("eager", "sdpa"))
        compile_mode = opts.text("compile", COMPILE_MODES)
        self.cuda_graph = opts.flag("cuda_graph")
        tf32 = opts.flag("tf32")
        seed = opts.integer("seed") or 0
        weights = opts.text("weights", ("auto", "checkpoint", "onnx", "seed"))
        self.cuda = device_kind == "cuda"
        self.resident = opts.text("timing", protocol.TIMINGS) == "device-resident"
        io = opts.text("io", ("", "pinned", "pageable"))
        if io and not self.cuda:
            raise AdapterError("option io applies to device cuda only (on the CPU the model reads the host tensors themselves)")
        if io and self.resident:
            raise AdapterError("option io applies to timing end-to-end only (device-resident timing moves no host data)")
        self.io = (io or "pinned") if self.cuda and not self.resident else ""
        if self.cuda and not torch.cuda.is_available():
            raise AdapterError(f"device cuda was asked for, but torch {torch.__version__} sees no CUDA GPU (torch.version.cuda = {torch.version.cuda})")
        if not self.cuda and (self.cuda_graph or tf32):
            raise AdapterError("options cuda_graph and tf32 need device cuda")
        if self.cuda_graph and compile_mode in ("reduce-overhead", "max-autotune"):
            raise AdapterError(
                f"compile mode {compile_mode} already captures CUDA graphs; use it without cuda_graph, "
                "or cuda_graph with compile default / max-autotune-no-cudagraphs"
            )
        if self.cuda and hello.device >= torch.cuda.device_count():
            raise AdapterError(f"GPU {hello.device} was asked for, but torch sees {torch.cuda.device_count()}")
        self.device = torch.device(f"cuda:{hello.device}" if self.cuda else "cpu")
        if self.cuda:
            torch.cuda.set_device(self.device)
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
        if hello.threads:
            torch.set_num_threads(int(hello.threads))

        transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bars in the diagnostics
        self.output_names = [o.name for o in hello.model.outputs] or ["last_hidden_state"]
        with_pooler = "pooler_output" in self.output_names
        built = hf_model.build(hello, weights, seed, with_pooler)
        model = built.model
        hf_model.use_attention(model, attention)
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
        self.model = model.eval().to(device=self.device, dtype=dtype)
        self.accepted = set(inspect.signature(self.model.forward).parameters)

        self.forward = self.model
        if compile_mode:
            limits = torch._dynamo.config
            # One specialised graph per cell's shape; never fall back to eager without saying so.
            for name in ("recompile_limit", "cache_size_limit"):
                if hasattr(limits, name):
                    setattr(limits, name, 4096)
            if hasattr(limits, "fail_on_recompile_limit_hit"):
                limits.fail_on_recompile_limit_hit = True
            self.forward = torch.compile(self.model, mode=None if compile_mode == "default" else compile_mode, dynamic=False)
            self.compiled = True

        if self.cuda_graph:
            self._probe_capture(hello, attention)

        precision = "tf32" if dtype_name == "fp32" and self.cuda and tf32 else dtype_name
        where = f"{torch.cuda.get_device_name(self.device)} (cuda:{hello.device})" if self.cuda else protocol.cpu_name()
        notes = [f"weights: {built.weights}", f"configuration: {built.configuration}", f"attention {self.model.config._attn_implementation}"]
        if compile_mode:
            notes.append(f"torch.compile mode {compile_mode}, dynamic=False, compiled per input shape before timing")
        if built.not_used:
            notes.append("not used: " + "; ".join(built.not_used))
        if self.cuda:
            notes.append(f"fp32 matmul TF32 {'allowed' if tf32 else 'off'}")
        return Ready(
            engine="torch",
            version=f"{torch.__version__} (transformers {transformers.__version__})",
            device=where,
            precision=precision,
            placement=[("cuda" if self.cuda else "cpu", 1)],
            threads=f"intra-op {torch.get_num_threads()}",
            timer=self._timer(compile_mode),
            timer_label=self._timer_label(compile_mode),
            timing="device-resident" if self.resident else "end-to-end",
            host_memory=self.io or "none",
            extra={"weights": built.strategy, "notes": "; ".join(notes)},
        )

    def _timer_label(self, compile_mode: str) -> str:
        how = [f"{self.io} copies"] if self.io else []
        if compile_mode:
            how.append(f"torch.compile {compile_mode}")
        if self.cuda_graph:
            how.append("CUDA graph")
        return ("device-resident" if self.resident else "end-to-end") + (f" ({', '.join(how)})" if how else "")

    def _timer(self, compile_mode: str) -> str:
        what = f"the torch.compile({compile_mode}) model's forward" if compile_mode else "the forward pass"
        if self.cuda_graph:
            what = "graph replay (the forward pass captured once per input shape, before timing)"
        else:
            what += " under torch.inference_mode()"
        if not self.cuda:
            timing = "device-resident" if self.resident else "end-to-end"
            return f"{timing} on the CPU: {what} on the host input tensors (read before timing; no copies either way), outputs are host tensors"
        where = "the CUDA graph's static input buffers" if self.cuda_graph else "the GPU"
        if self.resident:
            return (
                f"device-resident: the cell's inputs copied to {where} before the clock; {what}, outputs left on the GPU, "
                "torch.cuda.synchronize() before the clock stops; outputs are copied to host memory only after timing"
            )
        if self.io == "pinned":
            return (
                "end-to-end (pinned copies): the cell's input tensors put in page-locked host buffers before timing (allocated "
                f"once per shape); each iteration copies them to {where} with non_blocking=True, runs {what}, copies the outputs "
                "into page-locked host buffers with non_blocking=True, and calls torch.cuda.synchronize() before the clock stops"
            )
        copy_in = "copied into the CUDA graph's static input buffers with copy_()" if self.cuda_graph else "moved to the GPU with .to()"
        return (
            f"end-to-end (pageable copies): host input tensors in ordinary (pageable) memory {copy_in}, {what}, "
            "outputs copied to host memory with .cpu(); torch.cuda.synchronize() before the clock stops"
        )

    def generate(self, cell: protocol.GenerateCell) -> protocol.GenerateResult:
        if self.generator is None:
            raise AdapterError("a `generate` message, but hello did not say `task: generate`")
        return self.generator.generate(cell)

    def run_cell(self, cell: Cell) -> CellResult:
        import torch

        try:
            return self._run_cell(cell)
        except Exception:
            if self.cuda:  # an out-of-memory cell must not starve the next one
                self.graphs.clear()
                torch.cuda.empty_cache()
            raise

    def _run_cell(self, cell: Cell) -> CellResult:
        import torch
        from safetensors.torch import load_file, save_file

        host = load_file(str(cell.inputs))  # CPU tensors, built before any timing
        refused = sorted(set(host) - self.accepted)
        if refused:
            raise AdapterError(f"{type(self.model).__name__}.forward takes no {', '.join(refused)}")
        shape_key = tuple((name, tuple(t.shape), str(t.dtype)) for name, t in sorted(host.items()))

        with torch.inference_mode():
            prepare_started = time.perf_counter_ns()
            step = self._graph_step(shape_key, host) if self.cuda_graph else self._eager_step(shape_key, host)
            self.prepared_shapes.add(shape_key)
            prepare_ms = protocol.elapsed_ms(prepare_started)
            timed = protocol.time_iterations(step, cell.warmup, cell.iterations, cell.min_time_s)
        save_file({name: t.cpu().contiguous() for name, t in timed.last.items()}, str(cell.outputs))  # device-resident outputs leave the GPU here
        return CellResult(timed.samples_ms, prepare_ms, timed.warmup_ms)

    def _eager_step(self, shape_key: tuple, host: dict[str, Any]) -> Callable[[], dict[str, Any]]:
        """A step that runs the (possibly compiled) forward, as `timing` and `io` say; the first
        run for a shape (compiling, for a compiled model) happens here, untimed."""
        import torch

        forward, names, device = self.forward, self.output_names, self.device
        if not self.cuda or self.io == "pageable":
            cuda = self.cuda

            def step() -> dict[str, Any]:
                inputs = {name: t.to(device) for name, t in host.items()}
                out = forward(**inputs)
                result = {name: output(out, name) for name in names}
                if cuda:
                    torch.cuda.synchronize(device)
                return result

            if self.compiled and shape_key not in self.prepared_shapes:
                step()  # compiles for this shape, untimed
            return step

        on_device = {name: t.to(device) for name, t in host.items()}
        first = forward(**on_device)  # compiles for this shape when compiled; gives the outputs' shapes
        shapes = {name: output(first, name, to_host=False) for name in names}
        torch.cuda.synchronize(device)
        if self.resident:
            resident_inputs = on_device

            def resident_step() -> dict[str, Any]:
                out = forward(**resident_inputs)
                result = {name: output(out, name, to_host=False) for name in names}
                torch.cuda.synchronize(device)
                return result

            return resident_step

        pinned_in = {name: t.pin_memory() for name, t in host.items()}
        host_out = {name: torch.empty(t.shape, dtype=t.dtype, pin_memory=True) for name, t in shapes.items()}
        del on_device, first, shapes

        def pinned_step() -> dict[str, Any]:
            inputs = {name: t.to(device, non_blocking=True) for name, t in pinned_in.items()}
            out = forward(**inputs)
            for name in names:
                host_out[name].copy_(output(out, name, to_host=False), non_blocking=True)
            torch.cuda.synchronize(device)
            return host_out

        return pinned_step

    def _probe_capture(self, hello: Hello, attention: str) -> None:
        """Captures the forward once on a 1 x 8 dummy batch, so that a model that cannot be captured
        fails the load with one message instead of every cell."""
        import torch

        dtypes = {"int64": torch.int64, "int32": torch.int32, "float32": torch.float32, "float16": torch.float16}
        dummy = {
            i.name: (torch.ones if i.name == "attention_mask" else torch.zeros)((1, 8), dtype=dtypes.get(i.elem_type, torch.int64))
            for i in hello.model.inputs
            if i.name in self.accepted
        }
        try:
            with torch.inference_mode():
                self._graph_step(("probe",), dummy)
        except Exception as err:
            hint = ""
            if attention == "eager" and "during CUDA graph capture" in str(err):
                hint = " (transformers' eager attention copies a host scalar to the GPU while it builds the mask); use attention: sdpa, or compile"
            raise AdapterError(f"the forward pass cannot be captured in a CUDA graph: {protocol.describe(err)}{hint}") from err
        finally:
            self.graphs.pop(("probe",), None)
            torch.cuda.synchronize(self.device)

    def _graph_step(self, key: tuple, host: dict[str, Any]) -> Callable[[], dict[str, Any]]:
        """A step that replays this shape's CUDA graph, capturing it first when needed (untimed)."""
        import torch

        if key not in self.graphs:
            self.graphs.clear()  # one shape's graph (and its memory pool) at a time
            static_in = {name: t.to(self.device) for name, t in host.items()}
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(3):  # kernels chosen and memory pooled before the capture
                    self.forward(**static_in)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = self.forward(**static_in)
            static_out = {name: output(out, name, to_host=False) for name in self.output_names}
            self.graphs[key] = (graph, static_in, static_out)
        graph, static_in, static_out = self.graphs[key]
        device = self.device
        if self.resident:
            for name, t in host.items():  # this cell's inputs reach the GPU before the clock
                static_in[name].copy_(t)
            torch.cuda.synchronize(device)

            def resident_step() -> dict[str, Any]:
                graph.replay()
                torch.cuda.synchronize(device)
                return static_out

            return resident_step
        if self.io == "pinned":
            pinned_in = {name: t.pin_memory() for name, t in host.items()}
            host_out = {name: torch.empty(t.shape, dtype=t.dtype, pin_memory=True) for name, t in static_out.items()}

            def pinned_step() -> dict[str, Any]:
                for name, t in pinned_in.items():
                    static_in[name].copy_(t, non_blocking=True)
                graph.replay()
                for name, t in static_out.items():
                    host_out[name].copy_(t, non_blocking=True)
                torch.cuda.synchronize(device)
                return host_out

            return pinned_step

        def step() -> dict[str, Any]:
            for name, t in host.items():
                static_in[name].copy_(t)
            graph.replay()
            result = {name: t.cpu() for name, t in static_out.items()}
            torch.cuda.synchronize(device)
            return result

        return step

    def peak_device_mib(self) -> float | None:
        if not self.cuda:
            return None
        import torch

        return torch.cuda.max_memory_allocated(self.device) / 2**20


if __name__ == "__main__":
    sys.exit(protocol.serve(TorchHF()))
