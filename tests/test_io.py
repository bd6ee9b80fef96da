"""lowlight.io: atomic writes (nothing half-written, no temporary file left behind), PNG, CSV/JSON
helpers, and checkpoints read weights-only with errors that name the file."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from lowlight import io
from lowlight.models import load_model_weights
from _toys import Evil


def _leftovers(folder: Path) -> list[str]:
    """Hidden temporary files an atomic write could leave beside its target."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --------------------------------------------------------------------------- atomic writes
def test_atomic_writes_write_and_leave_no_temp_file(tmp_path):
    io.atomic_write_text(tmp_path / "a.txt", "héllo\n")
    io.atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    io.atomic_write_json(tmp_path / "sub" / "c.json", {"x": float("nan"), "p": Path("/a"), "t": (1, 2)})
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert json.loads((tmp_path / "sub" / "c.json").read_text()) == {"x": None, "p": "/a", "t": [1, 2]}
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "sub") == []
    assert oct((tmp_path / "a.txt").stat().st_mode & 0o777) == oct(0o644)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with io.atomic_path(target) as tmp:
            Path(tmp).write_text("half a fi")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []
    # json that cannot be serialised: the error surfaces, nothing is written
    with pytest.raises(TypeError):
        io.atomic_write_json(tmp_path / "bad.json", {"x": object()})
    assert not (tmp_path / "bad.json").exists() and _leftovers(tmp_path) == []
    # a checkpoint whose state cannot be pickled: the previous checkpoint survives intact
    ck = tmp_path / "last.pt"
    io.save_checkpoint(ck, {"model": {"w": torch.ones(2)}})
    before = ck.read_bytes()
    with pytest.raises(Exception):
        io.save_checkpoint(ck, {"model": {"w": torch.zeros(2)}, "fn": lambda: 0})
    assert ck.read_bytes() == before and _leftovers(tmp_path) == []


def test_jsonable_and_csv_text():
    assert io.jsonable({1: [np.float32(1.5), math.inf, (np.int64(2),)]}) == {"1": [1.5, None, [2]]}
    text = io.csv_text([{"a": 1, "b": 0.1234567891}, {"a": 2, "c": "x"}])
    assert text == "a,b,c\n1,0.123457,\n2,,x\n"
    assert io.csv_text([{"a": 1, "b": 2}], keys=["b"]) == "b\n2\n"


