//! The few CUDA runtime calls xbench makes itself: copies between host memory and the GPU
//! buffers it binds to an ONNX Runtime session (`--pinned-io`, `--cuda-graph`). The library is
//! the one ONNX Runtime's CUDA provider loads, found through the same library path.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

use anyhow::{anyhow, Result};

/// `cudaMemcpyKind`.
#[derive(Debug, Clone, Copy)]
#[repr(i32)]
pub enum Direction {
    HostToDevice = 1,
    DeviceToHost = 2,
}

type Memcpy = unsafe extern "C" fn(*mut c_void, *const c_void, usize, c_int) -> c_int;
type ErrorString = unsafe extern "C" fn(c_int) -> *const c_char;
type MallocHost = unsafe extern "C" fn(*mut *mut c_void, usize) -> c_int;
type FreeHost = unsafe extern "C" fn(*mut c_void) -> c_int;
type Synchronize = unsafe extern "C" fn() -> c_int;

pub struct CudaRt {
    _lib: libloading::Library,
    memcpy: Memcpy,
    error_string: ErrorString,
    malloc_host: MallocHost,
    free_host: FreeHost,
    synchronize: Synchronize,
    pub name: &'static str,
}

const NAMES: [&str; 3] = ["libcudart.so.13", "libcudart.so.12", "libcudart.so"];

static CUDART: OnceLock<std::result::Result<CudaRt, String>> = OnceLock::new();

/// The CUDA runtime library, loaded once per process.
pub fn get() -> Result<&'static CudaRt> {
    CUDART
        .get_or_init(|| {
            let mut tried = Vec::new();
            for name in NAMES {
                // SAFETY: loading the CUDA runtime runs its initialisers only; the symbols are
                // looked up with their documented C signatures.
                match unsafe { libloading::Library::new(name) } {
                    Ok(lib) => unsafe {
                        let memcpy = *lib.get::<Memcpy>(b"cudaMemcpy").map_err(|e| format!("{name}: {e}"))?;
                        let error_string = *lib.get::<ErrorString>(b"cudaGetErrorString").map_err(|e| format!("{name}: {e}"))?;
                        let malloc_host = *lib.get::<MallocHost>(b"cudaMallocHost").map_err(|e| format!("{name}: {e}"))?;
                        let free_host = *lib.get::<FreeHost>(b"cudaFreeHost").map_err(|e| format!("{name}: {e}"))?;
                        let synchronize = *lib.get::<Synchronize>(b"cudaDeviceSynchronize").map_err(|e| format!("{name}: {e}"))?;
                        return Ok(CudaRt { _lib: lib, memcpy, error_string, malloc_host, free_host, synchronize, name });
                    },
                    Err(e) => tried.push(format!("{name}: {e}")),
                }
            }
            Err(format!(
                "the CUDA runtime library could not be loaded ({})\n  fix: add the folder holding libcudart.so (the CUDA libraries ONNX Runtime's CUDA provider uses) to LD_LIBRARY_PATH",
                tried.join("; ")
            ))
        })
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

impl CudaRt {
    fn check(&self, code: c_int, what: &str) -> Result<()> {
        if code == 0 {
            return Ok(());
        }
        // SAFETY: cudaGetErrorString returns a static C string for any code.
        let msg = unsafe { CStr::from_ptr((self.error_string)(code)).to_string_lossy().into_owned() };
        Err(anyhow!("{what} failed: {msg} (CUDA error {code})"))
    }

    /// Page-locked host memory of `bytes` bytes, which the GPU copies to and from at full speed.
    pub fn pinned(&'static self, bytes: usize) -> Result<PinnedBuf> {
        let mut ptr = std::ptr::null_mut();
        // SAFETY: cudaMallocHost writes a pointer to `bytes` bytes (or fails and writes nothing).
        self.check(unsafe { (self.malloc_host)(&mut ptr, bytes.max(1)) }, &format!("cudaMallocHost ({bytes} bytes)"))?;
        Ok(PinnedBuf { rt: self, ptr, bytes })
    }

    /// A synchronous copy of `bytes` bytes (`cudaMemcpy`): it returns once the data has arrived.
    ///
    /// # Safety
    /// `dst` and `src` must be valid for `bytes` bytes on the sides `dir` names.
    pub unsafe fn copy(&self, dst: *mut c_void, src: *const c_void, bytes: usize, dir: Direction) -> Result<()> {
        if bytes == 0 {
            return Ok(());
        }
        self.check((self.memcpy)(dst, src, bytes, dir as c_int), &format!("cudaMemcpy ({dir:?}, {bytes} bytes)"))
    }
}

