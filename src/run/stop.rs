//! Stopping a run. Ctrl-C once: the run stops after the current cell (results and report are
//! written and the run can be resumed). Ctrl-C again, SIGTERM (what `timeout` and CI cancellation
//! send) or SIGHUP: it stops at once — the running worker is killed, the cell it was measuring
//! stays pending (never recorded as failed), results and report are written. Files stay whole
//! either way, because results are only ever replaced by an atomic rename.
//!
//! A run's stop is a `Stop` token, passed down to the executor and the worker supervisor. When a
//! stop at once finds nothing to kill (the run is in this process, or only the report is left to
//! write), the token is marked abandoned and the binary's `main`, which waits on it, ends the
//! process; the library never does.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Nothing asked; after the current cell; at once.
const RUNNING: u8 = 0;
const SOFT: u8 = 1;
const NOW: u8 = 2;

/// A run's stop: whether one was asked for and how, and what a stop at once has to end.
#[derive(Clone, Default)]
pub struct Stop(Arc<State>);

#[derive(Default)]
struct State {
    state: AtomicU8,
    /// The signal that asked for the stop (for the exit code).
    signal: AtomicI32,
    /// The running worker process, killed on a stop at once (0: none).
    child: AtomicI32,
    /// Every result is on disk; only the report is left to write.
    finishing: AtomicBool,
    /// Groups run in this process (no worker to kill).
    in_process: AtomicBool,
    /// A stop at once found nothing left to stop: the process is to end now.
    abandoned: AtomicBool,
    /// The thread waiting for the run (`main`), woken when the run is abandoned.
    waiter: Mutex<Option<std::thread::Thread>>,
}

/// The write end of the pipe the signal handler wakes the watcher thread through (the one thing a
/// signal handler can reach).
static PIPE: OnceLock<i32> = OnceLock::new();

extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe work here: a write to the pipe; the watcher thread does the rest.
    if let Some(&fd) = PIPE.get() {
        let b = sig as u8;
        // SAFETY: write(2) of one byte from a valid buffer to a descriptor this process owns.
        unsafe { libc::write(fd, &b as *const u8 as *const libc::c_void, 1) };
    }
}

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Routes SIGINT, SIGTERM and SIGHUP to this token (once per process: the first token
    /// installed receives them).
    pub fn install(&self) {
        let mut fds = [0; 2];
        let token = self.clone();
        PIPE.get_or_init(|| {
            // SAFETY: pipe(2) into a two-element array, then close-on-exec on both ends (pipe2 is
            // Linux-only), so that workers do not inherit them.
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                tracing::warn!("cannot watch for Ctrl-C: {}", std::io::Error::last_os_error());
                return -1;
            }
            for fd in fds {
                // SAFETY: fcntl(2) on a descriptor just made.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
            let read = fds[0];
            std::thread::spawn(move || token.watch(read));
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                // SAFETY: installing a handler that only writes to a pipe.
                unsafe {
                    let mut action: libc::sigaction = std::mem::zeroed();
                    action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                    action.sa_flags = libc::SA_RESTART;
                    libc::sigaction(sig, &action, std::ptr::null_mut());
                }
            }
            fds[1]
        });
    }

    /// The watcher thread: acts on each signal the handler passes on.
    fn watch(self, fd: i32) {
        let mut b = 0u8;
        // SAFETY: read(2) of one byte into a valid buffer.
        while unsafe { libc::read(fd, &mut b as *mut u8 as *mut libc::c_void, 1) } == 1 {
            self.request(b as i32);
        }
    }

    /// Acts on `sig` as a stop request: SIGINT first asks for a stop after the current cell; SIGINT
    /// again, or any other signal, for a stop at once.
    pub fn request(&self, sig: i32) {
        let s = &self.0;
        let at_once = sig != libc::SIGINT || s.state.load(Ordering::SeqCst) != RUNNING;
        s.signal.store(sig, Ordering::SeqCst);
        if !at_once {
            s.state.store(SOFT, Ordering::SeqCst);
            tracing::warn!("stopping after the current cell (press Ctrl-C again to stop at once)");
            return;
        }
        s.state.store(NOW, Ordering::SeqCst);
        let pid = s.child.load(Ordering::SeqCst);
        if pid > 0 {
            tracing::warn!("stopping at once: the cell being measured stays pending; finished cells are kept");
            // The worker, its process group, and the external runtime's program it started.
            super::tree::kill_tree(pid as u32);
        } else if s.finishing.load(Ordering::SeqCst) {
            self.abandon_report();
        } else if s.in_process.load(Ordering::SeqCst) {
            // A cell running in this process cannot be interrupted: its results up to the last
            // finished cell are already on disk.
            tracing::warn!("stopped at once; finished cells are in the results file");
            crate::runtimes::external::end_all();
            crate::runtimes::external::remove_scratch(std::process::id());
            self.abandon();
        }
    }

    /// Every result is on disk; only the report was left to write.
    fn abandon_report(&self) {
        tracing::warn!("stopped at once while the report was being written; every result is in the results file (`xbench report` draws the report from it)");
        self.abandon();
    }

    fn abandon(&self) {
        self.0.abandoned.store(true, Ordering::SeqCst);
        if let Some(t) = self.0.waiter.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            t.unpark();
        }
    }

    /// Whether the run was abandoned: a stop at once that had nothing left to stop, after which
    /// the process is to end at once (every result so far is on disk).
    pub fn abandoned(&self) -> bool {
        self.0.abandoned.load(Ordering::SeqCst)
    }

    /// Registers the calling thread as the one woken when the run is abandoned (it waits with
    /// `std::thread::park`).
    pub fn wake_on_abandon(&self) {
        *self.0.waiter.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::thread::current());
    }

    /// Records that every result is saved (`complete`: every cell has run): from here on, a stop
    /// at once abandons the run (the report is not waited for). Returns whether it is abandoned
    /// already (a stop at once came before).
    pub fn set_finishing(&self, complete: bool) -> bool {
        self.0.finishing.store(true, Ordering::SeqCst);
        if self.at_once() && self.0.child.load(Ordering::SeqCst) == 0 && !self.abandoned() {
            if complete {
                self.abandon_report();
            } else {
                self.abandon();
            }
        }
        self.abandoned()
    }

    /// Records whether groups run in this process.
    pub fn set_in_process(&self, yes: bool) {
        self.0.in_process.store(yes, Ordering::SeqCst);
    }

    /// Whether a stop was asked for (after the current cell, or at once).
    pub fn requested(&self) -> bool {
        self.0.state.load(Ordering::SeqCst) != RUNNING
    }

    /// Whether the stop is at once: a worker that ends now was killed by xbench, not crashed.
    pub fn at_once(&self) -> bool {
        self.0.state.load(Ordering::SeqCst) == NOW
    }

    /// The exit code of a stopped run: 128 + the signal, as shells expect (130 for Ctrl-C).
    pub fn exit_code(&self) -> i32 {
        match self.0.signal.load(Ordering::SeqCst) {
            0 => 130,
            sig => 128 + sig,
        }
    }

    /// Records the worker process now running (0 when none).
    pub fn set_child(&self, pid: u32) {
        self.0.child.store(pid as i32, Ordering::SeqCst);
        // A stop at once asked for while this worker was starting: end it now.
        if pid > 0 && self.at_once() {
            super::tree::kill_tree(pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_c_once_stops_after_the_cell_and_twice_at_once() {
        let stop = Stop::new();
        assert!(!stop.requested());
        stop.request(libc::SIGINT);
        assert!(stop.requested() && !stop.at_once());
        stop.request(libc::SIGINT);
        assert!(stop.at_once());
        assert_eq!(stop.exit_code(), 130);
        // Nothing to end (no worker, results not all saved): the run itself winds down.
        assert!(!stop.abandoned());
    }

    #[test]
    fn a_stop_at_once_while_finishing_abandons_the_run_with_the_signals_code() {
        let stop = Stop::new();
        assert!(!stop.set_finishing(true));
        stop.request(libc::SIGTERM);
        assert!(stop.abandoned());
        assert_eq!(stop.exit_code(), 143);
        // Asked for before the results were all saved, it abandons the run once they are.
        let late = Stop::new();
        late.request(libc::SIGHUP);
        assert!(!late.abandoned());
        assert!(late.set_finishing(false));
        assert_eq!(late.exit_code(), 129);
    }

    #[test]
    fn tokens_are_independent() {
        let (a, b) = (Stop::new(), Stop::new());
        a.set_in_process(true);
        a.request(libc::SIGTERM);
        assert!(a.abandoned() && !b.requested() && !b.abandoned());
    }
}
