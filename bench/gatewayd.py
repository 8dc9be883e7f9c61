"""
The gateway for W7 and W8 (bench/README.md): the real service tree, built
by L{stoxgw.service.makeService} from a configuration file, in a process
of its own, plus a statistics port on 127.0.0.1.

  python bench/gatewayd.py CONFIG STATS_PORT

A connection to the statistics port that sends C{stats} (or C{mark}, see
L{StatsProtocol}) gets one JSON object and is closed:
C{rss_kb} (VmRSS), C{fds} (open file descriptors), C{delayed_calls}
(pending C{DelayedCall}s of the reactor), C{participants} (SIP users in
rooms), C{gc_objects}, C{link_up}, C{tcp_mem_pages} (sockstat), C{tracemalloc_top}
(with C{STOXGW_BENCH_TRACEMALLOC=1} in the environment), taken after a full garbage collection.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import tracemalloc
from typing import Any

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

import stoxgw.xmpp  # noqa: E402,F401

from twisted.internet import reactor  # noqa: E402
from twisted.internet.protocol import Factory, Protocol  # noqa: E402

from stoxgw.config import loadConfig  # noqa: E402
from stoxgw.service import makeService  # noqa: E402


def stats(gateway: object) -> dict[str, int]:
    """
    @return: the gateway process's figures now.
    """
    gc.collect()
    rss = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    interworking = gateway.getServiceNamed("interworking")  # type: ignore[attr-defined]
    tcpMemPages = 0
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                fields = line.split()
                tcpMemPages = int(fields[fields.index("mem") + 1])
    top: list[str] = []
    if tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot()
        top = [
            f"{stat.size // 1024} KiB {stat.count} blocks {stat.traceback[0].filename.replace(TOP + '/', '')}:{stat.traceback[0].lineno}"
            for stat in snapshot.statistics("lineno")[:15]
        ]
    return {
        "rss_kb": rss,
        "fds": len(os.listdir("/proc/self/fd")),
        "delayed_calls": len(reactor.getDelayedCalls()),  # type: ignore[attr-defined]
        "participants": len(interworking.sipToXMPP.participants),
        "gc_objects": len(gc.get_objects()),
        # Kernel memory of all TCP sockets of the machine, in pages: socket
        # buffers are not in RSS, reported apart (W7).
        "tcp_mem_pages": tcpMemPages,
        "tracemalloc_top": top,  # type: ignore[dict-item]
        "link_up": int(all(link.up for link in gateway.getServiceNamed("xmpp").links)),  # type: ignore[attr-defined]
    }


class StatsProtocol(Protocol):
    """
    Answers C{stats} with the figures; C{mark} also keeps a tracemalloc
    snapshot, and later answers carry the biggest growths since it
    (C{tracemalloc_growth}), which names what W8 leaves behind.
    """

    marked: Any = None

    def dataReceived(self, data: bytes) -> None:
        figures: dict[str, Any] = stats(self.factory.gateway)  # type: ignore[attr-defined]
        if tracemalloc.is_tracing():
            if data.startswith(b"mark"):
                StatsProtocol.marked = tracemalloc.take_snapshot()
            elif StatsProtocol.marked is not None:
                diff = tracemalloc.take_snapshot().compare_to(StatsProtocol.marked, "lineno")
                figures["tracemalloc_growth"] = [
                    f"{d.size_diff // 1024:+} KiB {d.count_diff:+} blocks "
                    f"{d.traceback[0].filename.replace(TOP + '/', '')}:{d.traceback[0].lineno}"
                    for d in diff[:12]
                ]
        self.transport.write(json.dumps(figures).encode())  # type: ignore[union-attr]
        self.transport.loseConnection()  # type: ignore[union-attr]


def main() -> None:
    config, port = sys.argv[1], int(sys.argv[2])
    if os.environ.get("STOXGW_BENCH_TRACEMALLOC"):
        tracemalloc.start()
    gateway = makeService(loadConfig(config), reactor)
    gateway.startService()
    factory = Factory.forProtocol(StatsProtocol)
    factory.gateway = gateway  # type: ignore[attr-defined]
    reactor.listenTCP(port, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
    reactor.addSystemEventTrigger("before", "shutdown", gateway.stopService)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
