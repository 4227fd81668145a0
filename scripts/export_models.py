#!/usr/bin/env python3
"""Export transformer encoders to ONNX for xbench, and check every export against PyTorch.

For each model (by default the paper's four: bert-base-uncased, bert-large-uncased, roberta-base,
xlm-roberta-base) this script:

1. builds the PyTorch model, with weights taken from
   - the Hugging Face Hub, when it can be reached (trained weights);
   - a local checkpoint folder given with --checkpoint (trained weights);
   - otherwise the architecture's configuration embedded below, with random weights
     (--random forces this). Latency does not depend on the values of the weights, so random
     weights are fine for benchmarking; model.yaml then says `weights: random`.
2. exports it with torch.onnx.export(dynamo=True), opset 18, with dynamic `batch` and `sequence`
   dimensions, to <out-root>/<name>/model.onnx. The graph takes exactly the inputs xbench fills:
   BERT: input_ids, attention_mask, token_type_ids;
   RoBERTa / XLM-RoBERTa: input_ids, attention_mask, position_ids (explicit position ids starting at
   padding_idx + 1 = 2, because tract cannot run the CumSum the models use to make their own).
3. tokenizes real text with the folder's tokenizer.json (batch of 2, padded), runs the ONNX file in
   onnxruntime and the model in torch, prints the largest absolute difference and exits non-zero
   when it is above the tolerance (fp32: 1e-4, fp16: 1e-2).
4. updates model.yaml (weights: random | trained).

With --fp16 a half-precision copy goes to <out-root>/<name>-fp16/ (fp16 weights and arithmetic,
fp32 outputs), with its own tokenizer.json and model.yaml.

Examples:
    python scripts/export_models.py                       # all four, Hub or random weights
    python scripts/export_models.py --models bert-base-uncased --random --fp16
    python scripts/export_models.py --checkpoint DIR --name all-minilm-l6-v2 --arch bert

With --decoder it exports causal language models (Llama family) with their key/value cache instead:
smollm-135m and qwen2.5-0.5b built from their configurations with random weights, or a local
checkpoint folder with --checkpoint; each is checked by greedy generation in onnxruntime vs PyTorch
(export_decoders.py and decoder_check.py say how). Examples:
    python scripts/export_models.py --decoder --models smollm-135m --fp16
    python scripts/export_models.py --decoder --checkpoint DIR --name NAME
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import torch
import transformers
from tokenizers import Tokenizer

from decoder_check import CheckSettings
from export_decoders import DECODERS, export_decoders

OPSET = 18
TOLERANCE_FP32 = 1e-4
TOLERANCE_FP16 = 1e-2
# Sample text for the checks: two rows of different lengths, so that one row is padded.
CHECK_TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Benchmarks of on-device machine learning compare how fast the same transformer runs in "
    "different runtimes: the inputs are short sentences cut from ordinary prose, padded to "
    "the longest row of each batch. Café, naïve, Straße.",
]

# Inputs each architecture's export takes, in order. xbench fills these by name.
ARCH_INPUTS: dict[str, list[str]] = {
    "bert": ["input_ids", "attention_mask", "token_type_ids"],
    "roberta": ["input_ids", "attention_mask", "position_ids"],
    "xlm-roberta": ["input_ids", "attention_mask", "position_ids"],
}


@dataclass
class ModelDef:
    """One of the models the script knows by name, with its architecture's configuration."""

    name: str
    architecture: str
    hub_id: str
    config: dict[str, Any] = field(default_factory=dict)


