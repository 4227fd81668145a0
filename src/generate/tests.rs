use super::*;

/// A decoder whose next id is (last id + position + 1) mod 7, checking what it is fed.
struct Counting {
    past: usize,
    calls: Vec<(usize, usize, Vec<i64>)>,
    last: Array2<f32>,
}

impl Decoder for Counting {
    fn reset(&mut self) {
        self.past = 0;
    }
    fn step(&mut self, s: &Step) -> Result<ndarray::ArrayView2<'_, f32>> {
        let (b, n) = s.ids.dim();
        assert_eq!(s.mask.dim(), (b, self.past + n), "the mask covers the cache and the new tokens");
        assert_eq!(s.positions.dim(), (b, n));
        self.calls.push((self.past, n, s.positions.column(n - 1).to_vec()));
        self.past += n;
        let mut l = Array2::zeros((b, 7));
        for r in 0..b {
            let next = (s.ids[[r, n - 1]] + s.positions[[r, n - 1]] + 1).rem_euclid(7);
            l[[r, next as usize]] = 1.0;
        }
        self.last = l;
        Ok(self.last.view())
    }
    fn timer(&self) -> String {
        "test".into()
    }
    fn cache_bytes(&self) -> u64 {
        self.past as u64
    }
}

#[test]
fn steps_feed_one_token_with_a_growing_mask_and_the_next_position() {
    let p = Prompt { ids: ndarray::arr2(&[[3, 4, 5], [0, 2, 6]]), mask: ndarray::arr2(&[[1, 1, 1], [0, 1, 1]]), tokens_per_row: vec![3, 2], from: String::new() };
    let mut d = Counting { past: 0, calls: Vec::new(), last: Array2::zeros((0, 0)) };
    let g = generate(&mut d, &p, 4, 2).unwrap();
    // Row 0: last prompt token 5 at position 2 -> 8 % 7 = 1; then 1 at 3 -> 5; 5 at 4 -> 3; 3 at 5 -> 2.
    // Row 1 (one pad): 6 at position 1 -> 1; 1 at 2 -> 4; 4 at 3 -> 1; 1 at 4 -> 6.
    assert_eq!(g.ids, ndarray::arr2(&[[1, 5, 3, 2], [1, 4, 1, 6]]));
    assert_eq!(d.calls.iter().map(|c| (c.0, c.1)).collect::<Vec<_>>(), [(0, 3), (3, 1), (4, 1), (5, 1)]);
    assert_eq!(d.calls[1].2, [3, 2]);
    assert_eq!(g.step_ms.len(), 3);
    assert_eq!(g.logits.as_ref().unwrap().dim(), (4, 2, 7));
    // A second generation starts from an empty cache.
    let again = generate(&mut d, &p, 4, 0).unwrap();
    assert_eq!(again.ids, g.ids);
    assert_eq!(d.calls[4].0, 0);
}

#[test]
fn a_cell_times_every_generation_and_says_whether_ids_repeat() {
    let p = Prompt { ids: ndarray::arr2(&[[3, 4]]), mask: ndarray::arr2(&[[1, 1]]), tokens_per_row: vec![2], from: "test ids".into() };
    let mut d = Counting { past: 0, calls: Vec::new(), last: Array2::zeros((0, 0)) };
    let m = measure(&mut d, &p, 5, 2, 3, 1).unwrap();
    assert_eq!(d.calls.len(), 5 * 5, "2 warm-ups and 3 timed generations of 5 steps");
    assert_eq!(m.samples_ms.len(), 3);
    let g = &m.generation;
    assert!(g.repeatable);
    assert_eq!((g.prefill.n, g.decode.as_ref().unwrap().n), (3, 12));
    assert_eq!(g.prompt_tokens, [2]);
    assert_eq!(g.ids.len(), 1);
    assert_eq!(m.outputs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["ids", "logits"]);
    // One new token: the prefill gives it, no decode steps.
    let one = measure(&mut d, &p, 1, 0, 2, 0).unwrap();
    assert!(one.generation.decode.is_none() && one.generation.decode_tokens_per_s.is_none());
}

#[test]
fn argmax_takes_the_first_of_equal_largest_logits() {
    assert_eq!(argmax(ndarray::arr2(&[[0.0, 2.0, 2.0], [5.0, -1.0, 4.9]]).view()), [1, 0]);
}

#[test]
fn logits_kept_fit_the_bound() {
    assert_eq!(rows_kept(16, 128, 259), 16);
    assert_eq!(rows_kept(16, 128, 151_936), 3);
    assert_eq!(rows_kept(4, 100_000, 151_936), 1);
}

#[test]
fn argmax_in_one_pass_picks_what_a_plain_scan_picks() {
    // The first index of the largest value that is not NaN; the first -inf when nothing is larger; 0 for NaN alone.
    fn plain(row: &[f32]) -> i64 {
        let mut best: Option<(f32, usize)> = None;
        for (i, &v) in row.iter().enumerate() {
            if !v.is_nan() && best.is_none_or(|(b, _)| v > b) {
                best = Some((v, i));
            }
        }
        best.map_or(0, |(_, i)| i as i64)
    }
    let mut seed = 7u64;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as u32
    };
    for len in [0usize, 1, 3, 15, 16, 17, 31, 32, 33, 100, 1000, 4099] {
        for _ in 0..40 {
            // Few distinct values, so that ties are common; some NaN and -inf.
            let row: Vec<f32> = (0..len)
                .map(|_| match next() % 23 {
                    0 => f32::NAN,
                    1 => f32::NEG_INFINITY,
                    k => (k % 5) as f32 - 2.0,
                })
                .collect();
            let a = ndarray::Array2::from_shape_vec((1, len), row.clone()).unwrap();
            assert_eq!(argmax(a.view()), [plain(&row)], "{row:?}");
            let only: Vec<f32> = row.iter().map(|&v| if v.is_nan() { v } else { f32::NEG_INFINITY }).collect();
            let a = ndarray::Array2::from_shape_vec((1, len), only.clone()).unwrap();
            assert_eq!(argmax(a.view()), [plain(&only)], "{only:?}");
        }
    }
    // A row that is not contiguous (a column view) reads the same.
    let m = ndarray::arr2(&[[1.0f32, 0.0], [3.0, 5.0], [3.0, 4.0]]);
    assert_eq!(argmax(m.t()), [1, 1]);
}
