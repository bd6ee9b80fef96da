"""The papermill runner: end to end on `smoke`, failure reporting, the short-poll patch."""
import hashlib
import json
import os
import subprocess
import sys

import nbformat
import pytest

from lowlight import config, reproduce


def _nb(path, *sources):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("profile = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def _run(*args, env_profile="smoke"):
    env = dict(os.environ, LOWLIGHT_PROFILE=env_profile)
    return subprocess.run([sys.executable, "-m", "lowlight.reproduce", *args], capture_output=True,
                          text=True, env=env, cwd=config.ROOT, timeout=1800)


def test_failure_names_notebook_cell_and_error(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    _nb(src / "01_ok.ipynb", "import os\nprint('profile', profile, os.environ['LOWLIGHT_PROFILE'])")
    _nb(src / "02_bad.ipynb", "x = 1", "raise ValueError('boom')")
    _nb(src / "03_after.ipynb", "print('never')")
    out = tmp_path / "out"
    r = _run("--profile", "smoke", "--notebooks-dir", str(src), "--output-dir", str(out))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "notebook 02_bad.ipynb, cell 3 of the executed copy (\"raise ValueError('boom')\"): ValueError: boom" in r.stdout
    assert "03_after.ipynb" in r.stdout and "skipped" in r.stdout
    done = nbformat.read(str(out / "01_ok.ipynb"), 4)
    assert any("profile smoke smoke" in o.get("text", "") for c in done.cells if c.cell_type == "code" for o in c.outputs)
    assert (out / "02_bad.ipynb").exists()  # the partly executed copy is kept
    summary = json.loads((config.run_dir("smoke") / "reproduce_summary.json").read_text())
    assert [n["status"] for n in summary["notebooks"]] == ["ok", "failed", "skipped"]


def test_only_rejects_unknown_numbers(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    _nb(src / "01_ok.ipynb", "pass")
    r = _run("--notebooks-dir", str(src), "--only", "01,09", "--output-dir", str(tmp_path / "o"))
    assert r.returncode != 0 and "no notebook numbered 09" in (r.stdout + r.stderr)


def test_unknown_profile_is_a_clear_error():
    r = _run("--profile", "fastest")
    assert r.returncode == 2 and "valid profiles: smoke, quick, full" in r.stderr


def test_short_poll_restores_the_channel():
    from jupyter_client.channels import AsyncZMQSocketChannel

    original = AsyncZMQSocketChannel.get_msg
    with reproduce.short_poll_channels():
        assert AsyncZMQSocketChannel.get_msg is not original
    assert AsyncZMQSocketChannel.get_msg is original


@pytest.mark.slow
def test_reproduce_course_on_smoke(tmp_path):
    """Every notebook of the course, end to end, on `smoke`; the sources stay untouched."""
    sources = reproduce.discover()
    assert sources, "no notebooks found"
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sources}
    r = _run("--profile", "smoke", "--output-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads((config.run_dir("smoke") / "reproduce_summary.json").read_text())
    assert [n["notebook"] for n in summary["notebooks"]] == [p.name for p in sources]
    assert all(n["status"] == "ok" for n in summary["notebooks"])
    for p in sources:
        assert (tmp_path / p.name).exists()
        assert hashlib.sha256(p.read_bytes()).hexdigest() == before[p.name]
    assert (config.run_dir("smoke") / "reproduce_summary.md").read_text().count("| ok |") == len(sources)
