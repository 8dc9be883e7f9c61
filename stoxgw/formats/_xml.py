# -*- test-case-name: tests.formats.test_conferenceinfo,tests.formats.test_iscomposing -*-
"""
The octet checks that the XML formats (L{stoxgw.formats.conferenceinfo},
L{stoxgw.formats.iscomposing}) run on a received document before any XML
parser sees it: a size bound, UTF-8 only, and no DTD at all, so that no
entity can be declared or expanded (billion laughs, external entities).

Sans-IO: standard library only.
"""

from __future__ import annotations

import re
from typing import Callable

_DTD_RE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_ENCODING_RE = re.compile(rb"""\A\s*<\?xml[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")


def checkXMLOctets(
    data: bytes,
    *,
    maxSize: int,
    name: str,
    encodingRule: str,
    error: Callable[[str], Exception],
) -> None:
    """
    Refuse a document that is too large, contains NUL octets, has a DTD or
    an entity declaration, declares an encoding other than UTF-8, or does
    not decode as UTF-8.

    @param data: the document, as received.
    @param maxSize: the largest document accepted, in octets.
    @param name: the document's name in the error texts (C{"isComposing"}).
    @param encodingRule: the reference that requires UTF-8
        (C{"RFC 3994 §6"}).
    @param error: builds the exception raised, from its reason.
    """
    if len(data) > maxSize:
        raise error(f"{name} document too large")
    if b"\x00" in data:
        # XML never contains NUL; UTF-16/32 without a byte-order mark is
        # ASCII and NULs: it would pass the UTF-8 check, and expat would
        # decode it, hiding a DTD from the search below.
        raise error(f"NUL octets: {name} must be UTF-8")
    if _DTD_RE.search(data):
        raise error("DTDs and entity declarations are not accepted")
    encoding = _ENCODING_RE.match(data)
    if encoding is not None and encoding.group(1).lower() not in (b"utf-8", b"utf8"):
        raise error(f"{name} must be UTF-8 ({encodingRule})")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{name} document is not UTF-8") from None
