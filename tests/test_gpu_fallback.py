"""The GPU path on a machine without a GPU: a fake CUDA provider, a CPU session underneath
that reports itself as CUDA and fails where a real GPU can fail (at session creation, at
the first encode, at the first decoder step), or runs.

What is held: a batch whose CUDA cannot run falls back to the CPU path with its worker
processes, prints one note naming the missing piece, nothing on stdout, and writes what a
``--device cpu`` run writes; the CUDA provider options reach the session and run.json;
a CUDA that works runs the I/O-binding path (caches on the "device") to the CPU's results.
Runs on the packaged model (export/) and the Challenge fixtures.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from rich.console import Console

from conftest import FIXTURES, skip_without_fixtures
from ecgreport import parallel
from ecgreport.batch import BatchOptions, run_batch
from ecgreport.onnx import providers, runtime
from ecgreport.onnx.runtime import ModelRunner, load_bundle
from ecgreport.outputs import writers

pytestmark = skip_without_fixtures

REAL_SESSION = onnxruntime.InferenceSession
CUDA = "CUDAExecutionProvider"
ERRORS = {  # what onnxruntime raises at each point on a real machine (abridged)
    "create": "CUDA failure 35: CUDA driver version is insufficient for CUDA runtime version",
    "encode": "CUDNN failure 4: CUDNN_STATUS_INTERNAL_ERROR ; GPU=0 ; expr=cudnnConvolutionForward",
    "decode": "CUBLAS failure 3: CUBLAS_STATUS_ALLOC_FAILED ; GPU=0 ; expr=cublasGemmEx",
}
MISSING = {"create": "driver is too old", "encode": "cuDNN failed", "decode": "cuBLAS failed"}


class _Binding:
    """An I/O binding whose "cuda" outputs live on the CPU (there is no GPU here)."""

    def __init__(self, real):
        self.real = real

    def bind_output(self, name, device="cpu", *args):
        self.real.bind_output(name, "cpu" if device == "cuda" else device, *args)

    def __getattr__(self, name):
        return getattr(self.real, name)


def fake_cuda(fail_at: str | None, calls: list):
    """An InferenceSession class: with the CUDA provider first, a CPU session that says it
    is CUDA and raises ``ERRORS[fail_at]`` at "create", on its first "encode" (the encoder
    graph's run) or "decode" (the decoder's); ``calls`` collects the providers passed."""

    class FakeCudaSession:
        def __init__(self, path_or_bytes, sess_options=None, providers=None, **kwargs):
            first = providers[0] if providers else None
            name = first[0] if isinstance(first, tuple) else first
            self.cuda = name == CUDA
            calls.append({"providers": providers, "kwargs": kwargs})
            if self.cuda and fail_at == "create":
                raise RuntimeError(ERRORS["create"])
            self.options = dict(first[1]) if self.cuda and isinstance(first, tuple) else {}
            self.real = REAL_SESSION(path_or_bytes, sess_options, providers=["CPUExecutionProvider"],
                                     **kwargs)
            graph = Path(path_or_bytes).stem if isinstance(path_or_bytes, (str, Path)) else "gather"
            self.fails = self.cuda and fail_at == graph.replace("encoder", "encode").replace("decoder", "decode")

        def get_providers(self):
            return [CUDA, "CPUExecutionProvider"] if self.cuda else self.real.get_providers()

        def get_provider_options(self):
            if not self.cuda:
                return self.real.get_provider_options()
            # a real CUDA session lists every option, as strings
            defaults = {"device_id": "0", "use_tf32": "1", "cudnn_conv_algo_search": "EXHAUSTIVE",
                        "do_copy_in_default_stream": "1"}
            return {CUDA: {**defaults, **self.options}, "CPUExecutionProvider": {}}

        def _check(self):
            if self.fails:
                raise RuntimeError(ERRORS[fail_at])

        def run(self, *args, **kwargs):
            self._check()
            return self.real.run(*args, **kwargs)

        def io_binding(self):
            return _Binding(self.real.io_binding())

        def run_with_iobinding(self, binding, *args):
            self._check()
            return self.real.run_with_iobinding(binding.real, *args)

        def __getattr__(self, name):
            return getattr(self.real, name)

    return FakeCudaSession


@pytest.fixture
def gpu_machine(monkeypatch):
    """As on a machine whose CUDA libraries all load; ``use(fail_at)`` installs the fake
    provider and returns the list of session creations it sees."""
    monkeypatch.setattr(runtime, "cuda_missing_piece", lambda: None)    # the runner's check
    monkeypatch.setattr(providers, "cuda_missing_piece", lambda: None)  # and open_model's

    def use(fail_at):
        calls: list = []
        monkeypatch.setattr(onnxruntime, "InferenceSession", fake_cuda(fail_at, calls))
        return calls

    return use


def _batch(out: Path, device: str, workers: int, capfd):
    console_text = io.StringIO()
    summary = run_batch(BatchOptions(FIXTURES / "challenge-2021", out, device=device,
                                     workers=workers, batch_size=8),
                        console=Console(file=console_text, width=200))
    captured = capfd.readouterr()
    return summary, console_text.getvalue(), captured


def _outputs(out: Path) -> dict[str, str]:
    """Every output file but run.json and index.html (they hold the run's times and
    folder), by relative path."""
    return {str(p.relative_to(out)): p.read_text(encoding="utf-8") for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in (writers.RUN_JSON, "index.html")}


@pytest.fixture(scope="module")
def cpu_outputs(tmp_path_factory) -> dict[str, str]:
    """A plain --device cpu run with two worker processes: what every fallback must write."""
    out = tmp_path_factory.mktemp("cpu") / "out"
    run_batch(BatchOptions(FIXTURES / "challenge-2021", out, device="cpu", workers=2, batch_size=8,
                           quiet=True))
    return _outputs(out)


@pytest.mark.skipif(not parallel.can_fork(), reason="worker processes need fork (Linux)")
@pytest.mark.parametrize("fail_at", ["create", "encode", "decode"])
@pytest.mark.parametrize("device", ["auto", "cuda"])
def test_failing_cuda_falls_back_to_cpu_workers(tmp_path, gpu_machine, capfd, cpu_outputs, fail_at, device):
    calls = gpu_machine(fail_at)
    out = tmp_path / "out"
    summary, console, captured = _batch(out, device, 2, capfd)
    assert summary.n_ok == 10 and summary.provider == "CPUExecutionProvider"
    assert any(c["providers"][0][0] == CUDA for c in calls)  # CUDA was really tried
    # onnxruntime's own fallback is off for every session (it prints a banner on stdout)
    assert all(c["kwargs"].get("enable_fallback") == 0 for c in calls)
    assert captured.out == ""
    notes = [line for line in console.splitlines() if line.startswith("note:")]
    assert len(notes) == 1, console
    assert f"--device {device}: the GPU is not used" in notes[0] and MISSING[fail_at] in notes[0]
    assert "worker processes need Linux" not in console
    run = json.loads((out / writers.RUN_JSON).read_text())
    assert run["worker_processes"] == 2  # the CPU path with its workers, not one process
    assert run["execution_provider"] == "CPUExecutionProvider"
    assert run["execution_note"] == notes[0].removeprefix("note: ")
    assert run["execution_provider_options"] == {}
    assert _outputs(out) == cpu_outputs


def test_failing_cuda_without_workers_runs_in_process(tmp_path, gpu_machine, capfd, cpu_outputs):
    gpu_machine("encode")
    summary, console, captured = _batch(tmp_path / "out", "cuda", 1, capfd)
    assert summary.provider == "CPUExecutionProvider" and captured.out == ""
    assert [line for line in console.splitlines() if line.startswith("note:")] == [
        "note: --device cuda: the GPU is not used, cuDNN failed (pip install "
        f"'onnxruntime-gpu[cuda,cudnn]'): {ERRORS['encode']}; running on the CPU"]
    run = json.loads((tmp_path / "out" / writers.RUN_JSON).read_text())
    assert run["worker_processes"] == 0
    assert _outputs(tmp_path / "out").keys() == cpu_outputs.keys()


def test_working_cuda_runs_the_device_path(tmp_path, gpu_machine, capfd, cpu_outputs):
    """The fake CUDA runs: the batch stays in this process on the I/O-binding path (encoder
    outputs bound to the device, Gather for rows), the provider options reach the session
    and run.json, and the reports equal the CPU run's."""
    calls = gpu_machine(None)
    out = tmp_path / "out"
    summary, console, captured = _batch(out, "auto", 2, capfd)
    assert summary.provider == CUDA and captured.out == ""
    cuda_calls = [c for c in calls if c["providers"][0][0] == CUDA]
    assert len(cuda_calls) >= 3  # encoder, decoder, and the row-gather graph
    for c in cuda_calls:
        assert c["providers"] == [(CUDA, providers.CUDA_OPTIONS), "CPUExecutionProvider"]
    assert providers.CUDA_OPTIONS["use_tf32"] == "0"
    assert providers.CUDA_OPTIONS["cudnn_conv_algo_search"] == "HEURISTIC"
    run = json.loads((out / writers.RUN_JSON).read_text())
    assert run["execution_provider"] == CUDA and run["worker_processes"] == 0
    assert run["execution_provider_options"] == {"device_id": "0", "use_tf32": "0",
                                                 "cudnn_conv_algo_search": "HEURISTIC"}
    assert "--workers 2: the model runs on the GPU" in run["execution_note"]
    got = [json.loads(line) for line in _outputs(out)["records.jsonl"].splitlines()]
    want = [json.loads(line) for line in cpu_outputs["records.jsonl"].splitlines()]
    assert [g["report"] for g in got] == [w["report"] for w in want]
    for g, w in zip(got, want):  # one process vs one-thread workers: last digits may differ
        for name, scores in w["scores"].items():
            np.testing.assert_allclose(list(g["scores"][name].values()), list(scores.values()), atol=2e-4)


