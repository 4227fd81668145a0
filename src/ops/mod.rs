//! The operation benchmark: the paper's 21 operations at its 85 shapes (or new ones), each built
//! here as a single-operation ONNX graph and measured like any model (cells named `op:…`).

mod cases;
mod family;
mod graphs;
mod scenario;

pub use cases::{paper_cases, published, OpCase, PaperCase, OP_PREFIX, PAPER_COLUMNS};
pub use family::{AxisRule, Family};
pub use graphs::{build, has_undefined_writes, row_indices, write, OPSET, OUTPUT};
pub use scenario::{cases_of, description, scenario_specs, spec, write_graphs};

/// True for the model name of an operation case (`op:Softmax dim=…`).
pub fn is_op(model: &str) -> bool {
    model.starts_with(OP_PREFIX)
}
