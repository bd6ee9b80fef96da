"""LLIE networks (lowlight.models.llie), zero-reference losses (lowlight.losses.zero_reference),
pretraining (lowlight.training.llie) and the two-stage model (notebook 04)."""
import numpy as np
import pytest
import torch

from lowlight import losses, simulate as sim
from lowlight.losses import ZeroReferenceLoss
from lowlight.models import count_parameters, llie
from lowlight.training.llie import pretrain_llie


def test_parameter_counts_pinned():
    # Zero-DCE++: 10,561 (the paper's figure); the article's illumination estimator: 149,731
    assert count_parameters(llie.ZeroDCEpp()) == 10_561
    assert count_parameters(llie.IlluminationEstimator()) == 149_731


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
    y, a = m.forward_with_map(x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    assert a.shape == x.shape and a.abs().max() <= 1
    assert torch.equal(m(x), y) and torch.equal(y, llie.light_enhancement_curve(x, a))


def test_no_per_call_state_and_explicit_scale():
    """forward keeps nothing on the module: the map is returned, the scale is an argument."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 40)
    for m in (llie.ZeroDCEpp(), llie.IlluminationEnhancer(), llie.IlluminationEnhancer("retinex")):
        before = {k: v for k, v in vars(m).items() if not k.startswith("_")}
        n_state = len(m.state_dict())
        m(x)
        m.forward_with_map(x)
        after = {k: v for k, v in vars(m).items() if not k.startswith("_")}
        assert after.keys() == before.keys() and len(m.state_dict()) == n_state, type(m).__name__
        assert not [k for k, v in vars(m).items() if isinstance(v, torch.Tensor)], type(m).__name__
    # scale: a constructor argument (read-only), overridable per call, never poked from outside
    m4 = llie.ZeroDCEpp(scale=4)
    m1 = llie.ZeroDCEpp()
    m1.load_state_dict(m4.state_dict())
    assert m4.scale == 4.0 and m1.scale == 1.0
    assert torch.equal(m1(x, scale=4), m4(x)) and torch.equal(m4(x, scale=1), m1(x))
    assert not torch.equal(m1(x), m4(x))
    with pytest.raises(AttributeError):
        m1.scale = 4
    for bad in (0.5, float("nan")):
        with pytest.raises(ValueError, match="scale"):
            m1(x, scale=bad)
        with pytest.raises(ValueError, match="scale"):
            llie.ZeroDCEpp(scale=bad)


def test_enhancer_modes():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16) * 0.1
    art = llie.IlluminationEnhancer("article")
    ret = llie.IlluminationEnhancer("retinex")
    ret.load_state_dict(art.state_dict())
    ya, yr = art(x), ret(x)
    assert ya.max() <= 0.5 + 1e-6          # the article's blend can never pass mid-grey from a dark input
    assert (yr >= x - 1e-7).all() and yr.max() <= 1
    (ya2, z), (yr2, z2) = art.forward_with_map(x), ret.forward_with_map(x)
    assert torch.equal(z, z2) and torch.equal(z, art.estimator(x))
    assert torch.equal(ya2, ya) and torch.equal(ya, llie.apply_illumination(x, z, "article"))
    assert torch.equal(yr2, yr) and torch.equal(yr, llie.apply_illumination(x, z, "retinex"))
    with pytest.raises(ValueError, match="mode"):
        llie.IlluminationEnhancer("magic")
    with pytest.raises(ValueError, match="mode"):
        llie.apply_illumination(x, z, "magic")


@pytest.mark.parametrize("kind", ["black", "white", "random"])
def test_losses_finite_with_finite_gradients(kind):
    torch.manual_seed(1)
    x = {"black": torch.zeros(2, 3, 32, 32), "white": torch.ones(2, 3, 32, 32), "random": torch.rand(2, 3, 32, 32)}[kind]
    m = llie.ZeroDCEpp()
    loss = ZeroReferenceLoss()
    enhanced, curve = m.forward_with_map(x)
    total, terms = loss(enhanced, x, curve)
    total.backward()
    assert torch.isfinite(total) and all(np.isfinite(v) for v in terms.values())
    for p in m.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
    # colour term on a perfectly grey image: zero value AND finite gradient (no sqrt at 0)
    grey = torch.full((1, 3, 16, 16), 0.4, requires_grad=True)
    c = ZeroReferenceLoss.colour(grey)
    c.backward()
    assert c.item() == 0 and torch.isfinite(grey.grad).all()


def test_loss_terms_behave():
    loss = ZeroReferenceLoss()
    x = torch.rand(1, 3, 32, 32)
    assert loss.spatial(x, x).item() == pytest.approx(0, abs=1e-12)
    assert loss.exposure(torch.full((1, 3, 32, 32), 0.6)).item() == pytest.approx(0, abs=1e-6)
    assert loss.exposure(torch.full((1, 3, 32, 32), 0.1)).item() == pytest.approx(0.5, abs=1e-6)
    assert loss.smoothness(torch.ones(1, 3, 8, 8)).item() == 0
    # the functional forms are the module's terms
    y, a = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert torch.equal(losses.spatial_consistency_loss(y, x.expand_as(y)), loss.spatial(y, x.expand_as(y)))
    assert torch.equal(losses.exposure_loss(y), loss.exposure(y))
    assert torch.equal(losses.colour_constancy_loss(y), loss.colour(y))
    assert torch.equal(losses.illumination_smoothness_loss(a), loss.smoothness(a))
    total, terms = loss(y, x.expand_as(y), a)
    assert float(total) == pytest.approx(terms["spa"] + terms["exp"] + 0.5 * terms["col"] + 20 * terms["tv"], rel=1e-6)
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
    before = ZeroReferenceLoss().exposure(x).item()
    hist = pretrain_llie(m, x, steps=30, lr=3e-3)
    with torch.no_grad():
        y = m(x)
    assert torch.isfinite(y).all()
    assert y.mean() > x.mean() + 0.15                        # brighter ...
    assert abs(y.mean().item() - 0.6) < abs(x.mean().item() - 0.6)   # ... and closer to E = 0.6
    assert ZeroReferenceLoss().exposure(y).item() < before
    assert hist[-1]["total"] < hist[0]["total"]
    assert not m.training                                     # left in eval mode
    with pytest.raises(TypeError, match="forward_with_map"):
        pretrain_llie(_TinyMatting(), x, steps=1)
