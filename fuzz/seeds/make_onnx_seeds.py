"""Writes the onnx_meta seed corpus into fuzz/seeds/onnx_meta/ (needs the `onnx` Python package).

Run from the repository root: python3 fuzz/seeds/make_onnx_seeds.py
"""
import os

import onnx
from onnx import TensorProto, helper

OUT = "fuzz/seeds/onnx_meta"
os.makedirs(OUT, exist_ok=True)


def save(name, model_or_bytes):
    data = model_or_bytes if isinstance(model_or_bytes, bytes) else model_or_bytes.SerializeToString()
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def tensor(name, dims, dtype=TensorProto.FLOAT, raw=b""):
    t = TensorProto(name=name, data_type=dtype, raw_data=raw)
    t.dims.extend(dims)
    return t


def external(t, **entries):
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in entries.items():
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def io(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def model(nodes, inputs, outputs, inits, opsets=(("", 17),)):
    g = helper.make_graph(nodes, "seed", inputs, outputs, initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])


# The committed tiny BERT with its weight payloads dropped (names, types and dims kept).
tiny = onnx.load("models/tiny-bert/model.onnx", load_external_data=False)
for t in tiny.graph.initializer:
    if len(t.raw_data) > 16:
        t.ClearField("raw_data")
save("tiny-bert-no-weights.onnx", tiny)
raw = open("models/tiny-bert/model.onnx", "rb").read()
save("tiny-bert-head-4k.onnx", raw[:4096])
save("tiny-bert-tail-4k.onnx", raw[-4096:])

# fp16 weights behind Cast and Transpose, MatMul and Gemm, symbolic and unknown dims, two opsets.
f16 = lambda n, dims: tensor(n, dims, TensorProto.FLOAT16, b"\0\0" * (dims[0] * dims[1]))
save(
    "fp16-matmul.onnx",
    model(
        [
            helper.make_node("Gather", ["embeddings.word_embeddings.weight", "input_ids"], ["h0"]),
            helper.make_node("Cast", ["w1"], ["w1c"], to=TensorProto.FLOAT),
            helper.make_node("Transpose", ["w1c"], ["w1t"]),
            helper.make_node("MatMul", ["h0", "w1t"], ["h1"]),
            helper.make_node("Identity", ["w2"], ["w2i"]),
            helper.make_node("Gemm", ["h1", "w2i"], ["out"]),
        ],
        [io("input_ids", TensorProto.INT64, ["batch", "sequence"]), io("attention_mask", TensorProto.INT64, [None, 7])],
        [io("out", TensorProto.FLOAT16, ["batch", "sequence", 4]), helper.make_value_info("no_type", onnx.TypeProto())],
        [f16("embeddings.word_embeddings.weight", [10, 4]), f16("embeddings.position_embeddings.weight", [8, 4]), f16("w1", [4, 4]), f16("w2", [4, 4])],
        opsets=(("", 17), ("com.microsoft", 1)),
    ),
)

# Initializers listed among the inputs too, as older exporters did.
w = tensor("w", [2, 2], raw=b"\0" * 16)
save(
    "legacy-initializer-inputs.onnx",
    model([helper.make_node("MatMul", ["x", "w"], ["y"])], [io("x", TensorProto.FLOAT, [1, 2]), io("w", TensorProto.FLOAT, [2, 2])], [io("y", TensorProto.FLOAT, [1, 2])], [w]),
)

# External data: two initializers in one file, one in another.
def ext_model(inits):
    return model([helper.make_node("MatMul", ["x", "a"], ["y"])], [io("x", TensorProto.FLOAT, ["n", 2])], [io("y", TensorProto.FLOAT, ["n", 2])], inits)

save(
    "external-data.onnx",
    ext_model([
        external(tensor("a", [2, 2]), location="model.onnx.data", offset="0", length="16"),
        external(tensor("b", [4, 4]), location="model.onnx.data", offset="64", length="64"),
        external(tensor("c", [2]), location="./other.bin", length="8"),
    ]),
)
save("external-data-outside.onnx", ext_model([external(tensor("a", [2, 2]), location="../w.bin", offset="0", length="16")]))
save("external-data-bad-offset.onnx", ext_model([external(tensor("a", [2, 2]), location="w.bin", offset=" 12x", length="16")]))
save("external-data-overflow.onnx", ext_model([external(tensor("a", [2, 2]), location="w.bin", offset=str(2**64 - 1), length="16")]))
save("external-data-no-location.onnx", ext_model([external(tensor("a", [2, 2]), offset="0")]))

# Subgraphs (If branches, a Loop body) and inputs that decide structure (a shape, a condition).
branch = lambda name: helper.make_graph(
    [helper.make_node("Reshape", ["x", "shape"], ["r"], name=name + "_reshape"), helper.make_node("Identity", ["r"], ["out_" + name])],
    name, [], [io("out_" + name, TensorProto.FLOAT, None)],
)
body = helper.make_graph(
    [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Gather", ["x", "i"], ["g"])],
    "body", [io("i", TensorProto.INT64, []), io("cond_in", TensorProto.BOOL, [])], [io("cond_out", TensorProto.BOOL, []), io("g", TensorProto.FLOAT, None)],
)
save(
    "subgraphs.onnx",
    model(
        [
            helper.make_node("Cast", ["flag"], ["c"], to=TensorProto.BOOL),
            helper.make_node("If", ["c"], ["y"], then_branch=branch("then"), else_branch=branch("else")),
            helper.make_node("Loop", ["trips", "", ], ["z"], body=body),
            helper.make_node("Scan", ["x"], ["s"], body=body, num_scan_inputs=1),
        ],
        [io("x", TensorProto.FLOAT, ["n", 4]), io("shape", TensorProto.INT64, [2]), io("flag", TensorProto.INT64, []), io("trips", TensorProto.INT64, [])],
        [io("y", TensorProto.FLOAT, None), io("z", TensorProto.FLOAT, None)],
        [],
    ),
)

# Quantized operators and bfloat16 weights.
bf16 = lambda n, dims: tensor(n, dims, TensorProto.BFLOAT16, b"\0\0" * (dims[0] * dims[1]))
save(
    "quantized-bf16.onnx",
    model(
        [
            helper.make_node("DequantizeLinear", ["wq", "scale", "zero"], ["w"]),
            helper.make_node("MatMul", ["x", "w"], ["h"]),
            helper.make_node("QLinearMatMul", ["xq", "scale", "zero", "wq", "scale", "zero", "scale", "zero"], ["hq"]),
            helper.make_node("MatMul", ["h", "wb"], ["y"]),
        ],
        [io("x", TensorProto.FLOAT, ["batch", 4]), io("xq", TensorProto.UINT8, ["batch", 4])],
        [io("y", TensorProto.BFLOAT16, ["batch", 4]), io("hq", TensorProto.UINT8, ["batch", 4])],
        [tensor("wq", [4, 4], TensorProto.UINT8, b"\0" * 16), tensor("scale", [], raw=b"\0\0\x80\x3f"), tensor("zero", [], TensorProto.UINT8, b"\0"), bf16("wb", [4, 4])],
    ),
)
