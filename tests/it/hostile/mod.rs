//! What hostile_paths puts in place: a case folder holding a copy of the committed tiny
//! model (`models/m`, `models/other`), files outside the model's folder that must never be read
//! (`outside/`), an offline Hub cache, fake ONNX Runtime libraries compiled with `cc`, and a
//! folder of Python modules that write a marker when imported; and, for every hostile battery,
//! the check of a refusal.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub use crate::common::{repo, run_limited};

/// Checks a refusal: no panic, exit code `expected`, a `fix:` line, and every text of `says` in
/// standard error. `Err` says what was wrong.
pub fn refused_as(stderr: &str, code: i32, expected: i32, says: &[&str]) -> Result<(), String> {
    if stderr.contains("panicked") || code == 101 {
        return Err(format!("panicked:\n{stderr}"));
    }
    if code != expected {
        return Err(format!("exit code {code}, expected {expected}\n{stderr}"));
    }
    if !stderr.contains("\n  fix: ") {
        return Err(format!("no `fix:` line:\n{stderr}"));
    }
    let missing: Vec<&&str> = says.iter().filter(|s| !stderr.contains(**s)).collect();
    if !missing.is_empty() {
        return Err(format!("the error does not say {missing:?}:\n{stderr}"));
    }
    Ok(())
}

/// Text that only files outside the model's folder hold: it must never show up in what xbench says or writes.
pub const SECRET: &str = "SECRET-3f9a1c-NOT-TO-BE-READ";
/// The commit of the fake Hub cache.
pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

pub fn link(target: &Path, at: &Path) {
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, at).unwrap();
}

fn copy_tiny(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in ["model.onnx", "tokenizer.json", "model.yaml"] {
        std::fs::copy(repo("models/tiny-bert").join(f), to.join(f)).unwrap();
    }
}

/// What every case starts from: `models/m` and `models/other` (the tiny model), `outside/` with a
/// secret, a secret model.yaml and copies of the model's files, and `s.yaml` running `m` on tract.
pub fn base(root: &Path) {
    let m = root.join("models/m");
    copy_tiny(&m);
    std::fs::create_dir_all(root.join("models/other")).unwrap();
    for f in ["model.onnx", "tokenizer.json", "model.yaml"] {
        std::fs::hard_link(m.join(f), root.join("models/other").join(f)).unwrap();
    }
    let out = root.join("outside");
    write(&out.join("secret.txt"), &format!("{SECRET}\n"));
    write(&out.join("secret.yaml"), &format!("{SECRET}: {SECRET}\n"));
    std::fs::hard_link(m.join("tokenizer.json"), out.join("tokenizer.json")).unwrap();
    std::fs::hard_link(m.join("model.onnx"), out.join("model.onnx")).unwrap();
    write(&root.join("s.yaml"), "name: hostile\nmodels: [m]\nruntimes: [tract-cpu]\ninput_chars: [50]\nbatch_sizes: [1]\nwarmup: 1\niterations: 2\n");
}

/// `models/m/model.yaml` with `lines` (`{root}` stands for the case's folder).
pub fn model_yaml(root: &Path, lines: &str) {
    let text = format!("architecture: bert\nmax_positions: 512\n{}\n", lines.replace("{root}", &root.display().to_string()));
    write(&root.join("models/m/model.yaml"), &text);
}

/// A named pipe: reading it would wait for ever.
pub fn fifo(at: &Path) {
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    let ok = Command::new("mkfifo").arg(at).status().unwrap().success();
    assert!(ok, "mkfifo {}", at.display());
}

/// `models/m` with its weights in `weights.bin` beside the graph (the location is 11 bytes long,
/// so that it can be replaced in the file by another name of that length).
pub fn external_data(root: &Path) -> PathBuf {
    let m = root.join("models/m");
    std::fs::remove_file(m.join("model.onnx")).unwrap();
    xbench::onnx::tiny_bert::write_external(&Default::default(), &m, "weights.bin").unwrap();
    m
}

/// Rewrites the external data location `weights.bin` in `models/m/model.onnx` as `to` (11 bytes).
pub fn relocate_weights(root: &Path, to: &str) {
    assert_eq!(to.len(), "weights.bin".len());
    let path = root.join("models/m/model.onnx");
    let bytes = std::fs::read(&path).unwrap();
    let (from, to) = (b"weights.bin".as_slice(), to.as_bytes());
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    std::fs::write(path, out).unwrap();
}

