"""The training loop: report cross-entropy + OT alignment + paired InfoNCE, no labels.

Runs as one process, or under `torchrun --nproc_per_node N` (DistributedDataParallel; gloo
on CPU, nccl on GPU). Each process holds the data once in memory and trains on its own
shard of every epoch's permutation; OT and InfoNCE are computed within each process's
batch. Only rank 0 validates and writes files.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import platform
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from rich.markup import escape

from ecgreport import __version__
from ecgreport.errors import UsageError
from ecgreport.model.config import ModelConfig
from ecgreport.model.generate import greedy_generate
from ecgreport.model.losses import ot_alignment_loss, paired_nce_loss, report_ce_loss
from ecgreport.model.model import ECGReportModel, count_parameters
from ecgreport.model.text_encoder import TextEncoder
from ecgreport.reports import WordTokenizer
from ecgreport.dataset.format import open_dataset
from ecgreport.training.augment import augment as augment_batch
from ecgreport.training.checkpoint import read_checkpoint, save_checkpoint
from ecgreport.training.config import TrainConfig
from ecgreport.training.data import ECGTextSet, load_split

log = logging.getLogger(__name__)


def set_seed(seed: int) -> None:
    """Every random source in one place; the seed is written into config.json."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def library_versions() -> dict:
    import ot
    import transformers

    return {"ecgreport": __version__, "torch": torch.__version__, "pot": ot.__version__,
            "transformers": transformers.__version__, "numpy": np.__version__, "python": platform.python_version()}


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but torch sees no CUDA device: use --device cpu or auto")
    return torch.device(name)


class Batches:
    """Token tensors for a split: (N, max_len) ids, built once."""

    def __init__(self, data: ECGTextSet, tokenizer: WordTokenizer, max_len: int, text_emb: np.ndarray):
        self.data = data
        self.tokens = np.zeros((len(data), max_len), np.int64)
        for i, r in enumerate(data.reports):
            ids = tokenizer.encode(r, max_len)
            self.tokens[i, : len(ids)] = ids
        self.text_emb = text_emb  # (n_unique, D) rows match data.unique_reports

    def get(self, idx: np.ndarray, device, lead_dropout: float = 0.0, rng: np.random.Generator | None = None,
            augment: float = 0.0, fs_hz: float = 100.0):
        x = self.data.signals[idx]
        if augment and rng is not None:  # before drop-out, so a dropped lead stays exactly zero
            x = augment_batch(x, rng, fs_hz, augment)
        if lead_dropout and rng is not None:
            x = x.copy()
            hit = np.nonzero(rng.random(len(idx)) < lead_dropout)[0]
            x[hit, rng.integers(0, 12, len(hit))] = 0.0  # mimics a missing, zero-filled lead at inference
        rid = self.data.report_ids[idx]
        tokens = self.tokens[idx]
        # Trailing padding columns only cost time (attention is causal, padding is ignored).
        tokens = tokens[:, : max(2, int((tokens != 0).sum(1).max()))]
        return (
            torch.from_numpy(x).to(device),
            torch.from_numpy(tokens).to(device),
            torch.from_numpy(self.text_emb[rid]).to(device),
            torch.from_numpy(rid).to(device),
        )


def compute_losses(model, batch, cfg: TrainConfig, pad_id: int) -> dict[str, torch.Tensor]:
    x, tokens, _, _ = batch
    emb, logits = model(x, tokens[:, :-1])
    return loss_terms(emb, logits, batch, cfg, pad_id)


