"""Generation over xbench's external runtime protocol (docs/runtime-protocol.md, *Generation*): the
`generate` message as a `GenerateCell`, what an adapter hands over (`Decoding`: a decoder whose
key/value cache stays in the framework between steps), and the loop every adapter shares
(`time_generations`): warm-ups, timed generations with the prefill and every step on their own
clock readings, greedy picks, the outputs file and the `generated` answer.

`protocol` re-exports these names; adapters use them as `protocol.GenerateCell`,
`protocol.time_generations` and so on. Like `protocol`, this module needs only the standard library
to be imported; numpy is needed once a generation runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

# The prompt file's tensors, each int64 [batch, prompt_len].
PROMPT_TENSORS = ("input_ids", "attention_mask", "position_ids")


@dataclass
class GenerateCell:
    """One `generate` message, with its prompt file read."""

    index: int
    warmup: int
    iterations: int
    new_tokens: int
    keep_logits: int
    prompt: dict[str, np.ndarray]  # input_ids, attention_mask, position_ids: int64 [batch, prompt_len]
    outputs: str

    @staticmethod
    def parse(msg: dict[str, Any]) -> GenerateCell:
        """The message's fields, checked, and its prompt file read (numpy arrays)."""
        import numpy as np

        from .protocol import AdapterError, load_arrays

        cell = GenerateCell(
            index=int(msg["index"]),
            warmup=int(msg.get("warmup") or 0),
            iterations=int(msg.get("iterations") or 0),
            new_tokens=int(msg.get("new_tokens") or 0),
            keep_logits=int(msg.get("keep_logits") or 0),
            prompt={},
            outputs=str(msg["outputs"]),
        )
        if cell.warmup < 0 or cell.iterations < 1 or cell.new_tokens < 1 or cell.keep_logits < 0:
            raise AdapterError(f"the generate message asks for warmup {cell.warmup}, iterations {cell.iterations}, new_tokens {cell.new_tokens}, keep_logits {cell.keep_logits}: "
                               "warmup and keep_logits must be 0 or more, iterations and new_tokens 1 or more")
        arrays = load_arrays(Path(msg["prompt"]))
        missing = [name for name in PROMPT_TENSORS if name not in arrays]
        if missing:
            raise AdapterError(f"{msg['prompt']}: the prompt file has no {', '.join(missing)} (it holds {', '.join(sorted(arrays)) or 'nothing'})")
        shape = arrays["input_ids"].shape
        for name in PROMPT_TENSORS:
            a = arrays[name]
            if a.dtype != np.int64 or a.ndim != 2 or a.shape != shape or 0 in a.shape:
                raise AdapterError(f"{msg['prompt']}: `{name}` is {a.dtype} {list(a.shape)}; the prompt's tensors are int64 [batch, prompt_len], all of one shape")
            cell.prompt[name] = a
        if cell.keep_logits > shape[0]:
            raise AdapterError(f"the generate message asks for the logits of {cell.keep_logits} rows of a batch of {shape[0]}")
        return cell


@dataclass
class GenerateResult:
    """The `generated` answer (times in milliseconds)."""

    prefill_ms: list[float]  # one per timed generation
    step_ms: list[list[float]]  # one list per timed generation, new_tokens - 1 each
    warmup_ms: float
    prepare_ms: float  # the adapter's preparation for the cell, untimed; time_generations leaves 0
    cache_bytes: int  # what the cache holds at the end of the last generation
    repeatable: bool  # every generation (warm-ups included) picked the same ids

    def message(self, index: int) -> dict[str, Any]:
        return {
            "type": "generated",
            "index": index,
            "prefill_ms": self.prefill_ms,
            "step_ms": self.step_ms,
            "warmup_ms": round(self.warmup_ms, 3),
            "prepare_ms": round(self.prepare_ms, 3),
            "cache_bytes": int(self.cache_bytes),
            "repeatable": bool(self.repeatable),
        }


class Decoding(Protocol):
    """A decoder whose key/value cache stays in the framework between steps, as an adapter hands it
    to `time_generations`. `prefill`, `step` and `pick` are inside the timed spans; `reset`,
    `host_logits` and `cache_bytes` never are."""

    def reset(self) -> None:
        """Empties the cache: the next call is a prefill."""

    def prefill(self, ids: np.ndarray, mask: np.ndarray, positions: np.ndarray) -> Any:
        """The whole prompt (numpy int64 [batch, prompt_len] each) with an empty cache; returns the
        last position's logits [batch, vocab] as the framework holds them."""

    def step(self, ids: np.ndarray, mask: np.ndarray, positions: np.ndarray) -> Any:
        """One new token per row on the cache: ids and positions [batch, 1], mask [batch, past + 1]
        (numpy int64); returns its logits [batch, vocab] as the framework holds them."""

    def pick(self, logits: Any) -> np.ndarray:
        """Greedy ids: the first index of each row's largest logit, as numpy int64 [batch] in host
        memory (the device synchronized)."""

    def host_logits(self, logits: Any, rows: int) -> np.ndarray:
        """The first `rows` rows of `logits` as numpy, float32 or float16 (bfloat16 as float32)."""

    def cache_bytes(self) -> int:
        """Bytes the cache holds now (a static, pre-allocated cache: its allocation)."""


