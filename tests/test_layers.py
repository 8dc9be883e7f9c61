# -*- test-case-name: tests.test_layers -*-
"""
The import rules of docs/design.md ("Layers (imports point down only)"), checked
on the real package and shown to catch violations on synthetic graphs.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Mapping

from twisted.trial.unittest import SynchronousTestCase

import stoxgw

#: Level of each top-level part of the package (docs/design.md's table); higher
#: levels may import lower ones, never the reverse.  The wiring modules sit
#: above everything and no layer imports them.
LEVELS: Mapping[str, int] = {
    "formats": 1,
    "rooms": 1,
    "limits": 1,
    "sip": 2,
    "msrp": 2,
    "xmpp": 2,
    "chat": 3,
    "interworking": 4,
    "focus": 4,
    "tools": 5,
    "config": 6,
    "configvalues": 6,
    "logs": 6,
    "service": 6,
    "tap": 6,
}

#: Parts of the same level that must not import each other.
SIBLINGS_APART = frozenset({"sip", "msrp", "xmpp"})

#: Parts that are sans-IO (level 1): no reactor, no network.
SANS_IO = frozenset({"formats", "rooms", "limits"})

#: Parts a part must not import although they are not higher: the native
#: rooms (C{focus}) are SIP-only, and the interworking layer reaches them
#: over SIP like any other focus (docs/native-rooms.md).
APART: Mapping[str, frozenset[str]] = {
    "focus": frozenset({"xmpp", "interworking"}),
    "interworking": frozenset({"focus"}),
}


def partOf(module: str) -> str | None:
    """
    @return: the top-level part of a C{stoxgw} module name, or L{None} for a
        module outside the package or the package itself.
    """
    names = module.split(".")
    if names[0] != "stoxgw" or len(names) < 2:
        return None
    return names[1]


def violations(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """
    Check an import graph against the rules.

    @param graph: module name -> names of the modules it imports.
    @return: one line per forbidden import.
    """
    found = []
    for importer, imported in sorted(graph.items()):
        source = partOf(importer)
        if source is None:
            continue
        for target in sorted(set(imported)):
            if source in SANS_IO and target.startswith("twisted.internet"):
                found.append(f"{importer} -> {target}: sans-IO layer uses the network")
                continue
            destination = partOf(target)
            if destination is None or destination == source:
                continue
            if source in SIBLINGS_APART and destination in SIBLINGS_APART:
                found.append(f"{importer} -> {target}: {source} and {destination} never import each other")
            elif destination in APART.get(source, ()):
                found.append(f"{importer} -> {target}: {source} never imports {destination}")
            elif LEVELS.get(destination, 0) > LEVELS.get(source, 0) or (
                LEVELS.get(destination) == 6 and LEVELS.get(source, 0) < 6
            ):
                found.append(f"{importer} -> {target}: lower layer imports a higher one")
    return found


def importGraph(packageDirectory: str) -> dict[str, set[str]]:
    """
    Read every module of the package and list what it imports (statically,
    including imports inside functions).
    """
    graph: dict[str, set[str]] = {}
    root = os.path.dirname(packageDirectory)
    for directory, _, files in os.walk(packageDirectory):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(directory, name)
            module = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
            if module.endswith(".__init__"):
                module = module[: -len(".__init__")]
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            imported = graph.setdefault(module, set())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    imported.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    imported.add(node.module)
                    imported.update(f"{node.module}.{alias.name}" for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level:
                    base = module.split(".")
                    if not path.endswith("__init__.py"):
                        base = base[:-1]
                    base = base[: len(base) - node.level + 1]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                    imported.add(prefix)
                    imported.update(f"{prefix}.{alias.name}" for alias in node.names)
    return graph


class LayerRulesTests(SynchronousTestCase):
    """
    The rules themselves, on synthetic graphs: each forbidden kind of import
    is reported, allowed ones are not.
    """

    def test_siblingsNeverImportEachOther(self) -> None:
        """
        C{sip}, C{msrp} and C{xmpp} importing one another is reported.
        """
        graph = {
            "stoxgw.sip.sdp": ["stoxgw.msrp.uri"],
            "stoxgw.xmpp.muc": ["stoxgw.sip.uri"],
            "stoxgw.msrp.session": ["stoxgw.xmpp"],
        }
        self.assertEqual(len(violations(graph)), 3)
        self.assertIn("never import each other", violations(graph)[0])

    def test_lowerImportsHigher(self) -> None:
        """
        A protocol importing the session layer, a format importing a
        protocol, and a layer importing the wiring are reported.
        """
        graph = {
            "stoxgw.sip.dialog": ["stoxgw.chat.session"],
            "stoxgw.formats.cpim": ["stoxgw.msrp.message"],
            "stoxgw.chat.session": ["stoxgw.interworking.muc"],
            "stoxgw.interworking.bridge": ["stoxgw.config"],
        }
        self.assertEqual(
            violations(graph),
            [
                "stoxgw.chat.session -> stoxgw.interworking.muc: lower layer imports a higher one",
                "stoxgw.formats.cpim -> stoxgw.msrp.message: lower layer imports a higher one",
                "stoxgw.interworking.bridge -> stoxgw.config: lower layer imports a higher one",
                "stoxgw.sip.dialog -> stoxgw.chat.session: lower layer imports a higher one",
            ],
        )

    def test_focusIsSIPOnly(self) -> None:
        """
        The native rooms importing the XMPP side or the interworking layer,
        and the interworking layer importing the native rooms, are
        reported; the focus importing the chat, SIP, MSRP, formats and
        rooms parts is not.
        """
        graph = {
            "stoxgw.focus.room": ["stoxgw.xmpp.occupant", "stoxgw.chat.session"],
            "stoxgw.focus.focus": ["stoxgw.interworking.translate", "stoxgw.rooms.model"],
            "stoxgw.interworking.xmpptosip": ["stoxgw.focus.room"],
            "stoxgw.focus.routing": ["stoxgw.sip.refer", "stoxgw.msrp.session", "stoxgw.formats.cpim"],
        }
        self.assertEqual(
            violations(graph),
            [
                "stoxgw.focus.focus -> stoxgw.interworking.translate: focus never imports interworking",
                "stoxgw.focus.room -> stoxgw.xmpp.occupant: focus never imports xmpp",
                "stoxgw.interworking.xmpptosip -> stoxgw.focus.room: interworking never imports focus",
            ],
        )

    def test_sansIOUsesNoReactor(self) -> None:
        """
        A level-1 module importing C{twisted.internet} is reported.
        """
        graph = {"stoxgw.rooms.model": ["twisted.internet.reactor"]}
        self.assertEqual(len(violations(graph)), 1)

    def test_downwardImportsAllowed(self) -> None:
        """
        Imports that point down, within a part, or outside the package are
        fine.
        """
        graph = {
            "stoxgw.interworking.bridge": ["stoxgw.chat.session", "stoxgw.xmpp.muc", "stoxgw.rooms"],
            "stoxgw.chat.session": ["stoxgw.sip.dialog", "stoxgw.msrp.session", "stoxgw.formats.cpim"],
            "stoxgw.msrp.session": ["stoxgw.msrp.message", "twisted.internet.defer"],
            "stoxgw.service": ["stoxgw.interworking", "stoxgw.config", "stoxgw.logs"],
            "stoxgw.tap": ["stoxgw.service", "stoxgw.config"],
        }
        self.assertEqual(violations(graph), [])

    def test_graphReadsRelativeImports(self) -> None:
        """
        The graph reader resolves relative imports, so C{from ..msrp import x}
        in C{stoxgw/sip/} cannot slip past the rules.
        """
        directory = self.mktemp()
        os.makedirs(os.path.join(directory, "stoxgw", "sip"))
        for name in ("stoxgw/__init__.py", "stoxgw/sip/__init__.py"):
            open(os.path.join(directory, name), "w").close()
        with open(os.path.join(directory, "stoxgw", "sip", "sdp.py"), "w") as f:
            f.write("from ..msrp import uri\n")
        graph = importGraph(os.path.join(directory, "stoxgw"))
        self.assertIn("stoxgw.msrp.uri", graph["stoxgw.sip.sdp"])
        self.assertIn(
            "stoxgw.sip.sdp -> stoxgw.msrp.uri: sip and msrp never import each other",
            violations(graph),
        )


class PackageLayersTests(SynchronousTestCase):
    """
    The real package follows the rules.
    """

    def test_packageFollowsRules(self) -> None:
        """
        No module of C{stoxgw} imports against docs/design.md's layers.
        """
        graph = importGraph(os.path.dirname(stoxgw.__file__))
        self.assertIn("stoxgw.service", graph)
        self.assertEqual(violations(graph), [])


def missingTestModules(packageDirectory: str, top: str) -> list[str]:
    """
    The C{test-case-name} entries of the modules under C{packageDirectory}
    that name no module or package under C{top}.
    """
    missing = []
    for directory, _, files in os.walk(packageDirectory):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(directory, name)
            with open(path, encoding="utf-8") as f:
                first = f.readline()
            marker = "test-case-name:"
            if marker not in first:
                continue
            names = first.split(marker, 1)[1].replace("-*-", "").strip()
            for module in filter(None, (n.strip() for n in names.split(","))):
                where = os.path.join(top, *module.split("."))
                if not (os.path.isfile(where + ".py") or os.path.isdir(where)):
                    missing.append(f"{os.path.relpath(path, top)}: {module}")
    return missing


class TestCaseNameTests(SynchronousTestCase):
    """
    Each module's C{test-case-name} (what C{trial --testmodule} runs for
    it) names tests that exist.
    """

    def test_packageNamesExistingTests(self) -> None:
        """
        Every C{test-case-name} in C{stoxgw/} and C{bench/} resolves.
        """
        package = os.path.dirname(stoxgw.__file__)
        top = os.path.dirname(package)
        self.assertEqual(missingTestModules(package, top), [])
        self.assertEqual(missingTestModules(os.path.join(top, "bench"), top), [])

    def test_missingNamed(self) -> None:
        """
        A name without a module is reported with the file that has it.
        """
        top = self.mktemp()
        os.makedirs(os.path.join(top, "pkg"))
        os.makedirs(os.path.join(top, "tests"))
        with open(os.path.join(top, "tests", "test_a.py"), "w") as f:
            f.write("")
        with open(os.path.join(top, "pkg", "a.py"), "w") as f:
            f.write("# -*- test-case-name: tests.test_a,tests.test_gone -*-\n")
        self.assertEqual(
            missingTestModules(os.path.join(top, "pkg"), top),
            [os.path.join("pkg", "a.py") + ": tests.test_gone"],
        )
