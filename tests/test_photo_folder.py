"""A folder of the user's own plain photos: reading, the held-out split, crops, the teacher's cache,
and ``python -m lowlight.training --signal distill --data-path PHOTOS/``."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from lowlight import config
from lowlight.data import PhotoFolderError, load_photo, photo_crops, scan_photo_folder
from lowlight.data.photo_folder import MIN_TRAIN_PHOTOS, heldout_fraction
from lowlight.io import load_checkpoint
from lowlight.training import cli
from lowlight.training.data import build_photo_finetune_set

pytestmark = pytest.mark.usefixtures("one_thread")
SMOKE = config.get_profile("smoke")
#: people-free photos that ship with scikit-image (never the evaluation's photos of people)
SOURCES = ("coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "brick", "grass", "gravel")


def _write(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR))
    return path


def _folder(root, n=len(SOURCES)):
    """``n`` real photos, some nested and with upper-case suffixes."""
    for k, name in enumerate(SOURCES[:n]):
        sub = "trip" if k % 3 == 0 else ""
        _write(root / sub / (f"{name}.JPG" if k % 2 else f"{name}.png"), load_photo(name))
    return root


def test_scan_reads_nested_folders_and_lists_every_skipped_file(tmp_path):
    root = _folder(tmp_path / "photos")
    (root / "broken.jpg").write_bytes(b"not a jpeg at all")
    _write(root / "thumb.png", np.zeros((20, 30, 3), np.uint8))
    (root / "notes.txt").write_text("not a photo")
    found = scan_photo_folder(root, heldout_share=0.25)
    usable = found.train + found.heldout
    assert len(usable) == len(SOURCES) and not set(found.train) & set(found.heldout)
    assert any(p.parent.name == "trip" for p in usable) and any(p.suffix == ".JPG" for p in usable)
    skipped = {p.name: why for p, why in found.skipped}
    assert set(skipped) == {"broken.jpg", "thumb.png"}                    # the text file is not a photo
    assert "cannot read" in skipped["broken.jpg"] and "64" in skipped["thumb.png"]
    text = found.describe()
    assert "2 file(s) skipped" in text and "broken.jpg" in text and f"{len(found.heldout)} held out" in text
    # held out by the SHA-256 of the relative path, as documented
    for p in found.heldout:
        assert heldout_fraction(p.relative_to(root).as_posix()) < 0.25 or len(found.heldout) == 1


def test_the_heldout_split_does_not_move_when_photos_are_added(tmp_path):
    root = _folder(tmp_path / "photos", n=6)
    first = scan_photo_folder(root, heldout_share=0.3)
    _write(root / "new" / "later.png", load_photo("gravel"))
    _write(root / "new" / "later2.png", load_photo("grass"))
    second = scan_photo_folder(root, heldout_share=0.3)
    old = set(first.train + first.heldout)
    assert {p for p in second.heldout if p in old} == set(first.heldout) or len(first.heldout) == 1
    assert set(first.train) <= set(second.train) | set(second.heldout)
    assert len(second.heldout) >= 1


@pytest.mark.parametrize("case", ["missing", "empty", "all_corrupt", "one_photo", "too_few"])
def test_unusable_folders_are_clear_errors_naming_the_folder(tmp_path, case):
    root = tmp_path / "photos"
    if case != "missing":
        root.mkdir()
    if case == "all_corrupt":
        for k in range(5):
            (root / f"img{k}.jpg").write_bytes(b"\xff\xd8 truncated")
    if case == "one_photo":
        _write(root / "only.png", load_photo("coffee"))
    if case == "too_few":
        _folder(root, n=MIN_TRAIN_PHOTOS)                      # one of them is held out
    expected = {"missing": "not a folder", "empty": "no photos found", "all_corrupt": "0 usable photo(s) of 5",
                "one_photo": "1 usable photo(s) of 1", "too_few": f"expected at least {MIN_TRAIN_PHOTOS}"}[case]
    with pytest.raises(PhotoFolderError, match=re.escape(expected)) as info:
        scan_photo_folder(root)
    assert str(root) in str(info.value)
    if case == "all_corrupt":
        assert "img0.jpg" in str(info.value)                  # the reasons are listed


def test_photo_crops_are_deterministic_and_inside_the_photo(tmp_path):
    root = _folder(tmp_path / "photos", n=5)
    found = scan_photo_folder(root, heldout_share=0.0)
    a, boxes = photo_crops(found.train, 96, 3, seed=4)
    b, _ = photo_crops(found.train, 96, 3, seed=4)
    c, _ = photo_crops(found.train, 96, 3, seed=5)
    assert len(a) == 15 and all(x.shape == (96, 96, 3) and x.dtype == np.uint8 for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and not all(np.array_equal(x, y) for x, y in zip(a, c))
    for box in boxes:
        h, w = cv2.imread(box["file"]).shape[:2]
        assert box["x"] + box["side"] <= w and box["y"] + box["side"] <= h and box["side"] >= 64


def test_teacher_mattes_are_cached_and_recomputed_for_another_teacher(tmp_path):
    class Teacher(torch.nn.Module):          # a stand-in teacher: the matte is the input's red channel
        def __init__(self, gain):
            super().__init__()
            self.gain = torch.nn.Parameter(torch.tensor(float(gain)))

        def forward(self, x):
            return (x[:, :1] * self.gain).clamp(0, 1)

    found = scan_photo_folder(_folder(tmp_path / "photos", n=5), heldout_share=0.0)
    cache, logs = tmp_path / "run" / "teacher_mattes.npz", []
    first = build_photo_finetune_set(SMOKE, found, teacher=Teacher(1.0), cache=cache, per_photo=2, log=logs.append)
    again = build_photo_finetune_set(SMOKE, found, teacher=Teacher(1.0), cache=cache, per_photo=2, log=logs.append)
    other = build_photo_finetune_set(SMOKE, found, teacher=Teacher(0.5), cache=cache, per_photo=2, log=logs.append)
    assert "computed" in logs[0] and "read from" in logs[1] and "computed" in logs[2]
    assert all(np.array_equal(x, y) for x, y in zip(first.teacher, again.teacher))
    red = first.images[0][..., 0].astype(np.float32) / 255.0
    assert np.abs(first.teacher[0] - red).max() < 2e-3                       # the target is the teacher's matte
    assert np.abs(other.teacher[0] - red * 0.5).max() < 2e-3
    assert set(first.kinds) == {"teacher"} and len(first) == 2 * 5
    assert first.n_processed == len(first)                    # every crop has a phone-processed night version


def _env():
    import os

    return {**os.environ, "PYTHONPATH": str(config.ROOT), "OMP_NUM_THREADS": "1"}


def test_cli_fine_tunes_modnet_on_a_folder_of_plain_photos(tmp_path):
    root = _folder(tmp_path / "photos")
    (root / "broken.jpg").write_bytes(b"garbage")
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "lowlight.training", "--profile", "smoke", "--model", "modnet",
                        "--signal", "distill", "--data-path", str(root), "--stage", "1", "--anchor", "0.5",
                        "--out", str(out)], capture_output=True, text=True, env=_env(), cwd=config.ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "held out" in r.stderr and "broken.jpg" in r.stderr
    listing = json.loads((out / "photos.json").read_text())
    assert len(listing["train"]) + len(listing["heldout"]) == len(SOURCES) and listing["heldout"]
    assert [p[0].endswith("broken.jpg") for p in listing["skipped"]] == [True]
    assert (out / "teacher_mattes.npz").is_file()
    ck = load_checkpoint(out / "stage1" / "last.pt")
    assert ck["spec"]["anchor"] == 0.5 and ck["step"] == SMOKE.finetune.steps[0]
    assert "anchor" in ck["history"][-1] or any("anchor" in k for k in ck["history"][-1])
    assert not (out / "report.md").exists()           # one stage of three: no report until the last stage


def test_cli_run_on_plain_photos_ends_with_the_report_on_its_held_out_photos(tmp_path):
    root = _folder(tmp_path / "photos")
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "lowlight.training", "--profile", "smoke", "--model", "modnet",
                        "--signal", "distill", "--data-path", str(root), "--stage", "all", "--steps", "1",
                        "--out", str(out)], capture_output=True, text=True, env=_env(), cwd=config.ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    listing = json.loads((out / "photos.json").read_text())
    rep = json.loads((out / "report.json").read_text())
    assert rep["model"] == "modnet" and rep["max_side"] == 512
    assert sorted(rep["heldout_photos"]) == sorted(os.path.relpath(p, root) for p in listing["heldout"])
    assert [s["name"] for s in rep["stages"]] == ["stage1", "stage2", "stage3"]
    assert rep["checkpoint"].endswith(os.path.join("stage3", "last.pt"))
    md = (out / "report.md").read_text()
    assert md.startswith("# Night fine-tune of MODNet") and "python -m lowlight.export --checkpoint" in md
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 1
    assert f"report: {out / 'report.html'}" in r.stdout


def test_cli_refuses_unusable_photo_folders_without_writing(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    one = tmp_path / "one"
    _write(one / "a.png", load_photo("coffee"))
    base = ["--profile", "smoke", "--model", "modnet", "--stage", "1", "--device", "cpu"]
    cases = [([*base, "--signal", "distill", "--data-path", str(empty)], f"--data-path {empty}: no photos found"),
             ([*base, "--signal", "distill", "--data-path", str(one)], "1 usable photo(s)"),
             ([*base, "--data-path", str(one)], "--signal distill"),
             ([*base, "--signal", "distill", "--anchor", "-1", "--data-path", str(one)], "--anchor -1"),
             ([*base, "--signal", "distill", "--heldout-share", "1", "--data-path", str(one)], "--heldout-share 1")]
    for k, (argv, text) in enumerate(cases):
        out = tmp_path / f"out{k}"
        rc = cli.main([*argv, "--out", str(out)])
        err = capsys.readouterr().err
        assert rc == 2, (argv, err[-2000:])
        assert text in err and "Traceback" not in err, (argv, err[-2000:])
        assert not (out / "stage1").exists()
