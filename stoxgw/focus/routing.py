# -*- test-case-name: tests.focus.test_routing -*-
"""
One SIP user agent, two servers: the native rooms (L{Focus}) and the RFC
7702 section 6 bridge share the gateway's UA, and with it its INVITE
handler (one L{ChatAcceptor}), its REFER handler (one L{ReferAgent}: the
in-dialog REFERs of every dialog go to the first agent with a handler) and
its C{conference} event package (one per name in L{SIPEvents}).

Each router here stands in front of the bridge's handler and hands a
request to the focus when L{Focus.owns} it (out of dialog: a Request-URI
on the rooms' domain; in dialog: the INVITE dialog of a room session),
else to the bridge, unchanged.  So the bridge's own checks, such as its
loop protection (482 for an INVITE to its own XMPP room domain, which a
native rooms domain may share), only ever see requests that are not for
the native rooms.
"""

from __future__ import annotations

from typing import Any, Sequence

from twisted.internet.defer import Deferred
from zope.interface import implementer

from stoxgw.chat.session import (
    ChatDecision,
    ChatOffer,
    IChatOfferHandler,
)
from stoxgw.focus.focus import Focus
from stoxgw.sip.refer import IncomingRefer, IReferHandler
from stoxgw.sip.subscription import (
    ConferencePackage,
    IContactParameters,
    IEventPackage,
    NotifierSubscription,
    NotifyBody,
    SubscriptionReason,
)
from stoxgw.sip.useragent import IncomingRequest

__all__ = ["ConferenceRouter", "OfferRouter", "ReferRouter"]


@implementer(IChatOfferHandler)
class OfferRouter:
    """
    The chat acceptor's offer handler: room INVITEs to the focus, the
    others to C{fallback}.
    """

    def __init__(self, focus: Focus, fallback: IChatOfferHandler) -> None:
        self.focus = focus
        self.fallback = fallback

    def chatOffered(self, offer: ChatOffer) -> ChatDecision | Deferred[ChatDecision]:
        """
        See L{IChatOfferHandler.chatOffered}.
        """
        if self.focus.owns(offer.invite.request):
            return self.focus.chatOffered(offer)
        return self.fallback.chatOffered(offer)


@implementer(IReferHandler)
class ReferRouter:
    """
    The REFER agent's handler: REFERs to rooms (or in their sessions'
    dialogs) to the focus, the others to C{fallback}.
    """

    def __init__(self, focus: Focus, fallback: IReferHandler) -> None:
        self.focus = focus
        self.fallback = fallback

    def referReceived(self, refer: IncomingRefer) -> None:
        """
        See L{IReferHandler.referReceived}.
        """
        if self.focus.owns(refer.request):
            self.focus.referReceived(refer)
        else:
            self.fallback.referReceived(refer)


@implementer(IEventPackage)
class ConferenceRouter(ConferencePackage):
    """
    The UA's C{conference} event package: subscriptions to rooms are
    served from the rooms' L{ConferenceNotifier}s (404 for no such room,
    403 for someone not in it), the others by C{fallback}.  A subscription
    stays with whoever took it (refreshes and its end are routed by the
    subscription, not by the request).
    """

    def __init__(self, focus: Focus, fallback: IEventPackage) -> None:
        super().__init__(
            focus.conferenceFor, int(fallback.defaultExpires), isfocus=True
        )
        self.focus = focus
        self.fallback = fallback
        self._ours: set[NotifierSubscription] = set()

    def authorize(self, request: IncomingRequest) -> Any:
        """
        See L{IEventPackage.authorize}.
        """
        if self.focus.owns(request.request):
            return self.focus.conferenceStatus(
                request.request, request.transaction.authenticatedUser
            )
        return self.fallback.authorize(request)

    def contactParameters(
        self, request: IncomingRequest
    ) -> Sequence[tuple[str, str | None]]:
        """
        See L{IContactParameters}: C{isfocus} for the rooms' subscriptions.
        """
        if self.focus.owns(request.request):
            return super().contactParameters(request)
        if IContactParameters.providedBy(self.fallback):
            result: Sequence[tuple[str, str | None]]
            result = self.fallback.contactParameters(request)
            return result
        return ()

    def subscriptionStarted(self, subscription: NotifierSubscription) -> None:
        """
        See L{IEventPackage.subscriptionStarted}.
        """
        if self.focus.owns(subscription.request):
            self._ours.add(subscription)
            super().subscriptionStarted(subscription)
        else:
            self.fallback.subscriptionStarted(subscription)

    def fullState(self, subscription: NotifierSubscription) -> NotifyBody | None:
        """
        See L{IEventPackage.fullState}.
        """
        if self._isOurs(subscription):
            return super().fullState(subscription)
        result: NotifyBody | None = self.fallback.fullState(subscription)
        return result

    def subscriptionEnded(
        self, subscription: NotifierSubscription, reason: SubscriptionReason
    ) -> None:
        """
        See L{IEventPackage.subscriptionEnded}.
        """
        if self._isOurs(subscription):
            self._ours.discard(subscription)
            super().subscriptionEnded(subscription, reason)
        else:
            self.fallback.subscriptionEnded(subscription, reason)

    def _isOurs(self, subscription: NotifierSubscription) -> bool:
        """
        Whether the focus serves a subscription: one it started, or a fetch
        (C{Expires: 0}, RFC 6665 section 4.4.3), which is never started and
        gets its one document at once.
        """
        if subscription in self._ours:
            return True
        return subscription.context is None and self.focus.owns(subscription.request)
