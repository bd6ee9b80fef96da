"""The papermill runner: end to end on `smoke`, failure reporting, the short-poll patch."""
import hashlib
import json
import os
import subprocess
import sys

import nbformat
import pytest

from lowlight import config, final_steps, reproduce


def _nb(path, *sources):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("profile = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def _run(*args, env_profile="smoke", root=None):
    """The runner as a user calls it; ``root`` (LOWLIGHT_ROOT) keeps its runs/ out of the repository."""
    env = dict(os.environ, LOWLIGHT_PROFILE=env_profile)
    if root is not None:
        env["LOWLIGHT_ROOT"] = str(root)
    return subprocess.run([sys.executable, "-m", "lowlight.reproduce", *args], capture_output=True,
                          text=True, env=env, cwd=config.ROOT, timeout=1800)


def test_failure_names_notebook_cell_and_error(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    _nb(src / "01_ok.ipynb", "import os\nprint('profile', profile, os.environ['LOWLIGHT_PROFILE'])")
    _nb(src / "02_bad.ipynb", "x = 1", "raise ValueError('boom')")
    _nb(src / "03_after.ipynb", "print('never')")
    out = tmp_path / "out"
    r = _run("--profile", "smoke", "--notebooks-dir", str(src), "--output-dir", str(out), root=tmp_path / "root")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "notebook 02_bad.ipynb, cell 3 of the executed copy (\"raise ValueError('boom')\"): ValueError: boom" in r.stdout
    assert "03_after.ipynb" in r.stdout and "skipped" in r.stdout
    done = nbformat.read(str(out / "01_ok.ipynb"), 4)
    assert any("profile smoke smoke" in o.get("text", "") for c in done.cells if c.cell_type == "code" for o in c.outputs)
    assert (out / "02_bad.ipynb").exists()  # the partly executed copy is kept
    # provenance: the source digest and profile in each executed copy, its status too
    digest = reproduce.source_digest()
    assert done.metadata["lowlight"]["source_digest"] == digest and done.metadata["lowlight"]["profile"] == "smoke"
    assert nbformat.read(str(out / "02_bad.ipynb"), 4).metadata["lowlight"]["status"] == "failed"
    # another folder's notebooks are a partial run: the summary goes beside the copies
    summary = json.loads((out / "reproduce_summary.partial.json").read_text())
    assert [n["status"] for n in summary["notebooks"]] == ["ok", "failed", "skipped"]
    assert summary["source_digest"] == digest and summary["partial"] is True
    assert not (tmp_path / "root" / "runs" / "smoke" / "reproduce_summary.json").exists()


def test_only_rejects_unknown_numbers(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    _nb(src / "01_ok.ipynb", "pass")
    r = _run("--notebooks-dir", str(src), "--only", "01,09", "--output-dir", str(tmp_path / "o"))
    assert r.returncode == 2 and "no notebook numbered 09; valid: 01 (01_ok.ipynb)" in r.stderr


@pytest.mark.parametrize("only, says", [(",", "--only ',': empty"), ("", "--only '': empty"),
                                        ("x1", "'x1' is not a notebook number"),
                                        ("1.5", "'1.5' is not a notebook number"),
                                        ("1a", "no notebook numbered 01a")])
def test_only_empty_or_invalid_names_the_option(tmp_path, only, says):
    src = tmp_path / "nbs"
    src.mkdir()
    _nb(src / "01_ok.ipynb", "pass")
    _nb(src / "05_x.ipynb", "pass")
    r = _run("--notebooks-dir", str(src), "--only", only, "--output-dir", str(tmp_path / "o"))
    assert r.returncode == 2 and says in r.stderr, r.stderr
    assert "valid: 01 (01_ok.ipynb), 05 (05_x.ipynb)" in r.stderr and "Traceback" not in r.stderr


def test_a_lettered_notebook_runs_after_its_number(tmp_path):
    """``01b_*.ipynb`` is a course notebook: discovered after ``01`` and before ``02``, selected by
    ``--only 01b`` (also ``1b``, ``1B``), named in the valid list, and in a partial summary's name."""
    for name in ("02_c.ipynb", "01b_b.ipynb", "01_a.ipynb", "1_short.ipynb", "010_long.ipynb", "01bb_x.ipynb"):
        (tmp_path / name).write_text("{}")
    every = reproduce.discover(tmp_path)
    assert [p.name for p in every] == ["01_a.ipynb", "01b_b.ipynb", "02_c.ipynb"]
    assert [reproduce.notebook_number(p) for p in every] == ["01", "01b", "02"]
    assert [p.name for p in reproduce.select(every, "02,1B,01")] == ["01_a.ipynb", "01b_b.ipynb", "02_c.ipynb"]
    assert [p.name for p in reproduce.select(every, "1b")] == ["01b_b.ipynb"]
    assert [p.name for p in reproduce.select(every, "1")] == ["01_a.ipynb"]
    with pytest.raises(ValueError, match=r"no notebook numbered 01c; valid: 01 \(01_a.ipynb\), 01b \(01b_b.ipynb\), "
                                         r"02 \(02_c.ipynb\)"):
        reproduce.select(every, "01c")
    json_path, _ = reproduce.summary_paths(tmp_path, tmp_path / "out", True, "1B,01")
    assert json_path.name == "reproduce_summary.only-01-01b.json"


def test_missing_notebooks_dir_names_the_given_folder(tmp_path):
    r = _run("--notebooks-dir", str(tmp_path / "nowhere"), "--output-dir", str(tmp_path / "o"))
    assert r.returncode == 2 and f"--notebooks-dir {tmp_path / 'nowhere'}: not a folder" in r.stderr
    (tmp_path / "empty").mkdir()
    r = _run("--notebooks-dir", str(tmp_path / "empty"), "--output-dir", str(tmp_path / "o"))
    assert r.returncode == 2 and f"no notebooks (NN_*.ipynb) found in {tmp_path / 'empty'}" in r.stderr


def test_non_json_notebook_does_not_claim_a_kept_copy(tmp_path):
    src, out = tmp_path / "nbs", tmp_path / "out"
    src.mkdir()
    (src / "01_broken.ipynb").write_text("this is not JSON")
    out.mkdir()
    (out / "01_broken.ipynb").write_text("{}")        # a stale copy of an earlier run
    r = _run("--notebooks-dir", str(src), "--output-dir", str(out), root=tmp_path / "root")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "notebook 01_broken.ipynb: " in r.stdout and "JSON" in r.stdout
    assert "no executed copy was written" in r.stdout and "kept" not in r.stdout
    assert not (out / "01_broken.ipynb").exists()     # the stale copy cannot pass for this run's


def test_partial_run_never_replaces_the_full_summary(tmp_path):
    """`--only 02 --output-dir elsewhere` used to overwrite runs/<profile>/reproduce_summary.*."""
    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    _nb(root / "notebooks" / "01_a.ipynb", "pass")
    _nb(root / "notebooks" / "02_b.ipynb", "x = 2")
    full = root / "runs" / "smoke"
    full.mkdir(parents=True)
    (full / "reproduce_summary.json").write_text('{"full": true}\n')
    (full / "reproduce_summary.md").write_text("full run\n")
    r = _run("--only", "02", "--output-dir", str(tmp_path / "elsewhere"), root=root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (full / "reproduce_summary.json").read_text() == '{"full": true}\n'
    assert (full / "reproduce_summary.md").read_text() == "full run\n"
    part = json.loads((tmp_path / "elsewhere" / "reproduce_summary.only-02.json").read_text())
    assert part["partial"] and [n["notebook"] for n in part["notebooks"]] == ["02_b.ipynb"]
    assert "(partial run)" in (tmp_path / "elsewhere" / "reproduce_summary.only-02.md").read_text()


def test_inplace_records_the_source_digest(tmp_path):
    """The maintainers' in-place run (how the committed notebooks get their outputs) stamps the
    digest and profile into the sources, drops an earlier run's widget state (this notebook shows no
    widget), and writes the full summary."""
    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    nb_path = root / "notebooks" / "01_a.ipynb"
    _nb(nb_path, "print(40 + 2)")
    book = nbformat.read(str(nb_path), 4)
    book.metadata["widgets"] = {"state": {}}
    nbformat.write(book, str(nb_path))
    r = _run("--profile", "smoke", "--inplace", root=root)
    assert r.returncode == 0, r.stdout + r.stderr
    done = nbformat.read(str(nb_path), 4)
    assert done.metadata["lowlight"]["source_digest"] == reproduce.source_digest()
    assert done.metadata["lowlight"]["profile"] == "smoke" and done.metadata["lowlight"]["status"] == "ok"
    assert "widgets" not in done.metadata and "42" in done.cells[1].outputs[0]["text"]
    summary = json.loads((root / "runs" / "smoke" / "reproduce_summary.json").read_text())
    assert summary["partial"] is False and summary["source_digest"] == reproduce.source_digest()
    assert not [p for p in nb_path.parent.iterdir() if p.name.startswith(".")]   # no temp file left


def test_source_digest_follows_every_source_byte(tmp_path):
    pkg = tmp_path / "lowlight"
    (pkg / "sub" / "__pycache__").mkdir(parents=True)
    (pkg / "__init__.py").write_text("x = 1\n")
    (pkg / "sub" / "a.py").write_text("y = 2\n")
    d0 = reproduce.source_digest(pkg)
    (pkg / "sub" / "__pycache__" / "a.cpython-312.py").write_text("junk")
    (pkg / "notes.txt").write_text("not source")
    assert reproduce.source_digest(pkg) == d0                      # caches and non-.py files ignored
    (pkg / "sub" / "a.py").write_text("y = 2  # a comment\n")
    assert reproduce.source_digest(pkg) != d0                      # any byte counts
    (pkg / "sub" / "a.py").write_text("y = 2\n")
    (pkg / "sub" / "a.py").rename(pkg / "sub" / "b.py")
    assert reproduce.source_digest(pkg) != d0                      # so do the paths
    assert len(reproduce.source_digest()) == 64


# --------------------------------------------------------------------------- atomic writes (lowlight.io)
_WRITER = """
import sys, time
from lowlight.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    open(tmp, "wb").write(b"x" * 1_000_000)
    print(tmp, flush=True)
    time.sleep(120)
"""


def _writer(target):
    p = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True,
                         cwd=config.ROOT)
    tmp = p.stdout.readline().strip()
    assert tmp, "the writer did not start"
    return p, tmp


def test_killed_writer_leaves_no_orphan_after_the_next_write(tmp_path):
    """kill -9 during a checkpoint write leaves `.last.pt.<pid>.<random>.part`; the next write of
    last.pt removes it -- but never the temporary file of a writer that is still running."""
    from lowlight import io

    target = tmp_path / "last.pt"
    dead, dead_tmp = _writer(target)
    live, live_tmp = _writer(target)
    try:
        assert os.path.basename(dead_tmp).startswith(f".last.pt.{dead.pid}.") and dead_tmp.endswith(".part")
        dead.kill()
        dead.wait()
        assert os.path.exists(dead_tmp)                      # the orphan a kill -9 leaves
        io.atomic_write_bytes(target, b"new")
        assert not os.path.exists(dead_tmp)                  # removed by the next write
        assert os.path.exists(live_tmp)                      # another live writer's file is kept
        assert target.read_bytes() == b"new"
    finally:
        live.kill()
        live.wait()


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
    run_root = config.run_dir(config.get_profile("smoke"))
    summary = json.loads((run_root / "reproduce_summary.json").read_text())
    assert [n["notebook"] for n in summary["notebooks"]] == [p.name for p in sources]
    assert all(n["status"] == "ok" for n in summary["notebooks"])
    assert summary["source_digest"] == reproduce.source_digest() and summary["partial"] is False
    for p in sources:
        assert (tmp_path / p.name).exists()
        assert nbformat.read(str(tmp_path / p.name), 4).metadata["lowlight"]["source_digest"] == summary["source_digest"]
        assert hashlib.sha256(p.read_bytes()).hexdigest() == before[p.name]
    assert (run_root / "reproduce_summary.md").read_text().count("| ok |") == len(sources)


def test_an_unusable_output_dir_is_a_one_line_error(tmp_path):
    """``--output-dir`` that is a file, or cannot be created: a raw traceback before; now one line
    naming the option, exit 2, before any notebook runs."""
    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    _nb(root / "notebooks" / "01_a.ipynb", "pass")
    afile = tmp_path / "afile"
    afile.write_text("x")
    r = _run("--output-dir", str(afile), root=root)
    assert r.returncode == 2 and r.stderr == f"error: --output-dir {afile}: exists and is not a folder\n"
    r = _run("--output-dir", str(afile / "sub"), root=root)
    assert r.returncode == 2 and r.stderr.startswith(f"error: --output-dir {afile / 'sub'}: cannot create or write")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr and "[1/1]" not in r.stdout


FIG_CELL = ("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
            "from lowlight import config, viz\nP = config.get_profile(profile)\n"
            "fig = plt.figure(figsize=(1, 1))\nprint(viz.save_fig(fig, 'zz_probe', P))")


def test_a_reproduction_keeps_figures_beside_its_copies_and_kernels_quiet(tmp_path):
    """Without --inplace a notebook's figures go beside the executed copies (the committed figures/
    stay as they are); with --inplace they go where a reader's own run puts them. The kernels run
    over IPC, so no "running over TCP without encryption" warning is printed."""
    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    _nb(root / "notebooks" / "01_fig.ipynb", FIG_CELL)
    r = _run("--profile", "smoke", root=root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (root / "runs" / "smoke" / "executed" / "figures" / "zz_probe.png").is_file()
    assert not (root / "runs" / "smoke" / "figures").exists()
    assert "without encryption" not in r.stdout + r.stderr, (r.stdout + r.stderr)[-2000:]
    r = _run("--profile", "smoke", "--inplace", root=root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (root / "runs" / "smoke" / "figures" / "zz_probe.png").is_file()
    assert "without encryption" not in r.stdout + r.stderr


def test_figures_dir_follows_the_environment(monkeypatch, tmp_path):
    smoke = config.get_profile("smoke")
    monkeypatch.delenv(config.ENV_FIGURES, raising=False)
    assert config.figures_dir(smoke, create=False) == config.RUNS_DIR / "smoke" / "figures"
    assert config.figures_dir(config.get_profile("quick"), create=False) == config.FIGURES_DIR
    monkeypatch.setenv(config.ENV_FIGURES, str(tmp_path / "f"))
    assert config.figures_dir(smoke) == tmp_path / "f" and (tmp_path / "f").is_dir()


# --------------------------------------------------------------------------- widget state (static views)
WIDGET_CELLS = ("import ipywidgets as W\ngone = W.Text(value='never shown')\ngone.close()",
                "s = W.IntSlider(value=7, min=0, max=9, description='probe')\ns")


@pytest.mark.parametrize("inplace", [True, False], ids=["inplace", "papermill"])
def test_executed_notebooks_keep_the_state_of_the_widgets_they_show(tmp_path, inplace):
    """Both paths store the displayed widgets' state in ``metadata.widgets`` (what nbviewer and
    nbconvert's HTML draw sliders from); a widget never shown, and the source's state of an earlier
    run, are not kept. The HTML export then carries the widget instead of its text fallback."""
    from nbconvert import HTMLExporter

    from lowlight.widget_state import WIDGET_STATE_MIME, WIDGET_VIEW_MIME

    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    nb_path = root / "notebooks" / "01_w.ipynb"
    _nb(nb_path, *WIDGET_CELLS)
    book = nbformat.read(str(nb_path), 4)
    book.metadata["widgets"] = {WIDGET_STATE_MIME: {"state": {"stale-id": {"model_name": "IntSliderModel", "state": {}}},
                                                    "version_major": 2, "version_minor": 0}}
    nbformat.write(book, str(nb_path))
    r = _run("--profile", "smoke", *(["--inplace"] if inplace else []), root=root)
    assert r.returncode == 0, r.stdout + r.stderr
    done = nbformat.read(str(nb_path if inplace else root / "runs" / "smoke" / "executed" / "01_w.ipynb"), 4)
    views = [o for c in done.cells if c.cell_type == "code" for o in c.outputs if WIDGET_VIEW_MIME in o.get("data", {})]
    assert len(views) == 1 and "IntSlider(value=7" in views[0]["data"]["text/plain"]
    state = done.metadata["widgets"][WIDGET_STATE_MIME]["state"]
    slider = state[views[0]["data"][WIDGET_VIEW_MIME]["model_id"]]
    assert slider["model_name"] == "IntSliderModel" and slider["state"]["value"] == 7
    assert slider["state"]["description"] == "probe"
    assert {e["model_name"] for e in state.values()} == {"IntSliderModel", "LayoutModel", "SliderStyleModel"}
    assert "stale-id" not in state and not any(e["state"].get("value") == "never shown" for e in state.values())
    html, _ = HTMLExporter().from_notebook_node(done)
    assert f'<script type="{WIDGET_STATE_MIME}">' in html and f'<script type="{WIDGET_VIEW_MIME}">' in html
    assert "IntSlider(value=7" not in html          # the text fallback a static view showed before


def test_widget_state_is_trimmed_to_what_the_outputs_show():
    from lowlight import widget_state as ws

    def entry(name, **state):
        return {"model_name": name, "model_module": "@jupyter-widgets/controls", "state": state}

    book = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("w")
    cell.outputs = [nbformat.v4.new_output("display_data", data={ws.WIDGET_VIEW_MIME: {"model_id": "box"},
                                                                   "text/plain": "VBox(...)"})]
    book.cells = [nbformat.v4.new_markdown_cell("IPY_MODEL_orphan in markdown is no reference"), cell]
    nested = {"output_type": "display_data", "data": {ws.WIDGET_VIEW_MIME: {"model_id": "inner"}}}
    book.metadata["widgets"] = {ws.WIDGET_STATE_MIME: {"version_major": 2, "version_minor": 0, "state": {
        "box": entry("VBoxModel", children=["IPY_MODEL_out", "IPY_MODEL_slider"], layout="IPY_MODEL_lay"),
        "out": entry("OutputModel", outputs=[nested]),
        "inner": entry("ButtonModel"), "slider": entry("IntSliderModel", value=3), "lay": entry("LayoutModel"),
        "orphan": entry("TextModel"), "closed-bar": entry("FloatProgressModel")}}}
    assert ws.displayed_models(book) == {"box", "out", "inner", "slider", "lay"}
    assert ws.keep_displayed_widgets(book) == 5
    assert set(ws.widget_states(book)) == {"box", "out", "inner", "slider", "lay"}
    assert book.metadata["widgets"][ws.WIDGET_STATE_MIME]["version_major"] == 2
    cell.outputs = []                                           # nothing shown: no state at all
    assert ws.keep_displayed_widgets(book) == 0 and "widgets" not in book.metadata


# --------------------------------------------------------------------------- the final step: the explorer figure
def _dark_fine_tuned(path):
    """A fine-tuned-like MODNet checkpoint whose matte is black everywhere (its last bias lowered)."""
    import torch

    from lowlight.io import save_checkpoint
    from lowlight.models import create_model, model_arch

    model = create_model("modnet")
    with torch.no_grad():
        model.fusion.conv_f[1].bias.sub_(40.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, {"model": model.state_dict(), "arch": model_arch(model)})


def _black_share(png, rows, cols) -> float:
    """Share of pure-black pixels in a region (fractions of the height and width) of a PNG."""
    import cv2

    img = cv2.imread(str(png))
    h, w = img.shape[:2]
    region = img[int(rows[0] * h):int(rows[1] * h), int(cols[0] * w):int(cols[1] * w)]
    return float((region.max(axis=2) < 8).mean())


def test_final_step_renders_the_explorer_figure_with_the_fine_tuned_model(tmp_path, modnet_path):
    """After the notebooks, the runner renders notebook 01's explorer figure again where the notebooks'
    figures went, with the fine-tuned MODNet that notebook 06 wrote (here: one whose matte is black, so
    its panel -- bottom right -- is black where the "absent" placeholder is white)."""
    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    (root / "data" / "assets").mkdir(parents=True)
    (root / "data" / "assets" / modnet_path.name).symlink_to(modnet_path)
    _nb(root / "notebooks" / final_steps.EXPLORER_NOTEBOOK, "print('notebook 01 ran')")
    _nb(root / "notebooks" / "02_other.ipynb", "pass")
    smoke = config.get_profile("smoke")
    ckpt = config.RunLayout.of(smoke, root / "runs" / "smoke").checkpoint("modnet", "staged", 0, "stage3")
    _dark_fine_tuned(ckpt)

    r = _run("--profile", "smoke", root=root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.index("[final] explorer figure") > r.stdout.index("02_other.ipynb")   # after every notebook
    fig = root / "runs" / "smoke" / "executed" / "figures" / "01_explorer_static.png"
    assert fig.is_file() and not (root / "runs" / "smoke" / "figures").exists()
    step, = json.loads((root / "runs" / "smoke" / "reproduce_summary.json").read_text())["final_steps"]
    assert step["status"] == "ok" and step["models"] == ["original MODNet", "fine-tuned MODNet"]
    assert step["checkpoint"] == "runs/smoke/train/modnet-staged/seed0/stage3/last.pt" and step["missing"] is None
    assert "rendered again with original MODNet and fine-tuned MODNet" in (
        root / "runs" / "smoke" / "reproduce_summary.md").read_text()
    assert _black_share(fig, (0.6, 1.0), (0.72, 0.93)) > 0.6       # the fine-tuned panel: a black matte
    assert _black_share(fig, (0.0, 0.45), (0.72, 0.93)) < 0.05     # above it, the histogram: no black block
    # the same region of the figure when the fine-tuned model is absent: the white placeholder
    assert _black_share(_placeholder_figure(tmp_path), (0.6, 1.0), (0.72, 0.93)) < 0.1


def _placeholder_figure(tmp_path):
    """The explorer figure without a fine-tuned model (a stub original: no weights to load)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from lowlight.viz import explorer_static, widgets

    class Grey(torch.nn.Module):
        def forward(self, x):
            return x.mean(1, keepdim=True)

    mattes = widgets.MatteModels({widgets.ORIGINAL: Grey()}, missing="fine-tuned MODNet absent: no last.pt")
    fig, _ = explorer_static.render_static(mattes)
    path = tmp_path / "placeholder.png"
    fig.savefig(path, dpi=explorer_static.DPI, bbox_inches="tight")
    plt.close(fig)
    return path


@pytest.mark.slow
def test_final_step_in_place_renders_into_the_profiles_figures(tmp_path, modnet_path):
    """With --inplace the figure goes where a reader's own run puts figures (``figures/`` on quick,
    ``runs/<profile>/figures/`` otherwise); without a checkpoint it says the fine-tuned model is absent."""
    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    (root / "data" / "assets").mkdir(parents=True)
    (root / "data" / "assets" / modnet_path.name).symlink_to(modnet_path)
    _nb(root / "notebooks" / final_steps.EXPLORER_NOTEBOOK, "pass")
    r = _run("--profile", "smoke", "--inplace", root=root)
    assert r.returncode == 0, r.stdout + r.stderr
    step, = json.loads((root / "runs" / "smoke" / "reproduce_summary.json").read_text())["final_steps"]
    assert step["status"] == "ok" and step["figure"] == "runs/smoke/figures/01_explorer_static.png"
    assert step["models"] == ["original MODNet"] and "fine-tuned MODNet absent" in step["missing"]
    assert (root / "runs" / "smoke" / "figures" / "01_explorer_static.png").is_file()
    assert not (root / "runs" / "smoke" / "executed" / "figures").exists()


def test_no_final_step_without_notebook_01(tmp_path):
    """A run that did not execute notebook 01 leaves its figure alone (and records no final step)."""
    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    _nb(root / "notebooks" / final_steps.EXPLORER_NOTEBOOK, "raise RuntimeError('notebook 01 failed')")
    r = _run("--profile", "smoke", root=root)
    assert r.returncode == 1 and "[final]" not in r.stdout
    assert json.loads((root / "runs" / "smoke" / "reproduce_summary.json").read_text())["final_steps"] == []
    assert not (root / "runs" / "smoke" / "executed" / "figures" / "01_explorer_static.png").exists()
