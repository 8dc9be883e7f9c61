# -*- test-case-name: tests.interop -*-
"""
What the MSRP interop tests share: a session handler that fires Deferreds
as things arrive, and an endpoint on 127.0.0.1 listening on an ephemeral
port that is closed, with all its connections, when the test ends.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.msrp.session import IMSRPSessionHandler, IncomingMessage


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


def startEndpoint(test: TestCase, **options: Any) -> MSRPEndpoint:
    """
    An L{MSRPEndpoint} on 127.0.0.1, port 0, listening, cleaned up after
    C{test}.

    @param options: keyword arguments of L{MSRPEndpoint}.
    """
    endpoint = MSRPEndpoint(reactor, "127.0.0.1", 0, **options)
    endpoint.startListening()
    test.addCleanup(endpoint.stopListening)
    test.addCleanup(disconnect, endpoint)
    return endpoint


def disconnect(endpoint: MSRPEndpoint) -> Deferred[None]:
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
