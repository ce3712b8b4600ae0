"""Pieces of the GPU path that need no GPU: the row-gather graph written without the onnx
package, the diagnosis of what a machine lacks for CUDA, and a quiet stdout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from ecgreport.onnx import providers
from ecgreport.onnx.gather import RowGather, gather_model

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- the Gather graph


def test_gather_model_is_valid_onnx():
    onnx = pytest.importorskip("onnx")
    model = onnx.load_from_string(gather_model(4))
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == ["Gather"] * 4
    assert [i.name for i in model.graph.input] == ["x0", "x1", "x2", "x3", "rows"]
    assert all(a.name == "axis" and a.i == 0 for n in model.graph.node for a in n.attribute)


def test_row_gather_equals_numpy():
    gather = RowGather(3, ["CPUExecutionProvider"], onnxruntime.SessionOptions(), "cpu")
    rng = np.random.default_rng(0)
    values = [rng.normal(size=(5, 4, t, 8)).astype(np.float32) for t in (0, 1, 7)]  # 0: empty cache
    for rows in ([4, 0, 0], [2], [0, 0, 0, 0, 0], [4, 3, 2, 1, 0]):
        got = gather(values, rows)
        for g, v in zip(got, values):
            assert g.shape() == list(v[rows].shape)
            np.testing.assert_array_equal(g.numpy(), v[rows])
    again = gather(gather(values, [4, 1, 2]), [2, 0])  # OrtValues in, as between decoder steps
    for g, v in zip(again, values):
        np.testing.assert_array_equal(g.numpy(), v[[4, 1, 2]][[2, 0]])
    with pytest.raises(ValueError, match="made for 3"):
        gather(values[:2], [0])


# ---------------------------------------------------------------- what is missing


@pytest.fixture
def machine(monkeypatch):
    """A machine with every CUDA piece; tests take pieces away."""
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(providers, "_cuda_driver_present", lambda: True)
    monkeypatch.setattr(providers, "_driver_problem", lambda major: None)
    monkeypatch.setattr(providers, "preload_cuda_libraries", lambda: None)
    monkeypatch.setattr(providers, "cuda_build_major", lambda: 13)
    missing: set = set()
    monkeypatch.setattr(providers, "_loads", lambda name: name not in missing)
    return missing


def test_nothing_missing(machine):
    assert providers.cuda_missing_piece() is None
    assert providers.choose_providers("auto") == (["CUDAExecutionProvider", "CPUExecutionProvider"], None)


@pytest.mark.parametrize("lib, words", [
    ("libcudart.so.13", "the CUDA 13 runtime not found (libcudart.so.13;"),
    ("libcublasLt.so.13", "cuBLAS (CUDA 13) not found (libcublasLt.so.13;"),
    ("libcudnn.so.9", "cuDNN 9 not found (libcudnn.so.9;"),
])
def test_a_missing_library_is_named(machine, lib, words):
    machine.add(lib)
    why = providers.cuda_missing_piece()
    assert why.startswith(words) and providers.INSTALL_HINT in why
    providers_list, note = providers.choose_providers("auto")
    assert providers_list == ["CPUExecutionProvider"]
    assert note == f"--device auto: the GPU is not used, {why}; running on the CPU"


def test_no_cuda_provider_or_driver(machine, monkeypatch):
    monkeypatch.setattr(providers, "_cuda_driver_present", lambda: False)
    assert providers.cuda_missing_piece() == "no NVIDIA driver found (libcuda.so.1)"
    # a CPU machine with --device auto: the CPU is expected, nothing to say
    assert providers.choose_providers("auto") == (["CPUExecutionProvider"], None)
    assert "no NVIDIA driver" in providers.choose_providers("cuda")[1]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert "install onnxruntime-gpu" in providers.cuda_missing_piece()
    assert providers.choose_providers("auto")[1] is None
    assert providers.choose_providers("cpu") == (["CPUExecutionProvider"], None)
    with pytest.raises(ValueError, match="unknown device"):
        providers.choose_providers("tpu")


class FakeLibcuda:
    """libcuda's three calls used by _driver_problem, answering as told."""

    def __init__(self, init=0, count=1, version=13000):
        self.init, self.count, self.version = init, count, version

    def cuInit(self, flags):
        return self.init

    def cuDeviceGetCount(self, ref):
        ref._obj.value = self.count
        return 0

    def cuDriverGetVersion(self, ref):
        ref._obj.value = self.version
        return 0


@pytest.mark.parametrize("lib, expected", [
    (FakeLibcuda(), None),
    (FakeLibcuda(version=13020), None),
    (FakeLibcuda(version=12080), "the NVIDIA driver supports CUDA 12.8, onnxruntime-gpu needs CUDA 13 (update the driver)"),
    (FakeLibcuda(init=100), "the NVIDIA driver finds no usable GPU (cuInit error 100)"),
    (FakeLibcuda(count=0), "the NVIDIA driver finds no GPU"),
])
def test_driver_problems(monkeypatch, lib, expected):
    monkeypatch.setattr(providers.ctypes, "CDLL", lambda name: lib)
    assert providers._driver_problem(13) == expected


def test_driver_problem_without_libcuda(monkeypatch):
    def no_lib(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(providers.ctypes, "CDLL", no_lib)
    assert providers._driver_problem(13) == "no NVIDIA driver found (libcuda.so.1)"


@pytest.mark.parametrize("message, words", [
    ("CUDNN failure 4: CUDNN_STATUS_INTERNAL_ERROR", "cuDNN failed"),
    ("CUDA failure 35: CUDA driver version is insufficient for CUDA runtime version", "driver is too old"),
    ("CUDA failure 209: no kernel image is available for execution on the device", "architecture"),
    ("Failed to allocate memory: out of memory", "out of memory"),
    ("something else\nover two lines", "the CUDA provider failed: something else over two lines"),
])
def test_describe_failure(message, words):
    why = providers.describe_failure(RuntimeError(message))
    assert words in why and "\n" not in why


def test_preload_prints_nothing_on_stdout(monkeypatch, capfd):
    def noisy_preload():
        print("Failed to load libcudnn.so.9: cannot open shared object file")

    monkeypatch.setattr(onnxruntime, "preload_dlls", noisy_preload, raising=False)
    providers.preload_cuda_libraries()
    assert capfd.readouterr().out == ""


def test_real_preload_and_probe_keep_stdout_empty():
    """onnxruntime's own preload_dlls (where present) and the library probe, in a fresh
    process on this machine: whatever is missing, nothing reaches stdout."""
    script = ("from ecgreport.onnx import providers\n"
              "providers.preload_cuda_libraries()\n"
              "import sys; print(providers.cuda_missing_piece(), file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
