# -*- test-case-name: tests.sip.test_dialog -*-
"""
Tests for L{stoxgw.sip.dialog}: dialog creation on both sides (RFC 3261
12.1), requests within a dialog (12.2.1.1, loose and strict routing),
CSeq checks (12.2.2), 2xx retransmission until ACK (13.3.1.4), BYE (15).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stoxgw.sip.dialog import (
    DIALOG_TRANSITIONS,
    Dialog,
    DialogError,
    DialogRole,
    DialogState,
    TerminationReason,
)
from stoxgw.sip.headers import Headers
from stoxgw.sip.invitedialog import IDialogHandler, InviteDialog
from stoxgw.sip.message import SIPRequest, SIPResponse, parseDatagram
from stoxgw.sip.transaction import TimerSettings
from stoxgw.sip.transport import Address, Flow, TransportKind
from stoxgw.sip.uri import NameAddr, SIPURI, parseNameAddr

#: RFC 3261 section 24.2 F1-style INVITE through two record-routing
#: proxies (as a UAS sees it).
INVITE = (
    b"INVITE sip:room@gw.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bKp2\r\n"
    b"Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n"
    b"Max-Forwards: 68\r\n"
    b"Record-Route: <sip:p2.example.com;lr>\r\n"
    b"Record-Route: <sip:p1.example.com;lr>\r\n"
    b"To: <sip:room@gw.example.com>\r\n"
    b'From: "Alice" <sip:alice@atlanta.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.com>\r\n"
    b"Content-Length: 0\r\n\r\n"
)

OUR_CONTACT = parseNameAddr("<sip:room@gw.example.com;transport=tcp>;isfocus")


def invite() -> SIPRequest:
    request = parseDatagram(INVITE)
    assert isinstance(request, SIPRequest)
    return request


def uasDialog() -> Dialog:
    return Dialog.fromIncomingRequest(invite(), "gwtag", OUR_CONTACT)


def ourInvite() -> SIPRequest:
    return SIPRequest(
        "INVITE",
        SIPURI("sip", "chat.example.org", user="montague"),
        Headers.of(
            ("Via", "SIP/2.0/UDP gw.example.com;branch=z9hG4bKx"),
            ("From", "<sip:juliet@gw.example.com>;tag=jt"),
            ("To", "<sip:montague@chat.example.org>"),
            ("Call-ID", "call-9"),
            ("CSeq", "10 INVITE"),
            ("Contact", "<sip:juliet@gw.example.com>"),
        ),
    )


def theirOK() -> SIPResponse:
    return (
        ourInvite()
        .makeResponse(200, toTag="ft")
        .addHeader("Record-Route", "<sip:p2.example.com;lr>, <sip:p1.example.com;lr>")
        .addHeader(
            "Contact", "<sip:montague@focus.chat.example.org;transport=tcp>;isfocus"
        )
    )


class DialogCreationTests(SynchronousTestCase):
    """
    RFC 3261 12.1.
    """

    def test_uas(self) -> None:
        """
        12.1.1: route set = Record-Route in order, remote target = Contact,
        remote CSeq = the INVITE's, local URI = To, remote URI = From.
        """
        dialog = uasDialog()
        self.assertEqual(
            dialog.id, ("a84b4c76e66710@pc33.atlanta.com", "gwtag", "1928301774")
        )
        self.assertEqual(
            [str(r.uri) for r in dialog.routeSet],
            ["sip:p2.example.com;lr", "sip:p1.example.com;lr"],
        )
        self.assertEqual(str(dialog.remoteTarget), "sip:alice@pc33.atlanta.com")
        self.assertEqual(dialog.remoteSeq, 314159)
        self.assertIsNone(dialog.localSeq)
        self.assertEqual(str(dialog.localURI.uri), "sip:room@gw.example.com")
        self.assertEqual(dialog.remoteURI.displayName, "Alice")
        self.assertIsNone(dialog.remoteURI.tag)
        self.assertIs(dialog.role, DialogRole.UAS)

    def test_uasNeedsContact(self) -> None:
        """
        An INVITE without Contact makes no dialog.
        """
        self.assertRaises(
            DialogError,
            Dialog.fromIncomingRequest,
            invite().withoutHeader("Contact"),
            "t",
            OUR_CONTACT,
        )

    def test_uac(self) -> None:
        """
        12.1.2: route set = Record-Route reversed, local CSeq = the
        INVITE's, remote tag from the 2xx To.
        """
        dialog = Dialog.fromResponse(ourInvite(), theirOK(), OUR_CONTACT)
        self.assertEqual(dialog.id, ("call-9", "jt", "ft"))
        self.assertEqual(
            [str(r.uri) for r in dialog.routeSet],
            ["sip:p1.example.com;lr", "sip:p2.example.com;lr"],
        )
        self.assertEqual(dialog.localSeq, 10)
        self.assertEqual(
            str(dialog.remoteTarget),
            "sip:montague@focus.chat.example.org;transport=tcp",
        )
        self.assertIs(dialog.state, DialogState.CONFIRMED)

    def test_transitions(self) -> None:
        """
        Early -> Confirmed -> Terminated; nothing leaves Terminated.
        """
        dialog = uasDialog()
        dialog.state = DialogState.EARLY
        self.assertTrue(dialog.transition(DialogState.CONFIRMED))
        self.assertFalse(dialog.transition(DialogState.EARLY))
        self.assertTrue(dialog.transition(DialogState.TERMINATED))
        self.assertFalse(dialog.transition(DialogState.CONFIRMED))
        self.assertEqual(DIALOG_TRANSITIONS[DialogState.TERMINATED], frozenset())


class InDialogRequestTests(SynchronousTestCase):
    """
    RFC 3261 12.2.1.1 and 12.2.2.
    """

    def test_looseRouting(self) -> None:
        """
        Loose router first: Request-URI = remote target, Route = route
        set; From/To tags; CSeq starts somewhere and counts up.
        """
        dialog = uasDialog()
        bye = dialog.createRequest("BYE")
        self.assertEqual(str(bye.uri), "sip:alice@pc33.atlanta.com")
        self.assertEqual(
            bye.headers.getLines("Route"),
            ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"],
        )
        self.assertEqual(bye.fromAddress.tag, "gwtag")
        self.assertEqual(bye.toAddress.tag, "1928301774")
        self.assertEqual(bye.callID, "a84b4c76e66710@pc33.atlanta.com")
        self.assertNotIn("Contact", bye.headers)
        self.assertNotIn("Via", bye.headers)
        first = bye.cseq.number
        self.assertLess(first, 2**31)
        notify = dialog.createRequest("NOTIFY", [("Event", "conference")])
        self.assertEqual(notify.cseq.number, first + 1)
        self.assertEqual(notify.header("Contact"), OUR_CONTACT.serialize())
        self.assertEqual(notify.header("Event"), "conference")

    def test_strictRouting(self) -> None:
        """
        Strict router first: Request-URI = its URI, Route = the rest and
        the remote target last.
        """
        dialog = uasDialog()
        dialog.routeSet = (
            parseNameAddr("<sip:strict.example.com>"),
            parseNameAddr("<sip:p1.example.com;lr>"),
        )
        request = dialog.createRequest("INFO")
        self.assertEqual(str(request.uri), "sip:strict.example.com")
        self.assertEqual(
            request.headers.getLines("Route"),
            ["<sip:p1.example.com;lr>", "<sip:alice@pc33.atlanta.com>"],
        )

    def test_noRouteSet(self) -> None:
        """
        Without a route set: no Route, Request-URI = remote target.
        """
        dialog = uasDialog()
        dialog.routeSet = ()
        request = dialog.createRequest("BYE")
        self.assertNotIn("Route", request.headers)

    def test_ackKeepsCSeq(self) -> None:
        """
        13.2.2.4: the ACK carries the INVITE's CSeq number.
        """
        dialog = Dialog.fromResponse(ourInvite(), theirOK(), OUR_CONTACT)
        ack = dialog.createAck(10)
        self.assertEqual(str(ack.cseq), "10 ACK")
        self.assertEqual(dialog.localSeq, 10)

    def test_remoteCSeqOrder(self) -> None:
        """
        12.2.2: a request with a CSeq not above the remote one gets 500;
        ACK is exempt.
        """
        dialog = uasDialog()
        bye = SIPRequest(
            "BYE", dialog.localURI.uri, invite().headers.set("CSeq", "314160 BYE")
        )
        self.assertIsNone(dialog.checkRemoteRequest(bye))
        self.assertEqual(dialog.remoteSeq, 314160)
        self.assertEqual(dialog.checkRemoteRequest(bye), 500)
        ack = SIPRequest(
            "ACK", dialog.localURI.uri, invite().headers.set("CSeq", "1 ACK")
        )
        self.assertIsNone(dialog.checkRemoteRequest(ack))

    def test_refreshTarget(self) -> None:
        """
        A target refresh takes the new Contact.
        """
        dialog = uasDialog()
        dialog.refreshTarget(
            invite().withHeader("Contact", "<sip:alice@new.atlanta.com>")
        )
        self.assertEqual(str(dialog.remoteTarget), "sip:alice@new.atlanta.com")


@implementer(IDialogHandler)
class RecordingHandler:
    """
    Records what the dialog tells its handler.
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def dialogConfirmed(self, dialog: InviteDialog) -> None:
        self.events.append(("confirmed", None))

    def dialogTerminated(self, dialog: InviteDialog, reason: TerminationReason) -> None:
        self.events.append(("terminated", reason))

    def reinviteReceived(self, dialog: InviteDialog, invite: object) -> None:
        self.events.append(("reinvite", invite))

    def requestReceived(self, dialog: InviteDialog, request: object) -> None:
        self.events.append(("request", request))


