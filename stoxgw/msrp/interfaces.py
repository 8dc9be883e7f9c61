# -*- test-case-name: tests.msrp.test_protocol,tests.msrp.test_session -*-
"""
What an L{stoxgw.msrp.protocol.MSRPConnection} calls: the sessions bound to
it (L{IMSRPConnectionUser}) and the registry it asks about sessions it has
not seen yet (L{IMSRPSessionRegistry}); mypy (with mypy-zope) reads them
as the static types too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.python.failure import Failure
from zope.interface import Attribute, Interface

from stoxgw.msrp.message import MSRPRequest
from stoxgw.msrp.uri import MSRPURI

if TYPE_CHECKING:  # pragma: no cover
    from stoxgw.msrp.protocol import MSRPConnection

__all__ = [
    "IMSRPConnectionUser",
    "IMSRPSessionRegistry",
]


class IMSRPConnectionUser(Interface):
    """
    What an L{MSRPConnection} calls on a session bound to it.
    """

    localURI = Attribute("The session's own MSRP URI (an L{MSRPURI}).")
    connection = Attribute("The L{MSRPConnection} the session is bound to, or L{None}.")

    def bind(connection: MSRPConnection, active: bool) -> None:
        """
        Bind the session to C{connection}; the session must call
        L{MSRPConnection.attach}.

        @param connection: The connection.
        @param active: Whether this side opened the connection (then it sends
            a bodiless SEND at once, R-157).
        """

    def requestReceived(connection: MSRPConnection, request: MSRPRequest) -> None:
        """
        A request for this session arrived (its method is known).

        @param connection: The connection it arrived on.
        @param request: The request.
        """

    def connectionLost(connection: MSRPConnection, reason: Failure) -> None:
        """
        The connection the session is bound to was lost (R-145).

        @param connection: The connection.
        @param reason: Why.
        """


class IMSRPSessionRegistry(Interface):
    """
    What an L{MSRPConnection} asks about sessions it has not seen yet (the
    L{stoxgw.msrp.endpoint.MSRPEndpoint}).
    """

    def sessionFor(uri: MSRPURI) -> IMSRPConnectionUser | None:
        """
        Look up a session by its local URI (RFC 4975 section 6.1 comparison).

        @param uri: The To-Path URI of a received request.
        @return: The session, or L{None}.
        """

    def connectionOpened(connection: MSRPConnection) -> None:
        """
        A connection was made (accepted or opened).

        @param connection: The connection.
        """

    def connectionClosed(connection: MSRPConnection) -> None:
        """
        A connection was lost; its sessions have been told.

        @param connection: The connection.
        """


