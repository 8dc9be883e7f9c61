# -*- test-case-name: tests.focus.test_room -*-
"""
One native chat room: the RFC 7701 conference focus and MSRP switch logic.

A L{ChatRoom} keeps its L{Member}s (one per chat session: RFC 7701 section
4, R-051), and the neutral room model (L{stoxgw.rooms.model.Room}) for what
the RFC calls the room's state: the nicknames in use (keyed by their RFC
7700 comparison form, each held by one user, R-079), the subject and the
bounded history.  It decides; its members carry the decisions out on
their sessions (L{stoxgw.focus.member}: the MSRP copies, failure REPORTs,
BYE with a C{Reason}), so this module holds the room's state and rules and
no SIP or MSRP signalling; the SIP side of the domain (accepting INVITEs,
REFER, dial-out, SUBSCRIBE) is L{stoxgw.focus.focus}.

What a room does, by RFC 7701 section:

 - 5.2: members are listed (in the conference state, and given the
   history) once their session is ready; each one's C{a=chatroom} tokens
   and accept types are kept (R-059).
 - 6.1-6.3, checked in this order: 415 for a SEND that is not
   C{message/cpim} (R-075; the MSRP session already answers 415 for types
   outside our C{accept-types}), 400 for malformed CPIM or no C{To}, 415
   for a C{Require} we do not understand (RFC 3862 section 3.5), 403 for
   more than one C{To} (R-064), 403 for a C{From} that is not the sender's
   (its AOR, any URI parameters such as its GRUU ignored, or
   C{room;gr=its-nick}: R-063, R-071); then a C{To} naming the room is a
   regular message, anything else a private one: 404 for a recipient that
   is not in the room (C{room;gr=NICK} or an AOR: R-072), 428 for one
   without C{private-messages} (R-073).
 - Distribution: a fresh CPIM wrapper per copy, C{From: "nick"
   <sip:room@domain;gr=nick>} (the sender's AOR while it has no
   nickname), C{To} the room URI (regular) or the recipient's AOR
   (private, as RFC 7702 Example 18 shows), the sender's C{DateTime}
   (added if absent); every other CPIM header, the MIME headers and the
   content are copied octet for octet (R-065).  RFC 7701 section 6.1 says
   the switch does not modify the content; RFC 7702 section 5.5.2 has the
   switch name the sender by its in-room identity, which is what an XMPP
   user behind a gateway can show (SPEC F.1 item 2): we rewrite only
   C{From} and C{To}.  Copies go to every other listed session (no echo to
   the sending session; every session of a user, R-069), never to a
   session whose C{accept-wrapped-types} excludes the wrapped type
   (R-066).  The MSRP session reassembles chunked SENDs, so a chunked
   message is relayed whole (and re-chunked by the endpoint, which section
   6.1 allows).  A recipient session with more than L{CONGESTION_LIMIT}
   messages waiting is congested (section 6.4): regular messages to it are
   dropped (and logged) until it drains.
 - Reports (section 6.3): the switch is the receiving endpoint of every
   SEND: the MSRP session answers it with our status and sends the success
   REPORT the sender asked for (R-074, R-076); recipients' reports are
   never passed back (R-077).  A private message that reached none of the
   recipient's sessions gets a failure REPORT (RFC 4975 section 7.1.4,
   unless the sender said C{Failure-Report: no}).
 - 7.1-7.3, NICKNAME: 424 for a value RFC 7700 refuses (the MSRP parser
   already answers 424 for a malformed C{Use-Nickname}), 425 for a
   reserved word or a nickname another user (AOR) holds, else 200: the
   same user may hold the same nickname from several sessions (R-085), a
   session never gets one it did not ask for (R-089), the old nickname is
   kept until the 200 (R-090); an empty value removes the nickname (7.3).
 - History: the last C{historySize} regular text messages (UTF-8), replayed
   to a newly listed session before anything else, with their original
   C{DateTime} (R-175); isComposing indications are never kept.
 - Conference event package (RFC 4575, R-092): a L{ConferenceNotifier}
   serves full documents to new subscribers and partial ones on change.
   Root entity the room URI; C{<conference-description><subject>};
   C{<conference-state><user-count>}; one C{<user>} per AOR (RFC 7701
   section 9.6), with C{display-text} and XCON C{nickname} its nickname,
   C{associated-aors} the AOR, role C{participant}, one C{<endpoint>} per
   session (its Contact; C{dialed-in} or C{dialed-out}, C{<joining-info>},
   a C{message} C{<media>}).  A leaving session takes two partial
   notifications: its endpoint C{disconnected} with its
   C{<disconnection-method>} and C{<disconnection-info>}, then the
   endpoint (or the user) deleted (RFC 4575 section 4.4: the children of a
   deleted element carry nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import count

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from stoxgw.chat.session import ChatEnd, EndCause
from stoxgw.focus.member import Member, canonicalAOR, reasonText
from stoxgw.formats.conferenceinfo import (
    ConferenceDescription,
    ConferenceInfo,
    ConferenceState,
    DisconnectionMethod,
    Endpoint,
    EndpointStatus,
    Execution,
    JoiningMethod,
    Media,
    MediaStatus,
    URIEntry,
    URIs,
    User,
    Users,
)
from stoxgw.formats.chatroom import Refused, unwrapCPIM
from stoxgw.formats.cpim import (
    CPIM_NAMESPACE,
    CPIMAddress,
    CPIMHeader,
    CPIMMessage,
    formatDateTime,
)
from stoxgw.formats.iscomposing import ISCOMPOSING_CONTENT_TYPE
from stoxgw.msrp.session import IncomingMessage
from stoxgw.rooms.model import (
    Anonymity,
    HistoryEntry,
    Participant,
    Room,
    RoomSettings,
    Subject,
)
from stoxgw.rooms.nicks import InvalidNickname, comparisonKey, enforce
from stoxgw.sip.subscription import ConferenceNotifier
from stoxgw.sip.uri import SIPURI, SIPURIError

__all__ = [
    "ROOM_WRAPPED_TYPES",
    "ChatRoom",
    "RoomPolicy",
]

#: The answer's C{accept-wrapped-types} (R-055): text and isComposing
#: named, anything else relayed (C{*}) to whoever accepts it.
ROOM_WRAPPED_TYPES = ("text/plain", ISCOMPOSING_CONTENT_TYPE, "*")

#: Charsets whose text the history keeps (it is replayed as sent).
_HISTORY_CHARSETS = frozenset({"utf-8", "us-ascii"})

_UTC = timezone.utc


def _parseSIP(text: str) -> SIPURI | None:
    try:
        return SIPURI.fromString(text)
    except (SIPURIError, ValueError):
        return None


def _now(clock: IReactorTime) -> datetime:
    return datetime.fromtimestamp(int(clock.seconds()), _UTC)


@dataclass(frozen=True, slots=True)
class RoomPolicy:
    """
    How the rooms of a domain behave (the C{[rooms]} configuration).

    @ivar domain: The rooms' SIP domain: room C{NAME} is C{sip:NAME@domain}.
    @ivar historySize: Messages kept per room for newcomers (0: none).
    @ivar maxOccupants: Sessions per room (0: no limit); more get 486.
    @ivar reservedNicks: Reserved words no one may use as a nickname
        (RFC 7701 section 7.1: 425).
    @ivar allowedCreators: Who may create a room by joining it: C{*}
        (anyone), a domain (anyone of it) or an AOR C{user@host}.
    @ivar persistentRooms: Rooms that exist from the start and are never
        deleted, with their subject (or L{None}).
    """

    domain: str
    historySize: int = 50
    maxOccupants: int = 100
    reservedNicks: tuple[str, ...] = ()
    allowedCreators: tuple[str, ...] = ("*",)
    persistentRooms: tuple[tuple[str, str | None], ...] = ()
    _reservedKeys: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = set()
        for nick in self.reservedNicks:
            try:
                keys.add(comparisonKey(nick))
            except InvalidNickname:
                continue
        object.__setattr__(self, "_reservedKeys", frozenset(keys))

    def reserved(self, nick: str) -> bool:
        """
        Whether C{nick} is a reserved word (RFC 7700 comparison).
        """
        try:
            return comparisonKey(nick) in self._reservedKeys
        except InvalidNickname:
            return False

    def mayCreate(self, aor: str) -> bool:
        """
        Whether the user C{aor} (C{sip:user@host}) may create a room.
        """
        uri = _parseSIP(aor)
        user = (uri.user or "") if uri is not None else ""
        host = uri.host.lower() if uri is not None else ""
        for entry in self.allowedCreators:
            entry = entry.lower()
            if entry == "*":
                return True
            if "@" in entry:
                entryUser, _, entryHost = entry.removeprefix("sip:").partition("@")
                if entryUser == user.lower() and entryHost == host:
                    return True
            elif entry == host:
                return True
        return False


@dataclass(frozen=True, slots=True)
class _Checked:
    """
    A SEND that passed RFC 7701 section 6 checks.

    @ivar cpim: Its CPIM message.
    @ivar wrapped: The wrapped content type (C{type/subtype}).
    @ivar recipients: L{None} for a regular message, else the private
        recipient's sessions.
    """

    cpim: CPIMMessage
    wrapped: str
    recipients: tuple[Member, ...] | None


class ChatRoom:
    """
    One native chat room (see the module docstring).

    @ivar name: The user part of its URI (lower case).
    @ivar uri: C{sip:NAME@DOMAIN}.
    @ivar policy: The domain's room policy.
    @ivar clock: Time source (C{DateTime}, C{<when>}).
    @ivar persistent: Whether it outlives its last member.
    @ivar model: The neutral room model: nicknames, subject, history.
    @ivar members: Sessions in the room, in order of arrival (listed or
        not yet).
    @ivar notifier: Its conference state for subscribers.
    @ivar hosts: Hosts that name the room in a CPIM To (the domain, and
        whatever host members dialled).
    @ivar onEmpty: Called when its last member left.
    """

    _log = Logger()

    def __init__(
        self,
        name: str,
        policy: RoomPolicy,
        clock: IReactorTime,
        *,
        persistent: bool = False,
        subject: str | None = None,
        onEmpty: Callable[[ChatRoom], None] = lambda room: None,
    ) -> None:
        self.name = name
        self.policy = policy
        self.clock = clock
        self.persistent = persistent
        self.onEmpty = onEmpty
        self.uri = SIPURI("sip", policy.domain, name).serialize()
        self.hosts = {policy.domain.lower()}
        self.mediaIDs = count(1)
        self.members: list[Member] = []
        self.model = Room(
            address=self.uri,
            identity=self.uri,
            settings=RoomSettings(
                name=name,
                anonymity=Anonymity.NON_ANONYMOUS,
                persistent=persistent,
                privateMessages=True,
                historySize=policy.historySize,
            ),
        )
        if subject:
            self.model.setSubject(Subject(subject, when=self.now()))
        self.closed = False
        self.notifier = ConferenceNotifier(self.conferenceInfo())

    def __repr__(self) -> str:
        return f"<ChatRoom {self.uri} ({len(self.members)} sessions)>"

    def now(self) -> datetime:
        """
        The clock's time, whole seconds, UTC.
        """
        return _now(self.clock)

    # -- members ------------------------------------------------------------

    @property
    def listed(self) -> list[Member]:
        """
        The members in the room (ready and not gone), in order.
        """
        return [m for m in self.members if m.listed]

    @property
    def full(self) -> bool:
        """
        Whether another session would exceed C{maxOccupants}.
        """
        limit = self.policy.maxOccupants
        return bool(limit) and len(self.members) >= limit

    def membersOf(self, aor: str) -> list[Member]:
        """
        The sessions (not ended) of one user.
        """
        return [m for m in self.members if m.aor == aor and not m.ended]

    def add(self, member: Member) -> None:
        """
        A new session, not listed until it is ready.
        """
        self.members.append(member)

    def memberReady(self, member: Member) -> None:
        """
        A session is ready: list it (a partial NOTIFY), then send it the
        history (before any later message: MSRP keeps the order).
        """
        if member.ended or member.listed or self.closed:
            return
        chat = member.chat
        if member.dialedOut and chat is not None:
            # What the invitee's answer says about it (RFC 7701 section 8).
            media = chat.remoteMedia
            if media is not None:
                member.declared(media)
            if chat.dialog is not None:
                member.contact = str(chat.dialog.remoteTarget)
        member.joinedAt = self.now()
        member.listed = True
        self._log.info(
            "{aor} joined {room}",
            aor=member.aor,
            room=self.uri,
            callID=chat.callID if chat is not None else None,
        )
        self.publish()
        for entry in self.model.history:
            if member.acceptsWrapped(entry.contentType):
                member.deliver(self._historyCopy(entry))

    def memberEnded(self, member: Member, end: ChatEnd) -> None:
        """
        A session ended: out of the room in two partial NOTIFYs (its
        endpoint disconnected with the method, then deleted), its nickname
        released unless another session of the user holds it.
        """
        if member.ended:
            return
        member.ended = True
        if member.disconnection is None:
            # RFC 4575 section 5.7.6: a BYE either way is a departure; an
            # MSRP failure or a dialog that died is a failure.
            member.disconnection = (
                DisconnectionMethod.DEPARTED
                if end.cause in (EndCause.REMOTE_BYE, EndCause.LOCAL, EndCause.SHUTDOWN)
                else DisconnectionMethod.FAILED
            )
            member.disconnectionReason = reasonText(end)
        announce = member.listed and not self.closed
        if announce:
            self.publish()
        if member in self.members:
            self.members.remove(member)
        nickname, member.nickname = member.nickname, None
        if nickname is not None:
            self._release(nickname)
        if member.listed:
            self._log.info(
                "{aor} left {room}: {error}",
                aor=member.aor,
                room=self.uri,
                error=end.cause.value + (": " + end.text if end.text else ""),
            )
        if announce:
            self.publish()
        member.listed = False
        if not self.members:
            self.onEmpty(self)

    # -- the conference state (RFC 4575) -------------------------------------

    def conferenceInfo(self) -> ConferenceInfo:
        """
        The full conference state (module docstring).
        """
        grouped: dict[str, list[Member]] = {}
        for member in self.listed:
            grouped.setdefault(member.aor, []).append(member)
        users = []
        for aor, sessions in grouped.items():
            nickname = next((m.nickname for m in sessions if m.nickname), None)
            endpoints: list[Endpoint] = []
            seen: set[str] = set()
            for member in sessions:
                if member.contact in seen:
                    continue
                seen.add(member.contact)
                endpoints.append(self._endpoint(member))
            users.append(
                User(
                    aor,
                    displayText=nickname,
                    associatedAORs=URIs((URIEntry(aor),)),
                    roles=("participant",),
                    endpoints=tuple(endpoints),
                    nickname=nickname,
                )
            )
        subject = self.model.subject
        return ConferenceInfo(
            self.uri,
            description=ConferenceDescription(
                displayText=self.name,
                subject=subject.text if subject is not None and subject.text else None,
                maximumUserCount=self.policy.maxOccupants or None,
            ),
            conferenceState=ConferenceState(userCount=len(users), active=True),
            users=Users(tuple(users)),
        )

    def _endpoint(self, member: Member) -> Endpoint:
        method = member.disconnection
        return Endpoint(
            member.contact,
            status=(
                EndpointStatus.CONNECTED
                if method is None
                else EndpointStatus.DISCONNECTED
            ),
            joiningMethod=(
                JoiningMethod.DIALED_OUT
                if member.dialedOut
                else JoiningMethod.DIALED_IN
            ),
            joiningInfo=Execution(when=member.joinedAt),
            disconnectionMethod=method,
            disconnectionInfo=(
                None
                if method is None
                else Execution(when=self.now(), reason=member.disconnectionReason)
            ),
            media=(Media(member.mediaID, type="message", status=MediaStatus.SENDRECV),),
        )

    def publish(self) -> None:
        """
        Tell every subscriber what changed (partial documents, RFC 4575
        section 4.3).
        """
        if not self.closed:
            self.notifier.update(self.conferenceInfo())

    def setSubject(self, text: str | None) -> None:
        """
        Change the subject (C{<conference-description><subject>}).
        """
        self.model.setSubject(Subject(text or "", when=self.now()))
        self.publish()

    # -- nicknames (RFC 7701 section 7) ---------------------------------------

    def holderOf(self, nick: str) -> str | None:
        """
        The AOR holding a nickname (RFC 7700 comparison), or L{None}.
        """
        participant = self.model.get(nick)
        return None if participant is None else participant.realAddress

    def nicknameRequested(self, member: Member, requested: str) -> int:
        """
        Answer a NICKNAME (module docstring).
        """
        if requested == "":
            # Section 7.3: removing the nickname.
            old, member.nickname = member.nickname, None
            if old is not None:
                self._release(old)
                if member.listed:
                    self.publish()
            return 200
        try:
            nick = enforce(requested)
        except InvalidNickname as e:
            self._log.info(
                "NICKNAME {nick} in {room} refused: {error}",
                nick=requested,
                room=self.uri,
                error=e.reason,
            )
            return 424
        if self.policy.reserved(nick):
            return 425
        holder = self.model.get(nick)
        if holder is not None and holder.realAddress != member.aor:
            return 425
        old = member.nickname
        if holder is None:
            self.model.join(Participant(nick, realAddress=member.aor))
        else:
            nick = holder.nick
        member.nickname = nick
        if old is not None and comparisonKey(old) != comparisonKey(nick):
            self._release(old)
        if member.listed and old != nick:
            self.publish()
        return 200

    def _release(self, nick: str) -> None:
        """
        Free a nickname no session holds any more.
        """
        key = comparisonKey(nick)
        for member in self.members:
            if member.nickname is not None and comparisonKey(member.nickname) == key:
                return
        if nick in self.model:
            self.model.leave(nick)

    # -- messages (RFC 7701 section 6) ----------------------------------------

    def sendReceived(self, sender: Member, message: IncomingMessage) -> int:
        """
        Check a SEND and distribute it; the status answers it (200 once
        the copies are queued).
        """
        try:
            checked = self._check(sender, message)
        except Refused as e:
            self._log.info(
                "SEND from {nick} in {room} refused with {status}: {error}",
                nick=sender.label,
                room=self.uri,
                status=e.code,
                error=e.reason,
            )
            return e.code
        if checked.recipients is None:
            self._distribute(sender, checked)
        else:
            self._distributePrivate(sender, message, checked, checked.recipients)
        return 200

    def _check(self, sender: Member, message: IncomingMessage) -> _Checked:
        """
        RFC 7701 sections 6.1-6.3, in the module docstring's order.

        @raise Refused: With the MSRP status.
        """
        cpim = unwrapCPIM(message.contentType, message.body)
        toAddresses = cpim.toAddresses
        fromAddress = cpim.fromAddress
        wrapped = cpim.contentType.mimeType
        if not toAddresses:
            raise Refused(400, "no CPIM To")
        if len(toAddresses) > 1:
            raise Refused(403, "more than one CPIM To (RFC 7701 section 6.1)")
        if fromAddress is None or not self._isSenderIdentity(sender, fromAddress):
            raise Refused(403, "CPIM From is not the sender's (RFC 7701 section 6.3)")
        to = toAddresses[0]
        if self._isRoom(to):
            return _Checked(cpim, wrapped, None)
        recipients = self._resolve(to)
        if not recipients:
            raise Refused(404, f"no participant {to.uri} (RFC 7701 section 6.2)")
        supporting = tuple(r for r in recipients if r.privateMessages)
        if not supporting:
            raise Refused(428, "the recipient does not take private messages")
        taking = tuple(
            r for r in supporting if r is not sender and r.acceptsWrapped(wrapped)
        )
        if not taking and any(r is not sender for r in supporting):
            # Section 6.1 lets the switch drop it silently; for one
            # recipient the sender may as well know.
            raise Refused(415, f"the recipient does not accept {wrapped}")
        return _Checked(cpim, wrapped, taking)

    def _isSenderIdentity(self, sender: Member, address: CPIMAddress) -> bool:
        """
        RFC 7701 sections 6.1 and 6.3: the CPIM From is the sender's AOR
        (its URI parameters, e.g. a GRUU, ignored) or its address in the
        room, C{room;gr=its nickname}.
        """
        uri = _parseSIP(address.uri)
        if uri is None:
            return address.bareURI == sender.aor
        if canonicalAOR(uri) == sender.aor:
            return True
        gruu = uri.parameter("gr")
        if not gruu or sender.nickname is None or not self._namesRoom(uri):
            return False
        try:
            return comparisonKey(gruu) == comparisonKey(sender.nickname)
        except InvalidNickname:
            return False

    def _namesRoom(self, uri: SIPURI) -> bool:
        return (uri.user or "").lower() == self.name and uri.host.lower() in self.hosts

    def _isRoom(self, address: CPIMAddress) -> bool:
        """
        Whether a CPIM To is the room itself (no C{gr}): a regular message.
        """
        uri = _parseSIP(address.uri)
        return uri is not None and self._namesRoom(uri) and not uri.parameter("gr")

    def _resolve(self, address: CPIMAddress) -> tuple[Member, ...]:
        """
        The listed sessions a private message's To names: C{room;gr=NICK}
        (by nickname) or a user's URI (by AOR); every session of that
        user (R-069).
        """
        uri = _parseSIP(address.uri)
        aor: str | None
        if uri is not None and self._namesRoom(uri):
            gruu = uri.parameter("gr") or ""
            aor = self.holderOf(gruu)
        else:
            aor = canonicalAOR(uri) if uri is not None else address.bareURI
        if aor is None:
            return ()
        return tuple(m for m in self.listed if m.aor == aor)

    def _fromAddress(self, nick: str | None, aor: str) -> CPIMAddress:
        """
        Who a copy is from: C{"nick" <sip:room@domain;gr=nick>}, or the
        AOR without a nickname.
        """
        if nick is None:
            return CPIMAddress(aor)
        return CPIMAddress(self.uri, nick).withURIParameter("gr", nick)

    def copy(self, cpim: CPIMMessage, sender: CPIMAddress, to: CPIMAddress) -> bytes:
        """
        A distributed copy: a fresh C{From} and C{To}, the sender's
        C{DateTime} (now if it had none), then its other CPIM headers,
        MIME headers and content octet for octet.
        """
        dateTime: bytes | None = None
        others: list[bytes] = []
        for namespace, local, header in cpim.resolvedHeaders():
            if namespace == CPIM_NAMESPACE and local in ("From", "To", "cc"):
                continue
            if namespace == CPIM_NAMESPACE and local == "DateTime":
                if dateTime is None:
                    dateTime = header.raw
                continue
            others.append(header.raw)
        if dateTime is None:
            dateTime = CPIMHeader.make("DateTime", formatDateTime(self.now())).raw
        lines = [
            CPIMHeader.make("From", sender.toHeaderValue()).raw,
            CPIMHeader.make("To", to.toHeaderValue()).raw,
            dateTime,
            *others,
        ]
        return (
            b"".join(line + b"\r\n" for line in lines)
            + b"\r\n"
            + b"".join(h.raw + b"\r\n" for h in cpim.contentHeaders)
            + b"\r\n"
            + cpim.body
        )

    def _distribute(self, sender: Member, checked: _Checked) -> None:
        """
        A regular message: a copy to every other listed session that takes
        the wrapped type and is not congested; text goes to the history.
        """
        fromAddress = self._fromAddress(sender.nickname, sender.aor)
        body = self.copy(checked.cpim, fromAddress, CPIMAddress(self.uri))
        for recipient in self.listed:
            if recipient is sender or not recipient.acceptsWrapped(checked.wrapped):
                continue
            if recipient.congested:
                self._log.warn(
                    "{nick} in {room} is congested: a message to it is dropped",
                    nick=recipient.label,
                    room=self.uri,
                )
                continue
            recipient.deliver(body)
        self._record(sender, checked)

    def _record(self, sender: Member, checked: _Checked) -> None:
        """
        Keep a regular text message for newcomers.
        """
        cpim = checked.cpim
        if (
            checked.wrapped == ISCOMPOSING_CONTENT_TYPE
            or not checked.wrapped.startswith("text/")
        ):
            return
        charset = (cpim.contentType.parameter("charset") or "utf-8").lower()
        if charset not in _HISTORY_CHARSETS or self.model.settings.historySize == 0:
            return
        try:
            text = cpim.body.decode("utf-8")
        except UnicodeDecodeError:
            return
        contentType = cpim.contentHeader("Content-Type") or checked.wrapped
        self.model.record(
            HistoryEntry(
                nick=sender.nickname if sender.nickname is not None else sender.aor,
                body=text,
                timestamp=cpim.dateTime or self.now(),
                contentType=contentType,
            )
        )

    def _historyCopy(self, entry: HistoryEntry) -> bytes:
        """
        A kept message as sent then (its nick or AOR as it was, its
        DateTime).
        """
        sender = entry.nick
        if _parseSIP(sender) is not None and ":" in sender:
            fromAddress = CPIMAddress(sender)
        else:
            fromAddress = self._fromAddress(sender, sender)
        return CPIMMessage.build(
            contentType=entry.contentType,
            body=entry.body.encode("utf-8"),
            fromAddress=fromAddress,
            toAddresses=(CPIMAddress(self.uri),),
            dateTime=entry.timestamp,
        ).toBytes()

    def _distributePrivate(
        self,
        sender: Member,
        message: IncomingMessage,
        checked: _Checked,
        recipients: Iterable[Member],
    ) -> None:
        """
        A private message: a copy to each of the recipient's sessions that
        takes it (To its AOR, RFC 7702 Example 18), congested or not (only
        regular messages are dropped, RFC 7701 section 6.4); a failure
        REPORT to the sender if none got it.
        """
        fromAddress = self._fromAddress(sender.nickname, sender.aor)
        copies = [
            recipient.deliver(
                self.copy(checked.cpim, fromAddress, CPIMAddress(recipient.aor))
            )
            for recipient in recipients
        ]
        if not copies or checked.wrapped == ISCOMPOSING_CONTENT_TYPE:
            return

        def delivered(statuses: list[int]) -> None:
            if 200 not in statuses:
                self._log.info(
                    "Private message from {nick} in {room} reached nobody",
                    nick=sender.label,
                    room=self.uri,
                )
                sender.reportFailure(message, statuses[0])

        gatherResults(copies).addCallback(delivered)

    # -- ending ----------------------------------------------------------------

    def close(self, cause: int = 503, text: str = "Room closed") -> Deferred[None]:
        """
        The room goes (RFC 7701 section 5.3): BYE to every session (with a
        Reason), the conference subscriptions terminated.

        @return: Fires once every BYE is answered (or failed).
        """
        if self.closed:
            return succeed(None)
        self.closed = True
        byes = [member.hangUp(cause, text) for member in list(self.members)]
        self.notifier.close()
        return gatherResults(byes).addCallback(lambda _: None)
