//! A tiny Llama/Qwen-style decoder with seeded random weights and a key/value cache, built as an
//! ONNX model in the layout optimum and onnxruntime-genai export, so that generation has a
//! self-contained model to run without downloading anything.
//!
//! Inputs: `input_ids`, `attention_mask` (over past and new positions; 1 = real token, 0 =
//! padding), `position_ids` (int64), `past_key_values.{i}.key` / `.value`
//! `[batch, kv_heads, past, head_size]`. Outputs: `logits` `[batch, sequence, vocab]` and
//! `present.{i}.key` / `.value` `[batch, kv_heads, past + sequence, head_size]`. Prefill passes an
//! empty cache (past length 0). Each block: RMSNorm, grouped-query attention with rotary position
//! embeddings computed from `position_ids` (no table), residual, RMSNorm, SwiGLU MLP, residual.
//! The weights of the matrix products are stored `[in, out]` (the transpose of a torch `Linear`).

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use tract_onnx::pb::ModelProto;

use super::builder::{self, attr_int, attr_ints, DataType, Dim, GraphBuilder, Rng};

/// ONNX opset the model is written for.
pub const OPSET: i64 = 17;

/// Symbolic dimension names, as optimum names them.
pub const BATCH: &str = "batch_size";
pub const SEQUENCE: &str = "sequence_length";
pub const PAST: &str = "past_sequence_length";
pub const TOTAL: &str = "past_sequence_length + sequence_length";

/// Shape and seed of the generated decoder.
#[derive(Clone, Debug, PartialEq)]
pub struct TinyDecoderConfig {
    /// Vocabulary size: the tokenizer's (see [`super::tiny_tokenizer`]).
    pub vocab_size: i64,
    /// Hidden width.
    pub hidden: i64,
    /// Number of decoder blocks.
    pub layers: usize,
    /// Query heads; a multiple of `kv_heads`.
    pub heads: i64,
    /// Key/value heads (grouped-query attention).
    pub kv_heads: i64,
    /// Width of one head; `heads * head_size` need not equal `hidden`.
    pub head_size: i64,
    /// MLP inner width.
    pub intermediate: i64,
    /// Longest sequence (past and new tokens) recorded in config.json; the rotary embeddings are
    /// computed from the positions, so the graph itself sets no limit.
    pub max_positions: i64,
    /// Base of the rotary embedding frequencies.
    pub rope_theta: f64,
    /// RMSNorm epsilon.
    pub rms_eps: f64,
    /// Seed of the weight generator.
    pub seed: u64,
}

impl Default for TinyDecoderConfig {
    fn default() -> Self {
        TinyDecoderConfig {
            vocab_size: super::tiny_tokenizer::VOCAB_SIZE as i64,
            hidden: 64,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            head_size: 16,
            intermediate: 128,
            max_positions: 2048,
            rope_theta: 10000.0,
            rms_eps: 1e-6,
            seed: 42,
        }
    }
}

/// Added to the attention scores of the positions a query may not see (padding, the future): the
/// lowest float16, so that the fp16 model holds it too (a row of padding then sees all its keys
/// equally instead of dividing by zero).
const MASKED: f32 = -65504.0;

/// Initializers the fp16 model keeps float: the rotary frequencies (rounded, they would move the
/// angles at long positions) and the RMSNorm epsilon.
const KEEP_FLOAT: [&str; 2] = ["model.rotary_emb.inv_freq", "const.rms_eps"];

/// Weight generator and graph under construction.
struct Ctx {
    b: GraphBuilder,
    rng: Rng,
}

impl Ctx {
    /// A `[rows, cols]` weight drawn from N(0, std).
    fn weight(&mut self, name: &str, rows: i64, cols: i64, std: f32) -> Result<String> {
        let data = (0..rows * cols).map(|_| self.rng.normal(0.0, std)).collect();
        self.b.init_f32(name, &[rows, cols], data)
    }

