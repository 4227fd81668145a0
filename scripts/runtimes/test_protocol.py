"""Tests of protocol.py, the Python side of docs/runtime-protocol.md: the timing loop, the option
checks, the generation loop (generation.py) with a toy decoder, and the message loop as xbench
speaks to it (a small adapter run in a child process over
its standard input and output). Run with `python3 scripts/runtimes/test_protocol.py` (numpy and
safetensors needed); the Rust test suite runs it too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent.parent
if not __package__:  # run by path: the package `runtimes` is found in the folder above this file
    sys.path.insert(0, str(SCRIPTS))

from runtimes import protocol
from runtimes.protocol import AdapterError, Options


class TimeIterations(unittest.TestCase):
    def test_warmups_are_untimed_and_at_least_the_iterations_are_timed(self) -> None:
        calls = []
        timed = protocol.time_iterations(lambda: calls.append(1) or len(calls), warmup=2, iterations=3, min_time_s=None)
        self.assertEqual(len(calls), 5)
        self.assertEqual(len(timed.samples_ms), 3)
        self.assertEqual(timed.last, 5, "the outputs of the last timed iteration")
        self.assertTrue(all(s > 0 for s in timed.samples_ms))

    def test_min_time_keeps_timing_past_the_iterations(self) -> None:
        import time

        timed = protocol.time_iterations(lambda: time.sleep(0.01), warmup=0, iterations=1, min_time_s=0.05)
        # Each sleep takes 10 ms or more (more on a busy machine): past the one iteration asked for,
        # until 50 ms are timed, and no further than the iteration that reached them.
        self.assertGreaterEqual(len(timed.samples_ms), 2)
        self.assertGreaterEqual(sum(timed.samples_ms), 50.0)
        self.assertLess(sum(timed.samples_ms[:-1]), 50.0)


class OptionChecks(unittest.TestCase):
    def test_unknown_names_and_bad_values_are_refused_with_what_is_taken(self) -> None:
        with self.assertRaises(AdapterError) as caught:
            Options({"devce": "cuda"}, {"device": "cpu"})
        self.assertIn("unknown option(s) devce; this program takes: device", str(caught.exception))
        opts = Options({"device": " cuda ", "graph": "yes", "n": "x"}, {"device": "cpu", "graph": "false", "n": "", "seed": "0"})
        self.assertEqual(opts.text("device", ("cpu", "cuda")), "cuda")
        self.assertTrue(opts.flag("graph"))
        self.assertEqual(opts.integer("seed"), 0)
        for call, says in [(lambda: opts.text("device", ("cpu",)), "`cuda` is not one of cpu"), (lambda: opts.integer("n"), "`x` is not an integer")]:
            with self.assertRaises(AdapterError) as caught:
                call()
            self.assertIn(says, str(caught.exception))


ADAPTER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {scripts!r})
    from runtimes import protocol
    from runtimes.protocol import AdapterError, CellResult, Ready
    from runtimes.test_protocol import Toy

    class Doubler:
        def load(self, hello):
            opts = protocol.Options(hello.options, {{"fail": ""}})
            self.fail = opts.text("fail")
            if self.fail == "load":
                raise AdapterError("refused as asked")
            print("a library banner on standard output")  # must not reach the protocol channel
            ready = Ready("test", "1", "cpu", "fp32", [("cpu", 1)], "1 thread", "end-to-end: doubles x", "end-to-end", "end-to-end", "none")
            if self.fail != "no-generate":
                ready.generate, ready.generate_timer = True, "a toy decoder's step and its pick"
            return ready

        def run_cell(self, cell):
            if self.fail == "cell":
                raise ValueError("boom")
            x = protocol.load_arrays(cell.inputs)["x"]
            timed = protocol.time_iterations(lambda: x * 2, cell.warmup, cell.iterations, cell.min_time_s)
            protocol.save_arrays(cell.outputs, {{"y": timed.last}})
            return CellResult(timed.samples_ms, 0.0, timed.warmup_ms)

        def generate(self, cell):
            if self.fail == "generate":
                raise AdapterError("cannot generate as asked")
            answer = protocol.time_generations(cell, Toy())
            answer.prepare_ms = 1.5
            return answer

        def peak_device_mib(self):
            return None

    sys.exit(protocol.serve(Doubler()))
    """
)


