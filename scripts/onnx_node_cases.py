#!/usr/bin/env python3
"""Turn ONNX's backend *node* test cases into on-disk test folders, check them with Python
onnxruntime, and pick a small, deterministic sample of them.

The `onnx` wheel does not ship the generated `onnx/backend/test/data/node` folders; it ships the
Python generators instead. They are enumerated here with

    onnx.backend.test.case.node.collect_testcases()  ->  list[TestCase]

(each TestCase has .name, .model (ModelProto), .data_sets [(inputs, outputs)], .rtol, .atol,
.kind == "node"). The folders written here follow the layout of onnx's backend test data and of
ONNX Runtime's onnx_test_runner:

    OUT/<case name>/model.onnx
    OUT/<case name>/test_data_set_0/input_0.pb ... output_0.pb ...   (serialized TensorProto)
    OUT/<case name>/case.json                                          (metadata, see below)

Usage (Python 3.11; needs onnx, numpy, and onnxruntime for `referee`; $PYENV is a folder they are
installed in, e.g. with `python3 -m pip install --target $PYENV onnx==1.23.2 onnxruntime==1.31.1 numpy==2.4.6`):

    PYTHONPATH=$PYENV python3 scripts/onnx_node_cases.py write OUT \
        [--only NAME ...] [--sample FILE] [--limit N]
    PYTHONPATH=$PYENV python3 scripts/onnx_node_cases.py referee OUT \
        [--json REF.json] [--timeout S] [--jobs N]
    PYTHONPATH=$PYENV python3 scripts/onnx_node_cases.py sample --referee REF.json \
        [--count N] [--max-bytes B] [--per-dtype K] [--all-dtypes] > FILE

Pinned versions used to produce scripts/onnx-node-sample.txt: onnx==1.23.2, onnxruntime==1.31.1,
numpy==2.4.6 (installed with `python3 -m pip install --target $PYENV ...`).

write    Writes one folder per node case. Cases with a non-tensor input or output (sequence,
         optional, map) are skipped and counted by reason. Prints one summary line.
         --sample FILE reads case names, one per line (`#` starts a comment).
referee  Runs each folder in DIR on onnxruntime (CPUExecutionProvider, one thread) in a worker
         process with a per-case timeout, compares with the expected outputs (case rtol/atol for
         floats, NaN == NaN, exact for integers, bools and strings) and classifies each case as
         pass / mismatch / load_error / run_error. Prints counts; --json writes per-case results.
scenario Prints an xbench scenario that runs every case folder in DIR on its own test data.
tally    Reads an xbench results.json of such a run (and, with --referee, the referee's JSON) and
         prints, per runtime, the cells that match their expected outputs, those whose outputs
         are empty (nothing to compare), mismatch, or failed, with the commonest reasons; and the
         share of the cases onnxruntime itself passes that xbench's ort-cpu matches.
sample   Picks --count case names from a referee JSON: passing cases only, at most --max-bytes
         bytes of model and data, common dtypes only (unless --all-dtypes); first each input and
         output dtype in --per-dtype cases, then round-robin over op types. Prints the names
         (after a two-line header comment) on stdout and a coverage summary on stderr.

case.json fields: name, op_type (the operator under test; for `*_expanded*` cases, the function
body's parent op), op_types (all node op types, nested subgraphs included), domains, expanded,
ir_version, opset_imports [{domain, version}], inputs/outputs [{name, dtype, shape, graph_shape,
formal}] (shape: of the data; graph_shape: as declared in the graph, ints / dim_param strings /
null; formal: the schema's formal parameter name, single-node graphs only), rtol, atol,
tolerance_source, bytes (model.onnx plus the .pb files). The referee does not need case.json
beyond rtol/atol and output names; xbench-style runners can use it to pick cases by dtype/op.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import re
import shutil
import sys
import time
import warnings
from collections import Counter, defaultdict, deque
from multiprocessing.connection import wait as mp_wait
from pathlib import Path
from typing import Any

import numpy as np

# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------

# Element types that Python onnxruntime converts to and from numpy directly. Every other type
# (bfloat16, float8*, int4/uint4/float4, ...) goes through raw buffers (see _ort_value_from).
NATIVE_ORT_TYPES = {
    "float32", "float64", "float16", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64", "bool", "string",
}

# The dtypes the sample tries to cover, in priority order; cases using any other element type
# (float8, int4, complex, ...) are left out of the sample unless --all-dtypes is given.
COMMON_DTYPES = [
    "float32", "float16", "bfloat16", "float64", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64", "bool", "string",
]

# Element types stored packed, several values per byte, with their bit widths.
PACKED_BITS = {"int4": 4, "uint4": 4, "float4e2m1": 4, "int2": 2, "uint2": 2,
               "float6e2m3": 6, "float6e3m2": 6}


def dtype_name(elem_type: int) -> str:
    """TensorProto element type -> short lowercase name (FLOAT -> float32, DOUBLE -> float64)."""
    from onnx import TensorProto

    name = TensorProto.DataType.Name(elem_type).lower()
    return {"float": "float32", "double": "float64"}.get(name, name)


def read_names(path: str) -> list[str]:
    """Case names from a file: one per line, blank lines and `#` comments ignored."""
    names = []
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    return names


def dump_json(obj: Any) -> str:
    """Indented JSON with innermost lists (shapes, names) kept on one line."""
    text = json.dumps(obj, indent=1)
    return re.sub(r"\[\s+([^\[\]{}]*?)\s+\]",
                  lambda m: json.dumps(json.loads("[" + m.group(1) + "]")), text) + "\n"


def folder_bytes(folder: Path) -> int:
    """Total size of the files under a folder."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# --------------------------------------------------------------------------------------------