    /// `x @ W`, `W: [n_in, n_out]` drawn with the variance that keeps activations near unit scale.
    fn linear(&mut self, name: &str, x: &str, n_in: i64, n_out: i64) -> Result<String> {
        let w = self.weight(&format!("{name}.weight"), n_in, n_out, 1.0 / (n_in as f32).sqrt())?;
        Ok(self.b.node("MatMul", &[x, &w], vec![]))
    }

    /// `x / sqrt(mean(x²) + eps) * w` over the last axis, `w` near 1.
    fn rms_norm(&mut self, name: &str, x: &str, width: i64, eps: &str) -> Result<String> {
        let gamma = (0..width).map(|_| 1.0 + self.rng.normal(0.0, 0.1)).collect();
        let w = self.b.init_f32(&format!("{name}.weight"), &[width], gamma)?;
        let sq = self.b.node("Mul", &[x, x], vec![]);
        let ms = self.b.node("ReduceMean", &[&sq], vec![attr_ints("axes", &[-1]), attr_int("keepdims", 1)]);
        let ms = self.b.node("Add", &[&ms, eps], vec![]);
        let rms = self.b.node("Sqrt", &[&ms], vec![]);
        let y = self.b.node("Div", &[x, &rms], vec![]);
        Ok(self.b.node("Mul", &[&y, &w], vec![]))
    }

    fn i64s(&mut self, name: &str, v: &[i64]) -> Result<String> {
        self.b.init_i64(name, &[v.len() as i64], v.to_vec())
    }

    fn cast(&mut self, x: &str, to: DataType) -> String {
        self.b.node("Cast", &[x], vec![attr_int("to", to as i64)])
    }
}

/// Rotary embedding of `x: [batch, sequence, heads, head_size]` with `cos`, `sin`
/// `[batch, sequence, 1, head_size]`: `x * cos + rotate_half(x) * sin`.
fn rope(c: &mut Ctx, x: &str, cos: &str, sin: &str, k: &Consts) -> String {
    let x1 = c.b.node("Slice", &[x, &k.zero, &k.half, &k.axis3], vec![]);
    let x2 = c.b.node("Slice", &[x, &k.half, &k.full, &k.axis3], vec![]);
    let neg = c.b.node("Neg", &[&x2], vec![]);
    let rot = c.b.node("Concat", &[&neg, &x1], vec![attr_int("axis", 3)]);
    let a = c.b.node("Mul", &[x, cos], vec![]);
    let r = c.b.node("Mul", &[&rot, sin], vec![]);
    c.b.node("Add", &[&a, &r], vec![])
}

/// Constants shared by the blocks.
struct Consts {
    zero: String,
    half: String,
    full: String,
    axis3: String,
    eps: String,
    q_shape: String,
    kv_shape: String,
    group_shape: String,
    merge_shape: String,
    scale: String,
    axis2: String,
}

