"""The README's commands and what CI runs stay in step: the same test selection, the same install."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def _first_block(text: str) -> list[str]:
    """The README's first indented code block: the newcomer's commands."""
    m = re.search(r"\n\n((?: {4}\S.*\n)+)", text)
    assert m, "no indented command block in the README"
    return [line.strip() for line in m.group(1).splitlines()]


def _pytest_calls(lines: list[str]) -> list[list[str]]:
    """The arguments of each pytest invocation in shell lines (commands joined by && included)."""
    calls = []
    for line in lines:
        for command in line.split("&&"):
            if command.strip().startswith("pytest "):
                calls.append(shlex.split(command)[1:])
    return calls


def _option(args: list[str], name: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == name] + [
        a.split("=", 1)[1] for a in args if a.startswith(name + "=")
    ]


def _paths(args: list[str]) -> list[str]:
    """Positional arguments: the test paths (none: testpaths, i.e. tests/)."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in ("-m", "-n", "--dist", "-p", "--timeout"):
            skip = True
        elif not a.startswith("-"):
            out.append(a)
    return out


def test_the_newcomer_commands_are_first() -> None:
    assert _first_block(README) == [
        "pip install -e . && analyze demo",
        "pip install -e '.[test]' && pytest -q -m \"not slow\"",
    ]


def test_ci_runs_the_readme_selection() -> None:
    [readme] = _pytest_calls(_first_block(README))
    ci = _pytest_calls(CI.splitlines())
    assert ci, ".ci/run runs no pytest"
    marker = _option(readme, "-m")
    assert marker == ["not slow"]
    for args in ci:
        assert _option(args, "-m") == marker, args  # the same marker expression in every step
    # Together the steps run every test directory once: what one step leaves out, another runs.
    everything = [a for a in ci if not _paths(a)]
    assert len(everything) == 1, "one step runs tests/ (less what it ignores)"
    ignored = sorted(_option(everything[0], "--ignore"))
    run_apart = sorted(p for a in ci for p in _paths(a))
    assert ignored == run_apart


def test_the_readme_shows_the_ci_steps() -> None:
    tests_section = README[README.index("## Tests"):]
    for line in CI.splitlines():
        if line.startswith("pytest "):
            assert f"    {line}\n" in tests_section, line


def test_ci_installs_the_test_extra_from_the_lock() -> None:
    assert "sync --locked --extra test" in CI
    assert ".[test]" in README


def test_the_lock_matches_pyproject() -> None:
    """uv.lock records the requirements it was made from; a dependency changed without `uv lock` shows here
    (CI's `uv sync --locked` refuses it too)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    [me] = [p for p in lock["package"] if p["name"] == project["name"]]

    def norm(requirement: str) -> tuple[str, str]:
        m = re.fullmatch(r"([A-Za-z0-9._-]+)(\[[^\]]*\])?\s*(.*)", requirement.strip())
        assert m, requirement
        return m.group(1).lower().replace("_", "-"), m.group(3).replace(" ", "")

    wanted = {norm(r) for r in project["dependencies"]}
    wanted |= {norm(r) for group in project["optional-dependencies"].values() for r in group}
    locked = {(r["name"], r.get("specifier", "")) for r in me["metadata"]["requires-dist"]}
    assert wanted == locked, "run `uv lock` after changing dependencies in pyproject.toml"
