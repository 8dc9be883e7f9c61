# -*- test-case-name: tests.test_service -*-
"""
The gateway's service tree, built from a validated configuration.

L{makeService} returns a L{GatewayService} (a L{MultiService}) with one named
child per part of the gateway:

  - C{sip}: the SIP user agent core (transports, transactions, dialogs;
    L{SIPService});
  - C{msrp}: the MSRP listener and sessions (L{MSRPService});
  - C{xmpp}: the XEP-0114 component links, one per served domain;
  - C{interworking}: the objects bridging SIP/MSRP users and XMPP rooms
    (L{InterworkingService}).

This is the only module that uses the global reactor, and only when no
reactor is passed in.
"""

from __future__ import annotations

import signal
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.logger import ILogObserver, Logger
from twisted.python.components import Componentized

from stoxgw import __version__
from stoxgw.config import Config
from stoxgw.logs import buildObserver, reopenLog


class SIPService(Service):
    """
    The SIP part: a L{SIPTransport} listening on C{[sip] local_ip} (UDP, TCP
    and TLS ports as configured) and the L{SIPUserAgent} on top.

    TLS: with C{tls_ca_file}, the listener asks clients for a certificate
    (optional) and verifies it against those CA certificates, and outgoing
    TLS connections verify servers against them (else against the system
    trust store).

    Admission: requests from C{trusted_peers} and C{trusted_tls_names}
    (names from verified certificates, on TLS connections either side
    opened) are taken as they are; with C{auth_realm} set, other peers
    must answer a digest challenge for a user of C{credentials_file}
    (L{DigestAdmission}), else they get 403 (L{SIPTrust}).  Next hops:
    C{static_routes} first, then RFC 3263 DNS (L{RFC3263Resolver} over
    C{twisted.names}, the system's resolv.conf and hosts file).  Until the
    interworking layer registers its handlers, OPTIONS is answered 200 and
    other requests 404 (no such room) or 501.

    @ivar admission: The L{IRequestAdmission} in use.
    @ivar resolver: The L{RFC3263Resolver}.
    """

    _log = Logger()

    def __init__(self, config: Config, reactor: Any) -> None:
        self.setName("sip")
        from twisted.names import hosts, resolve

        from stoxgw.sip.admission import DigestAdmission
        from stoxgw.sip.auth import DigestCredentials
        from stoxgw.sip.dns import RFC3263Resolver, StaticRoute
        from stoxgw.sip.transport import SIPTransport, TransportKind, loadCertificates
        from stoxgw.sip.uri import SIPURI
        from stoxgw.sip.useragent import (
            IRequestAdmission,
            SIPTrust,
            SIPUserAgent,
            UserAgentSettings,
        )

        self.config = config.sip
        s = self.config
        self.transport = SIPTransport(
            reactor,
            s.local_ip,
            caCertificates=loadCertificates(s.tls_ca_file) if s.tls_ca_file else (),
        )
        credentials = None
        if s.username is not None and s.password is not None:
            credentials = DigestCredentials(s.username, s.password.reveal())
        settings = UserAgentSettings(
            outboundProxy=SIPURI.fromString(s.outbound_proxy) if s.outbound_proxy else None,
            credentials=credentials,
        )
        trust = SIPTrust(networks=s.trusted_peers, tlsNames=frozenset(s.trusted_tls_names))
        self.admission: IRequestAdmission = trust
        if s.auth_realm is not None and s.credentials_file is not None:
            self.admission = DigestAdmission(
                s.auth_realm,
                s.credentials_file.reveal(),
                trust=trust,
                clock=reactor.seconds,
            )
        self.reactor = reactor
        self._dnsClient: Any = None
        # Until the service starts, only /etc/hosts: twisted.names' client
        # resolver schedules a timer as soon as it exists (see startService).
        self.resolver = RFC3263Resolver(
            resolve.ResolverChain([hosts.Resolver(b"/etc/hosts")]),
            lambda: self.transport.transports,
            staticRoutes={
                domain: StaticRoute(
                    host, port, TransportKind.fromToken(kind) if kind else None
                )
                for domain, host, port, kind in s.static_routes
            },
        )
        self.userAgent = SIPUserAgent(
            reactor,
            self.transport,
            settings=settings,
            admission=self.admission,
            resolver=self.resolver,
        )

    def startService(self) -> None:
        super().startService()
        from twisted.names import cache, client, hosts, resolve

        self._dnsClient = client.Resolver(resolv="/etc/resolv.conf", reactor=self.reactor)
        self.resolver.dns = resolve.ResolverChain(
            [
                hosts.Resolver(b"/etc/hosts"),
                cache.CacheResolver(reactor=self.reactor),
                self._dnsClient,
            ]
        )
        s = self.config
        if s.udp_port:
            self.transport.listenUDP(s.udp_port)
        if s.tcp_port:
            self.transport.listenTCP(s.tcp_port)
        if s.tls_port:
            assert s.tls_certificate is not None
            self.transport.listenTLS(s.tls_port, s.tls_certificate, s.tls_private_key)
            if s.tls_ca_file is not None:
                self._log.info(
                    "SIP over TLS asks clients for a certificate, verified against {caFile}",
                    caFile=s.tls_ca_file,
                )
        self._log.info(
            "SIP listening on {host}: {ports}",
            host=s.local_ip,
            ports=", ".join(
                f"{kind} {port}"
                for kind, port in (("udp", s.udp_port), ("tcp", s.tcp_port), ("tls", s.tls_port))
                if port
            ),
        )

    def stopService(self) -> Any:
        super().stopService()
        self.userAgent.shutdown()
        self.userAgent.close()
        # twisted.names re-reads resolv.conf on a timer; stop it.
        parseCall = getattr(self._dnsClient, "_parseCall", None)
        if parseCall is not None and parseCall.active():
            parseCall.cancel()
        return self.transport.stopListening()


