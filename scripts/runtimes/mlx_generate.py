"""Generation in MLX for mlx_hf.py: an mlx-transformers causal LM, its weights, and the `Decoding`
that protocol.time_generations drives (docs/runtime-protocol.md, "Generation").

`build(hello, weights, seed)` makes mlx-transformers' LlamaForCausalLM from the model folder's
configuration (hf_config.py): model_type `llama` as it is, and `qwen2` as Llama with biases on the
query, key and value projections (none on the output projection, no sliding window). A
configuration the class would compute differently from the ONNX export (head_dim other than
hidden_size / num_attention_heads, an MLP bias, a rotary scaling mlx-transformers does not know,
Qwen2's sliding window) is refused with the reason. Weights by mlx_model.py's strategies; a model
with `tie_word_embeddings` takes its output layer from its token embeddings (the ONNX export keeps
one initializer for both, which the graph both gathers from and multiplies by).

`MlxDecoding` keeps mlx-transformers' DynamicCache (MLX arrays, grown by concatenation at each
call) between the prefill and the steps. Every call passes the attention mask and the position ids
as given, so left-padded rows compute what the ONNX graph does; the logits are the last position's
only (`num_logits_to_keep=1`: rows are padded on the left). `pick` is mx.argmax (the first index
among equal maxima) evaluated with the cache (mx.eval) and copied to numpy: that is where the
computation waits.
"""

from __future__ import annotations

from typing import Any

from . import hf_config, mlx_model, onnx_weights
from .hf_config import Built, StrategyUnavailable
from .protocol import AdapterError, Hello

ARCHITECTURES = ("llama", "qwen2")
EMBEDDINGS, OUTPUT = "model.embed_tokens.weight", "lm_head.weight"


def check_config(config: Any) -> None:
    """Refuses what mlx-transformers' Llama would compute differently from the exported model."""
    kind = config.model_type
    if kind not in ARCHITECTURES:
        raise AdapterError(
            f"this program generates with model_type {' and '.join(ARCHITECTURES)} (mlx-transformers' LlamaForCausalLM); "
            f"the model folder's configuration says `{kind}`"
        )
    from mlx_transformers.models.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    heads, hidden = config.num_attention_heads, config.hidden_size
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    problems = []
    if head_dim * heads != hidden:
        problems.append(f"head_dim {head_dim} x {heads} heads is not hidden_size {hidden} (mlx-transformers' Llama takes hidden_size / heads)")
    if getattr(config, "mlp_bias", False):
        problems.append("mlp_bias is true (mlx-transformers' Llama MLP has no biases)")
    if rope_type not in ROPE_INIT_FUNCTIONS:
        problems.append(f"rope type `{rope_type}` is not one mlx-transformers knows ({', '.join(ROPE_INIT_FUNCTIONS)})")
    if getattr(config, "pretraining_tp", 1) not in (None, 1):
        problems.append(f"pretraining_tp {config.pretraining_tp}")
    if kind == "qwen2" and getattr(config, "use_sliding_window", False):
        problems.append("use_sliding_window is true (mlx-transformers' Llama attends to every earlier position)")
    if problems:
        raise AdapterError(f"mlx-transformers' LlamaForCausalLM cannot compute this {kind} model as exported: " + "; ".join(problems))


def construct(config: Any) -> Any:
    import mlx.nn as nn
    from mlx_transformers.models import LlamaForCausalLM

    if config.model_type == "qwen2":  # Llama with q/k/v biases (o_proj without)
        config.attention_bias = False
        config.mlp_bias = False
    model = LlamaForCausalLM(config)
    if config.model_type == "qwen2":
        for layer in model.model.layers:
            attn = layer.self_attn
            attn.q_proj = nn.Linear(config.hidden_size, attn.num_heads * attn.head_dim, bias=True)
            attn.k_proj = nn.Linear(config.hidden_size, attn.num_key_value_heads * attn.head_dim, bias=True)
            attn.v_proj = nn.Linear(config.hidden_size, attn.num_key_value_heads * attn.head_dim, bias=True)
    return model


def onnx_initializer_weights(model: Any, onnx_path: Any, tied: bool) -> str:
    """The weights from the ONNX file's initializers (onnx_weights.py); a tied model's shared
    embedding is the [vocab, hidden] initializer named after either weight, used as it is stored
    (the export gathers token rows from it and multiplies by its transpose)."""
    try:
        import onnx
    except ImportError:
        raise StrategyUnavailable("the `onnx` package is not installed (pip install onnx) to read the ONNX file's weights") from None
    if not onnx_path.is_file():
        raise StrategyUnavailable(f"there is no ONNX file at {onnx_path} to take the weights from")
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    shapes = mlx_model.parameter_shapes(model)
    wanted = {n: s for n, s in shapes.items() if not (tied and n in (EMBEDDINGS, OUTPUT))}
    matched = onnx_weights.match_graph(graph, wanted, onnx_path.name)
    described = matched.describe(onnx_path)
    if tied:
        names = {matched.prefix + n for n in (EMBEDDINGS, OUTPUT)} | {EMBEDDINGS, OUTPUT}
        shared = [t for t in graph.initializer if t.name in names and tuple(t.dims) == shapes[EMBEDDINGS]]
        if len(shared) != 1:
            raise StrategyUnavailable(
                f"{onnx_path.name}: tie_word_embeddings, but {len(shared)} initializers named {' or '.join(sorted(names))} "
                f"of shape {list(shapes[EMBEDDINGS])} (one was expected)"
            )
        array = numpy_helper.to_array(shared[0])
        matched.arrays[EMBEDDINGS] = matched.arrays[OUTPUT] = array
        described += f"; token embeddings and output layer tied, both from `{shared[0].name}`"
    mlx_model.assign(model, matched.arrays)
    return described


