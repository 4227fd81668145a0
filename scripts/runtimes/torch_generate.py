"""Generation for torch_hf.py: the causal language model, greedy decoding with its own cache.

When hello says `task: generate` (docs/runtime-protocol.md, "Generation"), torch_hf.py hands the
load to `load` here: the causal LM is built from the model folder's configuration
(transformers' causal-LM class for it, e.g. LlamaForCausalLM, Qwen2ForCausalLM), with weights by
the same strategies as the encoder models (hf_model.py); the graph's decoder facts from hello
(`decoder`: layers, key/value heads, head size, vocabulary) are checked against the configuration
and a mismatch is refused. Each `generate` message is answered by protocol.time_generations over a
`TorchDecoding`:

  prefill   the prompt (input_ids, attention_mask, position_ids exactly as xbench sends them,
            rows padded on the left) in one forward pass with an empty cache, logits of the last
            position only (logits_to_keep=1);
  step      the last picked ids [batch, 1], the mask with its new column, each row's next position;
  pick      torch.argmax over the vocabulary on the device (the first of equal maxima, as
            torch.argmax documents), then the ids copied to host memory with .cpu().

Options that apply to generation (the others of torch_hf.py are refused when set):
  cache       dynamic (default): transformers' DynamicCache, grown by concatenation each step;
              static: transformers' StaticCache of prompt + new tokens positions, allocated before
              timing and zeroed between generations; the model then gets a mask of the cache's
              full length (the positions not yet written are 0) and explicit cache positions
  device, dtype, attention, tf32, seed, weights: as for torch_hf.py
  cuda_graph  refused: capturing the decode step is not done for generation yet
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from . import hf_config, hf_model, protocol
from .protocol import AdapterError, Hello, Ready

CACHES = ("dynamic", "static")
# torch_hf.py's options that generation does not use, with the value that leaves them off.
NOT_FOR_GENERATION = {"compile": "", "timing": "end-to-end", "io": ""}


def check_decoder(config: Any, decoder: dict[str, Any] | None, source: str, onnx: Any) -> None:
    """Refuses a configuration whose decoder differs from the one xbench read from the ONNX graph."""
    heads = config.num_attention_heads
    ours = {
        "layers": config.num_hidden_layers,
        "kv_heads": getattr(config, "num_key_value_heads", None) or heads,
        "head_dim": getattr(config, "head_dim", None) or config.hidden_size // heads,
        "vocab": config.vocab_size,
    }
    differ = [f"{name} {graph} in the graph, {value} in the configuration" for name, graph, value in hf_config.decoder_differences(ours, decoder)]
    if differ:
        raise AdapterError(f"the configuration ({source}) does not describe {onnx}: {'; '.join(differ)}; give the model folder the config.json of the exported model")


class TorchDecoding:
    """protocol.Decoding for a transformers causal LM: the model's own cache, greedy picks on the device."""

    def __init__(self, model: Any, device: Any, cache: str, batch: int, total: int) -> None:
        import torch

        self.model, self.device, self.static = model, device, cache == "static"
        self.cache: Any = None
        self.mask: Any = None  # static: the full-length mask, [batch, total]
        if self.static:
            from transformers import StaticCache

            self.cache = StaticCache(config=model.config, max_cache_len=total)
            self.mask = torch.zeros((batch, total), dtype=torch.int64, device=device)

    def reset(self) -> None:
        if self.static:
            self.cache.reset()  # zeroes the tensors it holds, keeps the allocation
            self.mask.zero_()
        else:
            from transformers import DynamicCache

            self.cache = DynamicCache(config=self.model.config)

    def _forward(self, ids: Any, mask: Any, positions: Any) -> Any:
        import torch

        ids_t = torch.from_numpy(ids).to(self.device)
        pos_t = torch.from_numpy(positions).to(self.device)
        mask_t = torch.from_numpy(mask).to(self.device)
        extra: dict[str, Any] = {}
        if self.static:
            width, new = mask_t.shape[1], ids_t.shape[1]
            self.mask[:, :width].copy_(mask_t)
            mask_t = self.mask
            extra["cache_position"] = torch.arange(width - new, width, device=self.device)
        out = self.model(input_ids=ids_t, attention_mask=mask_t, position_ids=pos_t, past_key_values=self.cache, use_cache=True, logits_to_keep=1, **extra)
        return out.logits[:, -1, :]

    def prefill(self, ids: Any, mask: Any, positions: Any) -> Any:
        return self._forward(ids, mask, positions)

    def step(self, ids: Any, mask: Any, positions: Any) -> Any:
        return self._forward(ids, mask, positions)

    def pick(self, logits: Any) -> Any:
        import torch

        return torch.argmax(logits, dim=-1).cpu().numpy()  # .cpu() waits for the device

    def host_logits(self, logits: Any, rows: int) -> Any:
        import torch

        kept = logits[:rows]
        return (kept.float() if kept.dtype == torch.bfloat16 else kept).cpu().numpy()

    def cache_bytes(self) -> int:
        total = 0
        for layer in getattr(self.cache, "layers", []):
            for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
                if tensor is not None:
                    total += tensor.numel() * tensor.element_size()
        return total


