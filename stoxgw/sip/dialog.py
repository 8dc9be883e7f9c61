# -*- test-case-name: tests.sip.test_dialog -*-
"""
SIP dialogs (RFC 3261 section 12).

L{Dialog} is the dialog state and the rules that need no network: how a
dialog is made from an INVITE and its 2xx on either side (sections 12.1.1
and 12.1.2: tags, Call-ID, route set from Record-Route, reversed on the
UAC side, remote target from Contact, CSeq numbers), how a request inside
it is built (section 12.2.1.1: Request-URI and Route for loose and strict
routing), and how a request received in it is checked (section 12.2.2:
CSeq order, 500 for an old one).

Flows (RFC 5923 section 2 "alias", RFC 5626 section 4.3): a dialog made
from a request received over TCP or TLS remembers that connection
(L{Dialog.flow}), and L{Dialog.reusableFlow} says whether requests in the
dialog go over it: while it is open and the next hop of the dialog is the
peer that opened it (its URI names the advertised address of the
request's top Via, RFC 5923 section 2, or the remote target carries
C{ob}, RFC 5626 section 4.3).  Otherwise they are sent by the normal
rules (RFC 3263 resolution, a connection of our own).

The INVITE dialog usage (sections 13-15, RFC 4028) is in
L{stoxgw.sip.invitedialog}.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum
from typing import Mapping, Sequence

from stoxgw.sip.headers import CSeq, Headers
from stoxgw.sip.message import SIPRequest, SIPResponse
from stoxgw.sip.transport import Flow, TransportKind
from stoxgw.sip.uri import URI, NameAddr, SIPURI

__all__ = [
    "DialogState",
    "DialogRole",
    "TerminationReason",
    "DialogError",
    "Dialog",
    "TARGET_REFRESH_METHODS",
    "DIALOG_TRANSITIONS",
    "DialogID",
    "dialogIDOf",
]

#: A dialog ID: Call-ID, local tag, remote tag (RFC 3261 section 12).
DialogID = tuple[str, str, str]


def dialogIDOf(message: SIPRequest | SIPResponse) -> DialogID:
    """
    The ID of the dialog a message we received belongs to, from our side
    (RFC 3261 section 12): our tag is in the To of a request and in the
    From of a response.

    @raise stoxgw.sip.headers.HeaderError: Malformed From or To.
    """
    fromTag = message.fromAddress.tag or ""
    toTag = message.toAddress.tag or ""
    if isinstance(message, SIPRequest):
        return (message.callID, toTag, fromTag)
    return (message.callID, fromTag, toTag)


#: Methods whose requests carry a Contact and refresh the remote target
#: (RFC 3261 section 12.2; UPDATE from RFC 3311, SUBSCRIBE/NOTIFY from RFC
#: 6665, REFER from RFC 3515).
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


class DialogError(Exception):
    """
    A dialog cannot do what was asked (it is terminated, or a message
    cannot make one).
    """


def _remoteTarget(message: SIPRequest | SIPResponse, error: str) -> URI:
    """
    The remote target a dialog-creating message gives: its first Contact
    (RFC 3261 sections 12.1.1 and 12.1.2).

    @raise DialogError: No Contact, saying C{error}.
    """
    contacts = message.contact
    if contacts is None or not contacts.addresses:
        raise DialogError(error)
    return contacts.addresses[0].uri


class DialogState(Enum):
    """
    Dialog states (RFC 3261 section 12).
    """

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


#: Allowed dialog state transitions.
DIALOG_TRANSITIONS: Mapping[DialogState, frozenset[DialogState]] = {
    DialogState.EARLY: frozenset({DialogState.CONFIRMED, DialogState.TERMINATED}),
    DialogState.CONFIRMED: frozenset({DialogState.TERMINATED}),
    DialogState.TERMINATED: frozenset(),
}


class DialogRole(Enum):
    """
    Which side of the INVITE that made the dialog we were.
    """

    UAC = "uac"
    UAS = "uas"


class TerminationReason(Enum):
    """
    Why a dialog ended.
    """

    LOCAL_BYE = "local BYE"
    REMOTE_BYE = "remote BYE"
    NO_ACK = "no ACK for 2xx"
    REMOTE_GONE = "remote answered 481 or 408"
    SESSION_EXPIRED = "session timer expired"
    SHUTDOWN = "shutdown"


def _streamKind(uri: SIPURI) -> TransportKind | None:
    """
    The stream transport a URI asks for explicitly (C{transport=tcp} or
    C{tls}, or C{sips}), or L{None}: without a transport parameter RFC
    3263 section 4.1 picks UDP for an address and DNS for a name, and we
    cannot tell that the peer meant its stream.
    """
    param = uri.transport
    if param is not None:
        try:
            kind = TransportKind.fromToken(param)
        except ValueError:
            return None
        if uri.secure and kind is TransportKind.TCP:
            return TransportKind.TLS
        return kind if kind.reliable else None
    return TransportKind.TLS if uri.secure else None


def _randomCSeq() -> int:
    # RFC 3261 section 8.1.1.5: below 2**31; leave room to count up.
    return random.randint(1, 2**30)


@dataclass(eq=False)
class Dialog:
    """
    The state of one dialog (RFC 3261 section 12).

    @ivar callID: The Call-ID.
    @ivar localTag: Our tag.
    @ivar remoteTag: The peer's tag (empty for an RFC 2543 peer).
    @ivar localURI: Our address (From of our requests), without tag.
    @ivar remoteURI: The peer's address (To of our requests), without tag.
    @ivar remoteTarget: Where our requests go (the peer's Contact).
    @ivar routeSet: The route set, first hop first.
    @ivar localSeq: The last CSeq number we used, or L{None}.
    @ivar remoteSeq: The last CSeq number received, or L{None}.
    @ivar secure: Whether the dialog was made over TLS with a sips URI.
    @ivar localContact: Our Contact in this dialog.
    @ivar role: UAC or UAS of the initial INVITE.
    @ivar state: The dialog state.
    @ivar flow: The stream connection the dialog-forming request came on
        (UAS side, TCP or TLS), or L{None}.
    @ivar flowPeers: The advertised addresses (RFC 5923 section 2) of the
        peer that opened L{flow}: C{(host, port)} of the request's top Via
        sent-by, and of its source address with that port.
    """

    callID: str
    localTag: str
    remoteTag: str
    localURI: NameAddr
    remoteURI: NameAddr
    remoteTarget: URI
    localContact: NameAddr
    role: DialogRole
    routeSet: tuple[NameAddr, ...] = ()
    localSeq: int | None = None
    remoteSeq: int | None = None
    secure: bool = False
    state: DialogState = DialogState.CONFIRMED
    flow: Flow | None = field(default=None, repr=False)
    flowPeers: frozenset[tuple[str, int]] = field(default=frozenset(), repr=False)

    @property
    def id(self) -> DialogID:
        """
        The dialog ID: Call-ID, local tag, remote tag (section 12).
        """
        return (self.callID, self.localTag, self.remoteTag)

    @classmethod
    def fromIncomingRequest(
        cls,
        request: SIPRequest,
        localTag: str,
        localContact: NameAddr,
        *,
        secure: bool = False,
        state: DialogState = DialogState.CONFIRMED,
        flow: Flow | None = None,
    ) -> Dialog:
        """
        The UAS side (section 12.1.1): route set = Record-Route in order,
        remote target = Contact, remote CSeq = the request's, remote URI
        = From, local URI = To.

        @param flow: The flow the request came on: a stream connection is
            remembered for L{reusableFlow}.
        @raise DialogError: No usable Contact.
        @raise stoxgw.sip.headers.HeaderError: Malformed headers.
        """
        remoteTarget = _remoteTarget(request, "Request without Contact")
        fromAddress = request.fromAddress
        toAddress = request.toAddress
        peers: frozenset[tuple[str, int]] = frozenset()
        if flow is not None and flow.connection is not None:
            via = request.topVia
            port = via.port or flow.transport.defaultPort
            peers = frozenset(
                (host.lower(), port)
                for host in (via.host, via.received or flow.source.host)
            )
        else:
            flow = None
        return cls(
            callID=request.callID,
            localTag=localTag,
            remoteTag=fromAddress.tag or "",
            localURI=toAddress.withoutParameter("tag"),
            remoteURI=fromAddress.withoutParameter("tag"),
            remoteTarget=remoteTarget,
            localContact=localContact,
            role=DialogRole.UAS,
            routeSet=tuple(request.recordRoute),
            localSeq=None,
            remoteSeq=request.cseq.number,
            secure=secure,
            state=state,
            flow=flow,
            flowPeers=peers,
        )

    @classmethod
    def fromResponse(
        cls,
        request: SIPRequest | SIPResponse,
        response: SIPResponse,
        localContact: NameAddr,
        *,
        secure: bool = False,
    ) -> Dialog:
        """
        The UAC side (section 12.1.2): route set = Record-Route reversed,
        remote target = Contact, local CSeq = the request's, remote tag =
        the response's To tag.

        @param request: The request, or the response again when the
            request is not at hand (it repeats the Call-ID, From and CSeq).

        @raise DialogError: No Contact in the response.
        @raise stoxgw.sip.headers.HeaderError: Malformed headers.
        """
        remoteTarget = _remoteTarget(response, "2xx without Contact")
        fromAddress = request.fromAddress
        toAddress = response.toAddress
        return cls(
            callID=request.callID,
            localTag=fromAddress.tag or "",
            remoteTag=toAddress.tag or "",
            localURI=fromAddress.withoutParameter("tag"),
            remoteURI=toAddress.withoutParameter("tag"),
            remoteTarget=remoteTarget,
            localContact=localContact,
            role=DialogRole.UAC,
            routeSet=tuple(reversed(response.recordRoute)),
            localSeq=request.cseq.number,
            remoteSeq=None,
            secure=secure,
            state=DialogState.EARLY if response.status < 200 else DialogState.CONFIRMED,
        )

    def nextHop(self) -> URI:
        """
        The URI requests in the dialog are sent toward (section 12.2.1.1,
        8.1.2): the first route, else the remote target.
        """
        return self.routeSet[0].uri if self.routeSet else self.remoteTarget

    def reusableFlow(self) -> Flow | None:
        """
        The connection the peer opened, if requests in the dialog go over
        it (see the module docstring): it is still open, and the next hop
        either names the peer's advertised address with the flow's
        transport (RFC 5923 section 2) or is the remote target with C{ob}
        (RFC 5626 section 4.3).

        @return: The flow, or L{None} to send by the normal rules.
        """
        flow = self.flow
        if flow is None or flow.connection is None:
            return None
        if not getattr(flow.connection, "ready", False):
            return None
        uri = self.nextHop()
        if not isinstance(uri, SIPURI):
            return None
        if not self.routeSet and uri.hasParameter("ob"):
            return flow
        if _streamKind(uri) is not flow.transport:
            return None
        port = uri.port or flow.transport.defaultPort
        if (uri.host.lower(), port) in self.flowPeers:
            return flow
        return None

    def transition(self, new: DialogState) -> bool:
        """
        Move to C{new} if the table allows it.

        @return: Whether the state changed.
        """
        if new is self.state or new not in DIALOG_TRANSITIONS[self.state]:
            return False
        self.state = new
        return True

    def nextLocalSeq(self) -> int:
        """
        Increment and return the local CSeq (section 12.2.1.1; a random
        start when empty, section 8.1.1.5).
        """
        self.localSeq = (
            (self.localSeq + 1) if self.localSeq is not None else _randomCSeq()
        )
        return self.localSeq

    def requestTarget(self) -> tuple[URI, tuple[NameAddr, ...]]:
        """
        The Request-URI and Route list of a request in the dialog (section
        12.2.1.1): with an empty route set or a loose router first, the
        remote target and the route set; with a strict router first, its
        URI (without disallowed parameters) and the rest of the route set
        followed by the remote target.
        """
        if not self.routeSet:
            return self.remoteTarget, ()
        first = self.routeSet[0]
        if isinstance(first.uri, SIPURI) and not first.uri.looseRouting:
            uri: URI = first.uri.withoutHeaders().withoutParameter("method")
            return uri, self.routeSet[1:] + (NameAddr(self.remoteTarget),)
        return self.remoteTarget, self.routeSet

    def createRequest(
        self,
        method: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        contentType: str | None = None,
        *,
        cseq: int | None = None,
    ) -> SIPRequest:
        """
        Build a request inside the dialog (section 12.2.1.1), without Via.

        @param cseq: The CSeq number (default: the next local one; ACK and
            CANCEL pass the INVITE's).
        """
        uri, routes = self.requestTarget()
        number = cseq if cseq is not None else self.nextLocalSeq()
        fields: list[tuple[str, str]] = [
            ("Max-Forwards", "70"),
            ("From", self.localURI.withTag(self.localTag).serialize()),
            (
                "To",
                (
                    self.remoteURI.withTag(self.remoteTag)
                    if self.remoteTag
                    else self.remoteURI
                ).serialize(),
            ),
            ("Call-ID", self.callID),
            ("CSeq", CSeq(number, method).serialize()),
        ]
        fields.extend(("Route", route.serialize()) for route in routes)
        if method in TARGET_REFRESH_METHODS:
            fields.append(("Contact", self.localContact.serialize()))
        fields.extend(headers)
        request = SIPRequest(method, uri, Headers.of(*fields))
        if body or contentType is not None:
            request = request.withBody(body, contentType)
        return request

    def createAck(
        self, cseq: int, body: bytes = b"", contentType: str | None = None
    ) -> SIPRequest:
        """
        The ACK for a 2xx to the INVITE with CSeq number C{cseq} (section
        13.2.2.4).
        """
        return self.createRequest("ACK", (), body, contentType, cseq=cseq)

    def checkRemoteRequest(self, request: SIPRequest) -> int | None:
        """
        Section 12.2.2: a request whose CSeq is not above the remote CSeq
        (ACK and CANCEL excepted) gets 500; otherwise the remote CSeq is
        updated.

        @return: The status to reject with, or L{None}.
        """
        if request.method in ("ACK", "CANCEL"):
            return None
        number = request.cseq.number
        if self.remoteSeq is not None and number <= self.remoteSeq:
            return 500
        self.remoteSeq = number
        return None

    def refreshTarget(self, message: SIPRequest | SIPResponse) -> None:
        """
        Take a new remote target from the Contact of a target refresh
        request or its 2xx (section 12.2).
        """
        contacts = message.contact
        if contacts is not None and contacts.addresses:
            self.remoteTarget = contacts.addresses[0].uri
