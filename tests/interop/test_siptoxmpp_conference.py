# -*- test-case-name: tests.interop.test_siptoxmpp_conference -*-
"""
Interop, RFC 7702 section 6.2 end to end: the conference event package of
L{SIPToXMPP} (L{RoomConferencePackage}) against a real Prosody MUC.

The set-up is L{SIPToXMPPProsodyTests}' (gateway and SIP user on the real
reactor, Prosody started per test, slixmpp in its own thread); in addition
the gateway's UA serves C{Event: conference} and the SIP user's UA
subscribes.  Every wait is bounded.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from twisted.internet import defer
from zope.interface import implementer

from stoxgw.chat.session import ChatSession
from stoxgw.formats.conferenceinfo import (
    CONFERENCE_INFO_CONTENT_TYPE,
    ConferenceInfo,
    ElementState,
)
from stoxgw.interworking.siptoxmpp import RoomConferencePackage
from stoxgw.sip.message import SIPRequest
from stoxgw.sip.subscription import (
    ClientSubscription,
    ConferenceWatcher,
    ISubscriptionHandler,
    SIPEvents,
    SubscriptionReason,
    SubscriptionStatus,
)
from stoxgw.sip.uri import SIPURI, parseNameAddr
from tests.interop import test_siptoxmpp_prosody as prosody
from tests.interop.test_occupant_servers import bounded, until


@implementer(ISubscriptionHandler)
class Recorder:
    """
    The SIP user's subscription handler: every NOTIFY's Subscription-State
    and document, merged by a L{ConferenceWatcher}.
    """

    def __init__(self) -> None:
        self.states: list[str] = []
        self.documents: list[ConferenceInfo] = []
        self.watcher = ConferenceWatcher()
        self.ended: list[SubscriptionReason] = []

    def notifyReceived(self, subscription: ClientSubscription, request: SIPRequest) -> None:
        self.states.append(request.header("Subscription-State") or "")
        if request.body:
            self.documents.append(ConferenceInfo.parse(request.body))
        self.watcher.notifyReceived(subscription, request)

    def subscriptionEnded(
        self, subscription: ClientSubscription, reason: SubscriptionReason
    ) -> None:
        self.ended.append(reason)


class SIPToXMPPConferenceProsodyTests(prosody.SIPToXMPPProsodyTests):
    """
    R-213, R-217 against Prosody's MUC.
    """

    def setUp(self) -> defer.Deferred[None]:
        # The parent set-up keeps its UAs in locals: record them as they are
        # made (the gateway's first, then the SIP user's).
        self.userAgents: list[Any] = []
        original = prosody.SIPUserAgent

        def recording(*args: Any, **kwargs: Any) -> Any:
            ua = original(*args, **kwargs)
            self.userAgents.append(ua)
            return ua

        self.patch(prosody, "SIPUserAgent", recording)
        d = super().setUp()
        gatewayUA, userUA = self.userAgents
        self.notifier = SIPEvents(gatewayUA)
        self.notifier.addPackage(RoomConferencePackage(self.bridge))
        self.subscriber = SIPEvents(userUA)
        return d

    def test_enterTalkLeave(self) -> None:
        pass

    test_enterTalkLeave.skip = (  # type: ignore[attr-defined]
        "run in tests.interop.test_siptoxmpp_prosody"
    )

    def unsubscribe(self, subscription: ClientSubscription) -> Any:
        """
        Cleanup: end the subscription if a failed test left it running.
        """
        if subscription.status == SubscriptionStatus.TERMINATED:
            return None
        return bounded(subscription.unsubscribe(), 5).addErrback(lambda _: None)

    @defer.inlineCallbacks
    def test_conference(self) -> Generator[defer.Deferred[Any], Any, None]:
        """
        Romeo (SIP) and carol (slixmpp) in room@muc.xmpp.test: Romeo's
        SUBSCRIBE to the room gets a full document with both users; carol
        leaving gives a partial deleting her; Romeo hanging up terminates
        the subscription.
        """
        carol = prosody.WatchingUser(
            f"carol@{self.server.domain}/slix", "carolpass", self.server.c2sPort
        )
        self.addCleanup(carol.stop)
        yield carol.connect()
        yield carol.join(self.room, "carol")

        romeo = prosody.SIPUser()
        session: ChatSession = yield bounded(
            self.initiator.startChat(
                SIPURI.fromString(f"sip:{self.room}"),
                parseNameAddr('"Romeo" <sip:romeo@example.org>;tag=r1'),
                romeo,
                acceptTypes=("message/cpim",),
                acceptWrappedTypes=("text/plain",),
                chatroom=("nickname", "private-messages"),
            ),
            20,
        )
        yield until(
            lambda: ("available", f"{self.room}/Romeo") in carol.seen(),
            10,
            "carol to see Romeo enter",
        )

        recorder = Recorder()
        subscription = self.subscriber.subscribe(
            SIPURI.fromString(f"sip:{self.room}"),
            "conference",
            600,
            accept=(CONFERENCE_INFO_CONTENT_TYPE,),
            handler=recorder,
            fromAddress=parseNameAddr('"Romeo" <sip:romeo@example.org>'),
        )
        self.addCleanup(self.unsubscribe, subscription)
        yield bounded(subscription.established, 10)
        yield until(lambda: recorder.documents, 10, "the full conference-info")
        carolURI = f"sip:{self.room};gr=carol"
        romeoURI = f"sip:{self.room};gr=Romeo"
        full = recorder.documents[0]
        self.assertEqual(full.entity, f"sip:{self.room}")
        self.assertEqual(full.state, ElementState.FULL)
        self.assertEqual(
            sorted((u.entity, u.state) for u in full.userList),
            sorted([(carolURI, ElementState.FULL), (romeoURI, ElementState.FULL)]),
        )
        self.assertEqual(subscription.status, SubscriptionStatus.ACTIVE)

        async def leave() -> None:
            carol.client.plugin["xep_0045"].leave_muc(self.room, "carol")

        yield carol.run(leave())
        yield until(
            lambda: len(recorder.documents) > 1, 10, "the partial conference-info"
        )
        partial = recorder.documents[-1]
        self.assertEqual(partial.state, ElementState.PARTIAL)
        self.assertEqual(partial.version, full.version + 1)
        self.assertEqual(
            [(u.entity, u.state) for u in partial.userList],
            [(carolURI, ElementState.DELETED)],
        )
        state = recorder.watcher.state
        assert state is not None
        self.assertEqual([u.entity for u in state.userList], [romeoURI])

        session.end()
        yield until(lambda: recorder.ended, 10, "the subscription to end")
        self.assertTrue(recorder.states[-1].startswith("terminated"))
        self.assertEqual(recorder.ended, [SubscriptionReason.NORESOURCE])
        self.assertEqual(subscription.status, SubscriptionStatus.TERMINATED)
        yield until(
            lambda: not self.service.occupants(), 10, "the gateway to forget Romeo"
        )