def test_write_png_round_trip_and_refusals(tmp_path):
    import cv2

    rgb = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    io.write_png(tmp_path / "x.png", rgb)
    back = cv2.cvtColor(cv2.imread(str(tmp_path / "x.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, rgb)
    grey = rgb[..., 0]
    io.write_png(tmp_path / "g.png", grey)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "g.png"), cv2.IMREAD_UNCHANGED), grey)
    with pytest.raises(ValueError, match="uint8"):
        io.write_png(tmp_path / "f.png", rgb.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        io.write_png(tmp_path / "c.png", np.zeros((4, 4, 2), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png", "x.png"]
    assert ".png" in io.IMAGE_EXTENSIONS and ".jpg" in io.IMAGE_EXTENSIONS


# --------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip(tmp_path):
    state = {"model": {"w": torch.arange(3.0)}, "epoch": 2, "history": [{"loss": 0.5}], "arch": {"model": "x"}}
    io.save_checkpoint(tmp_path / "c.pt", state)
    back = io.load_checkpoint(tmp_path / "c.pt")
    assert back["epoch"] == 2 and back["history"] == [{"loss": 0.5}] and back["arch"] == {"model": "x"}
    assert torch.equal(back["model"]["w"], torch.arange(3.0))
    assert _leftovers(tmp_path) == []


def test_load_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(io.CheckpointError, match=r"missing\.pt.*no such file"):
        io.load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(io.CheckpointError, match=r"empty\.pt.*empty"):
        io.load_checkpoint(tmp_path / "empty.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(io.CheckpointError, match=r"junk\.pt"):
        io.load_checkpoint(tmp_path / "junk.pt")
    good = tmp_path / "good.pt"
    io.save_checkpoint(good, {"model": {"w": torch.ones(1000)}})
    (tmp_path / "truncated.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(io.CheckpointError, match=r"truncated\.pt"):
        io.load_checkpoint(tmp_path / "truncated.pt")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")            # readable, but not a dict
    with pytest.raises(io.CheckpointError, match=r"tensor\.pt.*expected a dict with a 'model'"):
        io.load_checkpoint(tmp_path / "tensor.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "nomodel.pt")   # a dict without "model"
    with pytest.raises(io.CheckpointError, match=r"nomodel\.pt.*'model'"):
        io.load_checkpoint(tmp_path / "nomodel.pt")
    with pytest.raises(io.CheckpointError, match="no such file"):
        io.load_checkpoint(tmp_path)                                 # a folder is not a file


def test_checkpoint_errors_name_a_command_that_exists(tmp_path):
    """Where a good checkpoint comes from: the training CLI is ``python -m lowlight.training``
    (``lowlight.train`` was renamed)."""
    torch.save({"weights": torch.zeros(3)}, tmp_path / "nomodel.pt")
    with pytest.raises(io.CheckpointError) as info:
        io.load_checkpoint(tmp_path / "nomodel.pt")
    msg = str(info.value)
    assert "lowlight.train`" not in msg and "lowlight.train " not in msg, msg


def test_a_malicious_pickle_is_refused_and_not_executed(tmp_path):
    evil = Evil(str(tmp_path / "pwned"))
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "extra": evil}, path)
    with pytest.raises(io.CheckpointError) as info:
        io.load_checkpoint(path)
    msg = str(info.value)
    assert "evil.pt" in msg and "not a course checkpoint" in msg
    assert "weights_only=False" not in msg and "weights_only = False" not in msg
    assert info.value.__cause__ is None          # no chained torch error suggesting unsafe loading
    assert not os.path.exists(evil.marker)
    # the file really runs code when unpickled without the weights-only guard
    torch.load(path, weights_only=False)
    assert os.path.exists(evil.marker)


def test_load_model_weights_and_digest(tmp_path):
    torch.manual_seed(0)
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    assert io.weights_digest(a) != io.weights_digest(b)
    io.save_checkpoint(tmp_path / "a.pt", {"model": a.state_dict(), "epoch": 1})
    assert load_model_weights(b, tmp_path / "a.pt")["epoch"] == 1
    assert io.weights_digest(a) == io.weights_digest(b)
    assert len(io.weights_digest(a)) == 64
    io.save_checkpoint(tmp_path / "wrong.pt", {"model": {"x": torch.zeros(1)}})
    with pytest.raises(io.CheckpointError, match=r"wrong\.pt.*do not fit"):
        load_model_weights(b, tmp_path / "wrong.pt")
    # bf16 weights (numpy has no bf16) are digested too
    assert len(io.weights_digest(torch.nn.Linear(3, 2).to(torch.bfloat16))) == 64


def test_non_finite_weights_are_refused_before_loading(tmp_path):
    """A diverged run's NaN/Inf weights: refused at load, naming the file and the first such tensor,
    the model left untouched (they used to load and give black mattes)."""
    from lowlight.models import load_weights_file

    torch.manual_seed(0)
    good, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = io.weights_digest(target)
    sd = good.state_dict()
    sd["bias"] = torch.tensor([0.5, float("nan")])
    io.save_checkpoint(tmp_path / "nan.pt", {"model": sd})
    with pytest.raises(io.CheckpointError, match=r"checkpoint .*nan\.pt: tensor 'bias' holds non-finite values "
                                                 r"\(1 NaN, 0 infinite, of 2\); .*use an earlier checkpoint"):
        load_model_weights(target, tmp_path / "nan.pt")
    assert io.weights_digest(target) == before
    sd = {"weight": good.weight.detach().clone(), "bias": torch.tensor([float("inf"), 0.0])}
    torch.save(sd, tmp_path / "inf.pth")
    with pytest.raises(ValueError, match=r"inf\.pth.*tensor 'bias' holds non-finite values \(0 NaN, 1 infinite"):
        load_weights_file(tmp_path / "inf.pth")
