"""
What every harness under C{fuzz/} shares: the source tree on C{sys.path}
(so that the working copy of C{stoxgw}, not an installed one, is fuzzed),
the test fixtures as seeds, and the atheris entry point.

A harness module::

    import atheris
    from _harness import fixtures, main

    with atheris.instrument_imports(include=["stoxgw"]):
        from stoxgw.x import parse, XError

    def testOneInput(data: bytes) -> None:
        try:
            parse(data)
        except XError:
            pass            # a clean rejection

    def seeds() -> list[bytes]:
        return fixtures("x/*.dat")

    if __name__ == "__main__":
        main(testOneInput, seeds)

Anything but the parser's own error escaping C{testOneInput} is a crash:
libFuzzer stops, prints the traceback and writes the input to its
C{-artifact_prefix} (C{fuzz/run.py} points that at C{fuzz/crashes/}).

Nothing from C{stoxgw} may be imported here: only modules imported inside
the harness's C{instrument_imports} block get coverage instrumentation.
"""

from __future__ import annotations

import glob
import hashlib
import os
import random
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any

#: The top of the repository.
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The test fixtures (real messages: RFC examples, captures).
FIXTURES = os.path.join(TOP, "tests", "fixtures")

if sys.path[:1] != [TOP]:
    sys.path.insert(0, TOP)


def fixtures(pattern: str) -> list[bytes]:
    """
    @param pattern: A glob below C{tests/fixtures} (C{**} recurses).
    @return: The bytes of the matching files, sorted by path.
    """
    result = []
    for path in sorted(glob.glob(os.path.join(FIXTURES, pattern), recursive=True)):
        with open(path, "rb") as f:
            result.append(f.read())
    return result


def pieces(data: bytes, seed: int) -> list[bytes]:
    """
    Cut C{data} at places chosen by C{seed}: with seed 0 whole; with 1 the
    first 256 bytes byte by byte, then the rest whole; otherwise at 1 to 16
    random places (where a cut falls matters, not how many there are, and
    each piece costs a call).  Deterministic, so a crashing input
    reproduces.

    @param data: The stream.
    @param seed: A byte of the input.
    """
    if seed == 0 or len(data) < 2:
        return [data]
    if seed == 1:
        head = [data[i : i + 1] for i in range(min(len(data), 256))]
        return head + [data[256:]] if len(data) > 256 else head
    rnd = random.Random(seed)
    cuts = sorted(rnd.sample(range(1, len(data)), min(len(data) - 1, rnd.randint(1, 16))))
    return [data[start:end] for start, end in zip([0, *cuts], [*cuts, len(data)])]


#: Bugs found by these harnesses in code this work may not change (see
#: C{fuzz/README.md}): C{(name, exception types, file of the innermost
#: frame, function of the innermost frame or None for any)}.  A harness
#: lets them pass, so that it goes on to find others, unless C{FUZZ_STRICT}
#: is set in the environment.
KNOWN_ISSUES: tuple[tuple[str, tuple[type[BaseException], ...], str, str | None], ...] = (
    # (name, exception types, file suffix, function): crashes in code a
    # harness covers whose fix is pending.  Empty: the JID, legacy error
    # code and relay challenge bugs found by the first run are fixed, with
    # regression tests in tests/xmpp/test_occupant.py and
    # tests/msrp/test_relay.py (FuzzFoundTests).
)


def knownIssue(error: Any) -> str | None:
    """
    Whether an exception or a logged L{twisted.python.failure.Failure} is
    one of L{KNOWN_ISSUES}.

    @return: The issue's name, or L{None} (always with C{FUZZ_STRICT}).
    """
    if os.environ.get("FUZZ_STRICT"):
        return None
    from twisted.python.failure import Failure

    if isinstance(error, Failure):
        # (Twisted's Failure is a BaseException too: this test comes first.)
        value = error.value
        innermost = (error.frames[-1][1], error.frames[-1][0]) if error.frames else None
    else:
        value = error
        frames = traceback.extract_tb(error.__traceback__)
        innermost = (frames[-1].filename, frames[-1].name) if frames else None
    if innermost is None:
        return None
    filename, function = innermost
    for name, types, path, where in KNOWN_ISSUES:
        if (
            isinstance(value, types)
            and filename.endswith(path)
            and (where is None or function == where)
        ):
            return name
    return None


def routedTo(stanza: Any, domain: str) -> bool:
    """
    Whether the XMPP server would hand C{stanza} (a domish element) to the
    component for C{domain}: valid C{from} and C{to} JIDs, C{to} on that
    domain.  (Twisted is not instrumented, so importing its JID here costs
    the harnesses no coverage.)
    """
    from twisted.words.protocols.jabber.jid import JID

    try:
        sender = JID(stanza.getAttribute("from") or "")
        recipient = JID(stanza.getAttribute("to") or "")
    except Exception:
        # InvalidFormat; and Twisted's own IndexError for an empty label
        # ("a..b"), RuntimeError for an empty JID.
        return False
    return bool(sender.host) and recipient.host == domain


def writeSeeds(directory: str, seeds: Iterable[bytes]) -> int:
    """
    Put the seeds into a libFuzzer corpus directory (named by content, so
    existing files are kept and nothing is written twice).

    @return: How many seeds there are.
    """
    os.makedirs(directory, exist_ok=True)
    count = 0
    for seed in seeds:
        count += 1
        name = os.path.join(directory, "seed-" + hashlib.sha1(seed).hexdigest())
        if not os.path.exists(name):
            with open(name, "wb") as f:
                f.write(seed)
    return count


def main(
    testOneInput: Callable[[bytes], None],
    seeds: Callable[[], Iterable[bytes]],
    argv: list[str] | None = None,
) -> None:
    """
    Run the harness under libFuzzer.

    Besides libFuzzer's own flags and corpus directories, C{--corpus DIR}
    fills C{DIR} with the seeds and fuzzes it (new inputs are added to it).
    An input file given as argument is run once (libFuzzer's reproduction
    mode): that is how a saved crash is replayed.

    @param testOneInput: Called with each input.
    @param seeds: Makes the seed inputs.
    @param argv: The command line (default C{sys.argv}).
    """
    import atheris
    from twisted.logger import globalLogBeginner

    # Until logging begins, Twisted keeps the last 65536 events (with their
    # failures and tracebacks) in memory: the harnesses slow down as the
    # garbage collector walks them.  The harnesses observe what they need.
    globalLogBeginner.beginLoggingTo([], discardBuffer=True, redirectStandardIO=False)
    args = list(sys.argv if argv is None else argv)
    if "--corpus" in args:
        index = args.index("--corpus")
        directory = args[index + 1]
        del args[index : index + 2]
        writeSeeds(directory, seeds())
        args.append(directory)
    atheris.Setup(args, testOneInput)
    atheris.Fuzz()