class MSRPService(Service):
    """
    The MSRP part: one L{MSRPEndpoint} listening on C{[msrp] local_ip:port}
    (TLS when C{use_tls} is on), authenticated with the C{[msrp] relay} when
    one is configured.  Sessions are created by the layers above; until the
    interworking layer exists, every request gets 481 (no such session).
    """

    _log = Logger()

    def __init__(self, config: Config, reactor: Any) -> None:
        self.setName("msrp")
        from stoxgw.msrp.endpoint import MSRPEndpoint
        from stoxgw.msrp.tls import MSRPTLS

        m = config.msrp
        tls = None
        if m.use_tls:
            assert m.tls_certificate is not None
            tls = MSRPTLS.fromFiles(m.tls_certificate, m.tls_private_key)
        self.endpoint = MSRPEndpoint(
            reactor,
            m.local_ip,
            m.port,
            tls=tls,
            transactionTimeout=m.transaction_timeout,
            chunkSize=m.chunk_size,
            maxMessageSize=m.max_message_size,
            relay=m.relay,
            relayUsername=m.relay_username,
            relayPassword=m.relay_password.reveal() if m.relay_password else None,
        )

    def startService(self) -> None:
        super().startService()
        # The endpoint logs "MSRP listening on HOST:PORT (SCHEME)" itself.
        self.endpoint.startListening()
        if self.endpoint.relayURI is not None:
            # startRelay logs its own failures (naming the relay and the
            # [msrp] relay_* keys) and retries; nothing more to do here.
            self.endpoint.startRelay().addErrback(lambda failure: None)

    def stopService(self) -> Any:
        super().stopService()
        self.endpoint.disconnectAll()
        return self.endpoint.stopListening()


class XMPPService(MultiService):
    """
    The XMPP side: a child L{ComponentLink} per served domain.
    """

    def __init__(self, config: Config, reactor: Any) -> None:
        super().__init__()
        self.setName("xmpp")
        # Imported here so that building a config or the SIP side never
        # imports wokkel (and its compat module) without need.
        from stoxgw.xmpp.component import buildLinks

        x = config.xmpp
        self.links = buildLinks(
            reactor,
            x.domains,
            x.server,
            x.port,
            x.secret.reveal(),
            x.queue_size,
            x.reconnect_max_delay,
        )
        for link in self.links:
            link.setServiceParent(self)


