//! Benchmark inputs, built outside any timed region: prose cut to exact lengths (`text`),
//! tokenized with the model's own tokenizer and turned into the tensors its graph declares
//! (`feed`), or tensors generated for models that take no text (`generated`).

mod feed;
mod generated;
mod text;

pub use crate::scenario::texts::BUILTIN_TEXTS;
pub use feed::{check_vocab, load_tokenizer, Feed};
pub use generated::{concrete_shape, is_batch_dim, is_sequence_dim, takes_tokens};
pub use text::{load_text, passages};
