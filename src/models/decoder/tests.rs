use super::*;

/// A graph input or output; dims that parse as numbers are fixed, the others symbols.
fn io(name: &str, ty: &str, dims: &[&str]) -> IoInfo {
    let dims = dims.iter().map(|d| d.parse().map(Dim::Fixed).unwrap_or_else(|_| Dim::Symbol(d.to_string()))).collect();
    IoInfo { name: name.into(), elem_type: ty.into(), dims: Some(dims), structural_use: None }
}

fn graph(inputs: Vec<IoInfo>, outputs: Vec<IoInfo>) -> ModelIo {
    ModelIo {
        inputs,
        outputs,
        opsets: vec![("ai.onnx".into(), 17)],
        position_table_rows: None,
        word_embedding_rows: None,
        external_files: Vec::new(),
        weights_precision: crate::scenario::Precision::Fp32,
        quantized: None,
        flops_per_token: None,
    }
}

const PAST: [&str; 4] = ["batch_size", "2", "past_sequence_length", "16"];
const PRESENT: [&str; 4] = ["batch_size", "2", "past_sequence_length + sequence_length", "16"];

/// A decoder of `layers` layers in optimum's layout with `names` as the cache's name templates
/// (past key, past value, present key, present value), the cache of type `ty`.
fn decoder(layers: usize, names: [&str; 4], ty: &str, extra_inputs: &[&str]) -> ModelIo {
    let mut inputs = vec![io("input_ids", "int64", &["batch_size", "sequence_length"]), io("attention_mask", "int64", &["batch_size", "total"])];
    for name in extra_inputs {
        inputs.push(match *name {
            "use_cache_branch" => io(name, "bool", &["1"]),
            _ => io(name, "int64", &["batch_size", "sequence_length"]),
        });
    }
    let mut outputs = vec![io("logits", ty, &["batch_size", "sequence_length", "259"])];
    for i in 0..layers {
        let n = |t: &str| t.replace("{i}", &i.to_string()).replace("%d", &i.to_string());
        inputs.push(io(&n(names[0]), ty, &PAST));
        inputs.push(io(&n(names[1]), ty, &PAST));
        outputs.push(io(&n(names[2]), ty, &PRESENT));
        outputs.push(io(&n(names[3]), ty, &PRESENT));
    }
    graph(inputs, outputs)
}

fn optimum(layers: usize) -> ModelIo {
    decoder(layers, KNOWN, "float32", &["position_ids"])
}

fn refusal(io: &ModelIo, roles: Option<&DecoderRoles>) -> String {
    let e = DecoderLayout::read(io, roles, None).expect_err("refused");
    format!("{e:#}")
}

fn roles(yaml: &str) -> DecoderRoles {
    serde_yaml::from_str(yaml).unwrap()
}

#[test]
fn optimum_names_are_found_with_heads_head_size_and_type_from_the_cache() {
    let config = serde_json::json!({"max_position_embeddings": 2048, "num_hidden_layers": 3});
    let l = DecoderLayout::read(&optimum(3), None, Some(&config)).unwrap().expect("a decoder");
    assert_eq!((l.input_ids.as_str(), l.logits.as_str()), ("input_ids", "logits"));
    assert_eq!((l.attention_mask.as_deref(), l.position_ids.as_deref(), l.use_cache_branch.as_deref()), (Some("attention_mask"), Some("position_ids"), None));
    assert_eq!(l.cache.len(), 3);
    assert_eq!(
        l.cache[2],
        CachePair { layer: 2, past_key: "past_key_values.2.key".into(), past_value: "past_key_values.2.value".into(), present_key: "present.2.key".into(), present_value: "present.2.value".into() }
    );
    assert_eq!((l.kv_heads, l.head_size, l.cache_type, l.vocab, l.max_positions), (Some(2), Some(16), ElemType::Float32, Some(259), Some(2048)));
    // keys and values × 3 layers × batch 4 × 10 positions × 2 heads × 16 × 4 bytes.
    assert_eq!(l.cache_bytes(4, 10), Some(2 * 3 * 4 * 10 * 2 * 16 * 4));
    assert_eq!(DecoderLayout::read(&optimum(3), None, None).unwrap().unwrap().max_positions, None);
}

/// onnxruntime-genai's exports: the same names, often no `position_ids`, a float16 cache; its
/// genai_config.json writes the templates with `%d`, which model.yaml takes as well.
#[test]
fn genai_names_and_percent_d_templates() {
    let io = decoder(2, KNOWN, "float16", &[]);
    let l = DecoderLayout::read(&io, None, None).unwrap().unwrap();
    assert_eq!((l.position_ids.as_deref(), l.cache_type, l.cache.len()), (None, ElemType::Float16, 2));
    assert_eq!(l.cache_bytes(1, 100), Some(2 * 2 * 100 * 2 * 16 * 2));
    let genai = roles("past_key: past_key_values.%d.key\npast_value: past_key_values.%d.value\npresent_key: present.%d.key\npresent_value: present.%d.value\n");
    assert_eq!(DecoderLayout::read(&io, Some(&genai), None).unwrap().unwrap().cache, l.cache);
}

