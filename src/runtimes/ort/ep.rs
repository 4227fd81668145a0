//! The execution provider of an ONNX Runtime runtime — one of the library's own (CPU, CUDA,
//! CoreML, TensorRT, or any other by its name), or a plugin from a library of its own — and how
//! each is attached to a session with its options: registration must succeed, never a silent
//! fallback to the CPU.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use ort::ep::{self, ArbitrarilyConfigurableExecutionProvider, ExecutionProvider};
use ort::session::builder::SessionBuilder;

use super::plugins::{self, Plugin};
use crate::results::DeviceClass;
use crate::runtimes::RuntimeOptions;

#[derive(Debug, Clone)]
pub enum Ep {
    Cpu,
    Cuda,
    CoreMl,
    TensorRt,
    /// A catalogued plugin (OpenVINO, WebGPU, MLX, TensorRT for RTX).
    Plugin(&'static Plugin),
    /// A plugin from a library the scenario names (`ep:` with `ep_library:`).
    Library { ep: String, library: PathBuf },
    /// Another provider built into the library, by its name (`ep:` alone).
    Named(String),
}

impl Ep {
    /// The provider's name as ONNX Runtime reports it (in placement, too).
    pub fn name(&self) -> &str {
        match self {
            Ep::Cpu => ep::CPU::NAME,
            Ep::Cuda => ep::CUDA::NAME,
            Ep::CoreMl => ep::CoreML::NAME,
            Ep::TensorRt => ep::TensorRT::NAME,
            Ep::Plugin(p) => p.ep,
            Ep::Library { ep, .. } | Ep::Named(ep) => ep,
        }
    }

    /// The provider of an `ep:` entry: a catalogued plugin, a library given, or one built in.
    pub fn from_entry(provider: &str, library: Option<&Path>) -> Ep {
        match (library, provider) {
            (Some(l), _) => Ep::Library { ep: provider.to_string(), library: l.to_path_buf() },
            (None, p) if p == ep::CPU::NAME => Ep::Cpu,
            (None, p) if p == ep::CUDA::NAME => Ep::Cuda,
            (None, p) if p == ep::CoreML::NAME => Ep::CoreMl,
            (None, p) if p == ep::TensorRT::NAME => Ep::TensorRt,
            (None, p) => match plugins::plugin(p) {
                Some(plugin) => Ep::Plugin(plugin),
                None => Ep::Named(p.to_string()),
            },
        }
    }

    pub fn device(&self, options: &BTreeMap<String, String>) -> DeviceClass {
        match self {
            Ep::Cuda | Ep::TensorRt => DeviceClass::CudaGpu,
            Ep::CoreMl => DeviceClass::Apple,
            Ep::Plugin(p) if p.name == "openvino" => match options.get("device_type").map(|d| d.to_ascii_uppercase()) {
                Some(d) if d.starts_with("GPU") || d.starts_with("NPU") => DeviceClass::Gpu,
                _ => DeviceClass::Cpu,
            },
            Ep::Plugin(p) => p.device,
            Ep::Cpu | Ep::Library { .. } | Ep::Named(_) => DeviceClass::Cpu,
        }
    }

    /// The plugin library this provider comes from, found (or why not).
    pub fn library(&self, opts: &RuntimeOptions) -> Option<std::result::Result<plugins::Found, String>> {
        match self {
            Ep::Plugin(p) => Some(p.find(opts.ep_libs.get(p.name).map(PathBuf::as_path))),
            Ep::Library { library, .. } => Some(if library.is_file() {
                Ok(plugins::Found { path: library.canonicalize().unwrap_or_else(|_| library.clone()), found_by: "ep_library".into() })
            } else {
                Err(format!("no plugin library at {}\n  fix: correct `ep_library:` in the scenario", library.display()))
            }),
            _ => None,
        }
    }

    /// Attaches the provider, with `options` (its own keys), to `builder`. The session settings'
    /// `device` chooses among the devices a plugin offers (`cpu`, `gpu`, `npu`; default: the
    /// first); `cpu_arena` turns the CPU provider's memory arena on (off by default).
    pub fn attach(&self, builder: SessionBuilder, options: &BTreeMap<String, String>, settings: &super::Settings, opts: &RuntimeOptions) -> Result<SessionBuilder> {
        let device = settings.device.as_deref();
        let name = self.name().to_string();
        let fail = |e: String| anyhow!("{name} failed to register: {e}");
        let legacy = |mut b: SessionBuilder, dispatch: ep::ExecutionProviderDispatch| -> Result<SessionBuilder> {
            dispatch.register(&mut b).map_err(|e| fail(e.to_string()))?;
            Ok(b)
        };
        match self {
            Ep::Cpu => legacy(builder, ep::CPU::default().with_arena_allocator(settings.cpu_arena == Some(true)).build().error_on_failure()),
            Ep::CoreMl => legacy(builder, ep::CoreML::default().build().error_on_failure()),
            Ep::Cuda => {
                let mut cuda = ep::CUDA::default().with_device_id(opts.device_id as i32).with_cuda_graph(opts.cuda_graph).with_tf32(!opts.no_tf32);
                for (k, v) in options {
                    cuda = cuda.with_arbitrary_config(k, v);
                }
                legacy(builder, cuda.build().error_on_failure())
            }
            Ep::TensorRt => {
                let mut trt = ep::TensorRT::default().with_device_id(opts.device_id as i32);
                for (k, v) in options {
                    trt = trt.with_arbitrary_config(k, v);
                }
                legacy(builder, trt.build().error_on_failure())
            }
            Ep::Named(_) => append_by_name(builder, &name, options).map_err(fail),
            Ep::Plugin(_) | Ep::Library { .. } => {
                let found = self.library(opts).expect("a plugin has a library").map_err(|e| anyhow!(e))?;
                let env = super::env::environment(opts)?;
                if let Ep::Plugin(p) = self {
                    p.preload(&found.path);
                }
                plugins::register(env, self.name(), &found.path).map_err(|e| anyhow!(e))?;
                let chosen = devices(env, &name).into_iter().find(|d| device.is_none_or(|want| kind_of(d).eq_ignore_ascii_case(want)));
                let Some(dev) = chosen else {
                    bail!("{name} offers no {}device on this machine\n  fix: {}", device.map(|d| format!("{d} ")).unwrap_or_default(), self.hardware_fix());
                };
                let prefixed: Vec<(String, String)> = options.iter().map(|(k, v)| (format!("{name}.{k}"), v.clone())).collect();
                builder.with_devices([dev], Some(&prefixed)).map_err(|e| fail(e.to_string()))
            }
        }
    }

