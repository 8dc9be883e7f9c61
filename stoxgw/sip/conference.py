# -*- test-case-name: tests.sip.test_subscription -*-
"""
The C{conference} event package (RFC 4575) on L{stoxgw.sip.subscription}:
L{ConferencePackage} and L{ConferenceNotifier} serve full documents on
subscribe and refresh and partial ones (L{diff}) on change, with a
version counter per subscription (RFC 4575 section 5.2, R-176);
L{ConferenceWatcher} merges received documents (L{applyNotification}) and
re-subscribes when a partial document shows a gap (R-180).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Callable, Sequence

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from stoxgw.formats.conferenceinfo import (
    CONFERENCE_EVENT_PACKAGE,
    CONFERENCE_INFO_CONTENT_TYPE,
    ConferenceInfo,
    ConferenceInfoError,
    MergeOutcome,
    applyNotification,
    diff,
)
from stoxgw.sip.eventstate import (
    IContactParameters,
    IEventPackage,
    ISubscriptionHandler,
    NotifyBody,
    SubscriptionReason,
)
from stoxgw.sip.message import SIPRequest
from stoxgw.sip.notifier import SKIP_NOTIFY, NotifierSubscription
from stoxgw.sip.subscriber import ClientSubscription
from stoxgw.sip.useragent import IncomingRequest

__all__ = [
    "ConferenceNotifier",
    "ConferencePackage",
    "ConferenceWatcher",
    "MAX_WAITING_PARTIALS",
]

#: Partial documents that may wait for one subscriber's NOTIFY in flight;
#: further changes fold into the last one (L{ConferenceNotifier.update}).
MAX_WAITING_PARTIALS = 16


class ConferenceNotifier:
    """
    One conference's state as served to its subscribers: full documents
    on subscribe and refresh, partial ones on change, a version counter
    per subscription starting at 1 (RFC 4575 sections 4.3 and 5.2; SPEC F.1
    item 9).

    @ivar state: The current full state (its version is ignored).
    @ivar subscriptions: The subscriptions, in order.
    """

    def __init__(self, state: ConferenceInfo) -> None:
        self.state = state
        self.subscriptions: list[NotifierSubscription] = []
        # Per subscription: the state its last document brought it to (with
        # that document's version), and the number of that state.
        self._sent: dict[NotifierSubscription, ConferenceInfo] = {}
        self._sentSerial: dict[NotifierSubscription, int] = {}
        # Numbers the states given to update, so that a change queued
        # before a full document was sent is not sent after it.
        self._serial = 0

    def fullDocument(self, subscription: NotifierSubscription) -> NotifyBody:
        """
        The full state for a subscription, with its next version.
        """
        last = self._sent.get(subscription)
        version = (last.version or 0) + 1 if last is not None else 1
        document = replace(self.state, version=version)
        self._sent[subscription] = document
        self._sentSerial[subscription] = self._serial
        return NotifyBody(document.toBytes(), CONFERENCE_INFO_CONTENT_TYPE)

    def update(self, state: ConferenceInfo) -> None:
        """
        The conference changed: send each subscriber the partial document
        (L{diff}) from what it was sent last; nothing if nothing changed.

        A subscriber whose previous NOTIFY is still unanswered gets this
        change in its own partial document once the ones before it are
        answered (L{NotifierSubscription.notifyChanged}), so that every
        step reaches it (a kick: the endpoint C{booted}, then the user
        deleted) with consecutive versions in the order they arrive.
        Beyond L{MAX_WAITING_PARTIALS} waiting ones, the changes fold into
        the last: one partial document from the last state sent to the
        newest.
        """
        self.state = state
        self._serial += 1
        for subscription in list(self.subscriptions):
            if subscription in self._sent:
                subscription.notifyChanged(
                    partial(self._partialDocument, subscription, state, self._serial),
                    coalesce=subscription.waitingNotifies >= MAX_WAITING_PARTIALS,
                )

    def _partialDocument(
        self, subscription: NotifierSubscription, state: ConferenceInfo, serial: int
    ) -> object:
        """
        The partial document from the state last sent to C{subscription}
        to C{state} (number C{serial}), or L{SKIP_NOTIFY} if it brings
        nothing new (or a full document sent meanwhile already has it).
        """
        last = self._sent.get(subscription)
        if last is None or serial <= self._sentSerial.get(subscription, 0):
            return SKIP_NOTIFY
        self._sentSerial[subscription] = serial
        document = diff(last, state)
        if document is None:
            return SKIP_NOTIFY
        self._sent[subscription] = replace(state, version=document.version)
        return NotifyBody(document.toBytes(), CONFERENCE_INFO_CONTENT_TYPE)

    def close(self, reason: SubscriptionReason = SubscriptionReason.NORESOURCE) -> None:
        """
        The conference is gone: terminate every subscription.
        """
        for subscription in list(self.subscriptions):
            d = subscription.terminate(reason)
            if d is not None:
                d.addErrback(lambda _: None)

    def attach(self, subscription: NotifierSubscription) -> None:
        """
        A subscription to this conference started (L{ConferencePackage}).
        """
        self.subscriptions.append(subscription)

    def detach(self, subscription: NotifierSubscription) -> None:
        """
        It ended.
        """
        if subscription in self.subscriptions:
            self.subscriptions.remove(subscription)
        self._sent.pop(subscription, None)
        self._sentSerial.pop(subscription, None)


@implementer(IEventPackage, IContactParameters)
class ConferencePackage:
    """
    The notifier side of the C{conference} package (RFC 4575 section 3):
    C{lookup} finds the L{ConferenceNotifier} for a SUBSCRIBE (by its
    Request-URI); none gets C{404}.

    @ivar isfocus: We answer as the conference focus: the Contact of the
        200 carries C{isfocus} (RFC 7702 section 5.3 example 8).
    """

    name = CONFERENCE_EVENT_PACKAGE
    contentTypes = (CONFERENCE_INFO_CONTENT_TYPE,)

    def __init__(
        self,
        lookup: Callable[[SIPRequest], ConferenceNotifier | None],
        defaultExpires: int = 3600,
        *,
        isfocus: bool = False,
    ) -> None:
        self.lookup = lookup
        self.defaultExpires = defaultExpires
        self.isfocus = isfocus

    def contactParameters(
        self, request: IncomingRequest
    ) -> Sequence[tuple[str, str | None]]:
        """
        C{isfocus} when we are the focus (L{IContactParameters}).
        """
        return [("isfocus", None)] if self.isfocus else []

    def authorize(self, request: IncomingRequest) -> int | None | Deferred[int | None]:
        """
        C{404} unless C{lookup} knows the conference.
        """
        return None if self.lookup(request.request) is not None else 404

    def subscriptionStarted(self, subscription: NotifierSubscription) -> None:
        """
        Attach the subscription to its conference.
        """
        conference = self.lookup(subscription.request)
        subscription.context = conference
        if conference is not None:
            conference.attach(subscription)

    def fullState(self, subscription: NotifierSubscription) -> NotifyBody | None:
        """
        The conference's full document (RFC 4575 section 4.3).
        """
        conference = subscription.context or self.lookup(subscription.request)
        if not isinstance(conference, ConferenceNotifier):
            return None
        return conference.fullDocument(subscription)

    def subscriptionEnded(
        self, subscription: NotifierSubscription, reason: SubscriptionReason
    ) -> None:
        """
        Detach it.
        """
        if isinstance(subscription.context, ConferenceNotifier):
            subscription.context.detach(subscription)


@implementer(ISubscriptionHandler)
class ConferenceWatcher:
    """
    A conference subscriber's handler (RFC 4575 section 4.6): merges every
    received document into the local full state with
    L{applyNotification}, re-subscribes for a full document when a partial
    one shows a gap (R-180), and reports each new state.

    @ivar state: The local full state, or L{None} before the first one.
    @ivar onState: Called with each new state (and the outcome).
    @ivar onEnded: Called with the reason when the subscription ends.
    """

    _log = Logger()

    def __init__(
        self,
        onState: Callable[[ConferenceInfo, MergeOutcome], None] | None = None,
        onEnded: Callable[[SubscriptionReason], None] | None = None,
    ) -> None:
        self.state: ConferenceInfo | None = None
        self.onState = onState
        self.onEnded = onEnded

    def notifyReceived(
        self, subscription: ClientSubscription, request: SIPRequest
    ) -> None:
        """
        Parse and merge the body (bodiless NOTIFYs are ignored).
        """
        if not request.body:
            return
        contentType = request.contentType
        if (
            contentType is not None
            and contentType.mimeType != CONFERENCE_INFO_CONTENT_TYPE
        ):
            self._log.warn(
                "NOTIFY with {contentType} instead of conference-info",
                contentType=contentType.mimeType,
                callID=request.header("Call-ID"),
            )
            return
        try:
            document = ConferenceInfo.parse(request.body)
            result = applyNotification(self.state, document)
        except (ConferenceInfoError, ValueError) as e:
            self._log.warn(
                "Bad conference-info: {error}",
                error=str(e),
                callID=request.header("Call-ID"),
            )
            return
        if result.outcome is MergeOutcome.NEEDS_FULL_STATE:
            subscription.refresh()
            return
        if result.outcome is MergeOutcome.IGNORED or result.state is None:
            return
        self.state = result.state
        if self.onState is not None:
            self.onState(result.state, result.outcome)

    def subscriptionEnded(
        self, subscription: ClientSubscription, reason: SubscriptionReason
    ) -> None:
        """
        Report the end.
        """
        if self.onEnded is not None:
            self.onEnded(reason)
