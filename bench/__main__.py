"""Run every benchmark module in bench/ (or the ones named), one after another."""
from __future__ import annotations

import pkgutil
import runpy
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    wanted = [n if n.startswith("bench_") else f"bench_{n}" for n in argv] or names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(names)}")
        return 2
    failed: list[str] = []
    for name in wanted:
        print(f"\n=== {name} ===", flush=True)
        sys.argv = [f"bench/{name}.py"]  # each benchmark parses its own (default) arguments
        try:
            runpy.run_module(f"bench.{name}", run_name="__main__")
        except SystemExit as exc:  # a benchmark's own sys.exit must not end the others
            if exc.code not in (None, 0):
                failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