class Toy:
    """A decoder whose next id is (last id + its position + 1) mod 7; its logits are 0 but for the
    next id's, which holds position + 1. It checks its cache against what it is fed and records
    every call. `drift_at`: the generation (counted from 1) whose ids are shifted by one."""

    VOCAB = 7

    def __init__(self, drift_at: int = 0) -> None:
        self.calls: list[tuple[str, Any, Any, Any]] = []
        self.past = 0
        self.generations = 0
        self.drift_at = drift_at

    def reset(self) -> None:
        self.past = 0
        self.generations += 1

    def _forward(self, kind: str, ids: Any, mask: Any, positions: Any) -> Any:
        import numpy as np

        batch, n = ids.shape
        assert mask.shape == (batch, self.past + n), (mask.shape, self.past, n)
        assert positions.shape == (batch, n) and ids.dtype == mask.dtype == positions.dtype == np.int64
        self.calls.append((kind, ids.copy(), mask.copy(), positions.copy()))
        self.past += n
        nxt = (ids[:, -1] + positions[:, -1] + 1 + (self.generations == self.drift_at)) % self.VOCAB
        logits = np.zeros((batch, self.VOCAB), dtype=np.float32)
        logits[np.arange(batch), nxt] = positions[:, -1] + 1
        return logits

    def prefill(self, ids: Any, mask: Any, positions: Any) -> Any:
        assert self.past == 0, "a prefill starts from an empty cache"
        return self._forward("prefill", ids, mask, positions)

    def step(self, ids: Any, mask: Any, positions: Any) -> Any:
        return self._forward("step", ids, mask, positions)

    def pick(self, logits: Any) -> Any:
        return logits.argmax(axis=1).astype("int64")

    def host_logits(self, logits: Any, rows: int) -> Any:
        return logits[:rows].copy()

    def cache_bytes(self) -> int:
        return self.past * 8


def toy_prompt() -> dict[str, Any]:
    import numpy as np

    # Row 1 has one pad on the left (id 0, mask 0, position 1).
    return {
        "input_ids": np.array([[3, 4, 5], [0, 2, 6]], dtype=np.int64),
        "attention_mask": np.array([[1, 1, 1], [0, 1, 1]], dtype=np.int64),
        "position_ids": np.array([[0, 1, 2], [1, 0, 1]], dtype=np.int64),
    }


