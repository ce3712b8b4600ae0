"""`ecgreport info`: what a model bundle expects as input, and the labels it scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ecgreport.errors import BundleError, ExitCode

# What ecgreport.signal.normalise does; used when a manifest does not say it itself.
NORMALISATION = ("per lead: subtract the median, set NaN/inf samples to 0, clip to "
                 "[-10, 10] mV (ecgreport.signal.normalise)")
WINDOW_POLICY = ("records shorter than --min-seconds are rejected; shorter than one window: "
                 "zero-padded at the end; longer: up to --max-windows windows spread evenly, "
                 "embeddings averaged")

SCORING = {
    "direct": "direct: cosine similarity between the ECG and each label's text",
    "knn": "knn: mean similarity between each label's text and the reports of the most "
           "similar training ECGs",
}
REPORT_METHODS = {
    "decoder": "decoder: the report the model's decoder writes",
    "consensus": "consensus: of the decoder's report and the reports of the most similar "
                 "training ECGs, the one closest to all the others (minimum Bayes risk)",
}


def info(
    model: Optional[Path] = typer.Option(
        None, "--model", "-m", help="Model bundle folder. Default: the packaged model.",
        show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Show a model bundle's input spec (sampling rate, window, lead order, units,
    normalisation), how it scores labels and writes reports, and its label sets with
    the description each label is scored by.

    \b
    Examples:
      ecgreport info
      ecgreport info --model export/ --json > model-info.json
    """
    try:
        bundle = load_bundle(model)
    except BundleError as err:
        Console(stderr=True).print(f"[red]error:[/red] {escape(str(err))}", highlight=False,
                                   soft_wrap=True)
        raise typer.Exit(int(ExitCode.BAD_BUNDLE)) from None
    description = describe_bundle(bundle)
    if as_json:
        typer.echo(json.dumps(description, indent=2, ensure_ascii=False))
        return
    console = Console()
    spec = description["input"]
    table = Table(title=f"Model bundle {description['bundle']}", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")  # the checksum whole, not cut with an ellipsis
    rows = [
        ("manifest sha256", description["manifest_sha256"]),
        ("sampling rate", f"{spec['fs_hz']:g} Hz (records are resampled to it)"),
        ("window", f"{spec['window_samples']} samples = {spec['window_s']:g} s"),
        ("lead order", ", ".join(spec["leads"])),
        ("units", spec["units"]),
        ("normalisation", spec["normalisation"]),
        ("other lengths", spec["window_policy"]),
        ("scoring", SCORING.get(description["scoring"], description["scoring"])),
        ("report", REPORT_METHODS.get(description["report_method"], description["report_method"])),
    ]
    for key, value in rows:
        table.add_row(key, escape(str(value)))
    console.print(table)
    for set_name, labels in description["label_sets"].items():
        label_table = Table(title=f"label set '{set_name}' ({len(labels)} labels; CSV columns "
                                  f"'{set_name}:<label>')")
        label_table.add_column("label", style="bold")
        label_table.add_column("description (scored by the mean embedding of its prompts; `info --json` lists them)")
        for item in labels:
            label_table.add_row(escape(item["label"]), escape(item["description"]))
        console.print(label_table)


def load_bundle(model: Path | None):
    """The bundle at ``model`` (the packaged one if None), verified; raises BundleError."""
    if model is not None and not Path(model).exists():
        raise BundleError(f"model bundle not found: {model}")
    from ecgreport.onnx.runtime import default_bundle_path
    from ecgreport.onnx.runtime import load_bundle as _load

    return _load(Path(model) if model is not None else default_bundle_path())


def describe_bundle(bundle) -> dict:
    """A JSON-ready description of a bundle (:class:`~ecgreport.onnx.bundle.Bundle`): input
    spec, how it scores and writes reports, and its label sets."""
    return {
        "bundle": str(bundle.path),
        "manifest_sha256": bundle.manifest_sha256,
        "input": {
            "fs_hz": float(bundle.fs_hz),
            "window_samples": int(bundle.window_samples),
            "window_s": bundle.window_samples / bundle.fs_hz,
            "leads": list(bundle.leads),
            "units": bundle.units,
            "normalisation": bundle.normalisation or NORMALISATION,
            "window_policy": WINDOW_POLICY,
        },
        "label_sets": {
            name: [{"label": label,
                    "description": bundle.label_descriptions.get(name, {}).get(label, label),
                    "prompts": bundle.label_prompts.get(name, {}).get(label, [])}
                   for label in labels]
            for name, labels in bundle.label_sets.items()
        },
        "scoring": bundle.scoring,
        "report_method": bundle.report_method,
    }
