//! Benchmark inputs, built outside any timed region: prose cut to exact lengths (`text`),
//! tokenized with the model's own tokenizer into the inputs that take tokens (`feed`); for every
//! other input, how it is fed is decided once per model (`fill`), then values are given, generated
//! or read from the model's own test data (`values`) in the shapes each cell asks for (`shape`).

mod axes;
mod feed;
mod fill;
mod shape;
mod text;
mod values;

pub use crate::scenario::texts::BUILTIN_TEXTS;
pub use axes::{model_grid, ModelGrid};
pub use feed::{check_vocab, load_tokenizer, Feed};
pub use fill::{Fill, InputFill, InputPlan, Located};
pub use shape::{concrete_shape, dim_sources, element_count, is_batch_dim, is_sequence_dim, DimSource, Dims};
pub use text::{load_text, passages, Prose};