def loss_terms(emb, logits, batch, cfg: TrainConfig, pad_id: int) -> dict[str, torch.Tensor]:
    """The enabled loss terms and their weighted sum 'loss', from one forward pass."""
    _, tokens, text_emb, rid = batch
    terms: dict[str, torch.Tensor] = {}
    if cfg.ce_weight:
        terms["ce"] = report_ce_loss(logits.float(), tokens[:, 1:], pad_id)
    if cfg.ot_weight:
        terms["ot"] = ot_alignment_loss(emb.float(), text_emb, cfg.ot_reg, cfg.ot_iters)
    if cfg.nce_weight:
        terms["nce"] = paired_nce_loss(emb.float(), text_emb, rid, cfg.temperature)
    weights = {"ce": cfg.ce_weight, "ot": cfg.ot_weight, "nce": cfg.nce_weight}
    terms["loss"] = sum(weights[k] * v for k, v in terms.items())
    return terms


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Linear warm-up over cfg.warmup(total) steps, then cosine decay to 1% of the peak."""
    warmup = cfg.warmup(total)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return cfg.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


@torch.inference_mode()
def validate(model, batches: Batches, cfg: TrainConfig, device, pad_id: int, batch_size: int = 256) -> dict:
    """Label-free validation: losses, and retrieval rank of each ECG's own report."""
    model.eval()
    n = len(batches.data)
    sums: dict[str, float] = {}
    embs = []
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(n, start + batch_size))
        batch = batches.get(idx, device)
        emb, logits = model(batch[0], batch[1][:, :-1])  # one forward pass for losses and ranks
        for k, v in loss_terms(emb, logits, batch, cfg, pad_id).items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(idx)
        embs.append(emb.float().cpu().numpy())
    metrics = {f"val_{k}": v / n for k, v in sums.items()}
    emb = np.concatenate(embs)
    sim = emb @ batches.text_emb.T  # (N, n_unique) against the split's own distinct reports
    own = sim[np.arange(n), batches.data.report_ids]
    rank = (sim > own[:, None]).sum(1)
    metrics["val_report_r1"] = float((rank == 0).mean())
    metrics["val_report_median_rank"] = float(np.median(rank) + 1)
    return metrics


def _is_dist() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def resolve_data(cfg: TrainConfig):
    """(cfg with the data path made absolute, the splits and the data's name filled in, dataset).
    What config.json and the checkpoints record, so export finds the same data from anywhere."""
    ds = open_dataset(Path(cfg.data))
    cfg = dataclasses.replace(
        cfg, data=str(ds.root), data_name=cfg.data_name or ds.name, data_citation=cfg.data_citation or ds.citation,
        train_split=cfg.train_split or ds.default_split("train"),
        val_split=cfg.val_split or ds.default_split("val"))
    return cfg, ds


