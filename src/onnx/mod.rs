//! ONNX model construction: a small graph builder, a tiny BERT encoder with random weights, and fp16
//! copies of models.
pub mod builder;
pub mod fp16;
pub mod tiny_bert;
