"""
Fuzz L{stoxgw.sip.message.parseDatagram}: one SIP message per datagram
(RFC 3261 section 18.3), with the start line, header section, URI and
header-value parsers behind it.

Clean rejection: L{SIPParseError}.  Beyond not crashing, a message that
parses must keep its promises: the accessors of the headers that
validation checked (Via, From, To, Call-ID, CSeq, Contact, Route,
Record-Route, Content-Type) do not raise, the message serializes and
parses again to the same start line and Call-ID, and a request's response
(RFC 3261 section 8.2.6) serializes and parses.  A rejection's error
response, when it can be built, serializes.

Seeds: the RFC 4475 torture messages (C{tests/fixtures/sip/rfc4475}).
"""

from __future__ import annotations

import atheris

from _harness import fixtures, main

with atheris.instrument_imports(include=["stoxgw"]):
    from stoxgw.sip.message import (
        SIPParseError,
        SIPRequest,
        SIPResponse,
        parseDatagram,
    )


def checkMessage(message: SIPRequest | SIPResponse, requireMaxForwards: bool) -> None:
    """
    What the transaction and dialog layers rely on after a message parsed.
    """
    message.callID
    message.cseq
    message.fromAddress
    message.toAddress
    message.vias
    message.topVia
    message.contact
    message.recordRoute
    message.route
    message.contentType
    again = parseDatagram(
        message.serialize(), requireMaxForwards=requireMaxForwards
    )
    assert again.callID == message.callID, (again, message)
    if isinstance(message, SIPRequest):
        assert isinstance(again, SIPRequest) and again.method == message.method
        assert again.uri == message.uri, (again.uri, message.uri)
        for status in (100, 200, 486):
            response = message.makeResponse(status, toTag="fuzz1")
            parseDatagram(response.serialize())
    else:
        assert isinstance(again, SIPResponse) and again.status == message.status


def testOneInput(data: bytes) -> None:
    """
    Parse one datagram; without the Max-Forwards requirement (RFC 2543
    peers) again if that is what it lacked.
    """
    for requireMaxForwards in (True, False):
        try:
            message = parseDatagram(data, requireMaxForwards=requireMaxForwards)
        except SIPParseError as error:
            response = error.makeResponse(toTag="fuzz1")
            if response is not None:
                response.serialize()
            if "Max-Forwards" in error.reason:
                continue
            return
        checkMessage(message, requireMaxForwards)
        return


def seeds() -> list[bytes]:
    """
    The RFC 4475 messages.
    """
    return fixtures("sip/rfc4475/*.dat")


if __name__ == "__main__":
    main(testOneInput, seeds)
