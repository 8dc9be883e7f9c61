# -*- test-case-name: tests.interworking.test_invitations -*-
"""
Tests for L{stoxgw.interworking.invitations}: XMPP MUC invitations to SIP
users (SPEC R-222, F.2) as transcripts "XMPP invites, SIP gets X".

The SIP side is the real UA core (L{SIPUserAgent}, L{SIPEvents},
L{ReferAgent}) on a fake UDP socket and a L{MemoryReactorClock}, sending
everything through an outbound proxy at C{198.51.100.7:5070} that the
tests play by hand.  The invitations are the L{Invitation}s the occupant
service makes of XEP-0045 section 7.8.2 and XEP-0249 stanzas; the SIP
users' real JIDs live on C{sip.example}, the rooms on C{muc.example}.
"""

from __future__ import annotations

from typing import Any

import stoxgw.xmpp  # noqa: F401  (installs the compat names before wokkel loads)

from twisted.internet.defer import Deferred, fail
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from twisted.words.protocols.jabber.jid import JID
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stoxgw.interworking.invitations import (
    MAX_MESSAGE_BODY,
    MAX_PER_INVITEE,
    MESSAGE_FALLBACK_STATUSES,
    RATE_INTERVAL,
    TEXT_PLAIN,
    InvitationOutcome,
    InvitationResult,
    SIPInvitations,
    invitationText,
)
from stoxgw.interworking.siptoxmpp import IInvitationSender, SIPToXMPP
from stoxgw.sip.message import SIPRequest, SIPResponse
from stoxgw.sip.refer import SIPFRAG_CONTENT_TYPE, ReferAgent, sipfrag
from stoxgw.sip.subscription import SIPEvents
from stoxgw.sip.uri import SIPURI, NameAddr, parseNameAddr
from stoxgw.sip.dialog import DialogError
from stoxgw.sip.transport import Address
from stoxgw.sip.useragent import IResolver, UserAgentSettings
from stoxgw.xmpp.component import ComponentLink
from stoxgw.xmpp.occupant import Invitation
from tests.sip.test_useragent import PEER, UAMixin
from tests.xmpp.test_occupant import MUC_USER, SERVER_HEADER

USER_DOMAIN = "sip.example"
MUC_DOMAIN = "muc.example"
ROOM = JID("capulet@muc.example")
ROOM_URI = "sip:capulet@muc.example"
ROMEO = JID("romeo@sip.example/r1")
ROMEO_URI = "sip:romeo@sip.example"
JULIET = JID("juliet@capulet.example/balcony")
#: The outbound proxy (L{PEER} of the UA tests).
PROXY = SIPURI("sip", PEER[0], port=PEER[1])


def mediated(
    room: JID = ROOM,
    invitee: JID = ROMEO,
    inviter: JID | None = JULIET,
    reason: str | None = "Join us",
    password: str | None = None,
) -> Invitation:
    """
    What the occupant service makes of a XEP-0045 section 7.8.2 mediated
    invitation: C{<message from=room to=invitee><x xmlns=muc#user><invite
    from=inviter><reason/></invite></x></message>}.
    """
    return Invitation(
        roomJID=room, invitee=invitee, inviter=inviter, reason=reason, password=password
    )


def direct(
    room: JID = ROOM,
    invitee: JID = ROMEO,
    inviter: JID = JULIET,
    reason: str | None = "Join us",
    password: str | None = None,
) -> Invitation:
    """
    What the occupant service makes of a XEP-0249 direct invitation:
    C{<message from=inviter to=invitee><x xmlns=jabber:x:conference
    jid=room reason=... password=.../></message>}.
    """
    return Invitation(
        roomJID=room,
        invitee=invitee,
        inviter=inviter,
        reason=reason,
        password=password,
        direct=True,
    )


