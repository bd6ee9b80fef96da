"""Physical low-light simulator vs the article's formula, per RGB megapixel, same run.

Goal (issue 2): the physical model >= 5x faster per megapixel than the article's formula,
at equal or better fidelity. Run: ``python benchmarks/bench_simulate.py``.
"""
from __future__ import annotations

import time

import numpy as np


def _best(f, repeats: int) -> float:
    f()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(size: int = 2000, repeats: int = 7) -> dict:
    from skimage import data

    from lowlight import simulate as sim

    reps = -(-size // 512)
    img = np.ascontiguousarray(np.tile(data.astronaut(), (reps, reps, 1))[:size, :size])
    mp = img.shape[0] * img.shape[1] / 1e6
    rng = np.random.default_rng(0)
    rows = {
        "article formula": lambda: sim.article_low_light(img, rng=rng),
        "physical (default: gaussian shot noise)": lambda: sim.simulate(img, rng=rng),
        "physical + blur (defocus 1.0, motion 7)": lambda: sim.simulate(
            img, sim.SimParams(blur_sigma=1.0, motion_length=7, motion_angle=20.0), rng=rng),
        "physical, exact Poisson": lambda: sim.simulate(img, sim.SimParams(shot_noise="poisson"), rng=rng),
    }
    res = {name: _best(f, repeats) / mp for name, f in rows.items()}
    base = res["article formula"]
    print(f"image {img.shape[1]}x{img.shape[0]} ({mp:.1f} MP), best of {repeats}")
    print(f"{'simulator':<42} {'s/MP':>8} {'speed-up vs article':>20}")
    for name, t in res.items():
        print(f"{name:<42} {t:8.4f} {base / t:19.1f}x")
    return res


if __name__ == "__main__":
    main()
