//! Child processes: the one layer through which xbench starts the programs it talks to — its
//! workers (`xbench worker`) and external runtimes' programs — and ends them.
//!
//! A child is started with its standard input and output piped (its standard error passes
//! through), as the leader of a process group of its own (so that Ctrl-C in the terminal reaches
//! xbench only, which decides when the child stops), and dies with the thread that started it
//! (`PR_SET_PDEATHSIG` on Linux: a `kill -9` of xbench ends its children; start children from a
//! thread that outlives them). Its output is read as lines ([`lines`]); lines sent to it are
//! written by a thread of their own, so that a read and a write both wait at most until a
//! deadline: a child that stops reading its input cannot block xbench. It is ended by one rule
//! ([`kill::kill_tree`]): its process group, every process descended from it and the groups
//! those lead, with `SIGKILL`; and a child that exits on its own is reaped only after what it
//! left in its process group is killed, so that its group never outlives it.

mod kill;
mod lines;

use std::io::Write;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::time::Instant;

pub use kill::kill_tree;
pub use lines::{clip, Framing, Line, MAX_LINE};

/// The children running now, by process id: ended by [`end_all`] when xbench exits at once.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// What a wait for the child's next line found.
#[derive(Debug)]
pub enum Next {
    Line(String),
    /// A line that breaks the framing (too long; not UTF-8 when strict): why. Nothing more is read.
    Garbage(String),
    /// Its output ended.
    Ended,
    /// Nothing came before the deadline.
    TimedOut,
}

/// Why a line could not be sent.
#[derive(Debug)]
pub enum SendError {
    /// The child did not take it before the deadline: it does not read its input. A child in
    /// this state is to be killed (the write still waits, and is ended by the kill).
    TimedOut,
    /// Its input is closed (it exited, or closed its standard input).
    Closed(std::io::Error),
}

/// A running child.
pub struct Child {
    child: std::process::Child,
    /// Lines to write, to the writer thread; `None` once the input is closed.
    input: Option<Sender<Vec<u8>>>,
    /// The writer thread's answer for each line: written, or why not.
    written: Receiver<std::io::Result<()>>,
    /// A write outlived its deadline: nothing more is sent.
    stuck: bool,
    lines: Receiver<Option<Line>>,
    /// It was ended or waited for: its process id may belong to another process by now.
    status: Option<ExitStatus>,
    /// Left to a background reaper: this handle no longer waits for it or ends it.
    detached: bool,
    /// What it writes to its standard error, when that is kept ([`Child::spawn_keeping_stderr`]).
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// How much of a child's standard error is kept: its end.
const KEPT_STDERR: usize = 64 << 10;

impl Child {
    /// Starts `cmd` (its program and arguments set) as a child, its output framed as `framing` says.
    pub fn spawn(cmd: Command, framing: Framing) -> std::io::Result<Child> {
        Child::start(cmd, framing, false)
    }

    /// Starts `cmd` as [`Child::spawn`] does, its standard error kept rather than passed through
    /// (a probe whose library may print anything): [`Child::stderr`] has it once the child ended.
    pub fn spawn_keeping_stderr(cmd: Command, framing: Framing) -> std::io::Result<Child> {
        Child::start(cmd, framing, true)
    }

    fn start(mut cmd: Command, framing: Framing, keep_stderr: bool) -> std::io::Result<Child> {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(if keep_stderr { Stdio::piped() } else { Stdio::inherit() });
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: getpid(2) has no preconditions.
            let parent = unsafe { libc::getpid() };
            // SAFETY: between fork and exec only async-signal-safe calls: prctl(2), getppid(2)
            // and _exit(2). The signal survives the exec (it is cleared only for set-user-ID
            // programs). A parent that died before the prctl is seen through getppid.
            unsafe {
                cmd.pre_exec(move || {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    if libc::getppid() != parent {
                        libc::_exit(1);
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn()?;
        RUNNING.lock().unwrap_or_else(|e| e.into_inner()).push(child.id());
        let mut stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || lines::read_lines(stdout, framing, tx));
        let (input, to_write) = mpsc::channel::<Vec<u8>>();
        let (done, written) = mpsc::channel();
        std::thread::spawn(move || {
            for buf in to_write {
                let sent = stdin.write_all(&buf).and_then(|_| stdin.flush());
                let failed = sent.is_err();
                if done.send(sent).is_err() || failed {
                    break;
                }
            }
        });
        let stderr = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let (mut kept, mut buf) = (Vec::new(), [0u8; 8192]);
                while let Ok(n @ 1..) = std::io::Read::read(&mut e, &mut buf) {
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > 2 * KEPT_STDERR {
                        kept.drain(..kept.len() - KEPT_STDERR);
                    }
                }
                let from = kept.len().saturating_sub(KEPT_STDERR);
                String::from_utf8_lossy(&kept[from..]).into_owned()
            })
        });
        Ok(Child { child, input: Some(input), written, stuck: false, lines, status: None, detached: false, stderr })
    }

