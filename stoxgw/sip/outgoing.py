# -*- test-case-name: tests.sip.test_useragent -*-
"""
Requests the UA core sends (RFC 3261 sections 8.1, 13.2, 17.1).

L{RequestSender} makes and sends them for L{SIPUserAgent}:
L{SIPUserAgent.invite} (a Deferred firing with the L{InviteDialog},
failing with L{SIPError} on a non-2xx final response; cancelling it sends
CANCEL) and L{SIPUserAgent.request} (out-of-dialog non-INVITE requests),
and the requests of dialogs.  Each one goes through an L{OutgoingRequest}:
resolution, the client transaction, 401 and 407 challenges answered once
per challenge with the configured L{stoxgw.sip.auth.DigestCredentials},
and for our INVITEs a C{422} retried once with the C{Min-SE} it names
(RFC 4028 section 7.3).  With session timers every request but ACK and
CANCEL lists C{timer} in Supported (RFC 4028 section 7.1).

The next hop is the first Route (an outbound proxy or a static route per
domain puts itself there, section 8.1.2), else the Request-URI; its host
is resolved by an L{IResolver}: L{HostResolver} takes IP literals as they
are and looks up A records; L{stoxgw.sip.dns.RFC3263Resolver} does RFC
3263 NAPTR/SRV resolution (the gateway's service uses it).  Requests in
a dialog go over the connection the peer opened when the dialog allows
it (L{stoxgw.sip.dialog.Dialog.reusableFlow}: RFC 5923 section 2, RFC 5626
section 4.3).
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Sequence

from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from stoxgw._util import failureOf
from stoxgw.sip.dialog import Dialog, DialogError, DialogID, DialogState, dialogIDOf
from stoxgw.sip.headers import CSeq, HeaderError, Headers, SessionExpires, parseTokenList
from stoxgw.sip.incoming import allowOf
from stoxgw.sip.invitedialog import IDialogHandler, InviteDialog
from stoxgw.sip.message import SIPRequest, SIPResponse
from stoxgw.sip.sessiontimer import (
    OPTION_TAG,
    minimumOf,
    requestHeaders,
    termsFromResponse,
)
from stoxgw.sip.transaction import ClientTransaction, InviteClientTransaction
from stoxgw.sip.transport import Address, Flow, TransportKind, newTag
from stoxgw.sip.uri import NameAddr, SIPURI

if TYPE_CHECKING:
    from stoxgw.sip.useragent import SIPUserAgent

__all__ = [
    "SIPError",
    "IResolver",
    "HostResolver",
    "OutgoingRequest",
    "RequestSender",
]


class SIPError(Exception):
    """
    A request got a non-2xx final response.

    @ivar status: The status code.
    @ivar reason: The reason phrase.
    @ivar response: The response.
    """

    def __init__(self, status: int, reason: str, response: SIPResponse | None = None):
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.response = response

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


class IResolver(Interface):
    """
    Turns a SIP URI into the addresses to try (RFC 3263).
    """

    def resolve(uri: SIPURI) -> Deferred[list[Address]]:
        """
        @return: Addresses in order of preference; fails if none.
        """


@implementer(IResolver)
class HostResolver:
    """
    The simple resolver: transport from the URI (C{transport} parameter,
    C{sips} -> TLS, else the first of C{transports}), port from the URI
    or the transport default, host as an IP literal or looked up as an A
    record with the reactor (C{IReactorCore.resolve}).  No NAPTR/SRV: the
    default when none is given, for tests and lab set-ups;
    L{stoxgw.sip.dns.RFC3263Resolver} is the RFC 3263 one.
    """

    def __init__(self, reactor: Any, transports: Sequence[TransportKind]) -> None:
        self.reactor = reactor
        self.transports = tuple(transports) or (TransportKind.UDP,)

    def resolve(self, uri: SIPURI) -> Deferred[list[Address]]:
        """
        Resolve as described above.
        """
        param = uri.transport
        kind: TransportKind
        if param is not None:
            try:
                kind = TransportKind.fromToken(param)
            except ValueError:
                return fail(DialogError(f"Unsupported transport {param}"))
            if uri.secure and kind is TransportKind.TCP:
                kind = TransportKind.TLS
        elif uri.secure:
            kind = TransportKind.TLS
        else:
            kind = self.transports[0]
        port = uri.port or kind.defaultPort
        maddr = uri.parameter("maddr")
        host = maddr or uri.host
        if uri.numericHost or maddr:
            return succeed([Address(kind, host, port)])
        d: Deferred[str] = self.reactor.resolve(host)
        return d.addCallback(lambda ip: [Address(kind, ip, port)])


class OutgoingRequest:
    """
    One outgoing request through resolution, transaction(s) and digest
    retries; for INVITE also cancellation.
    """

    _log = Logger()

    def __init__(
        self,
        ua: SIPUserAgent,
        request: SIPRequest,
        onProvisional: Callable[[SIPResponse], None] | None = None,
        flow: Flow | None = None,
    ) -> None:
        """
        @param flow: A connection the peer opened to send over instead of
            resolving the next hop (L{Dialog.reusableFlow}).
        """
        self.ua = ua
        self.request = ua.withSupported(request)
        self.onProvisional = onProvisional
        self.flow = flow
        self.result: Deferred[SIPResponse] = Deferred()
        self.transaction: ClientTransaction | None = None
        self.destination: Address | None = None
        self.cancelled = False
        self._retried: set[int] = set()

    def start(self) -> Deferred[SIPResponse]:
        if self.flow is not None:
            # The transport keeps every open connection under its peer's
            # address, accepted ones too (RFC 3261 section 18.1.1): sending
            # to that address writes on the peer's own connection.
            self._send(self.flow.source)
            return self.result
        self.ua.sender.nextHop(self.request).addCallbacks(self._send, self._unreachable)
        return self.result

    def _unreachable(self, reason: Failure) -> None:
        self._log.warn(
            "Cannot resolve next hop for {uri}: {error}",
            uri=str(self.request.uri),
            error=reason.getErrorMessage(),
        )
        self._finish(
            self.request.makeResponse(503, "Service Unavailable (no route)").withHeader(
                "Warning", '399 stoxgw "generated locally"'
            )
        )

    def _send(self, destination: Address) -> None:
        if self.cancelled:
            self._finish(self.request.makeResponse(487))
            return
        self.destination = destination
        self.transaction = self.ua.layer.sendRequest(
            self.request, destination, self._response
        )

    def _response(self, response: SIPResponse) -> None:
        if response.status < 200:
            if self.onProvisional is not None and response.status > 100:
                self.onProvisional(response)
            return
        if response.status in (401, 407) and not self.cancelled:
            fields = self.ua.digest.authorize(self.request, response)
            if fields is not None and response.status not in self._retried:
                self._retried.add(response.status)
                headers = self.request.headers.remove(fields[0][0])
                cseq = self.request.cseq
                headers = headers.set(
                    "CSeq", CSeq(cseq.number + 1, cseq.method).serialize()
                )
                headers = headers.extend(fields)
                self.request = replace(self.request, headers=headers)
                assert self.destination is not None
                self._send(self.destination)
                return
        if response.status == 422 and self._retryTooSmall(response):
            return
        self._finish(response)

    def _retryTooSmall(self, response: SIPResponse) -> bool:
        """
        RFC 4028 section 7.3: an initial INVITE whose session interval was
        too small is sent again (same Call-ID, From, To; the next CSeq)
        with the C{Min-SE} the 422 asked for, once.

        @return: Whether it was sent again.
        """
        request = self.request
        if (
            self.cancelled
            or 422 in self._retried
            or request.method != "INVITE"
            or request.toAddress.tag is not None
            or request.header("Session-Expires") is None
        ):
            return False
        try:
            minimum = minimumOf(response)
        except HeaderError:
            return False
        self._retried.add(422)
        headers = request.headers.remove("Session-Expires").remove("Min-SE")
        cseq = request.cseq
        headers = headers.set("CSeq", CSeq(cseq.number + 1, cseq.method).serialize())
        headers = headers.extend(requestHeaders(minimum, minimum))
        self.request = replace(request, headers=headers)
        assert self.destination is not None
        self._send(self.destination)
        return True

    def _finish(self, response: SIPResponse) -> None:
        if not self.result.called:
            self.result.callback(response)

    def cancel(self) -> None:
        self.cancelled = True
        if isinstance(self.transaction, InviteClientTransaction):
            self.transaction.cancel()


class RequestSender:
    """
    Makes and sends the UA core's requests (see the module docstring).

    @ivar ua: The UA core: its settings, transport, resolver and dialogs.
    @ivar acks: The last ACK sent per INVITE dialog, and where, for the
        2xx retransmissions.
    """

    _log = Logger()

    def __init__(self, ua: SIPUserAgent) -> None:
        self.ua = ua
        self.acks: dict[DialogID, tuple[SIPRequest, Address]] = {}

    def withSupported(self, request: SIPRequest) -> SIPRequest:
        """
        C{request} with C{timer} in its Supported when we do session
        timers: RFC 4028 section 7.1 asks it of every request but ACK, in
        a dialog or not, with a session timer on it or not (a Supported
        already there gets our other option tags too, RFC 3261 section
        8.1.1).  CANCEL is left alone: it copies its INVITE.
        """
        if OPTION_TAG not in self.ua.supported or request.method in ("ACK", "CANCEL"):
            return request
        try:
            present = parseTokenList(request.headers.getLines("Supported"))
        except HeaderError:
            present = []
        if OPTION_TAG in present:
            return request
        options = present + [o for o in self.ua.supported if o not in present]
        headers = request.headers.remove("Supported").add(
            "Supported", ", ".join(options)
        )
        return replace(request, headers=headers)


    def sendInDialog(
        self, dialog: Dialog, request: SIPRequest
    ) -> Deferred[SIPResponse]:
        """
        Send a dialog's request (its Route set is already on it): over the
        connection the peer opened when the dialog may reuse it
        (L{Dialog.reusableFlow}, RFC 5923, RFC 5626), else to the resolved
        next hop.
        """
        return OutgoingRequest(self.ua, request, flow=dialog.reusableFlow()).start()

    def sendAck(self, dialog: InviteDialog, ack: SIPRequest) -> None:
        """
        Send an ACK for a 2xx and keep it for the 2xx's retransmissions.
        """

        def send(destination: Address) -> None:
            sent = self.ua.layer.sendStateless(ack, destination)
            dialog.lastAck = sent
            self.acks[dialog.id] = (sent, destination)

        self.nextHop(ack).addCallbacks(send, lambda reason: None)


    def strayResponse(self, response: SIPResponse) -> None:
        """
        A response no client transaction took: a retransmitted 2xx to our
        INVITE gets the ACK sent for it again (RFC 3261 section 13.2.2.4).
        """
        try:
            if not (response.isSuccess and response.cseq.method == "INVITE"):
                return
            key = dialogIDOf(response)
        except HeaderError:
            return
        sent = self.acks.get(key)
        if sent is not None:
            self.ua.layer.resend(*sent)

    def forget(self, dialogID: DialogID) -> None:
        """
        A dialog ended: drop the ACK kept for it.
        """
        self.acks.pop(dialogID, None)

    def nextHop(self, request: SIPRequest) -> Deferred[Address]:
        """
        Where a request goes first (RFC 3261 section 8.1.2): its first
        Route, else its Request-URI, resolved.
        """
        try:
            routes = request.route
        except HeaderError as e:
            return fail(e)
        uri = routes[0].uri if routes else request.uri
        if not isinstance(uri, SIPURI):
            return fail(DialogError(f"Cannot send to {uri}"))
        d: Deferred[list[Address]] = maybeDeferred(self.ua.resolver.resolve, uri)

        def first(addresses: list[Address]) -> Address:
            if not addresses:
                raise DialogError(f"No address for {uri}")
            return addresses[0]

        return d.addCallback(first)

    def routesFor(self, uri: SIPURI) -> list[tuple[str, str]]:
        """
        The Route of an out-of-dialog request to C{uri}: the outbound
        proxy, else the static route of its domain (loose routing).
        """
        proxy = self.ua.settings.outboundProxy
        if proxy is None:
            proxy = self.ua.settings.routes.get(uri.host.lower())
        if proxy is None:
            return []
        if not proxy.looseRouting:
            proxy = proxy.withParameter("lr")
        return [("Route", NameAddr(proxy).serialize())]

    def newRequest(
        self,
        method: str,
        target: NameAddr,
        fromAddress: NameAddr,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        contentType: str | None,
        contact: NameAddr | None,
    ) -> SIPRequest:
        """
        A new out-of-dialog request (RFC 3261 section 8.1.1): a fresh
        Call-ID, From tag and CSeq, our Route, Contact and User-Agent.
        """
        uri = target.uri
        if not isinstance(uri, SIPURI):
            raise DialogError(f"Not a SIP URI: {uri}")
        callID = f"{secrets.token_hex(12)}@{self.ua.transport.advertisedHost}"
        fields: list[tuple[str, str]] = [
            ("Max-Forwards", "70"),
            ("From", fromAddress.withTag(fromAddress.tag or newTag()).serialize()),
            ("To", target.withoutParameter("tag").serialize()),
            ("Call-ID", callID),
            ("CSeq", CSeq(secrets.randbelow(2**16) + 1, method).serialize()),
        ]
        fields.extend(self.routesFor(uri))
        if contact is not None:
            fields.append(("Contact", contact.serialize()))
        if self.ua.settings.userAgent:
            fields.append(("User-Agent", self.ua.settings.userAgent))
        fields.extend(headers)
        request = SIPRequest(method, uri.withoutHeaders(), Headers.of(*fields))
        if body or contentType is not None:
            request = request.withBody(body, contentType)
        return request

    def defaultTransport(self, uri: SIPURI) -> TransportKind:
        """
        The transport toward C{uri}: its C{transport} parameter, TLS for
        sips, else our first one (RFC 3261 section 18.1.1 leaves the
        choice to the UA when nothing says).
        """
        param = uri.transport
        if param is not None:
            try:
                return TransportKind.fromToken(param)
            except ValueError:
                pass
        if uri.secure:
            return TransportKind.TLS
        transports = self.ua.transport.transports
        return transports[0] if transports else TransportKind.UDP

    def request(
        self,
        method: str,
        target: NameAddr | SIPURI,
        fromAddress: NameAddr,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        contentType: str | None = None,
    ) -> Deferred[SIPResponse]:
        """
        Send an out-of-dialog non-INVITE request (OPTIONS, MESSAGE, ...).

        @return: Fires with the final response (any status; local 408 on
            timeout, 503 on transport or resolution failure).
        """
        if method in ("INVITE", "ACK", "CANCEL"):
            raise ValueError(f"Use invite() or the dialog for {method}")
        address = target if isinstance(target, NameAddr) else NameAddr(target)
        request = self.newRequest(
            method, address, fromAddress, headers, body, contentType, None
        )
        return OutgoingRequest(self.ua, request).start()

    def invite(
        self,
        target: NameAddr | SIPURI,
        fromAddress: NameAddr,
        sdpOffer: bytes | None,
        *,
        handler: IDialogHandler | None = None,
        headers: Sequence[tuple[str, str]] = (),
        contentType: str = "application/sdp",
        contact: NameAddr | None = None,
        contactParameters: Sequence[tuple[str, str | None]] = (),
        onProvisional: Callable[[SIPResponse], None] | None = None,
    ) -> Deferred[InviteDialog]:
        """
        Send an INVITE and make the dialog from its 2xx (ACKed at once).

        @param contact: Our Contact (default: L{contactFor} the transport
            the target URI asks for).
        @param contactParameters: URI parameters of the default Contact
            (C{gr} for a GRUU, RFC 5627).
        @param onProvisional: Called with each 1xx (101-199).
        @return: Fires with the confirmed L{InviteDialog}; fails with
            L{SIPError} on a non-2xx final response (or a local 408/503).
            Cancelling it sends CANCEL (once a provisional response came).
        """
        address = target if isinstance(target, NameAddr) else NameAddr(target)
        uri = address.uri
        if not isinstance(uri, SIPURI):
            return fail(DialogError(f"Not a SIP URI: {uri}"))
        if contact is None:
            contact = self.ua.contactFor(
                self.defaultTransport(uri),
                user=(
                    fromAddress.uri.user
                    if isinstance(fromAddress.uri, SIPURI)
                    else None
                ),
                uriParameters=contactParameters,
            )
        extra = list(self.ua.capabilityHeaders()) + list(headers)
        timer = self.ua.settings.sessionTimer
        if timer is not None and not any(
            name.lower() in ("session-expires", "x") for name, _ in headers
        ):
            # RFC 4028 section 7.1: ask for a session timer, leaving the
            # choice of refresher to the UAS.
            extra.extend(requestHeaders(timer.interval, timer.minimum))
        request = self.newRequest(
            "INVITE",
            address,
            fromAddress,
            extra,
            sdpOffer or b"",
            contentType if sdpOffer else None,
            contact,
        )
        outgoing = OutgoingRequest(self.ua, request, onProvisional)
        result: Deferred[InviteDialog] = Deferred(lambda d: outgoing.cancel())

        def answered(response: SIPResponse) -> None:
            if response.isSuccess:
                try:
                    base = Dialog.fromResponse(outgoing.request, response, contact)
                except (DialogError, HeaderError) as e:
                    # No dialog can be made (e.g. no Contact), so there is no
                    # target to ACK or BYE: fail the INVITE rather than leave
                    # its caller waiting (502: an invalid response came back).
                    self._log.warn(
                        "Unusable 2xx for INVITE: {error}",
                        error=str(e),
                        callID=response.header("Call-ID"),
                    )
                    if not result.called:
                        result.errback(
                            failureOf(SIPError(502, f"Unusable 2xx: {e}", response))
                        )
                    return
                dialog = self.ua.bindDialog(base)
                dialog.handler = handler
                dialog.inviteResponse = response
                dialog.peerAllow = allowOf(response)
                dialog.localBody = sdpOffer or b""
                dialog.localContentType = contentType if sdpOffer else None
                dialog.remoteBody = response.body
                dialog.acknowledge(outgoing.request.cseq.number)
                if result.called:
                    # Cancelled meanwhile: the 2xx won the race (section 9.1).
                    dialog.bye().addErrback(lambda _: None)
                    return
                dialog.notifyConfirmed()
                self.startUACSessionTimer(dialog, outgoing.request, response)
                result.callback(dialog)
                return
            if not result.called:
                result.errback(
                    failureOf(SIPError(response.status, response.reason, response))
                )

        outgoing.start().addCallback(answered).addErrback(
            lambda reason: None if result.called else result.errback(reason)
        )
        return result

    def startUACSessionTimer(
        self, dialog: InviteDialog, request: SIPRequest, response: SIPResponse
    ) -> None:
        """
        The session timer a 2xx to our INVITE sets (RFC 4028 section 7.2).
        """
        settings = self.ua.settings.sessionTimer
        asked = request.header("Session-Expires")
        if settings is None or asked is None or dialog.state is DialogState.TERMINATED:
            return
        try:
            interval = SessionExpires.parse(asked).interval
            minimum = max(minimumOf(request), settings.minimum)
        except HeaderError:
            return
        dialog.startSessionTimer(termsFromResponse(response, interval, minimum))
