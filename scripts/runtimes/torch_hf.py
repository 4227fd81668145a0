#!/usr/bin/env python3
"""xbench external runtime: the model rebuilt in PyTorch with transformers.

Speaks protocol 1 of docs/runtime-protocol.md over stdin/stdout (see protocol.py). Options (strings):

  device      cpu (default) | cuda (the GPU is hello's `device` index)
  dtype       fp32 (default) | fp16 | bf16: the weights and the arithmetic
  attention   eager (default) | sdpa
  compile     empty (default): eager; else a torch.compile mode: default, reduce-overhead,
              max-autotune, max-autotune-no-cudagraphs (compiled per input shape, untimed)
  cuda_graph  false (default) | true: the forward captured in a torch.cuda.CUDAGraph per input shape,
              with static input buffers that each timed iteration copies the host inputs into
  tf32        false (default) | true: CUDA only; lets fp32 matrix products use TF32 (precision tf32)
  seed        0 (default): the seed for `weights: seed`
  weights     auto (default) | checkpoint | onnx | seed

The model: its configuration comes from the model folder's config.json when there is one, else
from model.yaml's `architecture` and the matching configuration embedded in
scripts/export_models.py. Its weights, with `auto` tried in this order:
  checkpoint  model.safetensors / pytorch_model.bin (+ config.json) in the folder: from_pretrained;
  onnx        the ONNX file's initializers, matched by name to the model's parameters (a common
              prefix such as `model.` stripped; 2-D weights transposed where the graph uses them as
              the right-hand side of MatMul); every parameter must be matched;
  seed        only when model.yaml says `weights: random`: torch.manual_seed(seed), then the model
              class built from the configuration with eager attention, as the export script does.
`ready` says which were used (fields `weights` and `notes`).

Timer, end to end: the host input tensors are moved to the device, the forward pass runs under
torch.inference_mode(), the outputs the ONNX model declares are copied to host memory, and the
device is synchronized, all inside each timed iteration (perf_counter_ns).

Needs torch, transformers, safetensors, numpy, PyYAML; `onnx` for `weights: onnx`.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import protocol  # noqa: E402
from protocol import AdapterError, Cell, CellResult, Hello, Ready  # noqa: E402

OPTIONS = {
    "device": "cpu",
    "dtype": "fp32",
    "attention": "eager",
    "compile": "",
    "cuda_graph": "false",
    "tf32": "false",
    "seed": "0",
    "weights": "auto",
}
COMPILE_MODES = ("", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CHECKPOINT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
# Nodes a weight may pass through on its way to the operation that uses it.
PASS_THROUGH_OPS = ("Cast", "Identity")


class StrategyUnavailable(Exception):
    """A way of getting the weights that does not apply to this model folder (the reason says why)."""


# --------------------------------------------------------------------------------------------
# The architecture


@dataclass
class Architecture:
    config: Any  # a transformers PretrainedConfig
    model_class: type
    source: str  # where the configuration came from, for `notes`
    weights_label: str  # model.yaml's `weights:` ("random", "trained", or "" when absent)


def read_model_yaml(folder: Path) -> dict[str, Any]:
    path = folder / "model.yaml"
    if not path.is_file():
        return {}
    import yaml

    data = yaml.safe_load(path.read_text())
    return data if isinstance(data, dict) else {}


def import_export_script() -> types.ModuleType:
    """scripts/export_models.py as a module. It imports onnx and onnxruntime at the top but uses
    them only inside functions this program never calls, so where they are not installed the
    import goes through with empty stand-ins, removed again afterwards."""
    path = HERE.parent / "export_models.py"
    sys.path.insert(0, str(path.parent))
    stand_ins = []
    for name in ("onnx", "onnxruntime"):
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            sys.modules[name] = types.ModuleType(name)
            stand_ins.append(name)
    try:
        spec = importlib.util.spec_from_file_location("xbench_export_models", path)
        if spec is None or spec.loader is None:
            raise AdapterError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
        return module
    finally:
        for name in stand_ins:
            del sys.modules[name]


def architecture(hello: Hello) -> Architecture:
    """The configuration and model class, from config.json or the export script's definitions."""
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    folder = hello.model.dir
    meta = read_model_yaml(folder)
    label = str(meta.get("weights", "") or "")
    if (folder / "config.json").is_file():
        config = transformers.AutoConfig.from_pretrained(str(folder))
        try:
            model_class = MODEL_MAPPING[type(config)]
        except KeyError:
            raise AdapterError(f"transformers {transformers.__version__} has no base model for model_type `{config.model_type}` ({folder / 'config.json'})") from None
        return Architecture(config, model_class, f"{folder / 'config.json'}", label)

    arch = meta.get("architecture")
    if not arch:
        raise AdapterError(f"{folder} has neither config.json nor a model.yaml naming its `architecture`; add the model's config.json")
    em = import_export_script()
    candidates = [
        d for d in em.KNOWN_MODELS.values()
        if d.hub_id == meta.get("hub_id") or d.name in (hello.model.name, hello.model.name.removesuffix("-fp16"), meta.get("compare_with"))
    ]
    if not candidates:
        known = ", ".join(em.KNOWN_MODELS)
        raise AdapterError(f"{folder}: no config.json, and scripts/export_models.py embeds no configuration for `{hello.model.name}` (it knows {known}); add config.json")
    definition = candidates[0]
    if definition.architecture != arch:
        raise AdapterError(f"{folder}/model.yaml says architecture {arch}, but scripts/export_models.py defines {definition.name} as {definition.architecture}")
    config_class, model_class = em.model_classes(arch)
    config = config_class(**definition.config)
    return Architecture(config, model_class, f"scripts/export_models.py's configuration of {definition.name}", label)