/// Builds the decoder with float32 weights and cache; with `fp16`, the weights, the cache and the
/// logits are float16 (the arithmetic stays float32: each weight is read through a cast, the
/// new keys and values are rounded to float16 before the step uses them, as the cache holds them).
/// The same config always yields identical bytes.
pub fn build(cfg: &TinyDecoderConfig, fp16: bool) -> Result<ModelProto> {
    ensure!(
        cfg.kv_heads > 0 && cfg.heads % cfg.kv_heads == 0,
        "tiny decoder: {} query heads are not a multiple of {} key/value heads",
        cfg.heads,
        cfg.kv_heads
    );
    ensure!(cfg.head_size > 0 && cfg.head_size % 2 == 0, "tiny decoder: the head size {} must be even (rotary embeddings pair its halves)", cfg.head_size);
    ensure!(cfg.layers > 0 && cfg.hidden > 0 && cfg.vocab_size > 0, "tiny decoder: layers, hidden size and vocabulary must be positive");
    let (h, nh, kv, d) = (cfg.hidden, cfg.heads, cfg.kv_heads, cfg.head_size);
    let cache_type = if fp16 { DataType::Float16 } else { DataType::Float };
    let mut c = Ctx { b: GraphBuilder::new("tiny_decoder"), rng: Rng::new(cfg.seed) };
    let (batch, seq, past, total) = (Dim::sym(BATCH), Dim::sym(SEQUENCE), Dim::sym(PAST), Dim::sym(TOTAL));
    let ids = c.b.input("input_ids", DataType::Int64, &[batch.clone(), seq.clone()]);
    let mask = c.b.input("attention_mask", DataType::Int64, &[batch.clone(), total.clone()]);
    let positions = c.b.input("position_ids", DataType::Int64, &[batch.clone(), seq.clone()]);
    let cache_in = [batch.clone(), Dim::Fixed(kv), past, Dim::Fixed(d)];
    let mut pasts = Vec::new();
    for i in 0..cfg.layers {
        let k = c.b.input(&format!("past_key_values.{i}.key"), cache_type, &cache_in);
        let v = c.b.input(&format!("past_key_values.{i}.value"), cache_type, &cache_in);
        pasts.push((k, v));
    }

    let k = Consts {
        zero: c.i64s("const.zero", &[0])?,
        half: c.i64s("const.half_head", &[d / 2])?,
        full: c.i64s("const.head", &[d])?,
        axis3: c.i64s("const.axis3", &[3])?,
        eps: c.b.init_f32("const.rms_eps", &[], vec![cfg.rms_eps as f32])?,
        q_shape: c.i64s("const.q_heads_shape", &[0, 0, nh, d])?,
        kv_shape: c.i64s("const.kv_heads_shape", &[0, 0, kv, d])?,
        group_shape: c.i64s("const.q_groups_shape", &[0, 0, kv, nh / kv, d])?,
        merge_shape: c.i64s("const.merge_heads_shape", &[0, 0, nh * d])?,
        scale: c.b.init_f32("const.attention_scale", &[], vec![1.0 / (d as f32).sqrt()])?,
        axis2: c.i64s("const.axis2", &[2])?,
    };

    // Token embeddings (unit scale: RMSNorm follows).
    let embed = c.weight("model.embed_tokens.weight", cfg.vocab_size, h, 1.0)?;
    let mut x = c.b.node("Gather", &[&embed, &ids], vec![attr_int("axis", 0)]);

    // Rotary angles from the positions: [batch, sequence, 1, head_size].
    let inv_freq: Vec<f32> = (0..d / 2).map(|j| cfg.rope_theta.powf(-2.0 * j as f64 / d as f64) as f32).collect();
    let inv_freq = c.b.init_f32("model.rotary_emb.inv_freq", &[d / 2], inv_freq)?;
    let pos = c.cast(&positions, DataType::Float);
    let pos = c.b.node("Unsqueeze", &[&pos, &k.axis2], vec![]);
    let freqs = c.b.node("Mul", &[&pos, &inv_freq], vec![]);
    let angles = c.b.node("Concat", &[&freqs, &freqs], vec![attr_int("axis", -1)]);
    let angles = c.b.node("Unsqueeze", &[&angles, &k.axis2], vec![]);
    let cos = c.b.node("Cos", &[&angles], vec![]);
    let sin = c.b.node("Sin", &[&angles], vec![]);

    // Additive mask [batch, 1, 1, sequence, past + sequence]: query i (at position past + i of
    // the mask) sees key j when j <= past + i and the mask holds 1 at j.
    let one = c.b.init_i64("const.one", &[], vec![1])?;
    let zero = c.b.init_i64("const.zero_scalar", &[], vec![0])?;
    let ids_shape = c.b.node("Shape", &[&ids], vec![]);
    let s_len = c.b.node("Gather", &[&ids_shape, &one], vec![attr_int("axis", 0)]);
    let mask_shape = c.b.node("Shape", &[&mask], vec![]);
    let t_len = c.b.node("Gather", &[&mask_shape, &one], vec![attr_int("axis", 0)]);
    let p_len = c.b.node("Sub", &[&t_len, &s_len], vec![]);
    let key_pos = c.b.node("Range", &[&zero, &t_len, &one], vec![]);
    let query_pos = c.b.node("Range", &[&p_len, &t_len, &one], vec![]);
    let axis1 = c.i64s("const.axis1", &[1])?;
    let query_pos = c.b.node("Unsqueeze", &[&query_pos, &axis1], vec![]);
    let causal = c.b.node("LessOrEqual", &[&key_pos, &query_pos], vec![]);
    let real = c.cast(&mask, DataType::Bool);
    let real = c.b.node("Unsqueeze", &[&real, &axis1], vec![]);
    let seen = c.b.node("And", &[&causal, &real], vec![]);
    let open = c.b.init_f32("const.open", &[], vec![0.0])?;
    let shut = c.b.init_f32("const.masked", &[], vec![MASKED])?;
    let bias = c.b.node("Where", &[&seen, &open, &shut], vec![]);
    let axes12 = c.i64s("const.axes12", &[1, 2])?;
    let bias = c.b.node("Unsqueeze", &[&bias, &axes12], vec![]);

    for (i, (past_k, past_v)) in pasts.iter().enumerate() {
        let p = format!("model.layers.{i}");
        let a = format!("{p}.self_attn");
        let n = c.rms_norm(&format!("{p}.input_layernorm"), &x, h, &k.eps)?;
        // q: [B, S, heads, D] -> RoPE -> [B, S, kv, group, D] -> [B, kv, group, S, D].
        let q = c.linear(&format!("{a}.q_proj"), &n, h, nh * d)?;
        let q = c.b.node("Reshape", &[&q, &k.q_shape], vec![]);
        let q = rope(&mut c, &q, &cos, &sin, &k);
        let q = c.b.node("Reshape", &[&q, &k.group_shape], vec![]);
        let q = c.b.node("Transpose", &[&q], vec![attr_ints("perm", &[0, 2, 3, 1, 4])]);
        // k, v: [B, S, kv, D] -> [B, kv, S, D], appended to the cache.
        let new_k = c.linear(&format!("{a}.k_proj"), &n, h, kv * d)?;
        let new_k = c.b.node("Reshape", &[&new_k, &k.kv_shape], vec![]);
        let new_k = rope(&mut c, &new_k, &cos, &sin, &k);
        let new_k = c.b.node("Transpose", &[&new_k], vec![attr_ints("perm", &[0, 2, 1, 3])]);
        let new_v = c.linear(&format!("{a}.v_proj"), &n, h, kv * d)?;
        let new_v = c.b.node("Reshape", &[&new_v, &k.kv_shape], vec![]);
        let new_v = c.b.node("Transpose", &[&new_v], vec![attr_ints("perm", &[0, 2, 1, 3])]);
        let cache = |c: &mut Ctx, past: &str, new: &str, name: String| -> String {
            let new = if fp16 { c.cast(new, DataType::Float16) } else { new.to_string() };
            c.b.node_named("Concat", &[past, &new], vec![attr_int("axis", 2)], &[&name]);
            if fp16 { c.cast(&name, DataType::Float) } else { name }
        };
        let all_k = cache(&mut c, past_k, &new_k, format!("present.{i}.key"));
        let all_v = cache(&mut c, past_v, &new_v, format!("present.{i}.value"));
        // Each key/value head serves its group of query heads by broadcasting over the group axis.
        let kt = c.b.node("Transpose", &[&all_k], vec![attr_ints("perm", &[0, 1, 3, 2])]);
        let kt = c.b.node("Unsqueeze", &[&kt, &k.axis2], vec![]);
        let vg = c.b.node("Unsqueeze", &[&all_v, &k.axis2], vec![]);
        let scores = c.b.node("MatMul", &[&q, &kt], vec![]);
        let scores = c.b.node("Mul", &[&scores, &k.scale], vec![]);
        let scores = c.b.node("Add", &[&scores, &bias], vec![]);
        let probs = c.b.node("Softmax", &[&scores], vec![attr_int("axis", -1)]);
        let ctx = c.b.node("MatMul", &[&probs, &vg], vec![]);
        let ctx = c.b.node("Transpose", &[&ctx], vec![attr_ints("perm", &[0, 3, 1, 2, 4])]);
        let ctx = c.b.node("Reshape", &[&ctx, &k.merge_shape], vec![]);
        let o = c.linear(&format!("{a}.o_proj"), &ctx, nh * d, h)?;
        x = c.b.node("Add", &[&x, &o], vec![]);
        // SwiGLU: down(silu(gate(n)) * up(n)).
        let m = format!("{p}.mlp");
        let n = c.rms_norm(&format!("{p}.post_attention_layernorm"), &x, h, &k.eps)?;
        let gate = c.linear(&format!("{m}.gate_proj"), &n, h, cfg.intermediate)?;
        let sig = c.b.node("Sigmoid", &[&gate], vec![]);
        let silu = c.b.node("Mul", &[&gate, &sig], vec![]);
        let up = c.linear(&format!("{m}.up_proj"), &n, h, cfg.intermediate)?;
        let act = c.b.node("Mul", &[&silu, &up], vec![]);
        let down = c.linear(&format!("{m}.down_proj"), &act, cfg.intermediate, h)?;
        x = c.b.node("Add", &[&x, &down], vec![]);
    }

    // Final norm and LM head, its logits spread wide enough (std ~4) that greedy picks are clear.
    let n = c.rms_norm("model.norm", &x, h, &k.eps)?;
    let head = c.weight("lm_head.weight", h, cfg.vocab_size, 4.0 / (h as f32).sqrt())?;
    if fp16 {
        let logits = c.b.node("MatMul", &[&n, &head], vec![]);
        c.b.node_named("Cast", &[&logits], vec![attr_int("to", DataType::Float16 as i64)], &["logits"]);
    } else {
        c.b.node_named("MatMul", &[&n, &head], vec![], &["logits"]);
    }
    c.b.output("logits", cache_type, &[batch.clone(), seq, Dim::Fixed(cfg.vocab_size)]);
    let cache_out = [batch, Dim::Fixed(kv), total, Dim::Fixed(d)];
    for i in 0..cfg.layers {
        c.b.output(&format!("present.{i}.key"), cache_type, &cache_out);
        c.b.output(&format!("present.{i}.value"), cache_type, &cache_out);
    }
    let model = c.b.finish(OPSET).context("building the tiny decoder graph")?;
    if fp16 {
        super::fp16::weights_to_fp16_keeping(&model, &KEEP_FLOAT)
    } else {
        Ok(model)
    }
}

