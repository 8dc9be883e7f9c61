# -*- test-case-name: tests.interop.test_msrp_tcp -*-
"""
Two L{MSRPEndpoint}s in one process talk over real TCP on 127.0.0.1: a
chunked 100 kB message each way and a NICKNAME.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.msrp.session import IMSRPSessionHandler, IncomingMessage, SendResult


@implementer(IMSRPSessionHandler)
class WaitingHandler:
    """
    Fires L{Deferred}s as messages and nicknames arrive.
    """

    def __init__(self) -> None:
        self.message: Deferred[IncomingMessage] = Deferred()
        self.nickname: Deferred[str] = Deferred()
        self.failures: list[Failure] = []

    def sessionBound(self) -> None:
        pass

    def messageReceived(self, message: IncomingMessage) -> None:
        self.message.callback(message)

    def nicknameRequested(self, nickname: str) -> int:
        self.nickname.callback(nickname)
        return 200

    def sessionFailed(self, reason: Failure) -> None:
        self.failures.append(reason)


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
        endpoint = MSRPEndpoint(reactor, "127.0.0.1", 0, transactionTimeout=10)
        endpoint.startListening()
        self.addCleanup(endpoint.stopListening)
        self.addCleanup(self.disconnect, endpoint)
        return endpoint

    def disconnect(self, endpoint: MSRPEndpoint) -> Deferred[None]:
        """
        Close an endpoint's connections and wait until they are gone.
        """
        endpoint.disconnectAll()
        done: Deferred[None] = Deferred()

        def check() -> None:
            if endpoint.connections:
                reactor.callLater(0.01, check)  # type: ignore[attr-defined]
            else:
                done.callback(None)

        check()
        return done

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
