# -*- test-case-name: tests.sip.test_transport -*-
"""
Tests for L{stoxgw.sip.transport}: UDP datagrams, TCP/TLS streams,
connection reuse, Via handling (RFC 3261 section 18, RFC 3581), and TLS
peer verification (RFC 5922 section 7) over in-memory TLS connections.

Certificates are made at run time (L{Authority}; no key is committed).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any, Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from twisted.internet import ssl
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.test.iosim import FakeTransport, IOPump, connect
from twisted.internet.testing import (
    FakeDatagramTransport,
    MemoryReactorClock,
    StringTransport,
)
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stoxgw.sip.framing import SIPStreamParser
from stoxgw.sip.message import SIPMessage, SIPRequest, SIPResponse, parseDatagram
from stoxgw.sip.transport import (
    MAGIC_COOKIE,
    Address,
    Flow,
    ISIPTransportUser,
    SIPStreamConnection,
    SIPTransport,
    TransportError,
    TransportKind,
    _UDPProtocol,
    loadCertificates,
    newBranch,
    responseAddress,
    stampVia,
)

INVITE = (
    b"INVITE sip:room@192.0.2.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP client.example.com:5070;branch=z9hG4bK776asdhds\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:room@192.0.2.1>\r\n"
    b"From: <sip:alice@example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@client.example.com:5070>\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

RESPONSE = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc\r\n"
    b"To: <sip:bob@example.com>;tag=x\r\n"
    b"From: <sip:room@192.0.2.1>;tag=y\r\n"
    b"Call-ID: c1\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


@implementer(ISIPTransportUser)
class RecordingUser:
    """
    Records what the transport delivers.
    """

    def __init__(self) -> None:
        self.received: list[tuple[SIPMessage, Flow]] = []

    def messageReceived(self, message: SIPMessage, flow: Flow) -> None:
        self.received.append((message, flow))


def udpTransport(
    reactor: Any = None, host: str = "192.0.2.1"
) -> tuple[SIPTransport, FakeDatagramTransport, RecordingUser]:
    """
    A L{SIPTransport} whose UDP socket is a L{FakeDatagramTransport} on
    port 5060 (and which claims TCP 5060 too), with a recording user.
    """
    transport = SIPTransport(reactor or MemoryReactorClock(), host)
    protocol = _UDPProtocol(transport)
    fake = FakeDatagramTransport()
    protocol.makeConnection(fake)
    transport._udp = protocol
    transport.ports[TransportKind.UDP] = 5060
    transport.ports[TransportKind.TCP] = 5060
    user = RecordingUser()
    transport.user = user
    return transport, fake, user


@dataclass(frozen=True)
class Authority:
    """
    A test certificate authority (P-256, one day), made at run time.

    @ivar name: Its common name.
    @ivar key: Its private key.
    @ivar certificate: Its self-signed certificate.
    """

    name: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def make(cls, name: str = "stoxgw test CA") -> Authority:
        """
        A new authority.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(name, key, certificate)

    @property
    def pem(self) -> bytes:
        """
        The authority's certificate, PEM (no key).
        """
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def writeBundle(self, directory: str, name: str = "ca") -> str:
        """
        Write the certificate alone as C{<name>.pem} (a CA file).

        @return: Its path.
        """
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"{name}.pem")
        with open(path, "wb") as f:
            f.write(self.pem)
        return path

    def issue(
        self,
        directory: str,
        name: str,
        dnsNames: Iterable[str] = (),
        sipURIs: Iterable[str] = (),
        ipAddress: str | None = "127.0.0.1",
        commonName: str | None = None,
    ) -> tuple[str, ssl.PrivateCertificate]:
        """
        Issue an end-entity certificate (no extendedKeyUsage, so good for
        TLS client and server alike) and write it with its key as
        C{<name>.pem}.

        @param dnsNames: subjectAltName DNS names.
        @param sipURIs: subjectAltName URIs (C{sip:example.com}).
        @param ipAddress: A subjectAltName IP address, or L{None}.
        @param commonName: The subject CN (default: C{name}).
        @return: The PEM path and the loaded certificate with its key.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        san: list[x509.GeneralName] = [x509.DNSName(n) for n in dnsNames]
        san += [x509.UniformResourceIdentifier(u) for u in sipURIs]
        if ipAddress is not None:
            san.append(x509.IPAddress(ip_address(ipAddress)))
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, commonName or name)])
            )
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.BasicConstraints(ca=False, path_length=None), critical=True
            )
        )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(san), critical=False
            )
        certificate = builder.sign(self.key, hashes.SHA256())
        pem = certificate.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"{name}.pem")
        with open(path, "wb") as f:
            f.write(pem)
        return path, ssl.PrivateCertificate.loadPEM(pem)  # type: ignore[no-untyped-call]

    def trustRoot(self) -> Any:
        """
        An C{IOpenSSLTrustRoot} trusting this authority only.
        """
        return ssl.trustRootFromCertificates(  # type: ignore[no-untyped-call]
            [ssl.Certificate.loadPEM(self.pem)]  # type: ignore[no-untyped-call]
        )


class TLSPeer(Protocol):
    """
    The far end of an in-memory TLS connection: records what it receives
    and whether its handshake completed.
    """

    def __init__(self) -> None:
        self.received = b""
        self.handshakeDone = False
        self.lost = False

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Any = None) -> None:
        self.lost = True


@implementer(IHandshakeListener)
class _HandshakeTLSPeer(TLSPeer):
    def handshakeCompleted(self) -> None:
        self.handshakeDone = True


def tlsLoopback(
    serverOptions: Any,
    serverFactory: Any,
    clientOptions: Any,
    clientFactory: Any,
    serverAddress: tuple[str, int] = ("192.0.2.1", 5061),
    clientAddress: tuple[str, int] = ("198.51.100.7", 40000),
) -> tuple[Any, Any, TLSMemoryBIOProtocol, IOPump]:
    """
    Connect a TLS client and server in memory (real OpenSSL handshakes,
    no sockets) and run the handshake.

    @param serverOptions: The server's OpenSSL connection creator.
    @param serverFactory: Builds the server's protocol.
    @param clientOptions: The client's OpenSSL connection creator.
    @param clientFactory: Builds the client's protocol.
    @return: The server's and the client's application protocols, the
        client's TLS protocol (to write through) and the pump.
    """
    clock = Clock()
    server = TLSMemoryBIOFactory(
        serverOptions, isClient=False, wrappedFactory=serverFactory, clock=clock
    ).buildProtocol(IPv4Address("TCP", *clientAddress))
    client = TLSMemoryBIOFactory(
        clientOptions, isClient=True, wrappedFactory=clientFactory, clock=clock
    ).buildProtocol(IPv4Address("TCP", *serverAddress))
    assert isinstance(server, TLSMemoryBIOProtocol)
    assert isinstance(client, TLSMemoryBIOProtocol)
    # Kept now: the TLS protocols drop them when the connection is lost.
    serverApplication, clientApplication = (
        server.wrappedProtocol,
        client.wrappedProtocol,
    )
    serverHost = IPv4Address("TCP", *serverAddress)
    clientHost = IPv4Address("TCP", *clientAddress)
    pump = connect(
        server,
        FakeTransport(
            server, isServer=True, hostAddress=serverHost, peerAddress=clientHost
        ),
        client,
        FakeTransport(
            client, isServer=False, hostAddress=clientHost, peerAddress=serverHost
        ),
        clock=clock,
    )
    pump.flush()
    return serverApplication, clientApplication, client, pump


def peerFactory() -> Factory:
    """
    A factory of L{TLSPeer}s that learn of their handshake.
    """
    return Factory.forProtocol(_HandshakeTLSPeer)


def streamConnection(
    transport: SIPTransport,
    peer: tuple[str, int] = ("198.51.100.7", 40000),
    kind: TransportKind = TransportKind.TCP,
) -> tuple[SIPStreamConnection, StringTransport]:
    """
    An accepted stream connection on a L{StringTransport}.
    """
    connection = SIPStreamConnection(transport, kind)
    string = StringTransport(peerAddress=IPv4Address("TCP", *peer))
    connection.makeConnection(string)
    return connection, string


class HelpersTests(SynchronousTestCase):
    """
    Branches, Via stamping and response addresses.
    """

    def test_branchHasMagicCookie(self) -> None:
        """
        RFC 3261 8.1.1.7: branches start with z9hG4bK and are unique.
        """
        branches = {newBranch() for _ in range(100)}
        self.assertEqual(len(branches), 100)
        for branch in branches:
            self.assertTrue(branch.startswith(MAGIC_COOKIE))
            self.assertGreater(len(branch), len(MAGIC_COOKIE) + 16)

    def test_stampReceivedWhenHostDiffers(self) -> None:
        """
        RFC 3261 18.2.1: received is added when sent-by is not the source.
        """
        request = parseDatagram(INVITE)
        assert isinstance(request, SIPRequest)
        stamped = stampVia(request, "198.51.100.7", 5070)
        self.assertEqual(stamped.topVia.received, "198.51.100.7")
        self.assertIsNone(stamped.topVia.rport)

    def test_noStampWhenSame(self) -> None:
        """
        No received parameter when sent-by is the source address.
        """
        request = parseDatagram(
            INVITE.replace(b"client.example.com:5070", b"198.51.100.7:5070")
        )
        assert isinstance(request, SIPRequest)
        self.assertIs(stampVia(request, "198.51.100.7", 5070), request)

    def test_rportFilled(self) -> None:
        """
        RFC 3581 4: rport gets the source port and received the source
        address, even when sent-by is the same host.
        """
        data = INVITE.replace(b"branch=z9hG4bK776asdhds", b"branch=z9hG4bK1;rport")
        data = data.replace(b"client.example.com", b"198.51.100.7")
        request = parseDatagram(data)
        assert isinstance(request, SIPRequest)
        stamped = stampVia(request, "198.51.100.7", 33333)
        self.assertEqual(stamped.topVia.rport, 33333)
        self.assertEqual(stamped.topVia.received, "198.51.100.7")

    def test_stampOnlyFirstElementOfList(self) -> None:
        """
        Only the topmost Via element changes when a line holds several.
        """
        data = INVITE.replace(
            b"branch=z9hG4bK776asdhds\r\n",
            b"branch=z9hG4bK776asdhds, SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp\r\n",
        )
        request = parseDatagram(data)
        assert isinstance(request, SIPRequest)
        stamped = stampVia(request, "198.51.100.7", 5070)
        vias = stamped.vias
        self.assertEqual(len(vias), 2)
        self.assertEqual(vias[0].received, "198.51.100.7")
        self.assertIsNone(vias[1].received)

    def test_responseAddress(self) -> None:
        """
        RFC 3261 18.2.2 / RFC 3581 4: received + rport, else received +
        sent-by port, else sent-by, else the default port.
        """
        response = parseDatagram(RESPONSE)
        assert isinstance(response, SIPResponse)
        self.assertEqual(
            responseAddress(response, TransportKind.UDP),
            Address(TransportKind.UDP, "192.0.2.1", 5060),
        )
        via = "SIP/2.0/UDP h.example;branch=z9hG4bKa;received=10.0.0.1;rport=4000"
        self.assertEqual(
            responseAddress(response.withHeader("Via", via), TransportKind.UDP),
            Address(TransportKind.UDP, "10.0.0.1", 4000),
        )
        via = "SIP/2.0/TLS h.example;branch=z9hG4bKa;received=10.0.0.1"
        self.assertEqual(
            responseAddress(response.withHeader("Via", via), TransportKind.TLS),
            Address(TransportKind.TLS, "10.0.0.1", 5061),
        )

    def test_makeVia(self) -> None:
        """
        RFC 3261 18.1.1, RFC 3581 3: our sent-by, a branch, rport asked.
        """
        transport, _, _ = udpTransport()
        via = transport.makeVia(TransportKind.UDP)
        self.assertEqual(via.transport, "UDP")
        self.assertEqual((via.host, via.port), ("192.0.2.1", 5060))
        self.assertTrue(via.hasMagicCookie)
        self.assertIs(via.rport, True)
        self.assertEqual(
            transport.makeVia(TransportKind.TCP, "z9hG4bKx").branch, "z9hG4bKx"
        )

    def test_transportKind(self) -> None:
        """
        Reliability and default ports per transport.
        """
        self.assertFalse(TransportKind.UDP.reliable)
        self.assertTrue(TransportKind.TCP.reliable)
        self.assertEqual(TransportKind.TLS.defaultPort, 5061)
        self.assertIs(TransportKind.fromToken("tcp"), TransportKind.TCP)
        self.assertRaises(ValueError, TransportKind.fromToken, "sctp")


class UDPTests(SynchronousTestCase):
    """
    SIP over UDP (RFC 3261 18.2.1, 18.3).
    """

    def test_verifyUser(self) -> None:
        """
        The recording user provides the interface.
        """
        self.assertTrue(verifyObject(ISIPTransportUser, RecordingUser()))

    def test_requestDelivered(self) -> None:
        """
        A datagram request is parsed, its Via stamped, and delivered with
        its flow.
        """
        transport, _, user = udpTransport()
        transport._udp.datagramReceived(INVITE, ("198.51.100.7", 5070))  # type: ignore[union-attr]
        [(message, flow)] = user.received
        assert isinstance(message, SIPRequest)
        self.assertEqual(message.method, "INVITE")
        self.assertEqual(message.topVia.received, "198.51.100.7")
        self.assertEqual(flow.source, Address(TransportKind.UDP, "198.51.100.7", 5070))
        self.assertIsNone(flow.connection)

    def test_malformedRequestAnswered400(self) -> None:
        """
        RFC 3261 8.2 / 18.3: a malformed request with the reply headers
        gets 400 back to its source; it is not delivered.
        """
        transport, fake, user = udpTransport()
        bad = INVITE.replace(
            b"Contact: <sip:alice@client.example.com:5070>", b"Contact: <sip:"
        )
        with capturedLogs() as logs:
            transport._udp.datagramReceived(bad, ("198.51.100.7", 5070))  # type: ignore[union-attr]
        self.assertEqual(user.received, [])
        [(data, addr)] = fake.written
        response = parseDatagram(data, requireMaxForwards=False)
        assert isinstance(response, SIPResponse)
        self.assertEqual(response.status, 400)
        self.assertIsNotNone(response.toAddress.tag)
        # Sent to received (the source) and the sent-by port.
        self.assertEqual(addr, ("198.51.100.7", 5070))
        self.assertEqual(logs[0]["peer"], "UDP:198.51.100.7:5070")

    def test_malformedResponseDropped(self) -> None:
        """
        A malformed response is dropped with a warning naming the peer
        and the error.
        """
        transport, fake, user = udpTransport()
        with capturedLogs() as logs:
            transport._udp.datagramReceived(  # type: ignore[union-attr]
                RESPONSE.replace(b"Call-ID: c1\r\n", b""), ("198.51.100.7", 5070)
            )
        self.assertEqual(fake.written, [])
        self.assertEqual(user.received, [])
        [event] = [e for e in logs if "error" in e]
        self.assertEqual(event["peer"], "UDP:198.51.100.7:5070")
        self.assertIn("Missing Call-ID", event["error"])

    def test_oversizedAnswered513(self) -> None:
        """
        RFC 3261 21.5.14: a request larger than the limit gets 513.
        """
        transport, fake, user = udpTransport()
        transport.maxMessageBytes = 600
        big = INVITE.replace(b"Content-Length: 0", b"Content-Length: 700") + b"x" * 700
        transport._udp.datagramReceived(big, ("198.51.100.7", 5070))  # type: ignore[union-attr]
        self.assertEqual(user.received, [])
        response = parseDatagram(fake.written[0][0], requireMaxForwards=False)
        assert isinstance(response, SIPResponse)
        self.assertEqual(response.status, 513)

    def test_keepAliveIgnored(self) -> None:
        """
        CRLF keep-alives on UDP are ignored quietly.
        """
        transport, fake, user = udpTransport()
        transport._udp.datagramReceived(b"\r\n\r\n", ("198.51.100.7", 5070))  # type: ignore[union-attr]
        self.assertEqual((fake.written, user.received), ([], []))

    def test_userErrorContained(self) -> None:
        """
        An exception in the user never escapes datagramReceived.
        """
        transport, _, _ = udpTransport()

        class Broken:
            def messageReceived(self, message: SIPMessage, flow: Flow) -> None:
                raise RuntimeError("boom")

        transport.user = Broken()  # type: ignore[assignment]
        with capturedLogs() as logs:
            transport._udp.datagramReceived(INVITE, ("198.51.100.7", 5070))  # type: ignore[union-attr]
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertTrue(any("boom" in str(e.get("error")) for e in logs))

    def test_sendRequest(self) -> None:
        """
        Requests to a UDP address go out of the listening socket.
        """
        transport, fake, _ = udpTransport()
        request = parseDatagram(INVITE)
        d = transport.sendMessage(
            request, Address(TransportKind.UDP, "203.0.113.5", 5080)
        )
        flow = self.successResultOf(d)
        self.assertEqual(flow.source.port, 5080)
        self.assertEqual(fake.written, [(request.serialize(), ("203.0.113.5", 5080))])

    def test_sendResponseUsesRport(self) -> None:
        """
        RFC 3581 4: a response goes to received:rport.
        """
        transport, fake, _ = udpTransport()
        data = INVITE.replace(b"branch=z9hG4bK776asdhds", b"branch=z9hG4bK1;rport")
        transport._udp.datagramReceived(data, ("198.51.100.7", 40001))  # type: ignore[union-attr]
        request, flow = transport.user.received[0]  # type: ignore[union-attr]
        assert isinstance(request, SIPRequest)
        self.successResultOf(transport.sendResponse(request.makeResponse(100), flow))
        self.assertEqual(fake.written[0][1], ("198.51.100.7", 40001))

    def test_sendWithoutUDP(self) -> None:
        """
        Sending over UDP when not listening on UDP fails.
        """
        transport = SIPTransport(MemoryReactorClock())
        request = parseDatagram(INVITE)
        self.failureResultOf(
            transport.sendMessage(
                request, Address(TransportKind.UDP, "203.0.113.5", 5060)
            ),
            TransportError,
        )


class StreamTests(SynchronousTestCase):
    """
    SIP over TCP/TLS (RFC 3261 18.3 framing, 18.1.1 / 18.2.2 reuse).
    """

    def test_nodelay(self) -> None:
        """
        Nagle is switched off on stream connections (PEERS.md).
        """
        transport, _, _ = udpTransport()
        connection = SIPStreamConnection(transport, TransportKind.TCP)
        string = StringTransport(peerAddress=IPv4Address("TCP", "198.51.100.7", 1))
        noDelay: list[bool] = []
        string.setTcpNoDelay = noDelay.append  # type: ignore[attr-defined]
        from zope.interface import alsoProvides
        from twisted.internet.interfaces import ITCPTransport

        alsoProvides(string, ITCPTransport)
        connection.makeConnection(string)
        self.assertEqual(noDelay, [True])

    def test_messagesFramed(self) -> None:
        """
        Messages arriving byte by byte are delivered once complete, with
        the connection as their flow.
        """
        transport, _, user = udpTransport()
        connection, _ = streamConnection(transport)
        for i in range(len(INVITE)):
            connection.dataReceived(INVITE[i : i + 1])
        [(message, flow)] = user.received
        assert isinstance(message, SIPRequest)
        self.assertIs(flow.connection, connection)
        self.assertEqual(flow.source, Address(TransportKind.TCP, "198.51.100.7", 40000))
        self.assertEqual(message.topVia.received, "198.51.100.7")

    def test_pingPong(self) -> None:
        """
        RFC 5626 3.5.1: a double-CRLF ping gets a single-CRLF pong.
        """
        transport, _, _ = udpTransport()
        connection, string = streamConnection(transport)
        connection.dataReceived(b"\r\n\r\n")
        self.assertEqual(string.value(), b"\r\n")

    def test_responseOverSameConnection(self) -> None:
        """
        RFC 3261 18.2.2: the response goes back over the request's
        connection.
        """
        transport, _, user = udpTransport()
        connection, string = streamConnection(transport)
        connection.dataReceived(INVITE)
        request, flow = user.received[0]
        assert isinstance(request, SIPRequest)
        self.successResultOf(
            transport.sendResponse(request.makeResponse(180, toTag="t"), flow)
        )
        [response] = SIPStreamParser().feed(string.value())
        assert isinstance(response, SIPResponse)
        self.assertEqual(response.status, 180)

    def test_malformedAnsweredAndFatalCloses(self) -> None:
        """
        A message without Content-Length loses framing: 400 is sent, the
        connection closed.
        """
        transport, _, user = udpTransport()
        connection, string = streamConnection(transport)
        connection.dataReceived(INVITE.replace(b"Content-Length: 0\r\n", b""))
        self.assertEqual(user.received, [])
        [response] = SIPStreamParser().feed(string.value())
        assert isinstance(response, SIPResponse)
        self.assertEqual(response.status, 400)
        self.assertTrue(string.disconnecting)

    def test_requestReusesAcceptedConnection(self) -> None:
        """
        RFC 3261 18.1.1: a request to the address of an open connection
        goes over it.
        """
        reactor = MemoryReactorClock()
        transport, _, _ = udpTransport(reactor)
        connection, string = streamConnection(transport)
        request = parseDatagram(INVITE)
        d = transport.sendMessage(
            request, Address(TransportKind.TCP, "198.51.100.7", 40000)
        )
        self.assertIs(self.successResultOf(d).connection, connection)
        self.assertEqual(string.value(), request.serialize())
        self.assertEqual(reactor.tcpClients, [])

    def test_connectAndSend(self) -> None:
        """
        Without a connection one is made; what waits is sent once it is
        up, and the next request reuses it.
        """
        reactor = MemoryReactorClock()
        transport, _, _ = udpTransport(reactor)
        request = parseDatagram(INVITE)
        destination = Address(TransportKind.TCP, "203.0.113.5", 5060)
        d1 = transport.sendMessage(request, destination)
        d2 = transport.sendMessage(request, destination)
        self.assertEqual(len(reactor.tcpClients), 1)
        host, port, factory, timeout, _ = reactor.tcpClients[0]
        self.assertEqual((host, port), ("203.0.113.5", 5060))
        self.assertNoResult(d1)
        protocol = factory.buildProtocol(None)
        string = StringTransport(peerAddress=IPv4Address("TCP", "203.0.113.5", 5060))
        protocol.makeConnection(string)
        self.successResultOf(d1)
        self.successResultOf(d2)
        self.assertEqual(string.value(), request.serialize() * 2)
        self.successResultOf(transport.sendMessage(request, destination))
        self.assertEqual(len(reactor.tcpClients), 1)

    def test_connectFailed(self) -> None:
        """
        A refused connection fails what waits with L{TransportError}.
        """
        reactor = MemoryReactorClock()
        transport, _, _ = udpTransport(reactor)
        request = parseDatagram(INVITE)
        d = transport.sendMessage(
            request, Address(TransportKind.TCP, "203.0.113.5", 5060)
        )
        factory = reactor.tcpClients[0][2]
        with capturedLogs():
            factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))  # type: ignore[no-untyped-call]
        self.failureResultOf(d, TransportError)

    def test_lostConnectionForgotten(self) -> None:
        """
        A closed connection is not reused; a response for it goes over a
        new connection to the Via address (RFC 3261 18.2.2).
        """
        reactor = MemoryReactorClock()
        transport, _, user = udpTransport(reactor)
        connection, _ = streamConnection(transport)
        connection.dataReceived(INVITE)
        request, flow = user.received[0]
        assert isinstance(request, SIPRequest)
        connection.connectionLost(Failure(ConnectionRefusedError()))  # type: ignore[no-untyped-call]
        d = transport.sendResponse(request.makeResponse(200, toTag="t"), flow)
        self.assertNoResult(d)
        host, port = reactor.tcpClients[0][:2]
        self.assertEqual((host, port), ("198.51.100.7", 5070))

    def test_tlsListenAndConnect(self) -> None:
        """
        TLS listens with the certificate from a file and connects with
        client options per host.
        """
        from tests.msrp.test_tls import makeCertificate

        reactor = MemoryReactorClock()
        transport = SIPTransport(reactor, "127.0.0.1")
        path, _ = makeCertificate(self.mktemp())
        transport.listenTLS(5061, path)
        self.assertEqual(len(reactor.sslServers), 1)
        self.assertEqual(transport.ports[TransportKind.TLS], 5061)
        request = parseDatagram(INVITE)
        transport.sendMessage(request, Address(TransportKind.TLS, "127.0.0.1", 5061))
        self.assertEqual(len(reactor.sslClients), 1)
        self.assertTrue(os.path.exists(path))

    def _tlsConnection(self) -> tuple[Any, Any, StringTransport]:
        from tests.msrp.test_tls import makeCertificate

        reactor = MemoryReactorClock()
        transport = SIPTransport(reactor, "127.0.0.1")
        path, _ = makeCertificate(self.mktemp())
        transport.listenTLS(5061, path)
        sent = transport.sendMessage(
            parseDatagram(INVITE), Address(TransportKind.TLS, "127.0.0.1", 5061)
        )
        factory = reactor.sslClients[0][2]
        connection = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5061))
        wire = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 5061))
        connection.makeConnection(wire)
        return sent, connection, wire

    def test_tlsReadyAfterHandshake(self) -> None:
        """
        RFC 3261 26.2: nothing is sent over an outgoing TLS connection
        before its handshake (and so the peer's certificate check) has
        completed; then the queued request goes out.
        """
        sent, connection, wire = self._tlsConnection()
        self.assertEqual(wire.value(), b"")
        self.assertNoResult(sent)
        connection.handshakeCompleted()
        self.assertTrue(wire.value().startswith(b"INVITE "))
        self.assertIs(self.successResultOf(sent).connection, connection)

    def test_tlsHandshakeFailed(self) -> None:
        """
        RFC 3261 8.1.3.1, 18.4: a handshake that fails (e.g. the peer's
        certificate is not trusted) fails the send with a transport error
        at once, which the transaction layer turns into 503.
        """
        sent, connection, wire = self._tlsConnection()
        connection.connectionLost(
            Failure(ConnectionRefusedError("certificate verify failed"))
        )
        self.assertEqual(wire.value(), b"")
        failure = self.failureResultOf(sent, TransportError)
        self.assertIn("certificate verify failed", failure.getErrorMessage())

    def test_tlsAbortedAfterHandshake(self) -> None:
        """
        When Twisted's identity check aborts the connection at the end of
        the handshake, the connection never becomes usable.
        """
        sent, connection, wire = self._tlsConnection()
        wire.disconnecting = True
        connection.handshakeCompleted()
        self.assertEqual(wire.value(), b"")
        self.assertNoResult(sent)

    def test_listenTCPAndUDP(self) -> None:
        """
        The listeners bind the configured interface.
        """
        reactor = MemoryReactorClock()
        transport = SIPTransport(reactor, "127.0.0.1")
        transport.listenTCP(5070)
        self.assertEqual(reactor.tcpServers[0][0], 5070)
        self.assertEqual(reactor.tcpServers[0][3], "127.0.0.1")
        self.assertEqual(transport.transports, (TransportKind.TCP,))


class InMemoryTLSMixin:
    """
    A gateway TLS listener on a memory reactor and clients connecting to
    it in memory: certificates from L{authority} for the gateway
    (C{gateway.example.com}) and for the proxy (C{proxy.example.com}),
    and an impostor's (same name) from another authority.
    """

    mktemp: Any
    assertEqual: Any

    def makeCertificates(self) -> None:
        """
        Make the authorities, the certificates and the CA file.
        """
        self.directory = self.mktemp()
        self.authority = Authority.make()
        self.stranger = Authority.make("another CA")
        self.gatewayPEM, self.gateway = self.authority.issue(
            self.directory, "gateway", dnsNames=["gateway.example.com"]
        )
        _, self.proxy = self.authority.issue(
            self.directory, "proxy", dnsNames=["proxy.example.com"]
        )
        _, self.impostor = self.stranger.issue(
            self.directory, "impostor", dnsNames=["proxy.example.com"]
        )
        self.caFile = self.authority.writeBundle(self.directory)

    def listener(
        self, verify: bool = True
    ) -> tuple[SIPTransport, RecordingUser, Any, Any]:
        """
        A transport listening for TLS (on a memory reactor), with the CA
        certificates if C{verify}.

        @return: The transport, its user, and the listener's server
            options and factory.
        """
        reactor = MemoryReactorClock()
        transport = SIPTransport(
            reactor,
            "192.0.2.1",
            caCertificates=loadCertificates(self.caFile) if verify else (),
        )
        user = RecordingUser()
        transport.user = user
        transport.listenTLS(5061, self.gatewayPEM)
        port, factory, options = reactor.sslServers[0][:3]
        self.assertEqual(port, 5061)
        return transport, user, options, factory

    def connectAsClient(
        self, verify: bool = True, certificate: ssl.PrivateCertificate | None = None
    ) -> tuple[SIPStreamConnection, TLSPeer, RecordingUser]:
        """
        Connect to the listener (with the CA certificates if C{verify}) as
        a client that verifies the gateway and presents C{certificate} if
        given, and send one request (an INVITE) once connected.

        @return: The gateway's connection, the client, and the user of the
            gateway's transport.
        """
        _, user, serverOptions, factory = self.listener(verify)
        clientOptions = ssl.optionsForClientTLS(
            "gateway.example.com",
            trustRoot=self.authority.trustRoot(),
            clientCertificate=certificate,
        )
        connection, peer, client, pump = tlsLoopback(
            serverOptions, factory, clientOptions, peerFactory()
        )
        assert isinstance(connection, SIPStreamConnection)
        assert isinstance(peer, TLSPeer)
        if peer.handshakeDone:
            client.write(INVITE)
            pump.flush()
        return connection, peer, user


class TLSVerificationTests(InMemoryTLSMixin, SynchronousTestCase):
    """
    TLS peer verification with C{caCertificates} (C{[sip] tls_ca_file}),
    over in-memory TLS connections with real OpenSSL handshakes: the
    listener asks for an optional client certificate and refuses one that
    does not verify; outgoing connections verify the server against the
    CA certificates (RFC 3261 26.2, RFC 5922 7.3, 7.4).
    """

    def setUp(self) -> None:
        self.makeCertificates()

    def test_serverOptionsAskForOptionalCertificate(self) -> None:
        """
        RFC 5922 7.4: with CA certificates the listener's context asks for
        a client certificate (C{VERIFY_PEER}) without requiring one;
        without them it asks for none.
        """
        _, _, options, _ = self.listener(verify=True)
        self.assertEqual(
            options.getContext().get_verify_mode(),
            SSL.VERIFY_PEER | SSL.VERIFY_CLIENT_ONCE,
        )
        _, _, options, _ = self.listener(verify=False)
        self.assertEqual(options.getContext().get_verify_mode(), SSL.VERIFY_NONE)

    def test_verifiedClientCertificate(self) -> None:
        """
        RFC 5922 7.4: a client certificate issued by a configured CA
        passes the handshake; the connection's peer is verified and its
        certificate is the one the request's flow carries.
        """
        connection, peer, user = self.connectAsClient(certificate=self.proxy)
        self.assertTrue(peer.handshakeDone)
        self.assertTrue(connection.ready)
        self.assertTrue(connection.peerVerified)
        [(request, flow)] = user.received
        self.assertIs(flow.connection, connection)
        assert connection.transport is not None
        presented = connection.transport.getPeerCertificate()  # type: ignore[attr-defined]
        self.assertEqual(
            presented.digest("sha256"), self.proxy.original.digest("sha256")
        )

    def test_noClientCertificate(self) -> None:
        """
        RFC 5922 7.4: the certificate is optional; a client without one
        is served (and has no certificate to take a name from).
        """
        connection, peer, user = self.connectAsClient(certificate=None)
        self.assertTrue(peer.handshakeDone)
        self.assertTrue(connection.peerVerified)
        self.assertEqual(len(user.received), 1)
        assert connection.transport is not None
        self.assertIsNone(connection.transport.getPeerCertificate())  # type: ignore[attr-defined]

    def test_unknownCAFailsHandshake(self) -> None:
        """
        RFC 5922 7.1 (RFC 5280 validation): a client certificate from an
        authority not in the CA file fails the handshake; the connection
        never carries a message, and the failure is logged.
        """
        with capturedLogs() as events:
            connection, peer, user = self.connectAsClient(certificate=self.impostor)
        self.assertFalse(connection.ready)
        self.assertFalse(connection.peerVerified)
        self.assertEqual(user.received, [])
        self.assertTrue(peer.lost)
        [event] = [e for e in events if "handshake" in e.get("log_format", "")]
        self.assertEqual(event["peer"], "TLS:198.51.100.7:40000")
        self.assertIn("certificate verify failed", event["error"])

    def test_notVerifiedWithoutCAFile(self) -> None:
        """
        Without CA certificates the listener asks for no certificate, so a
        client offering one sends none, and the connection's peer does not
        count as verified.
        """
        connection, peer, user = self.connectAsClient(
            verify=False, certificate=self.proxy
        )
        self.assertTrue(connection.ready)
        self.assertFalse(connection.peerVerified)
        self.assertEqual(len(user.received), 1)
        assert connection.transport is not None
        self.assertIsNone(connection.transport.getPeerCertificate())  # type: ignore[attr-defined]

    def test_peerVerifiedNeedsVerifyMode(self) -> None:
        """
        Defence in depth: a connection whose OpenSSL handle has no
        C{VERIFY_PEER} never counts as verified, whatever its factory said;
        nor does a TCP connection or one before its handshake.
        """
        transport = SIPTransport(MemoryReactorClock(), "192.0.2.1")
        connection = SIPStreamConnection(
            transport, TransportKind.TLS, verifiesPeer=True
        )

        class Handle:
            mode = SSL.VERIFY_NONE

            def get_verify_mode(self) -> int:
                return self.mode

        class Wire(StringTransport):
            handle = Handle()

            def getHandle(self) -> Handle:
                return self.handle

        wire = Wire(peerAddress=IPv4Address("TCP", "198.51.100.7", 40000))
        connection.makeConnection(wire)
        self.assertFalse(connection.peerVerified)
        connection.handshakeCompleted()
        self.assertFalse(connection.peerVerified)
        Wire.handle.mode = SSL.VERIFY_PEER
        self.assertTrue(connection.peerVerified)
        tcp = SIPStreamConnection(transport, TransportKind.TCP, verifiesPeer=True)
        tcp.makeConnection(StringTransport())
        self.assertFalse(tcp.peerVerified)

    def outgoing(
        self, serverCertificate: ssl.PrivateCertificate
    ) -> tuple[Any, TLSPeer, Any]:
        """
        Send a request from a transport with the CA certificates to
        C{proxy.example.com} over TLS, the far end presenting
        C{serverCertificate}.

        @return: The send's Deferred, the far end, and the transport's
            connection.
        """
        reactor = MemoryReactorClock()
        transport = SIPTransport(
            reactor, "192.0.2.1", caCertificates=loadCertificates(self.caFile)
        )
        sent = transport.sendMessage(
            parseDatagram(INVITE), Address(TransportKind.TLS, "proxy.example.com", 5061)
        )
        host, port, factory, clientOptions = reactor.sslClients[0][:4]
        self.assertEqual((host, port), ("proxy.example.com", 5061))
        peer, connection, _, _ = tlsLoopback(
            serverCertificate.options(),
            peerFactory(),
            clientOptions,
            factory,
            serverAddress=("192.0.2.9", 5061),
            clientAddress=("192.0.2.1", 40001),
        )
        return sent, peer, connection

    def test_outgoingVerifiedAgainstCAFile(self) -> None:
        """
        RFC 5922 7.3: outgoing TLS verifies the server against the CA
        certificates (not the system trust store) and its name; the
        request goes out and the connection's peer is verified.
        """
        sent, peer, connection = self.outgoing(self.proxy)
        flow = self.successResultOf(sent)
        self.assertIs(flow.connection, connection)
        self.assertTrue(connection.peerVerified)
        self.assertTrue(peer.received.startswith(b"INVITE "))

    def test_outgoingUnknownCA(self) -> None:
        """
        RFC 3261 26.2, RFC 5922 7.3: a server certificate from another
        authority fails the handshake and the send, nothing is sent.
        """
        sent, peer, connection = self.outgoing(self.impostor)
        self.failureResultOf(sent, TransportError)
        self.assertFalse(connection.peerVerified)
        self.assertEqual(peer.received, b"")

    def test_loadCertificates(self) -> None:
        """
        L{loadCertificates} reads every certificate of a PEM file in order
        and skips a key; a file without one is an error.
        """
        bundle = os.path.join(self.directory, "bundle.pem")
        with open(bundle, "wb") as f:
            f.write(self.authority.pem + self.stranger.pem)
        self.assertEqual(
            [c.dumpPEM() for c in loadCertificates(bundle)],
            [self.authority.pem, self.stranger.pem],
        )
        [only] = loadCertificates(self.gatewayPEM)
        self.assertEqual(only.digest("sha256"), self.gateway.digest("sha256"))
        empty = os.path.join(self.directory, "empty.pem")
        with open(empty, "wb") as f:
            f.write(b"nothing\n")
        self.assertRaises(ValueError, loadCertificates, empty)
