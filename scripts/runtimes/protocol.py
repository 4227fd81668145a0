"""The program's side of xbench's external runtime protocol, version 1 (docs/runtime-protocol.md).

An adapter implements `Adapter` (load the model, run one cell, report peak memory) and calls
`serve(adapter)`; this module owns everything else:

- the JSON-lines channel: messages are read from standard input and written to the *real*
  standard output, which is taken over at start-up. File descriptor 1 and `sys.stdout` are then
  pointed at standard error, so that whatever a library prints (Python or C) reaches xbench's
  diagnostics and never the protocol stream;
- the message loop: hello → ready | error, cell → result | cell_error, generate → generated |
  cell_error, bye → done;
- the timing rule shared by every adapter (`time_iterations`), and the words `ready` uses to
  class a timer (`TIMINGS`: end-to-end or device-resident; `HOST_MEMORY`: none, pageable,
  pinned or unified), which every adapter must fill in (`Ready.timing`, `Ready.host_memory`);
- option parsing with defaults and checked choices (`Options`);
- safetensors files as numpy arrays (`load_arrays`, `save_arrays`);
- generation (`generation.py`, its names re-exported here): an adapter that generates sets
  `Ready.generate` and `Ready.generate_timer`, and implements `generate(cell: GenerateCell) ->
  GenerateResult`, handing a `Decoding` to `time_generations`.

Adapters import it from the package `runtimes` (a program run by path under `python3 -P` first
puts the folder above the package on `sys.path`):
    if not __package__:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from runtimes import protocol
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, Protocol, TypeVar

from .generation import Decoding as Decoding
from .generation import GenerateCell, GenerateResult
from .generation import time_generations as time_generations

PROTOCOL = 1
# `ready`'s `timing`: end-to-end (host arrays in, outputs in host memory) or device-resident
# (inputs on the device before the clock, outputs left there, the device synchronised).
TIMINGS = ("end-to-end", "device-resident")
# `ready`'s `host_memory`: how host data moves inside the timed region. none: nothing crosses to a
# device (a CPU run on host memory, or a device-resident timer); pageable: copies from and to
# ordinary host memory; pinned: copies from and to page-locked host buffers; unified: memory that
# host and device share (Apple silicon, CUDA managed memory).
HOST_MEMORY = ("none", "pageable", "pinned", "unified")

T = TypeVar("T")


class AdapterError(Exception):
    """A failure to report to xbench as it stands: a sentence a user can act on, no traceback."""


# --------------------------------------------------------------------------------------------
# Messages


@dataclass(frozen=True)
class TensorInfo:
    """One input or output the ONNX model declares (dims: ints, symbolic names, or None where
    unknown; an empty list when xbench sends no dims)."""

    name: str
    elem_type: str
    dims: list[int | str | None]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    dir: Path
    onnx: Path
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]


@dataclass(frozen=True)
class Hello:
    runtime_name: str
    options: dict[str, str]
    model: ModelInfo
    threads: int | None
    device: int
    task: str = ""  # "generate" in a generation scenario: cells come as `generate` messages
    # With `task`: what xbench read of the decoder from the ONNX graph (layers, kv_heads, head_dim,
    # vocab, cache_type, max_positions; some may be None), for the program to check its model against.
    decoder: dict[str, Any] | None = None

    @staticmethod
    def parse(msg: dict[str, Any]) -> Hello:
        runtime = msg.get("runtime") or {}
        model = msg.get("model") or {}

        def tensors(key: str) -> list[TensorInfo]:
            return [TensorInfo(t["name"], t.get("elem_type") or "", list(t.get("dims") or [])) for t in model.get(key) or []]

        return Hello(
            runtime_name=str(runtime.get("name", "")),
            options={str(k): "" if v is None else str(v) for k, v in (runtime.get("options") or {}).items()},
            model=ModelInfo(
                name=str(model.get("name", "")),
                dir=Path(model["dir"]),
                onnx=Path(model["onnx"]),
                inputs=tensors("inputs"),
                outputs=tensors("outputs"),
            ),
            threads=msg.get("threads"),
            device=int(msg.get("device") or 0),
            task=str(msg.get("task") or ""),
            decoder=msg.get("decoder") if isinstance(msg.get("decoder"), dict) else None,
        )


@dataclass(frozen=True)
class Cell:
    index: int
    warmup: int
    iterations: int
    min_time_s: float | None
    inputs: Path
    outputs: Path

    @staticmethod
    def parse(msg: dict[str, Any]) -> Cell:
        return Cell(
            index=int(msg["index"]),
            warmup=int(msg.get("warmup") or 0),
            iterations=max(1, int(msg.get("iterations") or 1)),
            min_time_s=None if msg.get("min_time_s") is None else float(msg["min_time_s"]),
            inputs=Path(msg["inputs"]),
            outputs=Path(msg["outputs"]),
        )


@dataclass
class Ready:
    """What the program says about itself once the model is loaded (the `ready` message)."""

    engine: str
    version: str
    device: str
    precision: str
    placement: list[tuple[str, int]]
    threads: str
    timer: str  # what one timed iteration covers, in words
    timer_label: str  # the same in a few words, for column headings
    timing: str  # "end-to-end" or "device-resident" (TIMINGS)
    host_memory: str  # how host data moves inside the timed region (HOST_MEMORY)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. notes; xbench ignores unknown fields
    generate: bool = False  # answers `generate` messages (the adapter has `generate`)
    generate_timer: str = ""  # what a timed prefill and a timed step cover, in words (with `generate`)


@dataclass
class CellResult:
    samples_ms: list[float]
    prepare_ms: float
    warmup_ms: float


class Adapter(Protocol):
    def load(self, hello: Hello) -> Ready:
        """Loads and prepares the model; raises AdapterError (or anything) when it cannot."""

    def run_cell(self, cell: Cell) -> CellResult:
        """Reads the inputs, prepares, warms up, times, writes the outputs of the last timed iteration."""

    def peak_device_mib(self) -> float | None:
        """Peak device memory over the whole run, or None when there is no device."""

    # An adapter that generates also has (and says so with `Ready.generate`):
    #     def generate(self, cell: GenerateCell) -> GenerateResult:
    #         prepares for the cell (untimed, `prepare_ms`), then `time_generations(cell, decoding)`.


# --------------------------------------------------------------------------------------------
# Channel


class Channel:
    """JSON lines in from stdin, out to the real stdout; fd 1 and sys.stdout go to stderr."""

    def __init__(self) -> None:
        sys.stdout.flush()
        protocol_fd = os.dup(1)
        os.dup2(2, 1)  # C libraries printing to fd 1 now write to stderr
        self._out: IO[str] = os.fdopen(protocol_fd, "w", encoding="utf-8", buffering=1)
        sys.stdout = sys.stderr
        self._in = sys.stdin.buffer

    def send(self, msg: dict[str, Any]) -> None:
        self._out.write(json.dumps(msg, allow_nan=False, separators=(",", ":")) + "\n")
        self._out.flush()

    def receive(self) -> dict[str, Any] | None:
        """The next message, or None at end of input."""
        while True:
            line = self._in.readline()
            if not line:
                return None
            if line.strip():
                msg = json.loads(line.decode("utf-8"))
                if not isinstance(msg, dict) or "type" not in msg:
                    raise ValueError(f"a protocol line is not a message object: {line[:200]!r}")
                return msg


def log(text: str) -> None:
    """A line for xbench's diagnostics (standard error)."""
    print(text, file=sys.stderr, flush=True)


