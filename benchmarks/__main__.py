"""Run every benchmark: ``python -m benchmarks`` (or ``python -m benchmarks simulate metrics``)."""
import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    here = Path(__file__).parent
    names = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    chosen = argv or names
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; available: {names}")
    for name in chosen:
        print(f"\n=== benchmarks/bench_{name}.py")
        importlib.import_module(f"benchmarks.bench_{name}").main()


if __name__ == "__main__":
    main()
