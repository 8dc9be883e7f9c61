"""
Run every fuzzing harness of C{fuzz/} for a number of inputs, a few at a
time, and report per harness: inputs run, time, inputs per second, coverage
(libFuzzer's C{cov}: instrumented edges of C{stoxgw} reached; C{ft}:
features) and the outcome.  Exit status 1 if any harness found a crash (its
input is then under C{fuzz/crashes/}), 2 on a usage error.

    python fuzz/run.py [--runs 1000000] [--jobs 2] [--max-time SECONDS]
                       [--only NAME,...] [--seed N]

Each harness keeps its corpus in C{fuzz/corpus/<name>/} (seeded from the
test fixtures, grown by the runs) and its libFuzzer log in
C{fuzz/logs/<name>.log}.  A saved crash replays with::

    python fuzz/fuzz_<name>.py fuzz/crashes/<name>-crash-<sha1>

C{make fuzz} runs this with C{FUZZ_ARGS}.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass(frozen=True)
class Harness:
    """
    One harness and how to run it.

    @ivar name: The C{fuzz_<name>.py} module.
    @ivar dictionaries: The C{dicts/<name>.dict} files given to libFuzzer
        (C{common} comes first).
    @ivar maxLength: libFuzzer's C{-max_len}.
    @ivar cost: Relative time per input, to start the slow ones first.
    """

    name: str
    dictionaries: tuple[str, ...]
    maxLength: int = 4096
    cost: float = 1.0


#: Every harness (README.md says what each covers).
HARNESSES = (
    Harness("sip_datagram", ("sip", "sdp"), 8192, 2),
    Harness("sip_stream", ("sip",), 8192, 10),
    Harness("sip_headers", ("sip",), 8192, 0.9),
    Harness("sdp", ("sdp",), 8192, 1.5),
    Harness("msrp_parser", ("msrp",), 4096, 6.3),
    Harness("msrp_connection", ("msrp",), 4096, 14),
    Harness("msrp_values", ("msrp",), 8192, 0.2),
    Harness("msrp_relay", ("msrp",), 4096, 1.6),
    Harness("cpim", ("cpim",), 4096, 3),
    Harness("iscomposing", ("xml",), 4096, 0.1),
    Harness("conferenceinfo", ("xml",), 8192, 2.4),
    Harness("xmpp_room", ("xmpp",), 4096, 9.5),
    Harness("xmpp_occupant", ("xmpp",), 4096, 2),
)


@dataclass
class Result:
    """
    What one harness run gave.
    """

    harness: Harness
    returncode: int
    seconds: float
    inputs: int | None
    coverage: int | None
    features: int | None
    corpus: int | None
    crash: str | None
    error: str | None


_DONE_RE = re.compile(r"^#(\d+)\s+\S+\s+cov: (\d+) ft: (\d+) corp: (\d+)", re.M)
_UNITS_RE = re.compile(r"^stat::number_of_executed_units: (\d+)", re.M)
_ARTIFACT_RE = re.compile(r"Test unit written to (\S+)")
_EXCEPTION_RE = re.compile(r"=== Uncaught Python exception: ===\n(.*)")
_LIBFUZZER_ERROR_RE = re.compile(r"==\d+== ERROR: libFuzzer: (.*)")


def dictionary(harness: Harness, directory: str) -> str:
    """
    Join C{common.dict} and the harness's dictionaries into one file
    (libFuzzer takes a single C{-dict}).

    @return: Its path.
    """
    path = os.path.join(directory, f"{harness.name}.dict")
    with open(path, "w", encoding="ascii") as out:
        for name in ("common", *harness.dictionaries):
            with open(os.path.join(HERE, "dicts", name + ".dict"), encoding="ascii") as f:
                out.write(f.read())
    return path


def runOne(harness: Harness, options: argparse.Namespace) -> Result:
    """
    Run one harness to completion (or its first crash).
    """
    corpus = os.path.join(options.workdir, "corpus", harness.name)
    logs = os.path.join(options.workdir, "logs")
    os.makedirs(logs, exist_ok=True)
    os.makedirs(options.crashes, exist_ok=True)
    command = [
        sys.executable,
        os.path.join(HERE, f"fuzz_{harness.name}.py"),
        "--corpus",
        corpus,
        f"-runs={options.runs}",
        f"-max_len={harness.maxLength}",
        f"-dict={dictionary(harness, logs)}",
        f"-artifact_prefix={os.path.join(options.crashes, harness.name)}-",
        f"-timeout={options.timeout}",
        f"-rss_limit_mb={options.rss_limit}",
        f"-seed={options.seed}",
        "-print_final_stats=1",
        "-print_pcs=0",
        "-reduce_inputs=1",
    ]
    if options.max_time:
        command.append(f"-max_total_time={options.max_time}")
    log = os.path.join(logs, f"{harness.name}.log")
    start = time.monotonic()
    with open(log, "w", encoding="utf-8", errors="replace") as out:
        completed = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=os.path.dirname(HERE)
        )
    seconds = time.monotonic() - start
    with open(log, encoding="utf-8", errors="replace") as f:
        text = f.read()
    return parse(harness, completed.returncode, seconds, text)


def parse(harness: Harness, returncode: int, seconds: float, text: str) -> Result:
    """
    Read libFuzzer's output.
    """
    done = _DONE_RE.findall(text)
    units = _UNITS_RE.findall(text)
    inputs = int(units[-1]) if units else (int(done[-1][0]) if done else None)
    coverage = features = corpus = None
    if done:
        coverage, features, corpus = (int(v) for v in done[-1][1:])
    artifact = _ARTIFACT_RE.findall(text)
    error = None
    exception = _EXCEPTION_RE.findall(text)
    if exception:
        error = exception[-1].strip()
    elif returncode != 0:
        found = _LIBFUZZER_ERROR_RE.findall(text)
        error = found[-1].strip() if found else f"exit status {returncode}"
    return Result(
        harness,
        returncode,
        seconds,
        inputs,
        coverage,
        features,
        corpus,
        artifact[-1] if artifact else None,
        error,
    )


def report(results: list[Result]) -> str:
    """
    The table printed at the end.
    """

    def number(value: int | None) -> str:
        return "?" if value is None else f"{value:,}"

    rows = [("harness", "inputs", "time", "inputs/s", "cov", "ft", "corpus", "result")]
    for r in results:
        rate = f"{r.inputs / r.seconds:,.0f}" if r.inputs and r.seconds else "?"
        outcome = "ok" if r.returncode == 0 else f"CRASH: {r.error}"
        if r.crash:
            outcome += f" ({os.path.relpath(r.crash)})"
        rows.append(
            (
                r.harness.name,
                number(r.inputs),
                f"{r.seconds:,.0f} s",
                rate,
                number(r.coverage),
                number(r.features),
                number(r.corpus),
                outcome,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells) + "  " + row[-1])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """
    Run the harnesses; print the table.

    @return: The exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000, help="inputs per harness")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="harnesses run at once (default: the number of CPUs)")
    parser.add_argument("--max-time", type=int, default=0,
                        help="stop each harness after this many seconds (0: no limit)")
    parser.add_argument("--only", default="", help="comma-separated harness names")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer's -seed")
    parser.add_argument("--timeout", type=int, default=30,
                        help="seconds one input may take before it counts as a hang")
    parser.add_argument("--rss-limit", type=int, default=2048, help="MB (libFuzzer's -rss_limit_mb)")
    parser.add_argument("--workdir", default=HERE, help="where corpus/ and logs/ go")
    parser.add_argument("--crashes", default=os.path.join(HERE, "crashes"),
                        help="where crashing inputs are saved")
    parser.add_argument("--list", action="store_true", help="list the harnesses")
    options = parser.parse_args(argv)
    if options.list:
        for h in HARNESSES:
            print(h.name)
        return 0
    selected = list(HARNESSES)
    if options.only:
        names = options.only.split(",")
        unknown = set(names) - {h.name for h in HARNESSES}
        if unknown:
            parser.error(f"unknown harness: {', '.join(sorted(unknown))}")
        selected = [h for h in HARNESSES if h.name in names]
    try:
        import atheris  # noqa: F401
    except ImportError:
        parser.error("atheris is not installed: pip install '.[fuzz]' (make fuzz does)")
    print(
        f"{len(selected)} harnesses, {options.runs:,} inputs each, {options.jobs} at a time",
        flush=True,
    )
    # Longest first, so that the jobs finish together.
    ordered = sorted(selected, key=lambda h: -h.cost)
    results: dict[str, Result] = {}
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        futures = {pool.submit(runOne, h, options): h for h in ordered}
        for future in as_completed(futures):
            h = futures[future]
            result = future.result()
            results[h.name] = result
            status = "ok" if result.returncode == 0 else f"CRASH: {result.error}"
            print(
                f"  {h.name}: {result.inputs or 0:,} inputs in {result.seconds:,.0f} s, {status}",
                flush=True,
            )
    ordered_results = [results[h.name] for h in selected]
    print()
    print(report(ordered_results))
    total = sum(r.seconds for r in ordered_results)
    print(f"\nharness time {total:,.0f} s; logs in {os.path.join(options.workdir, 'logs')}")
    return 1 if any(r.returncode != 0 for r in ordered_results) else 0


if __name__ == "__main__":
    sys.exit(main())
