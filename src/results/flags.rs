//! Cell flags: a kind that reports and summaries count and mark, and a detail that says what was
//! seen. Serialized as `{"kind": "…", "detail": "…"}`; nothing reads the detail to decide anything.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    /// Outputs differ from the reference runtime's beyond the tolerance (✗).
    Disagrees,
    /// Outputs differ from the model's own expected outputs (its test data) beyond the tolerance (✗).
    ExpectedDisagrees,
    /// With three or more results for the same inputs, this one departs from the others, which agree.
    Departs,
    /// Outputs differ from the sibling model's (`compare_with`) beyond the tolerance (✗).
    SiblingDisagrees,
    /// The sibling's cell was fed other inputs, so no verdict could be given.
    SiblingNotCompared,
    /// Outputs could not be compared although both cells ran (a saved file is unreadable, …).
    NotCompared,
    /// Latency that does not scale with work, or a FLOP rate no device reaches (?).
    Suspicious,
    /// Rows cut at the model's maximum positions.
    Truncated,
    /// The fastest run is too short for the clock to time well.
    TimerResolution,
    /// The interval of the mean is wide: a noisy measurement.
    NoisyInterval,
    /// Timed runs a stall spoiled (the process stopped or starved) were dropped.
    Stalled,
    /// Anything else (version 1 results whose flag text matches no kind).
    Other,
}

impl FlagKind {
    /// Whether the flag says that outputs disagree (marked ✗).
    pub fn is_disagreement(self) -> bool {
        matches!(self, FlagKind::Disagrees | FlagKind::ExpectedDisagrees | FlagKind::SiblingDisagrees)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub kind: FlagKind,
    pub detail: String,
}

impl Flag {
    pub fn new(kind: FlagKind, detail: impl Into<String>) -> Flag {
        Flag { kind, detail: detail.into() }
    }
}

/// The flag as reports print it: suspicious cells keep the word, so a reader knows the mark.
impl std::fmt::Display for Flag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            FlagKind::Suspicious => write!(f, "suspicious: {}", self.detail),
            _ => f.write_str(&self.detail),
        }
    }
}
