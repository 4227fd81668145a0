//! An ONNX Runtime session with one execution provider: created with ONNX Runtime's log captured
//! so that node placement is known (a provider that takes no node fails the load), then run
//! through the I/O mode the run asked for.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use ort::logging::LogLevel;
use ort::memory::AllocationDevice;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{RunOptions, Session as OrtInner};

use super::env::{loaded, parse_placement, with_captured_log};
use super::io::{Bound, Core, Host, IoMode, Staged, Staging};
use super::{Ep, Ort};
use crate::inputs::Feed;
use crate::runtimes::{default_threads, HostMemory, Output, RuntimeOptions, Session, SessionInfo, TimerClass, Timing};

/// The graph of `onnx` with its weights referred to by their offsets in the file, and the
/// file's folder; `None` (load the file as it is) when there is nothing to refer to or the file
/// cannot be read so.
fn by_offset(onnx: &Path) -> Option<(Vec<u8>, std::path::PathBuf)> {
    let file = std::fs::File::open(onnx).ok()?;
    // SAFETY: the map is only read, and dropped before ONNX Runtime reads the file.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let name = onnx.file_name()?.to_str()?;
    let dir = std::fs::canonicalize(onnx).ok()?.parent()?.to_path_buf();
    match crate::onnx::by_offset::weights_by_offset(&map, name) {
        Ok(graph) => graph.map(|g| (g, dir)),
        Err(e) => {
            tracing::debug!("{}: loaded as it is ({e:#})", onnx.display());
            None
        }
    }
}

/// Fields drop in order: the I/O mode's bound values before the session that made them.
pub(super) struct OrtSession {
    io: Box<dyn IoMode>,
    core: Core,
    info: SessionInfo,
    /// Created for CUDA graphs (`--cuda-graph` on ort-cuda).
    graph: bool,
    /// Copies through page-locked host memory (`--pinned-io` on ort-cuda).
    pinned: bool,
    timing: Timing,
}

