"""ONNX export and the onnxruntime runtime: bundle contents, parity with PyTorch, refusal of
mismatched or tampered bundles, CPU fallback, beam search and custom label sets.

The bundle is the tiny model of conftest.tiny_run, exported once per session.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import FIXTURES, PTBXL_MINI, parity_records, skip_without_fixtures
from ecgreport import DISCLAIMER
from ecgreport.cli import app
from ecgreport.errors import BundleError, ExitCode
from ecgreport.leads import STANDARD_LEADS
from ecgreport.model.generate import greedy_generate
from ecgreport.onnx import export as export_module
from ecgreport.onnx.export import check_parity, export_bundle, load_checkpoint
from ecgreport.onnx.runtime import ModelRunner, choose_providers, load_bundle

pytestmark = [skip_without_fixtures, pytest.mark.usefixtures("one_torch_thread", "text_cache")]

BUNDLE_FILES = {"encoder.onnx", "decoder.onnx", "tokenizer.json", "label_embeddings.npz", "MODEL_CARD.md",
                "manifest.json"}


@pytest.fixture(scope="module")
def records() -> np.ndarray:
    """Every fixture record's first window, (N, 12, 1000)."""
    return parity_records()


@pytest.fixture(scope="module")
def torch_model(tiny_checkpoint):
    model, tokenizer, _ = load_checkpoint(tiny_checkpoint)
    return model, tokenizer


@pytest.fixture(scope="module")
def runner(tiny_bundle) -> ModelRunner:
    return ModelRunner(load_bundle(tiny_bundle), device="cpu")


def torch_greedy(model, tokenizer, x: np.ndarray) -> list[list[int]]:
    return greedy_generate(model, torch.from_numpy(x), tokenizer.BOS, tokenizer.EOS, model.cfg.max_report_tokens)


# ---------------------------------------------------------------- the bundle


def test_bundle_files_and_manifest(tiny_bundle, records):
    assert {p.name for p in tiny_bundle.iterdir()} == BUNDLE_FILES
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    files = manifest["files"]
    assert set(files) == BUNDLE_FILES - {"manifest.json"}
    for name, meta in files.items():
        data = (tiny_bundle / name).read_bytes()
        assert meta == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}, name

    spec = manifest["input"]
    assert (spec["fs_hz"], spec["window_samples"], spec["units"]) == (100.0, 1000, "mV")
    assert spec["leads"] == list(STANDARD_LEADS) and len(spec["leads"]) == 12
    assert "normalise" in spec["normalisation"]

    sets = manifest["label_sets"]
    assert {"superclass", "subclass", "form", "rhythm"} <= set(sets)
    assert [lab["name"] for lab in sets["superclass"]["labels"]] == ["NORM", "MI", "STTC", "CD", "HYP"]
    for name, label_set in sets.items():
        for lab in label_set["labels"]:
            assert lab["prompts"] and all(isinstance(p, str) and p for p in lab["prompts"]), (name, lab)
    with np.load(tiny_bundle / "label_embeddings.npz") as npz:
        assert set(npz.files) == set(sets)
        for name in sets:
            emb = npz[name]
            assert emb.shape == (len(sets[name]["labels"]), manifest["text_model"]["dim"])
            np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)

    parity = manifest["parity"]
    assert parity["n_records"] == parity["reports_compared"] == parity["reports_identical"] == len(records)
    assert parity["rtol"] == 1e-4 and parity["max_rel_embedding_diff"] <= 1e-4
    assert manifest["model_config"]["width"] == 32
    assert manifest["train_config"]["data"] == str(PTBXL_MINI)
    assert {"torch", "onnx", "onnxruntime"} <= set(manifest["versions"])
    card = (tiny_bundle / "MODEL_CARD.md").read_text()
    assert DISCLAIMER in card and "PTB-XL" in card


# ---------------------------------------------------------------- parity


def test_onnxruntime_matches_torch(runner, torch_model, records):
    model, tokenizer = torch_model
    enc = runner.encode(records)
    with torch.inference_mode():
        emb, memory = model.encode(torch.from_numpy(records))
        cross = [t for pair in model.decoder.cross_kv(memory) for t in pair]
    np.testing.assert_allclose(enc.embedding, emb.numpy(), rtol=1e-4, atol=1e-6)
    assert len(enc.cross) == len(cross) == 2 * len(model.decoder.layers)
    for got, want in zip(enc.cross, cross):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)
    # the batch axis is dynamic: one record alone gives what it gives inside the batch
    np.testing.assert_allclose(runner.encode(records[3:4]).embedding, enc.embedding[3:4], rtol=1e-4, atol=1e-6)

    expected = torch_greedy(model, tokenizer, records)
    # the model is trained enough to write reports, of different lengths (early stop and max)
    assert len({tuple(ids) for ids in expected}) > 1 and all(expected)
    assert runner.generate_ids(enc) == expected
    assert runner.generate_ids(enc, beams=1) == expected
    assert runner.generate(enc, beams=1) == [tokenizer.decode(ids) for ids in expected]


