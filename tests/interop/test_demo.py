# -*- test-case-name: tests.interop.test_demo -*-
"""
C{make demo}'s script runs to its end against a real Prosody.
"""

from __future__ import annotations

import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.interop.gateway import TOP


class DemoTests(SynchronousTestCase):
    """
    C{demo/demo.py}.
    """

    def test_demo(self) -> None:
        """
        The demo starts Prosody and the gateway, shows both component links
        up, stops both, and exits 0.
        """
        result = subprocess.run(
            [sys.executable, os.path.join(TOP, "demo", "demo.py")],
            capture_output=True, text=True, timeout=120,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("XMPP component link up: sip.xmpp.test", result.stdout)
        self.assertIn("XMPP component link up: chat.sip.xmpp.test", result.stdout)
        self.assertIn("everything stopped cleanly", result.stdout)
