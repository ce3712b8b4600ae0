"""Training: the loss terms, the loop on ptb-xl-mini, checkpoints, resume, seeds, no labels,
and a 2-process torchrun run. Every model here is the tiny one of conftest.TINY_MODEL
(or the default one on 4 records), so the whole file runs in well under a minute.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import ot
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from conftest import (ALL_FOLDS, PTBXL_MINI, TINY_MODEL, quiet_console, skip_without_fixtures,
                      tiny_train_config)
from ecgreport.cli import app
from ecgreport.model.config import ModelConfig
from ecgreport.model.losses import ot_alignment_loss, paired_nce_loss
from ecgreport.model.model import ECGReportModel
from ecgreport.reports import WordTokenizer
from ecgreport.training.config import TrainConfig
from ecgreport.training.data import load_split
from ecgreport.training.loop import Batches, compute_losses, train

pytestmark = [skip_without_fixtures, pytest.mark.usefixtures("one_torch_thread", "text_cache")]

RUN_FILES = ("config.json", "model_config.json", "tokenizer.json", "metrics.jsonl", "best.pt", "last.pt")


def unit(rng: np.random.Generator, n: int, d: int) -> torch.Tensor:
    x = torch.from_numpy(rng.normal(size=(n, d)))
    return F.normalize(x, dim=-1)


def load_ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert different == []


# ---------------------------------------------------------------- the loss terms


@pytest.fixture(scope="module")
def fixture_batch():
    """All 17 ptb-xl-mini records as one batch, with their report embeddings."""
    from ecgreport.model.text_encoder import TextEncoder

    data = load_split(PTBXL_MINI, set(ALL_FOLDS))
    tokenizer = WordTokenizer.build(data.reports, min_count=1)
    text_emb = TextEncoder().embed_cached(data.unique_reports, Path(os.environ["ECGREPORT_CACHE"]))
    cfg = ModelConfig(text_dim=text_emb.shape[1], vocab_size=len(tokenizer), **TINY_MODEL)
    batches = Batches(data, tokenizer, cfg.max_report_tokens, text_emb)
    return cfg, tokenizer, batches.get(np.arange(len(data)), torch.device("cpu"))


def test_loss_falls_over_a_few_steps(fixture_batch):
    mcfg, tokenizer, batch = fixture_batch
    cfg = TrainConfig()
    torch.manual_seed(0)
    model = ECGReportModel(mcfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def eval_losses() -> dict[str, float]:
        model.eval()  # no dropout, so before and after are measured alike
        with torch.no_grad():
            return {k: float(v) for k, v in compute_losses(model, batch, cfg, tokenizer.PAD).items()}

    before = eval_losses()
    assert set(before) == {"ce", "ot", "nce", "loss"}
    for _ in range(25):
        model.train()
        loss = compute_losses(model, batch, cfg, tokenizer.PAD)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_losses()
    assert after["loss"] < 0.7 * before["loss"], (before, after)
    for term in ("ce", "ot", "nce"):  # each term learns, not only the largest one
        assert after[term] < before[term], (term, before, after)


@pytest.mark.parametrize("reg", [0.05, 0.005])
def test_ot_term_alone_trains_the_encoder_and_head(fixture_batch, reg):
    """With CE and InfoNCE off, OT still sends a finite, non-zero gradient into every layer
    of the encoder and the projection head, also at a small regularisation (log domain)."""
    mcfg, tokenizer, batch = fixture_batch
    cfg = TrainConfig(ce_weight=0.0, nce_weight=0.0, ot_reg=reg)
    torch.manual_seed(0)
    model = ECGReportModel(mcfg).train()
    terms = compute_losses(model, batch, cfg, tokenizer.PAD)
    assert set(terms) == {"ot", "loss"}
    assert 0.0 < float(terms["ot"].detach()) < 2.0  # 1 - cosine under a transport plan, + reg * KL
    terms["loss"].backward()
    for part in (model.encoder, model.head):
        weights = [(name, p) for name, p in part.named_parameters() if p.ndim > 1]
        assert weights
        for name, p in weights:
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name
            assert float(p.grad.abs().sum()) > 0.0, name
    # the decoder is not on the OT path: no gradient reaches it
    assert all(p.grad is None for p in model.decoder.parameters())


def test_paired_nce_matches_hand_computation_with_duplicates():
    """report_ids [0, 0, 1]: rows 0 and 1 are each other's positives, in both directions."""
    rng = np.random.default_rng(3)
    ecg, text = unit(rng, 3, 5), unit(rng, 3, 5)
    tau = 0.1
    got = paired_nce_loss(ecg, text, torch.tensor([0, 0, 1]), tau)

    sim = (ecg @ text.T).numpy() / tau
    target = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])

    def direction(logits: np.ndarray) -> float:
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return float(-(target * log_p).sum(axis=1).mean())

    expected = 0.5 * (direction(sim) + direction(sim.T))
    np.testing.assert_allclose(float(got), expected, rtol=1e-12)


