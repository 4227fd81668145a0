//! A repository's commit and file list at a revision — from the Hub, or from the Hub cache when
//! offline — and the local path of each file, downloaded when needed.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use hf_hub::api::sync::{ApiBuilder, ApiRepo};
use hf_hub::{Repo, RepoType};

use super::errors::hub_error;
use super::{cache, cache_repo_dir, endpoint};
use crate::scenario::HubRef;

/// The commit and file list of a repository at a revision: from the Hub, or from the cache when offline.
pub(super) struct Snapshot {
    pub(super) sha: String,
    /// Paths in the repository.
    pub(super) files: Vec<String>,
    pub(super) source: Source,
    /// The repository's folder in the cache: every file taken must really lie inside it.
    repo_dir: PathBuf,
}

pub(super) enum Source {
    Hub { api: Box<ApiRepo>, endpoint: String },
    /// The snapshot folder in the cache.
    Cache(PathBuf),
}

impl Snapshot {
    pub(super) fn online(hub: &HubRef) -> Result<Snapshot> {
        let endpoint = endpoint()?;
        let cache = cache()?;
        let repo_dir = cache_repo_dir(&cache, &hub.repo);
        let mut builder = ApiBuilder::from_cache(cache).with_endpoint(endpoint.clone()).with_progress(std::io::stderr().is_terminal() && tracing::enabled!(tracing::Level::INFO));
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
        Ok(Snapshot { files: info.siblings.into_iter().map(|s| s.rfilename).collect(), sha: info.sha, source: Source::Hub { api: Box::new(api), endpoint }, repo_dir })
    }

    pub(super) fn offline(hub: &HubRef) -> Result<Snapshot> {
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
            match read_ref(&dir, rev)? {
                Some(s) => s,
                None => return Err(not_cached(format!("no {}", if dir.is_dir() { ref_path.display().to_string() } else { dir.display().to_string() }))),
            }
        };
        let snap = dir.join("snapshots").join(&sha);
        if snap.symlink_metadata().is_ok() {
            inside_cache(&snap, &dir, &format!("the snapshot folder of {} at {}", hub.repo, short(&sha)))?;
        }
        let mut files = Vec::new();
        list_files(&snap, "", &mut files);
        if files.is_empty() {
            return Err(not_cached(format!("no files in {}", snap.display())));
        }
        files.sort();
        Ok(Snapshot { sha, files, source: Source::Cache(snap), repo_dir: dir })
    }

    /// The local path of a repository file, downloading it when needed.
    pub(super) fn get(&self, hub: &HubRef, file: &str) -> Result<PathBuf> {
        if !crate::models::inside::is_plain_relative(file) {
            bail!(
                "`{file}` is not a path inside the repository {} (it was named by the Hub's file list or the ONNX graph)\n  fix: check that HF_ENDPOINT names a Hugging Face Hub you trust, or fetch another repository",
                hub.repo
            );
        }
        let path = self.get_unchecked(hub, file)?;
        inside_cache(&path, &self.repo_dir, &format!("{file} of {}", hub.repo))?;
        Ok(path)
    }

    fn get_unchecked(&self, hub: &HubRef, file: &str) -> Result<PathBuf> {
        match &self.source {
            Source::Hub { api, endpoint } => {
                let cached = cache().ok().and_then(|c| c.repo(Repo::with_revision(hub.repo.clone(), RepoType::Model, self.sha.clone())).get(file));
                if let Some(path) = cached {
                    tracing::info!("{file} of {} at {} is in the Hub cache", hub.repo, short(&self.sha));
                    return Ok(path);
                }
                tracing::info!("downloading {file} of {} at {}", hub.repo, short(&self.sha));
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

/// The files of a snapshot folder, as paths in the repository. Folders are entered only when they
/// are folders, not links (a snapshot's folders are real; a linked one could loop or lead away).
fn list_files(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            list_files(&p, &rel, out);
        } else if p.is_file() {
            out.push(rel);
        }
    }
}

/// Refuses a path in the Hub cache (`what`) that really lies outside its repository's folder there.
fn inside_cache(path: &Path, repo_dir: &Path, what: &str) -> Result<()> {
    crate::models::inside::real_inside(path, repo_dir).map(|_| ()).map_err(|why| {
        anyhow!(
            "{what} in the Hub cache, {}, {why}; files are taken only from inside the repository's cache folder\n  fix: remove {} and fetch the model again, or copy the Hub cache without links that leave it",
            path.display(),
            repo_dir.display()
        )
    })
}

/// The commit a revision names in a repository's cache folder (`refs/<rev>`), if there is one.
/// A ref that leads outside the folder, or does not hold a commit id, is refused.
pub(super) fn read_ref(repo_dir: &Path, rev: &str) -> Result<Option<String>> {
    let path = repo_dir.join("refs").join(rev);
    if path.symlink_metadata().is_err() {
        return Ok(None);
    }
    inside_cache(&path, repo_dir, &format!("the ref `{rev}`"))?;
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(None) };
    let sha = text.trim();
    if sha.is_empty() {
        return Ok(None);
    }
    if sha.len() < 7 || sha.len() > 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!(
            "the ref `{rev}` in the Hub cache, {}, does not hold a commit id\n  fix: remove {} and fetch the model again",
            path.display(),
            repo_dir.display()
        );
    }
    Ok(Some(sha.to_string()))
}

pub(super) fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