def train(cfg: TrainConfig, resume: bool = False, console=None, zero_shot_fn=None) -> Path:
    """Train and return the run folder (config.json, metrics.jsonl, best.pt, last.pt)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console = console or Console(stderr=True)
    rank, world = 0, 1
    if _is_dist():
        backend = "nccl" if torch.cuda.is_available() and cfg.device != "cpu" else "gloo"
        dist.init_process_group(backend)
        rank, world = dist.get_rank(), dist.get_world_size()
    device = pick_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    is_main = rank == 0
    cfg, ds = resolve_data(cfg)
    out = Path(cfg.out)
    set_seed(cfg.seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)

    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, disable=not is_main, transient=False,
    )
    with progress:
        limit = cfg.limit or None
        window = int(10 * cfg.fs_hz)
        train_set = load_split(ds, cfg.train_split, cfg.fs_hz, window, limit, progress, role="train")
        val_set = load_split(ds, cfg.val_split, cfg.fs_hz, window, limit, progress, role="validation")
        ckpt = None
        if resume:
            last = out / "last.pt"
            if not last.exists():
                raise UsageError(f"--resume: no {last} to continue from")
            ckpt = read_checkpoint(last)
            tokenizer = WordTokenizer.from_dict(ckpt["tokenizer"])
        else:
            tokenizer = WordTokenizer.build(train_set.reports, cfg.min_word_count)
        text = TextEncoder(cfg.text_model)
        cache = Path(os.environ.get("ECGREPORT_CACHE", Path.home() / ".cache" / "ecgreport"))
        train_text = text.embed_cached(train_set.unique_reports, cache)
        val_text = text.embed_cached(val_set.unique_reports, cache)

    mcfg = ModelConfig(encoder=cfg.encoder, fs_hz=cfg.fs_hz, window_samples=int(10 * cfg.fs_hz),
                       text_dim=text.dim, vocab_size=len(tokenizer), **cfg.model_overrides)
    if ckpt is not None:
        mcfg = ModelConfig.from_dict(ckpt["model_config"])
    model = ECGReportModel(mcfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start_epoch, step, best, bad_epochs = 0, 0, math.inf, 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        start_epoch, step = ckpt["epoch"] + 1, ckpt["step"]
        best, bad_epochs = ckpt["best_val_loss"], ckpt["bad_epochs"]
        torch.set_rng_state(ckpt["rng"]["torch"])
    ddp_model = model
    if world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    train_b = Batches(train_set, tokenizer, mcfg.max_report_tokens, train_text)
    val_b = Batches(val_set, tokenizer, mcfg.max_report_tokens, val_text)
    steps_per_epoch = len(train_set) // (cfg.batch_size * world) or 1
    total = steps_per_epoch * cfg.epochs
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        cfg.save(out / "config.json")
        mcfg.save(out / "model_config.json")
        tokenizer.save(out / "tokenizer.json")
        console.print(
            f"[bold]ecgreport train[/] {cfg.encoder} encoder, {count_parameters(model):,} parameters, "
            f"{len(train_set):,} train / {len(val_set):,} validation records of {escape(ds.name)}, vocabulary {len(tokenizer)}, "
            f"{cfg.warmup(total)} of {total} steps warm-up, device {device}, {world} process(es)"
        )
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)

    def save(name: str, epoch: int, metrics: dict) -> None:
        save_checkpoint(out / name, model=model, optimizer=opt, epoch=epoch, step=step, config=cfg,
                        model_config=mcfg, tokenizer=tokenizer, metrics=metrics, best_val_loss=best,
                        bad_epochs=bad_epochs, versions=library_versions())

    def _end_of_epoch(epoch: int, epoch_s: float, sums: dict) -> bool:
        nonlocal best, bad_epochs
        metrics = {"epoch": epoch + 1, "step": step, "epoch_seconds": round(epoch_s, 1),
                   **{f"train_{k}": v / steps_per_epoch for k, v in sums.items()}}
        metrics.update(validate(model, val_b, cfg, device, tokenizer.PAD))
        if zero_shot_fn is not None:
            try:  # fold-9 labels are shown for information only, never used to choose
                metrics.update(zero_shot_fn(model, val_set, text, device))
            except Exception as err:  # noqa: BLE001 - informational metric must not stop training
                log.warning("zero-shot validation metric skipped: %s", err)
        improved = metrics["val_loss"] < best
        if improved:
            best, bad_epochs = metrics["val_loss"], 0
        else:
            bad_epochs += 1
        metrics["best"] = improved
        with (out / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(metrics) + "\n")
        save("last.pt", epoch, metrics)
        if improved:
            save("best.pt", epoch, metrics)
        shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}
        console.print(f"epoch {epoch + 1}: {shown}", markup=False)
        sample = np.arange(min(3, len(val_set)))
        x = torch.from_numpy(val_set.signals[sample]).to(device)
        for j, ids in zip(sample, greedy_generate(model, x, tokenizer.BOS, tokenizer.EOS, mcfg.max_report_tokens)):
            # Report text is data, not markup: "[...]" in a report must print as written.
            console.print(f"  [dim]ref[/] {escape(val_set.reports[j])}\n  [cyan]gen[/] {escape(tokenizer.decode(ids))}")
        if bad_epochs >= cfg.patience:
            console.print(f"early stop: validation loss has not improved for {cfg.patience} epochs")
            return True
        return False

    for epoch in range(start_epoch, cfg.epochs):
        ddp_model.train()
        rng = np.random.default_rng([cfg.seed, epoch])
        order = rng.permutation(len(train_set))[rank::world]
        t0 = time.perf_counter()
        sums: dict[str, float] = {}
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, disable=not is_main, transient=True,
        ) as bar:
            task = bar.add_task(f"epoch {epoch + 1}/{cfg.epochs}", total=steps_per_epoch, info="")
            for i in range(steps_per_epoch):
                idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
                for g in opt.param_groups:
                    g["lr"] = lr_at(step, total, cfg)
                with amp:
                    terms = compute_losses(ddp_model, train_b.get(idx, device, cfg.lead_dropout, rng, cfg.augment, cfg.fs_hz), cfg, tokenizer.PAD)
                opt.zero_grad(set_to_none=True)
                terms["loss"].backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                step += 1
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
                rate = (i + 1) * len(idx) * world / (time.perf_counter() - t0)
                info = " ".join(f"{k} {v / (i + 1):.3f}" for k, v in sums.items()) + f" | {rate:.0f} rec/s"
                bar.update(task, advance=1, info=info)
                if is_main and not console.is_terminal and (i + 1) % max(1, steps_per_epoch // 5) == 0:
                    console.print(f"epoch {epoch + 1} step {i + 1}/{steps_per_epoch}: {info}", markup=False)  # for log files
        epoch_s = time.perf_counter() - t0
        stop = [False]
        if is_main:
            stop[0] = _end_of_epoch(epoch, epoch_s, sums)
        if world > 1:  # every process must agree to stop, or the others wait forever
            dist.broadcast_object_list(stop, src=0)
        if stop[0]:
            break
    if world > 1:
        dist.destroy_process_group()
    return out
