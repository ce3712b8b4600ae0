"""What a wider ResNet encoder costs at inference: ONNX encoder time per record and size.

Issue 14 allows a wider encoder only if `ecgreport batch` stays at least as fast as a plain
`wfdb.rdsamp` loop and the bundle stays within 25 MB. This script builds the shipped
architecture and a wider one with untrained weights (speed and size do not depend on the
weights), exports each encoder graph as `ecgreport export-onnx` does, and times them on the
same random windows in one run, so the ratio holds on a noisy machine:

    python benchmarks/encoder_width.py [--channels 64,128,256,256] [--threads 1]

It prints a table: milliseconds per record (best of --repeats), parameters, the encoder
graph's size, and the bundle's size if the shipped bundle's encoder were replaced.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def encoder_cost(channels: tuple[int, ...], x: np.ndarray, threads: int, repeats: int, vocab: int) -> dict:
    import onnxruntime as ort
    import torch

    from ecgreport.model.config import ModelConfig
    from ecgreport.model.model import ECGReportModel
    from ecgreport.onnx.graphs import export_graphs

    torch.manual_seed(0)
    model = ECGReportModel(ModelConfig(vocab_size=vocab, resnet_channels=channels)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        export_graphs(model, Path(tmp))
        path = Path(tmp) / "encoder.onnx"
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        sess.run(None, {name: x[:8]})  # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            sess.run(None, {name: x})
            times.append(time.perf_counter() - t)
        size = path.stat().st_size + sum(p.stat().st_size for p in Path(tmp).glob("encoder.onnx.data"))
    return {"ms": min(times) / len(x) * 1000, "params": sum(p.numel() for p in model.parameters()), "bytes": size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", default="64,128,256,256", help="the wider encoder's channels per stage")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (batch workers use 1 each)")
    ap.add_argument("--records", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--bundle", type=Path, default=ROOT / "export", help="the shipped bundle, for its size")
    a = ap.parse_args()
    import json

    manifest = json.loads((a.bundle / "manifest.json").read_text())
    shipped = tuple(manifest["model_config"]["resnet_channels"])
    vocab = manifest["model_config"]["vocab_size"]
    bundle_mb = sum(f["bytes"] for f in manifest["files"].values()) / 1e6
    enc_mb = manifest["files"]["encoder.onnx"]["bytes"] / 1e6
    wide = tuple(int(c) for c in a.channels.split(","))
    x = (np.random.default_rng(0).standard_normal((a.records, 12, 1000)) * 0.3).astype(np.float32)
    rows = {name: encoder_cost(ch, x, a.threads, a.repeats, vocab) for name, ch in (("shipped", shipped), ("wider", wide))}
    print(f"| encoder | channels | ms/record (encoder, {a.threads} thread) | parameters | encoder.onnx MB | bundle MB |")
    print("|---|---|---|---|---|---|")
    for name, ch in (("shipped", shipped), ("wider", wide)):
        r = rows[name]
        size = bundle_mb - enc_mb + r["bytes"] / 1e6 if name == "wider" else bundle_mb
        print(f"| {name} | {','.join(map(str, ch))} | {r['ms']:.2f} | {r['params']:,} | {r['bytes'] / 1e6:.1f} | {size:.1f} |")
    print(f"\nwider / shipped encoder time: {rows['wider']['ms'] / rows['shipped']['ms']:.2f}x "
          f"(same run, same {a.records} windows, best of {a.repeats})")


if __name__ == "__main__":
    main()
