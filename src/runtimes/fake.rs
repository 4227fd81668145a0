//! Test doubles: runtimes that misbehave on purpose, so that every guard can be shown to catch
//! its failure. Only accepted when `XBENCH_FAKE_RUNTIMES=1` is set.
//!
//! - `fake-exact`: outputs computed from the token ids; latency grows with batch × length.
//! - `fake-wrong`: like `fake-exact`, but its outputs are off by 0.5.
//! - `fake-flat`: right outputs, but the same latency whatever the work.
//! - `fake-crash`: aborts the process on its first run.

use std::time::{Duration, Instant};

use anyhow::Result;
use ndarray::{ArrayD, IxDyn};

use super::{Availability, Output, RuntimeId, Session, SessionInfo};
use crate::inputs::{Feed, HostTensor};

/// The environment variable that enables the test doubles.
pub const ENABLE_VAR: &str = "XBENCH_FAKE_RUNTIMES";

pub fn enabled() -> bool {
    std::env::var(ENABLE_VAR).is_ok_and(|v| v == "1")
}

pub fn check(id: RuntimeId) -> Availability {
    Availability { runtime: id, usable: true, version: Some("test".into()), detail: "test double".into() }
}

pub struct FakeSession {
    id: RuntimeId,
    last: Vec<Output>,
}

impl FakeSession {
    pub fn new(id: RuntimeId) -> FakeSession {
        FakeSession { id, last: Vec::new() }
    }
}

fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

impl Session for FakeSession {
    fn run(&mut self, feed: &Feed) -> Result<()> {
        let (b, l) = (feed.batch, feed.seq_len);
        match self.id {
            RuntimeId::FakeCrash => std::process::abort(),
            RuntimeId::FakeFlat => spin(Duration::from_micros(300)),
            _ => spin(Duration::from_micros(20 + 2 * (b * l) as u64)),
        }
        let ids: Vec<f32> = match feed.tensors.first().map(|(_, t)| t) {
            Some(HostTensor::I64(a)) => a.iter().map(|&v| v as f32).collect(),
            Some(HostTensor::I32(a)) => a.iter().map(|&v| v as f32).collect(),
            Some(HostTensor::F32(a)) => a.iter().copied().collect(),
            None => vec![0.0; b * l],
        };
        let offset = if self.id == RuntimeId::FakeWrong { 0.5 } else { 0.0 };
        let mut hidden = Vec::with_capacity(b * l * 2);
        for (k, id) in ids.iter().enumerate().take(b * l) {
            hidden.push(id * 1e-3 + offset);
            hidden.push((k % l.max(1)) as f32);
        }
        let pooled: Vec<f32> = (0..b).flat_map(|r| [hidden[r * l * 2], offset]).collect();
        self.last = vec![
            Output { name: "last_hidden_state".into(), data: ArrayD::from_shape_vec(IxDyn(&[b, l, 2]), hidden)? },
            Output { name: "pooler_output".into(), data: ArrayD::from_shape_vec(IxDyn(&[b, 2]), pooled)? },
        ];
        Ok(())
    }

    fn outputs(&mut self, _feed: &Feed) -> Result<Vec<Output>> {
        Ok(self.last.clone())
    }

    fn info(&self) -> SessionInfo {
        SessionInfo { threads: "1 thread".into(), providers: vec![self.id.to_string()], version: "test".into(), placement: vec![], io: None }
    }
}
