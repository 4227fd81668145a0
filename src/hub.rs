//! Models from the Hugging Face Hub: `xbench fetch <repo-id>` and `hf:owner/name[@revision]`
//! entries in scenarios.
//!
//! Downloads go through hf-hub's blocking client into its cache (`$HF_HOME/hub`, by default
//! `~/.cache/huggingface/hub`), from `$HF_ENDPOINT` (by default https://huggingface.co). With
//! `HF_HUB_OFFLINE=1` no request is made: the files are taken from that cache or the fetch fails.
//! The chosen files (the ONNX file, its external data files, `tokenizer.json`, `config.json`) are
//! then placed in `models/<name>/` (hard links into the cache where possible, else copies) with a
//! `model.yaml` that records the repository and the commit they came from.

use std::io::IsTerminal;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{anyhow, bail, Context, Result};
use hf_hub::api::sync::{ApiBuilder, ApiError, ApiRepo};
use hf_hub::{Cache, Repo, RepoType};

use crate::models::{self, ModelMeta, ModelSpec};

/// How a scenario's `models:` entry names a Hub repository: `hf:owner/name` or `hf:owner/name@revision`.
pub const ENTRY_PREFIX: &str = "hf:";
/// The Hub, when `HF_ENDPOINT` does not name another.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

static QUIET: AtomicBool = AtomicBool::new(false);

/// Silences the progress lines fetching prints on stderr (errors are returned, not printed).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

fn say(msg: impl AsRef<str>) {
    if !QUIET.load(Ordering::Relaxed) {
        eprintln!("{}", msg.as_ref());
    }
}

/// A repository on the Hub, at a revision (branch, tag or commit) or at its default branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRef {
    pub repo: String,
    pub revision: Option<String>,
}

impl std::fmt::Display for HubRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.revision {
            Some(r) => write!(f, "{}@{r}", self.repo),
            None => f.write_str(&self.repo),
        }
    }
}

impl HubRef {
    /// A scenario entry that names the Hub (`hf:…`), parsed; `None` for any other entry.
    pub fn from_entry(entry: &str) -> Option<Result<HubRef>> {
        entry.strip_prefix(ENTRY_PREFIX).map(HubRef::parse)
    }

    /// Parses `owner/name` or `owner/name@revision` (an `hf:` in front is allowed).
    pub fn parse(text: &str) -> Result<HubRef> {
        let text = text.strip_prefix(ENTRY_PREFIX).unwrap_or(text);
        let (repo, revision) = match text.split_once('@') {
            Some((repo, rev)) => (repo, Some(rev)),
            None => (text, None),
        };
        HubRef::new(repo, revision)
    }

    /// Checks a repository id and revision as the Hub spells them.
    pub fn new(repo: &str, revision: Option<&str>) -> Result<HubRef> {
        let parts: Vec<&str> = repo.split('/').collect();
        let part_ok = |p: &str| {
            !p.is_empty()
                && p.len() <= 96
                && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && !p.starts_with(['-', '.'])
                && !p.ends_with(['-', '.'])
                && !p.contains("..")
                && !p.contains("--")
        };
        if parts.len() > 2 || !parts.iter().all(|p| part_ok(p)) {
            bail!(
                "`{repo}` is not a Hub repository id\n  fix: write it as the Hub does, `owner/name` (letters, digits, `-`, `_`, `.`), e.g. `hf:sentence-transformers/all-MiniLM-L6-v2`, with `@revision` after it for a branch, tag or commit"
            );
        }
        if let Some(rev) = revision {
            if rev.is_empty() || rev.len() > 200 || rev.contains("..") || rev.starts_with('/') || rev.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '\\' | '@' | '?' | '#' | '%')) {
                bail!(
                    "`{rev}` is not a revision of `{repo}`\n  fix: give a branch (`main`), a tag (`v1.0`) or a commit id after `@`, or leave the revision out for the default branch"
                );
            }
        }
        Ok(HubRef { repo: repo.to_string(), revision: revision.map(str::to_string) })
    }

    /// The folder name a fetch uses by default: the repository's name without its owner.
    pub fn default_name(&self) -> &str {
        self.repo.rsplit('/').next().unwrap_or(&self.repo)
    }

    fn revision_or_main(&self) -> &str {
        self.revision.as_deref().unwrap_or("main")
    }
}

