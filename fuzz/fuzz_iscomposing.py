"""
Fuzz L{stoxgw.formats.iscomposing.IsComposing.parse}: the RFC 3994
C{application/im-iscomposing+xml} documents SIP users send as MSRP
messages (chat states, RFC 7702 section 6.6).

Clean rejection: L{IsComposingError}.  A parsed document serializes
(L{IsComposing.toBytes}) to one that parses to an equal value.

Seeds: the RFC 3994 section 5 documents of C{tests/fixtures/formats}.
"""

from __future__ import annotations

import atheris

from _harness import fixtures, main

with atheris.instrument_imports(include=["stoxgw"]):
    from stoxgw.formats.iscomposing import IsComposing, IsComposingError


def testOneInput(data: bytes) -> None:
    """
    Parse; serialize and parse again.
    """
    try:
        document = IsComposing.parse(data)
    except IsComposingError:
        return
    document.effectiveRefresh
    again = IsComposing.parse(document.toBytes())
    assert again == document, (document, again)


def seeds() -> list[bytes]:
    """
    The isComposing fixtures.
    """
    return [data for data in fixtures("formats/*.xml") if b"im-iscomposing" in data]


if __name__ == "__main__":
    main(testOneInput, seeds)
