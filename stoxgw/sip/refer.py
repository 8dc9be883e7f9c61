# -*- test-case-name: tests.sip.test_refer -*-
"""
The REFER method (RFC 3515) with RFC 4488 C{Refer-Sub}, on top of the UA
core and L{SIPEvents} (the implicit subscription is a subscription usage).

Recipient (L{ReferAgent} with an L{IReferHandler}): a REFER out of dialog
or inside a dialog (an INVITE dialog with a conference focus, RFC 4579
section 5.5) must carry exactly one Refer-To (else C{400}, RFC 3515 section
2.4.1, R-182); the handler gets an L{IncomingRefer} with the parsed
Refer-To (its C{method} parameter and URI headers), Referred-By (RFC 3892)
and whether an implicit subscription is wanted.  L{IncomingRefer.accept}
answers C{202 Accepted} (RFC 3515 section 2.4.2; C{200} is accepted too, as
RFC 7647 and RFC 7702 section 6.5 use it) and, unless the REFER said
C{Refer-Sub: false} (RFC 4488 section 4: the 2xx then says so too and no
subscription or dialog is made), creates the implicit C{refer}
subscription and sends its first NOTIFY at once: C{Event: refer} (with
C{id} = the REFER's CSeq when the REFER came in an existing dialog, RFC
3515 section 2.4.6), C{Content-Type: message/sipfrag;version=2.0}, body
C{SIP/2.0 100 Trying} (section 2.4.5).  L{ReferProgress.progress} reports
later status lines; a final one (2xx-6xx) terminates the subscription
(C{Subscription-State: terminated;reason=noresource}), which is also what
RFC 7702 section 6.5 advises right after the first NOTIFY
(L{ReferProgress.finish}).

Sender (L{ReferAgent.refer}): a REFER in a dialog or to a target, with
C{Refer-Sub: false} on request; the NOTIFYs of the implicit subscription
(received before or after the 2xx) are answered C{200} and their sipfrag
status lines collected in L{OutgoingRefer}.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Callable, Sequence

from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from stoxgw.sip.dialog import Dialog, dialogIDOf
from stoxgw.sip.headers import Event, HeaderError, parseAddress
from stoxgw.sip.message import SIPRequest, SIPResponse, reasonPhrase
from stoxgw.sip.subscription import (
    ClientSubscription,
    IEventPackage,
    ISubscriptionHandler,
    NotifierSubscription,
    NotifyBody,
    SIPEvents,
    SubscriptionReason,
    SubscriptionStatus,
)
from stoxgw.sip.uri import URI, NameAddr, SIPURI
from stoxgw.sip.useragent import (
    IDialogUsageHandler,
    IncomingRequest,
    IRequestHandler,
    SIPError,
)

__all__ = [
    "REFER_EVENT_PACKAGE",
    "SIPFRAG_CONTENT_TYPE",
    "NOREFERSUB",
    "ReferTo",
    "sipfrag",
    "parseSipfrag",
    "parseReferSub",
    "IReferHandler",
    "IncomingRefer",
    "ReferProgress",
    "OutgoingRefer",
    "ReferAgent",
]

#: RFC 3515 section 2.4.4: the event package of the implicit subscription.
REFER_EVENT_PACKAGE = "refer"

#: RFC 3420 section 2: the NOTIFY body type.
SIPFRAG_CONTENT_TYPE = "message/sipfrag;version=2.0"

#: RFC 4488 section 4: the option tag.
NOREFERSUB = "norefersub"

_STATUS_LINE_RE = re.compile(rb"\ASIP/2\.0 ([1-6][0-9][0-9]) ?([^\r\n]*)")


def sipfrag(status: int, reason: str | None = None) -> bytes:
    """
    A C{message/sipfrag} body that is just a status line (RFC 3515
    section 2.4.5: C{SIP/2.0 100 Trying}).
    """
    phrase = reason if reason is not None else reasonPhrase(status)
    return f"SIP/2.0 {status} {phrase}\r\n".encode()


def parseSipfrag(body: bytes) -> tuple[int, str] | None:
    """
    The status line at the start of a C{message/sipfrag} body, or
    L{None} if it does not start with one.
    """
    match = _STATUS_LINE_RE.match(body.lstrip(b"\r\n"))
    if match is None:
        return None
    return int(match.group(1)), match.group(2).decode("utf-8", "replace")


def parseReferSub(value: str | None) -> bool | None:
    """
    The RFC 4488 C{Refer-Sub} value (C{true}/C{false}, parameters
    ignored), or L{None} when absent.

    @raise HeaderError: Neither C{true} nor C{false}.
    """
    if value is None:
        return None
    token = value.split(";", 1)[0].strip().lower()
    if token not in ("true", "false"):
        raise HeaderError("Invalid Refer-Sub", value)
    return token == "true"


@dataclass(frozen=True, slots=True)
class ReferTo:
    """
    A parsed Refer-To (RFC 3515 section 2.1).

    @ivar address: The name-addr (any URI scheme).
    """

    address: NameAddr

    @classmethod
    def fromRequest(cls, request: SIPRequest) -> ReferTo:
        """
        The single Refer-To of a REFER (compact form C{r} included).

        @raise HeaderError: None, more than one, or malformed (RFC 3515
            section 2.4.1: C{400}).
        """
        lines = request.headers.getLines("Refer-To")
        if len(lines) != 1:
            raise HeaderError("REFER needs exactly one Refer-To", str(len(lines)))
        return cls(parseAddress(lines[0]))

    @property
    def uri(self) -> URI:
        """
        The referred-to URI (with its headers, for the request to make).
        """
        return self.address.uri

    @property
    def method(self) -> str:
        """
        The method to use: the SIP URI's C{method} parameter, else INVITE
        (RFC 3515 section 2.2; RFC 4579 section 5.5 adds participants
        with INVITE, removes them with BYE).
        """
        uri = self.address.uri
        if isinstance(uri, SIPURI):
            method = uri.parameter("method")
            if method:
                return method.upper()
        return "INVITE"

    @property
    def uriHeaders(self) -> tuple[tuple[str, str], ...]:
        """
        The SIP URI's headers (C{?Replaces=...}), unescaped.
        """
        uri = self.address.uri
        return uri.headers if isinstance(uri, SIPURI) else ()


class IReferHandler(Interface):
    """
    The application side of received REFERs (RFC 7702 section 6.5: a
    MUC mediated invitation).
    """

    def referReceived(refer: IncomingRefer) -> None:
        """
        A valid REFER arrived: call C{refer.accept()} (then report
        progress on the returned L{ReferProgress}) or C{refer.reject()}.
        """


@implementer(IEventPackage)
class _ReferPackage:
    """
    The C{refer} package of implicit subscriptions (never subscribed to
    explicitly: it is not registered with L{SIPEvents}, so a new
    SUBSCRIBE for it gets C{489}; refreshes and C{Expires: 0} of an
    existing one work).
    """

    name = REFER_EVENT_PACKAGE
    contentTypes = ("message/sipfrag",)

    def __init__(self, defaultExpires: int) -> None:
        self.defaultExpires = defaultExpires

    def authorize(self, request: IncomingRequest) -> int | None:
        return 403

    def subscriptionStarted(self, subscription: NotifierSubscription) -> None:
        pass

    def fullState(self, subscription: NotifierSubscription) -> NotifyBody | None:
        progress = subscription.context
        if isinstance(progress, ReferProgress):
            return NotifyBody(sipfrag(*progress.last), SIPFRAG_CONTENT_TYPE)
        return None

    def subscriptionEnded(
        self, subscription: NotifierSubscription, reason: SubscriptionReason
    ) -> None:
        pass


class ReferProgress:
    """
    The recipient's report channel of one accepted REFER.

    @ivar subscription: The implicit subscription, or L{None} with
        C{Refer-Sub: false}.
    @ivar last: The last reported status and reason.
    """

    def __init__(self, subscription: NotifierSubscription | None) -> None:
        self.subscription = subscription
        self.last: tuple[int, str] = (100, "Trying")
        if subscription is not None:
            subscription.context = self

    @property
    def active(self) -> bool:
        """
        Whether NOTIFYs can still be sent.
        """
        return (
            self.subscription is not None
            and self.subscription.status is not SubscriptionStatus.TERMINATED
        )

    def progress(self, status: int, reason: str | None = None) -> None:
        """
        Report the status of the referred request (RFC 3515 section
        2.4.5); a final status terminates the subscription
        (C{reason=noresource}).  Nothing is sent without a subscription.
        """
        self.last = (status, reason if reason is not None else reasonPhrase(status))
        if not self.active:
            return
        assert self.subscription is not None
        body = NotifyBody(sipfrag(*self.last), SIPFRAG_CONTENT_TYPE)
        if status >= 200:
            d = self.subscription.terminate(SubscriptionReason.NORESOURCE, body)
        else:
            d = self.subscription.notify(body)
        if d is not None:
            d.addErrback(lambda _: None)

    def finish(self) -> None:
        """
        Terminate the implicit subscription now with the last status
        (RFC 7702 section 6.5: right after the first NOTIFY).
        """
        if not self.active:
            return
        assert self.subscription is not None
        d = self.subscription.terminate(
            SubscriptionReason.NORESOURCE,
            NotifyBody(sipfrag(*self.last), SIPFRAG_CONTENT_TYPE),
        )
        if d is not None:
            d.addErrback(lambda _: None)


class IncomingRefer:
    """
    A received, well-formed REFER waiting for an answer.

    @ivar incoming: The request.
    @ivar referTo: Its Refer-To.
    @ivar referredBy: Its Referred-By (RFC 3892), or L{None}.
    @ivar referSub: Whether an implicit subscription is wanted (RFC 4488:
        C{False} when the REFER said C{Refer-Sub: false} and we honour it).
    @ivar dialog: The dialog it came in, or L{None}.
    """

    _log = Logger()

    def __init__(
        self,
        agent: ReferAgent,
        incoming: IncomingRequest,
        referTo: ReferTo,
        referredBy: NameAddr | None,
        referSub: bool,
        dialog: Dialog | None,
    ) -> None:
        self.agent = agent
        self.incoming = incoming
        self.referTo = referTo
        self.referredBy = referredBy
        self.referSub = referSub
        self.dialog = dialog

    @property
    def request(self) -> SIPRequest:
        """
        The REFER.
        """
        return self.incoming.request

    def accept(
        self,
        status: int | None = None,
        terminate: bool = False,
        *,
        isfocus: bool = False,
    ) -> ReferProgress:
        """
        Answer C{202} (or C{status}, 200 or 202) and start the implicit
        subscription with a C{100 Trying} NOTIFY (unless C{Refer-Sub:
        false}).

        @param terminate: That NOTIFY also ends the subscription
            (C{Subscription-State: terminated;reason=noresource}): all the
            progress there will be (RFC 7702 section 6.5, F57).
        @param isfocus: We answer as the conference focus the REFER was
            sent to: the Contact of the answer (out of dialog; in a dialog
            it is the dialog's) carries C{isfocus} (RFC 4579 section 5.5,
            RFC 7702 section 5.3 example 8).
        """
        agent = self.agent
        events = agent.events
        code = status if status is not None else agent.acceptStatus
        request = self.request
        dialog = self.dialog
        if dialog is None and self.referSub:
            contact = events.contactFor(
                self.incoming, [("isfocus", None)] if isfocus else ()
            )
            dialog = Dialog.fromIncomingRequest(
                request, self.incoming.toTag, contact, flow=self.incoming.flow
            )
        headers: list[tuple[str, str]] = []
        if dialog is not None:
            headers.append(("Contact", dialog.localContact.serialize()))
        if not self.referSub:
            headers.append(("Refer-Sub", "false"))
        if agent.norefersub:
            headers.append(("Supported", NOREFERSUB))
        self.incoming.respond(code, headers=headers)
        if not self.referSub or dialog is None:
            return ReferProgress(None)
        event = Event(REFER_EVENT_PACKAGE)
        if self.dialog is not None:
            event = Event(REFER_EVENT_PACKAGE, (("id", str(request.cseq.number)),))
        expires = events.settings.referExpires
        subscription = NotifierSubscription(
            events, dialog, agent.package, event, request, expires
        )
        progress = ReferProgress(subscription)
        events.addUsage(dialog, subscription)
        trying = NotifyBody(sipfrag(100, "Trying"), SIPFRAG_CONTENT_TYPE)
        if terminate:
            subscription.terminate(SubscriptionReason.NORESOURCE, trying)
            return progress
        subscription.notify(trying).addErrback(lambda _: None)
        return progress

    def reject(self, status: int = 603, reason: str | None = None) -> SIPResponse:
        """
        Refuse the REFER (no subscription).
        """
        if status < 300:
            raise ValueError("Not a failure status")
        return self.incoming.respond(status, reason)


@implementer(ISubscriptionHandler)
class OutgoingRefer:
    """
    A REFER we sent, accepted by its recipient.

    @ivar request: The REFER.
    @ivar response: Its 2xx, once received.
    @ivar subscription: The implicit subscription, or L{None} when the
        2xx said C{Refer-Sub: false} (RFC 4488).
    @ivar statuses: The sipfrag status lines received, in order.
    @ivar finished: Fires with the final sipfrag status (200-699) when
        the subscription ends, or L{None} if it ended without one (or
        there was none).
    """

    def __init__(self, request: SIPRequest) -> None:
        self.request = request
        self.response: SIPResponse | None = None
        self.subscription: ClientSubscription | None = None
        self.statuses: list[tuple[int, str]] = []
        self.finished: Deferred[int | None] = Deferred()

    @property
    def finalStatus(self) -> int | None:
        """
        The last final status reported, or L{None}.
        """
        finals = [status for status, _ in self.statuses if status >= 200]
        return finals[-1] if finals else None

    def notifyReceived(
        self, subscription: ClientSubscription, request: SIPRequest
    ) -> None:
        """
        Keep the sipfrag status line (RFC 3515 section 2.4.5).
        """
        line = parseSipfrag(request.body)
        if line is not None:
            self.statuses.append(line)

    def subscriptionEnded(
        self, subscription: ClientSubscription, reason: SubscriptionReason
    ) -> None:
        """
        Fire L{finished}.
        """
        if not self.finished.called:
            self.finished.callback(self.finalStatus)


@implementer(IRequestHandler, IDialogUsageHandler)
class ReferAgent:
    """
    REFER for one UA: receives them (when given an L{IReferHandler}) and
    sends them (see the module docstring).

    @ivar events: The subscription usages (the implicit subscriptions live
        there).
    @ivar handler: Takes received REFERs, or L{None} (REFER not allowed:
        C{405} out of dialog, the INVITE dialog's handler inside one).
    @ivar acceptStatus: C{202} (RFC 3515) or C{200} (RFC 7647, RFC 7702).
    @ivar norefersub: Honour C{Refer-Sub: false} (RFC 4488); add
        C{norefersub} to the UA's supported options too so a REFER with
        C{Require: norefersub} is not refused with 420.
    """

    _log = Logger()

    def __init__(
        self,
        events: SIPEvents,
        handler: IReferHandler | None = None,
        *,
        acceptStatus: int = 202,
        norefersub: bool = True,
        match: Callable[[URI], bool] | None = None,
    ) -> None:
        self.events = events
        self.handler = handler
        self.acceptStatus = acceptStatus
        self.norefersub = norefersub
        self.package = _ReferPackage(events.settings.referExpires)
        if handler is not None:
            events.ua.addHandler("REFER", self, match)
        events.ua.addUsageHandler(self)

    # -- receiving ------------------------------------------------------------

    def requestReceived(self, request: IncomingRequest) -> None:
        """
        An out-of-dialog REFER (L{IRequestHandler}).
        """
        self._referReceived(request, None)

    def inDialogRequestReceived(self, incoming: IncomingRequest) -> bool:
        """
        A REFER with a To tag (L{IDialogUsageHandler}): ours when a
        handler is set and the dialog is known.
        """
        request = incoming.request
        if request.method != "REFER" or self.handler is None:
            return False
        dialog = self.events.findDialog(dialogIDOf(request))
        if dialog is None:
            return False
        if not self.events.checkSeq(incoming, dialog):
            return True
        dialog.refreshTarget(request)
        self._referReceived(incoming, dialog)
        return True

    def _referReceived(self, incoming: IncomingRequest, dialog: Dialog | None) -> None:
        request = incoming.request
        try:
            referTo = ReferTo.fromRequest(request)
            value = request.header("Referred-By")
            referredBy = parseAddress(value) if value is not None else None
            wanted = parseReferSub(request.header("Refer-Sub"))
        except HeaderError as e:
            incoming.respond(400, f"Bad Request ({e.args[0]})")
            return
        if dialog is None and (
            request.contact is None or not request.contact.addresses
        ):
            incoming.respond(400, "Bad Request (no Contact)")
            return
        referSub = not (wanted is False and self.norefersub)
        refer = IncomingRefer(self, incoming, referTo, referredBy, referSub, dialog)
        self._log.info(
            "REFER to {referTo} from {peer}",
            referTo=str(referTo.uri),
            peer=str(incoming.flow.source),
            callID=request.callID,
        )
        assert self.handler is not None
        self.handler.referReceived(refer)

    # -- sending ----------------------------------------------------------------

    def refer(
        self,
        target: Dialog | NameAddr | SIPURI,
        referTo: NameAddr | SIPURI,
        *,
        fromAddress: NameAddr | None = None,
        referSub: bool = True,
        referredBy: NameAddr | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Deferred[OutgoingRefer]:
        """
        Send a REFER in a dialog (C{target} a L{Dialog}, e.g. the INVITE
        dialog with the focus) or to a target (with C{fromAddress}); RFC
        4579 section 5.5 REFERs the conference URI with Refer-To = the
        invitee.

        @param referSub: C{False} sends C{Refer-Sub: false} (RFC 4488).
        @return: Fires with the L{OutgoingRefer} on a 2xx; fails with
            L{SIPError} otherwise.
        """
        events = self.events
        address = referTo if isinstance(referTo, NameAddr) else NameAddr(referTo)
        fields: list[tuple[str, str]] = [("Refer-To", address.serialize())]
        if not referSub:
            fields.append(("Refer-Sub", "false"))
        if referredBy is not None:
            fields.append(("Referred-By", referredBy.serialize()))
        fields.append(("Accept", "message/sipfrag"))
        fields.extend(headers)
        result: Deferred[OutgoingRefer] = Deferred()
        if isinstance(target, Dialog):
            request = target.createRequest("REFER", fields)
            event = Event(REFER_EVENT_PACKAGE, (("id", str(request.cseq.number)),))
            outgoing = OutgoingRefer(request)
            subscription = ClientSubscription(
                events, event, outgoing, 0, dialog=target, implicit=True
            )
            subscription.cseq = request.cseq.number
            events.addUsage(target, subscription)
            d = events.ua.sendInDialog(target, request)
        else:
            if fromAddress is None:
                return fail(ValueError("refer to a target needs fromAddress"))
            targetAddress = target if isinstance(target, NameAddr) else NameAddr(target)
            contact = events.contactForTarget(targetAddress)
            outgoing = OutgoingRefer(SIPRequest("REFER", targetAddress.uri))
            subscription = ClientSubscription(
                events,
                Event(REFER_EVENT_PACKAGE),
                outgoing,
                0,
                target=targetAddress,
                fromAddress=fromAddress,
                contact=contact,
                implicit=True,
            )
            subscription.localTag = secrets.token_hex(8)
            events.addPending(subscription)
            d = events.ua.request(
                "REFER",
                targetAddress,
                fromAddress.withTag(subscription.localTag),
                [("Contact", contact.serialize())] + fields,
            )
        subscription.status = SubscriptionStatus.NOTIFY_WAIT
        subscription.established.addErrback(lambda _: None)
        subscription.startTimerN()

        def answered(response: SIPResponse) -> None:
            outgoing.response = response
            if not response.isSuccess:
                subscription.subscribeAnswered(response)
                result.errback(
                    Failure(SIPError(response.status, response.reason, response))  # type: ignore[no-untyped-call]
                )
                return
            try:
                sub = parseReferSub(response.header("Refer-Sub"))
            except HeaderError:
                sub = None
            if sub is False and not subscription.gotNotify:
                subscription.end(SubscriptionReason.NORESOURCE)
            else:
                outgoing.subscription = subscription
                subscription.subscribeAnswered(response)
            result.callback(outgoing)

        d.addCallback(answered).addErrback(
            lambda reason: None if result.called else result.errback(reason)
        )
        return result
