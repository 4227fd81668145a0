//! The `xbench` binary: parses arguments, calls the library, prints errors, picks the exit code.

mod cli;
mod commands;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(e) = commands::dispatch(cli.command) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
