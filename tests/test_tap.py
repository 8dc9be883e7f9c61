# -*- test-case-name: tests.test_tap -*-
"""
Tests for L{stoxgw.tap} and the twistd plugin.
"""

from __future__ import annotations

from io import StringIO

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.trial.unittest import SynchronousTestCase

from stoxgw import tap
from stoxgw.service import GatewayService


def writeConfig(test: SynchronousTestCase, text: str) -> str:
    """
    @return: the path of a new file holding C{text}.
    """
    path = test.mktemp()
    with open(path, "w") as f:
        f.write(text)
    return path


GOOD = "[xmpp]\nuser_domain = sip.example.com\nsecret = hunter2\n"
BROKEN = "[xmpp]\nport = 99999\nsecret = hunter2\n[sip]\nbogus = 1\n"


class PluginTests(SynchronousTestCase):
    """
    twistd finds the plugin.
    """

    def test_pluginFound(self) -> None:
        """
        An L{IServiceMaker} named C{stoxgw} using L{stoxgw.tap} is installed.
        """
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        self.assertIn("stoxgw", makers)
        self.assertEqual(makers["stoxgw"].module, "stoxgw.tap")


class OptionsTests(SynchronousTestCase):
    """
    Command-line options.
    """

    def test_help(self) -> None:
        """
        The help text lists the options and shows no secret.
        """
        text = str(tap.Options())
        for option in ("--config", "--check-config", "--version"):
            self.assertIn(option, text)
        self.assertNotIn("secret", text.lower())

    def test_config(self) -> None:
        """
        C{--config FILE} loads and validates that file.
        """
        options = tap.Options()
        options.parseOptions(["--config", writeConfig(self, GOOD)])
        assert options.gatewayConfig is not None
        self.assertEqual(options.gatewayConfig.xmpp.user_domain, "sip.example.com")

    def test_invalidConfig(self) -> None:
        """
        An invalid file prints every problem on standard error, one line
        each, and exits 1 without twistd's usage text.
        """
        path = writeConfig(self, BROKEN)
        stderr = StringIO()
        self.patch(tap.sys, "stderr", stderr)
        error = self.assertRaises(SystemExit, tap.Options().parseOptions, ["-c", path])
        self.assertEqual(error.code, 1)
        self.assertEqual(
            stderr.getvalue().splitlines(),
            [
                f"{path}: [sip] bogus: unknown key",
                f"{path}: [xmpp] port: 99999 is out of range (1 to 65535)",
                f"{path}: [xmpp] user_domain: required, and not set",
                f"{path}: invalid configuration, not starting",
            ],
        )

    def test_checkConfigValid(self) -> None:
        """
        C{--check-config} on a valid file exits 0.
        """
        error = self.assertRaises(
            SystemExit,
            tap.Options().parseOptions,
            ["--check-config", "--config", writeConfig(self, GOOD)],
        )
        self.assertEqual(error.code, 0)

    def test_checkConfigInvalid(self) -> None:
        """
        C{--check-config} on an invalid file exits 1.
        """
        error = self.assertRaises(
            SystemExit,
            tap.Options().parseOptions,
            ["--check-config", "--config", writeConfig(self, BROKEN)],
        )
        self.assertEqual(error.code, 1)

    def test_makeService(self) -> None:
        """
        The plugin builds the gateway's service tree.
        """
        options = tap.Options()
        options.parseOptions(["--config", writeConfig(self, GOOD)])
        self.assertIsInstance(tap.makeService(options), GatewayService)


