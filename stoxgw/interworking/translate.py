# -*- test-case-name: tests.interworking.test_siptoxmpp,tests.interworking.test_xmpptosip -*-
"""
What both directions of RFC 7702 do to message content: unwrap and check
the CPIM (RFC 3862) of a received SEND, wrap text or an isComposing
indication (RFC 3994) in CPIM for a SEND, and map chat states between
XEP-0085 and isComposing (SPEC E.6, RFC 7573 section 6).

Refusals are L{Refused} exceptions carrying the MSRP status to answer
(RFC 7701 section 6.3, RFC 4975 section 7.2); the callers decide what
else to say about them.  The wrapper checks (L{unwrapCPIM}) and
L{Refused} live in L{stoxgw.formats.chatroom}, shared with the native
focus.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from twisted.internet.interfaces import IReactorTime

from stoxgw.formats.chatroom import CHATROOM_ACCEPT_TYPES, Refused, unwrapCPIM
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.formats.iscomposing import (
    ISCOMPOSING_CONTENT_TYPE,
    ComposingState,
    IsComposing,
    IsComposingError,
)
from stoxgw.msrp.session import IncomingMessage
from stoxgw.xmpp.stanzas import ChatStateNotification

#: The CPIM-wrapped content type of text (RFC 7702 Tables 4 and 5).
TEXT_PLAIN = "text/plain;charset=UTF-8"
#: The gateway's C{accept-types}, as focus toward SIP users and as
#: participant of a SIP room: CPIM only (RFC 7701 section 5.2).
ACCEPT_TYPES = CHATROOM_ACCEPT_TYPES
#: What the gateway translates inside CPIM (R-215: only what is mapped):
#: text, and isComposing (R-225, RFC 3994).
ACCEPT_WRAPPED_TYPES = ("text/plain", ISCOMPOSING_CONTENT_TYPE)
#: The outer content type of every SEND of a chat room (RFC 7701 5.2).
CPIM = "message/cpim"

_UTC = datetime.timezone.utc

__all__ = [
    "ACCEPT_TYPES",
    "ACCEPT_WRAPPED_TYPES",
    "CPIM",
    "TEXT_PLAIN",
    "ISCOMPOSING_CONTENT_TYPE",
    "Refused",
    "Content",
    "now",
    "unwrap",
    "wrap",
    "wrapText",
    "wrapComposing",
    "RoomCopies",
    "chatStateForComposing",
    "composingForChatState",
]


@dataclass(frozen=True, slots=True)
class Content:
    """
    The checked content of a received C{message/cpim} SEND.

    @ivar cpim: The parsed CPIM message (addresses, DateTime).
    @ivar text: The text, for C{text/plain}; L{None} for a composing
        indication.
    @ivar composing: The isComposing indication, for
        C{application/im-iscomposing+xml}; L{None} for text.
    """

    cpim: CPIMMessage
    text: str | None = None
    composing: IsComposing | None = None


def now(clock: IReactorTime) -> datetime.datetime:
    """
    The clock's time, whole seconds, UTC (a CPIM DateTime, R-175).
    """
    return datetime.datetime.fromtimestamp(int(clock.seconds()), _UTC)


def unwrap(message: IncomingMessage) -> Content:
    """
    Check and unwrap a SEND of a chat room: C{message/cpim} (else 415,
    RFC 7701 section 6.3) wrapping C{text/plain} in a known charset or an
    isComposing document (else 415 / 400).

    @raise Refused: With the MSRP status.
    """
    cpim = unwrapCPIM(message.contentType, message.body)
    inner = cpim.contentType.mimeType
    if inner == ISCOMPOSING_CONTENT_TYPE:
        try:
            return Content(cpim, composing=IsComposing.parse(cpim.body))
        except IsComposingError as e:
            raise Refused(400, f"malformed isComposing: {e}") from None
    if inner != "text/plain":
        raise Refused(415, f"{inner} is not translated")
    try:
        text = cpim.body.decode(cpim.contentType.parameter("charset") or "utf-8")
    except (LookupError, UnicodeDecodeError):
        raise Refused(400, "undecodable text") from None
    return Content(cpim, text=text)


def wrap(
    contentType: str,
    body: bytes,
    sender: CPIMAddress,
    recipients: Sequence[CPIMAddress],
    stamp: datetime.datetime,
) -> bytes:
    """
    A C{message/cpim} body (RFC 3862, R-169 to R-175).
    """
    return CPIMMessage.build(
        contentType=contentType,
        body=body,
        fromAddress=sender,
        toAddresses=tuple(recipients),
        dateTime=stamp,
    ).toBytes()


def wrapText(
    text: str,
    sender: CPIMAddress,
    recipient: CPIMAddress,
    stamp: datetime.datetime,
) -> bytes:
    """
    Text in CPIM (RFC 7702 Tables 4 and 5).
    """
    return wrap(TEXT_PLAIN, text.encode("utf-8"), sender, (recipient,), stamp)


class RoomCopies:
    """
    The CPIM body of the message a room is fanning out, shared by the
    room's SIP occupants.

    A MUC sends a groupchat message once per occupant, so the gateway
    receives one copy per SIP occupant of the room, one after the other.
    Said to the room, the message is the same C{message/cpim} body for
    every one of them: From the sender's in-room identity, To the room URI,
    the same DateTime (R-207, R-216).  The first copy builds the body, the
    others take it while their key (sender nick, text, DateTime) is the
    last one's.  Private messages (To the user) never come here.

    One instance per room, shared by its occupants' handlers; it keeps one
    body, the last.
    """

    __slots__ = ("_key", "_payload", "__weakref__")

    def __init__(self) -> None:
        self._key: Hashable = None
        self._payload = b""

    def payload(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        """
        The body of the room message C{key} names: the one built for the
        previous copy when C{key} is equal to its key, else C{build()}
        (which then becomes the shared body).

        @param key: Everything besides the room that the body depends on.
        @raise ValueError: What C{build} raises; nothing is kept then.
        """
        if key is not None and key == self._key:
            return self._payload
        payload = build()
        self._key, self._payload = key, payload
        return payload


def wrapComposing(
    state: ComposingState,
    sender: CPIMAddress,
    recipient: CPIMAddress,
    stamp: datetime.datetime,
) -> bytes:
    """
    An isComposing indication (RFC 3994 section 3.4) in CPIM.
    """
    document = IsComposing(state, contentType="text/plain")
    return wrap(ISCOMPOSING_CONTENT_TYPE, document.toBytes(), sender, (recipient,), stamp)


#: SPEC E.6, RFC 3994 -> XEP-0085.
_CHAT_STATE_FOR_COMPOSING = {
    ComposingState.ACTIVE: ChatStateNotification.COMPOSING,
    ComposingState.IDLE: ChatStateNotification.ACTIVE,
}

#: SPEC E.6, XEP-0085 -> RFC 3994; C{gone} has no groupchat mapping
#
_COMPOSING_FOR_CHAT_STATE = {
    ChatStateNotification.COMPOSING: ComposingState.ACTIVE,
    ChatStateNotification.ACTIVE: ComposingState.IDLE,
    ChatStateNotification.INACTIVE: ComposingState.IDLE,
    ChatStateNotification.PAUSED: ComposingState.IDLE,
}


def chatStateForComposing(state: ComposingState) -> ChatStateNotification:
    """
    The XEP-0085 state for an isComposing state (SPEC E.6).
    """
    return _CHAT_STATE_FOR_COMPOSING[state]


def composingForChatState(state: ChatStateNotification) -> ComposingState | None:
    """
    The isComposing state for an XEP-0085 state, L{None} for C{gone}
    (never relayed in a room, R-202).
    """
    return _COMPOSING_FOR_CHAT_STATE.get(state)
