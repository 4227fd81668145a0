//! The program on the other side of the external runtime protocol: started in its own working
//! folder and its own process group, sent JSON lines, and read with a deadline, so that a program
//! that crashes, hangs or speaks garbage ends with a reason instead of blocking the run, and
//! leaves nothing running behind it.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

/// The longest line a program may send: a `result` of 1,000,000 samples fits in well under this.
const MAX_LINE: usize = 64 << 20;

/// A line the program wrote, or why it is not a line of text.
type Line = std::result::Result<String, String>;

/// The process groups of the programs running now, ended by [`end_all`] when xbench exits at once.
static RUNNING: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// A running program speaking the protocol.
pub struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Option<Line>>,
    /// The program, as messages name it.
    pub program: String,
    /// It was ended (and waited for): its process id may belong to another process by now.
    ended: bool,
}

impl Peer {
    /// Starts `program` in `cwd`: a `.py` file with `PYTHON -P` (`python3` on `PATH` unless
    /// `python` names another interpreter), anything else as it is. The
    /// program is the file the scenario names, made absolute from xbench's own working folder
    /// first: a relative path would otherwise be looked for in `cwd`, or a bare name on `PATH`.
    /// It leads a process group of its own, so that it is ended with whatever it started.
    pub fn start(program: &Path, python: Option<&Path>, cwd: &Path) -> Result<Peer> {
        let name = program.display().to_string();
        let program = &std::path::absolute(program).with_context(|| format!("cannot locate the external runtime {name}\n  fix: give `external:` the path of the program, relative to the scenario file"))?;
        let mut cmd = if program.extension().and_then(|e| e.to_str()) == Some("py") {
            let mut c = Command::new(python.unwrap_or(Path::new("python3")));
            c.arg("-P").arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.current_dir(cwd).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().with_context(|| format!("cannot start the external runtime {name}\n  fix: check that it exists and can run (a .py file needs python3 on the PATH)"))?;
        RUNNING.lock().unwrap_or_else(|e| e.into_inner()).push(child.id() as i32);
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || read_lines(stdout, tx));
        Ok(Peer { child, stdin, lines, program: name, ended: false })
    }

    /// Sends one message.
    pub fn send(&mut self, msg: &Value) -> Result<()> {
        let line = serde_json::to_string(msg)?;
        writeln!(self.stdin, "{line}").and_then(|_| self.stdin.flush()).map_err(|e| anyhow!("{} stopped reading its input ({e})", self.program))
    }

    /// The next message, within `timeout`; its `type` must be one of `expected`.
    pub fn receive(&mut self, timeout: Duration, expected: &[&str]) -> Result<Value> {
        let line = match self.lines.recv_timeout(timeout) {
            Ok(Some(Ok(line))) => line,
            Ok(Some(Err(why))) => bail!("{} sent a line that is not a protocol message ({why})\n  fix: write only protocol lines (one JSON object of UTF-8 text each) to standard output; logs go to standard error", self.program),
            Ok(None) | Err(RecvTimeoutError::Disconnected) => {
                let status = self.exit_status(Duration::from_secs(2));
                bail!("{} exited ({status}) without answering", self.program);
            }
            Err(RecvTimeoutError::Timeout) => {
                self.end();
                bail!("{} did not answer within {:.0} s, and was stopped\n  fix: set a longer `cell_timeout_s` in the scenario if it needs more time", self.program, timeout.as_secs_f64());
            }
        };
        let msg: Value = serde_json::from_str(&line).map_err(|e| anyhow!("{} sent a line that is not a protocol message ({e}): `{}`", self.program, clip(&line)))?;
        let ty = msg.get("type").and_then(Value::as_str).unwrap_or("");
        if ty == "error" {
            let why = msg.get("message").and_then(Value::as_str).unwrap_or("(no message)");
            bail!("{}: {why}", self.program);
        }
        if !expected.contains(&ty) {
            bail!("{} sent a `{ty}` message where `{}` was due", self.program, expected.join("` or `"));
        }
        Ok(msg)
    }

    /// How the program ended, once its output has: it may close its output and live on, so it is
    /// given `grace` to exit and is then stopped.
    fn exit_status(&mut self, grace: Duration) -> String {
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.to_string();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.end();
        "it closed its standard output and was stopped".into()
    }

    /// Ends the program and everything in its process group (what it started), at once.
    pub fn end(&mut self) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        #[cfg(unix)]
        // SAFETY: kill(2) of the process group the program leads (set at its start).
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let pid = self.child.id() as i32;
        RUNNING.lock().unwrap_or_else(|e| e.into_inner()).retain(|&p| p != pid);
    }
}

impl Peer {
    /// Waits for the program to exit (after `done`), so that its resources count as this process's children's.
    pub fn wait(&mut self) {
        let _ = self.stdin.flush();
        for _ in 0..100 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Peer {
    /// The program and whatever it started (still in its process group) end with it.
    fn drop(&mut self) {
        self.end();
    }
}

/// Ends every program still running and what each started: for a process that exits at once
/// (a stop without a worker to kill), where nothing is dropped.
pub fn end_all() {
    #[cfg(unix)]
    for pid in RUNNING.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
        // SAFETY: kill(2) of the process group of a program this process started.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
}

/// Passes on the program's output line by line (without the line end). A line that is not UTF-8,
/// or longer than [`MAX_LINE`], is passed on as the reason it is garbage as soon as it is seen,
/// and nothing more is read; `None` when the output ends.
fn read_lines(stdout: impl Read, tx: mpsc::Sender<Option<Line>>) {
    let mut reader = BufReader::new(stdout);
    loop {
        let mut buf = Vec::new();
        match (&mut reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let ended = buf.last() == Some(&b'\n');
        if !ended && buf.len() > MAX_LINE {
            let _ = tx.send(Some(Err(format!("a line longer than {} MiB", MAX_LINE >> 20))));
            return;
        }
        if ended {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        let line = String::from_utf8(buf).map_err(|e| {
            let bytes = e.as_bytes();
            let at = e.utf8_error().valid_up_to();
            format!("not UTF-8 text: byte {at} is 0x{:02x}: `{}`", bytes[at], clip(&String::from_utf8_lossy(bytes)))
        });
        let garbage = line.is_err();
        if tx.send(Some(line)).is_err() || garbage {
            return;
        }
    }
    let _ = tx.send(None);
}

fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(120).collect();
    if s.chars().count() > 120 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_named_relative_to_the_run_starts_in_another_folder() {
        let dir = Path::new("target").join(format!("peer-relative-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let program = dir.join("speak.sh");
        std::fs::write(&program, "#!/bin/sh\necho '{\"type\": \"ready\"}'\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let elsewhere = std::env::temp_dir();
        let mut peer = Peer::start(&program, None, &elsewhere).unwrap();
        assert!(program.is_relative());
        assert_eq!(peer.receive(Duration::from_secs(20), &["ready"]).unwrap()["type"], "ready");
        drop(peer);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
