//! The project's one deterministic generator, used for bootstrap resampling, synthetic weights and
//! generated inputs, so that every figure and tensor is reproducible from its seed.

/// Deterministic pseudo-random generator (SplitMix64) for synthetic weights and inputs.
///
/// Only integer arithmetic and correctly rounded IEEE operations are used, so a given seed
/// yields the same sequence on every platform.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
    spare: Option<f64>,
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng {
            state: seed,
            spare: None,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f32_uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// Uniform integer in `[0, n)`; `n` must be positive.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// A normal sample (polar form of Box–Muller).
    pub fn normal(&mut self, mean: f32, std: f32) -> f32 {
        let z = match self.spare.take() {
            Some(z) => z,
            None => loop {
                let u = 2.0 * self.next_f64() - 1.0;
                let v = 2.0 * self.next_f64() - 1.0;
                let s = u * u + v * v;
                if s > 0.0 && s < 1.0 {
                    let f = (-2.0 * portable_ln(s) / s).sqrt();
                    self.spare = Some(v * f);
                    break u * f;
                }
            },
        };
        (mean as f64 + std as f64 * z) as f32
    }
}

/// Natural logarithm of a positive, finite, normal `x` using only basic IEEE arithmetic, so
/// that the result does not depend on the platform's libm.
fn portable_ln(x: f64) -> f64 {
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln(m) = 2 atanh(t) with t = (m-1)/(m+1), |t| < 0.172.
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let (mut term, mut sum) = (t, 0.0);
    for k in 0..12 {
        sum += term / (2 * k + 1) as f64;
        term *= t2;
    }
    2.0 * sum + e as f64 * std::f64::consts::LN_2
}