def test_runner_device_path_equals_cpu(gpu_machine):
    """ModelRunner on the fake CUDA: I/O binding on, cross cache kept as device values,
    greedy, beam search and window selection equal to the numpy path."""
    from conftest import parity_records

    gpu_machine(None)
    bundle = load_bundle()
    gpu = ModelRunner(bundle, device="cuda", warmup_rows=4)
    assert gpu.provider == CUDA and gpu.io_binding and gpu.note is None
    assert gpu.provider_options == providers.CUDA_OPTIONS
    cpu = ModelRunner(bundle, device="cpu")
    x = parity_records(12)
    eg, ec = gpu.encode(x), cpu.encode(x)
    assert not any(isinstance(c, np.ndarray) for c in eg.cross)  # not brought to the host
    np.testing.assert_allclose(eg.embedding, ec.embedding, rtol=1e-5, atol=1e-6)
    for got, want in zip(eg.host_cross(), ec.cross):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert gpu.generate_ids(eg) == cpu.generate_ids(ec)
    rows = [5, 5, 0, 11, 2]
    assert gpu.generate_ids(eg.take(rows)) == cpu.generate_ids(ec.take(rows))
    assert gpu.generate_ids(eg.take([0, 3, 7]), beams=3) == cpu.generate_ids(ec.take([0, 3, 7]), beams=3)


