"""Tests of protocol.py, the Python side of docs/runtime-protocol.md: the timing loop, the option
checks, and the message loop as xbench speaks to it (a small adapter run in a child process over
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

    class Doubler:
        def load(self, hello):
            opts = protocol.Options(hello.options, {{"fail": ""}})
            self.fail = opts.text("fail")
            if self.fail == "load":
                raise AdapterError("refused as asked")
            print("a library banner on standard output")  # must not reach the protocol channel
            return Ready("test", "1", "cpu", "fp32", [("cpu", 1)], "1 thread", "end-to-end: doubles x", "end-to-end", "end-to-end", "none")

        def run_cell(self, cell):
            if self.fail == "cell":
                raise ValueError("boom")
            x = protocol.load_arrays(cell.inputs)["x"]
            timed = protocol.time_iterations(lambda: x * 2, cell.warmup, cell.iterations, cell.min_time_s)
            protocol.save_arrays(cell.outputs, {{"y": timed.last}})
            return CellResult(timed.samples_ms, 0.0, timed.warmup_ms)

        def peak_device_mib(self):
            return None

    sys.exit(protocol.serve(Doubler()))
    """
)


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
