//! A tiny BERT-architecture encoder with seeded random weights, built as an ONNX model so that
//! benchmarks have a self-contained transformer to run without downloading anything.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use tract_onnx::pb::ModelProto;

use super::builder::{self, attr_float, attr_int, attr_ints, DataType, Dim, GraphBuilder, Rng};

/// ONNX opset the model is written for.
pub const OPSET: i64 = 17;

/// Shape and seed of the generated encoder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TinyBertConfig {
    /// Vocabulary size; the default matches bert-base-uncased so its token ids are valid.
    pub vocab_size: i64,
    /// Hidden width.
    pub hidden: i64,
    /// Number of encoder blocks.
    pub layers: usize,
    /// Attention heads per block; must divide `hidden`.
    pub heads: i64,
    /// Feed-forward inner width.
    pub intermediate: i64,
    /// Rows of the position-embedding table (longest supported sequence).
    pub max_positions: i64,
    /// Number of token types (segments).
    pub type_vocab: i64,
    /// Seed of the weight generator.
    pub seed: u64,
}

impl Default for TinyBertConfig {
    fn default() -> Self {
        TinyBertConfig {
            vocab_size: 30522,
            hidden: 32,
            layers: 2,
            heads: 2,
            intermediate: 128,
            max_positions: 512,
            type_vocab: 2,
            seed: 42,
        }
    }
}

/// Standard deviation of the random weight initialisation.
const INIT_STD: f32 = 0.02;
/// LayerNorm epsilon used by BERT.
const LN_EPS: f32 = 1e-12;

/// Weight generator and graph under construction.
struct Ctx {
    b: GraphBuilder,
    rng: Rng,
}

impl Ctx {
    /// A `[rows, cols]` weight drawn from N(0, INIT_STD).
    fn weight(&mut self, name: &str, rows: i64, cols: i64) -> Result<String> {
        let data = (0..rows * cols)
            .map(|_| self.rng.normal(0.0, INIT_STD))
            .collect();
        self.b.init_f32(name, &[rows, cols], data)
    }

    fn filled(&mut self, name: &str, len: i64, value: f32) -> Result<String> {
        self.b.init_f32(name, &[len], vec![value; len as usize])
    }

    /// `x @ W + b` with `W: [n_in, n_out]` random and `b` zero.
    fn dense(&mut self, prefix: &str, x: &str, n_in: i64, n_out: i64) -> Result<String> {
        let w = self.weight(&format!("{prefix}.weight"), n_in, n_out)?;
        let bias = self.filled(&format!("{prefix}.bias"), n_out, 0.0)?;
        let mm = self.b.node("MatMul", &[x, &w], vec![]);
        Ok(self.b.node("Add", &[&mm, &bias], vec![]))
    }

    /// LayerNormalization over the last axis with gamma 1 and beta 0.
    fn layer_norm(&mut self, prefix: &str, x: &str, hidden: i64) -> Result<String> {
        let gamma = self.filled(&format!("{prefix}.weight"), hidden, 1.0)?;
        let beta = self.filled(&format!("{prefix}.bias"), hidden, 0.0)?;
        let attrs = vec![attr_int("axis", -1), attr_float("epsilon", LN_EPS)];
        Ok(self
            .b
            .node("LayerNormalization", &[x, &gamma, &beta], attrs))
    }

    fn scalar(&mut self, name: &str, v: f32) -> Result<String> {
        self.b.init_f32(name, &[], vec![v])
    }
}

