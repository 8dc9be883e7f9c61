# -*- test-case-name: tests.xmpp.test_room -*-
"""
What the gateway's MUC service emulation (L{stoxgw.xmpp.room}) asks of the
layer above when XMPP users act in a hosted room: L{IRoomBackend}, and its
answer to a join, L{JoinAccepted}.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet import defer
from zope.interface import Interface

from stoxgw.rooms.model import HistoryRequest


@dataclass(frozen=True, slots=True)
class JoinAccepted:
    """
    A backend's positive answer to L{IRoomBackend.joinRequested}.

    @ivar nick: the nick the room gave the user if it is not the one asked
        for (status 210; RFC 7702 section 5.6 auto-rename, R-014).
    @ivar created: the join created the room (status 201).
    """

    nick: str | None = None
    created: bool = False


class IRoomBackend(Interface):
    """
    What the room side calls when XMPP users act (the interworking layer
    implements it and talks to the SIP focus and MSRP switch).

    Addresses are strings: C{roomJID} is the room's bare JID (the model's
    L{Room.address}), C{realJID} the user's full JID.  A returned Deferred
    that fails with a L{StanzaError} is answered with that error (see
    L{mucError}); L{NotImplementedError} with C{feature-not-implemented};
    anything else is logged and answered with C{internal-server-error}.
    """

    def joinRequested(
        roomJID: str,
        nick: str,
        realJID: str,
        password: str | None,
        history: HistoryRequest | None,
    ) -> defer.Deferred[JoinAccepted | None]:
        """
        An XMPP user (one session) wants to enter the room with C{nick}
        (RFC 7700-enforced).  Called for every session, also when another
        session of the same user already holds the nick.  The room may not
        exist yet: the backend can L{MUCService.createRoom} it before
        answering.  Fire with L{JoinAccepted} or L{None} once the user is in
        (RFC 7702 section 5.1-5.3: INVITE, NICKNAME, SUBSCRIBE done).
        """

    def nickChangeRequested(
        roomJID: str, nick: str, newNick: str, realJID: str
    ) -> defer.Deferred[str | None]:
        """
        An occupant wants the nick C{newNick} (RFC 7702 section 5.6).  Fire
        with the nick the room gave (if not C{newNick}: status 210) or
        L{None}; fail with C{conflict} on MSRP 425.
        """

    def messageSent(
        roomJID: str,
        nick: str,
        realJID: str,
        body: str,
        messageID: str | None,
        chatState: str | None,
    ) -> defer.Deferred[None]:
        """
        An occupant sent a groupchat message (RFC 7702 section 5.5.1).  Fire
        once the switch accepted it; the room then reflects it.
        """

    def privateMessageSent(
        roomJID: str,
        nick: str,
        realJID: str,
        toNick: str,
        body: str,
        messageID: str | None,
        chatState: str | None,
    ) -> defer.Deferred[None]:
        """
        An occupant sent a private message to C{toNick} (RFC 7702 section
        5.5.2).
        """

    def chatStateSent(
        roomJID: str, nick: str, realJID: str, state: str, toNick: str | None
    ) -> None:
        """
        An occupant sent a standalone XEP-0085 chat state, to the room
        (C{toNick} L{None}) or to one participant.
        """

    def invitationSent(
        roomJID: str, nick: str, realJID: str, invitee: str, reason: str | None
    ) -> defer.Deferred[None]:
        """
        An occupant sent a mediated invitation (XEP-0045 7.8.2) for
        C{invitee} (a JID): fires once it is on its way, fails with a
        L{StanzaError} to return to the inviter.
        """

    def invitationDeclined(roomJID: str, realJID: str, reason: str | None) -> None:
        """
        C{realJID} declined an invitation to the room (XEP-0045 7.8.2).
        """

    def presenceChanged(
        roomJID: str, nick: str, realJID: str, show: str | None, status: str | None
    ) -> None:
        """
        An occupant changed its availability in the room.
        """

    def left(roomJID: str, nick: str, realJID: str, status: str | None) -> None:
        """
        An occupant session left the room (RFC 7702 section 5.8), or was
        dropped because its server bounced a stanza; C{status} is its exit
        text, if any.  Also called when a session's join succeeded after the
        session had already left.
        """