def describe(err: BaseException) -> str:
    if isinstance(err, AdapterError):
        return str(err)
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def serve(adapter: Adapter) -> int:
    """Runs the message loop to the end; returns the process exit status."""
    channel = Channel()
    first = channel.receive()
    if first is None:
        return 0
    if first.get("type") != "hello":
        log(f"error: expected `hello` first, got `{first.get('type')}`")
        return 2
    if first.get("protocol") != PROTOCOL:
        channel.send({"type": "error", "message": f"this program speaks protocol {PROTOCOL}, xbench sent protocol {first.get('protocol')}"})
        return 1
    started = time.perf_counter_ns()
    try:
        ready = adapter.load(Hello.parse(first))
        if ready.timing not in TIMINGS or ready.host_memory not in HOST_MEMORY:
            raise AdapterError(f"the program's ready says timing `{ready.timing}` and host_memory `{ready.host_memory}`, not one of {TIMINGS} and {HOST_MEMORY}")
        if ready.generate and (not callable(getattr(adapter, "generate", None)) or not ready.generate_timer.strip()):
            raise AdapterError("the program's ready says it generates, but the adapter has no `generate` method or its ready no `generate_timer`")
    except Exception as err:  # anything that stops the load is reported, not raised
        if not isinstance(err, AdapterError):
            traceback.print_exc(file=sys.stderr)
        channel.send({"type": "error", "message": describe(err)})
        return 1
    load_ms = (time.perf_counter_ns() - started) / 1e6
    channel.send(
        {
            **ready.extra,
            "type": "ready",
            "protocol": PROTOCOL,
            "engine": ready.engine,
            "version": ready.version,
            "device": ready.device,
            "precision": ready.precision,
            "placement": [[name, int(count)] for name, count in ready.placement],
            "threads": ready.threads,
            "timer": ready.timer,
            "timer_label": ready.timer_label,
            "timing": ready.timing,
            "host_memory": ready.host_memory,
            "load_ms": round(load_ms, 3),
            **({"generate": True, "generate_timer": ready.generate_timer} if ready.generate else {}),
        }
    )
    while True:
        msg = channel.receive()
        if msg is None:  # xbench went away without `bye`
            return 0
        kind = msg.get("type")
        if kind == "cell":
            index = msg.get("index")
            try:
                cell = Cell.parse(msg)
                result = adapter.run_cell(cell)
                channel.send(
                    {
                        "type": "result",
                        "index": cell.index,
                        "samples_ms": result.samples_ms,
                        "prepare_ms": round(result.prepare_ms, 3),
                        "warmup_ms": round(result.warmup_ms, 3),
                    }
                )
            except Exception as err:
                if not isinstance(err, AdapterError):
                    traceback.print_exc(file=sys.stderr)
                channel.send({"type": "cell_error", "index": index, "message": describe(err)})
        elif kind == "generate":
            generate = getattr(adapter, "generate", None)
            if not ready.generate or not callable(generate):
                channel.send({"type": "error", "message": "this program does not generate (it was sent a `generate` message)"})
                return 1
            index = msg.get("index")
            try:
                gcell = GenerateCell.parse(msg)
                answer: GenerateResult = generate(gcell)
                channel.send(answer.message(gcell.index))
            except Exception as err:
                if not isinstance(err, AdapterError):
                    traceback.print_exc(file=sys.stderr)
                channel.send({"type": "cell_error", "index": index, "message": describe(err)})
        elif kind == "bye":
            device = adapter.peak_device_mib()
            channel.send(
                {
                    "type": "done",
                    "peak_rss_mib": round(peak_rss_mib(), 1),
                    "peak_device_mib": None if device is None else round(device, 1),
                }
            )
            return 0
        else:
            log(f"error: unknown message type `{kind}`")
            return 2


