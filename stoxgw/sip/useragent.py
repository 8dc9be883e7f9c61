# -*- test-case-name: tests.sip.test_useragent -*-
"""
The SIP UA core (RFC 3261 section 8, 12-15): the transaction user that
admits, routes and answers requests, and sends the gateway's own.

L{SIPUserAgent} is the L{ITransactionUser} of a L{TransactionLayer}.  A
request that starts a server transaction goes through RFC 3261 section 8.2
in order:

 1. admission (L{IRequestAdmission}): L{SIPTrust} admits trusted peers
    (CIDR list, TLS identities) and answers others C{403};
    L{stoxgw.sip.admission.DigestAdmission} challenges them instead
    (C{401}, RFC 3261 section 22) and records the authenticated user on
    the server transaction (C{authenticatedUser});
 2. C{Max-Forwards: 0} gets C{483} (section 16.3 lets OPTIONS be answered);
 3. a Request-URI that is not sip/sips gets C{416} (section 8.2.2.1);
 4. an unknown method gets C{501}, a known one we do not take C{405} with
    Allow (section 8.2.1);
 5. an unsupported Require option gets C{420} with Unsupported (8.2.2.3);
 6. CANCEL: C{200}, and C{487} for the INVITE if still unanswered
    (section 9.2); C{481} if no INVITE matches;
 7. with a To tag: the request belongs to a dialog (section 12.2.2), else
    C{481}; BYE ends it (section 15.1.2), INVITE is a re-INVITE (C{491} if
    one is pending, section 14.2), other methods go to the dialog's
    handler, except that SUBSCRIBE, NOTIFY and REFER are first offered to
    the L{IDialogUsageHandler}s (RFC 5057 usages: subscriptions, REFER,
    in their own dialogs or sharing an INVITE dialog);
 8. without a To tag: BYE gets C{481}; INVITE goes to the L{IInviteHandler}
    and other methods to the L{IRequestHandler} registered for the method
    whose Request-URI match accepts it (C{404} if none); OPTIONS without a
    handler is answered C{200} with Allow, Accept and Supported (section
    11.2).

Handlers answer through L{IncomingInvite} and L{IncomingRequest}; an
exception in a handler is logged and answered C{500}.

Session timers (RFC 4028, L{UserAgentSettings.sessionTimer}): C{timer} is
supported and UPDATE allowed; an INVITE, re-INVITE or UPDATE asking for
less than our C{Min-SE} gets C{422} before any handler sees it, the 2xx
of the others carries C{Session-Expires} (L{stoxgw.sip.sessiontimer}) and
starts the dialog's timer; a bodiless UPDATE in a dialog is answered by
the core; our INVITEs ask for a timer (a C{422} is retried once with the
C{Min-SE} it names).  The dialogs run the timers
(L{stoxgw.sip.dialog.InviteDialog.startSessionTimer}).

Requests in a dialog go over the connection the peer opened when the
dialog allows it (L{stoxgw.sip.dialog.Dialog.reusableFlow}: RFC 5923
section 2, RFC 5626 section 4.3), else to the resolved next hop;
L{SIPUserAgent.shutdown} BYEs every dialog and says when the BYEs are
answered.

Outgoing: L{SIPUserAgent.invite} (a Deferred firing with the
L{InviteDialog}, failing with L{SIPError} on a non-2xx final response;
cancelling it sends CANCEL) and L{SIPUserAgent.request} (out-of-dialog
non-INVITE requests).  401 and 407 challenges are answered once per
challenge with the configured L{DigestCredentials}.  The next hop is the
first Route (an outbound proxy or a static route per domain puts itself
there, section 8.1.2), else the Request-URI; its host is resolved by an
L{IResolver}: L{HostResolver} takes IP literals as they are and looks up
A records; L{stoxgw.sip.dns.RFC3263Resolver} does RFC 3263 NAPTR/SRV
resolution (the gateway's service uses it).
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Callable, Iterable, Mapping, Sequence

from twisted.internet.defer import (
    Deferred,
    DeferredList,
    fail,
    maybeDeferred,
    succeed,
)
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from stoxgw.sip.auth import DigestClient, DigestCredentials
from stoxgw.sip.dialog import (
    Dialog,
    DialogError,
    DialogState,
    IDialogHandler,
    InviteDialog,
    TerminationReason,
    dialogIDOf,
)
from stoxgw.sip.headers import (
    CSeq,
    HeaderError,
    Headers,
    SessionExpires,
    parseMaxForwards,
    parseTokenList,
)
from stoxgw.sip.message import SIPRequest, SIPResponse
from stoxgw.sip.sessiontimer import (
    OPTION_TAG,
    IntervalTooSmall,
    SessionTimerSettings,
    SessionTimerTerms,
    answerRequest,
    minimumOf,
    requestHeaders,
    termsFromResponse,
)
from stoxgw.sip.transaction import (
    ClientTransaction,
    InviteClientTransaction,
    InviteServerTransaction,
    ITransactionUser,
    ServerTransaction,
    TimerSettings,
    TransactionLayer,
    TransactionState,
)
from stoxgw.sip.transport import Address, Flow, SIPTransport, TransportKind, newTag
from stoxgw.sip.uri import URI, NameAddr, SIPURI

__all__ = [
    "SIPError",
    "SIPTrust",
    "AdmissionDecision",
    "AdmissionVerdict",
    "IRequestAdmission",
    "tlsPeerNames",
    "IInviteHandler",
    "IRequestHandler",
    "IDialogUsageHandler",
    "IResolver",
    "HostResolver",
    "UserAgentSettings",
    "IncomingRequest",
    "IncomingInvite",
    "SIPUserAgent",
    "KNOWN_METHODS",
]

#: Methods of RFC 3261 and its common extensions: not allowed ones get
#: 405, anything else 501 (section 8.2.1).
KNOWN_METHODS = frozenset(
    {
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "INFO",
        "REFER",
        "MESSAGE",
        "UPDATE",
    }
)

#: Methods the core always takes.
CORE_METHODS = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS")

#: Methods a dialog's handler may receive inside an INVITE dialog.
IN_DIALOG_METHODS = frozenset({"INFO", "MESSAGE", "NOTIFY", "REFER", "SUBSCRIBE"})


def _failure(error: BaseException) -> Failure:
    return Failure(error)  # type: ignore[no-untyped-call]


def _allowOf(message: SIPRequest | SIPResponse) -> frozenset[str] | None:
    """
    The methods a message's Allow header lists (upper case), or L{None}
    without one (or a malformed one).
    """
    lines = message.headers.getLines("Allow")
    if not lines:
        return None
    try:
        return frozenset(method.upper() for method in parseTokenList(lines))
    except HeaderError:
        return None


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


class AdmissionVerdict(Enum):
    """
    What to do with a received request.
    """

    #: Process it.
    ADMIT = "admit"
    #: Answer 401 with challenges (RFC 3261 section 22.2).
    CHALLENGE = "challenge"
    #: Answer with a failure (403) and drop it.
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class AdmissionDecision:
    """
    An L{IRequestAdmission}'s answer for one request.

    @ivar verdict: Admit, challenge or reject.
    @ivar status: The response status for a challenge (401) or a
        rejection (403, 400...); 0 when admitted.
    @ivar reason: The reason phrase, or L{None} for the default.
    @ivar headers: Header fields for the response (one C{WWW-Authenticate}
        per challenge, most preferred first, RFC 8760 section 2.3).
    @ivar user: The digest-authenticated user name, if any: the identity
        of the request for the layers above (never the From header).
    @ivar peerName: The trusted TLS identity of the peer, if that is what
        admitted it.
    @ivar detail: Why, for the log (never a secret).
    """

    verdict: AdmissionVerdict
    status: int = 0
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    user: str | None = None
    peerName: str | None = None
    detail: str = ""

    @classmethod
    def admit(
        cls, user: str | None = None, peerName: str | None = None, detail: str = ""
    ) -> AdmissionDecision:
        """
        Process the request.
        """
        return cls(AdmissionVerdict.ADMIT, user=user, peerName=peerName, detail=detail)

    @classmethod
    def reject(
        cls, status: int = 403, reason: str | None = None, detail: str = ""
    ) -> AdmissionDecision:
        """
        Answer C{status} (403 by default).
        """
        return cls(AdmissionVerdict.REJECT, status, reason, detail=detail)

    @classmethod
    def challenge(
        cls, challenges: Sequence[str], detail: str = ""
    ) -> AdmissionDecision:
        """
        Answer 401 with a C{WWW-Authenticate} field per challenge.
        """
        return cls(
            AdmissionVerdict.CHALLENGE,
            401,
            headers=tuple(("WWW-Authenticate", c) for c in challenges),
            detail=detail,
        )

    @property
    def admitted(self) -> bool:
        """
        Whether the request is to be processed.
        """
        return self.verdict is AdmissionVerdict.ADMIT


class IRequestAdmission(Interface):
    """
    Decides whether a received request is processed, rejected (403) or
    challenged (401, digest authentication of received requests:
    L{stoxgw.sip.admission.DigestAdmission}).  ACK and CANCEL can never be
    challenged (RFC 3261 section 22.1): an implementation admits or
    rejects them.
    """

    def decide(request: SIPRequest, flow: Flow) -> AdmissionDecision:
        """
        @return: The decision; the UA core sends its response if it is not
            an admission.
        """


def tlsPeerNames(flow: Flow) -> tuple[str, ...]:
    """
    The identities in the TLS certificate of a flow's peer, lower case
    (RFC 5922 section 7.1: the host of C{sip}/C{sips} subjectAltName
    URIs and the subjectAltName DNS names; the subject CN only when there
    is no subjectAltName).

    Names are read only from a certificate the TLS layer verified
    (L{stoxgw.sip.transport.SIPStreamConnection.peerVerified}): on
    connections the gateway opened, the server's, checked against the
    trust roots and the host connected to; on incoming connections, the
    client's, when the listener has CA certificates (C{[sip] tls_ca_file})
    to check it against (a client certificate that fails that check fails
    the handshake).  Any other flow gives no name, whatever certificate
    its transport holds.

    @return: The names, or C{()} for a flow without TLS, without a
        certificate, or whose certificate was not verified.
    """
    if not getattr(flow.connection, "peerVerified", False):
        return ()
    transport = getattr(flow.connection, "transport", None)
    getPeerCertificate = getattr(transport, "getPeerCertificate", None)
    if getPeerCertificate is None:
        return ()
    try:
        certificate = getPeerCertificate()
    except Exception:
        return ()
    if certificate is None:
        return ()
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    if not isinstance(certificate, x509.Certificate):
        certificate = certificate.to_cryptography()
    names: list[str] = []
    try:
        san = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        for value in san.get_values_for_type(x509.UniformResourceIdentifier):
            scheme, _, rest = value.partition(":")
            if scheme.lower() in ("sip", "sips") and rest:
                try:
                    names.append(SIPURI.fromString(value).host)
                except ValueError:
                    continue
        names.extend(san.get_values_for_type(x509.DNSName))
    else:
        for attribute in certificate.subject.get_attributes_for_oid(
            NameOID.COMMON_NAME
        ):
            if isinstance(attribute.value, str):
                names.append(attribute.value)
    return tuple(name.lower().rstrip(".") for name in names)


@implementer(IRequestAdmission)
@dataclass(frozen=True, slots=True)
class SIPTrust:
    """
    Admits requests from trusted peers only, by source address or by TLS
    identity (DESIGN.md "Trust": an identity is never taken from a From
    header); others get 403.

    @ivar networks: The trusted networks (the SIP proxies).
    @ivar trustAll: Admit everyone (tests, closed lab networks).
    @ivar tlsNames: Trusted TLS identities (lower case): a TLS flow whose
        verified peer certificate names one of them is admitted, on
        connections either side opened.
    @ivar peerNames: Reads a flow's certificate names (L{tlsPeerNames};
        tests replace it).
    """

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    trustAll: bool = False
    tlsNames: frozenset[str] = frozenset()
    peerNames: Callable[[Flow], Sequence[str]] = tlsPeerNames

    @classmethod
    def fromStrings(
        cls, networks: Iterable[str], tlsNames: Iterable[str] = ()
    ) -> SIPTrust:
        """
        Build from C{"10.0.0.0/8"}-style strings (a bare address is a /32
        or /128) and TLS names.

        @raise ValueError: Not a network.
        """
        return cls(
            tuple(ipaddress.ip_network(n, strict=False) for n in networks),
            tlsNames=frozenset(n.lower().rstrip(".") for n in tlsNames),
        )

    def isTrusted(self, host: str) -> bool:
        """
        Whether an IP address is in a trusted network.
        """
        if self.trustAll:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def trustedName(self, flow: Flow) -> str | None:
        """
        The trusted TLS identity of a TLS flow's peer, or L{None}.
        """
        if not self.tlsNames or flow.transport is not TransportKind.TLS:
            return None
        for name in self.peerNames(flow):
            if name.lower() in self.tlsNames:
                return name.lower()
        return None

    def trusts(self, flow: Flow) -> AdmissionDecision | None:
        """
        An admission if the flow's peer is trusted (by address, then by
        TLS identity), else L{None}.
        """
        if self.isTrusted(flow.source.host):
            return AdmissionDecision.admit(detail="trusted address")
        name = self.trustedName(flow)
        if name is not None:
            return AdmissionDecision.admit(peerName=name, detail="trusted TLS name")
        return None

    def decide(self, request: SIPRequest, flow: Flow) -> AdmissionDecision:
        """
        Admit trusted peers, reject others with 403.
        """
        return self.trusts(flow) or AdmissionDecision.reject(detail="untrusted peer")


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


class IInviteHandler(Interface):
    """
    Takes INVITEs outside dialogs (the interworking layer).
    """

    def inviteReceived(invite: IncomingInvite) -> None:
        """
        An INVITE arrived: answer with C{invite.sendProvisional},
        C{invite.accept} (-> an L{InviteDialog}) or C{invite.reject}.
        C{invite.cancelled} fires if the caller cancels first.
        """


class IRequestHandler(Interface):
    """
    Takes non-INVITE requests outside dialogs (SUBSCRIBE, REFER, MESSAGE,
    OPTIONS...).
    """

    def requestReceived(request: IncomingRequest) -> None:
        """
        A request arrived: answer with C{request.respond}.
        """


#: Methods offered to the L{IDialogUsageHandler}s before the INVITE
#: dialog's handler (RFC 5057 dialog usages: subscriptions, REFER).
USAGE_METHODS = frozenset({"SUBSCRIBE", "NOTIFY", "REFER"})


class IDialogUsageHandler(Interface):
    """
    Takes requests with a To tag that belong to a dialog usage other than
    INVITE (RFC 5057): subscriptions (RFC 6665) and REFER (RFC 3515), in
    their own dialogs or sharing an INVITE dialog.
    """

    def inDialogRequestReceived(request: IncomingRequest) -> bool:
        """
        A SUBSCRIBE, NOTIFY or REFER with a To tag arrived
        (C{request.dialog} is the INVITE dialog it names, if any; its
        CSeq is not checked yet).

        @return: Whether the request was taken (and answered); if not, it
            goes to the INVITE dialog's handler, or gets C{481}.
        """


@dataclass(frozen=True, slots=True)
class UserAgentSettings:
    """
    UA core configuration.

    @ivar contactUser: User part of our Contact when no other fits.
    @ivar userAgent: The User-Agent/Server value.
    @ivar supported: Option tags we support (Supported; others in Require
        get 420).
    @ivar accept: Body types we accept (Accept in OPTIONS answers).
    @ivar outboundProxy: Every out-of-dialog request goes there (Route,
        section 8.1.2).
    @ivar routes: Per domain (Request-URI host), a proxy to route through.
    @ivar credentials: For answering 401/407 challenges.
    @ivar timers: Transaction timers.
    @ivar sessionTimer: Session timers for INVITE dialogs (RFC 4028), or
        L{None} for none: with it, C{timer} is supported, UPDATE allowed,
        our INVITEs ask for a session timer and the peers' get one.
    """

    contactUser: str = "stoxgw"
    userAgent: str = "stoxgw"
    supported: tuple[str, ...] = ()
    accept: tuple[str, ...] = ("application/sdp",)
    outboundProxy: SIPURI | None = None
    routes: Mapping[str, SIPURI] = field(default_factory=dict)
    credentials: DigestCredentials | None = None
    timers: TimerSettings = TimerSettings()
    sessionTimer: SessionTimerSettings | None = None


class IncomingRequest:
    """
    A received request waiting for its final response.

    @ivar request: The request.
    @ivar transaction: Its server transaction.
    @ivar toTag: The To tag our responses carry (RFC 3261 8.2.6.2).
    @ivar dialog: The dialog it arrived in, or L{None}.
    @ivar sessionTimer: For a session refresh request (INVITE, UPDATE)
        when session timers are on: the terms a 2xx sets and the header
        fields it carries (RFC 4028 section 9); the UA core fills it in.
    """

    _log = Logger()

    def __init__(
        self,
        ua: SIPUserAgent,
        request: SIPRequest,
        transaction: ServerTransaction,
        dialog: InviteDialog | None = None,
    ) -> None:
        self.ua = ua
        self.request = request
        self.transaction = transaction
        self.dialog = dialog
        self.toTag = dialog.localTag if dialog is not None else newTag()
        self.sessionTimer: (
            tuple[SessionTimerTerms, tuple[tuple[str, str], ...]] | None
        ) = None

    @property
    def flow(self) -> Flow:
        """
        Where the request came from.
        """
        return self.transaction.flow

    @property
    def answered(self) -> bool:
        """
        Whether a final response was sent.
        """
        return self.transaction.finalSent or (
            self.transaction.state is TransactionState.TERMINATED
        )

    def makeResponse(
        self,
        status: int,
        reason: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        contentType: str | None = None,
    ) -> SIPResponse:
        """
        Build a response (not sent); a 2xx to a session refresh request
        carries the session timer header fields (RFC 4028 section 9).
        """
        if self.sessionTimer is not None and 200 <= status < 300:
            headers = list(headers) + list(self.sessionTimer[1])
        response = self.request.makeResponse(
            status, reason, toTag=self.toTag, extraHeaders=headers
        )
        if self.ua.settings.userAgent and "Server" not in response.headers:
            response = response.addHeader("Server", self.ua.settings.userAgent)
        if body or contentType is not None:
            response = response.withBody(body, contentType)
        return response

    def respond(
        self,
        status: int,
        reason: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        contentType: str | None = None,
    ) -> SIPResponse:
        """
        Send a response.

        @raise stoxgw.sip.transaction.InvalidTransition: Already answered.
        """
        response = self.makeResponse(status, reason, headers, body, contentType)
        self.transaction.respond(response)
        if 200 <= status < 300 and self.dialog is not None:
            self._refreshed(self.dialog)
        return response

    def _refreshed(self, dialog: InviteDialog) -> None:
        """
        A 2xx went out: (re)start the dialog's session timer (RFC 4028
        section 9: from the transmission of the 2xx).
        """
        if self.sessionTimer is not None:
            dialog.startSessionTimer(self.sessionTimer[0])


class IncomingInvite(IncomingRequest):
    """
    A received INVITE (initial or re-INVITE) waiting for an answer.

    @ivar cancelled: Fires (with L{None}) if a CANCEL ended it before it
        was answered; the core has sent 487 by then.
    """

    def __init__(
        self,
        ua: SIPUserAgent,
        request: SIPRequest,
        transaction: ServerTransaction,
        dialog: InviteDialog | None = None,
    ) -> None:
        super().__init__(ua, request, transaction, dialog)
        self.cancelled: Deferred[None] = Deferred()

    @property
    def isReinvite(self) -> bool:
        """
        Whether this INVITE arrived in an existing dialog.
        """
        return self.dialog is not None

    def sendProvisional(
        self,
        status: int = 180,
        reason: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        contentType: str | None = None,
    ) -> SIPResponse:
        """
        Send a 1xx (with our To tag unless it is 100).
        """
        if not 100 <= status < 200:
            raise ValueError("Not a provisional status")
        return self.respond(status, reason, headers, body, contentType)

    def accept(
        self,
        body: bytes = b"",
        contentType: str | None = "application/sdp",
        headers: Sequence[tuple[str, str]] = (),
        *,
        contact: NameAddr | None = None,
        handler: IDialogHandler | None = None,
    ) -> InviteDialog:
        """
        Answer 200 OK (Contact, Record-Route copied by makeResponse,
        Allow, Supported) and make the dialog (or update it for a
        re-INVITE); the 2xx is retransmitted until the ACK.

        @param contact: Our Contact (default: L{SIPUserAgent.contactFor}
            the request's transport and Request-URI user); pass one with
            C{isfocus} or a GRUU as RFC 7702 needs.
        @param handler: The dialog's handler (initial INVITE).
        @raise DialogError: The INVITE has no Contact.
        """
        ua = self.ua
        if contact is None:
            if self.dialog is not None:
                contact = self.dialog.localContact
            else:
                user = (
                    self.request.uri.user
                    if isinstance(self.request.uri, SIPURI)
                    else None
                )
                contact = ua.contactFor(self.flow.transport, user=user)
        extra = (
            [("Contact", contact.serialize())] + ua._capabilityHeaders() + list(headers)
        )
        response = self.makeResponse(
            200, None, extra, body, contentType if body else None
        )
        if self.dialog is None:
            dialog = ua._makeUASDialog(self.request, self.toTag, contact, self.flow)
            dialog.handler = handler
            dialog.peerAllow = _allowOf(self.request)
        else:
            dialog = self.dialog
            dialog.localContact = contact
            dialog.refreshTarget(self.request)
        if body:
            dialog.localBody = body
            dialog.localContentType = contentType
        if self.request.body:
            dialog.remoteBody = self.request.body
        self.transaction.respond(response)
        dialog.start2xxRetransmission(response, self.flow)
        self._refreshed(dialog)
        return dialog

    def reject(
        self,
        status: int = 486,
        reason: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> SIPResponse:
        """
        Answer with a failure (3xx-6xx).
        """
        if status < 300:
            raise ValueError("Not a failure status")
        if self.dialog is not None:
            self.dialog.inviteInProgress = False
        return self.respond(status, reason, headers)

    def _cancel(self) -> None:
        if self.answered:
            return
        self.respond(487)
        if self.dialog is not None:
            self.dialog.inviteInProgress = False
        self.cancelled.callback(None)


class _Outgoing:
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
        self.ua._nextHop(self.request).addCallbacks(self._send, self._unreachable)
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


class SIPUserAgent:
    """
    The UA core: see the module docstring.

    @ivar transport: The transport layer.
    @ivar layer: The transaction layer (we are its user).
    @ivar settings: The configuration.
    @ivar admission: Who may send us requests.
    @ivar resolver: Next hop resolution.
    @ivar dialogs: Live INVITE dialogs by dialog ID.
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        transport: SIPTransport,
        *,
        settings: UserAgentSettings = UserAgentSettings(),
        admission: IRequestAdmission | None = None,
        resolver: IResolver | None = None,
    ) -> None:
        self.reactor = reactor
        self.clock: IReactorTime = reactor
        self.transport = transport
        self.settings = settings
        self.timers = settings.timers
        self.admission: IRequestAdmission = admission or SIPTrust()
        self.resolver: IResolver = resolver or HostResolver(
            reactor, transport.transports
        )
        self.digest = DigestClient(settings.credentials)
        self.layer = TransactionLayer(transport, reactor, None, settings.timers)
        self.layer.user = _TransactionUser(self)
        self.dialogs: dict[tuple[str, str, str], InviteDialog] = {}
        self._handlers: dict[str, list[tuple[Callable[[URI], bool] | None, Any]]] = {}
        self._invites: dict[ServerTransaction, IncomingInvite] = {}
        self._acks: dict[tuple[str, str, str], tuple[SIPRequest, Address]] = {}
        self._usageHandlers: list[IDialogUsageHandler] = []
        #: Event packages for Allow-Events (RFC 6665 section 4.4.4).
        self.allowEvents: list[str] = []

    # -- configuration -----------------------------------------------------

    def addUsageHandler(self, handler: IDialogUsageHandler) -> None:
        """
        Offer in-dialog SUBSCRIBE, NOTIFY and REFER requests to
        C{handler} (in the order added) before the INVITE dialogs.
        """
        self._usageHandlers.append(handler)

    def addHandler(
        self,
        method: str,
        handler: IInviteHandler | IRequestHandler,
        match: Callable[[URI], bool] | None = None,
    ) -> None:
        """
        Route out-of-dialog requests of C{method} whose Request-URI
        C{match} accepts (all if L{None}) to C{handler}: an
        L{IInviteHandler} for INVITE, an L{IRequestHandler} otherwise.
        Handlers are tried in the order added.
        """
        self._handlers.setdefault(method, []).append((match, handler))

    def removeHandler(self, method: str, handler: object) -> None:
        """
        Undo L{addHandler}.
        """
        self._handlers[method] = [
            (m, h) for m, h in self._handlers.get(method, []) if h is not handler
        ]

    @property
    def supported(self) -> tuple[str, ...]:
        """
        The option tags we support: the configured ones, and C{timer}
        with session timers (RFC 4028 section 7.1).
        """
        options = self.settings.supported
        if self.settings.sessionTimer is not None and OPTION_TAG not in options:
            options = options + (OPTION_TAG,)
        return options

    def withSupported(self, request: SIPRequest) -> SIPRequest:
        """
        C{request} with C{timer} in its Supported when we do session
        timers: RFC 4028 section 7.1 asks it of every request but ACK, in
        a dialog or not, with a session timer on it or not (a Supported
        already there gets our other option tags too, RFC 3261 section
        8.1.1).  CANCEL is left alone: it copies its INVITE.
        """
        if OPTION_TAG not in self.supported or request.method in ("ACK", "CANCEL"):
            return request
        try:
            present = parseTokenList(request.headers.getLines("Supported"))
        except HeaderError:
            present = []
        if OPTION_TAG in present:
            return request
        options = present + [o for o in self.supported if o not in present]
        headers = request.headers.remove("Supported").add(
            "Supported", ", ".join(options)
        )
        return replace(request, headers=headers)

    @property
    def allowedMethods(self) -> list[str]:
        """
        The Allow list: the core methods, the registered ones, UPDATE with
        session timers (RFC 4028 section 7.4: refreshes by UPDATE), and
        NOTIFY when dialog usages (subscriptions, REFER) are in place.
        """
        methods = list(CORE_METHODS)
        if self.settings.sessionTimer is not None:
            methods.append("UPDATE")
        for method, handlers in self._handlers.items():
            if handlers and method not in methods:
                methods.append(method)
        if self._usageHandlers and "NOTIFY" not in methods:
            # Subscriptions and REFERs we send are answered with NOTIFY.
            methods.append("NOTIFY")
        return methods

    def _capabilityHeaders(self) -> list[tuple[str, str]]:
        headers = [("Allow", ", ".join(self.allowedMethods))]
        if self.supported:
            headers.append(("Supported", ", ".join(self.supported)))
        if self.allowEvents:
            headers.append(("Allow-Events", ", ".join(self.allowEvents)))
        return headers

    def contactFor(
        self,
        kind: TransportKind,
        user: str | None = None,
        uriParameters: Sequence[tuple[str, str | None]] = (),
        headerParameters: Sequence[tuple[str, str | None]] = (),
    ) -> NameAddr:
        """
        Our Contact for a transport: C{sip:user@host:port;transport=...}
        plus URI parameters (C{gr} for a GRUU) and header parameters
        (C{isfocus}, RFC 4579).
        """
        host, port = self.transport.sentBy(kind)
        params: list[tuple[str, str | None]] = []
        if kind is not TransportKind.UDP:
            params.append(("transport", kind.uriParameter))
        params.extend(uriParameters)
        uri = SIPURI(
            scheme="sips" if kind is TransportKind.TLS else "sip",
            host=host,
            user=user or self.settings.contactUser,
            port=port,
            parameters=tuple(params),
        )
        address = NameAddr(uri)
        for name, value in headerParameters:
            address = address.withParameter(name, value)
        return address

    # -- incoming ------------------------------------------------------------

    def _requestReceived(
        self, request: SIPRequest, transaction: ServerTransaction
    ) -> None:
        try:
            self._process(request, transaction)
        except Exception as e:
            self._log.failure(
                "Failed processing {method}",
                method=request.method,
                error=e,
                peer=str(transaction.flow.source),
                callID=request.header("Call-ID"),
            )
            if (
                not transaction.finalSent
                and transaction.state is not TransactionState.TERMINATED
            ):
                try:
                    transaction.respond(request.makeResponse(500, toTag=newTag()))
                except Exception:
                    pass

    def _reply(
        self,
        request: SIPRequest,
        transaction: ServerTransaction,
        status: int,
        headers: Sequence[tuple[str, str]] = (),
        reason: str | None = None,
    ) -> None:
        response = request.makeResponse(
            status, reason, toTag=newTag(), extraHeaders=headers
        )
        if self.settings.userAgent:
            response = response.addHeader("Server", self.settings.userAgent)
        transaction.respond(response)

    def _process(self, request: SIPRequest, transaction: ServerTransaction) -> None:
        flow = transaction.flow
        method = request.method
        decision = self.admission.decide(request, flow)
        if not decision.admitted:
            if decision.verdict is AdmissionVerdict.CHALLENGE:
                self._log.debug(
                    "Challenged {method} from {peer}: {error}",
                    method=method,
                    peer=str(flow.source),
                    error=decision.detail,
                    callID=request.header("Call-ID"),
                )
            else:
                self._log.warn(
                    "Refused {method} from untrusted {peer}: {error}",
                    method=method,
                    peer=str(flow.source),
                    error=decision.detail,
                    callID=request.header("Call-ID"),
                )
            self._reply(
                request,
                transaction,
                decision.status,
                decision.headers,
                reason=decision.reason,
            )
            return
        transaction.authenticatedUser = decision.user
        maxForwards = request.header("Max-Forwards")
        if (
            maxForwards is not None
            and parseMaxForwards(maxForwards) == 0
            and method != "OPTIONS"
        ):
            self._reply(request, transaction, 483)
            return
        if not isinstance(request.uri, SIPURI):
            self._reply(request, transaction, 416)
            return
        allowed = set(self.allowedMethods)
        toTag = request.toAddress.tag
        if toTag is not None:
            allowed |= IN_DIALOG_METHODS
        if method not in allowed:
            if method in KNOWN_METHODS:
                self._reply(request, transaction, 405, self._capabilityHeaders()[:1])
            else:
                self._reply(request, transaction, 501)
            return
        if method != "CANCEL":
            required = parseTokenList(request.headers.getLines("Require"))
            unsupported = [o for o in required if o not in self.supported]
            if unsupported:
                self._reply(
                    request, transaction, 420, [("Unsupported", ", ".join(unsupported))]
                )
                return
        if method == "CANCEL":
            self._cancelReceived(request, transaction)
            return
        if toTag is not None:
            self._inDialog(request, transaction, toTag)
            return
        if method in ("BYE", "UPDATE"):
            self._reply(request, transaction, 481)
            return
        handler = self._findHandler(method, request.uri)
        if method == "INVITE":
            if request.contact is None or not request.contact.addresses:
                self._reply(
                    request, transaction, 400, reason="Bad Request (no Contact)"
                )
                return
            if handler is None:
                self._reply(request, transaction, 404)
                return
            assert isinstance(transaction, InviteServerTransaction)
            invite = IncomingInvite(self, request, transaction)
            if not self._negotiateSessionTimer(invite):
                return
            self._track(transaction, invite)
            self._callHandler(lambda: handler.inviteReceived(invite), invite)
            return
        if handler is None:
            if method == "OPTIONS":
                self._answerOptions(IncomingRequest(self, request, transaction))
            else:
                self._reply(request, transaction, 404)
            return
        incoming = IncomingRequest(self, request, transaction)
        self._callHandler(lambda: handler.requestReceived(incoming), incoming)

    def _negotiateSessionTimer(self, incoming: IncomingRequest) -> bool:
        """
        Session timers (RFC 4028 section 9) for a session refresh request
        (INVITE or UPDATE): note the terms and header fields of its 2xx on
        C{incoming}, or answer 422 with C{Min-SE} (interval too small) or
        400 (malformed C{Session-Expires} or C{Min-SE}).

        @return: Whether the request goes on (L{False}: it was answered).
        """
        settings = self.settings.sessionTimer
        if settings is None:
            return True
        request = incoming.request
        try:
            incoming.sessionTimer = answerRequest(request, settings)
        except IntervalTooSmall as e:
            self._log.info(
                "Session interval too small in {method} from {peer}: {error}",
                method=request.method,
                peer=str(incoming.flow.source),
                error=str(e),
                callID=request.header("Call-ID"),
            )
            incoming.respond(422, None, [("Min-SE", str(e.minimum))])
            return False
        except HeaderError as e:
            self._log.warn(
                "Malformed session timer header in {method} from {peer}: {error}",
                method=request.method,
                peer=str(incoming.flow.source),
                error=str(e),
                callID=request.header("Call-ID"),
            )
            incoming.respond(400, "Bad Request (Session-Expires or Min-SE)")
            return False
        return True

    def _track(
        self, transaction: InviteServerTransaction, invite: IncomingInvite
    ) -> None:
        self._invites[transaction] = invite
        transaction.whenTerminated.append(self._untrack)

    def _untrack(self, transaction: ServerTransaction) -> None:
        self._invites.pop(transaction, None)

    def _findHandler(self, method: str, uri: URI) -> Any:
        for match, handler in self._handlers.get(method, []):
            if match is None or match(uri):
                return handler
        return None

    def _callHandler(self, call: Callable[[], None], incoming: IncomingRequest) -> None:
        try:
            call()
        except Exception as e:
            self._log.failure(
                "SIP handler failed on {method}",
                method=incoming.request.method,
                error=e,
                callID=incoming.request.header("Call-ID"),
            )
            if not incoming.answered:
                try:
                    incoming.respond(500)
                except Exception:
                    pass

    def optionsResponse(self, incoming: IncomingRequest) -> SIPResponse:
        """
        The default 200 answer to OPTIONS (section 11.2): Allow, Accept,
        Accept-Encoding, Accept-Language, Supported.  Handlers may send it
        (after their own checks) with C{incoming.transaction.respond}.
        """
        headers = self._capabilityHeaders()
        headers.append(("Accept", ", ".join(self.settings.accept)))
        headers.append(("Accept-Encoding", "identity"))
        headers.append(("Accept-Language", "en"))
        if not self.supported:
            headers.append(("Supported", ""))
        return incoming.makeResponse(200, None, headers)

    def _answerOptions(self, incoming: IncomingRequest) -> None:
        incoming.transaction.respond(self.optionsResponse(incoming))

    def _cancelReceived(
        self, request: SIPRequest, transaction: ServerTransaction
    ) -> None:
        inviteTransaction = self.layer.findInvite(request)
        if inviteTransaction is None:
            self._reply(request, transaction, 481)
            return
        invite = self._invites.get(inviteTransaction)
        toTag = invite.toTag if invite is not None else newTag()
        transaction.respond(request.makeResponse(200, toTag=toTag))
        if invite is not None:
            self._log.info(
                "INVITE cancelled by {peer}",
                peer=str(transaction.flow.source),
                callID=request.header("Call-ID"),
            )
            invite._cancel()
        elif not inviteTransaction.finalSent:
            inviteTransaction.respond(
                inviteTransaction.request.makeResponse(487, toTag=toTag)
            )

    def _inDialog(
        self, request: SIPRequest, transaction: ServerTransaction, toTag: str
    ) -> None:
        key = (request.callID, toTag, request.fromAddress.tag or "")
        dialog = self.dialogs.get(key)
        if request.method in USAGE_METHODS and self._usageHandlers:
            usage = IncomingRequest(self, request, transaction, dialog)
            for usageHandler in self._usageHandlers:
                taken = False

                def offer(h: IDialogUsageHandler = usageHandler) -> None:
                    nonlocal taken
                    taken = h.inDialogRequestReceived(usage)

                self._callHandler(offer, usage)
                if taken or usage.answered:
                    return
        if dialog is None:
            self._reply(request, transaction, 481)
            return
        status = dialog.checkRemoteRequest(request)
        if status is not None:
            self._reply(
                request,
                transaction,
                status,
                reason="Server Internal Error (CSeq out of order)",
            )
            return
        method = request.method
        incoming: IncomingRequest
        if method == "BYE":
            incoming = IncomingRequest(self, request, transaction, dialog)
            # The layers above hear of the end first, then the 200 goes
            # out: what they do on a BYE (RFC 7702 section 6.6: the
            # unavailable presence, F61) precedes its 200 (F62).
            dialog.remoteBye = request
            try:
                dialog.terminate(TerminationReason.REMOTE_BYE)
            finally:
                # A handler may have closed the UA meanwhile.
                if not incoming.answered:
                    incoming.respond(200)
            return
        if dialog.state is DialogState.TERMINATED:
            self._reply(request, transaction, 481)
            return
        if method == "INVITE":
            if dialog.inviteInProgress:
                self._reply(request, transaction, 491)
                return
            assert isinstance(transaction, InviteServerTransaction)
            invite = IncomingInvite(self, request, transaction, dialog)
            if not self._negotiateSessionTimer(invite):
                return
            dialog.inviteInProgress = True
            self._track(transaction, invite)
            handler = dialog.handler
            if handler is None or not hasattr(handler, "reinviteReceived"):
                invite.reject(488)
                return
            self._callHandler(lambda: handler.reinviteReceived(dialog, invite), invite)
            return
        incoming = IncomingRequest(self, request, transaction, dialog)
        if method == "UPDATE":
            # Only allowed with session timers (RFC 3311, RFC 4028 section
            # 9): a bodiless one is a session refresh the core answers; one
            # with an offer goes to the dialog's handler.
            if not self._negotiateSessionTimer(incoming):
                return
            if not request.body:
                incoming.respond(200)
                return
        dialogHandler = dialog.handler
        if dialogHandler is None:
            incoming.respond(405 if method in KNOWN_METHODS else 501)
            return
        self._callHandler(
            lambda: dialogHandler.requestReceived(dialog, incoming), incoming
        )

    def _makeUASDialog(
        self, request: SIPRequest, localTag: str, contact: NameAddr, flow: Flow
    ) -> InviteDialog:
        base = Dialog.fromIncomingRequest(
            request,
            localTag,
            contact,
            secure=flow.transport is TransportKind.TLS
            and isinstance(request.uri, SIPURI)
            and request.uri.secure,
            flow=flow,
        )
        dialog = self._bind(base)
        return dialog

    def _bind(self, base: Dialog) -> InviteDialog:
        dialog = InviteDialog(
            callID=base.callID,
            localTag=base.localTag,
            remoteTag=base.remoteTag,
            localURI=base.localURI,
            remoteURI=base.remoteURI,
            remoteTarget=base.remoteTarget,
            localContact=base.localContact,
            role=base.role,
            routeSet=base.routeSet,
            localSeq=base.localSeq,
            remoteSeq=base.remoteSeq,
            secure=base.secure,
            state=base.state,
            flow=base.flow,
            flowPeers=base.flowPeers,
            core=self,
        )
        self.dialogs[dialog.id] = dialog
        return dialog

    def _ackReceived(self, request: SIPRequest, flow: Flow) -> None:
        if not self.admission.decide(request, flow).admitted:
            return
        try:
            key = dialogIDOf(request)
        except HeaderError:
            return
        dialog = self.dialogs.get(key)
        if dialog is not None:
            dialog.ackReceived(request)

    def _strayResponse(self, response: SIPResponse, flow: Flow) -> None:
        try:
            if not (response.isSuccess and response.cseq.method == "INVITE"):
                return
            key = dialogIDOf(response)
        except HeaderError:
            return
        sent = self._acks.get(key)
        if sent is not None:
            self.layer.resend(*sent)

    # -- DialogCore ------------------------------------------------------------

    def sendInDialog(
        self, dialog: Dialog, request: SIPRequest
    ) -> Deferred[SIPResponse]:
        """
        Send a dialog's request (its Route set is already on it): over the
        connection the peer opened when the dialog may reuse it
        (L{Dialog.reusableFlow}, RFC 5923, RFC 5626), else to the resolved
        next hop.
        """
        return _Outgoing(self, request, flow=dialog.reusableFlow()).start()

    def sendAck(self, dialog: InviteDialog, ack: SIPRequest) -> None:
        """
        Send an ACK for a 2xx and keep it for the 2xx's retransmissions.
        """

        def send(destination: Address) -> None:
            sent = self.layer.sendStateless(ack, destination)
            dialog.lastAck = sent
            self._acks[dialog.id] = (sent, destination)

        self._nextHop(ack).addCallbacks(send, lambda reason: None)

    def resendResponse(self, response: SIPResponse, flow: Flow) -> None:
        """
        Send a 2xx again.
        """
        self.transport.sendResponse(response, flow).addErrback(lambda reason: None)

    def dialogEnded(self, dialog: InviteDialog) -> None:
        """
        Forget a dialog.
        """
        if self.dialogs.get(dialog.id) is dialog:
            del self.dialogs[dialog.id]
        self._acks.pop(dialog.id, None)

    # -- outgoing ---------------------------------------------------------------

    def _nextHop(self, request: SIPRequest) -> Deferred[Address]:
        try:
            routes = request.route
        except HeaderError as e:
            return fail(e)
        uri = routes[0].uri if routes else request.uri
        if not isinstance(uri, SIPURI):
            return fail(DialogError(f"Cannot send to {uri}"))
        d: Deferred[list[Address]] = maybeDeferred(self.resolver.resolve, uri)

        def first(addresses: list[Address]) -> Address:
            if not addresses:
                raise DialogError(f"No address for {uri}")
            return addresses[0]

        return d.addCallback(first)

    def _routesFor(self, uri: SIPURI) -> list[tuple[str, str]]:
        proxy = self.settings.outboundProxy
        if proxy is None:
            proxy = self.settings.routes.get(uri.host.lower())
        if proxy is None:
            return []
        if not proxy.looseRouting:
            proxy = proxy.withParameter("lr")
        return [("Route", NameAddr(proxy).serialize())]

    def _newRequest(
        self,
        method: str,
        target: NameAddr,
        fromAddress: NameAddr,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        contentType: str | None,
        contact: NameAddr | None,
    ) -> SIPRequest:
        uri = target.uri
        if not isinstance(uri, SIPURI):
            raise DialogError(f"Not a SIP URI: {uri}")
        callID = f"{secrets.token_hex(12)}@{self.transport.advertisedHost}"
        fields: list[tuple[str, str]] = [
            ("Max-Forwards", "70"),
            ("From", fromAddress.withTag(fromAddress.tag or newTag()).serialize()),
            ("To", target.withoutParameter("tag").serialize()),
            ("Call-ID", callID),
            ("CSeq", CSeq(secrets.randbelow(2**16) + 1, method).serialize()),
        ]
        fields.extend(self._routesFor(uri))
        if contact is not None:
            fields.append(("Contact", contact.serialize()))
        if self.settings.userAgent:
            fields.append(("User-Agent", self.settings.userAgent))
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
        transports = self.transport.transports
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
        request = self._newRequest(
            method, address, fromAddress, headers, body, contentType, None
        )
        return _Outgoing(self, request).start()

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
            contact = self.contactFor(
                self.defaultTransport(uri),
                user=(
                    fromAddress.uri.user
                    if isinstance(fromAddress.uri, SIPURI)
                    else None
                ),
                uriParameters=contactParameters,
            )
        extra = list(self._capabilityHeaders()) + list(headers)
        timer = self.settings.sessionTimer
        if timer is not None and not any(
            name.lower() in ("session-expires", "x") for name, _ in headers
        ):
            # RFC 4028 section 7.1: ask for a session timer, leaving the
            # choice of refresher to the UAS.
            extra.extend(requestHeaders(timer.interval, timer.minimum))
        request = self._newRequest(
            "INVITE",
            address,
            fromAddress,
            extra,
            sdpOffer or b"",
            contentType if sdpOffer else None,
            contact,
        )
        outgoing = _Outgoing(self, request, onProvisional)
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
                            _failure(SIPError(502, f"Unusable 2xx: {e}", response))
                        )
                    return
                dialog = self._bind(base)
                dialog.handler = handler
                dialog.inviteResponse = response
                dialog.peerAllow = _allowOf(response)
                dialog.localBody = sdpOffer or b""
                dialog.localContentType = contentType if sdpOffer else None
                dialog.remoteBody = response.body
                dialog.acknowledge(outgoing.request.cseq.number)
                if result.called:
                    # Cancelled meanwhile: the 2xx won the race (section 9.1).
                    dialog.bye().addErrback(lambda _: None)
                    return
                dialog.notifyConfirmed()
                self._startUACSessionTimer(dialog, outgoing.request, response)
                result.callback(dialog)
                return
            if not result.called:
                result.errback(
                    _failure(SIPError(response.status, response.reason, response))
                )

        outgoing.start().addCallback(answered).addErrback(
            lambda reason: None if result.called else result.errback(reason)
        )
        return result

    def _startUACSessionTimer(
        self, dialog: InviteDialog, request: SIPRequest, response: SIPResponse
    ) -> None:
        """
        The session timer a 2xx to our INVITE sets (RFC 4028 section 7.2).
        """
        settings = self.settings.sessionTimer
        asked = request.header("Session-Expires")
        if settings is None or asked is None or dialog.state is DialogState.TERMINATED:
            return
        try:
            interval = SessionExpires.parse(asked).interval
            minimum = max(minimumOf(request), settings.minimum)
        except HeaderError:
            return
        dialog.startSessionTimer(termsFromResponse(response, interval, minimum))

    def shutdown(self) -> Deferred[None]:
        """
        End every dialog with BYE.

        @return: Fires once every BYE has its final response (or failed),
            at once without dialogs; never fails.
        """
        byes: list[Deferred[Any]] = []
        for dialog in list(self.dialogs.values()):
            if dialog.state is not DialogState.TERMINATED:
                byes.append(
                    dialog.bye(reason=TerminationReason.SHUTDOWN).addErrback(
                        lambda _: None
                    )
                )
        return DeferredList(byes).addCallback(lambda _: None)

    def close(self) -> None:
        """
        Stop every timer: dialogs are dropped (their handlers told
        C{SHUTDOWN}) and transactions abandoned.  Call L{shutdown} first
        (and give the BYEs time) for a polite exit.
        """
        for dialog in list(self.dialogs.values()):
            dialog.terminate(TerminationReason.SHUTDOWN)
        self.dialogs.clear()
        self._acks.clear()
        self.layer.close()


@implementer(ITransactionUser)
class _TransactionUser:
    """
    Adapts the transaction layer's calls to the UA core.
    """

    _log = Logger()

    def __init__(self, ua: SIPUserAgent) -> None:
        self.ua = ua

    def requestReceived(
        self, request: SIPRequest, transaction: ServerTransaction
    ) -> None:
        self.ua._requestReceived(request, transaction)

    def ackReceived(self, request: SIPRequest, flow: Flow) -> None:
        try:
            self.ua._ackReceived(request, flow)
        except Exception as e:
            self._log.failure("Failed on ACK", error=e, peer=str(flow.source))

    def strayResponseReceived(self, response: SIPResponse, flow: Flow) -> None:
        try:
            self.ua._strayResponse(response, flow)
        except Exception as e:
            self._log.failure("Failed on response", error=e, peer=str(flow.source))

    def serverTransactionFailed(
        self, transaction: ServerTransaction, reason: Failure
    ) -> None:
        self._log.info(
            "Server transaction for {method} failed: {error}",
            method=transaction.request.method,
            error=reason.getErrorMessage(),
            transactionID=transaction.transactionID,
        )
