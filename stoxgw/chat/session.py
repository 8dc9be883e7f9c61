# -*- test-case-name: tests.chat.test_session -*-
"""
MSRP chat sessions: one INVITE dialog joined to one MSRP session (what
sipsimple's session and chat stream gave), the API in one import.

Both directions of RFC 7702 use them:

 - L{ChatAcceptor} (L{stoxgw.chat.acceptor}) is the UA's INVITE handler:
   it asks an L{IChatOfferHandler} about each INVITE, then
   L{IncomingChat.accept} answers the SDP offer (RFC 3264, RFC 4975
   section 8, RFC 6135 C{a=setup}) as the focus of RFC 7702 section 6 or a
   plain chat endpoint;
 - L{ChatInitiator.startChat} (L{stoxgw.chat.initiator}) offers an MSRP
   stream toward a focus (RFC 7702 section 5) and L{OutgoingChat} connects
   per the answer.

Both kinds are a L{ChatSession} (L{stoxgw.chat.base}): its life, liveness
and ending are shared; its states, endings, handler interface and settings
are in L{stoxgw.chat.model}, the SDP helpers in L{stoxgw.chat.offeranswer}.
"""

from __future__ import annotations

from stoxgw.chat.acceptor import (
    AcceptChat,
    ChatAcceptor,
    ChatDecision,
    ChatOffer,
    IChatOfferHandler,
    IncomingChat,
    RejectChat,
)
from stoxgw.chat.base import ChatSession
from stoxgw.chat.initiator import ChatInitiator, ChatOfferOptions, OutgoingChat
from stoxgw.chat.model import (
    CHAT_TRANSITIONS,
    DEFAULT_ACCEPT_TYPES,
    DEFAULT_ACCEPT_WRAPPED_TYPES,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_ESTABLISH_TIMEOUT,
    DEFAULT_KEEPALIVE_INTERVAL,
    DEFAULT_KEEPALIVE_TIMEOUT,
    ChatEnd,
    ChatSessionError,
    ChatSettings,
    ChatState,
    EndCause,
    IChatSessionHandler,
    IChatUpdateHandler,
)

__all__ = [
    "AcceptChat",
    "CHAT_TRANSITIONS",
    "ChatAcceptor",
    "ChatDecision",
    "ChatEnd",
    "ChatInitiator",
    "ChatOffer",
    "ChatOfferOptions",
    "ChatSession",
    "ChatSessionError",
    "ChatSettings",
    "ChatState",
    "DEFAULT_ACCEPT_TYPES",
    "DEFAULT_ACCEPT_WRAPPED_TYPES",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_ESTABLISH_TIMEOUT",
    "DEFAULT_KEEPALIVE_INTERVAL",
    "DEFAULT_KEEPALIVE_TIMEOUT",
    "EndCause",
    "IChatOfferHandler",
    "IChatSessionHandler",
    "IChatUpdateHandler",
    "IncomingChat",
    "OutgoingChat",
    "RejectChat",
]