/// What `xbench fetch` is asked for.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub hub: HubRef,
    /// The ONNX file to take, as a path in the repository; default: picked from the file list.
    pub file: Option<String>,
    /// Folder name under the models root; default: the repository's name.
    pub name: Option<String>,
    pub models_root: PathBuf,
}

/// A model placed under the models root.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub name: String,
    pub dir: PathBuf,
    pub meta: ModelMeta,
    /// Files placed in the folder (paths inside it) with their sizes, model.yaml last.
    pub files: Vec<(String, u64)>,
    /// True when no request was made (`HF_HUB_OFFLINE`): every file came from the cache.
    pub offline: bool,
}

/// The Hub's address: `HF_ENDPOINT`, or https://huggingface.co.
pub fn endpoint() -> Result<String> {
    match std::env::var("HF_ENDPOINT") {
        Ok(e) if !e.trim().is_empty() => {
            let e = e.trim().trim_end_matches('/').to_string();
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                bail!("HF_ENDPOINT = `{e}` is not an http(s) address\n  fix: set HF_ENDPOINT to the Hub's address, e.g. https://huggingface.co, or unset it");
            }
            Ok(e)
        }
        _ => Ok(DEFAULT_ENDPOINT.to_string()),
    }
}

/// Whether `HF_HUB_OFFLINE` asks for no network (1, true, yes or on, as the Hub's own tools read it).
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// The Hub cache: `$HF_HOME/hub`, or `~/.cache/huggingface/hub`.
pub fn cache() -> Result<Cache> {
    if std::env::var_os("HF_HOME").is_some_and(|h| !h.is_empty()) {
        return Ok(Cache::from_env());
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or_else(|| {
        anyhow!("neither HF_HOME nor HOME is set, so there is no Hub cache folder\n  fix: set HF_HOME to a writable folder, e.g. `export HF_HOME=$PWD/.hf`")
    })?;
    Ok(Cache::new(PathBuf::from(home).join(".cache/huggingface/hub")))
}

fn cache_repo_dir(cache: &Cache, repo: &str) -> PathBuf {
    cache.path().join(Repo::new(repo.to_string(), RepoType::Model).folder_name())
}

/// A folder name under the models root: one plain path component that `xbench models` lists.
fn check_name(name: &str, flag_hint: bool) -> Result<()> {
    let mut comps = Path::new(name).components();
    let plain = matches!(comps.next(), Some(Component::Normal(_))) && comps.next().is_none();
    if !plain || name.starts_with('.') || name.contains(['/', '\\']) {
        let how = if flag_hint { "give another with --name" } else { "fetch it with `xbench fetch REPO --name NAME` and list NAME in the scenario" };
        bail!("`{name}` cannot be a model folder name (one plain name, not starting with `.`)\n  fix: {how}");
    }
    Ok(())
}

/// The commit and file list of a repository at a revision: from the Hub, or from the cache when offline.
struct Snapshot {
    sha: String,
    /// Paths in the repository.
    files: Vec<String>,
    source: Source,
}

enum Source {
    Hub { api: Box<ApiRepo>, endpoint: String },
    /// The snapshot folder in the cache.
    Cache(PathBuf),
}

impl Snapshot {
    fn online(hub: &HubRef) -> Result<Snapshot> {
        let endpoint = endpoint()?;
        let cache = cache()?;
        let mut builder = ApiBuilder::from_cache(cache).with_endpoint(endpoint.clone()).with_progress(std::io::stderr().is_terminal() && !QUIET.load(Ordering::Relaxed));
        if let Some(token) = std::env::var("HF_TOKEN").ok().filter(|t| !t.trim().is_empty()) {
            builder = builder.with_token(Some(token.trim().to_string()));
        }
        let api = builder.build().map_err(|e| hub_error(e, &endpoint, hub, None))?;
        let rev = hub.revision_or_main();
        let info = api
            .repo(Repo::with_revision(hub.repo.clone(), RepoType::Model, rev.to_string()))
            .info()
            .map_err(|e| hub_error(e, &endpoint, hub, None))?;
        if info.sha.len() < 7 || !info.sha.chars().all(|c| c.is_ascii_hexdigit()) {
            bail!("the server at {endpoint} gave `{}` as the commit of {} (revision {rev}), which is not a commit id\n  fix: check that HF_ENDPOINT names a Hugging Face Hub", info.sha, hub.repo);
        }
        // Files are downloaded at the commit the revision names now, so that all of them belong together.
        let api = api.repo(Repo::with_revision(hub.repo.clone(), RepoType::Model, info.sha.clone()));
        Ok(Snapshot { files: info.siblings.into_iter().map(|s| s.rfilename).collect(), sha: info.sha, source: Source::Hub { api: Box::new(api), endpoint } })
    }

    fn offline(hub: &HubRef) -> Result<Snapshot> {
        let cache = cache()?;
        let dir = cache_repo_dir(&cache, &hub.repo);
        let rev = hub.revision_or_main();
        let not_cached = |what: String| {
            anyhow!(
                "HF_HUB_OFFLINE is set and {} (revision {rev}) is not in the Hub cache: {what}\n  fix: unset HF_HUB_OFFLINE to download it, or fetch it on a connected machine (`xbench fetch {}`) and copy its models/ folder, or its Hub cache (HF_HOME), here",
                hub.repo,
                hub
            )
        };
        let is_sha = rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit());
        let sha = if is_sha && dir.join("snapshots").join(rev).is_dir() {
            rev.to_string()
        } else {
            let ref_path = dir.join("refs").join(rev);
            match std::fs::read_to_string(&ref_path) {
                Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
                _ => return Err(not_cached(format!("no {}", if dir.is_dir() { ref_path.display().to_string() } else { dir.display().to_string() }))),
            }
        };
        let snap = dir.join("snapshots").join(&sha);
        let mut files = Vec::new();
        list_files(&snap, "", &mut files);
        if files.is_empty() {
            return Err(not_cached(format!("no files in {}", snap.display())));
        }
        files.sort();
        Ok(Snapshot { sha, files, source: Source::Cache(snap) })
    }

    /// The local path of a repository file, downloading it when needed.
    fn get(&self, hub: &HubRef, file: &str) -> Result<PathBuf> {
        match &self.source {
            Source::Hub { api, endpoint } => {
                let cached = cache().ok().and_then(|c| c.repo(Repo::with_revision(hub.repo.clone(), RepoType::Model, self.sha.clone())).get(file));
                if let Some(path) = cached {
                    say(format!("xbench: {file} of {} at {} is in the Hub cache", hub.repo, short(&self.sha)));
                    return Ok(path);
                }
                say(format!("xbench: downloading {file} of {} at {}", hub.repo, short(&self.sha)));
                api.download(file).map_err(|e| hub_error(e, endpoint, hub, Some(file))).with_context(|| format!("cannot download {file} of {}", hub.repo))
            }
            Source::Cache(snap) => {
                let p = snap.join(file);
                if !p.is_file() {
                    bail!(
                        "HF_HUB_OFFLINE is set and {file} of {} (commit {}) is not in the Hub cache (no {})\n  fix: unset HF_HUB_OFFLINE to download it, or fetch it on a connected machine and copy the Hub cache (HF_HOME) here",
                        hub.repo,
                        short(&self.sha),
                        p.display()
                    );
                }
                Ok(p)
            }
        }
    }
}

