//! Models from the Hugging Face Hub: `xbench fetch <repo-id>` and `hf:owner/name[@revision]`
//! entries in scenarios.
//!
//! Downloads go through hf-hub's blocking client into its cache (`$HF_HOME/hub`, by default
//! `~/.cache/huggingface/hub`), from `$HF_ENDPOINT` (by default https://huggingface.co). With
//! `HF_HUB_OFFLINE=1` no request is made: the files are taken from that cache or the fetch fails.
//! The chosen files (the ONNX file, its external data files, `tokenizer.json`, `config.json`) are
//! then placed in `models/<name>/` (hard links into the cache where possible, else copies) with a
//! `model.yaml` that records the repository and the commit they came from.

mod errors;
mod files;
mod snapshot;

use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use hf_hub::{Cache, Repo, RepoType};

use crate::models::{self, ModelMeta, ModelSpec};
use crate::scenario::{HubRef, ENTRY_PREFIX};
use files::{from_config, pick_onnx, repo_join};
use snapshot::{Snapshot, Source};

/// The Hub, when `HF_ENDPOINT` does not name another.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

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

pub(super) fn cache_repo_dir(cache: &Cache, repo: &str) -> PathBuf {
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

/// Reads `model.yaml` of a models folder, if it has one that parses.
fn folder_meta(dir: &Path) -> Option<ModelMeta> {
    let text = std::fs::read_to_string(dir.join("model.yaml")).ok()?;
    serde_yaml::from_str(text.strip_prefix('\u{feff}').unwrap_or(&text)).ok()
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
        tracing::warn!("{} has no tokenizer.json; the model runs on generated inputs only if it takes no text", hub.repo);
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
pub fn ensure(hub: &HubRef, models_root: &Path) -> Result<std::result::Result<ModelSpec, String>> {
    let name = hub.default_name();
    check_name(name, false)?;
    let dir = models_root.join(name);
    check_folder_free(&dir, hub, false)?;
    if let Some(meta) = folder_meta(&dir) {
        if same_revision(hub, &meta) {
            return models::find(name, models_root).map(Ok);
        }
    }
    tracing::info!("{ENTRY_PREFIX}{hub} is not in {} yet: fetching it", dir.display());
    match fetch(&FetchRequest { hub: hub.clone(), file: None, name: None, models_root: models_root.to_path_buf() }) {
        Ok(_) => models::find(name, models_root).map(Ok),
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
    cache().ok().and_then(|c| snapshot::read_ref(&cache_repo_dir(&c, &hub.repo), want).ok().flatten()).is_some_and(|sha| sha == have)
}
