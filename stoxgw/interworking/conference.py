# -*- test-case-name: tests.interworking.test_siptoxmpp -*-
"""
A MUC room as an RFC 4575 conference-info document, the way RFC 7702
section 6.2 shows it to a SIP user (R-213, R-217): one user per occupant,
its entity the occupant's in-room SIP identity C{sip:room@domain;gr=nick}
(R-207), C{display-text} and XCON C{nickname} the nick, the MUC role as
C{<roles>}, one connected C{message} endpoint, the real JID as
C{associated-aors} where the room shows it, and the room subject in
C{<conference-description><subject>}.

Because the entity is keyed on the nick (as RFC 7702's examples do), a
nick change is a deleted user and a new one in the partial NOTIFY that
the notifier computes from two such documents.
"""

from __future__ import annotations

from collections.abc import Iterable

from stoxgw.formats.conferenceinfo import (
    ConferenceDescription,
    ConferenceInfo,
    Endpoint,
    EndpointStatus,
    Media,
    URIEntry,
    URIs,
    User,
    Users,
)
from stoxgw.interworking.addressing import SIPAddress

#: MUC roles shown in conference-info C{<roles>} (R-213); C{none} gives
#: no roles.
CONFERENCE_ROLES = frozenset({"moderator", "participant", "visitor"})


def occupantUser(
    room: SIPAddress, nick: str, role: str | None, realJID: str | None = None
) -> User:
    """
    One occupant of C{room} as a conference-info user (R-213).

    @param realJID: The occupant's real JID, where the room shows it.
    """
    entity = room.aor.withGR(nick).uri()
    aors = None
    if realJID is not None:
        aors = URIs((URIEntry("xmpp:" + realJID),))
    return User(
        entity=entity,
        displayText=nick,
        associatedAORs=aors,
        roles=(role,) if role in CONFERENCE_ROLES else None,
        nickname=nick,
        endpoints=(
            Endpoint(
                entity=entity,
                status=EndpointStatus.CONNECTED,
                media=(Media(id="1", type="message"),),
            ),
        ),
    )


def roomConference(
    room: SIPAddress, users: Iterable[User], subject: str | None
) -> ConferenceInfo:
    """
    The full conference-info document of C{room} (no version: the
    notifier numbers it).
    """
    return ConferenceInfo(
        entity=room.aor.uri(),
        description=ConferenceDescription(subject=subject or None),
        users=Users(tuple(users)),
    )
