# -*- test-case-name: tests.sip.test_framing -*-
"""
Framing of SIP messages on stream transports (TCP, TLS; RFC 3261 section
18.3) with RFC 5626 section 3.5.1 CRLF keep-alives.

L{SIPStreamParser} is fed whatever bytes arrive and returns the events
found in them, in order: L{SIPRequest}/L{SIPResponse}, L{SIPParseError}
and L{KeepAlive}.  It gives the same events for any split of the input
(byte by byte included), never raises, and never holds more than
C{maxMessageBytes} of an incomplete message.

Error events and what the transport does with them:

 - a malformed message whose Content-Length could be read: the body is
   skipped and parsing goes on; answer the error if
   L{SIPParseError.canReply};
 - a message larger than C{maxMessageBytes} with a readable
   Content-Length: status 513 (RFC 3261 section 21.5.14), its body is
   skipped, parsing goes on;
 - missing or invalid Content-Length, or a header section larger than
   C{maxMessageBytes}: framing is lost (C{fatal} is true), the parser
   discards all further input; answer if possible, then close.

Pure, sans-IO, standard library only.
"""

from __future__ import annotations

from enum import Enum
from typing import Union

from stoxgw.sip.message import (
    MessageHead,
    SIPMessage,
    SIPParseError,
    buildMessage,
    parseHead,
)

__all__ = ["KeepAlive", "StreamEvent", "SIPStreamParser", "DEFAULT_MAX_MESSAGE_BYTES"]

#: Default bound for one message (header section plus body).
DEFAULT_MAX_MESSAGE_BYTES = 65536


class KeepAlive(Enum):
    """
    CRLF keep-alive events (RFC 5626 section 3.5.1).

    @cvar PING: A double CRLF was received between messages; a server
        answers with a single CRLF (L{PONG_BYTES}).
    @cvar PONG: A single CRLF was received between messages by a parser
        created with C{expectPongs=True} (the side that sends pings).
    """

    PING = "ping"
    PONG = "pong"


#: What a server sends back for a L{KeepAlive.PING}.
PONG_BYTES = b"\r\n"
#: What a client sends as a ping.
PING_BYTES = b"\r\n\r\n"

StreamEvent = Union[SIPMessage, SIPParseError, KeepAlive]


