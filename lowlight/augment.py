"""Augmentation for low-light matting with albumentations 2.x (notebook 02).

The article's §2.2 pipeline, translated to what it *means* on albumentations 2.0.8:

================================  ==========================================================
article                           here
================================  ==========================================================
RandomResizedCrop(512, 512, …)    ``UnknownCenteredCrop`` (crops centred on the unknown band,
                                  as GCA/ViTMatte crop) or ``RandomResizedCrop(size=…)``
ColorJitter(0.3, 0.3, 0.2, 0.1)   the same, image only
GaussNoise(var_limit=(10, 50))    ``GaussNoise(std_range=(√10/255, √50/255))``: 2.x takes a
                                  standard deviation as a fraction of 255 and silently ignores
                                  ``var_limit``
RandomGamma(gamma_limit=(30,60))  ``RandomGamma(gamma_limit=(167, 333))``: albumentations raises
                                  pixels to gamma/100, so 30-60 *brightens*; the article's
                                  γ ∈ [0.3, 0.6] darkens as ``x ** (1/γ)``, i.e. exponents 1.67-3.33
RandomBrightnessContrast ±40 %    the same
OneOf(MotionBlur 7, GaussBlur 7)  the same, p = 0.5
CutoutWithAlpha (ratio ≤ 0.1)     :class:`CutoutWithAlpha` (defined below)
Normalize(ImageNet)               not here: normalisation belongs to the model
additional_targets alpha: mask    kept, but every geometric transform resizes it *linearly*
                                  (``mask_interpolation``); nearest-neighbour, the 2.x default,
                                  turns soft alpha into a binary mask
================================  ==========================================================

plus :class:`SimulateLowLight`, the physical simulator of :mod:`lowlight.simulate` as a
transform, for on-the-fly darkening of normal-light images.

Call a pipeline as ``t(image=rgb_uint8, alpha=alpha)`` with alpha HxW uint8 or float; the
result has ``image``, ``alpha`` and ``valid`` (uint8 HxW, 1 where a pixel should count in
the loss -- 0 inside cut-out holes and in padding).
"""
from __future__ import annotations

import math
from typing import Any

import albumentations as A
import cv2
import numpy as np

from . import simulate as sim

__all__ = [
    "MattingCompose",
    "UnknownCenteredCrop",
    "CutoutWithAlpha",
    "SimulateLowLight",
    "train_transform",
    "eval_transform",
    "EvalTransform",
    "GAUSS_NOISE_STD",
    "DARKENING_GAMMA_LIMIT",
]

#: the article's variance 10-50 on 0-255, as albumentations 2.x's std_range (fraction of 255)
GAUSS_NOISE_STD = (math.sqrt(10.0) / 255.0, math.sqrt(50.0) / 255.0)
#: the article's γ ∈ [0.3, 0.6] on the darkening side: exponents 1/0.6 .. 1/0.3, in percent
DARKENING_GAMMA_LIMIT = (round(100 / 0.6), round(100 / 0.3))


class MattingCompose(A.Compose):
    """``A.Compose`` with the matting targets wired in: ``alpha`` and ``valid`` are masks that
    geometric transforms resize linearly; photometric transforms never see them. A ``valid``
    mask of ones is created when the caller gives none."""

    def __init__(self, transforms, seed: int | None = None, **kw):
        targets = {"alpha": "mask", "valid": "mask"}
        targets.update(kw.pop("additional_targets", {}) or {})
        super().__init__(transforms, additional_targets=targets, mask_interpolation=cv2.INTER_LINEAR,
                         seed=seed, **kw)

    def __call__(self, *args, force_apply: bool = False, **data):
        if "image" not in data or "alpha" not in data:
            raise ValueError("call the pipeline as t(image=rgb_uint8 HxWx3, alpha=HxW uint8 or float)")
        image, alpha = data["image"], data["alpha"]
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image: expected an HxWx3 RGB array, got {getattr(image, 'shape', type(image))}")
        if not isinstance(alpha, np.ndarray) or alpha.ndim != 2:
            raise ValueError(f"alpha: expected a single-channel HxW array, got {getattr(alpha, 'shape', type(alpha))}")
        if alpha.shape != image.shape[:2]:
            raise ValueError(f"alpha: shape {alpha.shape} does not match image {image.shape[:2]}")
        if alpha.dtype != np.uint8:
            alpha = np.asarray(alpha, np.float32)
            if not np.isfinite(alpha).all() or alpha.min() < 0 or alpha.max() > 1:
                raise ValueError("alpha: float alpha must be finite and lie in [0, 1] (uint8 alpha: 0-255)")
        data["alpha"] = alpha
        if data.get("valid") is None:
            data["valid"] = np.ones(image.shape[:2], np.uint8)
        out = super().__call__(*args, force_apply=force_apply, **data)
        a = out["alpha"]
        out["alpha"] = np.clip(a, 0, 1) if a.dtype != np.uint8 else a
        out["valid"] = (out["valid"] > 0).astype(np.uint8)
        return out