    /// What to do when the provider offers no device here.
    pub fn hardware_fix(&self) -> String {
        match self {
            Ep::Plugin(p) => format!("{} runs on {}; this machine's hardware is {}", p.ep, p.hardware, crate::machine::detect().cpu),
            _ => "run it on hardware the provider supports".into(),
        }
    }

    /// The arithmetic the provider computes in, where its options or defaults say (`None`: the model's own).
    pub fn precision(&self, options: &BTreeMap<String, String>, opts: &RuntimeOptions) -> Option<String> {
        let on = |k: &str| options.get(k).is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true"));
        match self {
            Ep::Cuda => {
                let tf32 = !opts.no_tf32 && options.get("use_tf32").is_none_or(|v| !matches!(v.as_str(), "0" | "false"));
                tf32.then(|| "tf32".to_string())
            }
            Ep::TensorRt if on("trt_int8_enable") => Some("int8".into()),
            Ep::TensorRt if on("trt_fp16_enable") => Some("fp16".into()),
            Ep::TensorRt if on("trt_bf16_enable") => Some("bf16".into()),
            // TensorRT builds with TF32 allowed unless told otherwise.
            Ep::TensorRt => Some("tf32".into()),
            Ep::Plugin(p) if p.name == "openvino" => openvino_precision(options),
            _ => None,
        }
    }
}

/// OpenVINO's inference precision: the `precision` option, else its default for the device — on a
/// CPU with bfloat16 instructions (AVX-512 BF16, AMX) that is bf16, else fp32; fp16 on its GPUs.
fn openvino_precision(options: &BTreeMap<String, String>) -> Option<String> {
    match options.get("precision").map(|p| p.to_ascii_uppercase()).as_deref() {
        Some("FP32") | Some("ACCURACY") => return Some("fp32".into()),
        Some("FP16") => return Some("fp16".into()),
        Some("BF16") => return Some("bf16".into()),
        _ => {}
    }
    let gpu = options.get("device_type").is_some_and(|d| d.to_ascii_uppercase().starts_with("GPU") || d.to_ascii_uppercase().starts_with("NPU"));
    if gpu {
        return Some("fp16".into());
    }
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let bf16 = flags.lines().filter(|l| l.starts_with("flags")).any(|l| l.split_whitespace().any(|f| f == "avx512_bf16" || f == "amx_bf16"));
    Some(if bf16 { "bf16" } else { "fp32" }.into())
}

/// The devices the environment offers for provider `name` (plugins are never registered with virtual devices).
pub fn devices<'e>(env: &'e ort::environment::Environment, name: &str) -> Vec<ort::device::Device<'e>> {
    env.devices().filter(|d| d.ep().ok() == Some(name)).collect()
}

/// `cpu`, `gpu` or `npu`.
pub fn kind_of(d: &ort::device::Device<'_>) -> &'static str {
    match d.hardware_device().ty() {
        ort::memory::DeviceType::GPU => "gpu",
        ort::memory::DeviceType::NPU => "npu",
        _ => "cpu",
    }
}

/// `SessionOptionsAppendExecutionProvider`: a provider built into the library, by name, with its options.
fn append_by_name(mut builder: SessionBuilder, name: &str, options: &BTreeMap<String, String>) -> std::result::Result<SessionBuilder, String> {
    use std::ffi::CString;
    use ort::AsPointer;
    let cstr = |s: &str| CString::new(s).map_err(|_| format!("`{s}` holds a NUL byte"));
    let provider = cstr(name)?;
    let keys: Vec<CString> = options.keys().map(|k| cstr(k)).collect::<std::result::Result<_, _>>()?;
    let values: Vec<CString> = options.values().map(|v| cstr(v)).collect::<std::result::Result<_, _>>()?;
    let key_ptrs: Vec<*const std::ffi::c_char> = keys.iter().map(|k| k.as_ptr()).collect();
    let value_ptrs: Vec<*const std::ffi::c_char> = values.iter().map(|v| v.as_ptr()).collect();
    // SAFETY: the builder's options pointer is valid while the builder lives; the strings outlive the call.
    let status = unsafe { (ort::api().SessionOptionsAppendExecutionProvider)(builder.ptr_mut(), provider.as_ptr(), key_ptrs.as_ptr(), value_ptrs.as_ptr(), key_ptrs.len()) };
    // SAFETY: `status` is the status the call just returned, read once.
    unsafe { ort::Error::result_from_status(status) }.map_err(|e| e.to_string())?;
    Ok(builder)
}