def test_io_binding_decoding_matches(tiny_bundle, runner, torch_model, records):
    """The GPU's decoding loop (caches bound to the device, finished rows kept), run here
    on the CPU provider: the same tokens as PyTorch and as the CPU loop."""
    model, tokenizer = torch_model
    bound = ModelRunner(load_bundle(tiny_bundle), device="cpu", io_binding=True)
    assert bound.io_binding and not runner.io_binding  # the CPU default stays numpy
    enc = bound.encode(records)
    assert bound.generate_ids(enc) == torch_greedy(model, tokenizer, records)
    assert bound.generate_ids(enc, max_tokens=4) == runner.generate_ids(enc, max_tokens=4)


@pytest.mark.parametrize("part", ["encoder head", "decoder output"])
def test_check_parity_refuses_a_different_model(tiny_bundle, torch_model, records, part):
    model, tokenizer = torch_model
    other = copy.deepcopy(model)
    with torch.no_grad():
        if part == "encoder head":
            other.head[-1].bias += 0.01  # moves the embedding well past rtol 1e-4
        else:
            torch.manual_seed(0)
            other.decoder.ln_out.bias += torch.randn_like(other.decoder.ln_out.bias)
    with pytest.raises(BundleError, match="does not match PyTorch") as err:
        check_parity(tiny_bundle, other, tokenizer, records)
    same, compared = map(int, re.search(r"identical greedy reports (\d+)/(\d+)", str(err.value)).groups())
    if part == "decoder output":
        assert same < compared
    # and the real model passes
    assert check_parity(tiny_bundle, model, tokenizer, records).reports_identical == len(records)


def _export_perturbed_graphs(monkeypatch):
    """export_graphs writes a slightly different model than the one the parity check uses."""
    real = export_module.export_graphs

    def perturbed(model, out_dir, **kwargs):
        other = copy.deepcopy(model)
        with torch.no_grad():
            other.head[-1].bias += 0.01
        return real(other, out_dir, **kwargs)

    monkeypatch.setattr(export_module, "export_graphs", perturbed)


def test_mismatched_export_fails_and_keeps_the_old_bundle(tmp_path, tiny_checkpoint, records, monkeypatch):
    _export_perturbed_graphs(monkeypatch)
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "old.txt").write_text("the previous bundle")
    with pytest.raises(BundleError, match="does not match PyTorch"):
        export_bundle(tiny_checkpoint, out, records[:4], scp_statements=PTBXL_MINI / "scp_statements.csv")
    assert [p.name for p in out.iterdir()] == ["old.txt"]  # not replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no staging folder left

    result = CliRunner().invoke(app, ["export-onnx", str(tiny_checkpoint), "--out", str(tmp_path / "cli")])
    assert result.exit_code == ExitCode.BAD_BUNDLE
    assert "does not match PyTorch" in result.output
    assert not (tmp_path / "cli").exists()