def construct(arch: Architecture, with_pooler: bool) -> Any:
    """A freshly initialised model (eager attention), with or without its pooler."""
    arch.config._attn_implementation = "eager"
    kwargs = {}
    if "add_pooling_layer" in inspect.signature(arch.model_class.__init__).parameters:
        kwargs["add_pooling_layer"] = with_pooler
    return arch.model_class(arch.config, **kwargs)


# --------------------------------------------------------------------------------------------
# Weights


def checkpoint_weights(arch: Architecture, folder: Path, with_pooler: bool) -> tuple[Any, str]:
    present = [name for name in CHECKPOINT_FILES if (folder / name).is_file()]
    if not present:
        raise StrategyUnavailable(f"no transformers checkpoint ({', '.join(CHECKPOINT_FILES[::2])}) in {folder}")
    if not (folder / "config.json").is_file():
        raise StrategyUnavailable(f"{folder} has {present[0]} but no config.json to load it with")
    kwargs: dict[str, Any] = {"attn_implementation": "eager", "output_loading_info": True}
    if "add_pooling_layer" in inspect.signature(arch.model_class.__init__).parameters:
        kwargs["add_pooling_layer"] = with_pooler
    model, info = arch.model_class.from_pretrained(str(folder), **kwargs)
    missing = list(info.get("missing_keys", []))
    if missing:
        raise StrategyUnavailable(f"the checkpoint in {folder} lacks {len(missing)} of the model's weights ({', '.join(missing[:4])}…)")
    return model, f"checkpoint {folder / present[0]} (from_pretrained)"


def weight_orientation(graph: Any) -> dict[str, str]:
    """For each initializer the graph uses as a matrix operand: `in_out` when it is the right-hand
    side of MatMul (x @ W, so W is torch's weight transposed) or of Gemm without transB, `out_in`
    when Gemm transposes it or a Transpose node does before MatMul, `as_is` for other uses."""
    consumers: dict[str, list[tuple[Any, int]]] = {}
    for node in graph.node:
        for position, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, position))

    def uses(name: str, transposed: bool, depth: int = 0) -> set[str]:
        found: set[str] = set()
        for node, position in consumers.get(name, []):
            if node.op_type in PASS_THROUGH_OPS and depth < 4:
                found |= uses(node.output[0], transposed, depth + 1)
            elif node.op_type == "Transpose" and depth < 4:
                perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), [1, 0])
                found |= uses(node.output[0], not transposed if perm == [1, 0] else transposed, depth + 1)
            elif node.op_type == "MatMul" and position == 1:
                found.add("out_in" if transposed else "in_out")
            elif node.op_type == "Gemm" and position == 1:
                trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
                found.add("out_in" if bool(trans_b) != transposed else "in_out")
            else:
                found.add("as_is")
        return found

    orientation = {}
    for tensor in graph.initializer:
        if len(tensor.dims) == 2:
            found = uses(tensor.name, False)
            orientation[tensor.name] = found.pop() if len(found) == 1 else ("mixed" if found else "unused")
    return orientation


