# -*- test-case-name: tests.tools.test_chat -*-
"""
Tests for L{stoxgw.tools.chat} as it stands: an honest refusal.
"""

from __future__ import annotations

from io import StringIO

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.tools import chat


class ChatPlaceholderTests(SynchronousTestCase):
    """
    C{stoxgw-chat} before the client exists.
    """

    def test_saysNotImplemented(self) -> None:
        """
        It prints that the client is not implemented and exits 1.
        """
        stderr = StringIO()
        self.patch(chat.sys, "stderr", stderr)
        error = self.assertRaises(SystemExit, chat.main, [])
        self.assertEqual(error.code, 1)
        self.assertIn("not implemented", stderr.getvalue())
