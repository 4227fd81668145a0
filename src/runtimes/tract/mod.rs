//! tract on CPU: pure Rust, always available. The graph is read and typed once, with its inputs'
//! symbolic dims (`symbolic`); each cell's shapes get a plan made from it, concretized and
//! optimized once per shape (untimed, in `prepare`); the plan's state is reused across iterations.
//! A large model's typed graph is not kept beside its plan (`KEEP_GRAPH_MAX_BYTES`): its later
//! shapes' plans are made of the file read again.

mod decode;
mod read;
mod symbolic;

use anyhow::{anyhow, bail, Context, Result};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::model::typed::TypedSimpleState;

use read::read_model;
use symbolic::Symbolic;

use super::{Availability, DeviceClass, Engine, HostMemory, Output, Runtime, RuntimeId, RuntimeOptions, Session, SessionInfo, TimerClass, Timing, TRACT_VERSION};
use crate::inputs::Feed;
use crate::tensor::{ElemType, Tensor as HostTensor};

/// What to do about a graph tract does not support.
const UNSUPPORTED_FIX: &str = "run this model on ONNX Runtime (ort-cpu); tract does not implement every ONNX operator and form (see the operator named above)";

/// The largest ONNX file whose typed graph a session keeps between shapes. A kept graph holds the
/// weights as read beside the plan's, which tract packs anew for its kernels: at most this much
/// more memory. A larger model's plan is made of the typed graph itself, and each later new shape's
/// plan of the file read again, so that its weights are never held twice.
const KEEP_GRAPH_MAX_BYTES: u64 = 64 << 20;

/// tract on the CPU: built in, always usable.
pub struct Tract;

impl Runtime for Tract {
    fn check(&self, id: RuntimeId, _opts: &RuntimeOptions) -> Availability {
        Availability { runtime: id, usable: true, version: Some(TRACT_VERSION.to_string()), detail: "built in (pure Rust, CPU)".into(), device: None, engine: None }
    }

    fn load(&self, onnx: &std::path::Path, opts: &RuntimeOptions) -> Result<Box<dyn Session>> {
        Ok(Box::new(TractSession::load(onnx, opts)?))
    }

    fn device(&self) -> DeviceClass {
        DeviceClass::Cpu
    }

    fn engine(&self) -> Engine {
        Engine::Tract
    }
}

pub struct TractSession {
    /// The file, read again for each new shape's plan where the graph cannot be typed once.
    onnx: std::path::PathBuf,
    /// The graph typed once, from which each new shape's plan is made. `None` where tract cannot
    /// type the graph without the cells' shapes, and once a plan is made of it when it is not kept.
    graph: Option<Symbolic>,
    /// Whether `graph` is kept for the session's life (files up to `KEEP_GRAPH_MAX_BYTES`), holding
    /// the weights as read beside the plan's packed ones.
    keep_graph: bool,
    /// Shapes of the current plan's inputs, and the state reused across runs.
    current: Option<(Vec<Vec<usize>>, TypedSimpleState)>,
    /// Outputs of the last run, as tract returned them.
    last: TVec<TValue>,
    info: SessionInfo,
}

impl TractSession {
    pub fn load(onnx: &std::path::Path, opts: &RuntimeOptions) -> Result<TractSession> {
        let threads = opts.threads.unwrap_or_else(super::default_threads);
        if threads > 1 {
            tract_linalg::multithread::set_default_executor(tract_linalg::multithread::Executor::multithread(threads));
        }
        let _loading = super::loading::Loading::begin();
        let inference = read_model(onnx).map_err(|e| anyhow!("not supported by tract: it cannot load {}: {e:#}\n  fix: {UNSUPPORTED_FIX}", onnx.display()))?;
        let nodes = inference.nodes().len();
        let graph = Symbolic::new(inference)
            .inspect_err(|e| tracing::debug!("{}: tract cannot type the graph before the inputs' shapes are known ({e:#}); each new shape's plan reads the file", onnx.display()))
            .ok();
        let keep_graph = std::fs::metadata(onnx).is_ok_and(|m| m.len() <= KEEP_GRAPH_MAX_BYTES);
        Ok(TractSession {
            onnx: onnx.to_path_buf(),
            graph,
            keep_graph,
            current: None,
            last: tvec!(),
            info: SessionInfo {
                threads: if threads > 1 { format!("matrix products on {threads} threads") } else { "1 thread".into() },
                providers: vec!["tract CPU".into()],
                version: TRACT_VERSION.to_string(),
                placement: vec![("tract CPU".into(), nodes)],
                io: None,
                precision: None,
                settings: Default::default(),
                // tract computes on host tensors, copied into its own per run inside the timer.
                timer_class: Some(TimerClass::new(Timing::EndToEnd, Some(HostMemory::NoCopies))),
                notes: None,
            },
        })
    }
}

