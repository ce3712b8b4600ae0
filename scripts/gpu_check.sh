#!/usr/bin/env bash
# Device check of the GPU path in one command (issue 15): scripts/gpu_check.py does the
# checks and prints one table; this wrapper first installs what is missing.
#
#   scripts/gpu_check.sh [--keep DIR] [other gpu_check.py options]
#
# Python: $PYTHON (default: python3) if it imports ecgreport and onnxruntime-gpu, else a
# virtual environment in $GPU_CHECK_VENV (default: .venv-gpu-check) with `pip install -e .`.
# CUDA 13 runtime and cuDNN 9: the machine's, else onnxruntime-gpu[cuda,cudnn] from pip.
# Exit 0: all passed; 1: a check failed; 77: no NVIDIA GPU on this machine (nothing checked).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  echo "gpu_check: no NVIDIA GPU on this machine (nvidia-smi is missing or lists no GPU); nothing was" \
       "checked. Run it on a machine with an NVIDIA GPU and driver." >&2
  exit 77
fi

PY="${PYTHON:-python3}"
if ! "$PY" -c "import ecgreport, onnxruntime as o; assert 'CUDAExecutionProvider' in o.get_available_providers()" \
     >/dev/null 2>&1; then
  VENV="${GPU_CHECK_VENV:-.venv-gpu-check}"
  echo "gpu_check: installing ecgreport and onnxruntime-gpu into $VENV" >&2
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  PY="$VENV/bin/python"
  "$PY" -m pip install -q --upgrade pip >&2
  "$PY" -m pip install -q -e . >&2
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

missing="$("$PY" -c "from ecgreport.onnx.providers import cuda_missing_piece as m; print(m() or '')" 2>/dev/null)"
if [ -n "$missing" ]; then
  version="$("$PY" -c "import onnxruntime; print(onnxruntime.__version__)")"
  echo "gpu_check: $missing; installing onnxruntime-gpu[cuda,cudnn]==$version" >&2
  "$PY" -m pip install -q "onnxruntime-gpu[cuda,cudnn]==$version" >&2
fi
exec "$PY" scripts/gpu_check.py "$@"
