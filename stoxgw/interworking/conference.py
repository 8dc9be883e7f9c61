# -*- test-case-name: tests.interworking.test_siptoxmpp -*-
"""
Conference-info (RFC 4575) and MUC rosters, both ways.

Gateway B: a MUC room as an RFC 4575 conference-info document, the way RFC 7702
section 6.2 shows it to a SIP user (R-213, R-217): one user per occupant,
its entity the occupant's in-room SIP identity C{sip:room@domain;gr=nick}
(R-207), C{display-text} and XCON C{nickname} the nick, the MUC role as
C{<roles>}, one connected C{message} endpoint, the real JID as
C{associated-aors} where the room shows it, and the room subject in
C{<conference-description><subject>}.

Because the entity is keyed on the nick (as RFC 7702's examples do), a
nick change is a deleted user and a new one in the partial NOTIFY that
the notifier computes from two such documents.

Gateway A: a focus's conference-info document as the roster of the MUC
room the gateway emulates (RFC 7702 sections 5.3-5.4, Tables 2 and 3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from stoxgw.formats.conferenceinfo import (
    ConferenceDescription,
    DisconnectionMethod,
    ConferenceInfo,
    ElementState,
    Endpoint,
    EndpointStatus,
    Media,
    URIEntry,
    URIs,
    User,
    Users,
)
from stoxgw.interworking.addressing import (
    AddressError,
    SIPAddress,
    parseSIPIdentity,
    sipToJID,
)
from stoxgw.rooms.model import Affiliation, Participant, Role
from stoxgw.rooms.nicks import InvalidNickname, comparisonKey

#: MUC roles shown in conference-info C{<roles>} (R-213); C{none} gives
#: no roles.
CONFERENCE_ROLES = frozenset({"moderator", "participant", "visitor"})


def occupantUser(
    room: SIPAddress,
    nick: str,
    role: str | None,
    realJID: str | None = None,
    removed: DisconnectionMethod | None = None,
) -> User:
    """
    One occupant of C{room} as a conference-info user (R-213).

    @param realJID: The occupant's real JID, where the room shows it.
    @param removed: How the occupant was removed (RFC 4575 section
        5.7.3): its endpoint is then C{disconnected} with this
        C{disconnection-method}.
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
                status=EndpointStatus.CONNECTED
                if removed is None
                else EndpointStatus.DISCONNECTED,
                disconnectionMethod=removed,
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


# -- the other way: a focus's conference-info as a MUC roster (Gateway A) --


def nickOfUser(user: User) -> str | None:
    """
    The nick of a conference-info user (RFC 7702 section 5.4 Table 2 and
    section 7): its XCON C{nickname}, else its C{display-text}, else the
    C{gr} of its entity (the RFC 7702 convention C{room;gr=nick}), else the
    user part of its entity.
    """
    for candidate in (user.nickname, user.displayText):
        if candidate and candidate.strip():
            return candidate.strip()
    try:
        address = parseSIPIdentity(user.entity)
    except AddressError:
        return None
    return address.gr or address.user


def addressesOfUser(user: User) -> tuple[str, ...]:
    """
    The URIs that name a user: its entity, its endpoints' entities and its
    C{associated-aors} (what a switch may put in a CPIM From).
    """
    uris = [user.entity]
    uris.extend(endpoint.entity for endpoint in user.endpoints if endpoint.entity)
    if user.associatedAORs is not None:
        uris.extend(entry.uri for entry in user.associatedAORs.entries)
    return tuple(uris)


def realJIDOfUser(user: User) -> str | None:
    """
    The user's real address as a JID, from C{associated-aors} (RFC 7702
    Table 2): an C{xmpp:} URI as it is, a SIP URI mapped by RFC 7247
    section 6.4; L{None} when none is given (a semi-anonymous room).
    """
    if user.associatedAORs is None:
        return None
    for entry in user.associatedAORs.entries:
        uri = entry.uri
        scheme = uri.split(":", 1)[0].lower()
        try:
            if scheme == "xmpp":
                return uri[5:].lstrip("/").split("?", 1)[0] or None
            if scheme in ("sip", "sips"):
                return str(sipToJID(parseSIPIdentity(uri).aor))
        except AddressError:
            continue
    return None


def rosterOfConference(
    document: ConferenceInfo, isLocal: Callable[[User, str], bool]
) -> list[tuple[str, Participant]]:
    """
    The participants of a focus's full conference-info document, as the
    MUC room shows them (R-016, R-017: role participant, affiliation
    none), with the entity each comes from.  Users that C{isLocal} says are
    the gateway's own XMPP users (given the user and its nick) are left
    out; deleted and disconnected users (L{isDisconnected}) too.  Two users with the same nick (display-text is
    not unique, RFC 7702 section 7) are told apart as C{nick_2}, ...
    """
    roster: list[tuple[str, Participant]] = []
    taken: set[str] = set()
    for user in document.userList:
        if user.state is ElementState.DELETED or isDisconnected(user):
            continue
        nick = nickOfUser(user)
        if nick is None or isLocal(user, nick):
            continue
        chosen, attempt = nick, 1
        while True:
            try:
                key = comparisonKey(chosen)
            except InvalidNickname:
                key = None
                break
            if key not in taken:
                break
            attempt += 1
            chosen = f"{nick}_{attempt}"
        if key is None:
            continue
        taken.add(key)
        roster.append(
            (
                user.entity,
                Participant(
                    nick=chosen,
                    displayName=user.displayText
                    if user.displayText and user.displayText != chosen
                    else None,
                    role=Role.PARTICIPANT,
                    affiliation=Affiliation.NONE,
                    realAddress=realJIDOfUser(user),
                ),
            )
        )
    return roster


def isDisconnected(user: User) -> bool:
    """
    Whether every endpoint of a user is C{disconnected} (RFC 4575 section
    5.7.3: no longer in the conference, although the focus still lists the
    user, e.g. with its disconnection-method before deleting it).  A user
    without endpoints is not.
    """
    return bool(user.endpoints) and all(
        endpoint.status is EndpointStatus.DISCONNECTED for endpoint in user.endpoints
    )


def disconnectionOfUser(user: User) -> DisconnectionMethod | None:
    """
    The disconnection-method of a disconnected user's endpoints (the first
    one given), or L{None}.
    """
    for endpoint in user.endpoints:
        if endpoint.disconnectionMethod is not None:
            return endpoint.disconnectionMethod
    return None


def subjectOfConference(document: ConferenceInfo) -> str | None:
    """
    The room subject of a conference-info document (R-019), if any.
    """
    description = document.description
    return None if description is None else description.subject
