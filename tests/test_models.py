"""lowlight.models: encoder registry, CVUNet, the factory (create_model, model_from_checkpoint),
weights-only loading, MODNet equivalence, measurement."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from lowlight import io, models as M
from lowlight.models import encoders as E
from _toys import Evil

pytestmark = pytest.mark.usefixtures("one_thread")

ENCODERS = ["mobilenetv2", "convnext_t", "swin_t"]


@pytest.fixture(scope="module")
def cvunets() -> dict:
    """One randomly initialised CVUNet per encoder, shared by the read-only tests."""
    torch.manual_seed(0)
    return {name: M.CVUNet(name) for name in ENCODERS}


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- registry / encoders
def test_registry_resolves_names_and_aliases():
    assert M.resolve_encoder("mobilenetv2").timm_name == "mobilenetv2_100"
    assert M.resolve_encoder("ConvNeXt_T").timm_name == "convnext_tiny"
    assert M.resolve_encoder("swin_t").timm_name == "swin_tiny_patch4_window7_224"
    assert M.resolve_encoder("swin_tiny_patch4_window7_224").name == "swin_tiny_patch4_window7_224"
    with pytest.raises(ValueError, match="unknown encoder 'vgg'.*mobilenetv2_100"):
        M.resolve_encoder("vgg")


def test_a_fourth_encoder_is_one_registry_entry(monkeypatch):
    monkeypatch.setattr(E, "ENCODERS", type(E.ENCODERS)(E.ENCODERS))   # the registry lives in .encoders
    monkeypatch.setattr(E, "_ALIASES", dict(E._ALIASES))
    M.register_encoder(M.EncoderSpec(name="resnet18", timm_name="resnet18", aliases=("r18",),
                                     description="test"))
    model = M.CVUNet("r18").eval()
    with torch.no_grad():
        alpha = model(_rand(1, 3, 40, 72))
    assert alpha.shape == (1, 1, 40, 72)
    with pytest.raises(ValueError, match="already registered"):
        M.register_encoder(M.EncoderSpec(name="other", timm_name="x", aliases=("swin_t",), description=""))
    assert M.resolve_encoder("r18").name == "resnet18"


def test_the_fourth_encoder_did_not_leak_into_the_registry():
    with pytest.raises(ValueError, match="unknown encoder"):
        M.resolve_encoder("r18")


@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_returns_nchw_features_with_declared_channels_and_strides(name, cvunets):
    enc = cvunets[name].encoder.eval()
    x = _rand(1, 3, 64, 96)
    with torch.no_grad():
        feats = enc(x)
    assert len(feats) == len(enc.channels) == len(enc.strides)
    for f, c, s in zip(feats, enc.channels, enc.strides):
        assert tuple(f.shape) == (1, c, 64 // s, 96 // s)
    assert enc.strides[-3:] == (8, 16, 32)


def _swin_blocks(encoder) -> dict:
    """``{stage index: [SwinTransformerBlock, ...]}`` of a Swin encoder's timm body."""
    import re

    stages: dict[int, list] = {}
    for name, m in encoder.body.named_modules():
        if type(m).__name__ == "SwinTransformerBlock":
            k = int(re.search(r"layers[._](\d+)", name).group(1))
            stages.setdefault(k, []).append(m)
    return stages


def test_swin_at_512_shifts_its_windows_in_every_stage(cvunets):
    """At the article's 512² the last stage sees 16 x 16 tokens: its 7 x 7 windows must be shifted
    in every second block, or the windows never exchange information. Shapes alone cannot see
    this (a Swin built for 224 gives the same shapes with no shift in its last stage)."""
    enc = cvunets["swin_t"].encoder
    stages = _swin_blocks(enc)
    assert sorted(stages) == [0, 1, 2, 3]
    sides = {0: 128, 1: 64, 2: 32, 3: 16}
    for k, blocks in stages.items():
        for b in blocks:
            assert tuple(b.input_resolution) == (sides[k], sides[k]), (k, b.input_resolution)
            assert max(b.window_size) < sides[k]                  # more than one window per side
        shifts = [max(b.shift_size) for b in blocks]
        assert shifts[0::2] == [0] * len(shifts[0::2]) and all(s > 0 for s in shifts[1::2]), (k, shifts)
    last = stages[3]
    assert max(last[-1].shift_size) > 0 and tuple(last[-1].shift_size) == (3, 3)
    with torch.no_grad():
        feats = enc.eval()(_rand(1, 3, 512, 512))
    assert [tuple(f.shape[-2:]) for f in feats] == [(128, 128), (64, 64), (32, 32), (16, 16)]
    # the trap it guards against: built for 224, the last stage has one window and no shift
    wrong = _swin_blocks(M.create_encoder("swin_t", img_size=224))[3]
    assert all(max(b.shift_size) == 0 for b in wrong)


