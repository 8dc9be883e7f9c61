# -*- test-case-name: tests.test_limits -*-
"""
Tests for L{stoxgw.limits}, and L{NonReadingTransport}, the fake transport
of a peer that never reads, used by the flood tests of the SIP, MSRP and
XMPP transports.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import StringTransport
from twisted.logger import Logger, LogLevel, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from stoxgw.limits import ConnectionLimits, Refusal


class NonReadingTransport(StringTransport):
    """
    A L{StringTransport} whose peer never reads: everything written stays
    buffered, and, like Twisted's C{FileDescriptor}, it pauses its
    streaming producer once more than L{bufferSize} octets are buffered
    (and resumes it when L{drain} empties the buffer).

    A flood test calls C{dataReceived} only while the transport is not
    paused for reading (C{producerState == "producing"}), as the reactor
    would, and not at all once it is disconnecting.

    @ivar bufferSize: Twisted's C{FileDescriptor.bufferSize}, 64 KiB.
    @ivar producerPaused: Whether this transport paused its producer.
    @ivar largest: The most octets it ever held.
    """

    bufferSize = 1 << 16

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.producerPaused = False
        self.largest = 0

    def write(self, data: bytes) -> None:
        """
        Buffer, and pause the producer when over L{bufferSize}.
        """
        super().write(data)
        size = len(self.io.getvalue())
        self.largest = max(self.largest, size)
        if (
            self.producer is not None
            and self.streaming
            and not self.producerPaused
            and size > self.bufferSize
        ):
            self.producerPaused = True
            self.producer.pauseProducing()

    def drain(self) -> bytes:
        """
        The peer reads everything: empty the buffer, resume the producer.

        @return: What was buffered.
        """
        data = self.value()
        self.clear()
        if self.producerPaused and self.producer is not None:
            self.producerPaused = False
            self.producer.resumeProducing()
        return data

    @property
    def reading(self) -> bool:
        """
        Whether the reactor would deliver what the peer sends: not paused
        for reading and not closing.
        """
        return self.producerState == "producing" and not self.disconnecting


class ConnectionLimitsTests(SynchronousTestCase):
    """
    L{ConnectionLimits}: per-address and total caps, rate-limited logging.
    """

    def test_perAddress(self) -> None:
        """
        An address gets C{perAddress} connections; the next one is refused
        (and not counted) until one is released.
        """
        limits = ConnectionLimits(perAddress=2, total=10)
        self.assertIsNone(limits.admit("192.0.2.1"))
        self.assertIsNone(limits.admit("192.0.2.1"))
        self.assertIs(limits.admit("192.0.2.1"), Refusal.PER_ADDRESS)
        self.assertIsNone(limits.admit("192.0.2.2"))
        self.assertEqual((limits.countFor("192.0.2.1"), limits.count), (2, 3))
        limits.release("192.0.2.1")
        self.assertIsNone(limits.admit("192.0.2.1"))

    def test_total(self) -> None:
        """
        Beyond C{total} connections every address is refused.
        """
        limits = ConnectionLimits(perAddress=5, total=2)
        self.assertIsNone(limits.admit("192.0.2.1"))
        self.assertIsNone(limits.admit("192.0.2.2"))
        self.assertIs(limits.admit("192.0.2.3"), Refusal.TOTAL)
        limits.release("192.0.2.2")
        self.assertIsNone(limits.admit("192.0.2.3"))

    def test_releaseForgetsAddresses(self) -> None:
        """
        Releasing every connection of an address forgets it (no memory kept
        per address once its connections are gone); a release without an
        admission changes nothing.
        """
        limits = ConnectionLimits(perAddress=2, total=2)
        limits.admit("192.0.2.1")
        limits.release("192.0.2.1")
        limits.release("192.0.2.1")
        self.assertEqual(limits._counts, {})
        self.assertEqual(limits.count, 0)

    def test_shouldLogOncePerMinute(self) -> None:
        """
        A refusal is logged the first time, then once per interval per
        address.
        """
        limits = ConnectionLimits(perAddress=1, total=1, logInterval=60)
        self.assertTrue(limits.shouldLog("192.0.2.1", 0))
        self.assertFalse(limits.shouldLog("192.0.2.1", 59))
        self.assertTrue(limits.shouldLog("192.0.2.2", 59))
        self.assertTrue(limits.shouldLog("192.0.2.1", 60))

    def test_logMemoryBounded(self) -> None:
        """
        Refusals from very many addresses keep a bounded number of log
        times.
        """
        limits = ConnectionLimits(perAddress=1, total=1)
        for i in range(10000):
            limits.shouldLog(f"2001:db8::{i:x}", 0)
        self.assertLessEqual(len(limits._logged), 4096)

    def test_admitOrLog(self) -> None:
        """
        L{ConnectionLimits.admitOrLog} admits under the caps; a refusal is
        logged once per interval per address, the listener's text first
        and the cap reached after it.
        """
        events: list[dict[str, Any]] = []
        log = Logger(observer=events.append)
        limits = ConnectionLimits(perAddress=1, total=5, logInterval=60)
        refused = "Refused X connection from {peer}"
        self.assertTrue(limits.admitOrLog("192.0.2.1", 0, log, refused, peer="a"))
        self.assertFalse(limits.admitOrLog("192.0.2.1", 1, log, refused, peer="a"))
        self.assertFalse(limits.admitOrLog("192.0.2.1", 2, log, refused, peer="a"))
        self.assertEqual(len(events), 1)
        self.assertEqual(
            formatEvent(events[0]),
            "Refused X connection from a: per-address cap (1 per address, 5 in"
            " all) reached; further refusals from it are not logged for a"
            " minute",
        )
        self.assertEqual(events[0]["log_level"], LogLevel.warn)
        self.assertEqual(limits.count, 1)

    def test_ifAny(self) -> None:
        """
        L{ConnectionLimits.ifAny}: no limits without a cap; a missing or
        zero cap is unlimited.
        """
        self.assertIsNone(ConnectionLimits.ifAny(None, None))
        limits = ConnectionLimits.ifAny(3, None)
        assert limits is not None
        self.assertEqual(limits.perAddress, 3)
        self.assertGreater(limits.total, 10**9)
        limits = ConnectionLimits.ifAny(0, 7)
        assert limits is not None
        self.assertGreater(limits.perAddress, 10**9)
        self.assertEqual(limits.total, 7)

    def test_capsAtLeastOne(self) -> None:
        """
        A cap below 1 is a programming error.
        """
        self.assertRaises(ValueError, ConnectionLimits, 0, 10)
        self.assertRaises(ValueError, ConnectionLimits, 10, 0)


class NonReadingTransportTests(SynchronousTestCase):
    """
    The test transport behaves like Twisted's C{FileDescriptor} for its
    streaming producer.
    """

    def test_pausesAndResumes(self) -> None:
        """
        Over 64 KiB buffered the producer is paused once; draining resumes
        it.
        """
        calls: list[str] = []

        class Producer:
            def pauseProducing(self) -> None:
                calls.append("pause")

            def resumeProducing(self) -> None:
                calls.append("resume")

            def stopProducing(self) -> None:
                calls.append("stop")

        transport = NonReadingTransport()
        transport.registerProducer(Producer(), True)
        transport.write(b"x" * (1 << 16))
        self.assertEqual(calls, [])
        transport.write(b"x")
        transport.write(b"x")
        self.assertEqual(calls, ["pause"])
        self.assertEqual(len(transport.drain()), (1 << 16) + 2)
        self.assertEqual(calls, ["pause", "resume"])
