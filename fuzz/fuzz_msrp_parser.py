"""
Fuzz L{stoxgw.msrp.parser.MSRPParser} (RFC 4975 section 9 framing, with the
MSRP URI and header parsers behind it), and what the protocol layer builds
from its events: responses (L{responseTo}, L{responseToError}) and reports
(L{reportFor}).

Input: one byte choosing how the stream is cut (see L{_harness.pieces}),
one byte choosing the limits (small ones reach the 400/413 paths), then
the stream.

The parser never raises: errors are events.  Also crashes here: events
that depend on how the stream is cut, or on whether it is fed with C{feed}
or C{feedUntilIdle} (the module promises neither does); a message whose
typed accessors raise anything but L{MSRPParseError}; a message that does
not serialize and parse back to itself; a response or report we would send
that does not parse.

Seeds: the RFC 4975/4976/7701 messages of C{tests/fixtures/msrp}, alone
and two in a row.
"""

from __future__ import annotations

import atheris

from _harness import fixtures, main, pieces

with atheris.instrument_imports(include=["stoxgw"]):
    from stoxgw.msrp.message import MSRPParseError, MSRPRequest, MSRPResponse
    from stoxgw.msrp.parser import MSRPParser, parseMessage
    from stoxgw.msrp.reports import reportFor, responseTo, responseToError


def describe(event: object) -> object:
    """
    A comparable summary of an event (errors compare by identity).
    """
    if isinstance(event, MSRPParseError):
        return (
            "error",
            event.code,
            event.reason,
            event.fatal,
            event.transactionID,
            event.method,
            event.toPath,
            event.fromPath,
            event.headers,
        )
    return event


def accessors(message: MSRPRequest | MSRPResponse | MSRPParseError) -> None:
    """
    Every typed accessor: a value or L{MSRPParseError}.
    """
    for name in (
        "messageID",
        "byteRange",
        "successReport",
        "failureReport",
        "wantsSuccessReport",
        "effectiveFailureReport",
        "status",
        "contentType",
        "useNickname",
        "usePath",
        "wwwAuthenticate",
        "authorization",
        "authenticationInfo",
        "expires",
    ):
        try:
            getattr(message, name)
        except MSRPParseError:
            pass


def reparse(data: bytes) -> MSRPRequest | MSRPResponse:
    """
    What we send must parse (with the default limits).
    """
    return parseMessage(data)


def check(event: object) -> None:
    """
    Use an event as the protocol layer would.
    """
    if isinstance(event, MSRPParseError):
        accessors(event)
        response = responseToError(event)
        if response is not None:
            reparse(response.serialize())
        return
    assert isinstance(event, (MSRPRequest, MSRPResponse)), event
    accessors(event)
    again = reparse(event.serialize())
    assert again == event, (event, again)
    if isinstance(event, MSRPRequest):
        if event.method != "REPORT":
            for code in (200, 413, 481):
                reparse(responseTo(event, code).serialize())
        if event.method == "SEND" and event.header("Message-ID") is not None:
            try:
                report = reportFor(event, 200)
            except MSRPParseError:
                pass
            else:
                reparse(report.serialize())


def feedUntilIdle(parser: MSRPParser, data: bytes) -> list[object]:
    """
    Feed with L{MSRPParser.feedUntilIdle} until nothing is handed back.
    """
    events: list[object] = []
    while True:
        found, data = parser.feedUntilIdle(data)
        events.extend(found)
        if not data:
            return events


def testOneInput(data: bytes) -> None:
    """
    Feed whole, cut, and one message at a time; compare; use the events.
    """
    if len(data) < 2:
        return
    cut, limits, stream = data[0], data[1], data[2:]
    sizes = (
        200 if limits & 1 else 16384,
        64 if limits & 2 else 1 << 20,
    )
    whole = MSRPParser(*sizes).feed(stream)
    expected = [describe(event) for event in whole]
    if cut:
        parser = MSRPParser(*sizes)
        split: list[object] = []
        for piece in pieces(stream, cut):
            split.extend(describe(event) for event in parser.feed(piece))
        assert split == expected, (split, expected)
    parser = MSRPParser(*sizes)
    idle: list[object] = []
    for piece in pieces(stream, cut):
        idle.extend(describe(event) for event in feedUntilIdle(parser, piece))
    assert idle == expected, (idle, expected)
    for event in whole:
        check(event)


def seeds() -> list[bytes]:
    """
    The RFC messages, alone and in pairs, whole and cut.
    """
    messages = fixtures("msrp/*.msrp")
    result = []
    for index, message in enumerate(messages):
        result.append(b"\x00\x00" + message)
        result.append(b"\x05\x03" + message + messages[(index + 1) % len(messages)])
    for snippet in fixtures("msrp/*.snippet"):
        result.append(b"\x01\x00" + snippet)
    return result


if __name__ == "__main__":
    main(testOneInput, seeds)
