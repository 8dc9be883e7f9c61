# -*- test-case-name: tests.interworking.test_xmpptosip -*-
"""
Direction A of RFC 7702 (section 5): an XMPP user enters a SIP/MSRP chat
room through the gateway ("Gateway A", SPEC C.1).

L{XMPPToSIP} is the L{IRoomBackend} of the room domain's
L{MUCService<stoxgw.xmpp.room.MUCService>}: toward XMPP the gateway is the
MUC room, toward the SIP conference focus one ordinary SIP/MSRP
participant per XMPP user.  One L{XMPPParticipant} (the chat session's
handler) per XMPP user (bare JID) and room; several sessions (resources)
of the user share it and its nick.

What this first slice does:

  - join presence to C{room@<room domain>/nick}: the room JID maps to the
    focus URI (L{focusURIForRoomJID}; an L{AddressError} becomes its
    condition), the room is created in the MUC service if needed, INVITE
    to the focus (From the user's bare JID mapped by RFC 7247 section 6.5,
    C{message/cpim} with C{text/plain} wrapped, C{a=chatroom:nickname
    private-messages}), then NICKNAME with the nick; only then the join is
    accepted (R-209's mirror).  A failed INVITE becomes
    L{stanzaErrorForSIPEntryFailure}; a refused NICKNAME
    L{stanzaErrorForMSRPStatus} (425 -> C{conflict}) and the chat ends;
  - groupchat -> CPIM SEND (To the room URI, From the user); the MUC
    service reflects only after the MSRP 200 (R-212), an MSRP failure
    becomes L{stanzaErrorForMSRPStatus} to the sender;
  - private messages -> SEND with CPIM To C{<room;gr=nick>} (RFC 7702
    section 5.5.2), offered only when the focus answered with
    C{private-messages} (else the room refuses them with
    C{feature-not-implemented});
  - SENDs from the focus: CPIM To the user -> private message, otherwise
    groupchat; the sender's nick is the C{gr} of the CPIM From (else its
    formal name, else its user part); a C{DateTime} older than
    L{HISTORY_AGE} becomes a XEP-0203 delay.  A sender not yet in the
    roster is added as a participant first: a simple stand-in for the
    conference event package (R-213), so the XMPP user sees who speaks;
  - nick change -> NICKNAME;
  - the last session leaving -> BYE; the focus ending the chat -> the
    occupant is removed with 307 (BYE), 332 (shutdown) or 333 (MSRP or
    dialog failure) per L{mucStatusForTermination} (SPEC E.5, R-218).

Not done here: the conference event package (SUBSCRIBE/NOTIFY: roster,
leaves, subject), the BYE's C{Reason} (the chat layer does not pass it up:
a focus BYE is always 307), checking C{isfocus} and the C{nickname} token
of the answer, a GRUU Contact (the UA's own Contact is used), keeping the
dialog after a refused nick (SPEC C.1.2 "better"), invitations (REFER),
chat states and presence changes (not sent to the focus).  With several
XMPP users in one room, each has its own chat, and the focus sends every
message on each: groupchat from the focus is taken from the oldest leg
only, and messages from the nicks of XMPP users served here (already
reflected by the room) are skipped.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error
from zope.interface import implementer

from stoxgw.chat.session import (
    ChatEnd,
    ChatInitiator,
    ChatSession,
    ChatSessionError,
    EndCause,
    IChatSessionHandler,
)
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.interworking.addressing import (
    AddressError,
    SIPAddress,
    focusURIForRoomJID,
    jidToSIP,
    parseSIPIdentity,
)
from stoxgw.interworking.errors import (
    MSRPMethod,
    MUCStatus,
    Termination,
    mucStatusForSIPBye,
    mucStatusForTermination,
    stanzaErrorForMSRPStatus,
    stanzaErrorForSIPEntryFailure,
)
from stoxgw.interworking.translate import Refused, now, unwrap, wrapText
from stoxgw.msrp.session import IncomingMessage, MSRPSendError
from stoxgw.rooms.model import (
    DEFAULT_HISTORY_SIZE,
    HistoryEntry,
    HistoryRequest,
    Participant,
    RemovalReason,
    Room,
    RoomError,
    RoomSettings,
)
from stoxgw.rooms.nicks import InvalidNickname, comparisonKey
from stoxgw.sip.uri import NameAddr, SIPURI
from stoxgw.xmpp.room import IRoomBackend, JoinAccepted, MUCService, mucError

#: What we accept from the focus (RFC 7701 section 5.2: CPIM).
ACCEPT_TYPES = ("message/cpim",)
#: What we translate inside CPIM.
ACCEPT_WRAPPED_TYPES = ("text/plain",)
#: The C{a=chatroom} tokens we offer (RFC 7701 section 8).
CHATROOM_TOKENS = ("nickname", "private-messages")
#: Messages whose CPIM DateTime is older than this many seconds are shown
#: with a XEP-0203 delay (history replayed by the focus).
HISTORY_AGE = 60.0

#: The removal reason of the room side per E.5 status code.
_REMOVAL = {
    MUCStatus.KICKED: RemovalReason.KICKED,
    MUCStatus.SHUTDOWN: RemovalReason.SHUTDOWN,
    MUCStatus.TECHNICAL_ERROR: RemovalReason.ERROR,
}

_UTC = datetime.timezone.utc


class IXMPPToSIP(IRoomBackend):
    """
    The Direction A interface (RFC 7702 section 5): the room domain's
    backend.
    """


def _bare(jid: str) -> str:
    return jid.split("/", 1)[0]


def _stanzaError(condition: str, errorType: str) -> error.StanzaError:
    return error.StanzaError(condition, errorType)  # type: ignore[no-untyped-call]


def _terminationStatus(end: ChatEnd) -> MUCStatus | None:
    """
    The E.5 status code of the own unavailable presence when the SIP side
    ended the chat, or L{None} when we ended it (a leave).
    """
    if end.cause is EndCause.LOCAL:
        return None
    if end.cause is EndCause.REMOTE_BYE:
        return mucStatusForSIPBye(end.status)
    if end.cause is EndCause.SHUTDOWN:
        return mucStatusForTermination(Termination.SHUTDOWN)
    return mucStatusForTermination(Termination.TECHNICAL_FAILURE)


@implementer(IChatSessionHandler)
class XMPPParticipant:
    """
    One XMPP user in one SIP room: the chat session's handler.

    @ivar bridge: The owning L{XMPPToSIP}.
    @ivar roomJID: The room's bare JID.
    @ivar user: The user's bare JID.
    @ivar focus: The focus (room) URI.
    @ivar address: The user's SIP address of record (CPIM From).
    @ivar nick: The nick in the room.
    @ivar sessions: The user's full JIDs in the room (or joining).
    @ivar session: The chat session, once started.
    @ivar joined: Whether the focus took the nick (the join completed).
    @ivar privateMessages: Whether the focus offered C{private-messages}.
    """

    _log = Logger()

    def __init__(
        self,
        bridge: XMPPToSIP,
        roomJID: str,
        user: str,
        focus: SIPAddress,
        address: SIPAddress,
        nick: str,
    ) -> None:
        self.bridge = bridge
        self.roomJID = roomJID
        self.user = user
        self.focus = focus
        self.address = address
        self.nick = nick
        self.sessions: list[str] = []
        self.session: ChatSession | None = None
        self.joined = False
        self.leaving = False
        self.privateMessages = False
        self.waiting: list[Deferred[JoinAccepted | None]] = []

    def __repr__(self) -> str:
        return f"<XMPPParticipant {self.nick} {self.user} in {self.roomJID}>"

    # -- toward the focus ----------------------------------------------------

    def cpim(self, body: str, to: SIPAddress) -> bytes:
        """
        A C{message/cpim} body from the user (RFC 7702 Table 4).
        """
        return wrapText(
            body,
            CPIMAddress(self.address.uri()),
            CPIMAddress(to.uri()),
            now(self.bridge.clock),
        )

    def send(self, body: str, to: SIPAddress) -> Deferred[None]:
        """
        SEND a message; fire once the switch said 200, or fail with the
        E.3 stanza error.
        """
        session = self.session
        if session is None or not self.joined:
            return fail(mucError("not-acceptable"))
        d = session.sendMessage("message/cpim", self.cpim(body, to))

        def sent(_: object) -> None:
            return None

        def failed(reason: Failure) -> Failure:
            if not isinstance(reason.value, MSRPSendError):
                return reason
            code = reason.value.code
            if code < 400:
                # no MSRP status: the session is gone or not usable
                code = 408 if code == 0 else code
            condition, errorType = stanzaErrorForMSRPStatus(code, MSRPMethod.SEND)
            self._log.info(
                "SEND to {roomJID} refused with {code}: {error}",
                roomJID=self.roomJID,
                code=reason.value.code,
                error=reason.value.reason,
            )
            return Failure(_stanzaError(condition, errorType))  # type: ignore[no-untyped-call]

        return d.addCallbacks(sent, failed)

    def sendNickname(self, nick: str) -> Deferred[str]:
        """
        NICKNAME (RFC 7702 sections 5.2 and 5.6): fire with the nick, or
        fail with the E.3 stanza error (425 -> C{conflict}).
        """
        session = self.session
        if session is None:
            return fail(mucError("not-acceptable"))

        def taken(_: object) -> str:
            self.nick = nick
            return nick

        def refused(reason: Failure) -> Failure:
            if not isinstance(reason.value, MSRPSendError):
                return reason
            code = reason.value.code if reason.value.code >= 400 else 408
            condition, errorType = stanzaErrorForMSRPStatus(code, MSRPMethod.NICKNAME)
            self._log.info(
                "NICKNAME {nick} in {roomJID} refused with {code}",
                nick=nick,
                roomJID=self.roomJID,
                code=reason.value.code,
            )
            return Failure(_stanzaError(condition, errorType))  # type: ignore[no-untyped-call]

        return session.sendNickname(nick).addCallbacks(taken, refused)

    def end(self, text: str) -> None:
        """
        Leave: BYE (RFC 7702 section 5.8).
        """
        self.leaving = True
        if self.session is not None:
            self.session.end(text)

    # -- IChatSessionHandler ---------------------------------------------------

    def chatStarted(self, session: ChatSession) -> None:
        """
        The session exists (before the INVITE is sent).
        """
        self.session = session

    def messageReceived(self, session: ChatSession, message: IncomingMessage) -> Any:
        """
        A SEND from the focus: to the room (SPEC C.1.3 step 5, C.1.4 step 4).

        @return: 200, or an MSRP error code for what cannot be translated.
        """
        try:
            content = unwrap(message)
        except Refused as e:
            return self._refuse(e.code, e.reason)
        if content.text is None:
            # Not offered to the focus (ACCEPT_WRAPPED_TYPES).
            return self._refuse(415, "isComposing is not translated toward XMPP users yet")
        cpim, text = content.cpim, content.text
        nick = self._senderNick(cpim.fromAddress)
        if nick is None:
            return self._refuse(400, "no sender nick in the CPIM From")
        current = datetime.datetime.fromtimestamp(self.bridge.clock.seconds(), _UTC)
        stamp = cpim.dateTime
        delayed = stamp is not None and (current - stamp).total_seconds() > HISTORY_AGE
        if stamp is None:
            stamp = current
        try:
            if self._isPrivate(cpim):
                self.bridge.rooms.privateMessageReceived(
                    self.roomJID,
                    nick,
                    self.nick,
                    text,
                    timestamp=stamp if delayed else None,
                )
            else:
                self.bridge.groupchatFromFocus(
                    self, nick, text, stamp, delayed, message.messageID
                )
        except (InvalidNickname, KeyError, RoomError) as e:
            return self._refuse(400, str(e))
        return 200

    def _refuse(self, code: int, reason: str) -> int:
        self._log.warn(
            "SEND from the focus of {roomJID} refused with {code}: {error}",
            roomJID=self.roomJID,
            code=code,
            error=reason,
        )
        return code

    @staticmethod
    def _senderNick(sender: CPIMAddress | None) -> str | None:
        """
        The sender's nick: the C{gr} of the CPIM From (R-207), else its
        formal name, else its user part.
        """
        if sender is None:
            return None
        try:
            address = parseSIPIdentity(sender.uri)
        except AddressError:
            return sender.formalName or None
        return address.gr or sender.formalName or address.user

    def _isPrivate(self, cpim: CPIMMessage) -> bool:
        """
        Whether the CPIM To names this user rather than the room.
        """
        for recipient in cpim.toAddresses:
            try:
                address = parseSIPIdentity(recipient.uri)
            except AddressError:
                continue
            if address.aor == self.address.aor:
                return True
            if address.aor == self.focus.aor and address.gr is not None:
                return comparisonKey(address.gr) == comparisonKey(self.nick)
        return False

    def nicknameRequested(self, session: ChatSession, nickname: str) -> Any:
        """
        The focus does not send NICKNAME to a participant: 501.
        """
        return 501

    def chatEnded(self, session: ChatSession, reason: ChatEnd) -> None:
        """
        The chat ended: if the SIP side ended it after the join, remove
        the occupant with 307/332/333 (R-218).
        """
        self.bridge._forget(self)
        if not self.joined or self.leaving:
            return
        self.joined = False
        status = _terminationStatus(reason)
        if status is None:
            return
        text = reason.cause.value + (f": {reason.text}" if reason.text else "")
        self._log.info(
            "{nick} removed from {roomJID} by the SIP side: {error}",
            nick=self.nick,
            roomJID=self.roomJID,
            error=text,
        )
        try:
            self.bridge.rooms.occupantRemoved(
                self.roomJID, self.nick, _REMOVAL[status], text
            )
        except (KeyError, RoomError):
            pass
        self.bridge._dropRoomIfEmpty(self.roomJID)


@implementer(IXMPPToSIP)
class XMPPToSIP:
    """
    Gateway A (RFC 7702 section 5).

    @ivar clock: Time source (CPIM DateTime).
    @ivar initiator: Starts the chats toward the focuses.
    @ivar roomDomain: The gateway's room domain (C{[xmpp] room_domain}).
    @ivar participants: The XMPP users in SIP rooms, by (room, bare JID).
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        initiator: ChatInitiator,
        roomDomain: str,
        historySize: int = DEFAULT_HISTORY_SIZE,
    ) -> None:
        """
        @param historySize: messages each room keeps for joining XMPP users
            (C{[gateway] history_size}).
        """
        self.clock = clock
        self.initiator = initiator
        self.roomDomain = roomDomain
        self.historySize = historySize
        self._rooms: MUCService | None = None
        self.participants: dict[tuple[str, str], XMPPParticipant] = {}

    def useRooms(self, rooms: MUCService) -> None:
        """
        Use C{rooms} (whose backend is this object) for the XMPP side.
        """
        self._rooms = rooms

    @property
    def rooms(self) -> MUCService:
        """
        The MUC service.
        """
        assert self._rooms is not None, "useRooms() first"
        return self._rooms

    def _participant(self, roomJID: str, realJID: str) -> XMPPParticipant | None:
        return self.participants.get((roomJID, _bare(realJID)))

    def _forget(self, participant: XMPPParticipant) -> None:
        key = (participant.roomJID, participant.user)
        if self.participants.get(key) is participant:
            del self.participants[key]

    def _dropRoomIfEmpty(self, roomJID: str) -> None:
        """
        The room stays hosted while somebody is in it or joining.
        """
        if any(room == roomJID for room, _ in self.participants):
            return
        if self.rooms.getRoom(roomJID) is not None:
            self.rooms.destroyRoom(roomJID)

    def groupchatFromFocus(
        self,
        participant: XMPPParticipant,
        nick: str,
        body: str,
        stamp: datetime.datetime,
        delayed: bool,
        messageID: str | None,
    ) -> None:
        """
        A groupchat message the focus sent on C{participant}'s chat: show
        it once (oldest leg only), unless it comes from an XMPP user served
        here (the room reflected it already).
        """
        roomJID = participant.roomJID
        legs = [p for (room, _), p in self.participants.items() if room == roomJID]
        if not legs or legs[0] is not participant:
            return
        local = {comparisonKey(n) for n in self.rooms.occupantNicks(roomJID)}
        if comparisonKey(nick) in local:
            return
        room = self.rooms.getRoom(roomJID)
        if room is None:
            raise KeyError(roomJID)
        if nick not in room:
            self.rooms.participantJoined(roomJID, Participant(nick=nick))
        self.rooms.groupChatReceived(
            roomJID, HistoryEntry(nick, body, stamp, messageID=messageID), delayed
        )

    # -- IRoomBackend ----------------------------------------------------------

    def joinRequested(
        self,
        roomJID: str,
        nick: str,
        realJID: str,
        password: str | None,
        history: HistoryRequest | None,
    ) -> Deferred[JoinAccepted | None]:
        """
        INVITE the focus, then NICKNAME (RFC 7702 sections 5.1, 5.2).
        """
        user = _bare(realJID)
        existing = self._participant(roomJID, realJID)
        if existing is not None:
            # another session of the same user: it shares the chat and nick
            existing.sessions.append(realJID)
            if existing.joined:
                return succeed(JoinAccepted(nick=existing.nick))
            d: Deferred[JoinAccepted | None] = Deferred()
            existing.waiting.append(d)
            return d
        try:
            focus = focusURIForRoomJID(roomJID, self.roomDomain)
            address = jidToSIP(user)
        except AddressError as e:
            return fail(mucError(e.xmppCondition, e.reason))
        participant = XMPPParticipant(self, roomJID, user, focus, address, nick)
        participant.sessions.append(realJID)
        self.participants[(roomJID, user)] = participant
        if self.rooms.getRoom(roomJID) is None:
            self.rooms.createRoom(
                Room(
                    roomJID,
                    focus.uri(),
                    RoomSettings(privateMessages=False, historySize=self.historySize),
                )
            )
        self._log.info(
            "XMPP user {realJID} enters {roomJID} as {nick} (focus {focus})",
            realJID=realJID,
            roomJID=roomJID,
            nick=nick,
            focus=focus.uri(),
        )
        result: Deferred[Any] = self.initiator.startChat(
            SIPURI.fromString(focus.uri()),
            NameAddr(SIPURI.fromString(address.uri())),
            participant,
            acceptTypes=ACCEPT_TYPES,
            acceptWrappedTypes=ACCEPT_WRAPPED_TYPES,
            chatroom=CHATROOM_TOKENS,
        )
        result.addCallbacks(
            self._chatReady,
            self._chatFailed,
            callbackArgs=(participant,),
            errbackArgs=(participant,),
        )
        result.addCallbacks(
            self._joined,
            self._joinFailed,
            callbackArgs=(participant,),
            errbackArgs=(participant,),
        )
        return result

    def _chatReady(self, session: ChatSession, participant: XMPPParticipant) -> Any:
        media = session.remoteMedia
        participant.privateMessages = bool(
            media is not None and "private-messages" in (media.chatroom or ())
        )
        room = self.rooms.getRoom(participant.roomJID)
        if room is not None:
            room.settings = dataclasses.replace(
                room.settings, privateMessages=participant.privateMessages
            )
        return participant.sendNickname(participant.nick)

    def _chatFailed(self, reason: Failure, participant: XMPPParticipant) -> Failure:
        if isinstance(reason.value, ChatSessionError):
            status = reason.value.status
            if status is None or status < 300:
                status = 500
            condition, errorType = stanzaErrorForSIPEntryFailure(status)
            self._log.info(
                "The focus of {roomJID} refused {nick}: {error} -> {condition}",
                roomJID=participant.roomJID,
                nick=participant.nick,
                error=str(reason.value),
                condition=str(condition),
            )
            return Failure(_stanzaError(condition, errorType))  # type: ignore[no-untyped-call]
        return reason

    def _joined(self, nick: str, participant: XMPPParticipant) -> JoinAccepted | None:
        participant.joined = True
        waiting, participant.waiting = participant.waiting, []
        for d in waiting:
            d.callback(JoinAccepted(nick=nick))
        return None

    def _joinFailed(self, reason: Failure, participant: XMPPParticipant) -> Failure:
        self._forget(participant)
        participant.end("Join failed")
        waiting, participant.waiting = participant.waiting, []
        for d in waiting:
            d.errback(reason)
        self._dropRoomIfEmpty(participant.roomJID)
        return reason

    def nickChangeRequested(
        self, roomJID: str, nick: str, newNick: str, realJID: str
    ) -> Deferred[str | None]:
        """
        NICKNAME with the new nick (RFC 7702 section 5.6).
        """
        participant = self._participant(roomJID, realJID)
        if participant is None or not participant.joined:
            return fail(mucError("not-acceptable"))
        return participant.sendNickname(newNick).addCallback(lambda _: None)

    def messageSent(
        self,
        roomJID: str,
        nick: str,
        realJID: str,
        body: str,
        messageID: str | None,
        chatState: str | None,
    ) -> Deferred[None]:
        """
        Groupchat -> CPIM SEND To the room (RFC 7702 section 5.5.1); the
        room reflects once this fires (after the MSRP 200, R-212).
        """
        participant = self._participant(roomJID, realJID)
        if participant is None:
            return fail(mucError("not-acceptable"))
        return participant.send(body, participant.focus.aor)

    def privateMessageSent(
        self,
        roomJID: str,
        nick: str,
        realJID: str,
        toNick: str,
        body: str,
        messageID: str | None,
        chatState: str | None,
    ) -> Deferred[None]:
        """
        Private message -> SEND To C{<room;gr=nick>} (RFC 7702 section
        5.5.2), if the focus offered C{private-messages}.
        """
        participant = self._participant(roomJID, realJID)
        if participant is None:
            return fail(mucError("not-acceptable"))
        if not participant.privateMessages:
            return fail(mucError("feature-not-implemented"))
        return participant.send(body, participant.focus.aor.withGR(toNick))

    def chatStateSent(
        self, roomJID: str, nick: str, realJID: str, state: str, toNick: str | None
    ) -> None:
        """
        Not translated yet (R-225, isComposing).
        """

    def presenceChanged(
        self,
        roomJID: str,
        nick: str,
        realJID: str,
        show: str | None,
        status: str | None,
    ) -> None:
        """
        No SIP carrier for an occupant's availability.
        """

    def left(self, roomJID: str, nick: str, realJID: str, status: str | None) -> None:
        """
        A session left; with the user's last one, BYE (RFC 7702 section
        5.8; the exit text has no SIP carrier and is dropped).
        """
        participant = self._participant(roomJID, realJID)
        if participant is None:
            return
        if realJID in participant.sessions:
            participant.sessions.remove(realJID)
        if participant.sessions:
            return
        self._forget(participant)
        self._log.info(
            "{nick} leaves {roomJID}", nick=participant.nick, roomJID=roomJID
        )
        participant.end("Left the room")
        self._dropRoomIfEmpty(roomJID)
