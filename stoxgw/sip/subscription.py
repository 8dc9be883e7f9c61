# -*- test-case-name: tests.sip.test_subscription -*-
"""
SIP-specific event notification (RFC 6665): the subscription dialog
usages of both roles, on top of the UA core (L{SIPUserAgent}).

L{SIPEvents} is the one object per UA that owns every subscription.  It
takes out-of-dialog SUBSCRIBEs (an L{IRequestHandler}) and, as an
L{IDialogUsageHandler}, SUBSCRIBE and NOTIFY requests carrying a To tag:
inside a dialog it made, inside an INVITE dialog of the UA core (RFC 7702
puts the conference subscription in or out of the INVITE dialog; RFC 5057
calls each a "dialog usage"), or a NOTIFY that arrives before the 2xx of
our SUBSCRIBE (RFC 6665 section 4.1.2.4: it creates the dialog).  A dialog
hosting usages stays known here until its last usage ends, so a
subscription in an INVITE dialog survives that dialog's BYE (RFC 5057
section 5).

Notifier (RFC 6665 section 4.2): an L{IEventPackage} per package name
(C{489} with Allow-Events for others, section 4.2.1.1) authorizes the
SUBSCRIBE and gives the state; C{423} with Min-Expires for a too brief
Expires; C{200} with the granted Expires (never longer than asked, 4.2.1.1);
the NOTIFY with the full state follows at once (4.2.1.2: it may overtake
the 200); a refresh (re-SUBSCRIBE in the dialog) updates the expiry and
sends the full state again; C{Expires: 0} (and the expiry timer) end it
with C{Subscription-State: terminated;reason=timeout} (4.2.1.4);
L{NotifierSubscription.notify} sends state changes and
L{NotifierSubscription.terminate} ends it with a reason (4.1.3); a NOTIFY
answered with one of the section 4.2.2 codes (or timing out) removes the
subscription.

Subscriber (RFC 6665 section 4.1): L{SIPEvents.subscribe} sends a SUBSCRIBE
(out of dialog, or in an existing dialog) and returns a
L{ClientSubscription}; NOTIFYs are answered C{200} (C{481} when no
subscription matches, C{400} without Subscription-State) and handed to its
L{ISubscriptionHandler}; the subscription is refreshed before it expires,
ended with L{ClientSubscription.unsubscribe}, and follows the termination
reasons in a simplified way (section 4.1.3: C{deactivated} and C{timeout}
re-subscribe at once, C{probation} and C{giveup} after C{retry-after} when
given, the others end it).  Timer N (64*T1) ends a subscription that never
got a NOTIFY.

For the C{conference} package (RFC 4575) L{ConferencePackage} and
L{ConferenceNotifier} serve full documents on subscribe and refresh and
partial ones (L{stoxgw.formats.conferenceinfo.diff}) on change, with a
version counter per subscription (RFC 4575 section 5.2, R-176), and
L{ConferenceWatcher} merges received documents
(L{stoxgw.formats.conferenceinfo.applyNotification}) and re-subscribes
when a partial document shows a gap (R-180).

Where the parts live: L{stoxgw.sip.eventstate} (states, reasons, settings,
the package and handler interfaces), L{stoxgw.sip.notifier}
(L{NotifierSubscription}), L{stoxgw.sip.subscriber}
(L{ClientSubscription}), L{stoxgw.sip.conference} (the conference
package); this module holds L{SIPEvents}, which routes requests to them and
owns their dialogs, and is where the public names are imported from.  The
usages talk to their owner through the methods L{SIPEvents} documents as
theirs (C{addUsage}, C{sendInDialog}, C{addPending}...), never through its
private members.

Not done: C{pending} subscriptions on the notifier side (policy is decided
at once), forked SUBSCRIBEs (NOTIFYs from a second notifier get 481),
throttling, and the RFC 6665 section 4.5 GRUU rules.
"""

from typing import Any, Callable, Sequence, Union

from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from stoxgw.sip.conference import (
    ConferenceNotifier,
    ConferencePackage,
    ConferenceWatcher,
)
from stoxgw.sip.dialog import Dialog, DialogError, DialogID, DialogRole, dialogIDOf
from stoxgw.sip.eventstate import (
    NOTIFY_FAILURE_STATUSES,
    SUBSCRIPTION_TRANSITIONS,
    IContactParameters,
    IEventPackage,
    ISubscriptionHandler,
    NotifyBody,
    SubscriptionReason,
    SubscriptionSettings,
    SubscriptionStatus,
)
from stoxgw.sip.headers import Event, HeaderError, MediaType, SubscriptionState, parseExpires
from stoxgw.sip.message import SIPResponse
from stoxgw.sip.notifier import SKIP_NOTIFY, NotifierSubscription
from stoxgw.sip.subscriber import ClientSubscription
from stoxgw.sip.uri import URI, NameAddr, SIPURI
from stoxgw.sip.useragent import (
    IDialogUsageHandler,
    IncomingRequest,
    IRequestHandler,
    SIPUserAgent,
)