def test_paired_nce_counts_same_report_as_positive():
    """Two ECGs with the same report (given as two phrasings), each matching the other's
    phrasing best: marked as duplicates that is a good batch, as negatives a bad one."""
    rng = np.random.default_rng(4)
    text = unit(rng, 3, 8)
    ecg = text[[1, 0, 2]]
    as_duplicates = paired_nce_loss(ecg, text, torch.tensor([0, 0, 1]), 0.1)
    as_negatives = paired_nce_loss(ecg, text, torch.tensor([0, 1, 2]), 0.1)
    assert float(as_duplicates) < float(as_negatives) - 1.0
    # identical embeddings for identical reports: marking them changes nothing, as both
    # directions see equal logits for the duplicates
    same_text = text[[0, 0, 2]]
    np.testing.assert_allclose(float(paired_nce_loss(ecg, same_text, torch.tensor([0, 0, 1]), 0.1)),
                               float(paired_nce_loss(ecg, same_text, torch.tensor([0, 1, 2]), 0.1)),
                               rtol=1e-12)


def _pot_reference(ecg: torch.Tensor, text: torch.Tensor, reg: float, grad: str):
    """POT's entropic OT value (KL regularisation, float64, converged) and its gradient
    w.r.t. the ECG embeddings, computed by POT's own differentiation `grad`."""
    e = ecg.detach().clone().requires_grad_(True)
    a = torch.full((len(e),), 1 / len(e), dtype=torch.float64)
    res = ot.solve(1.0 - e @ text.T, a, a, reg=reg, reg_type="KL", max_iter=5000, tol=1e-12, grad=grad)
    (g,) = torch.autograd.grad(res.value, e)
    return res, g


def test_ot_loss_equals_pot_value_and_gradient():
    rng = np.random.default_rng(0)
    reg = 0.1
    ecg = unit(rng, 7, 6).requires_grad_(True)
    text = unit(rng, 7, 6)
    ours = ot_alignment_loss(ecg, text, reg, 2000)
    (grad,) = torch.autograd.grad(ours, ecg)

    for how in ("autodiff", "envelope"):  # back-propagated through Sinkhorn's iterations, and not
        res, grad_ref = _pot_reference(ecg, text, reg, how)
        # ours solves the plan in float32 (the training dtype): agreement to float32 precision
        np.testing.assert_allclose(ours.item(), res.value.item(), rtol=1e-6)
        np.testing.assert_allclose(grad.numpy(), grad_ref.numpy(), rtol=1e-4, atol=1e-6)
    # its transport part is ot.sinkhorn2's value (the log-domain solver on the same cost)
    a = torch.full((7,), 1 / 7, dtype=torch.float64)
    linear = ot.sinkhorn2(a, a, 1.0 - ecg.detach() @ text.T, reg, method="sinkhorn_log",
                          numItermax=5000, stopThr=1e-12)
    np.testing.assert_allclose(float(res.value_linear), float(linear), rtol=1e-9)
    assert ours.item() >= linear.item() > 0.0


def test_ot_gradient_matches_finite_differences():
    """Central differences of ot_alignment_loss itself, at the training default reg=0.05,
    agree with the gradient it back-propagates."""
    rng = np.random.default_rng(1)
    ecg = unit(rng, 8, 4).requires_grad_(True)
    text = unit(rng, 8, 4)
    (grad,) = torch.autograd.grad(ot_alignment_loss(ecg, text, 0.05, 1000), ecg)
    e0, h = ecg.detach(), 1e-3  # the plan is solved in float32: a step well above its noise
    fd = np.zeros(tuple(e0.shape))
    for idx in np.ndindex(*fd.shape):
        step = torch.zeros_like(e0)
        step[idx] = h
        fd[idx] = (float(ot_alignment_loss(e0 + step, text, 0.05, 1000))
                   - float(ot_alignment_loss(e0 - step, text, 0.05, 1000))) / (2 * h)
    np.testing.assert_allclose(grad.numpy(), fd, rtol=1e-3, atol=5e-5)


# ---------------------------------------------------------------- the run folder


