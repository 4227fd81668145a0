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
use crate::scenario::Precision;

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
    pub fn precision(&self, options: &BTreeMap<String, String>, opts: &RuntimeOptions) -> Option<Precision> {
        let on = |k: &str| options.get(k).is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true"));
        match self {
            Ep::Cuda => {
                let tf32 = !opts.no_tf32 && options.get("use_tf32").is_none_or(|v| !matches!(v.as_str(), "0" | "false"));
                tf32.then_some(Precision::Tf32)
            }
            Ep::TensorRt if on("trt_int8_enable") => Some(Precision::Int8),
            Ep::TensorRt if on("trt_fp16_enable") => Some(Precision::Fp16),
            Ep::TensorRt if on("trt_bf16_enable") => Some(Precision::Bf16),
            // TensorRT builds with TF32 allowed unless told otherwise.
            Ep::TensorRt => Some(Precision::Tf32),
            Ep::Plugin(p) if p.name == "openvino" => openvino_precision(options),
            _ => None,
        }
    }
}

/// OpenVINO's inference precision. OpenVINO's own hint in `load_config` (`{"CPU":
/// {"INFERENCE_PRECISION_HINT": "f32"}}`) decides where given. On the CPU device the plugin (1.8.1)
/// leaves the `precision` option without effect — seen on an Intel Xeon with AMX: `FP32` and
/// `ACCURACY` gave outputs identical to the default's, 2e-2 from ONNX Runtime's CPU provider,
/// while the hint above gave 4e-6 — so there the default holds: bf16 on a CPU with bfloat16
/// instructions (AVX-512 BF16, AMX), else fp32. On its GPUs and NPUs, `precision` (default fp16).
fn openvino_precision(options: &BTreeMap<String, String>) -> Option<Precision> {
    let device = options.get("device_type").map(|d| d.to_ascii_uppercase()).unwrap_or_else(|| "CPU".into());
    let gpu = device.starts_with("GPU") || device.starts_with("NPU");
    if let Some(hint) = load_config_hint(options, if gpu { &device[..3] } else { "CPU" }) {
        return Some(hint);
    }
    if gpu {
        return Some(match options.get("precision").map(|p| p.to_ascii_uppercase()).as_deref() {
            Some("FP32") | Some("ACCURACY") => Precision::Fp32,
            Some("BF16") => Precision::Bf16,
            _ => Precision::Fp16,
        });
    }
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let bf16 = flags.lines().filter(|l| l.starts_with("flags")).any(|l| l.split_whitespace().any(|f| f == "avx512_bf16" || f == "amx_bf16"));
    Some(if bf16 { Precision::Bf16 } else { Precision::Fp32 })
}

/// `INFERENCE_PRECISION_HINT` for `device` in OpenVINO's `load_config` JSON, as a precision class.
fn load_config_hint(options: &BTreeMap<String, String>, device: &str) -> Option<Precision> {
    let config: serde_json::Value = serde_json::from_str(options.get("load_config")?).ok()?;
    let (_, settings) = config.as_object()?.iter().find(|(k, _)| k.to_ascii_uppercase().starts_with(device))?;
    let hint = settings.get("INFERENCE_PRECISION_HINT")?.as_str()?.to_ascii_lowercase();
    Some(match hint.as_str() {
        "f32" | "fp32" => Precision::Fp32,
        "bf16" => Precision::Bf16,
        "f16" | "fp16" => Precision::Fp16,
        _ => return None,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn openvino_precision_follows_its_own_hint_and_not_the_precision_option_on_the_cpu() {
        let cpu_default = openvino_precision(&opts(&[]));
        assert_eq!(openvino_precision(&opts(&[("precision", "FP32")])), cpu_default);
        assert_eq!(openvino_precision(&opts(&[("load_config", r#"{"CPU": {"INFERENCE_PRECISION_HINT": "f32"}}"#)])).map(Precision::as_str), Some("fp32"));
        assert_eq!(openvino_precision(&opts(&[("load_config", r#"{"CPU": {"INFERENCE_PRECISION_HINT": "bf16"}}"#)])).map(Precision::as_str), Some("bf16"));
        assert_eq!(openvino_precision(&opts(&[("device_type", "GPU"), ("precision", "FP32")])).map(Precision::as_str), Some("fp32"));
        assert_eq!(openvino_precision(&opts(&[("device_type", "GPU")])).map(Precision::as_str), Some("fp16"));
        assert_eq!(openvino_precision(&opts(&[("load_config", "not json")])), cpu_default);
    }
}