class FakeCore:
    """
    A L{stoxgw.sip.invitedialog.DialogCore} that records.
    """

    def __init__(self) -> None:
        self.clock = Clock()
        self.timers = TimerSettings()
        self.sent: list[tuple[SIPRequest, Deferred[SIPResponse]]] = []
        self.acks: list[SIPRequest] = []
        self.resent: list[SIPResponse] = []
        self.ended: list[InviteDialog] = []

    def sendInDialog(
        self, dialog: InviteDialog, request: SIPRequest
    ) -> Deferred[SIPResponse]:
        d: Deferred[SIPResponse] = Deferred()
        self.sent.append((request, d))
        return d

    def sendAck(self, dialog: InviteDialog, ack: SIPRequest) -> None:
        self.acks.append(ack)

    def resendResponse(self, response: SIPResponse, flow: Flow) -> None:
        self.resent.append(response)

    def dialogEnded(self, dialog: InviteDialog) -> None:
        self.ended.append(dialog)


def inviteDialog(core: FakeCore) -> tuple[InviteDialog, RecordingHandler]:
    base = uasDialog()
    handler = RecordingHandler()
    dialog = InviteDialog(
        **{
            name: getattr(base, name)
            for name in (
                "callID",
                "localTag",
                "remoteTag",
                "localURI",
                "remoteURI",
                "remoteTarget",
                "localContact",
                "role",
                "routeSet",
                "localSeq",
                "remoteSeq",
                "secure",
                "state",
            )
        },
        handler=handler,
        core=core,
    )
    return dialog, handler


