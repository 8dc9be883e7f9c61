# -*- test-case-name: tests.msrp.test_protocol,tests.msrp.test_session -*-
"""
What a connection's scheduler takes chunks from (RFC 4975 section 7.1.1).

A L{ChunkSource} gives the connection's scheduler one request at a time:
L{SingleRequest} for requests that are never cut (NICKNAME, the bodiless
SEND of R-157), L{ChunkedSend} for a message cut lazily into SEND chunks
(R-132-R-135).  Each tells its L{ChunkListener} (the sending half of a
session, L{stoxgw.msrp.outgoing.Sending}, or a relay link) when a chunk
is written and answered.
"""

from __future__ import annotations

from typing import Protocol as TypingProtocol
from typing import Sequence

from stoxgw.msrp.builders import buildRequest
from stoxgw.msrp.message import (
    ByteRange,
    Continuation,
    FailureReport,
    MSRPMethod,
    MSRPRequest,
    MSRPResponse,
)
from stoxgw.msrp.uri import MSRPURI

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ChunkListener",
    "ChunkSource",
    "SingleRequest",
    "ChunkedSend",
]


DEFAULT_CHUNK_SIZE = 2048
"""
The largest body of an outgoing chunk by default (RFC 4975 section 7.1.1,
R-135).
"""


class ChunkListener(TypingProtocol):
    """
    Told what happens to the requests of a L{ChunkSource}.
    """

    def chunkWritten(self, request: MSRPRequest, last: bool) -> None:
        """
        A request was handed to the transport.

        @param request: The request.
        @param last: Whether it is the last request of the source.
        """

    def responseReceived(self, request: MSRPRequest, response: MSRPResponse) -> None:
        """
        The response to one of the source's requests arrived.

        @param request: The request answered.
        @param response: The response.
        """


class ChunkSource(TypingProtocol):
    """
    One outgoing message in a session's queue: it gives the scheduler its
    requests one at a time.
    """

    listener: ChunkListener

    @property
    def done(self) -> bool:
        """
        Whether there is nothing more to send.
        """

    def nextChunk(self, maxSize: int) -> MSRPRequest | None:
        """
        Make the next request.

        @param maxSize: The largest body the connection allows.
        @return: The request, or L{None} if there is nothing more.
        """

    def expectsResponse(self, request: MSRPRequest) -> bool:
        """
        Whether the connection should keep C{request}'s transaction pending.

        @param request: A request this source made.
        """


class SingleRequest:
    """
    A L{ChunkSource} that sends one request that is never cut (NICKNAME, the
    bodiless SEND of R-157).

    @ivar request: The request.
    @ivar listener: Told when it is written and answered.
    """

    def __init__(self, request: MSRPRequest, listener: ChunkListener) -> None:
        self.request = request
        self.listener = listener
        self._sent = False
        self._aborted = False

    @property
    def done(self) -> bool:
        """
        Whether the request was taken or the source aborted.
        """
        return self._sent or self._aborted

    def nextChunk(self, maxSize: int) -> MSRPRequest | None:
        """
        @param maxSize: Ignored (non-SEND requests are not interruptible,
            R-131).
        @return: The request, once.
        """
        if self.done:
            return None
        self._sent = True
        return self.request

    def expectsResponse(self, request: MSRPRequest) -> bool:
        """
        @return: C{True} unless the request says C{Failure-Report: no}.
        """
        return _expectsResponse(request)

    def abort(self) -> None:
        """
        Do not send the request if it has not been sent yet.
        """
        self._aborted = True


def _expectsResponse(request: MSRPRequest) -> bool:
    """
    Whether a transaction response may come for a request we send.

    @param request: The request.
    @return: C{False} for REPORTs and C{Failure-Report: no} (R-139, R-142).
    """
    if request.method == MSRPMethod.REPORT.value:
        return False
    return request.effectiveFailureReport is not FailureReport.NO


class ChunkedSend:
    """
    A L{ChunkSource} that cuts one message into SEND chunks (RFC 4975 section
    7.1.1): every chunk carries the Message-ID, the report headers and a
    Byte-Range with the real positions and the total (R-132-R-134); the last
    one ends with C{$}, the others with C{+}.  An empty body is one chunk with
    C{Byte-Range: 1-0/0}.

    @ivar messageID: The Message-ID.
    @ivar size: The body length.
    @ivar chunkSize: The largest body of a chunk this message wants (the
        connection may impose a smaller one).
    @ivar listener: Told when chunks are written and answered.
    """

    def __init__(
        self,
        toPath: Sequence[MSRPURI],
        fromPath: Sequence[MSRPURI],
        messageID: str,
        contentType: str,
        body: bytes,
        listener: ChunkListener,
        headers: Sequence[tuple[str, str]] = (),
        chunkSize: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        """
        @param toPath: The peer's path.
        @param fromPath: Own path.
        @param messageID: The Message-ID.
        @param contentType: The Content-Type of every chunk.
        @param body: The whole body (kept, not copied).
        @param listener: See L{listener}.
        @param headers: Report and extension headers for every chunk, placed
            after Message-ID and before Byte-Range.
        @param chunkSize: See L{chunkSize}.
        """
        if chunkSize < 1:
            raise ValueError("chunkSize must be positive")
        self.toPath = tuple(toPath)
        self.fromPath = tuple(fromPath)
        self.messageID = messageID
        self.contentType = contentType
        self.headers = tuple(headers)
        self.listener = listener
        self.chunkSize = chunkSize
        self.size = len(body)
        self._body = memoryview(body)
        self._offset = 0
        self._started = False
        self._aborted = False

    @property
    def done(self) -> bool:
        """
        Whether all chunks were made or the message was aborted.
        """
        return self._aborted or (self._started and self._offset >= self.size)

    @property
    def sentBytes(self) -> int:
        """
        How many body octets were put into chunks so far.
        """
        return self._offset

    def abort(self) -> None:
        """
        Make no further chunks (RFC 4975 section 10.5, R-148: stop sending a
        message after a 413 or another failure).
        """
        self._aborted = True

    def nextChunk(self, maxSize: int) -> MSRPRequest | None:
        """
        Make the next chunk.

        @param maxSize: The largest body the connection allows.
        @return: The chunk, or L{None} when done.
        """
        if self.done:
            return None
        size = max(1, min(self.chunkSize, maxSize))
        start = self._offset
        piece = bytes(self._body[start : start + size])
        end = start + len(piece)
        last = end >= self.size
        fields = [("Message-ID", self.messageID), *self.headers]
        fields.append(("Byte-Range", ByteRange(start + 1, end, self.size).serialize()))
        request = buildRequest(
            MSRPMethod.SEND,
            self.toPath,
            self.fromPath,
            fields,
            body=piece,
            contentType=self.contentType,
            continuation=Continuation.END if last else Continuation.MORE,
        )
        self._offset = end
        self._started = True
        return request

    def expectsResponse(self, request: MSRPRequest) -> bool:
        """
        @return: C{False} for C{Failure-Report: no} (R-139).
        """
        return _expectsResponse(request)