impl OrtSession {
    pub fn load(ort: &Ort, onnx: &Path, opts: &RuntimeOptions) -> Result<OrtSession> {
        let l = loaded(opts).map_err(|e| anyhow!(e))?;
        let threads = opts.threads.unwrap_or_else(default_threads);
        let builder = OrtInner::builder(&l.env).map_err(|e| anyhow!("{e}"))?.with_intra_threads(threads).map_err(ort::Error::<()>::from)?;
        let builder = ort.settings.apply(builder)?;
        // A graph optimized by an earlier run for this file, library, provider and options is read
        // as it is; else this load's optimized graph is saved for the next.
        let key = format!("{} {} {:?} {:?} {:?}", l.version, ort.ep.name(), ort.options, ort.settings.graph_optimization, ort.settings.device);
        let cached = ort.settings.optimized_cache.as_deref().map(|dir| (super::cache::lookup(dir, onnx, &key), dir));
        let (source, builder) = match &cached {
            Some((c, _)) if c.hit => (c.path.as_path(), builder.with_optimization_level(GraphOptimizationLevel::Disable).map_err(ort::Error::<()>::from)?),
            Some((c, dir)) => {
                std::fs::create_dir_all(dir).map_err(|e| anyhow!("cannot create the optimized-graph folder {}: {e}", dir.display()))?;
                (onnx, builder.with_optimized_model_path(super::cache::partial(&c.path)).map_err(ort::Error::<()>::from)?)
            }
            None => (onnx, builder),
        };
        let mut builder = ort.ep.attach(builder, &ort.options, &ort.settings, opts)?.with_log_level(LogLevel::Verbose).map_err(ort::Error::<()>::from)?;
        // On the CPU and CUDA providers (and no optimized-graph cache) the graph is given without
        // its weights, which ONNX Runtime reads from the file by offset (`weights_by_offset`): the
        // file's contents are never held twice, nor parsed as part of the graph (on CUDA the weights
        // go from the file to the GPU).
        let light = if matches!(ort.ep, Ep::Cpu | Ep::Cuda) && cached.is_none() { by_offset(onnx) } else { None };
        if let Some((_, dir)) = &light {
            builder = builder.with_config_entry("session.model_external_initializers_file_folder_path", dir.to_string_lossy()).map_err(ort::Error::<()>::from)?;
        }
        let (committed, log) = with_captured_log(|| match &light {
            // A graph ONNX Runtime does not take so (which should not happen) is loaded as it is.
            Some((graph, _)) => builder.commit_from_memory(graph).or_else(|e| {
                tracing::debug!("{}: the graph without its weights was refused ({e}); loading the file as it is", onnx.display());
                builder.commit_from_file(onnx)
            }),
            None => builder.commit_from_file(source),
        });
        if let Some((c, _)) = cached.as_ref().filter(|(c, _)| !c.hit) {
            let partial = super::cache::partial(&c.path);
            if committed.is_ok() {
                std::fs::rename(&partial, &c.path).map_err(|e| anyhow!("cannot keep the optimized graph {}: {e}", c.path.display()))?;
                super::cache::record(&c.path, onnx, &key)?;
            } else {
                let _ = std::fs::remove_file(&partial);
            }
        }
        // The graph saved where `optimized_model` says is recorded as xbench's (it may be written again).
        if let Some(p) = ort.settings.optimized_model.as_deref().filter(|_| committed.is_ok()) {
            super::cache::record(p, onnx, &key)?;
        }
        let session = committed.map_err(|e| load_error(&l.version, onnx, &e.to_string()))?;
        let placement = parse_placement(&log);
        let wanted = ort.ep.name();
        let total: usize = placement.iter().map(|(_, n)| n).sum();
        // A graph that ONNX Runtime folds to constants leaves no node to place: on the CPU provider
        // that is the model's own computation; any other provider would run nothing of it.
        let cpu = wanted == "CPUExecutionProvider";
        if placement.is_empty() && !cpu {
            bail!(
                "ONNX Runtime did not report where the graph's nodes were placed (a graph it folds to constants has none left), so {wanted} cannot be confirmed to run them\n  fix: run this model on ort-cpu"
            );
        }
        if !cpu && !placement.iter().any(|(ep, n)| ep == wanted && *n > 0) {
            bail!(
                "{wanted} was asked for but took none of the graph's {total} nodes (placement: {})\n  fix: the model's operators are not supported by this provider; use another runtime",
                placement.iter().map(|(ep, n)| format!("{ep} {n}")).collect::<Vec<_>>().join(", ")
            );
        }
        let mut run_options = RunOptions::new()?;
        run_options.set_log_level(LogLevel::Warning)?;
        let output_names = session.outputs().iter().map(|o| o.name().to_string()).collect();
        let cuda = matches!(ort.ep, Ep::Cuda);
        let mut info = SessionInfo {
            threads: if cuda {
                // Which arithmetic fp32 matrix products use is part of what the numbers mean.
                format!("intra-op {threads}, inter-op 1, spinning on; fp32 matrix products in {}", if opts.no_tf32 { "fp32 (TF32 off)" } else { "TF32 (ONNX Runtime's default)" })
            } else {
                format!("intra-op {threads}, inter-op 1, spinning on")
            },
            providers: vec![wanted.to_string()],
            version: l.version.clone(),
            placement,
            io: None,
            precision: ort.ep.precision(&ort.options, opts),
            settings: ort.options.iter().map(|(k, v)| (k.clone(), v.clone())).chain(ort.settings.describe()).collect(),
            timer_class: None,
            notes: None,
        };
        if let Some((c, _)) = &cached {
            let what = if c.hit { "read (graph optimization off)" } else { "optimized and saved" };
            info.settings.insert("session.optimized_graph".into(), format!("{what}: {}", c.path.display()));
        }
        let device = if cuda { (AllocationDevice::CUDA, opts.device_id as i32) } else { (AllocationDevice::CPU, 0) };
        let core = Core { session, run_options, output_names, device };
        // CUDA graphs are an ort-cuda setting; other providers run as they would without it.
        let graph = opts.cuda_graph && cuda;
        let io: Box<dyn IoMode> = if opts.pinned_io || graph {
            let (staging, described) = Staging::new(&core, cuda, opts.timing, graph)?;
            info.io = Some(described);
            Box::new(Staged::new(staging))
        } else {
            match opts.timing {
                Timing::EndToEnd => Box::<Host>::default(),
                Timing::DeviceResident => Box::<Bound>::default(),
            }
        };
        // End to end, the CPU provider reads the host tensors; the CUDA provider copies them from
        // ordinary host memory itself, or xbench copies them through pinned buffers. What other
        // providers do with host memory is theirs, and not stated.
        let host = match (cpu, cuda, opts.pinned_io || graph) {
            (true, _, _) => Some(HostMemory::NoCopies),
            (_, true, true) => Some(HostMemory::Pinned),
            (_, true, false) => Some(HostMemory::Pageable),
            _ => None,
        };
        info.timer_class = Some(TimerClass::new(opts.timing, host));
        Ok(OrtSession { io, core, info, graph, pinned: opts.pinned_io && cuda, timing: opts.timing })
    }
}

