# -*- test-case-name: tests.xmpp.test_wokkel -*-
"""
wokkel's own test suite, for every wokkel module the gateway uses, run on the
installed Twisted with L{stoxgw.xmpp._compat} in place (docs/design.md, "wokkel
18.0.0 with one compat module").

If a Twisted upgrade breaks a wokkel module the gateway relies on, these fail.
"""

from __future__ import annotations

import stoxgw.xmpp  # noqa: F401  (installs the compat names before wokkel loads)

from twisted.trial.runner import TestLoader
from twisted.trial.unittest import TestSuite

#: wokkel's test modules for the wokkel modules stoxgw imports.
WOKKEL_TEST_MODULES = (
    "wokkel.test.test_muc",
    "wokkel.test.test_disco",
    "wokkel.test.test_subprotocols",
    "wokkel.test.test_xmppim",
    "wokkel.test.test_data_form",
    "wokkel.test.test_delay",
    "wokkel.test.test_generic",
    "wokkel.test.test_ping",
)


def testSuite() -> TestSuite:
    """
    Trial's hook for a module that builds its own suite.

    @return: the tests of L{WOKKEL_TEST_MODULES}.
    """
    loader = TestLoader()
    return TestSuite([loader.loadByName(name) for name in WOKKEL_TEST_MODULES])
