# -*- test-case-name: tests.test_bench -*-
"""
The benchmark suite of C{bench/} (issue 12) is not run by the tests (its
figures are wall-clock), but its code must keep up with the package: every
module loads against the current C{stoxgw} (a module split once left
C{bench/gwload.py} importing a name from where it no longer was, found only
when W4 was run), and C{bench/run.py} knows every workload its README
describes.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import re
import sys
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(TOP, "bench")


def loadRun(name: str) -> Any:
    """
    A fresh copy of C{bench/run.py} as module C{name} (its workloads do
    not start: they run from C{main}).
    """
    spec = importlib.util.spec_from_file_location(name, os.path.join(BENCH, "run.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BenchModulesTests(SynchronousTestCase):
    """
    Every C{bench/*.py} loads, without running its workload.
    """

    def setUp(self) -> None:
        # The bench modules import each other by bare name (run.py puts
        # bench/ first on the path the same way).
        sys.path.insert(0, BENCH)
        self.addCleanup(sys.path.remove, BENCH)

    def test_everyModuleLoads(self) -> None:
        """
        Each module executes its top level (imports, constants, classes)
        under a name that is not C{__main__}, so no workload starts.
        """
        paths = sorted(glob.glob(os.path.join(BENCH, "*.py")))
        self.assertGreater(len(paths), 10)
        failed = []
        for path in paths:
            name = "bench_" + os.path.basename(path)[: -len(".py")]
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            self.addCleanup(sys.modules.pop, name, None)
            try:
                spec.loader.exec_module(module)
            except Exception as e:
                failed.append(f"{os.path.basename(path)}: {type(e).__name__}: {e}")
        self.assertEqual(failed, [])

    def test_workloadsListed(self) -> None:
        """
        C{bench/run.py} has an entry for W1 to W9 and for the MSRP stack
        comparison of issue 13, each described in C{bench/README.md}.
        """
        module = loadRun("bench_run_workloads")
        self.assertEqual(sorted(module.WORKLOADS), ["msrp"] + [f"w{n}" for n in range(1, 10)])
        with open(os.path.join(BENCH, "README.md")) as f:
            readme = f.read()
        for n in range(1, 10):
            self.assertTrue(re.search(rf"\bW{n}\b", readme), f"W{n}")
        self.assertIn("--workloads msrp", readme)

    def test_interleaveRotatesOrder(self) -> None:
        """
        C{run.interleave} runs the variants round-robin and starts each
        round with the next variant, so that with two variants neither runs
        first in every pair; each variant's results stay in run order.
        """
        module = loadRun("bench_run_interleave")
        calls: list[str] = []

        def variant(name: str) -> object:
            def run() -> dict[str, int]:
                calls.append(name)
                return {"n": calls.count(name)}

            return run

        results = module.interleave(3, {"before": variant("before"), "now": variant("now")})
        self.assertEqual(calls, ["before", "now", "now", "before", "before", "now"])
        self.assertEqual([r["n"] for r in results["now"]], [1, 2, 3])
        self.assertEqual([r["n"] for r in results["before"]], [1, 2, 3])

    def test_failedWorkloadReported(self) -> None:
        """
        C{run.runWorkloads} writes the report after each workload; one
        that raises is reported as failed with its error, the next still
        runs, and the exit status is 1.
        """
        module = loadRun("bench_run_failed")
        output = self.mktemp()

        def broken(options: object) -> dict[str, object]:
            raise RuntimeError("peer did not start")

        def fine(options: object) -> dict[str, object]:
            with open(os.path.join(output, "report.md")) as f:
                self.assertIn("### wa: FAILED", f.read())
            return {"markdown": "### wb\n\nfigures"}

        options = argparse.Namespace(output=output)
        info = {"date": "2026-12-06 21:00 UTC", "uname": "Linux", "cpus": 2, "python": "3.11"}
        status = module.runWorkloads(["wa", "wb"], options, info, {"wa": broken, "wb": fine})
        self.assertEqual(status, 1)
        with open(os.path.join(output, "report.md")) as f:
            report = f.read()
        self.assertIn("### wa: FAILED", report)
        self.assertIn("RuntimeError: peer did not start", report)
        self.assertIn("### wb\n\nfigures", report)
        with open(os.path.join(output, "results.json")) as f:
            results = json.load(f)
        self.assertEqual(results["workloads"]["wa"]["failed"], "RuntimeError: peer did not start")
        self.assertEqual(results["machine"]["cpus"], 2)

    def test_msrpVerdicts(self) -> None:
        """
        The msrp workload compares the trees run by run: a rate ratio
        (higher is better) 10% lower is missed, one 2% lower is within 5%;
        for microseconds per SEND (lower is better) 2% more is within 5%
        and 20% more is missed.
        """
        import types

        module = loadRun("bench_run_msrp")
        before = self.mktemp()
        os.makedirs(os.path.join(before, "bench"))
        module.archiveTree = lambda commit: before

        def figures(tree: str, options: object) -> dict[str, float]:
            slower = 1.0 if tree == before else 0.9
            return {
                "ratio_1": 0.8 * (1.0 if tree == before else 0.98),
                "ratio_100": 0.6 * slower,
                "cpu_us_1": 5.0, "cpu_ratio_1": 0.7,
                "cpu_us_100": 4.0, "cpu_ratio_100": 0.6 * slower,
                "inproc_us_1": 2.0 * (1.0 if tree == before else 1.02),
                "inproc_us_100": 2.0 * (1.0 if tree == before else 1.2),
            }

        module._msrpRatios = figures
        fake = types.ModuleType("w9")
        fake.measure = lambda work=None: {"msrp_parse_reply": 1000.0 if work else 1010.0}  # type: ignore[attr-defined]
        self.patch(sys, "modules", dict(sys.modules, w9=fake))
        options = argparse.Namespace(runs=3, msrp_duration=1.0)
        markdown = module.workloadMSRP(options)["markdown"]
        rows = [line for line in markdown.splitlines() if line.startswith("| 1") and "|" in line[2:]]
        self.assertEqual(len(rows), 6)
        self.assertTrue(rows[0].endswith("| 0.980 | within 5% |"), rows[0])
        self.assertTrue(rows[1].endswith("| 0.900 | MISSED: 10.0% lower |"), rows[1])
        self.assertTrue(rows[2].endswith("| 1.000 | within 5% |"), rows[2])
        self.assertTrue(rows[3].endswith("| 0.900 | MISSED: 10.0% lower |"), rows[3])
        self.assertTrue(rows[4].endswith("| 0.980 | within 5% |"), rows[4])
        self.assertTrue(rows[5].endswith("| 0.833 | MISSED: 16.7% lower |"), rows[5])
        self.assertIn("| 100 | 4.00 (4.00-4.00) | 4.00 (4.00-4.00) | 0.60 (0.60-0.60) | 0.54 (0.54-0.54) |", markdown)
        self.assertIn("now/before 1.010 (within 5%)", markdown)