/// Builds the encoder: inputs `input_ids`, `attention_mask`, `token_type_ids` (int64,
/// `[batch, sequence]`); outputs `last_hidden_state` `[batch, sequence, hidden]` and
/// `pooler_output` `[batch, hidden]`. The same config always yields identical bytes.
pub fn build(cfg: &TinyBertConfig) -> Result<ModelProto> {
    ensure!(
        cfg.heads > 0 && cfg.hidden % cfg.heads == 0,
        "tiny BERT: hidden size {} is not divisible by {} heads",
        cfg.hidden,
        cfg.heads
    );
    ensure!(
        cfg.layers > 0 && cfg.max_positions > 0,
        "tiny BERT: layers and max_positions must be positive"
    );
    let (h, heads) = (cfg.hidden, cfg.heads);
    let head_dim = h / heads;
    let mut c = Ctx {
        b: GraphBuilder::new("tiny_bert"),
        rng: Rng::new(cfg.seed),
    };
    let bl = [Dim::sym("batch"), Dim::sym("sequence")];
    let ids = c.b.input("input_ids", DataType::Int64, &bl);
    let mask = c.b.input("attention_mask", DataType::Int64, &bl);
    let types = c.b.input("token_type_ids", DataType::Int64, &bl);

    // Embeddings: word + position (rows 0..L of the table) + token type, then LayerNorm.
    let word_tab = c.weight("embeddings.word_embeddings.weight", cfg.vocab_size, h)?;
    let pos_tab = c.weight(
        "embeddings.position_embeddings.weight",
        cfg.max_positions,
        h,
    )?;
    let type_tab = c.weight("embeddings.token_type_embeddings.weight", cfg.type_vocab, h)?;
    let word =
        c.b.node("Gather", &[&word_tab, &ids], vec![attr_int("axis", 0)]);
    let tok =
        c.b.node("Gather", &[&type_tab, &types], vec![attr_int("axis", 0)]);
    let seq_len = c.b.node(
        "Shape",
        &[&ids],
        vec![attr_int("start", 1), attr_int("end", 2)],
    );
    let zero_1d = c.b.init_i64("const.zero_1d", &[1], vec![0])?;
    let pos =
        c.b.node("Slice", &[&pos_tab, &zero_1d, &seq_len, &zero_1d], vec![]);
    let sum = c.b.node("Add", &[&word, &tok], vec![]);
    let sum = c.b.node("Add", &[&sum, &pos], vec![]);
    let mut x = c.layer_norm("embeddings.LayerNorm", &sum, h)?;

    // Additive attention mask: (1 - mask) * -10000, shaped [B, 1, 1, L].
    let axes_12 = c.b.init_i64("const.axes_1_2", &[2], vec![1, 2])?;
    let one = c.scalar("const.one", 1.0)?;
    let big_neg = c.scalar("const.mask_value", -10000.0)?;
    let m = c.b.node("Unsqueeze", &[&mask, &axes_12], vec![]);
    let m =
        c.b.node("Cast", &[&m], vec![attr_int("to", DataType::Float as i64)]);
    let m = c.b.node("Sub", &[&one, &m], vec![]);
    let add_mask = c.b.node("Mul", &[&m, &big_neg], vec![]);

    let split_shape =
        c.b.init_i64("const.split_heads_shape", &[4], vec![0, 0, heads, head_dim])?;
    let merge_shape =
        c.b.init_i64("const.merge_heads_shape", &[3], vec![0, 0, h])?;
    let scale = c.scalar("const.attention_scale", (head_dim as f32).sqrt())?;
    let sqrt2 = c.scalar("const.sqrt2", std::f32::consts::SQRT_2)?;
    let half = c.scalar("const.half", 0.5)?;

    for layer in 0..cfg.layers {
        let p = format!("encoder.layer.{layer}");
        // Self-attention: [B, L, H] -> [B, heads, L, head_dim] for Q and V, K pre-transposed.
        let heads_of = |c: &mut Ctx, name: &str, perm: &[i64]| -> Result<String> {
            let y = c.dense(&format!("{p}.attention.self.{name}"), &x, h, h)?;
            let y = c.b.node("Reshape", &[&y, &split_shape], vec![]);
            Ok(c.b.node("Transpose", &[&y], vec![attr_ints("perm", perm)]))
        };
        let q = heads_of(&mut c, "query", &[0, 2, 1, 3])?;
        let k = heads_of(&mut c, "key", &[0, 2, 3, 1])?;
        let v = heads_of(&mut c, "value", &[0, 2, 1, 3])?;
        let scores = c.b.node("MatMul", &[&q, &k], vec![]);
        let scores = c.b.node("Div", &[&scores, &scale], vec![]);
        let scores = c.b.node("Add", &[&scores, &add_mask], vec![]);
        let probs = c.b.node("Softmax", &[&scores], vec![attr_int("axis", -1)]);
        let ctx = c.b.node("MatMul", &[&probs, &v], vec![]);
        let ctx =
            c.b.node("Transpose", &[&ctx], vec![attr_ints("perm", &[0, 2, 1, 3])]);
        let ctx = c.b.node("Reshape", &[&ctx, &merge_shape], vec![]);
        let attn = c.dense(&format!("{p}.attention.output.dense"), &ctx, h, h)?;
        let res = c.b.node("Add", &[&attn, &x], vec![]);
        let x1 = c.layer_norm(&format!("{p}.attention.output.LayerNorm"), &res, h)?;

        // Feed-forward with exact GELU: y * 0.5 * (1 + erf(y / sqrt 2)).
        let y = c.dense(&format!("{p}.intermediate.dense"), &x1, h, cfg.intermediate)?;
        let e = c.b.node("Div", &[&y, &sqrt2], vec![]);
        let e = c.b.node("Erf", &[&e], vec![]);
        let e = c.b.node("Add", &[&e, &one], vec![]);
        let g = c.b.node("Mul", &[&y, &half], vec![]);
        let g = c.b.node("Mul", &[&g, &e], vec![]);
        let out = c.dense(&format!("{p}.output.dense"), &g, cfg.intermediate, h)?;
        let res = c.b.node("Add", &[&out, &x1], vec![]);
        x = c.layer_norm(&format!("{p}.output.LayerNorm"), &res, h)?;
    }

    // Pooler: hidden state of the first token -> Dense -> Tanh.
    let zero = c.b.init_i64("const.zero", &[], vec![0])?;
    let first = c.b.node("Gather", &[&x, &zero], vec![attr_int("axis", 1)]);
    let pooled = c.dense("pooler.dense", &first, h, h)?;
    c.b.node_named("Tanh", &[&pooled], vec![], &["pooler_output"]);
    c.b.node_named("Identity", &[&x], vec![], &["last_hidden_state"]);
    let hidden = Dim::Fixed(h);
    c.b.output(
        "last_hidden_state",
        DataType::Float,
        &[bl[0].clone(), bl[1].clone(), hidden.clone()],
    );
    c.b.output("pooler_output", DataType::Float, &[bl[0].clone(), hidden]);
    c.b.finish(OPSET).context("building the tiny BERT graph")
}

