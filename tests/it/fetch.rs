//! `xbench fetch` and `hf:` scenario entries through the real binary, against a Hub served here on
//! 127.0.0.1: the repository API and `/{repo}/resolve/{revision}/{file}` downloads with the headers
//! the Hub sends (ETag or X-Linked-Etag, X-Repo-Commit, Content-Range for ranged requests, a
//! redirect to a file store for large files), with the committed tiny model as the content.
//! Every test has its own Hub cache (HF_HOME) and models folder.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use xbench::results::{read_results, Status};
use xbench::runtimes::RuntimeId;

use crate::common;

const MAIN_SHA: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f80912a3b4c5";
const V1_SHA: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c";

/// One repository: its revisions (branch or tag → commit) and files (path → bytes), the same at every revision.
#[derive(Clone)]
struct HubRepo {
    id: String,
    revisions: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>)>,
}

impl HubRepo {
    fn new(id: &str, files: Vec<(&str, Vec<u8>)>) -> HubRepo {
        HubRepo {
            id: id.into(),
            revisions: vec![("main".into(), MAIN_SHA.into()), ("v1.0".into(), V1_SHA.into())],
            files: files.into_iter().map(|(p, b)| (p.to_string(), b)).collect(),
        }
    }

    fn sha(&self, rev: &str) -> Option<&str> {
        self.revisions.iter().find(|(name, sha)| name == rev || sha == rev).map(|(_, sha)| sha.as_str())
    }
}

/// A Hub on 127.0.0.1 that records every request line it receives.
struct FakeHub {
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeHub {
    fn start(repos: Vec<HubRepo>) -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s, a) = (log.clone(), stop.clone(), addr.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = serve(stream, &repos, &l, &a);
                }
            }
        });
        FakeHub { addr, log, stop, thread: Some(thread) }
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.log.lock().unwrap().clear();
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A content hash to serve as ETag (FNV-1a, 64 bits, and the length).
fn etag(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    format!("{h:016x}{:08x}", bytes.len())
}

