//! tract on CPU: pure Rust, always available. The graph is concretized to each cell's shapes and
//! optimized once per shape (untimed, in `prepare`); the plan's state is reused across iterations.

use anyhow::{anyhow, Context, Result};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::model::typed::TypedSimpleState;

use super::{Availability, Output, RuntimeId, RuntimeOptions, Session, SessionInfo, TRACT_VERSION};
use crate::inputs::{Feed, HostTensor};
use crate::models::ModelSpec;

pub fn check() -> Availability {
    Availability {
        runtime: RuntimeId::TractCpu,
        usable: true,
        version: Some(TRACT_VERSION.to_string()),
        detail: "built in (pure Rust, CPU)".into(),
    }
}

pub struct TractSession {
    model: InferenceModel,
    /// Shapes of the current plan's inputs, and the state reused across runs.
    current: Option<(Vec<Vec<usize>>, TypedSimpleState)>,
    /// Outputs of the last run, as tract returned them.
    last: TVec<TValue>,
    info: SessionInfo,
}

impl TractSession {
    pub fn load(model: &ModelSpec, opts: &RuntimeOptions) -> Result<TractSession> {
        let threads = opts.threads.unwrap_or_else(super::ort_rt::default_threads);
        if threads > 1 {
            tract_linalg::multithread::set_default_executor(tract_linalg::multithread::Executor::multithread(threads));
        }
        // value_info (intermediate shapes) is ignored: exporters write it with the graph's symbolic
        // dims (`batch`, `sequence`), which clash with the concrete input shapes set in `prepare`.
        // tract infers those shapes itself.
        let inference = tract_onnx::onnx()
            .with_ignore_value_info(true)
            .model_for_path(&model.onnx)
            .map_err(|e| anyhow!("tract cannot load {}: {e:#}", model.onnx.display()))?;
        let nodes = inference.nodes().len();
        Ok(TractSession {
            model: inference,
            current: None,
            last: tvec!(),
            info: SessionInfo {
                threads: if threads > 1 { format!("matrix products on {threads} threads") } else { "1 thread".into() },
                providers: vec!["tract CPU".into()],
                version: TRACT_VERSION.to_string(),
                placement: vec![("tract CPU".into(), nodes)],
                io: None,
            },
        })
    }
}

fn datum_type(t: &HostTensor) -> DatumType {
    match t {
        HostTensor::I64(_) => i64::datum_type(),
        HostTensor::I32(_) => i32::datum_type(),
        HostTensor::F32(_) => f32::datum_type(),
    }
}

impl Session for TractSession {
    fn prepare(&mut self, feed: &Feed) -> Result<()> {
        let shapes: Vec<Vec<usize>> = feed.tensors.iter().map(|(_, t)| t.shape().to_vec()).collect();
        if self.current.as_ref().is_some_and(|(s, _)| *s == shapes) {
            return Ok(());
        }
        // Drop the previous plan first: its packed weights would otherwise double the memory.
        self.current = None;
        self.last.clear();
        let mut model = self.model.clone();
        let input_outlets = model.input_outlets()?.to_vec();
        if input_outlets.len() != feed.tensors.len() {
            return Err(anyhow!("tract sees {} graph inputs but {} are fed", input_outlets.len(), feed.tensors.len()));
        }
        for (ix, (_, t)) in feed.tensors.iter().enumerate() {
            model.set_input_fact(ix, InferenceFact::dt_shape(datum_type(t), t.shape()))?;
        }
        let plan = model
            .into_optimized()
            .map_err(|e| anyhow!("tract cannot optimize the graph for shapes {shapes:?}: {e:#}"))?
            .into_runnable()
            .context("tract cannot build a plan")?;
        let state = TypedSimpleState::new(&plan).context("tract cannot start a plan state")?;
        self.current = Some((shapes, state));
        Ok(())
    }

    fn run(&mut self, feed: &Feed) -> Result<()> {
        if self.current.is_none() {
            self.prepare(feed)?;
        }
        let (_, state) = self.current.as_mut().expect("prepared above");
        let inputs: TVec<TValue> = feed
            .tensors
            .iter()
            .map(|(_, t)| -> TValue {
                match t {
                    HostTensor::I64(a) => Tensor::from(a.clone()).into(),
                    HostTensor::I32(a) => Tensor::from(a.clone()).into(),
                    HostTensor::F32(a) => Tensor::from(a.clone()).into(),
                }
            })
            .collect();
        self.last = state.run(inputs).map_err(|e| anyhow!("tract run failed: {e:#}"))?;
        Ok(())
    }

    fn outputs(&mut self, feed: &Feed) -> Result<Vec<Output>> {
        if self.last.is_empty() {
            self.run(feed)?;
        }
        let (_, state) = self.current.as_ref().expect("run prepares a plan");
        let m = state.model();
        let names = m.outputs.iter().map(|o| m.outlet_label(*o).map(str::to_string).unwrap_or_else(|| m.node(o.node).name.clone()));
        self.last
            .iter()
            .zip(names)
            .map(|(v, name)| {
                let data = v.cast_to::<f32>()?.to_plain_array_view::<f32>()?.to_owned();
                Ok(Output { name, data })
            })
            .collect()
    }

    fn info(&self) -> SessionInfo {
        self.info.clone()
    }
}