#[test]
fn a_merged_decoder_has_its_use_cache_branch() {
    let l = DecoderLayout::read(&decoder(1, KNOWN, "float32", &["position_ids", "use_cache_branch"]), None, None).unwrap().unwrap();
    assert_eq!(l.use_cache_branch.as_deref(), Some("use_cache_branch"));
    let mut io = decoder(1, KNOWN, "float32", &["use_cache_branch"]);
    io.inputs.iter_mut().find(|i| i.name == "use_cache_branch").unwrap().elem_type = "int64".into();
    let e = refusal(&io, None);
    assert!(e.contains("`use_cache_branch` is int64") && e.contains("bool [1]"), "{e}");
}

#[test]
fn model_yaml_maps_other_names_by_templates_or_pairs() {
    let mut io = decoder(2, ["cache_in.{i}.k", "cache_in.{i}.v", "cache_out.{i}.k", "cache_out.{i}.v"], "float32", &["pos"]);
    io.inputs[0].name = "tokens".into();
    io.outputs[0].name = "scores".into();
    // Without roles: cache-like inputs that pair by no known name are refused, named.
    let e = refusal(&io, None);
    assert!(e.contains("no key/value cache found") && e.contains("cache-like inputs: `cache_in.0.k`, `cache_in.0.v`, `cache_in.1.k`"), "{e}");
    let r = roles("input_ids: tokens\nposition_ids: pos\nlogits: scores\npast_key: cache_in.{i}.k\npast_value: cache_in.{i}.v\npresent_key: cache_out.{i}.k\npresent_value: cache_out.{i}.v\n");
    let l = DecoderLayout::read(&io, Some(&r), None).unwrap().unwrap();
    assert_eq!((l.input_ids.as_str(), l.position_ids.as_deref(), l.logits.as_str(), l.attention_mask.as_deref()), ("tokens", Some("pos"), "scores", Some("attention_mask")));
    assert_eq!(l.cache[1].present_value, "cache_out.1.v");
    // The same as explicit pairs.
    let pairs = "input_ids: tokens\nposition_ids: pos\nlogits: scores\ncache:\n".to_string()
        + &(0..2).map(|i| format!("  - {{past_key: cache_in.{i}.k, past_value: cache_in.{i}.v, present_key: cache_out.{i}.k, present_value: cache_out.{i}.v}}\n")).collect::<String>();
    assert_eq!(DecoderLayout::read(&io, Some(&roles(&pairs)), None).unwrap().unwrap(), l);
    // Unknown keys are refused as everywhere in model.yaml.
    let e = serde_yaml::from_str::<DecoderRoles>("past_keys: a.{i}\n").unwrap_err().to_string();
    assert!(e.contains("unknown field `past_keys`"), "{e}");
    let e = serde_yaml::from_str::<super::super::ModelMeta>("decoder: {logit: x}\n").unwrap_err().to_string();
    assert!(e.contains("unknown field `logit`"), "{e}");
    assert_eq!(serde_yaml::from_str::<super::super::ModelMeta>("decoder: {logits: x}\n").unwrap().decoder.unwrap().logits.as_deref(), Some("x"));
}

#[test]
fn a_model_without_cache_inputs_is_no_decoder_with_a_cache() {
    let encoder = graph(vec![io("input_ids", "int64", &["b", "s"]), io("attention_mask", "int64", &["b", "s"])], vec![io("last_hidden_state", "float32", &["b", "s", "32"])]);
    assert_eq!(DecoderLayout::read(&encoder, None, None).unwrap(), None);
    // optimum's decoder without past: present outputs, no past inputs.
    let mut first_step = optimum(2);
    first_step.inputs.retain(|i| !i.name.starts_with("past_"));
    assert_eq!(DecoderLayout::read(&first_step, None, None).unwrap(), None);
    // Unless model.yaml says it is one.
    let e = refusal(&first_step, Some(&roles("logits: logits\n")));
    assert!(e.contains("present.0.key") && e.contains("no matching input `past_key_values.0.key`"), "{e}");
}

#[test]
fn caches_that_do_not_pair_are_refused_naming_them() {
    let mut io = optimum(2);
    io.outputs.retain(|o| o.name != "present.1.value");
    let e = refusal(&io, None);
    assert!(e.contains("no matching output `present.1.value`") && e.contains("fix: map the roles") && e.contains("decoder:"), "{e}");
    // The reverse: a present output without its past input.
    let mut io = optimum(2);
    io.inputs.retain(|i| i.name != "past_key_values.0.key");
    let e = refusal(&io, None);
    assert!(e.contains("no matching input `past_key_values.0.key`"), "{e}");
    // A layer missing in the middle.
    let mut io = optimum(3);
    io.inputs.retain(|i| !i.name.starts_with("past_key_values.1."));
    io.outputs.retain(|o| !o.name.starts_with("present.1."));
    let e = refusal(&io, None);
    assert!(e.contains("layer 1 has no cache"), "{e}");
    // A cache-like input of another name beside a cache that pairs.
    let mut io = optimum(1);
    io.inputs.push(io_like("past_sequence_lengths"));
    let e = refusal(&io, None);
    assert!(e.contains("`past_sequence_lengths` pair with no present output"), "{e}");
    let mut g = optimum(1);
    g.outputs.push(self::io("present_conv_state", "float32", &["b", "8"]));
    let e = refusal(&g, None);
    assert!(e.contains("`present_conv_state` pair with no past input"), "{e}");
}