# write
# --------------------------------------------------------------------------------------------

def collect_node_cases() -> list[Any]:
    """All of onnx's node test cases, sorted by name.

    collect_testcases() imports every generator module under onnx.backend.test.case.node; each
    exporter class seeds numpy's RNG with 0 before it runs, so the data is deterministic. The
    generators print numpy warnings (divide by zero, ...) by design; those are silenced.
    """
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    cases = [c for c in cases if c.kind == "node"]
    return sorted(cases, key=lambda c: c.name)


def _all_nodes(graph: Any):
    """Nodes of a graph and of its nested subgraphs (If/Loop/Scan bodies), depth first."""
    from onnx import AttributeProto

    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                yield from _all_nodes(attr.g)
            elif attr.type == AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _all_nodes(g)


def _graph_shape(value_info: Any) -> list[Any] | None:
    """Declared shape of a tensor value: ints, dim_param strings, or None for unknown dims."""
    tt = value_info.type.tensor_type
    if not tt.HasField("shape"):
        return None
    dims = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            dims.append(d.dim_value)
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return dims


def _formal_names(model: Any) -> tuple[list[str | None], list[str | None]]:
    """Schema formal parameter names for the graph inputs/outputs of a single-node graph."""
    import onnx

    graph = model.graph
    n_in, n_out = len(graph.input), len(graph.output)
    if len(graph.node) != 1:
        return [None] * n_in, [None] * n_out
    node = graph.node[0]
    # The default domain may be spelled "" or "ai.onnx" in opset_import.
    same = {"", "ai.onnx"} if node.domain in ("", "ai.onnx") else {node.domain}
    version = next((o.version for o in model.opset_import if o.domain in same), None)
    try:
        if version is None:
            schema = onnx.defs.get_schema(node.op_type, domain=node.domain)
        else:
            schema = onnx.defs.get_schema(node.op_type, version, node.domain)
    except Exception:  # unknown op or version: leave the names out
        return [None] * n_in, [None] * n_out

    def formal(params: list[Any], position: int) -> str | None:
        if not params:
            return None
        # Variadic parameters are last: later positions all map to it.
        return params[min(position, len(params) - 1)].name

    def per_value(node_io: list[str], formals: list[Any], values: list[Any]) -> list[str | None]:
        pos = {name: i for i, name in enumerate(node_io) if name}
        return [formal(formals, pos[v.name]) if v.name in pos else None for v in values]

    return (per_value(list(node.input), list(schema.inputs), list(graph.input)),
            per_value(list(node.output), list(schema.outputs), list(graph.output)))


def _tensor_proto(value: Any, name: str) -> Any:
    """A TensorProto for one data-set value (ndarray, numpy scalar or TensorProto), named."""
    from onnx import TensorProto, numpy_helper

    if isinstance(value, TensorProto):
        # float8 / int4 / ... data are built as TensorProto by the generators already.
        t = TensorProto()
        t.CopyFrom(value)
        t.name = name
        return t
    return numpy_helper.from_array(np.asarray(value), name)


def _skip_reason(case: Any) -> str | None:
    """Why a case cannot be written as plain tensors, or None if it can."""
    from onnx import TensorProto

    graph = case.model.graph
    if len(case.data_sets) != 1:
        return "several_data_sets"
    inputs, outputs = case.data_sets[0]
    for io, values, infos in (("input", inputs, graph.input), ("output", outputs, graph.output)):
        if len(values) != len(infos):
            return f"{io}_count_differs_from_graph"
        for value, info in zip(values, infos):
            kind = info.type.WhichOneof("value")
            if kind != "tensor_type":
                # sequence_type -> "sequence_input", optional_type -> "optional_output", ...
                return f"{(kind or 'untyped').removesuffix('_type')}_{io}"
            if value is None or isinstance(value, (list, tuple, dict)):
                return f"non_tensor_value_{io}"
            if not isinstance(value, (np.ndarray, np.generic, TensorProto)):
                return f"unexpected_python_type_{io}"
    return None