# The configurations of the paper's four models, written out here because the Hub may be out of
# reach. Values as in each model's config.json on the Hub.
KNOWN_MODELS: dict[str, ModelDef] = {
    m.name: m
    for m in [
        ModelDef(
            name="bert-base-uncased",
            architecture="bert",
            hub_id="google-bert/bert-base-uncased",
            config=dict(
                hidden_size=768,
                num_hidden_layers=12,
                num_attention_heads=12,
                intermediate_size=3072,
                vocab_size=30522,
                max_position_embeddings=512,
                type_vocab_size=2,
                pad_token_id=0,
                layer_norm_eps=1e-12,
                hidden_act="gelu",
            ),
        ),
        ModelDef(
            name="bert-large-uncased",
            architecture="bert",
            hub_id="google-bert/bert-large-uncased",
            config=dict(
                hidden_size=1024,
                num_hidden_layers=24,
                num_attention_heads=16,
                intermediate_size=4096,
                vocab_size=30522,
                max_position_embeddings=512,
                type_vocab_size=2,
                pad_token_id=0,
                layer_norm_eps=1e-12,
                hidden_act="gelu",
            ),
        ),
        ModelDef(
            name="roberta-base",
            architecture="roberta",
            hub_id="FacebookAI/roberta-base",
            config=dict(
                hidden_size=768,
                num_hidden_layers=12,
                num_attention_heads=12,
                intermediate_size=3072,
                vocab_size=50265,
                max_position_embeddings=514,
                type_vocab_size=1,
                pad_token_id=1,
                bos_token_id=0,
                eos_token_id=2,
                layer_norm_eps=1e-5,
                hidden_act="gelu",
            ),
        ),
        ModelDef(
            name="xlm-roberta-base",
            architecture="xlm-roberta",
            hub_id="FacebookAI/xlm-roberta-base",
            config=dict(
                hidden_size=768,
                num_hidden_layers=12,
                num_attention_heads=12,
                intermediate_size=3072,
                vocab_size=250002,
                max_position_embeddings=514,
                type_vocab_size=1,
                pad_token_id=1,
                bos_token_id=0,
                eos_token_id=2,
                layer_norm_eps=1e-5,
                hidden_act="gelu",
            ),
        ),
    ]
}


def model_classes(architecture: str) -> tuple[type, type]:
    """The transformers (config class, model class) of an architecture."""
    classes = {
        "bert": (transformers.BertConfig, transformers.BertModel),
        "roberta": (transformers.RobertaConfig, transformers.RobertaModel),
        "xlm-roberta": (transformers.XLMRobertaConfig, transformers.XLMRobertaModel),
    }
    if architecture not in classes:
        raise SystemExit(f"error: unknown architecture `{architecture}` (known: {', '.join(classes)})")
    return classes[architecture]