@dataclass
class _Generation:
    ids: np.ndarray  # int64 [batch, new_tokens]
    prefill_ns: int
    step_ns: list[int]
    logits: list[np.ndarray]  # one [rows, vocab] per step, prefill first; empty unless asked for


def _picked(ids: Any, batch: int) -> np.ndarray:
    import numpy as np

    from .protocol import AdapterError

    if not isinstance(ids, np.ndarray) or ids.dtype != np.int64 or ids.shape != (batch,):
        what = f"{ids.dtype} {list(ids.shape)}" if isinstance(ids, np.ndarray) else type(ids).__name__
        raise AdapterError(f"the adapter's pick gave {what}, not numpy int64 ids [{batch}]")
    return ids


def _generate(cell: GenerateCell, dec: Decoding, keep_rows: int) -> _Generation:
    """One generation by the protocol's rules: a prefill, then new_tokens - 1 steps, each span from
    the ids in host memory to the picked ids in host memory, the step's mask and positions built
    inside it; logits rows copied out after the span."""
    import numpy as np

    clock = time.perf_counter_ns
    prompt_ids, mask, positions = (cell.prompt[name] for name in PROMPT_TENSORS)
    batch = prompt_ids.shape[0]
    ids = np.empty((batch, cell.new_tokens), dtype=np.int64)
    kept: list[np.ndarray] = []
    dec.reset()
    t0 = clock()
    logits = dec.prefill(prompt_ids, mask, positions)
    picked = dec.pick(logits)
    prefill_ns = clock() - t0
    ids[:, 0] = _picked(picked, batch)
    if keep_rows:
        kept.append(dec.host_logits(logits, keep_rows))
    # Rows are padded on the left: every row's last column is a real token, whose position the
    # first step's follows.
    last = positions[:, -1:].copy()
    one = np.ones((batch, 1), dtype=np.int64)
    step_ns: list[int] = []
    for k in range(1, cell.new_tokens):
        t0 = clock()
        step_ids = picked.reshape(batch, 1)
        mask = np.concatenate((mask, one), axis=1)
        last = last + 1
        logits = dec.step(step_ids, mask, last)
        picked = dec.pick(logits)
        step_ns.append(clock() - t0)
        ids[:, k] = _picked(picked, batch)
        if keep_rows:
            kept.append(dec.host_logits(logits, keep_rows))
    return _Generation(ids, prefill_ns, step_ns, kept)


def time_generations(cell: GenerateCell, dec: Decoding) -> GenerateResult:
    """`cell.warmup` untimed generations, then `cell.iterations` timed ones, each from an empty
    cache; writes the last timed generation's `ids` (and `logits` of its first `keep_logits` rows,
    every step) to `cell.outputs`; returns the `generated` answer with `prepare_ms` 0, for the
    adapter to fill in."""
    import numpy as np

    from .protocol import AdapterError, save_arrays

    first: np.ndarray | None = None
    repeatable = True

    def same(ids: np.ndarray) -> bool:
        nonlocal first
        if first is None:
            first = ids
        return bool(np.array_equal(first, ids))

    started = time.perf_counter_ns()
    for _ in range(cell.warmup):
        repeatable &= same(_generate(cell, dec, 0).ids)
    warmup_ms = (time.perf_counter_ns() - started) / 1e6
    prefill_ms: list[float] = []
    step_ms: list[list[float]] = []
    last: _Generation | None = None
    for i in range(cell.iterations):
        last = _generate(cell, dec, cell.keep_logits if i + 1 == cell.iterations else 0)
        repeatable &= same(last.ids)
        prefill_ms.append(last.prefill_ns / 1e6)
        step_ms.append([ns / 1e6 for ns in last.step_ns])
    assert last is not None  # iterations >= 1, checked by GenerateCell.parse
    if not all(s > 0 for s in prefill_ms) or not all(s > 0 for steps in step_ms for s in steps):
        raise AdapterError("a prefill or a step took no measurable time (the clock did not advance)")
    outputs: dict[str, np.ndarray] = {"ids": last.ids}
    if cell.keep_logits:
        outputs["logits"] = np.stack(last.logits)
    save_arrays(Path(cell.outputs), outputs)
    return GenerateResult(prefill_ms, step_ms, warmup_ms, 0.0, int(dec.cache_bytes()), repeatable)
