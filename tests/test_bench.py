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

import glob
import importlib.util
import os
import re
import sys

from twisted.trial.unittest import SynchronousTestCase

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(TOP, "bench")


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
        path = os.path.join(BENCH, "run.py")
        spec = importlib.util.spec_from_file_location("bench_run_workloads", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
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
        path = os.path.join(BENCH, "run.py")
        spec = importlib.util.spec_from_file_location("bench_run_interleave", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
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
