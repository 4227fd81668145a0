//! The `xbench` binary: parses arguments, calls the library, prints errors, picks the exit code.

mod cli;
mod commands;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(e) = commands::dispatch(cli.command) {
        if e.is::<commands::Interrupted>() {
            eprintln!("xbench: {e}");
            std::process::exit(130);
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
