# -*- test-case-name: tests.test_fuzz -*-
"""
The fuzzing set-up of C{fuzz/} (issue 11): its driver knows every harness,
the documentation describes each, and C{make fuzz} stays out of C{make
test}.  Nothing here fuzzes (that is C{make fuzz}, which needs atheris).
"""

from __future__ import annotations

import configparser
import glob
import importlib.util
import os
import re
import sys
from types import ModuleType

from twisted.trial.unittest import SynchronousTestCase

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = os.path.join(TOP, "fuzz")


def driver() -> ModuleType:
    """
    @return: C{fuzz/run.py}, loaded without running it.
    """
    loaded = sys.modules.get("fuzz_run")
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location("fuzz_run", os.path.join(FUZZ, "run.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Its dataclasses look their module up while being made.
    sys.modules["fuzz_run"] = module
    spec.loader.exec_module(module)
    return module


def read(*parts: str) -> str:
    """
    @return: the text of a file below the top of the repository.
    """
    with open(os.path.join(TOP, *parts), encoding="utf-8") as f:
        return f.read()


class FuzzLayoutTests(SynchronousTestCase):
    """
    C{fuzz/run.py}, the harnesses, their dictionaries and C{fuzz/README.md}.
    """

    def test_everyHarnessRuns(self) -> None:
        """
        The driver runs exactly the C{fuzz_*.py} files, and their
        dictionaries exist.
        """
        harnesses = driver().HARNESSES
        files = {
            os.path.basename(path)[len("fuzz_") : -len(".py")]
            for path in glob.glob(os.path.join(FUZZ, "fuzz_*.py"))
        }
        self.assertEqual({h.name for h in harnesses}, files)
        for harness in harnesses:
            for name in ("common", *harness.dictionaries):
                self.assertTrue(
                    os.path.exists(os.path.join(FUZZ, "dicts", name + ".dict")), name
                )

    def test_readme(self) -> None:
        """
        The README has a row for every harness.
        """
        readme = read("fuzz", "README.md")
        for harness in driver().HARNESSES:
            self.assertRegex(readme, rf"(?m)^\| `fuzz_{harness.name}` \|")

    def test_makeTarget(self) -> None:
        """
        C{make fuzz} installs the C{fuzz} extra and runs the driver; C{make
        test} does not depend on it.
        """
        makefile = read("Makefile")
        target = re.search(r"(?ms)^fuzz:.*?(?=^\S)", makefile)
        assert target is not None
        self.assertIn("'.[fuzz]'", target.group())
        self.assertIn("fuzz/run.py", target.group())
        testLine = re.search(r"(?m)^test:(.*)$", makefile)
        assert testLine is not None
        self.assertNotIn("fuzz", testLine.group(1))
        setup = configparser.ConfigParser()
        setup.read_string(read("setup.cfg"))
        self.assertIn("atheris", setup["options.extras_require"]["fuzz"])
