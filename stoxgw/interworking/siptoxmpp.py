# -*- test-case-name: tests.interworking.test_siptoxmpp -*-
"""
Direction B of RFC 7702 (section 6): a SIP/MSRP user enters an XMPP MUC
room through the gateway ("Gateway B", SPEC C.2).

L{SIPToXMPP} is the gateway's L{IChatOfferHandler} (for its
L{ChatAcceptor<stoxgw.chat.session.ChatAcceptor>}) and the
L{IOccupantHandler} of its L{OccupantService}.  Toward the SIP user it is
the conference focus and MSRP switch; toward XMPP each SIP user is an
ordinary MUC occupant whose real JID lives on the gateway's user domain.
One L{SIPParticipant} per chat session carries the user's state.

What this first slice does:

  - INVITE to C{sip:room@<muc domain>}: addresses mapped
    (L{roomJIDFromRequestURI}, L{realJIDForSIPUser}; an L{AddressError}
    becomes its SIP status); the MUC join comes I{before} the answer (R-209)
    with a temporary nick (From display name, else user part); a MUC entry
    error becomes L{sipStatusForMUCEntryError}; on success the focus answer
    of RFC 7701 section 5.2 (C{message/cpim} required, C{a=chatroom:nickname
    private-messages}, C{isfocus} Contact);
  - SEND (CPIM, To the room) -> groupchat message; the MSRP 200 waits for
    the MUC reflection (R-211), bounded by the occupant service's
    reflection timeout (then 200); MUC errors map through
    L{msrpStatusForStanzaError}; local checks answer 415/403/404/400
    (RFC 7701 section 6, SPEC E.4);
  - SEND with CPIM To C{;gr=nick} -> private message (RFC 7702 section
    6.3.2): 404 for an unknown nick; a later MUC error becomes a failure
    REPORT (RFC 4975 section 7.1.4);
  - groupchat from other occupants (history with CPIM DateTime = delay
    stamp, R-216) and private messages (only if the UA declared
    C{private-messages}, R-221) -> SEND with the occupant's in-room
    identity (R-207);
  - NICKNAME -> nick change (R-210): 200 once the MUC confirms, 425 on
    conflict, others by SPEC E.4;
  - BYE or any end of the chat -> leave the room; removal from the room
    (kick, ban, shutdown, ...) or loss of the XMPP link -> BYE with a
    C{Reason} (R-219).

  - SUBSCRIBE to C{Event: conference} at the room URI, in or out of the
    INVITE dialog (L{RoomConferencePackage}, RFC 7702 section 6.2): a
    full conference-info document of the roster as the SIP user's
    occupant sees it (R-213: user entity C{sip:room@domain;gr=nick},
    C{display-text} and C{xcon:nickname} the nick, the MUC role as
    C{<roles>}, one connected C{message} endpoint, the real JID as
    C{associated-aors} when the room exposes it), the room subject in
    C{<conference-description><subject>} (R-217), then partial NOTIFYs
    (version +1) on joins, leaves, role and subject changes, a nick
    change being a deleted user plus a new one; the end of the chat
    terminates the subscription (C{noresource}).  A SUBSCRIBE from
    someone who is not (yet) an occupant of the room through this
    gateway gets 403 (SPEC E.4 "not an occupant"), one whose
    Request-URI names no room of ours the status an INVITE to it would get
    (L{roomJIDFromRequestURI}: 403 for a domain not served or C{sips:},
    484 without a user part).

Not done here: REFER -> invitations, rejoin after a link loss,
isComposing, and an XMPP error to the sender of a private message refused
under R-221 (the occupant service has no call for it yet: such messages
are logged and dropped).  The SIP user's identity is the From of an INVITE
the UA admitted (trusted proxy or digest); a digest user is not yet
compared with it.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Collection, Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error
from twisted.words.protocols.jabber.jid import JID as XMPPJID
from zope.interface import implementer

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
from stoxgw.formats.cpim import CPIMAddress, CPIMError, CPIMMessage, MediaType
from stoxgw.interworking.addressing import (
    AddressError,
    SIPAddress,
    parseSIPIdentity,
    realJIDForSIPUser,
    requestURIFromRoomJID,
    roomJIDFromRequestURI,
)
from stoxgw.interworking.errors import (
    LocalMSRPFailure,
    MUCExchange,
    msrpStatusForLocalFailure,
    msrpStatusForStanzaError,
    sipReasonCauseForMUCRemoval,
    sipStatusForMUCEntryError,
)
from stoxgw.formats.conferenceinfo import (
    ConferenceDescription,
    ConferenceInfo,
    Endpoint,
    EndpointStatus,
    Media,
    URIEntry,
    URIs,
    User,
    Users,
)
from stoxgw.msrp.session import IncomingMessage
from stoxgw.sip.message import SIPRequest
from stoxgw.sip.subscription import (
    ConferenceNotifier,
    ConferencePackage,
    SubscriptionReason,
)
from stoxgw.sip.uri import NameAddr, SIPURI
from stoxgw.sip.useragent import IncomingRequest
from stoxgw.xmpp.occupant import (
    ChatState,
    Decline,
    GroupchatMessage,
    Invitation,
    IOccupantHandler,
    JoinResult,
    LeftReason,
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
#: What we can translate inside CPIM (R-215: only what is mapped).
ACCEPT_WRAPPED_TYPES = ("text/plain",)
#: The C{a=chatroom} tokens we offer (RFC 7701 section 8).
CHATROOM_TOKENS = ("nickname", "private-messages")
#: The SIP cause of the BYE when the XMPP link is lost.
LINK_LOST_CAUSE = 503
#: The SIP cause when the room was destroyed (no status code, E.5).
ROOM_DESTROYED_CAUSE = 410
#: The CPIM content type of messages to the SIP user.
TEXT_PLAIN = "text/plain;charset=UTF-8"
#: How many private-message ids wait for a possible MUC error, per user.
MAX_PENDING_PRIVATE = 64
#: MUC roles shown in conference-info C{<roles>} (R-213); others (C{none})
#: give no roles.
CONFERENCE_ROLES = frozenset({"moderator", "participant", "visitor"})

_UTC = datetime.timezone.utc


class ISIPToXMPP(IChatOfferHandler, IOccupantHandler):
    """
    The Direction B interface (RFC 7702 section 6): decides about INVITEs
    to MUC rooms and hears what happens to the resulting occupants.
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
        self.role: str | None = None
        self.realAddress: str | None = None
        self.subject: str | None = None
        self.conference: ConferenceNotifier | None = None
        self._queued: list[tuple[str, bytes]] = []
        self._privateSends: dict[str, IncomingMessage] = {}

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

    def _cpim(
        self,
        nick: str | None,
        body: str,
        stamp: datetime.datetime | None,
    ) -> bytes:
        """
        A C{message/cpim} body from an occupant to the SIP user.
        """
        when = stamp
        if when is None:
            when = datetime.datetime.fromtimestamp(
                int(self.bridge.clock.seconds()), _UTC
            )
        return CPIMMessage.build(
            contentType=TEXT_PLAIN,
            body=body.encode("utf-8"),
            fromAddress=self.occupantAddress(nick),
            toAddresses=(CPIMAddress(self.userAddress.aor.uri()),),
            dateTime=when,
        ).toBytes()

    # -- conference event package (R-213, R-217) ------------------------------

    def _user(
        self, nick: str, role: str | None, jid: XMPPJID | str | None = None
    ) -> User:
        """
        One occupant as a conference-info user (R-213).
        """
        entity = self.roomAddress.aor.withGR(nick).uri()
        aors = None
        if jid is not None:
            text = jid if isinstance(jid, str) else _full(jid)
            aors = URIs((URIEntry("xmpp:" + text),))
        return User(
            entity=entity,
            displayText=nick,
            associatedAORs=aors,
            roles=(role,) if role in CONFERENCE_ROLES else None,
            nickname=nick,
            endpoints=(
                Endpoint(
                    entity=entity,
                    status=EndpointStatus.CONNECTED,
                    media=(Media(id="1", type="message"),),
                ),
            ),
        )

    def conferenceState(self) -> ConferenceInfo:
        """
        The room as this user's occupant sees it, as a full conference-info
        document (no version): the others in roster order, then the user
        itself, and the subject (R-213, R-217).
        """
        users = [
            self._user(occupant.nick, occupant.role, occupant.jid)
            for occupant in self.bridge.occupants.rosterOf(
                self.roomJID, self.realJID
            ).values()
            if occupant.nick != self.nick
        ]
        users.append(self._user(self.nick, self.role, self.realAddress))
        return ConferenceInfo(
            entity=self.roomAddress.aor.uri(),
            description=ConferenceDescription(subject=self.subject or None),
            users=Users(tuple(users)),
        )

    def notifier(self) -> ConferenceNotifier:
        """
        The conference notifier of this user (made on the first SUBSCRIBE).
        """
        if self.conference is None:
            self.conference = ConferenceNotifier(self.conferenceState())
        return self.conference

    def rosterChanged(self) -> None:
        """
        The roster or subject changed: partial NOTIFYs to the subscribers.
        """
        if self.conference is not None and self.inRoom:
            self.conference.update(self.conferenceState())

    def closeConference(self) -> None:
        """
        The chat is over: terminate the conference subscriptions.
        """
        conference, self.conference = self.conference, None
        if conference is not None:
            conference.close(SubscriptionReason.NORESOURCE)

    # -- toward the SIP user -------------------------------------------------

    def deliver(
        self, nick: str | None, body: str, stamp: datetime.datetime | None
    ) -> None:
        """
        Send a message from an occupant (or the room) to the SIP user.
        """
        try:
            payload = self._cpim(nick, body, stamp)
        except ValueError as e:
            self._log.warn(
                "Cannot wrap a message from {nick} in {roomJID}: {error}",
                nick=nick,
                roomJID=self.room,
                error=str(e),
            )
            return
        if self.session is None:
            self._queued.append(("message/cpim", payload))
            return
        self._send(self.session, "message/cpim", payload)

    def _send(self, session: ChatSession, contentType: str, payload: bytes) -> None:
        d = session.sendMessage(contentType, payload)
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
        self.closeConference()
        if self.session is not None:
            self.session.end(text, status=cause)

    # -- IChatSessionHandler ---------------------------------------------------

    def chatStarted(self, session: ChatSession) -> None:
        """
        The session exists: send what arrived from the room meanwhile.
        """
        self.session = session
        queued, self._queued = self._queued, []
        for contentType, payload in queued:
            self._send(session, contentType, payload)

    def messageReceived(self, session: ChatSession, message: IncomingMessage) -> Any:
        """
        A SEND from the SIP user (RFC 7702 section 6.3, RFC 7701 section 6).

        @return: an MSRP error code, or a L{Deferred} firing with the code
            once the MUC reflected (or refused) a public message (R-211).
        """
        try:
            return self._translate(message)
        except _Refused as e:
            self._log.info(
                "SEND refused with {code} ({callID}, {roomJID}): {error}",
                code=e.code,
                callID=session.callID,
                roomJID=self.room,
                error=e.reason,
            )
            return e.code

    def _translate(self, message: IncomingMessage) -> Any:
        try:
            outer = MediaType.parse(message.contentType).mimeType
        except (CPIMError, ValueError):
            outer = ""
        if outer != "message/cpim":
            raise _Refused(
                msrpStatusForLocalFailure(LocalMSRPFailure.NO_CPIM_WRAPPER),
                "no message/cpim wrapper",
            )
        try:
            cpim = CPIMMessage.parse(message.body)
        except CPIMError as e:
            raise _Refused(400, f"malformed CPIM: {e}") from None
        if not self.inRoom:
            raise _Refused(403, "not in the room")
        recipients = cpim.toAddresses
        if len(recipients) != 1:
            raise _Refused(
                msrpStatusForLocalFailure(LocalMSRPFailure.MULTIPLE_CPIM_TO),
                "exactly one CPIM To is allowed",
            )
        sender = cpim.fromAddress
        if sender is not None and not self._isSelf(sender):
            raise _Refused(
                msrpStatusForLocalFailure(LocalMSRPFailure.INVALID_CPIM_FROM),
                "the CPIM From is not the sender",
            )
        if cpim.contentType.mimeType != "text/plain":
            raise _Refused(415, f"{cpim.contentType.mimeType} is not translated")
        try:
            text = cpim.body.decode(cpim.contentType.parameter("charset") or "utf-8")
        except (LookupError, UnicodeDecodeError):
            raise _Refused(400, "undecodable text") from None
        try:
            to = parseSIPIdentity(recipients[0].uri)
        except AddressError:
            raise _Refused(
                msrpStatusForLocalFailure(LocalMSRPFailure.UNKNOWN_RECIPIENT),
                "bad CPIM To",
            ) from None
        if to.aor != self.roomAddress.aor:
            raise _Refused(
                msrpStatusForLocalFailure(LocalMSRPFailure.UNKNOWN_RECIPIENT),
                f"{to.uri()} is not this room",
            )
        if to.gr is not None:
            return self._sendPrivate(message, to.gr, text)
        return self._sendGroupchat(text)

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

    def _sendGroupchat(self, text: str) -> Deferred[int]:
        d = self.bridge.occupants.sendGroupchat(self.roomJID, self.realJID, text)

        def reflected(_: GroupchatMessage) -> int:
            return 200

        def failed(reason: Failure) -> int:
            if isinstance(reason.value, ReflectionTimeout):
                # bounded wait, then 200.
                return 200
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

    def _sendPrivate(self, message: IncomingMessage, nick: str, text: str) -> int:
        roster = self.bridge.occupants.rosterOf(self.roomJID, self.realJID)
        if nick not in roster:
            raise _Refused(
                msrpStatusForLocalFailure(LocalMSRPFailure.UNKNOWN_RECIPIENT),
                f"no occupant {nick!r}",
            )
        try:
            stanzaID = self.bridge.occupants.sendPrivate(
                self.roomJID, self.realJID, nick, text
            )
        except OccupantError as e:
            raise _Refused(
                msrpStatusForStanzaError(e.condition, MUCExchange.PRIVATE), str(e)
            ) from None
        self._privateSends[stanzaID] = message
        while len(self._privateSends) > MAX_PENDING_PRIVATE:
            del self._privateSends[next(iter(self._privateSends))]
        return 200

    def privateFailed(self, stanzaID: str | None, reason: error.StanzaError) -> bool:
        """
        The MUC refused a private message: a failure REPORT to its sender
        (RFC 4975 section 7.1.4).

        @return: whether the error belonged to one of our private messages.
        """
        message = self._privateSends.pop(stanzaID or "", None)
        if message is None:
            return False
        code = msrpStatusForStanzaError(str(reason.condition), MUCExchange.PRIVATE)
        session = self.session
        if session is not None and session.msrp is not None:
            session.msrp.sendFailureReport(message, code)
        return True

    def nicknameRequested(self, session: ChatSession, nickname: str) -> Any:
        """
        NICKNAME (RFC 7702 section 6.4, R-210): change the nick in the room.

        @return: a L{Deferred} firing with 200 once the MUC confirmed, 425
            on conflict, other codes by SPEC E.4.
        """
        d = self.bridge.occupants.changeNick(self.roomJID, self.realJID, nickname)

        def changed(nick: str) -> int:
            if nick != self.nick:
                self.nick = nick
                self.rosterChanged()
            return 200

        def failed(reason: Failure) -> int:
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
        The chat ended (BYE, MSRP failure, ...): leave the room.
        """
        self.bridge._forget(self)
        self.closeConference()
        if not self.inRoom:
            return
        self.inRoom = False
        self.bridge.occupants.leave(self.roomJID, self.realJID).addErrback(
            lambda reason: self._log.info(
                "Leaving {roomJID}: {error}",
                roomJID=self.room,
                error=reason.getErrorMessage(),
            )
        )


class _Refused(Exception):
    """
    A SEND refused before anything reached the MUC.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


