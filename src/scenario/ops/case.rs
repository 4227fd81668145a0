//! Operation cases: one family at given shapes (and axis), written as the paper writes them
//! (`Softmax dim=64x1000000 axis=-1`), the paper's 85 cases with their published times, and the
//! shape rules every case must pass before a graph is built. Pure: no files, no graphs.

use std::sync::OnceLock;

use anyhow::{bail, Result};

use super::family::{AxisRule, Family};
use super::name::{case_text, op_name};

/// Largest tensor a case may declare (generated inputs stop there too).
const MAX_ELEMENTS: i64 = 1 << 31;

/// One operation at one set of shapes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OpCase {
    pub family: Family,
    /// The shapes as written (`dim=` groups), in the family's operand order.
    pub shapes: Vec<Vec<i64>>,
    /// Normalized: the family's default filled in, `None` for families without an axis.
    pub axis: Option<i64>,
}

/// A paper case and its published times (ms): torch CPU and CUDA on the A10 host, MLX GPU and CPU on the M1.
#[derive(Debug, Clone, PartialEq)]
pub struct PaperCase {
    pub case: OpCase,
    pub published_ms: [f64; 4],
}

/// Column names of `PaperCase::published_ms`.
pub const PAPER_COLUMNS: [&str; 4] = ["torch-cpu (A10 host)", "torch-cuda (A10)", "mlx-gpu (M1)", "mlx-cpu (M1)"];

/// The paper's 85 cases (appendix A), in its order.
pub fn paper_cases() -> &'static [PaperCase] {
    static CASES: OnceLock<Vec<PaperCase>> = OnceLock::new();
    CASES.get_or_init(|| {
        crate::paper::op_rows()
            .iter()
            .map(|row| {
                let case = OpCase::parse(&format!("{} {}", row.op, row.dims))
                    .unwrap_or_else(|e| panic!("the embedded ops.tsv: `{} {}`: {e:#}", row.op, row.dims));
                PaperCase { case, published_ms: row.published_ms() }
            })
            .collect()
    })
}

/// The published times of `case`, when it is one of the paper's.
pub fn published(case: &OpCase) -> Option<[f64; 4]> {
    paper_cases().iter().find(|p| &p.case == case).map(|p| p.published_ms)
}

impl OpCase {
    /// A case with the family's default axis filled in; shapes are not checked (see [`Self::check`]).
    pub fn new(family: Family, shapes: Vec<Vec<i64>>, axis: Option<i64>) -> OpCase {
        let axis = match (family.axis(), axis) {
            (AxisRule::Default(d), None) => Some(d),
            (_, a) => a,
        };
        OpCase { family, shapes, axis }
    }

    /// Parses the paper's notation, with or without the `op:` prefix:
    /// `MatMul dim=32x1x1000 dim=32x1000x128`, `Sum dim=64x128x128x128 axis=1`.
    pub fn parse(text: &str) -> Result<OpCase> {
        let text = text.trim();
        let body = case_text(text).unwrap_or(text);
        let mut words = body.split_whitespace();
        let Some(name) = words.next() else { bail!("an operation case is empty\n  fix: write e.g. `Softmax dim=64x1000 axis=-1`") };
        let Some(family) = Family::from_name(name) else {
            bail!("`{name}` is not one of the paper's operations\n  fix: use one of: {}", Family::names())
        };
        let (mut shapes, mut axis) = (Vec::new(), None);
        for word in words {
            if let Some(d) = word.strip_prefix("dim=") {
                shapes.push(parse_shape(d).map_err(|e| anyhow::anyhow!("`{word}` in `{text}`: {e}\n  fix: write shapes as `dim=64x1000`, e.g. `{}`", family.example()))?);
            } else if let Some(a) = word.strip_prefix("axis=") {
                let v = a.parse::<i64>().map_err(|_| anyhow::anyhow!("`{word}` in `{text}`: the axis is not a whole number\n  fix: e.g. `axis=-1`"))?;
                if axis.replace(v).is_some() {
                    bail!("`{text}` gives the axis twice\n  fix: give one `axis=`");
                }
            } else {
                bail!("`{word}` in `{text}` is neither `dim=…` nor `axis=…`\n  fix: write e.g. `{}`", family.example());
            }
        }
        Ok(OpCase::new(family, shapes, axis))
    }