def build(hello: Hello, weights: str, seed: int) -> Built:
    """The causal LM for `hello`'s folder, float32, `.eval()`, with weights by `weights`."""
    conf = hf_config.configuration(hello)
    check_config(conf.config)
    tied = bool(getattr(conf.config, "tie_word_embeddings", False))

    def attempt(strategy: str) -> tuple[Any, str]:
        if strategy == "seed":
            described = mlx_model.seed_weights(seed, conf.weights_label, asked=weights == "seed")
        model = construct(conf.config)
        if strategy == "checkpoint":
            described = mlx_model.checkpoint_weights(model, hello.model.dir, {OUTPUT: EMBEDDINGS} if tied else None)
        elif strategy == "onnx":
            described = onnx_initializer_weights(model, hello.model.onnx, tied)
        elif tied:  # seed: the class draws both; tie them as the model does
            model.lm_head.weight = model.model.embed_tokens.weight
        model.eval()
        return model, described

    return hf_config.build_with(weights, attempt, conf.source)


def check_layout(model: Any, decoder: dict[str, Any] | None) -> None:
    """Compares the model with the layout xbench read from the ONNX graph (hello's `decoder`)."""
    config = model.config
    attn = model.model.layers[0].self_attn
    ours = {"layers": config.num_hidden_layers, "kv_heads": attn.num_key_value_heads, "head_dim": attn.head_dim, "vocab": config.vocab_size}
    differ = [f"{name} {value} (the ONNX graph: {graph})" for name, graph, value in hf_config.decoder_differences(ours, decoder)]
    if differ:
        raise AdapterError(f"the model built from {config.model_type}'s configuration differs from the ONNX model xbench reads: {', '.join(differ)}")


def keep_rotary_float32(model: Any) -> None:
    """model.set_dtype also casts the rotary inverse frequencies; they are put back in float32
    (mlx-transformers computes the angles in float32)."""
    import mlx.core as mx

    for layer in model.model.layers:
        rotary = layer.self_attn.rotary_emb
        rotary.inv_freq = mx.array(rotary.original_inv_freq).astype(mx.float32)


class MlxDecoding:
    """protocol.Decoding over an mlx-transformers causal LM: the cache stays in MLX between calls."""

    def __init__(self, model: Any) -> None:
        from mlx_transformers.models.cache import DynamicCache

        self.model = model
        self.fresh = DynamicCache
        self.cache = DynamicCache()

    def reset(self) -> None:
        self.cache = self.fresh()

    def _forward(self, ids: Any, mask: Any, positions: Any) -> Any:
        import mlx.core as mx

        out = self.model(
            input_ids=mx.array(ids),
            attention_mask=mx.array(mask),
            position_ids=mx.array(positions),
            past_key_values=self.cache,
            use_cache=True,
            num_logits_to_keep=1,
            return_dict=True,
        )
        return out.logits[:, -1, :]

    def prefill(self, ids: Any, mask: Any, positions: Any) -> Any:
        return self._forward(ids, mask, positions)

    def step(self, ids: Any, mask: Any, positions: Any) -> Any:
        return self._forward(ids, mask, positions)

    def pick(self, logits: Any) -> Any:
        import mlx.core as mx
        import numpy as np

        ids = mx.argmax(logits, axis=-1)
        mx.eval(ids, self.cache.key_cache, self.cache.value_cache)
        return np.array(ids).astype(np.int64)

    def host_logits(self, logits: Any, rows: int) -> Any:
        import mlx.core as mx
        import numpy as np

        kept = logits[:rows]
        return np.array(kept.astype(mx.float32) if kept.dtype == mx.bfloat16 else kept)

    def cache_bytes(self) -> int:
        return sum(int(a.nbytes) for a in [*self.cache.key_cache, *self.cache.value_cache])


def timer(backend: str) -> str:
    """`ready`'s generate_timer."""
    memory = {"cpu": "MLX's host memory", "cuda": "CUDA managed memory", "metal": "Apple silicon's unified memory"}[backend]
    return (
        "prefill: the prompt's numpy int64 ids, attention mask and position ids made into mx.arrays (a copy into "
        f"{memory}), mlx-transformers' LlamaForCausalLM forward with an empty DynamicCache (it builds the attention mask "
        "through numpy), the last position's logits only, mx.argmax over the vocabulary (first maximum), mx.eval on the ids "
        "and the cache, the ids copied into numpy; each step: the same for one id per row, the mask one column longer and "
        "the next positions, the key/value cache kept in MLX between calls (grown by concatenation)"
    )
