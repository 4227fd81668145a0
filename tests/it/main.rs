//! The integration tests: one test binary, one module per area (`cargo test --release --test it
//! external::` runs one area), sharing the harness in `common`.

mod common;
mod hostile;

mod bad_inputs;
mod compare;
mod decoder;
mod dropped_in;
mod end_to_end;
mod execution_providers;
mod executor;
mod external;
mod external_generate;
mod fetch;
mod frameworks;
mod fuzz;
mod generate;
mod fuzz_regressions;
mod guards;
mod hostile_bounds;
mod hostile_paths;
mod hostile_resume;
mod inputs;
mod io_modes;
mod onnx_builder;
mod ops;
mod own_data;
mod report;
mod robustness;
mod scenario;
mod shards;
mod siblings;
mod signals;
