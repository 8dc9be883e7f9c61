# -*- test-case-name: tests.msrp.test_session -*-
"""
MSRP chat sessions (RFC 4975 sections 5-8, RFC 7701 section 7).

An L{MSRPSession} is one MSRP session: its own path URI, the peer's path
and capabilities from SDP, and the messages in flight both ways.  It is
bound to an L{MSRPConnection} (actively after connecting, or passively by
the first request that names it, R-144, R-157) and talks to the layer above
through an L{IMSRPSessionHandler}.

This module holds its life (L{SessionState}, binding, failing, closing)
and the dispatch of the requests it receives; its halves live beside it:
L{stoxgw.msrp.outgoing.Sending} (messages, NICKNAME, keepalives, the
REPORTs about them) and L{stoxgw.msrp.incoming.Receiving} (reassembly, the
handler, the responses and REPORTs we send), with the receive fast path
in L{stoxgw.msrp.fastpath.WholeSendReceiving}.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Callable, Iterable, Literal, Sequence

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from stoxgw.msrp.chunks import DEFAULT_CHUNK_SIZE
from stoxgw.msrp.fastpath import WholeSendReceiving
from stoxgw.msrp.incoming import (
    ALWAYS_ACCEPTED_TYPES,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_REASSEMBLY_TIMEOUT,
    IncomingMessage,
    mediaTypeMatches,
)
from stoxgw.msrp.interfaces import IMSRPConnectionUser
from stoxgw.msrp.message import FailureReport, MSRPMethod, MSRPRequest
from stoxgw.msrp.outgoing import (
    DEFAULT_TRANSACTION_TIMEOUT,
    LOCAL_FAILURE,
    MSRPSendError,
    Sending,
    SendResult,
)
from stoxgw.msrp.protocol import MSRPConnection
from stoxgw.msrp.uri import MSRPURI

__all__ = [
    "ALWAYS_ACCEPTED_TYPES",
    "DEFAULT_TRANSACTION_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "LOCAL_FAILURE",
    "MSRPSendError",
    "SendResult",
    "IncomingMessage",
    "SessionState",
    "IMSRPSessionHandler",
    "IMSRPSession",
    "MSRPSession",
    "mediaTypeMatches",
]

_SEND = MSRPMethod.SEND.value
_REPORT = MSRPMethod.REPORT.value
_NICKNAME = MSRPMethod.NICKNAME.value


class _Keep(Enum):
    """
    L{MSRPSession.updatePeer}'s default for C{maxSize}: no change (L{None}
    means the peer declared no C{max-size}).
    """

    KEEP = "keep"


class SessionState(Enum):
    """
    The life of a session.

    @cvar WAITING: Created, not yet bound to a connection.
    @cvar BOUND: Bound; messages flow.
    @cvar FAILED: The connection failed or the peer said 481 (R-145,
        R-148); final.
    @cvar CLOSED: Closed locally; final.
    """

    WAITING = "waiting"
    BOUND = "bound"
    FAILED = "failed"
    CLOSED = "closed"


_TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    SessionState.WAITING: frozenset(
        {SessionState.BOUND, SessionState.FAILED, SessionState.CLOSED}
    ),
    SessionState.BOUND: frozenset({SessionState.FAILED, SessionState.CLOSED}),
    SessionState.FAILED: frozenset(),
    SessionState.CLOSED: frozenset(),
}


class IMSRPSessionHandler(Interface):
    """
    What an L{MSRPSession} calls on the layer above (the chat session).
    """

    def sessionBound() -> None:
        """
        The session is bound to a connection: messages can flow.
        """

    def messageReceived(message: IncomingMessage) -> Any:
        """
        A complete message arrived.

        @param message: The message.
        @return: The status for the response to the completing chunk:
            L{None} or 200 to accept, an error code (403, 404, 415, 428...)
            to reject, or a L{Deferred} firing with one of those.  A gateway
            may accept first and call L{IMSRPSession.sendFailureReport}
            later (RFC 4975 section 7.1.4, R-140).
        """

    def nicknameRequested(nickname: str) -> Any:
        """
        The peer sent NICKNAME (RFC 7701 section 7.1).

        @param nickname: The requested nickname, unquoted (C{""} removes it).
        @return: The response code (200, 403, 423, 425...) or a L{Deferred}
            firing with it.
        """

    def sessionFailed(reason: Failure) -> None:
        """
        The session is gone: its connection failed or was lost, or the peer
        answered 481 (R-145, R-148).  Pending sends have failed already.

        @param reason: Why.
        """


class IMSRPSession(IMSRPConnectionUser):
    """
    One MSRP chat session, as the layer above sees it.
    """

    localURI = Attribute("Own path URI (L{MSRPURI}), unique per session (R-154).")
    remotePath = Attribute("The peer's path from SDP, leftmost first.")
    state = Attribute("The L{SessionState}.")

    def sendMessage(
        contentType: str,
        body: bytes,
        messageID: str | None = None,
        successReport: bool = False,
        failureReport: FailureReport | str = FailureReport.YES,
        extraHeaders: Iterable[tuple[str, str]] = (),
    ) -> Deferred[SendResult]:
        """
        Send a message (chunked as needed).

        @return: A L{Deferred} that fires once with a L{SendResult}, or fails
            once with L{MSRPSendError}.
        """

    def sendNickname(nickname: str) -> Deferred[int]:
        """
        Send NICKNAME (RFC 7701 section 7.1).

        @return: A L{Deferred} firing with 200, or failing with
            L{MSRPSendError} (424, 425, 403...).
        """

    def sendFailureReport(
        message: IncomingMessage, code: int, comment: str | None = None
    ) -> bool:
        """
        Report a failure for a message already answered with 200 (R-140).

        @return: Whether a REPORT was sent.
        """

    def close() -> None:
        """
        End the session locally: pending sends fail, the connection is left
        (and closed if no other session uses it).
        """


@implementer(IMSRPSession)
class MSRPSession(WholeSendReceiving, Sending):
    """
    One MSRP chat session.

    @ivar localURI: Own path URI.
    @ivar handler: The layer above.
    @ivar clock: Time source for all timers.
    @ivar remotePath: The peer's path (from SDP), leftmost first.
    @ivar acceptTypes: Own C{accept-types} (incoming 415 check, R-147).
    @ivar acceptWrappedTypes: Own C{accept-wrapped-types} (for SDP; the
        wrapped check needs the CPIM parser, so the handler does it).
    @ivar maxMessageSize: The largest incoming message (413 beyond, R-126).
    @ivar peerAcceptTypes: The peer's C{accept-types}, or L{None} if unknown
        (then anything is sent, R-158).
    @ivar peerAcceptWrappedTypes: The peer's C{accept-wrapped-types}.
    @ivar peerMaxSize: The peer's C{max-size}, or L{None} (R-159).
    @ivar chunkSize: The largest outgoing chunk body (R-135).
    @ivar transactionTimeout: Seconds to wait for a response (R-137).
    @ivar reassemblyTimeout: Seconds a partial message waits for a chunk.
    @ivar maxIncomingMessages: How many messages may be in reassembly at
        once (413 beyond).
    @ivar connection: The bound connection, or L{None}.
    @ivar state: The L{SessionState}.
    """

    _log = Logger()

    def __init__(
        self,
        localURI: MSRPURI,
        handler: IMSRPSessionHandler,
        clock: IReactorTime,
        *,
        remotePath: Sequence[MSRPURI] = (),
        acceptTypes: Sequence[str] = ("*",),
        acceptWrappedTypes: Sequence[str] = (),
        maxMessageSize: int = DEFAULT_MAX_MESSAGE_SIZE,
        peerAcceptTypes: Sequence[str] | None = None,
        peerAcceptWrappedTypes: Sequence[str] = (),
        peerMaxSize: int | None = None,
        chunkSize: int = DEFAULT_CHUNK_SIZE,
        transactionTimeout: float = DEFAULT_TRANSACTION_TIMEOUT,
        reassemblyTimeout: float = DEFAULT_REASSEMBLY_TIMEOUT,
        maxIncomingMessages: int = 16,
        onEnd: Callable[[MSRPSession], None] | None = None,
    ) -> None:
        """
        @param onEnd: Called once when the session fails or closes (the
            endpoint forgets it then).
        """
        self.localURI = localURI
        self.handler = handler
        self.clock = clock
        self.remotePath: tuple[MSRPURI, ...] = tuple(remotePath)
        self.acceptTypes = tuple(acceptTypes)
        self.acceptWrappedTypes = tuple(acceptWrappedTypes)
        self.maxMessageSize = maxMessageSize
        self.peerAcceptTypes = (
            None if peerAcceptTypes is None else tuple(peerAcceptTypes)
        )
        self.peerAcceptWrappedTypes = tuple(peerAcceptWrappedTypes)
        self.peerMaxSize = peerMaxSize
        self.chunkSize = chunkSize
        self.transactionTimeout = transactionTimeout
        self.reassemblyTimeout = reassemblyTimeout
        self.maxIncomingMessages = maxIncomingMessages
        self.connection: MSRPConnection | None = None
        self.state = SessionState.WAITING
        self._onEnd = onEnd
        self._initSending()
        self._initReceiving()

    def __repr__(self) -> str:
        return f"<MSRPSession {self.localURI} {self.state.value}>"

    @property
    def localPath(self) -> tuple[MSRPURI, ...]:
        """
        Own path for SDP C{a=path} (R-154).
        """
        return (self.localURI,)

    def _setState(self, state: SessionState) -> None:
        """
        Move to C{state} along L{_TRANSITIONS}.

        @raise ValueError: For a transition the table does not allow.
        """
        if state not in _TRANSITIONS[self.state]:
            raise ValueError(f"MSRP session cannot go from {self.state} to {state}")
        self.state = state

    def updatePeer(
        self,
        remotePath: Sequence[MSRPURI] | None = None,
        acceptTypes: Sequence[str] | None = None,
        acceptWrappedTypes: Sequence[str] | None = None,
        maxSize: int | None | Literal[_Keep.KEEP] = _Keep.KEEP,
    ) -> None:
        """
        Take the peer's SDP (answer or re-offer, R-156).

        @param remotePath: The peer's C{a=path}, if given.
        @param acceptTypes: The peer's C{accept-types}, if given.
        @param acceptWrappedTypes: The peer's C{accept-wrapped-types}.
        @param maxSize: The peer's C{max-size}, L{None} when it declared
            none; left out, the one known stays.
        """
        if remotePath is not None:
            self.remotePath = tuple(remotePath)
        if acceptTypes is not None:
            self.peerAcceptTypes = tuple(acceptTypes)
        if acceptWrappedTypes is not None:
            self.peerAcceptWrappedTypes = tuple(acceptWrappedTypes)
        if maxSize is not _Keep.KEEP:
            self.peerMaxSize = maxSize

    def peerAccepts(self, contentType: str, wrapped: bool = False) -> bool:
        """
        Whether the peer declared it accepts a type (R-158).

        @param contentType: The media type.
        @param wrapped: Check C{accept-wrapped-types} (and C{accept-types})
            instead of only C{accept-types}.
        @return: C{True} also when the peer's types are unknown.
        """
        if self.peerAcceptTypes is None:
            return True
        if mediaTypeMatches(contentType, self.peerAcceptTypes):
            return True
        return wrapped and mediaTypeMatches(contentType, self.peerAcceptWrappedTypes)

    # -- binding -----------------------------------------------------------

    def bind(self, connection: MSRPConnection, active: bool) -> None:
        """
        Bind to a connection (R-144); the active side sends a bodiless SEND
        at once (R-157, RFC 6135).  Messages queued before are sent now.

        @param connection: The connection.
        @param active: Whether this side opened it.
        @raise ValueError: If the session is not waiting for a connection.
        """
        if self.connection is connection:
            return
        self._setState(SessionState.BOUND)
        connection.attach(self)
        self.connection = connection
        self._log.info(
            "MSRP session {msrpSessionID} bound to {peer}",
            msrpSessionID=str(self.localURI),
            peer=connection.peer,
        )
        if active and self.remotePath:
            self._sendBodiless()
        outbox, self._outbox = self._outbox, []
        for source in outbox:
            if not source.done:
                connection.sendStream(self, source)
        try:
            self.handler.sessionBound()
        except Exception:
            self._log.failure(
                "Handler failed in sessionBound for {msrpSessionID}",
                msrpSessionID=str(self.localURI),
            )

    def connectionLost(self, connection: MSRPConnection, reason: Failure) -> None:
        """
        The bound connection is gone: the session fails (R-145).
        """
        if connection is not self.connection:
            return
        self.connection = None
        self._fail(reason)

    def connectionFailed(self, reason: Failure) -> None:
        """
        The connection attempt for this session failed.

        @param reason: Why.
        """
        if self.state is SessionState.WAITING:
            self._fail(reason)

    def _fail(self, reason: Failure) -> None:
        """
        Fail the session: pending sends fail, the handler is told.
        """
        if self.state in (SessionState.FAILED, SessionState.CLOSED):
            return
        self._setState(SessionState.FAILED)
        self._log.info(
            "MSRP session {msrpSessionID} failed: {error}",
            msrpSessionID=str(self.localURI),
            error=reason.getErrorMessage(),
        )
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.detach(self)
        self._endAll(
            MSRPSendError(LOCAL_FAILURE, f"session failed: {reason.getErrorMessage()}")
        )
        try:
            self.handler.sessionFailed(reason)
        except Exception:
            self._log.failure(
                "Handler failed in sessionFailed for {msrpSessionID}",
                msrpSessionID=str(self.localURI),
            )
        self._ended()

    def close(self) -> None:
        """
        End the session locally.
        """
        if self.state in (SessionState.FAILED, SessionState.CLOSED):
            return
        self._setState(SessionState.CLOSED)
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.detach(self)
        self._endAll(MSRPSendError(LOCAL_FAILURE, "session closed"))
        self._ended()

    def _endAll(self, error: MSRPSendError) -> None:
        """
        Fail every pending send and drop every partial incoming message.
        """
        self._outbox.clear()
        for pending in list(self._pending):
            pending.fail(error)
        for reassembly in self._incoming.values():
            if reassembly.timer is not None and reassembly.timer.active():
                reassembly.timer.cancel()
        self._incoming.clear()

    def _ended(self) -> None:
        """
        Tell the owner once.
        """
        onEnd, self._onEnd = self._onEnd, None
        if onEnd is not None:
            onEnd(self)

    # -- outgoing ----------------------------------------------------------

    def _usable(self) -> MSRPSendError | None:
        """
        Why nothing can be sent now, or L{None}.
        """
        if self.state in (SessionState.FAILED, SessionState.CLOSED):
            return MSRPSendError(LOCAL_FAILURE, f"session {self.state.value}")
        if not self.remotePath:
            return MSRPSendError(LOCAL_FAILURE, "remote path unknown")
        return None

    # -- incoming ----------------------------------------------------------

    def requestReceived(self, connection: MSRPConnection, request: MSRPRequest) -> None:
        """
        Handle a request for this session.

        @param connection: The connection it came on.
        @param request: The request.
        """
        if not self.remotePath:
            self.remotePath = request.fromPath
        method = request.method
        if method == _SEND:
            self._sendReceived(connection, request)
        elif method == _REPORT:
            self._reportReceived(request)
        elif method == _NICKNAME:
            self._nicknameReceived(connection, request)
        else:
            connection.respond(request, 501)