UDP_FLOW = Flow(Address(TransportKind.UDP, "192.0.2.9", 5060))
TCP_FLOW = Flow(Address(TransportKind.TCP, "192.0.2.9", 5060))


class InviteDialogTests(SynchronousTestCase):
    """
    RFC 3261 13.3.1.4, 15 and 12.2.1.2 on L{InviteDialog}.
    """

    def setUp(self) -> None:
        self.core = FakeCore()
        self.dialog, self.handler = inviteDialog(self.core)
        self.ok = invite().makeResponse(200, toTag="gwtag")

    def test_verifyHandler(self) -> None:
        """
        The recording handler provides the interface.
        """
        self.assertTrue(verifyObject(IDialogHandler, self.handler))

    def test_2xxRetransmittedUntilAck(self) -> None:
        """
        13.3.1.4: the 2xx is resent at T1, then doubling to T2 (0.5, 1.5,
        3.5, 7.5, 11.5 s); the ACK stops it and confirms the dialog.
        """
        self.dialog.start2xxRetransmission(self.ok, UDP_FLOW)
        times = []
        for quarter in range(1, 49):
            self.core.clock.advance(0.25)
            if self.core.resent:
                times.append(quarter / 4)
                self.core.resent.clear()
        self.assertEqual(times, [0.5, 1.5, 3.5, 7.5, 11.5])
        ack = SIPRequest(
            "ACK", self.dialog.localURI.uri, invite().headers.set("CSeq", "314159 ACK")
        )
        self.dialog.ackReceived(ack)
        self.core.clock.advance(60)
        self.assertEqual(self.core.resent, [])
        self.assertEqual(self.handler.events, [("confirmed", None)])
        self.assertEqual(self.core.sent, [])

    def test_ackForOtherCSeqIgnored(self) -> None:
        """
        An ACK with another CSeq number does not stop the retransmission.
        """
        self.dialog.start2xxRetransmission(self.ok, UDP_FLOW)
        ack = SIPRequest(
            "ACK", self.dialog.localURI.uri, invite().headers.set("CSeq", "1 ACK")
        )
        self.dialog.ackReceived(ack)
        self.core.clock.advance(0.5)
        self.assertEqual(len(self.core.resent), 1)

    def test_noAckEndsWithBye(self) -> None:
        """
        13.3.1.4: no ACK within 64*T1: BYE, dialog terminated (NO_ACK).
        """
        self.dialog.start2xxRetransmission(self.ok, TCP_FLOW)
        self.core.clock.advance(31.9)
        self.assertEqual(self.core.resent, [])  # reliable: no retransmission
        with capturedLogs():
            self.core.clock.advance(0.2)
        [(bye, _)] = self.core.sent
        self.assertEqual(bye.method, "BYE")
        self.assertEqual(
            self.handler.events, [("terminated", TerminationReason.NO_ACK)]
        )
        self.assertIs(self.dialog.state, DialogState.TERMINATED)

    def test_bye(self) -> None:
        """
        15.1.1: bye() sends BYE, terminates at once (handler told), the
        core forgets the dialog when the answer comes; a second bye()
        fails.
        """
        with capturedLogs():
            d = self.dialog.bye()
        [(bye, answer)] = self.core.sent
        self.assertEqual(bye.method, "BYE")
        self.assertEqual(
            self.handler.events, [("terminated", TerminationReason.LOCAL_BYE)]
        )
        self.assertEqual(self.core.ended, [])
        answer.callback(bye.makeResponse(200))
        self.assertEqual(self.successResultOf(d).status, 200)
        self.assertEqual(self.core.ended, [self.dialog])
        self.failureResultOf(self.dialog.bye(), DialogError)

    def test_481EndsDialog(self) -> None:
        """
        12.2.1.2: 481 to a request in the dialog ends it.
        """
        d = self.dialog.sendRequest("INFO")
        request, answer = self.core.sent[0]
        with capturedLogs():
            answer.callback(request.makeResponse(481))
        self.assertEqual(self.successResultOf(d).status, 481)
        self.assertEqual(
            self.handler.events, [("terminated", TerminationReason.REMOTE_GONE)]
        )
        self.assertEqual(self.core.ended, [self.dialog])

    def test_reinviteAckedAndRefreshes(self) -> None:
        """
        A re-INVITE's 2xx refreshes the target and is ACKed with its
        CSeq; a second INVITE while one is pending fails.
        """
        d = self.dialog.sendRequest(
            "INVITE", body=b"v=0\r\n", contentType="application/sdp"
        )
        self.failureResultOf(self.dialog.sendRequest("INVITE"), DialogError)
        request, answer = self.core.sent[0]
        self.assertEqual(request.header("Contact"), OUR_CONTACT.serialize())
        answer.callback(
            request.makeResponse(200, toTag="1928301774").addHeader(
                "Contact", "<sip:alice@moved.atlanta.com>"
            )
        )
        self.successResultOf(d)
        [ack] = self.core.acks
        self.assertEqual(ack.cseq.number, request.cseq.number)
        self.assertEqual(str(self.dialog.remoteTarget), "sip:alice@moved.atlanta.com")
        self.assertFalse(self.dialog.inviteInProgress)

    def test_terminatedRefusesRequests(self) -> None:
        """
        Nothing is sent in a terminated dialog.
        """
        with capturedLogs():
            self.dialog.terminate(TerminationReason.SHUTDOWN)
        self.failureResultOf(self.dialog.sendRequest("INFO"), DialogError)
        self.assertEqual(self.core.sent, [])

    def test_handlerErrorContained(self) -> None:
        """
        A failing handler is logged, never propagated.
        """

        class Broken(RecordingHandler):
            def dialogTerminated(
                self, dialog: InviteDialog, reason: TerminationReason
            ) -> None:
                raise RuntimeError("handler bug")

        self.dialog.handler = Broken()
        with capturedLogs():
            self.dialog.terminate(TerminationReason.REMOTE_BYE)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertIs(self.dialog.state, DialogState.TERMINATED)

    def test_unboundDialog(self) -> None:
        """
        A dialog without a core cannot send.
        """
        self.dialog.core = None
        self.assertRaises(DialogError, self.dialog.acknowledge, 1)
        self.assertIsInstance(NameAddr(SIPURI("sip", "x")), NameAddr)
