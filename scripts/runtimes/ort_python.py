#!/usr/bin/env python3
# xbench-framework: onnxruntime
"""xbench external runtime: Python onnxruntime, called the way people call it.

Speaks protocol 1 of docs/runtime-protocol.md over stdin/stdout (see protocol.py). Options (strings):

  provider            cpu (default) | cuda. CUDA is never allowed to fall back to the CPU silently:
                      the program refuses to start unless CUDAExecutionProvider is registered and
                      takes nodes of the graph.
  io                  numpy (default): `session.run(None, feeds)` with numpy arrays in and out
                      (end to end only). binding: IO binding, timed by `timing`.
  timing              end-to-end (default) | device-resident (io binding only). With binding, end
                      to end: each iteration copies the numpy inputs to the device as OrtValues,
                      runs with outputs bound to the device, waits for them and copies them to
                      numpy (copy_outputs_to_cpu); device-resident: the inputs are copied to the
                      device and bound before the clock, each iteration runs and waits, and the
                      outputs stay on the device (copied out only for the outputs file).
  threads             intra-op threads (default: hello's `threads`, else onnxruntime's default).
  graph_optimization  disable | basic | extended | all (default: onnxruntime's default, all).
  tf32                CUDA only: true (default, onnxruntime's own default) lets fp32 matrix
                      products use TF32, reported as precision `tf32`; false keeps them in fp32.

Node placement is read from onnxruntime's verbose log while the session is created (standard error
is captured to a temporary file for that moment), as xbench's own ort runtimes do.

Needs numpy, safetensors and onnxruntime (onnxruntime-gpu for CUDA); `onnx`, when installed, is
used to tell fp16 weights from fp32 ones (else the precision comes from the output types).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if not __package__:  # run by path: the package `runtimes` is found in the folder above this file
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from runtimes import protocol
from runtimes.protocol import AdapterError, Cell, CellResult, Hello, Ready

OPTIONS = {"provider": "cpu", "io": "numpy", "timing": "end-to-end", "threads": "", "graph_optimization": "", "tf32": "true"}
OPTIMIZATION_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
PROVIDER_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
PLACEMENT_LINE = re.compile(r"placed on \[(?P<ep>[^\]]+)\]\. Number of nodes: (?P<n>\d+)")


@contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Collects what is written to file descriptor 2 (C++ logs included) inside the block; lines
    that are not verbose or info are passed on to the real standard error afterwards."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode("utf-8", "replace").splitlines())
            for line in lines:
                if "[V:" not in line and "[I:" not in line:
                    print(line, file=sys.stderr)


def parse_placement(log: list[str]) -> list[tuple[str, int]]:
    """Nodes per execution provider from onnxruntime's "placed on [EP]. Number of nodes: N" lines."""
    counts: dict[str, int] = {}
    for line in log:
        match = PLACEMENT_LINE.search(line)
        if match:
            counts[match["ep"]] = counts.get(match["ep"], 0) + int(match["n"])
    return list(counts.items())


def weights_precision(onnx_path: Path, output_types: list[str]) -> str:
    """fp16 when the model's float weights are mostly float16 (xbench's own rule), else fp32; from
    the output types when the `onnx` package is not installed."""
    try:
        import onnx
    except ImportError:
        return "fp16" if any("float16" in t for t in output_types) else "fp32"
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    elements = {onnx.TensorProto.FLOAT: 0, onnx.TensorProto.FLOAT16: 0}
    for tensor in graph.initializer:
        if tensor.data_type in elements:
            count = 1
            for d in tensor.dims:
                count *= max(d, 0)
            elements[tensor.data_type] += count
    half = elements[onnx.TensorProto.FLOAT16] > elements[onnx.TensorProto.FLOAT]
    return "fp16" if half or any("float16" in t for t in output_types) else "fp32"


def gpu_name(index: int) -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--id={index}", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=20
        )
        name = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        name = ""
    return f"{name or 'CUDA GPU'} (cuda:{index})"


