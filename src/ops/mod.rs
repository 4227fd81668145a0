//! The operation benchmark's graphs: each case (see `scenario::ops`) built here as a
//! single-operation ONNX graph, written where a run keeps its files, and measured like any model.

mod graphs;

pub use crate::scenario::ops::{is_op, paper_cases, published, Family, OpCase, OP_PREFIX, PAPER_COLUMNS};
pub use graphs::{build, row_indices, write, write_into, OPSET, OUTPUT};
