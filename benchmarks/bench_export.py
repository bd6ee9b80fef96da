"""Exported fine-tuned model vs the shipped ONNX (MODNet at 512x512, U²-Netp at 320x320), onnxruntime on CPU.

Goal (issue 21): the graph ``python -m lowlight.export`` writes -- normalisation, padding to a
multiple of 32 and cropping inside -- costs at most 1.1x the shipped graph (which takes
``x * 2 - 1`` and no other size handling). The model is exported from ``--checkpoint`` (a
fine-tuned MODNet, e.g. ``runs/quick/train/modnet-staged/seed0/stage3/last.pt``); without one,
from the course's port of the shipped weights, which has the same architecture and so the same
graph as any fine-tuned MODNet. Both sessions get the same intra-op threads (default 2, inter-op
1); repeats are interleaved (exported, shipped, exported, ...) so that load from other processes
hits both alike. Printed: median and best time of each, the ratio of the medians and the median
of the per-repeat ratios (exported / shipped; goal <= 1.1). ``--model u2netp`` does the same for U²-Netp
at its operating size, 320x320 (the shipped graph is given rembg's preprocessing -- divide by the
maximum, ImageNet mean/std -- done outside the timed call, as MODNet's ``x * 2 - 1`` is).
Run: ``python -m benchmarks.bench_export [--model modnet|u2netp] [--size N] [--threads 2] [--repeats 10]
[--checkpoint CKPT]``.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from benchmarks._timing import interleaved_times, summarise


def _session(path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _shipped_input(name: str, x):
    """``(input name, array)`` for the shipped graph of ``name`` given RGB ``x`` in [0, 1] (NCHW)."""
    import numpy as np

    from lowlight import assets

    if name == "modnet":
        return "input", (x * 2 - 1).astype(np.float32)
    from lowlight.models.weights import read_u2netp_onnx, u2netp_onnx_input

    return read_u2netp_onnx(assets.fetch("u2netp"))["input"], u2netp_onnx_input(x, max_normalize=True)


def main(size: int | None = None, threads: int = 2, repeats: int = 10, warmup: int = 2,
         checkpoint: str | None = None, model_name: str = "modnet") -> dict:
    import onnxruntime as ort
    import torch

    from lowlight import assets, export, models

    torch.set_num_threads(threads)
    size = size or models.OPERATING_SIDE[model_name]
    model = models.model_from_checkpoint(checkpoint) if checkpoint else models.create_model(model_name)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).numpy()
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        path = Path(tmp) / "exported.onnx"
        check = export.export_onnx(model, path, sizes=((size, size),), threads=threads)
        ours = _session(path, threads)
    shipped = _session(assets.fetch(model_name), threads)
    feed = dict([_shipped_input(model_name, x)])
    runs = {"exported (lowlight.export)": lambda: ours.run(None, {"image": x}),
            f"shipped {model_name} ONNX": lambda: shipped.run(None, feed)}
    times = interleaved_times(runs, repeats, warmup)
    (a, ta), (b, tb) = times.items()
    res = summarise(times)
    res["ratio_of_medians"] = res[a]["median_s"] / res[b]["median_s"]
    res["median_ratio"] = statistics.median(p / q for p, q in zip(ta, tb))
    print(f"input 1x3x{size}x{size}, onnxruntime {ort.__version__} CPU, {threads} intra-op threads each, "
          f"{repeats} interleaved repeats; exported from {checkpoint or 'the port of the shipped weights'} "
          f"(check: mean |diff| {check[0]['mean']:.1e}, max {check[0]['max']:.1e})")
    print(f"{'graph':<28} {'median s':>9} {'best s':>8}")
    for name in runs:
        print(f"{name:<28} {res[name]['median_s']:9.3f} {res[name]['min_s']:8.3f}")
    verdict = "met" if res["median_ratio"] <= 1.1 else "NOT met"
    print(f"exported / shipped: median of per-repeat ratios {res['median_ratio']:.3f}, ratio of medians "
          f"{res['ratio_of_medians']:.3f} (goal <= 1.1: {verdict})")
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="modnet", choices=["modnet", "u2netp"])
    ap.add_argument("--size", type=int, default=None, help="square input side (default: the model's operating size)")
    for flag, default in (("--threads", 2), ("--repeats", 10)):
        ap.add_argument(flag, type=int, default=default, help=f"default {default}")
    ap.add_argument("--checkpoint", default=None, help="a fine-tuned checkpoint of --model to export (default: none)")
    a = ap.parse_args()
    main(size=a.size, threads=a.threads, repeats=a.repeats, checkpoint=a.checkpoint, model_name=a.model)
