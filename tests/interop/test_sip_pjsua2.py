# -*- test-case-name: tests.interop.test_sip_pjsua2 -*-
"""
The SIP UA core against pjsua2 (PJSIP 2.15.1, PyPI C{pjsua2-python}), a
real SIP user agent run in a child process (L{tests.interop.pjsua2_agent},
driven by L{tests.interop.pjsua2peer}), over real UDP and TCP sockets on
127.0.0.1.

pjsua2 has no MSRP: it offers audio (C{m=audio ... RTP/AVP}), and refuses
offers without audio.  What each side must do, and what the tests assert:

 - pjsua2 INVITEs the gateway.  The gateway answers as the focus it is,
   with L{answerMSRPOffer}: no acceptable MSRP stream is L{SDPNegotiationError},
   so C{488 Not Acceptable Here} with C{Warning: 304} (RFC 3261 sections
   13.3.1.3, 21.4.26, 20.43; RFC 4975 section 8); pjsua2 reports 488 and
   ACKs it.  This is the gateway's behaviour.
 - A 200 whose answer rejects every offered stream with port 0 is a legal
   RFC 3264 (section 6) answer too, and drives a whole dialog: pjsua2
   ACKs it, finds no active stream (C{PJMEDIA_SDPNEG_ENOMEDIA}) and BYEs
   at once with C{Reason: SIP ;cause=415}; the gateway answers the BYE
   (which may overtake the ACK on UDP).  That such a call is torn down at
   once is why the gateway refuses with 488 instead.
 - pjsua2's out-of-dialog OPTIONS gets 200 with Allow and Accept (RFC 3261
   section 11.2).
 - The gateway INVITEs pjsua2 (auto-answer): with its MSRP offer pjsua2
   answers 488 before its application sees the call ("Error initializing
   media channel"), and the gateway ACKs the 488 (17.1.1.3); with a
   test-only audio offer pjsua2 answers 180 and 200, the gateway ACKs the
   2xx (13.2.2.4) and either side BYEs (15.1).

L{PJSUA2Scenarios} holds the scenarios;
L{tests.interop.test_sip_tls} runs them over TLS.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import reactor
from twisted.internet.defer import Deferred, TimeoutError, inlineCallbacks
from twisted.internet.protocol import DatagramProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from stoxgw.sip.dialog import TerminationReason
from stoxgw.sip.headers import parseTokenList
from stoxgw.sip.message import SIPRequest, SIPResponse, parseDatagram
from stoxgw.sip.msrpmedia import answerMSRPOffer
from stoxgw.sip.sdp import (
    Connection,
    Origin,
    SDPNegotiationError,
    SessionDescription,
    parseSDP,
    rejectMedia,
)
from stoxgw.sip.transport import SIPTransport, TransportKind
from stoxgw.sip.uri import SIPURI, parseNameAddr
from stoxgw.sip.useragent import (
    IInviteHandler,
    IncomingInvite,
    SIPError,
    SIPTrust,
    SIPUserAgent,
    UserAgentSettings,
)
from tests.interop.peers import PeerUnavailable
from tests.interop.pjsua2peer import AgentTimeout, PJSUA2Agent, startAgent
from tests.interop.test_sip_sipp import MSRP_OFFER, DialogWatcher

#: A test-only audio offer (the UA core carries any SDP), to drive a whole
#: UAC dialog with pjsua2; C{%d} is the RTP port of a sink socket.
AUDIO_OFFER = (
    b"v=0\r\n"
    b"o=stoxgw 2 1 IN IP4 127.0.0.1\r\n"
    b"s=-\r\n"
    b"c=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\n"
    b"m=audio %d RTP/AVP 0\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=sendrecv\r\n"
)

#: The Warning of our 488 (RFC 3261 section 20.43, code 304).
MEDIA_WARNING = '304 127.0.0.1 "Media type not available"'


@implementer(IInviteHandler)
class ChatFocusHandler:
    """
    Answers an INVITE as the gateway does: L{answerMSRPOffer}, and its
    L{SDPNegotiationError} status (488) with a Warning when no MSRP stream
    is acceptable.

    @ivar offers: The offered bodies.
    @ivar refusals: The statuses we refused with.
    """

    def __init__(self) -> None:
        self.offers: list[bytes] = []
        self.refusals: list[int] = []
        self.watcher = DialogWatcher()

    def inviteReceived(self, invite: IncomingInvite) -> None:
        self.offers.append(invite.request.body)
        try:
            answer, _ = answerMSRPOffer(
                parseSDP(invite.request.body),
                origin=Origin("-", "4711", 1, address="127.0.0.1"),
                path=["msrp://127.0.0.1:2858/gwsession1;tcp"],
                port=2858,
                connectionAddress="127.0.0.1",
                acceptTypes=["message/cpim", "text/plain"],
                chatroom=["nickname", "private-messages"],
                requiredTypes=["message/cpim"],
            )
        except SDPNegotiationError as e:
            self.refusals.append(e.status)
            invite.reject(e.status, headers=[("Warning", MEDIA_WARNING)])
            return
        invite.accept(answer.serialize(), handler=self.watcher)


@implementer(IInviteHandler)
class MediaRefusingHandler:
    """
    Accepts an INVITE with an answer that rejects every offered stream
    (port 0, RFC 3264 section 6, with a session-level c= line as RFC 8866
    section 5.7 wants), making a dialog without media.

    @ivar answers: The answer bodies sent.
    """

    def __init__(self) -> None:
        self.offers: list[bytes] = []
        self.answers: list[bytes] = []
        self.watcher = DialogWatcher()

    def inviteReceived(self, invite: IncomingInvite) -> None:
        self.offers.append(invite.request.body)
        offer = parseSDP(invite.request.body)
        answer = SessionDescription(
            origin=Origin("-", "4712", 1, address="127.0.0.1"),
            connection=Connection("127.0.0.1"),
            media=tuple(rejectMedia(m) for m in offer.media),
        ).serialize()
        self.answers.append(answer)
        invite.sendProvisional(180)
        invite.accept(answer, handler=self.watcher)


def received(agent: PJSUA2Agent) -> list[SIPRequest | SIPResponse]:
    """
    The SIP messages pjsua2 received (its message trace), parsed by our
    parser.
    """
    messages = []
    for data in agent.messages("RX"):
        message = parseDatagram(data, requireMaxForwards=False)
        assert isinstance(message, (SIPRequest, SIPResponse))
        messages.append(message)
    return messages


def responsesTo(
    agent: PJSUA2Agent, method: str, status: int | None = None
) -> list[SIPResponse]:
    """
    pjsua2's received responses to C{method} (with C{status}).
    """
    return [
        m
        for m in received(agent)
        if isinstance(m, SIPResponse)
        and m.cseq.method == method
        and (status is None or m.status == status)
    ]


def requestsSent(agent: PJSUA2Agent, method: str) -> list[SIPRequest]:
    """
    The C{method} requests pjsua2 sent (its message trace).
    """
    sent = [parseDatagram(m, requireMaxForwards=False) for m in agent.messages("TX")]
    return [m for m in sent if isinstance(m, SIPRequest) and m.method == method]


class PJSUA2Scenarios(TestCase):
    """
    The scenarios, for one transport: subclasses set L{kind} and may
    override L{makeTransport} and L{agentOptions} (TLS).
    """

    timeout = 60
    kind = TransportKind.UDP
    scheme = "sip"

    def makeTransport(self) -> SIPTransport:
        """
        The gateway's transport, listening on L{kind} (ephemeral port).
        """
        transport = SIPTransport(reactor, "127.0.0.1")
        if self.kind is TransportKind.UDP:
            transport.listenUDP(0)
        else:
            transport.listenTCP(0)
        return transport

    def agentOptions(self) -> dict[str, Any]:
        """
        Extra L{startAgent} arguments.
        """
        return {}

    def gateway(self, handler: IInviteHandler | None = None) -> SIPUserAgent:
        """
        A UA on L{makeTransport}, trusting 127.0.0.1, with C{handler} for
        INVITE.
        """
        transport = self.makeTransport()
        self.addCleanup(transport.stopListening)
        ua = SIPUserAgent(
            reactor,
            transport,
            settings=UserAgentSettings(contactUser="gw"),
            admission=SIPTrust.fromStrings(["127.0.0.1/32"]),
        )
        self.addCleanup(ua.close)
        if handler is not None:
            ua.addHandler("INVITE", handler)
        return ua

    def gatewayURI(self, ua: SIPUserAgent, user: str = "room") -> str:
        """
        The URI pjsua2 sends to.
        """
        port = ua.transport.ports[self.kind]
        return (
            f"{self.scheme}:{user}@127.0.0.1:{port};transport={self.kind.uriParameter}"
        )

    @inlineCallbacks
    def agent(self, **options: Any) -> Any:
        """
        Start pjsua2 on L{kind}; fire with it and its port once ready.
        """
        try:
            agent = startAgent(
                reactor, self.kind.uriParameter, **self.agentOptions(), **options
            )
        except PeerUnavailable as e:
            raise self.skipTest(str(e))
        self.addCleanup(agent.stop)
        ready = yield agent.waitForEvent("ready", timeout=15)
        return agent, ready["port"]

    # -- pjsua2 calls the gateway ------------------------------------------

    @inlineCallbacks
    def audioInviteRefused(self) -> Any:
        """
        pjsua2's audio-only INVITE gets 488 with Warning 304; pjsua2 reports
        it and no dialog remains.
        """
        handler = ChatFocusHandler()
        ua = self.gateway(handler)
        agent, _ = yield self.agent()
        agent.send("call", uri=self.gatewayURI(ua))
        state = yield agent.waitForEvent("callState", timeout=15, state="DISCONNECTED")
        self.assertEqual(state["lastStatus"], 488, agent.describe())
        self.assertEqual(handler.refusals, [488])
        offer = parseSDP(handler.offers[0])
        self.assertEqual([m.media for m in offer.media], ["audio"])
        [refusal] = responsesTo(agent, "INVITE", 488)
        self.assertEqual(refusal.headers.getAll("Warning"), [MEDIA_WARNING])
        self.assertFalse(handler.watcher.confirmed.called)
        # pjsua2 ACKs the 488 (RFC 3261 17.1.1.3); no dialog was made.
        yield eventually(lambda: len(requestsSent(agent, "ACK")) == 1, agent)
        [ack] = requestsSent(agent, "ACK")
        self.assertEqual(ack.cseq.number, refusal.cseq.number)
        self.assertEqual(ua.dialogs, {})

    @inlineCallbacks
    def mediaRefusedCall(self) -> Any:
        """
        A 200 whose answer rejects the audio stream (port 0, RFC 3264
        section 6): pjsua2 finds no active stream (PJMEDIA_SDPNEG_ENOMEDIA),
        ACKs and at once BYEs with C{Reason: SIP ;cause=415}; its BYE may
        overtake its ACK.  The gateway answers the BYE 200 and the dialog
        ends by remote BYE.
        """
        handler = MediaRefusingHandler()
        ua = self.gateway(handler)
        agent, _ = yield self.agent()
        agent.send("call", uri=self.gatewayURI(ua))
        reason = yield within(handler.watcher.terminated, agent)
        self.assertIs(reason, TerminationReason.REMOTE_BYE)
        state = yield agent.waitForEvent("callState", timeout=10, state="DISCONNECTED")
        self.assertEqual(state["lastStatus"], 415, agent.describe())
        [ok] = responsesTo(agent, "INVITE", 200)
        self.assertEqual(ok.body, handler.answers[0])
        answer = parseSDP(ok.body)
        offer = parseSDP(handler.offers[0])
        self.assertEqual(
            [(m.media, m.port, m.proto) for m in answer.media],
            [(m.media, 0, m.proto) for m in offer.media],
        )
        self.assertIn(180, [r.status for r in responsesTo(agent, "INVITE")])
        yield eventually(lambda: len(requestsSent(agent, "ACK")) == 1, agent)
        [ack] = requestsSent(agent, "ACK")
        self.assertEqual(ack.cseq.number, ok.cseq.number)
        [bye] = requestsSent(agent, "BYE")
        self.assertIn("cause=415", bye.header("Reason") or "")
        yield eventually(lambda: len(responsesTo(agent, "BYE", 200)) == 1, agent)
        self.assertEqual(ua.dialogs, {})

    @inlineCallbacks
    def options(self) -> Any:
        """
        pjsua2's OPTIONS gets 200 with Allow (INVITE, ACK, CANCEL, BYE,
        OPTIONS) and Accept (application/sdp).
        """
        ua = self.gateway()
        agent, _ = yield self.agent()
        agent.send("options", uri=self.gatewayURI(ua))
        event = yield agent.waitForEvent("optionsResponse", timeout=15)
        self.assertEqual(event["status"], 200, agent.describe())
        response = parseDatagram(event["message"].encode("utf-8"))
        assert isinstance(response, SIPResponse)
        allow = parseTokenList(response.headers.getAll("Allow"))
        for method in ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"):
            self.assertIn(method, allow)
        self.assertIn("application/sdp", response.headers.getAll("Accept")[0])

    # -- the gateway calls pjsua2 ---------------------------------------

    def pjsuaURI(self, port: int) -> SIPURI:
        """
        The URI the gateway sends to.
        """
        return SIPURI(
            self.scheme,
            "127.0.0.1",
            user="pjsua",
            port=port,
            parameters=(("transport", self.kind.uriParameter),),
        )

    @inlineCallbacks
    def outgoingMSRPInviteRefused(self) -> Any:
        """
        The gateway INVITEs pjsua2 with its MSRP offer: pjsua2 cannot make
        an audio-less answer and refuses with 488 before its application
        sees the call; the gateway ACKs the 488 (RFC 3261 17.1.1.3) and
        makes no dialog.
        """
        ua = self.gateway()
        agent, port = yield self.agent()
        d = within(
            ua.invite(
                self.pjsuaURI(port),
                parseNameAddr('"Juliet" <sip:juliet@xmpp.example>'),
                MSRP_OFFER,
                handler=DialogWatcher(),
            ),
            agent,
        )
        error = yield self.assertFailure(d, SIPError)
        self.assertEqual(error.status, 488)

        def acked() -> bool:
            return any(
                isinstance(m, SIPRequest) and m.method == "ACK" for m in received(agent)
            )

        yield eventually(acked, agent)
        [invite] = [
            m
            for m in received(agent)
            if isinstance(m, SIPRequest) and m.method == "INVITE"
        ]
        self.assertEqual(invite.body, MSRP_OFFER)
        self.assertEqual(ua.dialogs, {})

    @inlineCallbacks
    def outgoingInvite(self, gatewayHangsUp: bool) -> Any:
        """
        The UA core's UAC side with a real UA: the gateway INVITEs pjsua2
        with an audio offer (its UA core carries any SDP), pjsua2
        auto-answers 180 and 200 with an audio answer, the gateway ACKs the
        2xx (RFC 3261 13.2.2.4) and one side BYEs (15.1.1, 15.1.2).
        """
        ua = self.gateway()
        sink = reactor.listenUDP(0, DatagramProtocol(), interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(sink.stopListening)
        agent, port = yield self.agent()
        watcher = DialogWatcher()
        provisional: list[int] = []
        offer = AUDIO_OFFER % sink.getHost().port
        dialog = yield within(
            ua.invite(
                self.pjsuaURI(port),
                parseNameAddr('"Juliet" <sip:juliet@xmpp.example>'),
                offer,
                handler=watcher,
                onProvisional=lambda r: provisional.append(r.status),
            ),
            agent,
        )
        self.assertIn(180, provisional)
        yield within(watcher.confirmed, agent)
        incoming = yield agent.waitForEvent("incoming", timeout=5)
        invite = parseDatagram(incoming["message"].encode("utf-8"))
        assert isinstance(invite, SIPRequest)
        self.assertEqual(invite.body, offer)
        self.assertEqual(invite.header("Contact"), dialog.localContact.serialize())
        created = yield agent.waitForEvent("sdpCreated", timeout=5)
        answer = parseSDP(created["local"])
        [audio] = answer.media
        self.assertEqual((audio.media, audio.proto), ("audio", "RTP/AVP"))
        self.assertNotEqual(audio.port, 0)
        self.assertIn("0", audio.formats)
        yield agent.waitForEvent("callState", timeout=10, state="CONFIRMED")
        yield eventually(
            lambda: any(
                isinstance(m, SIPRequest) and m.method == "ACK" for m in received(agent)
            ),
            agent,
        )
        if gatewayHangsUp:
            response = yield within(dialog.bye(), agent)
            self.assertEqual(response.status, 200)
            reason = yield within(watcher.terminated, agent)
            self.assertIs(reason, TerminationReason.LOCAL_BYE)
        else:
            agent.send("hangup")
            reason = yield within(watcher.terminated, agent)
            self.assertIs(reason, TerminationReason.REMOTE_BYE)
        state = yield agent.waitForEvent("callState", timeout=10, state="DISCONNECTED")
        self.assertEqual(state["lastStatus"], 200 if gatewayHangsUp else 603)
        self.assertEqual(ua.dialogs, {})


class PJSUA2UDPTests(PJSUA2Scenarios):
    """
    pjsua2 over UDP.
    """

    kind = TransportKind.UDP

    def test_audioInviteRefused(self) -> Any:
        """
        RFC 3261 13.3.1.3, 21.4.26; RFC 4975 section 8: no MSRP stream
        offered, 488 with Warning 304, reported by pjsua2.
        """
        return self.audioInviteRefused()

    def test_mediaRefusedCall(self) -> Any:
        """
        RFC 3264 section 6, RFC 3261 15.1.2: 200 rejecting the audio
        stream; pjsua2 ACKs and BYEs (cause 415); the gateway answers 200.
        """
        return self.mediaRefusedCall()

    def test_options(self) -> Any:
        """
        RFC 3261 11.2: OPTIONS from pjsua2 gets 200 with Allow and Accept.
        """
        return self.options()

    def test_outgoingMSRPInviteRefused(self) -> Any:
        """
        RFC 3261 17.1.1.3: pjsua2 refuses the gateway's MSRP offer with
        488; the gateway ACKs it and keeps no dialog.
        """
        return self.outgoingMSRPInviteRefused()

    def test_outgoingInviteLocalBye(self) -> Any:
        """
        RFC 3261 13.2.2.4, 15.1.1: the gateway calls pjsua2 (audio offer),
        ACKs its 200 and BYEs.
        """
        return self.outgoingInvite(gatewayHangsUp=True)

    def test_outgoingInviteRemoteBye(self) -> Any:
        """
        RFC 3261 15.1.2: the same, pjsua2 BYEs.
        """
        return self.outgoingInvite(gatewayHangsUp=False)


class PJSUA2TCPTests(PJSUA2UDPTests):
    """
    pjsua2 over TCP (responses and in-dialog requests on connections,
    RFC 3261 18.2.2).
    """

    kind = TransportKind.TCP


def within(
    d: Deferred[Any], agent: PJSUA2Agent, seconds: float = 10.0
) -> Deferred[Any]:
    """
    Bound a wait for the gateway's side; on timeout fail with what pjsua2
    did meanwhile.
    """

    def explain(reason: Failure) -> Failure:
        reason.trap(TimeoutError)
        raise AgentTimeout(f"nothing after {seconds}s\n" + agent.describe())

    d.addTimeout(seconds, reactor)
    return d.addErrback(explain)


@inlineCallbacks
def eventually(
    check: Callable[[], bool], agent: PJSUA2Agent, seconds: float = 5.0
) -> Any:
    """
    Poll C{check} (every 50 ms, at most C{seconds}) until it holds.
    """
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        yield _sleep(0.05)
    raise AgentTimeout(f"still not so after {seconds}s\n" + agent.describe())


def _sleep(seconds: float) -> Deferred[None]:
    d: Deferred[None] = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d
