"""The model behind mlx_hf.py: an mlx-transformers encoder, its configuration and its weights.

`build(hello, weights, seed, with_pooler)` returns the model (float32, `.eval()`), and says where
its configuration and weights came from. The configuration is hf_config.py's (config.json, else
model.yaml's `architecture` with scripts/export_models.py's embedded configuration; never the Hub).
The weights come from one of three strategies (`auto` tries them in this order):

  checkpoint  *.safetensors beside config.json in the model folder, read with mx.load and matched
              to the model's parameters by name and shape (a prefix such as `bert.` stripped; every
              parameter must be found; tensors the model has no use for are named in the notes);
  onnx        the ONNX file's initializers, matched by onnx_weights.py (as torch_hf.py does);
  seed        mx.random.seed(seed) and the model class's own initialisation (only where model.yaml
              says `weights: random`, unless asked for by name). These are not the ONNX file's
              weights, so the outputs do not agree with other runtimes'.

mlx-transformers' `from_pretrained` is never called: it asks the Hub for any name that is not an
absolute path. Needs mlx, mlx-transformers, transformers (configurations only), numpy; `onnx` for
`weights: onnx`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import hf_config, onnx_weights
from .hf_config import Built, StrategyUnavailable, mismatch
from .protocol import AdapterError, Hello

# model_type -> mlx-transformers base model class: the encoders xbench's models can feed.
ENCODERS = {"bert": "BertModel", "roberta": "RobertaModel", "xlm-roberta": "XLMRobertaModel"}


def model_class(config: Any) -> Any:
    import mlx_transformers
    import mlx_transformers.models as models

    name = ENCODERS.get(config.model_type)
    if name is None:
        others = sorted(n for n in dir(models) if n.endswith("Model") and n not in ENCODERS.values())
        raise AdapterError(
            f"mlx-transformers {package_version('mlx-transformers')} has no encoder for model_type `{config.model_type}`: "
            f"this program runs {', '.join(f'{t} ({c})' for t, c in ENCODERS.items())}; "
            f"its other models ({', '.join(others)}) are decoders or multimodal models"
        )
    del mlx_transformers
    return getattr(models, name)


def mask_in(cls: Any, dtype: Any) -> None:
    """Has the module of `cls` build the additive attention mask in `dtype` rather than float32
    (mlx-transformers' default, which promotes a half-precision forward to float32 from the first
    attention on)."""
    import sys

    module = sys.modules[cls.__module__]
    build = getattr(module, "get_extended_attention_mask", None)
    if build is None:
        raise AdapterError(f"mlx-transformers' {cls.__module__} builds no attention mask this program can set the type of")
    original = getattr(build, "original", build)

    def in_dtype(attention_mask: Any, input_shape: Any, dtype_: Any = None) -> Any:
        return original(attention_mask, input_shape, dtype)

    in_dtype.original = original  # type: ignore[attr-defined]
    module.get_extended_attention_mask = in_dtype


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def construct(cls: Any, config: Any, with_pooler: bool) -> Any:
    return cls(config, **hf_config.pooler_kwargs(cls, with_pooler))


# Arrays mlx-transformers keeps among a model's parameters that are computed from the configuration,
# not weights: the rotary embeddings' inverse frequencies of its decoders.
DERIVED = ("rotary_emb.inv_freq", "rotary_emb.original_inv_freq")


def parameter_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    """The model's weights by name and shape (the arrays of DERIVED left out)."""
    from mlx.utils import tree_flatten

    return {name: tuple(p.shape) for name, p in tree_flatten(model.parameters()) if not name.endswith(DERIVED)}


def assign(model: Any, arrays: dict[str, Any]) -> None:
    """Puts every weight's value in place (numpy or mx arrays, each in the weight's shape)."""
    import mlx.core as mx

    shapes = parameter_shapes(model)
    wrong = sorted(set(shapes) ^ set(arrays)) + sorted(n for n in set(shapes) & set(arrays) if tuple(arrays[n].shape) != shapes[n])
    if wrong:
        raise AdapterError(f"the weights found do not fit the model ({', '.join(wrong[:3])}…)")
    model.load_weights([(name, mx.array(a).astype(mx.float32)) for name, a in arrays.items()], strict=False)