/// A float32 `.npy` file of `shape`, filled with `v`.
pub fn npy(path: &Path, shape: &[usize], v: f32) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}", dims.join(", "));
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for _ in 0..shape.iter().product::<usize>() {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// `models/plain`: a model that takes no text, `x` float [2, 3] → Relu.
pub fn plain_model(root: &Path) {
    use xbench::onnx::builder::{self, DataType, Dim, GraphBuilder};
    let mut g = GraphBuilder::new("plain");
    let x = g.input("x", DataType::Float, &[Dim::Fixed(2), Dim::Fixed(3)]);
    g.node_named("Relu", &[&x], vec![], &["y"]);
    g.output("y", DataType::Float, &[Dim::Fixed(2), Dim::Fixed(3)]);
    std::fs::create_dir_all(root.join("models/plain")).unwrap();
    builder::write(&g.finish(17).unwrap(), &root.join("models/plain/model.onnx")).unwrap();
}

/// An offline Hub cache for `acme/tiny` at `hf/hub/models--acme--tiny`: files stored as blobs,
/// linked from `snapshots/SHA/` as the Hub's tools store them, and `refs/main`.
pub fn hub_cache(root: &Path) -> PathBuf {
    let dir = root.join("hf/hub/models--acme--tiny");
    let snap = dir.join("snapshots").join(SHA);
    let files: [(&str, Vec<u8>); 3] = [
        ("model.onnx", std::fs::read(repo("models/tiny-bert/model.onnx")).unwrap()),
        ("tokenizer.json", std::fs::read(repo("models/tiny-bert/tokenizer.json")).unwrap()),
        ("config.json", br#"{"model_type": "bert", "max_position_embeddings": 512}"#.to_vec()),
    ];
    for (i, (name, bytes)) in files.iter().enumerate() {
        let blob = dir.join(format!("blobs/blob{i}"));
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, bytes).unwrap();
        link(Path::new(&format!("../../blobs/blob{i}")), &snap.join(name));
    }
    write(&dir.join("refs/main"), SHA);
    snap
}

/// Replaces a snapshot entry of the Hub cache with a link to `target`.
pub fn relink(snap: &Path, name: &str, target: &Path) {
    std::fs::remove_file(snap.join(name)).unwrap();
    link(target, &snap.join(name));
}

/// Fake ONNX Runtime libraries, compiled with `cc` into `root/lib/`.
pub const FAKE_LIBS: &[(&str, &str)] = &[
    ("nullbase", "void *OrtGetApiBase(void) { return 0; }\n"),
    ("nosymbol", "int not_onnx_runtime(void) { return 1; }\n"),
    ("nullapi", "static const char *v(void) { return \"1.31.1\"; }\nstatic const void *api(unsigned n) { (void)n; return 0; }\nstruct b { const void *(*a)(unsigned); const char *(*v)(void); };\nstatic struct b base = { api, v };\nconst struct b *OrtGetApiBase(void) { return &base; }\n"),
    ("nullversion", "static const char *v(void) { return 0; }\nstatic const void *api(unsigned n) { (void)n; return 0; }\nstruct b { const void *(*a)(unsigned); const char *(*v)(void); };\nstatic struct b base = { api, v };\nconst struct b *OrtGetApiBase(void) { return &base; }\n"),
    ("oldversion", "static const char *v(void) { return \"1.16.3\"; }\nstatic const void *api(unsigned n) { return n <= 16 ? (const void *)&n : 0; }\nstruct b { const void *(*a)(unsigned); const char *(*v)(void); };\nstatic struct b base = { api, v };\nconst struct b *OrtGetApiBase(void) { return &base; }\n"),
];

pub fn fake_libs(root: &Path) {
    let dir = root.join("lib");
    std::fs::create_dir_all(&dir).unwrap();
    let cc = Command::new("cc").arg("--version").output();
    assert!(cc.is_ok_and(|o| o.status.success()), "these cases build fake libraries with a C compiler, and `cc` cannot be run here");
    for (name, source) in FAKE_LIBS {
        let c = dir.join(format!("{name}.c"));
        std::fs::write(&c, source).unwrap();
        let out = Command::new("cc").args(["-shared", "-fPIC", "-o"]).arg(dir.join(format!("lib{name}.so"))).arg(&c).output().unwrap();
        assert!(out.status.success(), "cc {name}.c: {}", String::from_utf8_lossy(&out.stderr));
    }
    write(&dir.join("libtext.so"), "not a library\n");
}

/// Plugin execution provider libraries that break ONNX Runtime's registration, compiled with `cc`
/// into `root/lib/`: one crashes (SIGSEGV), one aborts (SIGABRT), one hands back a garbage factory.
pub const PLUGIN_LIBS: &[(&str, &str)] = &[
    ("crashep", "void *CreateEpFactories(void) { *(volatile int *)0 = 1; return 0; }\nvoid *ReleaseEpFactory(void *f) { (void)f; return 0; }\n"),
    ("abortep", "#include <stdlib.h>\nvoid *CreateEpFactories(void) { abort(); }\nvoid *ReleaseEpFactory(void *f) { (void)f; return 0; }\n"),
    ("garbageep", "void *CreateEpFactories(const char *n, const void *b, const void *l, void **f, unsigned long max, unsigned long *num) { (void)n; (void)b; (void)l; (void)max; f[0] = (void *)0x10; *num = 1; return 0; }\nvoid *ReleaseEpFactory(void *f) { (void)f; return 0; }\n"),
];

/// The plugin libraries above in `root/lib/`, and ONNX Runtime's own library (the project copy,
/// fetched with `xbench setup ort` when it is not there yet) linked into `root/ort/`.
pub fn plugin_libs(root: &Path) {
    let dir = root.join("lib");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, source) in PLUGIN_LIBS {
        let c = dir.join(format!("{name}.c"));
        std::fs::write(&c, source).unwrap();
        let out = Command::new("cc").args(["-shared", "-fPIC", "-o"]).arg(dir.join(format!("lib{name}.so"))).arg(&c).output().unwrap();
        assert!(out.status.success(), "cc {name}.c: {}", String::from_utf8_lossy(&out.stderr));
    }
    let ort = repo(".xbench/onnxruntime-1.31.1");
    if !ort.is_dir() {
        let setup = crate::common::xbench().args(["setup", "ort"]).env("XBENCH_HOME", repo(".xbench")).output().unwrap();
        assert!(setup.status.success(), "{}", String::from_utf8_lossy(&setup.stderr));
    }
    std::fs::create_dir_all(root.join("ort")).unwrap();
    for e in std::fs::read_dir(&ort).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::hard_link(&p, root.join("ort").join(p.file_name().unwrap())).or_else(|_| std::fs::copy(&p, root.join("ort").join(p.file_name().unwrap())).map(|_| ())).unwrap();
        }
    }
}

