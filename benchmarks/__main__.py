"""Run the benchmarks: ``python -m benchmarks`` (all) or ``python -m benchmarks encoders metrics``.

Each ``benchmarks/bench_NAME.py`` runs with its defaults; for its own options run it alone, e.g.
``python -m benchmarks.bench_encoders --help``. Benchmarks are not tests: they print measurements
(and ratios measured in the same run) and are run on purpose.
"""
import argparse
import importlib
import pkgutil
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))


def main(argv=None):
    names = available()
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0],
                                 epilog=f"available: {', '.join(names)}")
    ap.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    ap.add_argument("--list", action="store_true", help="list the benchmarks with their first docstring line")
    args = ap.parse_args(argv)
    if args.list:
        for name in names:
            doc = (importlib.import_module(f"benchmarks.bench_{name}").__doc__ or "").strip().splitlines()
            print(f"{name:10s} {doc[0] if doc else ''}")
        return
    unknown = [n for n in args.names if n not in names]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(names)}")
    for name in args.names or names:
        print(f"\n=== benchmarks/bench_{name}.py", flush=True)
        importlib.import_module(f"benchmarks.bench_{name}").main()


if __name__ == "__main__":
    main()
