"""xbench's external runtime programs and what they share (docs/runtime-protocol.md).

The programs (`torch_hf.py`, `mlx_hf.py`, `ort_python.py`) are run by path, as a scenario's
runtime entry names them (`python3 -P scripts/runtimes/torch_hf.py`); each puts the folder above
this package on `sys.path` first, so that it imports its siblings as `runtimes.*`:

  protocol     the protocol's program side: the message loop, timing, options, arrays
  hf_config    a model folder's transformers configuration, and the weight strategies' shared steps
  hf_model     the transformers (PyTorch) model for torch_hf.py
  mlx_model    the mlx-transformers model for mlx_hf.py
  onnx_weights the ONNX file's initializers matched to a model's parameters
"""