def _io_records(infos: list[Any], formals: list[str | None], protos: list[Any]) -> list[dict]:
    """case.json entries for graph inputs or outputs (dtype/shape from the data written)."""
    records = []
    for info, formal, proto in zip(infos, formals, protos):
        rec = {
            "name": info.name,
            "dtype": dtype_name(proto.data_type),
            "shape": list(proto.dims),
        }
        gshape = _graph_shape(info)
        if gshape != rec["shape"]:
            rec["graph_shape"] = gshape
        declared = info.type.tensor_type.elem_type
        if declared != proto.data_type:
            rec["graph_dtype"] = dtype_name(declared)
        if formal is not None:
            rec["formal"] = formal
        records.append(rec)
    return records


def write_case(case: Any, folder: Path, parent_op: dict[str, str]) -> dict:
    """Write one case folder (replacing an old one); return its case.json record."""
    model = case.model
    graph = model.graph
    inputs, outputs = case.data_sets[0]
    in_protos = [_tensor_proto(v, i.name) for v, i in zip(inputs, graph.input)]
    out_protos = [_tensor_proto(v, o.name) for v, o in zip(outputs, graph.output)]

    if folder.exists():
        shutil.rmtree(folder)
    data_dir = folder / "test_data_set_0"
    data_dir.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    for i, proto in enumerate(in_protos):
        (data_dir / f"input_{i}.pb").write_bytes(proto.SerializeToString())
    for i, proto in enumerate(out_protos):
        (data_dir / f"output_{i}.pb").write_bytes(proto.SerializeToString())

    nodes = list(_all_nodes(graph))
    formal_in, formal_out = _formal_names(model)
    expanded = "_expanded" in case.name
    if expanded:
        base = case.name.split("_expanded")[0]
        op_type = parent_op.get(base, "?")
    else:
        op_type = graph.node[0].op_type if len(graph.node) == 1 else "+".join(
            sorted({n.op_type for n in graph.node}))
    record = {
        "name": case.name,
        "op_type": op_type,
        "op_types": sorted({n.op_type for n in nodes}),
        "domains": sorted({n.domain or "ai.onnx" for n in nodes}),
        "expanded": expanded,
        "ir_version": model.ir_version,
        "opset_imports": [{"domain": o.domain or "ai.onnx", "version": o.version}
                          for o in model.opset_import],
        "inputs": _io_records(list(graph.input), formal_in, in_protos),
        "outputs": _io_records(list(graph.output), formal_out, out_protos),
        # The node cases declare their tolerances on the TestCase (onnx 1.23.2: always
        # rtol=1e-3, atol=1e-7, set by onnx.backend.test.case.node.expect).
        "rtol": case.rtol,
        "atol": case.atol,
        "tolerance_source": "TestCase",
    }
    # Bytes of the files a runner reads (model.onnx and the .pb files; case.json excluded).
    record["bytes"] = folder_bytes(folder)
    (folder / "case.json").write_text(dump_json(record))
    return record


def cmd_write(args: argparse.Namespace) -> int:
    start = time.monotonic()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = collect_node_cases()
    total = len(cases)
    # The op under test for each non-expanded case, to label its `_expanded` siblings.
    parent_op = {c.name: c.model.graph.node[0].op_type for c in cases
                 if "_expanded" not in c.name and len(c.model.graph.node) == 1}

    if args.only or args.sample:
        wanted = list(args.only or []) + (read_names(args.sample) if args.sample else [])
        by_name = {c.name for c in cases}
        unknown = [n for n in wanted if n not in by_name]
        if unknown:
            print(f"unknown case names ({len(unknown)}): {' '.join(unknown[:20])}",
                  file=sys.stderr)
        keep = set(wanted)
        cases = [c for c in cases if c.name in keep]
    if args.limit is not None:
        cases = cases[: args.limit]

    written, skipped, failed = 0, Counter(), Counter()
    total_bytes = 0
    for case in cases:
        reason = _skip_reason(case)
        if reason:
            skipped[reason] += 1
            if args.verbose:
                print(f"skip {case.name}: {reason}", file=sys.stderr)
            continue
        try:
            rec = write_case(case, out / case.name, parent_op)
        except Exception as e:  # never let one case stop the run
            failed[type(e).__name__] += 1
            print(f"failed {case.name}: {type(e).__name__}: {e}", file=sys.stderr)
            shutil.rmtree(out / case.name, ignore_errors=True)
            continue
        written += 1
        total_bytes += rec["bytes"]

    elapsed = time.monotonic() - start
    skipped_txt = ", ".join(f"{k}={v}" for k, v in sorted(skipped.items())) or "none"
    failed_txt = (", failed: " + ", ".join(f"{k}={v}" for k, v in sorted(failed.items()))
                  if failed else "")
    print(f"node cases: {total}, selected: {len(cases)}, written: {written} "
          f"({total_bytes} bytes), skipped: {sum(skipped.values())} ({skipped_txt})"
          f"{failed_txt}, {elapsed:.1f} s")
    return 1 if failed else 0


# --------------------------------------------------------------------------------------------
# referee (runs in worker processes)
# --------------------------------------------------------------------------------------------