/// The model's configuration as a transformers `config.json` (a `LlamaForCausalLM`).
pub fn config_json(cfg: &TinyDecoderConfig, fp16: bool) -> String {
    use super::tiny_tokenizer::{BOS_ID, EOS_ID, PAD_ID};
    let config = serde_json::json!({
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden,
        "num_hidden_layers": cfg.layers,
        "num_attention_heads": cfg.heads,
        "num_key_value_heads": cfg.kv_heads,
        "head_dim": cfg.head_size,
        "intermediate_size": cfg.intermediate,
        "hidden_act": "silu",
        "max_position_embeddings": cfg.max_positions,
        "rms_norm_eps": cfg.rms_eps,
        "rope_theta": cfg.rope_theta,
        "attention_bias": false,
        "mlp_bias": false,
        "tie_word_embeddings": false,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "pad_token_id": PAD_ID,
        "torch_dtype": if fp16 { "float16" } else { "float32" },
        "use_cache": true,
    });
    serde_json::to_string_pretty(&config).expect("a JSON value serializes") + "\n"
}

/// Builds the model and writes `dir/model.onnx`, `dir/config.json` and `dir/tokenizer.json`
/// (creating `dir`); returns the ONNX file's path.
pub fn write(cfg: &TinyDecoderConfig, fp16: bool, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create directory {}", dir.display()))?;
    let model = build(cfg, fp16)?;
    let file = |name: &str, text: String| std::fs::write(dir.join(name), text).with_context(|| format!("cannot write {}", dir.join(name).display()));
    file("config.json", config_json(cfg, fp16))?;
    file("tokenizer.json", super::tiny_tokenizer::json()?)?;
    let path = dir.join("model.onnx");
    builder::write(&model, &path)?;
    Ok(path)
}
