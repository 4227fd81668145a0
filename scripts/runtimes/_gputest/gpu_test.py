"""Temporary: runs torch_hf.py / ort_python.py configurations on the GPU machine and prints a summary."""
import json, os, statistics, sys, time, traceback
from pathlib import Path
import numpy as np, onnxruntime as ort
sys.path.insert(0, str(Path(__file__).resolve().parent))
import driver as d

OUT = Path(os.environ.get("OUT", "/tmp/out"))
LOG = open(OUT / "gpu_results.txt", "a")
def say(*a):
    s = " ".join(str(x) for x in a); print(s, flush=True); LOG.write(s + "\n"); LOG.flush()

def run_set(folder, feeds_spec, configs, iters=20, warmup=5, prog="torch_hf.py", timeout=300):
    model = d.model_info(folder)
    names = [i["name"] for i in model["inputs"]]
    feeds = [d.make_feed(folder, b, names, max_len=m) for b, m in feeds_spec]
    ref = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    onames = [o.name for o in ref.get_outputs()]
    refs = [dict(zip(onames, ref.run(None, f))) for f in feeds]
    for opts in configs:
        t = time.monotonic()
        try:
            r = d.run(d.REPO / "scripts/runtimes" / prog, None, model, dict(opts), feeds, Path("/tmp/xscratch"), warmup=warmup, iterations=iters, threads=None, tag="gpu", timeout=timeout)
        except Exception:
            say("   driver failed", traceback.format_exc()[-800:]); continue
        say(f"== {folder.name} {prog} {opts}  ({time.monotonic()-t:.0f} s)")
        if not r["ready"]:
            say("   NO READY", str(r["events"])[:600], "| stderr:", r["stderr"][-1200:]); continue
        rd = r["ready"]
        say("   ready:", json.dumps({k: rd.get(k) for k in ("engine", "version", "device", "precision", "placement", "threads", "weights", "load_ms")}))
        say("   timer:", rd.get("timer")); say("   notes:", rd.get("notes"))
        for c in r["cells"]:
            a = c.get("answer", {})
            if a.get("type") != "result":
                say("   cell", c.get("index"), "FAILED", str(c)[:500], r["stderr"][-1500:]); continue
            rf = refs[c["index"]]
            diffs = {k: f'{float(np.max(np.abs(c["outputs"][k].astype(np.float64) - rf[k]))):.3g}' for k in onames}
            s = a["samples_ms"]
            say(f"   cell {c['index']} {tuple(feeds[c['index']]['input_ids'].shape)} problems={c['problems']} n={len(s)} median={statistics.median(s):.4f} min={min(s):.4f} ms prepare={a['prepare_ms']:.0f} ms maxdiff={diffs} dtypes={sorted(set(c['dtypes'].values()))}")
        say("   done:", r["done"], "exit", r.get("exit"))
        if "Traceback" in r["stderr"] or "Warning" in r["stderr"]:
            say("   stderr tail:", r["stderr"][-1000:])

which = sys.argv[1]
tiny = d.REPO / "models/tiny-bert"
if which == "tiny":
    cells = [(1, None), (4, None), (2, 8)]
    run_set(tiny, cells, [{}], prog="ort_python.py")
    run_set(tiny, cells, [{"provider": "cuda"}], prog="ort_python.py")
    run_set(tiny, cells, [
        {"device": "cuda"},
        {"device": "cuda", "tf32": "true"},
        {"device": "cuda", "attention": "sdpa"},
        {"device": "cuda", "dtype": "fp16", "attention": "sdpa"},
        {"device": "cuda", "dtype": "bf16", "attention": "sdpa"},
        {"device": "cuda", "cuda_graph": "true"},
        {"device": "cuda", "dtype": "fp16", "attention": "sdpa", "cuda_graph": "true"},
        {"device": "cuda", "dtype": "fp16", "attention": "sdpa", "compile": "reduce-overhead"},
        {"device": "cuda", "compile": "default", "cuda_graph": "true"},
        {"device": "cuda", "compile": "reduce-overhead", "cuda_graph": "true"},
    ])
elif which == "base":
    folder = Path(sys.argv[2])
    cells = [(1, 16), (32, None)]
    run_set(folder, cells, [
        {"device": "cuda"},
        {"device": "cuda", "dtype": "fp16", "attention": "sdpa"},
        {"device": "cuda", "dtype": "fp16", "attention": "sdpa", "cuda_graph": "true"},
        {"device": "cuda", "dtype": "bf16", "attention": "sdpa", "cuda_graph": "true"},
    ])
    run_set(folder, cells, [{}], prog="ort_python.py")
