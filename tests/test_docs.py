# -*- test-case-name: tests.test_docs -*-
"""
The operator documentation matches the code: the sample configuration and
the manual page document every configuration key, the manual page renders
without warnings, and README shows the two set-up commands.  The developer
documentation under C{docs/} covers every requirement id and checklist
section the code and tests cite.
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


#: A requirement id as code and tests cite it, alone (C{R-nnn}) or as the
#: first of a range (C{R-nnn..R-mmm}, C{R-nnn to R-mmm}); exactly three
#: digits, so RFC 4475 test names (C{R-} and four digits) do not count.
REQUIREMENT_ID = re.compile(
    r"\bR-(\d{3})(?:\s*(?:\.\.|-|\u2013|to)\s*R-(\d{3}))?(?!\d)"
)

#: A checklist section label, C{X.n} being a letter A-G and numbers:
#: C{SPEC X.n}, C{SPEC.md X.n}, C{SPEC section X}, C{SPEC.md tables X.n},
#: with a section sign before the label, and broken over a line (with the
#: C{#:} of a comment continuing it).
SPEC_LABEL = re.compile(
    r"\bSPEC(?:\.md)?(?:[\s#:*]*(?:sections?|tables?)\b)?[\s#:*]*\u00a7?"
    r"([A-G](?:\.\d+)*)(?!\w|\.\d)"
)

#: A row of the requirement table in C{docs/requirements.md}.
REQUIREMENT_ROW = re.compile(
    r"^\|\s*R-(\d{3})\s*\|[^|]*\|[^|]*\|\s*([A-Z]+)\s*\|\s*([AB]+)\s*\|", re.MULTILINE
)

#: A heading of a page under C{docs/} that explains a section label.
SPEC_HEADING = re.compile(r"^#+\s+SPEC\s+([A-G](?:\.\d+)*)(?![\w.])", re.MULTILINE)


def requirementIDs(text: str) -> set[int]:
    """
    @param text: source or documentation text.
    @return: the requirement numbers C{text} cites, ranges expanded.
    """
    found: set[int] = set()
    for match in REQUIREMENT_ID.finditer(text):
        first = int(match.group(1))
        last = int(match.group(2) or first)
        found.update(range(first, last + 1))
    return found


def specLabels(text: str) -> set[str]:
    """
    @param text: source or documentation text.
    @return: the checklist section labels C{text} cites (C{"E.4"}).
    """
    return {match.group(1) for match in SPEC_LABEL.finditer(text)}


def citingFiles() -> dict[str, str]:
    """
    @return: the text of every file under C{stoxgw/} and C{tests/} that is
        UTF-8 (fixtures in other encodings are skipped), by path relative
        to the top of the repository.
    """
    texts: dict[str, str] = {}
    for top in ("stoxgw", "tests"):
        for directory, subdirectories, names in os.walk(os.path.join(TOP, top)):
            subdirectories[:] = [d for d in subdirectories if d != "__pycache__"]
            for name in names:
                path = os.path.join(directory, name)
                try:
                    with open(path, encoding="utf-8") as f:
                        texts[os.path.relpath(path, TOP)] = f.read()
                except (UnicodeDecodeError, OSError):
                    continue
    return texts


def docPages() -> dict[str, str]:
    """
    @return: the text of every Markdown page under C{docs/}, by name.
    """
    directory = os.path.join(TOP, "docs")
    return {
        name: read("docs", name)
        for name in sorted(os.listdir(directory))
        if name.endswith(".md")
    }


class RequirementsDocumentationTests(SynchronousTestCase):
    """
    C{docs/requirements.md} and C{docs/spec-sections.md}: everything the
    code and tests cite from the requirements checklist (which lives outside
    the repository) can be looked up inside it.
    """

    def test_scanner(self) -> None:
        """
        The citation patterns find ids and labels in the forms the code
        uses (wrapped lines, comment continuations, ranges) and nothing in
        RFC 4475 test names.  The sample ids are built at run time so that
        this file does not cite them itself.
        """
        r = "R-"
        text = (
            f"see {r}011 and {r}176..{r}178, {r}132-{r}133, {r}184 to"
            f" {r}185; {r}4475 3.1.1.1 wsinv"
        )
        self.assertEqual(
            requirementIDs(text), {11, 132, 133, 176, 177, 178, 184, 185}
        )
        spec = "SPEC"
        text = (
            f"({spec}\n    E.4), #: ({spec}\n#: F.1 item 7), {spec}.md section E),"
            f" {spec} \u00a7F.3, {spec}.md C.1.1: x, {spec} {r}200, {spec}.md (cpim),"
            f" {spec} B.2 rows, {spec} Gateway"
        )
        self.assertEqual(specLabels(text), {"E.4", "F.1", "E", "F.3", "C.1.1", "B.2"})

    def test_everyCitedRequirementHasARow(self) -> None:
        """
        Every requirement id cited under C{stoxgw/} or C{tests/} has a row
        in the table of C{docs/requirements.md}.
        """
        table = read("docs", "requirements.md")
        rows = {int(n) for n, _, _ in REQUIREMENT_ROW.findall(table)}
        missing = {
            f"R-{number:03d} ({path})"
            for path, text in citingFiles().items()
            for number in requirementIDs(text)
            if number not in rows
        }
        self.assertEqual(sorted(missing), [])

    def test_rows(self) -> None:
        """
        The table has one row per id, with a known level and direction.
        """
        rows = REQUIREMENT_ROW.findall(read("docs", "requirements.md"))
        numbers = [int(n) for n, _, _ in rows]
        self.assertEqual(len(numbers), len(set(numbers)))
        self.assertEqual(numbers, sorted(numbers))
        for number, level, direction in rows:
            self.assertIn(level, {"MUST", "SHOULD", "MAY", "DESC", "IMPL"}, number)
            self.assertIn(direction, {"A", "B", "AB"}, number)

    def test_everyCitedSectionExplained(self) -> None:
        """
        Every checklist section label cited under C{stoxgw/} or C{tests/}
        is the heading of a section of a page under C{docs/}.
        """
        explained: set[str] = set()
        for text in docPages().values():
            explained.update(SPEC_HEADING.findall(text))
        missing = {
            f"SPEC {label} ({path})"
            for path, text in citingFiles().items()
            for label in specLabels(text)
            if label not in explained
        }
        self.assertEqual(sorted(missing), [])
