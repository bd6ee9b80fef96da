"""lowlight.inference: uint8 <-> tensor conversions, batched prediction, one image at its own size,
the ImageMatter interface and the LLIE helper -- with stub models whose output is known."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from lowlight import inference as I
from lowlight.color import LUMA_WEIGHTS

pytestmark = pytest.mark.usefixtures("one_thread")


class _Luma(nn.Module):
    """alpha = Rec. 709 luminance of the input (known output for any input)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("w", torch.tensor(LUMA_WEIGHTS).view(1, 3, 1, 1))
        self.seen = []

    def forward(self, x):
        self.seen.append((tuple(x.shape), self.training, torch.is_inference_mode_enabled()))
        return (x * self.w).sum(1, keepdim=True).clamp(0, 1)


class _Gain(nn.Module):
    """A stand-in LLIE: multiplies the image by ``g`` (clipped by the caller)."""

    def __init__(self, g):
        super().__init__()
        self.g = nn.Parameter(torch.tensor(float(g)))

    def forward(self, x):
        return x * self.g


def _img(h=20, w=30, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_image_to_tensor_and_back():
    img = _img()
    t = I.image_to_tensor(img)
    assert t.shape == (1, 3, 20, 30) and t.dtype == torch.float32
    assert float(t.min()) >= 0 and float(t.max()) <= 1
    assert torch.allclose(t[0, :, 3, 4], torch.tensor(img[3, 4], dtype=torch.float32) / 255)
    np.testing.assert_array_equal(I.to_uint8_image(t[0]), img)             # 3 x H x W tensor
    np.testing.assert_array_equal(I.to_uint8_image(img / 255.0), img)      # H x W x 3 array
    assert I.to_uint8_image(np.full((2, 2, 3), 1.7)).max() == 255          # clipped
    assert I.to_uint8_image(np.full((2, 2, 3), 0.5 / 255)).max() == 0      # round half to even
    for bad in (img.astype(np.float32), img[..., 0], np.zeros((4, 4, 4), np.uint8), [[1, 2]]):
        with pytest.raises(ValueError, match="uint8 RGB"):
            I.image_to_tensor(bad)


def test_predict_batch_chunks_restores_mode_and_checks_shapes():
    model = _Luma().train()
    x = torch.rand(5, 3, 8, 12, generator=torch.Generator().manual_seed(0))
    a1 = I.predict_batch(model, x, batch_size=2)
    assert [s[0][0] for s in model.seen] == [2, 2, 1]                        # three chunks
    assert all(not training and inf for _, training, inf in model.seen)      # eval + inference mode
    assert model.training                                                    # restored
    a2 = I.predict_batch(model, x, batch_size=8)
    assert a1.shape == (5, 1, 8, 12) and a1.device.type == "cpu" and torch.equal(a1, a2)
    assert torch.allclose(a1, (x * model.w).sum(1, keepdim=True))
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        I.predict_batch(model, x[:, :1])
    with pytest.raises(ValueError, match="model returned shape"):
        I.predict_batch(nn.Identity(), x)                                    # 3 channels out, not 1


def test_matte_image_is_the_models_8bit_matte_at_the_input_size():
    model = _Luma().train()
    img = _img(37, 29)
    a = I.matte_image(model, img)
    assert a.shape == (37, 29) and a.dtype == np.uint8 and model.training
    expected = np.round(np.clip(img.astype(np.float32) / 255 @ np.float32(LUMA_WEIGHTS), 0, 1) * 255)
    assert np.abs(a.astype(int) - expected).max() <= 1
    # larger than max_side: matted smaller, the matte brought back to the input's size
    big = _img(40, 90, seed=1)
    small = I.matte_image(model, big, max_side=32)
    assert small.shape == (40, 90)
    assert model.seen[-1][0] == (1, 3, 14, 32)            # long side 32, aspect kept
    assert I.matte_image(model, big, max_side=None).shape == (40, 90)
    assert model.seen[-1][0] == (1, 3, 40, 90)


def test_matte_image_with_a_real_network():
    torch.manual_seed(0)
    from lowlight.models import create_model

    model = create_model("cvunet", pretrained=False)
    img = _img(45, 70)
    a = I.matte_image(model, img)
    ref = I.predict_batch(model, I.image_to_tensor(img))[0, 0].numpy()
    assert a.shape == (45, 70)
    assert np.abs(a.astype(int) - np.round(ref * 255)).max() <= 1            # channels-last: same maths


def test_image_matter_and_llie():
    model = _Luma()
    img = _img(16, 16)
    m = I.ImageMatter(model)
    a = m(img)
    assert a.dtype == np.float32 and a.shape == (16, 16) and 0 <= a.min() <= a.max() <= 1
    np.testing.assert_array_equal(a, I.matte_image(model, img, 512).astype(np.float32) / 255)
    # with an LLIE in front the matte is the one of the enhanced image
    llie = _Gain(2.0)
    enhanced = I.enhance_uint8(llie, img)
    assert enhanced.dtype == np.uint8 and enhanced.shape == img.shape
    np.testing.assert_array_equal(enhanced, np.clip(img.astype(np.float64) * 2, 0, 255).round().astype(np.uint8))
    np.testing.assert_array_equal(I.ImageMatter(model, llie=llie)(img),
                                  I.matte_image(model, enhanced, 512).astype(np.float32) / 255)
    np.testing.assert_array_equal(I.enhance_uint8(_Gain(1.0), img), img)   # identity round-trips exactly


def test_model_device():
    assert I.model_device(nn.Linear(2, 2)).type == "cpu"
    assert I.model_device(nn.Identity()).type == "cpu"                      # no parameters