def test_run_folder_holds_every_artefact(tiny_run):
    run, cfg = tiny_run.run_dir, tiny_run.config
    assert sorted(p.name for p in run.iterdir()) == sorted(RUN_FILES)
    # every setting, as JSON writes it
    assert json.loads((run / "config.json").read_text()) == json.loads(json.dumps(cfg.to_dict()))
    mcfg = ModelConfig.from_dict(json.loads((run / "model_config.json").read_text()))
    assert (mcfg.width, mcfg.resnet_channels, mcfg.decoder_layers) == (32, (16, 16, 32, 32), 1)
    tokenizer = WordTokenizer.load(run / "tokenizer.json")
    assert len(tokenizer) == mcfg.vocab_size

    lines = metrics(run)
    assert [m["epoch"] for m in lines] == list(range(1, cfg.epochs + 1))
    for m in lines:
        assert {"val_loss", "val_report_r1", "val_zeroshot_superclass_auc"} <= set(m)
        assert np.isfinite(m["val_loss"])
        assert 0.0 <= m["val_report_r1"] <= 1.0
        assert 0.0 <= m["val_zeroshot_superclass_auc"] <= 1.0
    # best.pt is the epoch with the lowest validation loss
    best_epoch = min(lines, key=lambda m: m["val_loss"])["epoch"]
    assert load_ckpt(run / "best.pt")["epoch"] + 1 == best_epoch


