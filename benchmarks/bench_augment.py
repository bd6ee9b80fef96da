"""Augmentation throughput: samples/s of lowlight.augment.train_transform at the quick (128²)
and full (512²) crop sizes, in one process and through a DataLoader with workers.

Two pipelines: ``darken=None`` on LL-Matte's pre-darkened images (what CV-UNet's training runs)
and ``darken="simulate"`` on normal-light images (the physical simulator on the fly).

Run: ``python benchmarks/bench_augment.py``. Compare with the training step rate printed by
``benchmarks/bench_train.py`` (if present) to see whether data loading is ever the bottleneck.
"""
from __future__ import annotations



def main(n: int = 128, workers=(0, 2)) -> dict:
    from lowlight import augment as aug
    from lowlight.data import make_sample
    from lowlight.teaching import AugmentedSamples, loader_rates

    res = {}
    print(f"{'crop':>6} {'darken':>9} {'alone ms':>9} {'workers':>8} {'first epoch/s':>14} {'steady/s':>9} {'start-up s':>11}")
    for size in (128, 512):
        sources = [make_sample(i, "train", size=int(size * 1.25), seed=0) for i in range(4)]
        for darken in (None, "simulate"):
            key = "low" if darken is None else "normal"   # pre-darkened input, or darkened on the fly
            ds = AugmentedSamples(aug.train_transform(size, darken=darken), sources, n, key=key)
            for w in workers:
                r = loader_rates(ds, w, direct=w == 0)   # "alone": dataset[i] without a DataLoader
                res[(size, darken, w)] = r
                alone = f"{1000 / r['direct']:9.1f}" if "direct" in r else " " * 9
                print(f"{size:>6} {str(darken):>9} {alone} {w:>8} {r['first_epoch']:14.1f} {r['steady']:9.1f} "
                      f"{r['startup_s']:11.2f}")
    return res


if __name__ == "__main__":
    main()