# --------------------------------------------------------------------------- the factory
def test_create_model_builds_every_registered_name():
    assert set(M.MODELS) >= {"modnet", "cvunet", "cvunet_convnext", "cvunet_swin"}
    torch.manual_seed(0)
    m = M.create_model("cvunet", pretrained=False)
    assert isinstance(m, M.CVUNet) and m.encoder.name == "mobilenetv2_100"
    assert M.model_arch(m) == {"model": "cvunet", "llie": None}
    two = M.create_model("cvunet", pretrained=False, llie="zerodce")
    assert M.model_arch(two) == {"model": "cvunet", "llie": "zerodce"}
    assert hasattr(two, "llie") and hasattr(two, "matting")
    with torch.no_grad():
        assert two.eval()(_rand(1, 3, 40, 56)).shape == (1, 1, 40, 56)
    with pytest.raises(ValueError, match="model 'unet'.*modnet"):
        M.create_model("unet")
    with pytest.raises(ValueError, match="llie"):
        M.create_model("cvunet", pretrained=False, llie="retinex")
    with pytest.raises(ValueError, match="without llie"):
        M.create_model("cvunet", pretrained=False, llie_checkpoint="x.pt")
    with pytest.raises(ValueError, match="MobileNetV2 encoder only"):
        M.create_model("cvunet_convnext", pretrained="modnet")
    with pytest.raises(ValueError, match="not built by"):
        M.model_arch(torch.nn.Linear(2, 2))


def test_create_model_modnet_is_the_shipped_network(modnet_path):
    m = M.create_model("modnet")
    assert M.model_arch(m) == {"model": "modnet", "llie": None}
    assert m.pretrained_from == "modnet" and m.frozen_bn
    with pytest.raises(ValueError, match="MODNet takes True"):
        M.create_model("modnet", pretrained="weights.pt")


def test_model_from_checkpoint_rebuilds_the_stored_network(tmp_path):
    torch.manual_seed(1)
    two = M.create_model("cvunet", pretrained=False, llie="zerodce")
    io.save_checkpoint(tmp_path / "two.pt", {"model": two.state_dict(), "arch": M.model_arch(two)})
    back = M.model_from_checkpoint(tmp_path / "two.pt")
    assert M.model_arch(back) == M.model_arch(two) and not back.training
    assert io.weights_digest(back) == io.weights_digest(two)
    # no "arch": named, with where a usable checkpoint comes from
    io.save_checkpoint(tmp_path / "noarch.pt", {"model": two.matting.state_dict()})
    with pytest.raises(io.CheckpointError, match=r"noarch\.pt.*'arch'"):
        M.model_from_checkpoint(tmp_path / "noarch.pt")
    # notebook 04's LLIE-only checkpoint is recognised as such
    io.save_checkpoint(tmp_path / "zerodce.pt", {"model": two.llie.state_dict()})
    with pytest.raises(io.CheckpointError, match=r"zerodce\.pt.*LLIE-only"):
        M.model_from_checkpoint(tmp_path / "zerodce.pt")
    # an "arch" that does not match the weights
    io.save_checkpoint(tmp_path / "liar.pt", {"model": two.matting.state_dict(),
                                              "arch": {"model": "cvunet_convnext", "llie": None}})
    with pytest.raises(io.CheckpointError, match=r"liar\.pt.*do not fit model 'cvunet_convnext'"):
        M.model_from_checkpoint(tmp_path / "liar.pt")


# --------------------------------------------------------------------------- CVUNet
@pytest.mark.parametrize("size", [(512, 512), (200, 312)])
@pytest.mark.parametrize("name", ENCODERS)
def test_alpha_has_input_shape_and_range(name, size, cvunets):
    model = cvunets[name].eval()
    with torch.no_grad():
        alpha = model(_rand(1, 3, *size))
    assert tuple(alpha.shape) == (1, 1, *size)
    assert alpha.dtype == torch.float32
    assert torch.isfinite(alpha).all() and alpha.min() >= 0 and alpha.max() <= 1