class UnknownCenteredCrop(A.DualTransform):
    """Random crop (area fraction in ``scale`` of the image, aspect ratio in ``ratio``),
    resized to ``size``; with probability ``p_unknown`` the crop is centred on a random
    pixel of the unknown band (0 < alpha < 1), so most crops contain the edges a matting
    network learns from. Image: linear (area when shrinking); alpha/valid: linear."""

    def __init__(self, size: tuple[int, int], scale=(0.5, 1.0), ratio=(0.75, 4 / 3), p_unknown: float = 0.75,
                 p: float = 1.0):
        super().__init__(p=p)
        if len(size) != 2 or min(size) <= 0:
            raise ValueError(f"size: expected (height, width) > 0, got {size}")
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale: expected 0 < min <= max <= 1, got {scale}")
        self.size = (int(size[0]), int(size[1]))
        self.scale, self.ratio, self.p_unknown = scale, ratio, p_unknown

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        h, w = params["shape"][:2]
        rg = self.random_generator
        area = h * w * rg.uniform(*self.scale)
        r = math.exp(rg.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
        ch = int(round(min(h, math.sqrt(area / r))))
        cw = int(round(min(w, math.sqrt(area * r))))
        ch, cw = max(ch, 1), max(cw, 1)
        alpha = data.get("alpha")
        cy = cx = None
        if alpha is not None and rg.random() < self.p_unknown:
            a = alpha if alpha.dtype != np.uint8 else alpha.astype(np.float32) / 255
            ys, xs = np.nonzero((a > 0.02) & (a < 0.98))
            if len(ys):
                k = int(rg.integers(len(ys)))
                cy, cx = int(ys[k]), int(xs[k])
        if cy is None:
            y0 = int(rg.integers(0, h - ch + 1))
            x0 = int(rg.integers(0, w - cw + 1))
        else:
            y0 = int(np.clip(cy - ch // 2, 0, h - ch))
            x0 = int(np.clip(cx - cw // 2, 0, w - cw))
        return {"crop": (y0, x0, y0 + ch, x0 + cw)}

    def _crop_resize(self, img, crop, interp):
        y0, x0, y1, x1 = crop
        patch = img[y0:y1, x0:x1]
        if patch.shape[:2] == self.size:
            return np.ascontiguousarray(patch)
        return cv2.resize(patch, (self.size[1], self.size[0]), interpolation=interp)

    def apply(self, img, crop=None, **params):
        shrink = (crop[2] - crop[0]) > self.size[0]
        return self._crop_resize(img, crop, cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)

    def apply_to_mask(self, mask, crop=None, **params):
        return self._crop_resize(mask, crop, cv2.INTER_LINEAR)

    def get_transform_init_args_names(self):
        return ("size", "scale", "ratio", "p_unknown")


class CutoutWithAlpha(A.DualTransform):
    """Cut-out holes for matting, the article's "CutoutWithAlpha" made precise.

    * **image**: 1-3 rectangles, together at most ``max_area_ratio`` of the image (0.1, as
      in the article), are filled with a flat random colour plus a little noise -- the
      content is gone, as under a specular blow-out, a lens flare or a dead sensor region;
    * **alpha**: unchanged. The object is still there; only the camera lost it;
    * **loss**: the ``valid`` mask is 0 inside the holes, so pixel losses skip them.

    Why: asking the network to reproduce hair strands it cannot see would teach it to
    guess (blur); skipping the holes keeps the supervision honest, while the corrupted
    context around each hole still trains the network to stay coherent next to missing data
    -- the "local context understanding" the article is after. ``supervise_holes=True``
    keeps them in the loss instead (inpainting the matte from context).
    """

    def __init__(self, max_area_ratio: float = 0.1, max_holes: int = 3, supervise_holes: bool = False,
                 p: float = 0.5):
        super().__init__(p=p)
        if not 0 < max_area_ratio <= 0.5:
            raise ValueError(f"max_area_ratio: expected a value in (0, 0.5], got {max_area_ratio}")
        self.max_area_ratio, self.max_holes, self.supervise_holes = max_area_ratio, max_holes, supervise_holes

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        h, w = params["shape"][:2]
        rg = self.random_generator
        n = int(rg.integers(1, self.max_holes + 1))
        budget = self.max_area_ratio * h * w * rg.uniform(0.3, 1.0)
        holes, used = [], np.zeros((h, w), bool)
        for share in rg.dirichlet(np.ones(n)):
            area = budget * share
            aspect = math.exp(rg.uniform(math.log(0.5), math.log(2.0)))
            hh = int(min(h, max(1, math.floor(math.sqrt(area / aspect)))))
            ww = int(min(w, max(1, math.floor(area / hh))))
            y0, x0 = int(rg.integers(0, h - hh + 1)), int(rg.integers(0, w - ww + 1))
            trial = used.copy()
            trial[y0:y0 + hh, x0:x0 + ww] = True
            if trial.sum() <= self.max_area_ratio * h * w:  # the bound holds for the union
                used = trial
                holes.append((y0, x0, y0 + hh, x0 + ww, rg.uniform(0, 1, 3), int(rg.integers(0, 2**31 - 1))))
        return {"holes": holes}

    def apply(self, img, holes=(), **params):
        out = img.copy()
        for y0, x0, y1, x1, colour, seed in holes:
            noise = np.random.default_rng(seed).normal(0, 0.02, (y1 - y0, x1 - x0, img.shape[2]))
            fill = np.clip(colour[None, None, : img.shape[2]] + noise, 0, 1)
            out[y0:y1, x0:x1] = (fill * 255).round().astype(np.uint8) if img.dtype == np.uint8 else fill.astype(img.dtype)
        return out

    def apply_to_mask(self, mask, holes=(), **params):
        return mask  # alpha is unchanged (valid is handled in apply_with_params)

    def apply_with_params(self, params: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        res = super().apply_with_params(params, *args, **kwargs)
        if not self.supervise_holes and res.get("valid") is not None:
            valid = res["valid"].copy()
            for y0, x0, y1, x1, *_ in params.get("holes", ()):
                valid[y0:y1, x0:x1] = 0
            res["valid"] = valid
        return res

    def get_transform_init_args_names(self):
        return ("max_area_ratio", "max_holes", "supervise_holes")


class SimulateLowLight(A.ImageOnlyTransform):
    """The physical low-light simulator as an albumentations transform: parameters drawn
    from :data:`lowlight.simulate.PARAM_RANGES` (override any with ``overrides``)."""

    def __init__(self, p: float = 1.0, **overrides):
        super().__init__(p=p)
        self.overrides = overrides

    def get_params(self) -> dict[str, Any]:
        seed = int(self.random_generator.integers(0, 2**63 - 1))
        return {"seed": seed}

    def apply(self, img, seed: int = 0, **params):
        rng = np.random.default_rng(seed)
        p = sim.sample_params(rng, **self.overrides)
        return sim.simulate(img, p, rng=rng)

    def get_transform_init_args_names(self):
        return ("overrides",)


def train_transform(size: int | tuple[int, int], darken: str | None = None, photometric: bool = True,
                    cutout: bool = True, unknown_crop: bool = True, seed: int | None = None) -> MattingCompose:
    """The training pipeline: the article's intent on albumentations 2.x (see module docstring).

    ``darken``: ``None`` when the dataset already delivers low-light images (LL-Matte
    ``mode="low"``/``"mixed"``); ``"simulate"`` to darken normal-light images on the fly with
    the physical simulator; ``"gamma"`` for the article's darkening gamma instead.

    Which one trains: :func:`lowlight.training.make_datasets` (CV-UNet) uses ``darken=None`` on
    LL-Matte's pre-darkened ``"mixed"`` inputs, whose darkening is the physical simulator with a
    seeded, recorded parameter set per sample (the manifest; notebook 07 bins errors by it). The
    MODNet fine-tune of notebook 06 does not use this pipeline: its data set darkens and flips
    each draw itself (:class:`lowlight.training.FinetuneSet`). ``"simulate"`` is the same
    physics for normal-light data of your own (notebook 02 demonstrates it).
    """
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if darken not in (None, "simulate", "gamma"):
        raise ValueError(f"darken: expected None, 'simulate' or 'gamma', got {darken!r}")
    geo = [UnknownCenteredCrop(hw) if unknown_crop else
           A.RandomResizedCrop(size=hw, scale=(0.8, 1.0), mask_interpolation=cv2.INTER_LINEAR),
           A.HorizontalFlip(p=0.5)]
    photo = []
    if photometric:
        photo += [
            A.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.2, hue=0.1, p=0.8),
            A.RandomBrightnessContrast(brightness_limit=0.4, contrast_limit=0.4, p=0.5),
            A.OneOf([A.MotionBlur(blur_limit=7), A.GaussianBlur(blur_limit=7)], p=0.5),
        ]
    if darken == "simulate":
        photo.append(SimulateLowLight(p=1.0))
    elif darken == "gamma":
        photo.append(A.RandomGamma(gamma_limit=DARKENING_GAMMA_LIMIT, p=1.0))
    if photometric and darken != "simulate":
        photo.append(A.GaussNoise(std_range=GAUSS_NOISE_STD, p=0.5))
    tail = [CutoutWithAlpha(max_area_ratio=0.1, p=0.5)] if cutout else []
    return MattingCompose(geo + photo + tail, seed=seed)


class EvalTransform:
    """Deterministic evaluation transform (no randomness): optionally resize so the longer
    side is ``size`` (area for image, linear for alpha), then pad bottom/right by reflection
    to a multiple of ``multiple``. ``valid`` is 0 on the padding, so predictions are cropped
    back with ``[:h, :w]`` (``out["content_hw"]``)."""

    def __init__(self, multiple: int = 32, size: int | None = None):
        if multiple < 1:
            raise ValueError(f"multiple: expected >= 1, got {multiple}")
        self.multiple, self.size = multiple, size

    def __call__(self, image: np.ndarray, alpha: np.ndarray, valid: np.ndarray | None = None, **extra) -> dict:
        if image.ndim != 3 or alpha.shape != image.shape[:2]:
            raise ValueError(f"image/alpha: expected HxWx3 and HxW of the same size, got {image.shape} and {alpha.shape}")
        h, w = image.shape[:2]
        valid = np.ones((h, w), np.uint8) if valid is None else valid
        if self.size is not None and max(h, w) != self.size:
            s = self.size / max(h, w)
            nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
            interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
            image = cv2.resize(image, (nw, nh), interpolation=interp)
            alpha = cv2.resize(alpha, (nw, nh), interpolation=cv2.INTER_LINEAR)
            valid = cv2.resize(valid, (nw, nh), interpolation=cv2.INTER_NEAREST)
            h, w = nh, nw
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        out = {k: v for k, v in extra.items()}
        if ph or pw:
            mode = cv2.BORDER_REFLECT_101 if (ph < h and pw < w) else cv2.BORDER_REPLICATE
            image = cv2.copyMakeBorder(image, 0, ph, 0, pw, mode)
            alpha = cv2.copyMakeBorder(alpha, 0, ph, 0, pw, mode)
            valid = cv2.copyMakeBorder(valid, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=0)
        out.update(image=image, alpha=alpha, valid=valid, content_hw=(h, w))
        return out


def eval_transform(multiple: int = 32, size: int | None = None) -> EvalTransform:
    """The deterministic evaluation/test transform (see :class:`EvalTransform`)."""
    return EvalTransform(multiple, size)