def hub_reachable(timeout_s: float = 5.0) -> bool:
    """True when the Hub's endpoint answers at all (any HTTP status counts as reachable)."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        urllib.request.urlopen(endpoint, timeout=timeout_s)
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
    return True


@dataclass
class LoadedModel:
    """A PyTorch model ready to export, and where its weights came from."""

    model: torch.nn.Module
    architecture: str
    weights: str  # "random" or "trained"
    source: str  # human-readable origin of the weights
    hub_tokenizer: Path | None = None  # tokenizer.json downloaded with Hub weights


def random_model(definition: ModelDef) -> LoadedModel:
    """The architecture built from its embedded configuration, with random weights (fixed seed)."""
    config_class, model_class = model_classes(definition.architecture)
    config = config_class(**definition.config)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = model_class(config)
    return LoadedModel(model, definition.architecture, "random", "random weights from the embedded configuration (seed 0)")


def hub_model(definition: ModelDef) -> LoadedModel:
    """Trained weights from the Hub; raises when the download fails."""
    _, model_class = model_classes(definition.architecture)
    model = model_class.from_pretrained(definition.hub_id, attn_implementation="eager")
    hub_tokenizer = None
    try:
        from huggingface_hub import hf_hub_download

        hub_tokenizer = Path(hf_hub_download(definition.hub_id, "tokenizer.json"))
    except Exception as err:  # the weights alone are still usable with the folder's tokenizer
        print(f"  note: could not fetch the Hub's tokenizer.json ({err}); keeping the folder's")
    return LoadedModel(model, definition.architecture, "trained", f"Hub: {definition.hub_id}", hub_tokenizer)


def checkpoint_model(directory: Path, architecture: str | None) -> LoadedModel:
    """Trained weights from a local folder holding config.json and the weights."""
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise SystemExit(f"error: {config_path} not found; --checkpoint needs a folder with config.json and the weights")
    model_type = json.loads(config_path.read_text())["model_type"]
    architecture = architecture or model_type
    if architecture != model_type:
        raise SystemExit(f"error: --arch {architecture} but {config_path} says model_type {model_type}")
    _, model_class = model_classes(architecture)
    model, info = model_class.from_pretrained(str(directory), attn_implementation="eager", output_loading_info=True)
    missing = list(info.get("missing_keys", []))
    if missing and all(key.startswith("pooler.") for key in missing):
        # A checkpoint without a pooler: export the encoder alone rather than a randomly initialised pooler.
        print(f"  the checkpoint has no pooler weights ({', '.join(missing)}): exporting last_hidden_state only")
        model = model_class.from_pretrained(str(directory), attn_implementation="eager", add_pooling_layer=False)
    elif missing:
        raise SystemExit(f"error: {directory} lacks weights the model needs: {', '.join(missing)}")
    return LoadedModel(model, architecture, "trained", f"checkpoint: {directory}")


class BertInputs(torch.nn.Module):
    """Calls a BERT model with keyword arguments and returns plain tensors."""

    def __init__(self, model: torch.nn.Module, float_outputs: bool) -> None:
        super().__init__()
        self.model = model
        self.float_outputs = float_outputs

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return plain_outputs(out, self.float_outputs)


class RobertaInputs(torch.nn.Module):
    """Calls a RoBERTa-style model with explicit position ids and returns plain tensors."""

    def __init__(self, model: torch.nn.Module, float_outputs: bool) -> None:
        super().__init__()
        self.model = model
        self.float_outputs = float_outputs

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
        return plain_outputs(out, self.float_outputs)


def plain_outputs(out: Any, float_outputs: bool) -> tuple[torch.Tensor, ...]:
    tensors = [out.last_hidden_state]
    if getattr(out, "pooler_output", None) is not None:
        tensors.append(out.pooler_output)
    if float_outputs:
        tensors = [t.float() for t in tensors]
    return tuple(tensors)


def output_names(model: torch.nn.Module) -> list[str]:
    has_pooler = getattr(model, "pooler", None) is not None
    return ["last_hidden_state", "pooler_output"] if has_pooler else ["last_hidden_state"]


def wrap(model: torch.nn.Module, architecture: str, float_outputs: bool) -> torch.nn.Module:
    wrapper = BertInputs if architecture == "bert" else RobertaInputs
    return wrapper(model, float_outputs).eval()


def position_offset(model: torch.nn.Module, architecture: str) -> int:
    """First position id: padding_idx + 1 for RoBERTa-style models, 0 for BERT."""
    return 0 if architecture == "bert" else int(model.config.pad_token_id) + 1


def max_tokens(model: torch.nn.Module, architecture: str) -> int:
    """Longest sequence the model takes, special tokens included."""
    return int(model.config.max_position_embeddings) - position_offset(model, architecture)


def example_inputs(names: list[str], vocab_size: int, offset: int, batch: int, seq: int) -> dict[str, torch.Tensor]:
    """Inputs used only to trace the graph; their sizes differ from the check's on purpose."""
    generator = torch.Generator().manual_seed(1)
    tensors = {
        "input_ids": torch.randint(3, min(vocab_size, 1000), (batch, seq), generator=generator),
        "attention_mask": torch.ones(batch, seq, dtype=torch.int64),
        "token_type_ids": torch.zeros(batch, seq, dtype=torch.int64),
        "position_ids": (torch.arange(seq, dtype=torch.int64) + offset).expand(batch, seq).contiguous(),
    }
    return {name: tensors[name] for name in names}


def export(wrapper: torch.nn.Module, names: list[str], outputs: list[str], example: dict[str, torch.Tensor], longest: int, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=4096)
    sequence = torch.export.Dim("sequence", min=1, max=longest)
    dynamic = {name: {0: batch, 1: sequence} for name in names}
    for stale in (path, path.with_name(path.name + ".data")):
        stale.unlink(missing_ok=True)
    torch.onnx.export(
        wrapper,
        args=(),
        kwargs=example,
        f=str(path),
        dynamo=True,
        opset_version=OPSET,
        dynamic_shapes=dynamic,
        output_names=outputs,
        external_data=False,
        verbose=False,
    )


def tokenize(tokenizer_path: Path, names: list[str], offset: int, longest: int) -> dict[str, np.ndarray]:
    """Tokenizes CHECK_TEXTS as xbench does: right padding to the longest row, int64 tensors."""
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    pad = next(((t, tokenizer.token_to_id(t)) for t in ("[PAD]", "<pad>") if tokenizer.token_to_id(t) is not None), None)
    if pad is None:
        raise SystemExit(f"error: {tokenizer_path} has no [PAD] or <pad> token")
    tokenizer.enable_padding(pad_id=pad[1], pad_token=pad[0], direction="right")
    tokenizer.enable_truncation(max_length=longest)
    encodings = tokenizer.encode_batch(CHECK_TEXTS)
    seq = len(encodings[0].ids)
    arrays = {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        "position_ids": np.tile(np.arange(seq, dtype=np.int64) + offset, (len(encodings), 1)),
    }
    return {name: arrays[name] for name in names}