def test_output_depends_on_the_input(cvunets):
    model = cvunets["mobilenetv2"].eval()
    x = _rand(1, 3, 70, 90)
    with torch.no_grad():
        a = model(x)
        b = model(x.flip(-1))
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("name", ENCODERS)
def test_gradients_reach_every_trainable_parameter(name, cvunets):
    model = cvunets[name].train()
    model.zero_grad(set_to_none=True)
    alpha = model(_rand(2, 3, 64, 64))
    (alpha - _rand(2, 1, 64, 64, seed=1)).pow(2).mean().backward()
    no_grad = [n for n, p in model.named_parameters()
               if p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.abs().sum() > 0]
    assert no_grad == []
    model.zero_grad(set_to_none=True)


def test_param_groups_partition_all_parameters_in_forward_order(cvunets):
    model = cvunets["mobilenetv2"]
    groups = model.param_groups()
    assert list(groups) == [f"encoder.stage{k}" for k in range(1, 6)] + ["decoder", "head"]
    ids = [id(p) for ps in groups.values() for p in ps]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert all(len(ps) > 0 for ps in groups.values())
    assert list(cvunets["swin_t"].param_groups())[:5] == [f"encoder.stage{k}" for k in range(1, 5)] + ["decoder"]
    named = model.named_param_groups()
    assert named["encoder.stage1"][0][0] == "encoder.body.conv_stem.weight"   # stem goes with stage 1
    assert all(n.startswith("head.") for n, _ in named["head"])


def test_freeze_head_only_and_first_three_stages():
    torch.manual_seed(0)
    model = M.CVUNet("convnext_t")
    assert model.freeze_all_but("head") == ["head"]
    assert model.trainable_groups() == ["head"]
    model.train()
    bn = model.up16.fuse[1]                     # a batch-norm in the frozen decoder
    before = bn.running_mean.clone()
    model(_rand(2, 3, 64, 64)).mean().backward()
    assert torch.equal(bn.running_mean, before) and not bn.training
    for group, params in model.param_groups().items():
        for p in params:
            assert (p.grad is not None) == (group == "head"), group

    model.unfreeze("all")
    frozen = model.freeze(["encoder.stage1", "encoder.stage2", "encoder.stage3"])
    assert frozen == ["encoder.stage1", "encoder.stage2", "encoder.stage3"]
    assert model.trainable_groups() == ["encoder.stage4", "decoder", "head"]
    assert model.freeze("encoder") == [f"encoder.stage{k}" for k in range(1, 5)]
    with pytest.raises(ValueError, match="unknown parameter group 'neck'"):
        model.freeze("neck")


def test_bad_inputs_are_rejected_clearly(cvunets):
    model = cvunets["mobilenetv2"].eval()
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        model(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="float RGB in \\[0, 1\\]"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="not allowed"):
        M.create_encoder("swin_t", pretrained=True)


# --------------------------------------------------------------------------- weights-only loading
def test_state_dict_round_trip_through_files(tmp_path):
    enc = M.create_encoder("mobilenetv2")
    with torch.no_grad():
        enc.body.conv_stem.weight.mul_(3.0)              # differ from any fresh init
    torch.save(enc.state_dict(), tmp_path / "enc.pth")
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in enc.state_dict().items()}, str(tmp_path / "enc.safetensors"))
    for f in ("enc.pth", "enc.safetensors"):
        loaded = M.create_encoder("mobilenetv2", pretrained=tmp_path / f)
        assert loaded.state_dict().keys() == enc.state_dict().keys()
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), enc.state_dict().values()))
        assert f in loaded.pretrained_from
    model = M.CVUNet(M.create_encoder("mobilenetv2", pretrained=str(tmp_path / "enc.pth")))
    assert torch.equal(model.encoder.body.conv_stem.weight, enc.body.conv_stem.weight)
    with pytest.raises(ValueError, match="random weights only.*create_encoder"):   # the class loads nothing
        M.CVUNet("mobilenetv2", pretrained=str(tmp_path / "enc.pth"))


def test_timm_classification_checkpoint_loads_into_the_encoder(tmp_path):
    import timm

    full = timm.create_model("mobilenetv2_100").eval()
    torch.save({"state_dict": full.state_dict()}, tmp_path / "timm.pth")   # a wrapped checkpoint
    enc = M.create_encoder("mobilenetv2", pretrained=tmp_path / "timm.pth").eval()
    x = _rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = full.forward_intermediates((x - enc.mean) / enc.std, intermediates_only=True)
        ours = enc(x)
    assert all(torch.equal(a, b) for a, b in zip(ours, ref))