def _randomResource() -> str:
    return uuid.uuid4().hex[:16]


@implementer(ISIPToXMPP)
class SIPToXMPP:
    """
    Gateway B (RFC 7702 section 6).

    @ivar clock: Time source (CPIM DateTime of live messages).
    @ivar userDomain: The gateway's XMPP domain for SIP users' real JIDs.
    @ivar mucDomains: The MUC domains served (empty: any).
    @ivar occupants: The occupant service (set with L{useOccupants}).
    @ivar participants: The SIP users in rooms, by (room, real JID).
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        userDomain: str,
        mucDomains: Collection[str] = (),
        resourceFactory: Callable[[], str] = _randomResource,
    ) -> None:
        self.clock = clock
        self.userDomain = userDomain
        self.mucDomains = tuple(mucDomains)
        self.resourceFactory = resourceFactory
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
        An INVITE to a room: map the addresses, join the MUC, then answer
        (R-209).
        """
        request = offer.invite.request
        callID = request.header("Call-ID")
        try:
            roomJID, realJID, roomAddress, userAddress, nick = self._addresses(offer)
        except AddressError as e:
            self._log.info(
                "INVITE refused ({callID}): {error}", callID=callID, error=str(e)
            )
            return RejectChat(e.sipStatus, e.reason)
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
        d = self.occupants.join(roomJID, nick, realJID)
        return d.addCallbacks(
            self._joined,
            self._joinFailed,
            callbackArgs=(offer, participant),
            errbackArgs=(offer, participant),
        )

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
        user = parseSIPIdentity(str(fromAddr.uri)).aor
        if user.user is None:
            raise AddressError("From has no user part", 400, "bad-request")
        resource = self._contactGR(request.header("Contact"))
        real = realJIDForSIPUser(
            user, self.userDomain, resource or self.resourceFactory()
        )
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
            self.occupants.leave(participant.roomJID, participant.realJID).addErrback(
                lambda reason: None
            )
            return RejectChat(487)
        return AcceptChat(
            participant,
            acceptTypes=ACCEPT_TYPES,
            acceptWrappedTypes=ACCEPT_WRAPPED_TYPES,
            requiredTypes=("message/cpim",),
            chatroom=CHATROOM_TOKENS,
            isfocus=True,
        )

    def _joinFailed(
        self, reason: Failure, offer: ChatOffer, participant: SIPParticipant
    ) -> ChatDecision:
        self._forget(participant)
        participant.inRoom = False
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
        Another occupant left: a partial NOTIFY deleting its user (R-213).
        """
        participant = self._participant(roomJID, realJID)
        if participant is not None:
            participant.rosterChanged()

    def occupantNickChanged(
        self, roomJID: XMPPJID, realJID: XMPPJID, oldNick: str, occupant: Occupant
    ) -> None:
        """
        Another occupant changed nick: a partial NOTIFY deleting the old
        user and adding the new one (R-213).
        """
        participant = self._participant(roomJID, realJID)
        if participant is not None:
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
            cause = ROOM_DESTROYED_CAUSE
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

    # -- conference event package ------------------------------------------

    def _subscriber(self, request: SIPRequest) -> SIPParticipant:
        """
        The participant a conference SUBSCRIBE comes from: inside an
        INVITE dialog, the one whose chat it is (its Request-URI is our
        Contact, not the room); else the room of its Request-URI and the
        user of its From (the chat sharing its Call-ID first).

        @raise AddressError: With the status to answer: 403 when not an
            occupant through this gateway; for a Request-URI naming no room
            of ours, that of L{roomJIDFromRequestURI} (403, 484).
        """
        fromHeader = request.header("From")
        if fromHeader is None:
            raise AddressError("no From", 400, "bad-request")
        try:
            user = parseSIPIdentity(str(NameAddr.fromString(fromHeader).uri)).aor
        except ValueError as e:
            raise AddressError(f"bad From: {e}", 400, "bad-request") from None
        callID = request.header("Call-ID")
        for participant in self.participants.values():
            session = participant.session
            if (
                session is not None
                and session.callID == callID
                and participant.userAddress.aor == user
                and participant.joined
                and participant.inRoom
            ):
                return participant
        room = roomJIDFromRequestURI(str(request.uri), self.mucDomains)
        roomText = _bare(XMPPJID(str(room)))
        candidates = [
            participant
            for participant in self.participants.values()
            if participant.room == roomText
            and participant.userAddress.aor == user
            and participant.joined
            and participant.inRoom
        ]
        if not candidates:
            raise AddressError(
                f"{user.uri()} is not an occupant of {roomText}", 403, "forbidden"
            )
        return candidates[0]

    def conferenceStatus(self, request: SIPRequest) -> int | None:
        """
        L{None} if a conference SUBSCRIBE may go ahead, else its failure
        status (403, or 484 for no room, see L{_subscriber}).
        """
        try:
            self._subscriber(request)
        except AddressError as e:
            self._log.info(
                "Conference SUBSCRIBE refused ({callID}): {error}",
                callID=request.header("Call-ID"),
                error=str(e),
            )
            return e.sipStatus
        return None

    def conferenceFor(self, request: SIPRequest) -> ConferenceNotifier | None:
        """
        The conference notifier for a SUBSCRIBE (L{ConferencePackage}'s
        lookup), or L{None}.
        """
        try:
            return self._subscriber(request).notifier()
        except AddressError:
            return None

    def groupchatReceived(
        self, roomJID: XMPPJID, realJID: XMPPJID, message: GroupchatMessage
    ) -> None:
        """
        A groupchat message: to the SIP user, unless it is our own
        reflection (never echoed, RFC 7701 section 6.1).
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
        A private message: to the SIP user if it declared
        C{private-messages} (R-221).
        """
        participant = self._participant(roomJID, realJID)
        if participant is None:
            return
        if not participant.privateMessages:
            self._log.warn(
                "Private message from {nick} in {roomJID} dropped: the SIP user takes none",
                nick=message.nick,
                roomJID=_bare(roomJID),
            )
            return
        participant.deliver(message.nick, message.body, message.stamp)

    def chatStateReceived(
        self,
        roomJID: XMPPJID,
        realJID: XMPPJID,
        nick: str,
        state: ChatState,
        private: bool,
    ) -> None:
        """
        Not translated yet (R-225).
        """

    def messageFailed(
        self,
        roomJID: XMPPJID,
        realJID: XMPPJID,
        stanzaID: str | None,
        reason: error.StanzaError,
    ) -> None:
        """
        A late MUC error: a failure REPORT if it answers a private message.
        """
        participant = self._participant(roomJID, realJID)
        if participant is not None and participant.privateFailed(stanzaID, reason):
            return
        self._log.info(
            "Unmatched message error in {roomJID}: {error}",
            roomJID=_bare(roomJID),
            error=str(reason.condition),
        )

    def invitationReceived(self, realJID: XMPPJID, invitation: Invitation) -> None:
        """
        Not translated yet (R-222).
        """

    def declineReceived(self, realJID: XMPPJID, decline: Decline) -> None:
        """
        Not translated yet (no SIP mapping, SPEC C.2.5).
        """

    def linkLost(self, domain: str, occupants: Sequence[OccupantKey]) -> None:
        """
        The XMPP link is gone: end the chats of those occupants (no rejoin
        in this slice) with a BYE carrying 503.
        """
        for roomJID, realJID in occupants:
            participant = self._participant(roomJID, realJID)
            if participant is None:
                continue
            self._forget(participant)
            participant.end(LINK_LOST_CAUSE, "XMPP link lost")
            self.occupants.leave(roomJID, realJID).addErrback(lambda reason: None)

    def linkRestored(self, domain: str, occupants: Sequence[OccupantKey]) -> None:
        """
        Nothing to do: chats ended when the link was lost.
        """


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

    def authorize(self, request: IncomingRequest) -> int | None:
        """
        L{None} for a SUBSCRIBE of an occupant's SIP user, else 403 or 484.
        """
        return self.bridge.conferenceStatus(request.request)
