# -*- test-case-name: tests.test_docs -*-
"""
The operator documentation matches the code: the sample configuration and
the manual page document every configuration key, the manual page renders
without warnings, and README shows the two set-up commands.  The developer
documentation under C{docs/} covers every requirement id, checklist
section and design decision the code and tests cite, README points only
inside the repository, the tables of C{docs/errors.md} are the code's, and
C{docs/modules.md} says why each module over 800 lines stays whole.
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


def citingFiles(tops: tuple[str, ...] = ("stoxgw", "tests")) -> dict[str, str]:
    """
    @param tops: the directories to read, relative to the top of the
        repository.
    @return: the text of every file under C{tops} (by default C{stoxgw/}
        and C{tests/}) that is UTF-8 (fixtures in other encodings are
        skipped), by path relative to the top of the repository.
    """
    texts: dict[str, str] = {}
    for top in tops:
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


#: A citation of a design or style decision by its heading: the page
#: (C{DESIGN.md} or C{docs/design.md}, C{STYLE.md} or C{docs/style.md}),
#: then, after white space, a comma or an opening parenthesis, the heading
#: in double quotes, starting with a letter; the heading may be broken over
#: lines (and comment continuations).  Group 1 is the page, group 2 the
#: heading.
DECISION_CITATION = re.compile(
    r"\b(?:docs/)?(DESIGN|design|STYLE|style)\.md\b[\s#:,(]*\"([A-Za-z][^\"]{0,199})\""
)

#: The pages decision citations point into, by the cited page's name.
DECISION_PAGES = {"design": "design.md", "style": "style.md"}

#: Where decision citations are looked for: the package, the tests, the
#: plugin, the fuzzers and benchmarks, and the documentation itself.
DECISION_CITING_TOPS = ("stoxgw", "tests", "twisted", "fuzz", "bench", "docs")


def normalName(text: str) -> str:
    """
    @return: C{text} as a heading or citation is compared: comment
        continuations removed, white space collapsed, case folded.
    """
    text = re.sub(r"\n\s*#:?", " ", text)
    return " ".join(text.split()).casefold()


def headingNames(text: str) -> set[str]:
    """
    @param text: a Markdown page.
    @return: the names its headings may be cited by (L{normalName}): each
        heading's text, and the same without a closing parenthetical remark
        (a heading I{Layers (imports point down only)} is also I{Layers}).
    """
    names = set()
    for heading in re.findall(r"^#+\s+(.+?)\s*$", text, re.MULTILINE):
        names.add(normalName(heading))
        names.add(normalName(re.sub(r"\s*\([^()]*\)$", "", heading)))
    return names


def decisionCitations(text: str) -> list[tuple[str, str]]:
    """
    @param text: source or documentation text.
    @return: C{(page, name)} for every decision citation in it, the page
        being a key of L{DECISION_PAGES} and the name as written.
    """
    return [
        (page.lower(), name) for page, name in DECISION_CITATION.findall(text)
    ]


def unresolvedCitations(
    texts: dict[str, str], pages: dict[str, str]
) -> list[str]:
    """
    @param texts: citing text by path.
    @param pages: the text of each page of L{DECISION_PAGES} by its key.
    @return: one line per citation naming no heading of its page.
    """
    headings = {key: headingNames(text) for key, text in pages.items()}
    return sorted(
        f"{path}: {page}.md {' '.join(name.split())!r}"
        for path, text in texts.items()
        for page, name in decisionCitations(text)
        if normalName(name) not in headings[page]
    )


def decisionCitingFiles() -> dict[str, str]:
    """
    @return: the UTF-8 text of every file under L{DECISION_CITING_TOPS}
        and of C{README.md}, by path relative to the top.
    """
    return {"README.md": read("README.md"), **citingFiles(DECISION_CITING_TOPS)}


class DesignDocumentationTests(SynchronousTestCase):
    """
    C{docs/design.md} and C{docs/style.md}: the design decisions and the
    house style that code and tests cite by name are headings there, and
    README points only inside the repository.
    """

    def test_scanner(self) -> None:
        """
        Citations are found in the forms the code uses (with a comma, in
        parentheses, broken over docstring and comment lines, old and new
        page names), and one naming no heading is reported.  The samples
        are built at run time so that this file does not cite them itself.
        """
        d, s = "DESIGN.md", "STYLE.md"
        text = (
            f'({d} "Trust"), {d}, "wokkel\n    18.0.0 with X", '
            f'docs/design.md "Layers", #: ({d}\n#: ("Layers (a b)")), '
            f'{s}, "Errors", docs/style.md "Naming", (see {d}), {d}: x'
        )
        self.assertEqual(
            [(page, normalName(name)) for page, name in decisionCitations(text)],
            [
                ("design", "trust"),
                ("design", "wokkel 18.0.0 with x"),
                ("design", "layers"),
                ("design", "layers (a b)"),
                ("style", "errors"),
                ("style", "naming"),
            ],
        )
        pages = {"design": "# D\n\n## Trust\n\n## Layers (a b)\n", "style": "## Errors\n"}
        self.assertEqual(
            unresolvedCitations({"x.py": text}, pages),
            [
                "x.py: design.md 'wokkel 18.0.0 with X'",
                "x.py: style.md 'Naming'",
            ],
        )

    def test_everyCitedDecisionExplained(self) -> None:
        """
        Every decision or style rule cited by its heading under
        C{stoxgw/}, C{tests/}, C{twisted/}, C{fuzz/}, C{bench/}, C{docs/} or
        in README (after C{DESIGN.md} or C{docs/design.md}, C{STYLE.md} or
        C{docs/style.md}) is a heading of C{docs/design.md} or
        C{docs/style.md}.
        """
        pages = {key: read("docs", name) for key, name in DECISION_PAGES.items()}
        self.assertEqual(unresolvedCitations(decisionCitingFiles(), pages), [])

    def test_readmeStaysInside(self) -> None:
        """
        README links only to files of the repository (relative paths that
        exist) and names no page kept outside it (the old C{DESIGN.md},
        C{STYLE.md}, C{SPEC.md}, C{PEERS.md}, or a path under C{/work}).
        """
        readme = read("README.md")
        for target in re.findall(r"\]\(([^)\s]+)\)", readme):
            path = target.split("#", 1)[0]
            if re.match(r"[a-z]+://", target) or not path:
                continue
            resolved = os.path.normpath(os.path.join(TOP, path))
            self.assertFalse(os.path.isabs(path), target)
            self.assertTrue(resolved.startswith(TOP + os.sep), target)
            self.assertTrue(os.path.exists(resolved), target)
        self.assertEqual(
            re.findall(r"(?<![\w/.-])(?:DESIGN|STYLE|SPEC|PEERS)\.md|/work/", readme),
            [],
        )
        for name in ("architecture.md", "design.md", "style.md", "errors.md"):
            self.assertTrue(f"](docs/{name})" in readme, f"README links no docs/{name}")


#: Issue 13: no module longer than this many lines unless docs/modules.md
#: says why.
MODULE_LINES = 800


def longModules(top: str, limit: int = MODULE_LINES) -> dict[str, int]:
    """
    @param top: the directory holding the C{stoxgw} package.
    @return: the line count of every module of the package longer than
        C{limit} lines, by path relative to C{top}.
    """
    found = {}
    for directory, _, names in os.walk(os.path.join(top, "stoxgw")):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                with open(path, encoding="utf-8") as f:
                    lines = sum(1 for _ in f)
                if lines > limit:
                    found[os.path.relpath(path, top).replace(os.sep, "/")] = lines
    return found


def modulesListedUnder(text: str, heading: str) -> set[str]:
    """
    @param text: a Markdown page.
    @param heading: the text of a heading of any level.
    @return: the module paths (C{`stoxgw/....py`}) named between that
        heading and the next heading.
    @raise ValueError: no such heading.
    """
    match = re.search(rf"^#+ {re.escape(heading)}\s*$", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"no heading {heading!r}")
    section = re.split(r"^#", text[match.end():], maxsplit=1, flags=re.MULTILINE)[0]
    return set(re.findall(r"`(stoxgw/[\w/]+\.py)`", section))


class ModuleGuideTests(SynchronousTestCase):
    """
    C{docs/modules.md}, the guide to the package's modules, says why each
    module over L{MODULE_LINES} lines stays whole (issue 13).
    """

    def test_modulesListedUnder(self) -> None:
        """
        The list is read from its heading to the next heading, whatever
        their levels; paths elsewhere on the page do not count.
        """
        page = (
            "# Guide\n\n`stoxgw/a.py` here.\n\n## Modules over 800 lines\n\n"
            "- `stoxgw/sip/b.py`: why.\n- `stoxgw/c.py`, `stoxgw/d.py`: why.\n\n"
            "### Next\n\n- `stoxgw/e.py`\n"
        )
        self.assertEqual(
            modulesListedUnder(page, "Modules over 800 lines"),
            {"stoxgw/sip/b.py", "stoxgw/c.py", "stoxgw/d.py"},
        )
        self.assertRaises(ValueError, modulesListedUnder, page, "Other")

    def test_longModulesExplained(self) -> None:
        """
        Every module of C{stoxgw/} longer than 800 lines is named in the
        list under the heading "Modules over 800 lines" of
        C{docs/modules.md}, which says why it stays whole; every module
        that list names exists.
        """
        page = read("docs", "modules.md")
        listed = modulesListedUnder(page, "Modules over 800 lines")
        long = longModules(TOP)
        unexplained = [
            f"{path} ({lines} lines)"
            for path, lines in sorted(long.items())
            if path not in listed
        ]
        self.assertEqual(unexplained, [])
        missing = [p for p in listed if not os.path.exists(os.path.join(TOP, p))]
        self.assertEqual(sorted(missing), [])


def markdownTable(text: str, heading: str) -> list[list[str]]:
    """
    The body of the first table after a heading.

    @param text: a Markdown page.
    @param heading: the heading's text, without its C{#}s and without the
        C{*(checked)*} mark.
    @return: the rows below the header row, each a list of cells with
        backticks removed and white space stripped.
    @raise ValueError: no such heading, or no table under it.
    """
    match = re.search(
        rf"^#+ {re.escape(heading)}(?: \*\(checked\)\*)?\s*$", text, re.MULTILINE
    )
    if match is None:
        raise ValueError(f"no heading {heading!r}")
    lines = text[match.end():].splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        raise ValueError(f"no table under {heading!r}")
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().replace("`", "") for cell in line.strip("|").split("|")])
    return rows


def statuses(cell: str) -> list[int]:
    """
    @return: the status codes of a cell such as C{"300, 302, 305"} or
        C{"301 (banned)"}.
    """
    return [int(code) for code in re.findall(r"\b\d{3}\b", cell)]


class ErrorTablesTests(SynchronousTestCase):
    """
    C{docs/errors.md}: every table marked I{(checked)} says what the code's
    tables say (imported by name from where they live), row for row.
    """

    def setUp(self) -> None:
        self.page = read("docs", "errors.md")
        self.checked: set[str] = set()

    def table(self, heading: str) -> list[list[str]]:
        """
        @return: the rows of the table under C{heading}, which is noted as
            checked.
        """
        self.checked.add(heading)
        return markdownTable(self.page, heading)

    def test_markdownTable(self) -> None:
        """
        The table reader takes the first table under the heading, whatever
        its level and mark, and stops at the end of the table.
        """
        page = (
            "# Top\n\n## One *(checked)*\n\nText.\n\n| a | b |\n| --- | --- |\n"
            "| `x` | 1, 2 |\n| y | 3 |\n\nAfter.\n\n| c |\n| --- |\n| z |\n"
        )
        self.assertEqual(markdownTable(page, "One"), [["x", "1, 2"], ["y", "3"]])
        self.assertRaises(ValueError, markdownTable, page, "Two")
        self.assertEqual(statuses("301 (banned), 4xx"), [301])

    def test_errorTypes(self) -> None:
        """
        One row per condition: RFC 6120's type (C{ERROR_TYPES}) and the
        type in a MUC error (C{MUC_ERROR_TYPES}), both held once, in
        C{stoxgw/xmpp/stanzas.py}.
        """
        from stoxgw.xmpp.stanzas import ERROR_TYPES, MUC_ERROR_TYPES, Condition

        rows = {c: (t, muc) for c, t, muc in self.table("XMPP error types")}
        self.assertEqual(
            rows,
            {
                c.value: (ERROR_TYPES[c].value, MUC_ERROR_TYPES.get(c, ERROR_TYPES[c]).value)
                for c in Condition
            },
        )

    def test_xmppToSIP(self) -> None:
        """
        E.1: C{SIP_STATUS_FOR_CONDITION} and, for bare JIDs,
        C{SIP_STATUS_FOR_CONDITION_BARE_JID}.
        """
        from stoxgw.interworking.errors import (
            SIP_STATUS_FOR_CONDITION,
            SIP_STATUS_FOR_CONDITION_BARE_JID,
        )

        rows = {c: (int(full), int(bare)) for c, full, bare in self.table("XMPP error to SIP response")}
        self.assertEqual(
            rows,
            {
                c.value: (status, SIP_STATUS_FOR_CONDITION_BARE_JID.get(c, status))
                for c, status in SIP_STATUS_FOR_CONDITION.items()
            },
        )

    def test_sipToXMPP(self) -> None:
        """
        E.2: C{CONDITION_FOR_SIP_STATUS}, and by class
        C{CONDITION_FOR_SIP_CLASS}.
        """
        from stoxgw.interworking.errors import (
            CONDITION_FOR_SIP_CLASS,
            CONDITION_FOR_SIP_STATUS,
        )

        rows = self.table("SIP response to XMPP error")
        documented = [(s, c) for cell, c in rows for s in statuses(cell)]
        self.assertEqual(len(documented), len(dict(documented)))
        self.assertEqual(
            dict(documented), {s: c.value for s, c in CONDITION_FOR_SIP_STATUS.items()}
        )
        classes = {int(cell[0]): c for cell, c in self.table("SIP status classes")}
        self.assertEqual(classes, {k: c.value for k, c in CONDITION_FOR_SIP_CLASS.items()})

    def test_entry(self) -> None:
        """
        E.5, room entry: C{SIP_STATUS_FOR_MUC_ENTRY_ERROR} (Gateway B) and
        C{stanzaErrorForSIPEntryFailure} over C{CONDITION_FOR_SIP_ENTRY_FAILURE}
        (Gateway A).
        """
        from stoxgw.interworking.errors import (
            CONDITION_FOR_SIP_ENTRY_FAILURE,
            SIP_STATUS_FOR_MUC_ENTRY_ERROR,
            stanzaErrorForSIPEntryFailure,
        )

        rows = self.table("Gateway B: MUC entry error to INVITE response")
        self.assertEqual(
            {c: int(s) for c, s in rows},
            {c.value: s for c, s in SIP_STATUS_FOR_MUC_ENTRY_ERROR.items()},
        )
        rows = self.table("Gateway A: INVITE failure to join error")
        documented = {s: (c, t) for cell, c, t in rows for s in statuses(cell)}
        self.assertEqual(set(documented), set(CONDITION_FOR_SIP_ENTRY_FAILURE))
        for status, (condition, errorType) in documented.items():
            found = stanzaErrorForSIPEntryFailure(status)
            self.assertEqual((found[0].value, found[1].value), (condition, errorType), status)

    def test_removalGatewayB(self) -> None:
        """
        E.5, Gateway B: C{SIP_REASON_CAUSE_FOR_MUC_REMOVAL} and
        C{DISCONNECTION_METHOD_FOR_MUC_REMOVAL} for every status of
        C{MUC_REMOVAL_STATUSES}, in the order the text gives;
        C{SIP_REASON_CAUSE_FOR_GATEWAY_B_END}.
        """
        from stoxgw.interworking.errors import (
            DISCONNECTION_METHOD_FOR_MUC_REMOVAL,
            SIP_REASON_CAUSE_FOR_GATEWAY_B_END,
            SIP_REASON_CAUSE_FOR_MUC_REMOVAL,
        )
        from stoxgw.xmpp.stanzas import MUC_REMOVAL_STATUSES

        heading = "Gateway B: MUC removal to BYE Reason and disconnection-method"
        rows = {statuses(s)[0]: (int(cause), method) for s, cause, method in self.table(heading)}
        self.assertEqual(
            rows,
            {
                status.value: (
                    SIP_REASON_CAUSE_FOR_MUC_REMOVAL[status],
                    DISCONNECTION_METHOD_FOR_MUC_REMOVAL[status].value,
                )
                for status in MUC_REMOVAL_STATUSES
            },
        )
        order = re.search(r"first of ([\d, ]+) it carries", " ".join(self.page.split()))
        assert order is not None
        self.assertEqual(statuses(order.group(1)), [s.value for s in MUC_REMOVAL_STATUSES])
        rows = self.table("Gateway B: other ends")
        self.assertEqual(
            {end: int(cause) for end, _, cause in rows},
            {end.value: cause for end, cause in SIP_REASON_CAUSE_FOR_GATEWAY_B_END.items()},
        )

    def test_removalGatewayA(self) -> None:
        """
        E.5, Gateway A: C{mucStatusForSIPBye} for no cause, the causes
        listed, other 5xx and any other cause; C{mucStatusForDisconnectionMethod}
        for every disconnection-method.
        """
        from stoxgw.formats.conferenceinfo import DisconnectionMethod
        from stoxgw.interworking.errors import (
            mucStatusForDisconnectionMethod,
            mucStatusForSIPBye,
        )

        rows = {cause: int(status) for cause, status in self.table("Gateway A: focus BYE to MUC status")}
        listed = {int(cause) for cause in rows if cause.isdigit()}
        self.assertEqual(mucStatusForSIPBye(None).value, rows.pop("none"))
        for cause in range(300, 700):
            if cause in listed:
                key = str(cause)
            elif 500 <= cause <= 599:
                key = "other 5xx"
            else:
                key = "any other"
            self.assertEqual(mucStatusForSIPBye(cause).value, rows[key], cause)
        rows = self.table("Gateway A: disconnection-method to MUC status")
        found = {}
        for method in DisconnectionMethod:
            status = mucStatusForDisconnectionMethod(method)
            found[method.value] = "none" if status is None else str(status.value)
        self.assertEqual(dict(map(tuple, rows)), found)

    def test_msrpToXMPP(self) -> None:
        """
        E.3: C{STANZA_ERROR_FOR_MSRP_STATUS}, C{"any"} standing for a row
        that applies to every method.
        """
        from stoxgw.interworking.errors import STANZA_ERROR_FOR_MSRP_STATUS

        rows = self.table("Gateway A: switch answer to XMPP error")
        self.assertEqual(
            {(int(s), None if m == "any" else m): (c, t) for s, m, c, t in rows},
            {
                (s, None if m is None else m.value): (c.value, t.value)
                for (s, m), (c, t) in STANZA_ERROR_FOR_MSRP_STATUS.items()
            },
        )

    def test_mucToMSRP(self) -> None:
        """
        E.4: C{msrpStatusForStanzaError} for each exchange, for every
        condition of C{MSRP_STATUS_FOR_EXCHANGE_CONDITION} and
        C{MSRP_STATUS_FOR_CONDITION}, and C{MSRP_STATUS_FALLBACK} for any
        other; C{MSRP_STATUS_FOR_LOCAL_FAILURE}.
        """
        from stoxgw.interworking.errors import (
            MSRP_STATUS_FALLBACK,
            MSRP_STATUS_FOR_CONDITION,
            MSRP_STATUS_FOR_EXCHANGE_CONDITION,
            MSRP_STATUS_FOR_LOCAL_FAILURE,
            MUCExchange,
            msrpStatusForStanzaError,
        )

        exchanges = (MUCExchange.NICKNAME, MUCExchange.GROUPCHAT, MUCExchange.PRIVATE)
        rows = {c: tuple(map(int, codes)) for c, *codes in self.table("Gateway B: MUC error to MSRP answer")}
        self.assertEqual(rows.pop("any other"), (MSRP_STATUS_FALLBACK,) * 3)
        conditions = {c for _, c in MSRP_STATUS_FOR_EXCHANGE_CONDITION} | set(MSRP_STATUS_FOR_CONDITION)
        self.assertEqual(
            rows,
            {
                c.value: tuple(msrpStatusForStanzaError(c, e) for e in exchanges)
                for c in conditions
            },
        )
        self.assertEqual(
            {f: int(s) for f, s in self.table("Gateway B: local refusals")},
            {f.value: s for f, s in MSRP_STATUS_FOR_LOCAL_FAILURE.items()},
        )

    def test_msrpCodes(self) -> None:
        """
        E.8: the codes of C{MSRP_STATUS_PHRASES}, each with the comment the
        MSRP layer sends (C{REASON_PHRASES}).
        """
        from stoxgw.interworking.errors import MSRP_STATUS_PHRASES
        from stoxgw.msrp.reports import REASON_PHRASES

        rows = {int(code): comment for code, comment, _ in self.table("MSRP status codes")}
        self.assertEqual(set(rows), set(MSRP_STATUS_PHRASES))
        self.assertEqual(rows, {code: REASON_PHRASES[code] for code in rows})

    def test_everyCheckedTableTested(self) -> None:
        """
        Every heading marked I{(checked)} is read by one of the table tests
        of this class (run again here, noting what they read), and nothing
        else is.
        """
        marked = set(re.findall(r"^#+ (.+?) \*\(checked\)\*\s*$", self.page, re.MULTILINE))
        for name in dir(self):
            if name.startswith("test_") and name not in (
                "test_everyCheckedTableTested",
                "test_markdownTable",
            ):
                getattr(self, name)()
        self.assertEqual(marked, self.checked)