def test_a_pickled_object_is_refused_and_not_executed(tmp_path):
    evil = Evil(str(tmp_path / "pwned"))
    path = tmp_path / "evil.pth"
    torch.save({"conv_stem.weight": torch.zeros(1), "x": evil}, path)
    with pytest.raises(ValueError, match="refused.*pickled Python objects"):
        M.load_weights_file(path)
    assert not os.path.exists(evil.marker)
    torch.load(path, weights_only=False)          # the file really is harmful when unpickled
    assert os.path.exists(evil.marker)
    # a pickle without tensors at all is not a state dict either
    torch.save({"a": 1}, tmp_path / "plain.pth")
    with pytest.raises(ValueError, match="not a state dict of tensors"):
        M.load_weights_file(tmp_path / "plain.pth")


def test_corrupt_and_missing_files_give_clear_errors(tmp_path):
    enc = M.create_encoder("mobilenetv2")
    good = tmp_path / "good.pth"
    torch.save(enc.state_dict(), good)
    data = good.read_bytes()
    cases = {
        "truncated.pth": data[: len(data) // 2],
        "noise.pth": bytes(range(256)) * 8,
        "noise.safetensors": b"\xff" * 64,
        "empty.pth": b"",
    }
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(ValueError, match=name.replace(".", r"\.")) as info:
            M.create_encoder("mobilenetv2", pretrained=tmp_path / name)
        assert any(w in str(info.value) for w in ("corrupt", "empty")), str(info.value)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        M.create_encoder("mobilenetv2", pretrained=tmp_path / "missing.pth")


def test_shape_mismatch_names_the_key(tmp_path):
    sd = M.create_encoder("mobilenetv2").state_dict()
    key = "body.blocks.2.0.conv_pw.weight"
    sd[key] = torch.zeros(7, *sd[key].shape[1:])
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"shape mismatch for key 'body\.blocks\.2\.0\.conv_pw\.weight'"):
        M.create_encoder("mobilenetv2", pretrained=tmp_path / "bad.pth")
    # a checkpoint of another architecture, in timm's layout, names what does not fit
    import timm
    torch.save(timm.create_model("resnet18").state_dict(), tmp_path / "resnet.pth")
    with pytest.raises(ValueError, match=r"do not fit encoder 'mobilenetv2_100'.*missing keys.*conv_stem"):
        M.create_encoder("mobilenetv2", pretrained=tmp_path / "resnet.pth")


# --------------------------------------------------------------------------- MODNet
def test_modnet_encoder_equals_the_onnx_model(modnet_path):
    res = M.verify_modnet_encoder(size=512, onnx_path=modnet_path)
    diffs = res["max_abs_diff"]
    assert set(diffs) == {2, 4, 8, 16, 32, "head1280"}
    assert max(diffs.values()) <= 1e-4, diffs
    assert min(res["max_abs_value"].values()) > 1.0           # features are not trivially small


def test_cvunet_modnet_uses_modnet_normalisation_and_weights(modnet_path):
    model = M.create_model("cvunet", pretrained="modnet").eval()
    assert model.encoder.pretrained_from == "modnet"
    assert torch.allclose(model.encoder.mean.flatten(), torch.full((3,), 0.5))
    assert torch.allclose(model.encoder.std.flatten(), torch.full((3,), 0.5))
    entries = M.modnet_encoder_weights(modnet_path)
    assert len(entries) == 52
    w = torch.from_numpy(entries[0]["weight"])
    assert torch.equal(model.encoder.body.conv_stem.weight, w)
    # the normalisation travels with a checkpoint
    sd = model.state_dict()
    fresh = M.CVUNet("mobilenetv2")
    fresh.load_state_dict(sd)
    assert torch.allclose(fresh.encoder.mean.flatten(), torch.full((3,), 0.5))
    with pytest.raises(ValueError, match="MobileNetV2 encoder only"):
        M.load_modnet_into_encoder(M.create_encoder("convnext_t"), modnet_path)
    with pytest.raises(ValueError, match="not a known source"):
        M.create_encoder("convnext_t", pretrained="modnet")


# --------------------------------------------------------------------------- layering of lowlight.models
#: architecture module -> a statement that builds something from it (``mod`` is the module)
ARCHITECTURE = {"groups": "mod.GroupedModule()", "encoders": "mod.build_encoder('mobilenetv2')",
                "modnet": "mod.MODNet()", "cvunet": "mod.CVUNet('mobilenetv2')", "llie": "mod.ZeroDCEpp()",
                "u2netp": "mod.U2NetP()"}


