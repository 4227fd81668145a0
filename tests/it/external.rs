//! Runtimes outside xbench's process, through the external runtime protocol: Python onnxruntime
//! (`scripts/runtimes/ort_python.py`) beside ort-cpu on the same token ids, outputs agreeing; and
//! programs that crash, hang, speak garbage, lie or refuse, each failing its own cells with the
//! reason while the run goes on.

use crate::common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use xbench::results::{read_results, RunResults, Status};
use xbench::runtimes::RuntimeId;

fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel).display().to_string()
}

/// Runs `runtimes` on tiny-bert (two cells) with the test Python environment; the run must end
/// well. Returns the results, xbench's stderr and its report.md.
fn run(runtimes: &str, extra: &str) -> (RunResults, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run_in(dir.path(), runtimes, extra, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let report = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    (read_results(&dir.path().join("out/results.json")).unwrap(), stderr, report)
}

/// Runs `runtimes` on tiny-bert into `dir/out`, with `dir/tmp` as the temporary folder, for at
/// most 120 s; its exit code (`None`: killed, as a signal ended it) and standard error. Whatever
/// the run started has ended when it returns, and left no scratch folder.
fn run_in(dir: &Path, runtimes: &str, extra: &str, args: &[&str]) -> (Option<i32>, String) {
    let python = common::python_env();
    let yaml = format!("name: ext\nmodels: [tiny-bert]\nruntimes: {runtimes}\ninput_chars: [50, 100]\nbatch_sizes: [2]\niterations: 3\nwarmup: 1\n{extra}");
    std::fs::write(dir.join("s.yaml"), yaml).unwrap();
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut child = common::xbench()
        .current_dir(dir)
        .env("PYTHONPATH", &python)
        .env("XBENCH_HOME", repo(".xbench"))
        .env("TMPDIR", &tmp)
        .args(["scenario", "s.yaml", "--ignore-failures", "--out", "out", "--models-dir"])
        .arg(repo("models"))
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reading = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("xbench ran for more than 120 s: a wait without a limit");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = reading.join().unwrap();
    assert_nothing_left(&tmp, &stderr);
    (status.code(), stderr)
}

/// No process runs in a folder under `tmp` (every program and what it started worked in its
/// scratch folder there), and no scratch folder is left.
fn assert_nothing_left(tmp: &Path, stderr: &str) {
    let running = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.parse::<u32>().is_ok()))
            .filter(|e| std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(tmp)))
            .map(|e| std::fs::read_to_string(e.path().join("cmdline")).unwrap_or_default().replace('\0', " "))
            .collect()
    };
    // A worker killed a moment ago may still be on its way out.
    let mut left = running();
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        left = running();
    }
    assert!(left.is_empty(), "left running: {left:?}\n{stderr}");
    let scratch: Vec<_> = std::fs::read_dir(tmp).unwrap().flatten().map(|e| e.file_name()).filter(|n| n.to_string_lossy().starts_with("xbench-external-")).collect();
    assert!(scratch.is_empty(), "scratch folders left: {scratch:?}");
}

#[test]
fn python_onnxruntime_through_the_protocol_agrees_with_ort_cpu_on_the_same_token_ids() {
    let adapter = repo("scripts/runtimes/ort_python.py");
    let (r, _, _) = run(&format!("[ort-cpu, {{name: ort-python, external: {adapter}, options: {{provider: cpu}}}}, {{name: ort-python-binding, external: {adapter}, options: {{io: binding}}}}]"), "");
    for c in &r.cells {
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert_eq!(c.samples_ms.len(), 3);
        if c.runtime != RuntimeId::ORT_CPU {
            let a = c.agreement.as_ref().expect("compared with ort-cpu");
            assert!(a.agrees() && a.max_abs < 1e-5 && a.outputs.len() == 2 && a.outputs.iter().all(|o| o.compared > 0), "{a:?}");
            let twin = r.cell(&c.model, RuntimeId::ORT_CPU, c.chars, c.batch).unwrap();
            let (mine, theirs) = (c.tokens.as_ref().unwrap(), twin.tokens.as_ref().unwrap());
            assert_eq!((&mine.tokens_per_row, mine.padded_len), (&theirs.tokens_per_row, theirs.padded_len), "the same inputs as the runtime it is compared with");
            let label = if c.runtime == RuntimeId::new("ort-python") { "end-to-end" } else { "IO binding" };
            assert_eq!(c.timer, label, "the program's own timer label");
        }
    }
    let g = r.groups.iter().find(|g| g.runtime == RuntimeId::new("ort-python")).unwrap();
    let s = g.session.as_ref().unwrap();
    assert!(s.io.as_deref().is_some_and(|t| t.contains("ort_python.py")), "the timer, in the program's words: {s:?}");
    assert!(s.version.starts_with("1.31"), "{s:?}");
    assert_eq!(s.settings.get("provider").map(String::as_str), Some("cpu"));
    assert!(g.peak_rss_mib.unwrap() > 20.0, "the program's own memory counts: {g:?}");
    let avail = r.runtimes.iter().find(|a| a.runtime == RuntimeId::new("ort-python")).unwrap();
    assert_eq!(avail.engine, Some(xbench::results::Engine::External));
}

