"""``docs/bad-inputs.md`` stays true: every row names the test that pins its behaviour, and that
test exists and is collected by pytest (so the suite that CI runs executes it). A row whose test
is renamed or removed fails here."""
from __future__ import annotations

import ast
import re
import subprocess
import sys

from lowlight import config

DOC = config.ROOT / "docs" / "bad-inputs.md"
ROW = re.compile(r"^\|(?P<input>[^|]+)\|(?P<what>[^|]+)\|\s*`(?P<test>tests/[\w/]+\.py::\w+)`\s*\|\s*$")


def _rows() -> list[dict]:
    rows = [m.groupdict() for line in DOC.read_text(encoding="utf-8").splitlines() if (m := ROW.match(line))]
    assert len(rows) >= 30, f"{DOC}: expected the table of bad inputs (>= 30 rows), parsed {len(rows)}"
    return rows


def test_every_row_names_a_test_that_exists():
    missing = []
    defined: dict[str, set[str]] = {}
    for row in _rows():
        path, name = row["test"].split("::")
        if path not in defined:
            file = config.ROOT / path
            tree = ast.parse(file.read_text(encoding="utf-8")) if file.is_file() else ast.Module(body=[])
            defined[path] = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        if name not in defined[path]:
            missing.append(f"{row['input'].strip()}: {row['test']}")
    assert not missing, f"{DOC.name} names tests that do not exist:\n  " + "\n  ".join(missing)


def test_every_named_test_is_collected():
    """pytest collects each named test (a parametrised one at least once)."""
    ids = sorted({row["test"] for row in _rows()})
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *ids],
                       capture_output=True, text=True, cwd=config.ROOT, timeout=600)
    assert r.returncode == 0, f"collection failed:\n{r.stdout[-3000:]}{r.stderr[-2000:]}"
    collected = {line.split("[")[0] for line in r.stdout.splitlines() if "::" in line}
    assert set(ids) <= collected, f"not collected: {sorted(set(ids) - collected)}"


def test_the_row_parser_sees_a_row():
    line = "| a 0/1 mask | refused | `tests/test_metrics.py::test_x` |"
    assert ROW.match(line).group("test") == "tests/test_metrics.py::test_x"
    assert ROW.match("| header | what | test |") is None
