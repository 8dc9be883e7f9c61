# -*- test-case-name: tests.formats.test_iscomposing -*-
"""
RFC 3994 C{application/im-iscomposing+xml}: the composing indication that
SIP/MSRP peers send and that maps to XEP-0085 chat states (RFC 7573 §6;
SPEC R-120, R-225, table E.6).

L{IsComposing.parse} is strict about structure (root element and namespace,
one C{state}, valid C{lastactive} and C{refresh}) and refuses DTDs outright,
so no entity can be declared or expanded (billion laughs, external
entities); documents are size-bounded. As RFC 3994 §3.5 requires, a
well-formed state token other than C{active}/C{idle} reads as idle, and
elements in other namespaces are ignored.

Sans-IO: standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from stoxgw.formats._xml import checkXMLOctets
from stoxgw.formats.cpim import formatDateTime, parseDateTime

#: RFC 3994 §6: the document namespace.
ISCOMPOSING_NAMESPACE = "urn:ietf:params:xml:ns:im-iscomposing"

#: RFC 3994 §8.1: the media type.
ISCOMPOSING_CONTENT_TYPE = "application/im-iscomposing+xml"

#: Largest document accepted, in octets.
MAX_DOCUMENT_SIZE = 8192

#: RFC 3994 §3.3: the receiver's refresh time-out when C{refresh} is absent.
DEFAULT_REFRESH = 120

_TAG = "{" + ISCOMPOSING_NAMESPACE + "}"
_KNOWN = ("state", "lastactive", "contenttype", "refresh")
_STATE_TOKEN_RE = re.compile(r"[A-Za-z0-9._\-]+")
_REFRESH_RE = re.compile(r"\+?[0-9]{1,9}")


class IsComposingError(Exception):
    """
    An isComposing document is malformed (RFC 3994 §6).

    @ivar reason: what is wrong, for logs and error replies.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ComposingState(Enum):
    """
    RFC 3994 §3.1: the composer's state.
    """

    ACTIVE = "active"
    IDLE = "idle"


@dataclass(frozen=True, slots=True)
class IsComposing:
    """
    An isComposing status message (RFC 3994 §3.4-§3.5).

    @ivar state: active (composing) or idle.
    @ivar lastActive: when content was last added or edited; aware.
    @ivar contentType: what is being composed (C{text}, C{text/html},
        C{audio}).
    @ivar refresh: seconds until the sender refreshes an active state
        (positive).
    """

    state: ComposingState
    lastActive: datetime | None = None
    contentType: str | None = None
    refresh: int | None = None

    def __post_init__(self) -> None:
        """
        @raise ValueError: C{refresh} is not positive, C{lastActive} is
            naive, or C{contentType} is empty.
        """
        if self.refresh is not None and self.refresh <= 0:
            raise ValueError("refresh must be a positive number of seconds")
        if self.lastActive is not None and self.lastActive.utcoffset() is None:
            raise ValueError("lastActive must be timezone-aware")
        if self.contentType is not None and not self.contentType.strip():
            raise ValueError("contentType must not be empty")

    @property
    def effectiveRefresh(self) -> int:
        """
        How long a receiver keeps an active state without news (RFC 3994
        §3.3): L{refresh}, or 120 seconds.
        """
        return DEFAULT_REFRESH if self.refresh is None else self.refresh

    @classmethod
    def parse(cls, data: bytes) -> IsComposing:
        """
        Parse an C{application/im-iscomposing+xml} document.

        @raise IsComposingError: too large, not UTF-8, a DTD, not
            well-formed, wrong root element or namespace, a missing,
            repeated or empty C{state}, bad C{lastactive}/C{refresh}, an
            unknown element in the RFC 3994 namespace or without one, or
            text outside the elements.
        """
        checkXMLOctets(
            data,
            maxSize=MAX_DOCUMENT_SIZE,
            name="isComposing",
            encodingRule="RFC 3994 §6",
            error=IsComposingError,
        )
        try:
            parser = ElementTree.XMLParser()
            parser.feed(data)
            root = parser.close()
        except ElementTree.ParseError as e:
            raise IsComposingError(f"not well-formed XML: {e}") from None
        if root.tag != _TAG + "isComposing":
            raise IsComposingError(
                f"root element is not isComposing in {ISCOMPOSING_NAMESPACE}: "
                f"{root.tag}"
            )
        if (root.text or "").strip():
            raise IsComposingError("text directly inside isComposing")
        values: dict[str, str] = {}
        for child in root:
            if (child.tail or "").strip():
                raise IsComposingError("text directly inside isComposing")
            if not child.tag.startswith("{"):
                raise IsComposingError(f"element without a namespace: {child.tag}")
            if not child.tag.startswith(_TAG):
                continue
            local = child.tag[len(_TAG) :]
            if local not in _KNOWN:
                raise IsComposingError(
                    f"unknown element in {ISCOMPOSING_NAMESPACE}: {local}"
                )
            if local in values:
                raise IsComposingError(f"more than one {local} element")
            if len(child):
                raise IsComposingError(f"{local} must contain text only")
            values[local] = (child.text or "").strip()
        return cls(
            _parseState(values.get("state")),
            _parseLastActive(values.get("lastactive")),
            _parseContentType(values.get("contenttype")),
            _parseRefresh(values.get("refresh")),
        )

    def toBytes(self) -> bytes:
        """
        The canonical document, laid out as in RFC 3994 §5 (without its
        schema location hint), elements in schema order, CRLF line ends.
        """
        lines = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<isComposing xmlns="{ISCOMPOSING_NAMESPACE}">',
            f"  <state>{self.state.value}</state>",
        ]
        if self.lastActive is not None:
            stamp = formatDateTime(self.lastActive)
            lines.append(f"  <lastactive>{stamp}</lastactive>")
        if self.contentType is not None:
            lines.append(f"  <contenttype>{escape(self.contentType)}</contenttype>")
        if self.refresh is not None:
            lines.append(f"  <refresh>{self.refresh}</refresh>")
        lines.append("</isComposing>")
        return "\r\n".join(lines).encode("utf-8")


def _parseState(text: str | None) -> ComposingState:
    if text is None:
        raise IsComposingError("missing state element")
    if not _STATE_TOKEN_RE.fullmatch(text):
        raise IsComposingError(f"invalid state: {text!r}")
    if text == ComposingState.ACTIVE.value:
        return ComposingState.ACTIVE
    # RFC 3994 §3.5: other state tokens MUST be treated as idle.
    return ComposingState.IDLE


def _parseLastActive(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parseDateTime(text)
    except ValueError:
        raise IsComposingError(
            f"invalid lastactive (need a date-time with offset): {text!r}"
        ) from None


def _parseContentType(text: str | None) -> str | None:
    if text is None:
        return None
    if not text:
        raise IsComposingError("empty contenttype")
    return text


def _parseRefresh(text: str | None) -> int | None:
    if text is None:
        return None
    if not _REFRESH_RE.fullmatch(text) or int(text) <= 0:
        raise IsComposingError(f"refresh must be a positive integer: {text!r}")
    return int(text)