#[test]
fn programs_that_crash_hang_babble_lie_or_refuse_fail_their_own_cells_and_the_run_goes_on() {
    let t = |name: &str| repo(&format!("tests/data/external/{name}.py"));
    let runtimes = format!(
        "[tract-cpu, {{name: crash, external: {}}}, {{name: hang, external: {}}}, {{name: garbage, external: {}}}, {{name: liar, external: {}, options: {{bend: lie}}}}, {{name: refuse, external: {}}}, {{name: missing, external: {}}}]",
        t("crash"),
        t("hang"),
        t("garbage"),
        t("bent"),
        t("refuse"),
        t("no-such-program")
    );
    let started = std::time::Instant::now();
    let (r, stderr, _) = run(&runtimes, "cell_timeout_s: 3\n");
    assert!(started.elapsed().as_secs() < 60, "a hanging program is stopped at the cell time limit");
    let why = |rt: &str| -> Vec<(Status, String)> {
        r.cells.iter().filter(|c| c.runtime == RuntimeId::new(rt)).map(|c| (c.status, c.error.clone().unwrap_or_default())).collect()
    };
    assert!(why("tract-cpu").iter().all(|(s, _)| *s == Status::Ok));
    for (rt, says) in [
        ("crash", "exited (exit status: 3) without answering"),
        ("hang", "did not answer within 3 s"),
        ("garbage", "sent a line that is not a protocol message"),
        ("liar", "samples where at least 3 timed iterations were asked"),
        ("refuse", "this adapter refuses to load: test"),
        ("missing", "no program at"),
    ] {
        let cells = why(rt);
        assert_eq!(cells.len(), 2, "{rt}");
        for (status, error) in &cells {
            assert!(matches!(status, Status::Failed | Status::Skipped), "{rt}: {status:?} {error}");
            assert!(error.contains(says), "{rt}: {error}\n{stderr}");
        }
    }
    // After a crash, hang or garbage the program is not asked again: its second cell says why at once.
    assert!(why("hang")[1].1.contains("can no longer be asked"), "{:?}", why("hang"));
}