def onnx_weights(arch: Architecture, onnx_path: Path, with_pooler: bool) -> tuple[Any, str]:
    """The model's parameters from the ONNX file's initializers, matched by name."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise StrategyUnavailable("the `onnx` package is not installed (pip install onnx) to read the ONNX file's weights") from None
    import numpy as np
    import torch

    graph = onnx.load(str(onnx_path)).graph
    initializers = {t.name: t for t in graph.initializer}
    model = construct(arch, with_pooler)
    params = dict(model.named_parameters())
    prefix = common_prefix(initializers, params)
    orientation = weight_orientation(graph)
    state: dict[str, Any] = {}
    missing, wrong, transposed = [], [], 0
    for name, param in params.items():
        tensor = initializers.get(prefix + name)
        if tensor is None:
            missing.append(name)
            continue
        array = numpy_helper.to_array(tensor)
        want = tuple(param.shape)
        how = orientation.get(tensor.name, "as_is")
        if array.ndim == 2 and how == "in_out" and array.T.shape == want:
            array, transposed = array.T, transposed + 1
        elif array.shape != want or (array.ndim == 2 and how == "mixed"):
            wrong.append(f"{name} {list(array.shape)} (model {list(want)}, used {how})")
            continue
        state[name] = torch.from_numpy(np.array(array, order="C")).to(param.dtype)  # a writable copy
    if missing or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of the model's {len(params)} parameters have no initializer named after them ({', '.join(missing[:3])}…)")
        if wrong:
            parts.append(f"{len(wrong)} do not fit ({'; '.join(wrong[:3])})")
        raise StrategyUnavailable(f"{onnx_path.name}: " + " and ".join(parts))
    model.load_state_dict(state, strict=False)  # parameters only; buffers keep their defaults
    shown = f"prefix `{prefix}` stripped, " if prefix else ""
    return model, f"initializers of {onnx_path} ({len(state)} parameters, {shown}{transposed} 2-D weights transposed)"


def common_prefix(initializers: dict[str, Any], params: dict[str, Any]) -> str:
    """The prefix most initializer names put before the parameter names (often "" or "model.")."""
    counts: dict[str, int] = {}
    for init in initializers:
        for name in params:
            if init.endswith(name) and (len(init) == len(name) or init[-len(name) - 1] == "."):
                prefix = init[: len(init) - len(name)]
                counts[prefix] = counts.get(prefix, 0) + 1
    return max(counts, key=lambda p: (counts[p], -len(p))) if counts else ""


def seed_weights(arch: Architecture, seed: int, with_pooler: bool, asked: bool) -> tuple[Any, str]:
    import torch

    if not asked and arch.weights_label != "random":
        raise StrategyUnavailable(f"model.yaml says `weights: {arch.weights_label or '(absent)'}`, so weights made from a seed would not be the ONNX model's")
    torch.manual_seed(seed)
    model = construct(arch, with_pooler)
    return model, f"random, as scripts/export_models.py makes them (torch.manual_seed({seed}), then the model class)"


def use_attention(model: Any, attention: str) -> None:
    if attention == model.config._attn_implementation:
        return
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(attention)
    else:
        model.config._attn_implementation = attention
    if model.config._attn_implementation != attention:
        raise AdapterError(f"transformers would not switch {type(model).__name__} to `{attention}` attention")


# --------------------------------------------------------------------------------------------
# The adapter


class TorchHF:
    def __init__(self) -> None:
        self.model: Any = None
        self.forward: Callable[..., Any] = lambda **_: None
        self.device: Any = None
        self.cuda = False
        self.cuda_graph = False
        self.compiled = False
        self.output_names: list[str] = []
        self.accepted: set[str] = set()
        self.graphs: dict[tuple, tuple[Any, dict[str, Any], dict[str, Any]]] = {}
        self.prepared_shapes: set[tuple] = set()

    def load(self, hello: Hello) -> Ready:
        import torch
        import transformers

        opts = protocol.Options(hello.options, OPTIONS)
        device_kind = opts.text("device", ("cpu", "cuda"))
        dtype_name = opts.text("dtype", ("fp32", "fp16", "bf16"))
        attention = opts.text("attention", ("eager", "sdpa"))
        compile_mode = opts.text("compile", COMPILE_MODES)
        self.cuda_graph = opts.flag("cuda_graph")
        tf32 = opts.flag("tf32")
        seed = opts.integer("seed") or 0
        weights = opts.text("weights", ("auto", "checkpoint", "onnx", "seed"))
        self.cuda = device_kind == "cuda"
        if self.cuda and not torch.cuda.is_available():
            raise AdapterError(f"device cuda was asked for, but torch {torch.__version__} sees no CUDA GPU (torch.version.cuda = {torch.version.cuda})")
        if not self.cuda and (self.cuda_graph or tf32):
            raise AdapterError("options cuda_graph and tf32 need device cuda")
        if self.cuda_graph and compile_mode in ("reduce-overhead", "max-autotune"):
            raise AdapterError(f"compile mode {compile_mode} already captures CUDA graphs; use it without cuda_graph, or cuda_graph with compile default / max-autotune-no-cudagraphs")
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
        arch = architecture(hello)
        model, weights_used, tried = None, "", []
        order = ["checkpoint", "onnx", "seed"] if weights == "auto" else [weights]
        for strategy in order:
            try:
                if strategy == "checkpoint":
                    model, weights_used = checkpoint_weights(arch, hello.model.dir, with_pooler)
                elif strategy == "onnx":
                    model, weights_used = onnx_weights(arch, hello.model.onnx, with_pooler)
                else:
                    model, weights_used = seed_weights(arch, seed, with_pooler, asked=weights == "seed")
                weights = strategy
                break
            except StrategyUnavailable as why:
                tried.append(f"{strategy}: {why}")
        if model is None:
            raise AdapterError("no weights for the model: " + "; ".join(tried))
        use_attention(model, attention)
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
        notes = [f"weights: {weights_used}", f"configuration: {arch.source}", f"attention {self.model.config._attn_implementation}"]
        if compile_mode:
            notes.append(f"torch.compile mode {compile_mode}, dynamic=False, compiled per input shape before timing")
        if tried:
            notes.append("not used: " + "; ".join(tried))
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
            extra={"weights": weights, "notes": "; ".join(notes)},
        )

    def _timer_label(self, compile_mode: str) -> str:
        how = [f"torch.compile {compile_mode}"] if compile_mode else []
        if self.cuda_graph:
            how.append("CUDA graph")
        return "end-to-end" + (f" ({', '.join(how)})" if how else "")

    def _timer(self, compile_mode: str) -> str:
        what = f"the torch.compile({compile_mode}) model's forward" if compile_mode else "the forward pass"
        if self.cuda_graph:
            return (
                "end-to-end: host input tensors (pageable) copied into the CUDA graph's static input buffers on the GPU, "
                "graph replay (the forward pass captured once per input shape, before timing), outputs copied to host memory "
                "with .cpu(); torch.cuda.synchronize() before the clock stops"
            )
        if self.cuda:
            return (
                f"end-to-end: host input tensors (pageable) moved to the GPU with .to(), {what} under torch.inference_mode(), "
                "outputs copied to host memory with .cpu(); torch.cuda.synchronize() before the clock stops"
            )
        return f"end-to-end on the CPU: {what} under torch.inference_mode() on the host input tensors (read before timing; no copies), outputs are host tensors"

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
        names, device, cuda = self.output_names, self.device, self.cuda
        shape_key = tuple((name, tuple(t.shape), str(t.dtype)) for name, t in sorted(host.items()))

        with torch.inference_mode():
            prepare_started = time.perf_counter_ns()
            if self.cuda_graph:
                step = self._graph_step(shape_key, host)
            else:
                forward = self.forward

                def step() -> dict[str, Any]:
                    inputs = {name: t.to(device) for name, t in host.items()}
                    out = forward(**inputs)
                    result = {name: out[name].cpu() for name in names}
                    if cuda:
                        torch.cuda.synchronize(device)
                    return result

                if self.compiled and shape_key not in self.prepared_shapes:
                    step()  # compiles for this shape, untimed
            self.prepared_shapes.add(shape_key)
            prepare_ms = protocol.elapsed_ms(prepare_started)
            try:
                timed = protocol.time_iterations(step, cell.warmup, cell.iterations, cell.min_time_s)
            except KeyError as err:
                raise AdapterError(f"the model gives no output {err} that the ONNX model declares") from None
        save_file({name: t.contiguous() for name, t in timed.last.items()}, str(cell.outputs))
        return CellResult(timed.samples_ms, prepare_ms, timed.warmup_ms)

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
            try:
                static_out = {name: out[name] for name in self.output_names}
            except KeyError as err:
                raise AdapterError(f"the model gives no output {err} that the ONNX model declares") from None
            self.graphs[key] = (graph, static_in, static_out)
        graph, static_in, static_out = self.graphs[key]
        device = self.device

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
