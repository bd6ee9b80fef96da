"""The physical model on batched torch tensors (any device), for on-the-fly simulation (notebook 01)."""
from __future__ import annotations

from typing import Sequence

from ..color import linear_to_srgb, srgb_to_linear
from ..filters import gaussian_blur_torch
from .params import SimParams
from .sensor import check_kernel_fits, motion_kernel


# --------------------------------------------------------------------------- the same maths in torch


def check_batch(batch) -> None:
    """An RGB batch for the torch paths: a float tensor ``N x 3 x H x W`` in [0, 1], not empty;
    clear errors naming ``batch`` otherwise."""
    import torch

    if not torch.is_tensor(batch) or batch.ndim != 4 or batch.shape[1] != 3:
        shape = tuple(batch.shape) if torch.is_tensor(batch) else type(batch).__name__
        raise ValueError(f"batch: expected a float tensor N x 3 x H x W in [0, 1], got {shape}")
    if not batch.is_floating_point():
        raise TypeError(f"batch: expected a floating-point tensor in [0, 1], got {batch.dtype}")
    if batch.numel() == 0:
        raise ValueError(f"batch: empty ({tuple(batch.shape)}); expected at least one image N x 3 x H x W "
                         "with N, H, W >= 1")
    if not torch.isfinite(batch).all() or batch.min() < 0 or batch.max() > 1:
        raise ValueError("batch: values must be finite and lie in [0, 1]")


def simulate_torch(batch, params: SimParams | Sequence[SimParams] | None = None, generator=None):
    """Batched :func:`simulate` on ``N x 3 x H x W`` float tensors in [0, 1] (any device).

    ``params`` is one :class:`SimParams` for the whole batch or one per sample;
    ``generator`` a ``torch.Generator`` on the batch's device (deterministic by its seed).
    Returns a tensor of the same shape quantised to 8-bit levels (values k / 255).
    """
    import torch
    import torch.nn.functional as F

    check_batch(batch)
    n = batch.shape[0]
    if params is None:
        params = SimParams()
    plist = [params] * n if isinstance(params, SimParams) else list(params)
    if len(plist) != n or not all(isinstance(p, SimParams) for p in plist):
        raise ValueError(f"params: expected one SimParams or a list of {n} SimParams")
    for i, p in enumerate(plist):
        check_kernel_fits(p, batch.shape[2], batch.shape[3], name=f"batch (sample {i})")
    dev, dt = batch.device, torch.float32

    def col(vals):
        return torch.tensor(vals, dtype=dt, device=dev).view(n, -1, 1, 1)

    x = batch.to(dt)
    lin = srgb_to_linear(x) * col([p.cast for p in plist])
    # blur: each sample with its own kernels
    if any(p.blur_sigma > 0 or p.motion_length > 1 for p in plist):
        out = lin.clone()
        for i, p in enumerate(plist):
            img = lin[i : i + 1]
            if p.blur_sigma > 0:
                img = gaussian_blur_torch(img, p.blur_sigma)
            if p.motion_length > 1:
                k = torch.from_numpy(motion_kernel(p.motion_length, p.motion_angle)).to(dev)
                r = k.shape[0] // 2
                img = F.pad(img, (r, r, r, r), mode="reflect")
                img = F.conv2d(img, k.view(1, 1, *k.shape).repeat(3, 1, 1, 1), groups=3)
            out[i : i + 1] = img
        lin = out
    fw = col([p.full_well for p in plist])
    e = torch.minimum(lin * col([p.exposure for p in plist]) * fw, fw)
    rn = col([p.read_noise for p in plist])
    modes = {p.shot_noise for p in plist}
    if len(modes) != 1:
        raise ValueError("params: all samples of a batch must share one shot_noise mode")
    mode = modes.pop()
    if mode == "gaussian":
        e = e + torch.sqrt(e + rn**2) * torch.randn(e.shape, generator=generator, device=dev, dtype=dt)
    elif mode == "poisson":
        e = torch.poisson(e, generator=generator) + rn * torch.randn(e.shape, generator=generator, device=dev, dtype=dt)
    y = e * col([p.gain for p in plist]) / fw
    bits = {p.adc_bits for p in plist}
    if len(bits) != 1:
        raise ValueError("params: all samples of a batch must share adc_bits")
    levels = float((1 << bits.pop()) - 1)
    y = torch.round(y.clamp(0, 1) * levels) / levels
    s = linear_to_srgb(y)
    return (torch.round(s * 255.0) / 255.0).to(batch.dtype)
