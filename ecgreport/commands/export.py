"""`ecgreport export-onnx`: a training checkpoint -> the ONNX bundle that `batch` runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ecgreport.errors import BundleError, MissingExtraError, check_output_folder
from ecgreport.labelsets import read_labels_csv


def _parity_inputs(folders: list[Path], window: int, fs_hz: float, n_max: int = 16):
    """Real records for the parity check (first window of each), else seeded noise."""
    import numpy as np

    from ecgreport.records import find_records, read_record
    from ecgreport.signal.preprocess import model_window

    xs = []
    for folder in folders:
        for ref in find_records(folder):
            try:
                rec = read_record(ref)
            except Exception:  # noqa: BLE001 - any readable record will do
                continue
            xs.append(model_window(rec.signal_mv, rec.fs_hz, fs_hz, window))
            if len(xs) >= n_max:
                return np.stack(xs), "records"
    if xs:
        return np.stack(xs), "records"
    rng = np.random.default_rng(0)
    return (rng.standard_normal((8, 12, window)) * 0.3).astype(np.float32), "synthetic noise"


def export_onnx(
    checkpoint: Path = typer.Argument(
        ..., metavar="CHECKPOINT", help="Training checkpoint (RUN/best.pt).", exists=True,
        dir_okay=False, show_default=False),
    out: Path = typer.Option(
        Path("export"), "--out", "-o",
        help="Bundle folder to write (replaced only after its checks pass)."),
    scp_statements: Optional[Path] = typer.Option(
        None, help="PTB-XL scp_statements.csv for the built-in label sets. Default: the one "
        "in the checkpoint's training data folder.", show_default=False),
    labels: Optional[Path] = typer.Option(
        None, help="Your own classes, added as label set 'custom': a CSV with the header "
        "'label,description[,more prompts]' and one row per label.", show_default=False),
    check_records: list[Path] = typer.Option(
        [], "--check-records", metavar="FOLDER", help="Folder of WFDB records for the parity check of ONNX "
        "against PyTorch (repeat for more). Default: the training data's records100.", show_default=False),
    rtol: float = typer.Option(
        1e-4, help="Largest relative embedding difference the parity check accepts."),
    retrieval: bool = typer.Option(
        True, help="Store the training folds' embeddings and reports in the bundle "
        "(needed by knn scoring and consensus reports; about 10 MB)."),
    retrieval_data: Optional[Path] = typer.Option(
        None, help="PTB-XL-layout folder for the retrieval data. Default: the checkpoint's "
        "training data.", show_default=False),
    scoring: str = typer.Option(
        "knn", metavar="knn|direct", help="The bundle's zero-shot scoring: 'knn' (prompts vs "
        "the reports of the k nearest training ECGs) or 'direct' (prompts vs the ECG "
        "embedding). See 'Defaults' above."),
    k: int = typer.Option(25, help="Neighbours for knn scoring and consensus reports."),
    report_method: str = typer.Option(
        "consensus", metavar="consensus|decoder", help="The bundle's report: 'decoder' (the "
        "decoder's text) or 'consensus' (of the decoder's text and the nearest training "
        "ECGs' reports, the one that agrees most with the others). See 'Defaults' above."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress messages on stderr (errors still show)."),
) -> None:
    """Export a checkpoint to an ONNX bundle: encoder, cached decoder, tokenizer, label
    embeddings, MODEL_CARD.md and a manifest with checksums.

    The bundle is checked against PyTorch right away (embeddings within --rtol, identical
    greedy reports); a mismatch fails the export.

    Defaults: --scoring knn and --report-method consensus need no tuning, so they are the
    safe choice for a new checkpoint. The shipped bundle uses --scoring direct and
    --report-method decoder instead: for that model they did better on PTB-XL's validation
    fold 9 (`ecgreport evaluate --folds 9`; README, "Reproducing the numbers"). Compare
    both on fold 9 for your own model before choosing.

    \b
    Examples:
      ecgreport export-onnx runs/resnet/best.pt --out export/
      ecgreport export-onnx runs/resnet/best.pt --out export/ \\
          --scoring direct --report-method decoder
    """
    console = Console(stderr=True, quiet=quiet, highlight=False)
    if scoring not in ("knn", "direct"):
        raise typer.BadParameter(f"{scoring!r}: choose knn or direct", param_hint="--scoring")
    if report_method not in ("decoder", "consensus"):
        raise typer.BadParameter(f"{report_method!r}: choose decoder or consensus",
                                 param_hint="--report-method")
    check_output_folder(out)
    if labels is not None:
        read_labels_csv(labels)  # a malformed file fails now, not after the model has loaded
    try:
        import torch

        from ecgreport.onnx.export import export_bundle
    except ImportError as err:
        raise MissingExtraError.train("export-onnx", err) from None
    try:
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - pickle and zip errors of every kind
        raise BundleError(f"{checkpoint}: not a readable training checkpoint "
                          f"({type(err).__name__}); give RUN/best.pt of `ecgreport train`") from None
    if not isinstance(ckpt, dict) or "model_config" not in ckpt:
        raise BundleError(f"{checkpoint}: not an ecgreport training checkpoint (no model_config)")
    data_dir = Path(ckpt.get("config", {}).get("data", "") or ".")
    if scp_statements is None and (data_dir / "scp_statements.csv").is_file():
        scp_statements = data_dir / "scp_statements.csv"
    if not check_records and (data_dir / "records100").is_dir():
        first = sorted((data_dir / "records100").iterdir())
        check_records = first[:1]
    if retrieval and retrieval_data is None and (data_dir / "ptbxl_database.csv").is_file():
        retrieval_data = data_dir
    if not retrieval:
        retrieval_data = None
    elif retrieval_data is None:
        console.print("no training data found for the retrieval data: the bundle gets direct "
                      "scoring only", style="yellow", markup=False)
    mc = ckpt["model_config"]
    x, source = _parity_inputs(check_records, int(mc["window_samples"]), float(mc["fs_hz"]))
    manifest = export_bundle(checkpoint, out, x, scp_statements=scp_statements, labels_csv=labels,
                             rtol=rtol, retrieval_data=retrieval_data, scoring=scoring, k=k,
                             report_method=report_method)
    p = manifest["parity"]
    size = sum(f["bytes"] for f in manifest["files"].values()) / 1e6
    console.print(
        f"wrote {out} ({size:.1f} MB): label sets {', '.join(manifest['label_sets'])}; "
        f"scoring {manifest['scoring']['method']}, reports {manifest['report']['method']}; "
        f"parity on {p['n_records']} {source}: embeddings max rel. diff "
        f"{p['max_rel_embedding_diff']:.1e}, identical reports "
        f"{p['reports_identical']}/{p['reports_compared']}", markup=False)
