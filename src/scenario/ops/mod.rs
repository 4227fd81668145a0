//! Operation cases, as a scenario names them: the paper's 21 operations at its 85 shapes (or new
//! ones), written in the paper's notation. Building each case's graph is `crate::ops`' work.

mod case;
mod entries;
mod family;
mod name;

pub use case::{paper_cases, published, OpCase, PaperCase, PAPER_COLUMNS};
pub use entries::cases_of;
pub use family::{AxisRule, Family};
pub use name::{case_text, is_op, op_name, OP_PREFIX};

/// What the graph of `case` is and how its shapes are read.
pub fn description(case: &OpCase) -> String {
    format!("{}: {}. {}", case.name(), case.family.graph(), case.family.reading())
}
