"""The two graphs of a bundle, as torch modules with plain tensor inputs and outputs.

Caches are one tensor per layer (no step slices a stacked cache), batch first:

encoder.onnx   ecg (B, 12, window) float32
               -> embedding (B, D), cross_k{i} (B, H, dh, M) pre-transposed and scaled,
                  cross_v{i} (B, H, M, dh), for each decoder layer i
decoder.onnx   token (B,) int64, past_k{i}, past_v{i} (B, H, P, dh), cross_k{i}, cross_v{i}
               -> logits (B, V), new_k{i}, new_v{i} (B, H, P+1, dh)
"""

from __future__ import annotations

import torch
from torch import nn

from ecgreport.model.model import ECGReportModel
from ecgreport.onnx.io_names import cache_names


class EncoderGraph(nn.Module):
    def __init__(self, model: ECGReportModel):
        super().__init__()
        self.model = model

    def forward(self, ecg: torch.Tensor):
        emb, memory = self.model.encode(ecg)
        return (emb, *[t for pair in self.model.decoder.cross_kv(memory) for t in pair])


class DecoderStepGraph(nn.Module):
    def __init__(self, model: ECGReportModel):
        super().__init__()
        self.decoder = model.decoder
        self.n = len(model.decoder.layers)

    def forward(self, token, *caches):
        n = self.n
        past = [(caches[2 * i], caches[2 * i + 1]) for i in range(n)]
        cross = [(caches[2 * n + 2 * i], caches[2 * n + 2 * i + 1]) for i in range(n)]
        logits, new_past = self.decoder.step(token, past, cross)
        return (logits, *[t for pair in new_past for t in pair])


def export_graphs(model: ECGReportModel, out_dir, opset: int = 17) -> dict[str, str]:
    """Write encoder.onnx and decoder.onnx with dynamic batch (and past length) axes."""
    import warnings
    from pathlib import Path

    out_dir = Path(out_dir)
    model = model.eval().float()
    cfg = model.cfg
    names = cache_names(cfg.decoder_layers)
    x = torch.zeros(2, cfg.n_leads, cfg.window_samples)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Wrappers are put in eval mode: the exporter restores a wrapper's own training flag
        # afterwards, and a fresh module would switch the model back to training mode.
        enc_out = EncoderGraph(model).eval()(x)
        torch.onnx.export(
            EncoderGraph(model).eval(), (x,), str(out_dir / "encoder.onnx"), dynamo=False, opset_version=opset,
            input_names=["ecg"], output_names=["embedding", *names["cross"]],
            dynamic_axes={"ecg": {0: "batch"}, "embedding": {0: "batch"}, **{n: {0: "batch"} for n in names["cross"]}},
        )
        dh = cfg.width // cfg.decoder_heads
        past = torch.zeros(2, cfg.decoder_heads, 3, dh)
        token = torch.ones(2, dtype=torch.long)
        torch.onnx.export(
            DecoderStepGraph(model).eval(), (token, *[past] * len(names["past"]), *enc_out[1:]),
            str(out_dir / "decoder.onnx"), dynamo=False, opset_version=opset,
            input_names=["token", *names["past"], *names["cross"]],
            output_names=["logits", *names["new"]],
            dynamic_axes={"token": {0: "batch"}, "logits": {0: "batch"},
                          **{n: {0: "batch", 2: "past"} for n in names["past"]},
                          **{n: {0: "batch"} for n in names["cross"]},
                          **{n: {0: "batch", 2: "total"} for n in names["new"]}},
        )
    return {"encoder": "encoder.onnx", "decoder": "decoder.onnx"}
