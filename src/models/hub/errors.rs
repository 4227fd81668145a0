//! What went wrong talking to the Hub, said with its fix.

use hf_hub::api::sync::ApiError;

use super::cache;
use crate::scenario::HubRef;

/// Says what went wrong talking to the Hub, and how to fix it.
pub(super) fn hub_error(e: ApiError, endpoint: &str, hub: &HubRef, file: Option<&str>) -> anyhow::Error {
    let rev = hub.revision_or_main();
    match e {
        ApiError::RequestError(err) => match *err {
            ureq::Error::Status(code, resp) => {
                let url = resp.get_url().to_string();
                let kind = resp.header("x-error-code").unwrap_or("").to_string();
                match (code, kind.as_str(), file) {
                    (_, "RevisionNotFound", _) => anyhow::anyhow!(
                        "{} has no revision `{rev}` at {endpoint} (HTTP {code})\n  fix: name a branch, tag or commit of the repository (--revision, or `@revision` in a scenario), or leave it out for the default branch",
                        hub.repo
                    ),
                    (_, "EntryNotFound", Some(f)) | (404, _, Some(f)) => anyhow::anyhow!(
                        "{} has no file `{f}` at revision {rev} ({endpoint} answered HTTP {code} for {url})\n  fix: pick a file the repository holds (--file PATH_IN_REPO)",
                        hub.repo
                    ),
                    (401 | 404, _, None) | (_, "RepoNotFound", _) => anyhow::anyhow!(
                        "no repository {} at {endpoint} (HTTP {code})\n  fix: check the repository id (`owner/name`, as in the Hub's address of the model); a private or gated repository needs a token in HF_TOKEN",
                        hub.repo
                    ),
                    (401 | 403, _, _) | (_, "GatedRepo", _) => anyhow::anyhow!(
                        "{endpoint} refused access to {} (HTTP {code}{})\n  fix: accept the repository's terms on the Hub and set HF_TOKEN to a token that may read it",
                        hub.repo,
                        if kind.is_empty() { String::new() } else { format!(", {kind}") }
                    ),
                    _ => anyhow::anyhow!(
                        "{endpoint} answered HTTP {code} {} for {url}\n  fix: try again later; if it persists, check HF_ENDPOINT and the repository id",
                        resp.status_text()
                    ),
                }
            }
            ureq::Error::Transport(t) => {
                let detail = t.to_string();
                match t.kind() {
                    ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Dns | ureq::ErrorKind::Io | ureq::ErrorKind::ProxyConnect => anyhow::anyhow!(
                        "cannot reach the Hub at {endpoint} ({detail})\n  fix: check the network connection and HF_ENDPOINT; to use models fetched before, set HF_HUB_OFFLINE=1"
                    ),
                    _ => anyhow::anyhow!("talking to the Hub at {endpoint} failed: {detail}\n  fix: check HF_ENDPOINT and the network connection"),
                }
            }
        },
        ApiError::MissingHeader(h) | ApiError::InvalidHeader(h) => anyhow::anyhow!(
            "the server at {endpoint} answered{} without a valid `{h}` header, which the Hub sends with every file\n  fix: check that HF_ENDPOINT names a Hugging Face Hub (or a mirror of one)",
            file.map(|f| format!(" for {f}")).unwrap_or_default()
        ),
        ApiError::IoError(io) => {
            let cache = cache().map(|c| c.path().display().to_string()).unwrap_or_default();
            anyhow::anyhow!("cannot write into the Hub cache {cache}: {io}\n  fix: set HF_HOME to a writable folder with room for the model")
        }
        ApiError::LockAcquisition(p) => anyhow::anyhow!(
            "another process holds the download lock {}\n  fix: wait until that download has finished, or remove the lock file if none is running",
            p.display()
        ),
        other => anyhow::anyhow!("fetching from {endpoint} failed: {other}\n  fix: try again; a broken partial download (*.part) in the Hub cache can be removed"),
    }
}

