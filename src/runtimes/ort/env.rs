//! The ONNX Runtime library, loaded once per process, its environment, and what it logs while a
//! session is created (node placement is read from there).

use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, Result};
use ort::environment::Environment;
use ort::logging::LogLevel;

use super::library::{find_ort_library, OrtLibrary};
use crate::runtimes::RuntimeOptions;

pub(super) struct Loaded {
    pub env: Environment,
    pub lib: OrtLibrary,
    pub version: String,
}

static LOADED: OnceLock<std::result::Result<Loaded, String>> = OnceLock::new();

/// ONNX Runtime's log messages, collected while a session is being created (to read node placement).
static CAPTURED_LOG: Mutex<Option<Vec<String>>> = Mutex::new(None);

/// Runs `create` while collecting ONNX Runtime's log, and returns both.
pub(super) fn with_captured_log<T>(create: impl FnOnce() -> T) -> (T, Vec<String>) {
    *CAPTURED_LOG.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
    let out = create();
    let log = CAPTURED_LOG.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default();
    (out, log)
}

fn capture_log(_level: LogLevel, _category: &str, _id: &str, _location: &str, message: &str) {
    if let Ok(mut guard) = CAPTURED_LOG.lock() {
        if let Some(lines) = guard.as_mut() {
            lines.push(message.to_string());
        }
    }
}

/// Nodes per execution provider, read from ONNX Runtime's verbose "placed on [EP]. Number of nodes: N" lines.
pub fn parse_placement(log: &[String]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for line in log.iter().flat_map(|m| m.lines()) {
        let Some(at) = line.find("placed on [") else { continue };
        let rest = &line[at + "placed on [".len()..];
        let Some(end) = rest.find(']') else { continue };
        let ep = rest[..end].to_string();
        let count = rest[end..]
            .split("Number of nodes:")
            .nth(1)
            .and_then(|n| n.trim().split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        match out.iter_mut().find(|(e, _)| *e == ep) {
            Some((_, n)) => *n += count,
            None => out.push((ep, count)),
        }
    }
    out
}

/// Loads the library once per process; later calls return the same outcome.
pub(super) fn loaded(opts: &RuntimeOptions) -> std::result::Result<&'static Loaded, String> {
    LOADED
        .get_or_init(|| {
            let mut lib = find_ort_library(opts.ort_lib.as_deref())?;
            // Absolute, so that the loader opens this file and searches no other folder for it.
            lib.path = std::path::absolute(&lib.path).unwrap_or(lib.path);
            let version = check_api(&lib)?;
            let builder = ort::init_from(&lib.path).map_err(|e| {
                format!(
                    "cannot load ONNX Runtime from {} (found by {}): {e}\n  fix: use ONNX Runtime {} (`xbench setup ort`), or pass --ort-lib PATH",
                    lib.path.display(),
                    lib.found_by,
                    super::library::ORT_VERSION
                )
            })?;
            let env = builder
                .with_name("xbench")
                .with_logger(Arc::new(capture_log))
                .build()
                .map_err(|e| format!("cannot create the ONNX Runtime environment: {e}"))?;
            Ok(Loaded { env, lib, version })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The library loaded in this process, when it is: its path and version.
pub(super) fn loaded_library() -> Option<std::path::PathBuf> {
    LOADED.get()?.as_ref().ok().map(|l| l.lib.path.clone())
}

pub(super) fn loaded_version() -> Option<String> {
    LOADED.get()?.as_ref().ok().map(|l| l.version.clone())
}

/// The process's ONNX Runtime environment (loading the library on first use), for code that
/// drives `ort` directly beside xbench, such as the overhead benchmark.
pub fn environment(opts: &RuntimeOptions) -> Result<&'static Environment> {
    loaded(opts).map(|l| &l.env).map_err(|e| anyhow!(e))
}

/// Asks a library for what `ort` will need before `ort` takes it, so that a library that is not
/// ONNX Runtime, or one too old, is an error that names it rather than a panic inside `ort`:
/// `OrtGetApiBase()` must return its API base, whose `GetVersionString()` gives a version and whose
/// `GetApi(N)` gives the API xbench is built for. Returns the version.
fn check_api(lib: &OrtLibrary) -> std::result::Result<String, String> {
    let at = format!("{} (found by {})", lib.path.display(), lib.found_by);
    let fix = format!(
        "point it at ONNX Runtime {}'s own libonnxruntime library (`xbench setup ort` fetches it into .xbench/), or leave --ort-lib and ORT_DYLIB_PATH unset",
        super::library::ORT_VERSION
    );
    let api_version = ort::sys::ORT_API_VERSION;
    // SAFETY: loading a library runs its initializers; the user named it (or it was found where
    // ONNX Runtime is looked for), exactly as `ort` would load it next. `OrtGetApiBase` is called
    // with its C signature and every pointer it gives is checked for NULL before use.
    unsafe {
        let handle = libloading::Library::new(&lib.path).map_err(|e| format!("cannot load ONNX Runtime from {at}: {e}\n  fix: {fix}"))?;
        let get_base: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> = handle
            .get(b"OrtGetApiBase")
            .map_err(|_| format!("{at} is not ONNX Runtime: it has no `OrtGetApiBase` function\n  fix: {fix}"))?;
        let base = get_base();
        if base.is_null() {
            return Err(format!("{at} offers no ONNX Runtime API: its `OrtGetApiBase()` returned NULL\n  fix: {fix}"));
        }
        let text = ((*base).GetVersionString)();
        let version = if text.is_null() { None } else { std::ffi::CStr::from_ptr(text).to_str().ok().map(str::to_string) };
        let Some(version) = version.filter(|v| !v.is_empty() && v.len() < 64) else {
            return Err(format!("{at} gives no version: its `GetVersionString()` returned {}\n  fix: {fix}", if text.is_null() { "NULL" } else { "no readable text" }));
        };
        if ((*base).GetApi)(api_version).is_null() {
            return Err(format!(
                "{at} says it is ONNX Runtime {version} but offers no API version {api_version}: its `GetApi({api_version})` returned NULL (xbench needs ONNX Runtime 1.{api_version} or newer)\n  fix: {fix}"
            ));
        }
        // The library stays loaded for `ort` (it is opened again there), so nothing is unloaded in between.
        std::mem::forget(handle);
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_placement;

    #[test]
    fn placement_lines_are_counted_per_provider() {
        let log = vec![
            "Node placements".to_string(),
            " Node(s) placed on [CUDAExecutionProvider]. Number of nodes: 40\n  Gather (g)\n Node(s) placed on [CPUExecutionProvider]. Number of nodes: 3".to_string(),
            "unrelated".to_string(),
        ];
        assert_eq!(parse_placement(&log), vec![("CUDAExecutionProvider".to_string(), 40), ("CPUExecutionProvider".to_string(), 3)]);
        assert_eq!(parse_placement(&["All nodes placed on [CPUExecutionProvider]. Number of nodes: 7".to_string()]), vec![("CPUExecutionProvider".to_string(), 7)]);
        assert!(parse_placement(&[]).is_empty());
    }
}
