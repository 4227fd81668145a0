"""Tests of the torch-free weight matching (onnx_weights.py) and configuration table (hf_config.py).

Run with `python3 -m pytest scripts/runtimes/test_onnx_weights.py` or `python3 scripts/runtimes/test_onnx_weights.py`;
needs numpy and onnx.
"""

from __future__ import annotations

import sys
import unittest
from pathlib import Path

if not __package__:  # run by path: the package `runtimes` is found in the folder above this file
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from runtimes import hf_config, onnx_weights

IN, OUT = 3, 4


def graph(extra_nodes=(), extra_inits=()):
    """x [1, IN] through four layers whose weights the graph stores and uses in different ways:
    - `model.plain.weight` [IN, OUT], right-hand side of MatMul (stored transposed);
    - `model.turned.weight` [OUT, IN], Transpose then MatMul (stored as the layer's own);
    - `model.gemm.weight` [OUT, IN], Gemm with transB=1 (as the layer's own), through a Cast;
    - `model.norm.weight` [OUT], an elementwise Mul (1-D, as it is)."""
    rng = np.random.default_rng(0)
    w = {
        "model.plain.weight": rng.standard_normal((IN, OUT)).astype(np.float32),
        "model.turned.weight": rng.standard_normal((OUT, IN)).astype(np.float32),
        "model.gemm.weight": rng.standard_normal((OUT, IN)).astype(np.float32),
        "model.norm.weight": rng.standard_normal((OUT,)).astype(np.float32),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "model.plain.weight"], ["a"]),
        helper.make_node("Transpose", ["model.turned.weight"], ["turned_t"], perm=[1, 0]),
        helper.make_node("MatMul", ["x", "turned_t"], ["b"]),
        helper.make_node("Cast", ["model.gemm.weight"], ["gemm_w"], to=TensorProto.FLOAT),
        helper.make_node("Gemm", ["x", "gemm_w"], ["c"], transB=1),
        helper.make_node("Mul", ["a", "model.norm.weight"], ["d"]),
        helper.make_node("Sum", ["b", "c", "d"], ["y"]),
        *extra_nodes,
    ]
    inits = [numpy_helper.from_array(a, name) for name, a in w.items()] + list(extra_inits)
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, IN])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, OUT])], inits
    )
    return g, w


LAYERS = {"plain.weight": (OUT, IN), "turned.weight": (OUT, IN), "gemm.weight": (OUT, IN), "norm.weight": (OUT,)}


class OnnxWeights(unittest.TestCase):
    def test_orientation_follows_each_use(self) -> None:
        g, _ = graph()
        self.assertEqual(
            onnx_weights.weight_orientation(g),
            {"model.plain.weight": "in_out", "model.turned.weight": "out_in", "model.gemm.weight": "out_in"},
        )

    def test_every_parameter_matched_in_the_layers_layout_with_the_prefix_stripped(self) -> None:
        g, w = graph()
        m = onnx_weights.match_graph(g, LAYERS, "g.onnx")
        self.assertEqual((m.prefix, m.transposed, sorted(m.arrays)), ("model.", 1, sorted(LAYERS)))
        np.testing.assert_array_equal(m.arrays["plain.weight"], w["model.plain.weight"].T)
        np.testing.assert_array_equal(m.arrays["turned.weight"], w["model.turned.weight"])
        np.testing.assert_array_equal(m.arrays["gemm.weight"], w["model.gemm.weight"])
        np.testing.assert_array_equal(m.arrays["norm.weight"], w["model.norm.weight"])
        self.assertTrue(all(a.flags.c_contiguous and a.flags.writeable for a in m.arrays.values()))
        self.assertIn("4 parameters matched of 4 initializers, prefix `model.` stripped, 1 2-D weights transposed", m.describe(Path("g.onnx")))

    def test_missing_and_misfit_parameters_are_listed(self) -> None:
        g, _ = graph()
        shapes = {**LAYERS, "pooler.weight": (OUT, OUT), "norm.weight": (IN,)}
        with self.assertRaises(hf_config.StrategyUnavailable) as caught:
            onnx_weights.match_graph(g, shapes, "g.onnx")
        text = str(caught.exception)
        self.assertIn("1 of the model's 5 parameters have no initializer named after them (pooler.weight", text)
        self.assertIn("1 do not fit (norm.weight [4] (model [3], used as_is))", text)

    def test_a_weight_used_both_ways_is_refused(self) -> None:
        extra = [helper.make_node("MatMul", ["x", "model.turned.weight"], ["e"])]  # plain and transposed uses at once
        g, _ = graph(extra_nodes=extra)
        with self.assertRaises(hf_config.StrategyUnavailable) as caught:
            onnx_weights.match_graph(g, LAYERS, "g.onnx")
        self.assertIn("turned.weight [4, 3] (model [4, 3], used mixed)", str(caught.exception))