#[test]
fn answers_that_bend_a_rule_fail_their_cells_with_the_rule_named() {
    let bent = repo("tests/data/external/bent.py");
    let entry = |bend: &str| format!("{{name: bent-{bend}, external: {bent}, options: {{bend: {bend}}}}}");
    let bends = ["placement", "samples", "empty", "huge", "negative", "warmup", "overclaim", "binary", "fifo", "long"];
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let spawner = format!("{{name: spawner, external: {bent}, options: {{bend: spawn, pidfile: {}}}}}", pidfile.display());
    let runtimes = format!("[tract-cpu, {}, {{name: fine, external: {bent}}}, {spawner}]", bends.map(entry).join(", "));
    // The default `cell_timeout_s` (600 s): garbage must be seen at once, not waited out.
    let started = Instant::now();
    let (r, stderr, report) = run(&runtimes, "");
    assert!(started.elapsed() < Duration::from_secs(90), "{:?}", started.elapsed());
    let cells = |rt: &str| -> Vec<(Status, String)> {
        r.cells.iter().filter(|c| c.runtime == RuntimeId::new(rt)).map(|c| (c.status, c.error.clone().unwrap_or_default())).collect()
    };
    for (rt, says) in [
        ("bent-placement", r#"sent a `placement` entry ["cpu","many"], which is not a [name, count] pair"#),
        ("bent-samples", r#"sent "fast" as sample 1 of `samples_ms`"#),
        ("bent-empty", "wrote an outputs file with no tensor in it"),
        ("bent-huge", "sent 1e160 ms as sample 0 of `samples_ms`: it must be at most 86400000 ms (one day"),
        ("bent-negative", "sent -5 ms as `prepare_ms`: it must be 0 or more"),
        ("bent-warmup", "sent 1000000000000 ms as `warmup_ms`: it must be at most 86400000 ms"),
        ("bent-overclaim", "reported 3000.0 ms of work (samples, `prepare_ms` and `warmup_ms` together) for a cell it answered"),
        ("bent-binary", "sent a line that is not a protocol message (not UTF-8 text: byte 0 is 0xff"),
        ("bent-fifo", "is not a regular file (a named pipe, socket or device)"),
        ("bent-long", "sent a line that is not a protocol message (a line longer than 64 MiB)"),
    ] {
        let cells = cells(rt);
        assert_eq!(cells.len(), 2, "{rt}");
        // A program that spoke garbage is not asked again: its second cell says so.
        let once = matches!(rt, "bent-binary" | "bent-long");
        for (k, (status, error)) in cells.iter().enumerate() {
            assert_eq!(*status, Status::Failed, "{rt}: {error}");
            let says = if once && k == 1 { "can no longer be asked" } else { says };
            assert!(error.contains(says), "{rt}: {error}\n{stderr}");
            assert!(error.contains("fix:") || matches!(rt, "bent-samples" | "bent-placement" | "bent-empty") || (once && k == 1), "{rt}: {error}");
        }
    }
    // The same program answering by the rules runs; its zeros then disagree with tract, as they should.
    assert!(cells("fine").iter().all(|(s, e)| *s == Status::Ok && e.is_empty()), "{:?}", cells("fine"));
    assert!(r.cells.iter().filter(|c| c.runtime == RuntimeId::new("fine")).all(|c| c.agreement.as_ref().is_some_and(|a| !a.agrees())));
    // The report's runtimes table gives the version the program said it is.
    assert!(report.lines().any(|l| l.starts_with("| fine | yes | 0 (as its sessions said) |")), "{report}");
    // A program's own children end with it (checked by `run`: nothing runs in a scratch folder).
    assert!(cells("spawner").iter().all(|(s, _)| *s == Status::Ok), "{:?}", cells("spawner"));
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(!Path::new(&format!("/proc/{pid}/cwd")).exists() || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z"), "the grandchild {pid} still runs");
}

#[test]
fn in_process_garbage_is_seen_at_once_and_the_results_read_back() {
    let bent = repo("tests/data/external/bent.py");
    let entry = |bend: &str| format!("{{name: bent-{bend}, external: {bent}, options: {{bend: {bend}}}}}");
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (code, stderr) = run_in(dir.path(), &format!("[tract-cpu, {}]", ["huge", "binary", "fifo", "mute"].map(entry).join(", ")), "", &["--in-process"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(90), "no wait of `cell_timeout_s` (600 s) in this process either: {:?}", started.elapsed());
    let r = read_results(&dir.path().join("out/results.json")).unwrap();
    assert!(r.complete);
    for c in &r.cells {
        let ok = matches!(c.runtime.as_str(), "tract-cpu" | "bent-mute");
        assert_eq!(c.status, if ok { Status::Ok } else { Status::Failed }, "{c:?}");
    }
    assert!(r.groups.iter().all(|g| g.status == Status::Ok || !g.runtime.as_str().ends_with("mute")), "{:?}", r.groups);
    // xbench reads back what it wrote.
    let out = common::xbench().current_dir(dir.path()).args(["report", "out/results.json", "--out", "again"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_program_that_does_not_answer_bye_has_its_finished_group_recorded_as_finished() {
    let bent = repo("tests/data/external/bent.py");
    let (r, stderr, _) = run(&format!("[tract-cpu, {{name: mute, external: {bent}, options: {{bend: mute}}}}]"), "cell_timeout_s: 2\n");
    let g = r.groups.iter().find(|g| g.runtime == RuntimeId::new("mute")).unwrap();
    assert_eq!((g.status, &g.error), (Status::Ok, &None), "{g:?}\n{stderr}");
    assert!(r.cells.iter().all(|c| c.status == Status::Ok), "{:?}", r.cells);
}

#[test]
fn a_run_stopped_at_once_ends_the_programs_it_started_and_their_children() {
    let bent = repo("tests/data/external/bent.py");
    for mode in [&[][..], &["--in-process"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        let runtimes = format!("[{{name: stuck, external: {bent}, options: {{bend: spawn, hang: true, pidfile: {}}}}}]", pidfile.display());
        let path = dir.path().to_path_buf();
        let stopper = std::thread::spawn(move || {
            let started = Instant::now();
            while !path.join("grandchild.pid").exists() && started.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(50));
            }
            std::thread::sleep(Duration::from_millis(300));
            // The xbench of this case: the one whose working folder is the case's folder.
            for e in std::fs::read_dir("/proc").unwrap().flatten() {
                let exe = std::fs::read_link(e.path().join("exe")).unwrap_or_default();
                if exe.ends_with("xbench") && std::fs::read_link(e.path().join("cwd")).is_ok_and(|c| c == path) {
                    let cmd = std::fs::read_to_string(e.path().join("cmdline")).unwrap_or_default();
                    if cmd.contains("scenario") {
                        let pid: i32 = e.file_name().to_str().unwrap().parse().unwrap();
                        // SAFETY: kill(2) of the xbench this test started.
                        unsafe { libc::kill(pid, libc::SIGTERM) };
                    }
                }
            }
        });
        let (code, stderr) = run_in(dir.path(), &runtimes, "", mode);
        stopper.join().unwrap();
        assert_eq!(code, Some(128 + 15), "{mode:?}: {stderr}");
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        assert!(std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z")), "{mode:?}: the grandchild {pid} still runs");
    }
}

#[test]
fn a_program_that_never_reads_its_input_fails_its_group_within_the_limit_in_both_modes() {
    // A `hello` of 300 kB (a large option) is more than a pipe holds: the write waits on a program
    // that never reads, and only a time limit on writes ends the wait.
    let deaf = repo("tests/data/external/deaf.py");
    let pad = "x".repeat(300_000);
    for mode in [&[][..], &["--in-process"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let (code, stderr) = run_in(dir.path(), &format!("[tract-cpu, {{name: deaf, external: {deaf}, options: {{pad: {pad}}}}}]"), "cell_timeout_s: 3\n", mode);
        let took = started.elapsed();
        assert_eq!(code, Some(0), "{mode:?}: {stderr}");
        // The limit (3 s) and the starts of xbench, its worker and Python; never the worker's own
        // watchdog (5 s), which would blame the load.
        assert!(took < Duration::from_secs(40), "{mode:?}: {took:?}");
        let r = read_results(&dir.path().join("out/results.json")).unwrap();
        assert!(r.complete, "{mode:?}");
        let (tract, deaf): (Vec<_>, Vec<_>) = r.cells.iter().partition(|c| c.runtime == RuntimeId::TRACT_CPU);
        assert!(tract.iter().all(|c| c.status == Status::Ok), "{mode:?}: {tract:?}");
        assert_eq!(deaf.len(), 2, "{mode:?}");
        for c in deaf {
            let why = c.error.as_deref().unwrap_or("");
            assert_eq!(c.status, Status::Failed, "{mode:?}: {why}");
            assert!(why.contains("deaf.py did not read its input within 3 s (a `hello` message of 300") && why.contains("fix: read every message from standard input as it comes"), "{mode:?}: {why}\n{stderr}");
        }
    }
}

#[test]
fn a_session_table_on_an_external_entry_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let bent = repo("tests/data/external/bent.py");
    std::fs::write(dir.path().join("s.yaml"), format!("name: ext\nmodels: [tiny-bert]\nruntimes: [{{name: b, external: {bent}, session: {{graph_optimization: basic}}}}]\ninput_chars: [50]\nbatch_sizes: [1]\niterations: 3\nwarmup: 1\n")).unwrap();
    let out = common::xbench()
        .current_dir(dir.path())
        .args(["scenario", "s.yaml", "--out", "out", "--models-dir"])
        .arg(repo("models"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("runtimes[0].session") && stderr.contains("external program does not have") && stderr.contains("fix:"), "{stderr}");
    assert!(!dir.path().join("out").exists(), "nothing ran");
}

#[test]
fn a_broken_tmpdir_is_named_as_the_cause_not_python() {
    let dir = tempfile::tempdir().unwrap();
    let bent = repo("tests/data/external/bent.py");
    std::fs::write(dir.path().join("s.yaml"), format!("name: t\nmodels: [tiny-bert]\nruntimes: [tract-cpu, {{name: b, external: {bent}}}]\ninput_chars: [50]\nbatch_sizes: [1]\niterations: 2\nwarmup: 0\n")).unwrap();
    let out = common::xbench()
        .current_dir(dir.path())
        .env("TMPDIR", "/nonexistent/tmp")
        .args(["scenario", "s.yaml", "--no-setup", "--out", "out", "--models-dir"])
        .arg(repo("models"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // tract ran; the program's runtime is not usable, for the reason that holds.
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let r = read_results(&dir.path().join("out/results.json")).unwrap();
    let c = r.cells.iter().find(|c| c.runtime == RuntimeId::new("b")).unwrap();
    let e = c.error.as_deref().unwrap_or("");
    assert_eq!(c.status, Status::Skipped);
    assert!(e.contains("the temporary folder /nonexistent/tmp") && e.contains("fix: point TMPDIR at a folder that exists") && !e.contains("install Python"), "{e}");
}
