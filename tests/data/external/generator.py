#!/usr/bin/env python3
"""xbench test program (external runtime protocol 1, generation): generates with an optimum-layout
ONNX decoder (key/value cache inputs `past_key_values.N.key/value`, outputs `logits` and
`present.N.key/value`) on Python onnxruntime, its cache kept as numpy arrays between steps, through
`scripts/runtimes/protocol.py`'s `time_generations`. Plain `cell` messages are refused.

Option `bend` makes it break one rule:
  part         row 0's fifth new token (picked at the fourth step) is changed, so the ids part there;
  steps        one step time fewer than asked for in the last timed generation;
  ids          `ids` written with one new token too few;
  range        row 0's first id written as the vocabulary size;
  no-generate  `ready` without `"generate": true`.
Needs numpy, safetensors and onnxruntime.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))

from runtimes import protocol
from runtimes.protocol import AdapterError, Ready


class OnnxDecoder:
    """protocol.Decoding over an onnxruntime session; the cache is the last step's `present.*`."""

    def __init__(self, session, layers: int, heads: int, head_dim: int, bend: str) -> None:
        self.session, self.layers, self.heads, self.head_dim, self.bend = session, layers, heads, head_dim, bend
        self.cache: dict = {}
        self.steps = 0

    def reset(self) -> None:
        self.steps = 0
        self.cache = {}

    def _run(self, ids, mask, positions):
        import numpy as np

        batch = ids.shape[0]
        feeds = {"input_ids": ids, "attention_mask": mask, "position_ids": positions}
        for n in range(self.layers):
            for kv in ("key", "value"):
                past = self.cache.get(f"{n}.{kv}")
                feeds[f"past_key_values.{n}.{kv}"] = past if past is not None else np.zeros((batch, self.heads, 0, self.head_dim), dtype=np.float32)
        outputs = self.session.run(None, feeds)
        named = dict(zip([o.name for o in self.session.get_outputs()], outputs))
        self.cache = {f"{n}.{kv}": named[f"present.{n}.{kv}"] for n in range(self.layers) for kv in ("key", "value")}
        return named["logits"][:, -1, :]

    def prefill(self, ids, mask, positions):
        return self._run(ids, mask, positions)

    def step(self, ids, mask, positions):
        self.steps += 1
        return self._run(ids, mask, positions)

    def pick(self, logits):
        ids = logits.argmax(axis=1)
        if self.bend == "part" and self.steps == 4:
            ids[0] = (ids[0] + 1) % logits.shape[1]
        return ids

    def host_logits(self, logits, rows: int):
        return logits[:rows].copy()

    def cache_bytes(self) -> int:
        return sum(a.nbytes for a in self.cache.values())


class Generator:
    def load(self, hello: protocol.Hello) -> Ready:
        import onnxruntime as ort

        opts = protocol.Options(hello.options, {"bend": ""})
        self.bend = opts.text("bend", ("", "part", "steps", "ids", "range", "no-generate"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(hello.model.onnx), options, providers=["CPUExecutionProvider"])
        past = next(i for i in self.session.get_inputs() if i.name == "past_key_values.0.key")
        layers = sum(1 for i in self.session.get_inputs() if i.name.endswith(".key"))
        self.decoder = OnnxDecoder(self.session, layers, past.shape[1], past.shape[3], self.bend)
        ready = Ready("onnxruntime-python", ort.__version__, protocol.cpu_name(), "fp32", [("cpu", 1)], "intra-op 1",
                      "generation only", "end-to-end", "end-to-end", "none")
        if self.bend != "no-generate":
            ready.generate = True
            ready.generate_timer = ("a prefill or step: numpy int64 ids, mask and positions fed with the numpy cache to session.run, "
                                    "the last position's logits' argmax in numpy; the cache stays numpy arrays")
        return ready

    def run_cell(self, cell: protocol.Cell) -> protocol.CellResult:
        raise AdapterError("this program only generates")

    def generate(self, cell: protocol.GenerateCell) -> protocol.GenerateResult:
        started = time.perf_counter_ns()
        self.decoder.reset()
        prepare_ms = protocol.elapsed_ms(started)
        answer = protocol.time_generations(cell, self.decoder)
        answer.prepare_ms = prepare_ms
        if self.bend == "steps":
            answer.step_ms[-1].pop()
        if self.bend in ("ids", "range"):
            arrays = protocol.load_arrays(Path(cell.outputs))
            if self.bend == "ids":
                arrays["ids"] = arrays["ids"][:, :-1]
            else:
                arrays["ids"][0, 0] = arrays["logits"].shape[2]
            protocol.save_arrays(Path(cell.outputs), arrays)
        return answer

    def peak_device_mib(self):
        return None


sys.exit(protocol.serve(Generator()))
