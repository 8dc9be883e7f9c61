# -*- test-case-name: tests.interworking.test_xmpptosip -*-
"""
Direction A of RFC 7702 (section 5): an XMPP user enters a SIP/MSRP chat
room through the gateway ("Gateway A", SPEC C.1).

L{XMPPToSIP} is the L{IRoomBackend} of the room domain's
L{MUCService<stoxgw.xmpp.room.MUCService>}: toward XMPP the gateway is the
MUC room, toward the SIP conference focus one ordinary SIP/MSRP
participant per XMPP user.  One L{SIPRoomMirror} per SIP room holds what
the room shares (its legs, the conference subscription, the roster's
addresses, what was already shown); one L{XMPPParticipant} (a chat
session's handler, a "leg") per XMPP user (bare JID) and room, shared by
the user's sessions (resources) and their nick.

  - Join presence to C{room@<room domain>/nick}: INVITE to the focus URI
    (From the user's bare JID mapped by RFC 7247 section 6.5, Contact with
    the resource as GRUU C{gr}, R-005; C{message/cpim} wrapping
    C{text/plain} and isComposing, C{a=chatroom:nickname
    private-messages}).  The answer must come from a focus (C{isfocus},
    R-009, else C{item-not-found}); with the C{nickname} token a NICKNAME
    reserves the nick (R-012; without it the nick stays local, R-080);
    then the first conference-info of the focus (SUBSCRIBE C{Event:
    conference}, R-015, one subscription per room, waited for at most
    L{SUBSCRIBE_WAIT}) becomes the roster, so the XMPP user sees the
    other participants, then itself with 110, then history and subject
    (R-184).  A refused INVITE becomes L{stanzaErrorForSIPEntryFailure};
    a NICKNAME refused with 425 becomes C{<conflict/>} and the dialog is
    kept for the client's next nick (R-013, SPEC C.1.2) for
    L{NICK_RETRY_WAIT}.
  - Conference-info, full and partial (merged by L{ConferenceWatcher}):
    users become occupants (L{rosterOfConference}: nick from XCON
    nickname, display-text, C{gr}; role participant, affiliation none,
    R-016/R-017; real JIDs from associated-aors make the room
    non-anonymous, R-187), a new display-text for the same entity is a
    303 nick change, the subject is a subject message (R-019).
  - Groupchat -> CPIM SEND (To the room URI, From the user); the room
    reflects only after the MSRP 200 (R-212); private messages -> CPIM To
    C{<room;gr=nick>} (From with the user's GRUU), only if the focus
    offered C{private-messages}; chat states -> isComposing (R-225).
  - SENDs from the focus: the sender's nick through the roster (a switch
    may forward the sender's AOR), else the C{gr} of the CPIM From;
    CPIM To the user -> private message, else groupchat, shown once
    however many legs bring it (L{SIPRoomMirror.firstSight}); DateTime
    older than L{HISTORY_AGE} -> XEP-0203 delay; isComposing -> chat
    state.
  - Nick change -> NICKNAME; the last session leaving -> BYE with the exit
    status text as Reason; the focus ending the chat -> the occupant is
    removed with 307 (BYE), 332 (BYE with Reason 503), 333 (other 5xx
    causes, MSRP or dialog failure), SPEC E.5, R-218.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error
from twisted.words.protocols.jabber.jid import JID, InvalidFormat
from zope.interface import implementer

from stoxgw.chat.session import (
    AcceptChat,
    ChatDecision,
    ChatOffer,
    RejectChat,
    ChatInitiator,
    ChatSession,
    ChatSessionError,
    IChatOfferHandler,
)
from stoxgw.interworking.addressing import (
    AddressError,
    focusURIForRoomJID,
    roomJIDForFocusURI,
    sipToJID,
    jidToSIP,
    parseSIPIdentity,
)
from stoxgw.interworking.errors import (
    stanzaErrorForSIPEntryFailure,
    stanzaErrorForSIPStatus,
)
from stoxgw.formats.chatroom import CHATROOM_TOKENS, chatroomTokens, takesPrivateMessages
from stoxgw.formats.iscomposing import ComposingState
from stoxgw.interworking.translate import (
    ACCEPT_TYPES,
    ACCEPT_WRAPPED_TYPES,
    composingForChatState,
)
from stoxgw.rooms.model import (
    DEFAULT_HISTORY_SIZE,
    HistoryEntry,
    HistoryRequest,
    Participant,
    Room,
    RoomSettings,
)
from stoxgw.rooms.nicks import comparisonKey
from stoxgw.sip.msrpmedia import MSRPMedia
from stoxgw.sip.refer import ReferAgent
from stoxgw.sip.subscription import (
    SIPEvents,
)
from stoxgw.sip.uri import NameAddr, SIPURI
from stoxgw.xmpp.component import ILinkObserver
from stoxgw.xmpp.stanzas import ChatStateNotification, mucError
from stoxgw.xmpp.room import IRoomBackend, JoinAccepted, MUCService

from stoxgw.interworking.xmppuser import (  # noqa: E402
    HISTORY_AGE,
    LINK_LOST_CAUSE,
    NICK_RETRY_WAIT,
    SUBSCRIBE_WAIT,
    XMPPParticipant,
    answeredByFocus,
    bareJID,
    stanzaError,
)
from stoxgw.interworking.roommirror import (  # noqa: E402
    SEEN_MESSAGES,
    SIPRoomMirror,
    _DialOut,
)

__all__ = [
    "ACCEPT_TYPES",
    "ACCEPT_WRAPPED_TYPES",
    "CHATROOM_TOKENS",
    "HISTORY_AGE",
    "IXMPPToSIP",
    "NICK_RETRY_WAIT",
    "SEEN_MESSAGES",
    "SUBSCRIBE_WAIT",
    "SIPRoomMirror",
    "XMPPParticipant",
    "XMPPToSIP",
]

class IXMPPToSIP(IRoomBackend):
    """
    The Direction A interface (RFC 7702 section 5): the room domain's
    backend.
    """


@implementer(IXMPPToSIP, ILinkObserver, IChatOfferHandler)
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
        *,
        events: SIPEvents | None = None,
        subscribeWait: float = SUBSCRIBE_WAIT,
        subscriptionExpires: int = 3600,
        nickRetryWait: float = NICK_RETRY_WAIT,
        refers: ReferAgent | None = None,
        rooms: Callable[[IRoomBackend], MUCService] | None = None,
    ) -> None:
        """
        @param historySize: messages each room keeps for joining XMPP users
            (C{[gateway] history_size}).
        @param events: The SIP user agent's subscriptions, for the
            conference event package of the focuses (no roster without).
        @param subscribeWait: How long a join waits for the focus's first
            conference-info.
        @param nickRetryWait: How long a chat whose nick the focus refused
            waits for the client's next try.
        @param refers: Sends the REFERs of invitations (none without).
        @param rooms: makes the MUC service for a backend (this object):
            the two need each other, so this object builds it.  By default
            a L{MUCService} on C{roomDomain} and C{clock}.
        """
        self.clock = clock
        self.initiator = initiator
        self.roomDomain = roomDomain
        self.historySize = historySize
        self.events = events
        self.subscribeWait = subscribeWait
        self.subscriptionExpires = subscriptionExpires
        self.nickRetryWait = nickRetryWait
        self.refers = refers
        self.dialOuts: dict[tuple[str, str], _DialOut] = {}
        self.participants: dict[tuple[str, str], XMPPParticipant] = {}
        self.mirrors: dict[str, SIPRoomMirror] = {}
        if rooms is None:
            self.rooms = MUCService(roomDomain, self, clock)
        else:
            self.rooms = rooms(self)

    def mirror(self, roomJID: str) -> SIPRoomMirror:
        """
        The mirror of a SIP room (made on first use).
        """
        mirror = self.mirrors.get(roomJID)
        if mirror is None:
            focus = focusURIForRoomJID(roomJID, self.roomDomain)
            mirror = self.mirrors[roomJID] = SIPRoomMirror(self, roomJID, focus)
        return mirror

    def _participant(self, roomJID: str, realJID: str) -> XMPPParticipant | None:
        return self.participants.get((roomJID, bareJID(realJID)))

    def _forget(self, participant: XMPPParticipant) -> None:
        key = (participant.roomJID, participant.user)
        if self.participants.get(key) is participant:
            del self.participants[key]
        mirror = self.mirrors.get(participant.roomJID)
        if mirror is not None:
            mirror.legLeft(participant)

    def _dropRoomIfEmpty(self, roomJID: str) -> None:
        """
        The room stays hosted while somebody is in it or joining.
        """
        if any(room == roomJID for room, _ in self.participants):
            return
        mirror = self.mirrors.pop(roomJID, None)
        if mirror is not None:
            mirror.unsubscribe()
        if self.rooms.getRoom(roomJID) is not None:
            self.rooms.destroyRoom(roomJID)

    def groupchatFromFocus(
        self,
        participant: XMPPParticipant,
        nick: str,
        body: str,
        stamp: datetime.datetime,
        delayed: bool,
        sent: datetime.datetime | None,
    ) -> None:
        """
        A groupchat message the focus sent on C{participant}'s chat: show
        it once however many legs bring it (L{SIPRoomMirror.firstSight}),
        unless it comes from an XMPP user served here (the room reflected
        it already).

        @param sent: The CPIM DateTime, if any (part of what identifies the
            message across legs).
        """
        roomJID = participant.roomJID
        if not self.mirror(roomJID).firstSight(participant, nick, body, sent):
            return
        local = {comparisonKey(n) for n in self.rooms.occupantNicks(roomJID)}
        if comparisonKey(nick) in local:
            return
        room = self.rooms.getRoom(roomJID)
        if room is None:
            raise KeyError(roomJID)
        if nick not in room:
            self.rooms.participantJoined(roomJID, Participant(nick=nick))
        self.rooms.groupChatReceived(roomJID, HistoryEntry(nick, body, stamp), delayed)

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
        user = bareJID(realJID)
        existing = self._participant(roomJID, realJID)
        if existing is not None and existing.nickRefused and existing.session is not None:
            # The focus refused the last nick; the dialog was kept for this
            # (RFC 7702 section 5.6): NICKNAME again.
            existing.retrying()
            existing.nick = nick
            if realJID not in existing.sessions:
                existing.sessions.append(realJID)
            retry: Deferred[Any] = existing.sendNickname(nick)
            retry.addCallback(lambda _: self.mirror(roomJID).rosterKnown(existing))
            retry.addCallback(lambda _: existing.nick)
            return retry.addCallbacks(
                self._joined,
                self._joinFailed,
                callbackArgs=(existing,),
                errbackArgs=(existing,),
            )
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
        participant.resource = JID(realJID).resource or None
        self.participants[(roomJID, user)] = participant
        self.mirror(roomJID).legs.append(participant)
        if self.rooms.getRoom(roomJID) is None:
            self.rooms.createRoom(
                Room(
                    roomJID,
                    focus.uri(),
                    RoomSettings(privateMessages=False, historySize=self.historySize),
                )
            )
        dialOut = self.dialOuts.pop((roomJID, user), None)
        if dialOut is not None and dialOut.pending:
            # The focus invited this user (RFC 4579 dial-out): its INVITE
            # becomes the user's chat.
            return self._acceptDialOut(dialOut, participant)
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
            # the resource as GRUU in the Contact.
            contactParameters=(
                [("gr", participant.resource)] if participant.resource else ()
            ),
        )
        return self._completeJoin(result, participant)

    def _completeJoin(
        self, ready: Deferred[Any], participant: XMPPParticipant
    ) -> Deferred[JoinAccepted | None]:
        """
        Once the chat is ready: check the focus, NICKNAME, the roster
        (L{_chatReady}), then accept or refuse the join.
        """
        ready.addCallbacks(
            self._chatReady,
            self._chatFailed,
            callbackArgs=(participant,),
            errbackArgs=(participant,),
        )
        ready.addCallbacks(
            self._joined,
            self._joinFailed,
            callbackArgs=(participant,),
            errbackArgs=(participant,),
        )
        return ready

    def chatroomDeclared(self, participant: XMPPParticipant, media: MSRPMedia | None) -> None:
        """
        What the focus's C{a=chatroom} tokens (RFC 7701 section 8) allow,
        from its answer or a later re-offer (R-094): private messages (the
        room tells XMPP occupants whether it takes them) and NICKNAME.
        """
        tokens = chatroomTokens(media.chatroom if media else None)
        participant.privateMessages = takesPrivateMessages(media.chatroom if media else None)
        participant.nicknames = "nickname" in tokens
        room = self.rooms.getRoom(participant.roomJID)
        if room is not None:
            room.settings = dataclasses.replace(
                room.settings, privateMessages=participant.privateMessages
            )

    def _chatReady(self, session: ChatSession, participant: XMPPParticipant) -> Any:
        media = session.remoteMedia
        if not participant.dialedOut and not answeredByFocus(session):
            # only a conference focus (RFC 4579 isfocus) is a room.
            session.end("Not a conference focus")
            return fail(mucError("item-not-found", "The SIP peer is not a chat room (no isfocus)"))
        self.chatroomDeclared(participant, media)
        mirror = self.mirror(participant.roomJID)
        if not participant.nicknames:
            # No NICKNAME at this focus: the nick is ours alone.
            return mirror.rosterKnown(participant).addCallback(lambda _: participant.nick)
        d = participant.sendNickname(participant.nick)

        def unknownMethod(reason: Failure) -> Any:
            # 501: a relay or switch that does not know NICKNAME (Kamailio's
            # msrp module answers it itself): the nick stays ours, as
            # without the token (RFC 4975 section 10.9).
            if (
                isinstance(reason.value, error.StanzaError)
                and reason.value.condition == "feature-not-implemented"
            ):
                participant.nicknames = False
                return participant.nick
            return reason

        d.addErrback(unknownMethod)
        d.addCallback(lambda nick: mirror.rosterKnown(participant).addCallback(lambda _: nick))
        return d

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
            return Failure(stanzaError(condition, errorType))  # type: ignore[no-untyped-call]
        return reason

    def _joined(self, nick: str, participant: XMPPParticipant) -> JoinAccepted | None:
        participant.joined = True
        waiting, participant.waiting = participant.waiting, []
        for d in waiting:
            d.callback(JoinAccepted(nick=nick))
        return None

    def _joinFailed(self, reason: Failure, participant: XMPPParticipant) -> Failure:
        waiting, participant.waiting = participant.waiting, []
        for d in waiting:
            d.errback(reason)
        session = participant.session
        if (
            isinstance(reason.value, error.StanzaError)
            and reason.value.condition == "conflict"
            and session is not None
            and not session.ended
        ):
            # RFC 7702 section 5.6: the focus refused the nick; the client
            # gets <conflict/> and may try another on the same chat.
            participant.sessions.clear()
            participant.awaitNickRetry(self.nickRetryWait)
            return reason
        self._forget(participant)
        participant.end("Join failed")
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
        participant.composing.pop("", None)
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
        An XMPP user's chat state -> isComposing to the room or the
        occupant (R-225, SPEC E.6), only changes; never C{gone}.
        """
        participant = self._participant(roomJID, realJID)
        if participant is None:
            return
        try:
            chatState = ChatStateNotification(state)
        except ValueError:
            return
        composing = composingForChatState(chatState)
        if composing is None:
            return
        target = participant.focus.aor if toNick is None else participant.focus.aor.withGR(toNick)
        key = toNick or ""
        if participant.composing.get(key, ComposingState.IDLE) is composing:
            return
        participant.composing[key] = composing
        participant.sendComposing(composing, target)

    # -- a focus dialling out to an XMPP user (RFC 4579 section 5.5) -----------

    def chatOffered(self, offer: ChatOffer) -> Deferred[ChatDecision]:
        """
        An INVITE from a conference focus (its Contact says C{isfocus}) to
        an XMPP user: the focus adds the user to its room (RFC 4579, after
        someone's REFER).  The user gets an XEP-0045 invitation from the
        room JID that stands for the focus, naming the Referred-By as
        inviter; the INVITE rings (180) until the user joins that room,
        whose join then takes this INVITE as its chat, or is refused:
        603 when the user declines, 480 when no join comes in time.
        """
        request = offer.invite.request
        try:
            invitee = sipToJID(parseSIPIdentity(str(request.uri)).aor)
            fromHeader = request.header("From") or ""
            focus = parseSIPIdentity(str(NameAddr.fromString(fromHeader).uri)).aor
            roomJID = str(roomJIDForFocusURI(focus, self.roomDomain))
        except (AddressError, ValueError) as e:
            self._log.info(
                "Dial-out INVITE refused ({callID}): {error}",
                callID=request.header("Call-ID"),
                error=str(e),
            )
            return succeed(RejectChat(404, "Not Found"))
        inviter = None
        referredBy = request.header("Referred-By")
        if referredBy:
            try:
                inviter = str(
                    sipToJID(parseSIPIdentity(str(NameAddr.fromString(referredBy).uri)).aor)
                )
            except (AddressError, ValueError):
                inviter = None
        key = (roomJID, str(invitee))
        previous = self.dialOuts.pop(key, None)
        if previous is not None:
            previous.finish(RejectChat(480, "Superseded"))
        dialOut = _DialOut(offer, focus)
        self.dialOuts[key] = dialOut
        dialOut.timer = self.clock.callLater(
            self.nickRetryWait, self._dialOutExpired, key, dialOut
        )
        self._log.info(
            "Focus {focus} invites {invitee} to {roomJID}",
            focus=focus.uri(),
            invitee=str(invitee),
            roomJID=roomJID,
        )
        self.rooms.sendInvitation(roomJID, str(invitee), inviter, None)
        try:
            offer.invite.sendProvisional(180)
        except Exception as e:
            self._log.warn("180 to a dial-out failed: {error}", error=e)
        return dialOut.decision

    def _dialOutExpired(self, key: tuple[str, str], dialOut: _DialOut) -> None:
        dialOut.timer = None
        if self.dialOuts.get(key) is dialOut:
            del self.dialOuts[key]
        dialOut.finish(RejectChat(480, "Temporarily Unavailable (no join)"))

    def _acceptDialOut(
        self, dialOut: _DialOut, participant: XMPPParticipant
    ) -> Deferred[JoinAccepted | None]:
        participant.dialedOut = True
        dialOut.finish(
            AcceptChat(
                participant,
                acceptTypes=ACCEPT_TYPES,
                acceptWrappedTypes=ACCEPT_WRAPPED_TYPES,
                chatroom=CHATROOM_TOKENS,
            )
        )
        session = participant.session
        if session is None:
            self._forget(participant)
            return fail(mucError("item-not-found", "The invitation is no longer valid"))
        result: Deferred[Any] = session.whenReady()
        return self._completeJoin(result, participant)

    def invitationDeclined(self, roomJID: str, realJID: str, reason: str | None) -> None:
        """
        The invitee declined the focus's invitation: 603 to its INVITE.
        """
        dialOut = self.dialOuts.pop((roomJID, bareJID(realJID)), None)
        if dialOut is not None:
            dialOut.finish(RejectChat(603, "Decline"))

    # -- ILinkObserver: the room domain's component link -----------------------

    def linkUp(self, domain: str) -> None:
        """
        The room domain's link is up: nothing to restore (the chats of a
        lost link were ended).
        """

    def linkDown(self, domain: str, reason: Failure) -> None:
        """
        The room domain's link is lost: the XMPP users can no longer see
        their rooms, so every SIP leg ends (BYE, Reason 503) and the rooms
        go: no dialog is left behind.  Their clients learn it when they
        next talk to the room (XEP-0410 self-ping gets not-acceptable) and
        join again.
        """
        if domain != self.roomDomain:
            return
        legs = list(self.participants.values())
        if legs:
            self._log.warn(
                "Room domain link lost: ending {count} SIP legs",
                count=len(legs),
            )
        for participant in legs:
            self._forget(participant)
            participant.end("XMPP link lost", status=LINK_LOST_CAUSE)
        for roomJID in list(self.mirrors):
            self._dropRoomIfEmpty(roomJID)
        for room in list(self.rooms.rooms):
            self.rooms.destroyRoom(room.address)

    def invitationSent(
        self, roomJID: str, nick: str, realJID: str, invitee: str, reason: str | None
    ) -> Deferred[None]:
        """
        A mediated invitation -> REFER to the focus in the inviter's INVITE
        dialog, Refer-To the invitee's SIP URI (RFC 7247 section 6.5),
        RFC 7702 section 5.7 (F27-F30, RFC 4579 section 5.5); a refused
        REFER -> the E.2 stanza error to the inviter.
        """
        participant = self._participant(roomJID, realJID)
        session = None if participant is None else participant.session
        if participant is None or session is None or session.dialog is None:
            return fail(mucError("not-acceptable"))
        if self.refers is None:
            return fail(mucError("feature-not-implemented"))
        try:
            target = jidToSIP(JID(invitee).userhost())  # type: ignore[no-untyped-call]
        except (AddressError, InvalidFormat, ValueError) as e:
            return fail(mucError("jid-malformed", str(e)))
        self._log.info(
            "{nick} invites {invitee} to {roomJID}",
            nick=nick,
            invitee=invitee,
            roomJID=roomJID,
        )
        d = self.refers.refer(
            session.dialog, NameAddr(SIPURI.fromString(target.uri())), referSub=False
        )

        def sent(_: object) -> None:
            return None

        def refused(reason: Failure) -> Failure:
            status = getattr(reason.value, "status", None)
            if not isinstance(status, int):
                return reason
            condition, errorType = stanzaErrorForSIPStatus(status)
            return Failure(stanzaError(condition, errorType))  # type: ignore[no-untyped-call]

        return d.addCallbacks(sent, refused)

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
        # The exit <status/> text travels as the BYE's Reason text.
        participant.end(status or "Left the room")
        self._dropRoomIfEmpty(roomJID)