# ---------------------------------------------------------------- tampered bundles


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, name", [
    (_flip_byte, "encoder.onnx"),
    (_flip_byte, "label_embeddings.npz"),
    (Path.unlink, "tokenizer.json"),
    (Path.unlink, "decoder.onnx"),
])
def test_tampered_bundle_is_refused(tmp_path, tiny_bundle, damage, name):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    damage(bundle / name)
    with pytest.raises(BundleError, match=re.escape(name)):
        load_bundle(bundle)
    result = CliRunner().invoke(app, ["batch", str(FIXTURES / "challenge-2021"), "--model", str(bundle),
                                      "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == ExitCode.BAD_BUNDLE == 5
    assert name in result.output
    assert not (tmp_path / "out" / "records.jsonl").exists()


# ---------------------------------------------------------------- runtime


def test_cuda_requested_without_gpu_falls_back_quietly(tiny_bundle):
    if choose_providers("cuda")[0][0] == "CUDAExecutionProvider":
        pytest.skip("a usable CUDA provider is present: nothing to fall back from")
    script = (
        "import json, sys\n"
        "import numpy as np\n"
        "from ecgreport.onnx.runtime import ModelRunner, load_bundle\n"
        "runner = ModelRunner(load_bundle(sys.argv[1]), device='cuda')\n"
        "enc = runner.encode(np.zeros((2, 12, 1000), np.float32))\n"
        "reports = runner.generate(enc)\n"
        "print(json.dumps({'provider': runner.provider, 'note': runner.note, 'reports': reports}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(tiny_bundle)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["provider"] == "CPUExecutionProvider"
    assert "--device cuda" in out["note"] and "running on the CPU" in out["note"]
    assert len(out["reports"]) == 2
    for needle in ("CUDA", "libcu", "[E:onnxruntime", "[W:onnxruntime"):
        assert needle not in proc.stderr, proc.stderr


def _run_cuda_script(tiny_bundle, setup: str) -> tuple[dict, str]:
    """A runner with --device cuda in a fresh process after ``setup`` (Python lines); returns
    (what it printed as JSON, its stderr). stdout must be that JSON line alone."""
    script = (
        "import json, sys\n"
        "from ecgreport.onnx import providers, runtime\n"
        f"{setup}\n"
        "runner = runtime.ModelRunner(runtime.load_bundle(sys.argv[1]), device='cuda')\n"
        "print(json.dumps({'provider': runner.provider, 'note': runner.note}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(tiny_bundle)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1, proc.stdout  # no "EP Error" banner, no preload lines
    return json.loads(proc.stdout), proc.stderr


def _skip_without_cuda_provider():
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA provider (onnxruntime-gpu is not installed)")


def test_cuda_libraries_missing_falls_back_quietly(tiny_bundle):
    """A driver is present but onnxruntime-gpu's CUDA/cuDNN libraries are not (a common GPU
    box): the runner names the missing library once, stdout and stderr stay clean."""
    _skip_without_cuda_provider()
    out, stderr = _run_cuda_script(tiny_bundle, (
        "providers._cuda_driver_present = lambda: True  # as on a machine with an NVIDIA driver\n"
        "providers._driver_problem = lambda major: None"))
    if out["provider"] == "CUDAExecutionProvider":
        pytest.skip("CUDA works here: nothing to fall back from")
    assert out["provider"] == "CPUExecutionProvider"
    assert re.search(r"^--device cuda: the GPU is not used, .+ not found \(lib\w+\.so\.\d+; pip install "
                     r"'onnxruntime-gpu\[cuda,cudnn\]'\); running on the CPU$", out["note"]), out["note"]
    for needle in ("libcu", "[E:onnxruntime", "[W:onnxruntime"):
        assert needle not in stderr, stderr


def test_cuda_provider_that_does_not_start_falls_back_quietly(tiny_bundle):
    """Past the library check, onnxruntime itself tries CUDA (enable_fallback=0) and cannot
    load its provider library: the session comes back CPU-only; the runner notices, says so,
    and neither onnxruntime's library errors nor its fallback banner come out."""
    _skip_without_cuda_provider()
    out, stderr = _run_cuda_script(tiny_bundle, "runtime.cuda_missing_piece = lambda: None")
    if out["provider"] == "CUDAExecutionProvider":
        pytest.skip("CUDA works here: nothing to fall back from")
    assert out["note"] == ("--device cuda: the GPU is not used, the CUDA provider did not start "
                           "(its libraries failed to load); running on the CPU")
    for needle in ("libcu", "EP Error", "[E:onnxruntime", "[W:onnxruntime"):
        assert needle not in stderr, stderr


def test_beam_search_gives_valid_reports(runner, torch_model, records):
    model, tokenizer = torch_model
    enc = runner.encode(records)
    beams = runner.generate_ids(enc, beams=3)
    assert len(beams) == len(records)
    vocab = len(tokenizer)
    for ids in beams:
        assert ids, "empty beam-search report"
        assert len(ids) <= runner.max_tokens - 1
        assert all(tokenizer.EOS < t < vocab for t in ids)  # no <pad>, <bos> or <eos> inside
        text = tokenizer.decode(ids)
        assert text and "<" not in text
    assert runner.generate_ids(enc, beams=3) == beams  # deterministic
    assert runner.generate(enc, beams=3) == [tokenizer.decode(ids) for ids in beams]
    assert runner.generate_ids(enc, beams=1) == torch_greedy(model, tokenizer, records)
    short = runner.generate_ids(enc, max_tokens=5, beams=3)
    assert all(0 < len(ids) <= 4 for ids in short)


def test_export_with_custom_labels(tmp_path, tiny_checkpoint):
    labels = tmp_path / "labels.csv"
    labels.write_text("label,description\n"
                      "AF,atrial fibrillation\n"
                      "LBBB,left bundle branch block,complete left bundle branch block\n"
                      "PACE,pacemaker rhythm\n")
    out = tmp_path / "bundle"
    result = CliRunner().invoke(app, ["export-onnx", str(tiny_checkpoint), "--out", str(out), "--labels", str(labels),
                                      "--check-records", str(FIXTURES / "challenge-2021"), "--quiet"])
    assert result.exit_code == 0, result.output
    bundle = load_bundle(out)
    assert bundle.label_sets["custom"] == ["AF", "LBBB", "PACE"]
    assert bundle.label_descriptions["custom"]["LBBB"] == "left bundle branch block"
    custom = bundle.manifest["label_sets"]["custom"]["labels"]
    assert custom[1]["prompts"] == ["left bundle branch block", "complete left bundle branch block"]
    assert {"superclass", "rhythm"} <= set(bundle.label_sets)  # from the training data's scp_statements.csv
    assert bundle.label_embeddings["custom"].shape == (3, bundle.manifest["text_model"]["dim"])
    assert bundle.manifest["parity"]["n_records"] == 10  # the Challenge records asked for

    runner = ModelRunner(bundle, device="cpu")
    scores = runner.scores(runner.encode(parity_records()[:2]).embedding)
    assert scores["custom"].shape == (2, 3)
    assert np.all(np.abs(scores["custom"]) <= 1.0 + 1e-5)
