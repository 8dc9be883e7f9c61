# -*- test-case-name: tests.interworking.test_xmpptosip -*-
"""
XMPP users in SIP chat rooms, as Gateway A serves them (RFC 7702 section
5; docs/section5.md): L{XMPPParticipant}, one XMPP user's leg into a SIP
room (the handler of its chat session with the focus).  What one SIP room
shares among the legs (the focus's conference subscription and roster, the
de-duplication of what the focus sends on every leg) is
L{SIPRoomMirror<stoxgw.interworking.roommirror.SIPRoomMirror>}.
L{XMPPToSIP<stoxgw.interworking.xmpptosip.XMPPToSIP>} drives them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import datetime
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error
from zope.interface import implementer

from stoxgw.chat.session import (
    ChatEnd,
    ChatSession,
    EndCause,
    IChatSessionHandler,
    IChatUpdateHandler,
)
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.interworking.addressing import (
    AddressError,
    SIPAddress,
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
)
from stoxgw.formats.iscomposing import ComposingState
from stoxgw.interworking.translate import (
    CPIM,
    ISCOMPOSING_CONTENT_TYPE,
    Refused,
    chatStateForComposing,
    now,
    unwrap,
    wrapComposing,
    wrapText,
)
from stoxgw.msrp.session import IncomingMessage, MSRPSendError
from stoxgw.rooms.model import (
    RemovalReason,
    RoomError,
)
from stoxgw.rooms.nicks import InvalidNickname, comparisonKey
from stoxgw.sip.msrpmedia import MSRPMedia
from stoxgw.sip.uri import contactIsFocus
from stoxgw.xmpp.room import JoinAccepted
from stoxgw.xmpp.stanzas import mucError


if TYPE_CHECKING:
    from stoxgw.interworking.xmpptosip import XMPPToSIP

#: How long a join waits for the focus's first conference-info.
SUBSCRIBE_WAIT = 5.0
#: How long a chat whose nick the focus refused waits for another try.
NICK_RETRY_WAIT = 60.0
#: The BYE's Reason cause when the room domain's XMPP link is lost.
LINK_LOST_CAUSE = sipReasonCauseForGatewayBEnd(GatewayBEnd.LINK_LOST)
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



def bareJID(jid: str) -> str:
    return jid.split("/", 1)[0]


def stanzaError(condition: str, errorType: str) -> error.StanzaError:
    return error.StanzaError(condition, errorType)  # type: ignore[no-untyped-call]



def answeredByFocus(session: ChatSession) -> bool:
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


@implementer(IChatSessionHandler, IChatUpdateHandler)
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
            return Failure(stanzaError(condition, errorType))  # type: ignore[no-untyped-call]

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
            return Failure(stanzaError(condition, errorType))  # type: ignore[no-untyped-call]

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

    def chatUpdated(self, session: ChatSession, previous: MSRPMedia) -> None:
        """
        The focus re-offered (RFC 4975 section 8.4): its C{a=chatroom}
        tokens now decide private messages and NICKNAME (R-094).
        """
        self.bridge.chatroomDeclared(self, session.remoteMedia)

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