def check_graph(path: Path, names: list[str], outputs: list[str]) -> None:
    """The graph's inputs are exactly `names`, int64, with symbolic batch and sequence dims."""
    graph = onnx.load(str(path), load_external_data=False).graph
    found = [i.name for i in graph.input]
    if found != names:
        raise SystemExit(f"error: {path} takes inputs {found}, expected {names}")
    for graph_input in graph.input:
        dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
        if graph_input.type.tensor_type.elem_type != onnx.TensorProto.INT64 or any(not isinstance(d, str) for d in dims):
            raise SystemExit(f"error: input {graph_input.name} of {path} is not int64 [batch, sequence]: {dims}")
    found_outputs = [o.name for o in graph.output]
    if found_outputs != outputs:
        raise SystemExit(f"error: {path} gives outputs {found_outputs}, expected {outputs}")
    shapes = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    print(f"  graph: opset {OPSET}, inputs {shapes}, outputs {found_outputs}")


def run_onnxruntime(path: Path, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    options = onnxruntime.SessionOptions()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, feed)


def run_torch(wrapper: torch.nn.Module, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    with torch.no_grad():
        outs = wrapper(**{k: torch.from_numpy(v) for k, v in feed.items()})
    return [o.float().numpy() for o in outs]


def max_abs_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))) for x, y in zip(a, b))


def check_export(path: Path, feed: dict[str, np.ndarray], torch_out: list[np.ndarray], tolerance: float, label: str) -> tuple[bool, float]:
    """onnxruntime's outputs vs torch's on the same tokenized batch; prints and returns (ok, max abs diff)."""
    started = time.perf_counter()
    ort_out = run_onnxruntime(path, feed)
    diff = max_abs_diff(ort_out, torch_out)
    ok = bool(np.isfinite(diff)) and diff <= tolerance
    shape = "x".join(str(d) for d in feed["input_ids"].shape)
    verdict = "OK" if ok else "FAILED"
    print(
        f"  check onnxruntime {onnxruntime.__version__} {label} {torch.__version__}, batch x tokens {shape}, "
        f"max |diff| over all outputs = {diff:.3g} (tolerance {tolerance:g}) {verdict}  [{time.perf_counter() - started:.1f} s]"
    )
    return ok, diff


def check_position_ids(model: torch.nn.Module, feed: dict[str, np.ndarray]) -> None:
    """RoBERTa-style: explicit position ids vs the model's own (from the mask), on real tokens."""
    inputs = {k: torch.from_numpy(v) for k, v in feed.items()}
    with torch.no_grad():
        explicit = model(**inputs).last_hidden_state
        own = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
    real = inputs["attention_mask"].bool()
    diff = float((explicit - own)[real].abs().max())
    print(f"  position_ids given vs computed by the model itself, real tokens only: max |diff| = {diff:.3g}")


def write_model_yaml(folder: Path, name: str, loaded: LoadedModel, hub_id: str | None, offset: int, longest: int, note: str = "") -> None:
    """Rewrites `weights:` in an existing model.yaml (keeping its comments), or writes a new one."""
    path = folder / "model.yaml"
    if path.is_file():
        text = path.read_text()
        if re.search(r"^weights:.*$", text, flags=re.M):
            text = re.sub(r"^weights:.*$", f"weights: {loaded.weights}", text, flags=re.M)
        else:
            text = text.rstrip("\n") + f"\nweights: {loaded.weights}\n"
        path.write_text(text)
        return
    lines = [f"# Written by scripts/export_models.py. Weights: {loaded.source}."]
    if hub_id:
        lines.append(f"hub_id: {hub_id}")
    lines += [
        f"architecture: {loaded.architecture}",
        "onnx: model.onnx",
        "tokenizer: tokenizer.json",
        f"max_positions: {longest}",
    ]
    if loaded.architecture != "bert":
        lines.append(f"position_offset: {offset}")
    lines += [f"weights: {loaded.weights}", f"description: {name}{note}, exported by scripts/export_models.py"]
    path.write_text("\n".join(lines) + "\n")


