"""Tests of torch_hf.py's generation (torch_generate.py): greedy ids against ONNX Runtime's.

The adapter's Decoding is driven by protocol.time_generations, as `serve` does for a `generate`
message, and its ids must equal those of a greedy loop over the same ONNX file in ONNX Runtime
(CPU, fp32), for 32 new tokens, batch 1 and a batch of prompts of different lengths padded on the
left. Models: the committed models/tiny-llama, and SmolLM-135M (random weights, dynamo export)
from $XBENCH_DECODER_MODELS/smollm-135m when that variable names the folder
scripts/export_decoders.py wrote to.

Run with `python3 scripts/runtimes/test_torch_generate.py` in an environment with torch,
transformers, onnx, onnxruntime, safetensors and numpy; skipped without them (CI has no torch).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

if not __package__:  # run by path: the package `runtimes` is found in the folder above this file
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from runtimes import protocol

NEEDS = ("torch", "transformers", "onnx", "onnxruntime", "safetensors")
MISSING = [name for name in NEEDS if importlib.util.find_spec(name) is None]
REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "models" / "tiny-llama"
SMOLLM = Path(os.environ.get("XBENCH_DECODER_MODELS", "/nonexistent")) / "smollm-135m"
NEW_TOKENS = 32


def prompt(lengths: list[int], width: int, vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Rows of the given lengths padded on the left to `width`, as xbench writes them."""
    rng = np.random.default_rng(seed)
    shape = (len(lengths), width)
    ids, mask, positions = np.zeros(shape, np.int64), np.zeros(shape, np.int64), np.ones(shape, np.int64)
    for row, n in enumerate(lengths):
        ids[row, width - n :] = rng.integers(0, vocab, n)
        mask[row, width - n :] = 1
        positions[row, width - n :] = np.arange(n)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": positions}


