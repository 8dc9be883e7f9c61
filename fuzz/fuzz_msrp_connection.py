"""
Fuzz L{stoxgw.msrp.protocol.MSRPConnection.dataReceived}: bytes from an
MSRP peer, cut at random places, into a connection with three sessions (one
with a size limit and one type, one bound to another connection) and a
scripted handler, as in C{tests/msrp/test_fastpath.py}, whose world and
its run (C{runWorld}: feed, answer, record the logs) this harness
reuses.  Behind it: the parser, the receive fast path for single-chunk
SENDs, dispatch by To-Path, binding, the session's checks, reassembly,
reports and responses.

Input: one byte choosing how the stream is cut (see L{_harness.pieces}),
one byte of options (the transport pausing the connection now and then;
session A bound before any request), then the stream.

Nothing may escape C{dataReceived} (docs/style.md, "Errors").  Also crashes
here: a failure logged by the catch-alls of the connection or the session
(C{log.failure}: only a bug gets there), except the scripted handler's
own C{ValueError("handler failed")}; and any difference between a
connection with the fast path and one without (bytes written after each
read, handler calls, session state, log events), which the fast path
promises not to make.

Seeds: random streams of C{tests/msrp/test_fastpath.py} (common SENDs,
chunked messages, reports, NICKNAMEs, unknown sessions, bad requests) and
the RFC 4975/7701 requests of C{tests/fixtures/msrp} re-addressed to
session A.
"""

from __future__ import annotations

import random
from typing import Any

import atheris

from _harness import fixtures, main, pieces

with atheris.instrument_imports(include=["stoxgw"]):
    import stoxgw.msrp.protocol  # noqa: F401
    import stoxgw.msrp.session  # noqa: F401
    from stoxgw.msrp import builders as buildersModule

from tests.msrp import test_fastpath as fastpath

#: The scripted handler's deliberate failure (its C{!raise} marker).
HANDLER_FAILURE = "handler failed"


def run(fast: bool, pausing: bool, prebind: bool, parts: list[bytes]) -> tuple[Any, ...]:
    """
    Feed the parts to a new world; record everything observable.
    """
    counter = iter(range(10**9))
    buildersModule.generateTransactionID = lambda: f"tx{next(counter):08d}"
    world, steps, recorder = fastpath.runWorld(fast, pausing, prebind, parts)
    for failure in recorder.failures:
        if not (
            failure.type is ValueError and failure.getErrorMessage() == HANDLER_FAILURE
        ):
            failure.raiseException()
    return (
        steps,
        world.calls,
        world.state(),
        recorder.events,
        world.connection._parser.failed,
        world.transport.disconnecting,
    )


def testOneInput(data: bytes) -> None:
    """
    The same cut stream with and without the fast path.
    """
    if len(data) < 2:
        return
    cut, options, stream = data[0], data[1], data[2:]
    parts = pieces(stream, cut)
    pausing, prebind = bool(options & 1), bool(options & 2)
    slow = run(False, pausing, prebind, parts)
    fast = run(True, pausing, prebind, parts)
    for index, (a, b) in enumerate(zip(slow, fast)):
        assert a == b, (index, a, b)


def seeds() -> list[bytes]:
    """
    Streams from the differential tests, and the RFC requests.
    """
    result = []
    for seed in range(40):
        rng = random.Random(seed)
        stream = fastpath.stream(rng, rng.randint(1, 8))
        result.append(bytes([rng.randrange(256), rng.randrange(4)]) + stream)
    session = str(fastpath.SESSION_A).encode()
    for message in fixtures("msrp/*.msrp"):
        if b" SEND\r\n" not in message and b" NICKNAME\r\n" not in message:
            continue
        lines = message.split(b"\r\n")
        for index, line in enumerate(lines):
            if line.startswith(b"To-Path:"):
                lines[index] = b"To-Path: " + session
        result.append(b"\x00\x00" + b"\r\n".join(lines) * 2)
    return result


if __name__ == "__main__":
    main(testOneInput, seeds)
