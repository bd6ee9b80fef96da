"""Training throughput: samples/s of one CV-UNet-MobileNetV2 training step (forward, the
article's composite loss with per-sample weights -- the stages' default loss -- backward, AdamW)
at the quick (128²) and full (512²) crop sizes and batches of those profiles (batch 2 at 512² on
a CPU), on CPU, and on CUDA with and without AMP when a GPU is present.

Run: ``python benchmarks/bench_train.py``. Compare with ``benchmarks/bench_augment.py``:
if the pipeline delivers fewer samples/s than a step consumes, data loading is the bottleneck.
"""
from __future__ import annotations

import time

import torch


def _rate(model, loss, x, a, opt, steps: int, amp_dtype=None) -> float:
    dev = x.device
    for i in range(steps + 2):
        if i == 2:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        with torch.autocast(device_type=dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            p = model(x)
        total, _ = loss(p.float(), a, image=x)
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return steps * x.shape[0] / (time.perf_counter() - t0)


def main() -> dict:
    from lowlight import config
    from lowlight.models import CVUNet
    from lowlight.training import LossSpec

    quick, full = config.get_profile("quick"), config.get_profile("full")

    torch.manual_seed(0)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    res = {}
    print(f"{'device':>6} {'size':>5} {'batch':>5} {'amp':>5} {'samples/s':>10}   (torch threads: {torch.get_num_threads()})")
    for dev in devices:
        cases = ((quick.data.image_size, quick.training.batch_size, 6),
                 (full.data.image_size, full.training.batch_size if dev == "cuda" else 2, 6 if dev == "cuda" else 3))
        for size, batch, steps in cases:
            for amp in ((None, torch.bfloat16) if dev == "cuda" else (None,)):
                model = CVUNet("mobilenetv2").to(dev)
                if dev == "cuda":
                    model = model.to(memory_format=torch.channels_last)
                opt = torch.optim.AdamW(model.parameters(), 1e-4)
                loss = LossSpec().build()
                x = torch.rand(batch, 3, size, size, device=dev)
                a = torch.rand(batch, 1, size, size, device=dev)
                r = _rate(model, loss, x, a, opt, steps, amp)
                res[(dev, size, str(amp))] = r
                print(f"{dev:>6} {size:>5} {batch:>5} {('bf16' if amp else 'off'):>5} {r:10.1f}")
    return res


if __name__ == "__main__":
    main()