fn io_like(name: &str) -> IoInfo {
    io(name, "int32", &["batch_size"])
}

#[test]
fn missing_roles_bad_shapes_and_bad_roles_are_refused() {
    let mut io = optimum(1);
    io.outputs[0].name = "lm_logits".into();
    let e = refusal(&io, None);
    assert!(e.contains("no output `logits`") && e.contains("`lm_logits`") && e.contains("fix:"), "{e}");
    assert_eq!(DecoderLayout::read(&io, Some(&roles("logits: lm_logits\n")), None).unwrap().unwrap().logits, "lm_logits");
    let e = refusal(&io, Some(&roles("logits: scores\n")));
    assert!(e.contains("`scores`, which is no output of the graph") && e.contains("`lm_logits`"), "{e}");

    let mut io = optimum(2);
    io.inputs.iter_mut().find(|i| i.name == "past_key_values.1.value").unwrap().dims = Some(vec![Dim::Symbol("b".into()), Dim::Fixed(32), Dim::Symbol("p".into())]);
    let e = refusal(&io, None);
    assert!(e.contains("`past_key_values.1.value` is [b, 32, p], not [batch, heads, positions, head_size]"), "{e}");

    let mut io = optimum(1);
    io.outputs.iter_mut().find(|o| o.name == "present.0.key").unwrap().dims.as_mut().unwrap()[1] = Dim::Fixed(4);
    let e = refusal(&io, None);
    assert!(e.contains("`past_key_values.0.key` has 2 at axis 1 but `present.0.key` 4"), "{e}");

    let mut io = optimum(1);
    io.inputs.iter_mut().find(|i| i.name == "past_key_values.0.value").unwrap().elem_type = "float16".into();
    let e = refusal(&io, None);
    assert!(e.contains("`past_key_values.0.value` is float16 while `past_key_values.0.key` is float32"), "{e}");

    let e = refusal(&optimum(1), Some(&roles("past_key: k\npast_value: v.{i}\npresent_key: pk.{i}\npresent_value: pv.{i}\n")));
    assert!(e.contains("`decoder: past_key: k` has no `{i}`"), "{e}");
    let e = refusal(&optimum(1), Some(&roles("past_key: k.{i}\n")));
    assert!(e.contains("not `past_value`"), "{e}");
    let both = "past_key: a.{i}\ncache: [{past_key: a, past_value: b, present_key: c, present_value: d}]\n";
    assert!(refusal(&optimum(1), Some(&roles(both))).contains("both `cache:` pairs and name templates"));
    let e = refusal(&optimum(1), Some(&roles("cache: [{past_key: past_key_values.0.key, past_value: v, present_key: present.0.key, present_value: present.0.value}]\n")));
    assert!(e.contains("layer 0's `v` is no input of the graph"), "{e}");
}

/// Heads that differ from layer to layer leave the size unknown rather than wrong.
#[test]
fn heads_that_differ_between_layers_are_not_recorded() {
    let mut io = optimum(2);
    for list in [&mut io.inputs, &mut io.outputs] {
        for i in list.iter_mut().filter(|i| i.name.contains(".1.")) {
            i.dims.as_mut().unwrap()[1] = Dim::Fixed(4);
        }
    }
    let l = DecoderLayout::read(&io, None, None).unwrap().unwrap();
    assert_eq!((l.kv_heads, l.head_size, l.cache_bytes(1, 8)), (None, Some(16), None));
}

#[test]
fn the_committed_tiny_decoder_reads_as_a_decoder_and_tiny_bert_as_none() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let spec = crate::models::find("tiny-llama", &root).unwrap();
    let l = spec.decoder_layout(&crate::models::read_io(&spec.onnx).unwrap()).unwrap().unwrap();
    assert_eq!(l.cache.len(), 2);
    assert_eq!((l.kv_heads, l.head_size, l.cache_type, l.vocab, l.max_positions), (Some(2), Some(16), ElemType::Float32, Some(259), Some(2048)));
    assert_eq!((l.attention_mask.as_deref(), l.position_ids.as_deref(), l.use_cache_branch.as_deref()), (Some("attention_mask"), Some("position_ids"), None));
    assert_eq!(l.cache_bytes(1, 2048), Some(2 * 2 * 2048 * 2 * 16 * 4));
    let bert = crate::models::find("tiny-bert", &root).unwrap();
    assert_eq!(bert.decoder_layout(&crate::models::read_io(&bert.onnx).unwrap()).unwrap(), None);
}
