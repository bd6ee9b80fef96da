"""The package's shape: inference never imports training, computation never imports matplotlib
(only ``lowlight.viz`` does), and no module grows past a readable length."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lowlight
from lowlight import config

PACKAGE = Path(lowlight.__file__).resolve().parent
MAX_LINES = 520
#: modules that compute (data, models, metrics, evaluation): none may pull in matplotlib
COMPUTATION = ("lowlight.evaluation", "lowlight.inference", "lowlight.models", "lowlight.metrics",
               "lowlight.simulate", "lowlight.data")


def _child(code: str, timeout: float = 300) -> dict:
    """Run ``code`` in a fresh interpreter (one thread, smoke profile); its last stdout line is JSON."""
    env = dict(os.environ, LOWLIGHT_PROFILE="smoke", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                       cwd=config.ROOT, timeout=timeout)
    assert r.returncode == 0, f"child failed (exit {r.returncode}):\n{r.stderr[-3000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_predict_never_imports_training_nor_matplotlib(tmp_path):
    """The batch CLI, run on a real photo with the default model, stays on the inference side."""
    res = _child(f"""
        import json, sys
        import cv2
        from skimage import data
        img = cv2.resize(data.astronaut(), (64, 64), interpolation=cv2.INTER_AREA)
        inp = {str(tmp_path / "in")!r}
        import os
        os.makedirs(inp)
        cv2.imwrite(os.path.join(inp, "astronaut.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        after_setup = sorted(m for m in sys.modules if m.startswith(("matplotlib", "lowlight.training")))
        import lowlight.predict as predict
        after_import = sorted(m for m in sys.modules if m.startswith(("matplotlib", "lowlight.training")))
        rc = predict.main(["--input", inp, "--output", {str(tmp_path / "out")!r}, "--no-progress",
                           "--device", "cpu"])
        after_main = sorted(m for m in sys.modules if m.startswith(("matplotlib", "lowlight.training")))
        print(json.dumps({{"rc": rc, "setup": after_setup, "import": after_import, "main": after_main}}))
        """)
    assert res["setup"] == [], f"the test's own set-up imported {res['setup']} (skimage/cv2 should not)"
    assert res["rc"] == 0
    assert (tmp_path / "out" / "astronaut_alpha.png").is_file() and (tmp_path / "out" / "astronaut_rgba.png").is_file()
    assert res["import"] == [], f"`import lowlight.predict` imported {res['import']}"
    assert res["main"] == [], f"predict.main() on a folder imported {res['main']}"


@pytest.fixture(scope="module")
def imports() -> dict:
    """Import each computation module in turn in one fresh interpreter and record what each new
    import adds (the first one that pulls in plotting or training code is named); then call
    the evaluation's LL-Matte item loader and record what that call adds."""
    return _child(f"""
        import json, sys

        def watched():
            return {{m for m in sys.modules if m.split(".")[0] == "matplotlib"
                    or m.startswith(("lowlight.training", "lowlight.viz"))}}

        out = {{}}
        for name in {list(COMPUTATION)!r}:
            before = watched()
            __import__(name)
            out[name] = sorted(watched() - before)[:8]
        import lowlight.evaluation as E
        before = watched()
        items = E.llmatte_items("smoke")
        out["llmatte_items()"] = sorted(watched() - before)[:8]
        out["n_items"] = len(items)
        print(json.dumps(out))
        """)


def test_computation_modules_do_not_import_matplotlib(imports):
    offenders = {k: v for k, v in imports.items() if k in COMPUTATION and v}
    assert not offenders, f"these imports pulled in plotting or training code: {offenders}"


def test_evaluation_does_not_call_into_training(imports):
    """``lowlight.training`` promises that nothing under ``lowlight.evaluation`` imports it: loading
    the evaluation's test items must not either."""
    assert imports["n_items"] == config.PROFILES["smoke"].ft_n[2]
    assert imports["llmatte_items()"] == [], (
        f"lowlight.evaluation.llmatte_items() imported {imports['llmatte_items()']}")


def test_no_module_is_longer_than_the_limit():
    lengths = {str(p.relative_to(PACKAGE.parent)): len(p.read_text(encoding="utf-8").splitlines())
               for p in sorted(PACKAGE.rglob("*.py"))}
    assert len(lengths) > 20            # the walk found the package
    offenders = {k: n for k, n in lengths.items() if n > MAX_LINES}
    assert not offenders, (f"modules longer than {MAX_LINES} lines (split them by concept): "
                           + ", ".join(f"{k} ({n} lines)" for k, n in sorted(offenders.items())))
