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
    (L{InterworkingService});
  - C{rooms}, with C{[rooms] domain}: the chat rooms the gateway hosts
    itself (L{FocusService}).

Stopping (SIGTERM) is polite and bounded: L{GatewayService.stopService}
first ends every conference subscription (terminated NOTIFYs) and every
SIP dialog (BYE, over the connection the SIP user opened when there is
one), which makes the XMPP occupants of those users leave while the
component links are still up, then waits up to C{[gateway]
shutdown_grace} seconds for the answers before the parts stop.

This is the only module that uses the global reactor, and only when no
reactor is passed in.
"""

from __future__ import annotations

import gc
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
        from stoxgw.sip.sessiontimer import SessionTimerSettings
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
            # Limits on TCP/TLS (docs/limits.md); a timeout of 0 is none.
            idleTimeout=s.idle_timeout or None,
            readTimeout=s.read_timeout or None,
            maxOutputBytes=s.max_output_bytes,
            maxConnectionsPerAddress=s.max_connections_per_address,
            maxConnections=s.max_connections,
        )
        credentials = None
        if s.username is not None and s.password is not None:
            credentials = DigestCredentials(s.username, s.password.reveal())
        settings = UserAgentSettings(
            outboundProxy=SIPURI.fromString(s.outbound_proxy) if s.outbound_proxy else None,
            credentials=credentials,
            # RFC 4028 session timers on INVITE dialogs; 0 turns them off.
            sessionTimer=(
                SessionTimerSettings(s.session_expires, s.min_se)
                if s.session_expires
                else None
            ),
        )
        trust = SIPTrust(
            networks=s.trusted_peers + _selfNetworks(config),
            tlsNames=frozenset(s.trusted_tls_names),
        )
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
                for domain, host, port, kind in s.static_routes + _selfRoutes(config)
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
            # Limits on accepted connections (docs/limits.md).
            unboundTimeout=m.unbound_timeout or None,
            maxConnectionsPerAddress=m.max_connections_per_address,
            maxConnections=m.max_connections,
            maxQueuedBytes=m.max_output_bytes,
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
            writeTimeout=x.write_timeout or None,
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
        a L{ChatInitiator} and subscribes to its conference event package
        (through the same L{SIPEvents}), and L{RoomDisco} answers service
        discovery as a MUC service.

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
        from stoxgw.chat.session import ChatAcceptor, ChatInitiator, ChatSettings
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
            occupants=lambda handler: OccupantService(
                handler,
                reactor,
                userDomain,
                instantRooms=g.instant_rooms,
                reflectionTimeout=g.reflection_timeout,
            ),
        )
        self.occupants = self.sipToXMPP.occupants
        [userLink] = [link for link in xmpp.links if link.domain == userDomain]
        self.occupants.attach(userLink)
        for handler in discoHandlers(GatewayDisco(userDomain)):
            handler.setHandlerParent(userLink.streamManager)
        # Dead MSRP peers: a bodiless SEND after keepalive_interval of
        # silence, answered within transaction_timeout (RFC 4975 7.1.1).
        chatSettings = ChatSettings(
            keepaliveInterval=config.msrp.keepalive_interval,
            keepaliveTimeout=config.msrp.transaction_timeout,
        )
        self.acceptor = ChatAcceptor(
            sip.userAgent, msrp.endpoint, reactor, self.sipToXMPP, chatSettings
        )
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
            initiator = ChatInitiator(
                sip.userAgent, msrp.endpoint, reactor, chatSettings
            )
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
            self.rooms = self.xmppToSIP.rooms
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


def _reachesOwnRooms(config: Config) -> bool:
    """
    Whether the gateway INVITEs its own native rooms: its RFC 7702 section
    5 side (C{[xmpp] room_domain}) goes out over SIP, and C{[rooms]
    domain} is served here (docs/native-rooms.md).
    """
    return config.rooms.domain is not None and config.xmpp.room_domain is not None


def _selfNetworks(config: Config) -> tuple[Any, ...]:
    """
    The gateway's own address as a trusted peer, when it INVITEs its own
    rooms: its XMPP users' legs arrive from C{[sip] local_ip}.
    """
    if not _reachesOwnRooms(config):
        return ()
    import ipaddress

    return (ipaddress.ip_network(config.sip.local_ip),)


def _selfRoutes(config: Config) -> tuple[Any, ...]:
    """
    A static route of C{[rooms] domain} to the gateway's own SIP listener
    (TCP if it listens on TCP), when it INVITEs its own rooms, has no
    outbound proxy (which then routes the domain) and no route of its own
    for the domain.
    """
    s = config.sip
    domain = config.rooms.domain
    if (
        not _reachesOwnRooms(config)
        or s.outbound_proxy is not None
        or any(route[0] == domain for route in s.static_routes)
    ):
        return ()
    for kind, port in (("tcp", s.tcp_port), ("udp", s.udp_port), ("tls", s.tls_port)):
        if port:
            return ((domain, s.local_ip, port, kind),)
    return ()


class FocusService(Service):
    """
    Native chat rooms (C{[rooms]}): a L{Focus} for C{[rooms] domain} on
    the gateway's SIP user agent and MSRP endpoint.  The UA's INVITE,
    REFER and C{conference} handlers are shared with the interworking part:
    routers (L{stoxgw.focus.routing}) hand requests for the rooms' domain
    (or in a room session's dialog) to the focus, the others to
    L{SIPToXMPP} as before.

    @ivar focus: The L{Focus}.
    """

    _log = Logger()

    def __init__(
        self,
        config: Config,
        reactor: Any,
        sip: SIPService,
        msrp: MSRPService,
        interworking: InterworkingService,
    ) -> None:
        self.setName("rooms")
        from stoxgw.focus.focus import Focus
        from stoxgw.focus.room import RoomPolicy
        from stoxgw.focus.routing import ConferenceRouter, OfferRouter, ReferRouter

        r = config.rooms
        assert r.domain is not None
        self.focus = Focus(
            reactor,
            sip.userAgent,
            msrp.endpoint,
            RoomPolicy(
                r.domain,
                historySize=r.history_size,
                maxOccupants=r.max_occupants,
                reservedNicks=r.reserved_nicks,
                allowedCreators=r.allowed_creators,
                persistentRooms=r.persistent_rooms,
            ),
            authRealm=config.sip.auth_realm,
            chatSettings=interworking.acceptor.settings,
        )
        bridge = interworking.sipToXMPP
        interworking.acceptor.offers = OfferRouter(self.focus, bridge)
        interworking.referAgent.handler = ReferRouter(self.focus, bridge)
        self.interworking = interworking
        self.conferences = ConferenceRouter(self.focus, interworking.conferencePackage)

    def startService(self) -> None:
        """
        Take over the C{conference} package (after the interworking part,
        started before us, registered its own: the router hands it the
        subscriptions that are not for our rooms).
        """
        super().startService()
        self.interworking.events.addPackage(self.conferences)
        self._log.info(
            "Native chat rooms on sip:NAME@{domain} ({rooms})",
            domain=self.focus.domain,
            rooms=", ".join(sorted(self.focus.rooms)) or "created on first INVITE",
        )

    def stopService(self) -> Any:
        """
        BYE every room session (Reason 503) and end the rooms'
        subscriptions, waiting a few seconds at most.
        """
        super().stopService()
        return self.focus.shutdown()


class GatewayService(MultiService):
    """
    The root of the gateway's service tree.

    @ivar config: the configuration it was built from.
    @ivar ownsProcess: whether the gateway is the process (C{twistd
        stoxgw}): then SIGHUP reopens the log file and the garbage
        collector is tuned at start-up.  A gateway built inside another
        program (the tests, an embedding) leaves signals and the collector
        alone.
    @ivar logObserver: the observer for the configured log output; handed to
        twistd through the application (see L{setServiceParent}).
    """

    _log = Logger()

    def __init__(
        self,
        config: Config,
        reactor: Any,
        ownsProcess: bool = False,
    ) -> None:
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.ownsProcess = ownsProcess
        self.logObserver: ILogObserver | None = None
        sip = SIPService(config, reactor)
        msrp = MSRPService(config, reactor)
        xmpp = XMPPService(config, reactor)
        for part in (sip, msrp, xmpp):
            part.setServiceParent(self)
        interworking = InterworkingService(config, reactor, sip, msrp, xmpp)
        interworking.setServiceParent(self)
        if config.rooms.domain is not None:
            FocusService(config, reactor, sip, msrp, interworking).setServiceParent(self)

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
        if self.ownsProcess:
            signal.signal(
                signal.SIGHUP,
                lambda number, frame: self.reactor.callFromThread(self.reopenLogs),
            )
        super().startService()
        if self.ownsProcess:
            self.tuneGarbageCollector()

    def tuneGarbageCollector(self) -> None:
        """
        Set C{[gateway] gc_thresholds} and freeze what start-up made
        (docs/design.md, "Garbage collection"): the configuration, the
        services and the imported modules live as long as the process, and
        frozen objects are never traversed again by a collection.
        """
        thresholds = self.config.gateway.gc_thresholds
        gc.collect()
        gc.freeze()
        gc.set_threshold(*thresholds)
        self._log.info(
            "Garbage collector thresholds {thresholds}, {frozen} start-up objects frozen",
            thresholds=thresholds,
            frozen=gc.get_freeze_count(),
        )

    def stopService(self) -> Any:
        """
        Stop politely, then stop the parts: end every conference
        subscription (terminated NOTIFYs) and every SIP dialog (BYE; the
        chats end, so their XMPP occupants leave while the component links
        are still up), wait until those requests are answered or C{[gateway]
        shutdown_grace} seconds have passed, then stop the children as
        L{MultiService} does.

        @return: Fires once every part has stopped.
        """
        from twisted.internet.defer import Deferred, DeferredList

        interworking = self.getServiceNamed("interworking")
        sip = self.getServiceNamed("sip")
        assert isinstance(interworking, InterworkingService)
        assert isinstance(sip, SIPService)
        grace = self.config.gateway.shutdown_grace
        self._log.info(
            "stoxgw stopping: ending {count} SIP dialogs (waiting up to {grace} s)",
            count=len(sip.userAgent.dialogs),
            grace=grace,
        )
        pending: list[Deferred[Any]] = [interworking.events.shutdown()]
        # Native rooms close their sessions themselves first (BYE with
        # Reason 503); the UA then BYEs every other dialog.
        for child in self:
            focus = getattr(child, "focus", None)
            if focus is not None and hasattr(focus, "shutdown"):
                pending.append(focus.shutdown())
        pending.append(sip.userAgent.shutdown())
        drained: Deferred[None] = Deferred()

        def answered(_: object) -> None:
            if timer is not None and timer.active():
                timer.cancel()
            if not drained.called:
                drained.callback(None)

        def timedOut() -> None:
            self._log.info(
                "stoxgw stopping: not every BYE was answered within {grace} s",
                grace=grace,
            )
            if not drained.called:
                drained.callback(None)

        timer = self.reactor.callLater(grace, timedOut) if grace > 0 else None
        if timer is None:
            drained.callback(None)
        DeferredList(pending, consumeErrors=True).addCallback(answered)
        drained.addCallback(lambda _: MultiService.stopService(self))
        return drained

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
        the service owns the process: SIGHUP reopens the log file and the
        garbage collector is tuned (C{[gateway] gc_thresholds}).
    @return: the root service.
    """
    if reactor is None:
        from twisted.internet import reactor as globalReactor

        return GatewayService(config, globalReactor, ownsProcess=True)
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