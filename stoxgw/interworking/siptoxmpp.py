# -*- test-case-name: tests.interworking.test_siptoxmpp -*-
"""
Direction B of RFC 7702 (section 6): a SIP/MSRP user enters an XMPP MUC
room through the gateway ("Gateway B", SPEC C.2; docs/section6.md tells
the whole behaviour and its choices).

L{SIPToXMPP} is the gateway's L{IChatOfferHandler} (for its
L{ChatAcceptor<stoxgw.chat.session.ChatAcceptor>}), the L{IOccupantHandler}
of its L{OccupantService} and the L{IReferHandler} of REFERs to rooms.
Toward the SIP user it is the conference focus and MSRP switch of RFC
7701; toward XMPP each SIP user is an ordinary MUC occupant whose real JID
lives on the gateway's user domain.  One L{SIPParticipant} per chat
session carries the user's state.

  - INVITE to C{sip:room@<muc domain>}: the offer is checked first
    (C{message/cpim} accepted, else 488: XMPP is not touched); the user's
    identity is the digest user it authenticated as, else the
    P-Asserted-Identity or From a trusted peer vouches for; the MUC join
    comes before the answer (R-209) with a temporary nick (From display
    name, else user part), and a nick the room already has is replaced by
    the first free variant C{nick_2} ... C{nick_9} (L{nickVariant}); a MUC
    entry error becomes L{sipStatusForMUCEntryError}; on success the focus
    answer of RFC 7701 section 5.2.
  - SEND (CPIM To the room) -> groupchat; the MSRP 200 waits for the MUC
    reflection (R-211), bounded by the occupant service's reflection
    timeout, after which the configured status is sent (200 by default:
    then a MUC error that arrives later becomes a failure REPORT, RFC 4975
    section 7.1.4); CPIM To C{;gr=nick} -> private message; isComposing
    -> XEP-0085 chat states (coalesced to one a second); local checks
    answer 415/403/404/400 (RFC 7701 section 6, SPEC E.4).
  - From the room: groupchat (CPIM To the room URI, From the occupant's
    in-room identity, DateTime = the delay stamp for history, R-216,
    R-207), private messages (CPIM To the user; when the UA did not
    declare C{private-messages}, not delivered, and the XMPP sender gets a
    private notice saying so, R-221), chat states as isComposing where the
    UA accepts it.
  - NICKNAME -> nick change (R-210): 200 once the MUC confirms, 425 on
    conflict, others by SPEC E.4.
  - REFER to the room (in its INVITE dialog or outside it): 200, a
    C{100 Trying} NOTIFY that ends the implicit subscription, and a
    mediated invitation (XEP-0045 7.8.2) to the Refer-To mapped by RFC
    7247 (RFC 7702 section 6.5).  A MUC invitation to a SIP user's JID
    goes to the L{IInvitationSender} given (a REFER or MESSAGE to the
    user).
  - SUBSCRIBE to C{Event: conference} (L{RoomConferencePackage}, RFC
    7702 section 6.2): the roster as the user's occupant sees it
    (L{stoxgw.interworking.conference}), full then partial; a SUBSCRIBE
    that overtakes the INVITE's join waits for it (bounded).
  - BYE -> the unavailable presence, then the 200 (RFC 7702 6.6); removal
    from the room (kick, ban, shutdown, destruction) -> BYE with a
    C{Reason} (R-219).
  - Loss of the XMPP link: the SIP sessions stay; SENDs and NICKNAMEs are
    answered 408 until it is back; then every occupant rejoins with its
    nick (the room's history since the loss is asked for) and the
    conference subscribers get one partial NOTIFY of what changed; a link
    that stays away longer than the grace period, or a failed rejoin, ends
    the chat with BYE (503, or the entry error's status).
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Collection, Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error
from twisted.words.protocols.jabber.jid import JID as XMPPJID
from twisted.words.protocols.jabber.jid import InvalidFormat
from zope.interface import Interface, implementer

from stoxgw.chat.session import (
    AcceptChat,
    ChatDecision,
    ChatEnd,
    ChatOffer,
    ChatSession,
    IChatOfferHandler,
    IChatSessionHandler,
    RejectChat,
)
from stoxgw.formats.conferenceinfo import ConferenceInfo, DisconnectionMethod
from stoxgw.formats.cpim import CPIMAddress
from stoxgw.formats.iscomposing import ComposingState, IsComposing
from stoxgw.interworking.addressing import (
    AddressError,
    SIPAddress,
    parseSIPIdentity,
    realJIDForSIPUser,
    requestURIFromRoomJID,
    roomJIDFromRequestURI,
    sipToJID,
)
from stoxgw.interworking.conference import occupantUser, roomConference
from stoxgw.interworking.errors import (
    MSRP_STATUS_LINK_DOWN,
    GatewayBEnd,
    LocalMSRPFailure,
    disconnectionMethodForMUCRemoval,
    MUCExchange,
    msrpStatusForLocalFailure,
    msrpStatusForStanzaError,
    sipReasonCauseForGatewayBEnd,
    sipReasonCauseForMUCRemoval,
    sipStatusForMUCEntryError,
)
from stoxgw.interworking.ratelimit import RateLimiter
from stoxgw.interworking.translate import (
    CPIM,
    ISCOMPOSING_CONTENT_TYPE,
    Refused,
    chatStateForComposing,
    composingForChatState,
    now,
    unwrap,
    wrapComposing,
    wrapText,
)
from stoxgw.msrp.session import IncomingMessage
from stoxgw.sip.message import SIPRequest
from stoxgw.sip.refer import IncomingRefer, IReferHandler
from stoxgw.sip.sdp import acceptTypesIntersection
from stoxgw.sip.subscription import (
    ConferenceNotifier,
    ConferencePackage,
    SubscriptionReason,
)
from stoxgw.sip.uri import NameAddr, SIPURI, contactIsFocus
from stoxgw.sip.useragent import IncomingRequest
from stoxgw.xmpp.occupant import (
    ChatState,
    Decline,
    GroupchatMessage,
    Invitation,
    IOccupantHandler,
    JoinResult,
    LeftReason,
    LinkLost,
    NotInRoom,
    Occupant,
    OccupantError,
    OccupantKey,
    OccupantService,
    PrivateMessage,
    ReflectionTimeout,
    Removal,
    Subject,
)

#: Our C{accept-types} as focus (RFC 7701 section 5.2: CPIM only).
ACCEPT_TYPES = ("message/cpim",)
#: What we can translate inside CPIM (R-215: only what is mapped): text,
#: and isComposing (R-225, RFC 3994).
ACCEPT_WRAPPED_TYPES = ("text/plain", ISCOMPOSING_CONTENT_TYPE)
#: The C{a=chatroom} tokens we offer (RFC 7701 section 8).
CHATROOM_TOKENS = ("nickname", "private-messages")
#: What the sender of a private message to a SIP user that takes none
#: gets back (R-221).
PRIVATE_MESSAGES_REFUSED = (
    "[gateway] Not delivered: this SIP user's client does not take private"
    " messages (RFC 7701 section 6.2)."
)
#: How many private-message ids wait for a possible MUC error, per user;
#: also how many unreflected groupchat ids wait for a late one.
MAX_PENDING_PRIVATE = 64
#: The temporary nick and this many variants are tried (L{nickVariant}).
MAX_NICK_VARIANTS = 9
#: At most one chat state a second from a SIP user to one target (R-225).
CHAT_STATE_INTERVAL = 1.0
#: How long a conference SUBSCRIBE waits for a join still under way.
SUBSCRIBE_WAIT = 5.0
#: Default seconds the SIP sessions wait for a lost XMPP link.
LINK_LOSS_GRACE = 60.0
#: Default INVITEs a minute per SIP identity, and per room.
INVITES_PER_USER = 20
INVITES_PER_ROOM = 120


class ISIPToXMPP(IChatOfferHandler, IOccupantHandler, IReferHandler):
    """
    The Direction B interface (RFC 7702 section 6): decides about INVITEs
    to MUC rooms, takes REFERs to them, and hears what happens to the
    resulting occupants.
    """


class IInvitationSender(Interface):
    """
    Tells a SIP user of a MUC invitation (R-222).
    """

    def invitationReceived(realJID: XMPPJID, invitation: Invitation) -> Deferred[Any]:
        """
        An invitation to C{invitation.roomJID} arrived for the SIP user
        whose real JID is C{realJID}.
        """


def _bare(address: XMPPJID) -> str:
    """
    C{address} without resource, as text (Twisted's JID is untyped).
    """
    return str(address.userhost())  # type: ignore[no-untyped-call]


def _full(address: XMPPJID) -> str:
    """
    C{address} as text.
    """
    return str(address.full())  # type: ignore[no-untyped-call]


def _key(roomJID: XMPPJID, realJID: XMPPJID) -> tuple[str, str]:
    return (_bare(roomJID), _full(realJID))


def _conditionOf(reason: BaseException | None) -> str | None:
    """
    The XMPP condition an occupant or stanza error stands for, if any.
    """
    if isinstance(reason, OccupantError):
        return reason.condition
    if isinstance(reason, error.StanzaError):
        return str(reason.condition)
    return None


def nickVariant(nick: str, attempt: int) -> str:
    """
    The nick tried at C{attempt} (1-based) when joining with a temporary
    nick: the nick itself, then C{nick_2}, C{nick_3}... (deterministic, so
    the user can predict it and fix it with NICKNAME, RFC 7702 section 7).
    """
    return nick if attempt <= 1 else f"{nick}_{attempt}"


def _logged(log: Logger, what: str, **fields: Any) -> Callable[[Failure], None]:
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

    def __init__(self, send: Callable[[ChatState], None], clock: IReactorTime) -> None:
        self._send = send
        self._clock = clock
        self.last: ChatState | None = None
        self._lastAt: float | None = None
        self._pending: ChatState | None = None
        self._timer: IDelayedCall | None = None

    def offer(self, state: ChatState) -> None:
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

    def sentWithMessage(self, state: ChatState) -> None:
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

    def _emit(self, state: ChatState) -> None:
        self.last = state
        self._lastAt = self._clock.seconds()
        self._send(state)

    def cancel(self) -> None:
        timer, self._timer = self._timer, None
        self._pending = None
        if timer is not None and timer.active():
            timer.cancel()


@implementer(IChatSessionHandler)
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
        self.room = _bare(roomJID)
        self.real = _full(realJID)
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
                None if occupant.jid is None else _full(occupant.jid),
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
                    None if occupant.jid is None else _full(occupant.jid),
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
        """
        if nick is not None:
            # RFC 3994 section 3.2: a message ends the composing state.
            self._composingIn[(nick, private)] = ComposingState.IDLE
        try:
            payload = wrapText(
                body,
                self.occupantAddress(nick),
                self.recipientAddress(private),
                stamp if stamp is not None else now(self.bridge.clock),
            )
        except ValueError as e:
            self._log.warn(
                "Cannot wrap a message from {nick} in {roomJID}: {error}",
                nick=nick,
                roomJID=self.room,
                error=str(e),
            )
            return
        self._deliver(payload)

    def deliverChatState(self, nick: str, state: ChatState, private: bool) -> None:
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
            _logged(self._log, "Leaving {roomJID}", roomJID=self.room)
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
            raise Refused(
                msrpStatusForLocalFailure(LocalMSRPFailure.MULTIPLE_CPIM_TO),
                "exactly one CPIM To is allowed",
            )
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

            def send(state: ChatState) -> None:
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

    def _messageChatState(self, nick: str | None) -> ChatState | None:
        """
        C{<active/>} on a message once the user showed chat states to that
        target (XEP-0085 section 5.1), else nothing.
        """
        out = self._chatStatesOut.get(nick)
        if out is None or out.last is None:
            return None
        out.sentWithMessage(ChatState.ACTIVE)
        return ChatState.ACTIVE

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
            if isinstance(reason.value, ReflectionTimeout):
                # bounded wait, then the configured status; after a
                # 200 a late MUC error still reaches the sender as a
                # failure REPORT.
                status = self.bridge.reflectionTimeoutStatus
                if status == 200:
                    self._remember(self._unreflected, stanzaID, message)
                return status
            if isinstance(reason.value, LinkLost):
                return MSRP_STATUS_LINK_DOWN
            condition = _conditionOf(reason.value)
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
            condition = _conditionOf(reason.value)
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
            _logged(self._log, "Leaving {roomJID}", roomJID=self.room)
        )


