"""
W9's deterministic workloads (bench/README.md), run under callgrind by
C{bench/w9.py}: C{python bench/w9_work.py NAME COUNT}.

Every process imports and sets up all workloads the same way, then runs
workload C{NAME} C{COUNT} times; C{w9.py} subtracts the instruction count
of a C{COUNT=0} run (start-up, imports, set-up) from that of a
C{COUNT=N} run, which leaves the workload's own instructions.  No
sockets, no clock, no randomness (PYTHONHASHSEED=0 is set by the caller).
"""

from __future__ import annotations

import os
import sys
import zlib
from typing import Any, Callable

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (TOP, os.path.join(TOP, "bench")):
    if path not in sys.path:
        sys.path.insert(0, path)

import stoxgw.xmpp  # noqa: E402,F401  (compat names before wokkel)

from twisted.internet.address import IPv4Address  # noqa: E402
from twisted.internet.task import Clock  # noqa: E402
from twisted.internet.testing import StringTransport  # noqa: E402
from twisted.words.xish import domish  # noqa: E402
from zope.interface import implementer  # noqa: E402

from msrp_throughput import _requests  # noqa: E402
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage  # noqa: E402
from stoxgw.msrp.endpoint import MSRPEndpoint  # noqa: E402
from stoxgw.msrp.session import IMSRPSessionHandler  # noqa: E402
from stoxgw.rooms.model import Participant, Room  # noqa: E402

BATCH = 32

#: The workloads, in the order they run.
WORKLOAD_NAMES = ("msrp_parse_reply", "cpim_parse", "stanza_build", "stanza_parse", "room_lookup")


@implementer(IMSRPSessionHandler)
class _Accepting:
    def sessionBound(self) -> None:
        pass

    def messageReceived(self, message: Any) -> None:
        pass

    def nicknameRequested(self, nickname: str) -> int:
        return 200

    def sessionFailed(self, reason: Any) -> None:
        pass


class _Clock(Clock):
    """A clock that is also a (never listening) reactor."""


def setUp() -> dict[str, Callable[[], None]]:
    """
    @return: the workloads by name, each one step (set up already).
    """
    import random

    random.seed(4975)
    # MSRP parse + reply: batches of 32 single-chunk SENDs into one bound
    # connection (the first batch binds it and warms the caches).
    endpoint = MSRPEndpoint(_Clock(), "127.0.0.1", 2855, transactionTimeout=30)
    session = endpoint.createSession(_Accepting())
    requests = _requests(str(session.localURI), 0, 2 * BATCH)
    connection = endpoint._buildConnection()
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
    connection.makeConnection(transport)
    batches = [b"".join(requests[i : i + BATCH]) for i in range(0, len(requests), BATCH)]
    for batch in batches:
        connection.dataReceived(batch)
    transport.clear()
    state = {"i": 0}

    def msrp() -> None:
        state["i"] += 1
        connection.dataReceived(batches[state["i"] % len(batches)])
        transport.clear()

    cpimBytes = CPIMMessage.build(
        contentType="text/plain;charset=UTF-8",
        body="Hello, this is Romeo in the room. ".encode() * 3,
        fromAddress=CPIMAddress("sip:romeo@example.org", "Romeo"),
        toAddresses=(CPIMAddress("sip:room@muc.xmpp.test"),),
    ).toBytes()

    def cpim() -> None:
        CPIMMessage.parse(cpimBytes)

    def stanzaBuild() -> None:
        message = domish.Element((None, "message"))
        message["to"] = "room@muc.xmpp.test"
        message["from"] = "romeo%example.org@sip.xmpp.test/msrp"
        message["type"] = "groupchat"
        message["id"] = "m1"
        message.addElement("body", content="Hello, this is Romeo in the room.")
        message.toXml()

    stanzaBytes = (
        b"<message from='room@muc.xmpp.test/carol' to='romeo%example.org@sip.xmpp.test/msrp' "
        b"type='groupchat' id='c1'><body>Hello from carol, in the room.</body>"
        b"<stanza-id xmlns='urn:xmpp:sid:0' id='abc' by='room@muc.xmpp.test'/></message>"
    )
    stream = domish.elementStream()
    parsed: list[Any] = []
    stream.DocumentStartEvent = lambda root: None
    stream.ElementEvent = parsed.append
    stream.DocumentEndEvent = lambda: None
    stream.parse(b"<stream:stream xmlns='jabber:component:accept' "
                 b"xmlns:stream='http://etherx.jabber.org/streams'>")

    def stanzaParse() -> None:
        stream.parse(stanzaBytes)
        parsed.clear()

    rooms = {f"room{i}@muc.xmpp.test": Room(f"room{i}@muc.xmpp.test") for i in range(1000)}
    for i in range(5):
        rooms["room500@muc.xmpp.test"].join(Participant(f"nick{i}"))

    def roomLookup() -> None:
        room = rooms["room500@muc.xmpp.test"]
        room.get("nick3")
        room.get("nobody")

    return {
        "msrp_parse_reply": msrp,
        "cpim_parse": cpim,
        "stanza_build": stanzaBuild,
        "stanza_parse": stanzaParse,
        "room_lookup": roomLookup,
    }


def main() -> None:
    """
    C{w9_work.py COUNT}: set up, then run every workload C{COUNT} times,
    each one preceded by a call to zlib's C{crc32}: C{w9.py} runs this
    under C{valgrind --tool=callgrind --dump-before=crc32}, so each
    workload's instructions land in a dump of their own.
    """
    count = int(sys.argv[1])
    works = setUp()
    for name in WORKLOAD_NAMES:
        zlib.crc32(b"")
        work = works[name]
        for _ in range(count):
            work()
    zlib.crc32(b"")


if __name__ == "__main__":
    main()