class OrtPython:
    """One onnxruntime.InferenceSession, run through numpy or IO binding."""

    def __init__(self) -> None:
        self.session: Any = None
        self.binding_mode = False
        self.device_type = "cpu"
        self.device_id = 0
        self.run_options: Any = None
        self.resident = False

    def load(self, hello: Hello) -> Ready:
        import onnxruntime as ort

        opts = protocol.Options(hello.options, OPTIONS)
        provider = opts.text("provider", tuple(PROVIDER_NAMES))
        self.binding_mode = opts.text("io", ("numpy", "binding")) == "binding"
        self.resident = opts.text("timing", protocol.TIMINGS) == "device-resident"
        if self.resident and not self.binding_mode:
            raise AdapterError("timing device-resident needs io binding (session.run with numpy arrays always copies in and out)")
        level = opts.text("graph_optimization", ("", *OPTIMIZATION_LEVELS))
        threads = opts.integer("threads")
        if threads is None:
            threads = hello.threads
        tf32 = opts.flag("tf32")
        if "tf32" in hello.options and provider != "cuda":
            raise AdapterError("option tf32 applies to provider cuda only")
        wanted = PROVIDER_NAMES[provider]

        if provider == "cuda" and wanted not in ort.get_available_providers():
            raise AdapterError(
                f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (available: {', '.join(ort.get_available_providers())}); "
                "install onnxruntime-gpu built for this machine's CUDA, not the CPU package"
            )
        self.device_type = provider
        self.device_id = hello.device if provider == "cuda" else 0

        so = ort.SessionOptions()
        so.log_severity_level = 0  # verbose while the session is created: node placement is logged
        if threads is not None:
            so.intra_op_num_threads = int(threads)
        if level:
            so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPTIMIZATION_LEVELS[level])
        providers: list[Any] = (
            [(wanted, {"device_id": self.device_id, "use_tf32": int(tf32)})] if provider == "cuda" else [wanted]
        )
        with captured_stderr() as log:
            session = ort.InferenceSession(str(hello.model.onnx), so, providers=providers)
        if session.get_providers()[0] != wanted:
            raise AdapterError(f"onnxruntime did not register {wanted} (session providers: {', '.join(session.get_providers())})")
        placement = parse_placement(log)
        if not any(ep == wanted and n > 0 for ep, n in placement):
            found = ", ".join(f"{ep} {n}" for ep, n in placement) or "not reported"
            raise AdapterError(f"{wanted} was asked for but took none of the graph's nodes (placement: {found})")
        if provider == "cuda":
            session.disable_fallback()  # a failing CUDA run must not be retried on the CPU
        self.session = session
        self.run_options = ort.RunOptions()
        self.run_options.log_severity_level = 2

        output_types = [o.type for o in session.get_outputs()]
        precision = weights_precision(hello.model.onnx, output_types)
        if provider == "cuda" and precision == "fp32" and tf32:
            precision = "tf32"
        where = gpu_name(self.device_id) if provider == "cuda" else protocol.cpu_name()
        threads_text = f"intra-op {threads}" if threads is not None else "intra-op onnxruntime's default (one per physical core)"
        notes = [f"graph optimization {level or 'onnxruntime default (all)'}"]
        if provider == "cuda":
            notes.append(f"fp32 matrix products in {'TF32 (onnxruntime default)' if tf32 else 'fp32 (TF32 off)'}")
        return Ready(
            engine="onnxruntime-python",
            version=ort.__version__,
            device=where,
            precision=precision,
            placement=placement,
            threads=threads_text,
            timer=self._timer(provider),
            timer_label=self._timer_label(provider),
            timing="device-resident" if self.resident else "end-to-end",
            host_memory="pageable" if provider == "cuda" and not self.resident else "none",
            extra={"notes": "; ".join(notes), "io": "binding" if self.binding_mode else "numpy"},
        )

    def _timer_label(self, provider: str) -> str:
        if not self.binding_mode:
            return "end-to-end"
        if self.resident:
            return "device-resident (IO binding)"
        return "end-to-end (IO binding, pageable copies)" if provider == "cuda" else "IO binding"

    def _timer(self, provider: str) -> str:
        if not self.binding_mode:
            return (
                "end-to-end: session.run(None, feeds) with numpy arrays in host memory and numpy outputs back"
                + (" (onnxruntime copies inputs to the GPU and outputs back, and returns after the GPU has finished)" if provider == "cuda" else "")
            )
        where = "the GPU" if provider == "cuda" else "CPU memory allocated by onnxruntime"
        if self.resident:
            return (
                f"device-resident (IO binding): numpy inputs copied to {'the GPU' if provider == 'cuda' else 'OrtValues'} and bound before "
                f"the clock; run_with_iobinding with outputs bound to {where}, then io_binding.synchronize_outputs() before the clock "
                "stops; outputs are copied to host memory only after timing, for the outputs file"
            )
        if provider == "cuda":
            return (
                "end-to-end (IO binding): numpy inputs (pageable host memory) copied to the GPU as new OrtValues "
                "(OrtValue.ortvalue_from_numpy), bound, run_with_iobinding with outputs bound to the GPU, "
                "io_binding.synchronize_outputs(), then the outputs copied to numpy arrays in pageable host memory "
                "(copy_outputs_to_cpu) before the clock stops"
            )
        return (
            "end-to-end (IO binding on the CPU): numpy inputs wrapped as OrtValues (no copy), bound, run_with_iobinding with "
            "outputs bound to CPU memory allocated by onnxruntime, then synchronize_outputs(); the outputs, already in "
            "host memory, are converted to numpy only after timing"
        )

    def run_cell(self, cell: Cell) -> CellResult:
        feeds = protocol.load_arrays(cell.inputs)
        names = [o.name for o in self.session.get_outputs()]
        prepare_started = time.perf_counter_ns()
        if self.binding_mode:
            step = self._binding_step(feeds, names)
        else:
            session, run_options = self.session, self.run_options

            def step() -> list[Any]:
                return session.run(None, feeds, run_options)

        prepare_ms = protocol.elapsed_ms(prepare_started)
        timed = protocol.time_iterations(step, cell.warmup, cell.iterations, cell.min_time_s)
        if self.binding_mode:
            outputs = [value if isinstance(value, np.ndarray) else value.numpy() for value in timed.last]
        else:
            outputs = timed.last
        protocol.save_arrays(cell.outputs, dict(zip(names, outputs)))
        return CellResult(timed.samples_ms, prepare_ms, timed.warmup_ms)

    def _binding_step(self, feeds: dict[str, Any], names: list[str]) -> Any:
        import onnxruntime as ort

        session, run_options = self.session, self.run_options
        device_type, device_id = self.device_type, self.device_id
        binding = session.io_binding()
        for name in names:
            binding.bind_output(name, device_type, device_id)
        if self.resident:  # the inputs reach the device before the clock
            values = {name: ort.OrtValue.ortvalue_from_numpy(array, device_type, device_id) for name, array in feeds.items()}
            for name, value in values.items():
                binding.bind_ortvalue_input(name, value)

            def resident_step(_bound: dict[str, Any] = values) -> list[Any]:  # the bound inputs live as long as the step
                session.run_with_iobinding(binding, run_options)
                binding.synchronize_outputs()
                return binding.get_outputs()

            return resident_step
        to_host = device_type == "cuda"

        def step() -> list[Any]:
            for name, array in feeds.items():
                value = ort.OrtValue.ortvalue_from_numpy(array, device_type, device_id)
                binding.bind_ortvalue_input(name, value)
            session.run_with_iobinding(binding, run_options)
            binding.synchronize_outputs()
            return binding.copy_outputs_to_cpu() if to_host else binding.get_outputs()

        return step

    def peak_device_mib(self) -> float | None:
        return None  # onnxruntime's Python API does not report its arena's peak


if __name__ == "__main__":
    sys.exit(protocol.serve(OrtPython()))
