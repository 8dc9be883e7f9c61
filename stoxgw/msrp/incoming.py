# -*- test-case-name: tests.msrp.test_session,tests.msrp.test_fastpath -*-
"""
What an MSRP session hands to the layer above for each message it receives
(RFC 4975 section 7.1.1, R-146).
"""

from __future__ import annotations

from dataclasses import dataclass

from stoxgw.msrp.message import FailureReport, MSRPHeader
from stoxgw.msrp.uri import MSRPURI

__all__ = ["IncomingMessage"]


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """
    A complete received message (all chunks reassembled, R-146).

    @ivar messageID: The Message-ID.
    @ivar contentType: The Content-Type of the first chunk.
    @ivar body: The whole body.
    @ivar headers: The header fields of the first chunk (the one starting at
        byte 1).
    @ivar size: The total length (the Byte-Range total).
    @ivar fromPath: The sender's path (where REPORTs go).
    @ivar toPath: The To-Path (own URI).
    @ivar successReport: Whether the sender asked for a success REPORT.
    @ivar failureReport: The sender's Failure-Report value (default applied).
    """

    messageID: str
    contentType: str
    body: bytes
    headers: tuple[MSRPHeader, ...]
    size: int
    fromPath: tuple[MSRPURI, ...]
    toPath: tuple[MSRPURI, ...]
    successReport: bool
    failureReport: FailureReport

    def header(self, name: str) -> str | None:
        """
        Look up a header of the first chunk case-insensitively.

        @param name: The header name.
        @return: The first value, or L{None}.
        """
        lowered = name.lower()
        for field in self.headers:
            if field.name.lower() == lowered:
                return field.value
        return None
