"""LLIE modules, zero-reference losses and the two-stage model (notebook 04)."""
import numpy as np
import pytest
import torch

from lowlight import llie, simulate as sim


def test_parameter_counts_pinned():
    # Zero-DCE++: 10,561 (the paper's figure); the article's illumination estimator: 149,731
    assert llie.count_parameters(llie.ZeroDCEpp()) == 10_561
    assert llie.count_parameters(llie.IlluminationEstimator()) == 149_731


def test_curve_identity_and_range():
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(llie.light_enhancement_curve(x, torch.zeros_like(x)), x)
    for a in (-1.0, -0.3, 0.5, 1.0):
        y = llie.light_enhancement_curve(x, torch.full_like(x, a))
        assert y.min() >= 0 and y.max() <= 1
    y = llie.light_enhancement_curve(x, torch.full_like(x, 0.7))
    assert (y >= x - 1e-7).all()  # a > 0 brightens monotonically


@pytest.mark.parametrize("scale", [1, 4])
def test_zerodce_output_in_range_any_size(scale):
    torch.manual_seed(0)
    m = llie.ZeroDCEpp(scale=scale)
    x = torch.rand(2, 3, 37, 53)
    y = m(x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    assert m.last_curve.shape == x.shape and m.last_curve.abs().max() <= 1


def test_enhancer_modes():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16) * 0.1
    art = llie.IlluminationEnhancer("article")
    ret = llie.IlluminationEnhancer("retinex")
    ret.load_state_dict(art.state_dict())
    ya, yr = art(x), ret(x)
    assert ya.max() <= 0.5 + 1e-6          # the article's blend can never pass mid-grey from a dark input
    assert (yr >= x - 1e-7).all() and yr.max() <= 1
    with pytest.raises(ValueError, match="mode"):
        llie.IlluminationEnhancer("magic")


@pytest.mark.parametrize("kind", ["black", "white", "random"])
def test_losses_finite_with_finite_gradients(kind):
    torch.manual_seed(1)
    x = {"black": torch.zeros(2, 3, 32, 32), "white": torch.ones(2, 3, 32, 32), "random": torch.rand(2, 3, 32, 32)}[kind]
    m = llie.ZeroDCEpp()
    loss = llie.ZeroReferenceLoss()
    total, terms = loss(m(x), x, m.last_curve)
    total.backward()
    assert torch.isfinite(total) and all(np.isfinite(v) for v in terms.values())
    for p in m.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
    # colour term on a perfectly grey image: zero value AND finite gradient (no sqrt at 0)
    grey = torch.full((1, 3, 16, 16), 0.4, requires_grad=True)
    c = llie.ZeroReferenceLoss.colour(grey)
    c.backward()
    assert c.item() == 0 and torch.isfinite(grey.grad).all()


def test_loss_terms_behave():
    loss = llie.ZeroReferenceLoss()
    x = torch.rand(1, 3, 32, 32)
    assert loss.spatial(x, x).item() == pytest.approx(0, abs=1e-12)
    assert loss.exposure(torch.full((1, 3, 32, 32), 0.6)).item() == pytest.approx(0, abs=1e-6)
    assert loss.exposure(torch.full((1, 3, 32, 32), 0.1)).item() == pytest.approx(0.5, abs=1e-6)
    assert loss.smoothness(torch.ones(1, 3, 8, 8)).item() == 0
    with pytest.raises(ValueError, match="at least 16x16"):
        loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


class _TinyMatting(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 3, padding=1)

    def forward(self, x):
        return torch.sigmoid(self.conv(x))


def test_freeze_flags_stop_gradients():
    m = llie.TwoStageModel(llie.ZeroDCEpp(), _TinyMatting())
    m.freeze_llie(True)
    m.train()
    assert not m.llie.training  # a frozen LLIE stays in eval mode
    m(torch.rand(1, 3, 16, 16)).mean().backward()
    assert all(p.grad is None for p in m.llie.parameters())
    assert all(p.grad is not None for p in m.matting.parameters())
    m.zero_grad(set_to_none=True)
    m.freeze_llie(False).freeze_matting(True)
    m(torch.rand(1, 3, 16, 16)).mean().backward()
    assert all(p.grad is not None for p in m.llie.parameters())
    assert all(p.grad is None for p in m.matting.parameters())


def test_pretraining_brightens_low_light_towards_E():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    from skimage import data
    import cv2

    photos = [cv2.resize(im, (32, 32), interpolation=cv2.INTER_AREA) for im in (data.astronaut(), data.coffee(), data.chelsea())]
    lows = [sim.simulate(p, sim.sample_params(rng), rng=rng) for p in photos for _ in range(3)]
    x = torch.from_numpy(np.stack(lows)).permute(0, 3, 1, 2).float() / 255
    m = llie.ZeroDCEpp()
    before = llie.ZeroReferenceLoss().exposure(x).item()
    hist = llie.pretrain_llie(m, x, steps=30, lr=3e-3)
    with torch.no_grad():
        y = m(x)
    assert torch.isfinite(y).all()
    assert y.mean() > x.mean() + 0.15                        # brighter ...
    assert abs(y.mean().item() - 0.6) < abs(x.mean().item() - 0.6)   # ... and closer to E = 0.6
    assert llie.ZeroReferenceLoss().exposure(y).item() < before
    assert hist[-1]["total"] < hist[0]["total"]