def write_fp16_yaml(fp32_folder: Path, fp16_folder: Path, name: str) -> None:
    """The fp16 folder's model.yaml: the fp32 one's, with its own header and description, and
    `compare_with` naming the fp32 model, so that xbench compares the two when a scenario runs both."""
    fp32_yaml = (fp32_folder / "model.yaml").read_text()
    body = [line for line in fp32_yaml.splitlines() if not line.startswith("#") and not line.startswith("compare_with:")]
    body = [f"description: {name} in fp16 (weights and arithmetic; outputs fp32), exported by scripts/export_models.py" if line.startswith("description:") else line for line in body]
    body.append(f"compare_with: {fp32_folder.name}")
    header = f"# Written by scripts/export_models.py --fp16 from {fp32_folder.name}/: same weights, cast to fp16.\n"
    (fp16_folder / "model.yaml").write_text(header + "\n".join(body) + "\n")


def export_one(
    name: str,
    loaded: LoadedModel,
    hub_id: str | None,
    out_root: Path,
    tokenizer_source: Path | None,
    fp16: bool,
) -> bool:
    """Exports and checks one model (and its fp16 copy); returns False when a check fails."""
    folder = out_root / name
    folder.mkdir(parents=True, exist_ok=True)
    if tokenizer_source is not None:
        shutil.copyfile(tokenizer_source, folder / "tokenizer.json")
        print(f"  tokenizer.json copied from {tokenizer_source}")
    tokenizer_path = folder / "tokenizer.json"
    if not tokenizer_path.is_file():
        raise SystemExit(f"error: no tokenizer.json in {folder}; copy the model's tokenizer there (or pass --tokenizer)")

    model = loaded.model.eval()
    architecture = loaded.architecture
    names = ARCH_INPUTS[architecture]
    outputs = output_names(model)
    offset = position_offset(model, architecture)
    longest = max_tokens(model, architecture)
    feed = tokenize(tokenizer_path, names, offset, longest)
    if int(feed["input_ids"].max()) >= model.config.vocab_size:
        raise SystemExit(f"error: {tokenizer_path} gives token ids up to {int(feed['input_ids'].max())}, beyond the model's vocabulary ({model.config.vocab_size})")
    example = example_inputs(names, model.config.vocab_size, offset, batch=3, seq=11)

    ok = True
    path = folder / "model.onnx"
    started = time.perf_counter()
    export(wrap(model, architecture, float_outputs=False), names, outputs, example, longest, path)
    size_mb = path.stat().st_size / 1e6
    print(f"  exported {path} ({size_mb:.0f} MB) in {time.perf_counter() - started:.1f} s")
    check_graph(path, names, outputs)
    ok &= check_export(path, feed, run_torch(wrap(model, architecture, float_outputs=False), feed), TOLERANCE_FP32, "fp32 vs torch fp32")[0]
    if architecture != "bert":
        check_position_ids(model, feed)
    write_model_yaml(folder, name, loaded, hub_id, offset, longest)
    print(f"  {folder / 'model.yaml'}: weights: {loaded.weights}")

    if fp16:
        fp16_folder = out_root / f"{name}-fp16"
        fp16_folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tokenizer_path, fp16_folder / "tokenizer.json")
        fp32_out = run_torch(wrap(model, architecture, float_outputs=True), feed)
        half = wrap(model.half(), architecture, float_outputs=True)
        fp16_path = fp16_folder / "model.onnx"
        started = time.perf_counter()
        export(half, names, outputs, example, longest, fp16_path)
        print(f"  exported {fp16_path} ({fp16_path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s")
        check_graph(fp16_path, names, outputs)
        # The reference is the fp32 model: the question is how far the fp16 export strays from it.
        ok &= check_export(fp16_path, feed, fp32_out, TOLERANCE_FP16, "fp16 vs torch fp32")[0]
        fp16_out = run_torch(half, feed)
        print(f"  for information: fp16 onnxruntime vs torch fp16 on CPU: max |diff| = {max_abs_diff(run_onnxruntime(fp16_path, feed), fp16_out):.3g}")
        model.float()
        write_fp16_yaml(folder, fp16_folder, name)
    return ok


