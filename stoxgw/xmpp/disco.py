# -*- test-case-name: tests.xmpp.test_disco -*-
"""
XEP-0030 service discovery for the gateway's two component domains, as
wokkel L{IDisco} providers next to a wokkel L{DiscoHandler} on each link.

  - L{GatewayDisco} (user domain): a gateway, category C{gateway}, type
    C{sip} (XEP-0030 registry).
  - L{RoomDisco} (room domain): a MUC service (XEP-0045 section 6.1:
    C{conference}/C{text}, feature C{http://jabber.org/protocol/muc}); its
    items are the public hosted rooms (6.2); each room answers with its
    room-type features and a C{muc#roominfo} form (6.3, 6.4, 15.5.4);
    occupant JIDs answer C{bad-request} to non-occupants (6.6) and
    C{service-unavailable} to occupants, since the request cannot be passed
    on to a SIP participant.

The gateway's users (the occupant side, L{stoxgw.xmpp.occupant}) answer
pings and disco#info at their real JIDs (XEP-0410, XEP-0045 section 6.7):
L{pingReply} and L{discoInfoReply} build those answers; L{FallbackAnswers}
answers what no handler of the user domain took (RFC 6120 section 8.2.3).

Use L{discoHandlers} to get the handlers for one link.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.logger import Logger
from twisted.words.protocols.jabber import error, jid, xmlstream
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish
from wokkel import data_form
from wokkel.disco import (
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    DiscoFeature,
    DiscoHandler,
    DiscoIdentity,
    DiscoItem,
)
from wokkel.iwokkel import IDisco
from wokkel.subprotocols import XMPPHandler
from zope.interface import implementer

from stoxgw.rooms.model import Anonymity, Room
from stoxgw.xmpp.component import LinkDown
from stoxgw.xmpp.room import MUCService
from stoxgw.xmpp.stanzas import (
    BAD_JID,
    NS_CHATSTATES,
    NS_MUC,
    NS_MUC_STABLE_ID,
    NS_PING,
    isHandled,
    markHandled,
    mucError,
)

NS_MUC_ROOMINFO = NS_MUC + "#roominfo"

#: The XEP-0410 feature: the room answers self-pings itself.
NS_MUC_SELF_PING = NS_MUC + "#self-ping-optimization"


#: Features the gateway's users answer in disco#info (XEP-0045 6.7).
USER_FEATURES = (NS_DISCO_INFO, NS_MUC, NS_PING, NS_CHATSTATES)


def _result(iq: domish.Element) -> domish.Element:
    response: domish.Element = xmlstream.toResponse(iq, "result")
    return response


def _refusal(iq: domish.Element, condition: str) -> domish.Element:
    response: domish.Element = error.StanzaError(condition).toResponse(iq)
    return response


def pingReply(
    iq: domish.Element, fromOurRoom: bool, fromOtherOccupant: bool, knownUser: bool
) -> domish.Element:
    """
    The answer of one of the gateway's users to a ping at its real JID
    (XEP-0410 section 3.2): result when the ping comes from a room it is
    in (the room checks its occupant), not-acceptable when it comes from an
    occupant of a room we hold where this real JID is not, result for any
    other ping to a user that has occupants, service-unavailable for a real
    JID that has none.

    @param fromOurRoom: the sender is a room this real JID is in.
    @param fromOtherOccupant: the sender is an occupant JID of a room the
        gateway has occupants in.
    @param knownUser: this real JID has occupants somewhere.
    """
    if fromOurRoom:
        return _result(iq)
    if fromOtherOccupant:
        return _refusal(iq, "not-acceptable")
    if knownUser:
        return _result(iq)
    return _refusal(iq, "service-unavailable")


def discoInfoReply(iq: domish.Element, knownUser: bool, node: str | None) -> domish.Element:
    """
    The disco#info of one of the gateway's users (XEP-0045 section 6.7: a
    client that speaks MUC, pings and chat states); service-unavailable for
    a real JID without occupants, item-not-found for any node.
    """
    if not knownUser:
        return _refusal(iq, "service-unavailable")
    if node:
        return _refusal(iq, "item-not-found")
    response = _result(iq)
    query = response.addElement((NS_DISCO_INFO, "query"))
    identity = query.addElement("identity")
    identity["category"] = "client"
    identity["type"] = "pc"
    identity["name"] = "stoxgw SIP user"
    for feature in USER_FEATURES:
        query.addElement("feature")["var"] = feature
    return response


class FallbackAnswers(XMPPHandler):
    """
    The last observer on the user domain's link: what no other handler
    took still gets an answer (RFC 6120 section 8.2.3 for IQs; errors for
    stanzas to occupants the gateway does not have, so that a server
    holding a ghost of ours drops it).

    @ivar domain: the user domain.
    """

    _log = Logger()

    def __init__(self, domain: str) -> None:
        super().__init__()
        self.domain = domain

    def connectionInitialized(self) -> None:
        """
        Watch the stream after every other handler.
        """
        self.xmlstream.addObserver("/iq[@type='get']", self._unhandledIQ, -10)
        self.xmlstream.addObserver("/iq[@type='set']", self._unhandledIQ, -10)
        self.xmlstream.addObserver("/message", self._unhandledMessage, -10)
        self.xmlstream.addObserver("/presence", self._unhandledPresence, -10)

    def _ours(self, element: domish.Element) -> bool:
        """
        Whether a stanza is addressed to the domain.
        """
        try:
            recipient = jid.internJID(element["to"])
        except (KeyError, *BAD_JID):
            return False
        return bool(recipient.host == self.domain)

    def _send(self, element: domish.Element) -> None:
        """
        Send a stanza.

        @raise LinkDown: the link is down and its queue full.
        """
        self.send(element)

    def _reply(self, element: domish.Element, condition: str) -> None:
        try:
            self._send(error.StanzaError(condition).toResponse(element))
        except LinkDown as e:
            self._log.warn("Cannot answer a stanza: {error}", error=e)

    def _unhandledIQ(self, iq: domish.Element) -> None:
        """
        An IQ get/set to our domain that no handler took: C{result} for a
        XEP-0199 ping of the domain, else C{service-unavailable} (RFC 6120
        section 8.2.3: every get and set gets an answer).
        """
        if isHandled(iq) or not self._ours(iq):
            return
        markHandled(iq)
        child = next(iter(iq.elements()), None)
        recipient = jid.internJID(iq["to"])
        if (
            iq.getAttribute("type") == "get"
            and child is not None
            and (child.uri, child.name) == (NS_PING, "ping")
            and not recipient.user
        ):
            try:
                self._send(xmlstream.toResponse(iq, "result"))
            except LinkDown as e:
                self._log.warn("Cannot answer a ping: {error}", error=e)
            return
        self._reply(iq, "service-unavailable")

    def _unhandledMessage(self, message: domish.Element) -> None:
        """
        A message to our domain that no handler took (a chat to a SIP
        user's JID, or a room's message to an occupant we no longer have):
        C{service-unavailable} to its sender, never silence (RFC 6120
        section 8.3; a room that still lists a ghost of ours removes it).
        """
        if isHandled(message) or not self._ours(message):
            return
        markHandled(message)
        if message.getAttribute("type") == "error":
            return
        self._log.info(
            "Message from {peer} to {to} refused: no such occupant or user",
            peer=message.getAttribute("from"),
            to=message.getAttribute("to"),
        )
        self._reply(message, "service-unavailable")

    def _unhandledPresence(self, presence: domish.Element) -> None:
        """
        Available presence from a room to an occupant we no longer have (a
        ghost the room kept, e.g. across its restart): an error back, so
        that the room removes it.  Unavailable, error and subscription
        presences get nothing (no loops; the gateway keeps no rosters).
        """
        if isHandled(presence) or not self._ours(presence):
            return
        markHandled(presence)
        if presence.getAttribute("type") not in (None, "available"):
            return
        sender = presence.getAttribute("from") or ""
        if "/" not in sender:
            return
        self._log.info(
            "Presence from {peer} to {to} refused: no such occupant",
            peer=sender,
            to=presence.getAttribute("to"),
        )
        self._reply(presence, "service-unavailable")


def roomFeatures(room: Room) -> list[str]:
    """
    The XEP-0045 section 6.4 / 15.2 features describing C{room}'s type.
    """
    settings = room.settings
    return [
        NS_MUC,
        NS_MUC_STABLE_ID,
        NS_MUC_SELF_PING,
        "muc_public" if settings.public else "muc_hidden",
        "muc_membersonly" if settings.membersOnly else "muc_open",
        "muc_moderated" if settings.moderated else "muc_unmoderated",
        (
            "muc_nonanonymous"
            if settings.anonymity is Anonymity.NON_ANONYMOUS
            else "muc_semianonymous"
        ),
        "muc_passwordprotected" if settings.passwordProtected else "muc_unsecured",
        "muc_persistent" if settings.persistent else "muc_temporary",
    ]


def roomInfoForm(room: Room) -> data_form.Form:
    """
    The XEP-0128 C{muc#roominfo} form (XEP-0045 section 15.5.4): name,
    description, subject, number of occupants.
    """
    subject = room.subject.text if room.subject is not None else ""
    fields = [
        data_form.Field(
            var="muc#roomconfig_roomname", value=room.settings.name or "", label="Name"
        ),
        data_form.Field(
            var="muc#roominfo_description",
            value=room.settings.description,
            label="Description",
        ),
        data_form.Field(
            var="muc#roominfo_subject", value=subject, label="Current Subject"
        ),
        data_form.Field(
            var="muc#roominfo_occupants",
            value=str(len(room.participants)),
            label="Number of occupants",
        ),
    ]
    return data_form.Form("result", formNamespace=NS_MUC_ROOMINFO, fields=fields)


@implementer(IDisco)
class GatewayDisco(XMPPHandler):
    """
    Disco for the user domain: the domain is a SIP gateway.

    @ivar domain: the user domain.
    @ivar name: the identity's human-readable name.
    """

    def __init__(self, domain: str, name: str = "SIP/MSRP gateway") -> None:
        super().__init__()
        self.domain = domain
        self.name = name

    def getDiscoInfo(
        self, requestor: JID, target: JID, nodeIdentifier: str = ""
    ) -> list[Any]:
        if target.host != self.domain or target.user or nodeIdentifier:
            return []
        return [
            DiscoIdentity("gateway", "sip", self.name),
            DiscoFeature(NS_DISCO_INFO),
            DiscoFeature(NS_DISCO_ITEMS),
        ]

    def getDiscoItems(
        self, requestor: JID, target: JID, nodeIdentifier: str = ""
    ) -> list[Any]:
        return []


@implementer(IDisco)
class RoomDisco(XMPPHandler):
    """
    Disco for the room domain, from the rooms of a L{MUCService}.

    @ivar service: the room side.
    @ivar name: the service identity's human-readable name.
    """

    def __init__(self, service: MUCService, name: str = "SIP chat rooms") -> None:
        super().__init__()
        self.service = service
        self.name = name

    def _room(self, target: JID) -> Room:
        room = self.service.getRoom(target.userhost())
        if room is None:
            raise mucError("item-not-found")
        return room

    def _occupantJID(self, requestor: JID, target: JID) -> None:
        """
        XEP-0045 section 6.6: a disco request to an occupant JID.
        """
        if self.service.isOccupant(target.userhost(), requestor) is None:
            raise mucError("bad-request")
        # An occupant may have the request passed on; a SIP participant
        # cannot answer it.
        raise mucError("service-unavailable")

    def getDiscoInfo(
        self, requestor: JID, target: JID, nodeIdentifier: str = ""
    ) -> list[Any]:
        forService, forRoom = self._serviceInfo, self._roomInfo
        return self._answer(requestor, target, nodeIdentifier, forService, forRoom)

    def getDiscoItems(
        self, requestor: JID, target: JID, nodeIdentifier: str = ""
    ) -> list[Any]:
        forService, forRoom = self._serviceItems, self._roomItems
        return self._answer(requestor, target, nodeIdentifier, forService, forRoom)

    def _answer(
        self,
        requestor: JID,
        target: JID,
        nodeIdentifier: str,
        forService: Callable[[], list[Any]],
        forRoom: Callable[[Room, JID], list[Any]],
    ) -> list[Any]:
        """
        Route a disco#info or disco#items request by its target: nothing for
        another domain or a node, the service JID, a room JID, or an occupant
        JID (XEP-0045 section 6.6, which never gets an answer of its own).

        @param requestor: The requesting entity.
        @param target: The JID the request is addressed to.
        @param nodeIdentifier: The requested node.
        @param forService: The answer for the service JID.
        @param forRoom: The answer for a room JID, given the room and target.
        @return: The disco items or info elements.
        @raise error.StanzaError: C{item-not-found} for an unknown room; as
            L{_occupantJID} for an occupant JID.
        """
        if target.host != self.service.domain or nodeIdentifier:
            return []
        if not target.user:
            return forService()
        room = self._room(target)
        if target.resource:
            self._occupantJID(requestor, target)
        return forRoom(room, target)

    def _serviceInfo(self) -> list[Any]:
        return [
            DiscoIdentity("conference", "text", self.name),
            DiscoFeature(NS_DISCO_INFO),
            DiscoFeature(NS_DISCO_ITEMS),
            DiscoFeature(NS_MUC),
            DiscoFeature(NS_PING),
        ]

    def _roomInfo(self, room: Room, target: JID) -> list[Any]:
        info: list[Any] = [
            DiscoIdentity("conference", "text", room.settings.name or target.user),
            DiscoFeature(NS_DISCO_INFO),
            DiscoFeature(NS_DISCO_ITEMS),
        ]
        info.extend(DiscoFeature(feature) for feature in roomFeatures(room))
        info.append(roomInfoForm(room))
        return info

    def _serviceItems(self) -> list[Any]:
        return [
            DiscoItem(
                JID(room.address), name=room.settings.name or JID(room.address).user
            )
            for room in self.service.rooms
            if room.settings.public
        ]

    def _roomItems(self, room: Room, target: JID) -> list[Any]:
        # XEP-0045 section 6.5: a room MAY list its occupants; SIP rooms
        # are semi-anonymous by default, so it lists none.
        return []


class _DiscoHandler(DiscoHandler):
    """
    wokkel's disco handler, minus the requests another handler on the same
    stream has already answered (wokkel's handlers do not look at the
    C{handled} flag): the occupant service answers disco#info sent to the
    real JIDs of the gateway's users itself (XEP-0045 6.7).
    """

    def handleRequest(self, iq: Any) -> None:
        if getattr(iq, "handled", False):
            return
        super().handleRequest(iq)


def discoHandlers(provider: XMPPHandler) -> list[XMPPHandler]:
    """
    The handlers to add to one link's stream manager: wokkel's
    L{DiscoHandler} (skipping IQs already handled) and the given provider.
    """
    return [_DiscoHandler(), provider]


__all__ = [
    "GatewayDisco",
    "NS_MUC_ROOMINFO",
    "RoomDisco",
    "discoHandlers",
    "roomFeatures",
    "roomInfoForm",
]