@pytest.mark.parametrize("fail_at", ["create", "encode", "decode"])
def test_runner_falls_back_to_the_plain_cpu_path(gpu_machine, fail_at):
    """After a failed CUDA check the runner is an ordinary CPU runner: numpy feeds (no I/O
    binding, which the GPU attempt had switched on), no CUDA options, the note set."""
    gpu_machine(fail_at)
    runner = ModelRunner(load_bundle(), device="cuda", warmup_rows=2)
    assert runner.provider == "CPUExecutionProvider" and runner.io_binding is False
    assert runner.provider_options == {} and MISSING[fail_at] in runner.note
    assert MISSING[fail_at] in runner.cuda_problem
    enc = runner.encode(np.zeros((2, 12, 1000), np.float32))
    assert all(isinstance(c, np.ndarray) for c in enc.cross)


@pytest.mark.parametrize("fail_at", ["create", "encode", "decode"])
def test_runner_without_cpu_fallback_raises(gpu_machine, fail_at):
    gpu_machine(fail_at)
    with pytest.raises(runtime.CudaUnavailable) as err:
        ModelRunner(load_bundle(), device="auto", cpu_fallback=False)
    assert MISSING[fail_at] in err.value.why and "running on the CPU" in err.value.note


@pytest.mark.skipif(not parallel.can_fork(), reason="worker processes need fork (Linux)")
def test_workers_never_collect_what_they_inherit(tmp_path):
    """The CPU fallback forks its workers after sessions were made (and dropped) in the main
    process. One left in a reference cycle and collected in a forked worker waits there for
    intra-op threads that fork did not copy (seen once: a worker hung in a session's
    destructor inside gc). So the workers are forked with the collector off and freeze what
    they inherit before turning it on; the main process collects as before."""
    script = (
        "import gc, json, os, sys\n"
        "from pathlib import Path\n"
        "from ecgreport import parallel\n"
        "from ecgreport.batch import BatchOptions, run_batch\n"
        "real = parallel._start_worker\n"
        "def start_worker(*args):\n"
        "    real(*args)\n"
        "    state = {'frozen': gc.get_freeze_count(), 'enabled': gc.isenabled()}\n"
        "    Path(sys.argv[2], f'worker-{os.getpid()}.json').write_text(json.dumps(state))\n"
        "parallel._start_worker = start_worker\n"
        "run_batch(BatchOptions(Path(sys.argv[1]), Path(sys.argv[2], 'out'), device='cpu', workers=2, quiet=True))\n"
        "print(json.dumps({'enabled': gc.isenabled(), 'frozen': gc.get_freeze_count()}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(FIXTURES / "challenge-2021"), str(tmp_path)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"enabled": True, "frozen": 0}
    workers = [json.loads(p.read_text()) for p in tmp_path.glob("worker-*.json")]
    assert len(workers) == 2
    for state in workers:
        assert state["enabled"] and state["frozen"] > 10_000  # everything the main process held
