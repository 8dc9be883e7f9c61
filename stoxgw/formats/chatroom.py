# -*- test-case-name: tests.formats.test_chatroom -*-
"""
What RFC 7701 chat rooms ask of both the native focus (L{stoxgw.focus})
and the gateway's MSRP side (L{stoxgw.interworking}): the C{accept-types}
(section 5.2), the C{a=chatroom} tokens (section 8), and the wrapper of a
SEND, which both check first, before their own rules about senders and
recipients.

Section 8: stoxgw declares C{nickname} and C{private-messages}
(L{CHATROOM_TOKENS}) as focus and as participant; a peer's tokens are read
case-insensitively, and the prose spelling C{nicknames} (sections 7 and 8
use it; the ABNF says C{nickname}; SPEC F.1 item 4) counts as
C{nickname} (L{chatroomTokens}).

RFC 7701 section 5.2: every message in a chat room is C{message/cpim}
(RFC 3862); section 6.3: the switch answers a SEND that is not with 415.
A malformed CPIM body gets 400 (RFC 4975 section 7.2), a C{Require}
naming a header the receiver does not understand 415 (RFC 3862 sections
3.5 and 4.7; L{CPIMError.msrpStatus} says which).  The C{From}, C{To} and
the encapsulated C{Content-Type} are read here, so that a malformed one
is refused like a malformed body instead of failing later.

Sans-IO: standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence

from stoxgw.formats.cpim import (
    CPIM_CONTENT_TYPE,
    CPIMError,
    CPIMMessage,
    CPIMRequireError,
    MediaType,
)

__all__ = [
    "CHATROOM_ACCEPT_TYPES",
    "CHATROOM_TOKENS",
    "Refused",
    "chatroomTokens",
    "takesPrivateMessages",
    "unwrapCPIM",
]

#: The C{accept-types} of a chat-room session, focus or participant:
#: C{message/cpim} only (RFC 7701 section 5.2, R-052, R-054).
CHATROOM_ACCEPT_TYPES = (CPIM_CONTENT_TYPE,)

#: The C{a=chatroom} tokens stoxgw declares (RFC 7701 section 8), as a
#: native room's focus and as the gateway: nicknames and private messages
#: are always on.
CHATROOM_TOKENS = ("nickname", "private-messages")


def chatroomTokens(chatroom: Sequence[str] | None) -> frozenset[str]:
    """
    The C{a=chatroom} tokens of a peer in lower case; RFC 7701's prose
    spelling C{nicknames} read as C{nickname} (SPEC F.1 item 4).
    """
    tokens = {token.lower() for token in chatroom or ()}
    if "nicknames" in tokens:
        tokens.add("nickname")
    return frozenset(tokens)


def takesPrivateMessages(chatroom: Sequence[str] | None) -> bool:
    """
    Whether a peer's C{a=chatroom} tokens declare C{private-messages}
    (RFC 7701 section 8; read as L{chatroomTokens} reads them).
    """
    return "private-messages" in chatroomTokens(chatroom)


class Refused(Exception):
    """
    A SEND refused before anything reached the other side.

    @ivar code: The MSRP status to answer with.
    @ivar reason: Why, for the log.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


def unwrapCPIM(contentType: str, body: bytes) -> CPIMMessage:
    """
    The CPIM message a chat-room SEND carries (see the module docstring).

    @param contentType: The SEND's C{Content-Type}.
    @param body: Its (reassembled) body.
    @raise Refused: 415 (not C{message/cpim}, or a C{Require} not
        understood) or 400 (malformed CPIM, C{From}, C{To} or
        C{Content-Type}).
    """
    try:
        outer = MediaType.parse(contentType).mimeType
    except (CPIMError, ValueError):
        outer = ""
    if outer != CPIM_CONTENT_TYPE:
        raise Refused(415, "not message/cpim (RFC 7701 section 6.3)")
    try:
        cpim = CPIMMessage.parse(body)
        _ = (cpim.fromAddress, cpim.toAddresses, cpim.contentType)
    except CPIMRequireError as e:
        raise Refused(e.msrpStatus, e.reason) from None
    except CPIMError as e:
        raise Refused(e.msrpStatus, f"malformed CPIM: {e.reason}") from None
    except ValueError as e:
        raise Refused(400, f"malformed CPIM: {e}") from None
    return cpim