fn list_files(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let p = e.path();
        if p.is_dir() {
            list_files(&p, &rel, out);
        } else if p.is_file() {
            out.push(rel);
        }
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// Says what went wrong talking to the Hub, and how to fix it.
fn hub_error(e: ApiError, endpoint: &str, hub: &HubRef, file: Option<&str>) -> anyhow::Error {
    let rev = hub.revision_or_main();
    match e {
        ApiError::RequestError(err) => match *err {
            ureq::Error::Status(code, resp) => {
                let url = resp.get_url().to_string();
                let kind = resp.header("x-error-code").unwrap_or("").to_string();
                match (code, kind.as_str(), file) {
                    (_, "RevisionNotFound", _) => anyhow!(
                        "{} has no revision `{rev}` at {endpoint} (HTTP {code})\n  fix: name a branch, tag or commit of the repository (--revision, or `@revision` in a scenario), or leave it out for the default branch",
                        hub.repo
                    ),
                    (_, "EntryNotFound", Some(f)) | (404, _, Some(f)) => anyhow!(
                        "{} has no file `{f}` at revision {rev} ({endpoint} answered HTTP {code} for {url})\n  fix: pick a file the repository holds (--file PATH_IN_REPO)",
                        hub.repo
                    ),
                    (401 | 404, _, None) | (_, "RepoNotFound", _) => anyhow!(
                        "no repository {} at {endpoint} (HTTP {code})\n  fix: check the repository id (`owner/name`, as in the Hub's address of the model); a private or gated repository needs a token in HF_TOKEN",
                        hub.repo
                    ),
                    (401 | 403, _, _) | (_, "GatedRepo", _) => anyhow!(
                        "{endpoint} refused access to {} (HTTP {code}{})\n  fix: accept the repository's terms on the Hub and set HF_TOKEN to a token that may read it",
                        hub.repo,
                        if kind.is_empty() { String::new() } else { format!(", {kind}") }
                    ),
                    _ => anyhow!(
                        "{endpoint} answered HTTP {code} {} for {url}\n  fix: try again later; if it persists, check HF_ENDPOINT and the repository id",
                        resp.status_text()
                    ),
                }
            }
            ureq::Error::Transport(t) => {
                let detail = t.to_string();
                match t.kind() {
                    ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Dns | ureq::ErrorKind::Io | ureq::ErrorKind::ProxyConnect => anyhow!(
                        "cannot reach the Hub at {endpoint} ({detail})\n  fix: check the network connection and HF_ENDPOINT; to use models fetched before, set HF_HUB_OFFLINE=1"
                    ),
                    _ => anyhow!("talking to the Hub at {endpoint} failed: {detail}\n  fix: check HF_ENDPOINT and the network connection"),
                }
            }
        },
        ApiError::MissingHeader(h) | ApiError::InvalidHeader(h) => anyhow!(
            "the server at {endpoint} answered{} without a valid `{h}` header, which the Hub sends with every file\n  fix: check that HF_ENDPOINT names a Hugging Face Hub (or a mirror of one)",
            file.map(|f| format!(" for {f}")).unwrap_or_default()
        ),
        ApiError::IoError(io) => {
            let cache = cache().map(|c| c.path().display().to_string()).unwrap_or_default();
            anyhow!("cannot write into the Hub cache {cache}: {io}\n  fix: set HF_HOME to a writable folder with room for the model")
        }
        ApiError::LockAcquisition(p) => anyhow!(
            "another process holds the download lock {}\n  fix: wait until that download has finished, or remove the lock file if none is running",
            p.display()
        ),
        other => anyhow!("fetching from {endpoint} failed: {other}\n  fix: try again; a broken partial download (*.part) in the Hub cache can be removed"),
    }
}

/// The ONNX file to take: the one asked for, else `model.onnx` at the root or in `onnx/`, else the
/// repository's only `.onnx` file.
fn pick_onnx(hub: &HubRef, files: &[String], asked: Option<&str>) -> Result<String> {
    let onnx: Vec<&String> = files.iter().filter(|f| f.ends_with(".onnx")).collect();
    let listed = || onnx.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ");
    if let Some(want) = asked {
        let want = want.trim_start_matches("./");
        if files.iter().any(|f| f == want) {
            if !want.ends_with(".onnx") {
                bail!("--file {want} is not an .onnx file\n  fix: name one of the repository's ONNX files: {}", listed());
            }
            return Ok(want.to_string());
        }
        bail!(
            "{} (revision {}) has no file `{want}`\n  fix: name one of its ONNX files with --file: {}",
            hub.repo,
            hub.revision_or_main(),
            if onnx.is_empty() { "it has none".to_string() } else { listed() }
        );
    }
    for preferred in ["model.onnx", "onnx/model.onnx"] {
        if files.iter().any(|f| f == preferred) {
            return Ok(preferred.to_string());
        }
    }
    match onnx.as_slice() {
        [one] => Ok(one.to_string()),
        [] => bail!(
            "{} (revision {}) holds no .onnx file ({} files: {})\n  fix: fetch a repository that holds an ONNX export, or export this one (scripts/export_models.py --checkpoint) and drop it into models/",
            hub.repo,
            hub.revision_or_main(),
            files.len(),
            files.iter().take(12).cloned().collect::<Vec<_>>().join(", ")
        ),
        _ => bail!(
            "{} holds several ONNX files and no model.onnx: {}\n  fix: choose one with `xbench fetch {} --file PATH_IN_REPO`",
            hub.repo,
            listed(),
            hub
        ),
    }
}

/// `dir/name` inside the repository, as the Hub spells paths.
fn repo_join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Architecture and maximum positions from a Hub `config.json`.
fn from_config(path: &Path) -> (Option<String>, Option<usize>) {
    let Ok(v) = std::fs::read(path).map_err(|_| ()).and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).map_err(|_| ())) else {
        return (None, None);
    };
    let arch = v.get("model_type").and_then(|t| t.as_str()).map(str::to_string);
    let max = v.get("max_position_embeddings").and_then(|m| m.as_u64()).map(|m| {
        // RoBERTa-style models number positions from 2 (padding_idx + 1), so two rows are never used.
        (m as usize).saturating_sub(models::default_position_offset(arch.as_deref()).max(0) as usize)
    });
    (arch, max.filter(|&m| m > 0))
}

