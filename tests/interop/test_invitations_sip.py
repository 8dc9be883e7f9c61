# -*- test-case-name: tests.interop.test_invitations_sip -*-
"""
XMPP MUC invitations to a SIP user (L{stoxgw.interworking.invitations},
SPEC R-222) against independent SIP user agents over real sockets on
127.0.0.1.

The gateway side is L{SIPInvitations} on a real L{SIPUserAgent} (UDP and
TCP on ephemeral ports) whose resolver has a static route
(L{StaticRoute}, as C{[sip] static_routes} configures it) sending
everything for the user domain C{sip.xmpp.test} to the peer.  The
invitation is the one the occupant service makes of a XEP-0045 mediated
invitation: C{juliet@xmpp.test} invites C{romeo@sip.xmpp.test} to
C{capulet@muc.xmpp.test}, reason "Join us".

 - SIPp 3.6.1 as the user's UA that takes REFER
   (C{uas_invitation_refer.xml}): its regexp actions check the REFER
   (request line, From, To, exactly one Refer-To, Referred-By, Refer-Sub,
   Accept, Contact) and it answers 202 with C{Refer-Sub: false}.
 - SIPp as a UA that refuses REFER (C{uas_invitation_message.xml}): 405
   and 501 are followed by a
   MESSAGE that SIPp checks (From, To, Content-Type, no Contact, the body)
   and answers 200; 404 is not followed by anything.  (The 501 and 404
   variants are copies of the scenario with the status line replaced.)
 - pjsua2 (PJSIP 2.15): it drops an out-of-dialog REFER without any
   response (its log says "dropped/unhandled by any modules"), so the
   REFER ends with the UA core's 408 (Timer F, shortened here with T1 =
   50 ms) and the MESSAGE follows, which PJSIP answers 200; its message
   trace shows what it received.
 - Controls: the same scenarios fail (SIPp exits non-zero) when the
   invitation differs from what their regexps expect.
"""

from __future__ import annotations

import os
from typing import Any

import stoxgw.xmpp  # noqa: F401  (installs the compat names before wokkel loads)

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import TestCase
from twisted.words.protocols.jabber.jid import JID

from stoxgw.interworking.invitations import (
    InvitationOutcome,
    InvitationResult,
    SIPInvitations,
)
from stoxgw.sip.dns import RFC3263Resolver, StaticRoute
from stoxgw.sip.message import SIPRequest, reasonPhrase
from stoxgw.sip.refer import ReferAgent
from stoxgw.sip.subscription import SIPEvents
from stoxgw.sip.transaction import TimerSettings
from stoxgw.sip.transport import SIPTransport, TransportKind
from stoxgw.sip.useragent import SIPTrust, SIPUserAgent, UserAgentSettings
from stoxgw.xmpp.occupant import Invitation
from tests.interop.peers import PeerUnavailable
from tests.interop.pjsua2peer import PJSUA2Agent, startAgent
from tests.interop.sipp import SIPpResult, freeUDPAndTCPPort, runSIPp, scenarioPath
from tests.interop.test_sip_refer import recordRequests, sippLogs
from tests.interop.test_sip_sipp import _sleep

USER_DOMAIN = "sip.xmpp.test"
MUC_DOMAIN = "muc.xmpp.test"
ROOM = JID("capulet@muc.xmpp.test")
ROMEO = JID("romeo@sip.xmpp.test/phone")
JULIET = JID("juliet@xmpp.test/balcony")
BODY = (
    b"juliet@xmpp.test invites you to the chat room"
    b" sip:capulet@muc.xmpp.test (Join us)"
)
#: Short transaction timers (Timer F = 64*T1 = 3.2 s) for peers that
#: never answer.
FAST = TimerSettings(t1=0.05, t2=0.4, t4=0.5)


def invitation(inviter: JID = JULIET) -> Invitation:
    """
    The mediated invitation (XEP-0045 7.8.2) of the module docstring.
    """
    return Invitation(roomJID=ROOM, invitee=ROMEO, inviter=inviter, reason="Join us")


