"""Augmentation throughput: samples/s of lowlight.augment.train_transform at the quick (128²)
and full (512²) crop sizes, in one process and through a DataLoader with workers.

Run: ``python benchmarks/bench_augment.py``. Compare with the training step rate printed by
``benchmarks/bench_train.py`` (if present) to see whether data loading is ever the bottleneck.
"""
from __future__ import annotations

import time


def main(n: int = 128, workers=(0, 2)) -> dict:
    from torch.utils.data import DataLoader

    from lowlight import augment as aug
    from lowlight.data import make_sample

    res = {}
    print(f"{'crop':>6} {'darken':>9} {'workers':>8} {'samples/s':>10}")
    for size in (128, 512):
        sources = [make_sample(i, "train", size=int(size * 1.25), seed=0) for i in range(4)]
        for darken in (None, "simulate"):
            ds = aug.AugmentedSamples(aug.train_transform(size, darken=darken), sources, n)
            for w in workers:
                loader = DataLoader(ds, batch_size=8, num_workers=w)
                next(iter(loader))  # warm-up (worker start-up not counted twice)
                t0 = time.perf_counter()
                count = sum(len(b[0]) for b in loader)
                rate = count / (time.perf_counter() - t0)
                res[(size, darken, w)] = rate
                print(f"{size:>6} {str(darken):>9} {w:>8} {rate:10.1f}")
    return res


if __name__ == "__main__":
    main()
