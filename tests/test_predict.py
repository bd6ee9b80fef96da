"""lowlight.predict: the batch CLI end to end with the default model (MODNet as shipped), course
checkpoints (plain, with Zero-DCE++, written by the trainer), unique output names, the brightness
switch, exit codes (0 / 1 / 2 / 3) and errors that name the file without a traceback."""
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lowlight import config, predict
from lowlight.data import read_alpha, read_image
from lowlight.inference import matte_image
from lowlight.io import CheckpointError, save_checkpoint
from lowlight.models import create_model, model_arch
from _toys import Evil, ToySet as _Toy

pytestmark = pytest.mark.usefixtures("one_thread")


def _save(path, model):
    save_checkpoint(path, {"model": model.state_dict(), "arch": model_arch(model)})
    return path


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """Two plain CV-UNet checkpoints with different weights, LLIE + CV-UNet, LLIE-only, and one
    written by the trainer (one step of stage 1)."""
    from lowlight.training import StageSpec, Trainer

    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    a = create_model("cvunet", pretrained=False)
    b = create_model("cvunet", pretrained=False)
    with torch.no_grad():            # make the two plain models clearly different
        b.head.out.bias.fill_(3.0)
    two = create_model("cvunet", pretrained=False, llie="zerodce")
    paths = {"a": _save(d / "a.pt", a), "b": _save(d / "b.pt", b), "llie": _save(d / "llie.pt", two)}
    paths["zerodce"] = d / "zerodce.pt"
    save_checkpoint(paths["zerodce"], {"model": two.llie.state_dict()})
    tr = Trainer(create_model("cvunet", pretrained=False), d / "run", config.get_profile("smoke"), device="cpu",
                 amp="off", batch_size=2, num_workers=0, progress=False, log=lambda *_: None)
    res = tr.run_stage(StageSpec("stage1", "head", 1e-3, 1, steps=1), _Toy(4))
    paths["trained"] = Path(res.checkpoint)
    assert paths["trained"].is_file()
    return paths


@pytest.fixture(scope="module")
def loaded(ckpts):
    """The two plain checkpoints loaded once (load_predictor returns the model only)."""
    out = {}
    for k in ("a", "b"):
        out[k] = predict.load_predictor(ckpts[k], device="cpu")
        assert isinstance(out[k], torch.nn.Module) and not out[k].training
        assert predict.describe(out[k]) == "CV-UNet (cvunet)"
    return out


