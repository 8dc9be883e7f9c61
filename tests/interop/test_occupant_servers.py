# -*- test-case-name: tests.interop.test_occupant_servers -*-
"""
Interop: the gateway's MUC occupants (L{stoxgw.xmpp.occupant}) in rooms of a
real Prosody (rooms locked until configured) and a real ejabberd, with a
slixmpp client as the XMPP user in the same rooms.

How the two event loops share one process: trial runs these tests on its
own global reactor (whatever reactor it was started with), which carries
the gateway side: a L{ComponentLink} for C{sip.xmpp.test} and an
L{OccupantService} on it.  slixmpp runs in a thread of its own with its own
asyncio loop.  Calls into slixmpp go through
C{asyncio.run_coroutine_threadsafe} and come back to the reactor with
C{callFromThread}; what slixmpp receives is kept in a list under a lock and
polled from the reactor.  Installing C{asyncioreactor} instead would need
C{trial --reactor=asyncio} on the command line (trial installs its reactor
before importing test modules), so the thread is the robust choice: the
tests run under any reactor.

Each test starts and stops its own server; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import threading
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

import stoxgw.xmpp  # noqa: F401  (installs the compat names before wokkel loads)

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase
from twisted.words.protocols.jabber.jid import JID

from stoxgw.xmpp.component import ComponentLink
from stoxgw.xmpp.occupant import (
    JoinResult,
    LeftReason,
    OccupantService,
    OccupantState,
    SelfPingResult,
)
from tests.interop.ejabberd import Ejabberd
from tests.interop.peers import PeerUnavailable, Prosody
from tests.xmpp.test_occupant import RecordingHandler

T = TypeVar("T")

USER_DOMAIN = "sip.xmpp.test"
ALICE = JID(f"alice@{USER_DOMAIN}/a")
BOB = JID(f"bob@{USER_DOMAIN}/b")
DAVE = JID(f"dave@{USER_DOMAIN}/d")


class SlixmppUser:
    """
    A slixmpp client in a thread with its own asyncio loop.

    @ivar received: (type, from, body) of every message with a body.
    """

    def __init__(self, jid: str, password: str, port: int) -> None:
        try:
            import slixmpp
        except ImportError:
            raise SkipTest("slixmpp is not installed") from None
        self._slixmpp = slixmpp
        self.jid = jid
        self.password = password
        self.port = port
        self.received: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="slixmpp", daemon=True)
        self.thread.start()
        self.client: Any = None

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 15.0) -> defer.Deferred[T]:
        """
        Run C{coroutine} on the slixmpp loop.

        @return: a Deferred (on the reactor) for its result, failing with
            L{TimeoutError} after C{timeout} seconds.
        """
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coroutine, timeout), self.loop)
        d: defer.Deferred[T] = defer.Deferred()

        def done(f: concurrent.futures.Future[T]) -> None:
            try:
                result = f.result()
            except BaseException as e:
                reactor.callFromThread(d.errback, e)  # type: ignore[attr-defined]
            else:
                reactor.callFromThread(d.callback, result)  # type: ignore[attr-defined]

        future.add_done_callback(done)
        return d

    def messages(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return list(self.received)

    def _onMessage(self, message: Any) -> None:
        if message["body"]:
            with self._lock:
                self.received.append((message["type"], str(message["from"]), message["body"]))

    async def _connect(self) -> None:
        client = self._slixmpp.ClientXMPP(
            self.jid,
            self.password,
            plugin_config={"feature_mechanisms": {"unencrypted_plain": True, "unencrypted_scram": True}},
        )
        client.enable_starttls = False
        client.enable_direct_tls = False
        client.enable_plaintext = True
        client.register_plugin("xep_0045")
        client.register_plugin("xep_0199")
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        client.add_event_handler("session_start", lambda _: started.done() or started.set_result(None))
        client.add_event_handler("failed_auth", lambda _: started.done() or started.set_exception(
            RuntimeError("slixmpp authentication failed")))
        client.add_event_handler("message", self._onMessage)
        client.add_event_handler("groupchat_message", self._onMessage)
        self.client = client
        client.connect("127.0.0.1", self.port)
        await started
        client.send_presence()

    def connect(self) -> defer.Deferred[None]:
        """
        Connect and authenticate.
        """
        return self.run(self._connect())

    async def _join(self, room: str, nick: str) -> None:
        await self.client.plugin["xep_0045"].join_muc_wait(JID(room).full(), nick, maxstanzas=0, timeout=10)

    def join(self, room: str, nick: str) -> defer.Deferred[None]:
        """
        Join C{room} as C{nick}.
        """
        return self.run(self._join(room, nick))

    async def _send(self, to: str, body: str, messageType: str) -> None:
        self.client.send_message(mto=self._slixmpp.JID(to), mbody=body, mtype=messageType)

    def send(self, to: str, body: str, messageType: str) -> defer.Deferred[None]:
        """
        Send a message.
        """
        return self.run(self._send(to, body, messageType))

    def stop(self) -> None:
        """
        Disconnect (bounded) and end the loop and its thread.
        """
        async def shutdown() -> None:
            if self.client is not None:
                self.client.disconnect()
                try:
                    await asyncio.wait_for(asyncio.shield(self.client.disconnected), 3)
                except Exception:
                    pass
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(5)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        # Drop the client while its loop is still open: slixmpp's __del__
        # schedules on it.
        self.client = None
        gc.collect()
        if not self.thread.is_alive():
            self.loop.close()


def until(condition: Callable[[], T], timeout: float, what: str) -> defer.Deferred[T]:
    """
    Poll C{condition} on the reactor every 50 ms.

    @return: fires with its first true value; fails after C{timeout} s.
    """

    @defer.inlineCallbacks
    def poll() -> Generator[defer.Deferred[Any], Any, T]:
        deadline = reactor.seconds() + timeout  # type: ignore[attr-defined]
        while True:
            value = condition()
            if value:
                return value
            if reactor.seconds() > deadline:  # type: ignore[attr-defined]
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            yield deferLater(reactor, 0.05, lambda: None)  # type: ignore[arg-type]

    return poll()


def bounded(d: defer.Deferred[T], timeout: float = 15.0) -> defer.Deferred[T]:
    """
    C{d}, cancelled (failing with a timeout) after C{timeout} seconds.
    """
    return d.addTimeout(timeout, reactor)  # type: ignore[arg-type]


def failureOf(d: defer.Deferred[Any], timeout: float = 15.0) -> defer.Deferred[list[Failure]]:
    """
    @return: a Deferred firing with a one-element list holding the
        L{Failure} C{d} fails with (within C{timeout} seconds; a Failure
        cannot be a Deferred's result itself); it fails if C{d} succeeds.
    """

    def succeeded(result: object) -> Failure:
        raise AssertionError(f"expected a failure, got {result!r}")

    def failed(failure: Failure) -> list[Failure]:
        return [failure]

    return bounded(d, timeout).addCallbacks(succeeded, failed)


class OccupantServerTestsMixin:
    """
    The tests, for one server class (see the subclasses).
    """

    timeout = 120

    def makeServer(self) -> Any:
        raise NotImplementedError()

    def setUp(self) -> defer.Deferred[None]:
        try:
            self.server = self.makeServer()
        except PeerUnavailable as e:
            raise SkipTest(str(e)) from None
        self.server.start()
        self.addCleanup(self.server.stop)  # type: ignore[attr-defined]
        self.server.register("carol", "carolpass")
        self.room = JID(f"room@{self.server.mucDomain}")
        self.handler = RecordingHandler()
        self.link = ComponentLink(
            reactor, USER_DOMAIN, "127.0.0.1", self.server.componentPort, self.server.secret,
            maxDelay=2.0,
        )
        self.service = OccupantService(self.handler, reactor, USER_DOMAIN, timeout=15.0)  # type: ignore[arg-type]
        self.service.attach(self.link)
        self.link.startService()
        self.addCleanup(self.link.stopService)  # type: ignore[attr-defined]
        return until(lambda: self.link.up, 15, "the component link").addCallback(lambda _: None)

    def carol(self) -> SlixmppUser:
        user = SlixmppUser(f"carol@{self.server.domain}/slix", "carolpass", self.server.c2sPort)
        self.addCleanup(user.stop)  # type: ignore[attr-defined]
        return user

    def groupchats(self, realJID: JID) -> list[Any]:
        return [m for _, r, m in self.handler.named("groupchatReceived") if r == realJID]

    @defer.inlineCallbacks
    def test_roomFlow(self) -> Generator[defer.Deferred[Any], Any, None]:
        """
        C.2.1-C.2.4: two gateway occupants (different real JIDs) and a
        slixmpp user in one room.  The first join creates the room (201;
        the instant-room form unlocks it on Prosody), the second gateway
        occupant and the slixmpp user can then enter; groupchat and private
        messages go both ways, our own message comes back as a reflection,
        a nick conflict is an L{OccupantError} C{conflict}, a self-ping says joined, and
        leaving is confirmed.
        """
        alice: JoinResult = yield bounded(self.service.join(self.room, "alice", ALICE))
        self.assertTrue(alice.created)
        self.assertFalse(alice.locked)
        bob: JoinResult = yield bounded(self.service.join(self.room, "bob", BOB))
        self.assertEqual([o.nick for o in bob.occupants], ["alice"])

        carol = self.carol()
        yield carol.connect()
        yield carol.join(self.room.full(), "carol")
        yield until(lambda: "carol" in self.service.rosterOf(self.room, ALICE), 10, "carol's presence")

        # Gateway -> room: reflected to alice, delivered to bob and carol.
        reflected = yield bounded(self.service.sendGroupchat(self.room, ALICE, "hello from alice", "a-1"))
        self.assertEqual((reflected.reflectionOf, reflected.fromSelf), ("a-1", True))
        yield until(lambda: ("groupchat", f"{self.room.full()}/alice", "hello from alice") in carol.messages(),
                    10, "carol to get alice's message")
        yield until(lambda: [m for m in self.groupchats(BOB) if m.body == "hello from alice"], 10,
                    "bob to get alice's message")
        [forBob] = [m for m in self.groupchats(BOB) if m.body == "hello from alice"]
        self.assertEqual((forBob.nick, forBob.reflectionOf, forBob.history), ("alice", None, False))

        # XMPP user -> room.
        yield carol.send(self.room.full(), "hello from carol", "groupchat")
        for realJID in (ALICE, BOB):
            yield until(lambda: [m for m in self.groupchats(realJID)
                                 if m.body == "hello from carol" and m.nick == "carol"],
                        10, f"{realJID.full()} to get carol's message")

        # Private messages both ways.
        self.service.sendPrivate(self.room, ALICE, "carol", "psst, carol")
        yield until(lambda: ("chat", f"{self.room.full()}/alice", "psst, carol") in carol.messages(),
                    10, "carol to get alice's private message")
        yield carol.send(f"{self.room.full()}/alice", "psst, alice", "chat")
        yield until(lambda: [a for a in self.handler.named("privateMessageReceived")
                             if a[1] == ALICE and a[2].body == "psst, alice" and a[2].nick == "carol"],
                    10, "alice to get carol's private message")
        self.assertEqual([a for a in self.handler.named("privateMessageReceived") if a[1] == BOB], [])

        # Nick conflicts: on entry and on a nick change.
        [failure] = yield failureOf(self.service.join(self.room, "carol", DAVE))
        self.assertEqual(failure.value.condition, "conflict", failure)
        self.assertIsNone(self.service.stateOf(self.room, DAVE))
        [failure] = yield failureOf(self.service.changeNick(self.room, BOB, "alice"))
        self.assertEqual(failure.value.condition, "conflict", failure)
        newNick = yield bounded(self.service.changeNick(self.room, BOB, "robert"))
        self.assertEqual(newNick, "robert")
        yield until(lambda: [a for a in self.handler.named("occupantNickChanged")
                             if a[1] == ALICE and a[2] == "bob" and a[3].nick == "robert"],
                    10, "alice to see bob's new nick")

        # XEP-0410 self-ping round trip.
        result = yield bounded(self.service.selfPing(self.room, ALICE))
        self.assertEqual(result, SelfPingResult.JOINED)

        confirmed = yield bounded(self.service.leave(self.room, BOB))
        self.assertTrue(confirmed)
        yield until(lambda: [a for a in self.handler.named("occupantLeft")
                             if a[1] == ALICE and a[2].nick == "robert"], 10, "alice to see bob leave")
        [(_, _, removal)] = [a for a in self.handler.named("left") if a[1] == BOB]
        self.assertEqual(removal.reason, LeftReason.LEFT)

    @defer.inlineCallbacks
    def test_serverRestart(self) -> Generator[defer.Deferred[Any], Any, None]:
        """
        Killing the server takes the component link down (the handler hears
        C{linkLost} with the occupant); once the server is back the link
        reconnects (C{linkRestored}) and L{OccupantService.rejoinAll} puts
        the occupant back into the room.
        """
        yield bounded(self.service.join(self.room, "alice", ALICE))
        self.server.stop()
        yield until(lambda: self.handler.named("linkLost"), 15, "linkLost")
        [(_, lost)] = self.handler.named("linkLost")
        self.assertEqual(lost, [(self.room, ALICE)])
        self.assertEqual(self.service.stateOf(self.room, ALICE), OccupantState.NEEDS_REJOIN)
        self.server.start()
        yield until(lambda: self.handler.named("linkRestored"), 30, "linkRestored")
        [(_, restored)] = self.handler.named("linkRestored")
        self.assertEqual(restored, [(self.room, ALICE)])
        results = yield bounded(self.service.rejoinAll())
        [(key, value)] = results
        self.assertEqual(key, (self.room, ALICE))
        self.assertIsInstance(value, JoinResult, value)
        self.assertEqual(self.service.stateOf(self.room, ALICE), OccupantState.JOINED)


class ProsodyOccupantTests(OccupantServerTestsMixin, TestCase):
    """
    Against Prosody 0.12 with room locking on (XEP-0045 10.1.2 needed).
    """

    def makeServer(self) -> Prosody:
        return Prosody(components=(USER_DOMAIN,), roomLocking=True, directory=self.mktemp())

    @defer.inlineCallbacks
    def test_lockedWithoutInstantForm(self) -> Generator[defer.Deferred[Any], Any, None]:
        """
        XEP-0045 10.1.1 / 7.2.11: without the instant-room form Prosody keeps
        the created room locked and refuses a second joiner with
        C{<item-not-found/>} (an L{OccupantError}): the form is what unlocks it
        in C{test_roomFlow}.
        """
        self.service.instantRooms = False
        alice: JoinResult = yield bounded(self.service.join(self.room, "alice", ALICE))
        self.assertTrue(alice.created)
        self.assertTrue(alice.locked)
        [failure] = yield failureOf(self.service.join(self.room, "bob", BOB))
        self.assertEqual(failure.value.condition, "item-not-found", failure)


class EjabberdOccupantTests(OccupantServerTestsMixin, TestCase):
    """
    Against ejabberd 23.01.
    """

    def makeServer(self) -> Ejabberd:
        return Ejabberd(components=(USER_DOMAIN,), directory=self.mktemp())
