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
from collections import OrderedDict
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
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
    ChatEnd,
    ChatInitiator,
    ChatSession,
    ChatSessionError,
    IChatOfferHandler,
    EndCause,
    IChatSessionHandler,
)
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.interworking.addressing import (
    AddressError,
    SIPAddress,
    focusURIForRoomJID,
    roomJIDForFocusURI,
    sipToJID,
    jidToSIP,
    parseSIPIdentity,
)
from stoxgw.interworking.errors import (
    GatewayBEnd,
    sipReasonCauseForGatewayBEnd,
    MSRPMethod,
    MUCStatus,
    Termination,
    mucStatusForSIPBye,
    mucStatusForTermination,
    stanzaErrorForMSRPStatus,
    stanzaErrorForSIPEntryFailure,
    stanzaErrorForSIPStatus,
)
from stoxgw.formats.conferenceinfo import (
    CONFERENCE_INFO_CONTENT_TYPE,
    ConferenceInfo,
    User,
)
from stoxgw.formats.iscomposing import ComposingState
from stoxgw.interworking.conference import (
    addressesOfUser,
    rosterOfConference,
    subjectOfConference,
)
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
from stoxgw.msrp.session import IncomingMessage, MSRPSendError
from stoxgw.rooms.model import (
    Anonymity,
    Subject,
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
from stoxgw.sip.refer import ReferAgent
from stoxgw.sip.subscription import (
    ClientSubscription,
    ConferenceWatcher,
    SIPEvents,
    SubscriptionReason,
)
from stoxgw.sip.uri import NameAddr, SIPURI, contactIsFocus
from stoxgw.xmpp.component import ILinkObserver
from stoxgw.xmpp.occupant import ChatState
from stoxgw.xmpp.room import IRoomBackend, JoinAccepted, MUCService, mucError

#: What we accept from the focus (RFC 7701 section 5.2: CPIM).
ACCEPT_TYPES = ("message/cpim",)
#: What we translate inside CPIM (text, and isComposing: R-225).
ACCEPT_WRAPPED_TYPES = ("text/plain", ISCOMPOSING_CONTENT_TYPE)
#: How long a join waits for the focus's first conference-info.
SUBSCRIBE_WAIT = 5.0
#: How long a chat whose nick the focus refused waits for another try.
NICK_RETRY_WAIT = 60.0
#: How many recent room messages are remembered to show each only once.
SEEN_MESSAGES = 512
#: The BYE's Reason cause when the room domain's XMPP link is lost.
LINK_LOST_CAUSE = sipReasonCauseForGatewayBEnd(GatewayBEnd.LINK_LOST)
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


def _key(nick: str) -> str | None:
    """
    The RFC 7700 comparison form of a nick, L{None} if it is not one.
    """
    try:
        return comparisonKey(nick)
    except InvalidNickname:
        return None


def _isFocus(session: ChatSession) -> bool:
    """
    Whether the answer's Contact carries the C{isfocus} feature tag (RFC
    4579 section 3.3; RFC 7701 section 5.2; R-009).
    """
    response = getattr(session.dialog, "inviteResponse", None)
    return response is not None and contactIsFocus(response.header("Contact"))


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
        self.nicknames = True
        self.nickRefused = False
        self.dialedOut = False
        self.resource: str | None = None
        self.composing: dict[str, ComposingState] = {}
        self.waiting: list[Deferred[JoinAccepted | None]] = []
        self._retryTimer: IDelayedCall | None = None

    def __repr__(self) -> str:
        return f"<XMPPParticipant {self.nick} {self.user} in {self.roomJID}>"

    # -- toward the focus ----------------------------------------------------

    def sender(self, private: bool) -> CPIMAddress:
        """
        The CPIM From of the user (RFC 7702 Table 4): its address of
        record, with its resource as GRUU on private messages (R-005).
        """
        if private and self.resource:
            return CPIMAddress(self.address.aor.withGR(self.resource).uri())
        return CPIMAddress(self.address.aor.uri())

    def cpim(self, body: str, to: SIPAddress) -> bytes:
        """
        A C{message/cpim} body from the user (RFC 7702 Table 4).
        """
        return wrapText(
            body,
            self.sender(to.gr is not None),
            CPIMAddress(to.uri()),
            now(self.bridge.clock),
        )

    def sendComposing(self, state: ComposingState, to: SIPAddress) -> None:
        """
        An isComposing indication (R-225) to the room or an occupant, if
        the focus takes them.
        """
        session = self.session
        if session is None or not self.joined:
            return
        if not session.peerAccepts(ISCOMPOSING_CONTENT_TYPE, True):
            return
        payload = wrapComposing(
            state, self.sender(to.gr is not None), CPIMAddress(to.uri()), now(self.bridge.clock)
        )
        session.sendMessage(CPIM, payload).addErrback(
            lambda reason: self._log.info(
                "isComposing to {roomJID} not delivered: {error}",
                roomJID=self.roomJID,
                error=reason.getErrorMessage(),
            )
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

    def end(self, text: str, status: int | None = None) -> None:
        """
        Leave: BYE (RFC 7702 section 5.8) with C{text} (and the SIP cause
        C{status}) in its C{Reason}.
        """
        self.leaving = True
        timer, self._retryTimer = self._retryTimer, None
        if timer is not None and timer.active():
            timer.cancel()
        if self.session is not None:
            self.session.end(text, status=status)

    def awaitNickRetry(self, wait: float) -> None:
        """
        The focus refused the nick (425): keep the chat for C{wait}
        seconds, for the client to try another nick (RFC 7702 section 5.6,
        SPEC C.1.2); then BYE.
        """
        self.nickRefused = True
        if self._retryTimer is None:
            self._retryTimer = self.bridge.clock.callLater(wait, self._noRetry)

    def _noRetry(self) -> None:
        self._retryTimer = None
        if self.joined:
            return
        self.bridge._forget(self)
        self.end("No other nickname chosen")
        self.bridge._dropRoomIfEmpty(self.roomJID)

    def retrying(self) -> None:
        """
        The client tries another nick: the wait is over.
        """
        self.nickRefused = False
        timer, self._retryTimer = self._retryTimer, None
        if timer is not None and timer.active():
            timer.cancel()

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
        cpim = content.cpim
        nick = self.bridge.mirror(self.roomJID).nickOf(cpim.fromAddress)
        if nick is None:
            return self._refuse(400, "no sender nick in the CPIM From")
        if content.composing is not None:
            state = chatStateForComposing(content.composing.state)
            try:
                self.bridge.rooms.chatStateReceived(
                    self.roomJID,
                    nick,
                    state.value,
                    self.nick if self._isPrivate(cpim) else None,
                )
            except KeyError as e:
                return self._refuse(400, str(e))
            return 200
        text = content.text
        assert text is not None
        current = datetime.datetime.fromtimestamp(self.bridge.clock.seconds(), _UTC)
        stamp = cpim.dateTime
        delayed = stamp is not None and (
            # Before the join completed, the focus replays its history
            # (SPEC C.1.3): shown with its time, after the self-presence.
            not self.joined
            or (current - stamp).total_seconds() > HISTORY_AGE
        )
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
                    self, nick, text, stamp, delayed, cpim.dateTime
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
        timer, self._retryTimer = self._retryTimer, None
        if timer is not None and timer.active():
            timer.cancel()
        if not self.joined or self.leaving:
            self.bridge._dropRoomIfEmpty(self.roomJID)
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


class _DialOut:
    """
    A focus's INVITE toward an XMPP user, waiting for the user's join.
    """

    def __init__(self, offer: ChatOffer, focus: SIPAddress) -> None:
        self.offer = offer
        self.focus = focus
        self.decision: Deferred[ChatDecision] = Deferred()
        self.timer: IDelayedCall | None = None

    @property
    def pending(self) -> bool:
        return not self.decision.called and not self.offer.invite.answered

    def finish(self, decision: ChatDecision) -> None:
        timer, self.timer = self.timer, None
        if timer is not None and timer.active():
            timer.cancel()
        if not self.decision.called:
            self.decision.callback(decision)


class SIPRoomMirror:
    """
    One SIP room as the gateway mirrors it to XMPP (RFC 7702 sections
    5.3-5.5): the XMPP users' legs into it (one chat session each), one
    conference subscription to the focus whose documents become the MUC
    roster and subject, and the de-duplication of what the focus sends on
    every leg.

    @ivar legs: The XMPP users' participants, oldest first.
    @ivar state: The focus's last full conference-info, or L{None}.
    @ivar entities: The nick shown for each conference-info user entity.
    @ivar addresses: The nick for every URI naming a user (entity,
        endpoints, associated-aors): how a CPIM From becomes a nick.
    """

    _log = Logger()

    def __init__(self, bridge: XMPPToSIP, roomJID: str, focus: SIPAddress) -> None:
        self.bridge = bridge
        self.roomJID = roomJID
        self.focus = focus
        self.legs: list[XMPPParticipant] = []
        self.state: ConferenceInfo | None = None
        self.entities: dict[str, str] = {}
        self.addresses: dict[str, str] = {}
        self.subject: str | None = None
        self.subscription: ClientSubscription | None = None
        self.subscriber: XMPPParticipant | None = None
        self._waiters: list[Deferred[None]] = []
        self._seen: OrderedDict[tuple[str, str, str], set[int]] = OrderedDict()

    # -- the conference subscription (R-015 to) --------------

    def rosterKnown(self, participant: XMPPParticipant) -> Deferred[None]:
        """
        Fires once the focus's roster is known (at most
        L{XMPPToSIP.subscribeWait} seconds), subscribing as C{participant}
        if nobody subscribes yet.
        """
        if self.state is not None:
            # A new leg: its nick is ours now, not a SIP participant's.
            self.apply(self.state)
            return succeed(None)
        if self.bridge.events is None:
            return succeed(None)
        if self.subscription is None:
            self._subscribe(participant)
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        waiter.addTimeout(self.bridge.subscribeWait, self.bridge.clock)

        def late(reason: Failure) -> None:
            reason.trap(defer.TimeoutError)  # type: ignore[no-untyped-call]
            self._log.warn(
                "No conference-info from the focus of {roomJID} in time;"
                " the roster stays empty until it comes",
                roomJID=self.roomJID,
            )

        return waiter.addErrback(late)

    def _subscribe(self, participant: XMPPParticipant) -> None:
        events = self.bridge.events
        assert events is not None
        watcher = ConferenceWatcher(onState=self._stateReceived, onEnded=self._ended)
        self.subscriber = participant
        try:
            self.subscription = events.subscribe(
                SIPURI.fromString(self.focus.uri()),
                "conference",
                self.bridge.subscriptionExpires,
                accept=(CONFERENCE_INFO_CONTENT_TYPE,),
                handler=watcher,
                fromAddress=NameAddr(SIPURI.fromString(participant.address.aor.uri())),
            )
        except ValueError as e:
            self._log.warn(
                "Cannot subscribe to the conference of {roomJID}: {error}",
                roomJID=self.roomJID,
                error=str(e),
            )
            self.subscription = None
            return
        self.subscription.established.addErrback(self._refused)

    def _refused(self, reason: Failure) -> None:
        self._log.info(
            "The focus of {roomJID} refused the conference subscription: {error}",
            roomJID=self.roomJID,
            error=reason.getErrorMessage(),
        )
        self.subscription = None
        self._release()

    def _ended(self, reason: SubscriptionReason) -> None:
        self._log.info(
            "Conference subscription to {roomJID} ended: {reason}",
            roomJID=self.roomJID,
            reason=reason.value,
        )
        self.subscription = None
        self._release()

    def _release(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(None)

    def unsubscribe(self) -> None:
        """
        The room is empty: end the subscription.
        """
        subscription, self.subscription = self.subscription, None
        self.subscriber = None
        if subscription is not None:
            subscription.unsubscribe().addErrback(
                lambda reason: self._log.info(
                    "Unsubscribing from {roomJID}: {error}",
                    roomJID=self.roomJID,
                    error=reason.getErrorMessage(),
                )
            )

    def legLeft(self, participant: XMPPParticipant) -> None:
        """
        A leg is gone: if it held the subscription, the next leg takes it.
        """
        if participant in self.legs:
            self.legs.remove(participant)
        if self.subscriber is participant:
            self.unsubscribe()
            self.state = None
            joined = [leg for leg in self.legs if leg.joined]
            if joined:
                self._subscribe(joined[0])

    def _stateReceived(self, document: ConferenceInfo, outcome: object) -> None:
        self.state = document
        try:
            self.apply(document)
        except Exception:
            self._log.failure("Applying conference-info of {roomJID}", roomJID=self.roomJID)
        self._release()

    def _isLocal(self, user: User, nick: str) -> bool:
        """
        Whether a conference-info user is one of our XMPP users (by nick or
        by address).
        """
        key = _key(nick)
        for leg in self.legs:
            if key is not None and key == _key(leg.nick):
                return True
            for uri in addressesOfUser(user):
                try:
                    if parseSIPIdentity(uri).aor == leg.address.aor:
                        return True
                except AddressError:
                    continue
        return False

    def apply(self, document: ConferenceInfo) -> None:
        """
        A new full state: nick changes as 303 pairs, then the roster
        replaced (joins and leaves), then the subject (R-016 to R-019).
        """
        rooms = self.bridge.rooms
        room = rooms.getRoom(self.roomJID)
        if room is None:
            return
        roster = rosterOfConference(document, self._isLocal)
        for entity, participant in roster:
            old = self.entities.get(entity)
            # A case-only change (sipp -> SIPp) is a nick change too.
            if old is not None and old != participant.nick and old in room:
                try:
                    rooms.participantNickChanged(self.roomJID, old, participant.nick)
                except RoomError as e:
                    self._log.info(
                        "Nick change {old} -> {nick} in {roomJID} not shown: {error}",
                        old=old,
                        nick=participant.nick,
                        roomJID=self.roomJID,
                        error=str(e),
                    )
        if any(p.realAddress for _, p in roster) and (
            room.settings.anonymity is not Anonymity.NON_ANONYMOUS
        ):
            # the focus shows real addresses: a non-anonymous room.
            room.settings = dataclasses.replace(
                room.settings, anonymity=Anonymity.NON_ANONYMOUS
            )
        rooms.rosterReplaced(self.roomJID, [p for _, p in roster])
        self.entities = {entity: p.nick for entity, p in roster}
        nicks = {entity: p.nick for entity, p in roster}
        addresses: dict[str, str] = {}
        for user in document.userList:
            nick = nicks.get(user.entity)
            if nick is None:
                continue
            for uri in addressesOfUser(user):
                addresses[uri] = nick
                try:
                    addresses[parseSIPIdentity(uri).aor.uri()] = nick
                except AddressError:
                    continue
        self.addresses = addresses
        subject = subjectOfConference(document)
        if (subject or "") != (self.subject or ""):
            self.subject = subject
            rooms.subjectChanged(self.roomJID, Subject(subject or ""))

    # -- what the focus sends ------------------------------------------------

    def nickOf(self, sender: CPIMAddress | None) -> str | None:
        """
        The nick of a CPIM From (R-024): through the roster (a switch may
        forward the sender's AOR, RFC 7701 section 6.1), else its C{gr}
        (R-207), else its formal name, else its user part.
        """
        if sender is None:
            return None
        try:
            aor = parseSIPIdentity(sender.uri).aor
        except AddressError:
            aor = None
        for leg in self.legs:
            # One of our own XMPP users (a switch that forwards AORs):
            # its nick, so that the room knows it for its own.
            if aor is not None and aor == leg.address.aor:
                return leg.nick
        known = self.addresses.get(sender.uri)
        if known is not None:
            return known
        try:
            address = parseSIPIdentity(sender.uri)
        except AddressError:
            return sender.formalName or None
        known = self.addresses.get(address.aor.uri())
        if known is not None and not (address.aor == self.focus.aor and address.gr):
            return known
        return address.gr or sender.formalName or address.user

    def firstSight(
        self, leg: XMPPParticipant, nick: str, body: str, stamp: datetime.datetime | None
    ) -> bool:
        """
        Whether a room message from the focus on C{leg} is new: the focus
        sends each one on every leg; the first leg to bring it shows it,
        and a leg bringing the same again brings a new message.
        """
        key = (comparisonKey(nick), body, "" if stamp is None else stamp.isoformat())
        legs = self._seen.get(key)
        if legs is not None and id(leg) not in legs:
            legs.add(id(leg))
            return False
        self._seen[key] = {id(leg)}
        self._seen.move_to_end(key)
        while len(self._seen) > SEEN_MESSAGES:
            self._seen.popitem(last=False)
        return True


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
        self._rooms: MUCService | None = None
        self.participants: dict[tuple[str, str], XMPPParticipant] = {}
        self.mirrors: dict[str, SIPRoomMirror] = {}

    def mirror(self, roomJID: str) -> SIPRoomMirror:
        """
        The mirror of a SIP room (made on first use).
        """
        mirror = self.mirrors.get(roomJID)
        if mirror is None:
            focus = focusURIForRoomJID(roomJID, self.roomDomain)
            mirror = self.mirrors[roomJID] = SIPRoomMirror(self, roomJID, focus)
        return mirror

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
        user = _bare(realJID)
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
        dialOut = self.dialOuts.pop((roomJID, user), None)
        if dialOut is not None and dialOut.pending:
            # The focus invited this user (RFC 4579 dial-out): its INVITE
            # becomes the user's chat.
            if self.rooms.getRoom(roomJID) is None:
                self.rooms.createRoom(
                    Room(
                        roomJID,
                        focus.uri(),
                        RoomSettings(privateMessages=False, historySize=self.historySize),
                    )
                )
            return self._acceptDialOut(dialOut, participant)
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

    def _chatReady(self, session: ChatSession, participant: XMPPParticipant) -> Any:
        media = session.remoteMedia
        if not participant.dialedOut and not _isFocus(session):
            # only a conference focus (RFC 4579 isfocus) is a room.
            session.end("Not a conference focus")
            return fail(mucError("item-not-found", "The SIP peer is not a chat room (no isfocus)"))
        tokens = {token.lower() for token in (media.chatroom or ())} if media else set()
        participant.privateMessages = "private-messages" in tokens
        # RFC 7701 section 8 spells the token "nickname"; its prose says
        # "nicknames" (SPEC F.1 item 4).
        participant.nicknames = bool(tokens & {"nickname", "nicknames"})
        room = self.rooms.getRoom(participant.roomJID)
        if room is not None:
            room.settings = dataclasses.replace(
                room.settings, privateMessages=participant.privateMessages
            )
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
            return Failure(_stanzaError(condition, errorType))  # type: ignore[no-untyped-call]
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
            chatState = ChatState(state)
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
        dialOut = self.dialOuts.pop((roomJID, _bare(realJID)), None)
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
            return Failure(_stanzaError(condition, errorType))  # type: ignore[no-untyped-call]

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
