# -*- test-case-name: tests.interop.test_sip_sipp -*-
"""
The SIP UA core against SIPp 3.6.1 over real UDP and TCP sockets on
127.0.0.1 (scenarios in C{tests/fixtures/sipp/}, runner in
L{tests.interop.sipp}).

 - SIPp as UAC INVITEs the gateway with an MSRP offer; the test handler
   answers with L{answerMSRPOffer} and an C{isfocus} Contact; SIPp checks
   the answer with regular expressions, ACKs and BYEs; the dialog must end
   by the remote BYE (RFC 3261 sections 13, 15; RFC 4975 section 8; RFC
   7702 section 6.1).
 - SIPp as UAS answers the gateway's INVITE; the gateway ACKs and BYEs.
 - OPTIONS from SIPp gets 200 with Allow and Accept (RFC 3261 section 11).
 - With digest authentication and no trusted network, SIPp's OPTIONS gets
   401, SIPp answers the MD5 challenge and gets 200 (RFC 3261 section 22).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from stoxgw.sip.admission import DigestAdmission
from stoxgw.sip.dialog import TerminationReason
from stoxgw.sip.invitedialog import IDialogHandler, InviteDialog
from stoxgw.sip.msrpmedia import MSRPMedia, answerMSRPOffer
from stoxgw.sip.sdp import Origin, parseSDP
from stoxgw.sip.transport import SIPTransport, TransportKind
from stoxgw.sip.uri import SIPURI, parseNameAddr
from stoxgw.sip.useragent import (
    AdmissionDecision,
    AdmissionVerdict,
    IInviteHandler,
    IncomingInvite,
    IRequestAdmission,
    SIPTrust,
    SIPUserAgent,
    UserAgentSettings,
)
from tests.interop.peers import PeerUnavailable
from tests.interop.sipp import SIPpResult, freeUDPAndTCPPort, runSIPp

MSRP_OFFER = (
    b"v=0\r\n"
    b"o=stoxgw 1 1 IN IP4 127.0.0.1\r\n"
    b"s=-\r\n"
    b"c=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\n"
    b"m=message 2857 TCP/MSRP *\r\n"
    b"a=accept-types:message/cpim text/plain\r\n"
    b"a=path:msrp://127.0.0.1:2857/gw1;tcp\r\n"
    b"a=setup:actpass\r\n"
)


@implementer(IDialogHandler)
class DialogWatcher:
    """
    Fires L{confirmed} and L{terminated} as the dialog goes.
    """

    def __init__(self) -> None:
        self.confirmed: Deferred[InviteDialog] = Deferred()
        self.terminated: Deferred[TerminationReason] = Deferred()

    def dialogConfirmed(self, dialog: InviteDialog) -> None:
        if not self.confirmed.called:
            self.confirmed.callback(dialog)

    def dialogTerminated(self, dialog: InviteDialog, reason: TerminationReason) -> None:
        if not self.terminated.called:
            self.terminated.callback(reason)

    def reinviteReceived(self, dialog: InviteDialog, invite: Any) -> None:
        invite.reject(488)

    def requestReceived(self, dialog: InviteDialog, request: Any) -> None:
        request.respond(405)


@implementer(IInviteHandler)
class FocusHandler:
    """
    Answers an MSRP INVITE as a conference focus would (R-034).
    """

    def __init__(self, ua: SIPUserAgent) -> None:
        self.ua = ua
        self.watcher = DialogWatcher()
        self.answers: list[bytes] = []
        self.accepted: MSRPMedia | None = None

    def inviteReceived(self, invite: IncomingInvite) -> None:
        offer = parseSDP(invite.request.body)
        answer, accepted = answerMSRPOffer(
            offer,
            origin=Origin("-", "4711", 1, address="127.0.0.1"),
            path=["msrp://127.0.0.1:2858/gwsession1;tcp"],
            port=2858,
            connectionAddress="127.0.0.1",
            acceptTypes=["message/cpim", "text/plain"],
            chatroom=["nickname", "private-messages"],
            requiredTypes=["message/cpim"],
        )
        self.accepted = accepted
        body = answer.serialize()
        self.answers.append(body)
        invite.sendProvisional(180)
        contact = self.ua.contactFor(
            invite.flow.transport, user="room", headerParameters=[("isfocus", None)]
        )
        invite.accept(body, contact=contact, handler=self.watcher)


class SIPpTests(TestCase):
    """
    Real SIPp, real sockets, bounded waits.
    """

    timeout = 60

    def userAgent(self) -> tuple[SIPUserAgent, SIPTransport]:
        """
        A UA listening on UDP and TCP (ephemeral ports), trusting
        127.0.0.1 only.
        """
        transport = SIPTransport(reactor, "127.0.0.1")
        transport.listenUDP(0)
        transport.listenTCP(0)
        self.addCleanup(transport.stopListening)
        ua = SIPUserAgent(
            reactor,
            transport,
            settings=UserAgentSettings(contactUser="gw"),
            admission=SIPTrust.fromStrings(["127.0.0.1/32"]),
        )
        self.addCleanup(ua.close)
        return ua, transport

    def assertSucceeded(self, result: SIPpResult) -> None:
        """
        SIPp exits 0 when every call succeeded.
        """
        self.assertEqual(result.exitCode, 0, result.describe())

    def run_sipp(self, *args: Any, **kwargs: Any) -> Deferred[SIPpResult]:
        try:
            return runSIPp(reactor, *args, **kwargs)
        except PeerUnavailable as e:
            raise self.skipTest(str(e))

    @inlineCallbacks
    def _incomingInvite(self, kind: TransportKind, sippTransport: str) -> Any:
        ua, transport = self.userAgent()
        handler = FocusHandler(ua)
        ua.addHandler("INVITE", handler)
        result = yield self.run_sipp(
            "uac_msrp_invite.xml",
            remote=f"127.0.0.1:{transport.ports[kind]}",
            localPort=freeUDPAndTCPPort(),
            transport=sippTransport,
            service="room",
            timeout=20,
        )
        self.assertSucceeded(result)
        reason = yield handler.watcher.terminated
        self.assertIs(reason, TerminationReason.REMOTE_BYE)
        self.assertTrue(handler.watcher.confirmed.called)
        self.assertEqual(len(handler.answers), 1)
        answer = parseSDP(handler.answers[0])
        media = MSRPMedia.fromMedia(answer.media[0], answer)
        self.assertEqual(media.path, ("msrp://127.0.0.1:2858/gwsession1;tcp",))
        self.assertIsNotNone(handler.accepted)
        self.assertEqual(ua.dialogs, {})

    def test_incomingInviteUDP(self) -> Any:
        """
        RFC 3261 13.3, 15.1.2; R-034: SIPp INVITEs over UDP with an MSRP
        offer, gets a valid answer and an isfocus Contact, ACKs and BYEs.
        """
        return self._incomingInvite(TransportKind.UDP, "u1")

    def test_incomingInviteTCP(self) -> Any:
        """
        The same over TCP: responses and the 200 to BYE go back over
        SIPp's connection (RFC 3261 18.2.2).
        """
        return self._incomingInvite(TransportKind.TCP, "t1")

    @inlineCallbacks
    def _outgoingInvite(self, kind: TransportKind, sippTransport: str) -> Any:
        ua, transport = self.userAgent()
        port = freeUDPAndTCPPort()
        running = self.run_sipp(
            "uas_msrp_answer.xml",
            remote=None,
            localPort=port,
            transport=sippTransport,
            timeout=20,
        )
        watcher = DialogWatcher()
        provisional: list[int] = []
        target = SIPURI(
            "sip",
            "127.0.0.1",
            user="focus",
            port=port,
            parameters=(("transport", kind.uriParameter),),
        )
        dialog = None
        # SIPp needs a moment to bind; retry the INVITE a few times.
        for attempt in range(20):
            try:
                dialog = yield ua.invite(
                    target,
                    parseNameAddr('"Juliet" <sip:juliet@xmpp.example>'),
                    MSRP_OFFER,
                    handler=watcher,
                    onProvisional=lambda r: provisional.append(r.status),
                )
                break
            except Exception as e:
                if attempt == 19 or getattr(e, "status", None) not in (503, 408):
                    raise
                yield _sleep(0.25)
        assert dialog is not None
        self.assertTrue(
            dialog.remoteURI.uri
            == SIPURI(
                "sip",
                "127.0.0.1",
                user="focus",
                port=port,
                parameters=(("transport", kind.uriParameter),),
            )
        )
        contact = dialog.remoteTarget
        assert isinstance(contact, SIPURI)
        self.assertEqual(contact.user, "focus")
        self.assertIn(180, provisional)
        yield watcher.confirmed
        yield _sleep(0.2)
        response = yield dialog.bye()
        self.assertEqual(response.status, 200)
        result = yield running
        self.assertSucceeded(result)
        self.assertEqual(ua.dialogs, {})

    def test_outgoingInviteUDP(self) -> Any:
        """
        RFC 3261 13.2.2.4, 15.1.1: the gateway INVITEs SIPp over UDP, ACKs
        the 2xx to its Contact and ends the dialog with BYE.
        """
        return self._outgoingInvite(TransportKind.UDP, "u1")

    def test_outgoingInviteTCP(self) -> Any:
        """
        The same over TCP; ACK and BYE reuse the connection (RFC 3261
        18.1.1).
        """
        return self._outgoingInvite(TransportKind.TCP, "t1")

    @inlineCallbacks
    def _options(self, kind: TransportKind, sippTransport: str) -> Any:
        ua, transport = self.userAgent()
        result = yield self.run_sipp(
            "uac_options.xml",
            remote=f"127.0.0.1:{transport.ports[kind]}",
            localPort=freeUDPAndTCPPort(),
            transport=sippTransport,
            service="room",
            timeout=15,
        )
        self.assertSucceeded(result)

    def test_optionsUDP(self) -> Any:
        """
        RFC 3261 11.2: OPTIONS over UDP gets 200 with Allow and Accept.
        """
        return self._options(TransportKind.UDP, "u1")

    def test_optionsTCP(self) -> Any:
        """
        RFC 3261 11.2: the same over TCP.
        """
        return self._options(TransportKind.TCP, "t1")

    @inlineCallbacks
    def test_digestOptions(self) -> Any:
        """
        RFC 3261 22.2, 22.4; docs/design.md "Trust": with no trusted network,
        SIPp's OPTIONS gets 401, SIPp answers the challenge with alice's
        password (qop=auth), and the second OPTIONS gets 200; the gateway
        saw alice authenticated.  SIPp 3.6.1 reads only the first
        WWW-Authenticate and only knows MD5 ("createAuthHeader:
        authentication must use MD5"), so this gateway challenges with MD5
        alone; both algorithms together are covered by
        L{tests.sip.test_admission}.
        """
        transport = SIPTransport(reactor, "127.0.0.1")
        transport.listenUDP(0)
        self.addCleanup(transport.stopListening)
        admission = RecordingAdmission(
            DigestAdmission(
                "stoxgw.test",
                {"alice": "wonderland"},
                trust=SIPTrust(),
                clock=reactor.seconds,  # type: ignore[attr-defined]
                algorithms=("MD5",),
            )
        )
        ua = SIPUserAgent(
            reactor,
            transport,
            settings=UserAgentSettings(contactUser="gw"),
            admission=admission,
        )
        self.addCleanup(ua.close)
        result = yield self.run_sipp(
            "uac_options_digest.xml",
            remote=f"127.0.0.1:{transport.ports[TransportKind.UDP]}",
            localPort=freeUDPAndTCPPort(),
            transport="u1",
            service="room",
            timeout=15,
        )
        self.assertSucceeded(result)
        verdicts = [(d.verdict, d.user) for d in admission.decisions]
        self.assertEqual(
            verdicts,
            [(AdmissionVerdict.CHALLENGE, None), (AdmissionVerdict.ADMIT, "alice")],
        )


@implementer(IRequestAdmission)
class RecordingAdmission:
    """
    Passes decisions through and keeps them.
    """

    def __init__(self, admission: IRequestAdmission) -> None:
        self.admission = admission
        self.decisions: list[AdmissionDecision] = []

    def decide(self, request: Any, flow: Any) -> AdmissionDecision:
        decision = self.admission.decide(request, flow)
        self.decisions.append(decision)
        return decision


def _sleep(seconds: float) -> Deferred[None]:
    d: Deferred[None] = Deferred()
    reactor.callLater(seconds, d.callback, None)  # type: ignore[attr-defined]
    return d
