"""The committed notebooks provably come from the committed code.

``python -m lowlight.reproduce`` records in each executed notebook's ``metadata.lowlight`` the
SHA-256 of the package's source (:func:`lowlight.reproduce.source_digest`) and the profile. A
committed notebook whose digest is missing or differs from the current package's shows outputs
that the current code may not produce: re-execute the notebooks and commit them.
"""
import json
import re

from lowlight import reproduce

#: the profile of the committed outputs (README, figures/)
COMMITTED_PROFILE = "quick"


def test_committed_notebooks_carry_the_current_source_digest():
    current = reproduce.source_digest()
    notebooks = reproduce.discover()
    assert notebooks, "no notebooks/NN_*.ipynb found"
    problems = []
    for path in notebooks:
        meta = (json.loads(path.read_text(encoding="utf-8")).get("metadata") or {}).get("lowlight") or {}
        digest = meta.get("source_digest")
        if not digest:
            problems.append(f"{path.name}: no metadata.lowlight.source_digest (not executed by lowlight.reproduce)")
        elif digest != current:
            problems.append(f"{path.name}: executed with source {digest[:12]}…, the package is now {current[:12]}…")
        elif meta.get("profile") != COMMITTED_PROFILE:
            problems.append(f"{path.name}: executed on profile {meta.get('profile')!r}, expected {COMMITTED_PROFILE!r}")
        elif meta.get("status", "ok") != "ok":
            problems.append(f"{path.name}: its execution {meta.get('status')} (partly executed outputs)")
    assert not problems, (
        f"{len(problems)} of {len(notebooks)} committed notebook(s) do not come from the current code:\n  "
        + "\n  ".join(problems)
        + f"\nre-execute with `{reproduce.INPLACE_COMMAND}` (about 40 min on 2 cores) and commit the notebooks")


ABSOLUTE_PATH = re.compile(r"(?<![\w.~])(/(?:work|root|home|tmp|Users|mnt|opt|var|private)/[^\s'\"]*|[A-Za-z]:\\\\[^\s'\"]*)")


def _output_texts(book: dict):
    for i, cell in enumerate(book.get("cells", [])):
        for out in cell.get("outputs", []):
            data = out.get("data") or {}
            for key in ("text", "traceback"):
                if key in out:
                    yield i, "".join(out[key]) if isinstance(out[key], list) else str(out[key])
            for mime in ("text/plain", "text/markdown", "text/html"):
                if mime in data:
                    yield i, "".join(data[mime]) if isinstance(data[mime], list) else str(data[mime])


def test_no_committed_output_holds_a_machine_path():
    """Printed paths are relative to the repository (``config.display_path``): an output that shows
    where the course ran on some machine tells a reader nothing and differs on every clone."""
    found = []
    for path in reproduce.discover():
        for i, text in _output_texts(json.loads(path.read_text(encoding="utf-8"))):
            found += [f"{path.name}, cell {i}: {m.group(0)[:80]}" for m in ABSOLUTE_PATH.finditer(text)]
    assert not found, "absolute paths in committed outputs:\n  " + "\n  ".join(found[:20])


def test_the_path_finder_sees_machine_paths():
    assert ABSOLUTE_PATH.search("-> /work/main/data/llmatte/quick-1") and ABSOLUTE_PATH.search("PosixPath('/home/a/x.png')")
    assert not ABSOLUTE_PATH.search("-> data/llmatte/quick-1 and runs/quick/eval")
