"""scripts/gpu_check.sh and gpu_check.py on a machine without a GPU: a clear message and
exit 77; the script's own checks, run on the CPU (--self-test), pass, and its greedy
comparison fails on reports that part at a clear margin."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import skip_without_fixtures

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gpu_check = _load_script()
no_gpu_here = pytest.mark.skipif(gpu_check.gpu_description()[0] is not None,
                                 reason="this machine has an NVIDIA GPU")


@no_gpu_here
@pytest.mark.parametrize("command", [["bash", str(ROOT / "scripts" / "gpu_check.sh")],
                                     [sys.executable, str(SCRIPT)]])
def test_no_gpu_exits_77_with_a_clear_message(command):
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == gpu_check.NO_GPU == 77
    assert proc.stdout == ""
    assert "no NVIDIA GPU on this machine" in proc.stderr and "nothing was checked" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@skip_without_fixtures
def test_self_test_passes_on_the_cpu(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--self-test", "--windows", "64", "--beam-windows", "4",
                           "--skip-throughput", "--keep", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = proc.stdout
    assert table.startswith("## gpu_check SELF-TEST on the CPU (proves nothing about a GPU)")
    assert (tmp_path / "gpu_check.md").read_text() == table
    for check in ("embeddings", "zero-length past, first step", "greedy reports", "beam search",
                  "64 windows in one batch: greedy reports", "ecgreport batch --device cpu",
                  "batch reports vs --device cpu"):
        assert f"| {check}" in table, check
    assert "FAIL" not in table and "0 failed." in table


@skip_without_fixtures
def test_greedy_comparison_fails_on_a_clear_divergence():
    """A "device" report that takes the CPU's runner-up token where the CPU's choice leads
    by a clear margin is a failure; the same reports are a pass."""
    from ecgreport.onnx.runtime import ModelRunner, load_bundle

    bundle = load_bundle()
    cpu = ModelRunner(bundle, device="cpu")
    x, _ = gpu_check.batch_windows([ROOT / "sample_ecgs"], bundle)
    enc = cpu.encode(x[:3])
    want = cpu.generate_ids(enc)
    table = gpu_check.Table()
    gpu_check.compare_reports(table, "same", cpu, enc, [list(w) for w in want], want)
    assert table.rows[-1][1] is True and table.failed == 0

    # the runner-up token at the first step of window 0: the CPU's top-1 leads by its margin
    logits, _ = cpu._step(np.array([cpu._bos], np.int64), cpu._empty_past(1), enc.take([0]).cross)
    second = int(np.argsort(-logits[0])[1])
    margin = float(logits[0].max() - logits[0][second])
    assert margin > gpu_check.NEAR_TIE
    changed = [[second] + want[0][1:]] + [list(w) for w in want[1:]]
    assert gpu_check.divergence_margin(cpu, enc, 0, changed[0], want[0]) == pytest.approx(margin, rel=1e-5)
    gpu_check.compare_reports(table, "changed", cpu, enc, changed, want)
    check, ok, detail = table.rows[-1]
    assert ok is False and table.failed == 1
    assert "2/3 identical; 1 differ, 0 of them at a near-tie" in detail