    /// What the child wrote to its standard error (its last 64 KiB), when it is kept: read once
    /// the child has ended (or was killed); empty when it passed through.
    pub fn stderr(&mut self) -> String {
        self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default()
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Writes `line` (ended by `\n` here) to the child's standard input, waiting until `deadline`
    /// at most for the child to take it.
    pub fn send(&mut self, line: &[u8], deadline: Instant) -> Result<(), SendError> {
        let closed = || SendError::Closed(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "its standard input is closed"));
        if self.stuck {
            return Err(SendError::TimedOut);
        }
        let Some(input) = &self.input else { return Err(closed()) };
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        if input.send(buf).is_err() {
            return Err(closed());
        }
        match self.written.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SendError::Closed(e)),
            Err(RecvTimeoutError::Disconnected) => Err(closed()),
            Err(RecvTimeoutError::Timeout) => {
                self.stuck = true;
                Err(SendError::TimedOut)
            }
        }
    }

    /// Closes the child's standard input (once the line being written, if any, is taken): it
    /// reads the end of its input.
    pub fn close_input(&mut self) {
        self.input = None;
    }

    /// The child's next line, waiting until `deadline` at most.
    pub fn next_line(&mut self, deadline: Instant) -> Next {
        match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Some(Ok(line))) => Next::Line(line),
            Ok(Some(Err(why))) => Next::Garbage(why),
            Ok(None) | Err(RecvTimeoutError::Disconnected) => Next::Ended,
            Err(RecvTimeoutError::Timeout) => Next::TimedOut,
        }
    }

    /// How the child ended, if it has (it is then reaped, and what it left in its process
    /// group is ended).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.reap(false).ok().flatten()
    }

    /// Waits for the child to exit (then reaps it, and ends what it left in its process group).
    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        Ok(self.reap(true)?.expect("a blocking wait ends with the child"))
    }

    /// Reaps the child once it has exited (`block`: waiting for that). Before it is reaped, while
    /// its process id still names its group, the processes it left in its group are killed: a
    /// child's process group never outlives it.
    fn reap(&mut self, block: bool) -> std::io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        #[cfg(unix)]
        {
            if !exited(self.child.id(), block) {
                return Ok(None);
            }
            end_group(self.child.id());
        }
        let status = if block { Some(self.child.wait()?) } else { self.child.try_wait()? };
        if let Some(status) = status {
            self.reaped(status);
        }
        Ok(status)
    }

    /// Ends the child by the one kill rule (its group, its descendants and their groups) and
    /// waits for it; how it ended. Does nothing to a child already reaped (what it left in its
    /// group was ended then).
    pub fn kill(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() && !self.detached {
            kill_tree(self.child.id());
            let _ = self.child.kill();
            let _ = self.wait();
        }
        self.status
    }

    /// Leaves the child to exit on its own, reaped by a thread of its own so that it does not
    /// linger as a zombie (a worker that has reported everything, whose teardown need not be
    /// waited for). The handle then neither waits for it nor ends it.
    pub fn reap_in_background(&mut self) {
        self.input = None;
        if self.status.is_some() || std::mem::replace(&mut self.detached, true) {
            return;
        }
        let pid = self.child.id();
        #[cfg(unix)]
        std::thread::spawn(move || {
            exited(pid, true);
            end_group(pid);
            let mut status = 0;
            // SAFETY: waitpid(2) on a child of this process that nothing else waits for.
            unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
            RUNNING.lock().unwrap_or_else(|e| e.into_inner()).retain(|&p| p != pid);
        });
        #[cfg(not(unix))]
        {
            let _ = self.child.wait();
            RUNNING.lock().unwrap_or_else(|e| e.into_inner()).retain(|&p| p != pid);
        }
    }

    fn reaped(&mut self, status: ExitStatus) {
        self.status = Some(status);
        let pid = self.child.id();
        RUNNING.lock().unwrap_or_else(|e| e.into_inner()).retain(|&p| p != pid);
    }
}