/// Why a session did not load: ONNX Runtime's refusal to capture the graph in CUDA graphs (with
/// `--cuda-graph`), else the model itself.
fn load_error(version: &str, onnx: &Path, e: &str) -> anyhow::Error {
    let lower = e.to_lowercase();
    if lower.contains("graph capture") || lower.contains("cuda graph") {
        return anyhow!(
            "ONNX Runtime {version} will not capture {} in CUDA graphs: {e}\n  fix: run it without --cuda-graph (ONNX Runtime captures a graph only when every node runs on the CUDA provider, apart from shape computations on the CPU with no copy between them, and no node is control flow such as If or Loop: a merged decoder's use_cache_branch is one); `python scripts/gpu/placement.py MODEL.onnx` with onnxruntime-gpu lists where ONNX Runtime puts the nodes",
            onnx.display()
        );
    }
    anyhow!(
        "not supported by ONNX Runtime {version}: it cannot load {}: {e}\n  fix: the model needs an operator, opset or IR version this ONNX Runtime lacks, or is not valid ONNX; run it on another runtime (tract-cpu), or with another ONNX Runtime (--ort-lib)",
        onnx.display()
    )
}

impl Session for OrtSession {
    fn prepare(&mut self, feed: &Feed) -> Result<()> {
        self.io.prepare(&mut self.core, feed)
    }

    fn run(&mut self, feed: &Feed) -> Result<()> {
        self.io.run(&mut self.core, feed)
    }

    fn outputs(&mut self, feed: &Feed) -> Result<Vec<Output>> {
        self.io.outputs(&mut self.core, feed)
    }

    fn timer_label(&self) -> String {
        self.io.label()
    }

    fn info(&self) -> SessionInfo {
        self.info.clone()
    }

    fn decoder(&mut self, layout: &crate::models::DecoderLayout, io: &crate::models::ModelIo) -> Result<Box<dyn crate::runtimes::decode::Decoder + '_>> {
        if self.timing == Timing::DeviceResident {
            bail!("generation is timed end to end (each step's next ids are picked from its logits in host memory), so a device-resident timer would not say what was measured\n  fix: generate without --timing device-resident (`session: {{timing: end-to-end}}`)");
        }
        let int32 = crate::runtimes::decode::index_type(io, &layout.input_ids)? == crate::tensor::ElemType::Int32;
        Ok(if self.graph {
            Box::new(super::decode_graph::GraphDecoder::new(&mut self.core, layout, int32)?)
        } else {
            Box::new(super::decode::OrtDecoder::new(&mut self.core, layout, int32, self.pinned)?)
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_graph_onnx_runtime_will_not_capture_fails_its_load_with_why_and_the_fix() {
        let onnx = std::path::Path::new("models/qwen/model.onnx");
        for refusal in [
            "This session cannot use the graph capture feature as requested by the user as the model has control flow nodes which can't be supported by CUDAExecutionProvider",
            "This session cannot use the graph capture feature as requested by the user as all compute graph nodes have not been partitioned to the CUDAExecutionProvider",
            "This session cannot use the CUDA Graph feature as requested by the user as all the graph nodes have been assigned to CUDA EP, but there are memcpy nodes",
        ] {
            let e = format!("{:#}", super::load_error("1.31.1", onnx, refusal));
            assert!(e.contains("will not capture models/qwen/model.onnx in CUDA graphs") && e.contains(refusal) && e.contains("fix: run it without --cuda-graph"), "{e}");
        }
        let e = format!("{:#}", super::load_error("1.31.1", onnx, "Unsupported model IR version: 12"));
        assert!(e.contains("not supported by ONNX Runtime 1.31.1") && !e.contains("--cuda-graph"), "{e}");
    }
}
