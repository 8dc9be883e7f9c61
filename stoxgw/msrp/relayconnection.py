# -*- test-case-name: tests.msrp.test_relayendpoint -*-
"""
The AUTH exchange with an MSRP relay (RFC 4976) over a live
L{MSRPConnection}.

L{RelayLink} drives a L{RelayAuthenticator} over the connection to the
relay: it queues each AUTH through the connection's scheduler (so the
connection keeps the transaction pending and hands back its response),
runs a transaction timer on the injected clock, answers challenges, keeps
the resulting L{RelayAuthorized} (the Use-Path) and AUTHs again before the
Use-Path expires (RFC 4976 section 4.6).  It is attached to the connection
under its own URI (the AUTH From-Path), so the connection stays open while
the link lives and tells it when it is lost.

The endpoint (L{stoxgw.msrp.endpoint.MSRPEndpoint}) opens the connection,
starts the link, and routes sessions over it.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from stoxgw._util import failureOf, fireAll
from stoxgw.msrp.chunks import SingleRequest
from stoxgw.msrp.interfaces import IMSRPConnectionUser
from stoxgw.msrp.message import MSRPRequest, MSRPResponse
from stoxgw.msrp.protocol import MSRPConnection
from stoxgw.msrp.relay import (
    RelayAuthError,
    RelayAuthorized,
    RelayChallengeError,
    RelayCredentialsRejected,
    RelayCredentialsRequired,
    RelayForbidden,
    RelayMutualAuthFailed,
)
from stoxgw.msrp.relayauth import RelayAuthenticator
from stoxgw.msrp.uri import MSRPURI

__all__ = ["RelayTimeout", "RelayLost", "RelayLink", "CREDENTIALS_CONFIG"]

CREDENTIALS_CONFIG = "[msrp] relay_username/relay_password"
"""
The configuration keys named in log lines about refused credentials.
"""

_CREDENTIAL_ERRORS = (
    RelayCredentialsRequired,
    RelayCredentialsRejected,
    RelayForbidden,
    RelayChallengeError,
    RelayMutualAuthFailed,
)


class RelayTimeout(RelayAuthError):
    """
    The relay did not answer an AUTH in time.
    """


class RelayLost(RelayAuthError):
    """
    The connection to the relay was lost (or never made) before the AUTH
    exchange ended.
    """



@implementer(IMSRPConnectionUser)
class RelayLink:
    """
    The authenticated use of one relay over one connection.

    Implements L{stoxgw.msrp.interfaces.IMSRPConnectionUser}, and
    L{stoxgw.msrp.chunks.ChunkListener} for its AUTH requests.

    @ivar connection: The connection to the relay, or L{None} once lost.
    @ivar authenticator: The AUTH state.
    @ivar localURI: The From-Path of the AUTH requests (the connection's
        key for the link).
    @ivar relayURI: The relay's URI (for logs).
    @ivar authorized: The last successful outcome, or L{None}.
    @ivar expiresAt: When L{authorized}'s Use-Path expires (clock seconds),
        or L{None}.
    @ivar timeout: Seconds to wait for each AUTH response.
    @ivar refreshMargin: See L{RelayAuthorized.refreshDelay}.
    @ivar onAuthorized: Called with every successful outcome (the first and
        the refreshes).
    @ivar onFailed: Called with the L{Failure} of a refresh that failed,
        or of the loss of the connection after the first success.
    """

    _log = Logger()

    def __init__(
        self,
        connection: MSRPConnection,
        authenticator: RelayAuthenticator,
        clock: Any,
        *,
        timeout: float = 30.0,
        refreshMargin: int = 30,
        onAuthorized: Callable[[RelayAuthorized], None] | None = None,
        onFailed: Callable[[Failure], None] | None = None,
    ) -> None:
        """
        @param clock: An L{twisted.internet.interfaces.IReactorTime}.
        """
        self.connection: MSRPConnection | None = connection
        self.authenticator = authenticator
        self.localURI: MSRPURI = authenticator.ownURI
        self.relayURI = authenticator.relayURI
        self.clock: IReactorTime = clock
        self.timeout = timeout
        self.refreshMargin = refreshMargin
        self.onAuthorized = onAuthorized
        self.onFailed = onFailed
        self.authorized: RelayAuthorized | None = None
        self.expiresAt: float | None = None
        self._waiters: list[Deferred[RelayAuthorized]] = []
        self._exchanging = False
        self._timer: IDelayedCall | None = None
        self._refreshTimer: IDelayedCall | None = None
        self._source: SingleRequest | None = None
        self._stopped = False

    def __repr__(self) -> str:
        return f"<RelayLink {self.relayURI} authorized={self.authorized is not None}>"

    @property
    def username(self) -> str | None:
        """
        The configured user name (for logs; never the password).
        """
        return self.authenticator._username

    def valid(self) -> bool:
        """
        Whether the last Use-Path is still usable for new sessions.
        """
        if self.authorized is None or self.connection is None:
            return False
        seconds = getattr(self.clock, "seconds", None)
        if self.expiresAt is None or seconds is None:
            return True
        return bool(seconds() < self.expiresAt)

    # -- the exchange ------------------------------------------------------

    def start(self) -> Deferred[RelayAuthorized]:
        """
        Attach to the connection and run the first AUTH exchange.

        @return: A L{Deferred} firing with the L{RelayAuthorized}, or
            failing with a L{RelayAuthError} (L{RelayTimeout},
            L{RelayLost}, or the authenticator's).
        """
        connection = self.connection
        if connection is None:
            return fail(RelayLost("no connection"))
        connection.closeWhenIdle = False
        connection.attach(self)
        return self.authenticate()

    def authenticate(self) -> Deferred[RelayAuthorized]:
        """
        Run one AUTH exchange (the first, or a refresh); while one runs,
        wait for it.

        @return: See L{start}.
        """
        if self.connection is None:
            return fail(RelayLost("connection lost"))
        d: Deferred[RelayAuthorized] = Deferred()
        self._waiters.append(d)
        if self._exchanging:
            return d
        self._exchanging = True
        self._log.info(
            "MSRP AUTH to relay {peer} as {username}",
            peer=str(self.relayURI),
            username=self.username,
        )
        self._send(self.authenticator.firstRequest())
        return d

    def _fire(self, result: RelayAuthorized | Failure) -> None:
        """
        End the running exchange: tell whoever waits for it.
        """
        self._exchanging = False
        waiters, self._waiters = self._waiters, []
        fireAll(waiters, result)

    def _send(self, request: MSRPRequest) -> None:
        """
        Queue one AUTH on the connection and start its timer.
        """
        assert self.connection is not None
        self._source = SingleRequest(request, self)
        self._cancelTimer()
        self._timer = self.clock.callLater(
            self.timeout, self._timedOut, request.transactionID
        )
        self.connection.sendStream(self, self._source)

    def _cancelTimer(self) -> None:
        """
        Stop the AUTH transaction timer.
        """
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def chunkWritten(self, request: MSRPRequest, last: bool) -> None:
        """
        An AUTH was written (the timer runs from the queueing already).
        """
        self._log.debug(
            "MSRP AUTH {transactionID} written to {peer}",
            transactionID=request.transactionID,
            peer=str(self.relayURI),
        )

    def responseReceived(self, request: MSRPRequest, response: MSRPResponse) -> None:
        """
        The relay answered an AUTH: go on with the exchange.
        """
        if not self._exchanging:
            return
        self._cancelTimer()
        try:
            outcome = self.authenticator.responseReceived(response)
        except RelayAuthError as e:
            self._end(failureOf(e))
            return
        if isinstance(outcome, MSRPRequest):
            self._send(outcome)
            return
        self._succeeded(outcome)

    def _timedOut(self, transactionID: str) -> None:
        """
        No response to an AUTH in time.
        """
        self._timer = None
        if self.connection is not None:
            self.connection.forgetTransaction(transactionID)
        self._end(
            failureOf(RelayTimeout(f"no response to AUTH within {self.timeout:g} s"))
        )

    def _succeeded(self, outcome: RelayAuthorized) -> None:
        """
        Keep the Use-Path, schedule the refresh, tell the owner.
        """
        self.authorized = outcome
        seconds = getattr(self.clock, "seconds", None)
        now = seconds() if seconds is not None else 0.0
        self.expiresAt = None if outcome.expires is None else now + outcome.expires
        self._log.info(
            "MSRP relay {peer} authorized us: Use-Path {usePath}, expires {expires}",
            peer=str(self.relayURI),
            usePath=" ".join(str(uri) for uri in outcome.usePath),
            expires=outcome.expires,
        )
        delay = outcome.refreshDelay(self.refreshMargin)
        self._cancelRefresh()
        if delay is not None and not self._stopped:
            self._refreshTimer = self.clock.callLater(delay, self._refresh)
        if self.onAuthorized is not None:
            try:
                self.onAuthorized(outcome)
            except Exception:
                self._log.failure(
                    "onAuthorized failed for relay {peer}", peer=str(self.relayURI)
                )
        self._fire(outcome)

    def _end(self, reason: Failure) -> None:
        """
        An exchange failed: log it clearly and fail its L{Deferred}.
        """
        self._cancelTimer()
        if self._source is not None:
            self._source.abort()
        error = reason.value
        if isinstance(error, _CREDENTIAL_ERRORS):
            self._log.error(
                "MSRP relay {peer} refused AUTH as {username}: {error}; check"
                " {configKeys}",
                peer=str(self.relayURI),
                username=self.username,
                error=reason.getErrorMessage(),
                configKeys=CREDENTIALS_CONFIG,
            )
        else:
            self._log.error(
                "MSRP AUTH with relay {peer} failed: {error}",
                peer=str(self.relayURI),
                error=reason.getErrorMessage(),
            )
        self._fire(reason)

    # -- refresh -----------------------------------------------------------

    def _cancelRefresh(self) -> None:
        """
        Stop the refresh timer.
        """
        timer, self._refreshTimer = self._refreshTimer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _refresh(self) -> None:
        """
        AUTH again before the Use-Path expires (RFC 4976 section 4.6).
        """
        self._refreshTimer = None
        if self._stopped or self.connection is None:
            return
        self.authenticate().addErrback(self._refreshFailed)

    def _refreshFailed(self, reason: Failure) -> None:
        """
        A refresh failed (logged already): the old Use-Path stays until it
        expires; tell the owner.
        """
        if self.onFailed is not None:
            self.onFailed(reason)

    # -- IMSRPConnectionUser -----------------------------------------------

    def bind(self, connection: MSRPConnection, active: bool) -> None:
        """
        Never bound through the registry (the link attaches itself).

        @raise ValueError: Always.
        """
        raise ValueError("the relay link is not a session")

    def requestReceived(self, connection: MSRPConnection, request: MSRPRequest) -> None:
        """
        Nothing is addressed to the AUTH URI: 481.
        """
        connection.respond(request, 481)

    def connectionLost(self, connection: MSRPConnection, reason: Failure) -> None:
        """
        The relay connection is gone: a running exchange fails, the
        Use-Path is no longer usable.
        """
        if connection is not self.connection:
            return
        self.connection = None
        self._cancelRefresh()
        self._cancelTimer()
        self.authorized = None
        if self._exchanging:
            self._end(
                failureOf(
                    RelayLost(
                        f"connection to the relay lost: {reason.getErrorMessage()}"
                    )
                )
            )
        elif not self._stopped and self.onFailed is not None:
            self.onFailed(reason)

    def stop(self) -> None:
        """
        Stop refreshing and leave the connection (which closes once its
        sessions are gone).
        """
        self._stopped = True
        self._cancelRefresh()
        self._cancelTimer()
        connection = self.connection
        if connection is not None:
            connection.closeWhenIdle = True
            connection.detach(self)
