//! The `xbench` binary: parses arguments, sets up the output, calls the library, prints errors,
//! picks the exit code. It alone ends the process: the command runs on a thread of its own
//! while `main` waits for it, or for its run's stop token to say that the run was abandoned (a
//! stop at once with nothing left to stop), and then exits at once.

mod cli;
mod commands;
mod output;

use clap::Parser;
use xbench::run::Stop;

fn main() {
    let cli = cli::Cli::parse();
    output::init(cli.command.quiet());
    if matches!(cli.command, cli::Cmd::Worker) {
        // A worker ends without unloading its session: the exit is immediate.
        let code = xbench::run::worker_main().unwrap_or_else(|e| {
            eprintln!("error: {}", error_text(&e));
            1
        });
        std::process::exit(code);
    }
    let stop = Stop::new();
    stop.wake_on_abandon();
    let command = {
        let (stop, main) = (stop.clone(), std::thread::current());
        std::thread::Builder::new()
            .name("xbench".into())
            .stack_size(64 << 20)
            .spawn(move || {
                let r = commands::dispatch(cli.command, &stop);
                main.unpark();
                r
            })
            .expect("cannot start the command's thread")
    };
    // Woken by either; the command's thread is finished only once its closure has returned,
    // after it woke this one, hence the timeout.
    while !command.is_finished() && !stop.abandoned() {
        std::thread::park_timeout(std::time::Duration::from_millis(20));
    }
    if stop.abandoned() {
        output::finish();
        std::process::exit(stop.exit_code());
    }
    let done = command.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    if let Err(e) = done {
        output::finish();
        if e.is::<commands::Interrupted>() {
            eprintln!("xbench: {e}");
            std::process::exit(stop.exit_code());
        }
        if e.is::<commands::CellsFailed>() {
            eprintln!("xbench: {e}");
            std::process::exit(2);
        }
        eprintln!("error: {}", error_text(&e));
        std::process::exit(1);
    }
}
/// The error chain on one line, outermost first, then its `fix:` lines: a message may carry a fix
/// while its cause (often an OS error) is known only one level down.
fn error_text(e: &anyhow::Error) -> String {
    let mut what = Vec::new();
    let mut fixes = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let (head, fix) = text.split_once("\n  fix: ").unwrap_or((&text, ""));
        what.push(head.to_string());
        if !fix.is_empty() && !fixes.iter().any(|f| f == fix) {
            fixes.push(fix.to_string());
        }
    }
    let mut out = what.join(": ");
    for f in fixes {
        out.push_str("\n  fix: ");
        out.push_str(&f);
    }
    out
}