def errorLogs(result: SIPpResult) -> str:
    """
    The text of SIPp's C{-trace_err} file.
    """
    return "".join(text for name, text in result.logs.items() if "_errors" in name)


@inlineCallbacks
def traced(agent: PJSUA2Agent, start: bytes, seconds: float = 5.0) -> Any:
    """
    PJSIP's received messages once one starting with C{start} is in its
    trace (it flushes its log once per turn of its loop), waiting at most
    C{seconds}.
    """
    for _ in range(int(seconds / 0.05)):
        received = agent.messages("RX")
        if any(m.startswith(start) for m in received):
            return received
        yield _sleep(0.05)
    return agent.messages("RX")


class InvitationInteropTests(TestCase):
    """
    Real SIPp and pjsua2, real sockets, bounded waits.
    """

    timeout = 60

    def gateway(
        self,
        peerPort: int,
        kind: TransportKind,
        timers: TimerSettings = TimerSettings(),
    ) -> tuple[ReferAgent, list[SIPRequest]]:
        """
        A UA on UDP and TCP trusting 127.0.0.1, routing C{sip.xmpp.test}
        to the peer at C{peerPort} over C{kind}.

        @return: Its REFER agent, and the list of requests it sends.
        """
        transport = SIPTransport(reactor, "127.0.0.1")
        transport.listenUDP(0)
        transport.listenTCP(0)
        self.addCleanup(transport.stopListening)
        resolver = RFC3263Resolver(
            None,
            lambda: transport.transports,
            staticRoutes={USER_DOMAIN: StaticRoute("127.0.0.1", peerPort, kind)},
        )
        ua = SIPUserAgent(
            reactor,
            transport,
            settings=UserAgentSettings(contactUser="gw", timers=timers),
            admission=SIPTrust.fromStrings(["127.0.0.1/32"]),
            resolver=resolver,
        )
        self.addCleanup(ua.close)
        events = SIPEvents(ua)
        self.addCleanup(events.close)
        return ReferAgent(events), recordRequests(transport)

    def invitations(self, referAgent: ReferAgent) -> SIPInvitations:
        """
        A fresh L{SIPInvitations} (fresh rate limit) on C{referAgent}.
        """
        return SIPInvitations(referAgent, reactor, USER_DOMAIN, (MUC_DOMAIN,))

    @inlineCallbacks
    def invite(self, referAgent: ReferAgent, inviter: JID = JULIET) -> Any:
        """
        Invite Romeo; while the peer is not listening yet (a TCP connection
        refused: the UA core's 503), try again, at most 20 times.
        """
        for attempt in range(20):
            outcome = yield self.invitations(referAgent).invitationReceived(
                ROMEO, invitation(inviter)
            )
            if not (
                outcome.result is InvitationResult.FAILED
                and outcome.method == "REFER"
                and outcome.status == 503
            ):
                return outcome
            yield _sleep(0.25)
        self.fail(f"the peer never listened: {outcome}")

    def refusing(self, status: int) -> str:
        """
        The path of C{uas_invitation_message.xml}, or of a copy answering
        the REFER with C{status} instead of 405.
        """
        path = scenarioPath("uas_invitation_message.xml")
        if status == 405:
            return path
        with open(path, encoding="iso-8859-1") as f:
            text = f.read()
        for old, new in (
            (
                "SIP/2.0 405 Method Not Allowed",
                f"SIP/2.0 {status} {reasonPhrase(status)}",
            ),
            (
                '<log message="REFER answered 405"/>',
                f'<log message="REFER answered {status}"/>',
            ),
        ):
            self.assertEqual(text.count(old), 1, old)
            text = text.replace(old, new)
        copy = os.path.abspath(self.mktemp() + ".xml")
        with open(copy, "w", encoding="iso-8859-1") as f:
            f.write(text)
        return copy

    def sipp(
        self, scenario: str, port: int, kind: TransportKind, calls: int
    ) -> Deferred[SIPpResult]:
        """
        Start SIPp as UAS on C{port} (C{scenario}: a name in
        C{tests/fixtures/sipp/} or an absolute path).
        """
        try:
            return runSIPp(
                reactor,
                scenario,
                remote=None,
                localPort=port,
                transport="u1" if kind is TransportKind.UDP else "t1",
                calls=calls,
                timeout=20,
            )
        except PeerUnavailable as e:
            raise self.skipTest(str(e))

    # -- REFER taken -------------------------------------------------------------

    @inlineCallbacks
    def _referTaken(self, kind: TransportKind) -> Any:
        port = freeUDPAndTCPPort()
        running = self.sipp("uas_invitation_refer.xml", port, kind, calls=1)
        referAgent, sent = self.gateway(port, kind)
        outcome = yield self.invite(referAgent)
        result = yield running
        self.assertEqual(result.exitCode, 0, result.describe())
        self.assertIn("REFER checked", sippLogs(result), result.describe())
        self.assertEqual(
            outcome, InvitationOutcome(InvitationResult.REFERRED, "REFER", 202)
        )
        self.assertEqual({r.method for r in sent}, {"REFER"})
        self.assertEqual(referAgent.events.dialogs, {})

    def test_referUDP(self) -> Any:
        """
        RFC 4579 5.6/5.7, RFC 3515, RFC 3892, RFC 4488 over UDP: SIPp's
        checks of the REFER pass; its 202 (Refer-Sub false) makes
        C{REFERRED}; no MESSAGE.
        """
        return self._referTaken(TransportKind.UDP)

    def test_referTCP(self) -> Any:
        """
        The same over TCP.
        """
        return self._referTaken(TransportKind.TCP)

    @inlineCallbacks
    def test_referScenarioChecks(self) -> Any:
        """
        Control: an invitation from someone else (Referred-By and From
        differ) fails SIPp's REFER checks (SIPp still answers, but counts
        the call as failed).
        """
        port = freeUDPAndTCPPort()
        running = self.sipp(
            "uas_invitation_refer.xml", port, TransportKind.UDP, calls=1
        )
        referAgent, _ = self.gateway(port, TransportKind.UDP)
        outcome = yield self.invite(referAgent, JID("mercutio@xmpp.test/x"))
        result = yield running
        self.assertNotEqual(result.exitCode, 0, result.describe())
        self.assertNotIn("REFER checked", sippLogs(result), result.describe())
        self.assertIn("regexp", errorLogs(result), result.describe())
        self.assertEqual(outcome.method, "REFER")

    # -- REFER refused -----------------------------------------------------------

    @inlineCallbacks
    def _referRefused(self, kind: TransportKind, status: int) -> Any:
        port = freeUDPAndTCPPort()
        running = self.sipp(self.refusing(status), port, kind, 2)
        referAgent, sent = self.gateway(port, kind)
        outcome = yield self.invite(referAgent)
        result = yield running
        self.assertEqual(result.exitCode, 0, result.describe())
        logs = sippLogs(result)
        self.assertIn(f"REFER answered {status}", logs, result.describe())
        self.assertIn("MESSAGE checked", logs, result.describe())
        self.assertEqual(
            outcome,
            InvitationOutcome(InvitationResult.MESSAGED, "MESSAGE", 200, status),
        )
        [message] = [r for r in sent if r.method == "MESSAGE"]
        self.assertEqual(message.body, BODY)

    def test_refused405UDP(self) -> Any:
        """
        RFC 3261 8.2.1: 405 Method Not Allowed -> MESSAGE (RFC 3428),
        checked and answered 200 by SIPp, over UDP.
        """
        return self._referRefused(TransportKind.UDP, 405)

    def test_refused501UDP(self) -> Any:
        """
        501 Not Implemented -> MESSAGE, over UDP.
        """
        return self._referRefused(TransportKind.UDP, 501)

    def test_refused405TCP(self) -> Any:
        """
        405 -> MESSAGE, over TCP.
        """
        return self._referRefused(TransportKind.TCP, 405)

    @inlineCallbacks
    def test_notFound404UDP(self) -> Any:
        """
        404: the user is not there; no MESSAGE follows, C{FAILED} with 404.
        """
        port = freeUDPAndTCPPort()
        running = self.sipp(self.refusing(404), port, TransportKind.UDP, 1)
        referAgent, sent = self.gateway(port, TransportKind.UDP)
        outcome = yield self.invite(referAgent)
        result = yield running
        self.assertEqual(result.exitCode, 0, result.describe())
        self.assertIn("REFER answered 404", sippLogs(result), result.describe())
        self.assertEqual(
            outcome, InvitationOutcome(InvitationResult.FAILED, "REFER", 404)
        )
        self.assertEqual({r.method for r in sent}, {"REFER"})

    @inlineCallbacks
    def test_messageScenarioChecks(self) -> Any:
        """
        Control: a MESSAGE from someone else (From and body differ) fails
        SIPp's MESSAGE checks.
        """
        port = freeUDPAndTCPPort()
        running = self.sipp(self.refusing(405), port, TransportKind.UDP, 2)
        referAgent, _ = self.gateway(port, TransportKind.UDP)
        outcome = yield self.invite(referAgent, JID("mercutio@xmpp.test/x"))
        result = yield running
        self.assertNotEqual(result.exitCode, 0, result.describe())
        self.assertIn("REFER answered 405", sippLogs(result), result.describe())
        self.assertNotIn("MESSAGE checked", sippLogs(result), result.describe())
        self.assertIn("regexp", errorLogs(result), result.describe())
        self.assertEqual(outcome.method, "MESSAGE")

    # -- pjsua2 ------------------------------------------------------------------

    @inlineCallbacks
    def _pjsua2(self, kind: TransportKind) -> Any:
        try:
            agent = startAgent(reactor, kind.name.lower(), maxSeconds=40)
        except PeerUnavailable as e:
            raise self.skipTest(str(e))
        self.addCleanup(agent.stop)
        ready = yield agent.waitForEvent("ready", timeout=15)
        referAgent, sent = self.gateway(ready["port"], kind, FAST)
        outcome = yield self.invite(referAgent)
        self.assertEqual(
            outcome,
            InvitationOutcome(InvitationResult.MESSAGED, "MESSAGE", 200, 408),
            agent.describe(),
        )
        [refer] = {r.callID: r for r in sent if r.method == "REFER"}.values()
        [message] = [r for r in sent if r.method == "MESSAGE"]
        # What PJSIP received and sent (its message trace, which it writes
        # out a moment after answering).
        received = yield traced(agent, b"MESSAGE ")
        self.assertTrue(
            any(
                m.startswith(b"REFER sip:romeo@sip.xmpp.test SIP/2.0") for m in received
            ),
            agent.describe(),
        )
        [got] = [m for m in received if m.startswith(b"MESSAGE ")]
        self.assertTrue(got.startswith(b"MESSAGE sip:romeo@sip.xmpp.test SIP/2.0\r\n"))
        self.assertIn(b"Content-Type: text/plain;charset=UTF-8\r\n", got)
        self.assertIn(b'From: "juliet@xmpp.test" <sip:capulet@muc.xmpp.test>;tag=', got)
        self.assertNotIn(b"\r\nContact:", got)
        self.assertTrue(got.endswith(b"\r\n\r\n" + BODY), got)
        answers = [m for m in agent.messages("TX") if m.startswith(b"SIP/2.0 ")]
        self.assertIn(f"Call-ID: {message.callID}".encode(), b"".join(answers))
        self.assertNotIn(f"Call-ID: {refer.callID}".encode(), b"".join(answers))
        self.assertIn(b"was dropped/unhandled by any modules", agent.log().encode())

    def test_pjsua2UDP(self) -> Any:
        """
        PJSIP drops the out-of-dialog REFER unanswered; after Timer F
        (408) the MESSAGE goes out and PJSIP answers it 200; over UDP.
        """
        return self._pjsua2(TransportKind.UDP)

    def test_pjsua2TCP(self) -> Any:
        """
        The same over TCP.
        """
        return self._pjsua2(TransportKind.TCP)
