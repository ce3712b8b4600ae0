"""ONNX bundle: export from a checkpoint (torch) and the torch-free runtime that `batch` uses."""
