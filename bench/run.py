"""
The benchmark suite (issue 12; bench/README.md): runs the selected
workloads, each as >= 5 interleaved runs of every variant with its same-run
baseline, prints median and min-max and the ratio, and writes
C{bench/results.json} and C{bench/report.md}.

  python bench/run.py [--workloads w1,w7,w8,w9] [--runs 5] [--w1-messages 200]
      [--w8-rate 100] [--w8-duration 20] [--w8-churns 3]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import TOP, summary  # noqa: E402


def fmt(s: dict[str, float], unit: str = "") -> str:
    return f"{s['median']:.2f}{unit} ({s['min']:.2f}-{s['max']:.2f})"


def interleave(
    runs: int, variants: dict[str, Callable[[], dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """
    Run each variant C{runs} times, round-robin (variant A run 1, variant B
    run 1, ..., variant A run 2, ...), so that drift of the machine hits
    all of them alike.
    """
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for i in range(runs):
        for name, fn in variants.items():
            r = fn()
            print(f"  run {i + 1} {name}: " + ", ".join(
                f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()
            ), flush=True)
            results[name].append(r)
    return results


def aggregate(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    keys = [k for k, v in rows[0].items() if isinstance(v, (int, float))]
    return {k: summary([r[k] for r in rows]) for k in keys}


def workloadW1(options: argparse.Namespace) -> dict[str, Any]:
    import w1

    head = w1.headTree()
    try:
        variants = {}
        for nagle in (True, False):
            label = "nagle-on(default)" if nagle else "nagle-off"
            variants[f"before/{label}"] = (
                lambda n=nagle: w1.oneRun(head, n, options.w1_messages)
            )
            variants[f"after/{label}"] = (
                lambda n=nagle: w1.oneRun(TOP, n, options.w1_messages)
            )
        raw = interleave(options.runs, variants)
    finally:
        shutil.rmtree(head, ignore_errors=True)
    agg = {name: aggregate(rows) for name, rows in raw.items()}
    lines = [
        "### W1: full-stack latency, 2 SIP + 2 XMPP users, one room, one message in flight",
        "",
        f"{options.w1_messages} messages each way per run, {options.runs} interleaved runs per variant; "
        "ms, median of the per-run percentiles (min-max over runs). `before` = `git archive HEAD` "
        "(no TCP_QUICKACK on the component link), `after` = this work tree. "
        "P_x = XMPP -> XMPP through Prosody alone, same messages. "
        "Gateway-added = path through the gateway minus P_x (same run). "
        "Target: added p50 <= 0.5 ms, p99 <= 2 ms, both directions, default Prosody.",
        "",
        "| variant | P_x p50 | XMPP->SIP p50 | XMPP->SIP p99 | added X->S p50 | SIP->XMPP p50 | SIP->XMPP p99 | added S->X p50 | added X->S p99 | added S->X p99 | ratio X->S/P_x p50 | lost |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, a in agg.items():
        ratio = a["x2s_p50"]["median"] / a["x2x_p50"]["median"]
        lines.append(
            f"| {name} | {fmt(a['x2x_p50'])} | {fmt(a['x2s_p50'])} | {fmt(a['x2s_p99'])} | "
            f"{fmt(a['added_x2s_p50'])} | {fmt(a['s2x_p50'])} | {fmt(a['s2x_p99'])} | "
            f"{fmt(a['added_s2x_p50'])} | {fmt(a['added_x2s_p99'])} | {fmt(a['added_s2x_p99'])} | {ratio:.2f} | {int(a['lost']['max'])} |"
        )
    return {"raw": raw, "summary": agg, "markdown": "\n".join(lines)}


def workloadW9(options: argparse.Namespace) -> dict[str, Any]:
    import w9

    return w9.report()


def workloadW7(options: argparse.Namespace) -> dict[str, Any]:
    import w78

    raw = interleave(options.runs, {"w7": lambda: w78.w7Run(options.w7_sessions, options.w7_rooms)})
    a = aggregate(raw["w7"])
    perSession = a["kb_per_session"]
    lines = [
        "### W7: memory per idle bridged SIP session",
        "",
        f"{options.w7_sessions} SIP sessions (own MSRP connection, dialog, MUC occupant) in "
        f"{options.w7_rooms} rooms, idle; gateway RSS growth / sessions (baseline: the same "
        f"gateway idle, same run); {options.runs} runs, median (min-max). Kernel socket buffers "
        "are not in RSS (`tcp_mem_pages` in results.json). Target <= 7 KB per session.",
        "",
        "| KB RSS per session | idle gateway RSS (KB) | Python objects per session | fds per session | set-ups/s | failed | target |",
        "|---|---|---|---|---|---|---|",
        f"| {fmt(perSession)} | {fmt(a['idle_rss_kb'])} | {fmt(a['objects_per_session'])} | "
        f"{fmt(a['fds_per_session'])} | {fmt(a['setups_per_s'])} | {int(a['failed']['max'])} | "
        f"{'met' if perSession['median'] <= 7 else 'MISSED by %.1f KB' % (perSession['median'] - 7)} |",
    ]
    return {"raw": raw, "summary": a, "markdown": "\n".join(lines)}


def workloadW8(options: argparse.Namespace) -> dict[str, Any]:
    import w78

    churns = options.w8_churns
    raw = interleave(
        options.runs, {"w8": lambda: w78.w8Run(options.w8_rate, options.w8_duration, churns)}
    )
    a = aggregate(raw["w8"])
    steady = [a[f"rss_change_pct_{n}"]["median"] for n in range(2, churns + 1)]
    verdict = (
        "n/a (one churn)" if not steady
        else "met" if max(abs(x) for x in steady) <= 2 else "MISSED"
    )
    lines = [
        "### W8: churn leak check",
        "",
        f"{churns} successive churns of {options.w8_rate} set-ups/s for {options.w8_duration:g} s "
        "(distinct SIP users), each session ended about 1 s after set-up, then all ended; "
        "gateway figures after each churn once no participant is left. Churn 1 is against the "
        "baseline (after a warm-up churn, same run); each later churn against the churn before "
        f"it. {options.runs} runs, median (min-max). Target: RSS within 2% (read against the "
        "churn before: the first churn also lifts the process to its working size, see the "
        "note), fds and DelayedCalls back to the baseline.",
        "",
        "| churn | RSS change % | Python objects change | RSS after (MB) | peak RSS in the churn (MB) |",
        "|---|---|---|---|---|",
        f"| baseline | | | {a['baseline_rss_kb']['median'] / 1024:.1f} | |",
        *(
            f"| {n} vs {'baseline' if n == 1 else n - 1} | {fmt(a[f'rss_change_pct_{n}'])} | "
            f"{fmt(a[f'gc_objects_change_{n}'])} | {fmt(a[f'rss_mb_{n}'])} | "
            f"{fmt(a[f'rss_peak_mb_{n}'])} |"
            for n in range(1, churns + 1)
        ),
        "",
        "| RSS change % (last vs baseline) | fds change | DelayedCalls change | participants left | "
        "set-ups/s achieved | failed | target (churn 2 on) |",
        "|---|---|---|---|---|---|---|",
        f"| {fmt(a['rss_change_pct'])} | {fmt(a['fds_change'])} | {fmt(a['delayed_calls_change'])} | "
        f"{int(a['participants_left']['max'])} | {fmt(a['setups_per_s'])} | {int(a['failed']['max'])} | "
        f"{verdict} |",
    ]
    return {"raw": raw, "summary": a, "markdown": "\n".join(lines)}


WORKLOADS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "w1": workloadW1,
    "w7": workloadW7,
    "w8": workloadW8,
    "w9": workloadW9,
}
# W2-W6 are not written yet (bench/README.md, "Not done yet").


#: What profiling found where a target is missed (bench/README.md has the
#: details); appended under each workload's table.
NOTES = {
    "w1": (
        "Target: gateway-added p50 <= 0.5 ms and p99 <= 2 ms with default Prosody (Nagle on). "
        "The 40 ms stall (before) is gone with TCP_QUICKACK on the component socket (after): "
        "after/nagle-on now matches nagle-off. p99 added is within 2 ms; p50 added is about "
        "0.7 ms, missed by about 0.2 ms. Cause (cProfile of the gateway, `twistd --profile`, "
        "one W1 run): no Python hot spot; `socket.send` takes about 0.7 ms a call on this VM "
        "(a loopback send runs the receiver's TCP path and wakes its process), and the gateway "
        "adds one such hop each way."
    ),
    "w7": (
        "Cause (tracemalloc): every SIP session is an XMPP occupant keeping its own copy of the "
        "room's roster (n^2 entries per room of n SIP users), each entry with its own status-code "
        "frozenset (`stoxgw/xmpp/occupant.py:478`) and `Occupant` (`:498`), plus parsed domish "
        "elements. Fix not made yet: one roster per room, interned status-code sets."
    ),
    "w8": (
        "What stays after a churn (object types and tracemalloc diffed in the gateway, "
        "`STOXGW_BENCH_TYPES=1`, `STOXGW_BENCH_TRACEMALLOC=1`): only Twisted's JID intern table "
        "(2 JIDs per session, never forgotten; now bounded to 4096, `stoxgw/xmpp/_compat.py`) and "
        "the INVITE rate-limit keys (kept up to 10,000 users; now forgotten after the 60 s window, "
        "56-byte lists instead of 760-byte deques). The rest is the heap's high-water mark, not "
        "a leak: the first churn's step stays with `PYTHONMALLOC=malloc`, with `malloc_trim(0)` "
        "and with both tables emptied (+9.9%, 8 objects fewer than the baseline), and RSS after "
        "each churn equals the highest peak RSS so far (column above): a churn adds to RSS only "
        "when its peak (sessions in progress at once, which varies with the load of this machine) "
        "beats the earlier ones, while Python objects stay flat (six churns: RSS 92.9, 92.9, "
        "103.8, 103.8, 103.8, 103.8 MB). So churn 2 on against the churn before is the figure to "
        "read; a miss there equal to the rise of the peak is the peak, not a leak "
        "(bench/README.md has the numbers)."
    ),
    "w9": "Repeatable to about 0.1% here (see bench/README.md), so the 3% CI tolerance is honest.",
}


def machine() -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "uname": subprocess.run(["uname", "-a"], capture_output=True, text=True).stdout.strip(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--w1-messages", type=int, default=200)
    parser.add_argument("--w7-sessions", type=int, default=1000)
    parser.add_argument("--w7-rooms", type=int, default=100)
    parser.add_argument("--w8-rate", type=int, default=100)
    parser.add_argument("--w8-duration", type=float, default=20)
    parser.add_argument("--w8-churns", type=int, default=3)
    parser.add_argument("--output", default=HERE)
    options = parser.parse_args()
    if options.runs < 1:
        parser.error("--runs must be >= 1")
    if options.w8_churns < 1:
        parser.error("--w8-churns must be >= 1")
    info = machine()
    print(f"{info['date']}; {info['uname']}; {info['cpus']} CPUs; Python {info['python']}")
    results: dict[str, Any] = {"machine": info, "workloads": {}}
    names = [name.strip().lower() for name in options.workloads.split(",")]
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; known: {sorted(WORKLOADS)}")
    for name in names:
        print(f"== {name}", flush=True)
        outcome = WORKLOADS[name](options)
        if name in NOTES:
            outcome["markdown"] += "\n\n" + NOTES[name]
        results["workloads"][name] = outcome
        print(outcome["markdown"], flush=True)
    with open(os.path.join(options.output, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    report = [
        "# Benchmark report",
        "",
        f"- date: {info['date']}",
        f"- machine: `{info['uname']}`",
        f"- CPUs: {info['cpus']}",
        f"- Python: {info['python']}",
        "",
        "Generated by `make bench` (`bench/run.py`); see bench/README.md for each workload.",
        "",
    ]
    for outcome in results["workloads"].values():
        report += [outcome["markdown"], ""]
    with open(os.path.join(options.output, "report.md"), "w") as f:
        f.write("\n".join(report))
    print(f"wrote {options.output}/results.json and report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
