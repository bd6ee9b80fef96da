"""The README's results come from the committed notebook outputs (issue 24).

Rule: every number with a decimal point in the README's "Results" section, up to the reproduction timings
(the article's own rows excluded: they quote the article), appears in some committed notebook's output --
exactly, or as an output number rounded to the README's number of decimals (27.360 may be quoted as 27.36,
0.4159 as 0.416). Whole numbers (percent changes such as "+119 %") are not checked. A README that quotes a
number no notebook printed fails here (a stale number such as last run's 13.986 is caught). The check is
"printed somewhere", not "printed at the right place": a common number can match an unrelated output."""
from __future__ import annotations

import json
import re
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

from lowlight import config, reproduce

NUMBER = re.compile(r"\d+\.\d+")


def _results_section() -> str:
    text = (config.ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Results")
    return text[start:text.index("Last reproduction", start)]


def _output_numbers() -> set[str]:
    found = set()
    for path in reproduce.discover():
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            for out in cell.get("outputs", []):
                text = "".join(out.get("text", "")) + "".join((out.get("data") or {}).get("text/plain", ""))
                found.update(NUMBER.findall(text))
    return found


def _matches(quoted: str, printed: set[str]) -> bool:
    if quoted in printed:
        return True
    step = Decimal(1).scaleb(-len(quoted.split(".")[1]))
    want = Decimal(quoted)
    return any(len(p.split(".")[1]) > len(quoted.split(".")[1])
               and want in (Decimal(p).quantize(step, ROUND_HALF_UP), Decimal(p).quantize(step, ROUND_HALF_EVEN))
               for p in printed)


def test_the_rounding_rule():
    printed = {"27.360", "0.4159", "11.224"}
    assert _matches("27.36", printed) and _matches("0.416", printed) and _matches("11.22", printed)
    assert not _matches("27.37", printed) and not _matches("0.415", printed) and not _matches("11.2240", printed)


def test_every_result_in_the_readme_was_printed_by_a_notebook():
    printed = _output_numbers()
    assert len(printed) > 500                                       # the notebooks carry their outputs
    missing = []
    for line in _results_section().splitlines():
        if line.startswith("| **article**"):
            continue
        missing += [f"{n}  in: {line.strip()[:100]}" for n in NUMBER.findall(line) if not _matches(n, printed)]
    assert not missing, ("numbers in the README's Results that no committed notebook output shows (update the "
                         "README from the outputs, or re-execute the notebooks):\n  " + "\n  ".join(missing))