class InterworkingService(Service):
    """
    The interworking part: what joins the SIP/MSRP side and the XMPP side.

    Both directions are wired:

      - RFC 7702 section 6 (a SIP user joins an XMPP MUC room): the
        gateway's L{ChatAcceptor} takes INVITEs, L{SIPToXMPP} maps them to
        MUC occupants on the user-domain link, and that link also answers
        service discovery as a gateway; L{SIPEvents} on the SIP user agent
        serves the C{conference} event package (L{RoomConferencePackage})
        to those SIP users, and a L{ReferAgent} turns their REFERs into
        mediated invitations;
      - RFC 7702 section 5 (an XMPP user joins a SIP/MSRP chat room), when
        C{[xmpp] room_domain} is set: the room domain's link carries a
        L{MUCService} whose backend, L{XMPPToSIP}, INVITEs the focus through
        a L{ChatInitiator}, and L{RoomDisco} answers service discovery as a
        MUC service.  A first slice: no conference event package yet (see
        L{stoxgw.interworking.xmpptosip}).

    @ivar events: The L{SIPEvents} of the SIP user agent.
    @ivar conferencePackage: The L{RoomConferencePackage} it serves.
    @ivar sipToXMPP: The L{SIPToXMPP} (SIP users in XMPP rooms).
    @ivar occupants: Its L{OccupantService} on the user-domain link.
    @ivar xmppToSIP: The L{XMPPToSIP}, or L{None} without a room domain.
    @ivar rooms: Its L{MUCService}, or L{None}.
    """

    _log = Logger()

    def __init__(
        self, config: Config, reactor: Any, sip: SIPService, msrp: MSRPService, xmpp: XMPPService
    ) -> None:
        self.setName("interworking")
        from stoxgw.chat.session import ChatAcceptor, ChatInitiator
        from stoxgw.interworking.invitations import SIPInvitations
        from stoxgw.interworking.siptoxmpp import RoomConferencePackage, SIPToXMPP
        from stoxgw.sip.refer import ReferAgent
        from stoxgw.sip.subscription import SIPEvents
        from stoxgw.interworking.xmpptosip import XMPPToSIP
        from stoxgw.xmpp.disco import GatewayDisco, RoomDisco, discoHandlers
        from stoxgw.xmpp.occupant import OccupantService
        from stoxgw.xmpp.room import MUCService

        g = config.gateway
        userDomain = config.xmpp.user_domain
        self.sipToXMPP = SIPToXMPP(
            reactor,
            userDomain,
            g.muc_domains,
            reflectionTimeoutStatus=g.reflection_timeout_status,
            linkLossGrace=g.link_loss_grace,
            authRealm=config.sip.auth_realm,
            invitesPerUser=g.invites_per_user,
            invitesPerRoom=g.invites_per_room,
        )
        self.occupants = OccupantService(
            self.sipToXMPP,
            reactor,
            userDomain,
            instantRooms=g.instant_rooms,
            reflectionTimeout=g.reflection_timeout,
        )
        self.sipToXMPP.useOccupants(self.occupants)
        [userLink] = [link for link in xmpp.links if link.domain == userDomain]
        self.occupants.attach(userLink)
        for handler in discoHandlers(GatewayDisco(userDomain)):
            handler.setHandlerParent(userLink.streamManager)
        self.acceptor = ChatAcceptor(sip.userAgent, msrp.endpoint, reactor, self.sipToXMPP)
        self.events = SIPEvents(sip.userAgent)
        self.conferencePackage = RoomConferencePackage(self.sipToXMPP)
        # RFC 7702 section 6.5: REFERs to rooms are invitations (200); the
        # same agent sends the REFERs of invitations to SIP users
        # and to focuses (RFC 7702 section 5.7).
        self.referAgent = ReferAgent(self.events, self.sipToXMPP, acceptStatus=200)
        self.sipToXMPP.invitations = SIPInvitations(
            self.referAgent, reactor, userDomain, g.muc_domains
        )
        self.xmppToSIP: XMPPToSIP | None = None
        self.rooms: MUCService | None = None
        roomDomain = config.xmpp.room_domain
        if roomDomain is not None:
            [roomLink] = [link for link in xmpp.links if link.domain == roomDomain]
            initiator = ChatInitiator(sip.userAgent, msrp.endpoint, reactor)
            self.xmppToSIP = XMPPToSIP(
                reactor,
                initiator,
                roomDomain,
                g.history_size,
                events=self.events,
                refers=self.referAgent,
            )
            # An INVITE for our own room domain would go round in a loop.
            self.sipToXMPP.ownRoomDomains = (roomDomain,)
            # Focuses dialling out to XMPP users (RFC 4579).
            self.sipToXMPP.focusInvites = self.xmppToSIP
            self.rooms = MUCService(roomDomain, self.xmppToSIP, reactor)
            self.xmppToSIP.useRooms(self.rooms)
            self.rooms.setHandlerParent(roomLink.streamManager)
            roomLink.observers.append(self.xmppToSIP)
            for handler in discoHandlers(RoomDisco(self.rooms)):
                handler.setHandlerParent(roomLink.streamManager)

    def startService(self) -> None:
        super().startService()
        self.acceptor.register()
        self.events.addPackage(self.conferencePackage)

        if self.xmppToSIP is None:
            self._log.info(
                "Interworking: SIP users may join XMPP rooms ({domains}); XMPP"
                " users cannot join SIP rooms (no [xmpp] room_domain)",
                domains=", ".join(self.sipToXMPP.mucDomains) or "any MUC domain",
            )
        else:
            self._log.info(
                "Interworking: SIP users may join XMPP rooms ({domains}); XMPP"
                " users may join SIP rooms as room@{roomDomain}",
                domains=", ".join(self.sipToXMPP.mucDomains) or "any MUC domain",
                roomDomain=self.xmppToSIP.roomDomain,
            )


    def stopService(self) -> Any:
        """
        End the conference subscriptions (terminated NOTIFYs, C{noresource}).
        """
        self.events.shutdown()
        return super().stopService()


