//! Scenario files: the YAML a user writes (`file`) and the validated grid of cells it expands to (`plan`).

mod file;
mod plan;

pub use file::{ScenarioFile, ToleranceFile, TolerancesFile};
pub use plan::{Cell, Group, Plan, PlanOptions, TextSource};

/// The scenario used when `xbench scenario` is given no file: the quick grid on the committed tiny model.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../scenarios/quick.yaml");
