"""Tests of the decoder export (export_decoders.py) and its check (decoder_check.py) on 2-layer decoders
with hidden size 64, a few seconds each.

Needs the export environment (torch, transformers, onnx, onnxscript, onnxruntime): run by hand with
`.venv-export/bin/python scripts/test_export_decoders.py` (or `-m pytest`). xbench's test suite does
not run it: the Python it has for tests carries no torch.
"""

from __future__ import annotations

import json
import sys
import tempfile
import unittest
from dataclasses import replace
from pathlib import Path

if not __package__:  # run by path: the modules beside this file are found first
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import onnx
import torch

import export_decoders
from decoder_check import CheckSettings, check_decoder, ort_greedy, parting, prompt_ids, torch_greedy
from export_decoders import DecoderDef, DecoderJob, export_one_decoder

TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=512, max_position_embeddings=256, tie_word_embeddings=True)
LLAMA = DecoderDef("tiny-llama", "llama", "none", 0, {**TINY, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}})
QWEN = DecoderDef("tiny-qwen2", "qwen2", "none", 0, {**TINY, "rope_parameters": {"rope_type": "default", "rope_theta": 1e6}})
SETTINGS = CheckSettings(batch=2, prompt=5, steps=8)


def tiny(definition: DecoderDef) -> torch.nn.Module:
    """The tiny decoder with random weights, through the script's own builder (its size check included)."""
    config_class, model_class = export_decoders.decoder_classes(definition.architecture)
    count = sum(p.numel() for p in model_class(config_class(**definition.config)).parameters())
    return export_decoders.random_decoder(replace(definition, parameters=count))


class DecoderExportTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp())

    def export(self, definition: DecoderDef, fp16: bool = False) -> torch.nn.Module:
        model = tiny(definition)
        job = DecoderJob(definition.name, model, "random", "test", definition.hub_id)
        self.assertTrue(export_one_decoder(job, self.dir, fp16, SETTINGS), "the check passes on a faithful export")
        return model

    def test_graph_has_the_cache_layout_with_named_dynamic_dims(self) -> None:
        self.export(LLAMA)
        graph = onnx.load(str(self.dir / "tiny-llama" / "model.onnx")).graph
        dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in [*graph.input, *graph.output]}
        self.assertEqual([v.name for v in graph.input][:3], ["input_ids", "attention_mask", "position_ids"])
        self.assertEqual(dims["input_ids"], ["batch", "sequence_length"])
        self.assertEqual(dims["attention_mask"], ["batch", "past_sequence_length + sequence_length"])
        self.assertEqual(dims["past_key_values.1.value"], ["batch", 2, "past_sequence_length", 16])
        self.assertEqual(dims["logits"], ["batch", "sequence_length", 512])
        self.assertEqual(dims["present.0.key"], ["batch", 2, "past_sequence_length + sequence_length", 16])
        self.assertEqual(len(graph.input), 3 + 4)
        self.assertEqual(len(graph.output), 1 + 4)
        yaml = (self.dir / "tiny-llama" / "model.yaml").read_text()
        self.assertIn("architecture: llama", yaml)
        self.assertIn("weights: random", yaml)
        self.assertNotIn("\ntokenizer:", yaml)

    def test_cache_slots_are_one_range_with_no_shape_scalar_added_on_the_device(self) -> None:
        # ONNX Runtime keeps shape scalars on the host: an Add of one to a device tensor would be a
        # copy inside the step, and no CUDA graph. The slots are one Range from the past's length.
        for definition in (LLAMA, QWEN):
            self.export(definition)
            graph = onnx.load(str(self.dir / definition.name / "model.onnx")).graph
            producer = {o: n for n in graph.node for o in n.output}
            for node in graph.node:
                if node.op_type == "Add":
                    self.assertFalse(any(producer.get(i) is not None and producer[i].op_type == "Range" for i in node.input), f"{definition.name}: {node.name} adds to a Range")
            ranges = [n for n in graph.node if n.op_type == "Range"]
            self.assertTrue(any(producer.get(n.input[0]) is not None and producer[n.input[0]].op_type == "Squeeze" for n in ranges), "a range starts at the past's length")

    def test_the_range_rewrite_leaves_other_ranges_alone(self) -> None:
        import onnx_ir as ir

        def model(start: int) -> ir.Model:
            n = ir.Value(name="n", type=ir.TensorType(ir.DataType.INT64), shape=ir.Shape([]))
            s = ir.Value(name="s", type=ir.TensorType(ir.DataType.INT64), shape=ir.Shape([]))
            consts = [ir.node("Constant", [], {"value": ir.tensor(np.array(v, np.int64))}, name=f"c{v}_{k}") for k, v in enumerate((start, 1))]
            rng = ir.node("Range", [consts[0].outputs[0], n, consts[1].outputs[0]], name="range")
            rng.outputs[0].dtype, rng.outputs[0].shape = ir.DataType.INT64, ir.Shape(["k"])
            add = ir.node("Add", [rng.outputs[0], s], name="add")
            add.outputs[0].name, add.outputs[0].dtype, add.outputs[0].shape = "slots", ir.DataType.INT64, ir.Shape(["k"])
            graph = ir.Graph([n, s], [add.outputs[0]], nodes=[*consts, rng, add], opset_imports={"": 18}, name="g")
            return ir.Model(graph, ir_version=10)

        import onnxruntime as ort

        for start, rewrites in ((0, 1), (1, 0)):
            m = model(start)
            self.assertEqual(export_decoders.ranges_from_past(m), rewrites)
            path = self.dir / f"range{start}.onnx"
            ir.save(m, str(path))
            got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"n": np.array(4, np.int64), "s": np.array(7, np.int64)})[0]
            self.assertEqual(got.tolist(), [start + 7 + k for k in range(4 - start)])
            starts = [node.inputs[0].name for node in m.graph if node.op_type == "Range"]
            self.assertEqual(starts, ["s"] if rewrites else [m.graph.node("range").inputs[0].name])
            self.assertNotEqual(starts, ["s"] if not rewrites else [])

    def test_qwen2_fp16_copy_has_fp16_cache_and_fp32_logits(self) -> None:
        self.export(QWEN, fp16=True)
        graph = onnx.load(str(self.dir / "tiny-qwen2-fp16" / "model.onnx")).graph
        types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.output]}
        self.assertEqual(types["past_key_values.0.key"], onnx.TensorProto.FLOAT16)
        self.assertEqual(types["present.1.value"], onnx.TensorProto.FLOAT16)
        self.assertEqual(types["logits"], onnx.TensorProto.FLOAT)
        self.assertIn("compare_with: tiny-qwen2", (self.dir / "tiny-qwen2-fp16" / "model.yaml").read_text())
        self.assertIn('"dtype": "float16"', (self.dir / "tiny-qwen2-fp16" / "config.json").read_text())

    def test_the_check_fails_against_other_weights(self) -> None:
        model = self.export(LLAMA)
        torch.manual_seed(1)
        for p in model.parameters():
            p.data.add_(0.05 * torch.randn_like(p))
        ok, _ = check_decoder(self.dir / "tiny-llama" / "model.onnx", model, torch.float32, SETTINGS)
        self.assertFalse(ok, "perturbed torch weights must not pass")

    def test_a_checkpoint_folder_exports_as_trained_weights(self) -> None:
        model = tiny(QWEN)
        checkpoint = self.dir / "checkpoint"
        model.save_pretrained(checkpoint)
        loaded = export_decoders.checkpoint_decoder(checkpoint)
        for (name, ours), theirs in zip(model.state_dict().items(), loaded.state_dict().values()):
            self.assertTrue(torch.equal(ours, theirs), name)
        job = DecoderJob("ckpt", loaded, "trained", f"checkpoint: {checkpoint}")
        self.assertTrue(export_one_decoder(job, self.dir, False, SETTINGS))
        self.assertIn("weights: trained", (self.dir / "ckpt" / "model.yaml").read_text())
        config = json.loads((self.dir / "ckpt" / "config.json").read_text())
        self.assertEqual((config["model_type"], config["head_dim"], config["architectures"], config["rope_theta"]), ("qwen2", 16, ["Qwen2ForCausalLM"], 1e6))

    def test_batch_1_and_a_prompt_of_1_token_run_on_the_same_graph(self) -> None:
        model = self.export(LLAMA)
        ok, _ = check_decoder(self.dir / "tiny-llama" / "model.onnx", model, torch.float32, replace(SETTINGS, batch=1, prompt=1))
        self.assertTrue(ok)

    def test_a_parting_says_whether_it_is_a_near_tie(self) -> None:
        logits = np.zeros((2, 1, 4), dtype=np.float32)
        logits[0, 0, :2] = [1.0, 0.999]  # row 0: id 0 over id 1 by 1e-3
        logits[1, 0, :2] = [1.0, 0.5]  # row 1: id 0 over id 1 by 0.5
        ref, got = np.array([0, 0]), np.array([1, 1])
        said = parting(logits, ref, got, diff=2e-3, tolerance=1e-2)
        self.assertIn("row 0: reference top-2 margin 0.001, its id 0 over 1 by 0.001: a near tie", said)
        self.assertIn("row 1: reference top-2 margin 0.5, its id 0 over 1 by 0.5: NOT a near tie", said)
        self.assertIn("beyond the tolerance", parting(logits, ref, got, diff=2e-2, tolerance=1e-2))

    def test_prefill_then_decode_equals_one_pass_over_the_whole_sequence(self) -> None:
        model = self.export(LLAMA)
        path = self.dir / "tiny-llama" / "model.onnx"
        prompt = prompt_ids(model.config, SETTINGS)
        stepped = ort_greedy(path, model.config, torch.float32, prompt, 3)
        whole = torch_greedy(model, np.concatenate([prompt, *[ids[:, None] for ids in stepped.ids[:3]]], axis=1), 0)
        # The last decode step's logits equal those of the same position in one uncached pass.
        self.assertLess(float(abs(stepped.logits[3][:, -1] - whole.logits[0][:, -1]).max()), 1e-4)


if __name__ == "__main__":
    unittest.main()
