//! The paper's 21 operation families: their names, how many shapes each takes, which rules those
//! shapes must follow, the output they give, and how xbench reads them (shown in reports).

/// Whether a family takes an `axis=` and what it is when a case gives none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AxisRule {
    /// The case must give one.
    Required,
    /// Optional, with this default.
    Default(i64),
    /// The family takes no axis.
    None,
}

/// One of the paper's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Argmax,
    Bce,
    Concat,
    Conv1d,
    Conv2d,
    Gather,
    LeakyRelu,
    Linear,
    MatMul,
    PRelu,
    Relu,
    Scatter,
    ScatterSum,
    ScatterMax,
    Selu,
    Sigmoid,
    Softmax,
    Softplus,
    Sort,
    Sum,
    SumAll,
}

use Family::*;

impl Family {
    /// Every family, in the paper's order (appendix B).
    pub const ALL: [Family; 21] = [
        Argmax, Bce, Concat, Conv1d, Conv2d, Gather, LeakyRelu, Linear, MatMul, PRelu, Relu, Scatter, ScatterSum,
        ScatterMax, Selu, Sigmoid, Softmax, Softplus, Sort, Sum, SumAll,
    ];

    /// The name as the paper writes it.
    pub fn name(self) -> &'static str {
        match self {
            Argmax => "Argmax",
            Bce => "BCE",
            Concat => "Concat",
            Conv1d => "Conv1d",
            Conv2d => "Conv2d",
            Gather => "Gather",
            LeakyRelu => "LeakyReLU",
            Linear => "Linear",
            MatMul => "MatMul",
            PRelu => "PReLU",
            Relu => "ReLU",
            Scatter => "Scatter",
            ScatterSum => "ScatterSum",
            ScatterMax => "ScatterMax",
            Selu => "SeLU",
            Sigmoid => "Sigmoid",
            Softmax => "Softmax",
            Softplus => "Softplus",
            Sort => "Sort",
            Sum => "Sum",
            SumAll => "SumAll",
        }
    }

    /// Looks a family up by name, ignoring case (`relu` finds ReLU).
    pub fn from_name(name: &str) -> Option<Family> {
        Self::ALL.iter().copied().find(|f| f.name().eq_ignore_ascii_case(name.trim()))
    }

    /// All names, comma-separated, for error messages.
    pub fn names() -> String {
        Self::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
    }

    /// The shapes a case of this family lists, as the paper writes them.
    pub fn operands(self) -> &'static [&'static str] {
        match self {
            Bce => &["logits", "targets"],
            Concat | MatMul => &["a", "b"],
            Conv1d | Conv2d => &["input", "weight"],
            Gather | Scatter | ScatterSum | ScatterMax => &["data", "indices"],
            Linear => &["input", "weight", "bias"],
            PRelu => &["input", "slope"],
            _ => &["input"],
        }
    }

    pub fn axis(self) -> AxisRule {
        match self {
            Argmax | Concat | Sum => AxisRule::Required,
            Softmax | Sort => AxisRule::Default(-1),
            _ => AxisRule::None,
        }
    }

    /// An example case, for the fix line of error messages.
    pub fn example(self) -> &'static str {
        match self {
            Argmax => "Argmax dim=64x1024x128 axis=0",
            Bce => "BCE dim=1000000 dim=1000000",
            Concat => "Concat dim=1000x64 dim=1000x32 axis=1",
            Conv1d => "Conv1d dim=16x1000x80 dim=128x11x80",
            Conv2d => "Conv2d dim=100x28x28x3 dim=8x3x3x3",
            Gather => "Gather dim=64x256 dim=1000",
            LeakyRelu => "LeakyReLU dim=128x16x1024",
            Linear => "Linear dim=100x1024x32 dim=32x1024 dim=1024",
            MatMul => "MatMul dim=1000x64x256 dim=256x32",
            PRelu => "PReLU dim=128x16x1024 dim=1",
            Relu => "ReLU dim=128x16x1024",
            Scatter => "Scatter dim=64x16 dim=10",
            ScatterSum => "ScatterSum dim=64x16 dim=1000",
            ScatterMax => "ScatterMax dim=64x16 dim=1000",
            Selu => "SeLU dim=128x16x1024",
            Sigmoid => "Sigmoid dim=128x16x1024",
            Softmax => "Softmax dim=64x1000 axis=-1",
            Softplus => "Softplus dim=128x16x1024",
            Sort => "Sort dim=64x128x1024 axis=2",
            Sum => "Sum dim=64x128x128 axis=1",
            SumAll => "SumAll dim=1000000",
        }
    }

    /// The ONNX graph xbench builds for this family.
    pub fn graph(self) -> &'static str {
        match self {
            Argmax => "ArgMax(axis, keepdims=0, select_last_index=0), int64 output",
            Bce => "Softplus(x) − Mul(x, t), then ReduceMean over all elements (keepdims=0): binary cross-entropy on logits",
            Concat => "Concat(axis)",
            Conv1d => "Conv (stride 1, no padding, no bias), weight an initializer",
            Conv2d => "Conv (stride 1, no padding, no bias), weight an initializer",
            Gather => "Gather(axis=0), int64 row indices an initializer",
            LeakyRelu => "LeakyRelu(alpha=0.01)",
            Linear => "MatMul(x, W) then Add(B), W and B initializers (Gemm takes only 2-D inputs)",
            MatMul => "MatMul of two inputs",
            PRelu => "PRelu, slope an initializer",
            Relu => "Relu",
            Scatter => "ScatterND(reduction=none) of whole rows, row indices [E, 1] an initializer",
            ScatterSum => "ScatterND(reduction=add) of whole rows, row indices [E, 1] an initializer",
            ScatterMax => "ScatterND(reduction=max) of whole rows, row indices [E, 1] an initializer",
            Selu => "Selu (ONNX's default alpha and gamma, the constants torch and MLX use)",
            Sigmoid => "Sigmoid",
            Softmax => "Softmax(axis)",
            Softplus => "Softplus",
            Sort => "TopK(k = the axis length, largest=0, sorted=1): an ascending sort; only its values are a graph output",
            Sum => "ReduceSum(axes=[axis] as an initializer, keepdims=0)",
            SumAll => "ReduceSum over every axis (no axes input, keepdims=0): a scalar",
        }
    }

    /// How the paper's shapes are read for this family.
    pub fn reading(self) -> &'static str {
        match self {
            Argmax => "dim: the input. Ties go to the first index (select_last_index=0), which ONNX defines.",
            Bce => "dim dim: logits x and targets t of one shape, both inputs. The logits form is MLX's default; targets are generated floats in [−1, 1) rather than 0/1, which changes no arithmetic.",
            Concat => "dim dim: the two inputs.",
            Conv1d => "dim=N×L×C (channels last, as MLX) dim=O×K×C (out channels, kernel, in channels). The graph uses ONNX's channels-first layout: input [N, C, L], weight [O, C, K], output [N, O, L−K+1].",
            Conv2d => "dim=N×H×W×C (channels last, as MLX) dim=O×KH×KW×C. The graph uses ONNX's channels-first layout: input [N, C, H, W], weight [O, C, KH, KW], output [N, O, H−KH+1, W−KW+1].",
            Gather => "dim=N×F the table (an input) dim=E the number of row indices, drawn uniformly from [0, N) with a fixed seed; output [E, F] (the paper's x[idx]).",
            LeakyRelu | Relu | Selu | Sigmoid | Softplus => "dim: the input.",
            Linear => "dim=…×in the input dim=in×out the weight dim=out the bias (the paper's addmm(b, x, W)); output […, out].",
            MatMul => "dim dim: the two inputs, batch dims broadcast as NumPy's matmul.",
            PRelu => "dim: the input; dim: the slope's shape (1: one slope shared by every element).",
            Scatter => "dim=N×F the data (an input) dim=E the rows written: updates [E, F] (an input) go to rows idx (the paper's x[idx] = rows). With E ≤ N the indices are distinct, so the result is defined; with E > N duplicates are unavoidable and ONNX leaves which write wins undefined, so runtimes may disagree.",
            ScatterSum | ScatterMax => "dim=N×F the data (an input) dim=E the rows reduced into it: updates [E, F] (an input), row indices uniform in [0, N), duplicates reduced as ONNX defines. The paper's torch code reduced only the first column (an [E, 1] index) and its MLX code evaluated the unchanged array, so neither published column timed whole rows.",
            Softmax => "dim: the input; axis as given (default −1).",
            Sort => "dim: the input; axis as given (default −1). The indices output is not compared: on ties runtimes may order equal values differently.",
            Sum => "dim: the input; the axis reduced.",
            SumAll => "dim: the input.",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
