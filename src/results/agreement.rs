//! How a cell's outputs compared with another run of the same inputs, as recorded: against the
//! reference runtime (`Agreement`), and against the sibling model (`SiblingAgreement`). The
//! comparisons themselves are `crate::analysis`' work.

use serde::{Deserialize, Deserializer, Serialize};

use crate::scenario::{RuntimeId, Tolerance};

/// JSON has no infinity or NaN: serde_json writes them as null. A difference that was not finite
/// (a NaN or infinite output) reads back as infinity, so such results files stay readable.
fn non_finite_as_null<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

/// Differences in one output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputDiff {
    pub name: String,
    #[serde(deserialize_with = "non_finite_as_null")]
    pub max_abs: f64,
    /// Largest |a − r| / |r| over elements with |r| > the absolute tolerance.
    #[serde(deserialize_with = "non_finite_as_null")]
    pub max_rel: f64,
    pub compared: usize,
    /// The verdict; null when nothing was compared (an empty output).
    pub within_tolerance: Option<bool>,
}

/// A cell's outputs against a reference: the reference runtime's, or the model's own expected outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// The reference runtime, or `expected` for the model's own expected outputs.
    pub reference: String,
    #[serde(deserialize_with = "non_finite_as_null")]
    pub max_abs: f64,
    #[serde(deserialize_with = "non_finite_as_null")]
    pub max_rel: f64,
    /// The verdict; null when no element was compared (every output empty): never agreement.
    pub within_tolerance: Option<bool>,
    /// The tolerance applied (that of the loosest precision of the model and the two sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Tolerance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<crate::scenario::Precision>,
    pub outputs: Vec<OutputDiff>,
    /// Problems that prevent a comparison (missing output, shape mismatch).
    pub problems: Vec<String>,
}

/// A cell's outputs against the same cell of the model's sibling (`compare_with` in its
/// model.yaml: the fp32 model an fp16 model was made from), on the same inputs. Kept apart from
/// `Agreement`, which compares runtimes on one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiblingAgreement {
    /// The sibling model.
    pub sibling: String,
    /// The runtime of the sibling's cell used: the cell's own runtime, or the reference runtime
    /// when the sibling's cell on the same runtime has no outputs (`fallback` says why).
    pub runtime: RuntimeId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// The tolerance applied: fp16's when either model is fp16.
    pub tolerance: Tolerance,
    /// Largest differences over real token positions; null when nothing was compared.
    pub max_abs: Option<f64>,
    pub max_rel: Option<f64>,
    /// The verdict; null when the two cells' inputs differ, so that no verdict can be given.
    pub within_tolerance: Option<bool>,
    pub outputs: Vec<OutputDiff>,
    /// Why the comparison is off or impossible (inputs that differ, a missing output, a shape mismatch).
    pub problems: Vec<String>,
}

/// What a report or a run says about a model whose `compare_with` names a model the scenario does not run.
pub fn missing_sibling_note(model: &str, sibling: &str) -> String {
    format!("`{model}` is compared with `{sibling}` (`compare_with` in its model.yaml), which this scenario does not run: add `{sibling}` to `models` to compare them")
}


impl Agreement {
    /// True when the outputs were compared and differ beyond the tolerance (or do not match up).
    pub fn disagrees(&self) -> bool {
        self.within_tolerance == Some(false)
    }

    /// A comparison with `reference` that could not be made, for the reason `why`.
    pub fn not_compared(reference: &str, why: String) -> Agreement {
        Agreement { reference: reference.to_string(), max_abs: 0.0, max_rel: 0.0, within_tolerance: None, tolerance: None, precision: None, outputs: Vec::new(), problems: vec![why] }
    }

    /// True when the outputs were compared and agree.
    pub fn agrees(&self) -> bool {
        self.within_tolerance == Some(true)
    }
}

/// The reference name of a comparison with a model's own expected outputs.
pub const EXPECTED: &str = "expected";

impl SiblingAgreement {
    /// A comparison with `sibling` that could not be made, for the reasons in `problems`.
    pub fn not_compared(sibling: &str, runtime: RuntimeId, tolerance: Tolerance, problems: Vec<String>) -> SiblingAgreement {
        SiblingAgreement {
            sibling: sibling.to_string(),
            runtime,
            fallback: None,
            tolerance,
            max_abs: None,
            max_rel: None,
            within_tolerance: None,
            outputs: Vec::new(),
            problems,
        }
    }

    /// True when the outputs were compared and differ beyond the tolerance (or do not match up).
    pub fn disagrees(&self) -> bool {
        self.within_tolerance == Some(false)
    }
}
