//! Warnings about how far a cell's numbers can be trusted, from what was recorded: rows cut at
//! the model's maximum positions, a fastest run too short for the clock, an interval of the mean
//! wider than the share the scenario allows.

use crate::results::{CellRecord, Flag, FlagKind, Status};

/// The warning kinds this module sets.
const KINDS: [FlagKind; 4] = [FlagKind::Truncated, FlagKind::Stalled, FlagKind::TimerResolution, FlagKind::NoisyInterval];

/// Recomputes the warnings of one cell; `max_positions` is its model's, `ci_warn_share` the scenario's.
pub fn check_cell(c: &mut CellRecord, max_positions: Option<usize>, ci_warn_share: f64) {
    c.flags.retain(|f| !KINDS.contains(&f.kind));
    if c.status != Status::Ok {
        return;
    }
    let mut found = Vec::new();
    if let Some(t) = c.tokens.as_ref().filter(|t| t.truncated_rows > 0) {
        found.push(Flag::new(
            FlagKind::Truncated,
            format!("{} of {} rows truncated at the model's {} positions", t.truncated_rows, c.batch, max_positions.unwrap_or(0)),
        ));
    }
    if !c.stalled_ms.is_empty() {
        let times: Vec<String> = c.stalled_ms.iter().map(|ms| format!("{:.0} ms", ms)).collect();
        found.push(Flag::new(
            FlagKind::Stalled,
            format!(
                "{} timed run(s) dropped ({}): each took over a second and over 100× the median, so the process was stopped or starved, not measured; {} runs kept",
                c.stalled_ms.len(),
                times.join(", "),
                c.samples_ms.len()
            ),
        ));
    }
    if let (Some(s), Some(res)) = (&c.summary, c.timer_resolution_ms) {
        if s.min_ms < 100.0 * res {
            found.push(Flag::new(FlagKind::TimerResolution, format!("fastest run ({:.4} ms) is under 100× the timer's resolution ({:.6} ms)", s.min_ms, res)));
        }
    }
    if let Some(s) = &c.summary {
        let ci = s.mean_ci95_ms;
        if ci[1] - ci[0] > ci_warn_share * s.mean_ms {
            found.push(Flag::new(
                FlagKind::NoisyInterval,
                format!(
                    "95% interval of the mean [{:.4}, {:.4}] ms is wider than {:.0}% of the mean: noisy, measure longer (`min_time_s`) or on a quieter machine",
                    ci[0],
                    ci[1],
                    ci_warn_share * 100.0
                ),
            ));
        }
    }
    for f in found {
        super::add_flag(c, f);
    }
}
