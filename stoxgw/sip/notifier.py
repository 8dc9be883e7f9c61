# -*- test-case-name: tests.sip.test_subscription -*-
"""
The notifier side of a subscription (RFC 6665 section 4.2):
L{NotifierSubscription}, made by L{stoxgw.sip.subscription.SIPEvents} for
an accepted SUBSCRIBE (or by L{stoxgw.sip.refer} for a REFER's implicit
subscription), sends the NOTIFYs one at a time and ends the subscription.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from stoxgw.sip.dialog import Dialog, DialogError
from stoxgw.sip.eventstate import (
    NOTIFY_FAILURE_STATUSES,
    IEventPackage,
    NotifyBody,
    SubscriptionReason,
    SubscriptionStatus,
    SubscriptionUsage,
    cancelCall,
    now,
)
from stoxgw.sip.headers import Event, SubscriptionState
from stoxgw.sip.message import SIPRequest, SIPResponse

if TYPE_CHECKING:
    from stoxgw.sip.subscription import SIPEvents

__all__ = ["NotifierSubscription", "SKIP_NOTIFY"]


@dataclass(slots=True)
class _QueuedNotify:
    """
    A NOTIFY waiting for its turn (L{NotifierSubscription}).

    @ivar makeBody: Gives the body when the NOTIFY is sent; L{SKIP_NOTIFY}
        drops it.
    @ivar final: Whether it terminates the subscription.
    @ivar parameters: The C{terminated} state's parameters (final only).
    @ivar result: Fires with its response, or L{None} for a coalesced one.
    @ivar coalesce: Whether later changes fold into it while it waits.
    """

    makeBody: Callable[[], NotifyBody | None | object]
    final: bool = False
    parameters: tuple[tuple[str, str | None], ...] = ()
    result: Deferred[SIPResponse] | None = None
    coalesce: bool = False


#: What a body maker of L{NotifierSubscription.notifyChanged} returns when
#: nothing changed since the last NOTIFY: none is sent.
SKIP_NOTIFY = object()


class NotifierSubscription(SubscriptionUsage):
    """
    A subscription we serve (RFC 6665 section 4.2).

    Its NOTIFYs go one at a time: the next one is sent once the previous
    one has its final response (or failed), so that they arrive in order
    over UDP too (RFC 6665 section 4.2.2 only orders them by CSeq, which a
    subscriber cannot wait on; RFC 4575 section 4.4 partial documents
    need every version, SPEC F.1 item 9).  The body of a queued NOTIFY is
    made when it is sent, so a full state or a partial one is computed
    from what was actually sent before it; a change may be folded into
    the waiting one (L{notifyChanged}).  A final NOTIFY drops the ones
    still waiting.

    @ivar events: The owner.
    @ivar dialog: Its dialog (shared with other usages).
    @ivar package: Its event package.
    @ivar event: The Event header as the subscriber sent it (echoed in
        NOTIFYs, C{id} included).
    @ivar request: The SUBSCRIBE that made it.
    @ivar status: The state.
    @ivar expiresAt: Clock time when it expires.
    @ivar reason: Why it ended, once terminated.
    @ivar context: Free for the package (e.g. the conference it watches).
    """

    _log = Logger()

    def __init__(
        self,
        events: SIPEvents,
        dialog: Dialog,
        package: IEventPackage,
        event: Event,
        request: SIPRequest,
        expires: int,
    ) -> None:
        self.events = events
        self.dialog = dialog
        self.package = package
        self.event = event
        self.request = request
        self.status = SubscriptionStatus.INIT
        self.expiresAt = now(events) + expires
        self.reason: SubscriptionReason | None = None
        self.context: Any = None
        self._timer: IDelayedCall | None = None
        self._queue: deque[_QueuedNotify] = deque()
        self._inFlight: Deferred[SIPResponse] | None = None
        self._schedule(expires)

    @property
    def remaining(self) -> int:
        """
        Seconds until it expires (rounded up).
        """
        return max(0, math.ceil(self.expiresAt - now(self.events)))

    @property
    def notifying(self) -> bool:
        """
        Whether a NOTIFY is waiting for its final response.
        """
        return self._inFlight is not None

    def _schedule(self, expires: int) -> None:
        cancelCall(self._timer)
        self.expiresAt = now(self.events) + expires
        self._timer = self.events.ua.clock.callLater(expires, self._expired)

    def _expired(self) -> None:
        self._timer = None
        self._log.info(
            "Subscription to {package} expired",
            package=self.event.package,
            callID=self.dialog.callID,
        )
        self.terminate(SubscriptionReason.TIMEOUT)

    def matches(self, event: Event) -> bool:
        """
        Whether an Event header names this subscription (RFC 6665
        section 8.2.1: package and C{id}).
        """
        return self.event.matches(event)

    def notify(self, body: NotifyBody | None = None) -> Deferred[SIPResponse]:
        """
        Send a NOTIFY with C{Subscription-State: active;expires=N} (RFC
        6665 section 4.2.2), after the ones before it.

        @return: Its response; fails with L{DialogError} if the
            subscription ends before it is sent.
        @raise DialogError: The subscription is terminated.
        """
        return self._enqueue(lambda: body)

    def notifyFullState(self) -> Deferred[SIPResponse]:
        """
        L{notify} with the package's full state, made when the NOTIFY is
        sent (L{fullState}).
        """
        return self._enqueue(self.fullState)

    @property
    def waitingNotifies(self) -> int:
        """
        How many NOTIFYs wait for the one in flight.
        """
        return len(self._queue)

    def notifyChanged(
        self, makeBody: Callable[[], NotifyBody | object], coalesce: bool = False
    ) -> None:
        """
        The state changed: send a NOTIFY whose body C{makeBody} gives when
        it is sent (L{SKIP_NOTIFY}: nothing to send).  With C{coalesce},
        if the last waiting NOTIFY is such a change too, C{makeBody}
        replaces its body maker instead (it must then give every change
        since the last body sent).
        """
        if self.status is SubscriptionStatus.TERMINATED:
            return
        if coalesce and self._queue and self._queue[-1].coalesce:
            self._queue[-1].makeBody = makeBody
            return
        self._transition(SubscriptionStatus.ACTIVE)
        self._queue.append(_QueuedNotify(makeBody, coalesce=True))
        self._sendNext()

    def fullState(self) -> NotifyBody | None:
        """
        The package's full state; a failing package is logged and the
        NOTIFY goes without a body (RFC 6665 section 4.2.1.2 allows an
        empty one).
        """
        try:
            return self.package.fullState(self)
        except Exception as e:
            self._log.failure(
                "Event package failed in fullState",
                error=e,
                callID=self.dialog.callID,
            )
            return None

    def _enqueue(
        self, makeBody: Callable[[], NotifyBody | None | object]
    ) -> Deferred[SIPResponse]:
        if self.status is SubscriptionStatus.TERMINATED:
            raise DialogError("Subscription is terminated")
        self._transition(SubscriptionStatus.ACTIVE)
        entry = _QueuedNotify(makeBody, result=Deferred())
        self._queue.append(entry)
        self._sendNext()
        assert entry.result is not None
        return entry.result

    def terminate(
        self,
        reason: SubscriptionReason = SubscriptionReason.DEACTIVATED,
        body: NotifyBody | None = None,
        retryAfter: int | None = None,
    ) -> Deferred[SIPResponse] | None:
        """
        End the subscription with a final NOTIFY
        C{Subscription-State: terminated;reason=...} (RFC 6665 section
        4.2.2; L{SubscriptionReason.DEACTIVATED} asks the subscriber to
        re-subscribe at once, C{NORESOURCE} not to).  NOTIFYs not sent
        yet are dropped; the final one waits for the one in flight.

        @return: The NOTIFY's result, or L{None} if already terminated.
        """
        if self.status is SubscriptionStatus.TERMINATED:
            return None
        params: list[tuple[str, str | None]] = []
        if reason.isProtocolReason:
            params.append(("reason", reason.value))
        if retryAfter is not None:
            params.append(("retry-after", str(retryAfter)))
        self.end(reason)
        entry = _QueuedNotify(
            lambda: body, final=True, parameters=tuple(params), result=Deferred()
        )
        self._queue.append(entry)
        self._sendNext()
        assert entry.result is not None
        return entry.result

    def _dropQueued(self) -> None:
        while self._queue:
            entry = self._queue.popleft()
            if entry.result is not None:
                entry.result.errback(DialogError("Subscription is terminated"))

    def _sendNext(self) -> None:
        while self._inFlight is None and self._queue:
            entry = self._queue.popleft()
            body = entry.makeBody()
            if body is SKIP_NOTIFY:
                continue
            assert body is None or isinstance(body, NotifyBody)
            if entry.final:
                state = SubscriptionState("terminated", entry.parameters)
            else:
                state = SubscriptionState(
                    "active", (("expires", str(self.remaining)),)
                )
            d = self._inFlight = self._sendNotify(state, body, entry.final)
            d.addBoth(self._answered, d)
            if entry.result is not None:
                d.chainDeferred(entry.result)
            else:
                d.addErrback(lambda _: None)

    def _answered(self, result: Any, d: Deferred[SIPResponse]) -> Any:
        if self._inFlight is d:
            self._inFlight = None
            self._sendNext()
        return result

    def _sendNotify(
        self, state: SubscriptionState, body: NotifyBody | None, final: bool
    ) -> Deferred[SIPResponse]:
        headers = [
            ("Event", self.event.serialize()),
            ("Subscription-State", state.serialize()),
        ]
        d = self.events.sendInDialog(
            self.dialog,
            "NOTIFY",
            headers,
            body.body if body is not None else b"",
            body.contentType if body is not None else None,
        )

        def answered(response: SIPResponse) -> SIPResponse:
            if response.status in NOTIFY_FAILURE_STATUSES:
                if not final:
                    self._log.info(
                        "NOTIFY got {status}: subscription removed",
                        status=response.status,
                        callID=self.dialog.callID,
                    )
                    self.end(SubscriptionReason.NOTIFY_FAILED)
                self._dropQueued()
            return response

        return d.addCallback(answered)

    def refreshed(self, expires: int) -> None:
        """
        The subscriber refreshed it for C{expires} seconds (L{SIPEvents}).
        """
        self._schedule(expires)

    def end(self, reason: SubscriptionReason) -> None:
        """
        Drop it without a NOTIFY (L{terminate} sends one): stop its timer,
        leave its dialog, tell the package.
        """
        if not self._transition(SubscriptionStatus.TERMINATED):
            return
        cancelCall(self._timer)
        self._timer = None
        self.reason = reason
        self._dropQueued()
        self.events.removeUsage(self.dialog, self)
        try:
            self.package.subscriptionEnded(self, reason)
        except Exception as e:
            self._log.failure(
                "Event package failed in subscriptionEnded",
                error=e,
                callID=self.dialog.callID,
            )