/// tract's type for an element type.
fn datum_type(t: ElemType) -> Result<DatumType> {
    Ok(match t {
        ElemType::Float32 => DatumType::F32,
        ElemType::Float16 => DatumType::F16,
        ElemType::Float64 => DatumType::F64,
        ElemType::Int8 => DatumType::I8,
        ElemType::Int16 => DatumType::I16,
        ElemType::Int32 => DatumType::I32,
        ElemType::Int64 => DatumType::I64,
        ElemType::Uint8 => DatumType::U8,
        ElemType::Uint16 => DatumType::U16,
        ElemType::Uint32 => DatumType::U32,
        ElemType::Uint64 => DatumType::U64,
        ElemType::Bool => DatumType::Bool,
        ElemType::String => DatumType::String,
        ElemType::Bfloat16 => bail!("tract has no bfloat16 type, so it cannot take bfloat16 inputs\n  fix: run this model on ONNX Runtime (ort-cpu)"),
        other => bail!("not supported by tract: it has no {other} type\n  fix: {UNSUPPORTED_FIX}"),
    })
}

/// A host tensor as tract's own (a copy, made per run inside the timer as ONNX Runtime's is not).
fn to_tract(t: &HostTensor) -> Result<Tensor> {
    Ok(match t {
        HostTensor::F32(a) => Tensor::from(a.clone()),
        HostTensor::F16(a) => Tensor::from(a.clone()),
        HostTensor::F64(a) => Tensor::from(a.clone()),
        HostTensor::I8(a) => Tensor::from(a.clone()),
        HostTensor::I16(a) => Tensor::from(a.clone()),
        HostTensor::I32(a) => Tensor::from(a.clone()),
        HostTensor::I64(a) => Tensor::from(a.clone()),
        HostTensor::U8(a) => Tensor::from(a.clone()),
        HostTensor::U16(a) => Tensor::from(a.clone()),
        HostTensor::U32(a) => Tensor::from(a.clone()),
        HostTensor::U64(a) => Tensor::from(a.clone()),
        HostTensor::Bool(a) => Tensor::from(a.clone()),
        HostTensor::Str(a) => Tensor::from(a.clone()),
        HostTensor::BF16(_) => bail!("tract has no bfloat16 type, so it cannot take bfloat16 inputs\n  fix: run this model on ONNX Runtime (ort-cpu)"),
        HostTensor::Packed(p) => bail!("not supported by tract: it has no {} type\n  fix: {UNSUPPORTED_FIX}", p.ty),
    })
}

/// tract's output as a host tensor of the same element type.
fn from_tract(v: &TValue) -> Result<HostTensor> {
    fn arr<T: Datum + Clone>(v: &TValue) -> Result<ndarray::ArrayD<T>> {
        Ok(v.to_plain_array_view::<T>()?.to_owned())
    }
    Ok(match v.datum_type() {
        DatumType::F32 => HostTensor::F32(arr(v)?),
        DatumType::F16 => HostTensor::F16(arr(v)?),
        DatumType::F64 => HostTensor::F64(arr(v)?),
        DatumType::I8 => HostTensor::I8(arr(v)?),
        DatumType::I16 => HostTensor::I16(arr(v)?),
        DatumType::I32 => HostTensor::I32(arr(v)?),
        DatumType::I64 => HostTensor::I64(arr(v)?),
        DatumType::U8 => HostTensor::U8(arr(v)?),
        DatumType::U16 => HostTensor::U16(arr(v)?),
        DatumType::U32 => HostTensor::U32(arr(v)?),
        DatumType::U64 => HostTensor::U64(arr(v)?),
        DatumType::Bool => HostTensor::Bool(arr(v)?),
        DatumType::String => HostTensor::Str(arr(v)?),
        // Shapes computed in the graph (the Shape operator's output) are tract's symbolic dims: int64 in ONNX.
        DatumType::TDim => HostTensor::I64(arr(&v.cast_to::<i64>()?.into_owned().into_tvalue())?),
        other => bail!("not supported by tract: it gave an output of type {other:?}, which has no ONNX type\n  fix: {UNSUPPORTED_FIX}"),
    })
}

