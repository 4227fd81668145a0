//! A Hugging Face Hub repository as a scenario or `xbench fetch` names it: `owner/name`, with an
//! optional `@revision`. Checked here without asking the Hub; fetching is `models::hub`'s work.

use anyhow::{bail, Result};

/// How a scenario's `models:` entry names a Hub repository: `hf:owner/name` or `hf:owner/name@revision`.
pub const ENTRY_PREFIX: &str = "hf:";

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

    pub fn revision_or_main(&self) -> &str {
        self.revision.as_deref().unwrap_or("main")
    }
}
