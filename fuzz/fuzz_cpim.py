"""
Fuzz L{stoxgw.formats.cpim.CPIMMessage.parse}: the C{message/cpim} bodies
(RFC 3862) of MSRP SENDs from SIP users and focuses (RFC 7701, RFC 7702).

Input: one byte choosing the C{understood} extension headers (the
C{Require} check), then the body.

Clean rejection: L{CPIMError} (L{CPIMRequireError} is one).  A body that
parses was validated, so none of its typed accessors (addresses, DateTime,
Subject, NS, Require, Content-Type) raises; it serializes to the bytes it
came from; and a message rebuilt from what was read (as the gateway
re-encodes messages it forwards) parses to the same values.

Seeds: the RFC 3862, RFC 7701 and RFC 7702 bodies of
C{tests/fixtures/formats}.
"""

from __future__ import annotations

import atheris

from _harness import fixtures, main

with atheris.instrument_imports(include=["stoxgw"]):
    from stoxgw.formats.cpim import CPIMError, CPIMMessage

#: Extension headers a caller may understand (RFC 3862 section 6).
UNDERSTOOD = [("mid:MessageFeatures@id.foo.com", "VitalMessageOption")]


def testOneInput(data: bytes) -> None:
    """
    Parse, read everything, serialize, rebuild.
    """
    if not data:
        return
    understood = UNDERSTOOD if data[0] & 1 else []
    body = data[1:]
    try:
        message = CPIMMessage.parse(body, understood)
    except CPIMError:
        return
    assert message.toBytes() == body
    sender = message.fromAddress
    recipients = message.toAddresses
    copies = message.ccAddresses
    stamp = message.dateTime
    subjects = message.subjects
    message.namespaces, message.required
    contentType = message.contentType
    contentType.mimeType, contentType.parameter("charset")
    message.contentHeader("Content-ID")
    for address in (sender, *recipients, *copies):
        if address is not None:
            address.toHeaderValue(), address.bareURI, address.uriParameters, address.gruu
    try:
        rebuilt = CPIMMessage.build(
            contentType=message.contentHeader("Content-Type") or "",
            body=message.body,
            fromAddress=sender,
            toAddresses=recipients,
            ccAddresses=copies,
            dateTime=stamp,
            subjects=subjects,
        )
    except ValueError:
        # Documented: a value that cannot be written as a valid header.
        return
    again = CPIMMessage.parse(rebuilt.toBytes())
    assert (again.fromAddress, again.toAddresses, again.ccAddresses) == (
        sender,
        recipients,
        copies,
    ), (message, again)
    assert again.dateTime == stamp and again.subjects == subjects, (message, again)
    assert again.body == message.body


def seeds() -> list[bytes]:
    """
    The CPIM fixtures.
    """
    return [bytes([flag]) + body for body in fixtures("formats/*.cpim") for flag in (0, 1)]


if __name__ == "__main__":
    main(testOneInput, seeds)
