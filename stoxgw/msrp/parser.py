# -*- test-case-name: tests.msrp.test_parser -*-
"""
Incremental, sans-IO MSRP parser (RFC 4975 section 9 framing).

L{MSRPParser.feed} takes bytes as they arrive and returns the complete
messages (L{MSRPRequest}, L{MSRPResponse}) and errors (L{MSRPParseError})
found so far.  The result does not depend on how the stream is split.

Framing: after the start line (C{MSRP SP transact-id SP method} or
C{MSRP SP transact-id SP status-code [SP comment]}) come header lines; the
header section ends at an empty line (a body follows) or at an end-line
(bodiless).  A body ends at C{CRLF "-------" transact-id flag CRLF}.  Only
C{bytes.find} scans the buffer, and scanning resumes where it stopped.

Errors that leave the framing intact (a malformed header, an oversized
header block or body once the transaction id is known, an unknown status
line form) are recoverable: the parser reports them, skips to the end-line
of that transaction and carries on.  Errors before a transaction id is known
(garbage instead of C{"MSRP "}, an overlong or unparseable start line) are
fatal: the error has C{fatal=True}, L{MSRPParser.failed} becomes C{True},
further input is ignored, and the connection must be closed.

Unknown request methods parse normally (the protocol layer answers 501).
"""

from __future__ import annotations

import re
from enum import Enum, auto
from typing import Union

from stoxgw.msrp.message import (
    END_LINE_DASHES,
    Continuation,
    MSRPHeader,
    MSRPParseError,
    MSRPRequest,
    MSRPResponse,
    _newHeader,
    _newRequest,
)
from stoxgw.msrp.uri import MSRPURI, MSRPURIError, parsePath

__all__ = [
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_CHUNK_BYTES",
    "MSRPEvent",
    "MSRPParser",
    "parseMessage",
]

DEFAULT_MAX_HEADER_BYTES = 16384
"""
Default limit for the start line plus header fields of one message.
"""

DEFAULT_MAX_CHUNK_BYTES = 1 << 20
"""
Default limit for the body of one chunk.
"""

MSRPEvent = Union[MSRPRequest, MSRPResponse, MSRPParseError]
"""
What L{MSRPParser.feed} returns: messages and errors in stream order.
"""

_START_RE = re.compile(
    rb"MSRP ([A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31})(?: (.*))?\Z", re.S
)
# A request's start line, CRLF included, as _START_RE then _METHOD_RE accept
# it (neither the id nor the method can contain CR or LF, so the CRLF is the
# first one).
_REQUEST_LINE_RE = re.compile(
    rb"MSRP ([A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}) ([A-Z]+)\r\n"
)
_SNAPSHOT_SIZE = 1 << 16
_METHOD_RE = re.compile(rb"[A-Z]+\Z")
_STATUS_RE = re.compile(rb"([0-9]{3})(?: (.*))?\Z", re.S)
_HEADER_RE = re.compile(r"([A-Za-z][!#-'*+\-.0-9A-Z^-~]*):([ \t]*)(.*)\Z", re.S)
_BAD_TEXT_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_FLAGS = {ord(flag.value): flag for flag in Continuation}
_PREFIX = b"MSRP "
_PATH_CACHE_SIZE = 128
_LINE_CACHE_SIZE = 256
# Message-IDs are unique: caching their lines would only evict the others.
_UNCACHED_PREFIX = b"Message-ID:"
_END_FLAGS = frozenset(b"$+#")
_BLANKS = (b" ", b"\t")
_PATH_HEADERS = ("to-path", "from-path")


class _State(Enum):
    """
    Where the parser is in the stream.
    """

    START = auto()
    HEADERS = auto()
    BODY = auto()
    DISCARD = auto()
    FAILED = auto()


