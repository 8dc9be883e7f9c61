# -*- test-case-name: tests.interop.test_sip_sessiontimer -*-
"""
Interop, issue 11 item 5: RFC 4028 session timers against SIPp 3.6.1 over
real TCP sockets on 127.0.0.1.

SIPp plays a SIP user that supports session timers and then goes silent
(C{tests/fixtures/sipp/uac_session_timer_silent.xml}): it asks for a 90 s
session interval, is made the refresher by the gateway's 200, ACKs and
never refreshes.  The gateway's UA core (session timers on, 90 s) must
end the dialog with a BYE (Reason cause 408) 60 s after its 200 (RFC 4028
section 10: the interval minus the smaller of 32 s and a third of it),
over SIPp's own connection; SIPp checks the 200 and the BYE and answers
it.  The test takes about a minute of real time: RFC 4028 forbids
intervals below 90 s.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from stoxgw.sip.dialog import TerminationReason
from stoxgw.sip.sessiontimer import SessionTimerSettings
from stoxgw.sip.transport import SIPTransport, TransportKind
from stoxgw.sip.useragent import SIPTrust, SIPUserAgent, UserAgentSettings
from tests.interop.peers import PeerUnavailable
from tests.interop.sipp import SIPpResult, freeUDPAndTCPPort, runSIPp
from tests.interop.test_sip_sipp import FocusHandler


class SilentRefresherTests(TestCase):
    """
    Real SIPp, real sockets, bounded waits.
    """

    timeout = 120

    @inlineCallbacks
    def test_silentRefresherEnded(self) -> Any:
        """
        RFC 4028 sections 9 and 10: the 200 makes SIPp the refresher
        (checked by the scenario); with no refresh, the gateway BYEs about
        60 s later with Reason 408 and the dialog ends as SESSION_EXPIRED.
        """
        transport = SIPTransport(reactor, "127.0.0.1")  # type: ignore[arg-type]
        transport.listenTCP(0)
        self.addCleanup(transport.stopListening)
        ua = SIPUserAgent(
            reactor,
            transport,
            settings=UserAgentSettings(
                contactUser="gw", sessionTimer=SessionTimerSettings(90, 90)
            ),
            admission=SIPTrust.fromStrings(["127.0.0.1/32"]),
        )
        self.addCleanup(ua.close)
        handler = FocusHandler(ua)
        ua.addHandler("INVITE", handler)
        try:
            running = runSIPp(
                reactor,
                "uac_session_timer_silent.xml",
                remote=f"127.0.0.1:{transport.ports[TransportKind.TCP]}",
                localPort=freeUDPAndTCPPort(),
                transport="t1",
                service="room",
                timeout=100,
            )
        except PeerUnavailable as e:
            raise self.skipTest(str(e))
        dialog = yield handler.watcher.confirmed
        confirmed = reactor.seconds()  # type: ignore[attr-defined]
        self.assertIsNotNone(dialog.sessionTimer)
        reason = yield handler.watcher.terminated
        ended = reactor.seconds()  # type: ignore[attr-defined]
        self.assertIs(reason, TerminationReason.SESSION_EXPIRED)
        self.assertTrue(55 <= ended - confirmed <= 62, ended - confirmed)
        result: SIPpResult = yield running
        self.assertEqual(result.exitCode, 0, result.describe())
