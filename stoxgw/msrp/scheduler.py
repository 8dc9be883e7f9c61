# -*- test-case-name: tests.msrp.test_protocol,tests.msrp.test_connectionlimits -*-
"""
The send scheduler of an L{stoxgw.msrp.protocol.MSRPConnection} (RFC 4975
sections 7.1.1, 5.4): responses and REPORTs (the I{priority} queue) go
before the next chunk of any SEND (R-135); each session's messages wait in
a queue of their own and the sessions take turns, one chunk each; the
connection is a push producer for its transport, and aborts itself when
more than L{MSRPConnection.maxQueuedBytes} of answers wait for a peer that
does not read (see L{stoxgw.msrp.protocol}).

L{Scheduling} is a base of L{MSRPConnection}, which sets the attributes
it declares (so the connection keeps its instance attributes, see
L{stoxgw.msrp.fastpath.FastReceiving}).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from twisted.logger import Logger

from stoxgw.msrp.chunks import ChunkSource
from stoxgw.msrp.interfaces import IMSRPConnectionUser
from stoxgw.msrp.message import MSRPRequest, MSRPResponse
from stoxgw.msrp.uri import MSRPURI

__all__ = ["PendingTransaction", "Scheduling"]


@dataclass(slots=True)
class PendingTransaction:
    """
    A client transaction waiting for its response.
    """

    source: ChunkSource
    request: MSRPRequest


class Scheduling:
    """
    The send scheduler, as a part of L{MSRPConnection} (which sets the
    attributes declared here).
    """

    _log: Logger
    peer: str
    chunkSize: int
    maxQueuedBytes: int
    _pending: dict[str, PendingTransaction]
    _priority: deque[bytes]
    _queuedBytes: int
    _aborted: bool
    _streams: dict[MSRPURI, deque[ChunkSource]]
    _rotation: deque[MSRPURI]
    _paused: bool
    _pumping: bool
    _open: bool
    _closed: bool

    @property
    def _transport(self) -> Any:
        """
        The transport (L{MSRPConnection}).
        """
        raise NotImplementedError()

    def _flushBatch(self) -> None:
        """
        Write the responses batched during a read (L{MSRPConnection}).
        """
        raise NotImplementedError()

    def abort(self) -> None:
        """
        Close the connection at once (L{MSRPConnection}).
        """
        raise NotImplementedError()

    def sendPriority(self, message: MSRPRequest | MSRPResponse) -> None:
        """
        Queue a response or a REPORT before any further SEND chunk (R-135).

        @param message: The message.
        """
        if self._closed:
            return
        self._enqueuePriority(message.serialize())

    def _enqueuePriority(self, data: bytes) -> None:
        """
        Queue a serialized response or REPORT before any further SEND
        chunk, and send what the transport takes; abort the connection if
        too much waits (L{_overflow}).

        @param data: The message (the connection is not closed).
        """
        self._priority.append(data)
        self._queuedBytes += len(data)
        if self._queuedBytes > self.maxQueuedBytes:
            self._overflow()
            return
        self._pump()

    def _overflow(self) -> None:
        """
        More than L{maxQueuedBytes} of responses and REPORTs wait for a
        peer that does not read: abort the connection (dropping what is
        buffered; the sessions fail, R-145).
        """
        if self._aborted:
            return
        self._log.warn(
            "MSRP peer {peer} does not read: more than {limit} octets of"
            " responses wait for it, connection closed",
            peer=self.peer,
            limit=self.maxQueuedBytes,
        )
        self.abort()

    def sendStream(self, session: IMSRPConnectionUser, source: ChunkSource) -> None:
        """
        Queue an outgoing message of a session; the sessions' queues take
        turns, one chunk each.

        @param session: The session (it must be attached).
        @param source: The message.
        """
        if self._closed:
            return
        uri = session.localURI
        queue = self._streams.get(uri)
        if queue is None:
            queue = self._streams[uri] = deque()
            self._rotation.append(uri)
        queue.append(source)
        self._pump()

    def forgetTransaction(self, transactionID: str) -> None:
        """
        Stop waiting for a response (the sender gave up, e.g. timed out).

        @param transactionID: The transaction id.
        """
        self._pending.pop(transactionID, None)

    def _nextStreamChunk(self) -> tuple[ChunkSource, MSRPRequest, bool] | None:
        """
        Take the next chunk, round robin over the sessions.

        @return: The source, the chunk and whether it is the source's last,
            or L{None} if nothing is queued.
        """
        while self._rotation:
            uri = self._rotation.popleft()
            queue = self._streams[uri]
            chunk = None
            source = None
            while queue and chunk is None:
                source = queue[0]
                chunk = source.nextChunk(self.chunkSize)
                if chunk is None or source.done:
                    queue.popleft()
            if queue:
                self._rotation.append(uri)
            else:
                del self._streams[uri]
            if chunk is not None and source is not None:
                return source, chunk, source.done
        return None

    def _pump(self) -> None:
        """
        Write queued messages until the queues are empty or the transport
        asks to pause.
        """
        self._flushBatch()
        if self._pumping or not self._open or self._closed:
            return
        self._pumping = True
        transport = self._transport
        try:
            while not self._paused and not self._closed:
                if self._priority:
                    data = self._priority.popleft()
                    self._queuedBytes -= len(data)
                    transport.write(data)
                    continue
                taken = self._nextStreamChunk()
                if taken is None:
                    break
                source, request, last = taken
                if source.expectsResponse(request):
                    self._pending[request.transactionID] = PendingTransaction(source, request)
                transport.write(request.serialize())
                source.listener.chunkWritten(request, last)
        finally:
            self._pumping = False

    # -- IPushProducer -----------------------------------------------------

    def pauseProducing(self) -> None:
        """
        The transport's buffer is full: write nothing more for now.
        """
        self._paused = True

    def resumeProducing(self) -> None:
        """
        The transport drained: go on writing.
        """
        self._paused = False
        self._pump()

    def stopProducing(self) -> None:
        """
        The transport is going away: write nothing more.
        """
        self._paused = True
