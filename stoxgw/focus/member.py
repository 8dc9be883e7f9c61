# -*- test-case-name: tests.focus.test_room -*-
"""
A participant's session in a native chat room: the SIP and MSRP side of
what L{stoxgw.focus.room.ChatRoom} decides.

A L{Member} is one chat session (RFC 7701 section 4, R-051): the
L{IChatSessionHandler} of its INVITE dialog and MSRP session, which hands
SENDs and NICKNAMEs to its room and tells it when the session is ready or
gone, and which carries out the room's decisions on the wire: a
C{message/cpim} copy queued on the MSRP session (with the status it got),
a failure REPORT (RFC 4975 section 7.1.4), congestion (RFC 7701 section
6.4), a BYE with an RFC 3326 C{Reason}.  The room keeps the state (who is
listed, nicknames, subject, history, the conference document); the
L{Member} keeps what its peer declared (C{a=chatroom} tokens, accept
types, Contact) and how it left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from stoxgw.chat.session import (
    ChatEnd,
    ChatSession,
    ChatState,
    EndCause,
    IChatSessionHandler,
    IChatUpdateHandler,
)
from stoxgw.formats.chatroom import chatroomTokens
from stoxgw.formats.conferenceinfo import DisconnectionMethod
from stoxgw.formats.cpim import CPIM_CONTENT_TYPE
from stoxgw.msrp.session import IncomingMessage, MSRPSendError, mediaTypeMatches
from stoxgw.sip.dialog import DialogState
from stoxgw.sip.headers import Reason
from stoxgw.sip.msrpmedia import MSRPMedia
from stoxgw.sip.uri import SIPURI, quoteString

if TYPE_CHECKING:
    from stoxgw.focus.room import ChatRoom

__all__ = [
    "CONGESTION_LIMIT",
    "Member",
    "canonicalAOR",
    "reasonText",
]

#: Messages waiting on one session beyond which it counts as congested
#: (RFC 7701 section 6.4, R-078).
CONGESTION_LIMIT = 64


def canonicalAOR(uri: object) -> str:
    """
    An address of record as text: a SIP URI without parameters, headers
    or password, the host in lower case (RFC 3261 section 19.1.4 compares
    hosts case-insensitively); other URIs as they are.
    """
    if isinstance(uri, SIPURI):
        return SIPURI(uri.scheme, uri.host.lower(), uri.user, port=uri.port).serialize()
    return str(uri)


def reasonText(end: ChatEnd) -> str | None:
    """
    An RFC 3326 Reason value describing how a session ended (for
    C{<disconnection-info><reason>}), or L{None}.
    """
    if end.status is None and not end.text:
        return None
    params: list[tuple[str, str | None]] = []
    if end.status is not None:
        params.append(("cause", str(end.status)))
    if end.text:
        params.append(("text", quoteString(end.text)))
    return Reason("SIP", tuple(params)).serialize()


@implementer(IChatSessionHandler, IChatUpdateHandler)
class Member:
    """
    One chat session in a room (the RFC 7701 switch's view of a
    participant's MSRP session).

    @ivar room: The room.
    @ivar aor: Who it is (L{canonicalAOR} of its identity).
    @ivar contact: Its endpoint URI (the session's Contact).
    @ivar tokens: The C{a=chatroom} tokens it declared (R-059).
    @ivar acceptTypes: Its C{accept-types}.
    @ivar acceptWrappedTypes: Its C{accept-wrapped-types}.
    @ivar dialedOut: Whether the room called it (RFC 4579 dial-out).
    @ivar nickname: Its nickname (RFC 7700-enforced), or L{None}.
    @ivar chat: Its chat session, once it exists.
    @ivar listed: Whether it is in the room (session ready, not gone).
    @ivar ended: Whether its session ended.
    @ivar joinedAt: When it was listed.
    @ivar mediaID: The id of its C{<media>} element.
    @ivar disconnection: How it is leaving, once it is.
    @ivar disconnectionReason: The RFC 3326 reason, if any.
    """

    _log = Logger()

    def __init__(
        self,
        room: ChatRoom,
        aor: str,
        contact: str,
        *,
        tokens: frozenset[str] = frozenset(),
        acceptTypes: tuple[str, ...] = (),
        acceptWrappedTypes: tuple[str, ...] = (),
        dialedOut: bool = False,
    ) -> None:
        self.room = room
        self.aor = aor
        self.contact = contact
        self.tokens = tokens
        self.acceptTypes = acceptTypes
        self.acceptWrappedTypes = acceptWrappedTypes
        self.dialedOut = dialedOut
        self.nickname: str | None = None
        self.chat: ChatSession | None = None
        self.listed = False
        self.ended = False
        self.joinedAt = room.now()
        self.mediaID = str(next(room.mediaIDs))
        self.disconnection: DisconnectionMethod | None = None
        self.disconnectionReason: str | None = None

    def __repr__(self) -> str:
        return f"<Member {self.label} in {self.room.uri}>"

    @property
    def label(self) -> str:
        """
        The nickname, or the AOR without one (for logs).
        """
        return self.nickname if self.nickname is not None else self.aor

    @property
    def privateMessages(self) -> bool:
        """
        Whether it declared C{private-messages} (RFC 7701 section 8).
        """
        return "private-messages" in self.tokens

    def acceptsWrapped(self, contentType: str) -> bool:
        """
        Whether its SDP accepts a type inside CPIM (RFC 7701 section 6.1,
        RFC 4975 section 8.6: C{accept-types} or C{accept-wrapped-types});
        a peer that lists neither accepts everything.
        """
        types = self.acceptTypes + self.acceptWrappedTypes
        return not types or mediaTypeMatches(contentType, types)

    @property
    def congested(self) -> bool:
        """
        Whether its session has more than L{CONGESTION_LIMIT} messages
        waiting (RFC 7701 section 6.4).
        """
        msrp = self.chat.msrp if self.chat is not None else None
        return msrp is not None and msrp.pendingSends > CONGESTION_LIMIT

    def deliver(self, body: bytes) -> Deferred[int]:
        """
        Queue a C{message/cpim} copy on its session.

        @return: Fires with 200 once the copy was accepted (or no response
            was wanted), else with the MSRP status of the failure (481 for
            a session that is gone); never fails.
        """
        chat = self.chat
        if chat is None or chat.ended:
            return succeed(481)

        def failed(reason: Failure) -> int:
            error = reason.value
            self._log.info(
                "Copy to {nick} in {room} failed: {error}",
                nick=self.label,
                room=self.room.uri,
                error=reason.getErrorMessage(),
            )
            if isinstance(error, MSRPSendError) and error.code >= 400:
                return error.code
            return 481

        d = chat.sendMessage(CPIM_CONTENT_TYPE, body)
        return d.addCallbacks(lambda _: 200, failed)

    def reportFailure(self, message: IncomingMessage, code: int) -> None:
        """
        Send a failure REPORT for a message answered 200 earlier (RFC 4975
        section 7.1.4; nothing with C{Failure-Report: no}).
        """
        msrp = self.chat.msrp if self.chat is not None else None
        if msrp is not None:
            msrp.sendFailureReport(message, code)

    def hangUp(self, cause: int, text: str) -> Deferred[None]:
        """
        End the session with BYE and C{Reason: SIP;cause=CAUSE;text=TEXT}
        (RFC 3326), or CANCEL/rejection while it is being set up.

        @return: Fires once the BYE is answered (or failed); never fails.
        """
        chat = self.chat
        if chat is None or chat.ended:
            return succeed(None)
        dialog = chat.dialog
        if (
            chat.state is ChatState.READY
            and dialog is not None
            and dialog.state is not DialogState.TERMINATED
        ):
            reason = reasonText(ChatEnd(EndCause.LOCAL, cause, text))
            assert reason is not None
            bye: Deferred[Any] = dialog.bye([("Reason", reason)])
            return bye.addBoth(lambda _: None)
        chat.end(text, cause)
        return succeed(None)

    # -- IChatSessionHandler ---------------------------------------------

    def chatStarted(self, session: ChatSession) -> None:
        """
        The session exists: the room lists us once it is ready.
        """
        self.chat = session
        session.whenReady().addCallbacks(
            lambda _: self.room.memberReady(self), lambda _: None
        )

    def declared(self, media: MSRPMedia) -> None:
        """
        Take what the member's MSRP stream declares: its C{a=chatroom}
        tokens (RFC 7701 section 8) and the types it accepts.
        """
        self.tokens = chatroomTokens(media.chatroom)
        self.acceptTypes = media.acceptTypes
        self.acceptWrappedTypes = media.acceptWrappedTypes

    def chatUpdated(self, session: ChatSession, previous: MSRPMedia) -> None:
        """
        The member re-offered (RFC 4975 section 8.4): what it declared now
        counts (R-094: without C{a=chatroom}, no private messages reach
        it, RFC 7701 section 8).
        """
        if session.remoteMedia is not None:
            self.declared(session.remoteMedia)

    def messageReceived(self, session: ChatSession, message: IncomingMessage) -> Any:
        """
        A SEND: see L{ChatRoom.sendReceived}.
        """
        return self.room.sendReceived(self, message)

    def nicknameRequested(self, session: ChatSession, nickname: str) -> Any:
        """
        A NICKNAME: see L{ChatRoom.nicknameRequested}.
        """
        return self.room.nicknameRequested(self, nickname)

    def chatEnded(self, session: ChatSession, reason: ChatEnd) -> None:
        """
        The session ended: see L{ChatRoom.memberEnded}.
        """
        self.room.memberEnded(self, reason)
