"""A model folder's transformers configuration, without torch (shared by hf_model.py and mlx_model.py).

`configuration(hello)` reads the model folder's config.json (never the Hub), or else takes
model.yaml's `architecture` and the configuration scripts/export_models.py embeds for the model.
The export script is read as text (its KNOWN_MODELS table), not imported, so neither torch nor
onnxruntime has to be installed.

It also holds what torch_hf.py's and mlx_hf.py's models share: `StrategyUnavailable`, the exception
every way of getting a model's weights raises when it does not apply to a folder; `mismatch`, which
says how weights found do not fit a model's parameters; `build_with`, which tries the ways in
order; `refuse_unasked_seed` and `pooler_kwargs`.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .protocol import AdapterError, Hello

EXPORT_SCRIPT = Path(__file__).resolve().parent.parent / "export_models.py"


class StrategyUnavailable(Exception):
    """A way of getting the weights that does not apply to this model folder (the reason says why)."""


def mismatch(total: int, missing: list[str], not_found: str, wrong: list[str], misfit: str) -> str:
    """How weights do not fit a model's `total` parameters: the `missing` parameters (`not_found`
    says what they lack) and the `wrong` ones (`misfit` says how they differ), the first three of
    each named; empty when every parameter fits."""
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the model's {total} parameters {not_found} ({', '.join(missing[:3])}…)")
    if wrong:
        parts.append(f"{len(wrong)} {misfit} ({'; '.join(wrong[:3])})")
    return " and ".join(parts)


@dataclass
class Built:
    """A model an adapter built, and where its weights and configuration came from."""

    model: Any
    strategy: str  # checkpoint | onnx | seed
    weights: str  # where the weights came from, in words
    configuration: str  # where the configuration came from, in words
    not_used: list[str]  # the strategies tried before, each with why it did not apply


# The ways of getting a model's weights, in the order `weights: auto` tries them.
STRATEGIES = ("checkpoint", "onnx", "seed")


def decoder_differences(ours: dict[str, int], decoder: dict[str, Any] | None) -> list[tuple[str, Any, int]]:
    """The facts of hello's `decoder` (what xbench read from the ONNX graph: layers, kv_heads,
    head_dim, vocab) that differ from the model's own (`ours`), as (name, the graph's, ours); a fact
    the graph leaves unknown is not compared."""
    if not decoder:
        return []
    return [(name, decoder.get(name), value) for name, value in ours.items() if decoder.get(name) not in (None, value)]


def build_with(weights: str, attempt: Callable[[str], tuple[Any, str]], configuration: str) -> Built:
    """The model from the first strategy that applies: `weights` names one, or `auto` tries them
    all in order. `attempt(strategy)` returns the model and where its weights came from, or raises
    `StrategyUnavailable`; the reasons of those that did not apply are kept."""
    tried: list[str] = []
    for strategy in STRATEGIES if weights == "auto" else (weights,):
        try:
            model, described = attempt(strategy)
            return Built(model, strategy, described, configuration, tried)
        except StrategyUnavailable as why:
            tried.append(f"{strategy}: {why}")
    raise AdapterError("no weights for the model: " + "; ".join(tried))


def refuse_unasked_seed(weights_label: str, asked: bool) -> None:
    """Weights made from a seed are the ONNX model's only where model.yaml says `weights: random`
    (unless asked for by name)."""
    if not asked and weights_label != "random":
        raise StrategyUnavailable(f"model.yaml says `weights: {weights_label or '(absent)'}`, so weights made from a seed would not be the ONNX model's")


def pooler_kwargs(model_class: Any, with_pooler: bool) -> dict[str, Any]:
    """`add_pooling_layer` for a model class that takes it (BERT-like encoders), else nothing."""
    if "add_pooling_layer" in inspect.signature(model_class.__init__).parameters:
        return {"add_pooling_layer": with_pooler}
    return {}


@dataclass
class Configuration:
    config: Any  # a transformers PretrainedConfig
    source: str  # where it came from, for `notes`
    weights_label: str  # model.yaml's `weights:` ("random", "trained", or "" when absent)


@dataclass(frozen=True)
class EmbeddedModel:
    """One entry of scripts/export_models.py's KNOWN_MODELS."""

    name: str
    architecture: str
    hub_id: str
    config: dict[str, Any]


def read_model_yaml(folder: Path) -> dict[str, Any]:
    path = folder / "model.yaml"
    if not path.is_file():
        return {}
    import yaml

    data = yaml.safe_load(path.read_text())
    return data if isinstance(data, dict) else {}


def embedded_models(path: Path = EXPORT_SCRIPT) -> dict[str, EmbeddedModel]:
    """The `ModelDef(...)` entries of the export script's KNOWN_MODELS, read from its source: each
    argument must be a literal, or `dict(key=literal, ...)`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    table = next(
        (
            node.value
            for node in ast.walk(tree)
            if isinstance(node, (ast.Assign, ast.AnnAssign))
            and any(isinstance(t, ast.Name) and t.id == "KNOWN_MODELS" for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))
        ),
        None,
    )
    if table is None:
        raise AdapterError(f"{path} has no KNOWN_MODELS table to take a configuration from")

    def value(node: ast.expr) -> Any:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
            return {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
        return ast.literal_eval(node)

    models = {}
    for call in ast.walk(table):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "ModelDef":
            fields = {kw.arg: value(kw.value) for kw in call.keywords}
            model = EmbeddedModel(fields["name"], fields["architecture"], fields.get("hub_id", ""), fields.get("config", {}))
            models[model.name] = model
    return models


def configuration(hello: Hello) -> Configuration:
    """The configuration from config.json, or from model.yaml's `architecture` and the export
    script's embedded configuration. Nothing is fetched: a folder without either is refused."""
    import transformers

    folder = hello.model.dir
    meta = read_model_yaml(folder)
    label = str(meta.get("weights", "") or "")
    if (folder / "config.json").is_file():
        config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
        return Configuration(config, f"{folder / 'config.json'}", label)

    arch = meta.get("architecture")
    if not arch:
        raise AdapterError(f"{folder} has neither config.json nor a model.yaml naming its `architecture`; add the model's config.json")
    known = embedded_models()
    candidates = [
        d for d in known.values()
        if d.hub_id == meta.get("hub_id") or d.name in (hello.model.name, hello.model.name.removesuffix("-fp16"), meta.get("compare_with"))
    ]
    if not candidates:
        raise AdapterError(
            f"{folder}: no config.json, and scripts/export_models.py embeds no configuration for `{hello.model.name}` "
            f"(it knows {', '.join(known)}); add config.json"
        )
    definition = candidates[0]
    if definition.architecture != arch:
        raise AdapterError(f"{folder}/model.yaml says architecture {arch}, but scripts/export_models.py defines {definition.name} as {definition.architecture}")
    try:
        config = transformers.AutoConfig.for_model(arch, **definition.config)
    except ValueError as err:
        raise AdapterError(f"transformers {transformers.__version__} has no configuration class for architecture `{arch}` ({err})") from None
    return Configuration(config, f"scripts/export_models.py's configuration of {definition.name}", label)
