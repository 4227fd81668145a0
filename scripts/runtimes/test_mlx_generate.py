"""Tests of generation in MLX (mlx_generate.py): tiny-llama's greedy ids, driven through
protocol.time_generations, against a greedy loop of ONNX Runtime on the same ONNX file; and the
models and options it refuses.

Run with `python3 scripts/runtimes/test_mlx_generate.py` in an environment with mlx,
mlx-transformers, transformers, onnx, safetensors and onnxruntime (the MLX environment of
`xbench setup runtime mlx` with the test packages on PYTHONPATH).
"""

from __future__ import annotations

import json
import sys
import tempfile
import unittest
from pathlib import Path

if not __package__:  # run by path: the package `runtimes` is found in the folder above this file
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import onnxruntime
from mlx.utils import tree_flatten
from safetensors.numpy import load_file

from runtimes import protocol
from runtimes.mlx_hf import MlxHF
from runtimes.protocol import AdapterError, GenerateCell, Hello

TINY = Path(__file__).resolve().parent.parent.parent / "models" / "tiny-llama"
NEW_TOKENS = 32


def hello(folder: Path, options: dict[str, str] | None = None, decoder: dict | None = None) -> Hello:
    """hello in a `generate:` scenario: `task` and `decoder` as the protocol sends them."""
    layout = decoder or {"layers": 2, "kv_heads": 2, "head_dim": 16, "vocab": 259, "cache_type": "float32", "max_positions": 2048}
    return Hello.parse(
        {
            "runtime": {"name": "mlx-cpu", "options": options or {}},
            "model": {"name": folder.name, "dir": str(folder), "onnx": str(folder / "model.onnx")},
            "device": 0,
            "task": "generate",
            "decoder": layout,
        }
    )


def prompt(batch: int, length: int, padding: list[int]) -> dict[str, np.ndarray]:
    """Seeded ids, each row padded on the left by `padding[row]`, with xbench's mask and positions."""
    ids = np.random.default_rng(7).integers(3, 259, (batch, length)).astype(np.int64)
    mask = np.ones((batch, length), np.int64)
    for row, pad in enumerate(padding):
        mask[row, :pad], ids[row, :pad] = 0, 0
    positions = np.where(mask == 1, np.cumsum(mask, axis=1) - 1, 1).astype(np.int64)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": positions}