class TorchGenerator:
    """Answers `generate` messages for torch_hf.py."""

    def __init__(self, model: Any, device: Any, cache: str) -> None:
        self.model, self.device, self.cache = model, device, cache

    def generate(self, cell: protocol.GenerateCell) -> protocol.GenerateResult:
        import torch

        started = time.perf_counter_ns()
        ids = cell.prompt["input_ids"]
        decoding = TorchDecoding(self.model, self.device, self.cache, ids.shape[0], ids.shape[1] + cell.new_tokens)
        prepare_ms = protocol.elapsed_ms(started)
        with torch.inference_mode():
            result = protocol.time_generations(cell, decoding)
        return dataclasses.replace(result, prepare_ms=prepare_ms)


def generate_timer(cuda: bool, where: str, cache: str, dtype: str) -> str:
    move = "copied to the GPU with .to()" if cuda else "wrapped as CPU tensors with torch.from_numpy (nothing copied)"
    kept = (
        f"the model's DynamicCache, grown by concatenation each step and kept on {where}"
        if cache == "dynamic"
        else f"a StaticCache of prompt + new tokens positions on {where}, allocated and zeroed before timing, with a mask of its full length"
    )
    sync = ", which waits for the GPU" if cuda else ""
    return (
        f"each timed prefill and step starts with the ids, attention mask and position ids as host int64 arrays, {move}; "
        f"one {dtype} forward pass of the causal LM under torch.inference_mode() with {kept}, logits of the last position only "
        f"(logits_to_keep=1); torch.argmax over the vocabulary on {where} (the first of equal maxima); the picked ids copied "
        f"to host memory with .cpu(){sync}"
    )


def load(hello: Hello, opts: protocol.Options) -> tuple[TorchGenerator, Ready]:
    """The causal LM for a generation scenario, and the `ready` that says so."""
    import torch
    import transformers

    for name, off in NOT_FOR_GENERATION.items():
        if opts.text(name) != off:
            raise AdapterError(f"option {name} does not apply to generation (its timed spans are fixed by the protocol: ids in host memory to ids in host memory)")
    if opts.flag("cuda_graph"):
        raise AdapterError("option cuda_graph is not available for generation: this program does not capture the decode step; leave cuda_graph off")
    cache = opts.text("cache") or "dynamic"
    if cache not in CACHES:
        raise AdapterError(f"option cache: `{cache}` is not one of {', '.join(CACHES)}")
    device_kind = opts.text("device", ("cpu", "cuda"))
    dtype_name = opts.text("dtype", ("fp32", "fp16", "bf16"))
    attention = opts.text("attention", ("eager", "sdpa"))
    tf32 = opts.flag("tf32")
    weights = opts.text("weights", ("auto", "checkpoint", "onnx", "seed"))
    cuda = device_kind == "cuda"
    if cuda and not torch.cuda.is_available():
        raise AdapterError(f"device cuda was asked for, but torch {torch.__version__} sees no CUDA GPU (torch.version.cuda = {torch.version.cuda})")
    if not cuda and tf32:
        raise AdapterError("option tf32 needs device cuda")
    if cuda and hello.device >= torch.cuda.device_count():
        raise AdapterError(f"GPU {hello.device} was asked for, but torch sees {torch.cuda.device_count()}")
    device = torch.device(f"cuda:{hello.device}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = tf32
    if hello.threads:
        torch.set_num_threads(int(hello.threads))

    transformers.utils.logging.disable_progress_bar()
    built = hf_model.build(hello, weights, opts.integer("seed") or 0, with_pooler=False, causal=True)
    check_decoder(built.model.config, hello.decoder, built.configuration, hello.model.onnx)
    hf_model.use_attention(built.model, attention)
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
    model = built.model.eval().to(device=device, dtype=dtype)

    where = f"{torch.cuda.get_device_name(device)} (cuda:{hello.device})" if cuda else protocol.cpu_name()
    timer = generate_timer(cuda, "the GPU" if cuda else "the CPU", cache, dtype_name)
    notes = [f"weights: {built.weights}", f"configuration: {built.configuration}", f"{type(model).__name__}, attention {model.config._attn_implementation}, {cache} cache"]
    if built.not_used:
        notes.append("not used: " + "; ".join(built.not_used))
    if cuda:
        notes.append(f"fp32 matmul TF32 {'allowed' if tf32 else 'off'}")
    ready = Ready(
        engine="torch",
        version=f"{torch.__version__} (transformers {transformers.__version__})",
        device=where,
        precision="tf32" if dtype_name == "fp32" and cuda and tf32 else dtype_name,
        placement=[("cuda" if cuda else "cpu", 1)],
        threads=f"intra-op {torch.get_num_threads()}",
        timer=timer,
        timer_label=f"greedy decoding, {cache} cache",
        timing="end-to-end",
        host_memory="pageable" if cuda else "none",
        extra={"weights": built.strategy, "notes": "; ".join(notes)},
        generate=True,
        generate_timer=timer,
    )
    return TorchGenerator(model, device, cache), ready
