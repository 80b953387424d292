"""The house keeps its shape: which layer may import which, and no import cycles (docs/ARCHITECTURE.md).

Read from the source with ``ast``, so a rule broken anywhere (even inside a function) fails here with the file
and the import that broke it.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, clean_env

LOCAL = ("core", "report", "users", "shapes", "plugins", "scripts", "demobot", "aws_setup")
"""Top-level packages of the checkout; ``locustfile`` loads them."""

ENGINE = ("locust", "gevent", "geventhttpclient", "flask", "websocket")
"""Libraries that make a module part of the load generator's event loop."""

RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "core": (("core",), ENGINE),
    "report": (("core", "report"), ENGINE),
    "users": (("core", "users"), ()),
    "shapes": (("core", "shapes"), ()),
    "scripts": (("core", "report", "demobot.launcher", "scripts"), ENGINE),
    "demobot": (("demobot", "core.cognito_tokens"), ENGINE),
}
"""Layer → (local modules it may import, prefixes; libraries it must not import)."""


def modules(package: str) -> Iterator[Path]:
    yield from sorted((ROOT / package).rglob("*.py"))


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every absolute module name the file imports, with its line (``from a import b`` gives ``a.b`` and ``a``)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def allowed(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


@pytest.mark.parametrize("layer", RULES)
def test_each_layer_imports_only_what_it_may(layer: str) -> None:
    local_allowed, engine_forbidden = RULES[layer]
    broken = []
    for path in modules(layer):
        for line, name in imports(path):
            top = name.split(".")[0]
            if top in LOCAL and not allowed(name, local_allowed) and not allowed(name.rsplit(".", 1)[0], local_allowed):
                broken.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
            if top in engine_forbidden:
                broken.append(f"{path.relative_to(ROOT)}:{line} imports {name} (the engine)")
    assert not broken, "\n".join(broken)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_cycles() -> None:
    """Module-level imports between the checkout's modules form no cycle (imports inside functions may)."""
    files = {module_name(path): path for package in LOCAL for path in modules(package)}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        targets = set()
        for node in tree.body:  # module level only
            found = []
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            targets |= {target for target in found if target in files and target != name}
        graph[name] = targets
    state: dict[str, int] = {}
    path_stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path_stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycle = [*path_stack[path_stack.index(target) :], target]
                raise AssertionError("import cycle: " + " → ".join(cycle))
            if target not in state:
                visit(target)
        path_stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


SHOWN_APART = {"slo", "verdict", "generator", "requests", "totals"}
"""summary.json sections the page shows at its top or in its Requests table, not in the section table."""


CODE = ("core", "report", "users", "shapes", "plugins")


@pytest.mark.parametrize("package", CODE)
def test_state_lives_on_objects_not_in_module_globals(package: str) -> None:
    """No ``global`` statement: a plugin's figures live on one object per Environment (users/common/records.py)."""
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in modules(package)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Global)
    ]
    assert not found, found


@pytest.mark.parametrize("package", CODE)
def test_options_are_declared_once_as_settings(package: str) -> None:
    """Only core/settings.py registers options; nobody reads one back with a default of their own."""
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in modules(package)
        if path.relative_to(ROOT).as_posix() not in ("core/settings.py", "core/options.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\badd_option\(|[^_.\w]option\(", line)
    ]
    assert not found, found


PRIVATE_LOCUST = re.compile(r"\._handlers\b|\._actions\b|\.parse_args\s*=")
"""Locust and argparse internals the plugins must not touch (an upgrade may change them)."""


@pytest.mark.parametrize("package", CODE)
def test_only_public_locust_hooks(package: str) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in modules(package)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PRIVATE_LOCUST.search(line)
    ]
    assert not found, found


def test_every_summary_section_is_on_the_page() -> None:
    """A plugin that adds a section to summary.json (``add_section("key", …)``) has its row on the page."""
    from report.page import SECTIONS

    added = set()
    for path in modules("plugins"):
        for node in ast.walk(ast.parse(path.read_text())):
            target = node.targets[0] if isinstance(node, ast.Assign) else None
            key = None
            if isinstance(target, ast.Subscript) and ast.unparse(target.value).endswith("SUMMARY_SECTIONS"):
                key = target.slice
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("add_section") and node.args:
                key = node.args[0]
            if isinstance(key, ast.Constant):
                added.add(key.value)
    assert {"llm", "websocket", "cloudwatch", "shape"} <= added, added  # the scan finds what it should
    assert added - SHOWN_APART <= set(SECTIONS), sorted(added - SHOWN_APART - set(SECTIONS))


def test_the_worked_example_adds_a_user_with_one_folder_and_one_line(demobot, tmp_path: Path) -> None:
    """docs/ARCHITECTURE.md's example, built as the guide says in a copy of the checkout, runs against demobot."""
    guide = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    files = re.findall(r"^`(users/one_question/[\w.]+)`:\n\n```python\n(.*?)```", guide, re.S | re.M)
    registration = re.search(r"The registration line in `locustfile.py`:\n\n```python\n(.*?)\n```", guide, re.S)
    assert len(files) == 2 and registration, "the guide's example is not where this test looks for it"
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(".git", ".venv", "reports", "__pycache__", ".*cache"))
    for name, text in files:  # one new folder …
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text(text)
    locustfile = checkout / "locustfile.py"  # … and one line
    locustfile.write_text(locustfile.read_text() + registration[1] + "\n")
    bot = demobot()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "--skip-report-page"]
        command += ["--host", bot.url, "--user-mix", "OneQuestionUser", "-u", "2", "-t", "2s", *args]
        return subprocess.run(command, cwd=checkout, env=clean_env(), capture_output=True, text=True, timeout=60)

    ran = run("--one-question", "Any news?", "--report-dir", str(tmp_path / "run"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    row = json.loads((tmp_path / "run" / "summary.json").read_text())["requests"]["POST one question"]
    assert row["count"] >= 2 and row["failures"] == 0, row
    refused = run("--one-question", " ", "--report-dir", str(tmp_path / "refused"))  # its own check, before the load
    assert refused.returncode == 2 and "--one-question: must not be empty" in refused.stderr, refused.stderr


CODE = ("core", "report", "users", "shapes", "plugins", "scripts", "demobot", "aws_setup", "bench")
"""Folders of code (the tests apart), held to the sizes below."""

MODULE_LINES, FUNCTION_LINES = 400, 60
"""A module longer than this is usually two things; a function longer than this, several."""


def test_modules_and_functions_stay_small() -> None:
    too_long = []
    everything = (*CODE, "scripts", "demobot", "aws_setup", "bench", "tests")  # the tests are modules too
    for path in [ROOT / "locustfile.py", *(p for folder in everything for p in modules(folder))]:
        text = path.read_text()
        if text.count("\n") > MODULE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert not too_long, "\n".join(too_long)