def ort_greedy(onnx_path: Path, inputs: dict[str, np.ndarray], new_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """ONNX Runtime's greedy ids [batch, new_tokens] and the prefill's last logits [batch, vocab]."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    batch = inputs["input_ids"].shape[0]
    past = {}
    for declared in session.get_inputs():
        if declared.name.startswith("past_key_values."):
            heads, size = declared.shape[1], declared.shape[3]
            past[declared.name] = np.zeros((batch, heads, 0, size), np.float32)
    ids, mask, positions = inputs["input_ids"], inputs["attention_mask"], inputs["position_ids"]
    picked, first = [], None
    for _ in range(new_tokens):
        out = dict(zip(names, session.run(None, {"input_ids": ids, "attention_mask": mask, "position_ids": positions, **past})))
        last = out["logits"][:, -1, :]
        first = last if first is None else first
        picked.append(last.argmax(-1))  # numpy's argmax: the first of equal maxima
        past = {name: out[name.replace("past_key_values.", "present.")] for name in past}
        ids = picked[-1][:, None].astype(np.int64)
        mask = np.concatenate([mask, np.ones((batch, 1), np.int64)], axis=1)
        positions = positions[:, -1:] + 1
    return np.stack(picked, axis=1), first


def hello(folder: Path, options: dict[str, str], decoder: dict | None = None, task: str = "generate") -> protocol.Hello:
    return protocol.Hello.parse(hello_message(folder, options, decoder, task))


def hello_message(folder: Path, options: dict[str, str], decoder: dict | None = None, task: str = "generate") -> dict:
    """The hello xbench sends: the ONNX model's inputs by name, and for generation `task` and `decoder`."""
    import onnx

    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
    inputs = [{"name": i.name, "elem_type": "int64" if "ids" in i.name or "mask" in i.name else "float32"} for i in graph.input]
    msg = {
        "type": "hello",
        "protocol": 1,
        "model": {"name": folder.name, "dir": str(folder), "onnx": str(folder / "model.onnx"), "inputs": inputs},
        "runtime": {"name": "torch-cpu", "options": options},
        "threads": 2,
        "device": 0,
    }
    if task:
        msg["task"] = task
        msg["decoder"] = decoder
    return msg


@unittest.skipIf(MISSING, f"needs {', '.join(MISSING)}")
class GreedyIdsAsOnnxRuntime(unittest.TestCase):
    def generate(self, folder: Path, cache: str, lengths: list[int], attention: str = "eager") -> None:
        from runtimes.torch_hf import TorchHF

        adapter = TorchHF()
        ready = adapter.load(hello(folder, {"cache": cache, "attention": attention}))
        config = adapter.generator.model.config
        inputs = prompt(lengths, max(lengths), config.vocab_size)
        with tempfile.TemporaryDirectory() as tmp:
            outputs = Path(tmp) / "outputs.safetensors"
            cell = protocol.GenerateCell(index=0, warmup=1, iterations=2, new_tokens=NEW_TOKENS, keep_logits=1, prompt=inputs, outputs=str(outputs))
            result = adapter.generate(cell)
            written = protocol.load_arrays(outputs)
        want, want_logits = ort_greedy(folder / "model.onnx", inputs, NEW_TOKENS)

        self.assertTrue(ready.generate)
        self.assertIn(f"{cache}", ready.generate_timer.lower())
        np.testing.assert_array_equal(written["ids"], want)
        self.assertEqual(written["logits"].shape, (NEW_TOKENS, 1, config.vocab_size))
        np.testing.assert_allclose(written["logits"][0, 0], want_logits[0], rtol=1e-3, atol=1e-3)
        self.assertEqual((len(result.prefill_ms), [len(s) for s in result.step_ms]), (2, [NEW_TOKENS - 1] * 2))
        self.assertTrue(result.repeatable)
        self.assertGreater(result.prepare_ms, 0)
        # The cache at the end: every layer's keys and values, fp32, for the positions it holds
        # (dynamic: the prompt and the steps' ids; static: its allocation, prompt + new tokens).
        held = max(lengths) + NEW_TOKENS - (1 if cache == "dynamic" else 0)
        self.assertEqual(result.cache_bytes, config.num_hidden_layers * 2 * len(lengths) * config.num_key_value_heads * held * config.head_dim * 4)

    def test_tiny_llama_dynamic_cache(self) -> None:
        self.generate(TINY, "dynamic", [8])
        self.generate(TINY, "dynamic", [8, 5, 2])

    def test_tiny_llama_static_cache(self) -> None:
        self.generate(TINY, "static", [8])
        self.generate(TINY, "static", [8, 5, 2])
        self.generate(TINY, "static", [8, 5, 2], attention="sdpa")

    @unittest.skipUnless(SMOLLM.is_dir(), f"no SmolLM-135M export at {SMOLLM} (set XBENCH_DECODER_MODELS)")
    def test_smollm_dynamic_and_static_cache(self) -> None:
        self.generate(SMOLLM, "dynamic", [8])
        self.generate(SMOLLM, "dynamic", [8, 5, 2])
        self.generate(SMOLLM, "static", [8, 5, 2])


@unittest.skipIf(MISSING, f"needs {', '.join(MISSING)}")
class OverTheProtocol(unittest.TestCase):
    def test_torch_hf_answers_generate_as_xbench_sends_it(self) -> None:
        """torch_hf.py run by path, as xbench runs it: hello, one `generate` of a left-padded batch, bye."""
        with tempfile.TemporaryDirectory() as tmp:
            inputs = prompt([6, 3], 6, 259, seed=3)
            protocol.save_arrays(Path(tmp) / "prompt.safetensors", inputs)
            start = hello_message(TINY, {}, {"layers": 2, "kv_heads": 2, "head_dim": 16, "vocab": 259, "cache_type": "float32", "max_positions": 2048})
            ask = {"type": "generate", "index": 0, "warmup": 1, "iterations": 2, "new_tokens": 8, "keep_logits": 0,
                   "prompt": str(Path(tmp) / "prompt.safetensors"), "outputs": str(Path(tmp) / "outputs.safetensors")}
            lines = "".join(json.dumps(m) + "\n" for m in [start, ask, {"type": "bye"}])
            program = Path(__file__).resolve().parent / "torch_hf.py"
            run = subprocess.run([sys.executable, "-P", str(program)], input=lines, capture_output=True, text=True, timeout=300)
            answers = [json.loads(line) for line in run.stdout.splitlines()]
            self.assertEqual([a["type"] for a in answers], ["ready", "generated", "done"], run.stderr[-2000:])
            self.assertTrue(answers[0]["generate"])
            self.assertIn("torch.argmax", answers[0]["generate_timer"])
            generated = answers[1]
            self.assertEqual((len(generated["prefill_ms"]), [len(s) for s in generated["step_ms"]]), (2, [7, 7]))
            self.assertTrue(generated["repeatable"])
            np.testing.assert_array_equal(protocol.load_arrays(Path(tmp) / "outputs.safetensors")["ids"], ort_greedy(TINY / "model.onnx", inputs, 8)[0])


@unittest.skipIf(MISSING, f"needs {', '.join(MISSING)}")
class Refusals(unittest.TestCase):
    def refused(self, message: str, folder: Path = TINY, **kwargs) -> None:
        from runtimes.torch_hf import TorchHF

        with self.assertRaises(protocol.AdapterError) as caught:
            TorchHF().load(hello(folder, **kwargs))
        self.assertIn(message, str(caught.exception))

    def test_a_graph_of_another_decoder(self) -> None:
        import transformers

        from runtimes import torch_generate

        config = transformers.AutoConfig.from_pretrained(str(TINY), local_files_only=True)
        facts = {"layers": 2, "kv_heads": 2, "head_dim": 16, "vocab": 259, "cache_type": "float32", "max_positions": 2048}
        torch_generate.check_decoder(config, facts, "config.json", TINY / "model.onnx")  # the graph's own facts pass
        torch_generate.check_decoder(config, {**facts, "vocab": None}, "config.json", TINY / "model.onnx")  # unknown: not compared
        for name, value, message in (("layers", 3, "layers 3 in the graph, 2 in the configuration"), ("vocab", 32000, "vocab 32000 in the graph, 259 in the configuration")):
            with self.assertRaises(protocol.AdapterError) as caught:
                torch_generate.check_decoder(config, {**facts, name: value}, "config.json", TINY / "model.onnx")
            self.assertIn(message, str(caught.exception))
        if "decoder" in getattr(protocol.Hello, "__dataclass_fields__", {}):  # a protocol.py whose Hello carries `decoder`: refused at load
            self.refused("layers 3 in the graph", options={}, decoder={**facts, "layers": 3})

    def test_options_generation_does_not_take(self) -> None:
        self.refused("option cache: `paged` is not one of", options={"cache": "paged"})
        self.refused("option compile does not apply to generation", options={"compile": "default"})
        self.refused("option cuda_graph is not available for generation", options={"cuda_graph": "true"})
        self.refused("option cache applies to generation scenarios only", REPO / "models" / "tiny-bert", options={"cache": "static"}, task="")


if __name__ == "__main__":
    unittest.main()