class MSRPParser:
    """
    Incremental MSRP parser with bounded buffers.

    @ivar maxHeaderBytes: The largest start line plus header fields (with
        their CRLFs) accepted for one message; beyond it the message is
        rejected with 400.
    @ivar maxChunkBytes: The largest body accepted for one chunk; beyond it
        the chunk is rejected with 413 (RFC 4975 section 10.5) and skipped.
    """

    def __init__(
        self,
        maxHeaderBytes: int = DEFAULT_MAX_HEADER_BYTES,
        maxChunkBytes: int = DEFAULT_MAX_CHUNK_BYTES,
    ) -> None:
        """
        @param maxHeaderBytes: See L{maxHeaderBytes}.
        @param maxChunkBytes: See L{maxChunkBytes}.
        """
        self.maxHeaderBytes = maxHeaderBytes
        self.maxChunkBytes = maxChunkBytes
        self._buffer = bytearray()
        self._state = _State.START
        # Start of the current message in the buffer.
        self._start = 0
        # Next buffer position to scan.
        self._scan = 0
        # Start of the current header line.
        self._lineStart = 0
        self._bodyStart = 0
        self._transactionID: str | None = None
        self._endPattern = b""
        self._method: str | None = None
        self._code = 0
        self._comment: str | None = None
        self._lines: list[bytes] = []
        self._headers: tuple[MSRPHeader, ...] = ()
        self._toPath: tuple[MSRPURI, ...] = ()
        self._fromPath: tuple[MSRPURI, ...] = ()
        self._pathCache: dict[str, tuple[MSRPURI, ...]] = {}
        # Valid header lines seen before (the paths, Content-Type and often
        # Byte-Range repeat for every message of a session): raw bytes to
        # the immutable field, so each distinct line is decoded once.
        self._lineCache: dict[bytes, MSRPHeader] = {}
        # The same for the To-Path and From-Path lines of the fast path:
        # raw bytes to the lower-cased name, the field and the parsed path.
        self._pathLineCache: dict[
            bytes, tuple[str, MSRPHeader, tuple[MSRPURI, ...]]
        ] = {}
        # Method names and header names (that matched _HEADER_RE) seen
        # before, as bytes, to their text.  Like the other caches, they
        # belong to this parser (one connection): what one peer sends does
        # not fill another's.
        self._methodNames: dict[bytes, str] = {}
        self._headerNames: dict[bytes, str] = {}

    @property
    def failed(self) -> bool:
        """
        Whether a fatal framing error happened; the connection must then be
        closed and further input is ignored.
        """
        return self._state is _State.FAILED

    @property
    def bufferedBytes(self) -> int:
        """
        How many received bytes are held, waiting for the rest of a message.
        """
        return len(self._buffer) - self._start

    def feed(self, data: bytes) -> list[MSRPEvent]:
        """
        Parse more of the stream.

        @param data: The bytes received.
        @return: The messages and errors completed by C{data}, in order.
        """
        if self._state is _State.FAILED:
            return []
        self._buffer += data
        events: list[MSRPEvent] = []
        self._run(events, False)
        return events

    @property
    def idle(self) -> bool:
        """
        Whether the parser is between messages and holds no bytes (then
        whoever feeds it may frame the next messages itself, see
        L{feedUntilIdle}).
        """
        return self._state is _State.START and len(self._buffer) == self._start

    def feedUntilIdle(self, data: bytes) -> tuple[list[MSRPEvent], bytes]:
        """
        Parse more of the stream, but only up to the end of the first message
        (or error) completed: the rest is handed back unparsed.

        Feeding the returned rest to L{feed} or L{feedUntilIdle} later gives
        the events L{feed} would have given for all of C{data}.  When the
        first message is not complete, everything is kept and the rest is
        empty.

        @param data: The bytes received.
        @return: The events (in order) and the bytes not parsed.
        """
        if self._state is _State.FAILED:
            return [], b""
        self._buffer += data
        events: list[MSRPEvent] = []
        return events, self._run(events, True)

    def _run(self, events: list[MSRPEvent], once: bool) -> bytes:
        """
        Run the state machine over the buffer.

        @param events: The output list.
        @param once: Stop between messages once an event was found (or a
            message was started) and hand back the bytes not parsed.
        @return: The bytes handed back (C{b""} unless C{once}).
        """
        left = False
        while True:
            state = self._state
            if state is _State.START:
                if not once:
                    self._parseFast(events)
                else:
                    if left or events:
                        rest = bytes(self._buffer[self._start :])
                        self._buffer.clear()
                        self._start = self._scan = 0
                        return rest
                    self._parseFast(events, True)
                    if events:
                        continue
                progressed = self._parseStartLine(events)
            elif state is _State.HEADERS:
                progressed = self._parseHeaders(events)
            elif state is _State.BODY:
                progressed = self._parseBody(events)
            elif state is _State.DISCARD:
                progressed = self._discard()
            else:
                self._buffer.clear()
                self._start = self._scan = 0
                return b""
            left = True
            if not progressed:
                break
        if self._state is _State.START or self._state is _State.DISCARD:
            self._compact()
        return b""

    def _parseFast(self, events: list[MSRPEvent], once: bool = False) -> None:
        """
        Parse the complete, well-formed requests at the front of the buffer
        in one go (the usual traffic), between messages only.

        It stops, changing nothing, at the first message it does not take:
        a response, an incomplete message, anything malformed or over a
        limit, anything unusual.  The state machine then parses that message
        from its start line, so the events are those the state machine
        alone gives for the same bytes; this only takes the shortcut.

        @param events: The output list.
        @param once: Take at most one message.
        """
        start = self._start
        size = len(self._buffer)
        if start >= size:
            return
        # Work on an immutable copy (slices of it need no second copy and
        # hash for the caches), unless that means copying a large buffer.
        buffer: bytes | bytearray
        if size - start <= _SNAPSHOT_SIZE:
            buffer = bytes(self._buffer)
        else:
            buffer = self._buffer
        limit = self.maxHeaderBytes
        maxChunk = self.maxChunkBytes
        lineCache = self._lineCache
        pathLines = self._pathLineCache
        flags = _FLAGS
        append = events.append
        while start < size:
            match = _REQUEST_LINE_RE.match(buffer, start, start + limit)
            if match is None:
                break
            tid, methodBytes = match.groups()
            end = match.end() - 2
            # The header section: up to an empty line, within the limit.  A
            # line in it that could be this transaction's end-line starts
            # with "-", which no valid header line does: the loop below
            # leaves such a message to the state machine.
            blank = buffer.find(b"\r\n\r\n", end, start + limit + 2)
            if blank <= end:
                break
            # The body: up to the first complete end-line.
            endPattern = b"\r\n-------" + tid
            bodyStart = blank + 4
            patternSize = len(endPattern)
            found = buffer.find(endPattern, blank + 2)
            while found >= 0:
                after = found + patternSize
                if after + 3 > size:
                    found = -1
                    break
                if (
                    buffer[after] in flags
                    and buffer[after + 1] == 13
                    and buffer[after + 2] == 10
                ):
                    break
                found = buffer.find(endPattern, found + 1)
            if found < bodyStart or found - bodyStart > maxChunk:
                break
            lines = bytes(buffer[end + 2 : blank]).split(b"\r\n")
            toEntry = pathLines.get(lines[0])
            if toEntry is None:
                toEntry = self._pathLine(lines[0])
            if toEntry is None or toEntry[0] != "to-path" or len(lines) < 2:
                break
            fromEntry = pathLines.get(lines[1])
            if fromEntry is None:
                fromEntry = self._pathLine(lines[1])
            if fromEntry is None or fromEntry[0] != "from-path":
                break
            headers = [toEntry[1], fromEntry[1]]
            for raw in lines[2:]:
                field = lineCache.get(raw)
                if field is None:
                    field = self._headerLine(raw)
                    if field is None:
                        break
                headers.append(field)
            else:
                method = self._methodNames.get(methodBytes)
                if method is None:
                    method = methodBytes.decode("ascii")
                    if len(self._methodNames) < 16:
                        self._methodNames[methodBytes] = method
                append(
                    _newRequest(
                        tid.decode("ascii"),
                        method,
                        toEntry[2],
                        fromEntry[2],
                        tuple(headers),
                        bytes(buffer[bodyStart:found]),
                        flags[buffer[found + patternSize]],
                    )
                )
                start = found + patternSize + 3
                if once:
                    break
                continue
            break
        self._start = self._scan = start

    def headerField(self, raw: bytes) -> MSRPHeader | None:
        """
        Parse one header line as this parser would (and cache it).

        @param raw: The line without its CRLF.
        @return: The field, or L{None} if the parser refuses the line.
        """
        return self._lineCache.get(raw) or self._headerLine(raw)

    def pathField(
        self, raw: bytes
    ) -> tuple[str, MSRPHeader, tuple[MSRPURI, ...]] | None:
        """
        Parse a To-Path or From-Path line as this parser would (and cache
        it).

        @param raw: The line without its CRLF.
        @return: The lower-cased name, the field and the path, or L{None} if
            the line is not a valid path header.
        """
        return self._pathLineCache.get(raw) or self._pathLine(raw)

    def messageEnd(self, buffer: bytes, start: int) -> int:
        """
        Find where the message at C{start} of C{buffer} ends as this parser
        frames it: at the first end-line of its transaction after the start
        line, whatever comes between (a bodiless message ends at an end-line
        among its header lines; a message the parser rejects is skipped up
        to that end-line too).  For whoever frames messages between reads
        while the parser is L{idle}.

        @param buffer: The bytes.
        @param start: The start of the message.
        @return: The position after the end-line; -1 if it is not
            (completely) there yet; -2 if the start line is not one the
            parser can frame on (the parser then fails).
        """
        lineEnd = buffer.find(b"\r\n", start)
        if lineEnd < 0:
            return -1
        if lineEnd + 2 - start > self.maxHeaderBytes:
            return -2
        startLine = _START_RE.match(buffer, start, lineEnd)
        if startLine is None:
            return -2
        pattern = b"\r\n-------" + startLine.group(1)
        size = len(buffer)
        found = buffer.find(pattern, lineEnd)
        while found >= 0:
            after = found + len(pattern)
            if after + 3 > size:
                return -1
            if buffer[after] in _END_FLAGS and buffer[after + 1 : after + 3] == b"\r\n":
                return after + 3
            found = buffer.find(pattern, found + 1)
        return -1

    def wouldWait(self, buffer: bytes, start: int) -> bool:
        """
        Whether this parser, L{idle} and fed the incomplete message at
        C{start} of C{buffer}, would do nothing yet (no event, no error):
        then whoever frames messages may keep the bytes until more arrive.

        It waits for: the start of a start line; or a request line and
        header lines without an empty line or anything that could be an
        end-line, within the header limit.

        @param buffer: The bytes.
        @param start: The start of the message.
        """
        if len(buffer) - start + 2 > self.maxHeaderBytes:
            return False
        lineEnd = buffer.find(b"\r\n", start)
        if lineEnd < 0:
            return buffer[start : start + 5] == _PREFIX[: len(buffer) - start]
        if _REQUEST_LINE_RE.match(buffer, start) is None:
            return False
        return buffer.find(b"\r\n\r\n", lineEnd) < 0 and buffer.find(b"\r\n-", lineEnd) < 0

    def _headerLine(self, raw: bytes) -> MSRPHeader | None:
        """
        Parse one header line for L{_parseFast} (as L{_parseHeaderLines}
        does) and cache it.

        @param raw: The line without its CRLF.
        @return: The field, or L{None} if the line is not valid.
        """
        colon = raw.find(b":")
        names = self._headerNames
        name = names.get(raw[:colon]) if colon > 0 else None
        if (
            name is not None
            and raw[colon + 1 : colon + 2] == b" "
            and raw[colon + 2 : colon + 3] not in _BLANKS
        ):
            # A name seen valid before and one SP before a value that does
            # not start with more blanks: what _HEADER_RE would find.
            try:
                value = raw[colon + 2 :].decode("utf-8")
            except UnicodeDecodeError:
                return None
            if not (value.isascii() and value.isalnum()) and _BAD_TEXT_RE.search(value):
                return None
            field = _newHeader(name, value, " ")
        else:
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                return None
            match = _HEADER_RE.match(line)
            if match is None:
                return None
            name, spacing, value = match.groups()
            if _BAD_TEXT_RE.search(value):
                return None
            field = _newHeader(name, value, spacing)
            if len(names) < _LINE_CACHE_SIZE:
                names[raw[: len(name)]] = name
        if not raw.startswith(_UNCACHED_PREFIX):
            cache = self._lineCache
            if len(cache) >= _LINE_CACHE_SIZE:
                cache.clear()
            cache[raw] = field
        return field

    def _pathLine(
        self, raw: bytes
    ) -> tuple[str, MSRPHeader, tuple[MSRPURI, ...]] | None:
        """
        Parse a To-Path or From-Path line for L{_parseFast} and cache it.

        @param raw: The line without its CRLF.
        @return: The lower-cased name, the field and the path, or L{None} if
            the line is not a valid path header.
        """
        field = self._lineCache.get(raw) or self._headerLine(raw)
        if field is None:
            return None
        lowered = field.name.lower()
        if lowered not in _PATH_HEADERS:
            return None
        try:
            path = self._paths(field.value)
        except MSRPURIError:
            return None
        cache = self._pathLineCache
        if len(cache) >= _PATH_CACHE_SIZE:
            cache.clear()
        entry = cache[raw] = (lowered, field, path)
        return entry

    def _compact(self) -> None:
        """
        Drop the consumed part of the buffer (only between messages or while
        discarding, when no other positions are in use).
        """
        start = self._start
        if start:
            del self._buffer[:start]
            self._scan -= start
            self._start = 0

    def _fail(self, events: list[MSRPEvent], reason: str) -> bool:
        """
        Record a fatal framing error.

        @param events: The output list.
        @param reason: What is wrong.
        @return: C{True} (the state changed).
        """
        events.append(
            MSRPParseError(400, reason, fatal=True, transactionID=self._transactionID)
        )
        self._state = _State.FAILED
        return True

    def _reject(
        self,
        events: list[MSRPEvent],
        code: int,
        reason: str,
        skipFrom: int | None,
        headers: tuple[MSRPHeader, ...] = (),
        toPath: tuple[MSRPURI, ...] | None = None,
        fromPath: tuple[MSRPURI, ...] | None = None,
    ) -> bool:
        """
        Record a recoverable error for the current message.

        @param events: The output list.
        @param code: The MSRP status code.
        @param reason: What is wrong.
        @param skipFrom: Where to start looking for the end-line of this
            transaction (the position of a CRLF), or L{None} if the message
            is already consumed.
        @param headers: The header fields parsed.
        @param toPath: The To-Path, if parsed.
        @param fromPath: The From-Path, if parsed.
        @return: C{True} (the state changed).
        """
        events.append(
            MSRPParseError(
                code,
                reason,
                transactionID=self._transactionID,
                method=self._method,
                toPath=toPath,
                fromPath=fromPath,
                headers=headers,
            )
        )
        if skipFrom is None:
            self._state = _State.START
        else:
            self._state = _State.DISCARD
            self._start = self._scan = skipFrom
        return True

    def _parseStartLine(self, events: list[MSRPEvent]) -> bool:
        """
        Parse a start line.

        @param events: The output list.
        @return: Whether the state changed.
        """
        buffer = self._buffer
        start = self._start
        available = len(buffer) - start
        if available == 0:
            return False
        self._transactionID = None
        self._method = None
        if buffer[start : start + 5] != _PREFIX[:available]:
            return self._fail(events, "expected an MSRP start line")
        end = buffer.find(b"\r\n", max(self._scan, start))
        if end < 0:
            if available > self.maxHeaderBytes:
                return self._fail(events, "start line too long")
            self._scan = max(start, len(buffer) - 1)
            return False
        if end + 2 - start > self.maxHeaderBytes:
            return self._fail(events, "start line too long")
        match = _START_RE.match(buffer, start, end)
        if match is None:
            return self._fail(events, "malformed start line")
        tid = match.group(1)
        self._transactionID = tid.decode("ascii")
        self._endPattern = b"\r\n" + END_LINE_DASHES + tid
        rest = match.group(2)
        self._lines = []
        self._lineStart = self._scan = end + 2
        self._state = _State.HEADERS
        if rest is not None and _METHOD_RE.match(rest):
            self._method = rest.decode("ascii")
            return True
        status = None if rest is None else _STATUS_RE.match(rest)
        if status is None:
            return self._reject(events, 400, "malformed start line", end)
        self._code = int(status.group(1))
        comment = status.group(2)
        if comment is None:
            self._comment = None
            return True
        try:
            self._comment = comment.decode("utf-8")
        except UnicodeDecodeError:
            return self._reject(events, 400, "comment is not UTF-8", end)
        if _BAD_TEXT_RE.search(self._comment):
            return self._reject(events, 400, "control character in comment", end)
        return True

    def _parseHeaders(self, events: list[MSRPEvent]) -> bool:
        """
        Collect header lines up to an empty line or an end-line.

        @param events: The output list.
        @return: Whether the state changed.
        """
        buffer = self._buffer
        start = self._start
        limit = self.maxHeaderBytes
        if self._method is not None and not self._lines:
            # Fast path for a request whose whole header section is here and
            # ends at an empty line: split it at once.  The bound keeps the
            # section within the limit; any line that could be an end-line
            # sends us to the line-by-line loop below, which decides.
            lineStart = self._lineStart
            blank = buffer.find(b"\r\n\r\n", lineStart - 2, start + limit + 2)
            if blank >= 0 and buffer.find(self._endPattern, lineStart - 2, blank) < 0:
                if blank > lineStart:
                    self._lines = bytes(buffer[lineStart:blank]).split(b"\r\n")
                self._bodyStart = blank + 4
                return self._headersDone(events, True, None)
        endLine = self._endPattern[2:]
        endLineLength = len(endLine) + 1
        while True:
            lineStart = self._lineStart
            end = buffer.find(b"\r\n", self._scan)
            if end < 0:
                partial = len(buffer) - lineStart
                if partial and buffer[-1] == 13:
                    # The CR may be the start of the CRLF.
                    partial -= 1
                if partial > endLineLength and lineStart + partial + 2 - start > limit:
                    return self._overflow(events)
                self._scan = max(lineStart, len(buffer) - 1)
                return False
            length = end - lineStart
            if length == 0:
                self._bodyStart = end + 2
                return self._headersDone(events, True, None)
            if (
                length == endLineLength
                and buffer[end - 1] in _FLAGS
                and buffer.startswith(endLine, lineStart)
            ):
                return self._headersDone(events, False, end)
            if end + 2 - start > limit:
                return self._overflow(events)
            self._lines.append(bytes(buffer[lineStart:end]))
            self._lineStart = self._scan = end + 2

    def _overflow(self, events: list[MSRPEvent]) -> bool:
        """
        Reject a message whose header block exceeds L{maxHeaderBytes}.

        @param events: The output list.
        @return: C{True} (the state changed).
        """
        headers, toPath, fromPath, _ = self._parseHeaderLines()
        return self._reject(
            events,
            400,
            f"header block exceeds {self.maxHeaderBytes} bytes",
            self._lineStart - 2,
            headers,
            toPath,
            fromPath,
        )

    def _paths(self, value: str) -> tuple[MSRPURI, ...]:
        """
        Parse a path header value, with a small cache (paths repeat for every
        message of a session).

        @param value: The header value.
        @return: The URIs.
        @raise MSRPURIError: If the value is invalid.
        """
        cache = self._pathCache
        path = cache.get(value)
        if path is None:
            path = parsePath(value)
            if len(cache) >= _PATH_CACHE_SIZE:
                cache.clear()
            cache[value] = path
        return path

    def _parseHeaderLines(
        self,
    ) -> tuple[
        tuple[MSRPHeader, ...],
        tuple[MSRPURI, ...] | None,
        tuple[MSRPURI, ...] | None,
        str | None,
    ]:
        """
        Parse the collected header lines.

        @return: The header fields parsed (up to the first bad one), the
            To-Path and From-Path if parsed, and the reason for rejecting the
            header section or L{None} if it is valid.
        """
        headers: list[MSRPHeader] = []
        toPath: tuple[MSRPURI, ...] | None = None
        fromPath: tuple[MSRPURI, ...] | None = None
        error: str | None = None
        cache = self._lineCache
        for index, raw in enumerate(self._lines):
            field = cache.get(raw)
            if field is None:
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    error = "header field is not UTF-8"
                    break
                match = _HEADER_RE.match(line)
                if match is None:
                    error = "malformed header field"
                    break
                name, spacing, value = match.groups()
                if _BAD_TEXT_RE.search(value):
                    error = f"control character in {name}"
                    break
                field = _newHeader(name, value, spacing)
                if not raw.startswith(_UNCACHED_PREFIX):
                    if len(cache) >= _LINE_CACHE_SIZE:
                        cache.clear()
                    cache[raw] = field
            else:
                name = field.name
                value = field.value
            headers.append(field)
            if index < 2:
                expected = "To-Path" if index == 0 else "From-Path"
                if name.lower() != expected.lower():
                    error = error or f"{expected} must be header field {index + 1}"
                    break
                try:
                    path = self._paths(value)
                except MSRPURIError as e:
                    # Go on to From-Path so that a response can be addressed.
                    error = error or f"malformed {expected}: {e}"
                    continue
                if index == 0:
                    toPath = path
                else:
                    fromPath = path
            if error is not None:
                break
        else:
            if error is not None:
                pass
            elif toPath is None:
                error = "missing To-Path"
            elif fromPath is None:
                error = "missing From-Path"
        return tuple(headers), toPath, fromPath, error

    def _headersDone(
        self, events: list[MSRPEvent], hasBody: bool, endLineEnd: int | None
    ) -> bool:
        """
        Finish the header section.

        @param events: The output list.
        @param hasBody: Whether an empty line (and so a body) follows.
        @param endLineEnd: For a bodiless message, the position of the CRLF
            that ends the end-line.
        @return: C{True} (the state changed).
        """
        headers, toPath, fromPath, error = self._parseHeaderLines()
        skipFrom = self._bodyStart - 2 if hasBody else None
        if endLineEnd is not None:
            self._start = self._scan = endLineEnd + 2
        if error is None and hasBody and self._method is None:
            error = "a response has no body"
        if error is not None:
            return self._reject(
                events, 400, error, skipFrom, headers, toPath, fromPath
            )
        assert toPath is not None and fromPath is not None
        if hasBody:
            self._headers = headers
            self._toPath = toPath
            self._fromPath = fromPath
            self._state = _State.BODY
            self._scan = self._bodyStart - 2
            return True
        assert endLineEnd is not None
        flag = self._buffer[endLineEnd - 1]
        self._emit(events, headers, toPath, fromPath, None, flag)
        return True

    def _emit(
        self,
        events: list[MSRPEvent],
        headers: tuple[MSRPHeader, ...],
        toPath: tuple[MSRPURI, ...],
        fromPath: tuple[MSRPURI, ...],
        body: bytes | None,
        flag: int,
    ) -> None:
        """
        Emit a complete message and get ready for the next one.

        @param events: The output list.
        @param headers: The header fields.
        @param toPath: The To-Path.
        @param fromPath: The From-Path.
        @param body: The body, or L{None}.
        @param flag: The end-line flag byte.
        """
        self._state = _State.START
        tid = self._transactionID
        assert tid is not None
        method = self._method
        if method is not None:
            events.append(
                MSRPRequest(tid, method, toPath, fromPath, headers, body, _FLAGS[flag])
            )
        elif flag != 0x24:
            self._reject(
                events, 400, "a response ends with $", None, headers, toPath, fromPath
            )
        else:
            events.append(
                MSRPResponse(tid, self._code, self._comment, toPath, fromPath, headers)
            )

    def _findEndLine(self) -> tuple[int, int]:
        """
        Look for the end-line of the current transaction from L{_scan}.

        @return: C{(position, flag)} of the CRLF before the end-line and of
            its flag byte, or C{(-1, 0)} if it is not (completely) there yet;
            L{_scan} is then advanced as far as is safe.
        """
        buffer = self._buffer
        pattern = self._endPattern
        size = len(pattern)
        found = buffer.find(pattern, self._scan)
        while found >= 0:
            after = found + size
            if after + 3 > len(buffer):
                self._scan = found
                return -1, 0
            flag = buffer[after]
            if flag in _FLAGS and buffer[after + 1] == 13 and buffer[after + 2] == 10:
                return found, flag
            found = buffer.find(pattern, found + 1)
        self._scan = max(self._scan, len(buffer) - size + 1)
        return -1, 0

    def _parseBody(self, events: list[MSRPEvent]) -> bool:
        """
        Look for the end of the body.

        @param events: The output list.
        @return: Whether the state changed.
        """
        bodyStart = self._bodyStart
        found, flag = self._findEndLine()
        if found < 0:
            if self._scan - bodyStart > self.maxChunkBytes:
                return self._tooLarge(events, self._scan)
            return False
        if found < bodyStart:
            # The empty line is directly followed by the end-line.
            self._start = self._scan = found + len(self._endPattern) + 3
            return self._reject(
                events,
                400,
                "missing CRLF between body and end-line",
                None,
                self._headers,
                self._toPath,
                self._fromPath,
            )
        if found - bodyStart > self.maxChunkBytes:
            self._start = self._scan = found + len(self._endPattern) + 3
            return self._tooLarge(events, None)
        body = bytes(self._buffer[bodyStart:found])
        self._start = self._scan = found + len(self._endPattern) + 3
        self._emit(events, self._headers, self._toPath, self._fromPath, body, flag)
        return True

    def _tooLarge(self, events: list[MSRPEvent], skipFrom: int | None) -> bool:
        """
        Reject a chunk whose body exceeds L{maxChunkBytes} with 413.

        @param events: The output list.
        @param skipFrom: Where to resume looking for the end-line, or L{None}
            if the chunk is already consumed.
        @return: C{True} (the state changed).
        """
        return self._reject(
            events,
            413,
            f"chunk body exceeds {self.maxChunkBytes} bytes",
            skipFrom,
            self._headers,
            self._toPath,
            self._fromPath,
        )

    def _discard(self) -> bool:
        """
        Skip input up to and including the end-line of a rejected message,
        keeping only what could be the start of that end-line.

        @return: Whether the state changed.
        """
        found, _ = self._findEndLine()
        if found < 0:
            self._start = self._scan
            return False
        self._start = self._scan = found + len(self._endPattern) + 3
        self._state = _State.START
        return True


def parseMessage(
    data: bytes,
    maxHeaderBytes: int = DEFAULT_MAX_HEADER_BYTES,
    maxChunkBytes: int = DEFAULT_MAX_CHUNK_BYTES,
) -> MSRPRequest | MSRPResponse:
    """
    Parse exactly one complete message.

    @param data: The bytes of one message, end-line included.
    @param maxHeaderBytes: See L{MSRPParser.maxHeaderBytes}.
    @param maxChunkBytes: See L{MSRPParser.maxChunkBytes}.
    @return: The message.
    @raise MSRPParseError: If C{data} is not exactly one valid message.
    """
    parser = MSRPParser(maxHeaderBytes, maxChunkBytes)
    events = parser.feed(data)
    if len(events) == 1 and parser.bufferedBytes == 0:
        event = events[0]
        if isinstance(event, MSRPParseError):
            raise event
        return event
    for event in events:
        if isinstance(event, MSRPParseError):
            raise event
    if not events:
        raise MSRPParseError(400, "incomplete message")
    raise MSRPParseError(400, "more than one message")
