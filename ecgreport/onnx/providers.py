"""Which onnxruntime execution provider runs the model, with which options, and why not CUDA.

The CUDA provider is used only after it has really run the model (see
``ModelRunner._start_cuda``); this module holds the pieces around that check:

- :data:`CUDA_OPTIONS`, the CUDA provider options, always passed explicitly:

  ``use_tf32=0``: the provider's default (1) runs MatMul, Gemm and Conv with TF32
  (10-bit mantissa) on Ampere and newer GPUs; embeddings and scores would move by ~1e-3 from
  the CPU's and greedy tokens could flip on near-ties, while the bundle's parity check
  (``export-onnx``) holds the CPU to 1e-4 of PyTorch.

  ``cudnn_conv_algo_search=HEURISTIC``: the default, EXHAUSTIVE, times every cuDNN
  convolution algorithm for each new input shape; a batch holds whole records, so the
  encoder sees many batch sizes (64, 63, 60, the last batch ...) and would pay that
  benchmark for each, and which algorithm wins depends on timing noise, so two runs of the
  same folder could round differently. HEURISTIC takes cuDNN's own ranking for the shape:
  no benchmark, and the same choice on every run of the same GPU and cuDNN. DEFAULT (always
  IMPLICIT_PRECOMP_GEMM) would be as reproducible but slower for some shapes.

- :func:`cuda_missing_piece`: before onnxruntime tries CUDA, name what a machine lacks (the
  CUDA provider, the NVIDIA driver, a GPU, a driver new enough, the CUDA runtime, cuBLAS,
  cuDNN), in words a user can act on. onnxruntime itself only logs a screen of library
  errors and quietly runs on the CPU.

- :func:`quiet_stdout`: onnxruntime prints with ``print()`` (its "EP Error ... Falling
  back" banner, ``preload_dlls`` failures); stdout is for data, so anything it prints while
  we set it up is kept for the debug log instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging

from ecgreport.errors import UsageError

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")

CUDA_OPTIONS = {"device_id": "0", "use_tf32": "0", "cudnn_conv_algo_search": "HEURISTIC"}
CUDNN_MAJOR = 9  # onnxruntime-gpu >= 1.19 is built against cuDNN 9
INSTALL_HINT = "pip install 'onnxruntime-gpu[cuda,cudnn]'"


@contextlib.contextmanager
def quiet_stdout():
    """Keep what onnxruntime prints (with ``print``) off stdout; log it at debug level."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        if buffer.getvalue().strip():
            log.debug("onnxruntime printed: %s", buffer.getvalue().strip())


def _loads(name: str) -> bool:
    try:
        ctypes.CDLL(name)
        return True
    except OSError:
        return False


def _cuda_driver_present() -> bool:
    """True when an NVIDIA driver (libcuda.so.1) is loadable."""
    return _loads("libcuda.so.1")


def cuda_build_major() -> int | None:
    """The CUDA major version onnxruntime-gpu was built with (13 for 1.31), None if unknown."""
    try:
        from onnxruntime.capi import build_and_package_info as info

        return int(str(getattr(info, "cuda_version", "")).split(".")[0])
    except (ImportError, ValueError):
        return None


