# -*- test-case-name: tests.test_docs -*-
"""
The operator documentation matches the code: the sample configuration and
the manual page document every configuration key, the manual page renders
without warnings, and README shows the two set-up commands.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.config import PLACEHOLDER, SCHEMA, parseConfig
from stoxgw.tap import Options

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(*path: str) -> str:
    with open(os.path.join(TOP, *path), encoding="utf-8") as f:
        return f.read()


class SampleConfigTests(SynchronousTestCase):
    """
    C{etc/stoxgw.conf.sample}.
    """

    def test_everyKeyInItsSection(self) -> None:
        """
        Each key of the schema appears, set or commented out, in its own
        section, with its default when it has one.
        """
        section = None
        seen: dict[tuple[str | None, str], str] = {}
        for line in read("etc", "stoxgw.conf.sample").splitlines():
            header = re.match(r"^\[(\w+)\]\s*$", line)
            if header:
                section = header.group(1)
                continue
            entry = re.match(r"^;?\s*([a-z_]+)\s*=\s*(.*)$", line)
            if entry:
                seen[section, entry.group(1)] = entry.group(2).strip()
        for key in SCHEMA:
            self.assertIn((key.section, key.name), seen, f"[{key.section}] {key.name}")
            if key.default is not None and not key.required:
                self.assertEqual(seen[key.section, key.name], key.default, f"[{key.section}] {key.name}")

    def test_loadsOnceFilled(self) -> None:
        """
        With the placeholder replaced, the sample is a valid configuration.
        """
        text = read("etc", "stoxgw.conf.sample")
        self.assertIn(PLACEHOLDER, text)
        configparser.ConfigParser(interpolation=None).read_string(text)
        config = parseConfig(text.replace(PLACEHOLDER, "filled-in"), "stoxgw.conf")
        self.assertEqual(config.xmpp.secret.reveal(), "filled-in")


class ManPageTests(SynchronousTestCase):
    """
    C{man/stoxgw.8}.
    """

    def test_everyKeyAndOption(self) -> None:
        """
        Every configuration key and command-line option is documented.
        """
        text = read("man", "stoxgw.8")
        for key in SCHEMA:
            self.assertIn(key.name.replace("_", r"_"), text, key.name)
        for long, *_ in Options.optParameters + Options.optFlags:
            self.assertIn(long.replace("-", r"\-"), text, long)

    def test_renders(self) -> None:
        """
        groff renders the page with every warning on and prints nothing.
        """
        groff = shutil.which("groff")
        self.assertIsNotNone(groff, "groff is installed by make test (groff-base)")
        result = subprocess.run(
            [str(groff), "-man", "-ww", "-z", os.path.join(TOP, "man", "stoxgw.8")],
            capture_output=True, text=True, timeout=60,
        )
        self.assertEqual((result.returncode, result.stderr), (0, ""))


class ReadmeTests(SynchronousTestCase):
    """
    C{README.md}.
    """

    def test_twoCommands(self) -> None:
        """
        README shows C{make demo} and C{make test}, and the Makefile has both.
        """
        readme = read("README.md")
        makefile = read("Makefile")
        for target in ("demo", "test"):
            self.assertIn(f"make {target}", readme)
            self.assertRegex(makefile, rf"(?m)^{target}:")


class SystemdUnitTests(SynchronousTestCase):
    """
    C{etc/stoxgw.service}.
    """

    def test_unit(self) -> None:
        """
        The unit runs the plugin in the foreground with the default
        configuration file and checks it first.
        """
        unit = configparser.ConfigParser(interpolation=None, strict=False)
        unit.optionxform = str  # type: ignore[assignment,method-assign]
        unit.read_string(read("etc", "stoxgw.service"))
        start = unit["Service"]["ExecStart"]
        self.assertIn("stoxgw", start)
        self.assertIn("--nodaemon", start)
        self.assertIn("/etc/stoxgw/stoxgw.conf", start)
        self.assertIn("stoxgw-checkconfig", unit["Service"]["ExecStartPre"])