class GatewayService(MultiService):
    """
    The root of the gateway's service tree.

    @ivar config: the configuration it was built from.
    @ivar logObserver: the observer for the configured log output; handed to
        twistd through the application (see L{setServiceParent}).
    """

    _log = Logger()

    def __init__(self, config: Config, reactor: Any, handleSignals: bool = False) -> None:
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.handleSignals = handleSignals
        self.logObserver: ILogObserver | None = None
        sip = SIPService(config, reactor)
        msrp = MSRPService(config, reactor)
        xmpp = XMPPService(config, reactor)
        for part in (sip, msrp, xmpp):
            part.setServiceParent(self)
        InterworkingService(config, reactor, sip, msrp, xmpp).setServiceParent(self)

    def setServiceParent(self, parent: Any) -> None:
        """
        Attach to a parent; when the parent is a twistd application, also
        register the configured log observer on it, which twistd then uses
        instead of its own (unless C{--logger} is given).
        """
        if isinstance(parent, Componentized):
            self.logObserver = buildObserver(self.config.logging)
            parent.setComponent(ILogObserver, self.logObserver)
        super().setServiceParent(parent)

    def startService(self) -> None:
        self._log.info(
            "stoxgw {version} starting with {path}",
            version=__version__,
            path=self.config.path,
        )
        if self.handleSignals:
            signal.signal(
                signal.SIGHUP,
                lambda number, frame: self.reactor.callFromThread(self.reopenLogs),
            )
        super().startService()

    def reopenLogs(self) -> None:
        """
        Reopen the C{[logging] file} (on SIGHUP, after log rotation).
        """
        if self.logObserver is not None and reopenLog(self.logObserver):
            self._log.info("Log file {path} reopened", path=self.config.logging.file)


def makeService(config: Config, reactor: Any = None) -> GatewayService:
    """
    Build the gateway's service tree.

    @param config: a validated configuration.
    @param reactor: the reactor to use; by default the global one, and then
        SIGHUP reopens the log file.
    @return: the root service.
    """
    if reactor is None:
        from twisted.internet import reactor as globalReactor

        return GatewayService(config, globalReactor, handleSignals=True)
    return GatewayService(config, reactor)


def probeLinks(config: Config, reactor: Any, timeout: float = 10.0) -> Any:
    """
    Try each component link's handshake once (C{--check-config --probe}).

    @return: a L{Deferred} firing with one problem line per failed domain,
        naming the file, section and key to look at.
    """
    from twisted.internet.defer import gatherResults

    from stoxgw.xmpp.component import probeComponent

    x = config.xmpp

    def problem(outcome: str | None) -> str | None:
        if outcome is None:
            return None
        key = "secret" if "rejected" in outcome else "server"
        return f"{config.path}: [xmpp] {key}: {outcome}"

    probes = [
        probeComponent(reactor, domain, x.server, x.port, x.secret.reveal(), timeout).addCallback(problem)
        for domain in x.domains
    ]
    return gatherResults(probes).addCallback(lambda outcomes: [o for o in outcomes if o])


def runProbe(config: Config, timeout: float = 10.0) -> list[str]:
    """
    Run L{probeLinks} on the global reactor and return its problems.
    """
    from twisted.internet import reactor as globalReactor

    problems: list[str] = []

    def done(result: Any) -> None:
        if isinstance(result, list):
            problems.extend(result)
        else:
            problems.append(f"{config.path}: [xmpp] server: probe failed: {result.getErrorMessage()}")
        globalReactor.stop()

    globalReactor.callWhenRunning(
        lambda: probeLinks(config, globalReactor, timeout).addBoth(done)
    )
    globalReactor.run()
    return problems