def _driver_problem(needed_major: int | None) -> str | None:
    """Ask the driver (libcuda) for a GPU and its CUDA version, without the runtime library."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
        err = cuda.cuInit(0)
        if err:
            # 100: CUDA_ERROR_NO_DEVICE, 999: unknown (often a driver/kernel-module mismatch)
            return f"the NVIDIA driver finds no usable GPU (cuInit error {err})"
        count, version = ctypes.c_int(0), ctypes.c_int(0)
        if cuda.cuDeviceGetCount(ctypes.byref(count)) or count.value < 1:
            return "the NVIDIA driver finds no GPU"
        if needed_major and not cuda.cuDriverGetVersion(ctypes.byref(version)):
            major, minor = version.value // 1000, version.value % 1000 // 10
            if major < needed_major:
                return (f"the NVIDIA driver supports CUDA {major}.{minor}, onnxruntime-gpu needs "
                        f"CUDA {needed_major} (update the driver)")
    except (OSError, AttributeError):
        return "no NVIDIA driver found (libcuda.so.1)"
    return None


def preload_cuda_libraries() -> None:
    """``onnxruntime.preload_dlls()`` where it exists (1.21+): loads the CUDA and cuDNN
    libraries of the nvidia-* pip packages, which the loader would not find otherwise."""
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls"):
        with quiet_stdout():  # it prints each library it cannot load
            try:
                ort.preload_dlls()
            except Exception as err:  # a bad nvidia package layout: the probe below says what
                log.debug("onnxruntime.preload_dlls failed: %s", err)


def cuda_missing_piece() -> str | None:
    """None when everything the CUDA provider loads is present, else what is missing, e.g.
    ``"cuDNN 9 not found (libcudnn.so.9; pip install 'onnxruntime-gpu[cuda,cudnn]')"``.

    Checked in the order onnxruntime needs them; the libraries after
    :func:`preload_cuda_libraries`, so those installed from pip count. cuDNN is loaded by
    onnxruntime only at the first convolution, so without this check its absence would
    surface in the middle of a batch.
    """
    import onnxruntime as ort

    if CUDA not in ort.get_available_providers():
        return "onnxruntime has no CUDA provider (install onnxruntime-gpu)"
    if not _cuda_driver_present():
        return "no NVIDIA driver found (libcuda.so.1)"
    major = cuda_build_major()
    problem = _driver_problem(major)
    if problem:
        return problem
    preload_cuda_libraries()
    if major is None:
        return None
    for lib, what in [(f"libcudart.so.{major}", f"the CUDA {major} runtime"),
                      (f"libcublasLt.so.{major}", f"cuBLAS (CUDA {major})"),
                      (f"libcublas.so.{major}", f"cuBLAS (CUDA {major})"),
                      ("libcurand.so.10", f"cuRAND (CUDA {major})"),
                      (f"libcudnn.so.{CUDNN_MAJOR}", f"cuDNN {CUDNN_MAJOR}")]:
        if not _loads(lib):
            return f"{what} not found ({lib}; {INSTALL_HINT})"
    return None


def describe_failure(err: BaseException) -> str:
    """A one-line reason from an onnxruntime error raised while CUDA ran the model."""
    text = " ".join(str(err).split())
    lowered = text.lower()
    for needle, why in [("cudnn", f"cuDNN failed ({INSTALL_HINT})"),
                        ("insufficient", "the NVIDIA driver is too old for onnxruntime-gpu's CUDA"),
                        ("no kernel image", "this GPU's architecture is not supported by onnxruntime-gpu"),
                        ("out of memory", "the GPU is out of memory"),
                        ("cublas", f"cuBLAS failed ({INSTALL_HINT})")]:
        if needle in lowered:
            return f"{why}: {text[:160]}"
    return f"the CUDA provider failed: {text[:200]}"


def fallback_note(device: str, why: str) -> str | None:
    """The one line shown when CUDA is not used, or None when nothing needs saying: with
    ``--device auto`` on a machine without an NVIDIA driver or without onnxruntime-gpu, the
    CPU is simply the expected device."""
    if device == "auto" and (why.startswith("no NVIDIA driver") or why.startswith("onnxruntime has no")):
        return None
    return f"--device {device}: the GPU is not used, {why}; running on the CPU"


def choose_providers(device: str) -> tuple[list[str], str | None]:
    """-> (providers to try, a one-line note or None), from a quick look at the machine
    (no session is made: :class:`~ecgreport.onnx.runtime.ModelRunner` still checks that
    CUDA really runs the model and falls back to the CPU when it does not)."""
    if device not in DEVICES:
        raise UsageError(f"unknown device {device!r}: choose auto, cpu or cuda")
    if device == "cpu":
        return [CPU], None
    why = cuda_missing_piece()
    if why is None:
        return [CUDA, CPU], None
    return [CPU], fallback_note(device, why)