__all__ = [
    "SubscriptionStatus",
    "SUBSCRIPTION_TRANSITIONS",
    "SubscriptionReason",
    "NOTIFY_FAILURE_STATUSES",
    "NotifyBody",
    "SKIP_NOTIFY",
    "SubscriptionSettings",
    "IEventPackage",
    "IContactParameters",
    "ISubscriptionHandler",
    "NotifierSubscription",
    "ClientSubscription",
    "SIPEvents",
    "ConferenceNotifier",
    "ConferencePackage",
    "ConferenceWatcher",
]


Usage = Union[NotifierSubscription, ClientSubscription]


@implementer(IRequestHandler, IDialogUsageHandler)
class SIPEvents:
    """
    The subscription usages of one UA (see the module docstring).

    @ivar ua: The UA core.
    @ivar settings: Expiry policy.
    @ivar packages: Notifier packages by name.
    @ivar dialogs: Dialogs hosting usages, by dialog ID (INVITE dialogs of
        the UA core included while they host one).
    """

    _log = Logger()

    def __init__(
        self,
        ua: SIPUserAgent,
        settings: SubscriptionSettings = SubscriptionSettings(),
        match: Callable[[URI], bool] | None = None,
    ) -> None:
        self.ua = ua
        self.settings = settings
        self.packages: dict[str, IEventPackage] = {}
        self.dialogs: dict[DialogID, Dialog] = {}
        self._usages: dict[DialogID, list[Usage]] = {}
        self._pending: dict[str, ClientSubscription] = {}
        self._match = match
        ua.addUsageHandler(self)

    # -- configuration --------------------------------------------------------

    def addPackage(self, package: IEventPackage) -> None:
        """
        Serve subscriptions to C{package}: the first one also makes us the
        UA's SUBSCRIBE handler (C{SUBSCRIBE} in Allow), and the name goes
        into Allow-Events (RFC 6665 section 4.4.4).
        """
        name = str(package.name).lower()
        if not self.packages:
            self.ua.addHandler("SUBSCRIBE", self, self._match)
        self.packages[name] = package
        if name not in self.ua.allowEvents:
            self.ua.allowEvents.append(name)

    def _allowEvents(self) -> list[tuple[str, str]]:
        if not self.ua.allowEvents:
            return []
        return [("Allow-Events", ", ".join(self.ua.allowEvents))]

    # -- dialogs and usages (the API of the usages: NotifierSubscription,
    # -- ClientSubscription, stoxgw.sip.refer) ------------------------------

    def findDialog(self, key: DialogID) -> Dialog | None:
        """
        The dialog with this ID: one hosting usages, else an INVITE dialog
        of the UA core.
        """
        return self.dialogs.get(key) or self.ua.dialogs.get(key)

    def addUsage(self, dialog: Dialog, usage: Usage) -> None:
        """
        C{usage} lives in C{dialog} (which stays known while it has one,
        and the transport keeps its connection open meanwhile).
        """
        if dialog.id not in self.dialogs:
            self.ua.transport.dialogStarted(dialog.callID, dialog.flow)
        self.dialogs[dialog.id] = dialog
        usages = self._usages.setdefault(dialog.id, [])
        if usage not in usages:
            usages.append(usage)

    def removeUsage(self, dialog: Dialog, usage: Usage) -> None:
        """
        C{usage} left C{dialog}; the last one out forgets the dialog.
        """
        usages = self._usages.get(dialog.id, [])
        if usage in usages:
            usages.remove(usage)
        if not usages:
            self._usages.pop(dialog.id, None)
            if self.dialogs.get(dialog.id) is dialog:
                del self.dialogs[dialog.id]
                self.ua.transport.dialogEnded(dialog.callID)

    def isSharedDialog(self, dialog: Dialog) -> bool:
        """
        Whether C{dialog} is an INVITE dialog of the UA core.
        """
        return self.ua.dialogs.get(dialog.id) is dialog

    def addPending(self, subscription: ClientSubscription) -> None:
        """
        An out-of-dialog SUBSCRIBE (or REFER) went out with this local
        tag: a NOTIFY with it may come before the 2xx (RFC 6665 section
        4.1.2.4).
        """
        self._pending[subscription.localTag] = subscription

    def forgetPending(self, localTag: str) -> None:
        """
        Undo L{addPending}.
        """
        self._pending.pop(localTag, None)

    def usages(self, dialog: Dialog) -> list[Usage]:
        """
        The subscription usages of a dialog.
        """
        return list(self._usages.get(dialog.id, []))

    def sendInDialog(
        self,
        dialog: Dialog,
        method: str,
        headers: Sequence[tuple[str, str]],
        body: bytes = b"",
        contentType: str | None = None,
    ) -> Deferred[SIPResponse]:
        """
        Send a request made in C{dialog} through the UA core.
        """
        request = dialog.createRequest(method, headers, body, contentType)
        return self.ua.sendInDialog(dialog, request)

    def contactFor(
        self,
        incoming: IncomingRequest,
        headerParameters: Sequence[tuple[str, str | None]] = (),
    ) -> NameAddr:
        """
        Our Contact for the dialog an out-of-dialog SUBSCRIBE or REFER
        makes: on the transport it came over, with the Request-URI's user
        (the room's name), plus C{headerParameters} (C{isfocus}).
        """
        request = incoming.request
        user = request.uri.user if isinstance(request.uri, SIPURI) else None
        return self.ua.contactFor(
            incoming.flow.transport, user=user, headerParameters=headerParameters
        )

    def contactForTarget(self, target: NameAddr) -> NameAddr:
        """
        Our Contact for a SUBSCRIBE or REFER we send to C{target}.
        """
        uri = target.uri
        kind = self.ua.defaultTransport(uri) if isinstance(uri, SIPURI) else None
        if kind is None:
            kind = self.ua.transport.transports[0]
        return self.ua.contactFor(kind)

    def dialogFromResponse(
        self, response: SIPResponse, subscription: ClientSubscription
    ) -> Dialog:
        """
        The subscriber's dialog from the 2xx of an out-of-dialog SUBSCRIBE
        or REFER (RFC 3261 section 12.1.2; the response repeats the
        request's Call-ID, From and CSeq), or the one an earlier NOTIFY
        made.
        """
        existing = self.dialogs.get(dialogIDOf(response))
        if existing is not None:
            return existing
        assert subscription.contact is not None
        return Dialog.fromResponse(response, response, subscription.contact)

    # -- incoming -----------------------------------------------------------------

    def requestReceived(self, request: IncomingRequest) -> None:
        """
        An out-of-dialog SUBSCRIBE (L{IRequestHandler}).
        """
        self._newSubscription(request, None)

    def inDialogRequestReceived(self, incoming: IncomingRequest) -> bool:
        """
        SUBSCRIBE or NOTIFY with a To tag (L{IDialogUsageHandler}): ours
        if it belongs to a known dialog (SUBSCRIBE) or names a
        subscription we hold (NOTIFY: C{481} otherwise).
        """
        request = incoming.request
        method = request.method
        if method not in ("SUBSCRIBE", "NOTIFY"):
            return False
        key = dialogIDOf(request)
        dialog = self.findDialog(key)
        if method == "SUBSCRIBE":
            if dialog is None:
                return False
            if not self.checkSeq(incoming, dialog):
                return True
            dialog.refreshTarget(request)
            self._inDialogSubscribe(incoming, dialog)
            return True
        self._notify(incoming, key, dialog)
        return True

    def checkSeq(self, incoming: IncomingRequest, dialog: Dialog) -> bool:
        """
        RFC 3261 section 12.2.2: an in-dialog request's CSeq; an old one
        is answered 500.

        @return: Whether it goes on.
        """
        status = dialog.checkRemoteRequest(incoming.request)
        if status is not None:
            incoming.respond(status, "Server Internal Error (CSeq out of order)")
            return False
        return True

    def _parseEvent(self, incoming: IncomingRequest) -> Event | None:
        value = incoming.request.header("Event")
        if value is None:
            incoming.respond(400, "Bad Request (no Event)")
            return None
        try:
            return Event.parse(value)
        except HeaderError:
            incoming.respond(400, "Bad Request (malformed Event)")
            return None

    def _inDialogSubscribe(self, incoming: IncomingRequest, dialog: Dialog) -> None:
        event = self._parseEvent(incoming)
        if event is None:
            return
        for usage in self._usages.get(dialog.id, []):
            if isinstance(usage, NotifierSubscription) and usage.matches(event):
                self._refresh(incoming, usage)
                return
        self._newSubscription(incoming, dialog, event)

    def _expires(self, incoming: IncomingRequest, default: int) -> int | None:
        """
        The granted duration, or L{None} after answering 400/423.
        """
        value = incoming.request.header("Expires")
        try:
            requested = parseExpires(value) if value is not None else default
        except HeaderError:
            incoming.respond(400, "Bad Request (malformed Expires)")
            return None
        minimum = self.settings.minExpires
        if 0 < requested < minimum and requested < 3600:
            incoming.respond(
                423, headers=[("Min-Expires", str(minimum))] + self._allowEvents()
            )
            return None
        return min(requested, self.settings.maxExpires)

    def _acceptable(self, incoming: IncomingRequest, package: IEventPackage) -> bool:
        types = tuple(package.contentTypes)
        lines = incoming.request.headers.getAll("Accept")
        if not types or not lines:
            return True
        accepted = set()
        for line in lines:
            try:
                accepted.add(MediaType.parse(line).mimeType)
            except HeaderError:
                continue
        if "*/*" in accepted or any(t.lower() in accepted for t in types):
            return True
        incoming.respond(406, headers=[("Accept", ", ".join(types))])
        return False

    def _newSubscription(
        self,
        incoming: IncomingRequest,
        dialog: Dialog | None,
        event: Event | None = None,
    ) -> None:
        request = incoming.request
        if event is None:
            event = self._parseEvent(incoming)
            if event is None:
                return
        package = self.packages.get(event.package.lower())
        if package is None:
            incoming.respond(489, headers=self._allowEvents())
            return
        if dialog is None and (
            request.contact is None or not request.contact.addresses
        ):
            incoming.respond(400, "Bad Request (no Contact)")
            return
        if not self._acceptable(incoming, package):
            return
        expires = self._expires(incoming, int(package.defaultExpires))
        if expires is None:
            return
        verdict = package.authorize(incoming)
        if isinstance(verdict, Deferred):
            verdict.addCallback(
                self._authorized, incoming, dialog, package, event, expires
            ).addErrback(self._authorizationFailed, incoming)
            return
        self._authorized(verdict, incoming, dialog, package, event, expires)

    def _authorizationFailed(self, reason: Failure, incoming: IncomingRequest) -> None:
        self._log.failure(
            "Authorizing a subscription ({callID})",
            reason,
            callID=incoming.request.callID,
        )
        if not incoming.answered:
            incoming.respond(500)

    def _authorized(
        self,
        status: int | None,
        incoming: IncomingRequest,
        dialog: Dialog | None,
        package: IEventPackage,
        event: Event,
        expires: int,
    ) -> None:
        """
        The package's verdict on a new SUBSCRIBE: refuse it, or create the
        subscription, answer 200 and send the first NOTIFY.
        """
        if incoming.answered:
            return
        request = incoming.request
        if status is not None:
            incoming.respond(status, headers=self._allowEvents())
            return
        if dialog is None:
            parameters: Sequence[tuple[str, str | None]] = ()
            if IContactParameters.providedBy(package):
                parameters = package.contactParameters(incoming)
            contact = self.contactFor(incoming, parameters)
            dialog = Dialog.fromIncomingRequest(
                request, incoming.toTag, contact, flow=incoming.flow
            )
        headers = [
            ("Contact", dialog.localContact.serialize()),
            ("Expires", str(expires)),
        ] + self._allowEvents()
        incoming.respond(200, headers=headers)
        subscription = NotifierSubscription(
            self, dialog, package, event, request, expires
        )
        self._log.info(
            "Subscription to {package} accepted from {peer}",
            package=event.package,
            peer=str(incoming.flow.source),
            callID=dialog.callID,
        )
        if expires == 0:
            # RFC 6665 section 4.4.3: a fetch; one terminated NOTIFY.
            body = subscription.fullState()
            subscription.terminate(SubscriptionReason.TIMEOUT, body)
            return
        self.addUsage(dialog, subscription)
        package.subscriptionStarted(subscription)
        if subscription.status is not SubscriptionStatus.TERMINATED:
            subscription.notifyFullState().addErrback(lambda _: None)

    def _refresh(
        self, incoming: IncomingRequest, subscription: NotifierSubscription
    ) -> None:
        """
        RFC 6665 section 4.2.1.4: a refresh or (Expires 0) an unsubscribe.
        """
        expires = self._expires(incoming, int(subscription.package.defaultExpires))
        if expires is None:
            return
        incoming.respond(
            200,
            headers=[
                ("Contact", subscription.dialog.localContact.serialize()),
                ("Expires", str(expires)),
            ]
            + self._allowEvents(),
        )
        if expires == 0:
            subscription.terminate(SubscriptionReason.TIMEOUT, subscription.fullState())
            return
        subscription.refreshed(expires)
        subscription.notifyFullState().addErrback(lambda _: None)

    def _notify(
        self, incoming: IncomingRequest, key: DialogID, dialog: Dialog | None
    ) -> None:
        request = incoming.request
        event = self._parseEvent(incoming)
        if event is None:
            return
        stateValue = request.header("Subscription-State")
        try:
            state = SubscriptionState.parse(stateValue) if stateValue else None
        except HeaderError:
            state = None
        if state is None:
            incoming.respond(400, "Bad Request (no Subscription-State)")
            return
        subscription: ClientSubscription | None = None
        if dialog is not None:
            for usage in self._usages.get(dialog.id, []):
                if isinstance(usage, ClientSubscription) and usage.matches(event):
                    subscription = usage
                    break
        else:
            pending = self._pending.get(key[1])
            if (
                pending is not None
                and pending.matches(event)
                and (pending.dialog is None)
            ):
                # RFC 6665 section 4.1.2.4: the NOTIFY came first.
                contact = pending.contact
                assert contact is not None
                try:
                    dialog = Dialog.fromIncomingRequest(request, key[1], contact)
                except (DialogError, HeaderError):
                    incoming.respond(400, "Bad Request (no Contact)")
                    return
                dialog.role = DialogRole.UAC
                dialog.localSeq = pending.cseq
                pending.bind(dialog)
                pending.handleNotify(incoming, state)
                return
        if subscription is None or dialog is None:
            incoming.respond(481, "Subscription Does Not Exist")
            return
        if not self.checkSeq(incoming, dialog):
            return
        subscription.handleNotify(incoming, state)

    # -- outgoing -------------------------------------------------------------------

    def subscribe(
        self,
        target: NameAddr | SIPURI | None,
        event: str | Event,
        expires: int = 3600,
        accept: Sequence[str] = (),
        *,
        handler: ISubscriptionHandler | None = None,
        fromAddress: NameAddr | None = None,
        dialog: Dialog | None = None,
        contact: NameAddr | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> ClientSubscription:
        """
        Subscribe (RFC 6665 section 4.1.2.1): out of dialog to C{target}
        from C{fromAddress}, or inside C{dialog} (e.g. the INVITE dialog
        with a conference focus).

        @param event: The package (C{conference}) or a full Event header.
        @param accept: Body types for the Accept header.
        @return: The subscription; its C{established} fires on the first
            2xx or NOTIFY.
        @raise ValueError: Neither a target with a From address nor a
            dialog.
        """
        eventHeader = event if isinstance(event, Event) else Event(event)
        address: NameAddr | None = None
        if dialog is None:
            if target is None or fromAddress is None:
                raise ValueError("subscribe needs a target and From, or a dialog")
            address = target if isinstance(target, NameAddr) else NameAddr(target)
        subscription = ClientSubscription(
            self,
            eventHeader,
            handler,
            expires,
            accept,
            target=address,
            fromAddress=fromAddress,
            contact=contact,
            dialog=dialog,
            headers=headers,
        )
        subscription.start()
        return subscription

    def shutdown(self) -> Deferred[None]:
        """
        End every subscription politely: terminated NOTIFYs with
        C{noresource} for the ones we serve, unsubscribe for the ones we
        hold.

        @return: Fires once every terminated NOTIFY has its final response
            (or failed); never fails.
        """
        notifies: list[Deferred[Any]] = []
        for usages in list(self._usages.values()):
            for usage in list(usages):
                if isinstance(usage, NotifierSubscription):
                    d = usage.terminate(SubscriptionReason.NORESOURCE)
                    if d is not None:
                        notifies.append(d.addErrback(lambda _: None))
                else:
                    usage.unsubscribe()
        return DeferredList(notifies).addCallback(lambda _: None)

    def close(self) -> None:
        """
        Drop every subscription and stop its timers (nothing is sent).
        """
        for usages in list(self._usages.values()):
            for usage in list(usages):
                usage.end(SubscriptionReason.SHUTDOWN)
        for pending in list(self._pending.values()):
            pending.end(SubscriptionReason.SHUTDOWN)
        self._usages.clear()
        self.dialogs.clear()
        self._pending.clear()