def checkpoint_weights(model: Any, folder: Path, tied: dict[str, str] | None = None) -> str:
    """`tied` maps weights the checkpoint need not hold to the weight they share values with
    (a decoder's output layer and its token embeddings)."""
    import mlx.core as mx

    if not folder.is_dir():
        raise StrategyUnavailable(f"{folder} is not a folder; a checkpoint is a folder holding config.json and *.safetensors")
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise StrategyUnavailable(f"no *.safetensors checkpoint in {folder}")
    if not (folder / "config.json").is_file():
        raise StrategyUnavailable(f"{folder} has {files[0].name} but no config.json to build the model with")
    tensors: dict[str, Any] = {}
    for file in files:
        tensors.update(mx.load(str(file)))  # bf16 and fp16 as they are
    tied = tied or {}
    shapes = {name: shape for name, shape in parameter_shapes(model).items() if name not in tied}
    prefix = onnx_weights.common_prefix(tensors, shapes)
    found: dict[str, Any] = {}
    missing, wrong = [], []
    for name, shape in shapes.items():
        tensor = tensors.get(prefix + name)
        if tensor is None:
            missing.append(name)
        elif tuple(tensor.shape) != shape:
            wrong.append(f"{prefix + name} {list(tensor.shape)} (model {list(shape)})")
        else:
            found[name] = tensor
    if missing or wrong:
        raise StrategyUnavailable(f"the checkpoint in {folder} does not fit the model: " + mismatch(len(shapes), missing, "are not in it", wrong, "have another shape"))
    assign(model, {**found, **{name: found[source] for name, source in tied.items()}})
    unused = sorted(set(tensors) - {prefix + name for name in found})
    shown = f", prefix `{prefix}` stripped" if prefix else ""
    extra = f"; {len(unused)} tensors of the checkpoint not used ({', '.join(unused[:4])}{'…' if len(unused) > 4 else ''})" if unused else ""
    shared = f"; {', '.join(f'{n} = {s}' for n, s in tied.items())} (tied)" if tied else ""
    return f"checkpoint {', '.join(str(f) for f in files)} ({len(found)} parameters matched by name{shown}{shared}{extra})"


def onnx_initializer_weights(model: Any, onnx_path: Path) -> str:
    matched = onnx_weights.match(onnx_path, parameter_shapes(model))
    assign(model, matched.arrays)
    return matched.describe(onnx_path)


def seed_weights(seed: int, label: str, asked: bool) -> str:
    import mlx.core as mx

    hf_config.refuse_unasked_seed(label, asked)
    mx.random.seed(seed)
    return (
        f"random: mx.random.seed({seed}) and mlx-transformers' own initialisation; these are not the ONNX file's "
        "weights (MLX's generator is not torch's), so the outputs will not agree with other runtimes'"
    )


def build(hello: Hello, weights: str, seed: int, with_pooler: bool) -> Built:
    """The model for `hello`'s folder, with weights by `weights` (auto, checkpoint, onnx or seed)."""
    conf = hf_config.configuration(hello)
    cls = model_class(conf.config)

    def attempt(strategy: str) -> tuple[Any, str]:
        if strategy == "seed":
            described = seed_weights(seed, conf.weights_label, asked=weights == "seed")
        model = construct(cls, conf.config, with_pooler)  # after the seed: initialisation draws from it
        if strategy == "checkpoint":
            described = checkpoint_weights(model, hello.model.dir)
        elif strategy == "onnx":
            described = onnx_initializer_weights(model, hello.model.onnx)
        model.eval()  # load_weights leaves dropout on
        return model, described

    return hf_config.build_with(weights, attempt, conf.source)
