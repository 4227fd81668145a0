//! Ctrl-C: the first press stops the run after the current cell (results and report are written
//! and the run can be resumed); a second press stops at once. Files stay whole either way,
//! because results are only ever replaced by an atomic rename.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

static PRESSES: AtomicUsize = AtomicUsize::new(0);
/// The running worker process, killed on a second press (0: none).
static CHILD: AtomicI32 = AtomicI32::new(0);

/// Installs the handler (once per process; later calls do nothing).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if PRESSES.fetch_add(1, Ordering::SeqCst) == 0 {
                tracing::warn!("stopping after the current cell (press Ctrl-C again to stop at once)");
            } else {
                let pid = CHILD.load(Ordering::SeqCst);
                if pid > 0 {
                    // SAFETY: plain kill(2) on a process this program started.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
                tracing::warn!("stopped at once; finished cells are in the results file");
                std::process::exit(130);
            }
        });
    });
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    PRESSES.load(Ordering::SeqCst) > 0
}

/// Records the worker process now running (0 when none).
pub fn set_child(pid: u32) {
    CHILD.store(pid as i32, Ordering::SeqCst);
}
