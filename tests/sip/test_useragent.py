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
from stoxgw.sip.dialog import DialogState, InviteDialog, TerminationReason
from stoxgw.sip.headers import AuthHeader, parseTokenList
from stoxgw.sip.message import SIPMessage, SIPRequest, SIPResponse, parseDatagram
from stoxgw.sip.transport import Address, TransportKind
from stoxgw.sip.uri import SIPURI, URI, parseNameAddr
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
from tests.sip.test_transport import udpTransport

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
        DESIGN.md "Trust": requests from outside the trusted networks get
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
