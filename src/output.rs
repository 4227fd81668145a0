//! The binary's one output channel on stderr: the library's diagnostics through `tracing`
//! (`RUST_LOG` sets what is shown; by default xbench's own messages, nothing with `--quiet`), and a
//! run's progress — an `indicatif` bar with ETA on a terminal, plain lines otherwise.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;
use xbench::results::{Availability, CellRecord, Status};
use xbench::run::{Observer, Progress};

/// The progress bar, while a run shows one; diagnostics are printed above it.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Prints `line` on stderr, above the progress bar when there is one.
pub fn line(text: &str) {
    match BAR.lock().ok().and_then(|b| b.clone()) {
        Some(bar) => bar.println(text),
        None => eprintln!("{text}"),
    }
}

/// Writes diagnostics to stderr, suspending the bar while they are written.
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match BAR.lock().ok().and_then(|b| b.clone()) {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf)).map(|_| buf.len()),
            None => std::io::stderr().write_all(buf).map(|_| buf.len()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Stderr;
    fn make_writer(&'a self) -> Stderr {
        Stderr
    }
}

/// `xbench: message`, `warning: message`, `error: message`; lines a worker's native library
/// printed pass unchanged.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let prefix = match *event.metadata().level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            _ if event.metadata().target() == "xbench::worker" => "",
            _ => "xbench: ",
        };
        w.write_str(prefix)?;
        // Debug lines carry the wall-clock time (UTC, to the 0.1 ms), so that the parent's and the
        // workers' lines can be put on one timeline.
        if *event.metadata().level() >= Level::DEBUG {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let day = now.as_secs() % 86_400;
            write!(w, "[{:02}:{:02}:{:02}.{:04}] ", day / 3600, day / 60 % 60, day % 60, now.subsec_micros() / 100)?;
        }
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Sets up diagnostics: `RUST_LOG` when set, else xbench's own messages (errors only when `quiet`).
pub fn init(quiet: bool) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(if quiet { "xbench=error" } else { "xbench=info" }),
    };
    let _ = tracing_subscriber::fmt().with_env_filter(filter).event_format(Plain).with_writer(Stderr).try_init();
}

/// Removes the progress bar, if one is shown.
pub fn finish() {
    if let Some(bar) = BAR.lock().ok().and_then(|mut b| b.take()) {
        bar.finish_and_clear();
    }
}

/// Shows a run's progress on stderr.
pub struct Display {
    quiet: bool,
}

impl Display {
    pub fn new(quiet: bool) -> Display {
        Display { quiet }
    }

    /// Starts the bar for `total` cells when stderr is a terminal.
    pub fn start(&self, total: usize, done: usize) {
        if self.quiet || !std::io::stderr().is_terminal() {
            return;
        }
        let bar = ProgressBar::new(total as u64).with_position(done as u64);
        bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} cells · {elapsed_precise} · ETA {eta}").unwrap_or_else(|_| ProgressStyle::default_bar()));
        if let Ok(mut b) = BAR.lock() {
            *b = Some(bar);
        }
    }
}

fn fmt_secs(s: f64) -> String {
    let s = s.round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

/// A finished cell in one line, as plain output shows it.
pub fn cell_line(r: &CellRecord, p: Progress) -> String {
    let width = p.total.to_string().len();
    let op = xbench::scenario::ops::is_op(&r.model);
    // Operation cases have no text: their line names the case and the runtime only.
    let generated = r.generation.as_deref().filter(|_| r.status == Status::Ok);
    let what = match (op, r.data_set, &r.tokens) {
        _ if r.new_tokens.is_some() => {
            let prompt = generated.map_or(r.chars, |g| g.prompt_tokens.iter().max().copied().unwrap_or(0));
            format!("{} · {} · prompt {prompt} → {} new × batch {}", r.model, r.runtime, r.new_tokens.unwrap_or(0), r.batch)
        }
        (true, _, _) => format!("{} · {}", r.model, r.runtime),
        (_, Some(n), _) => format!("{} · {} · test_data_set_{n}", r.model, r.runtime),
        (_, _, Some(_)) => format!("{} · {} · {} chars × batch {}", r.model, r.runtime, r.chars, r.batch),
        _ if r.chars == 0 => format!("{} · {} · batch {}", r.model, r.runtime, r.batch),
        _ => format!("{} · {} · length {} × batch {}", r.model, r.runtime, r.chars, r.batch),
    };
    let result = match (&r.status, &r.summary, generated) {
        (Status::Ok, Some(_), Some(g)) => {
            let decode = match (&g.decode, g.decode_tokens_per_s) {
                (Some(d), Some(t)) => format!(", decode {:.3} ms/token ({t:.0} t/s)", d.median_ms),
                _ => String::new(),
            };
            format!("first token {:.3} ms{decode}", g.prefill.mean_ms)
        }
        (Status::Ok, Some(s), None) if op => format!("mean {:.4} ms [{:.4}, {:.4}]", s.mean_ms, s.mean_ci95_ms[0], s.mean_ci95_ms[1]),
        (Status::Ok, Some(s), None) => {
            let fed = match &r.tokens {
                Some(t) => format!("{} tokens padded to {}", t.tokens_per_row.iter().sum::<usize>(), t.padded_len),
                None => r.fed.iter().map(|f| format!("{} {:?}", f.name, f.shape)).collect::<Vec<_>>().join(", "),
            };
            format!("mean {:.3} ms [{:.3}, {:.3}] ({fed})", s.mean_ms, s.mean_ci95_ms[0], s.mean_ci95_ms[1])
        }
        _ => format!("FAILED: {}", r.error.as_deref().unwrap_or("").lines().next().unwrap_or("")),
    };
    let eta = p.eta_s.map(|s| format!(" — ETA {}", fmt_secs(s))).unwrap_or_default();
    format!("[{:>width$}/{}] {what}: {result}{eta}", p.done, p.total)
}

impl Observer for Display {
    fn note(&mut self, text: &str) {
        if !self.quiet {
            line(&format!("note: {text}"));
        }
    }

    fn runtimes(&mut self, availability: &[Availability]) {
        if self.quiet {
            return;
        }
        let w = availability.iter().map(|a| a.runtime.as_str().len()).max().unwrap_or(0).max(11);
        let indent = format!("\n{}", " ".repeat(w + 1));
        for a in availability {
            let state = if a.usable { "ok" } else { "not usable, its cells are skipped" };
            line(&format!("{:<w$} {state}: {}", a.runtime.as_str(), a.detail.replace('\n', &indent)));
        }
    }

    fn cell(&mut self, record: &CellRecord, progress: Progress) {
        if self.quiet {
            return;
        }
        match BAR.lock().ok().and_then(|b| b.clone()) {
            // The bar shows the ETA; the line above it need not.
            Some(bar) => {
                bar.println(cell_line(record, Progress { eta_s: None, ..progress }));
                bar.set_position(progress.done as u64);
            }
            None => line(&cell_line(record, progress)),
        }
    }

    fn group_failed(&mut self, model: &str, runtime: &str, why: &str) {
        if !self.quiet {
            line(&format!("error: {model} on {runtime}: {why}"));
        }
    }
}
