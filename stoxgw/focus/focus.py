# -*- test-case-name: tests.focus.test_focus -*-
"""
The native rooms of one SIP domain and their SIP side: the conference
focus (RFC 4579) in front of each L{ChatRoom}.

 - INVITE to C{sip:NAME@DOMAIN} (RFC 7701 section 5): 488 unless the offer
   accepts C{message/cpim} (R-053); the room is created by the first
   INVITE (section 5.1) if its caller may create rooms (C{allowedCreators};
   else 403), 486 when C{maxOccupants} sessions are in; else the answer:
   C{accept-types:message/cpim}, the room's C{accept-wrapped-types},
   C{a=chatroom:nickname private-messages}, Contact
   C{<sip:NAME@host:port>;isfocus}.  Room names are compared in lower case
   (an XMPP room JID's localpart is case-insensitive, and the same room is
   reachable from XMPP).
 - Who a caller is (RFC 7701 section 7.1 names the ways): the digest user
   it authenticated as (C{user} is C{sip:user@REALM}, C{user@host} is
   C{sip:user@host}); else, as only trusted peers get this far without
   digest (docs/design.md "Trust"), the first P-Asserted-Identity (RFC 3325),
   else the From.
 - REFER to a room (RFC 4579 section 5.5; in a participant's INVITE dialog
   or outside it, from a participant: else 403): C{Refer-To} a SIP URI
   with method INVITE (else 416 or 403; removing participants with BYE is
   not offered), answered 202; the room then INVITEs the invitee (dial-out:
   From the room URI, Contact with C{isfocus}, C{Referred-By}, the room's
   MSRP offer with C{a=chatroom}), and the REFER's implicit subscription
   (unless C{Refer-Sub: false}, RFC 4488) reports the outcome in a final
   NOTIFY (RFC 3515 section 2.4.5).
 - SUBSCRIBE C{Event: conference} to a room (RFC 4575, through
   L{stoxgw.focus.routing.ConferenceRouter}): 404 for a room that does not
   exist, 403 for someone with no session in it; else the room's
   L{ConferenceNotifier}.
 - Rooms that are not persistent go when their last session leaves, with
   their subscriptions (terminated, C{noresource}); L{Focus.shutdown} ends
   every session with BYE C{Reason: SIP;cause=503}.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from stoxgw.chat.session import (
    AcceptChat,
    ChatDecision,
    ChatInitiator,
    ChatOffer,
    ChatSession,
    ChatSettings,
    IChatOfferHandler,
    RejectChat,
)
from stoxgw.focus.member import Member, canonicalAOR
from stoxgw.focus.room import (
    ROOM_WRAPPED_TYPES,
    ChatRoom,
    RoomPolicy,
)
from stoxgw.formats.chatroom import (
    CHATROOM_ACCEPT_TYPES,
    CHATROOM_TOKENS,
    chatroomTokens,
)
from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.sip.message import SIPRequest
from stoxgw.sip.msrpmedia import acceptTypesIntersection
from stoxgw.sip.refer import IncomingRefer, IReferHandler
from stoxgw.sip.subscription import ConferenceNotifier
from stoxgw.sip.transport import TransportKind
from stoxgw.sip.uri import NameAddr, SIPURI, SIPURIError
from stoxgw.sip.useragent import SIPUserAgent

__all__ = ["Focus", "IdentityError", "SHUTDOWN_GRACE"]

#: Seconds L{Focus.shutdown} waits for the BYE responses.
SHUTDOWN_GRACE = 3.0

DialogID = tuple[str, str, str]


class IdentityError(ValueError):
    """
    Who sent a request cannot be told (malformed P-Asserted-Identity...).
    """


def _kindFor(ua: SIPUserAgent, uri: SIPURI) -> TransportKind:
    """
    The transport a request to C{uri} goes out on, as the UA picks it
    (its C{transport} parameter, TLS for C{sips}, else our first).
    """
    if uri.transport is not None:
        try:
            return TransportKind.fromToken(uri.transport)
        except ValueError:
            pass
    if uri.secure:
        return TransportKind.TLS
    transports = ua.transport.transports
    return transports[0] if transports else TransportKind.UDP


@implementer(IChatOfferHandler, IReferHandler)
class Focus:
    """
    The focus and MSRP switch of every room of one domain (module
    docstring).

    @ivar clock: Time source.
    @ivar ua: The SIP user agent (dial-out, Contacts).
    @ivar policy: The rooms' policy.
    @ivar authRealm: The digest realm: an authenticated C{alice} is
        C{sip:alice@REALM}.
    @ivar rooms: The rooms, by lower-case name.
    @ivar initiator: Starts the dial-out chats.
    @ivar stopping: Whether L{shutdown} was called.
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        ua: SIPUserAgent,
        endpoint: MSRPEndpoint,
        policy: RoomPolicy,
        *,
        authRealm: str | None = None,
        chatSettings: ChatSettings = ChatSettings(),
    ) -> None:
        self.clock = clock
        self.ua = ua
        self.endpoint = endpoint
        self.policy = policy
        self.authRealm = authRealm
        self.initiator = ChatInitiator(ua, endpoint, clock, chatSettings)
        self.rooms: dict[str, ChatRoom] = {}
        self.stopping = False
        for name, subject in policy.persistentRooms:
            self._create(name.lower(), persistent=True, subject=subject)

    @property
    def domain(self) -> str:
        """
        The rooms' domain (lower case).
        """
        return self.policy.domain.lower()

    # -- rooms --------------------------------------------------------------

    def _create(
        self, name: str, persistent: bool = False, subject: str | None = None
    ) -> ChatRoom:
        room = ChatRoom(
            name,
            self.policy,
            self.clock,
            persistent=persistent,
            subject=subject,
            onEmpty=self._roomEmpty,
        )
        self.rooms[name] = room
        self._log.info("Room {room} created", room=room.uri)
        return room

    def _roomEmpty(self, room: ChatRoom) -> None:
        """
        The last session left: a room that is not persistent goes (RFC 7701
        section 5.3), and its conference subscriptions with it.
        """
        if room.persistent or self.rooms.get(room.name) is not room:
            return
        del self.rooms[room.name]
        room.close()
        self._log.info("Room {room} deleted (empty)", room=room.uri)

    def isRoomURI(self, uri: object) -> bool:
        """
        Whether a URI names a room of our domain (any name).
        """
        return (
            isinstance(uri, SIPURI)
            and bool(uri.user)
            and uri.host.lower() == self.domain
        )

    def memberOfDialog(self, key: DialogID) -> Member | None:
        """
        The room session whose INVITE dialog has this ID (the UA core's
        dialog, its handler the L{ChatSession}, whose handler the
        L{Member}): known from the moment the INVITE is answered.
        """
        dialog = self.ua.dialogs.get(key)
        chat = dialog.handler if dialog is not None else None
        member = chat.handler if isinstance(chat, ChatSession) else None
        return member if isinstance(member, Member) and not member.ended else None

    def owns(self, request: SIPRequest) -> bool:
        """
        Whether a request is for the rooms: inside the INVITE dialog of one
        of our sessions, or out of dialog to a room URI (Request-URI; or
        the To when a proxy put an address in the Request-URI).
        """
        toTag = request.toAddress.tag
        if toTag is not None:
            key = (request.callID, toTag, request.fromAddress.tag or "")
            return self.memberOfDialog(key) is not None
        uri = request.uri
        if self.isRoomURI(uri):
            return True
        return (
            isinstance(uri, SIPURI)
            and uri.numericHost
            and self.isRoomURI(request.toAddress.uri)
        )

    def roomFor(self, request: SIPRequest) -> ChatRoom | None:
        """
        The existing room a request is for (see L{owns}).
        """
        toTag = request.toAddress.tag
        if toTag is not None:
            member = self.memberOfDialog(
                (request.callID, toTag, request.fromAddress.tag or "")
            )
            return None if member is None else member.room
        for uri in (request.uri, request.toAddress.uri):
            if self.isRoomURI(uri):
                assert isinstance(uri, SIPURI) and uri.user is not None
                return self.rooms.get(uri.user.lower())
        return None

    # -- who is calling ------------------------------------------------------

    def identityOf(self, request: SIPRequest, authenticatedUser: str | None) -> str:
        """
        The AOR of whoever sent C{request} (module docstring).

        @raise IdentityError: It cannot be told.
        """
        if authenticatedUser is not None:
            text = (
                authenticatedUser
                if "@" in authenticatedUser
                else f"{authenticatedUser}@{self.authRealm}"
            )
            try:
                return canonicalAOR(SIPURI.fromString("sip:" + text))
            except (SIPURIError, ValueError) as e:
                raise IdentityError(f"authenticated user {text!r}: {e}") from None
        asserted = request.header("P-Asserted-Identity")
        if asserted:
            try:
                uri = NameAddr.fromString(asserted.split(",")[0].strip()).uri
            except ValueError as e:
                raise IdentityError(f"bad P-Asserted-Identity: {e}") from None
        else:
            uri = request.fromAddress.uri
        if not isinstance(uri, SIPURI) or not uri.user:
            raise IdentityError(f"{uri} is not a SIP address of record")
        return canonicalAOR(uri)

    # -- IChatOfferHandler (RFC 7701 section 5) --------------------------------

    def chatOffered(self, offer: ChatOffer) -> ChatDecision:
        """
        An INVITE to a room (module docstring).
        """
        invite = offer.invite
        request = invite.request
        callID = request.header("Call-ID")
        uri = request.uri
        if not self.isRoomURI(uri):
            uri = request.toAddress.uri
        if self.stopping:
            return RejectChat(503, "Service Unavailable (shutting down)")
        if not isinstance(uri, SIPURI) or not uri.user:
            return RejectChat(404, "Not Found (no room named)")
        name = uri.user.lower()
        if not acceptTypesIntersection(CHATROOM_ACCEPT_TYPES, offer.media.acceptTypes):
            # RFC 7701 section 5.2, R-053.
            return RejectChat(488, "Not Acceptable Here (message/cpim required)")
        try:
            aor = self.identityOf(request, invite.transaction.authenticatedUser)
        except IdentityError as e:
            self._log.info(
                "INVITE refused ({callID}): {error}", callID=callID, error=str(e)
            )
            return RejectChat(400, f"Bad Request ({e})")
        room = self.rooms.get(name)
        if room is None:
            if not self.policy.mayCreate(aor):
                self._log.info(
                    "INVITE refused ({callID}): {aor} may not create {name}",
                    callID=callID,
                    aor=aor,
                    name=name,
                )
                return RejectChat(403, "Forbidden (may not create rooms)")
            room = self._create(name)
        if room.full:
            return RejectChat(486, "Busy Here (the room is full)")
        room.hosts.add(uri.host.lower())
        contacts = request.contact
        contact = (
            str(contacts.addresses[0].uri)
            if contacts is not None and contacts.addresses
            else aor
        )
        member = Member(
            room,
            aor,
            contact,
            tokens=chatroomTokens(offer.media.chatroom),
            acceptTypes=offer.media.acceptTypes,
            acceptWrappedTypes=offer.media.acceptWrappedTypes,
        )
        room.add(member)
        return AcceptChat(
            member,
            acceptTypes=CHATROOM_ACCEPT_TYPES,
            acceptWrappedTypes=ROOM_WRAPPED_TYPES,
            requiredTypes=CHATROOM_ACCEPT_TYPES,
            chatroom=CHATROOM_TOKENS,
            isfocus=True,
            contactUser=room.name,
        )

    # -- IReferHandler (RFC 4579 section 5.5) -----------------------------------

    def referReceived(self, refer: IncomingRefer) -> None:
        """
        A REFER to a room (module docstring).
        """
        request = refer.request
        room = self.roomFor(request)
        if room is None:
            refer.reject(404, "Not Found (no such room)")
            return
        referrer = self._referrer(refer, room)
        if referrer is None:
            refer.reject(403, "Forbidden (not in the room)")
            return
        if refer.referTo.method != "INVITE":
            refer.reject(403, f"Forbidden ({refer.referTo.method} not supported)")
            return
        target = refer.referTo.uri
        if not isinstance(target, SIPURI):
            refer.reject(416, "Unsupported URI Scheme")
            return
        if room.full:
            refer.reject(486, "Busy Here (the room is full)")
            return
        progress = refer.accept(202, isfocus=True)
        referredBy = refer.referredBy or NameAddr(SIPURI.fromString(referrer.aor))
        self._log.info(
            "{aor} invites {target} to {room}",
            aor=referrer.aor,
            target=str(target),
            room=room.uri,
        )

        def answered(_: object) -> None:
            progress.progress(200, "OK")

        def failed(reason: Failure) -> None:
            error = reason.value
            status = getattr(error, "status", None)
            progress.progress(
                status if isinstance(status, int) and status >= 300 else 500
            )

        self.dialOut(room, target, referredBy).addCallbacks(answered, failed)

    def _referrer(self, refer: IncomingRefer, room: ChatRoom) -> Member | None:
        """
        The member who sent a REFER: by its INVITE dialog, else by identity.
        """
        if refer.dialog is not None:
            member = self.memberOfDialog(refer.dialog.id)
            return member if member is not None and member.room is room else None
        try:
            aor = self.identityOf(
                refer.request, refer.incoming.transaction.authenticatedUser
            )
        except IdentityError:
            return None
        members = room.membersOf(aor)
        return members[0] if members else None

    # -- dial-out (RFC 4579 section 5.5) ------------------------------------------

    def dialOut(
        self, room: ChatRoom, target: SIPURI, referredBy: NameAddr | None = None
    ) -> Deferred[ChatSession]:
        """
        Invite C{target} into C{room}: INVITE From the room URI with an
        C{isfocus} Contact and the room's MSRP offer.

        @return: Fires with the ready session, or fails (L{ChatSessionError}
            with the SIP status of a refusal).
        """
        member = Member(room, canonicalAOR(target), str(target), dialedOut=True)
        room.add(member)
        contact = self.ua.contactFor(
            _kindFor(self.ua, target),
            user=room.name,
            headerParameters=[("isfocus", None)],
        )
        headers: list[tuple[str, str]] = []
        if referredBy is not None:
            headers.append(("Referred-By", referredBy.serialize()))
        d = self.initiator.startChat(
            target,
            NameAddr(SIPURI.fromString(room.uri), room.name),
            member,
            acceptTypes=CHATROOM_ACCEPT_TYPES,
            acceptWrappedTypes=ROOM_WRAPPED_TYPES,
            chatroom=CHATROOM_TOKENS,
            contact=contact,
            headers=headers,
        )

        def failed(reason: Failure) -> Failure:
            self._log.info(
                "Dial-out from {room} to {target} failed: {error}",
                room=room.uri,
                target=str(target),
                error=reason.getErrorMessage(),
            )
            return reason

        return d.addErrback(failed)

    # -- the conference event package -----------------------------------------------

    def conferenceFor(self, request: SIPRequest) -> ConferenceNotifier | None:
        """
        The conference state a SUBSCRIBE asks for, if it may have it.
        """
        room = self.roomFor(request)
        return None if room is None else room.notifier

    def conferenceStatus(
        self, request: SIPRequest, authenticatedUser: str | None
    ) -> int | None:
        """
        L{None} for a SUBSCRIBE that may have the room's state; 404 for a
        room that does not exist; 403 for someone with no session in it.
        """
        room = self.roomFor(request)
        if room is None:
            return 404
        if request.toAddress.tag is not None:
            return None  # inside a member's INVITE dialog
        try:
            aor = self.identityOf(request, authenticatedUser)
        except IdentityError:
            return 403
        return None if room.membersOf(aor) else 403

    # -- ending -------------------------------------------------------------------

    def shutdown(self) -> Deferred[None]:
        """
        Close every room (BYE with C{Reason: SIP;cause=503}, subscriptions
        terminated) and wait, at most L{SHUTDOWN_GRACE} seconds, for the
        BYEs to be answered.
        """
        self.stopping = True
        rooms = list(self.rooms.values())
        self.rooms.clear()
        byes = [room.close(503, "Shutdown") for room in rooms]
        done: Deferred[None] = Deferred()

        def finish(_: object = None) -> None:
            if timer.active():
                timer.cancel()
            if not done.called:
                done.callback(None)

        timer = self.clock.callLater(SHUTDOWN_GRACE, finish)
        DeferredList(byes).addCallback(finish)
        return done
