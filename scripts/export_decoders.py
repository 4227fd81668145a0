"""Decoder exports for `scripts/export_models.py --decoder`: Llama-family causal language models with
their key/value cache, in the layout optimum and onnxruntime-genai export, checked against PyTorch.

Graph inputs: `input_ids` int64 [batch, sequence_length], `attention_mask` int64 [batch,
past_sequence_length + sequence_length], `position_ids` int64 [batch, sequence_length], and for
each layer i `past_key_values.{i}.key` / `.value` [batch, num_key_value_heads, past_sequence_length,
head_dim]. Outputs: `logits` [batch, sequence_length, vocab_size] (always fp32), and
`present.{i}.key` / `.value` [batch, num_key_value_heads, past_sequence_length + sequence_length,
head_dim] in the model's precision. A prefill is a run with past_sequence_length 0 (empty past
tensors); a decode step feeds the presents back as the next pasts.

The check (decoder_check.py) runs onnxruntime and PyTorch on the same seeded token ids: the prefill,
then greedy decode steps with each side's cache fed back. The greedy ids must be identical at
every step and the logits within the tolerance.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx_ir as ir
import torch
import transformers
from transformers import DynamicCache

from decoder_check import CheckSettings, check_decoder

OPSET = 18
# The ONNX protobuf holds at most 2 GiB: larger weights go to `model.onnx.data` beside the graph.
EXTERNAL_DATA_BYTES = 1_800_000_000
# Sizes of the example used to trace the graph only. Each is at least 2, so that torch.export keeps
# the dimension symbolic (sizes 0 and 1 would be fixed into the graph); the check then runs past 0.
TRACE_BATCH, TRACE_SEQUENCE, TRACE_PAST = 2, 3, 5


@dataclass(frozen=True)
class DecoderDef:
    """A decoder the script knows by name: its transformers model type and configuration."""

    name: str
    architecture: str  # transformers' model_type
    hub_id: str
    parameters: int  # what the configuration below must give; the model card's figure
    config: dict[str, Any] = field(default_factory=dict)


# The configurations, written out because the Hub is out of reach. Values as in each model's
# config.json on the Hub; the parameter counts are checked against the built model.
DECODERS: dict[str, DecoderDef] = {
    d.name: d
    for d in [
        # SmolLM-135M (HuggingFaceTB): a Llama, 134.5M parameters with the embedding tied to the output.
        DecoderDef(
            name="smollm-135m",
            architecture="llama",
            hub_id="HuggingFaceTB/SmolLM-135M",
            parameters=134_515_008,
            config=dict(
                hidden_size=576,
                intermediate_size=1536,
                num_hidden_layers=30,
                num_attention_heads=9,
                num_key_value_heads=3,
                head_dim=64,
                vocab_size=49152,
                max_position_embeddings=2048,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                rms_norm_eps=1e-5,
                hidden_act="silu",
                tie_word_embeddings=True,
                attention_bias=False,
                mlp_bias=False,
                initializer_range=0.02,
                bos_token_id=0,
                eos_token_id=0,
            ),
        ),
        # Qwen2.5-0.5B (Qwen): 0.49B parameters, 0.36B of them outside the embedding; bias on q, k, v
        # (Qwen2's attention always has it), tied embedding, no sliding window.
        DecoderDef(
            name="qwen2.5-0.5b",
            architecture="qwen2",
            hub_id="Qwen/Qwen2.5-0.5B",
            parameters=494_032_768,
            config=dict(
                hidden_size=896,
                intermediate_size=4864,
                num_hidden_layers=24,
                num_attention_heads=14,
                num_key_value_heads=2,
                vocab_size=151936,
                max_position_embeddings=32768,
                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                rms_norm_eps=1e-6,
                hidden_act="silu",
                tie_word_embeddings=True,
                use_sliding_window=False,
                sliding_window=32768,
                max_window_layers=24,
                initializer_range=0.02,
                bos_token_id=151643,
                eos_token_id=151643,
            ),
        ),
    ]
}


def decoder_classes(architecture: str) -> tuple[type, type]:
    """The transformers (config class, causal LM class) of a decoder architecture."""
    classes = {
        "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
        "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
    }
    if architecture not in classes:
        raise SystemExit(f"error: decoder architecture `{architecture}` is not supported (supported: {', '.join(classes)})")
    return classes[architecture]


def head_dim(config: Any) -> int:
    return int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)


def random_decoder(definition: DecoderDef) -> torch.nn.Module:
    """The decoder built from its configuration with random weights (seed 0); checks its size."""
    config_class, model_class = decoder_classes(definition.architecture)
    config = config_class(**definition.config)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = model_class(config).eval()
    count = sum(p.numel() for p in model.parameters())
    if count != definition.parameters:
        raise SystemExit(f"error: {definition.name} built with {count} parameters, its model card says {definition.parameters}: the configuration above is wrong")
    print(f"  {count / 1e6:.1f}M parameters ({definition.name}'s own figure), random weights (seed 0)")
    return model


def checkpoint_decoder(directory: Path) -> torch.nn.Module:
    """Trained weights from a local folder holding config.json and the weights."""
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise SystemExit(f"error: {config_path} not found; --checkpoint needs a folder with config.json and the weights")
    _, model_class = decoder_classes(json.loads(config_path.read_text()).get("model_type", "?"))
    model, info = model_class.from_pretrained(str(directory), attn_implementation="eager", dtype=torch.float32, output_loading_info=True)
    if info.get("missing_keys"):
        raise SystemExit(f"error: {directory} lacks weights the model needs: {', '.join(sorted(info['missing_keys']))}")
    return model.eval()


class DecoderWithCache(torch.nn.Module):
    """Takes the cache as flat tensors (key, value per layer), builds the DynamicCache the model
    wants inside, and returns logits and the flat presents."""

    def __init__(self, model: torch.nn.Module, float_logits: bool) -> None:
        super().__init__()
        self.model = model
        self.layers = int(model.config.num_hidden_layers)
        self.float_logits = float_logits

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor, *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        cache = DynamicCache(ddp_cache_data=[(past[2 * i], past[2 * i + 1]) for i in range(self.layers)], config=self.model.config)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, past_key_values=cache, use_cache=True)
        presents: list[torch.Tensor] = []
        for layer in out.past_key_values.layers:
            presents += [layer.keys, layer.values]
        logits = out.logits.float() if self.float_logits else out.logits
        return (logits, *presents)


def io_names(layers: int) -> tuple[list[str], list[str]]:
    cache = [(i, kind) for i in range(layers) for kind in ("key", "value")]
    inputs = ["input_ids", "attention_mask", "position_ids"] + [f"past_key_values.{i}.{kind}" for i, kind in cache]
    outputs = ["logits"] + [f"present.{i}.{kind}" for i, kind in cache]
    return inputs, outputs


def rename_dims(model: ir.Model) -> None:
    """Gives the exporter's symbols (s10, s70, …) the layout's names, in every value's shape.
    The attention mask's own symbols are tied to the others: its batch is the batch and its length
    past + sequence (the exporter sees no relation, the model only slices the mask)."""
    graph = model.graph
    inputs = {v.name: v for v in graph.inputs}
    symbols: dict[str, str] = {}

    def name(value: ir.Value, axis: int, to: str) -> None:
        dim = value.shape[axis]
        if isinstance(dim, ir.SymbolicDim) and dim.value:
            symbols[dim.value] = to

    name(inputs["input_ids"], 0, "batch")
    name(inputs["input_ids"], 1, "sequence_length")
    name(inputs["past_key_values.0.key"], 2, "past_sequence_length")
    name(inputs["attention_mask"], 0, "batch")
    name(inputs["attention_mask"], 1, "(past_sequence_length + sequence_length)")
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(symbols, key=len, reverse=True))) + r")\b")

    def renamed(value: ir.Value) -> None:
        if value.shape is None:
            return
        dims = []
        for dim in value.shape:
            if isinstance(dim, ir.SymbolicDim) and dim.value:
                text = pattern.sub(lambda m: symbols[m.group(1)], dim.value)
                dim = text[1:-1] if text.startswith("(") and text.endswith(")") and text.count("(") == 1 else text
            dims.append(dim)
        value.shape = ir.Shape(dims)

    for value in [*graph.inputs, *graph.outputs]:
        renamed(value)
    for node in graph.all_nodes():
        for value in node.outputs:
            renamed(value)


def const_int(value: ir.Value | None) -> int | None:
    """The value of a one-element integer constant (initializer or Constant node), else None."""
    if value is None:
        return None
    tensor = ir.convenience.get_const_tensor(value)
    if tensor is None or tensor.size != 1 or tensor.dtype not in (ir.DataType.INT64, ir.DataType.INT32):
        return None
    return int(tensor.numpy().reshape(-1)[0])


def ranges_from_past(model: ir.Model) -> int:
    """Rewrites `Add(Range(0, n, 1), s)` with a scalar `s` as `Range(s, s + n, 1)`; returns how many.

    The exporter writes the cache slots a step fills (`arange(past, past + sequence)`) as a range
    from 0 plus the past's length, a scalar read from a shape. ONNX Runtime keeps shape scalars on
    the host, so that Add would run on the GPU on a value copied from the host: a copy inside the
    step, which stops ONNX Runtime from capturing the step in a CUDA graph. A range's bounds are
    read on the host by the CUDA provider itself, so as one range the slots need no copy."""
    graph = model.graph
    rewritten = 0
    for add in list(graph):
        if add.op_type != "Add" or add.domain not in ("", "ai.onnx"):
            continue
        for k in (0, 1):
            ranged, offset = add.inputs[k], add.inputs[1 - k]
            node = ranged.producer() if ranged is not None else None
            if node is None or node.op_type != "Range" or offset is None or offset.shape is None or offset.shape.rank() != 0:
                continue
            start, limit, delta = node.inputs
            if const_int(start) != 0 or const_int(delta) != 1 or offset.dtype != ranged.dtype:
                continue
            end = ir.node("Add", [offset, limit], name=f"{add.name}_range_end")
            end.outputs[0].dtype, end.outputs[0].shape = offset.dtype, ir.Shape([])
            slots = ir.node("Range", [offset, end.outputs[0], delta], name=f"{add.name}_range")
            slots.outputs[0].dtype, slots.outputs[0].shape = ranged.dtype, add.outputs[0].shape
            graph.insert_before(add, [end, slots])
            name = add.outputs[0].name
            ir.convenience.replace_all_uses_with(add.outputs[0], slots.outputs[0], replace_graph_outputs=True)
            graph.remove(add, safe=True)
            slots.outputs[0].name = name
            if not node.outputs[0].uses():
                graph.remove(node, safe=True)
            rewritten += 1
            break
    return rewritten


def trace_example(config: Any, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(1)
    batch, seq, past = TRACE_BATCH, TRACE_SEQUENCE, TRACE_PAST
    shape = (batch, int(config.num_key_value_heads), past, head_dim(config))
    cache = [torch.randn(shape, generator=generator).to(dtype) for _ in range(2 * int(config.num_hidden_layers))]
    return (
        torch.randint(0, int(config.vocab_size), (batch, seq), generator=generator),
        torch.ones(batch, past + seq, dtype=torch.int64),
        (torch.arange(seq, dtype=torch.int64) + past).expand(batch, seq).contiguous(),
        *cache,
    )


def export_decoder(model: torch.nn.Module, dtype: torch.dtype, path: Path) -> None:
    config = model.config
    inputs, outputs = io_names(int(config.num_hidden_layers))
    dynamic = torch.export.Dim.DYNAMIC
    token_dims = {0: dynamic, 1: dynamic}
    dynamic_shapes = (token_dims, token_dims, token_dims, tuple({0: dynamic, 2: dynamic} for _ in inputs[3:]))
    for stale in (path, path.with_name(path.name + ".data")):
        stale.unlink(missing_ok=True)
    program = torch.onnx.export(
        DecoderWithCache(model, float_logits=True).eval(),
        args=trace_example(config, dtype),
        f=None,
        dynamo=True,
        opset_version=OPSET,
        dynamic_shapes=dynamic_shapes,
        input_names=inputs,
        output_names=outputs,
        verbose=False,
    )
    rename_dims(program.model)
    print(f"  {path.name}: cache slots written as one range in {ranges_from_past(program.model)} place(s)")
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    program.save(str(path), external_data=weight_bytes > EXTERNAL_DATA_BYTES)


def write_config(folder: Path, model: torch.nn.Module, dtype: torch.dtype) -> None:
    """config.json: the transformers configuration the export was made from, with head_dim, dtype,
    the model class and rope_theta also at the top level (as configurations before transformers 5 have it)."""
    config = model.config.to_dict()
    config["head_dim"] = head_dim(model.config)
    config["dtype"] = str(dtype).removeprefix("torch.")
    config["architectures"] = [type(model).__name__]
    rope = config.get("rope_parameters") or {}
    if "rope_theta" in rope:
        config["rope_theta"] = rope["rope_theta"]
    config.pop("_attn_implementation_autoset", None)
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def no_tokenizer(weights: str) -> str:
    if weights == "random":
        return "No tokenizer: none is available offline for random-weight decoders; xbench feeds seeded token ids"
    return "No tokenizer: the checkpoint has no tokenizer.json (--tokenizer FILE adds one); xbench feeds seeded token ids"


def write_yaml(folder: Path, name: str, architecture: str, hub_id: str | None, weights: str, source: str, longest: int, fp16_of: str | None, tokenizer: bool) -> None:
    precision = "fp16 (weights, cache and arithmetic; logits fp32)" if fp16_of else "fp32"
    lines = [f"# Written by scripts/export_models.py --decoder. Weights: {source}."]
    if not tokenizer:
        lines.append(f"# {no_tokenizer(weights)}.")
    if hub_id:
        lines.append(f"hub_id: {hub_id}")
    lines += [f"architecture: {architecture}", "onnx: model.onnx"]
    if tokenizer:
        lines.append("tokenizer: tokenizer.json")
    lines += [
        f"max_positions: {longest}",
        f"weights: {weights}",
        f"description: {name}, decoder with key/value cache, {precision}, exported by scripts/export_models.py --decoder",
    ]
    if fp16_of:
        lines.append(f"compare_with: {fp16_of}")
    (folder / "model.yaml").write_text("\n".join(lines) + "\n")


@dataclass
class DecoderJob:
    """One decoder to export: its folder name, weights and where they came from."""

    name: str
    model: torch.nn.Module
    weights: str  # random | trained
    source: str
    hub_id: str | None = None
    tokenizer: Path | None = None


def export_one_decoder(job: DecoderJob, out_root: Path, fp16: bool, settings: CheckSettings) -> bool:
    """Exports, checks and describes one decoder (and its fp16 copy); returns False when a check fails."""
    model = job.model.float().eval()
    config = model.config
    architecture = str(config.model_type)
    longest = int(config.max_position_embeddings)
    print(
        f"  {architecture}: hidden {config.hidden_size}, {config.num_hidden_layers} layers, {config.num_attention_heads} heads, "
        f"{config.num_key_value_heads} kv heads, head_dim {head_dim(config)}, vocab {config.vocab_size}, max positions {longest}"
    )
    if job.tokenizer is None:
        print(f"  {no_tokenizer(job.weights)}")
    ok = True
    reference = None  # torch fp32: the reference for the fp32 export and the fp16 copy alike
    variants = [(job.name, torch.float32, None)] + ([(f"{job.name}-fp16", torch.float16, job.name)] if fp16 else [])
    for folder_name, dtype, fp16_of in variants:
        folder = out_root / folder_name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "model.onnx"
        exported = model if dtype == torch.float32 else model.to(dtype)
        started = time.perf_counter()
        export_decoder(exported, dtype, path)
        data = path.with_name(path.name + ".data")
        size = path.stat().st_size + (data.stat().st_size if data.is_file() else 0)
        where = f" + {data.name}" if data.is_file() else ""
        print(f"  exported {path}{where} ({size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s")
        write_config(folder, exported, dtype)
        if job.tokenizer is not None:
            shutil.copyfile(job.tokenizer, folder / "tokenizer.json")
        write_yaml(folder, job.name, architecture, job.hub_id, job.weights, job.source, longest, fp16_of, job.tokenizer is not None)
        passed, reference = check_decoder(path, exported, dtype, settings, reference)
        ok &= passed
        model = model.float()
    return ok


def export_decoders(args: argparse.Namespace, settings: CheckSettings) -> list[str]:
    """--decoder: each decoder exported with its cache and checked; returns the names whose check failed."""
    if args.checkpoint is not None:
        name = args.name or args.checkpoint.resolve().name
        print(f"== {name} (decoder checkpoint {args.checkpoint})")
        tokenizer = args.tokenizer or (args.checkpoint / "tokenizer.json" if (args.checkpoint / "tokenizer.json").is_file() else None)
        jobs = [lambda: DecoderJob(name, checkpoint_decoder(args.checkpoint), "trained", f"checkpoint: {args.checkpoint}", tokenizer=tokenizer)]
    else:
        wanted = [m.strip() for m in (args.models or ",".join(DECODERS)).split(",") if m.strip()]
        unknown = [m for m in wanted if m not in DECODERS]
        if unknown:
            raise SystemExit(f"error: unknown decoder(s) {', '.join(unknown)}; known: {', '.join(DECODERS)} (use --checkpoint for others)")
        if args.require_trained:
            raise SystemExit("error: --require-trained: decoders have trained weights only from a local --checkpoint DIR (the Hub is not tried for decoders)")
        print("decoders are built from their configurations with RANDOM weights (the Hub is not tried; --checkpoint DIR for trained ones)")

        def job(definition: DecoderDef) -> DecoderJob:
            print(f"== {definition.name} (decoder, {definition.architecture})")
            source = "random weights from the embedded configuration (seed 0)"
            return DecoderJob(definition.name, random_decoder(definition), "random", source, definition.hub_id, args.tokenizer)

        jobs = [lambda d=DECODERS[name]: job(d) for name in wanted]
    failures = []
    for make in jobs:
        loaded = make()
        if not export_one_decoder(loaded, args.out_root, args.fp16, settings):
            failures.append(loaded.name)
        del loaded
    return failures
