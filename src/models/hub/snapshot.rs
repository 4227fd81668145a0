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
        Ok(Snapshot { files: info.siblings.into_iter().map(|s| s.rfilename).collect(), sha: info.sha, source: Source::Hub { api: Box::new(api), endpoint } })
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
    pub(super) fn get(&self, hub: &HubRef, file: &str) -> Result<PathBuf> {
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

pub(super) fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

