# -*- test-case-name: tests.test_logs -*-
"""
Tests for L{stoxgw.logs}: text or JSON output, level per subsystem.
"""

from __future__ import annotations

import json
import os
from io import StringIO

from twisted.logger import Logger, eventsFromJSONLogFile
from twisted.trial.unittest import SynchronousTestCase

from stoxgw.config import parseConfig
from stoxgw.logs import buildObserver, reopenLog

BASE = "[xmpp]\nuser_domain = sip.example.com\nsecret = hunter2\n[logging]\n"


def observerFor(logging: str) -> tuple[StringIO, object]:
    config = parseConfig(BASE + logging, "gw.conf")
    stream = StringIO()
    return stream, buildObserver(config.logging, stream)


class LogsTests(SynchronousTestCase):
    """
    The observer built from C{[logging]}.
    """

    def test_text(self) -> None:
        """
        By default, one human-readable line per event with its namespace.
        """
        stream, observer = observerFor("")
        Logger(namespace="stoxgw.sip.protocol", observer=observer).info(
            "INVITE from {peer}", peer="127.0.0.1:5060"
        )
        line = stream.getvalue()
        self.assertIn("[stoxgw.sip.protocol#info] INVITE from 127.0.0.1:5060", line)

    def test_json(self) -> None:
        """
        With C{format = json}, each event is a JSON object keeping its fields.
        """
        stream, observer = observerFor("format = json\n")
        Logger(namespace="stoxgw.msrp.session", observer=observer).warn(
            "Bad chunk from {peer}", peer="127.0.0.1:2855"
        )
        events = list(eventsFromJSONLogFile(StringIO(stream.getvalue())))
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["peer"], "127.0.0.1:2855")
        self.assertEqual(events[0]["log_namespace"], "stoxgw.msrp.session")
        # each record is a JSON document
        self.assertIsInstance(json.loads(stream.getvalue().strip("\x1e\n")), dict)

    def test_levelPerSubsystem(self) -> None:
        """
        C{sip_level = debug} shows SIP debug events while other subsystems
        stay at the default level; C{xmpp_level = error} hides XMPP warnings.
        """
        stream, observer = observerFor("sip_level = debug\nxmpp_level = error\n")
        Logger(namespace="stoxgw.sip.transaction.ClientTransaction", observer=observer).debug("sip trace")
        Logger(namespace="stoxgw.msrp.session", observer=observer).debug("msrp trace")
        Logger(namespace="stoxgw.xmpp.component._LinkMonitor", observer=observer).warn("xmpp warning")
        Logger(namespace="stoxgw.xmpp.component._LinkMonitor", observer=observer).error("xmpp error")
        Logger(namespace="twisted.internet", observer=observer).info("twisted info")
        text = stream.getvalue()
        self.assertIn("sip trace", text)
        self.assertNotIn("msrp trace", text)
        self.assertNotIn("xmpp warning", text)
        self.assertIn("xmpp error", text)
        self.assertIn("twisted info", text)

    def test_file(self) -> None:
        """
        C{file = PATH} appends to that file.
        """
        path = self.mktemp()
        config = parseConfig(BASE + f"file = {path}\n", "gw.conf")
        observer = buildObserver(config.logging)
        Logger(namespace="stoxgw.service", observer=observer).info("hello {who}", who="file")
        with open(path) as f:
            self.assertIn("hello file", f.read())

    def test_reopen(self) -> None:
        """
        After the log file is moved away (rotation), L{reopenLog} makes new
        events go to a new file under the configured name.
        """
        path = self.mktemp()
        config = parseConfig(BASE + f"file = {path}\n", "gw.conf")
        observer = buildObserver(config.logging)
        log = Logger(namespace="stoxgw.service", observer=observer)
        log.info("before rotation")
        os.rename(path, path + ".1")
        log.info("still the old file")
        self.assertTrue(reopenLog(observer))
        log.info("after rotation")
        with open(path + ".1") as f:
            old = f.read()
        with open(path) as f:
            new = f.read()
        self.assertIn("still the old file", old)
        self.assertNotIn("after rotation", old)
        self.assertIn("after rotation", new)

    def test_reopenStandardOutput(self) -> None:
        """
        Standard output has nothing to reopen.
        """
        _, observer = observerFor("")
        self.assertFalse(reopenLog(observer))  # type: ignore[arg-type]
