# -*- test-case-name: tests.test_tap -*-
"""
The twistd plugin's options and service maker, and the C{stoxgw-checkconfig}
command.

  - C{twistd -n stoxgw --config FILE} runs the gateway;
  - C{twistd stoxgw --check-config --config FILE} (or
    C{stoxgw-checkconfig FILE}) validates a configuration, prints every
    problem (one line each, naming file, section and key) and exits 0 or 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import IO, Any

from twisted.python import usage

from stoxgw import __version__
from stoxgw.config import DEFAULT_CONFIG_PATH, Config, ConfigError, loadConfig


class Options(usage.Options):
    """
    Command-line options of C{twistd stoxgw}.

    Secrets are never taken from the command line: they live in the file.
    """

    synopsis = "[--config FILE] [--check-config [--probe]]"
    longdesc = (
        "stoxgw bridges SIP/MSRP multi-party chat (RFC 4975, RFC 7701) and "
        "XMPP Multi-User Chat (XEP-0045), both ways (RFC 7702). All settings "
        "are in the configuration file; see stoxgw(8)."
    )
    optParameters = [
        ["config", "c", DEFAULT_CONFIG_PATH, "Configuration file."],
    ]
    optFlags = [
        ["check-config", None, "Validate the configuration file, print every problem, and exit (0: valid, 1: not)."],
        ["probe", None, "With --check-config: also try the XMPP component handshake for each domain."],
        ["version", "V", "Print the stoxgw version and exit."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self.gatewayConfig: Config | None = None

    def opt_version(self) -> None:
        """
        Print the stoxgw version and exit.
        """
        print(f"stoxgw {__version__}")
        sys.exit(0)

    def postOptions(self) -> None:
        """
        Load the configuration; with C{--check-config}, report and exit.

        An invalid configuration prints its problems on standard error, one
        line each, and exits 1 (rather than a usage error, after which twistd
        would print its whole usage text before the problems).
        """
        if self["check-config"]:
            sys.exit(checkConfig(self["config"], sys.stdout, sys.stderr, probe=self["probe"]))
        try:
            self.gatewayConfig = loadConfig(self["config"])
        except ConfigError as e:
            for problem in e.problems:
                sys.stderr.write(problem + "\n")
            sys.stderr.write(f"{self['config']}: invalid configuration, not starting\n")
            sys.exit(1)
        parent = self.parent
        if (
            parent is not None
            and "nodaemon" in parent
            and not parent["nodaemon"]
            and self.gatewayConfig.logging.file == "-"
        ):
            # A daemon's standard output is /dev/null: the log would be lost.
            sys.stderr.write(
                f"{self['config']}: [logging] file: is - (standard output), which a"
                " daemon does not have: set a file, or run twistd with --nodaemon\n"
            )
            sys.exit(1)


def checkConfig(
    path: str,
    out: IO[str],
    err: IO[str],
    probe: bool = False,
    runProbe: Callable[[Config], list[str]] | None = None,
) -> int:
    """
    Validate a configuration file and report.

    @param path: the file.
    @param out: where the verdict goes when the file is valid.
    @param err: where problems go, one line each.
    @param probe: also try the XMPP component handshakes.
    @param runProbe: how to probe (L{stoxgw.service.runProbe} by default).
    @return: the exit status: 0 valid, 1 not.
    """
    try:
        config = loadConfig(path)
        problems: list[str] = []
        if probe:
            if runProbe is None:
                from stoxgw.service import runProbe as defaultProbe

                runProbe = defaultProbe
            problems = runProbe(config)
    except ConfigError as e:
        problems = list(e.problems)
    if problems:
        for problem in problems:
            err.write(problem + "\n")
        err.write(f"{path}: {len(problems)} problem(s)\n")
        return 1
    out.write(f"{path}: configuration OK{' (XMPP server reached)' if probe else ''}\n")
    return 0


def makeService(options: Options) -> Any:
    """
    Build the gateway's service tree from parsed options (twistd's hook).
    """
    from stoxgw.service import makeService as build

    assert options.gatewayConfig is not None
    return build(options.gatewayConfig)


def checkConfigMain(argv: Sequence[str] | None = None) -> None:
    """
    Entry point of C{stoxgw-checkconfig [--probe] [FILE]}.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    probe = "--probe" in args
    args = [arg for arg in args if arg != "--probe"]
    if len(args) > 1 or (args and args[0].startswith("-")):
        sys.stderr.write(
            f"usage: stoxgw-checkconfig [--probe] [FILE]  (default {DEFAULT_CONFIG_PATH})\n"
        )
        sys.exit(2)
    sys.exit(checkConfig(args[0] if args else DEFAULT_CONFIG_PATH, sys.stdout, sys.stderr, probe))
