# -*- test-case-name: tests.focus.test_routing -*-
"""
Tests for L{stoxgw.focus.routing}: requests for the native rooms go to the
focus, the others to the RFC 7702 section 6 bridge, through one UA.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stoxgw.chat.session import IChatOfferHandler
from stoxgw.focus.focus import Focus
from stoxgw.focus.room import RoomPolicy
from stoxgw.focus.routing import ConferenceRouter, OfferRouter, ReferRouter
from stoxgw.sip.refer import IReferHandler, ReferAgent
from stoxgw.sip.subscription import (
    ConferenceNotifier,
    ConferencePackage,
    IEventPackage,
    NotifierSubscription,
    NotifyBody,
    SIPEvents,
    SubscriptionReason,
)
from stoxgw.formats.conferenceinfo import ConferenceDescription, ConferenceInfo, Users
from stoxgw.sip.uri import NameAddr, SIPURI, contactIsFocus
from tests.chat.test_session import HOST_B, Network
from tests.focus.test_focus import Refusals


@implementer(IEventPackage)
class Bridged(ConferencePackage):
    """
    The bridge's conference package stand-in: serves C{muc.example}'s
    room and records what it is asked.
    """

    def __init__(self) -> None:
        self.notifier = ConferenceNotifier(
            ConferenceInfo(
                "sip:room@muc.example",
                description=ConferenceDescription(),
                users=Users(),
            )
        )
        super().__init__(
            lambda request: self.notifier if request.uri.host == "muc.example" else None
        )
        self.calls: list[str] = []

    def authorize(self, request: Any) -> Any:
        """
        Record, then decide as the package does.
        """
        self.calls.append("authorize")
        return super().authorize(request)

    def subscriptionStarted(self, subscription: NotifierSubscription) -> None:
        """
        Record, then start as the package does.
        """
        self.calls.append("started")
        super().subscriptionStarted(subscription)

    def fullState(self, subscription: NotifierSubscription) -> NotifyBody | None:
        """
        Record, then give the state as the package does.
        """
        self.calls.append("fullState")
        return super().fullState(subscription)

    def subscriptionEnded(
        self, subscription: NotifierSubscription, reason: SubscriptionReason
    ) -> None:
        """
        Record, then end as the package does.
        """
        self.calls.append("ended")
        super().subscriptionEnded(subscription, reason)


class RouterTests(SynchronousTestCase):
    """
    The three routers.
    """

    def setUp(self) -> None:
        """
        The focus behind the routers on host B; a subscriber on host A.
        """
        self.net = Network()
        ua = self.net.a.ua
        ua.settings = dataclasses.replace(
            ua.settings,
            outboundProxy=SIPURI("sip", HOST_B, port=5060, parameters=(("lr", None),)),
        )
        self.focus = Focus(
            self.net.clock,
            self.net.b.ua,
            self.net.b.endpoint,
            RoomPolicy("chat.example"),
        )
        self.bridge = Refusals()
        self.bridged = Bridged()
        self.offers = OfferRouter(self.focus, self.bridge)
        self.refers = ReferRouter(self.focus, self.bridge)
        self.conferences = ConferenceRouter(self.focus, self.bridged)
        self.net.b.acceptor.offers = self.offers
        self.events = SIPEvents(self.net.b.ua)
        self.events.addPackage(self.conferences)
        ReferAgent(self.events, self.refers)
        self.client = SIPEvents(self.net.a.ua)
        self.clientRefers = ReferAgent(self.client)

    def test_interfaces(self) -> None:
        """
        Each router provides the interface of what it stands in front of.
        """
        self.assertTrue(verifyObject(IChatOfferHandler, self.offers))
        self.assertTrue(verifyObject(IReferHandler, self.refers))
        self.assertTrue(verifyObject(IEventPackage, self.conferences))

    def test_subscriptionsToTheBridge(self) -> None:
        """
        A subscription to another domain is the bridge's package's, from
        authorization to its end; its 200's Contact is the bridge's (no
        C{isfocus} from the focus's router).
        """
        subscription = self.client.subscribe(
            SIPURI.fromString("sip:room@muc.example"),
            "conference",
            600,
            fromAddress=NameAddr(SIPURI.fromString("sip:alice@example.com")),
        )
        self.net.pump()
        self.successResultOf(subscription.established)
        [ok] = self.net.responses("SUBSCRIBE")
        self.assertFalse(contactIsFocus(ok.header("Contact")))
        subscription.unsubscribe()
        self.net.pump()
        self.assertEqual(
            self.bridged.calls,
            ["authorize", "started", "fullState", "fullState", "ended"],
        )

    def test_refersToTheBridge(self) -> None:
        """
        A REFER to another domain is the bridge's.
        """
        d = self.clientRefers.refer(
            SIPURI.fromString("sip:room@muc.example"),
            NameAddr(SIPURI.fromString("sip:carol@example.com")),
            fromAddress=NameAddr(SIPURI.fromString("sip:alice@example.com")),
        )
        self.net.pump()
        self.failureResultOf(d)
        self.assertEqual(len(self.bridge.refers), 1)

    def test_ownsByTo(self) -> None:
        """
        A proxy that put the gateway's address in the Request-URI: the To
        still names the room.
        """
        from stoxgw.sip.message import SIPRequest

        request = SIPRequest(
            "SUBSCRIBE",
            SIPURI("sip", "192.0.2.2", "room"),
        )
        request = (
            request.addHeader("To", "<sip:room@chat.example>")
            .addHeader("From", "<sip:alice@example.com>;tag=1")
            .addHeader("Call-ID", "c")
        )
        self.assertTrue(self.focus.owns(request))