def load_weights(definition: ModelDef, use_random: bool, hub_ok: bool, require_trained: bool) -> LoadedModel:
    if use_random:
        return random_model(definition)
    if hub_ok:
        try:
            return hub_model(definition)
        except Exception as err:
            if require_trained:
                raise SystemExit(f"error: cannot load {definition.hub_id} from the Hub: {err}") from err
            print(f"  could not load {definition.hub_id} from the Hub ({type(err).__name__}: {str(err).splitlines()[0]})")
    elif require_trained:
        raise SystemExit("error: the Hub cannot be reached and --require-trained was given")
    loaded = random_model(definition)
    print(f"  *** RANDOM WEIGHTS for {definition.name}: the Hub is out of reach, so the model is built from its\n"
          f"  *** architecture's configuration. Latency does not depend on the weights' values; the outputs mean nothing.")
    return loaded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--models", help=f"comma-separated models to export (default: all four: {','.join(KNOWN_MODELS)}; with --decoder: {','.join(DECODERS)})")
    parser.add_argument("--out-root", type=Path, default=Path("models"), help="folder holding the model folders (default: %(default)s)")
    parser.add_argument("--random", action="store_true", help="random weights from the embedded configuration; do not try the Hub")
    parser.add_argument("--require-trained", action="store_true", help="fail instead of falling back to random weights when the Hub cannot be used")
    parser.add_argument("--checkpoint", type=Path, help="export trained weights from this local folder (config.json + weights) instead")
    parser.add_argument("--name", help="folder name under --out-root for --checkpoint (default: the checkpoint folder's name)")
    parser.add_argument("--arch", choices=sorted(ARCH_INPUTS), help="architecture of an encoder --checkpoint (default: its config.json's model_type)")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer.json to copy into the folder (default for --checkpoint: the checkpoint's own)")
    parser.add_argument("--fp16", action="store_true", help="also export an fp16 copy into <out-root>/<name>-fp16/")
    parser.add_argument("--decoder", action="store_true", help="export decoders with their key/value cache (llama, qwen2) instead of encoders")
    parser.add_argument("--steps", type=int, default=CheckSettings.steps, help="--decoder: greedy decode steps the check compares (default: %(default)s)")
    args = parser.parse_args()
    if args.decoder and args.arch:
        parser.error("--arch is for encoder checkpoints; a decoder checkpoint's architecture is its config.json's model_type")

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    # Exporter chatter that says nothing about these models.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*axis name: .* will not be used")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}")
    failures: list[str] = []
    total_started = time.perf_counter()

    if args.decoder:
        failures = export_decoders(args, CheckSettings(steps=args.steps))
    elif args.checkpoint is not None:
        name = args.name or args.checkpoint.resolve().name
        print(f"== {name} (checkpoint {args.checkpoint})")
        loaded = checkpoint_model(args.checkpoint, args.arch)
        tokenizer_source = args.tokenizer or (args.checkpoint / "tokenizer.json" if (args.checkpoint / "tokenizer.json").is_file() else None)
        if not export_one(name, loaded, None, args.out_root, tokenizer_source, args.fp16):
            failures.append(name)
    else:
        wanted = [m.strip() for m in (args.models or ",".join(KNOWN_MODELS)).split(",") if m.strip()]
        unknown = [m for m in wanted if m not in KNOWN_MODELS]
        if unknown:
            parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(KNOWN_MODELS)} (use --checkpoint for others)")
        hub_ok = False
        if not args.random:
            hub_ok = hub_reachable()
            if hub_ok:
                print("Hub reachable: trying trained weights")
            elif not args.require_trained:
                print("Hub NOT reachable: exporting with RANDOM weights (latency does not depend on weight values)")
        for name in wanted:
            definition = KNOWN_MODELS[name]
            print(f"== {name} ({definition.architecture})")
            started = time.perf_counter()
            loaded = load_weights(definition, args.random, hub_ok, args.require_trained)
            print(f"  weights: {loaded.weights} ({loaded.source}), built in {time.perf_counter() - started:.1f} s")
            tokenizer_source = args.tokenizer or loaded.hub_tokenizer
            if not export_one(name, loaded, definition.hub_id, args.out_root, tokenizer_source, args.fp16):
                failures.append(name)
            del loaded

    print(f"done in {time.perf_counter() - total_started:.0f} s")
    if failures:
        print(f"FAILED checks: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
