"""Peak memory (ratio to the ONNX file), load time and mean latency per build, from measure.sh's folders."""
import json, statistics, sys
from pathlib import Path

out = Path(sys.argv[1])
for variant in sys.argv[2:]:
    name = variant.split("=")[0]
    rows = {}
    for f in sorted((out / name).glob("*/results.json")):
        r = json.loads(f.read_text())
        scen = f.parent.name.rsplit("-", 1)[0]
        size = r["models"][0]["onnx_bytes"]
        for g in r["groups"]:
            key = (scen, g["runtime"])
            d = rows.setdefault(key, {"peak": [], "load": [], "cells": {}, "prepare": []})
            d["peak"].append(g["peak_rss_mib"] * 2**20 / size)
            d["load"].append(g["load_ms"])
            for c in r["cells"]:
                if c["runtime"] == g["runtime"] and c["summary"]:
                    d["cells"].setdefault((c["chars"], c["batch"]), []).append(c["summary"]["mean_ms"])
                    d["prepare"].append(c["prepare_ms"] or 0.0)
    for (scen, rt), d in sorted(rows.items()):
        cells = " ".join(f"{ch}x{b}: {statistics.median(v):.1f}" for (ch, b), v in sorted(d["cells"].items()))
        prep = statistics.median(d["prepare"]) if d["prepare"] else 0.0
        print(f"{name:8} {scen:6} {rt:10} peak {min(d['peak']):.2f}-{max(d['peak']):.2f}x  load {statistics.median(d['load']):6.0f} ms  prepare {prep:5.0f} ms/cell  mean ms (median of {len(d['load'])} runs) {cells}")