/// Reads `model.yaml` of a models folder, if it has one that parses.
fn folder_meta(dir: &Path) -> Option<ModelMeta> {
    let text = std::fs::read_to_string(dir.join("model.yaml")).ok()?;
    serde_yaml::from_str(&text).ok()
}

/// Refuses to put a Hub model into a folder that holds another model.
fn check_folder_free(dir: &Path, hub: &HubRef, flag_hint: bool) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let other = folder_meta(dir).and_then(|m| m.hub_id);
    if other.as_deref() == Some(hub.repo.as_str()) {
        return Ok(());
    }
    let holds = match other {
        Some(id) => format!("the Hub model {id}"),
        None => "a model that was not fetched from the Hub (its model.yaml has no hub_id)".into(),
    };
    let how = if flag_hint {
        format!("fetch into another folder with --name NAME, or remove {} first", dir.display())
    } else {
        format!("fetch it into another folder with `xbench fetch {hub} --name NAME` and list NAME in the scenario, or remove {} first", dir.display())
    };
    bail!("{} already holds {holds}, not {}\n  fix: {how}", dir.display(), hub.repo)
}

/// Downloads (or, offline, takes from the cache) a repository's ONNX file, its external data,
/// tokenizer.json and config.json, and places them in `models_root/<name>/` with a model.yaml.
pub fn fetch(req: &FetchRequest) -> Result<Fetched> {
    let hub = &req.hub;
    let name = req.name.clone().unwrap_or_else(|| hub.default_name().to_string());
    check_name(&name, true)?;
    let dest = req.models_root.join(&name);
    check_folder_free(&dest, hub, true)?;
    let offline = offline();
    let snap = if offline { Snapshot::offline(hub)? } else { Snapshot::online(hub)? };
    let onnx_repo = pick_onnx(hub, &snap.files, req.file.as_deref())?;
    let onnx_dir = onnx_repo.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let onnx_name = onnx_repo.rsplit('/').next().unwrap_or(&onnx_repo).to_string();

    // (path in the repository, path in the models folder, local path in the cache)
    let mut placed: Vec<(String, String, PathBuf)> = Vec::new();
    let onnx_local = snap.get(hub, &onnx_repo)?;
    let io = models::read_io_without_data(&onnx_local).with_context(|| format!("{onnx_repo} of {hub}"))?;
    placed.push((onnx_repo.clone(), onnx_name.clone(), onnx_local));
    for ext in &io.external_files {
        let location = ext.location.trim_start_matches("./").to_string();
        let in_repo = repo_join(onnx_dir, &location);
        if !offline && !snap.files.iter().any(|f| f == &in_repo) {
            bail!(
                "{onnx_repo} of {} keeps its weights in `{location}` (initializer `{}`), but the repository has no {in_repo}\n  fix: the repository is incomplete; choose another ONNX file with --file, or another revision",
                hub.repo,
                ext.initializer
            );
        }
        let local = snap.get(hub, &in_repo)?;
        placed.push((in_repo, location, local));
    }
    // The tokenizer and config beside the ONNX file, else at the repository's root.
    let mut side = |file: &str| -> Result<Option<PathBuf>> {
        let near = repo_join(onnx_dir, file);
        let found = [near.as_str(), file].into_iter().find(|c| snap.files.iter().any(|f| f == c)).map(str::to_string);
        match found {
            Some(in_repo) => {
                let local = snap.get(hub, &in_repo)?;
                placed.push((in_repo, file.to_string(), local.clone()));
                Ok(Some(local))
            }
            None => Ok(None),
        }
    };
    let tokenizer = side("tokenizer.json")?;
    let config = side("config.json")?;
    if tokenizer.is_none() {
        say(format!("xbench: warning: {} has no tokenizer.json; the model runs on generated inputs only if it takes no text", hub.repo));
    }
    let (architecture, max_positions) = config.as_deref().map(from_config).unwrap_or((None, None));
    let meta = ModelMeta {
        hub_id: Some(hub.repo.clone()),
        revision: Some(snap.sha.clone()),
        architecture,
        onnx: Some(onnx_name.clone()),
        tokenizer: tokenizer.as_ref().map(|_| "tokenizer.json".to_string()),
        max_positions,
        description: Some(format!("{onnx_repo} of the Hub repository {}", hub.repo)),
        ..Default::default()
    };

    // Assembled beside the destination, then swapped in, so that a failure leaves no half folder.
    std::fs::create_dir_all(&req.models_root)
        .with_context(|| format!("cannot create the models folder {}\n  fix: choose a writable folder with --models-dir", req.models_root.display()))?;
    let staging = req.models_root.join(format!(".{name}.fetching-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let built = (|| -> Result<Vec<(String, u64)>> {
        let mut files = Vec::new();
        for (_, rel, local) in &placed {
            let to = staging.join(rel);
            std::fs::create_dir_all(to.parent().unwrap_or(&staging)).with_context(|| format!("cannot create {}", staging.display()))?;
            link_or_copy(local, &to)?;
            files.push((rel.clone(), std::fs::metadata(&to).map(|m| m.len()).unwrap_or(0)));
        }
        let yaml = format!(
            "# Fetched by `xbench fetch {hub}` from {} at commit {}.\n{}",
            match &snap.source {
                Source::Hub { endpoint, .. } => endpoint.clone(),
                Source::Cache(_) => "the Hub cache (offline)".into(),
            },
            snap.sha,
            serde_yaml::to_string(&meta)?
        );
        std::fs::write(staging.join("model.yaml"), &yaml).with_context(|| format!("cannot write {}", staging.join("model.yaml").display()))?;
        files.push(("model.yaml".into(), yaml.len() as u64));
        Ok(files)
    })();
    let files = match built {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let old = req.models_root.join(format!(".{name}.replaced-{}", std::process::id()));
    if dest.exists() {
        std::fs::rename(&dest, &old).with_context(|| format!("cannot move the previous {} aside", dest.display()))?;
    }
    std::fs::rename(&staging, &dest).with_context(|| format!("cannot move the fetched files into {}", dest.display()))?;
    let _ = std::fs::remove_dir_all(&old);
    if let Source::Hub { .. } = &snap.source {
        // The cache maps the revision asked for to its commit, for later offline use.
        if let Some(rev) = hub.revision.as_deref().or(Some("main")).filter(|r| *r != snap.sha) {
            let _ = cache().map(|c| c.repo(Repo::with_revision(hub.repo.clone(), RepoType::Model, rev.to_string())).create_ref(&snap.sha));
        }
    }
    Ok(Fetched { name, dir: dest, meta, files, offline })
}

/// Hard-links a cached file (the blob a snapshot entry points to) into place, or copies it.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    let real = from.canonicalize().with_context(|| format!("cannot open {}", from.display()))?;
    if std::fs::hard_link(&real, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(&real, to).with_context(|| format!("cannot copy {} to {}", real.display(), to.display()))?;
    Ok(())
}

/// A scenario's `hf:` entry: the model folder it names, fetched first unless it is already there
/// with the same repository (and the revision asked for, when one is).
///
/// The outer error refuses the scenario (a malformed entry, a folder that holds another model);
/// the inner one is a fetch that failed, which fails only this model's cells.
pub fn ensure(hub: &HubRef, models_root: &Path, scenario_dir: &Path) -> Result<std::result::Result<ModelSpec, String>> {
    let name = hub.default_name();
    check_name(name, false)?;
    let dir = models_root.join(name);
    check_folder_free(&dir, hub, false)?;
    if let Some(meta) = folder_meta(&dir) {
        if same_revision(hub, &meta) {
            return models::resolve(name, models_root, scenario_dir).map(Ok);
        }
    }
    say(format!("xbench: {ENTRY_PREFIX}{hub} is not in {} yet: fetching it", dir.display()));
    match fetch(&FetchRequest { hub: hub.clone(), file: None, name: None, models_root: models_root.to_path_buf() }) {
        Ok(_) => models::resolve(name, models_root, scenario_dir).map(Ok),
        Err(e) => Ok(Err(format!("{ENTRY_PREFIX}{hub}: {e:#}"))),
    }
}

/// Whether a folder's model.yaml is at the revision a scenario asks for (any, when it asks for none).
fn same_revision(hub: &HubRef, meta: &ModelMeta) -> bool {
    let Some(want) = hub.revision.as_deref() else { return true };
    let Some(have) = meta.revision.as_deref() else { return false };
    if have == want || (want.len() >= 7 && want.chars().all(|c| c.is_ascii_hexdigit()) && have.starts_with(want)) {
        return true;
    }
    // A branch or tag: what the cache last saw it point to.
    cache()
        .ok()
        .and_then(|c| std::fs::read_to_string(cache_repo_dir(&c, &hub.repo).join("refs").join(want)).ok())
        .is_some_and(|sha| sha.trim() == have)
}

/// A model that a scenario names but that could not be fetched: its cells fail with `why`.
pub fn unavailable(hub: &HubRef, models_root: &Path, why: String) -> ModelSpec {
    ModelSpec {
        name: hub.default_name().to_string(),
        onnx: models_root.join(hub.default_name()),
        tokenizer: None,
        meta: ModelMeta { hub_id: Some(hub.repo.clone()), revision: hub.revision.clone(), ..Default::default() },
        unavailable: Some(why),
    }
}
