//! ONNX model construction: a small graph builder and a tiny BERT encoder with random weights.
pub mod builder;
pub mod tiny_bert;