impl CudaRt {
    /// Waits for all the device's work (`cudaDeviceSynchronize`): copies from pageable host memory
    /// may still be in flight when `cudaMemcpy` returns, and ONNX Runtime's stream does not wait
    /// for the default stream.
    pub fn synchronize(&self) -> Result<()> {
        // SAFETY: cudaDeviceSynchronize takes no arguments.
        self.check(unsafe { (self.synchronize)() }, "cudaDeviceSynchronize")
    }
}

/// Page-locked host memory, freed on drop.
pub struct PinnedBuf {
    rt: &'static CudaRt,
    ptr: *mut c_void,
    pub bytes: usize,
}

impl PinnedBuf {
    pub fn ptr(&self) -> *mut c_void {
        self.ptr
    }
}

impl Drop for PinnedBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from cudaMallocHost and is freed once.
        unsafe { (self.rt.free_host)(self.ptr) };
    }
}

/// Host memory xbench copies through (staged inputs and outputs, a decoder's integer inputs and
/// logits), kept between runs and grown when a run needs more: ordinary memory, or page-locked
/// memory the GPU copies to and from at full speed.
pub enum HostBuf {
    Pageable(Vec<f32>),
    Pinned(Option<PinnedBuf>),
}

impl HostBuf {
    pub fn new(pinned: bool) -> HostBuf {
        if pinned {
            HostBuf::Pinned(None)
        } else {
            HostBuf::Pageable(Vec::new())
        }
    }

    /// At least `bytes` bytes (4-byte aligned; what they held before is not kept when it grows).
    /// It grows to twice its size at least (and 64 KiB), so that a mask one position longer each
    /// step does not allocate each step.
    pub fn reserve(&mut self, bytes: usize) -> Result<*mut u8> {
        let grown = |had: usize| bytes.max(2 * had).max(64 << 10);
        Ok(match self {
            HostBuf::Pageable(v) => {
                if v.len() * 4 < bytes {
                    *v = vec![0.0; grown(v.len() * 4).div_ceil(4)];
                }
                v.as_mut_ptr().cast()
            }
            HostBuf::Pinned(p) => {
                let had = p.as_ref().map_or(0, |b| b.bytes);
                if had < bytes {
                    *p = None;
                    *p = Some(get()?.pinned(grown(had))?);
                }
                p.as_ref().expect("allocated just above").ptr().cast()
            }
        })
    }

    /// Where it starts (null before the first `reserve` of page-locked memory).
    pub fn ptr(&mut self) -> *mut u8 {
        match self {
            HostBuf::Pageable(v) => v.as_mut_ptr().cast(),
            HostBuf::Pinned(p) => p.as_ref().map_or(std::ptr::null_mut(), |b| b.ptr().cast()),
        }
    }

    /// Its first `len` bytes (at most what it holds).
    pub fn bytes(&self, len: usize) -> &[u8] {
        match self {
            HostBuf::Pageable(v) => {
                // SAFETY: the vector holds v.len() × 4 initialised bytes.
                let all = unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), v.len() * 4) };
                &all[..len.min(all.len())]
            }
            // SAFETY: the buffer holds `bytes` bytes of host memory.
            HostBuf::Pinned(Some(p)) => unsafe { std::slice::from_raw_parts(p.ptr() as *const u8, len.min(p.bytes)) },
            HostBuf::Pinned(None) => &[],
        }
    }

    /// Bytes it holds now.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        match self {
            HostBuf::Pageable(v) => v.len() * 4,
            HostBuf::Pinned(p) => p.as_ref().map_or(0, |b| b.bytes),
        }
    }

    /// The first `elems` f32 values (the buffer holds at least as many bytes, as reserved).
    pub fn f32s(&self, elems: usize) -> &[f32] {
        match self {
            HostBuf::Pageable(v) => &v[..elems],
            // SAFETY: reserved for at least `elems` f32 values, page-aligned by cudaMallocHost.
            HostBuf::Pinned(Some(p)) => unsafe { std::slice::from_raw_parts(p.ptr() as *const f32, elems.min(p.bytes / 4)) },
            HostBuf::Pinned(None) => &[],
        }
    }

    /// `a`'s values in its logical order, as i32 or i64, at the buffer's start: where, and how many bytes.
    pub fn put_ints(&mut self, a: &ndarray::Array2<i64>, int32: bool) -> Result<(*const u8, usize)> {
        let size = if int32 { 4 } else { 8 };
        let bytes = a.len() * size;
        let base = self.reserve(bytes)?;
        // SAFETY: `reserve` made room for `bytes` bytes at `base`.
        let dst = unsafe { std::slice::from_raw_parts_mut(base, bytes) };
        for (d, &v) in dst.chunks_exact_mut(size).zip(a.iter()) {
            if int32 {
                d.copy_from_slice(&(v as i32).to_ne_bytes());
            } else {
                d.copy_from_slice(&v.to_ne_bytes());
            }
        }
        Ok((base, bytes))
    }
}
