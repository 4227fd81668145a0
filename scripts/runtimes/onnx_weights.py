"""A model's parameters from an ONNX file's initializers, without torch (hf_model.py, mlx_model.py).

`match(onnx_path, shapes)` takes the parameters a framework's model has ({name: shape}, Hugging
Face names) and returns one numpy array per parameter, read from the ONNX initializers:

- names are matched after stripping the prefix most initializer names share (often `model.` in
  exports of a wrapper module, or nothing);
- a 2-D initializer that the graph uses as the right-hand side of MatMul (x @ W) is stored
  `[in, out]`, the transpose of a linear layer's `[out, in]` weight: it is transposed;
  `weight_orientation` follows it through Cast, Identity and Transpose nodes to find out;
- a parameter with no initializer of its name is looked for through the node metadata the torch
  dynamo exporter writes (`pkg.torch.onnx.fx_node`, which names the `p_…` parameters each ONNX
  node computes with): such exports store linear weights pre-transposed under names such as
  `val_51`, and keep one initializer for parameters of equal values (the zero biases and unit
  layer-norm scales of a freshly initialised model), so several parameters may share one;
- a parameter that shares its tensor with others (tied input and output embeddings, named by
  `tied`) is also looked for under those names: an export keeps the tied matrix once, often under
  the output layer's name (`lm_head.weight`);
- every parameter must be matched with its shape; otherwise `StrategyUnavailable` lists the
  parameters without an initializer and those that do not fit.

Needs `onnx` and numpy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .hf_config import StrategyUnavailable, mismatch

# Nodes a weight may pass through on its way to the operation that uses it.
PASS_THROUGH_OPS = ("Cast", "Identity")


@dataclass
class Matched:
    arrays: dict[str, Any]  # parameter name -> numpy array in the parameter's [out, in] layout
    prefix: str  # stripped from the initializer names
    transposed: int  # 2-D weights transposed from the graph's [in, out]
    initializers: int  # in the file
    through_metadata: int = 0  # parameters found through the exporter's node metadata
    zero_biases: int = 0  # linear biases the graph leaves out (it adds none): zeros
    tied: int = 0  # parameters found under the name of a parameter they are tied to

    def describe(self, onnx_path: Path) -> str:
        shown = f"prefix `{self.prefix}` stripped, " if self.prefix else ""
        meta = f", {self.through_metadata} found through the exporter's node metadata (pkg.torch.onnx.fx_node)" if self.through_metadata else ""
        if self.tied:
            meta += f", {self.tied} found under the name of a tied parameter"
        if self.zero_biases:
            meta += f", {self.zero_biases} linear biases the graph does not add taken as zeros"
        return (
            f"initializers of {onnx_path} ({len(self.arrays)} parameters matched of {self.initializers} initializers, "
            f"{shown}{self.transposed} 2-D weights transposed{meta})"
        )


def weight_orientation(graph: Any) -> dict[str, str]:
    """For each initializer the graph uses as a matrix operand: `in_out` when it is the right-hand
    side of MatMul (x @ W, so W is the linear layer's weight transposed) or of Gemm without transB,
    `out_in` when Gemm transposes it or a Transpose node does before MatMul, `as_is` for other uses."""
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
            if found == {"as_is", "out_in"}:  # a tied embedding: gathered from, and multiplied by as stored
                found = {"out_in"}
            orientation[tensor.name] = found.pop() if len(found) == 1 else ("mixed" if found else "unused")
    return orientation


def common_prefix(initializers: Any, params: Any) -> str:
    """The prefix most initializer names put before the parameter names (often "" or "model.")."""
    counts: dict[str, int] = {}
    for init in initializers:
        for name in params:
            if init.endswith(name) and (len(init) == len(name) or init[-len(name) - 1] == "."):
                prefix = init[: len(init) - len(name)]
                counts[prefix] = counts.get(prefix, 0) + 1
    return max(counts, key=lambda p: (counts[p], -len(p))) if counts else ""


FX_PARAMETER = re.compile(r"%p_(\w+)")
ZERO = "<zero>"  # a linear layer's bias the exported graph leaves out: it adds nothing, so it is zero


def fx_aliases(graph: Any, initializers: dict[str, Any], wanted: dict[str, tuple[int, ...]], prefix: str) -> dict[str, str]:
    """Parameter name -> initializer name, from the torch dynamo exporter's node metadata: the ONNX
    nodes of one exported call (a linear layer's MatMul and Add) carry the same
    `pkg.torch.onnx.fx_node`, which names the call's parameters
    (`%p_model_encoder_layer_0_attention_self_query_weight`, lower-cased); their initializer inputs
    are paired with those parameters by shape (2-D also transposed), in the order both appear.
    A linear call whose bias no node adds (the exporter drops an all-zero addend) maps the bias to
    ZERO. Only `wanted` parameters (those without an initializer of their own name) are looked for."""
    by_fx = {"".join(c if c.isalnum() else "_" for c in prefix + name).lower(): name for name in wanted}  # torch lower-cases them
    calls: dict[str, list[Any]] = {}
    for node in graph.node:
        meta = {p.key: p.value for p in node.metadata_props}.get("pkg.torch.onnx.fx_node")
        if meta:
            calls.setdefault(meta, []).append(node)
    aliases: dict[str, str] = {}
    for meta, nodes in calls.items():
        params = [by_fx[p] for p in (f.lower() for f in FX_PARAMETER.findall(meta)) if p in by_fx and by_fx[p] not in aliases]
        for name in (name for node in nodes for name in node.input):
            tensor = initializers.get(name)
            if tensor is None or not params:
                continue
            dims = tuple(tensor.dims)
            for param in params:
                shape = tuple(wanted[param])
                if dims == shape or (len(dims) == 2 and dims[::-1] == shape):
                    aliases[param] = name
                    params.remove(param)
                    break
        if "aten.linear" in meta and len(params) == 1 and params[0].endswith("bias") and len(wanted[params[0]]) == 1:
            aliases[params[0]] = ZERO
    return aliases


def match_graph(graph: Any, shapes: dict[str, tuple[int, ...]], label: str, tied: dict[str, list[str]] | None = None) -> Matched:
    """`match` on a loaded graph; `label` names the file in messages."""
    import numpy as np
    from onnx import numpy_helper

    initializers = {t.name: t for t in graph.initializer}
    prefix = common_prefix(initializers, [*shapes, *(name for names in (tied or {}).values() for name in names)])
    orientation = weight_orientation(graph)
    tied_to = {name: next((prefix + t for t in (tied or {}).get(name, []) if prefix + t in initializers), "") for name in shapes}
    unnamed = {name: shape for name, shape in shapes.items() if prefix + name not in initializers and not tied_to[name]}
    aliases = fx_aliases(graph, initializers, unnamed, prefix) if unnamed else {}
    arrays: dict[str, Any] = {}
    missing, wrong, transposed = [], [], 0
    for name, shape in shapes.items():
        if aliases.get(name) == ZERO:
            arrays[name] = np.zeros(shape, dtype=np.float32)
            continue
        tensor = initializers.get(prefix + name) or initializers.get(tied_to[name]) or initializers.get(aliases.get(name, ""))
        if tensor is None:
            missing.append(name)
            continue
        array = numpy_helper.to_array(tensor)
        want = tuple(shape)
        how = orientation.get(tensor.name, "as_is")
        if array.ndim == 2 and how == "in_out" and array.T.shape == want:
            array, transposed = array.T, transposed + 1
        elif array.shape != want or (array.ndim == 2 and how == "mixed"):
            wrong.append(f"{name} {list(array.shape)} (model {list(want)}, used {how})")
            continue
        arrays[name] = np.array(array, order="C")  # a writable, contiguous copy
    if missing or wrong:
        raise StrategyUnavailable(f"{label}: " + mismatch(len(shapes), missing, "have no initializer named after them", wrong, "do not fit"))
    zeros = sum(1 for a in aliases.values() if a == ZERO)
    tied_found = sum(1 for name in shapes if prefix + name not in initializers and tied_to[name])
    return Matched(arrays, prefix, transposed, len(initializers), len(aliases) - zeros, zeros, tied_found)


def match(onnx_path: Path, shapes: dict[str, tuple[int, ...]], tied: dict[str, list[str]] | None = None) -> Matched:
    """The parameters `shapes` names, from the initializers of the ONNX file at `onnx_path`;
    `tied` maps a parameter to the other names its tensor goes by (tied embeddings)."""
    try:
        import onnx
    except ImportError:
        raise StrategyUnavailable("the `onnx` package is not installed (pip install onnx) to read the ONNX file's weights") from None
    if not onnx_path.is_file():
        raise StrategyUnavailable(f"there is no ONNX file at {onnx_path} to take the weights from")
    return match_graph(onnx.load(str(onnx_path)).graph, shapes, onnx_path.name, tied)
