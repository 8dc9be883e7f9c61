# -*- test-case-name: tests.sip.test_useragent -*-
"""
Tests for L{stoxgw.sip.useragent}: the UA core over a fake UDP socket and
a clock: admission, RFC 3261 8.2 checks (403, 483, 416, 405, 501, 420,
481), routing to handlers, OPTIONS (11.2), INVITE dialogs both ways with
Record-Route and route sets (12, 16.12), CANCEL (9), digest challenges
(22).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stoxgw.sip.auth import DigestCredentials
from stoxgw.sip.dialog import DialogState, TerminationReason
from stoxgw.sip.framing import SIPStreamParser
from stoxgw.sip.headers import AuthHeader, parseReasons, parseTokenList
from stoxgw.sip.invitedialog import InviteDialog
from stoxgw.sip.message import SIPMessage, SIPRequest, SIPResponse, parseDatagram
from stoxgw.sip.sessiontimer import SessionTimerSettings, SessionTimerTerms
from stoxgw.sip.transport import Address, TransportKind
from stoxgw.sip.uri import SIPURI, URI, parseNameAddr
from stoxgw.sip.incoming import allowOf
from stoxgw.sip.useragent import (
    HostResolver,
    IInviteHandler,
    IncomingInvite,
    IncomingRequest,
    IRequestAdmission,
    IRequestHandler,
    IResolver,
    SIPError,
    SIPTrust,
    SIPUserAgent,
    UserAgentSettings,
)
from tests.sip.test_dialog import RecordingHandler
from tests.sip.test_transport import streamConnection, udpTransport

PEER = ("198.51.100.7", 5070)
PROXY = ("203.0.113.10", 5062)


def request(
    method: str = "INVITE",
    *,
    uri: str = "sip:room@192.0.2.1",
    branch: str = "z9hG4bKa1",
    cseq: int = 1,
    toTag: str | None = None,
    callID: str = "call-1@example.com",
    extra: str = "",
    recordRoute: bool = False,
    body: str = "",
) -> bytes:
    """
    A request from the peer at L{PEER}.
    """
    to = "<sip:room@192.0.2.1>" + (f";tag={toTag}" if toTag else "")
    rr = f"Record-Route: <sip:{PROXY[0]}:{PROXY[1]};lr>\r\n" if recordRoute else ""
    return (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {PEER[0]}:{PEER[1]};branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        f"{rr}"
        f"To: {to}\r\n"
        "From: <sip:alice@example.com>;tag=alicetag\r\n"
        f"Call-ID: {callID}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"Contact: <sip:alice@{PEER[0]}:{PEER[1]}>\r\n"
        f"{extra}"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


@implementer(IInviteHandler)
class InviteRecorder:
    """
    Keeps the INVITEs; answers as told.
    """

    def __init__(self, answer: str | None = None) -> None:
        self.invites: list[IncomingInvite] = []
        self.answer = answer
        self.dialogHandler = RecordingHandler()
        self.dialogs: list[InviteDialog] = []

    def inviteReceived(self, invite: IncomingInvite) -> None:
        self.invites.append(invite)
        if self.answer == "accept":
            contact = invite.ua.contactFor(
                TransportKind.UDP, user="room", headerParameters=[("isfocus", None)]
            )
            self.dialogs.append(
                invite.accept(b"v=0\r\n", contact=contact, handler=self.dialogHandler)
            )
        elif self.answer == "raise":
            raise RuntimeError("handler bug")


@implementer(IRequestHandler)
class RequestRecorder:
    """
    Keeps requests; answers 202.
    """

    def __init__(self) -> None:
        self.requests: list[IncomingRequest] = []

    def requestReceived(self, request: IncomingRequest) -> None:
        self.requests.append(request)
        request.respond(202)


class UAMixin:
    """
    A UA on a fake UDP socket (192.0.2.1:5060) trusting 198.51.100.0/24.
    """

    def setUp(self) -> None:
        self.makeUA()

    def makeUA(
        self, settings: UserAgentSettings = UserAgentSettings(), **kwargs: Any
    ) -> None:
        self.clock = MemoryReactorClock()
        self.transport, self.udp, _ = udpTransport(self.clock)
        kwargs.setdefault("admission", SIPTrust.fromStrings(["198.51.100.0/24"]))
        self.ua = SIPUserAgent(self.clock, self.transport, settings=settings, **kwargs)

    def receive(self, data: bytes | SIPMessage, source: tuple[str, int] = PEER) -> None:
        if not isinstance(data, bytes):
            data = data.serialize()
        self.transport._udp.datagramReceived(data, source)  # type: ignore[union-attr]

    def sent(self) -> list[tuple[SIPMessage, tuple[str, int]]]:
        """
        Parse and clear what went out, with destinations.
        """
        result = [
            (parseDatagram(data, requireMaxForwards=False), addr)
            for data, addr in self.udp.written
        ]
        self.udp.written.clear()
        return result

    def responses(self) -> list[SIPResponse]:
        result = []
        for message, _ in self.sent():
            assert isinstance(message, SIPResponse)
            result.append(message)
        return result

    def only(self) -> SIPResponse:
        [response] = [r for r in self.responses() if r.status != 100]
        return response


class AdmissionAndChecksTests(UAMixin, SynchronousTestCase):  # type: ignore[misc]
    """
    RFC 3261 8.2 checks, in order.
    """

    def test_verify(self) -> None:
        """
        The interfaces are provided.
        """
        self.assertTrue(verifyObject(IRequestAdmission, SIPTrust()))
        self.assertTrue(
            verifyObject(IResolver, HostResolver(self.clock, [TransportKind.UDP]))
        )
        self.assertTrue(verifyObject(IInviteHandler, InviteRecorder()))
        self.assertTrue(verifyObject(IRequestHandler, RequestRecorder()))

    def test_untrusted403(self) -> None:
        """
        docs/design.md "Trust": requests from outside the trusted networks get
        403 and reach no handler.
        """
        handler = InviteRecorder()
        self.ua.addHandler("INVITE", handler)
        with capturedLogs() as logs:
            self.receive(request(), source=("192.0.2.200", 5060))
        self.assertEqual(self.only().status, 403)
        self.assertEqual(handler.invites, [])
        self.assertTrue(any(e.get("peer") == "UDP:192.0.2.200:5060" for e in logs))

    def test_trustNetworks(self) -> None:
        """
        Addresses, networks, IPv4-mapped IPv6; names are never trusted.
        """
        trust = SIPTrust.fromStrings(["10.0.0.0/8", "2001:db8::/32", "192.0.2.5"])
        self.assertTrue(trust.isTrusted("10.1.2.3"))
        self.assertTrue(trust.isTrusted("::ffff:10.1.2.3"))
        self.assertTrue(trust.isTrusted("2001:db8::1"))
        self.assertTrue(trust.isTrusted("192.0.2.5"))
        self.assertFalse(trust.isTrusted("192.0.2.6"))
        self.assertFalse(trust.isTrusted("proxy.example.com"))
        self.assertTrue(SIPTrust(trustAll=True).isTrusted("192.0.2.6"))

    def test_maxForwardsZero483(self) -> None:
        """
        Max-Forwards 0 gets 483 (OPTIONS is still answered, 16.3).
        """
        self.receive(
            request("MESSAGE").replace(b"Max-Forwards: 70", b"Max-Forwards: 0")
        )
        self.assertEqual(self.only().status, 483)
        self.receive(
            request("OPTIONS", branch="z9hG4bKo").replace(
                b"Max-Forwards: 70", b"Max-Forwards: 0"
            )
        )
        self.assertEqual(self.only().status, 200)

    def test_unsupportedScheme416(self) -> None:
        """
        8.2.2.1: a tel: Request-URI gets 416.
        """
        self.receive(request("OPTIONS", uri="tel:+15551234"))
        self.assertEqual(self.only().status, 416)

    def test_unknownMethod501(self) -> None:
        """
        8.2.1: an unknown method gets 501.
        """
        self.receive(request("FROBNICATE"))
        self.assertEqual(self.only().status, 501)

    def test_knownMethod405(self) -> None:
        """
        8.2.1: a known method nobody takes gets 405 with Allow.
        """
        self.receive(request("REGISTER"))
        response = self.only()
        self.assertEqual(response.status, 405)
        allow = parseTokenList(response.headers.getLines("Allow"))
        self.assertIn("INVITE", allow)
        self.assertNotIn("REGISTER", allow)

    def test_require420(self) -> None:
        """
        8.2.2.3: an unsupported Require option gets 420 with Unsupported.
        """
        self.receive(request("OPTIONS", extra="Require: 100rel, foo\r\n"))
        response = self.only()
        self.assertEqual(response.status, 420)
        self.assertEqual(response.header("Unsupported"), "100rel, foo")

    def test_requireSupported(self) -> None:
        """
        Options we support pass.
        """
        self.makeUA(UserAgentSettings(supported=("timer",)))
        self.receive(request("OPTIONS", extra="Require: timer\r\n"))
        response = self.only()
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("Supported"), "timer")

    def test_byeOutsideDialog481(self) -> None:
        """
        12.2.2 / 15.1.2: BYE for no dialog gets 481 (with or without a To
        tag).
        """
        self.receive(request("BYE", toTag="nope"))
        self.assertEqual(self.only().status, 481)
        self.receive(request("BYE", branch="z9hG4bKb2"))
        self.assertEqual(self.only().status, 481)

    def test_infoOutsideDialog481(self) -> None:
        """
        A request with a To tag matching no dialog gets 481.
        """
        self.receive(request("INFO", toTag="nope"))
        self.assertEqual(self.only().status, 481)


class RoutingTests(UAMixin, SynchronousTestCase):  # type: ignore[misc]
    """
    Requests go to the handler registered for their method and URI.
    """

    def test_options(self) -> None:
        """
        11.2: OPTIONS without a handler: 200 with Allow, Accept, Supported
        and a To tag.
        """
        self.ua.addHandler("SUBSCRIBE", RequestRecorder())
        self.receive(request("OPTIONS"))
        response = self.only()
        self.assertEqual(response.status, 200)
        allow = parseTokenList(response.headers.getLines("Allow"))
        self.assertEqual(
            sorted(allow),
            sorted(["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "SUBSCRIBE"]),
        )
        self.assertEqual(response.header("Accept"), "application/sdp")
        self.assertIn("Supported", response.headers)
        self.assertIsNotNone(response.toAddress.tag)

    def test_byMethodAndURI(self) -> None:
        """
        The first handler whose match accepts the Request-URI gets it;
        none: 404.
        """
        rooms = RequestRecorder()
        other = RequestRecorder()

        def isRoom(uri: URI) -> bool:
            return isinstance(uri, SIPURI) and (uri.user or "").startswith("room")

        self.ua.addHandler("MESSAGE", rooms, isRoom)
        self.ua.addHandler("MESSAGE", other, lambda uri: False)
        self.receive(request("MESSAGE"))
        self.assertEqual(self.only().status, 202)
        self.assertEqual(len(rooms.requests), 1)
        self.receive(request("MESSAGE", uri="sip:nobody@192.0.2.1", branch="z9hG4bKm2"))
        self.assertEqual(self.only().status, 404)
        self.assertEqual(other.requests, [])
        self.ua.removeHandler("MESSAGE", rooms)
        self.receive(request("MESSAGE", branch="z9hG4bKm3"))
        self.assertEqual(self.only().status, 404)

    def test_handlerError500(self) -> None:
        """
        A handler that raises: logged, 500.
        """
        self.ua.addHandler("INVITE", InviteRecorder("raise"))
        with capturedLogs():
            self.receive(request())
        self.assertEqual(self.only().status, 500)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_inviteWithoutContact400(self) -> None:
        """
        An INVITE without Contact cannot make a dialog: 400.
        """
        self.ua.addHandler("INVITE", InviteRecorder())
        self.receive(
            request().replace(b"Contact: <sip:alice@198.51.100.7:5070>\r\n", b"")
        )
        self.assertEqual(self.only().status, 400)


class IncomingInviteTests(UAMixin, SynchronousTestCase):  # type: ignore[misc]
    """
    A peer INVITEs the gateway (RFC 3261 13.3, 12.1.1, 15.1.2, 9.2).
    """

    def setUp(self) -> None:
        super().setUp()
        self.handler = InviteRecorder("accept")
        self.ua.addHandler("INVITE", self.handler)

    def test_acceptAndByeFromPeer(self) -> None:
        """
        200 with isfocus Contact, Record-Route copied (12.1.1), To tag,
        Allow; ACK confirms; the peer's BYE gets 200 and ends the dialog.
        """
        self.receive(request(recordRoute=True))
        ok = self.only()
        self.assertEqual(ok.status, 200)
        contact = ok.contact
        assert contact is not None
        self.assertTrue(contact.addresses[0].isFocus)
        self.assertEqual(ok.header("Record-Route"), f"<sip:{PROXY[0]}:{PROXY[1]};lr>")
        self.assertEqual(ok.body, b"v=0\r\n")
        [dialog] = self.handler.dialogs
        self.assertEqual(ok.toAddress.tag, dialog.localTag)
        self.assertEqual(self.ua.dialogs, {dialog.id: dialog})
        self.receive(request("ACK", branch="z9hG4bKack", toTag=dialog.localTag))
        self.assertEqual(self.handler.dialogHandler.events, [("confirmed", None)])
        self.clock.advance(1)
        self.assertEqual(self.sent(), [])  # ACK stopped the 2xx retransmission
        self.receive(request("BYE", branch="z9hG4bKbye", cseq=2, toTag=dialog.localTag))
        self.assertEqual(self.only().status, 200)
        self.assertEqual(
            self.handler.dialogHandler.events[-1],
            ("terminated", TerminationReason.REMOTE_BYE),
        )
        self.assertEqual(self.ua.dialogs, {})

    def test_2xxRetransmittedWithoutAck(self) -> None:
        """
        13.3.1.4: without ACK the UA core resends the 2xx, then BYEs.
        """
        self.receive(request())
        self.sent()
        self.clock.advance(0.5)
        [ok] = self.responses()
        self.assertEqual(ok.status, 200)
        for _ in range(64):
            self.clock.advance(0.5)
        bye = [m for m, _ in self.sent() if isinstance(m, SIPRequest)]
        self.assertEqual({m.method for m in bye}, {"BYE"})
        self.assertEqual(
            self.handler.dialogHandler.events,
            [("terminated", TerminationReason.NO_ACK)],
        )

    def test_byeFollowsRouteSet(self) -> None:
        """
        12.2.1.1 / 16.12: our BYE goes to the first Record-Route hop with
        Route headers, Request-URI = the peer's Contact.
        """
        self.receive(request(recordRoute=True))
        self.sent()
        [dialog] = self.handler.dialogs
        self.receive(request("ACK", branch="z9hG4bKack", toTag=dialog.localTag))
        dialog.bye()
        [(bye, destination)] = self.sent()
        assert isinstance(bye, SIPRequest)
        self.assertEqual(bye.method, "BYE")
        self.assertEqual(destination, PROXY)
        self.assertEqual(str(bye.uri), f"sip:alice@{PEER[0]}:{PEER[1]}")
        self.assertEqual(bye.header("Route"), f"<sip:{PROXY[0]}:{PROXY[1]};lr>")
        self.assertEqual(bye.toAddress.tag, "alicetag")
        self.assertIs(dialog.state, DialogState.TERMINATED)

    def test_cancel(self) -> None:
        """
        9.2: CANCEL for a pending INVITE: 200 to the CANCEL, 487 to the
        INVITE, the handler's Deferred fires.
        """
        self.handler.answer = None
        self.receive(request())
        [invite] = self.handler.invites
        self.receive(request("CANCEL"))
        statuses = [r.status for r in self.responses() if r.status != 100]
        self.assertEqual(sorted(statuses), [200, 487])
        self.assertIsNone(self.successResultOf(invite.cancelled))
        self.assertTrue(invite.answered)
        self.receive(request("ACK", toTag=invite.toTag))
        self.assertEqual(self.sent(), [])

    def test_cancelUnknown481(self) -> None:
        """
        9.2: a CANCEL matching no INVITE gets 481.
        """
        self.receive(request("CANCEL", branch="z9hG4bKnone"))
        self.assertEqual(self.only().status, 481)

    def test_retransmittedInviteAbsorbed(self) -> None:
        """
        17.2.1: a retransmitted INVITE does not reach the handler again.
        """
        self.handler.answer = None
        self.receive(request())
        self.receive(request())
        self.assertEqual(len(self.handler.invites), 1)

    def test_reinviteRejectedWhenPending(self) -> None:
        """
        14.2: a re-INVITE while one is pending gets 491; the handler's
        answer to the first one goes through.
        """
        self.receive(request())
        self.sent()
        [dialog] = self.handler.dialogs
        self.receive(request("ACK", branch="z9hG4bKack", toTag=dialog.localTag))
        self.receive(request(branch="z9hG4bKre1", cseq=2, toTag=dialog.localTag))
        [(_, reinvite)] = [
            e for e in self.handler.dialogHandler.events if e[0] == "reinvite"
        ]
        self.receive(request(branch="z9hG4bKre2", cseq=3, toTag=dialog.localTag))
        self.assertEqual(self.only().status, 491)
        assert isinstance(reinvite, IncomingInvite)
        reinvite.reject(488)
        self.assertEqual(self.only().status, 488)
        self.assertFalse(dialog.inviteInProgress)

    def test_reinviteAccepted(self) -> None:
        """
        A re-INVITE accepted by the handler refreshes the remote target.
        """
        self.receive(request())
        [dialog] = self.handler.dialogs
        self.receive(request("ACK", branch="z9hG4bKack", toTag=dialog.localTag))
        self.sent()
        self.receive(
            request(branch="z9hG4bKre1", cseq=2, toTag=dialog.localTag).replace(
                b"Contact: <sip:alice@198.51.100.7:5070>",
                b"Contact: <sip:alice@198.51.100.7:5071>",
            )
        )
        [(_, reinvite)] = [
            e for e in self.handler.dialogHandler.events if e[0] == "reinvite"
        ]
        assert isinstance(reinvite, IncomingInvite)
        self.assertTrue(reinvite.isReinvite)
        self.assertIs(reinvite.accept(b"v=0\r\n"), dialog)
        self.assertEqual(self.only().status, 200)
        self.assertEqual(str(dialog.remoteTarget), "sip:alice@198.51.100.7:5071")

    def test_oldCSeq500(self) -> None:
        """
        12.2.2: an in-dialog request with an old CSeq gets 500.
        """
        self.receive(request(cseq=5))
        [dialog] = self.handler.dialogs
        self.sent()
        self.receive(request("INFO", branch="z9hG4bKi", cseq=4, toTag=dialog.localTag))
        self.assertEqual(self.only().status, 500)

    def test_inDialogRequestToHandler(self) -> None:
        """
        Other requests in the dialog go to the dialog's handler.
        """
        self.receive(request())
        [dialog] = self.handler.dialogs
        self.sent()
        self.receive(request("INFO", branch="z9hG4bKi", cseq=2, toTag=dialog.localTag))
        [(kind, incoming)] = [
            e for e in self.handler.dialogHandler.events if e[0] == "request"
        ]
        assert isinstance(incoming, IncomingRequest)
        self.assertIs(incoming.dialog, dialog)
        incoming.respond(200)
        self.assertEqual(self.only().status, 200)


class OutgoingTests(UAMixin, SynchronousTestCase):  # type: ignore[misc]
    """
    The gateway INVITEs (RFC 3261 13.2, 12.1.2, 9.1, 22).
    """

    target = parseNameAddr(f"<sip:focus@{PEER[0]}:{PEER[1]}>")
    me = parseNameAddr('"Juliet" <sip:juliet@xmpp.example>')

    def test_inviteAndAck(self) -> None:
        """
        INVITE with Contact, From tag, Via; 1xx reported; the 2xx makes a
        dialog whose route set is the reversed Record-Route; the ACK goes
        to the first route; a 2xx retransmission gets the same ACK.
        """
        provisional: list[int] = []
        handler = RecordingHandler()
        d = self.ua.invite(
            self.target,
            self.me,
            b"v=0\r\n",
            handler=handler,
            onProvisional=lambda r: provisional.append(r.status),
        )
        [(invite, destination)] = self.sent()
        assert isinstance(invite, SIPRequest)
        self.assertEqual(destination, PEER)
        self.assertIsNotNone(invite.fromAddress.tag)
        self.assertEqual(invite.header("Content-Type"), "application/sdp")
        self.assertIn("Contact", invite.headers)
        self.assertTrue(invite.topVia.hasMagicCookie)
        self.receive(invite.makeResponse(180, toTag="ft"))
        self.assertEqual(provisional, [180])
        ok = (
            invite.makeResponse(200, toTag="ft")
            .addHeader(
                "Record-Route", f"<sip:{PROXY[0]}:{PROXY[1]};lr>, <sip:203.0.113.11;lr>"
            )
            .addHeader("Contact", "<sip:focus@198.51.100.8>;isfocus")
        )
        self.receive(ok)
        dialog = self.successResultOf(d)
        self.assertEqual(handler.events, [("confirmed", None)])
        [(ack, destination)] = self.sent()
        assert isinstance(ack, SIPRequest)
        self.assertEqual(ack.method, "ACK")
        self.assertEqual(destination, ("203.0.113.11", 5060))
        self.assertEqual(
            ack.headers.getLines("Route"),
            ["<sip:203.0.113.11;lr>", f"<sip:{PROXY[0]}:{PROXY[1]};lr>"],
        )
        self.assertEqual(str(ack.uri), "sip:focus@198.51.100.8")
        self.assertEqual(ack.cseq.number, invite.cseq.number)
        self.assertNotEqual(ack.topVia.branch, invite.topVia.branch)
        self.receive(ok)
        [(again, _)] = self.sent()
        self.assertEqual(again, ack)
        self.assertIs(dialog.state, DialogState.CONFIRMED)

    def test_inviteRejected(self) -> None:
        """
        A non-2xx final response fails the Deferred with L{SIPError}.
        """
        d = self.ua.invite(self.target, self.me, b"v=0\r\n")
        [(invite, _)] = self.sent()
        assert isinstance(invite, SIPRequest)
        self.receive(invite.makeResponse(486, toTag="ft"))
        error = self.failureResultOf(d, SIPError).value
        self.assertEqual((error.status, error.reason), (486, "Busy Here"))

    def test_unusable2xx(self) -> None:
        """
        RFC 3261 12.1.2: a 2xx without Contact makes no dialog; the INVITE
        fails with a local 502 instead of never answering its caller.
        """
        d = self.ua.invite(self.target, self.me, b"v=0\r\n")
        [(invite, _)] = self.sent()
        assert isinstance(invite, SIPRequest)
        with capturedLogs() as logs:
            self.receive(invite.makeResponse(200, toTag="ft"))
        error = self.failureResultOf(d, SIPError).value
        self.assertEqual(error.status, 502)
        self.assertIn("Unusable 2xx", error.reason)
        self.assertEqual(
            [e["log_format"] for e in logs if "Unusable" in e.get("log_format", "")],
            ["Unusable 2xx for INVITE: {error}"],
        )

    def test_inviteTimeout(self) -> None:
        """
        Timer B: the Deferred fails with a 408 L{SIPError}.
        """
        d = self.ua.invite(self.target, self.me, b"v=0\r\n")
        with capturedLogs():
            for _ in range(70):
                self.clock.advance(0.5)
        self.assertEqual(self.failureResultOf(d, SIPError).value.status, 408)

    def test_cancel(self) -> None:
        """
        9.1: cancelling the Deferred sends CANCEL after the 1xx.
        """
        d = self.ua.invite(self.target, self.me, b"v=0\r\n")
        [(invite, _)] = self.sent()
        assert isinstance(invite, SIPRequest)
        self.receive(invite.makeResponse(180, toTag="ft"))
        d.cancel()
        self.failureResultOf(d, CancelledError)
        [(cancel, _)] = self.sent()
        assert isinstance(cancel, SIPRequest)
        self.assertEqual(cancel.method, "CANCEL")
        self.receive(invite.makeResponse(487, toTag="ft"))
        self.assertEqual([m.method for m, _ in self.sent()], ["ACK"])  # type: ignore[union-attr]

    def test_challengeAnswered(self) -> None:
        """
        22.3: a 407 is answered once with Proxy-Authorization, CSeq + 1,
        the same Call-ID and From tag.
        """
        self.makeUA(UserAgentSettings(credentials=DigestCredentials("gw", "secret")))
        d = self.ua.invite(self.target, self.me, b"v=0\r\n")
        [(invite, _)] = self.sent()
        assert isinstance(invite, SIPRequest)
        self.receive(
            invite.makeResponse(407, toTag="px").addHeader(
                "Proxy-Authenticate",
                'Digest realm="example.com", nonce="abc", qop="auth"',
            )
        )
        messages = [m for m, _ in self.sent()]
        self.assertEqual([m.method for m in messages], ["ACK", "INVITE"])  # type: ignore[union-attr]
        retried = messages[1]
        assert isinstance(retried, SIPRequest)
        self.assertEqual(retried.cseq.number, invite.cseq.number + 1)
        self.assertEqual(retried.callID, invite.callID)
        self.assertEqual(retried.fromAddress.tag, invite.fromAddress.tag)
        credentials = AuthHeader.parse(retried.header("Proxy-Authorization") or "")
        self.assertEqual(credentials.parameter("username"), "gw")
        self.assertEqual(credentials.parameter("realm"), "example.com")
        # The same challenge again: not retried, the 407 is the result.
        self.receive(
            retried.makeResponse(407, toTag="px").addHeader(
                "Proxy-Authenticate",
                'Digest realm="example.com", nonce="abc", qop="auth"',
            )
        )
        self.assertEqual(self.failureResultOf(d, SIPError).value.status, 407)

    def test_outboundProxy(self) -> None:
        """
        8.1.2: with an outbound proxy, out-of-dialog requests carry it as
        Route (lr added) and go there.
        """
        self.makeUA(
            UserAgentSettings(outboundProxy=SIPURI("sip", PROXY[0], port=PROXY[1]))
        )
        self.ua.request(
            "MESSAGE", self.target, self.me, body=b"hi", contentType="text/plain"
        )
        [(message, destination)] = self.sent()
        assert isinstance(message, SIPRequest)
        self.assertEqual(destination, PROXY)
        self.assertEqual(message.header("Route"), f"<sip:{PROXY[0]}:{PROXY[1]};lr>")
        self.assertEqual(str(message.uri), f"sip:focus@{PEER[0]}:{PEER[1]}")

    def test_staticRoute(self) -> None:
        """
        A static route per domain works like an outbound proxy for it.
        """
        self.makeUA(
            UserAgentSettings(
                routes={
                    "chat.example.org": SIPURI(
                        "sip", PROXY[0], port=PROXY[1], parameters=(("lr", None),)
                    )
                }
            )
        )
        d = self.ua.request(
            "OPTIONS", SIPURI("sip", "chat.example.org", user="r"), self.me
        )
        [(options, destination)] = self.sent()
        self.assertEqual(destination, PROXY)
        assert isinstance(options, SIPRequest)
        self.receive(options.makeResponse(200, toTag="x"))
        self.assertEqual(self.successResultOf(d).status, 200)

    def test_resolverFailure503(self) -> None:
        """
        A next hop that does not resolve gives a local 503.
        """
        from twisted.internet.defer import fail

        @implementer(IResolver)
        class Failing:
            def resolve(self, uri: SIPURI) -> Any:
                return fail(OSError("no such host"))

        self.ua.resolver = Failing()
        with capturedLogs():
            d = self.ua.request("OPTIONS", SIPURI("sip", "unknown.invalid"), self.me)
        self.assertEqual(self.successResultOf(d).status, 503)

    def test_hostResolver(self) -> None:
        """
        Transport from the URI (transport param, sips), default port per
        transport, IP literals as they are.
        """
        resolver = HostResolver(self.clock, [TransportKind.UDP, TransportKind.TCP])
        self.assertEqual(
            self.successResultOf(resolver.resolve(SIPURI("sip", "192.0.2.9"))),
            [Address(TransportKind.UDP, "192.0.2.9", 5060)],
        )
        self.assertEqual(
            self.successResultOf(
                resolver.resolve(
                    SIPURI(
                        "sip",
                        "192.0.2.9",
                        port=5080,
                        parameters=(("transport", "tcp"),),
                    )
                )
            ),
            [Address(TransportKind.TCP, "192.0.2.9", 5080)],
        )
        self.assertEqual(
            self.successResultOf(resolver.resolve(SIPURI("sips", "192.0.2.9"))),
            [Address(TransportKind.TLS, "192.0.2.9", 5061)],
        )


# -- RFC 4028 session timers ---------------------------------------------------

TIMERS = UserAgentSettings(sessionTimer=SessionTimerSettings(interval=1800, minimum=90))

OFFER = "v=0\r\no=alice 1 1 IN IP4 198.51.100.7\r\ns=-\r\nt=0 0\r\n"


def reason(request: SIPRequest) -> tuple[int | None, str | None]:
    """
    The SIP cause and text of a request's Reason header.
    """
    [value] = parseReasons(request.header("Reason") or "")
    return value.cause, value.text


class SessionTimerUASTests(UAMixin, SynchronousTestCase):  # type: ignore[misc]
    """
    RFC 4028 sections 9 and 10 with the gateway as UAS: a SIP user whose
    INVITE asks for a session timer and who then goes silent is ended with
    a BYE.
    """

    def setUp(self) -> None:
        self.makeUA(TIMERS)
        self.handler = InviteRecorder("accept")
        self.ua.addHandler("INVITE", self.handler)

    def establish(self, extra: str) -> InviteDialog:
        """
        INVITE with C{extra} header lines, 200, ACK.
        """
        self.receive(request(extra=extra, body=OFFER))
        [dialog] = self.handler.dialogs
        self.receive(request("ACK", branch="z9hG4bKack", toTag=dialog.localTag))
        return dialog

    def requests(self) -> list[SIPRequest]:
        return [m for m, _ in self.sent() if isinstance(m, SIPRequest)]

    def test_capabilities(self) -> None:
        """
        With session timers, Supported has C{timer} and Allow has UPDATE
        (RFC 4028 section 7.1, RFC 3311).
        """
        self.assertEqual(self.ua.supported, ("timer",))
        self.assertIn("UPDATE", self.ua.allowedMethods)
        self.receive(request("OPTIONS"))
        ok = self.only()
        self.assertEqual(parseTokenList(ok.headers.getLines("Supported")), ["timer"])
        self.assertIn("UPDATE", parseTokenList(ok.headers.getLines("Allow")))

    def test_inDialogRequestsSupportTimer(self) -> None:
        """
        RFC 4028 section 7.1 (issue #11): every request we send but ACK
        lists C{timer} in Supported, in a dialog with a session timer
        (BYE, NOTIFY, INFO) and out of one (OPTIONS); a Supported the
        caller wrote keeps its tags.  Without session timers nothing is
        added.
        """
        dialog = self.establish("Supported: timer\r\nSession-Expires: 1800\r\n")
        self.sent()
        dialog.sendRequest("NOTIFY", [("Supported", "norefersub")])
        dialog.sendRequest("INFO")
        dialog.bye()
        self.ua.request(
            "OPTIONS",
            parseNameAddr(f"<sip:alice@{PEER[0]}:{PEER[1]}>"),
            parseNameAddr("<sip:gw@192.0.2.1>"),
        )
        sent = self.requests()
        self.assertEqual(
            [(r.method, parseTokenList(r.headers.getLines("Supported"))) for r in sent],
            [
                ("NOTIFY", ["norefersub", "timer"]),
                ("INFO", ["timer"]),
                ("BYE", ["timer"]),
                ("OPTIONS", ["timer"]),
            ],
        )
        bare = sent[-1].withoutHeader("Supported")
        plain = SIPUserAgent(self.clock, udpTransport(self.clock)[0])
        self.assertIs(plain.withSupported(bare), bare)

    def test_intervalTooSmall422(self) -> None:
        """
        Section 9: below our Min-SE, from a UAC that supports timers: 422
        with Min-SE, and the handler never hears of it.
        """
        self.receive(request(extra="Supported: timer\r\nSession-Expires: 60\r\n"))
        response = self.only()
        self.assertEqual(response.status, 422)
        self.assertEqual(response.header("Min-SE"), "90")
        self.assertEqual(self.handler.invites, [])

    def test_silentRefresherEnded(self) -> None:
        """
        The SIP user supports timers, so it refreshes (refresher=uac,
        Require: timer in the 200); when no refresh comes, the gateway
        BYEs min(32 s, interval/3) before the expiration (section 10),
        with Reason 408, and the dialog ends as SESSION_EXPIRED.
        """
        self.receive(
            request(extra="Supported: timer\r\nSession-Expires: 90\r\n", body=OFFER)
        )
        ok = self.only()
        self.assertEqual(ok.header("Session-Expires"), "90;refresher=uac")
        self.assertEqual(ok.header("Require"), "timer")
        [dialog] = self.handler.dialogs
        self.receive(request("ACK", branch="z9hG4bKack", toTag=dialog.localTag))
        self.clock.advance(59)
        self.assertEqual(self.requests(), [])
        self.clock.advance(1)
        [bye] = self.requests()
        self.assertEqual(bye.method, "BYE")
        self.assertEqual(reason(bye), (408, "Session timer expired"))
        self.assertEqual(
            self.handler.dialogHandler.events[-1],
            ("terminated", TerminationReason.SESSION_EXPIRED),
        )

    def test_refreshByUpdate(self) -> None:
        """
        A bodiless UPDATE is a refresh the core answers itself: 200 with
        Session-Expires; the expiration moves.
        """
        dialog = self.establish("Supported: timer\r\nSession-Expires: 90\r\n")
        self.sent()
        self.clock.advance(45)
        self.receive(
            request(
                "UPDATE",
                branch="z9hG4bKup",
                cseq=2,
                toTag=dialog.localTag,
                extra="Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
            )
        )
        ok = self.only()
        self.assertEqual((ok.status, ok.cseq.method), (200, "UPDATE"))
        self.assertEqual(ok.header("Session-Expires"), "90;refresher=uac")
        self.clock.advance(59)
        self.assertEqual(self.requests(), [])
        self.assertIs(dialog.state, DialogState.CONFIRMED)
        self.clock.advance(1)
        self.assertEqual([r.method for r in self.requests()], ["BYE"])

    def test_refreshByReinvite(self) -> None:
        """
        A re-INVITE the handler accepts refreshes the session too; one it
        refuses does not (only a 2xx refreshes, section 10).
        """
        dialog = self.establish("Supported: timer\r\nSession-Expires: 90\r\n")
        self.sent()
        self.clock.advance(40)
        self.receive(
            request(
                branch="z9hG4bKre1",
                cseq=2,
                toTag=dialog.localTag,
                extra="Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
                body=OFFER,
            )
        )
        [(_, reinvite)] = [
            e for e in self.handler.dialogHandler.events if e[0] == "reinvite"
        ]
        assert isinstance(reinvite, IncomingInvite)
        reinvite.accept(b"v=0\r\n")
        self.assertEqual(self.only().header("Session-Expires"), "90;refresher=uac")
        self.receive(
            request("ACK", branch="z9hG4bKack2", cseq=2, toTag=dialog.localTag)
        )
        self.clock.advance(59)
        self.assertEqual(self.requests(), [])
        self.receive(
            request(
                branch="z9hG4bKre2",
                cseq=3,
                toTag=dialog.localTag,
                extra="Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
                body=OFFER,
            )
        )
        [(_, refused)] = [
            e for e in self.handler.dialogHandler.events if e[0] == "reinvite"
        ][1:]
        assert isinstance(refused, IncomingInvite)
        refused.reject(488)
        self.sent()
        self.clock.advance(1)
        self.assertEqual([r.method for r in self.requests()], ["BYE"])

    def test_gatewayRefreshesWithReinvite(self) -> None:
        """
        A SIP user without timer support: we refresh (refresher=uas, no
        Require) at half the interval with a re-INVITE carrying our
        unchanged SDP (its Allow has no UPDATE); the 2xx is ACKed and the
        next refresh follows; a refresh never answered ends the dialog
        with a BYE (section 10).
        """
        dialog = self.establish("Allow: INVITE, ACK, BYE\r\n")
        self.assertEqual(dialog.sessionTimer, SessionTimerTerms(1800, True, 90))
        self.sent()
        self.clock.advance(899)
        self.assertEqual(self.requests(), [])
        self.clock.advance(1)
        [refresh] = self.requests()
        self.assertEqual(refresh.method, "INVITE")
        self.assertEqual(refresh.body, b"v=0\r\n")
        self.assertEqual(refresh.header("Session-Expires"), "1800;refresher=uac")
        self.assertEqual(refresh.header("Supported"), "timer")
        self.receive(
            refresh.makeResponse(200, toTag="alicetag")
            .addHeader("Contact", f"<sip:alice@{PEER[0]}:{PEER[1]}>")
            .withBody(OFFER.encode(), "application/sdp")
        )
        self.assertEqual([r.method for r in self.requests()], ["ACK"])
        self.clock.advance(900)
        [again] = self.requests()
        self.assertEqual(again.method, "INVITE")
        with capturedLogs():
            for _ in range(70):
                self.clock.advance(0.5)
        methods = [r.method for r in self.requests()]
        self.assertEqual(methods[-1], "BYE")
        self.assertIs(dialog.state, DialogState.TERMINATED)
        self.assertEqual(
            self.handler.dialogHandler.events[-1],
            ("terminated", TerminationReason.SESSION_EXPIRED),
        )

    def test_refusedRefreshKeepsSession(self) -> None:
        """
        A user without timers that refuses our re-INVITE (488) is there:
        the session is kept for another interval instead of ended at the
        expiration under a live user.
        """
        dialog = self.establish("Allow: INVITE, ACK, BYE\r\n")
        self.sent()
        self.clock.advance(900)
        [refresh] = self.requests()
        self.receive(refresh.makeResponse(488, toTag="alicetag"))
        self.clock.advance(900)
        self.assertEqual([r.method for r in self.requests()], ["ACK", "INVITE"])
        self.assertIs(dialog.state, DialogState.CONFIRMED)

    def test_unreachableRefreshEnds(self) -> None:
        """
        A refresh that cannot be sent (the user's connection is gone and a
        new one is refused: a local 503) ends the dialog.
        """
        from twisted.internet.error import ConnectionDone, ConnectionRefusedError
        from twisted.python.failure import Failure

        connection, _ = streamConnection(self.transport, TCP_PEER)
        connection.dataReceived(tcpRequest(extra="Allow: INVITE, ACK, BYE\r\n"))
        [dialog] = self.handler.dialogs
        connection.dataReceived(
            tcpRequest("ACK", branch="z9hG4bKack", toTag=dialog.localTag)
        )
        connection.connectionLost(Failure(ConnectionDone()))
        self.clock.advance(900)
        with capturedLogs():
            for connector, (_, _, factory, *_) in zip(
                list(self.clock.connectors), list(self.clock.tcpClients)
            ):
                factory.clientConnectionFailed(
                    connector, Failure(ConnectionRefusedError())
                )
        self.assertEqual(dialog.terminationReason, TerminationReason.SESSION_EXPIRED)

    def test_gatewayRefreshesWithUpdate(self) -> None:
        """
        Section 7.4: UPDATE without a body when the peer allows it.
        """
        dialog = self.establish("Allow: INVITE, ACK, BYE, UPDATE\r\n")
        self.sent()
        self.clock.advance(900)
        [refresh] = self.requests()
        self.assertEqual((refresh.method, refresh.body), ("UPDATE", b""))
        self.receive(
            refresh.makeResponse(200, toTag="alicetag").addHeader(
                "Session-Expires", "1800;refresher=uac"
            )
        )
        self.assertEqual(dialog.sessionTimer, SessionTimerTerms(1800, True, 90))

    def test_updateOutsideDialog481(self) -> None:
        """
        UPDATE without a To tag matches no dialog.
        """
        self.receive(request("UPDATE"))
        self.assertEqual(self.only().status, 481)


class SessionTimerUACTests(UAMixin, SynchronousTestCase):  # type: ignore[misc]
    """
    RFC 4028 section 7 with the gateway as UAC.
    """

    target = parseNameAddr(f"<sip:focus@{PEER[0]}:{PEER[1]}>")
    me = parseNameAddr('"Juliet" <sip:juliet@xmpp.example>')

    def setUp(self) -> None:
        self.makeUA(TIMERS)

    def invite(self) -> tuple[Any, SIPRequest]:
        d = self.ua.invite(self.target, self.me, b"v=0\r\n", handler=RecordingHandler())
        [(invite, _)] = self.sent()
        assert isinstance(invite, SIPRequest)
        return d, invite

    def answer(self, invite: SIPRequest, *headers: tuple[str, str]) -> InviteDialog:
        ok = invite.makeResponse(200, toTag="ft").addHeader(
            "Contact", f"<sip:focus@{PEER[0]}:{PEER[1]}>"
        )
        for name, value in headers:
            ok = ok.addHeader(name, value)
        return ok

    def test_asksAndRetries422(self) -> None:
        """
        Sections 7.1 and 7.3: the INVITE asks for our interval without a
        refresher; a 422 is retried once with its Min-SE, CSeq + 1.
        """
        d, invite = self.invite()
        self.assertEqual(invite.header("Session-Expires"), "1800")
        self.assertEqual(invite.header("Min-SE"), "90")
        self.assertIn("timer", parseTokenList(invite.headers.getLines("Supported")))
        self.receive(invite.makeResponse(422, toTag="x").addHeader("Min-SE", "3600"))
        retry = [m for m, _ in self.sent() if isinstance(m, SIPRequest)]
        self.assertEqual([m.method for m in retry], ["ACK", "INVITE"])
        again = retry[1]
        self.assertEqual(again.cseq.number, invite.cseq.number + 1)
        self.assertEqual(again.header("Session-Expires"), "3600")
        self.assertEqual(again.header("Min-SE"), "3600")
        self.assertEqual(again.callID, invite.callID)
        self.receive(self.answer(again))
        dialog = self.successResultOf(d)
        self.assertEqual(dialog.sessionTimer, SessionTimerTerms(3600, True, 3600))

    def test_peerRefreshes(self) -> None:
        """
        Section 7.2: refresher=uas in the 2xx: the focus refreshes, we end
        the session when it does not.
        """
        d, invite = self.invite()
        self.receive(
            self.answer(
                invite, ("Session-Expires", "120;refresher=uas"), ("Require", "timer")
            )
        )
        dialog = self.successResultOf(d)
        self.sent()
        self.clock.advance(120 - 32)
        [bye] = [m for m, _ in self.sent() if isinstance(m, SIPRequest)]
        self.assertEqual((bye.method, reason(bye)[0]), ("BYE", 408))
        self.assertEqual(dialog.terminationReason, TerminationReason.SESSION_EXPIRED)

    def test_uasWithoutTimer(self) -> None:
        """
        Section 7.2: no Session-Expires in the 2xx: we refresh alone with
        the interval we asked for.
        """
        d, invite = self.invite()
        self.receive(self.answer(invite))
        dialog = self.successResultOf(d)
        self.assertEqual(dialog.sessionTimer, SessionTimerTerms(1800, True, 90))
        self.sent()
        self.clock.advance(900)
        [refresh] = [m for m, _ in self.sent() if isinstance(m, SIPRequest)]
        self.assertEqual(refresh.method, "INVITE")
        self.assertEqual(refresh.body, b"v=0\r\n")


# -- flows (RFC 5923, RFC 5626) and shutdown ----------------------------------

TCP_PEER = ("198.51.100.7", 40123)


def tcpRequest(
    method: str = "INVITE",
    *,
    contact: str = "<sip:alice@198.51.100.7:5070;transport=tcp>",
    **kwargs: Any,
) -> bytes:
    """
    L{request}, sent over TCP by a UA listening on 198.51.100.7:5070.
    """
    data = request(method, **kwargs)
    return data.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP").replace(
        f"Contact: <sip:alice@{PEER[0]}:{PEER[1]}>".encode(),
        f"Contact: {contact}".encode(),
    )


class FlowTests(UAMixin, SynchronousTestCase):  # type: ignore[misc]
    """
    In-dialog requests go over the connection the SIP user opened when
    the dialog's next hop is that user (RFC 5923 section 2, RFC 5626
    section 4.3); otherwise by the normal rules.
    """

    def setUp(self) -> None:
        self.makeUA()
        self.handler = InviteRecorder("accept")
        self.ua.addHandler("INVITE", self.handler)

    def connect(self) -> tuple[Any, Any]:
        connection, string = streamConnection(self.transport, TCP_PEER)
        return connection, string

    def establish(self, **kwargs: Any) -> tuple[InviteDialog, Any, Any]:
        connection, string = self.connect()
        connection.dataReceived(tcpRequest(**kwargs))
        [dialog] = self.handler.dialogs
        connection.dataReceived(
            tcpRequest("ACK", branch="z9hG4bKack", toTag=dialog.localTag, **kwargs)
        )
        string.clear()
        return dialog, connection, string

    def written(self, string: Any) -> list[Any]:
        messages = SIPStreamParser().feed(string.value())
        string.clear()
        return messages

    def test_byeOnPeersConnection(self) -> None:
        """
        The BYE goes over the user's own connection, no new one is
        opened, and its 200 on that connection completes it.
        """
        dialog, connection, string = self.establish()
        self.assertIs(dialog.reusableFlow(), dialog.flow)
        d = dialog.bye()
        [bye] = self.written(string)
        self.assertEqual(bye.method, "BYE")
        self.assertEqual(str(bye.uri), "sip:alice@198.51.100.7:5070;transport=tcp")
        self.assertEqual(self.clock.tcpClients, [])
        connection.dataReceived(bye.makeResponse(200).serialize())
        self.assertEqual(self.successResultOf(d).status, 200)

    def test_dialogKeepsItsConnection(self) -> None:
        """
        Issue #13: the UA core tells the transport when an INVITE dialog
        starts (the connection it came over carries it: no idle close)
        and when it ends (BYE).
        """
        dialog, connection, _ = self.establish()
        self.assertEqual(connection.dialogs, {dialog.callID})
        connection.dataReceived(
            tcpRequest("BYE", branch="z9hG4bKbye", cseq=2, toTag=dialog.localTag)
        )
        self.assertEqual(connection.dialogs, set())
        self.assertEqual(self.transport._dialogUsages, {})

    def test_otherTargetResolved(self) -> None:
        """
        A Contact naming another host (or UDP) is not the peer that opened
        the connection: a connection of our own.
        """
        dialog, _, string = self.establish(
            contact="<sip:alice@203.0.113.80:5070;transport=tcp>"
        )
        self.assertIsNone(dialog.reusableFlow())
        dialog.bye()
        self.assertEqual(self.written(string), [])
        [(host, port, *_)] = self.clock.tcpClients
        self.assertEqual((host, port), ("203.0.113.80", 5070))

    def test_recordRoutingProxysFlow(self) -> None:
        """
        Through a record-routing proxy: the first route names the proxy
        that opened the connection (its Via sent-by), so the BYE goes to
        it over that connection, with the Route header and the user's
        Contact as Request-URI.
        """
        dialog, _, string = self.establish(
            contact="<sip:alice@203.0.113.80:5070;transport=tcp>",
            extra="Record-Route: <sip:198.51.100.7:5070;transport=tcp;lr>\r\n",
        )
        dialog.bye()
        [bye] = self.written(string)
        self.assertEqual(str(bye.uri), "sip:alice@203.0.113.80:5070;transport=tcp")
        self.assertEqual(bye.header("Route"), "<sip:198.51.100.7:5070;transport=tcp;lr>")
        self.assertEqual(self.clock.tcpClients, [])

    def test_obFlow(self) -> None:
        """
        RFC 5626 section 4.3: C{ob} on the Contact asks for the flow,
        wherever the Contact points.
        """
        dialog, _, string = self.establish(
            contact="<sip:alice@10.0.0.9:5070;transport=tcp;ob>"
        )
        dialog.bye()
        [bye] = self.written(string)
        self.assertEqual(bye.method, "BYE")
        self.assertEqual(self.clock.tcpClients, [])

    def test_closedFlowFallsBack(self) -> None:
        """
        Once the user's connection is closed, requests are sent by the
        normal rules (a new connection to the Contact).
        """
        from twisted.internet.error import ConnectionDone
        from twisted.python.failure import Failure

        dialog, connection, _ = self.establish()
        connection.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(dialog.reusableFlow())
        dialog.bye()
        [(host, port, *_)] = self.clock.tcpClients
        self.assertEqual((host, port), ("198.51.100.7", 5070))

    def test_shutdownWaitsForByes(self) -> None:
        """
        L{SIPUserAgent.shutdown} BYEs every dialog and fires once the BYEs
        are answered.
        """
        dialog, connection, string = self.establish()
        d = self.ua.shutdown()
        [bye] = self.written(string)
        self.assertNoResult(d)
        self.assertEqual(dialog.terminationReason, TerminationReason.SHUTDOWN)
        connection.dataReceived(bye.makeResponse(200).serialize())
        self.assertIsNone(self.successResultOf(d))
        self.assertIsNone(self.successResultOf(self.ua.shutdown()))


class AllowTests(SynchronousTestCase):
    """
    L{allowOf}: the methods of a peer's Allow, kept by its dialogs.
    """

    def test_sharedBetweenDialogs(self) -> None:
        """
        Two requests with the same Allow lines give the same set object
        (each dialog keeps its peer's for the dialog's lifetime); other
        lines give their own; methods are upper-cased.
        """
        first = parseDatagram(request(extra="Allow: INVITE, ack, BYE\r\n", callID="a"))
        second = parseDatagram(request(extra="Allow: INVITE, ack, BYE\r\n", callID="b"))
        other = parseDatagram(request(extra="Allow: INVITE, UPDATE\r\n", callID="c"))
        assert isinstance(first, SIPRequest) and isinstance(second, SIPRequest)
        assert isinstance(other, SIPRequest)
        self.assertEqual(allowOf(first), frozenset({"INVITE", "ACK", "BYE"}))
        self.assertIs(allowOf(first), allowOf(second))
        self.assertEqual(allowOf(other), frozenset({"INVITE", "UPDATE"}))

    def test_absentOrMalformed(self) -> None:
        """
        Without an Allow, or with one that is not a token list: L{None}.
        """
        bare = parseDatagram(request())
        bad = parseDatagram(request(extra="Allow: INVITE, <BYE>\r\n"))
        assert isinstance(bare, SIPRequest) and isinstance(bad, SIPRequest)
        self.assertIsNone(allowOf(bare))
        self.assertIsNone(allowOf(bad))
