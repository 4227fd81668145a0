//! ONNX model construction: a small graph builder, a tiny BERT encoder with random weights, fp16
//! copies of models, and a model's graph with its weights referred to by their place in its file.
pub mod builder;
pub mod by_offset;
pub mod fp16;
pub mod tiny_bert;
