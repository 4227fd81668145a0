#!/usr/bin/env python3
"""Where each run's wall time went, one Markdown row per results.json (reports/gpu-h200, P3).

    scripts/gpu/p3_table.py runs/p3-baseline-1 runs/p3-new-1 ...

total, set-up and the loading phase come from the run's `wall`; per group its load and first run;
warm-ups and timed runs are the cells' own; "in cells" is the rest of the cells' wall time (inputs
made, outputs converted); "between" is what the groups took beyond their cells (workers ending,
results written between groups)."""
import json
import sys


def row(path):
    with open(f"{path}/results.json") as file:
        r = json.load(file)
    w, cells, groups = r["wall"], r["cells"], r["groups"]
    timed = sum(sum(c["samples_ms"]) for c in cells) / 1e3
    warm = sum((c.get("warmup_ms") or 0) + (c.get("prepare_ms") or 0) for c in cells) / 1e3
    wall = sum(c.get("wall_ms") or 0 for c in cells) / 1e3
    loads = "–" if w.get("loads_ms") is None else f"{w['loads_ms'] / 1e3:.2f}"
    each = ", ".join(f"{g['load_ms'] / 1e3:.2f}" for g in groups)
    first = ", ".join(f"{(g.get('first_run_ms') or 0) / 1e3:.2f}" for g in groups) if any(g.get("first_run_ms") for g in groups) else "–"
    energy = sum(1 for c in cells if c.get("energy_mj_per_inference") is not None)
    return (f"| `{path.rstrip('/').split('/')[-1]}` | {w['total_ms'] / 1e3:.2f} | {w['setup_ms'] / 1e3:.2f} | {loads} | {each} | {first} "
            f"| {warm:.2f} | {timed:.2f} | {wall - warm - timed:.2f} | {w['groups_ms'] / 1e3 - wall:.2f} | {energy} |")


print("| run | total s | set-up | loading phase | each load | each first run | warm-ups | timed runs | in cells | between | cells with energy |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for p in sys.argv[1:]:
    print(row(p))