class TiedEmbeddings(unittest.TestCase):
    """A decoder export keeps the tied embedding once, under the output layer's name: a Gather
    reads its rows and the output layer multiplies by its transpose."""

    def tied_graph(self):
        table = np.random.default_rng(2).standard_normal((OUT, IN)).astype(np.float32)  # [vocab, hidden]
        nodes = [
            helper.make_node("Gather", ["model.lm_head.weight", "ids"], ["h"]),
            helper.make_node("Transpose", ["model.lm_head.weight"], ["t"], perm=[1, 0]),
            helper.make_node("MatMul", ["h", "t"], ["y"]),
        ]
        g = helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, OUT])],
            [numpy_helper.from_array(table, "model.lm_head.weight")],
        )
        return g, table

    def test_gathered_and_multiplied_as_stored_is_one_orientation(self) -> None:
        g, _ = self.tied_graph()
        self.assertEqual(onnx_weights.weight_orientation(g), {"model.lm_head.weight": "out_in"})

    def test_the_input_embedding_is_found_under_the_tied_output_layers_name(self) -> None:
        g, table = self.tied_graph()
        shapes = {"embed_tokens.weight": (OUT, IN)}
        with self.assertRaises(hf_config.StrategyUnavailable):
            onnx_weights.match_graph(g, shapes, "g.onnx")
        m = onnx_weights.match_graph(g, shapes, "g.onnx", tied={"embed_tokens.weight": ["lm_head.weight"]})
        np.testing.assert_array_equal(m.arrays["embed_tokens.weight"], table)
        self.assertEqual((m.prefix, m.tied, m.transposed), ("model.", 1, 0))
        self.assertIn("1 found under the name of a tied parameter", m.describe(Path("g.onnx")))


def fx(node, call: str, *params: str):
    """The node metadata torch's dynamo exporter writes: the aten call and its parameters."""
    args = ", ".join(["%x", *(f"%p_{p}" for p in params)])
    helper.set_metadata_props(node, {"pkg.torch.onnx.fx_node": f"%out = call_function[target=torch.ops.aten.{call}.default](args = ({args}), kwargs = {{}})"})
    return node


class DynamoExports(unittest.TestCase):
    """Weights stored under exporter names (`val_N`, pre-transposed), one initializer kept for two
    equal biases, a layer norm's parameters (lower-cased by torch), and a bias the graph drops."""

    def test_parameters_found_through_the_node_metadata(self) -> None:
        rng = np.random.default_rng(1)
        w1, w2 = rng.standard_normal((IN, OUT)).astype(np.float32), rng.standard_normal((OUT, OUT)).astype(np.float32)
        shared = rng.standard_normal((OUT,)).astype(np.float32)
        scale, shift = rng.standard_normal((OUT,)).astype(np.float32), rng.standard_normal((OUT,)).astype(np.float32)
        nodes = [
            fx(helper.make_node("MatMul", ["x", "val_1"], ["a"]), "linear", "model_first_weight", "model_first_bias"),
            fx(helper.make_node("Add", ["a", "model.first.bias"], ["b"]), "linear", "model_first_weight", "model_first_bias"),
            fx(helper.make_node("LayerNormalization", ["b", "val_7", "val_8"], ["c"]), "layer_norm", "model_layernorm_weight", "model_layernorm_bias"),
            fx(helper.make_node("MatMul", ["c", "val_2"], ["d"]), "linear", "model_second_weight", "model_second_bias"),
            fx(helper.make_node("Add", ["d", "model.first.bias"], ["e"]), "linear", "model_second_weight", "model_second_bias"),
            fx(helper.make_node("Gemm", ["e", "model.third.weight"], ["y"], transB=1), "linear", "model_third_weight", "model_third_bias"),
        ]
        inits = [
            numpy_helper.from_array(w1, "val_1"),
            numpy_helper.from_array(w2, "val_2"),
            numpy_helper.from_array(shared, "model.first.bias"),
            numpy_helper.from_array(scale, "val_7"),
            numpy_helper.from_array(shift, "val_8"),
            numpy_helper.from_array(w2, "model.third.weight"),
        ]
        g = helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, IN])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, OUT])], inits
        )
        shapes = {
            "first.weight": (OUT, IN), "first.bias": (OUT,), "LayerNorm.weight": (OUT,), "LayerNorm.bias": (OUT,),
            "second.weight": (OUT, OUT), "second.bias": (OUT,), "third.weight": (OUT, OUT), "third.bias": (OUT,),
        }
        m = onnx_weights.match_graph(g, shapes, "g.onnx")
        np.testing.assert_array_equal(m.arrays["first.weight"], w1.T)
        np.testing.assert_array_equal(m.arrays["second.weight"], w2.T)  # square: the MatMul use says it is stored transposed
        np.testing.assert_array_equal(m.arrays["third.weight"], w2)  # Gemm with transB: as it is
        np.testing.assert_array_equal(m.arrays["second.bias"], shared)  # one initializer for two equal biases
        np.testing.assert_array_equal(m.arrays["LayerNorm.weight"], scale)
        np.testing.assert_array_equal(m.arrays["LayerNorm.bias"], shift)
        np.testing.assert_array_equal(m.arrays["third.bias"], np.zeros(OUT, np.float32))  # the Gemm adds no bias
        self.assertEqual((m.transposed, m.through_metadata, m.zero_biases), (2, 5, 1))

    def test_without_metadata_such_a_graph_is_refused(self) -> None:
        g, _ = graph(extra_inits=[numpy_helper.from_array(np.zeros((IN, OUT), np.float32), "val_1")])
        with self.assertRaises(hf_config.StrategyUnavailable) as caught:
            onnx_weights.match_graph(g, {**LAYERS, "first.weight": (OUT, IN)}, "g.onnx")
        self.assertIn("have no initializer named after them (first.weight", str(caught.exception))


