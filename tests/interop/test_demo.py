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
        The demo starts Prosody and the gateway; Romeo (SIP, stoxgw-chat)
        and Juliet (XMPP, slixmpp) talk in room@muc.xmpp.test through the
        gateway; Romeo leaves; then Mercutio (SIP) and Juliet (XMPP) talk in
        the gateway's own SIP room sip:lounge@chat.sip.xmpp.test (its
        subject shown to Juliet); Mercutio leaves; everything stops; exit 0.
        """
        result = subprocess.run(
            [sys.executable, os.path.join(TOP, "demo", "demo.py")],
            capture_output=True, text=True, timeout=120,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn(
            "juliet (XMPP) sees: <Romeo> Juliet, are you there? It is Romeo, on SIP.",
            result.stdout,
        )
        self.assertIn("    Juliet Here, Romeo! Through the gateway, from XMPP.", result.stdout)
        self.assertIn("juliet (XMPP) sees: Romeo left the room", result.stdout)
        self.assertIn("Romeo (SIP) and Juliet (XMPP) talked through the gateway.", result.stdout)
        for line in (
            "juliet (XMPP) sees: Mercutio is in the room",
            "juliet (XMPP) sees the subject: The Capulets' orchard",
            "juliet (XMPP) sees: <Mercutio> A plague o' both your houses! Juliet, do you hear me?",
            "    nickname Mercutio: 200",
            "    Juliet I hear you, Mercutio, in your SIP room.",
            "juliet (XMPP) sees: Mercutio left the room",
            "Mercutio (SIP) and Juliet (XMPP) talked in the gateway's own SIP room.",
        ):
            self.assertIn(line, result.stdout)
