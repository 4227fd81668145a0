//! Test doubles: runtimes that misbehave on purpose, so that every guard can be shown to catch
//! its failure. Registered only when `XBENCH_FAKE_RUNTIMES=1` is set. Their latency is spent
//! asleep, so a test of them takes wall time but no CPU time from the tests running beside it.
//!
//! - `fake-exact`: outputs computed from the token ids; latency grows with batch × length.
//! - `fake-wrong`: like `fake-exact`, but its outputs are off by 0.5.
//! - `fake-flat`: right outputs, but the same latency whatever the work.
//! - `fake-crash`: aborts the process on its first run.
//! - `fake-hang`: never returns from a run of a single row (batch 1); runs other batches as `fake-exact`.
//! - `fake-instant`: returns at once with one small output (no work, no wait): for the tests that
//!   only need cells to finish (their verdicts do not look at latencies), and to measure what
//!   xbench itself spends per cell (`cargo bench --bench record`).

use std::time::Duration;

use anyhow::Result;
use ndarray::{ArrayD, IxDyn};

use super::{Availability, DeviceClass, Engine, Output, Runtime, RuntimeId, RuntimeOptions, Session, SessionInfo};
use crate::inputs::Feed;
use crate::tensor::Tensor;

/// The environment variable that enables the test doubles.
pub const ENABLE_VAR: &str = "XBENCH_FAKE_RUNTIMES";

pub fn enabled() -> bool {
    std::env::var(ENABLE_VAR).is_ok_and(|v| v == "1")
}

/// How a test double misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Exact,
    Wrong,
    Flat,
    Crash,
    Hang,
    Instant,
}

/// A test double.
pub struct Fake(pub Behaviour);

impl Runtime for Fake {
    fn check(&self, id: RuntimeId, _opts: &RuntimeOptions) -> Availability {
        Availability { runtime: id, usable: true, version: Some("test".into()), detail: "test double".into(), device: None, engine: None }
    }

    fn load(&self, _onnx: &std::path::Path, _opts: &RuntimeOptions) -> Result<Box<dyn Session>> {
        Ok(Box::new(FakeSession { behaviour: self.0, last: Vec::new() }))
    }

    fn device(&self) -> DeviceClass {
        DeviceClass::Cpu
    }

    fn engine(&self) -> Engine {
        Engine::Test
    }
}

struct FakeSession {
    behaviour: Behaviour,
    last: Vec<Output>,
}

/// Takes `d` of wall time, asleep: a run's latency is what a test looks at, and the CPU stays free
/// for the tests running beside it.
fn wait(d: Duration) {
    std::thread::sleep(d);
}

impl Session for FakeSession {
    fn run(&mut self, feed: &Feed) -> Result<()> {
        let (b, l) = (feed.batch, feed.seq_len);
        if self.behaviour == Behaviour::Instant {
            self.last = vec![Output { name: "pooler_output".into(), data: Tensor::F32(ArrayD::from_elem(IxDyn(&[b, 1]), 0.0)) }];
            return Ok(());
        }
        match self.behaviour {
            Behaviour::Crash => std::process::abort(),
            Behaviour::Hang if b == 1 => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            Behaviour::Flat => wait(Duration::from_micros(300)),
            _ => wait(Duration::from_micros(20 + 2 * (b * l) as u64)),
        }
        let ids: Vec<f32> = match feed.tensors.first().map(|(_, t)| t) {
            Some(Tensor::I64(a)) => a.iter().map(|&v| v as f32).collect(),
            Some(Tensor::I32(a)) => a.iter().map(|&v| v as f32).collect(),
            Some(Tensor::F32(a)) => a.iter().copied().collect(),
            _ => vec![0.0; b * l],
        };
        let offset = if self.behaviour == Behaviour::Wrong { 0.5 } else { 0.0 };
        let mut hidden = Vec::with_capacity(b * l * 2);
        for (k, id) in ids.iter().enumerate().take(b * l) {
            hidden.push(id * 1e-3 + offset);
            hidden.push((k % l.max(1)) as f32);
        }
        let pooled: Vec<f32> = (0..b).flat_map(|r| [hidden[r * l * 2], offset]).collect();
        self.last = vec![
            Output { name: "last_hidden_state".into(), data: Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[b, l, 2]), hidden)?) },
            Output { name: "pooler_output".into(), data: Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[b, 2]), pooled)?) },
        ];
        Ok(())
    }

    fn outputs(&mut self, _feed: &Feed) -> Result<Vec<Output>> {
        Ok(self.last.clone())
    }

    fn info(&self) -> SessionInfo {
        let name = format!("fake-{:?}", self.behaviour).to_lowercase();
        SessionInfo { threads: "1 thread".into(), providers: vec![name], version: "test".into(), placement: vec![], io: None, precision: None, settings: Default::default(), timer_class: Some(super::TimerClass::new(super::Timing::EndToEnd, Some(super::HostMemory::NoCopies))), notes: None }
    }
}
