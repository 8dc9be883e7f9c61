# -*- test-case-name: tests.chat.test_session -*-
"""
What the layer above sees of a chat session: its states
(L{ChatState}, L{CHAT_TRANSITIONS}), how it ended (L{EndCause},
L{ChatEnd}, L{ChatSessionError}), the handler it reports to
(L{IChatSessionHandler}) and the connection policy (L{ChatSettings}) with
the defaults.  The session itself is L{stoxgw.chat.base.ChatSession}.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from zope.interface import Interface

from stoxgw.msrp.session import IncomingMessage
from stoxgw.sip.msrpmedia import MSRPMedia

if TYPE_CHECKING:  # pragma: no cover
    from stoxgw.chat.base import ChatSession

#: Seconds to wait for the MSRP session to be bound once the dialog exists.
DEFAULT_CONNECT_TIMEOUT = 30.0

#: Seconds after our 200 for the ACK and the MSRP connection to arrive.
DEFAULT_ESTABLISH_TIMEOUT = 10.0

#: Seconds of silence on a ready session before a keepalive SEND.
DEFAULT_KEEPALIVE_INTERVAL = 30.0

#: Seconds a keepalive SEND waits for its answer (RFC 4975 section 7.1.1:
#: 30 s for any transaction).
DEFAULT_KEEPALIVE_TIMEOUT = 30.0

#: Default C{accept-types}: CPIM (RFC 7701 section 5.2) and plain text.
DEFAULT_ACCEPT_TYPES = ("message/cpim", "text/plain")

#: Default C{accept-wrapped-types} (RFC 7702 section 5.1, example F2).
DEFAULT_ACCEPT_WRAPPED_TYPES = ("text/plain", "text/html")


class ChatState(Enum):
    """
    The life of a L{ChatSession}.

    @cvar ANSWERING: Incoming: accepted by the layer above, the answer is
        being built.
    @cvar INVITING: Outgoing: the INVITE waits for its final response.
    @cvar CONNECTING: The dialog exists; waiting for its confirmation
        and/or the MSRP binding.
    @cvar READY: Dialog confirmed and MSRP session bound.
    @cvar ENDED: Final.
    """

    ANSWERING = "answering"
    INVITING = "inviting"
    CONNECTING = "connecting"
    READY = "ready"
    ENDED = "ended"


#: Allowed transitions of L{ChatState}.
CHAT_TRANSITIONS: dict[ChatState, frozenset[ChatState]] = {
    ChatState.ANSWERING: frozenset({ChatState.CONNECTING, ChatState.ENDED}),
    ChatState.INVITING: frozenset({ChatState.CONNECTING, ChatState.ENDED}),
    ChatState.CONNECTING: frozenset({ChatState.READY, ChatState.ENDED}),
    ChatState.READY: frozenset({ChatState.ENDED}),
    ChatState.ENDED: frozenset(),
}


class EndCause(Enum):
    """
    Why a chat session ended.

    @cvar LOCAL: L{ChatSession.end} was called.
    @cvar REMOTE_BYE: The peer sent BYE.
    @cvar REJECTED: Our INVITE got a non-2xx final response (or a local
        408/503).
    @cvar NEGOTIATION: The SDP offer or answer was unusable (488).
    @cvar MSRP_TIMEOUT: The MSRP session was not bound in time.
    @cvar MSRP_FAILED: The MSRP connection failed or was lost, or the
        relay was not ready.
    @cvar DIALOG_FAILED: The dialog ended on its own (no ACK, peer gone).
    @cvar SESSION_EXPIRED: The dialog's session timer expired (RFC 4028
        section 10: no refresh, or a refresh the peer did not answer).
    @cvar SHUTDOWN: The UA shut down.
    """

    LOCAL = "local"
    REMOTE_BYE = "remote BYE"
    REJECTED = "rejected"
    NEGOTIATION = "negotiation failed"
    MSRP_TIMEOUT = "no MSRP connection"
    MSRP_FAILED = "MSRP session failed"
    DIALOG_FAILED = "dialog failed"
    SESSION_EXPIRED = "session expired"
    SHUTDOWN = "shutdown"


@dataclass(frozen=True, slots=True)
class ChatEnd:
    """
    How a chat session ended.

    @ivar cause: The L{EndCause}.
    @ivar status: The SIP status involved (the rejection of our INVITE,
        the one we answered or put in the BYE's Reason), or L{None}.
    @ivar text: A human-readable detail.
    """

    cause: EndCause
    status: int | None = None
    text: str = ""


class ChatSessionError(Exception):
    """
    A chat session ended before it was ready.

    @ivar end: The L{ChatEnd}.
    """

    def __init__(self, end: ChatEnd) -> None:
        super().__init__(end)
        self.end = end

    @property
    def status(self) -> int | None:
        """
        The SIP status, if any (for the status/condition table above us).
        """
        return self.end.status

    def __str__(self) -> str:
        status = f" ({self.end.status})" if self.end.status is not None else ""
        text = f": {self.end.text}" if self.end.text else ""
        return f"chat session ended, {self.end.cause.value}{status}{text}"


class IChatSessionHandler(Interface):
    """
    The layer above one chat session (an interworking participant).
    """

    def chatStarted(session: ChatSession) -> None:
        """
        The session exists (called first, once): incoming, just before the
        answer is sent; outgoing, before the INVITE is sent.
        """

    def messageReceived(session: ChatSession, message: IncomingMessage) -> Any:
        """
        A complete MSRP message arrived.

        @return: As L{IMSRPSessionHandler.messageReceived}: L{None} or 200,
            an MSRP error code, or a L{Deferred} firing with one.
        """

    def nicknameRequested(session: ChatSession, nickname: str) -> Any:
        """
        The peer sent NICKNAME (RFC 7701 section 7.1).

        @return: The response code or a L{Deferred} firing with it.
        """

    def chatEnded(session: ChatSession, reason: ChatEnd) -> None:
        """
        The session ended; called exactly once per session.
        """


class IChatUpdateHandler(Interface):
    """
    What an L{IChatSessionHandler} may also provide: it then hears when
    the peer changes the session with a re-offer that was taken (RFC 4975
    section 8.4, R-156), such as other C{a=chatroom} tokens (RFC 7701
    section 8, R-094: dropping the line turns RFC 7701 off).
    """

    def chatUpdated(session: ChatSession, previous: MSRPMedia) -> None:
        """
        The peer's MSRP stream is now C{session.remoteMedia}; C{previous}
        is the one it replaced.
        """


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """
    Connection policy shared by both directions.

    @ivar connectTimeout: Seconds for the MSRP session to be bound once the
        dialog exists.
    @ivar reachable: Whether peers can connect to our MSRP listener (not
        behind a NAT): offer C{actpass} and answer C{actpass} with
        C{passive} (RFC 6135 section 4.2.2, R-165).  Ignored (treated as
        unreachable) when the endpoint uses a relay (R-166).
    @ivar useSetup: Whether to send C{a=setup} (RFC 6135, R-164).
    @ivar byeGrace: Seconds a ready session whose MSRP connection was lost
        waits for the peer's BYE before ending as an MSRP failure (with its
        own BYE): a peer hanging up closes its MSRP connection and sends its
        BYE on another socket, and the close usually arrives first.
    @ivar establishTimeout: Seconds after our 200 to an incoming INVITE
        within which both the ACK and the MSRP connection must have come
        (the smaller of this and C{connectTimeout} applies); else the
        session fails and the layer above hears C{chatEnded} at once.
    @ivar keepaliveInterval: Seconds without anything received on a ready
        session before it probes the peer with a bodiless SEND (RFC 4975
        section 7.1.1); 0 turns the probe off.
    @ivar keepaliveTimeout: Seconds the probe waits for its answer before
        the session fails.
    """

    connectTimeout: float = DEFAULT_CONNECT_TIMEOUT
    reachable: bool = True
    useSetup: bool = True
    byeGrace: float = 2.0
    establishTimeout: float = DEFAULT_ESTABLISH_TIMEOUT
    keepaliveInterval: float = DEFAULT_KEEPALIVE_INTERVAL
    keepaliveTimeout: float = DEFAULT_KEEPALIVE_TIMEOUT
