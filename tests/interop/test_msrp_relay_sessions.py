# -*- test-case-name: tests.interop.test_msrp_relay_sessions -*-
"""
Interop: two L{MSRPEndpoint}s, each authenticated (digest) with a real
Kamailio MSRP relay (L{KamailioMSRPRelay}, RFC 4976), run sessions
through it over real sockets on 127.0.0.1: chunked messages both ways
with the success REPORT relayed back, NICKNAME (which Kamailio's relay
answers with 501: it only relays SEND and REPORT), and the clear failure
of wrong credentials.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.msrp.relay import RelayAuthorized, RelayForbidden
from stoxgw.msrp.session import (
    IncomingMessage,
    MSRPSendError,
    SendResult,
    SessionState,
)
from stoxgw.msrp.uri import MSRPURI
from tests.interop.kamailio import KamailioMSRPRelay
from tests.interop.msrpendpoints import WaitingHandler, startEndpoint


class SessionsThroughKamailioTests(TestCase):
    """
    Real relay process, real reactor, bounded waits.
    """

    timeout = 30

    def startRelay(self) -> KamailioMSRPRelay:
        """
        Start a Kamailio relay for this test; stop it (by PID) afterwards.
        """
        relay = KamailioMSRPRelay(directory=self.mktemp())
        relay.start()
        self.addCleanup(relay.stop)
        return relay

    def endpoint(
        self, relay: KamailioMSRPRelay, username: str, password: str
    ) -> MSRPEndpoint:
        """
        An endpoint that uses C{relay}, cleaned up after the test.
        """
        return startEndpoint(
            self,
            transactionTimeout=10,
            connectTimeout=5,
            chunkSize=2048,
            relay=relay.relayURI,
            relayUsername=username,
            relayPassword=password,
        )

    @inlineCallbacks
    def test_chunkedBothWaysThroughRelay(self) -> Any:
        """
        R-155, R-166, R-168, RFC 4976 section 5.1: both endpoints AUTH with
        digest; the SDP paths are Use-Path + own URI; Alice's bodiless SEND
        through the relay binds Bob's session; 10 kB in 2048-byte chunks go
        each way, each with a success REPORT relayed back; NICKNAME is
        answered 501 by Kamailio, which relays only SEND and REPORT.
        """
        relay = self.startRelay()
        alice = self.endpoint(relay, "alice", "alicepass")
        bob = self.endpoint(relay, "bob", "bobpass")
        aliceAuth: RelayAuthorized = yield alice.startRelay()
        bobAuth: RelayAuthorized = yield bob.startRelay()
        relayHost = MSRPURI.fromString(relay.relayURI)
        for auth in (aliceAuth, bobAuth):
            [uri] = auth.usePath
            self.assertEqual((uri.host, uri.port), (relayHost.host, relayHost.port))

        aliceHandler, bobHandler = WaitingHandler(), WaitingHandler()
        aliceSession = alice.createSession(aliceHandler)
        bobSession = bob.createSession(bobHandler)
        aliceSDP, bobSDP = alice.sdpPath(aliceSession), bob.sdpPath(bobSession)
        self.assertEqual(aliceSDP, aliceAuth.usePath + (aliceSession.localURI,))
        bob.setRemotePath(bobSession, aliceSDP)
        yield alice.connectSession(aliceSession, bobSDP)
        self.assertIs(aliceSession.connection, alice.relayConnection)
        self.assertEqual(aliceSession.remotePath, aliceAuth.usePath + bobSDP)

        payload = bytes(range(256)) * 40
        result: SendResult = yield aliceSession.sendMessage(
            "text/plain", payload, successReport=True
        )
        self.assertTrue(result.successReported)
        received: IncomingMessage = yield bobHandler.message
        self.assertEqual(received.body, payload)
        self.assertEqual(received.size, 10240)
        self.assertEqual(received.fromPath, bobAuth.usePath + aliceSDP)
        self.assertIs(bobSession.connection, bob.relayConnection)

        back = payload[::-1]
        result = yield bobSession.sendMessage("text/plain", back, successReport=True)
        self.assertTrue(result.successReported)
        receivedBack: IncomingMessage = yield aliceHandler.message
        self.assertEqual(receivedBack.body, back)

        error = yield self.assertFailure(
            aliceSession.sendNickname("Alice"), MSRPSendError
        )
        self.assertEqual(error.code, 501)
        self.assertFalse(bobHandler.nickname.called)
        self.assertIs(aliceSession.state, SessionState.BOUND)
        self.assertEqual(aliceHandler.failures + bobHandler.failures, [])

    @inlineCallbacks
    def test_wrongPassword(self) -> Any:
        """
        R-168: a wrong relay_password gets 403 from Kamailio; startRelay
        fails with L{RelayForbidden} and no session can be created.
        """
        relay = self.startRelay()
        mallory = self.endpoint(relay, "alice", "wrong")
        error = yield self.assertFailure(mallory.startRelay(), RelayForbidden)
        self.assertEqual(error.code, 403)
        self.assertIsNone(mallory.relayAuthorized)
