"""`ecgreport train`: align an ECG encoder with a language model's report embeddings."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from ecgreport.errors import ExitCode, MissingExtraError, check_output_folder


def _folds(text: str) -> tuple[int, ...]:
    """'1-8' or '1,2,3' -> (1, ..., 8)."""
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = part.split("-", 1)
                out.extend(range(int(lo), int(hi) + 1))
            elif part:
                out.append(int(part))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: write folds as a range or a list, e.g. 1-8 or 1,2,3") from None
    if not out:
        raise typer.BadParameter(f"no folds in {text!r}")
    return tuple(out)


def train(
    data: Path = typer.Option(..., "--data", "-d", help="Dataset folder in PTB-XL's PhysioNet layout (ptbxl_database.csv, scp_statements.csv, records100/, reports_en.csv).", exists=True, file_okay=False),
    out: Path = typer.Option(Path("runs/default"), "--out", "-o", help="Run folder: config.json, metrics.jsonl, best.pt, last.pt."),
    encoder: str = typer.Option("resnet", metavar="resnet|transformer", help="ECG encoder: 'resnet' (fast on CPU) or 'transformer' (the paper's best)."),
    text_model: str = typer.Option("all-MiniLM-L6-v2", metavar="NAME", show_default=False, help="Frozen text model: any Hugging Face name or folder (e.g. a local Bio_ClinicalBERT). Default: all-MiniLM-L6-v2, installed with the train extra, no download."),
    epochs: int = typer.Option(15, min=1, metavar="<int>", help="Passes over the training folds (fewer if --patience stops it)."),
    batch_size: int = typer.Option(128, min=2, metavar="<int>", help="Records per step (per process under torchrun)."),
    lr: float = typer.Option(1e-3, help="Peak learning rate (AdamW, linear warm-up, cosine decay)."),
    ot_weight: float = typer.Option(1.0, help="Weight of the entropic OT alignment term (0 switches it off)."),
    nce_weight: float = typer.Option(1.0, help="Weight of the paired InfoNCE term (0 switches it off)."),
    ce_weight: float = typer.Option(1.0, help="Weight of the report decoder's cross-entropy (0 switches it off)."),
    ot_reg: float = typer.Option(0.05, help="Entropic regularisation of the OT term (cost is 1 - cosine)."),
    train_folds: str = typer.Option("1-8", help="PTB-XL strat_fold values to train on."),
    val_folds: str = typer.Option("9", help="Folds for validation and checkpoint selection (label-free)."),
    fs: float = typer.Option(100.0, "--fs", help="Sampling rate of the model's input in Hz (100 reads records100/, 500 reads records500/)."),
    patience: int = typer.Option(4, help="Stop after this many epochs without a better validation loss."),
    seed: int = typer.Option(0, help="Random seed; the same seed gives the same weights on CPU."),
    device: str = typer.Option("auto", metavar="auto|cpu|cuda", help="Where training runs (mixed precision on CUDA)."),
    limit: int = typer.Option(0, help="Use at most this many records per split (smoke tests); 0 = all."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/last.pt."),
    zero_shot_metric: bool = typer.Option(True, help="Show fold-9 zero-shot superclass AUC each epoch (information only, never used to choose)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display on stderr (errors still show)."),
) -> None:
    """Train the ECG encoder and report decoder on PTB-XL, with no diagnostic labels.

    Loss = CE(report decoder) + ot_weight * OT(ECG embeddings, report embeddings)
    + nce_weight * InfoNCE(paired). Checkpoints are chosen on the validation loss.

    \b
    Example (full PTB-XL, about 15 epochs on a 2-core CPU):
      ecgreport train --data /data/ptb-xl --out runs/resnet

    \b
    Scale out with torchrun (DistributedDataParallel; gloo on CPU, nccl on GPU):
      torchrun --nproc_per_node 4 -m ecgreport train \\
          --data /data/ptb-xl --out runs/ddp
    """
    console = Console(stderr=True, quiet=quiet)
    if encoder not in ("resnet", "transformer"):
        raise typer.BadParameter(f"unknown encoder {encoder!r}: choose resnet or transformer", param_hint="--encoder")
    check_output_folder(out)
    try:
        from ecgreport.training.config import TrainConfig
        from ecgreport.training.loop import train as run_training
        from ecgreport.training.zeroshot import superclass_auc_fn
    except ImportError as err:
        raise MissingExtraError.train("training", err) from None
    cfg = TrainConfig(
        data=str(data), out=str(out), text_model=text_model, encoder=encoder, fs_hz=fs,
        train_folds=_folds(train_folds), val_folds=_folds(val_folds), epochs=epochs, batch_size=batch_size,
        lr=lr, ce_weight=ce_weight, ot_weight=ot_weight, nce_weight=nce_weight, ot_reg=ot_reg,
        patience=patience, seed=seed, device=device, limit=limit,
    )
    zero_shot = superclass_auc_fn(Path(data)) if zero_shot_metric else None
    try:
        run = run_training(cfg, resume=resume, console=console, zero_shot_fn=zero_shot)
    except KeyboardInterrupt:
        Console(stderr=True, highlight=False).print(
            f"interrupted: continue with --resume (from {out / 'last.pt'})", style="yellow", markup=False)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    console.print(f"done: {run}/best.pt (export with: ecgreport export-onnx {run}/best.pt)", markup=False)