def _load_tensor(path: Path) -> Any:
    from onnx import TensorProto

    t = TensorProto()
    t.ParseFromString(path.read_bytes())
    return t


def _ort_value_from(proto: Any) -> Any:
    """An OrtValue for a tensor whose type numpy/ORT cannot exchange directly.

    ORT wants a numpy buffer whose *shape* is the logical shape and whose bytes are ORT's own
    layout: the raw little-endian bits for bfloat16/float8 (viewed as uint16/uint8), and for
    packed sub-byte types the packed bytes at the start of a uint8 buffer of the logical shape.
    """
    import onnxruntime as ort
    from onnx import numpy_helper

    arr = numpy_helper.to_array(proto)  # ml_dtypes array, one element per value
    if dtype_name(proto.data_type) in PACKED_BITS:
        packed = np.frombuffer(numpy_helper.from_array(arr).raw_data, np.uint8)
        buf = np.zeros(arr.shape, np.uint8)
        buf.reshape(-1)[: packed.size] = packed
    else:
        buf = np.ascontiguousarray(arr).view({1: np.uint8, 2: np.uint16, 4: np.uint32}[
            arr.dtype.itemsize]).copy()
    return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(buf, proto.data_type), buf


def _run_ort(sess: Any, feeds: dict[str, Any], expected: list[tuple[str, Any]]) -> list[Any]:
    """Run the session; return the actual outputs as numpy arrays (ml_dtypes for exotic types)."""
    from onnx import TensorProto, numpy_helper

    exotic_in = any(dtype_name(p.data_type) not in NATIVE_ORT_TYPES for p in feeds.values())
    exotic_out = any(dtype_name(p.data_type) not in NATIVE_ORT_TYPES for _, p in expected)
    if not exotic_in and not exotic_out:
        arrays = {k: numpy_helper.to_array(p) for k, p in feeds.items()}
        return sess.run([name for name, _ in expected], arrays)

    # Slow path through IOBinding: exotic outputs are written by ORT into buffers we allocate
    # with the expected shape (a different actual shape then fails as a run error).
    binding = sess.io_binding()
    keep_alive = []
    for k, p in feeds.items():
        if dtype_name(p.data_type) in NATIVE_ORT_TYPES:
            binding.bind_cpu_input(k, numpy_helper.to_array(p))
        else:
            value, buf = _ort_value_from(p)
            keep_alive.append(buf)
            binding.bind_ortvalue_input(k, value)
    out_bufs = {}
    for name, p in expected:
        if dtype_name(p.data_type) in NATIVE_ORT_TYPES:
            binding.bind_output(name, "cpu")
        else:
            value, buf = _ort_value_from(p)
            out_bufs[name] = (buf, p)
            binding.bind_ortvalue_output(name, value)
    sess.run_with_iobinding(binding)
    values = binding.get_outputs()
    results = []
    for (name, _), value in zip(expected, values):
        if name not in out_bufs:
            results.append(value.numpy())
            continue
        buf, p = out_bufs[name]
        n = math.prod(p.dims)
        bits = PACKED_BITS.get(dtype_name(p.data_type))
        nbytes = (n * bits + 7) // 8 if bits else buf.nbytes
        t = TensorProto()
        t.data_type = p.data_type
        t.dims.extend(p.dims)
        t.raw_data = buf.tobytes()[:nbytes]
        results.append(numpy_helper.to_array(t))
    return results


def compare(actual: Any, expected: Any, dtype: str, rtol: float, atol: float) -> dict | None:
    """None when `actual` matches `expected`, else a dict describing the mismatch."""
    actual = np.asarray(actual)
    if actual.shape != expected.shape:
        return {"detail": f"shape {list(actual.shape)} != expected {list(expected.shape)}"}
    if dtype == "string":
        a = np.vectorize(lambda s: s.decode() if isinstance(s, bytes) else str(s),
                         otypes=[object])(actual) if actual.size else actual
        bad = int(np.sum(a != expected)) if actual.size else 0
        return {"detail": f"{bad} strings differ", "bad": bad} if bad else None
    if actual.dtype != expected.dtype:
        return {"detail": f"dtype {actual.dtype} != expected {expected.dtype}"}
    if actual.size == 0:
        return None
    if dtype == "bool" or np.issubdtype(expected.dtype, np.integer) or dtype in (
            "int4", "uint4", "int2", "uint2"):
        a, e = actual.astype(object), expected.astype(object)  # exact, no uint64 overflow
        neq = a != e
        bad = int(np.sum(neq))
        if not bad:
            return None
        diff = max(abs(int(x) - int(y)) for x, y in zip(a[neq], e[neq]))
        return {"detail": f"{bad} of {actual.size} elements differ (exact compare)",
                "bad": bad, "max_abs_diff": float(diff)}
    # Floating point (and complex): allclose with NaN == NaN, inf == inf of the same sign.
    wide = np.complex128 if np.iscomplexobj(expected) else np.float64
    a, e = actual.astype(wide), expected.astype(wide)
    if dtype == "bfloat16":
        rtol = max(rtol, 2.0 ** -6)  # as onnx's backend runner: two bfloat16 ULPs
    same = (a == e) | (np.isnan(a) & np.isnan(e))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a - e)
    diff = np.where(same, 0.0, np.where(np.isnan(diff), np.inf, diff))
    bad_mask = diff > atol + rtol * np.abs(np.where(np.isfinite(e), e, 0))
    bad = int(np.sum(bad_mask))
    if not bad:
        return None
    return {"detail": f"{bad} of {actual.size} elements outside rtol={rtol:g} atol={atol:g}",
            "bad": bad, "max_abs_diff": float(np.max(diff))}


