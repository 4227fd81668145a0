//! Where one cell's generation lives on the GPU when each step replays a CUDA graph
//! (`--cuda-graph`): a captured graph reads and writes the addresses it was captured with, and the
//! optimum layout's shapes change every step (present = past + 1 position), so each step index has
//! a graph of its own (the prefill is step 0), and every buffer a step touches stays where it is
//! for the whole cell.
//!
//! - Each cache tensor (layer × key/value) has two buffers, A and B, of the cell's longest cache
//!   (prompt + new tokens − 1 positions). Step k reads its past from one viewed at its length and
//!   writes its present into the other viewed one position longer; step k + 1 reads that one. The
//!   prefill reads A at length 0 (an empty past) and writes B, so step k reads A when k is even.
//! - A view is the first `batch × heads × length × head size` elements of its buffer (a packed
//!   tensor of that shape, always at offset 0), so the buffers never move.
//! - Token ids and positions have buffers of `batch × prompt` elements (the prefill's size; a
//!   decode step uses the first `batch`), the attention mask one of `batch × longest cache`
//!   elements viewed at its growing length, the logits one of `batch × prompt × vocab`.

/// One of a cache tensor's two buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    A,
    B,
}

/// The shapes of one cell's generations and the graph ids its steps take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub batch: usize,
    pub prompt: usize,
    pub new_tokens: usize,
    pub kv_heads: usize,
    pub head_size: usize,
    pub vocab: usize,
    /// The prefill's graph id; step k's is `first_id + k`.
    pub first_id: i32,
}

/// What one step binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPlan {
    /// Token ids (and positions) per row: the prompt for the prefill, 1 after it.
    pub tokens: usize,
    /// Positions in the past it reads (0 for the prefill).
    pub past: usize,
    /// Positions in the present it writes: `past + tokens`, also the mask's length.
    pub present: usize,
    pub reads: Half,
    pub writes: Half,
    pub graph_id: i32,
}

impl Plan {
    /// Runs in one generation: the prefill, then one step per new token after the first.
    pub fn steps(&self) -> usize {
        self.new_tokens.max(1)
    }

    /// The longest cache of the cell: what the last step writes.
    pub fn capacity(&self) -> usize {
        self.prompt + self.steps() - 1
    }

    /// The graph id after this plan's last.
    pub fn next_id(&self) -> i32 {
        self.first_id + self.steps() as i32
    }

    /// Elements of each cache buffer (A and B alike).
    pub fn cache_elems(&self) -> usize {
        self.batch * self.kv_heads * self.capacity() * self.head_size
    }

    /// Elements of the token-id and position buffers.
    pub fn ids_elems(&self) -> usize {
        self.batch * self.prompt
    }

    /// Elements of the attention-mask buffer.
    pub fn mask_elems(&self) -> usize {
        self.batch * self.capacity()
    }

    /// Elements of the logits buffer.
    pub fn logits_elems(&self) -> usize {
        self.batch * self.prompt * self.vocab
    }

    /// The shape of a cache view `length` positions long.
    pub fn cache_shape(&self, length: usize) -> [usize; 4] {
        [self.batch, self.kv_heads, length, self.head_size]
    }

    /// Step `k` of a generation (0: the prefill); `None` past the last.
    pub fn step(&self, k: usize) -> Option<StepPlan> {
        if k >= self.steps() {
            return None;
        }
        let (tokens, past) = if k == 0 { (self.prompt, 0) } else { (1, self.prompt + k - 1) };
        let (reads, writes) = if k % 2 == 0 { (Half::A, Half::B) } else { (Half::B, Half::A) };
        Some(StepPlan { tokens, past, present: past + tokens, reads, writes, graph_id: self.first_id + k as i32 })
    }

    /// Whether a cell of these shapes can use this plan's buffers and graphs as they are.
    pub fn fits(&self, batch: usize, prompt: usize, new_tokens: usize) -> bool {
        (self.batch, self.prompt, self.new_tokens.max(1)) == (batch, prompt, new_tokens.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(batch: usize, prompt: usize, new_tokens: usize) -> Plan {
        Plan { batch, prompt, new_tokens, kv_heads: 2, head_size: 64, vocab: 1000, first_id: 1 }
    }

    #[test]
    fn steps_ping_pong_between_the_two_buffers_one_position_longer_each_time() {
        let p = plan(4, 128, 64);
        assert_eq!((p.steps(), p.capacity()), (64, 191));
        let s0 = p.step(0).unwrap();
        assert_eq!(s0, StepPlan { tokens: 128, past: 0, present: 128, reads: Half::A, writes: Half::B, graph_id: 1 });
        let s1 = p.step(1).unwrap();
        assert_eq!(s1, StepPlan { tokens: 1, past: 128, present: 129, reads: Half::B, writes: Half::A, graph_id: 2 });
        let s2 = p.step(2).unwrap();
        assert_eq!((s2.past, s2.present, s2.reads, s2.writes, s2.graph_id), (129, 130, Half::A, Half::B, 3));
        // Each step reads what the step before wrote, at the length it wrote.
        for k in 1..p.steps() {
            let (before, now) = (p.step(k - 1).unwrap(), p.step(k).unwrap());
            assert_eq!((now.reads, now.past), (before.writes, before.present), "step {k}");
            assert_ne!(now.reads, now.writes);
            assert_eq!(now.graph_id, before.graph_id + 1);
        }
        let last = p.step(63).unwrap();
        assert_eq!((last.present, last.graph_id), (p.capacity(), 64));
        assert_eq!(p.step(64), None);
        assert_eq!(p.next_id(), 65);
    }

    #[test]
    fn every_view_fits_its_buffer_and_the_last_fills_it() {
        for (batch, prompt, new_tokens) in [(1, 128, 64), (4, 128, 64), (3, 7, 1), (2, 1, 5)] {
            let p = plan(batch, prompt, new_tokens);
            let elems = |s: [usize; 4]| s.iter().product::<usize>();
            for k in 0..p.steps() {
                let s = p.step(k).unwrap();
                assert!(elems(p.cache_shape(s.past)) <= p.cache_elems() && elems(p.cache_shape(s.present)) <= p.cache_elems());
                assert!(batch * s.tokens <= p.ids_elems() && batch * s.present <= p.mask_elems());
                assert!(batch * s.tokens * p.vocab <= p.logits_elems());
            }
            assert_eq!(elems(p.cache_shape(p.step(p.steps() - 1).unwrap().present)), p.cache_elems());
        }
        let p = plan(4, 128, 64);
        assert_eq!(p.cache_elems(), 4 * 2 * 191 * 64);
        assert_eq!((p.ids_elems(), p.mask_elems(), p.logits_elems()), (512, 764, 512_000));
    }

    #[test]
    fn one_new_token_is_the_prefill_alone_and_other_shapes_need_a_plan_of_their_own() {
        let p = plan(1, 16, 1);
        assert_eq!((p.steps(), p.capacity()), (1, 16));
        assert_eq!(p.step(1), None);
        assert!(p.fits(1, 16, 1) && !p.fits(2, 16, 1) && !p.fits(1, 17, 1) && !p.fits(1, 16, 2));
    }
}
