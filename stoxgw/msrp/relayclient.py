# -*- test-case-name: tests.msrp.test_relayendpoint -*-
"""
An endpoint's use of its MSRP relay (RFC 4976 section 5.1).

A L{RelayClient} keeps one connection to the relay and the AUTH exchange
over it (a L{RelayLink}, which refreshes the Use-Path before it expires),
reconnects after a failure, and binds the sessions of an
L{stoxgw.msrp.endpoint.MSRPEndpoint} that use the relay to that
connection, their To-Path being the Use-Path followed by the peer's path.
The endpoint owns one when it is configured with a relay and forwards
its C{startRelay}, C{stopRelay}, C{relayAuthorized} and
C{relayConnection} to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IAddress, IConnector
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from stoxgw._util import failureOf, fireAll
from stoxgw.msrp.protocol import MSRPConnection
from stoxgw.msrp.relay import RelayAuthorized
from stoxgw.msrp.relayauth import RelayAuthenticator
from stoxgw.msrp.relayconnection import RelayLink, RelayLost
from stoxgw.msrp.session import MSRPSession
from stoxgw.msrp.uri import MSRPURI

if TYPE_CHECKING:  # pragma: no cover
    from stoxgw.msrp.endpoint import MSRPEndpoint

__all__ = ["RelayClient"]


class _RelayFactory(ClientFactory):
    """
    Builds the connection to the relay.

    @ivar client: The L{RelayClient}.
    @ivar uri: The relay URI.
    @ivar connection: The connection, once built.
    """

    def __init__(
        self,
        client: RelayClient,
        uri: MSRPURI,
        build: Callable[[bool], MSRPConnection],
    ) -> None:
        self.client = client
        self.uri = uri
        self._build = build
        self.connection: MSRPConnection | None = None

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        """
        @return: A new L{MSRPConnection}, kept open without sessions.
        """
        connection = self._build(self.uri.secure)
        connection.factory = self
        connection.closeWhenIdle = False
        self.connection = connection
        return connection

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        """
        Fail whoever waits for the relay.
        """
        self.client.connectFailed(self, reason)


class RelayClient:
    """
    The relay of one endpoint (see the module docstring).

    @ivar endpoint: The endpoint (its reactor, transaction timeout,
        C{relayExpires} and C{relayRetryDelay} are used).
    @ivar uri: The relay URI.
    @ivar link: The AUTH exchange over the current relay connection, or
        L{None}.
    """

    _log = Logger()

    def __init__(
        self,
        endpoint: MSRPEndpoint,
        uri: MSRPURI,
        username: str | None,
        password: str | None,
        connect: Callable[[MSRPURI, ClientFactory], None],
        build: Callable[[bool], MSRPConnection],
    ) -> None:
        """
        @param username: The C{[msrp] relay_username}.
        @param password: The C{[msrp] relay_password}.
        @param connect: Opens a connection to a URI with a factory (the
            endpoint's, with its TLS and timeout).
        @param build: Makes a connection of the endpoint (secure or not).
        """
        self.endpoint = endpoint
        self.uri = uri
        self._username = username
        self._password = password
        self._connect = connect
        self._build = build
        self.link: RelayLink | None = None
        self._factory: _RelayFactory | None = None
        self._waiters: list[Deferred[RelayAuthorized]] = []
        self._retry: Any = None
        self._stopped = False

    def owns(self, connection: MSRPConnection) -> bool:
        """
        Whether C{connection} is the one to the relay.
        """
        factory = getattr(connection, "factory", None)
        return isinstance(factory, _RelayFactory) and factory.client is self

    @property
    def authorized(self) -> RelayAuthorized | None:
        """
        The relay's current authorization (Use-Path), if usable.
        """
        link = self.link
        if link is None or not link.valid():
            return None
        return link.authorized

    @property
    def connection(self) -> MSRPConnection | None:
        """
        The connection to the relay, if any.
        """
        return None if self.link is None else self.link.connection

    def start(self) -> Deferred[RelayAuthorized]:
        """
        Connect to the relay and authenticate (RFC 4976 section 5.1); AUTH
        is repeated before the Use-Path expires.

        @return: A L{Deferred} firing with the L{RelayAuthorized}, or
            failing with a L{stoxgw.msrp.relay.RelayAuthError} (logged with
            the relay and the C{relay_username}/C{relay_password} keys) or
            the connection error.
        """
        self._stopped = False
        authorized = self.authorized
        if authorized is not None:
            return succeed(authorized)
        d: Deferred[RelayAuthorized] = Deferred()
        self._waiters.append(d)
        if self._factory is None and self.link is None:
            factory = _RelayFactory(self, self.uri, self._build)
            self._factory = factory
            self._log.info("Connecting to MSRP relay {peer}", peer=str(self.uri))
            self._connect(self.uri, factory)
        return d

    def stop(self) -> None:
        """
        Stop using the relay: no refreshes, no reconnection; the relay
        connection is closed.
        """
        self._stopped = True
        self._cancelRetry()
        link, self.link = self.link, None
        factory, self._factory = self._factory, None
        if link is not None:
            connection = link.connection
            link.stop()
            if connection is not None:
                connection.disconnect()
        elif factory is not None and factory.connection is not None:
            factory.connection.disconnect()
        self._fireWaiters(failureOf(RelayLost("relay use stopped")))

    def _cancelRetry(self) -> None:
        """
        Cancel a scheduled reconnection to the relay.
        """
        retry, self._retry = self._retry, None
        if retry is not None and retry.active():
            retry.cancel()

    def _fireWaiters(self, result: RelayAuthorized | Failure) -> None:
        """
        Tell whoever waits for the relay.
        """
        waiters, self._waiters = self._waiters, []
        fireAll(waiters, result)

    def connectionReady(self, connection: MSRPConnection) -> None:
        """
        The relay connection is up (and secured): run the AUTH exchange
        over it.
        """
        if getattr(connection, "factory", None) is not self._factory:
            connection.disconnect()
            return
        endpoint = self.endpoint
        authenticator = RelayAuthenticator(
            self.uri,
            endpoint.newLocalURI(),
            self._username,
            self._password,
            expires=endpoint.relayExpires,
        )
        link = RelayLink(
            connection,
            authenticator,
            endpoint.reactor,
            timeout=endpoint.transactionTimeout,
            onFailed=self._failed,
        )
        self.link = link
        link.start().addCallbacks(self._fireWaiters, self._startFailed)

    def _startFailed(self, reason: Failure) -> None:
        """
        The first AUTH failed (logged by the link): give up on this
        connection.
        """
        link, self.link = self.link, None
        self._factory = None
        if link is not None:
            connection = link.connection
            link.stop()
            if connection is not None:
                connection.disconnect()
        self._fireWaiters(reason)

    def connectFailed(self, factory: object, reason: Failure) -> None:
        """
        The connection to the relay could not be made (or was lost before
        the AUTH exchange began).
        """
        if factory is not self._factory:
            return
        self._factory = None
        self._log.error(
            "Cannot connect to MSRP relay {peer}: {error}",
            peer=str(self.uri),
            error=reason.getErrorMessage(),
        )
        self._fireWaiters(reason)

    def _failed(self, reason: Failure) -> None:
        """
        After a success: the relay connection was lost or a refresh failed.
        Sessions on a lost connection have failed (R-145); try again
        later.
        """
        link = self.link
        if link is not None and link.connection is None:
            self._log.error(
                "Lost the MSRP relay {peer}: {error}",
                peer=str(self.uri),
                error=reason.getErrorMessage(),
            )
            self.link = None
            self._factory = None
        if self._stopped:
            return
        self._cancelRetry()
        self._retry = self.endpoint.reactor.callLater(
            self.endpoint.relayRetryDelay, self._retryNow
        )

    def _retryNow(self) -> None:
        """
        Reconnect (or re-AUTH) after a failure.
        """
        self._retry = None
        link = self.link
        if link is not None and link.connection is not None:
            link.authenticate().addErrback(self._failed)
            return
        self.start().addErrback(self._retryFailed)

    def _retryFailed(self, reason: Failure) -> None:
        """
        A reconnection failed (logged already): try again later.
        """
        if not self._stopped:
            self._retry = self.endpoint.reactor.callLater(
                self.endpoint.relayRetryDelay, self._retryNow
            )

    def connectSession(
        self, session: MSRPSession, remotePath: Sequence[MSRPURI]
    ) -> Deferred[MSRPSession]:
        """
        Bind an active session to the relay connection, its To-Path being
        its Use-Path followed by the peer's path (RFC 4976 section 5.1).
        """
        self.endpoint.setRemotePath(session, remotePath)
        link = self.link
        if link is not None and link.connection is not None and link.connection.open:
            session.bind(link.connection, True)
            return succeed(session)

        def bind(authorized: RelayAuthorized) -> MSRPSession:
            link = self.link
            if link is None or link.connection is None:
                raise RelayLost("the relay connection is gone")
            session.bind(link.connection, True)
            return session

        def failed(reason: Failure) -> Failure:
            session.connectionFailed(reason)
            return reason

        d = self.start().addCallback(bind)
        d.addErrback(failed)
        return d
