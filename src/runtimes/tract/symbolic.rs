//! The graph typed once, its inputs' dims as the file declares them (symbols such as `batch` and
//! `sequence`), and kept by the session: each new shape's plan is made from it by binding the
//! symbols to the cell's sizes and optimizing for them, without reading and analysing the file again.

use std::collections::HashMap;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::model::typed::TypedSimpleState;

/// The typed graph of a session, with symbolic input dims.
pub(super) struct Symbolic {
    model: TypedModel,
}

impl Symbolic {
    /// Types and declutters the graph as read. Fails where tract cannot type it without concrete
    /// input shapes (an input of unknown rank or element type, an operator that needs them).
    pub fn new(inference: InferenceModel) -> TractResult<Symbolic> {
        let model = inference.into_typed()?.into_decluttered()?;
        for ix in 0..model.inputs.len() {
            let fact = model.input_fact(ix)?;
            anyhow::ensure!(fact.konst.is_none(), "input {ix} is a constant");
        }
        Ok(Symbolic { model })
    }

    /// Each symbol's value for inputs of these element types and shapes; `None` where they do not
    /// fit the graph's declared inputs (another count, type or rank, another fixed size, a dim that
    /// is an expression, one symbol given two sizes).
    fn bind(&self, inputs: &[(DatumType, Vec<usize>)]) -> Option<HashMap<Symbol, TDim>> {
        if inputs.len() != self.model.inputs.len() {
            return None;
        }
        let mut values: HashMap<Symbol, TDim> = HashMap::new();
        for (ix, (dt, shape)) in inputs.iter().enumerate() {
            let fact = self.model.input_fact(ix).ok()?;
            if fact.datum_type != *dt || fact.rank() != shape.len() {
                return None;
            }
            for (dim, &size) in fact.shape.iter().zip(shape) {
                match dim {
                    TDim::Val(v) if *v == size as i64 => {}
                    TDim::Sym(s) => match values.get(s) {
                        Some(v) if *v != TDim::Val(size as i64) => return None,
                        Some(_) => {}
                        None => {
                            values.insert(s.clone(), TDim::Val(size as i64));
                        }
                    },
                    _ => return None,
                }
            }
        }
        Some(values)
    }

    /// The graph for inputs of these types and shapes, optimized for them; `None` where they do not
    /// fit the declared inputs (see `bind`), for the caller to make the plan from the file as read.
    pub fn optimized_for(&self, inputs: &[(DatumType, Vec<usize>)]) -> Option<TractResult<TypedModel>> {
        let values = self.bind(inputs)?;
        Some(self.model.set_symbols(&values).and_then(TypedModel::into_optimized))
    }

    /// As `optimized_for`, the typed graph given up as soon as the concrete one is made of it: the
    /// plan then holds the only reference to each weight as read, and drops it once packed.
    pub fn into_optimized_for(self, inputs: &[(DatumType, Vec<usize>)]) -> Option<TractResult<TypedModel>> {
        let values = self.bind(inputs)?;
        let concrete = self.model.set_symbols(&values);
        drop(self);
        Some(concrete.and_then(TypedModel::into_optimized))
    }
}

impl Symbolic {
    /// One plan for every shape, its symbols bound at run time from the inputs (a decoder's past
    /// length changes with every step: a plan per shape would be made per token).
    pub fn runnable(&self) -> TractResult<TypedSimpleState> {
        let plan = self.model.clone().into_optimized()?.into_runnable()?;
        TypedSimpleState::new(&plan)
    }
}