def _folder(tmp_path, good=True, corrupt=True, name="in"):
    d = tmp_path / name
    d.mkdir()
    rng = np.random.default_rng(0)
    if good:
        cv2.imwrite(str(d / "bright.png"), (rng.random((45, 70, 3)) * 255).astype(np.uint8))
        cv2.imwrite(str(d / "dark.jpg"), (rng.random((37, 29, 3)) * 30).astype(np.uint8))
    if corrupt:
        (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    if corrupt and not good:
        (d / "empty.jpg").write_bytes(b"")
    (d / "readme.txt").write_text("not an image")
    return d


def _no_model(monkeypatch):
    """Make any model loading fail the test: errors must be found before."""
    def boom(*a, **k):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(predict, "load_predictor", boom)


# --------------------------------------------------------------------------- end to end
def test_cli_default_model_is_modnet_end_to_end(tmp_path):
    """``python -m lowlight.predict --input DIR --output OUT``: MODNet as shipped, real photo."""
    from skimage import data

    inp, out = tmp_path / "photos", tmp_path / "mattes"
    inp.mkdir()
    img = cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)   # MODNet needs ~256 px
    cv2.imwrite(str(inp / "astronaut.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(inp / "small.jpg"), cv2.cvtColor(img[:40, :48], cv2.COLOR_RGB2BGR))
    env = dict(os.environ, LOWLIGHT_PROFILE="smoke", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "lowlight.predict", "--input", str(inp), "--output", str(out),
                        "--no-progress"], capture_output=True, text=True, env=env, cwd=config.ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "model: MODNet as shipped" in r.stderr
    assert "2 image(s) matted, 0 failed" in r.stdout
    alpha = read_alpha(out / "astronaut_alpha.png")
    assert alpha.shape == (256, 256) and alpha.dtype == np.uint8
    assert alpha.std() > 60 and 0.2 < (alpha > 128).mean() < 0.8     # a person was found and cut out
    rgba = cv2.imread(str(out / "astronaut_rgba.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(rgba[..., 3], alpha)
    assert read_alpha(out / "small_alpha.png").shape == (40, 48)
    assert sorted(p.name for p in out.iterdir()) == ["astronaut_alpha.png", "astronaut_rgba.png",
                                                     "small_alpha.png", "small_rgba.png"]


def test_cli_writes_mattes_and_cutouts(tmp_path, ckpts, loaded, capsys):
    inp, out = _folder(tmp_path, corrupt=False), tmp_path / "out"
    rc = predict.main(["--checkpoint", str(ckpts["a"]), "--input", str(inp), "--output", str(out), "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "2 image(s) matted, 0 failed, 1 non-image file(s) skipped" in cap.out
    assert f"from {ckpts['a']}" in cap.err
    for stem, ext in (("bright", "png"), ("dark", "jpg")):
        img = read_image(inp / f"{stem}.{ext}")
        alpha = read_alpha(out / f"{stem}_alpha.png")
        assert alpha.shape == img.shape[:2] and alpha.dtype == np.uint8
        rgba = cv2.imread(str(out / f"{stem}_rgba.png"), cv2.IMREAD_UNCHANGED)
        assert rgba.shape == (*img.shape[:2], 4)
        np.testing.assert_array_equal(rgba[..., 3], alpha)
        np.testing.assert_array_equal(cv2.cvtColor(rgba[..., :3], cv2.COLOR_BGR2RGB), img)
    # the matte is the model's (8-bit) output for the image
    np.testing.assert_array_equal(read_alpha(out / "bright_alpha.png"),
                                  matte_image(loaded["a"], read_image(inp / "bright.png")))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]      # no probe or temp files


def test_partial_failure_exits_3_and_writes_the_rest(tmp_path, ckpts, capsys):
    inp, out = _folder(tmp_path), tmp_path / "out"
    rc = predict.main(["--checkpoint", str(ckpts["a"]), "--input", str(inp), "--output", str(out), "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 3
    assert "broken.png" in cap.err and "cannot read" in cap.err
    assert "2 image(s) matted, 1 failed" in cap.out and "FAILED broken.png" in cap.out
    assert "1 of 3 image(s) failed" in cap.err
    assert (out / "bright_alpha.png").is_file() and (out / "dark_rgba.png").is_file()
    assert not (out / "broken_alpha.png").exists() and not (out / "broken_rgba.png").exists()


def test_grey_rgba_and_16_bit_inputs(tmp_path, ckpts, capsys):
    """Grey and RGBA files are matted as RGB (their own alpha is dropped); a 16-bit file is
    reported by name and skipped."""
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    rng = np.random.default_rng(5)
    cv2.imwrite(str(inp / "grey.png"), (rng.random((21, 33)) * 255).astype(np.uint8))
    rgba = (rng.random((18, 26, 4)) * 255).astype(np.uint8)
    cv2.imwrite(str(inp / "rgba.png"), rgba)
    cv2.imwrite(str(inp / "deep.png"), (rng.random((10, 10, 3)) * 65535).astype(np.uint16))
    rc = predict.main(["--checkpoint", str(ckpts["a"]), "--input", str(inp), "--output", str(out), "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 3 and "deep.png" in cap.err and "16-bit" in cap.err
    assert read_alpha(out / "grey_alpha.png").shape == (21, 33)
    cut = cv2.imread(str(out / "rgba_rgba.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(cut[..., :3], rgba[..., :3])          # BGR as written, alpha replaced
    np.testing.assert_array_equal(cut[..., 3], read_alpha(out / "rgba_alpha.png"))


def test_cli_all_corrupt_exits_1(tmp_path, ckpts, capsys):
    inp = _folder(tmp_path, good=False)
    rc = predict.main(["--checkpoint", str(ckpts["a"]), "--input", str(inp), "--output", str(tmp_path / "o"),
                       "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 1
    assert "0 image(s) matted, 2 failed" in cap.out and "no image was matted" in cap.err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert predict.main(["--checkpoint", str(ckpts["a"]), "--input", str(empty), "--output", str(tmp_path / "o2"),
                         "--no-progress"]) == 1
    assert "no image files in" in capsys.readouterr().err


def test_colliding_names_give_distinct_outputs(tmp_path, ckpts, capsys):
    """a.png, a.PNG and a_png.png: three inputs, three output pairs, none overwritten."""
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    sizes = {"a.png": (20, 30), "a.PNG": (24, 18), "a_png.png": (16, 40)}
    rng = np.random.default_rng(3)
    for name, (h, w) in sizes.items():
        cv2.imwrite(str(inp / name), (rng.random((h, w, 3)) * 255).astype(np.uint8))
    if len(list(inp.iterdir())) < 3:
        pytest.fail("the file system merged a.png and a.PNG (case-insensitive); this test needs case-sensitive names")
    rc = predict.main(["--checkpoint", str(ckpts["a"]), "--input", str(inp), "--output", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    names = predict.output_names(sorted(inp.iterdir()))
    stems = list(names.values())
    assert len({s.lower() for s in stems}) == 3
    assert len(list(out.iterdir())) == 6
    for f, stem in names.items():                   # each output belongs to its own input (sizes differ)
        assert read_alpha(out / f"{stem}_alpha.png").shape == sizes[f.name]
        assert cv2.imread(str(out / f"{stem}_rgba.png"), cv2.IMREAD_UNCHANGED).shape == (*sizes[f.name], 4)


def test_output_names_unit():
    names = predict.output_names([Path("a.png"), Path("a.jpg"), Path("b.png")])
    assert names == {Path("a.png"): "a_png", Path("a.jpg"): "a_jpg", Path("b.png"): "b"}
    files = [Path("a.PNG"), Path("a.png"), Path("a_png.png")]
    names = predict.output_names(files)
    assert len({v.lower() for v in names.values()}) == 3 and names[Path("a_png.png")] == "a_png"
    assert predict.output_names([Path("x/A.png"), Path("y/a.png")]) != {}     # case-insensitive clash
    assert len({v.lower() for v in predict.output_names([Path("x/A.png"), Path("y/a.png")]).values()}) == 2


# --------------------------------------------------------------------------- refusals before any matting
def test_output_equal_to_input_is_refused(tmp_path, monkeypatch, capsys):
    inp = _folder(tmp_path)
    before = sorted(p.name for p in inp.iterdir())
    _no_model(monkeypatch)
    link = tmp_path / "link"
    link.symlink_to(inp, target_is_directory=True)
    for out in (inp, tmp_path / "in" / ".." / "in", link):
        rc = predict.main(["--input", str(inp), "--output", str(out), "--no-progress"])
        assert rc == 2
        assert "--output" in capsys.readouterr().err
    assert sorted(p.name for p in inp.iterdir()) == before


def test_unusable_output_is_refused_before_any_matting(tmp_path, monkeypatch, capsys):
    inp = _folder(tmp_path)
    _no_model(monkeypatch)
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    assert predict.main(["--input", str(inp), "--output", str(afile)]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert predict.main(["--input", str(inp), "--output", str(afile / "sub")]) == 2     # cannot be created
    err = capsys.readouterr().err
    assert "--output" in err and "cannot create or write" in err
    if os.geteuid() != 0:                       # root writes anywhere; the probe is what catches it otherwise
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        assert predict.main(["--input", str(inp), "--output", str(ro)]) == 2


def test_argument_errors(tmp_path, ckpts, monkeypatch, capsys):
    inp = _folder(tmp_path)
    _no_model(monkeypatch)
    o = str(tmp_path / "o")
    rc = predict.main(["--checkpoint", str(ckpts["a"]), "--input", str(inp), "--output", o, "--threshold", "0.2"])
    assert rc == 2 and "--low-light-checkpoint" in capsys.readouterr().err
    rc = predict.main(["--low-light-checkpoint", str(ckpts["b"]), "--threshold", "1.5", "--input", str(inp),
                       "--output", o])
    assert rc == 2 and "--threshold 1.5" in capsys.readouterr().err
    assert predict.main(["--input", str(inp), "--output", o, "--max-side", "-1"]) == 2
    assert "--max-side" in capsys.readouterr().err
    rc = predict.main(["--input", str(tmp_path / "nowhere"), "--output", o])
    assert rc == 2 and "nowhere" in capsys.readouterr().err
    if not torch.cuda.is_available():
        rc = predict.main(["--input", str(inp), "--output", o, "--device", "cuda"])
        assert rc == 2 and "--device 'cuda'" in capsys.readouterr().err
    with pytest.raises(SystemExit):           # argparse: --input and --output are required
        predict.main(["--output", o])
    with pytest.raises(SystemExit):
        predict.main(["--input", str(inp), "--output", o, "--model", "unet"])


# --------------------------------------------------------------------------- checkpoints
def test_a_trainer_checkpoint_works(tmp_path, ckpts, capsys):
    inp, out = _folder(tmp_path, corrupt=False), tmp_path / "out"
    rc = predict.main(["--checkpoint", str(ckpts["trained"]), "--input", str(inp), "--output", str(out),
                       "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert f"model: CV-UNet (cvunet) from {ckpts['trained']}" in cap.err
    model = predict.load_predictor(ckpts["trained"], device="cpu")
    np.testing.assert_array_equal(read_alpha(out / "dark_alpha.png"), matte_image(model, read_image(inp / "dark.jpg")))


def test_bad_checkpoints_exit_2_naming_the_file(tmp_path, capsys):
    inp = _folder(tmp_path)
    o = str(tmp_path / "o")
    rc = predict.main(["--checkpoint", str(tmp_path / "missing.pt"), "--input", str(inp), "--output", o])
    assert rc == 2 and "missing.pt" in capsys.readouterr().err
    zero = tmp_path / "zero.pt"
    zero.write_bytes(b"")
    assert predict.main(["--checkpoint", str(zero), "--input", str(inp), "--output", o]) == 2
    err = capsys.readouterr().err
    assert "zero.pt" in err and "empty" in err and "Traceback" not in err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"garbage")
    assert predict.main(["--checkpoint", str(junk), "--input", str(inp), "--output", o]) == 2
    err = capsys.readouterr().err
    assert "junk.pt" in err and "Traceback" not in err
    assert not list(Path(o).glob("*.png"))        # nothing matted with a bad model


class _Payload:
    """A plain class instance: not code, but not weights either."""


def test_a_pickle_with_code_is_refused(tmp_path, ckpts, capsys):
    inp = _folder(tmp_path)
    o = str(tmp_path / "o")
    state = torch.load(ckpts["a"], weights_only=True)
    evil = tmp_path / "evil.pt"
    torch.save({**state, "hook": Evil(str(tmp_path / "pwned"))}, evil)
    other = tmp_path / "object.pt"
    torch.save({**state, "extra": _Payload()}, other)
    for path in (evil, other):
        assert predict.main(["--checkpoint", str(path), "--input", str(inp), "--output", o]) == 2
        err = capsys.readouterr().err
        assert path.name in err and "not a course checkpoint" in err, err
        assert "weights_only=False" not in err and "Traceback" not in err
    assert not (tmp_path / "pwned").exists()


def test_llie_checkpoint_is_detected(ckpts):
    model = predict.load_predictor(ckpts["llie"], device="cpu")
    assert hasattr(model, "llie") and hasattr(model, "matting")
    assert predict.describe(model) == "Zero-DCE++ + CV-UNet (cvunet)"
    with pytest.raises(CheckpointError, match="LLIE-only"):
        predict.load_predictor(ckpts["zerodce"])


# --------------------------------------------------------------------------- the brightness switch
def test_brightness_switch_routes_dark_images_to_the_low_light_model(tmp_path, ckpts, loaded, capsys):
    inp, out = _folder(tmp_path, corrupt=False), tmp_path / "out"
    rc = predict.main(["--checkpoint", str(ckpts["a"]), "--low-light-checkpoint", str(ckpts["b"]),
                       "--threshold", "0.2", "--input", str(inp), "--output", str(out), "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "dark.jpg: low-light model" in cap.out and "bright.png: normal model" in cap.out
    assert "brightness switch at mean luminance 0.2" in cap.err
    low, normal = loaded["b"], loaded["a"]
    dark = read_image(inp / "dark.jpg")
    np.testing.assert_array_equal(read_alpha(out / "dark_alpha.png"), matte_image(low, dark))
    assert not np.array_equal(matte_image(low, dark), matte_image(normal, dark))
    np.testing.assert_array_equal(read_alpha(out / "bright_alpha.png"),
                                  matte_image(normal, read_image(inp / "bright.png")))


def test_module_entry_point(tmp_path, ckpts, monkeypatch, capsys):
    """``python -m lowlight.predict`` runs main() and exits with its status (run in-process
    with runpy; the subprocess path is covered by the default-model test)."""
    import runpy
    import warnings

    inp, out = _folder(tmp_path), tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["lowlight.predict", "--checkpoint", str(ckpts["llie"]), "--input", str(inp),
                                      "--output", str(out), "--device", "cpu", "--no-progress"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # "found in sys.modules" from runpy
        with pytest.raises(SystemExit) as exc:
            runpy.run_module("lowlight.predict", run_name="__main__")
    assert exc.value.code == 3                              # broken.png failed, the others were written
    assert (out / "bright_alpha.png").is_file() and (out / "dark_rgba.png").is_file()
    assert "broken.png" in capsys.readouterr().err