def test_checkpoint_is_one_plain_dict_that_round_trips(tiny_run):
    ckpt = load_ckpt(tiny_run.run_dir / "last.pt")
    assert {"model", "optimizer", "config", "step", "versions", "model_config", "tokenizer"} <= set(ckpt)
    assert ckpt["config"] == tiny_run.config.to_dict()
    assert ckpt["step"] == metrics(tiny_run.run_dir)[-1]["step"] > 0
    assert {"torch", "pot", "ecgreport", "numpy"} <= set(ckpt["versions"])

    model = ECGReportModel(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    x, tokens = torch.from_numpy(tiny_run.val_signals), torch.from_numpy(tiny_run.val_tokens)
    with torch.inference_mode():
        emb, logits = model(x, tokens)
    # bit-identical to the model in memory at the moment last.pt was written
    np.testing.assert_array_equal(emb.numpy(), tiny_run.last_embedding)
    np.testing.assert_array_equal(logits.numpy(), tiny_run.last_logits)

    opt = torch.optim.AdamW(model.parameters())
    opt.load_state_dict(ckpt["optimizer"])
    assert len(opt.state) == len(list(model.parameters()))


# ---------------------------------------------------------------- resume, seeds, labels


class _StopAfter:
    """A zero_shot_fn that interrupts training (like Ctrl-C) at the end of epoch `epoch`,
    before that epoch's checkpoint is written."""

    def __init__(self, epoch: int):
        self.epoch, self.calls = epoch, 0

    def __call__(self, *args) -> dict:
        self.calls += 1
        if self.calls == self.epoch:
            raise KeyboardInterrupt
        return {}


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    cfg = tiny_train_config(tmp_path / "whole", epochs=2)
    train(cfg, console=quiet_console())

    cut = tiny_train_config(tmp_path / "cut", epochs=2)
    with pytest.raises(KeyboardInterrupt):
        train(cut, console=quiet_console(), zero_shot_fn=_StopAfter(2))
    assert len(metrics(tmp_path / "cut")) == 1
    step_before = load_ckpt(tmp_path / "cut" / "last.pt")["step"]

    train(cut, resume=True, console=quiet_console())
    lines = metrics(tmp_path / "cut")
    assert [m["epoch"] for m in lines] == [1, 2]
    resumed = load_ckpt(tmp_path / "cut" / "last.pt")
    assert resumed["step"] == 2 * step_before
    whole = load_ckpt(tmp_path / "whole" / "last.pt")
    assert resumed["step"] == whole["step"]
    # the interrupted-and-resumed run ends with exactly the weights of the uninterrupted one
    assert_same_weights(resumed["model"], whole["model"])


def test_resume_without_last_checkpoint_fails(tmp_path):
    from ecgreport.errors import UsageError

    with pytest.raises(UsageError, match="last.pt"):
        train(tiny_train_config(tmp_path / "empty"), resume=True, console=quiet_console())


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        train(tiny_train_config(tmp_path / name, seed=seed), console=quiet_console())
        runs[name] = load_ckpt(tmp_path / name / "last.pt")["model"]
    assert_same_weights(runs["a"], runs["b"])
    assert any(not torch.equal(runs["a"][k], runs["c"][k]) for k in runs["a"])


def _copy_without_labels(dst: Path) -> Path:
    """ptb-xl-mini with every diagnostic annotation blanked and scp_statements.csv removed."""
    dst.mkdir()
    for name in ("records100", "records500"):
        (dst / name).symlink_to(PTBXL_MINI / name)
    shutil.copy(PTBXL_MINI / "reports_en.csv", dst)
    with (PTBXL_MINI / "ptbxl_database.csv").open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    for row in rows:
        row["scp_codes"] = "{}"
        for key in ("heart_axis", "infarction_stadium1", "infarction_stadium2"):
            row[key] = ""
    with (dst / "ptbxl_database.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return dst


def test_no_diagnostic_label_reaches_training(tmp_path):
    """Training with the fold-9 zero-shot metric shown (labels read) and training on a copy
    without any labels give bit-identical checkpoints: labels are display only."""
    from ecgreport.training.zeroshot import superclass_auc_fn

    blank = _copy_without_labels(tmp_path / "blank")
    with_labels = train(tiny_train_config(tmp_path / "with", epochs=2), console=quiet_console(),
                        zero_shot_fn=superclass_auc_fn(PTBXL_MINI))
    without = train(tiny_train_config(tmp_path / "without", data=blank, epochs=2), console=quiet_console())
    assert "val_zeroshot_superclass_auc" in metrics(with_labels)[-1]
    assert "val_zeroshot_superclass_auc" not in metrics(without)[-1]
    for name in ("best.pt", "last.pt"):
        a, b = load_ckpt(with_labels / name), load_ckpt(without / name)
        assert a["epoch"] == b["epoch"]
        assert_same_weights(a["model"], b["model"])


# ---------------------------------------------------------------- the command


def test_train_command_and_resume(tmp_path):
    """`ecgreport train` with the default model on 4 records, then --resume to 2 epochs."""
    out = tmp_path / "run"
    args = ["train", "--data", str(PTBXL_MINI), "--out", str(out), "--train-folds", "1-10",
            "--val-folds", "9", "--limit", "4", "--batch-size", "2", "--seed", "3", "--device", "cpu",
            "--no-zero-shot-metric", "--quiet"]
    first = CliRunner().invoke(app, args + ["--epochs", "1"])
    assert first.exit_code == 0, first.output
    assert all((out / name).is_file() for name in RUN_FILES)
    cfg = TrainConfig.from_dict(json.loads((out / "config.json").read_text()))
    assert (cfg.train_folds, cfg.val_folds, cfg.limit, cfg.seed) == (ALL_FOLDS, (9,), 4, 3)
    assert ModelConfig.from_dict(json.loads((out / "model_config.json").read_text())).width == ModelConfig().width

    second = CliRunner().invoke(app, args + ["--epochs", "2", "--resume"])
    assert second.exit_code == 0, second.output
    lines = metrics(out)
    assert [m["epoch"] for m in lines] == [1, 2]
    assert lines[1]["step"] == 2 * lines[0]["step"] > 0


@pytest.mark.parametrize("case", ["resume without last.pt", "not a PTB-XL folder"])
def test_train_command_fails_with_a_reason_even_when_quiet(tmp_path, case):
    data = PTBXL_MINI if case == "resume without last.pt" else tmp_path
    args = ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--train-folds", "1-10",
            "--limit", "2", "--device", "cpu", "--no-zero-shot-metric", "--quiet"]
    result = CliRunner().invoke(app, args + (["--resume"] if case.startswith("resume") else []))
    assert result.exit_code == (2 if case.startswith("resume") else 1)  # usage error / data error
    assert ("last.pt" if case.startswith("resume") else "reports_en.csv") in " ".join(result.output.split())


def test_train_command_missing_data_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2


def test_torchrun_two_processes_gloo(tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip(f"no torchrun beside {sys.executable}")
    out = tmp_path / "ddp"
    # An empty text-embedding cache: both ranks fill it at once, as on a fresh machine.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ECGREPORT_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "ecgreport", "train",
         "--data", str(PTBXL_MINI), "--out", str(out), "--train-folds", "1-10", "--val-folds", "9",
         "--limit", "8", "--batch-size", "2", "--epochs", "1", "--device", "cpu",
         "--no-zero-shot-metric", "--quiet"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "best.pt").is_file()
    (line,) = metrics(out)  # only rank 0 writes
    # 8 records, 2 per step on each of 2 processes: 2 steps
    assert line["step"] == 2
