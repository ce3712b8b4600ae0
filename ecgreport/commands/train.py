"""`ecgreport train`: align an ECG encoder with a language model's report embeddings."""

from __future__ import annotations

import textwrap
from pathlib import Path

import typer
from rich.console import Console

from ecgreport.errors import ExitCode, MissingExtraError, check_output_folder


DATASET_HELP = """\b
Dataset format (--data DS; PTB-XL's own folder is one such dataset):
  DS/database.csv  one row per record: record_id (any text; PTB-XL:
                   ecg_id), filename (a WFDB record, relative to DS or
                   absolute, any rate; or PTB-XL's filename_lr/filename_hr
                   at 100/500 Hz), split (any values, e.g. train/val/test;
                   PTB-XL: strat_fold), optional patient_id
  DS/reports.csv   record_id,report (PTB-XL: reports_en.csv); records
                   without a report are not trained on
  DS/dataset.json  optional {"name": ..., "citation": ...}, for model
                   cards and reports
  DS/labels/*.csv, DS/truth/*.csv
                   optional label sets and truth tables (export, evaluate)

\b
Build one from a folder of WFDB records:
  ecgreport dataset build RECORDS --out DS
See what is missing: ecgreport dataset check DS
Walk-through: docs/own-data.md"""


def train(
    data: Path = typer.Option(..., "--data", "-d", help="Dataset folder: database.csv + reports.csv (or PTB-XL's ptbxl_database.csv + reports_en.csv); format below.", exists=True, file_okay=False),
    out: Path = typer.Option(Path("runs/default"), "--out", "-o", help="Run folder: config.json, metrics.jsonl, best.pt, last.pt."),
    encoder: str = typer.Option("resnet", metavar="resnet|transformer", help="ECG encoder: 'resnet' (fast on CPU) or 'transformer' (the paper's best)."),
    text_model: str = typer.Option("all-MiniLM-L6-v2", metavar="NAME", show_default=False, help="Frozen text model: any Hugging Face name or folder (e.g. a local Bio_ClinicalBERT). Default: all-MiniLM-L6-v2, installed with the train extra, no download."),
    epochs: int = typer.Option(20, min=1, metavar="<int>", help="Passes over the training split (fewer if --patience stops it)."),
    batch_size: int = typer.Option(128, min=2, metavar="<int>", help="Records per step (per process under torchrun)."),
    lr: float = typer.Option(1e-3, help="Peak learning rate (AdamW, linear warm-up, cosine decay)."),
    warmup: float = typer.Option(0.2, min=0.0, max=0.99, help="Warm-up as a fraction of all steps (at least one step)."),
    ot_weight: float = typer.Option(1.0, help="Weight of the entropic OT alignment term (0 switches it off)."),
    nce_weight: float = typer.Option(1.0, help="Weight of the paired InfoNCE term (0 switches it off)."),
    ce_weight: float = typer.Option(1.0, help="Weight of the report decoder's cross-entropy (0 switches it off)."),
    augment: float = typer.Option(0.5, min=0.0, max=1.0, metavar="<p>", help="Chance that each ECG augmentation (amplitude scaling, baseline wander, noise, a time shift of up to 0.5 s) is applied to a record's training copy; 0 = none. 0.5 trained the shipped model."),
    channels: str = typer.Option("", metavar="C1,C2,C3,C4", help="ResNet encoder channels per stage (wider: more capacity, slower). Default: 32,64,128,256."),
    ot_reg: float = typer.Option(0.05, help="Entropic regularisation of the OT term (cost is 1 - cosine)."),
    train_split: str = typer.Option("", help="Values of the dataset's split column to train on, e.g. 'train' or '1-8'; default: train (PTB-XL: folds 1-8)."),
    val_split: str = typer.Option("", help="Values of the split column that choose the best checkpoint and stop early (validation loss, no labels); default: val (PTB-XL: fold 9)."),
    fs: float = typer.Option(100.0, "--fs", help="Sampling rate of the model's input in Hz; records at other rates are resampled (for PTB-XL: 100 reads records100/, 500 reads records500/)."),
    patience: int = typer.Option(5, help="Stop after this many epochs without a better validation loss."),
    seed: int = typer.Option(0, help="Random seed; the same seed gives the same weights on CPU."),
    device: str = typer.Option("auto", metavar="auto|cpu|cuda", help="Where training runs (mixed precision on CUDA)."),
    limit: int = typer.Option(0, help="Use at most this many records per split (smoke tests); 0 = all."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/last.pt."),
    zero_shot_metric: bool = typer.Option(True, help="On PTB-XL, show the zero-shot superclass AUC of the validation fold each epoch (information only, never used to choose)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display on stderr (errors still show)."),
) -> None:
    """Train the ECG encoder and report decoder on ECGs and their free-text reports, with no
    diagnostic labels.

    Loss = CE(report decoder) + ot_weight * OT(ECG embeddings, report embeddings)
    + nce_weight * InfoNCE(paired). Checkpoints are chosen on the validation loss.

    \b
    Example (PTB-XL, the shipped recipe: 20 epochs, ~35 min on 2 CPU cores):
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
    try:
        cfg = TrainConfig(
            data=str(data.resolve()), out=str(out), text_model=text_model, encoder=encoder, fs_hz=fs,
            train_split=train_split, val_split=val_split, epochs=epochs, batch_size=batch_size,
            lr=lr, warmup_fraction=warmup, ce_weight=ce_weight, ot_weight=ot_weight, nce_weight=nce_weight,
            ot_reg=ot_reg, augment=augment, model_overrides=_channels(channels, encoder), patience=patience, seed=seed, device=device, limit=limit,
        )
        zero_shot = superclass_auc_fn(data.resolve()) if zero_shot_metric else None
        run = run_training(cfg, resume=resume, console=console, zero_shot_fn=zero_shot)
    except KeyboardInterrupt:
        Console(stderr=True, highlight=False).print(
            f"interrupted: continue with --resume (from {out / 'last.pt'})", style="yellow", markup=False)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    console.print(f"done: {run}/best.pt (export with: ecgreport export-onnx {run}/best.pt)", markup=False)


def _channels(text: str, encoder: str) -> dict:
    """--channels as ModelConfig overrides: {} when not given."""
    if not text.strip():
        return {}
    try:
        chans = tuple(int(c) for c in text.split(","))
    except ValueError:
        chans = ()
    if len(chans) != 4 or min(chans) < 1:
        raise typer.BadParameter(f"{text!r}: give four positive channel counts, e.g. 32,64,128,256", param_hint="--channels")
    if encoder != "resnet":
        raise typer.BadParameter("only the resnet encoder has channels per stage", param_hint="--channels")
    return {"resnet_channels": chans}


# \b keeps click from re-wrapping the format's table.
train.__doc__ = f"{train.__doc__}\n{textwrap.indent(DATASET_HELP, '    ')}"
