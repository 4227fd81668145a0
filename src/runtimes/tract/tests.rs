use super::*;
use crate::tensor::Tensor as HostTensor;

fn tiny_bert() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny-bert/model.onnx")
}

/// Token ids, a mask of ones and zeros elsewhere, for tiny-bert's three int64 inputs.
fn feed(batch: usize, sequence: usize) -> Feed {
    let tensors = ["input_ids", "attention_mask", "token_type_ids"]
        .iter()
        .map(|&name| {
            let value = |k: usize| match name {
                "input_ids" => 100 + (k * 37 % 1000) as i64,
                "attention_mask" => (k % sequence < sequence - sequence / 3) as i64,
                _ => 0,
            };
            (name.to_string(), HostTensor::I64(ndarray::ArrayD::from_shape_fn(vec![batch, sequence], |ix| value(ix[0] * sequence + ix[1]))))
        })
        .collect();
    Feed { batch, seq_len: sequence, tensors, mask: vec![1; batch * sequence], text: None, fed: Vec::new() }
}

fn bits(outputs: &[Output]) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    outputs
        .iter()
        .map(|o| match &o.data {
            HostTensor::F32(a) => (o.name.clone(), a.shape().to_vec(), a.iter().map(|x| x.to_bits()).collect()),
            other => panic!("output {} is {:?}, float32 expected", o.name, other.elem_type()),
        })
        .collect()
}

/// Plans made from the session's typed graph give the very outputs (to the bit) of plans made from
/// the file read again for each shape, shape after shape in one session.
#[test]
fn typed_graph_plans_match_plans_from_the_file() {
    let opts = RuntimeOptions { threads: Some(1), ..Default::default() };
    let mut cached = TractSession::load(&tiny_bert(), &opts).unwrap();
    assert!(cached.graph.is_some(), "tiny-bert's graph types with symbolic dims");
    assert!(cached.keep_graph, "a 4 MB model's typed graph is kept");
    let mut fresh = TractSession::load(&tiny_bert(), &opts).unwrap();
    fresh.graph = None;
    // As a large model: the first plan made of the typed graph, the later ones of the file.
    let mut large = TractSession::load(&tiny_bert(), &opts).unwrap();
    large.keep_graph = false;
    for (batch, sequence) in [(1, 1), (2, 7), (3, 16), (1, 64), (2, 7)] {
        let f = feed(batch, sequence);
        for s in [&mut cached, &mut fresh, &mut large] {
            s.prepare(&f).unwrap();
            s.run(&f).unwrap();
        }
        assert!(cached.graph.is_some() && large.graph.is_none());
        let (a, b, c) = (bits(&cached.outputs(&f).unwrap()), bits(&fresh.outputs(&f).unwrap()), bits(&large.outputs(&f).unwrap()));
        assert_eq!(a.len(), 2, "last_hidden_state and pooler_output");
        assert_eq!(a[0].1, vec![batch, sequence, 32]);
        assert!(a == b && a == c, "outputs differ at batch {batch} × sequence {sequence}");
    }
}

/// Inputs that do not fit the declared ones (sizes of one symbol that disagree, another rank or
/// type) are left to the file as read, which says what tract makes of them.
#[test]
fn inputs_that_do_not_fit_the_typed_graph_fall_back_to_the_file() {
    let opts = RuntimeOptions { threads: Some(1), ..Default::default() };
    let session = TractSession::load(&tiny_bert(), &opts).unwrap();
    let graph = session.graph.as_ref().unwrap();
    let ids = |b: usize, s: usize| (DatumType::I64, vec![b, s]);
    assert!(graph.optimized_for(&[ids(2, 5), ids(2, 5), ids(2, 5)]).is_some());
    assert!(graph.optimized_for(&[ids(2, 5), ids(3, 5), ids(2, 5)]).is_none(), "batch 2 and 3 at once");
    assert!(graph.optimized_for(&[ids(2, 5), ids(2, 5)]).is_none(), "two inputs of three");
    assert!(graph.optimized_for(&[(DatumType::I32, vec![2, 5]), ids(2, 5), ids(2, 5)]).is_none(), "int32 ids");
    assert!(graph.optimized_for(&[(DatumType::I64, vec![2, 5, 1]), ids(2, 5), ids(2, 5)]).is_none(), "rank 3");
    // The session itself then reads the file, where tract refuses the disagreeing batch sizes.
    let mut session = session;
    let mut bad = feed(2, 5);
    bad.tensors[1].1 = HostTensor::I64(ndarray::ArrayD::ones(vec![3, 5]));
    let e = session.prepare(&bad).unwrap_err().to_string();
    assert!(e.contains("not supported by tract: it cannot optimize the graph for input shapes [[2, 5], [3, 5], [2, 5]]"), "{e}");
}

/// A plan's summary counts its nodes and each transformer op tract put in it, and says so when
/// there is none.
#[test]
fn a_plan_summary_counts_nodes_and_names_tracts_transformer_ops() {
    let s = super::decode::plan_summary(["MatMul", "RmsNorm", "Add", "ApplyRope", "RmsNorm", "SDPA"].into_iter());
    assert_eq!(s, format!("tract {TRACT_VERSION}, plan of 6 nodes; transformer ops: ApplyRope ×1, RmsNorm ×2, SDPA ×1"));
    let s = super::decode::plan_summary(["MatMul", "Softmax", "Mul"].into_iter());
    assert!(s.ends_with("plan of 3 nodes; transformer ops: none (attention, normalisation and rotary embedding run as the graph's own operators)"), "{s}");
}
