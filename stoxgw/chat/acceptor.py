# -*- test-case-name: tests.chat.test_session -*-
"""
Incoming chat sessions (RFC 7702 section 6.1, RFC 4975 section 8, RFC
6135): L{ChatAcceptor} is the UA's INVITE handler; it asks an
L{IChatOfferHandler} about each INVITE, then L{IncomingChat.accept}
answers the SDP offer as the focus of RFC 7702 section 6 or a plain chat
endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from stoxgw._util import failureOf
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
from stoxgw.sip.msrpmedia import MSRPMedia, Setup, answerMSRPOffer
from stoxgw.sip.sdp import SDPError, SDPNegotiationError, parseSDP
from stoxgw.sip.uri import SIPURI
from stoxgw.sip.useragent import IInviteHandler, IncomingInvite, SIPUserAgent

__all__ = [
    "AcceptChat",
    "RejectChat",
    "ChatDecision",
    "ChatOffer",
    "IChatOfferHandler",
    "IncomingChat",
    "ChatAcceptor",
]


@dataclass(frozen=True, slots=True)
class AcceptChat:
    """
    The layer above accepts an incoming INVITE.

    @ivar handler: The session's L{IChatSessionHandler}.
    @ivar acceptTypes: Our C{accept-types}, in preference order; the answer
        lists those the offer also accepts.
    @ivar acceptWrappedTypes: Our C{accept-wrapped-types}.
    @ivar requiredTypes: Types the offer must accept (RFC 7701 section
        5.2: a focus requires C{message/cpim}), else 488.
    @ivar chatroom: C{a=chatroom} tokens to advertise (RFC 7701 section
        8), or L{None}.
    @ivar maxSize: Our C{a=max-size}, or L{None} for the MSRP session's
        largest incoming message.
    @ivar isfocus: Put C{isfocus} on our Contact (RFC 4579, RFC 7702
        section 6).
    @ivar contactUser: The user part of our Contact (default: the
        Request-URI's).
    @ivar gruu: A C{gr} URI parameter for our Contact, or L{None}.
    """

    handler: IChatSessionHandler
    acceptTypes: tuple[str, ...] = DEFAULT_ACCEPT_TYPES
    acceptWrappedTypes: tuple[str, ...] = DEFAULT_ACCEPT_WRAPPED_TYPES
    requiredTypes: tuple[str, ...] = ()
    chatroom: tuple[str, ...] | None = None
    maxSize: int | None = None
    isfocus: bool = False
    contactUser: str | None = None
    gruu: str | None = None


@dataclass(frozen=True, slots=True)
class RejectChat:
    """
    The layer above refuses an incoming INVITE.

    @ivar status: The SIP status (3xx-6xx).
    @ivar reason: The reason phrase, or L{None} for the standard one.
    @ivar headers: Further header fields of the response (C{Retry-After}).
    """

    status: int = 486
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


ChatDecision = Union[AcceptChat, RejectChat]


@dataclass(frozen=True, slots=True)
class ChatOffer:
    """
    An incoming INVITE offering an MSRP chat.

    @ivar invite: The INVITE (request, flow, ...).
    @ivar media: The offered MSRP stream (the first one with a port).
    """

    invite: IncomingInvite
    media: MSRPMedia


class IChatOfferHandler(Interface):
    """
    Decides about incoming chat INVITEs (the interworking layer).
    """

    def chatOffered(offer: ChatOffer) -> ChatDecision | Deferred[ChatDecision]:
        """
        An INVITE offers an MSRP chat.

        @return: L{AcceptChat} or L{RejectChat}, or a L{Deferred} firing
            with one (a CANCEL may come first: the decision is dropped).
        """


class IncomingChat(ChatSession):
    """
    A chat session the peer's INVITE started (RFC 7702 section 6.1): made
    by L{accept} once the layer above accepted the offer.
    """

    @classmethod
    def accept(
        cls,
        ua: SIPUserAgent,
        endpoint: MSRPEndpoint,
        clock: IReactorTime,
        settings: ChatSettings,
        decision: AcceptChat,
        invite: IncomingInvite,
        media: MSRPMedia,
    ) -> IncomingChat:
        """
        Start a session for an accepted INVITE: create the MSRP session,
        answer the offer (RFC 3264, RFC 4975 section 8, RFC 6135), send the
        200 and connect if we are active.  If that fails the session ends
        at once (503 or 488 to the INVITE) and is returned ended.

        @param ua: The UA core (for our Contact).
        @param endpoint: The MSRP endpoint.
        @param clock: Time source.
        @param settings: The connection policy.
        @param decision: What the layer above decided.
        @param invite: The INVITE.
        @param media: Its offered MSRP stream.
        """
        chat = cls(decision.handler, endpoint, clock, settings, incoming=True)
        chat._answer(ua, decision, invite, media)
        return chat

    def _answer(
        self,
        ua: SIPUserAgent,
        decision: AcceptChat,
        invite: IncomingInvite,
        media: MSRPMedia,
    ) -> None:
        """
        See L{accept}.
        """
        request = invite.request
        self.callID = request.header("Call-ID")
        self._invite = invite
        self.remoteMedia = media
        self._started()
        remotePath = pathOf(media)
        try:
            msrp = self.endpoint.createSession(
                self,
                peerFingerprint=fingerprintText(media),
                remotePath=remotePath,
                acceptTypes=decision.acceptTypes,
                acceptWrappedTypes=decision.acceptWrappedTypes,
                peerAcceptTypes=media.acceptTypes,
                peerAcceptWrappedTypes=media.acceptWrappedTypes,
                peerMaxSize=media.maxSize,
            )
        except (RelayNotReady, ValueError) as e:
            self._finish(ChatEnd(EndCause.MSRP_FAILED, 503, str(e)), sendBye=False)
            return
        self.msrp = msrp
        relayed = self.endpoint.relayURI is not None
        path = [str(uri) for uri in self.endpoint.sdpPath(msrp)]
        own = msrp.localURI
        self.ownTerms = terms = OwnTerms(
            acceptTypes=tuple(decision.acceptTypes),
            acceptWrappedTypes=tuple(decision.acceptWrappedTypes),
            # R-125, RFC 4975 section 8.6: the largest message we take.
            maxSize=msrp.maxMessageSize if decision.maxSize is None else decision.maxSize,
            chatroom=decision.chatroom,
            requiredTypes=tuple(decision.requiredTypes),
        )
        try:
            answer, _ = answerMSRPOffer(
                parseSDP(request.body),
                origin=newOrigin(own.host),
                path=path,
                port=own.port or 0,
                connectionAddress=own.host,
                acceptTypes=terms.acceptTypes,
                acceptWrappedTypes=terms.acceptWrappedTypes,
                maxSize=terms.maxSize,
                chatroom=terms.chatroom,
                reachable=self.settings.reachable and not relayed,
                useSetup=self.settings.useSetup,
                fingerprints=ownFingerprints(self.endpoint),
                requiredTypes=terms.requiredTypes,
            )
        except SDPNegotiationError as e:
            self._finish(ChatEnd(EndCause.NEGOTIATION, 488, e.reason), sendBye=False)
            return
        self.localMedia = offeredMSRP(answer)
        # RFC 6135: we connect when we answered active; RFC 4975 without
        # a=setup: the offerer connects; with a relay always.
        self.active = relayed or self.localMedia.setup is Setup.ACTIVE
        uri = request.uri
        user = decision.contactUser or (uri.user if isinstance(uri, SIPURI) else None)
        contact = ua.contactFor(
            invite.flow.transport,
            user=user,
            uriParameters=[("gr", decision.gruu)] if decision.gruu else (),
            headerParameters=[("isfocus", None)] if decision.isfocus else (),
        )
        self.dialog = invite.accept(answer.serialize(), contact=contact, handler=self)
        # Answered: the 2xx retransmissions and the ACK are the dialog's,
        # and only an unanswered INVITE needs rejecting at the end.  Kept,
        # it would hold the request (24 header fields) and its transaction
        # for the whole session (bench/README.md, W7).
        self._invite = None
        self._log.info(
            "Chat session accepted ({callID}, {msrpSessionID}) from {peer}",
            callID=self.callID,
            msrpSessionID=self.msrpSessionID,
            peer=str(invite.flow.source),
        )
        self._connecting()
        if self.active and self.state is ChatState.CONNECTING:
            self._connectActive(remotePath)


@implementer(IInviteHandler)
class ChatAcceptor(ChatDirection):
    """
    The UA's INVITE handler for chat sessions: asks the layer above, then
    answers (RFC 7702 section 6.1, RFC 4975 section 8, RFC 6135).

    @ivar offers: The layer above's L{IChatOfferHandler}.
    """

    _log = Logger()

    def __init__(
        self,
        ua: SIPUserAgent,
        endpoint: MSRPEndpoint,
        clock: IReactorTime,
        offers: IChatOfferHandler,
        settings: ChatSettings = ChatSettings(),
    ) -> None:
        super().__init__(ua, endpoint, clock, settings)
        self.offers = offers

    def register(self) -> None:
        """
        Become the UA's INVITE handler.
        """
        self.ua.addHandler("INVITE", self)

    def inviteReceived(self, invite: IncomingInvite) -> None:
        """
        Check the offer (488 without a usable MSRP stream), then ask the
        layer above.
        """
        request = invite.request
        callID = request.header("Call-ID")
        try:
            if not request.body:
                raise SDPError("No SDP offer")
            media = offeredMSRP(parseSDP(request.body))
            pathOf(media)
        except SDPError as e:
            self._log.warn(
                "Unusable chat offer ({callID}) from {peer}: {error}",
                callID=callID,
                peer=str(invite.flow.source),
                error=str(e),
            )
            invite.reject(488)
            return
        try:
            decision = self.offers.chatOffered(ChatOffer(invite, media))
        except Exception as e:
            self._decisionFailed(failureOf(e), invite)
            return
        d: Deferred[ChatDecision] = (
            decision if isinstance(decision, Deferred) else succeed(decision)
        )
        d.addCallback(self._decided, invite, media)
        d.addErrback(self._decisionFailed, invite)

    def _decisionFailed(self, reason: Failure, invite: IncomingInvite) -> None:
        self._log.failure(
            "Chat offer handler failed ({callID})",
            reason,
            callID=invite.request.header("Call-ID"),
        )
        if not invite.answered:
            invite.reject(500)

    def _decided(
        self, decision: ChatDecision, invite: IncomingInvite, media: MSRPMedia
    ) -> ChatSession | None:
        """
        Carry out the decision (unless a CANCEL came first).
        """
        if invite.answered:
            return None
        if isinstance(decision, RejectChat):
            invite.reject(decision.status, decision.reason, decision.headers)
            return None
        return self._accept(decision, invite, media)

    def _accept(
        self, decision: AcceptChat, invite: IncomingInvite, media: MSRPMedia
    ) -> ChatSession:
        """
        Create the session, answer the offer, send the 200, connect if we
        are active.
        """
        return IncomingChat.accept(
            self.ua, self.endpoint, self.clock, self.settings, decision, invite, media
        )
