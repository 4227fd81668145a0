//! Benchmark inputs, built outside any timed region: prose cut to exact lengths (`text`),
//! tokenized with the model's own tokenizer and turned into the tensors its graph declares (`feed`).


mod generated;
mod text;

pub mod feed;
pub use feed::{load_tokenizer, Feed, HostTensor, TextBatch};
pub use generated::{concrete_shape, takes_tokens};
pub use text::{load_text, passages};

/// Prose shipped inside the binary, by name.
pub const BUILTIN_TEXTS: &[(&str, &str)] = &[("botchan", include_str!("corpus/botchan.txt"))];
