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
        if cfg.encoder == "resnet":
            conv1d_as_conv2d(out_dir / "encoder.onnx")
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


def conv1d_as_conv2d(path) -> int:
    """Rewrite the 1D convolutions of an exported encoder as 2D ones of height 1, in place.

    onnxruntime's CPU provider runs 2D convolutions in its blocked (NCHWc) layout with
    fused Add/ReLU, but 1D ones through a plain im2col + GEMM: on the 2-core test machine
    the ResNet encoder ran 1.2-1.3x faster this way (same numbers up to float rounding;
    the export's parity check still compares the result with PyTorch). The input gets an
    Unsqueeze to (B, 12, 1, T), every Conv a kernel (1, k), and each tensor leaving the
    Conv/Relu/Add/BatchNormalization stack a Squeeze back to (B, C, T) before its first user.
    Returns the number of convolutions rewritten (0 leaves the file unchanged).
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    source = graph.input[0].name
    weights = {init.name: init for init in graph.initializer}
    spatial = {"Conv", "Relu", "Add", "BatchNormalization"}
    nodes = list(graph.node)
    # The convolution stack: nodes reachable from the input through spatial ops only.
    stack, reached, leaves = set(), {source}, False
    for i, node in enumerate(nodes):
        if not any(name in reached for name in node.input):
            continue
        data = node.input if node.op_type == "Add" else node.input[:1]  # the rest: weights
        if node.op_type in spatial and all(name in reached for name in data):
            stack.add(i)
            reached.update(node.output)
        else:
            leaves = True
    convs = [nodes[i] for i in sorted(stack) if nodes[i].op_type == "Conv"]
    if not convs or not leaves:
        return 0
    for node in convs:
        w = weights[node.input[1]]
        w.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(w)[:, :, None, :], w.name))
        for attr in node.attribute:
            values = list(attr.ints)
            if attr.name in ("kernel_shape", "strides", "dilations"):
                values = [1, *values]
            elif attr.name == "pads":
                values = [0, values[0], 0, values[1]]
            else:
                continue
            del attr.ints[:]
            attr.ints.extend(values)
    axes, lifted = "conv2d_axes", source + "_conv2d"
    graph.initializer.append(numpy_helper.from_array(np.array([2], np.int64), axes))
    for i in stack:
        for j, name in enumerate(nodes[i].input):
            if name == source:
                nodes[i].input[j] = lifted
    # Every 4D tensor leaving the stack is squeezed back to 3D just before its first user.
    produced = {out for i in stack for out in nodes[i].output}
    if produced & {out.name for out in graph.output}:
        raise ValueError(f"{path}: a graph output comes straight from a convolution")
    rebuilt, squeezed = [helper.make_node("Unsqueeze", [source, axes], [lifted])], set()
    for i, node in enumerate(nodes):
        if i not in stack:
            for j, name in enumerate(node.input):
                if name in produced:
                    if name not in squeezed:
                        rebuilt.append(helper.make_node("Squeeze", [name, axes], [name + "_1d"]))
                        squeezed.add(name)
                    node.input[j] = name + "_1d"
        rebuilt.append(node)
    del graph.node[:]
    graph.node.extend(rebuilt)
    del graph.value_info[:]  # shapes inferred for 3D tensors no longer hold
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return len(convs)
