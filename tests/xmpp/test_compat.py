# -*- test-case-name: tests.xmpp.test_compat -*-
"""
Tests for L{stoxgw.xmpp._compat}.
"""

from __future__ import annotations

import sys
import warnings

import constantly
from twisted.python import compat
from twisted.words.protocols.jabber import jid
from twisted.trial.unittest import SynchronousTestCase

from stoxgw.xmpp import _compat


class CompatTests(SynchronousTestCase):
    """
    The names wokkel 18.0.0 imports exist and behave as on Python 3.
    """

    def test_names(self) -> None:
        """
        C{_PY3}, C{unicode}, C{StringType}, C{iteritems}, C{itervalues}.
        """
        _compat.install()
        self.assertIs(getattr(compat, "_PY3"), True)
        self.assertIs(getattr(compat, "unicode"), str)
        self.assertIs(getattr(compat, "StringType"), str)
        self.assertEqual(list(getattr(compat, "iteritems")({"a": 1})), [("a", 1)])
        self.assertEqual(list(getattr(compat, "itervalues")({"a": 1})), [1])

    def test_noDeprecationWarnings(self) -> None:
        """
        Calling the functions does not warn (wokkel's tests of its own
        warnings would see two different warnings otherwise).  Twisted still
        warns once when C{unicode} is imported, which is harmless.
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            list(getattr(compat, "iteritems")({}))
            list(getattr(compat, "itervalues")({}))
        self.assertEqual(caught, [])

    def test_constants(self) -> None:
        """
        C{twisted.python.constants} is the C{constantly} package.
        """
        self.assertIs(sys.modules["twisted.python.constants"], constantly)
        from twisted.python.constants import ValueConstant, Values  # type: ignore[import-not-found]

        self.assertIs(Values, constantly.Values)
        self.assertIs(ValueConstant, constantly.ValueConstant)

    def test_wokkelImports(self) -> None:
        """
        The wokkel modules the gateway uses import.
        """
        import wokkel.data_form
        import wokkel.delay
        import wokkel.disco
        import wokkel.muc
        import wokkel.subprotocols
        import wokkel.xmppim

        self.assertTrue(hasattr(wokkel.muc, "MUCClientProtocol"))
        self.assertTrue(hasattr(wokkel.disco, "DiscoHandler"))


class InternTableTests(SynchronousTestCase):
    """
    Twisted's JID intern table is bounded.
    """

    def test_bounded(self) -> None:
        """
        Past L{_compat.INTERN_MAX} JIDs, the oldest are forgotten: a churn of
        sessions, each with JIDs of its own, leaves at most that many
        (W8); a JID interned again is still the same object.
        """
        _compat.install()
        table = getattr(jid, "__internJIDs")
        self.addCleanup(table.clear)
        first = jid.internJID("u0@sip.example/r0")
        self.assertIs(jid.internJID("u0@sip.example/r0"), first)
        for n in range(1, _compat.INTERN_MAX + 10):
            jid.internJID(f"u{n}@sip.example/r{n}")
        self.assertEqual(len(table), _compat.INTERN_MAX)
        self.assertNotIn("u0@sip.example/r0", table)
        self.assertIn(f"u{_compat.INTERN_MAX + 9}@sip.example/r{_compat.INTERN_MAX + 9}", table)
        self.assertEqual(jid.internJID("u0@sip.example/r0"), first)
