# -*- test-case-name: tests.test_logs -*-
"""
Log output for the gateway: human-readable text or JSON lines, with a
level per subsystem (C{[logging]} in the configuration).

Every class logs through its own C{Logger()}, whose namespace is its
module and class name (C{stoxgw.sip.protocol.SIPProtocol}); a subsystem's
level applies to every namespace under C{stoxgw.<subsystem>}.
"""

from __future__ import annotations

import sys
from typing import IO

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    jsonFileLogObserver,
    textFileLogObserver,
)

from stoxgw.config import SUBSYSTEMS, LoggingConfig


def levelNamed(name: str) -> LogLevel:
    """
    @param name: a level name as the configuration spells it.
    @return: the L{LogLevel}.
    """
    level: LogLevel = LogLevel.levelWithName(name)
    return level


def buildPredicate(config: LoggingConfig) -> LogLevelFilterPredicate:
    """
    The level filter described by C{config}: C{level} for everything,
    C{<subsystem>_level} for C{stoxgw.<subsystem>}.
    """
    predicate = LogLevelFilterPredicate(defaultLogLevel=levelNamed(config.level))
    for subsystem in SUBSYSTEMS:
        predicate.setLogLevelForNamespace(
            f"stoxgw.{subsystem}", levelNamed(config.levels.get(subsystem, config.level))
        )
    return predicate


def buildObserver(config: LoggingConfig, stream: IO[str] | None = None) -> ILogObserver:
    """
    The observer writing the gateway's log as C{config} says.

    @param config: the C{[logging]} section.
    @param stream: where to write; by default the configured file, or
        standard output for C{-}.
    @return: an observer filtering by level, then writing text or JSON.
    """
    if stream is None:
        if config.file == "-":
            stream = sys.stdout
        else:
            stream = open(config.file, "a", encoding="utf-8", buffering=1)
    if config.format == "json":
        output = jsonFileLogObserver(stream)
    else:
        output = textFileLogObserver(stream)
    return FilteringLogObserver(output, [buildPredicate(config)])
