"""CVUNet-MobileNetV2 vs MODNet (onnxruntime) at 512x512 on CPU, batch 1, same run.

Goal (issue 5): our CV-UNet with the MobileNetV2 encoder is faster than the real pretrained
reference, MODNet's ONNX export run by onnxruntime (measured ~0.23 s when the issue was
written). Both sides get the same number of CPU threads (torch intra-op threads and
onnxruntime intra-op threads; default 2). Repeats are interleaved (ours, MODNet, ours, ...)
so that load from other processes hits both sides alike; the median and the best time are
reported. A second row runs our model in channels_last memory format, which lets PyTorch's
oneDNN kernels handle the 1x1 convolutions (a deployment setting, not the training default).
MODNet also runs as the course's native PyTorch port (``create_model("modnet")``, the same
weights), so the ONNX graph and the port are timed side by side as well.
Run: ``python benchmarks/bench_models.py [--size 512] [--threads 2] [--repeats 10]``.
"""
from __future__ import annotations

import argparse

from benchmarks._timing import interleaved_times, summarise


def main(size: int = 512, threads: int = 2, repeats: int = 10, warmup: int = 2) -> dict:
    import numpy as np
    import onnxruntime as ort
    import torch

    from lowlight import assets, models

    torch.set_num_threads(threads)
    onnx_path = assets.fetch("modnet")

    model = models.create_model("cvunet").eval()
    modnet_native = models.create_model("modnet").eval()
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: (x.numpy() * 2 - 1).astype(np.float32)}

    model_cl = models.create_model("cvunet", pretrained=False).eval()
    model_cl.load_state_dict(model.state_dict())
    model_cl = model_cl.to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)

    def ours():
        with torch.inference_mode():
            model(x)

    def ours_cl():
        with torch.inference_mode():
            model_cl(x_cl)

    def encoder_only():
        with torch.inference_mode():
            model.encoder(x)

    def modnet():
        sess.run(None, feed)

    def modnet_torch():
        with torch.inference_mode():
            modnet_native(x)

    rows = {"CVUNet-MobileNetV2 (torch eager)": ours, "  same, channels_last": ours_cl,
            "  its encoder alone": encoder_only,
            "MODNet (onnxruntime)": modnet, "MODNet (native PyTorch port)": modnet_torch}
    times = interleaved_times(rows, repeats, warmup)
    res = summarise(times)
    ref = res["MODNet (onnxruntime)"]
    print(f"input 1x3x{size}x{size}, CPU, {threads} threads each (torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}), {repeats} interleaved repeats")
    print(f"{'model':<36} {'median s':>9} {'best s':>8} {'MODNet/ours (median)':>21}")
    for name, r in res.items():
        print(f"{name:<36} {r['median_s']:9.3f} {r['min_s']:8.3f} {ref['median_s'] / r['median_s']:20.2f}x")
    ratio = ref["median_s"] / res["CVUNet-MobileNetV2 (torch eager)"]["median_s"]
    ratio_cl = ref["median_s"] / res["  same, channels_last"]["median_s"]
    verdict = "faster" if ratio > 1 else "slower"
    print(f"ratio MODNet time / CVUNet time = {ratio:.2f} (ours is {verdict}; goal: > 1); "
          f"with channels_last {ratio_cl:.2f}")
    res["ratio_modnet_over_ours"] = ratio
    res["ratio_modnet_over_ours_channels_last"] = ratio_cl
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    a = ap.parse_args()
    main(size=a.size, threads=a.threads, repeats=a.repeats)