/// Python modules that write `MARKER-<module>` into the case folder when imported, a `python3`
/// that writes one when run, and a check that the trap springs for Python run the
/// ordinary way (from this folder, with `PYTHONPATH=.`).
pub fn python_trap(root: &Path) {
    for module in ["onnxruntime", "numpy", "sitecustomize", "usercustomize", "pip", "zipfile"] {
        let marker = root.join(format!("MARKER-{module}"));
        write(&root.join(format!("{module}.py")), &format!("open({:?}, 'a').write('imported')\n", marker.display().to_string()));
    }
    // A `python3` here, found only if a relative PATH entry were looked up from this folder.
    write(&root.join("python3"), &format!("#!/bin/sh\necho ran > '{}'\nexit 1\n", root.join("MARKER-python3").display()));
    Command::new("chmod").arg("+x").arg(root.join("python3")).status().unwrap();
    let sprung = Command::new("python3").current_dir(root).env("PYTHONPATH", ".").args(["-c", "import onnxruntime"]).env("PATH", std::env::var("PATH").unwrap()).status();
    // The python3 of the trap is not on this PATH, so the real one runs and imports the trap's modules.
    assert!(sprung.is_ok() && root.join("MARKER-sitecustomize").is_file() && root.join("MARKER-onnxruntime").is_file(), "the trap is armed");
    for e in std::fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with("MARKER-") {
            std::fs::remove_file(p).unwrap();
        }
    }
}

/// A wheel of "onnxruntime 1.31.1" whose library is text, in `root/wheels/`, for pip to find
/// offline (`PIP_NO_INDEX=1 PIP_FIND_LINKS=root/wheels`).
pub fn fake_wheel(root: &Path) {
    let dir = root.join("wheels");
    std::fs::create_dir_all(&dir).unwrap();
    let code = "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n    z.writestr('onnxruntime/capi/libonnxruntime.so.1.31.1', 'not a library')\n    z.writestr('onnxruntime-1.31.1.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: onnxruntime\\nVersion: 1.31.1\\n')\n    z.writestr('onnxruntime-1.31.1.dist-info/WHEEL', 'Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')\n    z.writestr('onnxruntime-1.31.1.dist-info/RECORD', '')\n";
    let tmp = tempfile::tempdir().unwrap();
    let ok = Command::new("python3").current_dir(tmp.path()).args(["-I", "-c", code]).arg(dir.join("onnxruntime-1.31.1-py3-none-any.whl")).status().unwrap().success();
    assert!(ok, "the fake wheel is written");
}

/// An external runtime beside the scenario: imports `numpy` (the folder's `numpy.py` must not be
/// the one found), then refuses the model, so that its cells fail with its reason.
pub const REFUSING_PROGRAM: &str = "import json, sys\ntry:\n    import numpy\nexcept ImportError:\n    pass\nsys.stdin.readline()\nprint(json.dumps({'type': 'error', 'message': 'this program refuses every model'}), flush=True)\n";

/// The same, as an executable shell script named `prog` in the case folder.
pub fn refusing_prog(root: &Path) {
    let p = root.join("prog");
    write(&p, &format!("#!/bin/sh\necho ran > '{}'\nread line\necho '{{\"type\": \"error\", \"message\": \"prog refuses every model\"}}'\n", root.join("ran-prog").display()));
    Command::new("chmod").arg("+x").arg(&p).status().unwrap();
}
