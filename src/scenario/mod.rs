//! Scenarios: the YAML a user writes (`file`), validated into a typed `Plan` (`validate`, pure),
//! and the notations a scenario holds — runtime names, Hub repositories, operation cases,
//! tolerances, built-in texts.

mod file;
pub mod generate;
mod hub_ref;
mod model_item;
pub mod inputs;
pub mod ops;
mod plan;
mod precision;
mod runtime_entry;
mod runtime_id;
pub mod texts;
mod tolerance;
mod validate;

pub use file::{ScenarioFile, ToleranceFile, TolerancesFile};
pub use generate::{GenerateFile, GenerateSpec, PromptUnit};
pub use hub_ref::{HubRef, ENTRY_PREFIX};
pub use model_item::{ModelItem, ModelTable, MODEL_KEYS};
pub use inputs::{InputSpec, Role, Scalar, SetBy, Values};
pub use plan::{model_name, Cell, Group, ModelEntry, ModelSettings, Plan, Point, Settings, TextSource};
pub use runtime_entry::{RuntimeEntry, RuntimeKind, RuntimeRequest};
pub use runtime_id::RuntimeId;
pub use precision::Precision;
pub use tolerance::{Tolerance, Tolerances};
pub use validate::{validate, Overrides, DEFAULT_CELL_TIMEOUT_S};

/// The scenario used when `xbench scenario` is given no file: the quick grid on the committed tiny model.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../scenarios/quick.yaml");

/// Where a scenario comes from: its path, or the built-in quick scenario.
pub fn origin_of(path: Option<&std::path::Path>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => "built-in scenario (scenarios/quick.yaml)".to_string(),
    }
}