    /// The shapes and axis as the paper writes them: `dim=64x1000000 axis=-1`.
    pub fn dims_text(&self) -> String {
        let mut parts: Vec<String> =
            self.shapes.iter().map(|s| format!("dim={}", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x"))).collect();
        if let Some(a) = self.axis {
            parts.push(format!("axis={a}"));
        }
        parts.join(" ")
    }

    /// The case in the paper's notation: `Softmax dim=64x1000000 axis=-1`.
    pub fn text(&self) -> String {
        format!("{} {}", self.family, self.dims_text())
    }

    /// The model name used in plans, results and reports: `op:Softmax dim=64x1000000 axis=-1`.
    pub fn name(&self) -> String {
        op_name(&self.text())
    }

    /// Whether the case writes some row more than once without a reduction (its result is then undefined).
    pub fn has_undefined_writes(&self) -> bool {
        self.family == Family::Scatter && self.shapes.get(1).zip(self.shapes.first()).is_some_and(|(e, d)| e[0] > d[0])
    }

    /// The axis as a non-negative index into `rank` dims.
    pub fn axis_index(&self, rank: usize) -> Option<usize> {
        self.axis.map(|a| if a < 0 { (a + rank as i64) as usize } else { a as usize })
    }

    /// Checks the shapes against the family's rules and returns the output's shape.
    /// Errors name the case, what is wrong, and how to write it instead.
    pub fn check(&self) -> Result<Vec<i64>> {
        self.rules().map_err(|why| {
            anyhow::anyhow!("operation case `{}`: {why}\n  fix: write it like `{}`", self.name(), self.family.example())
        })
    }

    fn rules(&self) -> std::result::Result<Vec<i64>, String> {
        let f = self.family;
        let want = f.operands();
        if self.shapes.len() != want.len() {
            return Err(format!(
                "{f} takes {} shape{} ({}), {} given",
                want.len(),
                if want.len() == 1 { "" } else { "s" },
                want.join(", "),
                self.shapes.len()
            ));
        }
        for (s, role) in self.shapes.iter().zip(want) {
            if s.is_empty() {
                return Err(format!("the {role} shape has no dims"));
            }
            if let Some((i, d)) = s.iter().enumerate().find(|(_, d)| **d <= 0) {
                let what = if *d == 0 { "zero" } else { "negative" };
                return Err(format!("dim {i} of the {role} shape is {d} ({what}); every dim must be at least 1"));
            }
            let n = s.iter().try_fold(1i64, |acc, &d| acc.checked_mul(d).filter(|v| *v <= MAX_ELEMENTS));
            if n.is_none() {
                return Err(format!("the {role} shape {} holds more than 2^31 elements", fmt(s)));
            }
        }
        match (f.axis(), self.axis) {
            (AxisRule::Required, None) => return Err(format!("{f} needs an axis (`axis=…`)")),
            (AxisRule::None, Some(a)) => return Err(format!("{f} takes no axis, but `axis={a}` is given")),
            (_, Some(a)) => {
                let rank = self.shapes[0].len() as i64;
                if a < -rank || a >= rank {
                    return Err(format!("axis {a} is outside the input's {rank} dims (it must lie in {}..={})", -rank, rank - 1));
                }
            }
            _ => {}
        }
        let out = self.output_shape()?;
        if out.iter().product::<i64>() > MAX_ELEMENTS {
            return Err(format!("the output {} holds more than 2^31 elements", fmt(&out)));
        }
        Ok(out)
    }

    fn output_shape(&self) -> std::result::Result<Vec<i64>, String> {
        use Family::*;
        let s = &self.shapes;
        let x = &s[0];
        let ax = self.axis_index(x.len());
        Ok(match self.family {
            Relu | LeakyRelu | Selu | Sigmoid | Softplus | Softmax | Sort => x.clone(),
            Argmax | Sum => without(x, ax.unwrap_or(0)),
            SumAll => vec![],
            Bce => {
                if s[0] != s[1] {
                    return Err(format!("logits {} and targets {} must have one shape", fmt(&s[0]), fmt(&s[1])));
                }
                vec![]
            }
            Concat => {
                let (a, b, axis) = (&s[0], &s[1], ax.unwrap_or(0));
                if a.len() != b.len() {
                    return Err(format!("{} and {} have different ranks", fmt(a), fmt(b)));
                }
                if let Some(i) = (0..a.len()).find(|&i| i != axis && a[i] != b[i]) {
                    return Err(format!("{} and {} differ in dim {i}, which is not the axis {axis}", fmt(a), fmt(b)));
                }
                let mut out = a.clone();
                out[axis] += b[axis];
                out
            }
            MatMul => matmul_shape(&s[0], &s[1])?,
            Linear => {
                let (x, w, b) = (&s[0], &s[1], &s[2]);
                if w.len() != 2 || b.len() != 1 {
                    return Err(format!("the weight must be in×out and the bias out, got weight {} and bias {}", fmt(w), fmt(b)));
                }
                if x[x.len() - 1] != w[0] {
                    return Err(format!("the input's last dim {} is not the weight's in-features {}", x[x.len() - 1], w[0]));
                }
                if b[0] != w[1] {
                    return Err(format!("the bias {} does not match the weight's out-features {}", b[0], w[1]));
                }
                let mut out = x[..x.len() - 1].to_vec();
                out.push(w[1]);
                out
            }
            PRelu => {
                let (x, slope) = (&s[0], &s[1]);
                let fits = slope.len() <= x.len() && slope.iter().rev().zip(x.iter().rev()).all(|(a, b)| a == b || *a == 1);
                if !fits {
                    return Err(format!("the slope {} does not broadcast to the input {}", fmt(slope), fmt(x)));
                }
                x.clone()
            }
            Conv1d | Conv2d => conv_shape(self.family, &s[0], &s[1])?,
            Gather | Scatter | ScatterSum | ScatterMax => {
                if s[1].len() != 1 {
                    return Err(format!("the indices are a count of rows, one dim, got {}", fmt(&s[1])));
                }
                if self.family == Gather {
                    let mut out = vec![s[1][0]];
                    out.extend_from_slice(&x[1..]);
                    out
                } else {
                    x.clone()
                }
            }
        })
    }
}

fn matmul_shape(a: &[i64], b: &[i64]) -> std::result::Result<Vec<i64>, String> {
    if a.len() < 2 || b.len() < 2 {
        return Err(format!("both operands need at least 2 dims, got {} and {} (write a vector as 1xK)", fmt(a), fmt(b)));
    }
    let (k1, k2) = (a[a.len() - 1], b[b.len() - 2]);
    if k1 != k2 {
        return Err(format!("inner dims differ: {} has {k1} columns but {} has {k2} rows", fmt(a), fmt(b)));
    }
    let (ba, bb) = (&a[..a.len() - 2], &b[..b.len() - 2]);
    let rank = ba.len().max(bb.len());
    let mut out = Vec::with_capacity(rank + 2);
    for i in 0..rank {
        let da = if i + ba.len() >= rank { ba[i + ba.len() - rank] } else { 1 };
        let db = if i + bb.len() >= rank { bb[i + bb.len() - rank] } else { 1 };
        if da != db && da != 1 && db != 1 {
            return Err(format!("batch dims of {} and {} do not broadcast ({da} against {db})", fmt(a), fmt(b)));
        }
        out.push(da.max(db));
    }
    out.extend([a[a.len() - 2], b[b.len() - 1]]);
    Ok(out)
}

fn conv_shape(f: Family, x: &[i64], w: &[i64]) -> std::result::Result<Vec<i64>, String> {
    let rank = if f == Family::Conv1d { 3 } else { 4 };
    if x.len() != rank || w.len() != rank {
        let layout = if rank == 3 { "N×L×C and O×K×C" } else { "N×H×W×C and O×KH×KW×C" };
        return Err(format!("{f} takes {layout} (channels last), got {} and {}", fmt(x), fmt(w)));
    }
    let (cin, cw) = (x[rank - 1], w[rank - 1]);
    if cin != cw {
        return Err(format!("the input has {cin} channels but the weight expects {cw}"));
    }
    let mut out = vec![x[0], w[0]];
    for i in 1..rank - 1 {
        if w[i] > x[i] {
            return Err(format!("the kernel ({}) exceeds the input ({}) in spatial dim {}", w[i], x[i], i - 1));
        }
        out.push(x[i] - w[i] + 1);
    }
    Ok(out)
}

fn without(x: &[i64], axis: usize) -> Vec<i64> {
    x.iter().enumerate().filter(|(i, _)| *i != axis).map(|(_, d)| *d).collect()
}

/// `[a, b, c]` as `axbxc`.
pub(crate) fn fmt(s: &[i64]) -> String {
    if s.is_empty() {
        return "a scalar".into();
    }
    s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

fn parse_shape(text: &str) -> std::result::Result<Vec<i64>, String> {
    text.split('x').map(|d| d.trim().parse::<i64>().map_err(|_| format!("`{d}` is not a whole number"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_list_has_85_cases_in_21_families_and_round_trips() {
        let cases = paper_cases();
        assert_eq!(cases.len(), 85);
        let mut families: Vec<Family> = cases.iter().map(|c| c.case.family).collect();
        families.dedup();
        assert_eq!(families, Family::ALL.to_vec(), "the tsv lists the families in the paper's order");
        for (p, row) in cases.iter().zip(crate::paper::op_rows()) {
            assert_eq!(p.case.dims_text(), row.dims, "{row:?}");
            assert_eq!(OpCase::parse(&p.case.name()).unwrap(), p.case);
            p.case.check().unwrap_or_else(|e| panic!("{e:#}"));
            assert!(p.published_ms.iter().all(|v| v.is_finite() && *v > 0.0), "{row:?}");
        }
    }

    #[test]
    fn output_shapes_follow_each_familys_reading() {
        let out = |t: &str| OpCase::parse(t).unwrap().check().unwrap();
        assert_eq!(out("MatMul dim=1000x64x256 dim=256x32"), vec![1000, 64, 32]);
        assert_eq!(out("MatMul dim=32x1x1000 dim=32x1000x128"), vec![32, 1, 128]);
        assert_eq!(out("Conv1d dim=16x1000x80 dim=128x11x80"), vec![16, 128, 990]);
        assert_eq!(out("Conv2d dim=100x28x28x3 dim=8x3x3x3"), vec![100, 8, 26, 26]);
        assert_eq!(out("Linear dim=100x1x51200 dim=51200x1 dim=1"), vec![100, 1, 1]);
        assert_eq!(out("Gather dim=64x256 dim=1000"), vec![1000, 256]);
        assert_eq!(out("ScatterSum dim=64x16 dim=1000000"), vec![64, 16]);
        assert_eq!(out("Concat dim=1000000x64 dim=1000000x32 axis=1"), vec![1000000, 96]);
        assert_eq!(out("Argmax dim=64x1024x128 axis=1"), vec![64, 128]);
        assert_eq!(out("Sum dim=64x128x128x128 axis=3"), vec![64, 128, 128]);
        assert_eq!(out("SumAll dim=1000000"), Vec::<i64>::new());
        assert_eq!(out("BCE dim=4x2 dim=4x2"), Vec::<i64>::new());
        assert_eq!(OpCase::parse("softmax dim=4x5").unwrap().name(), "op:Softmax dim=4x5 axis=-1");
    }

    #[test]
    fn bad_text_is_rejected_with_the_fix() {
        for (text, needle) in [
            ("Convolution dim=1x2", "not one of the paper's operations"),
            ("ReLU dim=4xfour", "`four` is not a whole number"),
            ("ReLU dim=4 axes=1", "neither `dim=…` nor `axis=…`"),
            ("Sum dim=4 axis=0 axis=1", "axis twice"),
        ] {
            let e = format!("{:#}", OpCase::parse(text).unwrap_err());
            assert!(e.contains(needle) && e.contains("fix:"), "{text}: {e}");
        }
    }
}