def _randomResource() -> str:
    return uuid.uuid4().hex[:16]


@implementer(ISIPToXMPP)
class SIPToXMPP:
    """
    Gateway B (RFC 7702 section 6).

    @ivar clock: Time source (CPIM DateTime of live messages, timers).
    @ivar userDomain: The gateway's XMPP domain for SIP users' real JIDs.
    @ivar mucDomains: The MUC domains served (empty: any).
    @ivar occupants: The occupant service (set with L{useOccupants}).
    @ivar participants: The SIP users in rooms, by (room, real JID).
    @ivar reflectionTimeoutStatus: The MSRP status of a groupchat SEND whose
        reflection did not come in time: 200 (the default; a later MUC
        error becomes a failure REPORT) or 408.
    @ivar linkLossGrace: Seconds the SIP sessions wait for a lost link.
    @ivar authRealm: The digest realm: a user authenticated as C{alice}
        is C{sip:alice@<realm>} (C{alice@host} names the host itself).
    @ivar invitations: Tells SIP users of MUC invitations, or L{None}.
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        userDomain: str,
        mucDomains: Collection[str] = (),
        resourceFactory: Callable[[], str] = _randomResource,
        *,
        reflectionTimeoutStatus: int = 200,
        linkLossGrace: float = LINK_LOSS_GRACE,
        authRealm: str | None = None,
        invitations: IInvitationSender | None = None,
        invitesPerUser: int = INVITES_PER_USER,
        invitesPerRoom: int = INVITES_PER_ROOM,
    ) -> None:
        if reflectionTimeoutStatus not in (200, 408):
            raise ValueError("reflectionTimeoutStatus is 200 or 408")
        self.clock = clock
        self.userDomain = userDomain
        self.mucDomains = tuple(mucDomains)
        self.resourceFactory = resourceFactory
        self.reflectionTimeoutStatus = reflectionTimeoutStatus
        self.linkLossGrace = linkLossGrace
        self.authRealm = authRealm
        self.invitations = invitations
        self.userInvites = RateLimiter(clock, invitesPerUser)
        self.roomInvites = RateLimiter(clock, invitesPerRoom)
        self.ownRoomDomains: tuple[str, ...] = ()
        #: Takes INVITEs from conference focuses (their Contact says
        #: C{isfocus}): a focus dialling out to an XMPP user (RFC 4579),
        #: RFC 7702 section 5's side.
        self.focusInvites: IChatOfferHandler | None = None
        self._occupants: OccupantService | None = None
        self.participants: dict[tuple[str, str], SIPParticipant] = {}

    def useOccupants(self, occupants: OccupantService) -> None:
        """
        Use C{occupants} (whose handler is this object) for the MUC side.
        """
        self._occupants = occupants

    @property
    def occupants(self) -> OccupantService:
        """
        The occupant service.
        """
        assert self._occupants is not None, "useOccupants() first"
        return self._occupants

    def _forget(self, participant: SIPParticipant) -> None:
        key = _key(participant.roomJID, participant.realJID)
        if self.participants.get(key) is participant:
            del self.participants[key]

    def _participant(self, roomJID: XMPPJID, realJID: XMPPJID) -> SIPParticipant | None:
        return self.participants.get(_key(roomJID, realJID))

    # -- IChatOfferHandler ---------------------------------------------------

    def chatOffered(self, offer: ChatOffer) -> ChatDecision | Deferred[ChatDecision]:
        """
        An INVITE to a room: check the offer, map the addresses, join the
        MUC, then answer (R-209).
        """
        request = offer.invite.request
        callID = request.header("Call-ID")
        if self.focusInvites is not None and contactIsFocus(request.header("Contact")):
            # A SIP user agent joining a room is never a focus itself.
            return self.focusInvites.chatOffered(offer)
        if not acceptTypesIntersection(ACCEPT_TYPES, offer.media.acceptTypes):
            # RFC 7701 section 5.2: a focus needs message/cpim; nothing
            # reaches XMPP.
            self._log.info(
                "INVITE refused ({callID}): the offer does not accept message/cpim",
                callID=callID,
            )
            return RejectChat(488, "Not Acceptable Here (message/cpim required)")
        try:
            roomJID, realJID, roomAddress, userAddress, nick = self._addresses(offer)
        except AddressError as e:
            self._log.info(
                "INVITE refused ({callID}): {error}", callID=callID, error=str(e)
            )
            return RejectChat(e.sipStatus, e.reason)
        if str(roomJID.host).lower() in {d.lower() for d in self.ownRoomDomains}:
            # A room of our own room domain (RFC 7702 section 5) is a SIP
            # room: joining it as an XMPP room would come back here
            # (RFC 5393 loop protection).
            self._log.warn(
                "INVITE refused ({callID}): {roomJID} is our own room domain (loop)",
                callID=callID,
                roomJID=_bare(roomJID),
            )
            return RejectChat(482, "Loop Detected")
        for limiter, what, name in (
            (self.userInvites, "user", userAddress.aor.uri()),
            (self.roomInvites, "room", _bare(roomJID)),
        ):
            if not limiter.admit(name):
                # Issue 11 item 6: every INVITE makes a visible join, so
                # a flood would flood the room.  503 with Retry-After is
                # SIP's "come back later" (RFC 3261 section 21.5.4).
                self._log.warn(
                    "INVITE refused ({callID}): too many for {what} {name}",
                    callID=callID,
                    what=what,
                    name=name,
                )
                return RejectChat(
                    503,
                    "Service Unavailable (too many joins)",
                    headers=(("Retry-After", str(limiter.retryAfter(name))),),
                )
        privateMessages = "private-messages" in (offer.media.chatroom or ())
        key = _key(roomJID, realJID)
        if key in self.participants:
            return RejectChat(486, "Already in the room")
        participant = SIPParticipant(
            self, roomJID, realJID, roomAddress, userAddress, nick, privateMessages
        )
        self.participants[key] = participant
        self._log.info(
            "SIP user {user} enters {roomJID} as {nick} ({callID})",
            user=userAddress.uri(),
            roomJID=_bare(roomJID),
            nick=nick,
            callID=callID,
        )
        d = self._join(participant, offer, nick, 1)
        return d.addCallbacks(
            self._joined,
            self._joinFailed,
            callbackArgs=(offer, participant),
            errbackArgs=(offer, participant),
        )

    def _join(
        self, participant: SIPParticipant, offer: ChatOffer, base: str, attempt: int
    ) -> Deferred[JoinResult]:
        """
        Join with L{nickVariant}C{(base, attempt)}; on a nick conflict try
        the next variant (RFC 7702 section 7: the temporary nick is ours to
        choose).
        """
        participant.nick = nickVariant(base, attempt)
        d = self.occupants.join(participant.roomJID, participant.nick, participant.realJID)

        def conflict(reason: Failure) -> Any:
            if (
                _conditionOf(reason.value) != "conflict"
                or attempt >= MAX_NICK_VARIANTS
                or offer.invite.answered
            ):
                return reason
            self._log.info(
                "Nick {nick} taken in {roomJID}; trying {next}",
                nick=participant.nick,
                roomJID=participant.room,
                next=nickVariant(base, attempt + 1),
            )
            return self._join(participant, offer, base, attempt + 1)

        result: Deferred[JoinResult] = d.addErrback(conflict)
        return result

    def _identity(self, offer: ChatOffer, fromAddr: NameAddr) -> SIPAddress:
        """
        Who the SIP user is: the digest user it authenticated as, else
        (a trusted peer's request) the P-Asserted-Identity (RFC 3325), else
        the From.

        @raise AddressError: With the SIP status.
        """
        request = offer.invite.request
        authenticated = offer.invite.transaction.authenticatedUser
        if authenticated is not None:
            text = authenticated if "@" in authenticated else f"{authenticated}@{self.authRealm}"
            identity = parseSIPIdentity("sip:" + text).aor
        else:
            asserted = request.header("P-Asserted-Identity")
            source = fromAddr
            if asserted:
                try:
                    source = NameAddr.fromString(asserted.split(",")[0].strip())
                except ValueError as e:
                    raise AddressError(
                        f"bad P-Asserted-Identity: {e}", 400, "bad-request"
                    ) from None
            identity = parseSIPIdentity(str(source.uri)).aor
        if identity.user is None:
            raise AddressError("the identity has no user part", 400, "bad-request")
        return identity

    def _addresses(
        self, offer: ChatOffer
    ) -> tuple[XMPPJID, XMPPJID, SIPAddress, SIPAddress, str]:
        """
        Room JID, real JID, room URI, user AOR and temporary nick of an
        INVITE.

        @raise AddressError: With the SIP status for the INVITE.
        """
        request = offer.invite.request
        room = roomJIDFromRequestURI(str(request.uri), self.mucDomains)
        fromHeader = request.header("From")
        if fromHeader is None:
            raise AddressError("no From", 400, "bad-request")
        try:
            fromAddr = NameAddr.fromString(fromHeader)
        except ValueError as e:
            raise AddressError(f"bad From: {e}", 400, "bad-request") from None
        user = self._identity(offer, fromAddr)
        resource = self._contactGR(request.header("Contact"))
        real = realJIDForSIPUser(
            user, self.userDomain, resource or self.resourceFactory()
        )
        assert user.user is not None
        nick = (fromAddr.displayName or "").strip() or user.user
        roomJID = XMPPJID(str(room))
        return (
            roomJID,
            XMPPJID(str(real)),
            requestURIFromRoomJID(room),
            user,
            nick,
        )

    @staticmethod
    def _contactGR(contact: str | None) -> str | None:
        """
        The AOR-bound GRUU C{gr} of the Contact (the resource, SPEC C.2.1).
        """
        if not contact:
            return None
        try:
            address = NameAddr.fromString(contact)
        except ValueError:
            return None
        uri = address.uri
        if not isinstance(uri, SIPURI):
            return None
        for name, value in uri.parameters:
            if name.lower() == "gr" and value:
                return value
        return None

    def _joined(
        self, result: JoinResult, offer: ChatOffer, participant: SIPParticipant
    ) -> ChatDecision:
        participant.nick = result.nick
        participant.joined = True
        participant.role = result.self.role
        if result.self.jid is not None:
            participant.realAddress = _full(result.self.jid)
        if offer.invite.answered:
            # CANCELled while joining: out again.
            self._forget(participant)
            participant.inRoom = False
            participant.joinSettled()
            self.occupants.leave(participant.roomJID, participant.realJID).addErrback(
                _logged(self._log, "Leaving {roomJID}", roomJID=participant.room)
            )
            return RejectChat(487)
        participant.joinSettled()
        return AcceptChat(
            participant,
            acceptTypes=ACCEPT_TYPES,
            acceptWrappedTypes=ACCEPT_WRAPPED_TYPES,
            requiredTypes=ACCEPT_TYPES,
            chatroom=CHATROOM_TOKENS,
            isfocus=True,
        )

    def _joinFailed(
        self, reason: Failure, offer: ChatOffer, participant: SIPParticipant
    ) -> ChatDecision:
        self._forget(participant)
        participant.inRoom = False
        participant.joinSettled()
        condition = _conditionOf(reason.value)
        if condition is None:
            self._log.failure("Joining {roomJID}", reason, roomJID=participant.room)
            return RejectChat(500)
        status = sipStatusForMUCEntryError(condition)
        self._log.info(
            "Room {roomJID} refused {nick}: {error} -> {status}",
            roomJID=participant.room,
            nick=participant.nick,
            error=condition,
            status=status,
        )
        return RejectChat(status)

    # -- IOccupantHandler ----------------------------------------------------

    def occupantAvailable(
        self, roomJID: XMPPJID, realJID: XMPPJID, occupant: Occupant, new: bool
    ) -> None:
        """
        An occupant entered or changed (role...), our own included: a
        partial NOTIFY if the conference-info changed (R-213).
        """
        participant = self._participant(roomJID, realJID)
        if participant is None:
            return
        if occupant.isSelf:
            participant.role = occupant.role
            if occupant.jid is not None:
                participant.realAddress = _full(occupant.jid)
        participant.rosterChanged()

    def occupantLeft(
        self, roomJID: XMPPJID, realJID: XMPPJID, occupant: Occupant, removal: Removal
    ) -> None:
        """
        Another occupant left: a partial NOTIFY deleting its user (R-213);
        one that was removed is first shown disconnected, C{booted} or
        C{failed} (SPEC E.5).
        """
        participant = self._participant(roomJID, realJID)
        if participant is None:
            return
        participant.forgetOccupant(occupant.nick)
        method = disconnectionMethodForMUCRemoval(removal.statusCodes)
        if method is DisconnectionMethod.DEPARTED:
            participant.rosterChanged()
        else:
            participant.occupantRemoved(occupant, method)

    def occupantNickChanged(
        self, roomJID: XMPPJID, realJID: XMPPJID, oldNick: str, occupant: Occupant
    ) -> None:
        """
        Another occupant changed nick: a partial NOTIFY deleting the old
        user and adding the new one (R-213).
        """
        participant = self._participant(roomJID, realJID)
        if participant is not None:
            participant.forgetOccupant(oldNick)
            participant.rosterChanged()

    def nickChanged(
        self, roomJID: XMPPJID, realJID: XMPPJID, oldNick: str, newNick: str
    ) -> None:
        """
        Our occupant's nick changed (asked for, or by the service): also a
        deleted and a new user in the conference-info (R-213).
        """
        participant = self._participant(roomJID, realJID)
        if participant is not None and participant.nick != newNick:
            participant.nick = newNick
            participant.rosterChanged()

    def left(self, roomJID: XMPPJID, realJID: XMPPJID, removal: Removal) -> None:
        """
        Our occupant is out of the room: unless we left, end the chat with a
        BYE whose Reason says why (R-219, SPEC E.5).
        """
        participant = self._participant(roomJID, realJID)
        if participant is None or not participant.inRoom:
            return
        self._forget(participant)
        cause = sipReasonCauseForMUCRemoval(removal.statusCodes)
        if cause is None and removal.reason is LeftReason.DESTROYED:
            cause = sipReasonCauseForGatewayBEnd(GatewayBEnd.ROOM_DESTROYED)
        text = f"Removed from the room: {removal.reason.value}"
        if removal.text:
            text += f" ({removal.text})"
        self._log.info(
            "{nick} is out of {roomJID}: {error}",
            nick=participant.nick,
            roomJID=_bare(roomJID),
            error=removal.reason.value,
        )
        participant.end(cause, text)

    def subjectReceived(
        self, roomJID: XMPPJID, realJID: XMPPJID, subject: Subject
    ) -> None:
        """
        The room subject: into C{<conference-description><subject>} (a
        partial NOTIFY when it changes, R-217).
        """
        participant = self._participant(roomJID, realJID)
        if participant is None:
            return
        participant.subject = subject.text or None
        participant.rosterChanged()

    def groupchatReceived(
        self, roomJID: XMPPJID, realJID: XMPPJID, message: GroupchatMessage
    ) -> None:
        """
        A groupchat message: to the SIP user, CPIM To the room, unless it is
        our own reflection (never echoed, RFC 7701 section 6.1).
        """
        participant = self._participant(roomJID, realJID)
        if participant is None:
            return
        if message.fromSelf or message.reflectionOf is not None:
            return
        participant.deliver(message.nick, message.body, message.stamp)

    def privateMessageReceived(
        self, roomJID: XMPPJID, realJID: XMPPJID, message: PrivateMessage
    ) -> None:
        """
        A private message: to the SIP user (CPIM To the user) if it
        declared C{private-messages}, else a private notice back to its
        sender saying it was not delivered (RFC 7701 section 6.2, R-221).
        """
        participant = self._participant(roomJID, realJID)
        if participant is None:
            return
        if not participant.privateMessages:
            # RFC 7701 section 6.2: not delivered.  Its sender is told with
            # a private notice, not an error stanza: Prosody and ejabberd
            # remove an occupant that sends an error through the room
            # (seen with both), so an error would cost the SIP user its
            # place in the room.
            self._log.info(
                "Private message from {nick} in {roomJID} not delivered: the SIP user takes none",
                nick=message.nick,
                roomJID=_bare(roomJID),
            )
            try:
                self.occupants.sendPrivate(
                    roomJID, realJID, message.nick, PRIVATE_MESSAGES_REFUSED
                )
            except OccupantError as e:
                self._log.warn(
                    "Cannot tell {nick} in {roomJID} its message was not delivered: {error}",
                    nick=message.nick,
                    roomJID=_bare(roomJID),
                    error=str(e),
                )
            return
        participant.deliver(message.nick, message.body, message.stamp, private=True)

    def chatStateReceived(
        self,
        roomJID: XMPPJID,
        realJID: XMPPJID,
        nick: str,
        state: ChatState,
        private: bool,
    ) -> None:
        """
        An occupant's chat state: isComposing to the SIP user (SPEC E.6,
        R-225), if it takes private messages for a private one.
        """
        participant = self._participant(roomJID, realJID)
        if participant is None or (private and not participant.privateMessages):
            return
        participant.deliverChatState(nick, state, private)

    def messageFailed(
        self,
        roomJID: XMPPJID,
        realJID: XMPPJID,
        stanzaID: str | None,
        reason: error.StanzaError,
    ) -> None:
        """
        A late MUC error: a failure REPORT for the message it answers.
        """
        participant = self._participant(roomJID, realJID)
        if participant is not None and participant.messageFailed(stanzaID, reason):
            return
        self._log.info(
            "Unmatched message error in {roomJID}: {error}",
            roomJID=_bare(roomJID),
            error=str(reason.condition),
        )

    def invitationReceived(self, realJID: XMPPJID, invitation: Invitation) -> None:
        """
        A MUC invitation (mediated or direct) to a SIP user: to the
        invitation sender (R-222).
        """
        if self.invitations is None:
            self._log.info(
                "Invitation to {roomJID} for {realJID} not forwarded: no sender",
                roomJID=_bare(invitation.roomJID),
                realJID=_full(realJID),
            )
            return
        self.invitations.invitationReceived(realJID, invitation).addErrback(
            lambda reason: self._log.failure(
                "Forwarding an invitation to {realJID}", reason, realJID=_full(realJID)
            )
        )

    def declineReceived(self, realJID: XMPPJID, decline: Decline) -> None:
        """
        An invitee declined the SIP user's invitation: no SIP request means
        this, so a text notice from the room (SPEC C.2.5).
        """
        for participant in self.participants.values():
            if participant.room == _bare(decline.roomJID) and participant.real == _full(
                realJID
            ):
                who = _full(decline.decliner) if decline.decliner is not None else "someone"
                text = f"{who} declined your invitation"
                if decline.reason:
                    text += f": {decline.reason}"
                participant.deliver(None, text, None, private=True)
                return
        self._log.info(
            "Decline from {roomJID} for {realJID} with no chat",
            roomJID=_bare(decline.roomJID),
            realJID=_full(realJID),
        )

    def linkLost(self, domain: str, occupants: Sequence[OccupantKey]) -> None:
        """
        The XMPP link is gone: keep the SIP sessions, waiting for the link
        (L{linkLossGrace}); their SENDs get 408 meanwhile.
        """
        for roomJID, realJID in occupants:
            participant = self._participant(roomJID, realJID)
            if participant is not None and participant.inRoom:
                participant.linkLost(self.linkLossGrace)

    def linkRestored(self, domain: str, occupants: Sequence[OccupantKey]) -> None:
        """
        The link is back: every occupant rejoins with its nick; one that
        cannot ends its chat with BYE.
        """
        waiting = [
            p
            for p in (self._participant(room, real) for room, real in occupants)
            if p is not None and p.inRoom
        ]
        if not waiting:
            return
        self.occupants.rejoinAll().addCallback(self._rejoined).addErrback(
            lambda reason: self._log.failure("Rejoining after a link loss", reason)
        )

    def _rejoined(self, results: list[tuple[OccupantKey, JoinResult | Failure]]) -> None:
        for (roomJID, realJID), result in results:
            participant = self._participant(roomJID, realJID)
            if participant is None or not participant.inRoom:
                continue
            if isinstance(result, JoinResult):
                participant.rejoined(result)
                continue
            condition = _conditionOf(result.value)
            if isinstance(result.value, LinkLost):
                # Lost again while rejoining: the grace timer still runs.
                continue
            cause = (
                sipStatusForMUCEntryError(condition)
                if condition is not None
                else sipReasonCauseForGatewayBEnd(GatewayBEnd.LINK_LOST)
            )
            self._log.warn(
                "{nick} could not rejoin {roomJID}: {error}",
                nick=participant.nick,
                roomJID=participant.room,
                error=result.getErrorMessage(),
            )
            self._forget(participant)
            participant.end(cause, "Could not rejoin the room after a link loss")

    # -- the participant of a SUBSCRIBE or REFER ---------------------------

    def _requester(self, request: SIPRequest) -> tuple[SIPAddress, list[SIPParticipant]]:
        """
        The participants a SUBSCRIBE or REFER may come from: inside an
        INVITE dialog, the one whose chat it is (its Request-URI is our
        Contact, not the room); else those of the room of its Request-URI
        and the user of its From.

        @raise AddressError: With the status to answer (400 for a bad
            From; for a Request-URI naming no room of ours, that of
            L{roomJIDFromRequestURI}: 403, 484).
        """
        fromHeader = request.header("From")
        if fromHeader is None:
            raise AddressError("no From", 400, "bad-request")
        try:
            user = parseSIPIdentity(str(NameAddr.fromString(fromHeader).uri)).aor
        except (ValueError, AddressError) as e:
            raise AddressError(f"bad From: {e}", 400, "bad-request") from None
        callID = request.header("Call-ID")
        for participant in self.participants.values():
            session = participant.session
            if (
                session is not None
                and session.callID == callID
                and participant.userAddress.aor == user
            ):
                return user, [participant]
        room = roomJIDFromRequestURI(str(request.uri), self.mucDomains)
        roomText = _bare(XMPPJID(str(room)))
        return user, [
            participant
            for participant in self.participants.values()
            if participant.room == roomText and participant.userAddress.aor == user
        ]

    def conferenceStatus(self, request: SIPRequest) -> int | None | Deferred[int | None]:
        """
        L{None} if a conference SUBSCRIBE may go ahead, else its failure
        status (403, or 400/484 see L{_requester}); a L{Deferred} of that
        when a join is still under way.
        """
        try:
            user, candidates = self._requester(request)
        except AddressError as e:
            return self._subscribeRefused(request, e.sipStatus, str(e))
        ready = [p for p in candidates if p.joined and p.inRoom]
        if ready:
            return None
        joining = [p for p in candidates if not p.joined and p.inRoom]
        if not joining:
            return self._subscribeRefused(
                request, 403, f"{user.uri()} is not an occupant of that room"
            )
        waiter: Deferred[SIPParticipant | None] = Deferred()
        joining[0].waiters.append(waiter)
        waiter.addTimeout(SUBSCRIBE_WAIT, self.clock)

        def settled(participant: SIPParticipant | None) -> int | None:
            if participant is None:
                return self._subscribeRefused(request, 403, "the join failed")
            return None

        def timedOut(reason: Failure) -> int | None:
            return self._subscribeRefused(request, 403, "the join is still under way")

        return waiter.addCallbacks(settled, timedOut)

    def _subscribeRefused(self, request: SIPRequest, status: int, why: str) -> int:
        self._log.info(
            "Conference SUBSCRIBE refused with {status} ({callID}): {error}",
            status=status,
            callID=request.header("Call-ID"),
            error=why,
        )
        return status

    def conferenceFor(self, request: SIPRequest) -> ConferenceNotifier | None:
        """
        The conference notifier for a SUBSCRIBE (L{ConferencePackage}'s
        lookup), or L{None}.
        """
        try:
            _, candidates = self._requester(request)
        except AddressError:
            return None
        for participant in candidates:
            if participant.joined and participant.inRoom:
                return participant.notifier()
        return None

    # -- IReferHandler (RFC 7702 section 6.5) ---------------------------------

    def referReceived(self, refer: IncomingRefer) -> None:
        """
        A REFER to the room from a SIP user in it: a mediated invitation
        to the Refer-To (RFC 7247 mapping), answered 200 with a C{100
        Trying} NOTIFY that ends the implicit subscription (RFC 7702
        section 6.5); 403 from someone not in the room or for a method
        other than INVITE (RFC 4579 removal is out of scope, RFC 7702
        section 1), 416 for a Refer-To that maps to no JID, 480 while the
        XMPP link is down.
        """
        request = refer.request
        try:
            _, candidates = self._requester(request)
        except AddressError as e:
            refer.reject(e.sipStatus, e.reason)
            return
        participants = [p for p in candidates if p.joined and p.inRoom]
        if not participants:
            refer.reject(403, "Forbidden (not in the room)")
            return
        participant = participants[0]
        if refer.referTo.method != "INVITE":
            refer.reject(403, f"Forbidden ({refer.referTo.method} not supported)")
            return
        invitee = self._inviteeJID(str(refer.referTo.uri))
        if invitee is None:
            refer.reject(416, "Unsupported URI Scheme")
            return
        if participant.linkDown:
            refer.reject(480, "Temporarily Unavailable (XMPP link down)")
            return
        try:
            self.occupants.invite(participant.roomJID, participant.realJID, invitee)
        except OccupantError as e:
            refer.reject(480, f"Temporarily Unavailable ({e})")
            return
        self._log.info(
            "{nick} invites {invitee} to {roomJID}",
            nick=participant.nick,
            invitee=_full(invitee),
            roomJID=participant.room,
        )
        refer.accept(200, terminate=True)

    @staticmethod
    def _inviteeJID(uri: str) -> XMPPJID | None:
        """
        The JID of a Refer-To URI: C{sip:}/C{sips:} by RFC 7247 section
        6.4 (its C{gr} ignored: an invitation goes to the bare JID), an
        C{xmpp:} URI as it is (RFC 5122), else L{None}.
        """
        scheme = uri.split(":", 1)[0].lower()
        try:
            if scheme in ("sip", "sips"):
                address = parseSIPIdentity(uri)
                return XMPPJID(str(sipToJID(address.aor)))
            if scheme == "xmpp":
                text = uri[5:].lstrip("/").split("?", 1)[0]
                return XMPPJID(text).userhostJID()  # type: ignore[no-untyped-call,no-any-return]
        except (AddressError, InvalidFormat, ValueError):
            return None
        return None


class RoomConferencePackage(ConferencePackage):
    """
    The C{conference} event package of Gateway B (RFC 7702 section 6.2,
    R-213): a SIP user in an XMPP room subscribes, in or out of its INVITE
    dialog, to the room's SIP URI and gets the roster as its occupant sees
    it; others get 403 (not an occupant, or a domain not served) or 484
    (no room named).
    """

    def __init__(self, bridge: SIPToXMPP, defaultExpires: int = 3600) -> None:
        super().__init__(bridge.conferenceFor, defaultExpires)
        self.bridge = bridge

    def authorize(self, request: IncomingRequest) -> int | None | Deferred[int | None]:
        """
        L{None} for a SUBSCRIBE of an occupant's SIP user, else 403 or 484;
        a L{Deferred} while its join is under way.
        """
        return self.bridge.conferenceStatus(request.request)