class TimeGenerations(unittest.TestCase):
    def cell(self, tmp: Path, **counts: int) -> protocol.GenerateCell:
        fields = {"warmup": 2, "iterations": 3, "new_tokens": 4, "keep_logits": 1, **counts}
        return protocol.GenerateCell(index=0, prompt=toy_prompt(), outputs=str(tmp / "out.safetensors"), **fields)

    def tmp(self) -> Path:
        tmp = Path(tempfile.mkdtemp(prefix="xbench-protocol-test-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        return tmp

    def test_greedy_ids_counts_and_what_the_decoder_is_fed(self) -> None:
        import numpy as np

        tmp = self.tmp()
        toy = Toy()
        answer = protocol.time_generations(self.cell(tmp), toy)
        # Row 0: 5 at position 2 -> 1; 1 at 3 -> 5; 5 at 4 -> 3; 3 at 5 -> 2.
        # Row 1: 6 at position 1 -> 1; 1 at 2 -> 4; 4 at 3 -> 1; 1 at 4 -> 6.
        ids = np.array([[1, 5, 3, 2], [1, 4, 1, 6]])
        out = protocol.load_arrays(tmp / "out.safetensors")
        self.assertEqual(out["ids"].dtype, np.int64)
        np.testing.assert_array_equal(out["ids"], ids)
        self.assertEqual([c[0] for c in toy.calls], ["prefill", "step", "step", "step"] * 5, "2 warm-ups and 3 timed generations")
        self.assertEqual(len(answer.prefill_ms), 3)
        self.assertEqual([len(s) for s in answer.step_ms], [3, 3, 3])
        self.assertTrue(all(t > 0 for t in answer.prefill_ms + [s for steps in answer.step_ms for s in steps]))
        self.assertTrue(answer.repeatable)
        self.assertEqual(answer.cache_bytes, 6 * 8, "3 prompt columns and 3 steps")
        self.assertEqual(answer.prepare_ms, 0.0)
        # The last generation: the prompt as given, then each step's ids, mask and positions.
        prefill, *steps = toy.calls[-4:]
        for name, fed in zip(("input_ids", "attention_mask", "position_ids"), prefill[1:]):
            np.testing.assert_array_equal(fed, toy_prompt()[name])
        for k, (_, fed_ids, mask, positions) in enumerate(steps, start=1):
            np.testing.assert_array_equal(fed_ids, ids[:, k - 1 : k], "the ids picked last")
            np.testing.assert_array_equal(mask, np.concatenate((toy_prompt()["attention_mask"], np.ones((2, k), dtype=np.int64)), axis=1))
            np.testing.assert_array_equal(positions, np.array([[2 + k], [1 + k]]), "the prompt's last position + k")
        # Logits of the first row, every step: its id's logit holds the position it came from + 1.
        self.assertEqual(out["logits"].shape, (4, 1, Toy.VOCAB))
        self.assertEqual(out["logits"].dtype, np.float32)
        np.testing.assert_array_equal(out["logits"].argmax(axis=2)[:, 0], ids[0])
        np.testing.assert_array_equal(out["logits"].max(axis=2)[:, 0], [3, 4, 5, 6])

    def test_one_new_token_is_the_prefill_alone_and_no_logits_unless_asked(self) -> None:
        tmp = self.tmp()
        answer = protocol.time_generations(self.cell(tmp, warmup=0, iterations=2, new_tokens=1, keep_logits=0), Toy())
        self.assertEqual((len(answer.prefill_ms), answer.step_ms), (2, [[], []]))
        self.assertEqual(set(protocol.load_arrays(tmp / "out.safetensors")), {"ids"})

    def test_ids_that_change_between_generations_are_not_repeatable(self) -> None:
        for drift_at in (1, 3):  # a warm-up, a timed generation
            answer = protocol.time_generations(self.cell(self.tmp()), Toy(drift_at=drift_at))
            self.assertFalse(answer.repeatable, drift_at)
        self.assertTrue(protocol.time_generations(self.cell(self.tmp()), Toy(drift_at=9)).repeatable)

    def test_a_pick_that_is_not_int64_ids_per_row_is_refused(self) -> None:
        toy = Toy()
        toy.pick = lambda logits: logits.argmax(axis=1)[:1]  # type: ignore[method-assign]
        with self.assertRaises(AdapterError) as caught:
            protocol.time_generations(self.cell(self.tmp()), toy)
        self.assertIn("not numpy int64 ids [2]", str(caught.exception))

    def test_hello_carries_the_task_and_the_decoder_only_in_a_generation_scenario(self) -> None:
        base = {"type": "hello", "protocol": 1, "runtime": {"name": "t", "options": {}}, "model": {"name": "m", "dir": "/m", "onnx": "/m/model.onnx"}}
        plain = protocol.Hello.parse(base)
        self.assertEqual((plain.task, plain.decoder), ("", None))
        decoder = {"layers": 2, "kv_heads": 2, "head_dim": 16, "vocab": 259, "cache_type": "float32", "max_positions": None}
        generating = protocol.Hello.parse({**base, "task": "generate", "decoder": decoder})
        self.assertEqual((generating.task, generating.decoder), ("generate", decoder))

    def test_the_message_is_parsed_and_its_prompt_file_checked(self) -> None:
        import numpy as np

        tmp = self.tmp()
        protocol.save_arrays(tmp / "prompt.safetensors", toy_prompt())
        msg = {"type": "generate", "index": 4, "warmup": 1, "iterations": 3, "new_tokens": 8, "keep_logits": 2,
               "prompt": str(tmp / "prompt.safetensors"), "outputs": str(tmp / "out.safetensors")}
        cell = protocol.GenerateCell.parse(msg)
        self.assertEqual((cell.index, cell.warmup, cell.iterations, cell.new_tokens, cell.keep_logits), (4, 1, 3, 8, 2))
        np.testing.assert_array_equal(cell.prompt["position_ids"], toy_prompt()["position_ids"])
        for change, says in [({"keep_logits": 3}, "the logits of 3 rows of a batch of 2"), ({"iterations": 0}, "iterations and new_tokens 1 or more")]:
            with self.assertRaises(AdapterError) as caught:
                protocol.GenerateCell.parse({**msg, **change})
            self.assertIn(says, str(caught.exception))
        protocol.save_arrays(tmp / "prompt.safetensors", {**toy_prompt(), "position_ids": np.zeros((2, 3), dtype=np.int32)})
        with self.assertRaises(AdapterError) as caught:
            protocol.GenerateCell.parse(msg)
        self.assertIn("`position_ids` is int32 [2, 3]", str(caught.exception))


class MessageLoop(unittest.TestCase):
    def converse(self, options: dict[str, str], messages: list[dict]) -> tuple[list[dict], int, Path]:
        tmp = Path(tempfile.mkdtemp(prefix="xbench-protocol-test-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        program = tmp / "doubler.py"
        program.write_text(ADAPTER.format(scripts=str(SCRIPTS)))
        hello = {"type": "hello", "protocol": 1, "runtime": {"name": "t", "options": options},
                 "model": {"name": "m", "dir": str(tmp), "onnx": str(tmp / "m.onnx"), "inputs": [], "outputs": []}, "threads": None, "device": 0}
        lines = "".join(json.dumps(m) + "\n" for m in [hello, *messages])
        run = subprocess.run([sys.executable, "-P", str(program)], input=lines, capture_output=True, text=True, timeout=60, cwd=tmp)
        answers = [json.loads(line) for line in run.stdout.splitlines()]
        return answers, run.returncode, tmp

    def cell(self) -> dict:
        return {"type": "cell", "index": 0, "warmup": 1, "iterations": 3, "min_time_s": None, "inputs": "IN", "outputs": "OUT"}

    def test_cells_are_timed_and_outputs_written_and_failures_stay_in_their_cell(self) -> None:
        import numpy as np

        tmp = Path(tempfile.mkdtemp(prefix="xbench-protocol-test-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        np_in = tmp / "in.safetensors"
        protocol.save_arrays(np_in, {"x": np.ones((2, 2), dtype=np.float32)})
        program = tmp / "doubler.py"
        program.write_text(ADAPTER.format(scripts=str(SCRIPTS)))
        hello = {"type": "hello", "protocol": 1, "runtime": {"name": "t", "options": {}},
                 "model": {"name": "m", "dir": str(tmp), "onnx": str(tmp / "m.onnx"), "inputs": [], "outputs": []}, "threads": None, "device": 0}
        cell = {"type": "cell", "index": 0, "warmup": 1, "iterations": 3, "min_time_s": None, "inputs": str(np_in), "outputs": str(tmp / "out.safetensors")}
        lines = "".join(json.dumps(m) + "\n" for m in [hello, cell, {"type": "bye"}])
        run = subprocess.run([sys.executable, "-P", str(program)], input=lines, capture_output=True, text=True, timeout=60, cwd=tmp)
        answers = [json.loads(line) for line in run.stdout.splitlines()]
        self.assertEqual([a["type"] for a in answers], ["ready", "result", "done"], run.stderr)
        self.assertEqual(len(answers[1]["samples_ms"]), 3)
        self.assertTrue((protocol.load_arrays(tmp / "out.safetensors")["y"] == 2).all())
        self.assertIn("a library banner", run.stderr, "library output goes to standard error")

        answers, code, _ = self.converse({"fail": "load"}, [])
        self.assertEqual((code, [a["type"] for a in answers]), (1, ["error"]))
        self.assertEqual(answers[0]["message"], "refused as asked")
        answers, code, _ = self.converse({"colour": "red"}, [])
        self.assertIn("unknown option(s) colour", answers[0]["message"])
        answers, code, _ = self.converse({"fail": "cell"}, [self.cell(), {"type": "bye"}])
        self.assertEqual([a["type"] for a in answers], ["ready", "cell_error", "done"])
        self.assertEqual(answers[1]["index"], 0)

    def test_generate_is_answered_with_generated_or_cell_error_and_error_without_generation(self) -> None:
        import numpy as np

        tmp = Path(tempfile.mkdtemp(prefix="xbench-protocol-test-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        protocol.save_arrays(tmp / "prompt.safetensors", toy_prompt())
        gen = {"type": "generate", "index": 0, "warmup": 1, "iterations": 2, "new_tokens": 3, "keep_logits": 2,
               "prompt": str(tmp / "prompt.safetensors"), "outputs": str(tmp / "out.safetensors")}
        answers, code, _ = self.converse({}, [gen, {**gen, "index": 1, "prompt": str(tmp / "none.safetensors")}, {"type": "bye"}])
        self.assertEqual((code, [a["type"] for a in answers]), (0, ["ready", "generated", "cell_error", "done"]))
        self.assertEqual((answers[0]["generate"], answers[0]["generate_timer"]), (True, "a toy decoder's step and its pick"))
        done = answers[1]
        self.assertEqual((done["index"], len(done["prefill_ms"]), [len(s) for s in done["step_ms"]]), (0, 2, [2, 2]))
        self.assertEqual((done["prepare_ms"], done["cache_bytes"], done["repeatable"]), (1.5, 5 * 8, True))
        self.assertGreaterEqual(done["warmup_ms"], 0)
        np.testing.assert_array_equal(protocol.load_arrays(tmp / "out.safetensors")["ids"], [[1, 5, 3], [1, 4, 1]])
        self.assertEqual(answers[2]["index"], 1)
        self.assertIn("none.safetensors", answers[2]["message"])

        answers, code, _ = self.converse({"fail": "generate"}, [gen, {"type": "bye"}])
        self.assertEqual([a["type"] for a in answers], ["ready", "cell_error", "done"])
        self.assertEqual(answers[1]["message"], "cannot generate as asked")
        answers, code, _ = self.converse({"fail": "no-generate"}, [gen, {"type": "bye"}])
        self.assertNotIn("generate", answers[0])
        self.assertEqual((code, [a["type"] for a in answers]), (1, ["ready", "error"]))
        self.assertIn("does not generate", answers[1]["message"])

    def test_another_protocol_version_is_answered_with_the_one_spoken(self) -> None:
        tmp = Path(tempfile.mkdtemp(prefix="xbench-protocol-test-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        program = tmp / "doubler.py"
        program.write_text(ADAPTER.format(scripts=str(SCRIPTS)))
        run = subprocess.run([sys.executable, "-P", str(program)], input=json.dumps({"type": "hello", "protocol": 2}) + "\n", capture_output=True, text=True, timeout=60)
        answers = [json.loads(line) for line in run.stdout.splitlines()]
        self.assertEqual(answers[0]["type"], "error")
        self.assertIn("speaks protocol 1", answers[0]["message"])


if __name__ == "__main__":
    unittest.main()