def referee_case(folder: str) -> dict:
    """Run one case folder on onnxruntime CPU; never raises."""
    import onnxruntime as ort
    from onnx import numpy_helper

    start = time.monotonic()
    folder_p = Path(folder)
    result: dict[str, Any] = {}
    try:
        meta = json.loads((folder_p / "case.json").read_text())
        rtol, atol = meta.get("rtol", 1e-3), meta.get("atol", 1e-7)
        data = folder_p / "test_data_set_0"
        ins = sorted(data.glob("input_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
        outs = sorted(data.glob("output_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
        in_protos = [_load_tensor(p) for p in ins]
        out_protos = [_load_tensor(p) for p in outs]
    except Exception as e:
        return {"outcome": "load_error", "message": f"reading the folder: {type(e).__name__}: {e}",
                "seconds": round(time.monotonic() - start, 4)}

    try:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 4  # fatal only: errors are reported per case
        sess = ort.InferenceSession(str(folder_p / "model.onnx"), opts,
                                    providers=["CPUExecutionProvider"])
    except Exception as e:
        return {"outcome": "load_error", "message": _one_line(e),
                "seconds": round(time.monotonic() - start, 4)}

    try:
        graph_inputs = [i.name for i in sess.get_inputs()]
        feeds = {}
        for i, p in enumerate(in_protos):
            feeds[p.name or graph_inputs[i]] = p
        out_names = [o["name"] for o in meta["outputs"]]
        expected = [(p.name or out_names[i], p) for i, p in enumerate(out_protos)]
        actual = _run_ort(sess, feeds, expected)
    except Exception as e:
        return {"outcome": "run_error", "message": _one_line(e),
                "seconds": round(time.monotonic() - start, 4)}

    try:
        worst = None
        for (name, proto), got in zip(expected, actual):
            want = numpy_helper.to_array(proto)
            bad = compare(got, want, dtype_name(proto.data_type), rtol, atol)
            if bad is not None:
                bad["output"] = name
                if worst is None or bad.get("max_abs_diff", math.inf) > worst.get(
                        "max_abs_diff", -1):
                    worst = bad
        if worst is None:
            result = {"outcome": "pass"}
        else:
            result = {"outcome": "mismatch",
                      "message": f"output {worst['output']}: {worst['detail']}",
                      "max_abs_diff": worst.get("max_abs_diff")}
    except Exception as e:
        result = {"outcome": "mismatch", "message": f"compare failed: {_one_line(e)}"}
    result["seconds"] = round(time.monotonic() - start, 4)
    return result


def _one_line(e: BaseException, limit: int = 500) -> str:
    """An exception as one line, without ORT's source paths and C++ function signatures."""
    text = " ".join(str(e).split())
    text = re.sub(r"Load model from \S+ failed:", "Load model failed: ", text)
    text = re.sub(r"/onnxruntime_src/\S+ ", "", text)
    # e.g. "onnxruntime::Model::Model(onnx::ModelProto&&, ...)", "virtual ...::Compute(...) const"
    text = re.sub(r"(void |virtual )?[\w:]*::[\w<>~]+\([^()]*(\([^()]*\)[^()]*)*\)"
                  r"( const)?(::<lambda\([^()]*\)>)? ?", "", text)
    return f"{type(e).__name__}: {text}"[:limit]


def _worker_main(conn: Any) -> None:
    """Worker loop: receive a folder path, send back referee_case()'s dict; None stops it."""
    warnings.simplefilter("ignore")
    import onnxruntime  # import once, before the first case is timed

    onnxruntime.set_default_logger_severity(4)
    conn.send("ready")

    while True:
        folder = conn.recv()
        if folder is None:
            return
        conn.send(referee_case(folder))


class _Worker:
    """A spawned process running _worker_main, killed and replaced on timeout or crash."""

    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        self.case: str | None = None
        self.started = 0.0
        self.ready = False

    def submit(self, case: str, folder: str) -> None:
        if not self.ready:
            # Wait for the worker's imports, so that they do not count against the timeout.
            if not self.conn.poll(300):
                raise RuntimeError("referee worker did not start within 300 s")
            self.conn.recv()
            self.ready = True
        self.case, self.started = case, time.monotonic()
        self.conn.send(folder)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join()
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()


def _case_summary(folder: Path) -> dict:
    """The case.json fields that `sample` needs, copied into the referee JSON."""
    try:
        meta = json.loads((folder / "case.json").read_text())
    except Exception:
        return {}
    return {
        "op_type": meta.get("op_type"),
        "op_types": meta.get("op_types"),
        "domains": meta.get("domains"),
        "expanded": meta.get("expanded"),
        "input_dtypes": [i["dtype"] for i in meta.get("inputs", [])],
        "output_dtypes": [o["dtype"] for o in meta.get("outputs", [])],
        "bytes": meta.get("bytes"),
    }


def cmd_referee(args: argparse.Namespace) -> int:
    import onnx
    import onnxruntime as ort

    start = time.monotonic()
    root = Path(args.dir)
    folders = sorted(p for p in root.iterdir() if (p / "model.onnx").is_file())
    if args.only:
        keep = set(args.only)
        folders = [p for p in folders if p.name in keep]
    ctx = multiprocessing.get_context("spawn")
    workers = [_Worker(ctx) for _ in range(max(1, args.jobs))]
    pending = deque(folders)
    results: dict[str, dict] = {}
    shown = 0

    while pending or any(w.case for w in workers):
        for w in workers:
            if w.case is None and pending:
                folder = pending.popleft()
                w.submit(folder.name, str(folder))
        busy = [w for w in workers if w.case]
        now = time.monotonic()
        next_deadline = min(w.started + args.timeout for w in busy)
        ready = mp_wait([w.conn for w in busy], timeout=max(0.0, next_deadline - now))
        for i, w in enumerate(workers):
            if w.case is None:
                continue
            if w.conn in ready:
                try:
                    results[w.case] = w.conn.recv()
                    w.case = None
                    continue
                except (EOFError, OSError):
                    w.proc.join(5)
                    code = w.proc.exitcode
                    results[w.case] = {"outcome": "run_error",
                                       "message": f"worker crashed (exit code {code})",
                                       "seconds": round(time.monotonic() - w.started, 4)}
            elif time.monotonic() - w.started >= args.timeout:
                results[w.case] = {"outcome": "run_error",
                                   "message": f"timeout after {args.timeout:g} s",
                                   "seconds": round(time.monotonic() - w.started, 4)}
            else:
                continue
            # Crash or timeout: replace the worker.
            w.kill()
            workers[i] = _Worker(ctx)
        if args.progress and len(results) >= shown + 200:
            shown = len(results)
            print(f"... {shown}/{len(folders)}", file=sys.stderr, flush=True)
    for w in workers:
        w.stop()

    for folder in folders:
        results[folder.name].update(_case_summary(folder))
    elapsed = time.monotonic() - start
    counts = Counter(r["outcome"] for r in results.values())
    order = ["pass", "mismatch", "load_error", "run_error"]
    print(f"referee onnxruntime {ort.__version__} (CPU) on {len(folders)} cases in "
          f"{elapsed:.1f} s: " + ", ".join(f"{k}={counts.get(k, 0)}" for k in order))
    messages = Counter()
    for r in results.values():
        if r["outcome"] != "pass":
            messages[(r["outcome"], _message_key(r.get("message", "")))] += 1
    for (outcome, msg), n in messages.most_common(args.top):
        print(f"  {n:4d} {outcome}: {msg}")
    if args.json:
        report = {
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
            "provider": "CPUExecutionProvider",
            "dir": str(root.resolve()),
            "seconds": round(elapsed, 1),
            "timeout_s": args.timeout,
            "counts": {k: counts.get(k, 0) for k in order},
            "cases": {k: results[k] for k in sorted(results)},
        }
        Path(args.json).write_text(dump_json(report))
    return 0


def _message_key(msg: str) -> str:
    """A message with case-specific parts (numbers, names) cut, to group common errors."""
    msg = re.sub(r"\[ONNXRuntimeError\] : \d+ : ", "", msg)
    msg = re.sub(r"node with name '[^']*'", "node with name '…'", msg)
    msg = re.sub(r"output \S+:", "output …:", msg)
    msg = re.sub(r"\d+(\.\d+)?(e-?\d+)?", "N", msg)
    return msg[:160]


# --------------------------------------------------------------------------------------------
# sample
# --------------------------------------------------------------------------------------------

def choose_sample(cases: dict[str, dict], count: int, max_bytes: int,
                  dtypes: list[str] | None, per_dtype: int) -> list[str]:
    """Deterministic sample of passing cases spread over dtypes and op types.

    Candidates: outcome "pass", folder size <= max_bytes, only `dtypes` (if given).
    1. dtype coverage: each (direction, dtype) pair ("in"/"out", e.g. ("in", "uint16")) should
       be seen in `per_dtype` chosen cases (or in all candidates that have it, if fewer). Greedy:
       take the candidate that adds most to pairs still short of that, ties broken by: op type
       not taken yet, non-expanded, fewer bytes, name.
    2. op types: round-robin over op types (sorted by name), one case per op type per round,
       preferring cases that add a new (op type, dtype) pair, then non-expanded, fewer bytes,
       name; until `count` cases are taken or none is left. When the first round has more op
       types than free slots, it takes evenly spaced op types from the sorted list, so a small
       count still spans the alphabet.
    """
    allowed = set(dtypes) if dtypes else None
    cand = {}
    for name, r in cases.items():
        if r.get("outcome") != "pass" or r.get("bytes", math.inf) > max_bytes:
            continue
        all_dt = set(r.get("input_dtypes", [])) | set(r.get("output_dtypes", []))
        if allowed is not None and not all_dt <= allowed:
            continue
        cand[name] = r

    def pairs(r: dict) -> set[tuple[str, str]]:
        return ({("in", d) for d in r["input_dtypes"]} | {("out", d) for d in r["output_dtypes"]})

    chosen: list[str] = []
    taken_ops: set[str] = set()
    seen: Counter = Counter()  # (direction, dtype) -> chosen cases having it
    op_dtypes: set[tuple[str, str]] = set()

    def take(name: str) -> None:
        r = cand.pop(name)
        chosen.append(name)
        taken_ops.add(r["op_type"])
        seen.update(pairs(r))
        op_dtypes.update((r["op_type"], d) for d in r["input_dtypes"] + r["output_dtypes"])

    # Step 1: dtype coverage.
    while len(chosen) < count:
        best = None
        for name in sorted(cand):
            r = cand[name]
            gain = sum(1 for p in pairs(r) if seen[p] < per_dtype)
            if gain == 0:
                continue
            key = (-gain, r["op_type"] in taken_ops, bool(r["expanded"]), r["bytes"], name)
            if best is None or key < best[0]:
                best = (key, name)
        if best is None:
            break
        take(best[1])

    # Step 2: round-robin over op types.
    by_op: dict[str, list[str]] = defaultdict(list)
    for name in sorted(cand):
        by_op[cand[name]["op_type"]].append(name)
    ops = sorted(by_op)
    first_round = [op for op in ops if op not in taken_ops]
    slots = max(0, count - len(chosen))
    if 0 < slots < len(first_round):
        idx = sorted({math.floor(i * len(first_round) / slots) for i in range(slots)})
        first_round = [first_round[i] for i in idx]
    rounds = [first_round]
    while len(chosen) < count and cand:
        order = rounds.pop(0) if rounds else ops
        for op in order:
            if len(chosen) >= count:
                break
            names = [n for n in by_op[op] if n in cand]
            by_op[op] = names
            if not names:
                continue

            def key(n: str, op: str = op) -> tuple:
                r = cand[n]
                new = {(op, d) for d in r["input_dtypes"] + r["output_dtypes"]} - op_dtypes
                return (-len(new), bool(r["expanded"]), r["bytes"], n)

            take(min(names, key=key))
    return chosen


def cmd_sample(args: argparse.Namespace) -> int:
    report = json.loads(Path(args.referee).read_text())
    cases = report["cases"]
    dtypes = None if args.all_dtypes else COMMON_DTYPES
    chosen = choose_sample(cases, args.count, args.max_bytes, dtypes, args.per_dtype)
    if len(chosen) < args.count:
        print(f"warning: only {len(chosen)} cases qualify (asked for {args.count})",
              file=sys.stderr)
    ins, outs = Counter(), Counter()
    for n in chosen:
        ins.update(set(cases[n]["input_dtypes"]))
        outs.update(set(cases[n]["output_dtypes"]))
    ops = {cases[n]["op_type"] for n in chosen}
    total = sum(cases[n]["bytes"] for n in chosen)
    flags = (f"--count {args.count} --max-bytes {args.max_bytes} --per-dtype {args.per_dtype}"
             f"{' --all-dtypes' if args.all_dtypes else ''}")
    print(f"# {len(chosen)} ONNX node test cases (onnx {report.get('onnx')}) that onnxruntime "
          f"{report.get('onnxruntime')} CPU passes: {len(ops)} op types, {total} bytes of files.")
    print(f"# Made by scripts/onnx_node_cases.py: write DIR; referee DIR --json REF.json; sample "
          f"--referee REF.json {flags}. Write them with: write OUT --sample THIS_FILE")
    for n in sorted(chosen):
        print(n)
    print(f"sample: {len(chosen)} cases, {len(ops)} op types, {total} bytes; "
          f"input dtypes {dict(sorted(ins.items()))}; output dtypes {dict(sorted(outs.items()))}",
          file=sys.stderr)
    return 0


# --------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------
# scenario, tally
# --------------------------------------------------------------------------------------------

def cmd_scenario(args: argparse.Namespace) -> int:
    names = sorted(p.name for p in Path(args.dir).iterdir() if (p / "model.onnx").is_file())
    print(f"# Every ONNX node case in {args.dir}, each on its own test data (test_data_set_0),")
    print("# its expected outputs the reference. Written by scripts/onnx_node_cases.py scenario.")
    print(f"name: {args.name}")
    print("models:")
    for n in names:
        print(f"  - {n}")
    print(f"runtimes: [{', '.join(args.runtimes)}]")
    print("iterations: 1\nwarmup: 0\ncell_timeout_s: 60")
    return 0


def _cell_outcome(c: dict) -> tuple[str, str]:
    """xbench's verdict on one cell: (outcome, reason)."""
    if c["status"] != "ok":
        return c["status"], (c.get("error") or "").split("\n")[0]
    e = c.get("expected")
    if e is None:
        return "not_compared", "no expected outputs"
    if e["within_tolerance"] is True:
        return "match", ""
    if e["within_tolerance"] is False:
        diff = "not finite" if e.get("max_abs") is None else f"{e['max_abs']:.3g}"
        return "mismatch", "; ".join(e.get("problems") or []) or f"max abs diff {diff}"
    return ("empty" if not e.get("problems") else "not_compared"), "; ".join(e.get("problems") or [])


def cmd_tally(args: argparse.Namespace) -> int:
    results = json.loads(Path(args.results).read_text())
    referee = json.loads(Path(args.referee).read_text())["cases"] if args.referee else {}
    order = ["match", "empty", "mismatch", "not_compared", "failed", "skipped", "pending"]
    runtimes: list[str] = []
    for c in results["cells"]:
        if c["runtime"] not in runtimes:
            runtimes.append(c["runtime"])
    for rt in runtimes:
        cells = [c for c in results["cells"] if c["runtime"] == rt]
        outcomes = [(c["model"], *_cell_outcome(c)) for c in cells]
        counts = Counter(o for _, o, _ in outcomes)
        print(f"{rt}: {len(cells)} cases: " + ", ".join(f"{k}={counts[k]}" for k in order if counts[k]))
        reasons = Counter((o, _message_key(why)) for _, o, why in outcomes if o not in ("match", "empty"))
        for (o, why), n in reasons.most_common(args.top):
            print(f"  {n:4d} {o}: {why}")
        if referee:
            passed = {name for name, r in referee.items() if r.get("outcome") == "pass"}
            mine = {m: o for m, o, _ in outcomes}
            ran = [m for m in passed if m in mine]
            good = sum(1 for m in ran if mine[m] in ("match", "empty"))
            matched = sum(1 for m in ran if mine[m] == "match")
            print(f"  of the {len(ran)} cases onnxruntime itself passes: {good} "
                  f"({100 * good / max(1, len(ran)):.1f} %) run and match on {rt} "
                  f"({matched} compared element by element, {good - matched} with empty outputs only)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("write", help="write node test cases as test folders")
    p.add_argument("out", help="output folder (one sub-folder per case)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="write only these cases")
    p.add_argument("--sample", metavar="FILE", help="write only the cases named in FILE")
    p.add_argument("--limit", type=int, help="write at most N of the selected cases")
    p.add_argument("-v", "--verbose", action="store_true", help="name each skipped case")
    p.set_defaults(func=cmd_write)

    p = sub.add_parser("referee", help="check case folders with Python onnxruntime (CPU)")
    p.add_argument("dir", help="folder holding case folders")
    p.add_argument("--json", metavar="OUT.json", help="write per-case outcomes here")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per case (default 60)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="check only these cases")
    p.add_argument("--top", type=int, default=12, help="how many common messages to print")
    p.add_argument("--progress", action="store_true", help="print progress to stderr")
    p.set_defaults(func=cmd_referee)

    p = sub.add_parser("scenario", help="print an xbench scenario running every case in DIR")
    p.add_argument("dir", help="folder holding case folders")
    p.add_argument("--name", default="onnx-node-cases", help="the scenario's name")
    p.add_argument("--runtimes", nargs="+", default=["ort-cpu", "tract-cpu"], help="runtimes to list")
    p.set_defaults(func=cmd_scenario)

    p = sub.add_parser("tally", help="count outcomes in an xbench results.json of node cases")
    p.add_argument("results", help="results.json of `xbench scenario` on the cases")
    p.add_argument("--referee", metavar="REF.json", help="referee --json output, for the pass share")
    p.add_argument("--top", type=int, default=12, help="how many common reasons to print")
    p.set_defaults(func=cmd_tally)

    p = sub.add_parser("sample", help="print a deterministic sample of passing case names")
    p.add_argument("--referee", required=True, metavar="REF.json", help="referee --json output")
    p.add_argument("--count", type=int, default=160, help="number of cases (default 160)")
    p.add_argument("--max-bytes", type=int, default=200_000,
                   help="skip cases whose folder is larger (default 200000)")
    p.add_argument("--per-dtype", type=int, default=4,
                   help="cases wanted per input dtype and per output dtype (default 4)")
    p.add_argument("--all-dtypes", action="store_true",
                   help="also allow float8/int4/complex/... cases (default: common dtypes only)")
    p.set_defaults(func=cmd_sample)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
