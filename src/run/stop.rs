//! Stopping a run. Ctrl-C once: the run stops after the current cell (results and report are
//! written and the run can be resumed). Ctrl-C again, SIGTERM (what `timeout` and CI cancellation
//! send) or SIGHUP: it stops at once — the running worker is killed, the cell it was measuring
//! stays pending (never recorded as failed), results and report are written. Files stay whole
//! either way, because results are only ever replaced by an atomic rename.

use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};

/// Nothing asked; after the current cell; at once.
const RUNNING: u8 = 0;
const SOFT: u8 = 1;
const NOW: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(RUNNING);
/// The signal that asked for the stop (for the exit code).
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// The running worker process, killed on a stop at once (0: none).
static CHILD: AtomicI32 = AtomicI32::new(0);
/// The write end of the pipe the signal handler wakes the watcher thread through.
static PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe work here: a write to the pipe; the watcher thread does the rest.
    let fd = PIPE.load(Ordering::SeqCst);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) of one byte from a valid buffer to a descriptor this process owns.
        unsafe { libc::write(fd, &b as *const u8 as *const libc::c_void, 1) };
    }
}

/// Installs the handlers (once per process; later calls do nothing).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut fds = [0; 2];
        // SAFETY: pipe(2) into a two-element array, then close-on-exec on both ends (pipe2 is
        // Linux-only), so that workers do not inherit them.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            tracing::warn!("cannot watch for Ctrl-C: {}", std::io::Error::last_os_error());
            return;
        }
        for fd in fds {
            // SAFETY: fcntl(2) on a descriptor just made.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        PIPE.store(fds[1], Ordering::SeqCst);
        std::thread::spawn(move || watch(fds[0]));
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: installing a handler that only writes to a pipe.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigaction(sig, &action, std::ptr::null_mut());
            }
        }
    });
}

/// The watcher thread: acts on each signal the handler passes on.
fn watch(fd: i32) {
    let mut b = 0u8;
    // SAFETY: read(2) of one byte into a valid buffer.
    while unsafe { libc::read(fd, &mut b as *mut u8 as *mut libc::c_void, 1) } == 1 {
        let sig = b as i32;
        let at_once = sig != libc::SIGINT || STATE.load(Ordering::SeqCst) != RUNNING;
        SIGNAL.store(sig, Ordering::SeqCst);
        if !at_once {
            STATE.store(SOFT, Ordering::SeqCst);
            tracing::warn!("stopping after the current cell (press Ctrl-C again to stop at once)");
            continue;
        }
        STATE.store(NOW, Ordering::SeqCst);
        let pid = CHILD.load(Ordering::SeqCst);
        if pid > 0 {
            tracing::warn!("stopping at once: the cell being measured stays pending; finished cells are kept");
            // The worker, its process group, and the external runtime's program it started.
            super::tree::kill_tree(pid as u32);
        } else if FINISHING.load(Ordering::SeqCst) == 1 {
            // Every result is on disk; only the analysis and the report were left to do.
            tracing::warn!("stopped at once while the report was being written; every result is in the results file (`xbench report` draws the report from it)");
            std::process::exit(exit_code());
        } else if crate::run::stop::in_process() {
            // A cell running in this process cannot be interrupted: its results up to the last
            // finished cell are already on disk.
            tracing::warn!("stopped at once; finished cells are in the results file");
            crate::runtimes::external::end_all();
            crate::runtimes::external::remove_scratch(std::process::id());
            std::process::exit(exit_code());
        }
    }
}

/// Set once every result of the run is on disk and only the report is left to write: a stop at
/// once then ends the process at once, not after the report.
static FINISHING: AtomicU8 = AtomicU8::new(0);

/// Records that every result is saved: from here on, a stop at once ends the process at once.
pub fn set_finishing() {
    FINISHING.store(1, Ordering::SeqCst);
    if at_once() {
        std::process::exit(exit_code());
    }
}

/// Whether groups run in this process (no worker to kill), set by the executor.
static IN_PROCESS: AtomicU8 = AtomicU8::new(0);

fn in_process() -> bool {
    IN_PROCESS.load(Ordering::SeqCst) == 1
}

/// Records whether groups run in this process.
pub fn set_in_process(yes: bool) {
    IN_PROCESS.store(yes as u8, Ordering::SeqCst);
}

/// Whether a stop was asked for (after the current cell, or at once).
pub fn requested() -> bool {
    STATE.load(Ordering::SeqCst) != RUNNING
}

/// Whether the stop is at once: a worker that ends now was killed by xbench, not crashed.
pub fn at_once() -> bool {
    STATE.load(Ordering::SeqCst) == NOW
}

/// The exit code of a stopped run: 128 + the signal, as shells expect (130 for Ctrl-C).
pub fn exit_code() -> i32 {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => 130,
        sig => 128 + sig,
    }
}

/// Records the worker process now running (0 when none).
pub fn set_child(pid: u32) {
    CHILD.store(pid as i32, Ordering::SeqCst);
    // A stop at once asked for while this worker was starting: end it now.
    if pid > 0 && at_once() {
        super::tree::kill_tree(pid);
    }
}