# --------------------------------------------------------------------------------------------
# Timing


@dataclass
class Timed(Generic[T]):
    samples_ms: list[float]
    warmup_ms: float
    last: T  # what the last timed iteration returned


def time_iterations(step: Callable[[], T], warmup: int, iterations: int, min_time_s: float | None) -> Timed[T]:
    """`warmup` untimed calls, then at least `iterations` timed ones, going on while their sum is
    below `min_time_s`. Each call is one clock reading (perf_counter_ns); `step` itself must wait
    for any device work it queued."""
    started = time.perf_counter_ns()
    last: Any = None
    for _ in range(warmup):
        last = step()
    warmup_ms = (time.perf_counter_ns() - started) / 1e6
    budget_ns = 0 if min_time_s is None else int(min_time_s * 1e9)
    samples_ns: list[int] = []
    total_ns = 0
    while len(samples_ns) < iterations or total_ns < budget_ns:
        t0 = time.perf_counter_ns()
        last = step()
        elapsed = time.perf_counter_ns() - t0
        samples_ns.append(elapsed)
        total_ns += elapsed
    samples_ms = [ns / 1e6 for ns in samples_ns]
    if not all(math.isfinite(s) and s > 0 for s in samples_ms):
        raise AdapterError("an iteration took no measurable time (the clock did not advance)")
    return Timed(samples_ms, warmup_ms, last)


def elapsed_ms(since_ns: int) -> float:
    return (time.perf_counter_ns() - since_ns) / 1e6


# --------------------------------------------------------------------------------------------
# Options


class Options:
    """The runtime's options (strings), checked against the names and choices an adapter knows."""

    def __init__(self, raw: dict[str, str], known: dict[str, str]) -> None:
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise AdapterError(f"unknown option(s) {', '.join(unknown)}; this program takes: {', '.join(sorted(known))}")
        self._values = {**known, **{k: v.strip() for k, v in raw.items()}}

    def text(self, name: str, choices: tuple[str, ...] | None = None) -> str:
        value = self._values[name]
        if choices is not None and value not in choices:
            raise AdapterError(f"option {name}: `{value}` is not one of {', '.join(choices)}")
        return value

    def flag(self, name: str) -> bool:
        value = self._values[name].lower()
        if value in ("true", "yes", "on", "1"):
            return True
        if value in ("false", "no", "off", "0", ""):
            return False
        raise AdapterError(f"option {name}: `{self._values[name]}` is not true or false")

    def integer(self, name: str) -> int | None:
        value = self._values[name]
        if value == "":
            return None
        try:
            return int(value)
        except ValueError:
            raise AdapterError(f"option {name}: `{value}` is not an integer") from None


# --------------------------------------------------------------------------------------------
# Tensor files


def load_arrays(path: Path) -> dict[str, Any]:
    """A safetensors file as numpy arrays (bfloat16 has no numpy type: such a file is refused)."""
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except TypeError as err:  # numpy has no type for the file's dtype
        raise AdapterError(f"{path}: a tensor has an element type numpy cannot hold ({err})") from err


def save_arrays(path: Path, arrays: dict[str, Any]) -> None:
    """Writes numpy arrays (made contiguous) as a safetensors file."""
    import numpy as np
    from safetensors.numpy import save_file

    save_file({name: np.ascontiguousarray(a) for name, a in arrays.items()}, str(path))


def cpu_name() -> str:
    """The processor's model name, as /proc/cpuinfo gives it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical cores)"
    except OSError:
        pass
    import platform

    return platform.processor() or "CPU"
