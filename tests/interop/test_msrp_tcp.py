# -*- test-case-name: tests.interop.test_msrp_tcp -*-
"""
Two L{MSRPEndpoint}s in one process talk over real TCP on 127.0.0.1: a
chunked 100 kB message each way and a NICKNAME.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.msrp.session import IncomingMessage, SendResult
from tests.interop.msrpendpoints import WaitingHandler, startEndpoint


class MSRPOverTCPTests(TestCase):
    """
    Real sockets, real reactor, bounded wait.
    """

    timeout = 20

    def endpoint(self) -> MSRPEndpoint:
        """
        An endpoint on 127.0.0.1 with an ephemeral port, cleaned up after
        the test.
        """
        return startEndpoint(self, transactionTimeout=10)

    @inlineCallbacks
    def test_chunkedBothWaysAndNickname(self) -> Any:
        """
        R-134, R-146, R-157, RFC 7701 7.1: the active side connects and
        binds the passive one with its bodiless SEND; 100 kB go each way
        in chunks and come out whole; NICKNAME gets 200.
        """
        alice, bob = self.endpoint(), self.endpoint()
        aliceHandler, bobHandler = WaitingHandler(), WaitingHandler()
        aliceSession = alice.createSession(aliceHandler)
        bobSession = bob.createSession(bobHandler, remotePath=aliceSession.localPath)
        yield alice.connectSession(aliceSession, bobSession.localPath)

        payload = bytes(range(256)) * 400
        result: SendResult = yield aliceSession.sendMessage(
            "text/plain", payload, successReport=True
        )
        self.assertTrue(result.successReported)
        received: IncomingMessage = yield bobHandler.message
        self.assertEqual(received.body, payload)
        self.assertEqual(received.size, 102400)

        back = payload[::-1]
        yield bobSession.sendMessage("text/plain", back)
        receivedBack: IncomingMessage = yield aliceHandler.message
        self.assertEqual(receivedBack.body, back)

        code = yield aliceSession.sendNickname("Alice")
        self.assertEqual(code, 200)
        nickname = yield bobHandler.nickname
        self.assertEqual(nickname, "Alice")
        self.assertEqual(aliceHandler.failures + bobHandler.failures, [])