class InvitationsMixin(UAMixin):
    """
    A UA with an outbound proxy, L{SIPEvents}, a L{ReferAgent} (no REFER
    handler) and the L{SIPInvitations} under test.
    """

    def setUp(self) -> None:
        self.makeUA(UserAgentSettings(outboundProxy=PROXY))
        self.events = SIPEvents(self.ua)
        self.referAgent = ReferAgent(self.events)
        self.invitations = self.make()

    def make(self, **kwargs: Any) -> SIPInvitations:
        """
        A L{SIPInvitations} on the test UA and clock.
        """
        return SIPInvitations(
            self.referAgent, self.clock, USER_DOMAIN, (MUC_DOMAIN,), **kwargs
        )

    def requests(self) -> list[SIPRequest]:
        """
        The requests sent since the last call (all to the proxy).
        """
        found = []
        for message, address in self.sent():
            if isinstance(message, SIPRequest):
                self.assertEqual(address, PEER)
                found.append(message)
        return found

    def one(self, method: str) -> SIPRequest:
        """
        The single request sent since the last call, which must be a
        C{method}.
        """
        [request] = self.requests()
        self.assertEqual(request.method, method)
        return request

    def answer(
        self,
        request: SIPRequest,
        status: int,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """
        The proxy answers C{request}.
        """
        self.receive(
            request.makeResponse(status, toTag="uas", extraHeaders=headers or [])
        )

    def invite(
        self, invitation: Invitation, realJID: JID = ROMEO
    ) -> Deferred[InvitationOutcome]:
        """
        XMPP invites.
        """
        return self.invitations.invitationReceived(realJID, invitation)


class ReferTests(InvitationsMixin, SynchronousTestCase):  # type: ignore[misc]
    """
    RFC 4579 section 5.6/5.7: the REFER to the invitee.
    """

    def test_interfaces(self) -> None:
        """
        L{SIPInvitations} provides the L{IInvitationSender} that
        L{stoxgw.interworking.siptoxmpp.SIPToXMPP} calls.
        """
        self.assertTrue(verifyObject(IInvitationSender, self.invitations))

    def test_referBuiltExactly(self) -> None:
        """
        A mediated invitation: REFER to the invitee's AOR (the resource
        dropped), through the proxy; From the room URI with the inviter as
        display name; To the AOR without tag; exactly one Refer-To, the
        room URI (RFC 3515 2.4.1); Referred-By the inviter's AOR (RFC
        3892); Refer-Sub false (RFC 4488 4) and no Require; Accept
        message/sipfrag; a Contact (RFC 3515 2: out of dialog).  A 202
        with Refer-Sub false is success; nothing else is sent.
        """
        d = self.invite(mediated())
        refer = self.one("REFER")
        self.assertEqual(str(refer.uri), ROMEO_URI)
        self.assertEqual(refer.header("To"), f"<{ROMEO_URI}>")
        sender = refer.fromAddress
        self.assertEqual(sender.displayName, "juliet@capulet.example")
        self.assertEqual(str(sender.uri), ROOM_URI)
        self.assertIsNotNone(sender.tag)
        self.assertEqual(refer.headers.getLines("Refer-To"), [f"<{ROOM_URI}>"])
        self.assertEqual(
            refer.headers.getLines("Referred-By"), ["<sip:juliet@capulet.example>"]
        )
        self.assertEqual(refer.headers.getLines("Refer-Sub"), ["false"])
        self.assertIsNone(refer.header("Require"))
        self.assertEqual(refer.header("Accept"), "message/sipfrag")
        self.assertEqual(refer.header("Route"), f"<{PROXY.serialize()};lr>")
        assert refer.contact is not None
        self.assertEqual(len(refer.contact.addresses), 1)
        self.assertEqual(refer.body, b"")
        self.assertNoResult(d)
        with capturedLogs() as events:
            self.answer(refer, 202, [("Refer-Sub", "false")])
        self.assertEqual(
            self.successResultOf(d),
            InvitationOutcome(InvitationResult.REFERRED, "REFER", 202),
        )
        self.assertEqual(self.requests(), [])
        [event] = [e for e in events if e.get("status") == 202]
        self.assertEqual(event["roomJID"], "capulet@muc.example")
        self.assertEqual(event["realJID"], "romeo@sip.example/r1")
        self.assertEqual(event["uri"], ROMEO_URI)
        self.assertEqual(self.events.dialogs, {})
        self.assertEqual(self.usageTimers(), [])

    def usageTimers(self) -> list[object]:
        """
        Delayed calls other than transaction timers.
        """
        return [
            c for c in self.clock.getDelayedCalls() if "_Transaction" not in repr(c)
        ]

    def test_refer200(self) -> None:
        """
        A 200 (RFC 7647) is success too.
        """
        d = self.invite(mediated())
        self.answer(self.one("REFER"), 200, [("Refer-Sub", "false")])
        self.assertEqual(
            self.successResultOf(d),
            InvitationOutcome(InvitationResult.REFERRED, "REFER", 200),
        )

    def test_recipientKeepsSubscription(self) -> None:
        """
        RFC 4488 4: a recipient that ignores Refer-Sub (2xx without it)
        makes the implicit subscription anyway; the invitation has
        succeeded, and its NOTIFYs are answered 200 until it ends.
        """
        d = self.invite(mediated())
        refer = self.one("REFER")
        self.answer(refer, 202, [("Contact", f"<sip:romeo@{PEER[0]}:{PEER[1]}>")])
        self.assertEqual(self.successResultOf(d).result, InvitationResult.REFERRED)
        body = sipfrag(200)
        lines = [
            "NOTIFY sip:stoxgw@192.0.2.1:5060 SIP/2.0",
            f"Via: SIP/2.0/UDP {PEER[0]}:{PEER[1]};branch=z9hG4bKn1",
            "Max-Forwards: 70",
            f"From: <{ROMEO_URI}>;tag=uas",
            f"To: <{ROOM_URI}>;tag={refer.fromAddress.tag}",
            f"Call-ID: {refer.callID}",
            "CSeq: 1 NOTIFY",
            f"Contact: <sip:romeo@{PEER[0]}:{PEER[1]}>",
            "Event: refer",
            "Subscription-State: terminated;reason=noresource",
            f"Content-Type: {SIPFRAG_CONTENT_TYPE}",
            f"Content-Length: {len(body)}",
        ]
        self.receive(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        [(response, _)] = self.sent()
        assert isinstance(response, SIPResponse)
        self.assertEqual(response.status, 200)
        self.assertEqual(self.events.dialogs, {})

    def test_referSubscriptionWanted(self) -> None:
        """
        With C{referSub=True} no Refer-Sub is sent (RFC 4488 5: for
        deployments where the REFER must not be treated as fork-free).
        """
        self.invitations = self.make(referSub=True)
        d = self.invite(mediated())
        refer = self.one("REFER")
        self.assertIsNone(refer.header("Refer-Sub"))
        self.answer(refer, 202, [("Contact", f"<sip:romeo@{PEER[0]}:{PEER[1]}>")])
        self.assertEqual(self.successResultOf(d).result, InvitationResult.REFERRED)

    def test_directInvitation(self) -> None:
        """
        XEP-0249: the inviter is the sender (its full JID); Referred-By is
        its AOR (RFC 3892 2), the room comes from the C{jid} attribute;
        the password goes nowhere (not in SIP, not in logs).
        """
        with capturedLogs() as events:
            d = self.invite(direct(password="s3cret-pw"))
            refer = self.one("REFER")
            self.answer(refer, 405)
            message = self.one("MESSAGE")
            self.answer(message, 200)
        self.assertEqual(refer.headers.getLines("Refer-To"), [f"<{ROOM_URI}>"])
        self.assertEqual(
            refer.headers.getLines("Referred-By"), ["<sip:juliet@capulet.example>"]
        )
        self.assertEqual(self.successResultOf(d).result, InvitationResult.MESSAGED)
        self.assertNotIn(b"s3cret", refer.serialize())
        self.assertNotIn(b"s3cret", message.serialize())
        self.assertFalse(any("s3cret" in repr(e) for e in events))
        self.assertTrue(any(e.get("direct") is True for e in events))

    def test_occupantInviter(self) -> None:
        """
        A semi-anonymous room's mediated invitation names the inviter by
        occupant JID: Referred-By is the occupant identity of R-207 with
        the nick as display name, and the nick is the From display name.
        """
        d = self.invite(mediated(inviter=JID("capulet@muc.example/Jüli C")))
        refer = self.one("REFER")
        [referredBy] = refer.headers.getLines("Referred-By")
        self.assertEqual(
            referredBy, '"Jüli C" <sip:capulet@muc.example;gr=J%C3%BCli%20C>'
        )
        self.assertEqual(refer.fromAddress.displayName, "Jüli C")
        self.answer(refer, 202, [("Refer-Sub", "false")])
        self.successResultOf(d)

    def test_inviterOnUserDomain(self) -> None:
        """
        An inviter that is itself a SIP user of the gateway maps back to
        its own SIP AOR, not to C{user%40host@userdomain}.
        """
        d = self.invite(mediated(inviter=JID("alice\\40atlanta.example@sip.example/x")))
        refer = self.one("REFER")
        self.assertEqual(
            refer.headers.getLines("Referred-By"), ["<sip:alice@atlanta.example>"]
        )
        self.assertEqual(refer.fromAddress.displayName, "alice@atlanta.example")
        self.answer(refer, 202)
        self.successResultOf(d)

    def test_noInviter(self) -> None:
        """
        An invitation without C{from}: no Referred-By; the From display
        name is the room's name.
        """
        d = self.invite(mediated(inviter=None))
        refer = self.one("REFER")
        self.assertIsNone(refer.header("Referred-By"))
        self.assertEqual(refer.fromAddress.displayName, "capulet")
        self.answer(refer, 202)
        self.successResultOf(d)

    def test_unmappableInviter(self) -> None:
        """
        An inviter with no SIP form (a domain that is no IDN host name):
        the invitation still goes out, without Referred-By, from the room;
        the mapping failure is logged.
        """
        inviter = JID("juliet@" + "ü" * 70 + ".example")
        with capturedLogs() as events:
            d = self.invite(mediated(inviter=inviter))
        refer = self.one("REFER")
        self.assertIsNone(refer.header("Referred-By"))
        self.assertEqual(refer.fromAddress.displayName, "capulet")
        self.assertEqual(refer.headers.getLines("Refer-To"), [f"<{ROOM_URI}>"])
        [event] = [e for e in events if "inviter" in e]
        self.assertEqual(event["inviter"], inviter.full())
        self.assertIn("IDN", event["error"])
        self.answer(refer, 202)
        self.assertEqual(self.successResultOf(d).result, InvitationResult.REFERRED)

    def test_escapedAddresses(self) -> None:
        """
        XEP-0106 and percent-escaping (RFC 7247 6.4/6.5): an inviter
        C{o\\27malley} is C{sip:o'malley@...} and displays as
        C{o'malley@...}; a non-ASCII inviter is percent-encoded; a room
        C{m\\26m} is C{sip:m&m@...}; a SIP user of another domain,
        C{alice\\40atlanta.example@sip.example}, is invited at
        C{sip:alice@atlanta.example}.
        """
        d = self.invite(
            mediated(
                room=JID("m\\26m@muc.example"),
                inviter=JID("o\\27malley@xmpp.example/phone"),
            ),
            realJID=JID("alice\\40atlanta.example@sip.example/x"),
        )
        refer = self.one("REFER")
        self.assertEqual(str(refer.uri), "sip:alice@atlanta.example")
        self.assertEqual(refer.headers.getLines("Refer-To"), ["<sip:m&m@muc.example>"])
        self.assertEqual(
            refer.headers.getLines("Referred-By"), ["<sip:o'malley@xmpp.example>"]
        )
        self.assertEqual(refer.fromAddress.displayName, "o'malley@xmpp.example")
        self.assertEqual(str(refer.fromAddress.uri), "sip:m&m@muc.example")
        self.answer(refer, 501)
        message = self.one("MESSAGE")
        self.assertEqual(str(message.uri), "sip:alice@atlanta.example")
        self.assertEqual(
            message.body.decode("utf-8"),
            "o'malley@xmpp.example invites you to the chat room"
            " sip:m&m@muc.example (Join us)",
        )
        self.answer(message, 200)
        self.assertEqual(self.successResultOf(d).result, InvitationResult.MESSAGED)
        d = self.invite(
            mediated(inviter=JID("tschüss@xmpp.example")), realJID=JID("b@sip.example")
        )
        refer = self.one("REFER")
        self.assertEqual(
            refer.headers.getLines("Referred-By"), ["<sip:tsch%C3%BCss@xmpp.example>"]
        )
        self.assertEqual(refer.fromAddress.displayName, "tschüss@xmpp.example")
        self.answer(refer, 202)
        self.successResultOf(d)

    def test_notForUs(self) -> None:
        """
        A real JID outside the user domain, a room on a domain not served
        (C{muc_domains}) or a room without localpart: nothing is sent,
        C{NOT_SENT} with the reason.
        """
        outcomes = [
            self.successResultOf(
                self.invite(mediated(), realJID=JID("romeo@elsewhere.example"))
            ),
            self.successResultOf(
                self.invite(mediated(room=JID("x@rooms.other.example")))
            ),
            self.successResultOf(self.invite(mediated(room=JID("muc.example")))),
        ]
        self.assertEqual([o.result for o in outcomes], [InvitationResult.NOT_SENT] * 3)
        self.assertEqual([o.method for o in outcomes], [None] * 3)
        self.assertIn("sip.example", outcomes[0].reason or "")
        self.assertIn("rooms.other.example", outcomes[1].reason or "")
        self.assertEqual(self.requests(), [])

    def test_anyMUCDomainWhenUnrestricted(self) -> None:
        """
        An empty C{mucDomains} allows rooms anywhere (as for INVITEs).
        """
        self.invitations = SIPInvitations(self.referAgent, self.clock, USER_DOMAIN)
        d = self.invite(mediated(room=JID("x@rooms.other.example")))
        self.assertEqual(
            str(self.one("REFER").fromAddress.uri), "sip:x@rooms.other.example"
        )
        self.assertNoResult(d)

    def test_referRaises(self) -> None:
        """
        A bug below (the REFER agent raising) is logged as a failure and
        becomes C{FAILED}; the Deferred does not fail.
        """

        def broken(*args: object, **kwargs: object) -> Deferred[object]:
            raise RuntimeError("boom")

        self.referAgent.refer = broken  # type: ignore[method-assign,assignment]
        outcome = self.successResultOf(self.invite(mediated()))
        self.assertEqual(outcome.result, InvitationResult.FAILED)
        self.assertEqual(outcome.method, "REFER")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_referFailsOtherwise(self) -> None:
        """
        A non-L{SIPError} failure of the REFER's Deferred too.
        """

        def failing(*args: object, **kwargs: object) -> Deferred[object]:
            return fail(KeyError("x"))

        self.referAgent.refer = failing  # type: ignore[method-assign,assignment]
        outcome = self.successResultOf(self.invite(mediated()))
        self.assertEqual(outcome.result, InvitationResult.FAILED)
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)


@implementer(IResolver)
class _NoAddress:
    """
    Resolves nothing (as for an unknown domain).
    """

    def resolve(self, uri: SIPURI) -> Deferred[list[Address]]:
        return fail(DialogError(f"No address for {uri}"))


class FallbackTests(InvitationsMixin, SynchronousTestCase):  # type: ignore[misc]
    """
    RFC 3428: a MESSAGE when the UA does not take REFER.
    """

    def test_fallbackStatuses(self) -> None:
        """
        The documented policy: 403, 405, 408, 420, 481, 489, 501.
        """
        self.assertEqual(
            MESSAGE_FALLBACK_STATUSES, frozenset({403, 405, 408, 420, 481, 489, 501})
        )

    def test_messageOnEachNotSupportedStatus(self) -> None:
        """
        For each fallback status the REFER is followed by one MESSAGE to
        the same AOR, through the proxy: From the room URI with the
        inviter as display name, To the AOR, no Contact (RFC 3428 4),
        C{text/plain;charset=UTF-8}, a one-line body naming inviter, room
        URI and reason; its 200 makes C{MESSAGED}.
        """
        self.invitations = self.make(maxPerInvitee=100)
        for status in sorted(MESSAGE_FALLBACK_STATUSES):
            room = JID(f"room{status}@muc.example")
            d = self.invite(mediated(room=room))
            refer = self.one("REFER")
            self.answer(refer, status)
            message = self.one("MESSAGE")
            self.assertEqual(str(message.uri), ROMEO_URI, status)
            self.assertEqual(message.header("To"), f"<{ROMEO_URI}>")
            self.assertEqual(message.fromAddress.displayName, "juliet@capulet.example")
            self.assertEqual(
                str(message.fromAddress.uri), f"sip:room{status}@muc.example"
            )
            self.assertIsNone(message.contact)
            self.assertIsNone(message.header("Referred-By"))
            self.assertEqual(message.header("Content-Type"), TEXT_PLAIN)
            self.assertEqual(message.header("Route"), f"<{PROXY.serialize()};lr>")
            self.assertEqual(
                message.body,
                (
                    "juliet@capulet.example invites you to the chat room"
                    f" sip:room{status}@muc.example (Join us)"
                ).encode(),
            )
            self.assertNoResult(d)
            self.answer(message, 200)
            self.assertEqual(
                self.successResultOf(d),
                InvitationOutcome(InvitationResult.MESSAGED, "MESSAGE", 200, status),
            )
            self.assertEqual(self.requests(), [])

    def test_message202(self) -> None:
        """
        RFC 3428 7: a 202 from a store-and-forward relay is success too.
        """
        d = self.invite(mediated())
        self.answer(self.one("REFER"), 405)
        self.answer(self.one("MESSAGE"), 202)
        self.assertEqual(self.successResultOf(d).result, InvitationResult.MESSAGED)

    def test_noFallback(self) -> None:
        """
        404, 410, 480, 486, 503, 603 (and 429): the user is unknown,
        unreachable or declines; no MESSAGE, C{FAILED} with the status, a
        warning with fields.
        """
        self.invitations = self.make(maxPerInvitee=100)
        for status in (404, 410, 429, 480, 486, 503, 603):
            room = JID(f"room{status}@muc.example")
            with capturedLogs() as events:
                d = self.invite(mediated(room=room))
                self.answer(self.one("REFER"), status)
            self.assertEqual(self.requests(), [], status)
            self.assertEqual(
                self.successResultOf(d),
                InvitationOutcome(InvitationResult.FAILED, "REFER", status),
            )
            [warning] = [e for e in events if e["log_level"].name == "warn"]
            self.assertEqual(warning["status"], status)
            self.assertEqual(warning["roomJID"], f"room{status}@muc.example")
            self.assertEqual(warning["uri"], ROMEO_URI)

    def test_referTimeout(self) -> None:
        """
        No answer at all (PJSIP drops an out-of-dialog REFER): after Timer
        F (64*T1) the UA's local 408, then the MESSAGE.
        """
        d = self.invite(mediated())
        self.one("REFER")
        for _ in range(63):
            self.clock.advance(0.5)
        self.assertEqual({r.method for r in self.requests()}, {"REFER"})
        self.assertNoResult(d)
        self.clock.advance(0.5)
        message = self.one("MESSAGE")
        self.answer(message, 200)
        self.assertEqual(
            self.successResultOf(d),
            InvitationOutcome(InvitationResult.MESSAGED, "MESSAGE", 200, 408),
        )

    def test_noRoute(self) -> None:
        """
        A local 503 (nothing to send to): no MESSAGE, which would have no
        route either.
        """
        self.ua.settings = UserAgentSettings(
            outboundProxy=SIPURI("sip", "proxy.invalid")
        )
        self.ua.resolver = _NoAddress()
        outcome = self.successResultOf(self.invite(mediated()))
        self.assertEqual(
            outcome, InvitationOutcome(InvitationResult.FAILED, "REFER", 503)
        )
        self.assertEqual(self.requests(), [])

    def test_messageFails(self) -> None:
        """
        REFER refused with 405, then MESSAGE 480: C{FAILED} naming the
        MESSAGE and both statuses.
        """
        d = self.invite(mediated())
        self.answer(self.one("REFER"), 405)
        self.answer(self.one("MESSAGE"), 480)
        self.assertEqual(
            self.successResultOf(d),
            InvitationOutcome(InvitationResult.FAILED, "MESSAGE", 480, 405),
        )

    def test_messageRaises(self) -> None:
        """
        A bug in sending the MESSAGE is logged and becomes C{FAILED}, and
        the per-AOR queue moves on.
        """
        send = self.invitations._sendMessage

        def broken(plan: Any) -> Any:
            raise RuntimeError("boom")

        self.invitations._sendMessage = broken  # type: ignore[method-assign]
        d = self.invite(mediated())
        self.answer(self.one("REFER"), 405)
        outcome = self.successResultOf(d)
        self.assertEqual(outcome.result, InvitationResult.FAILED)
        self.assertEqual(outcome.method, "MESSAGE")
        self.assertEqual(outcome.referStatus, 405)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.invitations._sendMessage = send  # type: ignore[method-assign]
        d = self.invite(mediated(room=JID("other@muc.example")))
        self.answer(self.one("REFER"), 405)
        self.answer(self.one("MESSAGE"), 200)
        self.assertEqual(self.successResultOf(d).result, InvitationResult.MESSAGED)

    def test_oneMessageAtATime(self) -> None:
        """
        RFC 3428 8: no second out-of-dialog MESSAGE to the same URI while
        one is pending: the second waits for the first's final response;
        another user's MESSAGE does not wait.
        """
        first = self.invite(mediated(room=JID("one@muc.example")))
        second = self.invite(mediated(room=JID("two@muc.example")))
        other = self.invite(mediated(), realJID=JID("benvolio@sip.example"))
        refers = self.requests()
        self.assertEqual([r.method for r in refers], ["REFER"] * 3)
        for refer in refers:
            self.answer(refer, 501)
        messages = self.requests()
        self.assertEqual(
            [(m.method, str(m.uri)) for m in messages],
            [("MESSAGE", ROMEO_URI), ("MESSAGE", "sip:benvolio@sip.example")],
        )
        self.assertIn(b"one@muc.example", messages[0].body)
        self.answer(messages[1], 200)
        self.assertEqual(self.successResultOf(other).result, InvitationResult.MESSAGED)
        self.assertEqual(self.requests(), [])
        self.answer(messages[0], 200)
        self.assertEqual(self.successResultOf(first).result, InvitationResult.MESSAGED)
        self.assertNoResult(second)
        message = self.one("MESSAGE")
        self.assertIn(b"two@muc.example", message.body)
        self.answer(message, 200)
        self.assertEqual(self.successResultOf(second).result, InvitationResult.MESSAGED)
        self.assertEqual(self.invitations._messageQueues, {})

    def test_reasonOnOneLine(self) -> None:
        """
        A reason with line breaks, tabs and control characters is one
        line; a long one is cut so the body stays within
        L{MAX_MESSAGE_BODY} octets (RFC 3428 8).
        """
        d = self.invite(mediated(reason="Come\r\nin\x00 \tnow\u2028please"))
        self.answer(self.one("REFER"), 405)
        message = self.one("MESSAGE")
        self.assertEqual(
            message.body.decode("utf-8"),
            "juliet@capulet.example invites you to the chat room"
            f" {ROOM_URI} (Come in now please)",
        )
        self.answer(message, 200)
        self.successResultOf(d)
        d = self.invite(mediated(room=JID("long@muc.example"), reason="ü" * 2000))
        self.answer(self.one("REFER"), 405)
        message = self.one("MESSAGE")
        self.assertLessEqual(len(message.body), MAX_MESSAGE_BODY)
        text = message.body.decode("utf-8")
        self.assertTrue(text.endswith("\N{HORIZONTAL ELLIPSIS})"), text[-10:])
        self.assertNotIn("\n", text)
        self.assertLess(len(message.serialize()), 1300)
        self.answer(message, 200)
        self.successResultOf(d)


class TextTests(SynchronousTestCase):
    """
    L{invitationText}, the MESSAGE body.
    """

    def test_shapes(self) -> None:
        """
        With and without inviter and reason.
        """
        self.assertEqual(
            invitationText("juliet@capulet.example", ROOM_URI, "Join us"),
            f"juliet@capulet.example invites you to the chat room {ROOM_URI} (Join us)",
        )
        self.assertEqual(
            invitationText(None, ROOM_URI, None),
            f"You are invited to the chat room {ROOM_URI}",
        )
        self.assertEqual(
            invitationText("Juliet", ROOM_URI, "   "),
            f"Juliet invites you to the chat room {ROOM_URI}",
        )

    def test_longInviter(self) -> None:
        """
        An inviter name is cut to 64 characters.
        """
        text = invitationText("x" * 500, ROOM_URI, None)
        self.assertEqual(
            text,
            "x" * 63
            + f"\N{HORIZONTAL ELLIPSIS} invites you to the chat room {ROOM_URI}",
        )

    def test_bounded(self) -> None:
        """
        Whatever the input, at most L{MAX_MESSAGE_BODY} octets of valid
        UTF-8 on one line.
        """
        for reason in ("a" * 5000, "€" * 5000, "x\n" * 3000):
            text = invitationText(
                "ü" * 100, "sip:" + "r" * 400 + "@muc.example", reason
            )
            self.assertLessEqual(len(text.encode("utf-8")), MAX_MESSAGE_BODY)
            self.assertNotIn("\n", text)


class RateLimitTests(InvitationsMixin, SynchronousTestCase):  # type: ignore[misc]
    """
    One invitation per invitee and room per L{RATE_INTERVAL}; at most
    L{MAX_PER_INVITEE} per invitee; the table is bounded.
    """

    def test_defaults(self) -> None:
        """
        The documented defaults.
        """
        self.assertEqual((RATE_INTERVAL, MAX_PER_INVITEE), (60.0, 5))

    def test_duplicateDropped(self) -> None:
        """
        The same invitation again, even to another resource of the same
        user, within the interval: dropped and logged, nothing sent; once
        the interval has passed (on the injected clock) it goes out again.
        """
        d = self.invite(mediated())
        self.answer(self.one("REFER"), 202)
        self.successResultOf(d)
        self.clock.advance(RATE_INTERVAL - 1)
        with capturedLogs() as events:
            outcome = self.successResultOf(
                self.invite(direct(), realJID=JID("romeo@sip.example/r2"))
            )
        self.assertEqual(outcome.result, InvitationResult.RATE_LIMITED)
        self.assertIsNone(outcome.method)
        self.assertEqual(self.requests(), [])
        [event] = events
        self.assertEqual(event["uri"], ROMEO_URI)
        self.assertEqual(event["roomJID"], "capulet@muc.example")
        self.assertIn("already invited", event["error"])
        self.clock.advance(1)
        d = self.invite(mediated())
        self.answer(self.one("REFER"), 202)
        self.assertEqual(self.successResultOf(d).result, InvitationResult.REFERRED)

    def test_inFlightCounts(self) -> None:
        """
        An invitation still waiting for its REFER's answer counts: a
        duplicate meanwhile is dropped.
        """
        first = self.invite(mediated())
        refer = self.one("REFER")
        again = self.successResultOf(self.invite(mediated()))
        self.assertEqual(again.result, InvitationResult.RATE_LIMITED)
        self.assertEqual(self.requests(), [])
        self.answer(refer, 202)
        self.successResultOf(first)

    def test_failureCounts(self) -> None:
        """
        A failed invitation counts too (a phone that answers 480 is not
        asked again and again).
        """
        d = self.invite(mediated())
        self.answer(self.one("REFER"), 480)
        self.assertEqual(self.successResultOf(d).result, InvitationResult.FAILED)
        again = self.successResultOf(self.invite(mediated()))
        self.assertEqual(again.result, InvitationResult.RATE_LIMITED)

    def test_perInvitee(self) -> None:
        """
        Invitations of one user to many rooms: L{MAX_PER_INVITEE} go out,
        then the rest are dropped; another user is not affected.
        """
        results = []
        for n in range(MAX_PER_INVITEE + 2):
            results.append(self.invite(mediated(room=JID(f"r{n}@muc.example"))))
        self.assertEqual(len(self.requests()), MAX_PER_INVITEE)
        for d in results[:MAX_PER_INVITEE]:
            self.assertNoResult(d)
        for d in results[MAX_PER_INVITEE:]:
            self.assertEqual(
                self.successResultOf(d).result, InvitationResult.RATE_LIMITED
            )
        self.invite(mediated(), realJID=JID("benvolio@sip.example"))
        self.assertEqual(str(self.one("REFER").uri), "sip:benvolio@sip.example")

    def test_configured(self) -> None:
        """
        The interval and per-invitee count are constructor settings.
        """
        self.invitations = self.make(interval=5.0, maxPerInvitee=1)
        self.invite(mediated(room=JID("a@muc.example")))
        self.answer(self.one("REFER"), 202)
        outcome = self.successResultOf(self.invite(mediated(room=JID("b@muc.example"))))
        self.assertEqual(outcome.result, InvitationResult.RATE_LIMITED)
        self.clock.advance(5.0)
        self.invite(mediated(room=JID("b@muc.example")))
        self.assertEqual(str(self.one("REFER").fromAddress.uri), "sip:b@muc.example")

    def test_bounded(self) -> None:
        """
        A full table drops new invitations instead of forgetting recent
        ones.
        """
        self.invitations = self.make(maxTracked=2)
        for name in ("a", "b", "c"):
            self.invite(mediated(), realJID=JID(f"{name}@sip.example"))
        refers = self.requests()
        self.assertEqual(
            [str(r.uri) for r in refers], ["sip:a@sip.example", "sip:b@sip.example"]
        )
        for refer in refers:
            self.answer(refer, 202)
        outcome = self.successResultOf(
            self.invite(mediated(), realJID=JID("d@sip.example"))
        )
        self.assertEqual(outcome.result, InvitationResult.RATE_LIMITED)
        self.assertIn("too many", outcome.reason or "")
        self.clock.advance(RATE_INTERVAL)
        self.invite(mediated(), realJID=JID("d@sip.example"))
        self.assertEqual(str(self.one("REFER").uri), "sip:d@sip.example")


class TranscriptTests(InvitationsMixin, SynchronousTestCase):  # type: ignore[misc]
    """
    The whole path: the MUC's stanza on the user domain's component
    stream, the L{OccupantService}, L{SIPToXMPP} with this sender as its
    C{invitations}, and the REFER on the SIP side ("XMPP sends X, SIP gets
    Y").
    """

    def setUp(self) -> None:
        super().setUp()
        self.link = ComponentLink(
            self.clock,
            USER_DOMAIN,
            "127.0.0.1",
            5347,
            "secret",
            queueSize=10,
            maxDelay=60.0,
            jitter=lambda: 0.0,
        )
        self.bridge = SIPToXMPP(
            self.clock, USER_DOMAIN, (MUC_DOMAIN,), invitations=self.invitations
        )
        self.service = self.bridge.occupants
        self.service.attach(self.link)
        self.link.startService()
        self.addCleanup(self.link.stopService)
        _, _, factory, *_ = self.clock.tcpClients[-1]
        self.protocol = factory.buildProtocol(None)
        self.stream = StringTransport()
        self.protocol.makeConnection(self.stream)
        self.protocol.dataReceived(
            SERVER_HEADER.replace(b"shakespeare.lit", USER_DOMAIN.encode())
        )
        self.protocol.dataReceived(b"<handshake/>")
        self.assertTrue(self.link.up)
        self.stream.clear()

    def test_mediatedInvitation(self) -> None:
        """
        A mediated invitation as the room delivers it (XEP-0045 7.8.2, its
        example's reason) to a SIP user's real JID: the SIP user gets the
        REFER to the room, Referred-By the inviter, then (405) the
        MESSAGE; the XMPP side sends nothing back.
        """
        self.protocol.dataReceived(
            (
                f"<message from='capulet@muc.example' to='{ROMEO.full()}'>"
                f"<x xmlns='{MUC_USER}'>"
                "<invite from='juliet@capulet.example/balcony'>"
                "<reason>Hey Hecate, this is the place for all good witches!</reason>"
                "</invite></x></message>"
            ).encode()
        )
        refer = self.one("REFER")
        self.assertEqual(str(refer.uri), ROMEO_URI)
        self.assertEqual(refer.headers.getLines("Refer-To"), [f"<{ROOM_URI}>"])
        self.assertEqual(
            refer.headers.getLines("Referred-By"), ["<sip:juliet@capulet.example>"]
        )
        self.answer(refer, 405)
        message = self.one("MESSAGE")
        self.assertEqual(
            message.body.decode(),
            f"juliet@capulet.example invites you to the chat room {ROOM_URI}"
            " (Hey Hecate, this is the place for all good witches!)",
        )
        self.answer(message, 200)
        self.assertEqual(self.stream.value(), b"")

    def test_directInvitation(self) -> None:
        """
        XEP-0249 section 2's direct invitation (its example, addressed to
        a bare real JID and a room on our MUC domain): the REFER names the
        room of the C{jid} attribute, Referred-By the sender; the password
        is not passed on.
        """
        self.protocol.dataReceived(
            (
                "<message from='crone1@shakespeare.lit/desktop'"
                " to='romeo@sip.example'>"
                "<x xmlns='jabber:x:conference' jid='darkcave@muc.example'"
                " password='cauldronburn' reason='Hey Hecate!'/></message>"
            ).encode()
        )
        refer = self.one("REFER")
        self.assertEqual(str(refer.uri), ROMEO_URI)
        self.assertEqual(
            refer.headers.getLines("Refer-To"), ["<sip:darkcave@muc.example>"]
        )
        self.assertEqual(
            refer.headers.getLines("Referred-By"), ["<sip:crone1@shakespeare.lit>"]
        )
        self.assertEqual(refer.fromAddress.displayName, "crone1@shakespeare.lit")
        self.assertNotIn(b"cauldronburn", refer.serialize())
        self.answer(refer, 202)
        self.assertEqual(self.stream.value(), b"")