/// The graph for inputs of these types and shapes, read from the file again and optimized for them
/// (the outer error: the file cannot be read; the inner: tract cannot optimize the graph).
fn fresh_plan(onnx: &std::path::Path, inputs: &[(DatumType, Vec<usize>)]) -> Result<TractResult<TypedModel>> {
    let mut model = read_model(onnx).map_err(|e| anyhow!("tract cannot read {} again for shapes {:?}: {e:#}", onnx.display(), inputs.iter().map(|(_, s)| s).collect::<Vec<_>>()))?;
    let input_outlets = model.input_outlets()?.to_vec();
    if input_outlets.len() != inputs.len() {
        bail!("tract sees {} graph inputs but {} are fed", input_outlets.len(), inputs.len());
    }
    for (ix, (dt, shape)) in inputs.iter().enumerate() {
        model.set_input_fact(ix, InferenceFact::dt_shape(*dt, shape))?;
    }
    Ok(model.into_optimized())
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
        let _loading = super::loading::Loading::begin();
        let inputs: Vec<(DatumType, Vec<usize>)> = feed.tensors.iter().map(|(_, t)| Ok((datum_type(t.elem_type())?, t.shape().to_vec()))).collect::<Result<_>>()?;
        // Where the typed graph does not take these inputs, the file as read does (or tract says why not).
        let typed = match self.keep_graph {
            true => self.graph.as_ref().and_then(|g| g.optimized_for(&inputs)),
            false => self.graph.take().and_then(|g| g.into_optimized_for(&inputs)),
        };
        let optimized = match typed {
            Some(Ok(model)) => Ok(model),
            Some(Err(e)) => {
                tracing::debug!("{}: tract cannot make a plan for shapes {shapes:?} from the typed graph ({e:#}); reading the file", self.onnx.display());
                fresh_plan(&self.onnx, &inputs)?
            }
            None => fresh_plan(&self.onnx, &inputs)?,
        };
        let plan = optimized
            .map_err(|e| anyhow!("not supported by tract: it cannot optimize the graph for input shapes {shapes:?}: {e:#}\n  fix: {UNSUPPORTED_FIX}"))?
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
        let inputs: TVec<TValue> = feed.tensors.iter().map(|(_, t)| to_tract(t).map(TValue::from)).collect::<Result<_>>()?;
        self.last = state.run(inputs).map_err(|e| anyhow!("tract run failed: {e:#}\n  fix: check the inputs against what the model expects (`xbench models` lists them), or run it on ort-cpu to compare"))?;
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
            .map(|(v, name)| Ok(Output { name, data: from_tract(v)? }))
            .collect()
    }

    fn info(&self) -> SessionInfo {
        self.info.clone()
    }

    fn decoder(&mut self, layout: &crate::models::DecoderLayout, io: &crate::models::ModelIo) -> Result<Box<dyn super::decode::Decoder + '_>> {
        // One plan for all steps: a per-shape plan held beside it would hold the weights twice.
        self.current = None;
        self.last.clear();
        let _loading = super::loading::Loading::begin();
        let int32 = super::decode::index_type(io, &layout.input_ids)? == ElemType::Int32;
        let state = match &self.graph {
            Some(g) => g.runnable(),
            None => {
                let inference = read_model(&self.onnx).map_err(|e| anyhow!("tract cannot read {} again: {e:#}", self.onnx.display()))?;
                Symbolic::new(inference).and_then(|g| g.runnable())
            }
        }
        .map_err(|e| anyhow!("not supported by tract: it cannot make one plan for every step of the decoder (symbolic batch, sequence and past lengths): {e:#}\n  fix: {UNSUPPORTED_FIX}"))?;
        Ok(Box::new(decode::TractDecoder::new(state, layout, int32)?))
    }
}

#[cfg(test)]
mod tests;
