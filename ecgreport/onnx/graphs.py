"""The two graphs of a bundle, as torch modules with plain tensor inputs and outputs.

encoder.onnx   ecg (B, 12, window) float32            -> embedding (B, D), cross_k, cross_v (L, B, H, M, dh)
decoder.onnx   token (B,) int64, past_k, past_v (L, B, H, P, dh), cross_k, cross_v
                                                        -> logits (B, V), new_k, new_v (L, B, H, P+1, dh)
"""

from __future__ import annotations

import torch
from torch import nn

from ecgreport.model.model import ECGReportModel


class EncoderGraph(nn.Module):
    def __init__(self, model: ECGReportModel):
        super().__init__()
        self.model = model

    def forward(self, ecg: torch.Tensor):
        emb, memory = self.model.encode(ecg)
        cross_k, cross_v = self.model.decoder.cross_kv(memory)
        return emb, cross_k, cross_v


class DecoderStepGraph(nn.Module):
    def __init__(self, model: ECGReportModel):
        super().__init__()
        self.decoder = model.decoder

    def forward(self, token, past_k, past_v, cross_k, cross_v):
        return self.decoder.step(token, past_k, past_v, cross_k, cross_v)


def export_graphs(model: ECGReportModel, out_dir, opset: int = 17) -> dict[str, str]:
    """Write encoder.onnx and decoder.onnx with dynamic batch (and past length) axes."""
    import warnings
    from pathlib import Path

    out_dir = Path(out_dir)
    model = model.eval().float()
    cfg = model.cfg
    dh = cfg.width // cfg.decoder_heads
    x = torch.zeros(2, cfg.n_leads, cfg.window_samples)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, ck, cv = EncoderGraph(model).eval()(x)
        torch.onnx.export(
            EncoderGraph(model).eval(), (x,), str(out_dir / "encoder.onnx"), dynamo=False, opset_version=opset,
            input_names=["ecg"], output_names=["embedding", "cross_k", "cross_v"],
            dynamic_axes={"ecg": {0: "batch"}, "embedding": {0: "batch"},
                          "cross_k": {1: "batch"}, "cross_v": {1: "batch"}},
        )
        past = torch.zeros(cfg.decoder_layers, 2, cfg.decoder_heads, 3, dh)
        token = torch.ones(2, dtype=torch.long)
        torch.onnx.export(
            DecoderStepGraph(model).eval(), (token, past, past, ck, cv), str(out_dir / "decoder.onnx"), dynamo=False,
            opset_version=opset,
            input_names=["token", "past_k", "past_v", "cross_k", "cross_v"],
            output_names=["logits", "new_k", "new_v"],
            dynamic_axes={"token": {0: "batch"}, "past_k": {1: "batch", 3: "past"}, "past_v": {1: "batch", 3: "past"},
                          "cross_k": {1: "batch"}, "cross_v": {1: "batch"}, "logits": {0: "batch"},
                          "new_k": {1: "batch", 3: "total"}, "new_v": {1: "batch", 3: "total"}},
        )
    return {"encoder": "encoder.onnx", "decoder": "decoder.onnx"}