fn serve(mut stream: TcpStream, repos: &[HubRepo], log: &Mutex<Vec<String>>, addr: &str) -> std::io::Result<()> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    let target = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    log.lock().unwrap().push(format!("GET {target}"));

    let reply = |stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]| -> std::io::Result<()> {
        let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        stream.flush()
    };
    let error = |stream: &mut TcpStream, status: &str, code: &str, msg: &str| {
        let body = format!("{{\"error\":\"{msg}\"}}");
        reply(stream, status, &[("X-Error-Code", code.into()), ("X-Error-Message", msg.into()), ("Content-Type", "application/json".into())], body.as_bytes())
    };
    // The file itself, whole or the byte range asked for.
    let send = |stream: &mut TcpStream, bytes: &[u8], mut headers: Vec<(&str, String)>| -> std::io::Result<()> {
        let total = bytes.len();
        match range.as_deref().and_then(|r| r.strip_prefix("bytes=")).and_then(|r| r.split_once('-')) {
            Some((a, b)) => {
                let start: usize = a.parse().unwrap_or(0);
                let end = if b.is_empty() { total.saturating_sub(1) } else { b.parse::<usize>().unwrap_or(total - 1).min(total - 1) };
                headers.push(("Content-Range", format!("bytes {start}-{end}/{total}")));
                reply(stream, "206 Partial Content", &headers, &bytes[start.min(total)..(end + 1).min(total)])
            }
            None => reply(stream, "200 OK", &headers, bytes),
        }
    };

    if let Some(rest) = target.strip_prefix("/api/models/") {
        let (id, rev) = rest.rsplit_once("/revision/").unwrap_or((rest, "main"));
        let rev = rev.replace("%2F", "/");
        let Some(repo) = repos.iter().find(|r| r.id == id) else {
            return error(&mut stream, "401 Unauthorized", "RepoNotFound", "Repository Not Found");
        };
        let Some(sha) = repo.sha(&rev) else {
            return error(&mut stream, "404 Not Found", "RevisionNotFound", "Invalid rev id");
        };
        let siblings: Vec<String> = repo.files.iter().map(|(p, _)| format!("{{\"rfilename\":\"{p}\"}}")).collect();
        let body = format!("{{\"id\":\"{id}\",\"modelId\":\"{id}\",\"sha\":\"{sha}\",\"private\":false,\"siblings\":[{}]}}", siblings.join(","));
        return reply(&mut stream, "200 OK", &[("Content-Type", "application/json".into())], body.as_bytes());
    }
    if let Some(tag) = target.strip_prefix("/cdn/") {
        let found = repos.iter().flat_map(|r| &r.files).find(|(_, b)| etag(b) == tag);
        return match found {
            Some((_, bytes)) => send(&mut stream, bytes, vec![("ETag", format!("\"{tag}\""))]),
            None => error(&mut stream, "404 Not Found", "EntryNotFound", "no such blob"),
        };
    }
    let Some((id, rest)) = target.trim_start_matches('/').split_once("/resolve/") else {
        return error(&mut stream, "404 Not Found", "", "not found");
    };
    let Some(repo) = repos.iter().find(|r| r.id == id) else {
        return error(&mut stream, "401 Unauthorized", "RepoNotFound", "Repository Not Found");
    };
    let (rev, path) = rest.split_once('/').unwrap_or((rest, ""));
    let Some(sha) = repo.sha(rev) else {
        return error(&mut stream, "404 Not Found", "RevisionNotFound", "Invalid rev id");
    };
    let Some((_, bytes)) = repo.files.iter().find(|(p, _)| p == path) else {
        return error(&mut stream, "404 Not Found", "EntryNotFound", "Entry not found");
    };
    let tag = etag(bytes);
    if path.ends_with(".onnx") || path.ends_with(".onnx_data") {
        // Large files live in a file store: the Hub answers with their hash and a redirect.
        return reply(
            &mut stream,
            "302 Found",
            &[
                ("Location", format!("{addr}/cdn/{tag}")),
                ("X-Linked-Etag", format!("\"{tag}\"")),
                ("X-Linked-Size", bytes.len().to_string()),
                ("X-Repo-Commit", sha.to_string()),
                ("ETag", "\"pointer-file-etag\"".into()),
            ],
            b"",
        );
    }
    send(&mut stream, bytes, vec![("ETag", format!("\"{tag}\"")), ("X-Repo-Commit", sha.to_string())])
}

// ---- Test set-up ----

fn repo_file(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

const CONFIG: &str = r#"{"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 32, "max_position_embeddings": 512, "vocab_size": 30522}"#;

/// The committed tiny model as a Hub repository, with a second ONNX file that must not be taken.
fn tiny_repo(id: &str) -> HubRepo {
    HubRepo::new(
        id,
        vec![
            (".gitattributes", b"*.onnx filter=lfs diff=lfs merge=lfs -text\n".to_vec()),
            ("README.md", b"# tiny\n".to_vec()),
            ("config.json", CONFIG.as_bytes().to_vec()),
            ("model.onnx", repo_file("models/tiny-bert/model.onnx")),
            ("onnx/model_quantized.onnx", b"not taken".to_vec()),
            ("tokenizer.json", repo_file("models/tiny-bert/tokenizer.json")),
        ],
    )
}

/// A fresh folder for one test, removed when dropped.
fn case_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("fetch-{name}-")).tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// xbench in `dir`, with its own Hub cache (`dir/hf`) and `endpoint` as the Hub.
fn xbench(dir: &Path, endpoint: &str) -> Command {
    let mut cmd = common::xbench();
    cmd.current_dir(dir)
        .env("HF_HOME", dir.join("hf"))
        .env("HF_ENDPOINT", endpoint)
        .env("XBENCH_HOME", Path::new(env!("CARGO_MANIFEST_DIR")).join(".xbench"));
    for var in ["HF_HUB_OFFLINE", "HF_TOKEN", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
        cmd.env_remove(var);
    }
    cmd
}

