"""lowlight.export: a fine-tuned-like MODNet checkpoint exported to ONNX equals PyTorch at any size
(padding inside the graph), the brightness switch as two graphs and a manifest routes dark and bright
images like the PyTorch switch, ``predict --onnx`` writes the mattes ``predict --checkpoint`` does,
and bad inputs are one-line errors with exit status 2 that write nothing and overwrite nothing."""
from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import pytest
import torch

from lowlight import export, predict
from lowlight.data import read_alpha, read_image
from lowlight.inference import BrightnessSwitch, OnnxModel, OnnxModelError, load_onnx_predictor, matte_image
from lowlight.io import save_checkpoint
from lowlight.models import create_model, model_arch

pytestmark = pytest.mark.usefixtures("one_thread")

SIZES = "96x96,77x131"        # the CLI's check sizes here: small for the CPU, one non-square non-multiple of 32


def _fine_tuned_like():
    """The shipped MODNet with a few weights moved deterministically (no training)."""
    model = create_model("modnet")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            if i % 25 == 0:
                p.add_(0.05 * p.abs().mean() * torch.randn(p.shape, generator=gen))
        model.fusion.conv_f[1].bias.add_(1.5)       # a visibly different matte
    return model.eval()


@pytest.fixture(scope="module")
def ft(tmp_path_factory, modnet_path):
    """The fine-tuned-like model, its course checkpoint and its CLI export (``--check-sizes`` small)."""
    d = tmp_path_factory.mktemp("export")
    model = _fine_tuned_like()
    ckpt = d / "ft.pt"
    save_checkpoint(ckpt, {"model": model.state_dict(), "arch": model_arch(model)})
    onnx_path = d / "ft.onnx"
    rc = export.main(["--checkpoint", str(ckpt), "--out", str(onnx_path), "--check-sizes", SIZES])
    assert rc == 0 and onnx_path.is_file()
    return {"model": model, "ckpt": ckpt, "onnx": onnx_path, "dir": d}


def _portrait() -> np.ndarray:
    """A real portrait (scikit-image's astronaut, RGB uint8) at 101 x 150: odd, non-square."""
    from skimage import data

    return cv2.resize(data.astronaut(), (150, 101), interpolation=cv2.INTER_AREA)


def _photos(d, name="in"):
    """The portrait bright and dark (mean luminance about 0.45 and 0.05), as PNG files."""
    folder = d / name
    folder.mkdir()
    bgr = cv2.cvtColor(_portrait(), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(folder / "bright.png"), bgr)
    cv2.imwrite(str(folder / "dark.png"), (bgr * 0.12).astype(np.uint8))
    return folder


def _no_temp_left(folder):
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".part")]


# --------------------------------------------------------------------------- the graph
def test_export_equals_pytorch_at_two_sizes_and_any_batch(ft, capsys):
    rows = export.check_onnx(ft["model"], ft["onnx"], sizes=((128, 128), (75, 133)))
    for r in rows:
        assert r["mean"] <= export.MEAN_TOL and r["max"] <= export.MAX_TOL, rows
    face = torch.from_numpy(_portrait()[:45, 40:110].transpose(2, 0, 1).copy()).float() / 255
    x = torch.stack([face, torch.rand(3, 45, 70, generator=torch.Generator().manual_seed(3))])  # padded inside
    with torch.inference_mode():
        ref = ft["model"](x)
    got = OnnxModel(ft["onnx"], threads=1)(x)
    assert got.shape == (2, 1, 45, 70) and float((got - ref).abs().max()) <= export.MAX_TOL
    # the fine-tuned weights were exported, not the shipped ones
    with torch.inference_mode():
        assert float((create_model("modnet")(x) - got).abs().mean()) > 0.01


def test_the_graph_has_the_documented_interface(ft):
    proto = onnx.load(str(ft["onnx"]))
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "image" and out.name == "alpha"
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims[1] == 3 and all(isinstance(d, str) and d for d in (dims[0], dims[2], dims[3])), dims
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["lowlight.model"] == "modnet" and meta["lowlight.source"] == str(ft["ckpt"])
    assert {i.domain or "ai.onnx" for i in proto.opset_import} == {"ai.onnx"}
    assert proto.opset_import[0].version == export.DEFAULT_OPSET


def test_the_cli_prints_the_check_numbers(ft, capsys):
    out = ft["dir"] / "again.onnx"
    out.write_bytes(b"the user named this file: it may be replaced")
    assert export.main(["--checkpoint", str(ft["ckpt"]), "--out", str(out), "--check-sizes", "64x64,45x70"]) == 0
    text = capsys.readouterr().out
    assert "64x64: mean |diff|" in text and "45x70: mean |diff|" in text and "max <= 0.001" in text
    assert OnnxModel(out).arch == {"model": "modnet", "llie": None}
    _no_temp_left(ft["dir"])


