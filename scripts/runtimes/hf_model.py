"""The transformers model behind torch_hf.py: its configuration and its weights.

`build(hello, weights, seed, with_pooler)` returns the model (eager attention, fp32, on the CPU)
and says where its configuration and weights came from. The configuration is hf_config.py's: the
model folder's config.json, or else model.yaml's `architecture` with the matching configuration
embedded in scripts/export_models.py. The weights come from one of three strategies (`auto` tries
them in this order, each one either applies or says why not):

  checkpoint  a transformers checkpoint in the folder, loaded with from_pretrained;
  onnx        the ONNX file's initializers, matched to the model's parameters by onnx_weights.py;
  seed        torch.manual_seed(seed) and the model class, as the export script builds random
              models (only where model.yaml says `weights: random`, unless asked for by name).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import hf_config, onnx_weights
from .hf_config import Built, StrategyUnavailable
from .protocol import AdapterError, Hello

CHECKPOINT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


@dataclass
class Architecture:
    config: Any  # a transformers PretrainedConfig
    model_class: Any  # a transformers PreTrainedModel subclass
    source: str  # where the configuration came from, for `notes`
    weights_label: str  # model.yaml's `weights:` ("random", "trained", or "" when absent)


def architecture(hello: Hello, causal: bool = False) -> Architecture:
    """The configuration (hf_config.py: config.json or the export script's definitions) and the
    transformers model class for it: the base model, or with `causal` the causal language model
    (what AutoModelForCausalLM builds: the decoder and its output layer)."""
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING, MODEL_MAPPING

    conf = hf_config.configuration(hello)
    try:
        model_class = (MODEL_FOR_CAUSAL_LM_MAPPING if causal else MODEL_MAPPING)[type(conf.config)]
    except KeyError:
        kind = "causal language model" if causal else "base model"
        raise AdapterError(f"transformers {transformers.__version__} has no {kind} for model_type `{conf.config.model_type}` ({conf.source})") from None
    return Architecture(conf.config, model_class, conf.source, conf.weights_label)


def construct(arch: Architecture, with_pooler: bool) -> Any:
    """A freshly initialised model (eager attention), with or without its pooler."""
    arch.config._attn_implementation = "eager"
    return arch.model_class(arch.config, **hf_config.pooler_kwargs(arch.model_class, with_pooler))


def checkpoint_weights(arch: Architecture, folder: Path, with_pooler: bool) -> tuple[Any, str]:
    present = [name for name in CHECKPOINT_FILES if (folder / name).is_file()]
    if not present:
        raise StrategyUnavailable(f"no transformers checkpoint ({', '.join(CHECKPOINT_FILES[::2])}) in {folder}")
    if not (folder / "config.json").is_file():
        raise StrategyUnavailable(f"{folder} has {present[0]} but no config.json to load it with")
    kwargs: dict[str, Any] = {"attn_implementation": "eager", "output_loading_info": True, **hf_config.pooler_kwargs(arch.model_class, with_pooler)}
    model, info = arch.model_class.from_pretrained(str(folder), **kwargs)
    missing = list(info.get("missing_keys", []))
    if missing:
        raise StrategyUnavailable(f"the checkpoint in {folder} lacks {len(missing)} of the model's weights ({', '.join(missing[:4])}…)")
    return model, f"checkpoint {folder / present[0]} (from_pretrained)"


def onnx_weights_of(arch: Architecture, onnx_path: Path, with_pooler: bool) -> tuple[Any, str]:
    """The model's parameters from the ONNX file's initializers (onnx_weights.py's matching)."""
    import torch

    model = construct(arch, with_pooler)
    params = dict(model.named_parameters())
    matched = onnx_weights.match(onnx_path, {name: tuple(p.shape) for name, p in params.items()}, tied_names(model))
    state = {name: torch.from_numpy(array).to(params[name].dtype) for name, array in matched.arrays.items()}
    model.load_state_dict(state, strict=False)  # parameters only; buffers keep their defaults
    return model, matched.describe(onnx_path)


def tied_names(model: Any) -> dict[str, list[str]]:
    """Each parameter that `named_parameters()` lists, with the other names its tensor goes by
    (tied input and output embeddings: `model.embed_tokens.weight` and `lm_head.weight`)."""
    names: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(name)
    return {group[0]: group[1:] for group in names.values() if len(group) > 1}


def seed_weights(arch: Architecture, seed: int, with_pooler: bool, asked: bool) -> tuple[Any, str]:
    import torch

    hf_config.refuse_unasked_seed(arch.weights_label, asked)
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


def build(hello: Hello, weights: str, seed: int, with_pooler: bool, causal: bool = False) -> Built:
    """The model for `hello`'s folder, with weights by `weights` (auto, checkpoint, onnx or seed):
    the base model, or with `causal` the causal language model."""
    arch = architecture(hello, causal)

    def attempt(strategy: str) -> tuple[Any, str]:
        if strategy == "checkpoint":
            return checkpoint_weights(arch, hello.model.dir, with_pooler)
        if strategy == "onnx":
            return onnx_weights_of(arch, hello.model.onnx, with_pooler)
        return seed_weights(arch, seed, with_pooler, asked=weights == "seed")

    return hf_config.build_with(weights, attempt, arch.source)