class SIPStreamParser:
    """
    Incremental SIP stream parser.

    @ivar maxMessageBytes: Largest accepted message (head plus body).
    @ivar failed: Whether framing was lost; all further input is ignored.
    """

    def __init__(
        self,
        maxMessageBytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        *,
        expectPongs: bool = False,
        requireMaxForwards: bool = True,
    ) -> None:
        """
        @param maxMessageBytes: Largest accepted message.
        @param expectPongs: Report each single CRLF between messages as
            L{KeepAlive.PONG} (for the side that sends pings).  Otherwise
            CRLFs between messages are skipped (RFC 3261 section 7.5) and
            each double CRLF is reported as L{KeepAlive.PING}.
        @param requireMaxForwards: See L{stoxgw.sip.message.buildMessage}.
        """
        self.maxMessageBytes = maxMessageBytes
        self.failed = False
        self._expectPongs = expectPongs
        self._requireMaxForwards = requireMaxForwards
        self._buffer = bytearray()
        # Where to resume looking for the end of the header section.
        self._scanFrom = 0
        # A single CRLF seen between messages, waiting for its pair.
        self._pendingCRLF = False
        # Octets of a rejected message's body still to discard.
        self._skip = 0
        # Parsed head waiting for its body, and its length.
        self._head: MessageHead | None = None
        self._headLength = 0

    def feed(self, data: bytes) -> list[StreamEvent]:
        """
        Add received octets; return the complete events found.
        """
        events: list[StreamEvent] = []
        if self.failed:
            return events
        self._buffer += data
        try:
            self._run(events)
        except Exception as e:  # pragma: no cover - defensive
            self._fail()
            events.append(
                SIPParseError(400, f"Internal parser error: {e!r}", fatal=True)
            )
        return events

    @property
    def messagePending(self) -> bool:
        """
        Whether part of a message has been fed and not completed yet: some
        of its header section, its body, or a rejected body being skipped
        (CRLF keep-alives between messages do not count).  The transport
        bounds how long this may last (a read timeout).
        """
        if self.failed:
            return False
        if self._head is not None or self._skip:
            return True
        buffer = self._buffer
        return bool(buffer) and buffer != b"\r"

    def _fail(self) -> None:
        self.failed = True
        self._buffer = bytearray()
        self._head = None

    def _run(self, events: list[StreamEvent]) -> None:
        buffer = self._buffer
        while not self.failed:
            if self._head is None and not buffer:
                return
            if self._skip:
                dropped = min(self._skip, len(buffer))
                del buffer[:dropped]
                self._skip -= dropped
                continue
            if self._head is not None:
                if not self._takeBody(events):
                    return
                continue
            if not self._skipKeepAlives(events):
                return
            if not buffer:
                return
            if not self._takeHead(events):
                return

    def _skipKeepAlives(self, events: list[StreamEvent]) -> bool:
        """
        Consume CRLFs between messages.

        @return: C{False} if more input is needed to decide.
        """
        buffer = self._buffer
        while True:
            if self._pendingCRLF:
                if not buffer:
                    return False
                if buffer[:2] == b"\r\n":
                    del buffer[:2]
                    self._pendingCRLF = False
                    events.append(KeepAlive.PING)
                    continue
                if buffer[:1] == b"\r" and len(buffer) == 1:
                    return False
                self._pendingCRLF = False
                continue
            if buffer[:2] == b"\r\n":
                del buffer[:2]
                if self._expectPongs:
                    events.append(KeepAlive.PONG)
                else:
                    self._pendingCRLF = True
                continue
            if buffer[:1] == b"\r" and len(buffer) == 1:
                return False
            if buffer[:1] == b"\n":
                # A bare LF between messages: tolerated and skipped.
                del buffer[:1]
                continue
            return True

    def _takeHead(self, events: list[StreamEvent]) -> bool:
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n", max(0, self._scanFrom - 3))
        if end == -1:
            self._scanFrom = len(buffer)
            if len(buffer) > self.maxMessageBytes:
                self._fail()
                events.append(SIPParseError(513, "Message Too Large", fatal=True))
            return False
        self._scanFrom = 0
        headData = bytes(buffer[:end])
        del buffer[: end + 4]
        try:
            head = parseHead(headData)
        except SIPParseError as error:
            length = None if error.fatal else _contentLengthOf(headData)
            if length is None:
                # Without one clear Content-Length the next message cannot
                # be found (RFC 3261 section 18.3).
                error.fatal = True
                self._fail()
            else:
                self._skip = length
            events.append(error)
            return not self.failed
        if head.contentLength is None:
            events.append(head.error(400, "Missing Content-Length", fatal=True))
            self._fail()
            return False
        total = end + 4 + head.contentLength
        if total > self.maxMessageBytes:
            self._skip = head.contentLength
            events.append(head.error(513, "Message Too Large"))
            return True
        self._head = head
        self._headLength = head.contentLength
        return True

    def _takeBody(self, events: list[StreamEvent]) -> bool:
        buffer = self._buffer
        length = self._headLength
        if len(buffer) < length:
            return False
        body = bytes(buffer[:length])
        del buffer[:length]
        head = self._head
        assert head is not None
        self._head = None
        try:
            events.append(buildMessage(head, body, self._requireMaxForwards))
        except SIPParseError as error:
            events.append(error)
        return True


def _contentLengthOf(headData: bytes) -> int | None:
    """
    Find a usable Content-Length in a header section that failed to parse
    for another reason, so that its body can be skipped.

    @return: The length, or L{None} unless exactly one valid
        Content-Length line is present.
    """
    found: list[bytes] = []
    for line in headData.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in (b"content-length", b"l"):
            found.append(value.strip())
    if len(found) != 1 or not found[0].isdigit():
        return None
    return int(found[0])
