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


class ReopenableFile:
    """
    A log file that can be closed and opened again under the same name, so
    that an operator's log rotation (move, then SIGHUP) takes effect.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = open(path, "a", encoding="utf-8", buffering=1)

    def write(self, text: str) -> int:
        return self._file.write(text)

    def flush(self) -> None:
        self._file.flush()

    def reopen(self) -> None:
        """
        Close the file and open C{path} again (a new file if it was moved).
        """
        old, self._file = self._file, open(self.path, "a", encoding="utf-8", buffering=1)
        old.close()


def buildObserver(config: LoggingConfig, stream: IO[str] | ReopenableFile | None = None) -> ILogObserver:
    """
    The observer writing the gateway's log as C{config} says.

    @param config: the C{[logging]} section.
    @param stream: where to write; by default the configured file (a
        L{ReopenableFile}), or standard output for C{-}.
    @return: an observer filtering by level, then writing text or JSON.
    """
    if stream is None:
        if config.file == "-":
            stream = sys.stdout
        else:
            stream = ReopenableFile(config.file)
    if config.format == "json":
        output = jsonFileLogObserver(stream)  # type: ignore[arg-type]
    else:
        output = textFileLogObserver(stream)  # type: ignore[arg-type]
    observer = FilteringLogObserver(output, [buildPredicate(config)])
    observer.stream = stream  # type: ignore[attr-defined]
    return observer


def reopenLog(observer: ILogObserver) -> bool:
    """
    Reopen the file an observer from L{buildObserver} writes to.

    @return: whether there was a file to reopen (standard output is not).
    """
    stream = getattr(observer, "stream", None)
    if isinstance(stream, ReopenableFile):
        stream.reopen()
        return True
    return False
