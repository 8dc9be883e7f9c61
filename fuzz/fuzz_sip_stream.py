"""
Fuzz L{stoxgw.sip.framing.SIPStreamParser}: SIP over a stream (RFC 3261
section 18.3, Content-Length framing; RFC 5626 CRLF keep-alives), as
C{SIPTransport} feeds it from TCP and TLS connections.

Input: one byte choosing how the rest is cut (see L{_harness.pieces}),
one byte of options (C{expectPongs}, C{requireMaxForwards}, a small
message limit), then the stream.

The framer never raises: every problem is an event.  Also crashes here:
an event from its catch-all (C{"Internal parser error"}, which only a bug
reaches), and events that depend on how the stream was cut (the same
stream fed whole and in pieces must give the same events, since TCP may
cut it anywhere).

Seeds: the RFC 4475 messages, each alone, twice in a row, and with
keep-alives between.
"""

from __future__ import annotations

import atheris

from _harness import fixtures, main, pieces

with atheris.instrument_imports(include=["stoxgw"]):
    from stoxgw.sip.framing import KeepAlive, SIPStreamParser
    from stoxgw.sip.message import SIPParseError, SIPRequest, SIPResponse


def describe(event: object) -> object:
    """
    A comparable summary of an event.
    """
    if isinstance(event, SIPRequest):
        return ("request", event.method, event.uri, event.headers, event.body)
    if isinstance(event, SIPResponse):
        return ("response", event.status, event.reason, event.headers, event.body)
    if isinstance(event, SIPParseError):
        assert not event.reason.startswith("Internal parser error"), event.reason
        return ("error", event.status, event.reason, event.fatal, event.method)
    assert isinstance(event, KeepAlive), event
    return event


def feed(options: int, parts: list[bytes]) -> list[object]:
    """
    Feed a new parser; return the events in order, summarized.
    """
    parser = SIPStreamParser(
        256 if options & 4 else 65536,
        expectPongs=bool(options & 1),
        requireMaxForwards=bool(options & 2),
    )
    events: list[object] = []
    for part in parts:
        events.extend(describe(event) for event in parser.feed(part))
    return events


def testOneInput(data: bytes) -> None:
    """
    Feed the stream whole and cut; compare.
    """
    if len(data) < 2:
        return
    cut, options, stream = data[0], data[1], data[2:]
    whole = feed(options, [stream])
    if cut:
        split = feed(options, pieces(stream, cut))
        # Past the size limit, where the cut falls decides between 513 and
        # the error of the oversized head: only the small limit allows that.
        assert split == whole or options & 4, (split, whole)


def seeds() -> list[bytes]:
    """
    The RFC 4475 messages in a few stream layouts.
    """
    result = []
    for message in fixtures("sip/rfc4475/*.dat"):
        result.append(b"\x00\x02" + message)
        result.append(b"\x07\x00" + message + b"\r\n\r\n" + message)
        result.append(b"\x01\x03\r\n" + message + b"\r\n")
    return result


if __name__ == "__main__":
    main(testOneInput, seeds)