class CheckConfigTests(SynchronousTestCase):
    """
    L{tap.checkConfig}, shared by C{--check-config} and C{stoxgw-checkconfig}.
    """

    def test_reportsEveryProblem(self) -> None:
        """
        Each problem is one line on the error stream with file, section
        and key, then a count; the status is 1.
        """
        path = writeConfig(self, BROKEN)
        out, err = StringIO(), StringIO()
        self.assertEqual(tap.checkConfig(path, out, err), 1)
        self.assertEqual(
            err.getvalue().splitlines(),
            [
                f"{path}: [sip] bogus: unknown key",
                f"{path}: [xmpp] port: 99999 is out of range (1 to 65535)",
                f"{path}: [xmpp] user_domain: required, and not set",
                f"{path}: 3 problem(s)",
            ],
        )
        self.assertEqual(out.getvalue(), "")

    def test_valid(self) -> None:
        """
        A valid file is reported OK with status 0.
        """
        path = writeConfig(self, GOOD)
        out, err = StringIO(), StringIO()
        self.assertEqual(tap.checkConfig(path, out, err), 0)
        self.assertEqual(out.getvalue(), f"{path}: configuration OK\n")
        self.assertEqual(err.getvalue(), "")

    def test_scriptUsage(self) -> None:
        """
        C{stoxgw-checkconfig} with too many arguments exits 2.
        """
        error = self.assertRaises(SystemExit, tap.checkConfigMain, ["a", "b"])
        self.assertEqual(error.code, 2)

    def test_scriptExitStatus(self) -> None:
        """
        C{stoxgw-checkconfig FILE} exits with L{tap.checkConfig}'s status.
        """
        error = self.assertRaises(SystemExit, tap.checkConfigMain, [writeConfig(self, BROKEN)])
        self.assertEqual(error.code, 1)

    def test_probeProblems(self) -> None:
        """
        With C{probe}, the probe's problems are reported like configuration
        problems and the status is 1.
        """
        path = writeConfig(self, GOOD)
        out, err = StringIO(), StringIO()
        probed = []

        def probe(config: object) -> list[str]:
            probed.append(config)
            return [f"{path}: [xmpp] secret: rejected"]

        self.assertEqual(tap.checkConfig(path, out, err, probe=True, runProbe=probe), 1)
        self.assertEqual(len(probed), 1)
        self.assertEqual(err.getvalue().splitlines(), [f"{path}: [xmpp] secret: rejected", f"{path}: 1 problem(s)"])

    def test_probeOK(self) -> None:
        """
        A successful probe says the server was reached.
        """
        path = writeConfig(self, GOOD)
        out, err = StringIO(), StringIO()
        self.assertEqual(tap.checkConfig(path, out, err, probe=True, runProbe=lambda c: []), 0)
        self.assertEqual(out.getvalue(), f"{path}: configuration OK (XMPP server reached)\n")

    def test_noProbeOnInvalidConfig(self) -> None:
        """
        An invalid file is not probed.
        """
        path = writeConfig(self, BROKEN)
        probed: list[object] = []
        status = tap.checkConfig(path, StringIO(), StringIO(), probe=True, runProbe=lambda c: probed.append(c) or [])
        self.assertEqual((status, probed), (1, []))


class DaemonLoggingTests(SynchronousTestCase):
    """
    The log destination when twistd runs as a daemon.
    """

    def parse(self, twistdArgs: list[str], config: str) -> tuple[object, str]:
        from twisted.scripts.twistd import ServerOptions

        stderr = StringIO()
        self.patch(tap.sys, "stderr", stderr)
        options = ServerOptions()
        try:
            options.parseOptions([*twistdArgs, "stoxgw", "--config", writeConfig(self, config)])
        except SystemExit as e:
            return e.code, stderr.getvalue()
        return None, stderr.getvalue()

    def test_daemonToStandardOutput(self) -> None:
        """
        As a daemon (no C{--nodaemon}) with C{[logging] file = -} the log
        would go nowhere: refused with a line naming the key.
        """
        code, stderr = self.parse([], GOOD)
        self.assertEqual(code, 1)
        self.assertIn("[logging] file: is - (standard output)", stderr)

    def test_foregroundToStandardOutput(self) -> None:
        """
        With C{--nodaemon}, standard output is fine (systemd's journal).
        """
        self.assertEqual(self.parse(["--nodaemon"], GOOD), (None, ""))

    def test_daemonToFile(self) -> None:
        """
        As a daemon with a log file, nothing to say.
        """
        logFile = self.mktemp()
        self.assertEqual(self.parse([], GOOD + f"[logging]\nfile = {logFile}\n"), (None, ""))
