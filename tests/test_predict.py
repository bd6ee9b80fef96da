"""lowlight.predict: the batch CLI on a temporary folder (good + corrupt files), sizes kept,
checkpoint kinds, the brightness switch, exit codes and errors."""
import sys

import cv2
import numpy as np
import pytest
import torch

from lowlight import predict, train
from lowlight.data import read_alpha, read_image


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """Two plain CV-UNet checkpoints with different weights, one LLIE + CV-UNet, one LLIE-only."""
    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    a = train.build_model("cvunet", pretrained=False)
    with torch.no_grad():            # make the two plain models clearly different
        b = train.build_model("cvunet", pretrained=False)
        b.head.out.bias.fill_(3.0)
    two = train.build_model("cvunet", pretrained=False, llie="zerodce")
    paths = {"a": d / "a.pt", "b": d / "b.pt", "llie": d / "llie.pt", "zerodce": d / "zerodce.pt"}
    train.save_checkpoint(paths["a"], {"model": a.state_dict()})
    train.save_checkpoint(paths["b"], {"model": b.state_dict()})
    train.save_checkpoint(paths["llie"], {"model": two.state_dict()})
    train.save_checkpoint(paths["zerodce"], {"model": two.llie.state_dict()})
    return paths


@pytest.fixture(scope="module")
def loaded(ckpts):
    """The two plain checkpoints loaded once, checking the detected kind."""
    out = {}
    for k in ("a", "b"):
        out[k], kind = predict.load_predictor(ckpts[k], device="cpu")
        assert kind == "plain"
    return out


def _folder(tmp_path, corrupt_only=False):
    d = tmp_path / "in"
    d.mkdir()
    rng = np.random.default_rng(0)
    if not corrupt_only:
        cv2.imwrite(str(d / "bright.png"), (rng.random((45, 70, 3)) * 255).astype(np.uint8))
        cv2.imwrite(str(d / "dark.jpg"), (rng.random((37, 29, 3)) * 30).astype(np.uint8))
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    if corrupt_only:
        (d / "empty.jpg").write_bytes(b"")
    (d / "readme.txt").write_text("not an image")
    return d


def test_cli_writes_mattes_and_cutouts_and_reports_the_corrupt_file(tmp_path, ckpts, loaded, capsys):
    inp, out = _folder(tmp_path), tmp_path / "out"
    rc = predict.main(["--checkpoint", str(ckpts["a"]), "--input", str(inp), "--output", str(out), "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 0
    assert "broken.png" in cap.err and "cannot read" in cap.err
    assert "2 image(s) matted, 1 failed" in cap.out
    for stem, ext in (("bright", "png"), ("dark", "jpg")):
        img = read_image(inp / f"{stem}.{ext}")
        alpha = read_alpha(out / f"{stem}_alpha.png")
        assert alpha.shape == img.shape[:2] and alpha.dtype == np.uint8
        rgba = cv2.imread(str(out / f"{stem}_rgba.png"), cv2.IMREAD_UNCHANGED)
        assert rgba.shape == (*img.shape[:2], 4)
        np.testing.assert_array_equal(rgba[..., 3], alpha)
        np.testing.assert_array_equal(cv2.cvtColor(rgba[..., :3], cv2.COLOR_BGR2RGB), img)
    assert not (out / "broken_alpha.png").exists()
    # the matte is the model's (8-bit) output for the image
    model = loaded["a"]
    np.testing.assert_array_equal(read_alpha(out / "bright_alpha.png"),
                                  predict.matte_image(model, read_image(inp / "bright.png")))


def test_cli_all_corrupt_exits_non_zero(tmp_path, ckpts, capsys):
    inp = _folder(tmp_path, corrupt_only=True)
    rc = predict.main(["--checkpoint", str(ckpts["a"]), "--input", str(inp), "--output", str(tmp_path / "o"),
                       "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 1
    assert "0 image(s) matted, 2 failed" in cap.out and "no image was matted" in cap.err


def test_bad_checkpoint_and_arguments(tmp_path, ckpts, capsys):
    inp = _folder(tmp_path)
    rc = predict.main(["--checkpoint", str(tmp_path / "missing.pt"), "--input", str(inp), "--output", str(tmp_path / "o")])
    assert rc == 2 and "missing.pt" in capsys.readouterr().err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"garbage")
    assert predict.main(["--checkpoint", str(junk), "--input", str(inp), "--output", str(tmp_path / "o")]) == 2
    assert "junk.pt" in capsys.readouterr().err
    with pytest.raises(train.CheckpointError, match="LLIE-only"):
        predict.load_predictor(ckpts["zerodce"])
    rc = predict.main(["--checkpoint", str(ckpts["a"]), "--input", str(inp), "--output", str(tmp_path / "o"),
                       "--threshold", "0.2"])
    assert rc == 2 and "--low-light-checkpoint" in capsys.readouterr().err
    rc = predict.main(["--checkpoint", str(ckpts["a"]), "--input", str(tmp_path / "nowhere"),
                       "--output", str(tmp_path / "o")])
    assert rc == 2 and "nowhere" in capsys.readouterr().err
    with pytest.raises(SystemExit):           # argparse: --checkpoint is required
        predict.main(["--input", str(inp), "--output", str(tmp_path / "o")])


def test_llie_checkpoint_is_detected(ckpts):
    model, kind = predict.load_predictor(ckpts["llie"], device="cpu")
    assert kind == "llie" and hasattr(model, "llie") and hasattr(model, "matting")


def test_brightness_switch_routes_dark_images_to_the_low_light_model(tmp_path, ckpts, loaded, capsys):
    inp, out = _folder(tmp_path), tmp_path / "out"
    rc = predict.main(["--checkpoint", str(ckpts["a"]), "--low-light-checkpoint", str(ckpts["b"]),
                       "--threshold", "0.2", "--input", str(inp), "--output", str(out), "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "dark.jpg: low-light model" in text and "bright.png: normal model" in text
    low, normal = loaded["b"], loaded["a"]
    dark = read_image(inp / "dark.jpg")
    np.testing.assert_array_equal(read_alpha(out / "dark_alpha.png"), predict.matte_image(low, dark))
    assert not np.array_equal(predict.matte_image(low, dark), predict.matte_image(normal, dark))


def test_output_names_and_max_side(loaded):
    from pathlib import Path

    names = predict.output_names([Path("a.png"), Path("a.jpg"), Path("b.png")])
    assert names == {Path("a.png"): "a_png", Path("a.jpg"): "a_jpg", Path("b.png"): "b"}
    model = loaded["a"]
    img = np.random.default_rng(1).integers(0, 256, (40, 90, 3), dtype=np.uint8)
    assert predict.matte_image(model, img, max_side=32).shape == (40, 90)


def test_module_entry_point(tmp_path, ckpts, monkeypatch, capsys):
    """``python -m lowlight.predict`` runs main() and exits with its status (run in-process
    with runpy: a subprocess would spend most of its time importing torch)."""
    import runpy
    import warnings

    inp, out = _folder(tmp_path), tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["lowlight.predict", "--checkpoint", str(ckpts["llie"]), "--input", str(inp),
                                      "--output", str(out), "--device", "cpu", "--no-progress"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # "found in sys.modules" from runpy
        with pytest.raises(SystemExit) as exc:
            runpy.run_module("lowlight.predict", run_name="__main__")
    assert exc.value.code == 0
    assert (out / "bright_alpha.png").is_file() and (out / "dark_rgba.png").is_file()
    assert "broken.png" in capsys.readouterr().err
