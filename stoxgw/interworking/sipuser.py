# -*- test-case-name: tests.interworking.test_siptoxmpp -*-
"""
One SIP user in one XMPP MUC room, as Gateway B serves it (RFC 7702
section 6; docs/section6.md): L{SIPParticipant}, the handler of the user's
chat session, translating its SENDs, NICKNAMEs and conference
subscription to and from its MUC occupant.  L{SIPToXMPP
<stoxgw.interworking.siptoxmpp.SIPToXMPP>} makes one per INVITE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import datetime
import uuid
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error
from twisted.words.protocols.jabber.jid import JID as XMPPJID
from zope.interface import implementer

from stoxgw.chat.session import (
    ChatEnd,
    ChatSession,
    IChatSessionHandler,
    IChatUpdateHandler,
)
from stoxgw.formats.chatroom import takesPrivateMessages
from stoxgw.formats.conferenceinfo import ConferenceInfo, DisconnectionMethod
from stoxgw.formats.cpim import CPIMAddress
from stoxgw.formats.iscomposing import ComposingState, IsComposing
from stoxgw.interworking.addressing import (
    AddressError,
    SIPAddress,
    parseSIPIdentity,
)
from stoxgw.interworking.conference import occupantUser, roomConference
from stoxgw.interworking.errors import (
    MSRP_STATUS_LINK_DOWN,
    GatewayBEnd,
    LocalMSRPFailure,
    MUCExchange,
    msrpStatusForLocalFailure,
    msrpStatusForStanzaError,
    sipReasonCauseForGatewayBEnd,
)
from stoxgw.interworking.translate import (
    CPIM,
    ISCOMPOSING_CONTENT_TYPE,
    Refused,
    RoomCopies,
    chatStateForComposing,
    composingForChatState,
    now,
    unwrap,
    wrapComposing,
    wrapText,
)
from stoxgw.msrp.session import IncomingMessage
from stoxgw.sip.msrpmedia import MSRPMedia
from stoxgw.sip.subscription import (
    ConferenceNotifier,
    SubscriptionReason,
)
from stoxgw.xmpp.occupant import (
    GroupchatMessage,
    JoinResult,
    LinkLost,
    NotInRoom,
    Occupant,
    OccupantError,
    OccupantTimeout,
)
from stoxgw.xmpp.stanzas import ChatStateNotification

if TYPE_CHECKING:
    from stoxgw.interworking.siptoxmpp import SIPToXMPP


#: How many private-message ids wait for a possible MUC error, per user;
#: also how many unreflected groupchat ids wait for a late one.
MAX_PENDING_PRIVATE = 64
#: At most one chat state a second from a SIP user to one target (R-225).
CHAT_STATE_INTERVAL = 1.0


def bareJID(address: XMPPJID) -> str:
    """
    C{address} without resource, as text (Twisted's JID is untyped).
    """
    return str(address.userhost())  # type: ignore[no-untyped-call]


def fullJID(address: XMPPJID) -> str:
    """
    C{address} as text.
    """
    return str(address.full())  # type: ignore[no-untyped-call]


def occupantKey(roomJID: XMPPJID, realJID: XMPPJID) -> tuple[str, str]:
    return (bareJID(roomJID), fullJID(realJID))


def conditionOf(reason: BaseException | None) -> str | None:
    """
    The XMPP condition an occupant or stanza error stands for, if any.
    """
    if isinstance(reason, OccupantError):
        return reason.condition
    if isinstance(reason, error.StanzaError):
        return str(reason.condition)
    return None


def logFailure(log: Logger, what: str, **fields: Any) -> Callable[[Failure], None]:
    """
    An errback that logs a failure that changes nothing any more (the
    thing it was about is already over) with its reason.
    """

    def errback(reason: Failure) -> None:
        log.info(what + ": {error}", error=reason.getErrorMessage(), **fields)

    return errback


class _ChatStateOut:
    """
    The chat states a SIP user sends to one target (the room, or one nick
    privately), at most one per L{CHAT_STATE_INTERVAL}: a state arriving
    sooner waits and is replaced by any later one; a repeated state is
    not sent again (XEP-0085 section 5.5, R-225).
    """

    def __init__(self, send: Callable[[ChatStateNotification], None], clock: IReactorTime) -> None:
        self._send = send
        self._clock = clock
        self.last: ChatStateNotification | None = None
        self._lastAt: float | None = None
        self._pending: ChatStateNotification | None = None
        self._timer: IDelayedCall | None = None

    def offer(self, state: ChatStateNotification) -> None:
        now_ = self._clock.seconds()
        if self._timer is not None:
            self._pending = state
            return
        if state is self.last:
            return
        if self._lastAt is not None and now_ - self._lastAt < CHAT_STATE_INTERVAL:
            self._pending = state
            self._timer = self._clock.callLater(
                CHAT_STATE_INTERVAL - (now_ - self._lastAt), self._flush
            )
            return
        self._emit(state)

    def sentWithMessage(self, state: ChatStateNotification) -> None:
        """
        A message carried C{state}: it is the last state sent.
        """
        self.cancel()
        self.last = state
        self._lastAt = self._clock.seconds()

    def _flush(self) -> None:
        self._timer = None
        state, self._pending = self._pending, None
        if state is not None and state is not self.last:
            self._emit(state)

    def _emit(self, state: ChatStateNotification) -> None:
        self.last = state
        self._lastAt = self._clock.seconds()
        self._send(state)

    def cancel(self) -> None:
        timer, self._timer = self._timer, None
        self._pending = None
        if timer is not None and timer.active():
            timer.cancel()


@implementer(IChatSessionHandler, IChatUpdateHandler)
class SIPParticipant:
    """
    One SIP user in one MUC room: the chat session's handler.

    @ivar bridge: The owning L{SIPToXMPP}.
    @ivar roomJID: The room (bare).
    @ivar realJID: The SIP user's real JID on the user domain.
    @ivar room: L{roomJID} as text.
    @ivar real: L{realJID} as text.
    @ivar roomAddress: The room's SIP URI (the focus, CPIM To of public
        messages, base of occupant identities).
    @ivar userAddress: The SIP user's address of record.
    @ivar nick: The current nick in the room.
    @ivar privateMessages: Whether the UA declared C{private-messages}.
    @ivar session: The chat session, once started.
    @ivar inRoom: Whether the occupant is (still) in the room.
    @ivar linkDown: The XMPP link is lost; the occupant waits to rejoin.
    @ivar copies: The room's shared CPIM bodies of room messages (from
        the bridge, on the first room message), or L{None}.
    """

    _log = Logger()

    def __init__(
        self,
        bridge: SIPToXMPP,
        roomJID: XMPPJID,
        realJID: XMPPJID,
        roomAddress: SIPAddress,
        userAddress: SIPAddress,
        nick: str,
        privateMessages: bool,
    ) -> None:
        self.bridge = bridge
        self.roomJID = roomJID
        self.realJID = realJID
        self.room = bareJID(roomJID)
        self.real = fullJID(realJID)
        self.roomAddress = roomAddress
        self.userAddress = userAddress
        self.nick = nick
        self.privateMessages = privateMessages
        self.session: ChatSession | None = None
        self.inRoom = True
        self.joined = False
        self.linkDown = False
        self.role: str | None = None
        self.realAddress: str | None = None
        self.subject: str | None = None
        self.conference: ConferenceNotifier | None = None
        self.waiters: list[Deferred[SIPParticipant | None]] = []
        self._queued: list[bytes] = []
        self._privateSends: dict[str, IncomingMessage] = {}
        self._unreflected: dict[str, IncomingMessage] = {}
        self._composingIn: dict[tuple[str, bool], ComposingState] = {}
        self._chatStatesOut: dict[str | None, _ChatStateOut] = {}
        self._graceTimer: IDelayedCall | None = None
        self.copies: RoomCopies | None = None

    def __repr__(self) -> str:
        return f"<SIPParticipant {self.nick} {self.real} in {self.room}>"

    # -- addresses -----------------------------------------------------------

    def occupantAddress(self, nick: str | None) -> CPIMAddress:
        """
        The CPIM address of an occupant (R-207: C{<sip:room@domain;gr=nick>}),
        or of the room itself for L{None}.
        """
        if nick is None:
            return CPIMAddress(self.roomAddress.aor.uri())
        return CPIMAddress(self.roomAddress.aor.withGR(nick).uri(), nick)

    def recipientAddress(self, private: bool) -> CPIMAddress:
        """
        The CPIM To of what the SIP user receives: the room URI for what
        was said to the room, the user for what was said to it alone (RFC
        7701 section 6.1: the recipient tells the two apart by this).
        """
        if private:
            return CPIMAddress(self.userAddress.aor.uri())
        return CPIMAddress(self.roomAddress.aor.uri())

    # -- conference event package (R-213, R-217) ------------------------------

    def conferenceState(
        self, removed: tuple[Occupant, DisconnectionMethod] | None = None
    ) -> ConferenceInfo:
        """
        The room as this user's occupant sees it, as a full conference-info
        document (no version): the others in roster order, then the user
        itself, and the subject (R-213, R-217).

        @param removed: An occupant just removed from the room, still
            listed with its endpoint disconnected and how (SPEC E.5).
        """
        users = [
            occupantUser(
                self.roomAddress,
                occupant.nick,
                occupant.role,
                None if occupant.jid is None else fullJID(occupant.jid),
            )
            for occupant in self.bridge.occupants.rosterOf(
                self.roomJID, self.realJID
            ).values()
            if occupant.nick != self.nick
        ]
        if removed is not None:
            occupant, method = removed
            users.append(
                occupantUser(
                    self.roomAddress,
                    occupant.nick,
                    occupant.role,
                    None if occupant.jid is None else fullJID(occupant.jid),
                    removed=method,
                )
            )
        users.append(occupantUser(self.roomAddress, self.nick, self.role, self.realAddress))
        return roomConference(self.roomAddress, users, self.subject)

    def occupantRemoved(self, occupant: Occupant, method: DisconnectionMethod) -> None:
        """
        Another occupant was removed (kicked, banned, failed): a partial
        NOTIFY showing its endpoint disconnected with C{method} (RFC 4575
        section 5.7.3, SPEC E.5), then one deleting it.
        """
        if self.conference is not None and self.inRoom and not self.linkDown:
            self.conference.update(self.conferenceState((occupant, method)))
        self.rosterChanged()

    def notifier(self) -> ConferenceNotifier:
        """
        The conference notifier of this user (made on the first SUBSCRIBE).
        """
        if self.conference is None:
            self.conference = ConferenceNotifier(self.conferenceState())
        return self.conference

    def rosterChanged(self) -> None:
        """
        The roster or subject changed: partial NOTIFYs to the subscribers
        (none while a rejoin rebuilds the roster: one when it is done).
        """
        if self.conference is not None and self.inRoom and not self.linkDown:
            self.conference.update(self.conferenceState())

    def closeConference(self) -> None:
        """
        The chat is over: terminate the conference subscriptions.
        """
        conference, self.conference = self.conference, None
        if conference is not None:
            conference.close(SubscriptionReason.NORESOURCE)

    def joinSettled(self) -> None:
        """
        The join ended (either way): SUBSCRIBEs that waited for it go on.
        """
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            waiter.callback(self if self.joined and self.inRoom else None)

    # -- toward the SIP user -------------------------------------------------

    def deliver(
        self,
        nick: str | None,
        body: str,
        stamp: datetime.datetime | None,
        private: bool = False,
    ) -> None:
        """
        Send a message from an occupant (or the room) to the SIP user: CPIM
        From its in-room identity, To the room (or, C{private}, the user).
        A room message's body is the room's L{RoomCopies}: built once for
        all the SIP occupants the MUC sends it to.
        """
        if nick is not None:
            # RFC 3994 section 3.2: a message ends the composing state.
            self._composingIn[(nick, private)] = ComposingState.IDLE
        if stamp is None:
            stamp = now(self.bridge.clock)

        def build() -> bytes:
            return wrapText(
                body, self.occupantAddress(nick), self.recipientAddress(private), stamp
            )

        try:
            if private:
                payload = build()
            else:
                # The same body for every SIP occupant of the room: built
                # for the first copy the MUC sends, shared by the others.
                copies = self.copies
                if copies is None:
                    copies = self.copies = self.bridge.copiesOf(self.roomAddress.aor)
                payload = copies.payload((nick, body, stamp), build)
        except ValueError as e:
            self._log.warn(
                "Cannot wrap a message from {nick} in {roomJID}: {error}",
                nick=nick,
                roomJID=self.room,
                error=str(e),
            )
            return
        self._deliver(payload)

    def deliverChatState(self, nick: str, state: ChatStateNotification, private: bool) -> None:
        """
        An occupant's chat state as an isComposing indication (SPEC E.6),
        if the UA accepts them and it is a change.
        """
        session = self.session
        if session is None or not session.peerAccepts(ISCOMPOSING_CONTENT_TYPE, True):
            return
        composing = composingForChatState(state)
        key = (nick, private)
        if composing is None or self._composingIn.get(key, ComposingState.IDLE) is composing:
            return
        self._composingIn[key] = composing
        self._deliver(
            wrapComposing(
                composing,
                self.occupantAddress(nick),
                self.recipientAddress(private),
                now(self.bridge.clock),
            )
        )

    def forgetOccupant(self, nick: str) -> None:
        """
        An occupant left or changed nick: its composing state goes.
        """
        self._composingIn.pop((nick, False), None)
        self._composingIn.pop((nick, True), None)

    def _deliver(self, payload: bytes) -> None:
        if self.session is None:
            self._queued.append(payload)
            return
        self._send(self.session, payload)

    def _send(self, session: ChatSession, payload: bytes) -> None:
        d = session.sendMessage(CPIM, payload)
        d.addErrback(self._sendFailed)

    def _sendFailed(self, reason: Failure) -> None:
        self._log.warn(
            "Message to the SIP user failed ({callID}, {roomJID}): {error}",
            callID=None if self.session is None else self.session.callID,
            roomJID=self.room,
            error=reason.getErrorMessage(),
        )

    def end(self, cause: int | None, text: str) -> None:
        """
        End the chat (BYE with a C{Reason} carrying C{cause}); the occupant
        is already out of the room.
        """
        self.inRoom = False
        self._stopTimers()
        self.closeConference()
        self.joinSettled()
        if self.session is not None:
            self.session.end(text, status=cause)

    def _stopTimers(self) -> None:
        timer, self._graceTimer = self._graceTimer, None
        if timer is not None and timer.active():
            timer.cancel()
        for out in self._chatStatesOut.values():
            out.cancel()

    # -- link loss -------------------------------------------------------------

    def linkLost(self, grace: float) -> None:
        """
        The XMPP link is gone: keep the SIP session, wait C{grace}
        seconds for the link.
        """
        self.linkDown = True
        for out in self._chatStatesOut.values():
            out.cancel()
        if self._graceTimer is None:
            self._graceTimer = self.bridge.clock.callLater(grace, self._graceOver)

    def _graceOver(self) -> None:
        self._graceTimer = None
        if not self.linkDown or not self.inRoom:
            return
        self._log.warn(
            "XMPP link still down: ending the chat of {nick} in {roomJID}",
            nick=self.nick,
            roomJID=self.room,
        )
        self.bridge._forget(self)
        self.bridge.occupants.leave(self.roomJID, self.realJID).addErrback(
            logFailure(self._log, "Leaving {roomJID}", roomJID=self.room)
        )
        self.end(sipReasonCauseForGatewayBEnd(GatewayBEnd.LINK_LOST), "XMPP link lost")

    def rejoined(self, result: JoinResult) -> None:
        """
        Back in the room after a link loss: one partial NOTIFY of what
        changed meanwhile.
        """
        timer, self._graceTimer = self._graceTimer, None
        if timer is not None and timer.active():
            timer.cancel()
        self.linkDown = False
        self.nick = result.nick
        self.role = result.self.role
        self._log.info(
            "{nick} is back in {roomJID} after a link loss",
            nick=self.nick,
            roomJID=self.room,
        )
        self.rosterChanged()

    # -- IChatSessionHandler ---------------------------------------------------

    def chatStarted(self, session: ChatSession) -> None:
        """
        The session exists: send what arrived from the room meanwhile.
        """
        self.session = session
        queued, self._queued = self._queued, []
        for payload in queued:
            self._send(session, payload)

    def chatUpdated(self, session: ChatSession, previous: MSRPMedia) -> None:
        """
        The SIP user re-offered (RFC 4975 section 8.4): whether it takes
        private messages follows its C{a=chatroom} now (R-094: a line
        dropped turns RFC 7701 off, so the room's private messages to it
        are then refused as for a UA that never declared them, R-221).
        """
        if session.remoteMedia is not None:
            self.privateMessages = takesPrivateMessages(session.remoteMedia.chatroom)

    def messageReceived(self, session: ChatSession, message: IncomingMessage) -> Any:
        """
        A SEND from the SIP user (RFC 7702 section 6.3, RFC 7701 section 6).

        @return: an MSRP status, or a L{Deferred} firing with the status
            once the MUC reflected (or refused) a public message (R-211).
        """
        try:
            return self._translate(message)
        except Refused as e:
            self._log.info(
                "SEND refused with {code} ({callID}, {roomJID}): {error}",
                code=e.code,
                callID=session.callID,
                roomJID=self.room,
                error=e.reason,
            )
            return e.code

    def _translate(self, message: IncomingMessage) -> Any:
        content = unwrap(message)
        cpim = content.cpim
        if not self.inRoom:
            raise Refused(403, "not in the room")
        if self.linkDown:
            raise Refused(MSRP_STATUS_LINK_DOWN, "the XMPP link is down")
        recipients = cpim.toAddresses
        if len(recipients) != 1:
            failure = (
                LocalMSRPFailure.MULTIPLE_CPIM_TO if recipients else LocalMSRPFailure.NO_CPIM_TO
            )
            raise Refused(msrpStatusForLocalFailure(failure), "exactly one CPIM To is allowed")
        sender = cpim.fromAddress
        if sender is not None and not self._isSelf(sender):
            raise Refused(
                msrpStatusForLocalFailure(LocalMSRPFailure.INVALID_CPIM_FROM),
                "the CPIM From is not the sender",
            )
        try:
            to = parseSIPIdentity(recipients[0].uri)
        except AddressError:
            raise Refused(
                msrpStatusForLocalFailure(LocalMSRPFailure.UNKNOWN_RECIPIENT),
                "bad CPIM To",
            ) from None
        if to.aor != self.roomAddress.aor:
            raise Refused(
                msrpStatusForLocalFailure(LocalMSRPFailure.UNKNOWN_RECIPIENT),
                f"{to.uri()} is not this room",
            )
        if to.gr is not None:
            self._checkNick(to.gr)
        if content.composing is not None:
            return self._sendComposing(content.composing, to.gr)
        assert content.text is not None
        if to.gr is not None:
            return self._sendPrivate(message, to.gr, content.text)
        return self._sendGroupchat(message, content.text)

    def _isSelf(self, address: CPIMAddress) -> bool:
        """
        Whether a CPIM From names this user: its address of record or its
        in-room identity.
        """
        try:
            parsed = parseSIPIdentity(address.uri)
        except AddressError:
            return False
        if parsed.aor == self.userAddress.aor:
            return True
        return parsed.aor == self.roomAddress.aor and parsed.gr == self.nick

    def _checkNick(self, nick: str) -> None:
        roster = self.bridge.occupants.rosterOf(self.roomJID, self.realJID)
        if nick not in roster:
            raise Refused(
                msrpStatusForLocalFailure(LocalMSRPFailure.UNKNOWN_RECIPIENT),
                f"no occupant {nick!r}",
            )

    def _chatStateOut(self, nick: str | None) -> _ChatStateOut:
        out = self._chatStatesOut.get(nick)
        if out is None:

            def send(state: ChatStateNotification) -> None:
                try:
                    self.bridge.occupants.sendChatState(
                        self.roomJID, self.realJID, state, nick
                    )
                except (OccupantError, ValueError) as e:
                    self._log.info(
                        "Chat state to {roomJID} not sent: {error}",
                        roomJID=self.room,
                        error=str(e),
                    )

            out = self._chatStatesOut[nick] = _ChatStateOut(send, self.bridge.clock)
        return out

    def _sendComposing(self, composing: IsComposing, nick: str | None) -> int:
        """
        isComposing -> an XEP-0085 state to the room or to C{nick} (SPEC
        E.6), coalesced (L{_ChatStateOut}).
        """
        self._chatStateOut(nick).offer(chatStateForComposing(composing.state))
        return 200

    def _messageChatState(self, nick: str | None) -> ChatStateNotification | None:
        """
        C{<active/>} on a message once the user showed chat states to that
        target (XEP-0085 section 5.1), else nothing.
        """
        out = self._chatStatesOut.get(nick)
        if out is None or out.last is None:
            return None
        out.sentWithMessage(ChatStateNotification.ACTIVE)
        return ChatStateNotification.ACTIVE

    def _sendGroupchat(self, message: IncomingMessage, text: str) -> Deferred[int]:
        stanzaID = uuid.uuid4().hex
        d = self.bridge.occupants.sendGroupchat(
            self.roomJID,
            self.realJID,
            text,
            stanzaID=stanzaID,
            chatState=self._messageChatState(None),
        )

        def reflected(_: GroupchatMessage) -> int:
            return 200

        def failed(reason: Failure) -> int:
            if isinstance(reason.value, OccupantTimeout):
                # bounded wait, then the configured status; after a
                # 200 a late MUC error still reaches the sender as a
                # failure REPORT.
                status = self.bridge.reflectionTimeoutStatus
                if status == 200:
                    self._remember(self._unreflected, stanzaID, message)
                return status
            if isinstance(reason.value, LinkLost):
                return MSRP_STATUS_LINK_DOWN
            condition = conditionOf(reason.value)
            if condition is None:
                self._log.failure("Groupchat send failed", reason)
                return 403
            self._log.info(
                "Room {roomJID} refused a message of {nick}: {error}",
                roomJID=self.room,
                nick=self.nick,
                error=condition,
            )
            return msrpStatusForStanzaError(condition, MUCExchange.GROUPCHAT)

        return d.addCallbacks(reflected, failed)

    @staticmethod
    def _remember(
        pending: dict[str, IncomingMessage], stanzaID: str, message: IncomingMessage
    ) -> None:
        pending[stanzaID] = message
        while len(pending) > MAX_PENDING_PRIVATE:
            del pending[next(iter(pending))]

    def _sendPrivate(self, message: IncomingMessage, nick: str, text: str) -> int:
        try:
            stanzaID = self.bridge.occupants.sendPrivate(
                self.roomJID,
                self.realJID,
                nick,
                text,
                chatState=self._messageChatState(nick),
            )
        except LinkLost as e:
            raise Refused(MSRP_STATUS_LINK_DOWN, str(e)) from None
        except OccupantError as e:
            raise Refused(
                msrpStatusForStanzaError(e.condition, MUCExchange.PRIVATE), str(e)
            ) from None
        self._remember(self._privateSends, stanzaID, message)
        return 200

    def messageFailed(self, stanzaID: str | None, reason: error.StanzaError) -> bool:
        """
        The MUC refused a message after its sender got 200 (a private
        message, or a groupchat message whose reflection timed out): a
        failure REPORT to its sender (RFC 4975 section 7.1.4, R-211).

        @return: whether the error belonged to one of our messages.
        """
        key = stanzaID or ""
        exchange = MUCExchange.PRIVATE
        message = self._privateSends.pop(key, None)
        if message is None:
            exchange = MUCExchange.GROUPCHAT
            message = self._unreflected.pop(key, None)
        if message is None:
            return False
        code = msrpStatusForStanzaError(str(reason.condition), exchange)
        session = self.session
        sent = False
        if session is not None and session.msrp is not None:
            sent = session.msrp.sendFailureReport(message, code)
        self._log.info(
            "Late MUC error for message {stanzaID} in {roomJID}: {error};"
            " failure REPORT {code} sent: {sent}",
            stanzaID=stanzaID,
            roomJID=self.room,
            error=str(reason.condition),
            code=code,
            sent=sent,
        )
        return True

    def nicknameRequested(self, session: ChatSession, nickname: str) -> Any:
        """
        NICKNAME (RFC 7702 section 6.4, R-210): change the nick in the room.

        @return: a L{Deferred} firing with 200 once the MUC confirmed, 425
            on conflict, other codes by SPEC E.4; 408 while the link is
            down.
        """
        if self.linkDown:
            return MSRP_STATUS_LINK_DOWN
        if not nickname.strip():
            # RFC 7701 section 7.3 removes a nick with an empty one; a MUC
            # occupant always has one (SPEC F.1 item 3): not allowed.
            return 403
        d = self.bridge.occupants.changeNick(self.roomJID, self.realJID, nickname)

        def changed(nick: str) -> int:
            if nick != self.nick:
                self.nick = nick
                self.rosterChanged()
            return 200

        def failed(reason: Failure) -> int:
            if isinstance(reason.value, LinkLost):
                return MSRP_STATUS_LINK_DOWN
            if isinstance(reason.value, NotInRoom):
                return 403
            condition = conditionOf(reason.value)
            if condition is None:
                self._log.failure("Nick change failed", reason)
                return 403
            return msrpStatusForStanzaError(condition, MUCExchange.NICKNAME)

        return d.addCallbacks(changed, failed)

    def chatEnded(self, session: ChatSession, reason: ChatEnd) -> None:
        """
        The chat ended (BYE, MSRP failure, ...): leave the room.  The
        unavailable presence is written before this returns, so before the
        200 to a BYE (RFC 7702 section 6.6, F61 before F62).
        """
        self.bridge._forget(self)
        self._stopTimers()
        self.closeConference()
        self.joinSettled()
        if not self.inRoom:
            return
        self.inRoom = False
        self.bridge.occupants.leave(self.roomJID, self.realJID).addErrback(
            logFailure(self._log, "Leaving {roomJID}", roomJID=self.room)
        )


