//! Inputs: exact character lengths, distinct passages, and the token counts actually fed,
//! checked against counts from the Python `tokenizers` library on the same tokenizer.json.

use xbench::inputs::{load_tokenizer, passages, Dims, Feed, InputPlan, BUILTIN_TEXTS};
use xbench::models::{find, read_io};

/// The model's inputs as their names say (it has a tokenizer).
fn plan(model: &str, io: &xbench::models::ModelIo) -> InputPlan {
    InputPlan::by_name(model, &io.inputs, true).unwrap()
}

fn botchan() -> &'static str {
    BUILTIN_TEXTS[0].1
}

#[test]
fn passages_have_exactly_the_requested_characters_and_are_distinct() {
    let norm = botchan().split_whitespace().collect::<Vec<_>>().join(" ");
    for &n in &[1usize, 7, 50, 100, 200, 500, 1000] {
        let ps = passages(botchan(), n, 32).unwrap();
        assert_eq!(ps.len(), 32);
        for p in &ps {
            assert_eq!(p.chars().count(), n, "passage of {n}: {p:?}");
            assert!(!p.ends_with(' ') && !p.starts_with(' '), "{p:?}");
            assert!(norm.contains(p.as_str()));
        }
        let mut uniq = ps.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 32, "passages of {n} chars are not distinct");
    }
    // The first passage starts at the beginning of the text.
    assert_eq!(passages(botchan(), 50, 1).unwrap()[0], norm.chars().take(50).collect::<String>());
}

#[test]
fn multibyte_text_is_cut_by_characters_not_bytes() {
    let text = "héllo wörld ñandú café ünïcödé ".repeat(20);
    let ps = passages(&text, 13, 4).unwrap();
    for p in ps {
        assert_eq!(p.chars().count(), 13);
    }
}

#[test]
fn too_short_text_is_a_clear_error() {
    let e = passages("only a few words", 500, 1).unwrap_err().to_string();
    assert!(e.contains("fewer than the 500"), "{e}");
    assert!(e.contains("fix:"), "{e}");
    let e = passages("one two three four five six", 20, 50).unwrap_err().to_string();
    assert!(e.contains("distinct passages"), "{e}");
    assert!(passages("abc", 0, 1).is_err());
}

#[test]
fn token_counts_match_the_reference_tokenizer() {
    let model = find("tiny-bert", "models".as_ref()).unwrap();
    let io = read_io(&model.onnx).unwrap();
    let mut tok = load_tokenizer(model.tokenizer.as_ref().unwrap()).unwrap();
    // Counts from Python `tokenizers` on the same tokenizer.json, [CLS] and [SEP] included.
    for (chars, expected) in [(50usize, 17usize), (500, 113)] {
        let texts = passages(botchan(), chars, 1).unwrap();
        let feed = Feed::from_texts(&mut tok, &texts, &plan(&model.name, &io), model.position_offset(), Some(512), &Dims::default()).unwrap();
        assert_eq!(feed.text.as_ref().unwrap().tokens_per_row, vec![expected], "{chars} chars");
        assert_eq!(feed.text.as_ref().unwrap().padded_len, expected);
        assert_eq!(feed.text.as_ref().unwrap().truncated_rows, 0);
    }
    let feed = Feed::from_texts(&mut tok, &["Hello, world!".to_string()], &plan(&model.name, &io), model.position_offset(), None, &Dims::default()).unwrap();
    assert_eq!(feed.text.as_ref().unwrap().tokens_per_row, vec![6]);
}

#[test]
fn batches_are_padded_to_the_longest_row_with_the_pad_token() {
    let model = find("tiny-bert", "models".as_ref()).unwrap();
    let io = read_io(&model.onnx).unwrap();
    let mut tok = load_tokenizer(model.tokenizer.as_ref().unwrap()).unwrap();
    let texts = vec!["Hello, world!".to_string(), "a much longer sentence than the first one is".to_string()];
    let feed = Feed::from_texts(&mut tok, &texts, &plan(&model.name, &io), model.position_offset(), None, &Dims::default()).unwrap();
    let longest = *feed.text.as_ref().unwrap().tokens_per_row.iter().max().unwrap();
    assert_eq!(feed.seq_len, longest);
    assert_eq!(feed.text.as_ref().unwrap().tokens_per_row[0], 6);
    // Row 0 is padded with [PAD] (id 0 in bert-base-uncased) and masked out.
    let ids = match &feed.tensors[0].1 {
        xbench::tensor::Tensor::I64(a) => a.clone(),
        _ => panic!("input_ids should be int64"),
    };
    assert_eq!(feed.tensors[0].0, "input_ids");
    assert_eq!(ids.shape(), &[2, longest]);
    assert_eq!(ids[[0, 6]], 0);
    assert_eq!(&feed.mask[..longest], &[1, 1, 1, 1, 1, 1].iter().copied().chain(std::iter::repeat(0).take(longest - 6)).collect::<Vec<u8>>()[..]);
    assert_eq!(feed.real_tokens().unwrap(), 6 + feed.text.as_ref().unwrap().tokens_per_row[1]);
}

#[test]
fn long_inputs_are_truncated_at_the_model_maximum_and_counted() {
    let model = find("tiny-bert", "models".as_ref()).unwrap();
    let io = read_io(&model.onnx).unwrap();
    let mut tok = load_tokenizer(model.tokenizer.as_ref().unwrap()).unwrap();
    let texts = passages(botchan(), 500, 2).unwrap();
    let feed = Feed::from_texts(&mut tok, &texts, &plan(&model.name, &io), model.position_offset(), Some(32), &Dims::default()).unwrap();
    assert_eq!(feed.seq_len, 32);
    assert_eq!(feed.text.as_ref().unwrap().tokens_per_row, vec![32, 32]);
    assert_eq!(feed.text.as_ref().unwrap().truncated_rows, 2);
}