def test_a_failed_check_exits_1_with_the_numbers_and_leaves_nothing(ft, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(export, "MAX_TOL", 0.0)     # no float export is bit-exact: the check must fail
    out = tmp_path / "model.onnx"
    out.write_bytes(b"keep")
    assert export.main(["--checkpoint", str(ft["ckpt"]), "--out", str(out), "--check-sizes", "64x64"]) == 1
    err = capsys.readouterr().err
    assert "64x64: mean |diff|" in err and "nothing was written" in err and err.count("\n") == 1
    assert out.read_bytes() == b"keep"
    _no_temp_left(tmp_path)


# --------------------------------------------------------------------------- predict --onnx
def test_predict_onnx_writes_the_mattes_of_predict_checkpoint(ft, tmp_path, capsys):
    inp = _photos(tmp_path)
    args = ["--input", str(inp), "--no-progress"]
    assert predict.main(["--checkpoint", str(ft["ckpt"]), "--output", str(tmp_path / "pt"), *args]) == 0
    assert predict.main(["--onnx", str(ft["onnx"]), "--output", str(tmp_path / "ox"), *args]) == 0
    cap = capsys.readouterr()
    assert "exported to ONNX" in cap.err and "done: 2 image(s) matted, 0 failed" in cap.out
    for name in ("bright", "dark"):
        a = read_alpha(tmp_path / "pt" / f"{name}_alpha.png").astype(int)
        b = read_alpha(tmp_path / "ox" / f"{name}_alpha.png").astype(int)
        assert a.shape == (101, 150) and np.abs(a - b).max() <= 1
        rgba = cv2.imread(str(tmp_path / "ox" / f"{name}_rgba.png"), cv2.IMREAD_UNCHANGED)
        assert rgba.shape == (101, 150, 4)


# --------------------------------------------------------------------------- the brightness switch
def test_the_switch_routes_dark_and_bright_images_like_pytorch(ft, tmp_path, capsys):
    manifest = tmp_path / "switch.json"
    rc = export.main(["--low-light-checkpoint", str(ft["ckpt"]), "--threshold", "0.2", "--out", str(manifest),
                      "--check-sizes", "64x64,45x70"])
    assert rc == 0, capsys.readouterr().err
    state = json.loads(manifest.read_text())
    assert state["threshold"] == 0.2 and state["luminance"]["weights"] == [0.2126, 0.7152, 0.0722]
    assert state["normal"]["file"] == "switch.normal.onnx" and state["low_light"]["file"] == "switch.low.onnx"
    normal, low, threshold = load_onnx_predictor(manifest, threads=1)
    assert threshold == 0.2 and low.metadata["lowlight.source"] == str(ft["ckpt"])
    inp = _photos(tmp_path)
    switch = BrightnessSwitch(normal, low, threshold)
    dark, bright = read_image(inp / "dark.png"), read_image(inp / "bright.png")
    shipped = create_model("modnet")
    assert np.abs(matte_image(low, dark).astype(int) - matte_image(ft["model"], dark)).max() <= 1
    assert np.abs(matte_image(normal, bright).astype(int) - matte_image(shipped, bright)).max() <= 1
    assert np.abs(matte_image(low, dark).astype(int) - matte_image(normal, dark)).max() > 10
    assert np.abs(matte_image(switch, dark).astype(int) - matte_image(ft["model"], dark)).max() <= 1
    args = ["--input", str(inp), "--no-progress"]
    assert predict.main(["--onnx", str(manifest), "--output", str(tmp_path / "ox"), *args]) == 0
    assert predict.main(["--low-light-checkpoint", str(ft["ckpt"]), "--threshold", "0.2",
                         "--output", str(tmp_path / "pt"), *args]) == 0
    out = capsys.readouterr().out
    assert out.count("dark.png: low-light model") == 2 and out.count("bright.png: normal model") == 2
    for name in ("bright", "dark"):
        a = read_alpha(tmp_path / "pt" / f"{name}_alpha.png").astype(int)
        assert np.abs(a - read_alpha(tmp_path / "ox" / f"{name}_alpha.png")).max() <= 1
    # a graph changed after the export is refused by predict; exporting again replaces the switch's own files
    (tmp_path / "switch.low.onnx").write_bytes((tmp_path / "switch.normal.onnx").read_bytes())
    assert predict.main(["--onnx", str(manifest), "--output", str(tmp_path / "o2"), *args]) == 2
    assert "SHA-256" in capsys.readouterr().err
    with pytest.raises(OnnxModelError, match="SHA-256"):
        load_onnx_predictor(manifest)
    assert export.main(["--low-light-checkpoint", str(ft["ckpt"]), "--threshold", "0.2", "--out", str(manifest),
                        "--check-sizes", "64x64"]) == 0
    assert load_onnx_predictor(manifest)[1].metadata["lowlight.source"] == str(ft["ckpt"])
    _no_temp_left(tmp_path)


# --------------------------------------------------------------------------- bad inputs
def _refused(argv, capsys, *expected) -> str:
    assert export.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for text in expected:
        assert text in err, err
    return err


def test_bad_export_arguments_exit_2_and_overwrite_nothing(ft, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"keep")
    ck = ["--checkpoint", str(ft["ckpt"]), "--check-sizes", "64x64"]
    _refused([*ck, "--model", "cvunet", "--out", str(out)], capsys, "ft.pt", "'modnet'", "--model 'cvunet'")
    empty = tmp_path / "noweights.pt"
    save_checkpoint(empty, {"arch": {"model": "modnet", "llie": None}, "epoch": 3})
    _refused(["--checkpoint", str(empty), "--out", str(out)], capsys, "noweights.pt", "'model' state dict")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    _refused([*ck, "--out", str(blocker / "sub" / "m.onnx")], capsys, "--out", "cannot create or write")
    _refused([*ck, "--out", str(tmp_path)], capsys, "--out", "is a folder")
    _refused([*ck, "--threshold", "0.2", "--out", str(out)], capsys, "--low-light-checkpoint and --threshold")
    _refused([*ck, "--out", str(tmp_path / "model.pt")], capsys, "ending in .onnx")
    _refused([*ck, "--opset", "9", "--out", str(out)], capsys, "--opset 9")
    _refused([*ck, "--check-sizes", "8x8", "--out", str(out)], capsys, "--check-sizes 8x8")
    assert out.read_bytes() == b"keep" and sorted(p.name for p in tmp_path.iterdir()) == [
        "a-file", "model.onnx", "noweights.pt"]


def test_the_switch_never_overwrites_a_file_the_user_did_not_name(ft, tmp_path, capsys):
    foreign = tmp_path / "switch.low.onnx"
    foreign.write_bytes(b"someone else's")
    _refused(["--low-light-checkpoint", str(ft["ckpt"]), "--threshold", "0.2", "--out", str(tmp_path / "switch.json"),
              "--check-sizes", "64x64"], capsys, "switch.low.onnx", "already exists")
    _refused(["--low-light-checkpoint", str(ft["ckpt"]), "--threshold", "0.2", "--out", str(tmp_path / "s.onnx")],
             capsys, "ending in .json")
    assert foreign.read_bytes() == b"someone else's" and not (tmp_path / "switch.json").exists()


def test_predict_onnx_refuses_bad_files_and_mixed_options(ft, tmp_path, monkeypatch, capsys):
    inp = _photos(tmp_path)
    monkeypatch.setattr(predict, "load_predictor", lambda *a, **k: pytest.fail("no model may load"))
    o = ["--input", str(inp), "--output", str(tmp_path / "o")]
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    for bad, words in ((text, ("notes.onnx", "not an ONNX model")), (ft["ckpt"], ("ft.pt", "not an ONNX model")),
                       (tmp_path / "missing.onnx", ("missing.onnx", "no such file"))):
        assert predict.main(["--onnx", str(bad), *o]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and all(w in err for w in words), err
    shipped = tmp_path / "shipped.onnx"      # another interface: the graph takes x * 2 - 1 under 'input'
    shipped.write_bytes(onnx.load(str(ft["onnx"])).SerializeToString().replace(b"image", b"imagf"))
    assert predict.main(["--onnx", str(shipped), *o]) == 2
    assert "lowlight.export" in capsys.readouterr().err
    for extra in (["--checkpoint", str(ft["ckpt"])], ["--threshold", "0.2"], ["--model", "modnet"],
                  ["--device", "cuda"]):
        assert predict.main(["--onnx", str(ft["onnx"]), *extra, *o]) == 2
        assert "--onnx" in capsys.readouterr().err
    bad_json = tmp_path / "switch.json"
    bad_json.write_text(json.dumps({"format": "something else"}))
    assert predict.main(["--onnx", str(bad_json), *o]) == 2
    assert "not a brightness-switch manifest" in capsys.readouterr().err
    assert not list((tmp_path / "o").iterdir())
