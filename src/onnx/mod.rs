//! ONNX model construction: a small graph builder, a tiny BERT encoder and a tiny decoder (with its
//! byte-level tokenizer) with random weights, fp16
//! copies of models, and a model's graph with its weights referred to by their place in its file.
pub mod builder;
pub mod by_offset;
pub mod fp16;
pub mod tiny_bert;
pub mod tiny_decoder;
pub mod tiny_tokenizer;