/// The model's configuration as a transformers `config.json` (a `BertModel`), so that other
/// frameworks can rebuild the same architecture and take its weights from the ONNX file.
pub fn config_json(cfg: &TinyBertConfig) -> String {
    let config = serde_json::json!({
        "model_type": "bert",
        "architectures": ["BertModel"],
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden,
        "num_hidden_layers": cfg.layers,
        "num_attention_heads": cfg.heads,
        "intermediate_size": cfg.intermediate,
        "hidden_act": "gelu",
        "max_position_embeddings": cfg.max_positions,
        "type_vocab_size": cfg.type_vocab,
        "layer_norm_eps": 1e-12,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "pad_token_id": 0,
    });
    serde_json::to_string_pretty(&config).expect("a JSON value serializes") + "\n"
}

/// Creates `dir` and writes `config.json` into it.
fn prepare_dir(cfg: &TinyBertConfig, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create directory {}", dir.display()))?;
    std::fs::write(dir.join("config.json"), config_json(cfg)).with_context(|| format!("cannot write {}", dir.join("config.json").display()))
}

/// Builds the model and writes it to `dir/model.onnx` (creating `dir`, with its `config.json`); returns that path.
pub fn write(cfg: &TinyBertConfig, dir: &Path) -> Result<PathBuf> {
    prepare_dir(cfg, dir)?;
    let path = dir.join("model.onnx");
    builder::write(&build(cfg)?, &path)?;
    Ok(path)
}

/// The same model with float16 weights (see `fp16::weights_to_fp16`), written to `dir/model.onnx`.
pub fn write_fp16(cfg: &TinyBertConfig, dir: &Path) -> Result<PathBuf> {
    prepare_dir(cfg, dir)?;
    let path = dir.join("model.onnx");
    builder::write(&super::fp16::weights_to_fp16(&build(cfg)?)?, &path)?;
    Ok(path)
}

/// Like [`write`], with every weight of 1 KiB or more stored in `dir/<data_file>` beside
/// `dir/model.onnx` (ONNX external data); returns the ONNX file's path.
pub fn write_external(cfg: &TinyBertConfig, dir: &Path, data_file: &str) -> Result<PathBuf> {
    prepare_dir(cfg, dir)?;
    let path = dir.join("model.onnx");
    builder::write_external(&build(cfg)?, &path, data_file, 1024)?;
    Ok(path)
}
