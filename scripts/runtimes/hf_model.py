"""The transformers model behind torch_hf.py: its configuration and its weights.

`build(hello, weights, seed, with_pooler)` returns the model (eager attention, fp32, on the CPU)
and says where its configuration and weights came from. The configuration is the model folder's config.json, or
else model.yaml's `architecture` with the matching configuration embedded in
scripts/export_models.py. The weights come from one of three strategies (`auto` tries them in this
order, each one either applies or says why not):

  checkpoint  a transformers checkpoint in the folder, loaded with from_pretrained;
  onnx        the ONNX file's initializers, matched to the model's parameters by name;
  seed        torch.manual_seed(seed) and the model class, as the export script builds random
              models (only where model.yaml says `weights: random`, unless asked for by name).
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol import AdapterError, Hello

HERE = Path(__file__).resolve().parent
CHECKPOINT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
# Nodes a weight may pass through on its way to the operation that uses it.
PASS_THROUGH_OPS = ("Cast", "Identity")


class StrategyUnavailable(Exception):
    """A way of getting the weights that does not apply to this model folder (the reason says why)."""


@dataclass
class Architecture:
    config: Any  # a transformers PretrainedConfig
    model_class: Any  # a transformers PreTrainedModel subclass
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
            raise AdapterError(
                f"transformers {transformers.__version__} has no base model for model_type `{config.model_type}` ({folder / 'config.json'})"
            ) from None
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
        raise AdapterError(
            f"{folder}: no config.json, and scripts/export_models.py embeds no configuration for `{hello.model.name}` (it knows {known}); add config.json"
        )
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


@dataclass
class Built:
    model: Any
    strategy: str  # checkpoint | onnx | seed
    weights: str  # where the weights came from, in words
    configuration: str  # where the configuration came from, in words
    not_used: list[str]  # the strategies tried before, each with why it did not apply


def build(hello: Hello, weights: str, seed: int, with_pooler: bool) -> Built:
    """The model for `hello`'s folder, with weights by `weights` (auto, checkpoint, onnx or seed)."""
    arch = architecture(hello)
    tried: list[str] = []
    for strategy in ["checkpoint", "onnx", "seed"] if weights == "auto" else [weights]:
        try:
            if strategy == "checkpoint":
                model, described = checkpoint_weights(arch, hello.model.dir, with_pooler)
            elif strategy == "onnx":
                model, described = onnx_weights(arch, hello.model.onnx, with_pooler)
            else:
                model, described = seed_weights(arch, seed, with_pooler, asked=weights == "seed")
            return Built(model, strategy, described, arch.source, tried)
        except StrategyUnavailable as why:
            tried.append(f"{strategy}: {why}")
    raise AdapterError("no weights for the model: " + "; ".join(tried))