class EmbeddedConfigurations(unittest.TestCase):
    def test_the_export_scripts_table_is_read_without_importing_it(self) -> None:
        models = hf_config.embedded_models()
        self.assertEqual(set(models), {"bert-base-uncased", "bert-large-uncased", "roberta-base", "xlm-roberta-base"})
        self.assertEqual((models["bert-large-uncased"].architecture, models["bert-large-uncased"].config["hidden_size"]), ("bert", 1024))
        self.assertEqual(models["xlm-roberta-base"].config["vocab_size"], 250002)
        self.assertNotIn("torch", sys.modules)


class WeightStrategies(unittest.TestCase):
    def test_auto_takes_the_first_that_applies_and_keeps_why_the_others_did_not(self) -> None:
        def attempt(strategy: str) -> tuple[object, str]:
            if strategy == "checkpoint":
                raise hf_config.StrategyUnavailable("no checkpoint here")
            return f"model by {strategy}", f"weights by {strategy}"

        built = hf_config.build_with("auto", attempt, "config.json")
        self.assertEqual((built.model, built.strategy, built.weights, built.configuration), ("model by onnx", "onnx", "weights by onnx", "config.json"))
        self.assertEqual(built.not_used, ["checkpoint: no checkpoint here"])
        self.assertEqual(hf_config.build_with("seed", attempt, "c").strategy, "seed")

    def test_none_that_applies_is_an_error_naming_each_reason(self) -> None:
        def attempt(strategy: str) -> tuple[object, str]:
            raise hf_config.StrategyUnavailable(f"{strategy} is out")

        with self.assertRaises(hf_config.AdapterError) as caught:
            hf_config.build_with("auto", attempt, "c")
        self.assertEqual(str(caught.exception), "no weights for the model: checkpoint: checkpoint is out; onnx: onnx is out; seed: seed is out")
        with self.assertRaises(hf_config.StrategyUnavailable) as caught:
            hf_config.refuse_unasked_seed("trained", asked=False)
        self.assertIn("`weights: trained`", str(caught.exception))
        hf_config.refuse_unasked_seed("trained", asked=True)
        hf_config.refuse_unasked_seed("random", asked=False)

    def test_the_pooler_is_passed_only_to_classes_that_take_it(self) -> None:
        class Encoder:
            def __init__(self, config: object, add_pooling_layer: bool = True) -> None: ...

        class Other:
            def __init__(self, config: object) -> None: ...

        self.assertEqual(hf_config.pooler_kwargs(Encoder, False), {"add_pooling_layer": False})
        self.assertEqual(hf_config.pooler_kwargs(Other, False), {})


class Mismatch(unittest.TestCase):
    def test_names_the_first_three_of_each_kind_and_nothing_when_all_fit(self):
        text = hf_config.mismatch(9, ["a", "b", "c", "d"], "are not in it", ["e [2] (model [3])"], "have another shape")
        self.assertEqual(text, "4 of the model's 9 parameters are not in it (a, b, c…) and 1 have another shape (e [2] (model [3]))")
        self.assertEqual(hf_config.mismatch(9, [], "are not in it", ["e", "f"], "do not fit"), "2 do not fit (e; f)")
        self.assertEqual(hf_config.mismatch(9, [], "are not in it", [], "do not fit"), "")


if __name__ == "__main__":
    unittest.main()