@pytest.mark.parametrize("module", list(ARCHITECTURE))
def test_architecture_modules_import_no_weights_code(module):
    """Importing (and building from) an architecture module in a fresh interpreter leaves the
    weights loaders and the builders unimported: the architecture layer loads nothing."""
    import subprocess
    import sys

    code = (f"import sys\nimport lowlight.models.{module} as mod\n{ARCHITECTURE[module]}\n"
            "print(sorted(m for m in sys.modules if m.startswith(('lowlight.models.weights', "
            "'lowlight.models.factory', 'lowlight.assets', 'lowlight.io'))))")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def _models_imports() -> dict[str, list[tuple[str, list[str]]]]:
    """``lowlight.models`` module -> [(imported lowlight module, imported names)], read from the
    source (imports inside functions included)."""
    import ast

    root = Path(M.__file__).parent
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_pkg else parts)
        package = name.split(".") if is_pkg else name.split(".")[:-1]
        found[name] = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("lowlight")):
                base = package[:len(package) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                found[name].append((target, [a.name for a in node.names]))
            elif isinstance(node, ast.Import):
                found[name] += [(a.name, []) for a in node.names if a.name.startswith("lowlight")]
    return found


def test_models_has_no_import_cycle_and_no_private_imports():
    imports = _models_imports()
    private = [(mod, target, n) for mod, items in imports.items() for target, names in items
               for n in names if n.startswith("_")]
    assert private == []

    def node(mod):   # the weights package is one home: its files count as one node
        return "lowlight.models.weights" if mod.startswith("lowlight.models.weights") else mod

    edges: dict[str, set[str]] = {}
    for mod, items in imports.items():
        for target, names in items:
            for t in [target] + [f"{target}.{n}" for n in names if f"{target}.{n}" in imports]:
                if t.startswith("lowlight.models.") and node(t) != node(mod):
                    edges.setdefault(node(mod), set()).add(node(t))
    assert "lowlight.models.weights" in edges["lowlight.models.factory"]

    def reaches(start, goal, seen=()):
        return any(n == goal or (n not in seen and reaches(n, goal, (*seen, n))) for n in edges.get(start, ()))

    assert [m for m in edges if reaches(m, m)] == []
    for arch in ARCHITECTURE:
        for loader in ("lowlight.models.weights", "lowlight.models.factory"):
            assert not reaches(f"lowlight.models.{arch}", loader), (arch, loader)


# --------------------------------------------------------------------------- measurement
def test_count_macs_matches_the_convolution_formula():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert M.count_macs(conv, torch.rand(1, 3, 16, 20)) == 16 * 20 * 8 * 3 * 9
    lin = torch.nn.Linear(10, 4)
    assert M.count_macs(lin, torch.rand(5, 10)) == 5 * 10 * 4
    assert M.count_parameters(conv) == 8 * 3 * 9


def test_latency_and_peak_memory_report_positive_numbers():
    res = M.measure_latency(torch.nn.Conv2d(3, 4, 3), torch.rand(1, 3, 32, 32), repeats=3)
    assert len(res["times_s"]) == 3 and 0 < res["min_s"] <= res["median_s"]
    mem = M.peak_rss_subprocess(kind="encoder", name="mobilenetv2", size=64, threads=1)
    assert mem["peak_mb"] >= mem["before_mb"] > 50          # torch alone is > 50 MB resident
    assert mem["forward_mb"] == mem["peak_mb"] - mem["before_mb"]
    with pytest.raises(ValueError, match="kind"):
        M.peak_rss_subprocess("gpu", "x")
    assert not hasattr(M, "available_encoders")            # removed: the registry is M.ENCODERS


def test_measure_train_step_updates_the_model_and_reports_throughput():
    torch.manual_seed(0)
    model = M.CVUNet("mobilenetv2")
    before = model.head.out.weight.detach().clone()
    res = M.measure_train_step(model, batch_size=2, size=32, steps=1, warmup=0)
    assert res["samples_per_s"] > 0 and res["step_s"] > 0
    assert not torch.equal(model.head.out.weight, before)


def test_keep_bn_eval_pins_batch_norm_of_trained_groups():
    torch.manual_seed(0)
    model = M.CVUNet("mobilenetv2")
    assert model.keep_bn_eval("encoder") == [f"encoder.stage{k}" for k in range(1, 6)]
    model.train()
    enc_bns = [m for m in model.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    dec_bn = model.up8.fuse[1]
    stats = [b.running_mean.clone() for b in enc_bns]
    model(_rand(2, 3, 64, 64)).mean().backward()
    assert all(not b.training for b in enc_bns) and dec_bn.training
    assert all(torch.equal(a, b.running_mean) for a, b in zip(stats, enc_bns))
    assert model.encoder.body.conv_stem.weight.grad is not None      # still trains
    model.keep_bn_eval(())
    model.train()
    assert all(b.training for b in enc_bns)
