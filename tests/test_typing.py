# -*- test-case-name: tests.test_typing -*-
"""
The package type-checks under mypy's strict mode with the settings of
C{pyproject.toml} (docs/style.md, "Docstrings and types").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class MypyTests(SynchronousTestCase):
    """
    mypy on C{stoxgw/}.
    """

    def test_strict(self) -> None:
        """
        mypy reports no issue.
        """
        if shutil.which("mypy") is None and not os.path.exists(
            os.path.join(os.path.dirname(sys.executable), "mypy")
        ):
            self.fail("mypy is not installed: make test installs the [test] extra")
        cache = os.path.abspath(self.mktemp())
        result = subprocess.run(
            [sys.executable, "-m", "mypy", "--cache-dir", cache],
            cwd=TOP, capture_output=True, text=True, timeout=600,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("Success", result.stdout)
