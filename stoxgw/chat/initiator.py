# -*- test-case-name: tests.chat.test_session -*-
"""
Outgoing chat sessions (RFC 7702 section 5.1): L{ChatInitiator.startChat}
offers an MSRP stream toward a focus and L{OutgoingChat} connects per the
answer (RFC 4975 section 8, RFC 6135).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict, Unpack

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from stoxgw.chat.base import ChatDirection, ChatSession
from stoxgw.chat.model import (
    DEFAULT_ACCEPT_TYPES,
    DEFAULT_ACCEPT_WRAPPED_TYPES,
    ChatEnd,
    ChatSettings,
    ChatState,
    EndCause,
    IChatSessionHandler,
)
from stoxgw.chat.offeranswer import (
    OwnTerms,
    fingerprintText,
    newOrigin,
    offeredMSRP,
    ownFingerprints,
    pathOf,
)
from stoxgw.msrp.endpoint import MSRPEndpoint, RelayNotReady
from stoxgw.sip.dialog import DialogState
from stoxgw.sip.invitedialog import InviteDialog
from stoxgw.sip.msrpmedia import MSRPMedia, Setup, acceptTypesIntersection
from stoxgw.sip.sdp import SDPError, SessionDescription, parseSDP
from stoxgw.sip.uri import NameAddr, SIPURI
from stoxgw.sip.useragent import SIPError, SIPUserAgent

__all__ = ["ChatOfferOptions", "OutgoingChat", "ChatInitiator"]


class ChatOfferOptions(TypedDict, total=False):
    """
    What an outgoing chat offers (L{ChatInitiator.startChat}); every key
    may be left out.

    @ivar acceptTypes: Our C{accept-types} (default L{DEFAULT_ACCEPT_TYPES}).
    @ivar acceptWrappedTypes: Our C{accept-wrapped-types} (default
        L{DEFAULT_ACCEPT_WRAPPED_TYPES}).
    @ivar chatroom: C{a=chatroom} tokens to offer, or L{None}.
    @ivar maxSize: Our C{a=max-size} (default: the MSRP session's largest
        incoming message).
    @ivar setup: C{a=setup} to offer: by default C{actpass} when reachable
        without a relay, else C{active} (R-165); never C{passive}.
    @ivar contact: Our Contact, or the UA's default.
    @ivar contactParameters: URI parameters of the UA's default Contact
        (C{gr}: a GRUU, RFC 7702 section 5.1).
    @ivar headers: Further INVITE headers.
    """

    acceptTypes: Sequence[str]
    acceptWrappedTypes: Sequence[str]
    chatroom: Sequence[str] | None
    maxSize: int | None
    setup: Setup | None
    contact: NameAddr | None
    contactParameters: Sequence[tuple[str, str | None]]
    headers: Sequence[tuple[str, str]]


class OutgoingChat(ChatSession):
    """
    A chat session our INVITE starts (RFC 7702 section 5.1): made by
    L{offer}; it reads the answer and connects.
    """

    @classmethod
    def offer(
        cls,
        ua: SIPUserAgent,
        endpoint: MSRPEndpoint,
        clock: IReactorTime,
        settings: ChatSettings,
        target: NameAddr | SIPURI,
        fromAddress: NameAddr,
        handler: IChatSessionHandler,
        **options: Unpack[ChatOfferOptions],
    ) -> Deferred[ChatSession]:
        """
        Start a session: create the MSRP session and send the INVITE with
        our offer (the parameters as L{ChatInitiator.startChat}'s, with the
        UA core, endpoint, clock and connection policy).

        @return: See L{ChatInitiator.startChat}.
        """
        acceptTypes = options.get("acceptTypes", DEFAULT_ACCEPT_TYPES)
        acceptWrappedTypes = options.get("acceptWrappedTypes", DEFAULT_ACCEPT_WRAPPED_TYPES)
        chatroom = options.get("chatroom")
        setup = options.get("setup")
        chat = cls(handler, endpoint, clock, settings, incoming=False)
        result = chat.whenReady()
        result.addErrback(chat._cancelled)
        chat._started()
        relayed = chat.endpoint.relayURI is not None
        try:
            msrp = chat.endpoint.createSession(
                chat, acceptTypes=acceptTypes, acceptWrappedTypes=acceptWrappedTypes
            )
        except RelayNotReady as e:
            chat._finish(ChatEnd(EndCause.MSRP_FAILED, None, str(e)), sendBye=False)
            return result
        chat.msrp = msrp
        if setup is None:
            if not chat.settings.useSetup:
                setup = None
            elif chat.settings.reachable and not relayed:
                setup = Setup.ACTPASS
            else:
                setup = Setup.ACTIVE
        if setup is Setup.PASSIVE or setup is Setup.HOLDCONN:
            raise ValueError(f"never offer a=setup:{setup.value} (R-165)")
        own = msrp.localURI
        chat.ownTerms = OwnTerms(
            acceptTypes=tuple(acceptTypes),
            acceptWrappedTypes=tuple(acceptWrappedTypes),
            maxSize=options.get("maxSize", msrp.maxMessageSize),
            chatroom=None if chatroom is None else tuple(chatroom),
        )
        chat.localMedia = MSRPMedia(
            port=own.port or 0,
            proto="TCP/TLS/MSRP" if own.secure else "TCP/MSRP",
            path=tuple(str(uri) for uri in chat.endpoint.sdpPath(msrp)),
            acceptTypes=chat.ownTerms.acceptTypes,
            acceptWrappedTypes=chat.ownTerms.acceptWrappedTypes,
            # R-125, RFC 4975 section 8.6: the largest message we take.
            maxSize=chat.ownTerms.maxSize,
            setup=setup,
            fingerprints=ownFingerprints(chat.endpoint),
            chatroom=chat.ownTerms.chatroom,
            connectionAddress=own.host,
        )
        offer = SessionDescription(
            origin=newOrigin(own.host),
            media=(chat.localMedia.toMediaDescription(),),
        )
        inviting = ua.invite(
            target,
            fromAddress,
            offer.serialize(),
            handler=chat,
            contact=options.get("contact"),
            contactParameters=options.get("contactParameters", ()),
            headers=options.get("headers", ()),
        )
        chat._inviting = inviting
        inviting.addCallbacks(chat._answered, chat._rejected)
        return result

    def _cancelled(self, reason: Failure) -> Failure:
        """
        The caller cancelled the start: end the session.
        """
        if isinstance(reason.value, CancelledError):
            self.end("Cancelled")
        return reason

    def _rejected(self, reason: Failure) -> None:
        """
        The INVITE failed: end with its status.
        """
        self._inviting = None
        if self.ended:
            return
        error = reason.value
        if isinstance(error, SIPError):
            end = ChatEnd(EndCause.REJECTED, error.status, error.reason)
        else:
            end = ChatEnd(EndCause.DIALOG_FAILED, None, reason.getErrorMessage())
        self._finish(end, sendBye=False)

    def _answered(self, dialog: InviteDialog) -> None:
        """
        The 2xx arrived (ACK sent): read the answer, connect or wait.
        """
        self._inviting = None
        self.dialog = dialog
        self.callID = dialog.callID
        if self.ended:
            # Ended meanwhile (the MSRP session failed): BYE now.
            if dialog.state is not DialogState.TERMINATED:
                dialog.bye().addErrback(self._byeFailed)
            return
        response = dialog.inviteResponse
        try:
            if response is None or not response.body:
                raise SDPError("No SDP answer")
            media = offeredMSRP(parseSDP(response.body))
            path = pathOf(media)
            assert self.localMedia is not None
            if not acceptTypesIntersection(
                self.localMedia.acceptTypes, media.acceptTypes
            ):
                raise SDPError("No common accept-types")
            offered = self.localMedia.setup
            answered = media.setup
            if answered in (Setup.ACTPASS, Setup.HOLDCONN):
                answered = None
            if offered is Setup.ACTIVE and answered is Setup.ACTIVE:
                raise SDPError("Both sides active")
        except SDPError as e:
            self._connectingFailed(ChatEnd(EndCause.NEGOTIATION, 488, e.reason))
            return
        self.remoteMedia = media
        assert self.msrp is not None
        self.msrp.updatePeer(
            acceptTypes=media.acceptTypes,
            acceptWrappedTypes=media.acceptWrappedTypes,
            maxSize=media.maxSize,
        )
        relayed = self.endpoint.relayURI is not None
        self.active = relayed or answered is not Setup.ACTIVE
        if not self.active:
            self.endpoint.setRemotePath(self.msrp, path)
            self.endpoint.expectFingerprint(self.msrp, fingerprintText(media))
        self._connecting()
        if self.active and self.state is ChatState.CONNECTING:
            self._connectActive(path)


class ChatInitiator(ChatDirection):
    """
    Starts outgoing chat sessions (RFC 7702 section 5.1): offer, answer,
    connect.
    """

    _log = Logger()

    def startChat(
        self,
        target: NameAddr | SIPURI,
        fromAddress: NameAddr,
        handler: IChatSessionHandler,
        **options: Unpack[ChatOfferOptions],
    ) -> Deferred[ChatSession]:
        """
        Offer an MSRP chat to C{target}.

        @param handler: The session's L{IChatSessionHandler}; it hears
            C{chatEnded} once, also when the set-up fails.
        @param options: What to offer (L{ChatOfferOptions}).
        @return: Fires with the ready L{ChatSession}, or fails with
            L{ChatSessionError} (its C{status} is the SIP status of a
            rejection).  Cancelling it ends the session (CANCEL or BYE).
        """
        return OutgoingChat.offer(
            self.ua, self.endpoint, self.clock, self.settings, target, fromAddress, handler, **options
        )
