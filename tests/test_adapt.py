"""``python -m lowlight.adapt``: your photos in, a fine-tuned MODNet and a report on held-out photos out."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from lowlight import adapt, config, training
from lowlight.data import load_photo
from lowlight.io import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")
SOURCES = ("coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "brick", "grass")


def _folder(root):
    for k, name in enumerate(SOURCES):
        path = root / ("a" if k % 2 else "b") / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(load_photo(name), cv2.COLOR_RGB2BGR))
    (root / "damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return root


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    root = _folder(tmp_path_factory.mktemp("photos"))
    out = tmp_path_factory.mktemp("adapt") / "night"
    env = {**os.environ, "PYTHONPATH": str(config.ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "lowlight.adapt", "--profile", "smoke", "--data-path", str(root),
                        "--heldout-share", "0.3", "--out", str(out)], capture_output=True, text=True, env=env,
                       cwd=config.ROOT, timeout=900)
    return r, root, out


def test_adapt_trains_evaluates_held_out_photos_and_writes_the_report(adapted):
    r, root, out = adapted
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((out / "report.json").read_text())
    held = rep["heldout_photos"]
    assert held and len(held) + len(rep["train_photos"]) == len(SOURCES)
    assert not {f"{root}/{h}" for h in held} & set(rep["train_photos"])       # held out means never trained on
    assert [os.path.basename(p) for p, _ in rep["skipped"]] == ["damaged.png"]
    # every held-out photo: daylight + 3 simulator EVs + 3 held-out-camera EVs, for both models
    assert len(rep["records"]) == len(held) * 7 * 2
    assert {r_["camera"] for r_ in rep["records"]} == {"daylight", "simulator", "heldout"}
    ck = load_checkpoint(rep["checkpoint"])
    assert ck["stage"] == "stage3" and ck["spec"]["anchor"] == training.NIGHT["anchor"]
    md = (out / "report.md").read_text()
    for photo in held:                                   # a drift row and one row per EV and camera
        assert len(re.findall(rf"^\| {re.escape(photo)} \|", md, flags=re.M)) == 1 + 3 + 3
    drift = [x for x in rep["records"] if x["camera"] == "daylight" and x["model"] == "fine-tuned"]
    assert f"{drift[0]['mad']:.4f}" in md
    assert "python -m lowlight.export --checkpoint" in md and "damaged.png" in md
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 1 and "<table>" in page
    png = cv2.imdecode(np.frombuffer((out / "report_mattes.png").read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert png is not None and png.shape[0] > 100
    assert "held out" in r.stderr and "report:" in r.stdout


def test_adapt_original_scores_zero_in_daylight(adapted):
    r, _, out = adapted
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((out / "report.json").read_text())
    day = [x for x in rep["records"] if x["camera"] == "daylight" and x["model"] == "original"]
    assert day and all(x["sad"] == 0.0 and x["mad"] == 0.0 for x in day)      # the reference is its own matte


def test_adapt_bad_inputs_are_clear_errors_and_write_nothing(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    photos = _folder(tmp_path / "photos")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    cases = [(["--data-path", str(empty), "--out", str(tmp_path / "o1")], "no photos found"),
             (["--data-path", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o2")], "not a folder"),
             (["--data-path", str(photos), "--out", str(blocker)], f"--out {blocker}"),
             (["--data-path", str(photos), "--heldout-share", "1.5", "--out", str(tmp_path / "o3")], "--heldout-share"),
             (["--data-path", str(photos), "--steps", "0", "--out", str(tmp_path / "o4")], "--steps 0"),
             (["--data-path", str(photos), "--profile", "tiny", "--out", str(tmp_path / "o5")], "--profile")]
    for argv, text in cases:
        rc = adapt.main(argv)
        err = capsys.readouterr().err
        assert rc == 2, (argv, err[-2000:])
        assert text in err and "Traceback" not in err, (argv, err[-2000:])
    assert not any((tmp_path / f"o{k}").exists() for k in range(1, 6))
    assert blocker.read_text() == "x"


def test_adapt_fine_tunes_u2netp_against_its_own_daylight_mattes(tmp_path):
    from lowlight.data import scan_photo_folder
    from lowlight.models import OPERATING_SIDE, model_from_checkpoint

    photos = scan_photo_folder(_folder(tmp_path / "photos"), heldout_share=0.3)
    rep = adapt.adapt(photos, tmp_path / "run", config.get_profile("smoke"), model="u2netp", steps=1, log=lambda m: None)
    assert rep["model"] == "u2netp" and rep["max_side"] == OPERATING_SIDE["u2netp"] == 320
    assert type(model_from_checkpoint(rep["checkpoint"])).__name__ == "U2NetP"
    day = [x for x in rep["records"] if x["camera"] == "daylight" and x["model"] == "original"]
    assert day and all(x["sad"] == 0.0 for x in day)          # the reference is U2-Netp's own daylight matte
    assert max(max(x["height"], x["width"]) for x in day) == 320     # scored at U2-Netp's operating size
    assert (tmp_path / "run" / "report.md").read_text().startswith("# Night fine-tune of U²-Netp on ")