def onnx_greedy(inputs: dict[str, np.ndarray], new_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """ONNX Runtime (CPU, float32) on the same file: the ids and each step's logits of row 0."""
    session = onnxruntime.InferenceSession(str(TINY / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    batch = inputs["input_ids"].shape[0]
    feeds = dict(inputs)
    for layer in range(2):
        for kind in ("key", "value"):
            feeds[f"past_key_values.{layer}.{kind}"] = np.zeros((batch, 2, 0, 16), np.float32)
    mask, positions = inputs["attention_mask"], inputs["position_ids"][:, -1:]
    ids, logits = [], []
    for _ in range(new_tokens):
        out = dict(zip(names, session.run(None, feeds)))
        last = out["logits"][:, -1, :]
        picked = last.argmax(axis=-1)
        ids.append(picked)
        logits.append(last[:1])
        mask = np.concatenate([mask, np.ones((batch, 1), np.int64)], axis=1)
        positions = positions + 1
        feeds = {"input_ids": picked[:, None].astype(np.int64), "attention_mask": mask, "position_ids": positions}
        for layer in range(2):
            for kind in ("key", "value"):
                feeds[f"past_key_values.{layer}.{kind}"] = out[f"present.{layer}.{kind}"]
    return np.stack(ids, axis=1), np.stack(logits)


class Generation(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.adapter = MlxHF()
        cls.ready = cls.adapter.load(hello(TINY, {"weights": "onnx"}))

    def generate(self, inputs: dict[str, np.ndarray]) -> tuple[protocol.GenerateResult, dict[str, np.ndarray]]:
        with tempfile.TemporaryDirectory() as tmp:
            outputs = Path(tmp) / "outputs.safetensors"
            cell = GenerateCell(index=0, warmup=1, iterations=2, new_tokens=NEW_TOKENS, keep_logits=1, prompt=inputs, outputs=str(outputs))
            result = self.adapter.generate(cell)
            return result, load_file(str(outputs))

    def test_ready_says_it_generates_and_what_its_spans_cover(self) -> None:
        self.assertTrue(self.ready.generate)
        self.assertIn("mx.argmax", self.ready.generate_timer)
        self.assertIn("initializers", self.ready.extra["notes"])

    def test_the_same_greedy_ids_as_onnx_runtime_batch_one_and_left_padded(self) -> None:
        for batch, padding in ((1, [0]), (2, [0, 5]), (3, [9, 0, 3])):
            inputs = prompt(batch, 16, padding)
            want_ids, want_logits = onnx_greedy(inputs, NEW_TOKENS)
            result, out = self.generate(inputs)
            np.testing.assert_array_equal(out["ids"], want_ids, err_msg=f"batch {batch}, padding {padding}")
            self.assertEqual(out["logits"].shape, (NEW_TOKENS, 1, 259))
            np.testing.assert_allclose(out["logits"], want_logits, atol=1e-4)
            self.assertEqual((len(result.prefill_ms), [len(s) for s in result.step_ms]), (2, [NEW_TOKENS - 1] * 2))
            self.assertTrue(all(t > 0 for t in result.prefill_ms + [s for steps in result.step_ms for s in steps]))
            self.assertTrue(result.repeatable)
            # keys and values of 2 layers, 2 heads of 16 float32 over prompt + all new ids but the last
            self.assertEqual(result.cache_bytes, 2 * 2 * batch * 2 * (16 + NEW_TOKENS - 1) * 16 * 4)


class Checkpoint(unittest.TestCase):
    def test_weights_from_a_checkpoint_folder_and_a_tied_output_layer(self) -> None:
        import mlx.core as mx

        from runtimes import mlx_model

        source = MlxHF()
        source.load(hello(TINY, {"weights": "onnx"}))
        weights = {name: p for name, p in tree_flatten(source.model.parameters()) if name in mlx_model.parameter_shapes(source.model)}
        inputs = prompt(2, 16, [0, 5])
        want_ids, _ = onnx_greedy(inputs, NEW_TOKENS)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "config.json").write_text((TINY / "config.json").read_text())
            mx.save_safetensors(str(folder / "model.safetensors"), weights)
            adapter = MlxHF()
            self.assertIn("checkpoint", adapter.load(hello(folder)).extra["notes"])
            cell = GenerateCell(index=0, warmup=0, iterations=1, new_tokens=NEW_TOKENS, keep_logits=0, prompt=inputs, outputs=str(folder / "out.safetensors"))
            adapter.generate(cell)
            np.testing.assert_array_equal(load_file(str(folder / "out.safetensors"))["ids"], want_ids)
            # A tied model's checkpoint holds no lm_head.weight: the output layer is the token embeddings.
            config = json.loads((TINY / "config.json").read_text())
            (folder / "config.json").write_text(json.dumps({**config, "tie_word_embeddings": True}))
            del weights["lm_head.weight"]
            mx.save_safetensors(str(folder / "model.safetensors"), weights)
            tied = MlxHF()
            self.assertIn("lm_head.weight = model.embed_tokens.weight (tied)", tied.load(hello(folder)).extra["notes"])
            self.assertTrue(mx.array_equal(tied.model.lm_head.weight, weights["model.embed_tokens.weight"]).item())


class HalfPrecision(unittest.TestCase):
    def test_fp16_keeps_its_cache_in_fp16_and_gives_float32_logits(self) -> None:
        adapter = MlxHF()
        self.assertEqual(adapter.load(hello(TINY, {"dtype": "fp16", "weights": "onnx"})).precision, "fp16")
        with tempfile.TemporaryDirectory() as tmp:
            outputs = Path(tmp) / "outputs.safetensors"
            cell = GenerateCell(index=0, warmup=0, iterations=1, new_tokens=8, keep_logits=1, prompt=prompt(2, 16, [0, 5]), outputs=str(outputs))
            result = adapter.generate(cell)
            self.assertEqual(load_file(str(outputs))["logits"].dtype, np.float32)
        self.assertEqual(result.cache_bytes, 2 * 2 * 2 * 2 * (16 + 8 - 1) * 16 * 2)


class Refusals(unittest.TestCase):
    def load_error(self, h: Hello) -> str:
        with self.assertRaises(AdapterError) as caught:
            MlxHF().load(h)
        return str(caught.exception)

    def test_options_that_do_not_apply_to_generation(self) -> None:
        for name, value in (("compile", "true"), ("timing", "device-resident"), ("mask_dtype", "dtype")):
            message = self.load_error(hello(TINY, {name: value, "dtype": "fp16"}))
            self.assertIn(f"option {name} does not apply to generation", message)
        self.assertIn("dtype bf16 cannot generate", self.load_error(hello(TINY, {"dtype": "bf16"})))

    def test_a_layout_other_than_the_onnx_graphs(self) -> None:
        layout = {"layers": 3, "kv_heads": 2, "head_dim": 16, "vocab": 259}
        self.assertIn("layers 2 (the ONNX graph: 3)", self.load_error(hello(TINY, {"weights": "onnx"}, layout)))

    def test_an_architecture_or_configuration_it_cannot_compute(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            config = json.loads((TINY / "config.json").read_text())
            (folder / "config.json").write_text(json.dumps({**config, "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
            self.assertIn("configuration says `gpt2`", self.load_error(hello(folder)))
            (folder / "config.json").write_text(json.dumps({**config, "head_dim": 32}))
            self.assertIn("head_dim 32 x 4 heads is not hidden_size 64", self.load_error(hello(folder)))
            (folder / "config.json").write_text(json.dumps({**config, "mlp_bias": True}))
            self.assertIn("mlp_bias is true", self.load_error(hello(folder)))


if __name__ == "__main__":
    unittest.main()
