//! The program on the other side of the external runtime protocol: started in its own working
//! folder, sent JSON lines, and read with a deadline, so that a program that crashes, hangs or
//! speaks garbage ends with a reason instead of blocking the run.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

/// A running program speaking the protocol.
pub struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Option<String>>,
    /// The program, as messages name it.
    pub program: String,
}

impl Peer {
    /// Starts `program` in `cwd`: a `.py` file with `PYTHON -P` (`python3` on `PATH` unless
    /// `python` names another interpreter), anything else as it is. The
    /// program is the file the scenario names, made absolute from xbench's own working folder
    /// first: a relative path would otherwise be looked for in `cwd`, or a bare name on `PATH`.
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
        let mut child = cmd.spawn().with_context(|| format!("cannot start the external runtime {name}\n  fix: check that it exists and can run (a .py file needs python3 on the PATH)"))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(Some(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(None);
        });
        Ok(Peer { child, stdin, lines, program: name })
    }

    /// Sends one message.
    pub fn send(&mut self, msg: &Value) -> Result<()> {
        let line = serde_json::to_string(msg)?;
        writeln!(self.stdin, "{line}").and_then(|_| self.stdin.flush()).map_err(|e| anyhow!("{} stopped reading its input ({e})", self.program))
    }

    /// The next message, within `timeout`; its `type` must be one of `expected`.
    pub fn receive(&mut self, timeout: Duration, expected: &[&str]) -> Result<Value> {
        let line = match self.lines.recv_timeout(timeout) {
            Ok(Some(line)) => line,
            Ok(None) | Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().map(|s| s.to_string()).unwrap_or_else(|_| "an unknown status".into());
                bail!("{} exited ({status}) without answering", self.program);
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
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
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