fn run(cmd: &mut Command) -> (Output, String) {
    let out = cmd.output().unwrap();
    let text = format!("exit {:?}\n--- stdout\n{}--- stderr\n{}", out.status.code(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("panicked"), "{text}");
    (out, text)
}

fn ok(cmd: &mut Command) -> String {
    let (out, text) = run(cmd);
    assert!(out.status.success(), "{text}");
    text
}

/// The command fails, printing nothing on stdout, with an error (on stderr after any progress
/// lines, from `error: ` on) that holds every fragment and ends with its fix.
fn fails(cmd: &mut Command, says: &[&str]) -> String {
    let (out, text) = run(cmd);
    assert!(!out.status.success() && out.stdout.is_empty(), "expected a failure\n{text}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let at = stderr.find("error: ").filter(|&i| i == 0 || stderr[..i].ends_with('\n')).unwrap_or_else(|| panic!("no error line\n{text}"));
    let error = &stderr[at..];
    for s in says {
        assert!(error.contains(s), "the error lacks {s:?}\n{text}");
    }
    let fix = error.find("\n  fix: ").unwrap_or_else(|| panic!("the error has no fix line\n{text}"));
    assert!(error[fix..].lines().skip(1).all(|l| l.starts_with("  fix: ")), "the fix comes last\n{text}");
    println!("{error}");
    error.to_string()
}

fn model_yaml(dir: &Path) -> xbench::models::ModelMeta {
    serde_yaml::from_str(&std::fs::read_to_string(dir.join("model.yaml")).unwrap()).unwrap()
}

fn scenario(dir: &Path, models: &str, runtimes: &str) -> PathBuf {
    let path = dir.join("s.yaml");
    std::fs::write(&path, format!("name: hub\nmodels: [{models}]\nruntimes: [{runtimes}]\ninput_chars: [20, 60]\nbatch_sizes: [1, 2]\niterations: 2\nwarmup: 1\n")).unwrap();
    path
}

// ---- Tests ----

#[test]
fn fetch_then_run_a_scenario_on_the_fetched_model() {
    let hub = FakeHub::start(vec![tiny_repo("acme/tiny-bert")]);
    let dir_tmp = case_dir("run");
    let dir = dir_tmp.path();
    let text = ok(xbench(&dir, &hub.addr).args(["fetch", "acme/tiny-bert"]));
    assert!(text.contains(MAIN_SHA) && text.contains("models/tiny-bert"), "{text}");

    let model = dir.join("models/tiny-bert");
    assert_eq!(std::fs::read(model.join("model.onnx")).unwrap(), repo_file("models/tiny-bert/model.onnx"));
    assert_eq!(std::fs::read(model.join("tokenizer.json")).unwrap(), repo_file("models/tiny-bert/tokenizer.json"));
    assert_eq!(std::fs::read_to_string(model.join("config.json")).unwrap(), CONFIG);
    assert!(!model.join("model_quantized.onnx").exists() && !model.join("README.md").exists());
    let meta = model_yaml(&model);
    assert_eq!(meta.hub_id.as_deref(), Some("acme/tiny-bert"));
    assert_eq!(meta.revision.as_deref(), Some(MAIN_SHA));
    assert_eq!(meta.onnx.as_deref(), Some("model.onnx"));
    assert_eq!(meta.tokenizer.as_deref(), Some("tokenizer.json"));
    assert_eq!(meta.architecture.as_deref(), Some("bert"));
    assert_eq!(meta.max_positions, Some(512));

    // The Hub cache has the standard layout: the branch points at its commit, the snapshot at the blobs.
    let cache = dir.join("hf/hub/models--acme--tiny-bert");
    assert_eq!(std::fs::read_to_string(cache.join("refs/main")).unwrap(), MAIN_SHA);
    assert!(cache.join("snapshots").join(MAIN_SHA).join("model.onnx").is_file());
    let requests = hub.requests();
    assert!(requests.contains(&"GET /api/models/acme/tiny-bert/revision/main".to_string()), "{requests:?}");
    assert!(requests.iter().any(|r| r.starts_with(&format!("GET /acme/tiny-bert/resolve/{MAIN_SHA}/model.onnx"))), "{requests:?}");
    assert!(requests.iter().any(|r| r.starts_with("GET /cdn/")), "the large file is fetched through the redirect: {requests:?}");

    // Fetching again asks for the file list only: the files are in the cache.
    hub.clear();
    let text = ok(xbench(&dir, &hub.addr).args(["fetch", "acme/tiny-bert", "--name", "again"]));
    assert_eq!(hub.requests(), ["GET /api/models/acme/tiny-bert/revision/main"], "{text}");
    assert!(text.contains("model.onnx of acme/tiny-bert at 1a2b3c4d5e6f is in the Hub cache"), "{text}");
    assert_eq!(std::fs::read(dir.join("models/again/model.onnx")).unwrap(), repo_file("models/tiny-bert/model.onnx"));

    let s = scenario(&dir, "tiny-bert", "tract-cpu");
    ok(xbench(&dir, &hub.addr).arg("scenario").arg(&s).args(["--quiet", "--no-setup", "--out", "out"]));
    let r = read_results(&dir.join("out/results.json")).unwrap();
    assert_eq!(r.cells.len(), 4);
    assert!(r.cells.iter().all(|c| c.status == Status::Ok), "{:?}", r.cells);
    assert_eq!(r.models[0].name, "tiny-bert");
    assert_eq!(r.models[0].hub_id.as_deref(), Some("acme/tiny-bert"));
    assert_eq!(r.models[0].revision.as_deref(), Some(MAIN_SHA));
    let report = std::fs::read_to_string(dir.join("out/report.md")).unwrap();
    assert!(report.contains(&format!("tiny-bert (Hub: acme/tiny-bert at {})", &MAIN_SHA[..12])), "{report}");
}

#[test]
fn a_pinned_revision_is_requested_and_recorded() {
    let hub = FakeHub::start(vec![tiny_repo("acme/tiny-bert")]);
    let dir_tmp = case_dir("pinned");
    let dir = dir_tmp.path();
    let text = ok(xbench(&dir, &hub.addr).args(["fetch", "acme/tiny-bert", "--revision", "v1.0", "--name", "tiny-v1"]));
    assert!(text.contains(V1_SHA), "{text}");
    let meta = model_yaml(&dir.join("models/tiny-v1"));
    assert_eq!(meta.revision.as_deref(), Some(V1_SHA));
    assert_eq!(meta.hub_id.as_deref(), Some("acme/tiny-bert"));
    let requests = hub.requests();
    assert!(requests.contains(&"GET /api/models/acme/tiny-bert/revision/v1.0".to_string()), "{requests:?}");
    let resolves: Vec<&String> = requests.iter().filter(|r| r.contains("/resolve/")).collect();
    assert!(!resolves.is_empty() && resolves.iter().all(|r| r.contains(&format!("/resolve/{V1_SHA}/"))), "files come from the pinned commit: {requests:?}");
    assert_eq!(std::fs::read_to_string(dir.join("hf/hub/models--acme--tiny-bert/refs/v1.0")).unwrap(), V1_SHA);

    // `owner/name@REV` says the same; naming a revision twice is refused.
    ok(xbench(&dir, &hub.addr).args(["fetch", "acme/tiny-bert@v1.0", "--name", "tiny-v1b", "--quiet"]));
    assert_eq!(model_yaml(&dir.join("models/tiny-v1b")).revision.as_deref(), Some(V1_SHA));
    fails(xbench(&dir, &hub.addr).args(["fetch", "acme/tiny-bert@v1.0", "--revision", "main"]), &["v1.0", "main", "once"]);
}

#[test]
fn offline_fetch_takes_the_files_from_the_cache_without_a_request() {
    let hub = FakeHub::start(vec![tiny_repo("acme/tiny-bert")]);
    let dir_tmp = case_dir("offline");
    let dir = dir_tmp.path();
    ok(xbench(&dir, &hub.addr).args(["fetch", "acme/tiny-bert", "--quiet"]));
    ok(xbench(&dir, &hub.addr).args(["fetch", "acme/tiny-bert", "--revision", "v1.0", "--name", "tiny-v1", "--quiet"]));
    hub.clear();

    for (flag, name, sha) in [(None, "tiny-bert", MAIN_SHA), (Some("v1.0"), "tiny-v1", V1_SHA), (Some(V1_SHA), "tiny-sha", V1_SHA)] {
        let mut cmd = xbench(&dir, &hub.addr);
        cmd.env("HF_HUB_OFFLINE", "1").args(["fetch", "acme/tiny-bert", "--models-dir", "offline-models", "--name", name]);
        if let Some(rev) = flag {
            cmd.args(["--revision", rev]);
        }
        let text = ok(&mut cmd);
        assert!(text.contains("HF_HUB_OFFLINE") && text.contains(sha), "{text}");
        let model = dir.join("offline-models").join(name);
        assert_eq!(std::fs::read(model.join("model.onnx")).unwrap(), repo_file("models/tiny-bert/model.onnx"));
        assert!(model.join("tokenizer.json").is_file());
        let meta = model_yaml(&model);
        assert_eq!((meta.hub_id.as_deref(), meta.revision.as_deref()), (Some("acme/tiny-bert"), Some(sha)));
    }
    assert_eq!(hub.requests(), Vec::<String>::new(), "HF_HUB_OFFLINE makes no request");

    // A fetched model runs offline too, named by its folder or by its `hf:` entry.
    let s = scenario(&dir, "hf:acme/tiny-bert", "tract-cpu");
    let mut cmd = xbench(&dir, &hub.addr);
    ok(cmd.env("HF_HUB_OFFLINE", "1").arg("scenario").arg(&s).args(["--quiet", "--no-setup", "--out", "out"]));
    assert!(read_results(&dir.join("out/results.json")).unwrap().cells.iter().all(|c| c.status == Status::Ok));
    assert_eq!(hub.requests(), Vec::<String>::new());
}

#[test]
fn offline_with_nothing_cached_is_a_clear_error() {
    let hub = FakeHub::start(vec![tiny_repo("acme/tiny-bert")]);
    let dir_tmp = case_dir("offline-empty");
    let dir = dir_tmp.path();
    let cache = dir.join("hf/hub/models--acme--tiny-bert");
    let stderr = fails(
        xbench(&dir, &hub.addr).env("HF_HUB_OFFLINE", "1").args(["fetch", "acme/tiny-bert"]),
        &["HF_HUB_OFFLINE is set", "acme/tiny-bert", "revision main", "not in the Hub cache", &cache.display().to_string(), "unset HF_HUB_OFFLINE"],
    );
    assert!(!dir.join("models/tiny-bert").exists(), "{stderr}");

    // Cached at main but not at the revision asked for.
    ok(xbench(&dir, &hub.addr).args(["fetch", "acme/tiny-bert", "--quiet"]));
    fails(
        xbench(&dir, &hub.addr).env("HF_HUB_OFFLINE", "1").args(["fetch", "acme/tiny-bert", "--revision", "v1.0", "--name", "v1"]),
        &["HF_HUB_OFFLINE is set", "revision v1.0", "refs/v1.0"],
    );
    assert_eq!(hub.requests().iter().filter(|r| r.contains("v1.0") || r.contains(V1_SHA)).count(), 0);
}

#[test]
fn unknown_repositories_revisions_and_files_are_clear_errors() {
    let hub = FakeHub::start(vec![tiny_repo("acme/tiny-bert")]);
    let dir_tmp = case_dir("unknown");
    let dir = dir_tmp.path();
    fails(xbench(&dir, &hub.addr).args(["fetch", "acme/no-such-model"]), &["no repository acme/no-such-model", &hub.addr, "HTTP 401", "owner/name"]);
    fails(xbench(&dir, &hub.addr).args(["fetch", "acme/tiny-bert", "--revision", "v9"]), &["acme/tiny-bert has no revision `v9`", "branch, tag or commit"]);
    fails(
        xbench(&dir, &hub.addr).args(["fetch", "acme/tiny-bert", "--file", "onnx/model_fp16.onnx"]),
        &["has no file `onnx/model_fp16.onnx`", "model.onnx, onnx/model_quantized.onnx", "--file"],
    );
    fails(xbench(&dir, &hub.addr).args(["fetch", "acme/../etc"]), &["`acme/../etc` is not a Hub repository id", "owner/name"]);
    assert!(!dir.join("models").join("tiny-bert").exists());
}

#[test]
fn an_endpoint_that_does_not_listen_is_named() {
    // A port that was free a moment ago: nothing listens on it.
    let endpoint = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let dir_tmp = case_dir("unreachable");
    let dir = dir_tmp.path();
    fails(xbench(&dir, &endpoint).args(["fetch", "acme/tiny-bert"]), &[&format!("cannot reach the Hub at {endpoint}"), "HF_ENDPOINT", "HF_HUB_OFFLINE=1"]);
    fails(xbench(&dir, "ftp://127.0.0.1").args(["fetch", "acme/tiny-bert"]), &["HF_ENDPOINT = `ftp://127.0.0.1` is not an http(s) address"]);
    assert!(!dir.join("models/tiny-bert").exists());
}

#[test]
fn a_scenario_fetches_hf_entries_on_first_use_and_a_failed_fetch_fails_only_its_cells() {
    let hub = FakeHub::start(vec![tiny_repo("acme/tiny-bert")]);
    let dir_tmp = case_dir("scenario");
    let dir = dir_tmp.path();
    let s = scenario(&dir, "hf:acme/tiny-bert@v1.0, hf:acme/gone", "tract-cpu");
    let (out, text) = run(xbench(&dir, &hub.addr).arg("scenario").arg(&s).args(["--quiet", "--no-setup", "--out", "out"]));
    assert_eq!(out.status.code(), Some(2), "failed cells make the run exit 2: {text}");
    assert!(text.contains("8 cells: 4 ok, 4 failed"), "{text}");
    let r = read_results(&dir.join("out/results.json")).unwrap();
    assert_eq!(r.models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["tiny-bert", "gone"]);
    assert_eq!(r.models[0].hub_id.as_deref(), Some("acme/tiny-bert"));
    assert_eq!(r.models[0].revision.as_deref(), Some(V1_SHA));
    assert_eq!(r.models[1].hub_id.as_deref(), Some("acme/gone"));
    for c in &r.cells {
        if c.model == "tiny-bert" {
            assert_eq!(c.status, Status::Ok, "{c:?}");
        } else {
            let e = c.error.as_deref().unwrap_or("");
            assert_eq!(c.status, Status::Failed);
            assert!(e.contains("hf:acme/gone") && e.contains("no repository acme/gone") && e.contains("fix:"), "{e}");
        }
    }
    assert_eq!(model_yaml(&dir.join("models/tiny-bert")).revision.as_deref(), Some(V1_SHA));
    assert!(hub.requests().contains(&"GET /api/models/acme/tiny-bert/revision/v1.0".to_string()));

    // The second run finds models/tiny-bert at that revision and asks the Hub nothing about it.
    hub.clear();
    ok(xbench(&dir, &hub.addr).arg("scenario").arg(&s).args(["--quiet", "--no-setup", "--ignore-failures", "--out", "out2"]));
    let requests = hub.requests();
    assert!(requests.iter().all(|r| r.contains("acme/gone")), "{requests:?}");

    // A folder that holds another model is not overwritten.
    std::fs::create_dir_all(dir.join("models/gone")).unwrap();
    std::fs::write(dir.join("models/gone/model.yaml"), "hub_id: someone/gone\n").unwrap();
    fails(
        xbench(&dir, &hub.addr).arg("scenario").arg(&s).args(["--quiet", "--no-setup", "--out", "out3"]),
        &["`models[1]` = `hf:acme/gone`", "already holds the Hub model someone/gone", "--name"],
    );
}

/// A decoder in optimum's layout, as a Hub repository holds one (model.onnx, config.json,
/// tokenizer.json, generation_config.json), is fetched and generates on ort-cpu.
#[test]
fn a_fetched_decoder_generates() {
    let decoder = |f: &str| repo_file(&format!("models/tiny-llama/{f}"));
    let hub = FakeHub::start(vec![HubRepo::new(
        "acme/tiny-llama-onnx",
        vec![
            ("README.md", b"# tiny llama\n".to_vec()),
            ("config.json", decoder("config.json")),
            ("generation_config.json", br#"{"bos_token_id": 1, "eos_token_id": 2}"#.to_vec()),
            ("model.onnx", decoder("model.onnx")),
            ("tokenizer.json", decoder("tokenizer.json")),
        ],
    )]);
    let dir_tmp = case_dir("decoder");
    let dir = dir_tmp.path();
    ok(xbench(&dir, &hub.addr).args(["fetch", "acme/tiny-llama-onnx"]));
    let model = dir.join("models/tiny-llama-onnx");
    let meta = model_yaml(&model);
    assert_eq!((meta.architecture.as_deref(), meta.max_positions, meta.tokenizer.as_deref()), (Some("llama"), Some(2048), Some("tokenizer.json")));
    let s = dir.join("g.yaml");
    std::fs::write(&s, "name: hub-generate\nmodels: [tiny-llama-onnx]\nruntimes: [ort-cpu]\ngenerate:\n  prompt_tokens: [16]\n  new_tokens: [8]\nbatch_sizes: [1, 2]\niterations: 2\nwarmup: 1\n").unwrap();
    ok(xbench(&dir, &hub.addr).arg("scenario").arg(&s).args(["--quiet", "--out", "out"]));
    let r = read_results(&dir.join("out/results.json")).unwrap();
    assert_eq!(r.cells.len(), 2);
    assert_eq!(r.models[0].onnx_bytes, decoder("model.onnx").len() as u64);
    for c in &r.cells {
        assert_eq!(c.status, Status::Ok, "{c:?}");
        let g = c.generation.as_ref().expect("a generation cell records its generation");
        assert!(g.prompt.contains("through tokenizer.json"), "the fetched tokenizer makes the prompt: {}", g.prompt);
        assert_eq!(g.prompt_tokens, vec![16; c.batch]);
        assert!(g.repeatable && g.ids.len() == c.batch && g.ids.iter().all(|row| row.len() == 8 && row.iter().all(|&i| (0..259).contains(&i))), "{g:?}");
    }
}

#[test]
fn a_repository_whose_onnx_file_keeps_its_weights_in_an_external_data_file() {
    let staging_tmp = case_dir("external-build");
    let staging = staging_tmp.path();
    xbench::onnx::tiny_bert::write_external(&Default::default(), &staging, "model.onnx_data").unwrap();
    let graph = std::fs::read(staging.join("model.onnx")).unwrap();
    let data = std::fs::read(staging.join("model.onnx_data")).unwrap();
    assert!(graph.len() < 64 * 1024 && data.len() > 3_000_000, "the weights are in the data file");
    let files = |with_data: bool| {
        let mut f = vec![
            ("config.json", CONFIG.as_bytes().to_vec()),
            ("onnx/model.onnx", graph.clone()),
            ("tokenizer.json", repo_file("models/tiny-bert/tokenizer.json")),
        ];
        if with_data {
            f.push(("onnx/model.onnx_data", data.clone()));
        }
        f
    };
    let hub = FakeHub::start(vec![HubRepo::new("acme/tiny-ext", files(true)), HubRepo::new("acme/tiny-broken", files(false))]);
    let dir_tmp = case_dir("external");
    let dir = dir_tmp.path();
    ok(xbench(&dir, &hub.addr).args(["fetch", "acme/tiny-ext"]));
    let model = dir.join("models/tiny-ext");
    assert_eq!(std::fs::read(model.join("model.onnx_data")).unwrap(), data);
    assert_eq!(model_yaml(&model).onnx.as_deref(), Some("model.onnx"));
    let s = scenario(&dir, "tiny-ext", "tract-cpu, ort-cpu");
    ok(xbench(&dir, &hub.addr).arg("scenario").arg(&s).args(["--quiet", "--out", "out"]));
    let r = read_results(&dir.join("out/results.json")).unwrap();
    // The model's size counts its external data file.
    assert_eq!(r.models[0].onnx_bytes, (graph.len() + data.len()) as u64);
    for c in &r.cells {
        assert_eq!(c.status, Status::Ok, "{c:?}");
        if c.runtime == RuntimeId::TRACT_CPU {
            let a = c.agreement.as_ref().unwrap();
            assert!(a.agrees() && a.max_abs < 1e-4, "{a:?}");
        }
    }

    // A repository without the data file its graph names.
    fails(
        xbench(&dir, &hub.addr).args(["fetch", "acme/tiny-broken"]),
        &["onnx/model.onnx of acme/tiny-broken keeps its weights in `model.onnx_data`", "the repository has no onnx/model.onnx_data", "--file"],
    );
    assert!(!dir.join("models/tiny-broken").exists());
}

#[test]
fn several_onnx_files_and_no_model_onnx_ask_for_file() {
    let tiny = repo_file("models/tiny-bert/model.onnx");
    let hub = FakeHub::start(vec![HubRepo::new(
        "acme/variants",
        vec![("onnx/encoder_fp32.onnx", tiny.clone()), ("onnx/encoder_int8.onnx", b"int8".to_vec()), ("tokenizer.json", repo_file("models/tiny-bert/tokenizer.json"))],
    )]);
    let dir_tmp = case_dir("variants");
    let dir = dir_tmp.path();
    fails(
        xbench(&dir, &hub.addr).args(["fetch", "acme/variants"]),
        &["acme/variants holds several ONNX files and no model.onnx", "onnx/encoder_fp32.onnx, onnx/encoder_int8.onnx", "--file PATH_IN_REPO"],
    );
    ok(xbench(&dir, &hub.addr).args(["fetch", "acme/variants", "--file", "onnx/encoder_fp32.onnx", "--name", "enc", "--quiet"]));
    assert_eq!(std::fs::read(dir.join("models/enc/encoder_fp32.onnx")).unwrap(), tiny);
    let meta = model_yaml(&dir.join("models/enc"));
    assert_eq!(meta.onnx.as_deref(), Some("encoder_fp32.onnx"));
    assert_eq!(meta.architecture, None, "no config.json, no architecture");
    let listing = ok(xbench(&dir, &hub.addr).args(["models"]));
    assert!(listing.contains("enc  (models/enc/encoder_fp32.onnx)") && listing.contains("hub id:    acme/variants"), "{listing}");
}

#[test]
fn fetch_help_names_the_environment_and_the_scenario_syntax() {
    let out = common::xbench().args(["fetch", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for s in ["--revision", "--file", "--name", "--models-dir", "HF_ENDPOINT", "HF_HOME", "HF_HUB_OFFLINE", "HF_TOKEN", "hf:owner/name"] {
        assert!(help.contains(s), "help lacks {s}:\n{help}");
    }
}
