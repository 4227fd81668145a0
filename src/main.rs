//! The `xbench` binary: parses arguments, sets up the output, calls the library, prints errors,
//! picks the exit code.

mod cli;
mod commands;
mod output;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    output::init(cli.command.quiet());
    if let Err(e) = commands::dispatch(cli.command) {
        output::finish();
        if e.is::<commands::Interrupted>() {
            eprintln!("xbench: {e}");
            std::process::exit(xbench::run::stop::exit_code());
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
