"""Teaching helpers: helpers that exist to demonstrate something in a notebook; the library never uses them.

=========================  ======================================================  ========
helper                     what it demonstrates                                    notebook
=========================  ======================================================  ========
:class:`AugmentedSamples`  a map-style dataset of augmented draws from a few       02
                           sources, and :func:`loader_rates`, its samples/s through
                           a ``DataLoader`` with and without workers (first epoch
                           with the workers' start-up, then steady state)
:func:`perturb_alpha`      controlled mistakes of a ground-truth alpha, one kind   05
                           at a time, to see which loss term reacts to which
                           mistake
=========================  ======================================================  ========
"""
from __future__ import annotations

import numpy as np

__all__ = ["AugmentedSamples", "loader_rates", "PERTURBATIONS", "PERTURBATION_LABELS", "perturb_alpha"]

#: the kinds of :func:`perturb_alpha`
PERTURBATIONS = ("blur", "shift", "noise", "holes", "hair_removed", "background_residue")
#: how a figure names each kind (with its default strength): words, not the code's keys
PERTURBATION_LABELS = {
    "blur": "blur (σ 1.5 px)",
    "shift": "shift (2 px)",
    "noise": "noise (σ 0.05)",
    "holes": "holes (3 discs)",
    "hair_removed": "broken hair",
    "background_residue": "background residue",
}


