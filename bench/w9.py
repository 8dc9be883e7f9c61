#!/usr/bin/env python3
"""
W9 (bench/README.md): instruction counts under callgrind, and the CI check.

  python bench/w9.py                 # measure, print per-workload counts
  python bench/w9.py --check         # compare with bench/w9_baseline.json
  python bench/w9.py --update        # rewrite bench/w9_baseline.json

One callgrind run of C{bench/w9_work.py} (PYTHONHASHSEED=0, one process,
no sockets) gives every workload's instructions per iteration: the
workloads are separated by callgrind dumps (C{--dump-before=crc32}).
C{--check} exits 1 when a workload costs more than C{--tolerance} percent
(default 3) above the committed baseline, 0 otherwise (2 if valgrind
failed).  The baseline holds counts for one Python and one valgrind:
another interpreter build gives other counts, so the check compares only
when the Python version and executable match the baseline's, and says so
otherwise (exit 0, "skipped").
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from w9_work import WORKLOAD_NAMES  # noqa: E402

BASELINE = os.path.join(HERE, "w9_baseline.json")
#: Iterations of each workload per callgrind run.
ITERATIONS = 200


def measure(iterations: int = ITERATIONS, work: str | None = None) -> dict[str, float]:
    """
    @param work: the C{w9_work.py} to run (by default this directory's; a
        copy placed in another tree's C{bench/} measures that tree's code).

    @return: instructions per iteration of each workload.
    """
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed (make deps installs it)")
    directory = tempfile.mkdtemp(prefix="stoxgw-w9-")
    try:
        out = os.path.join(directory, "cg.out")
        subprocess.run(
            [
                "valgrind", "--tool=callgrind", "--dump-before=crc32",
                f"--callgrind-out-file={out}",
                sys.executable, work or os.path.join(HERE, "w9_work.py"), str(iterations),
            ],
            env=dict(os.environ, PYTHONHASHSEED="0"),
            check=True, capture_output=True, timeout=900,
        )
        totals: dict[int, int] = {}
        for path in glob.glob(out + ".*"):
            number = int(path.rsplit(".", 1)[1])
            with open(path) as f:
                match = re.search(r"^totals:\s*(\d+)", f.read(), re.M)
            assert match is not None, path
            totals[number] = int(match.group(1))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    # Dump 1: start-up and set-up; dumps 2..: the workloads, in order.
    if len(totals) != len(WORKLOAD_NAMES) + 1:
        raise RuntimeError(f"expected {len(WORKLOAD_NAMES) + 1} callgrind dumps, got {len(totals)}")
    return {
        name: totals[index + 2] / iterations for index, name in enumerate(WORKLOAD_NAMES)
    }


def identity() -> dict[str, str]:
    """
    @return: what the counts depend on besides the code.
    """
    version = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "python": platform.python_version(),
        "executable": os.path.realpath(sys.executable),
        "valgrind": version,
    }


def report() -> dict[str, Any]:
    """
    W9 for C{bench/run.py}: counts now, against the committed baseline.
    """
    counts = measure()
    baseline = {}
    if os.path.exists(BASELINE):
        with open(BASELINE) as f:
            baseline = json.load(f).get("instructions", {})
    lines = [
        "### W9: instructions per operation under callgrind (PYTHONHASHSEED=0)",
        "",
        f"One callgrind run, {ITERATIONS} iterations per workload; ratio = now / committed "
        "baseline (`bench/w9_baseline.json`); CI fails above 1.03.",
        "",
        "| workload | instructions | baseline | ratio |",
        "|---|---|---|---|",
    ]
    for name, value in counts.items():
        base = baseline.get(name)
        ratio = f"{value / base:.3f}" if base else "-"
        lines.append(f"| {name} | {value:,.0f} | {base or 0:,.0f} | {ratio} |")
    return {"instructions": counts, "baseline": baseline, "markdown": "\n".join(lines)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--update", action="store_true")
    parser.add_argument("--tolerance", type=float, default=3.0, help="percent")
    options = parser.parse_args()
    try:
        counts = measure()
    except (RuntimeError, subprocess.SubprocessError) as e:
        print(f"W9: cannot measure: {e}", file=sys.stderr)
        return 2
    if options.update:
        with open(BASELINE, "w") as f:
            json.dump({"identity": identity(), "iterations": ITERATIONS,
                       "instructions": {k: round(v) for k, v in counts.items()}},
                      f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"wrote {BASELINE}")
    if not options.check:
        for name, value in counts.items():
            print(f"{name}: {value:,.0f} instructions")
        return 0
    with open(BASELINE) as f:
        baseline = json.load(f)
    if baseline["identity"]["python"] != identity()["python"] or baseline["identity"]["executable"] != identity()["executable"]:
        print(f"W9 check skipped: baseline made with {baseline['identity']}, here {identity()}")
        return 0
    failed = []
    for name, value in counts.items():
        base = baseline["instructions"][name]
        change = (value / base - 1) * 100
        flag = "REGRESSION" if change > options.tolerance else "ok"
        print(f"W9 {name}: {value:,.0f} instructions, baseline {base:,}, {change:+.2f}% {flag}")
        if change > options.tolerance:
            failed.append(name)
    if failed:
        print(f"W9 check FAILED (> +{options.tolerance}%): {', '.join(failed)}")
        return 1
    print(f"W9 check passed (tolerance +{options.tolerance}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
