# -*- test-case-name: tests.xmpp.test_stanzas -*-
"""
Tests for L{stoxgw.xmpp.stanzas}: the one table of each XMPP fact (error
types, MUC status codes, removal precedence) and the stanza helpers the
occupant and room sides share.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from wokkel import generic

from stoxgw.xmpp import stanzas
from stoxgw.xmpp.stanzas import (
    ERROR_TYPES,
    Condition,
    ErrorType,
    MUCPresence,
    MUCStatus,
    internCodes,
    mucError,
    mucErrorTypeFor,
    removalStatus,
)


class ErrorTypeTests(SynchronousTestCase):
    """
    RFC 6120 section 8.3.3 types, and XEP-0045's own for MUC errors.
    """

    def test_everyCondition(self) -> None:
        """
        Every defined condition has an RFC 6120 type.
        """
        self.assertEqual(set(ERROR_TYPES), set(Condition))

    def test_mucTypes(self) -> None:
        """
        XEP-0045 7.2.10: a full room is C{service-unavailable} of type
        wait; a refused nick C{not-acceptable} of type cancel; other
        conditions keep RFC 6120's type.
        """
        self.assertEqual(mucErrorTypeFor("service-unavailable"), ErrorType.WAIT)
        self.assertEqual(mucErrorTypeFor("not-acceptable"), ErrorType.CANCEL)
        self.assertEqual(mucErrorTypeFor("forbidden"), ErrorType.AUTH)
        self.assertEqual(mucErrorTypeFor("no-such-condition"), ErrorType.CANCEL)
        refusal = mucError("service-unavailable", "full")
        self.assertEqual((refusal.condition, refusal.type, refusal.text),
                         ("service-unavailable", "wait", "full"))


class RemovalStatusTests(SynchronousTestCase):
    """
    Which removal an unavailable presence with several status codes says.
    """

    def test_precedence(self) -> None:
        """
        332 > 333 > 301 > 321 > 322 > 307: the room going away first, then
        a technical removal (Prosody sends 307 + 333), then the codes that
        say why over the plain kick.
        """
        self.assertEqual(removalStatus({307, 332}), MUCStatus.SHUTDOWN)
        self.assertEqual(removalStatus([110, 333, 307]), MUCStatus.TECHNICAL_ERROR)
        self.assertEqual(removalStatus((301, 307)), MUCStatus.BANNED)
        self.assertEqual(removalStatus({307, 321}), MUCStatus.AFFILIATION_CHANGED)
        self.assertEqual(removalStatus({307, 322}), MUCStatus.MEMBERS_ONLY)
        self.assertEqual(removalStatus({307}), MUCStatus.KICKED)
        self.assertIsNone(removalStatus({110, 999}))


class MUCPresenceTests(SynchronousTestCase):
    """
    wokkel's user presence, keeping every status code.
    """

    def test_statusCodesInterned(self) -> None:
        """
        Every code is kept (333 too, which wokkel drops), and equal sets
        from two presences are one object.
        """
        xml = (
            "<presence xmlns='jabber:component:accept' from='room@muc.example/nick' "
            "to='a@sip.example/r' type='unavailable'>"
            "<x xmlns='http://jabber.org/protocol/muc#user'>"
            "<item affiliation='none' role='none'/>"
            "<status code='110'/><status code='307'/><status code='333'/></x></presence>"
        )
        first = MUCPresence.fromElement(generic.parseXml(xml.encode()))
        second = MUCPresence.fromElement(generic.parseXml(xml.encode()))
        self.assertEqual(first.statusCodes, frozenset({110, 307, 333}))
        self.assertIs(first.statusCodes, second.statusCodes)

    def test_internBounded(self) -> None:
        """
        Peers choose the codes: past the bound, sets are no longer kept.
        """
        self.patch(stanzas, "_CODE_SETS", {})
        for n in range(stanzas._MAX_CODE_SETS):
            internCodes({1000 + n})
        fresh = internCodes({5000})
        self.assertIsNot(internCodes({5000}), fresh)
        self.assertEqual(internCodes({5000}), fresh)
