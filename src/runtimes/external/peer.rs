//! The program on the other side of the external runtime protocol: started through the
//! child-process layer (`crate::child`) in its own working folder, asked one typed message at a
//! time with a deadline on the write and the answer, so that a program that crashes, hangs, stops
//! reading or speaks garbage ends with a reason instead of blocking the run, and leaves nothing
//! running behind it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use super::messages::{FromProgram, ToProgram};
use crate::child::{clip, Child, Framing, Next, SendError};

/// A running program speaking the protocol.
pub struct Peer {
    child: Child,
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
        cmd.current_dir(cwd);
        let child = Child::spawn(cmd, Framing::Strict).with_context(|| format!("cannot start the external runtime {name}\n  fix: check that it exists and can run (a .py file needs python3 on the PATH)"))?;
        Ok(Peer { child, program: name })
    }

    /// Sends `msg` and reads the answer, all within `limit`; the answer's `type` must be one of
    /// `expected` (an `error` is returned as the program's failure).
    pub fn ask(&mut self, msg: &ToProgram, limit: Duration, expected: &[&str]) -> Result<FromProgram> {
        let deadline = Instant::now() + limit;
        match self.send(msg, deadline, limit)? {
            None => self.receive(deadline, limit, expected),
            // A program that closed its input may still have said something first (its answer,
            // or an `error` saying why): its own words are read before the closed pipe is blamed.
            Some(closed) => self.receive(deadline, limit, expected).map_err(|e| anyhow!("{} stopped reading its input ({closed}); then: {e:#}", self.program)),
        }
    }

    /// Sends one message, waiting until `deadline` at most for the program to take it; the
    /// error of a closed input comes back as `Some`, for `ask` to weigh with what was said.
    fn send(&mut self, msg: &ToProgram, deadline: Instant, limit: Duration) -> Result<Option<std::io::Error>> {
        let line = serde_json::to_string(msg)?;
        match self.child.send(line.as_bytes(), deadline) {
            Ok(()) => Ok(None),
            Err(SendError::Closed(e)) => Ok(Some(e)),
            Err(SendError::TimedOut) => {
                self.end();
                bail!(
                    "{} did not read its input within {:.0} s (a `{}` message of {} bytes waited on its standard input), and was stopped\n  fix: read every message from standard input as it comes, and keep reading until `bye` (docs/runtime-protocol.md, The channel); set a longer `cell_timeout_s` in the scenario if it needs more time",
                    self.program,
                    limit.as_secs_f64(),
                    kind(msg),
                    line.len() + 1
                );
            }
        }
    }

    /// The next message, by `deadline`; its `type` must be one of `expected`.
    fn receive(&mut self, deadline: Instant, limit: Duration, expected: &[&str]) -> Result<FromProgram> {
        let line = match self.child.next_line(deadline) {
            Next::Line(line) => line,
            Next::Garbage(why) => bail!("{} sent a line that is not a protocol message ({why})\n  fix: write only protocol lines (one JSON object of UTF-8 text each) to standard output; logs go to standard error", self.program),
            Next::Ended => {
                let status = self.exit_status(Duration::from_secs(2));
                bail!("{} exited ({status}) without answering", self.program);
            }
            Next::TimedOut => {
                self.end();
                bail!("{} did not answer within {:.0} s, and was stopped\n  fix: set a longer `cell_timeout_s` in the scenario if it needs more time", self.program, limit.as_secs_f64());
            }
        };
        let msg = FromProgram::parse(&line).map_err(|e| anyhow!("{} sent a line that is not a protocol message ({e}): `{}`", self.program, clip(&line)))?;
        match msg {
            Ok(FromProgram::Error(why)) => bail!("{}: {}", self.program, why.as_deref().unwrap_or("(no message)")),
            Ok(m) if expected.contains(&m.kind()) => Ok(m),
            Ok(m) => bail!("{} sent a `{}` message where `{}` was due", self.program, m.kind(), expected.join("` or `")),
            Err(ty) => bail!("{} sent a `{ty}` message where `{}` was due", self.program, expected.join("` or `")),
        }
    }

    /// How the program ended, once its output has: it may close its output and live on, so it is
    /// given `grace` to exit and is then stopped.
    fn exit_status(&mut self, grace: Duration) -> String {
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait() {
                return status.to_string();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.end();
        "it closed its standard output and was stopped".into()
    }

    /// Ends the program and everything it started, at once, by the child layer's one rule.
    pub fn end(&mut self) {
        self.child.kill();
    }

    /// Waits up to 2 s for the program to exit (after `done`), so that its resources count as
    /// this process's children's.
    pub fn wait(&mut self) {
        self.child.close_input();
        for _ in 0..100 {
            if self.child.try_wait().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The `type` of a message xbench sends, as errors name it.
fn kind(msg: &ToProgram) -> &'static str {
    match msg {
        ToProgram::Hello { .. } => "hello",
        ToProgram::Cell { .. } => "cell",
        ToProgram::Generate { .. } => "generate",
        ToProgram::Bye => "bye",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An executable shell script `target/peer-TAG-PID/NAME` (a relative path), and its folder.
    fn script(tag: &str, name: &str, body: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = Path::new("target").join(format!("peer-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let program = dir.join(name);
        std::fs::write(&program, body).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        (dir, program)
    }

    #[test]
    fn a_program_named_relative_to_the_run_starts_in_another_folder() {
        let (dir, program) = script("relative", "speak.sh", "#!/bin/sh\necho '{\"type\": \"ready\"}'\n");
        let elsewhere = std::env::temp_dir();
        let mut peer = Peer::start(&program, None, &elsewhere).unwrap();
        assert!(program.is_relative());
        let answer = peer.ask(&ToProgram::Bye, Duration::from_secs(20), &["ready"]).unwrap();
        assert_eq!(answer.kind(), "ready");
        drop(peer);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_program_that_never_reads_its_input_fails_the_write_within_the_limit() {
        let (dir, program) = script("deaf", "deaf.sh", "#!/bin/sh\nexec sleep 60\n");
        let mut peer = Peer::start(&program, None, &std::env::temp_dir()).unwrap();
        // sleep reads no input: a message larger than a pipe's buffer waits on it.
        let options = std::collections::BTreeMap::from([("big".to_string(), "x".repeat(1 << 20))]);
        let hello = ToProgram::Hello {
            protocol: 1,
            runtime: super::super::messages::HelloRuntime { name: crate::runtimes::RuntimeId::new("deaf"), options: &options },
            model: super::super::messages::HelloModel { name: "m".into(), dir: "/m".into(), onnx: "/m/model.onnx".into(), inputs: vec![], outputs: vec![] },
            threads: None,
            device: 0,
            task: None,
            decoder: None,
        };
        let started = Instant::now();
        let err = format!("{:#}", peer.ask(&hello, Duration::from_secs(1), &["ready"]).unwrap_err());
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert!(err.contains("deaf.sh did not read its input within 1 s (a `hello` message of") && err.contains("fix: read every message"), "{err}");
        drop(peer);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