def perturb_alpha(alpha: np.ndarray, kind: str, strength: float | None = None, seed: int = 0) -> np.ndarray:
    """A controlled error of a ground-truth alpha (HxW float in [0, 1]) (notebook 05).

    ``kind`` and ``strength`` (its default):

    * ``"blur"`` -- Gaussian blur, sigma in pixels (1.5): a soft, low-resolution output.
    * ``"shift"`` -- translation right and down by ``strength`` pixels (2), edges replicated.
    * ``"noise"`` -- additive Gaussian noise of that std (0.05), clipped to [0, 1].
    * ``"holes"`` -- that many discs (3) of radius ``size / 20`` set to 0 inside the
      definite foreground: the subject partly "disappears" (dark clothing on a dark
      background).
    * ``"hair_removed"`` -- grey-level morphological opening with a ``strength`` x
      ``strength`` ellipse (5): every structure thinner than that vanishes, the body
      stays -- the "broken hair" of the article's §6.2.
    * ``"background_residue"`` -- smooth blobs of peak opacity ``strength`` (0.25) added
      in the background away from the subject: the article's "background residue".

    Deterministic by ``seed``; returns float32.
    """
    import cv2

    a = np.asarray(alpha, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"perturb_alpha: alpha must be H x W, got shape {a.shape}")
    if kind not in PERTURBATIONS:
        raise ValueError(f"perturb_alpha: kind must be one of {PERTURBATIONS}, got {kind!r}")
    rng = np.random.default_rng([seed, PERTURBATIONS.index(kind)])
    h, w = a.shape
    if kind == "blur":
        out = cv2.GaussianBlur(a, (0, 0), 1.5 if strength is None else float(strength))
    elif kind == "shift":
        s = 2.0 if strength is None else float(strength)
        m = np.float32([[1, 0, s], [0, 1, s]])
        out = cv2.warpAffine(a, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    elif kind == "noise":
        out = a + rng.normal(0.0, 0.05 if strength is None else float(strength), a.shape).astype(np.float32)
    elif kind == "holes":
        n = 3 if strength is None else int(strength)
        out = a.copy()
        r = max(2, min(h, w) // 20)
        inner = cv2.erode((a >= 0.99).astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8))
        ys, xs = np.nonzero(inner)
        if len(ys) == 0:
            raise ValueError("perturb_alpha: no definite foreground large enough for holes")
        for i in rng.choice(len(ys), size=min(n, len(ys)), replace=False):
            cv2.circle(out, (int(xs[i]), int(ys[i])), r, 0.0, -1, cv2.LINE_AA)
    elif kind == "hair_removed":
        k = 5 if strength is None else int(strength)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        out = cv2.morphologyEx(a, cv2.MORPH_OPEN, kernel)
    else:  # background_residue
        amp = 0.25 if strength is None else float(strength)
        far = cv2.erode((a <= 1e-3).astype(np.uint8), np.ones((9, 9), np.uint8))
        ys, xs = np.nonzero(far)
        if len(ys) == 0:
            raise ValueError("perturb_alpha: no background to put residue on")
        blobs = np.zeros_like(a)
        sig = max(1.5, min(h, w) / 25)
        yy, xx = np.mgrid[0:h, 0:w]
        for i in rng.choice(len(ys), size=min(4, len(ys)), replace=False):
            blobs += np.exp(-((yy - ys[i]) ** 2 + (xx - xs[i]) ** 2) / (2 * sig * sig)).astype(np.float32)
        far = cv2.GaussianBlur(far.astype(np.float32), (0, 0), 2.0)   # no hard cut-off near the subject
        out = np.maximum(a, amp * np.clip(blobs, 0, 1) * far)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


class AugmentedSamples:
    """``n`` augmented samples drawn in turn from a few source samples (dicts with uint8
    ``normal`` and ``alpha``, as :func:`lowlight.data.make_sample` returns; ``key`` picks the
    image, e.g. ``"low"``), sample ``i`` seeded with ``i``; yields ``(image uint8 tensor H x W x 3,
    alpha float tensor H x W)``. A map-style dataset for ``DataLoader`` -- the throughput
    measurements of notebook 02 and ``benchmarks/bench_augment.py``. Training itself reads
    LL-Matte through :class:`lowlight.data.LLMatteDataset`."""

    def __init__(self, transform, sources: list[dict], n: int, key: str = "normal"):
        if not sources:
            raise ValueError("sources: expected at least one sample")
        missing = [k for k in (key, "alpha") if k not in sources[0]]
        if missing:
            raise ValueError(f"sources: each sample needs the keys {key!r} and 'alpha'; missing {missing}")
        self.transform, self.sources, self.n, self.key = transform, list(sources), int(n), key

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        import torch

        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for {self.n} samples")
        self.transform.set_random_seed(i)
        s = self.sources[i % len(self.sources)]
        o = self.transform(image=s[self.key], alpha=s["alpha"].astype(np.float32) / 255)
        return torch.from_numpy(o["image"]), torch.from_numpy(o["alpha"])


def loader_rates(dataset, num_workers: int, batch_size: int = 8, direct: bool = False) -> dict:
    """Samples per second of ``dataset`` through a ``DataLoader`` (notebook 02, ``bench_augment``).

    Two epochs over the same loader (``persistent_workers`` when ``num_workers > 0``):
    ``"first_epoch"`` includes starting the worker processes -- what every epoch costs with
    ``persistent_workers=False``, the course's loaders' setting -- and ``"steady"`` is the second
    epoch, workers already running. Returns both rates and the ``"startup_s"`` they imply; with
    ``direct=True`` also ``"direct"``: ``dataset[i]`` in a plain loop, without a ``DataLoader``
    (no batching, no collation), the cost of the augmentation alone.
    """
    import time

    from torch.utils.data import DataLoader

    n = len(dataset)
    out = {}
    if direct:
        t0 = time.perf_counter()
        for i in range(n):
            dataset[i]
        out["direct"] = n / (time.perf_counter() - t0)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                        persistent_workers=num_workers > 0)
    rates = []
    for _ in range(2):
        t0 = time.perf_counter()
        count = sum(len(b[0]) for b in loader)
        rates.append(count / (time.perf_counter() - t0))
    del loader   # ends persistent workers
    out.update(first_epoch=rates[0], steady=rates[1], startup_s=max(0.0, n / rates[0] - n / rates[1]))
    return out