impl Drop for Child {
    /// A child no one waited for ends with its handle, with whatever it started.
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether child `pid` has exited, without reaping it (`block`: waiting until it has). `true`
/// also when it cannot be told (the reaping that follows then says).
#[cfg(unix)]
fn exited(pid: u32, block: bool) -> bool {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid value for waitid(2) to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOWAIT | if block { 0 } else { libc::WNOHANG };
        // SAFETY: waitid(2) on a child of this process, into a valid siginfo_t; WNOWAIT leaves
        // it unreaped.
        if unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) } == 0 {
            // SAFETY: waitid filled `info` (si_pid is 0 when WNOHANG found nothing).
            return unsafe { info.si_pid() } != 0;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return true;
        }
    }
}

/// Kills what is left in the process group child `pid` led, while the child is unreaped (its id
/// is then still the group's, never another process's).
#[cfg(unix)]
fn end_group(pid: u32) {
    // SAFETY: kill(2) of the process group of a child this process started and has not reaped.
    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
}

/// Ends every child still running, by the one kill rule: for a process that exits at once (a
/// stop without a worker to kill), where nothing is dropped.
pub fn end_all() {
    for pid in RUNNING.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
        kill_tree(pid);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sh(script: &str) -> Child {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        Child::spawn(cmd, Framing::Strict).unwrap()
    }

    fn alive(pid: u32) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        !stat.is_empty() && !stat[stat.rfind(')').unwrap() + 1..].trim_start().starts_with('Z')
    }

    #[test]
    fn a_child_that_never_reads_fails_a_write_at_the_deadline_and_is_killed_with_its_group() {
        let mut child = sh("sleep 60 & echo started; wait");
        assert!(matches!(child.next_line(Instant::now() + Duration::from_secs(20)), Next::Line(l) if l == "started"));
        let started = Instant::now();
        // More than a pipe holds, to a shell that reads nothing.
        let sent = child.send(&vec![b'x'; 4 << 20], Instant::now() + Duration::from_millis(300));
        assert!(matches!(sent, Err(SendError::TimedOut)), "{sent:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert!(matches!(child.send(b"more", Instant::now() + Duration::from_secs(5)), Err(SendError::TimedOut)), "nothing more is sent");
        assert!(matches!(child.next_line(Instant::now() + Duration::from_millis(100)), Next::TimedOut));
        let pid = child.id();
        let sleeper: Vec<u32> = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap().split_whitespace().map(|p| p.parse().unwrap()).collect();
        assert_eq!(sleeper.len(), 1);
        assert!(child.kill().is_some());
        for _ in 0..200 {
            if !alive(sleeper[0]) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!alive(sleeper[0]), "the child's own child ends with it");
        assert!(!RUNNING.lock().unwrap().contains(&pid));
    }

    #[test]
    fn a_child_dies_with_the_thread_that_started_it() {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut child = sh("exec sleep 60");
            tx.send(child.id()).unwrap();
            // Left running as the thread ends (its handle forgotten, not dropped).
            child.reap_in_background();
            std::mem::forget(child);
        })
        .join()
        .unwrap();
        let pid = rx.recv().unwrap();
        let mut gone = false;
        for _ in 0..300 {
            if !alive(pid) {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(gone, "process {pid} outlived the thread that started it");
    }

    #[test]
    fn what_a_child_leaves_in_its_group_ends_when_it_is_reaped() {
        let mut child = sh("sleep 60 & echo $!");
        let Next::Line(pid) = child.next_line(Instant::now() + Duration::from_secs(20)) else { panic!() };
        let pid: u32 = pid.parse().unwrap();
        assert!(alive(pid));
        assert!(child.wait().unwrap().success());
        for _ in 0..200 {
            if !alive(pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!alive(pid), "the sleep left in the child's group outlived it");
    }

    #[test]
    fn lines_sent_and_answered_go_through_in_order() {
        let mut child = sh("while read l; do echo \"got $l\"; done");
        for word in ["a", "b"] {
            child.send(word.as_bytes(), Instant::now() + Duration::from_secs(5)).unwrap();
            assert!(matches!(child.next_line(Instant::now() + Duration::from_secs(20)), Next::Line(l) if l == format!("got {word}")));
        }
        child.close_input();
        assert!(matches!(child.next_line(Instant::now() + Duration::from_secs(20)), Next::Ended));
        assert!(child.wait().unwrap().success());
    }
}
