"""Steps of scripts/gpu/lease.sh that depend on earlier results, so that one command on the GPU
machine can run the whole sequence:

  plan_next.py filter SCENARIO MODELS_DIR OUT
      SCENARIO without the models that have no ONNX file under MODELS_DIR (variants that could not
      be built), written to OUT (beside SCENARIO, so that its relative paths still hold).
  plan_next.py variants RESULTS CELL RUNTIME
      prints the fastest model of a p2-variants run in cell CHARSxBATCH on RUNTIME whose outputs
      agree with the fp32 model's (sibling comparison) and with the reference runtime's.
  plan_next.py rename SCENARIO FROM TO OUT
      SCENARIO with model FROM replaced by TO.
  plan_next.py options RESULTS CELL MODEL OPTIONS_SCENARIO FRAMEWORKS OUT
      adds to FRAMEWORKS, as `ort-best-graph` (end to end) and `ort-best-graph-device`, the provider
      options of the p2-options series that was fastest on MODEL in CELL, when it beat the
      series without options by more than both intervals; else writes FRAMEWORKS unchanged.
  plan_next.py table RESULTS
      prints each cell's mean, 95% interval and agreement, one line per cell.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def load(path: str) -> dict:
    return json.loads(Path(path).read_text())


def cell_key(text: str) -> tuple[int, int]:
    chars, batch = text.lower().split("x")
    return int(chars), int(batch)


def agrees(cell: dict) -> bool:
    a, s = cell.get("agreement"), cell.get("sibling_agreement")
    if a is not None and a.get("within_tolerance") is False:
        return False
    return s is None or s.get("within_tolerance") is not False


def ok_cells(results: dict, key: tuple[int, int]):
    for c in results["cells"]:
        if c["status"] == "ok" and (c["chars"], c["batch"]) == key and c.get("summary"):
            yield c


def write_yaml(doc: dict, out: str, source: str) -> None:
    mark = "# (written by scripts/gpu/plan_next.py)\n"
    head = "".join(line for line in Path(source).read_text().splitlines(keepends=True) if line.startswith("#") and line != mark)
    Path(out).write_text(head + mark + yaml.safe_dump(doc, sort_keys=False, width=200))


def main(argv: list[str]) -> int:
    cmd, args = argv[0], argv[1:]
    if cmd == "filter":
        scenario, models_dir, out = args
        doc = yaml.safe_load(Path(scenario).read_text())
        present = [m for m in doc["models"] if (Path(models_dir) / m / "model.onnx").is_file()]
        dropped = [m for m in doc["models"] if m not in present]
        doc["models"] = present
        write_yaml(doc, out, scenario)
        print(f"{out}: {len(present)} models" + (f" (left out, not built: {', '.join(dropped)})" if dropped else ""))
    elif cmd == "variants":
        results, cell, runtime = args
        best = None
        for c in ok_cells(load(results), cell_key(cell)):
            if c["runtime"] == runtime and c.get("sibling_agreement") and agrees(c) and (best is None or c["summary"]["mean_ms"] < best["summary"]["mean_ms"]):
                best = c
        if best is None:
            print("bert-base-uncased-ts-fused-fp16")
            print("no variant ran and agreed: keeping bert-base-uncased-ts-fused-fp16", file=sys.stderr)
        else:
            print(best["model"])
            print(f"fastest agreeing variant: {best['model']} {best['summary']['mean_ms']:.3f} ms", file=sys.stderr)
    elif cmd == "rename":
        scenario, old, new, out = args
        doc = yaml.safe_load(Path(scenario).read_text())
        doc["models"] = [new if m == old else m for m in doc["models"]]
        write_yaml(doc, out, scenario)
    elif cmd == "options":
        results, cell, model, options_scenario, frameworks, out = args
        cells = {c["runtime"]: c for c in ok_cells(load(results), cell_key(cell)) if c["model"] == model and agrees(c)}
        doc = yaml.safe_load(Path(frameworks).read_text())
        base = cells.get("device-graph")
        best = min(cells.values(), key=lambda c: c["summary"]["mean_ms"], default=None)
        if base and best and best["runtime"] != "device-graph":
            lo_best = best["summary"]["mean_ci95_ms"][1]
            hi_base = base["summary"]["mean_ci95_ms"][0]
            entries = {e["name"]: e for e in yaml.safe_load(Path(options_scenario).read_text())["runtimes"] if isinstance(e, dict)}
            opts = entries[best["runtime"]].get("options", {})
            if lo_best < hi_base and opts:
                doc["runtimes"] += [
                    {"name": "ort-best-graph", "runtime": "ort-cuda", "options": dict(opts), "session": {"io": "cuda-graph"}},
                    {"name": "ort-best-graph-device", "runtime": "ort-cuda", "options": dict(opts), "session": {"io": "cuda-graph", "timing": "device-resident"}},
                ]
                print(f"{best['runtime']} ({opts}) beat device-graph: {best['summary']['mean_ms']:.3f} vs {base['summary']['mean_ms']:.3f} ms")
            else:
                print(f"no option beat device-graph beyond the intervals (fastest {best['runtime']})")
        else:
            print("device-graph was fastest, or the cells are missing: no options added")
        write_yaml(doc, out, frameworks)
    elif cmd == "table":
        (results,) = args
        for c in load(results)["cells"]:
            s = c.get("summary") or {}
            a, sib = c.get("agreement") or {}, c.get("sibling_agreement") or {}
            ci = s.get("mean_ci95_ms") or [float("nan")] * 2
            mean = f"{s['mean_ms']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if s else "-"
            ref = f"vs {a.get('reference')} {a.get('max_abs', float('nan')):.2e} {'ok' if a.get('within_tolerance') else 'DIFF'}" if a else ""
            sb = f"vs {sib.get('sibling')} {sib.get('max_abs') or float('nan'):.2e} {'ok' if sib.get('within_tolerance') else 'DIFF'}" if sib else ""
            err = (c.get("error") or "").splitlines()[0][:160] if c.get("error") else ""
            print(f"{c['model']:42} {c['runtime']:24} {c['chars']:>4}x{c['batch']:<3} {c['status']:7} {mean:28} {ref} {sb} {err}")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
