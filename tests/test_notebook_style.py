"""Every notebook reads as a tutorial: clean markdown, short code cells, logic in the package.

These checks read the notebooks' JSON and execute nothing, so they run in a second:

* Markdown holds no control character and no LaTeX command split by a newline. Both are what
  a non-raw Python string leaves of LaTeX: ``"\\theta"`` written as ``"\theta"`` becomes a
  tab and ``heta``, ``"\nabla"`` a line break and ``abla``. MathJax renders them without an
  error (as "heta", "abla"), so a browser does not catch them; this test does.
* String literals in code cells hold no control character other than a newline: such a
  string may become markdown or a plot label (``display(Markdown("$\theta$"))``).
* A code cell is one step: at most ``MAX_CELL_LINES`` lines, and no ``def`` or ``class``
  (functions and classes live in ``lqft_lab/``, where they are tested).
* Each notebook has a ``parameters`` cell first and one cell tagged ``explore``.

The markdown outputs of the executed copies are checked by ``test_notebooks.py``.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from lqft_lab.notebooks import find_notebooks

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = find_notebooks(NOTEBOOKS) if NOTEBOOKS.is_dir() else []
MAX_CELL_LINES = 40

# What a newline escape leaves of LaTeX commands that start with "\n" (\nabla, \nu, \neq,
# \not, \newline), at the start of a line.
SPLIT_COMMAND = re.compile(r"\n(abla|u|eq|ot|ewline)(?![A-Za-z])")
# IPython magics and shell escapes are not Python: blank them before parsing.
MAGIC = re.compile(r"^\s*[%!].*$", re.M)


def control_characters(text: str) -> list[str]:
    """The control characters in ``text`` other than a newline, as ``repr``s."""
    return sorted(
        {repr(ch) for ch in text if ord(ch) < 32 and ch != "\n"}
        | ({repr("\x7f")} if "\x7f" in text else set())
    )


def markdown_problems(text: str) -> list[str]:
    """Why ``text`` (markdown) would render broken; empty when it is clean."""
    problems = []
    bad = control_characters(text)
    if bad:
        problems.append(f"control characters {', '.join(bad)} (LaTeX through a non-raw string?)")
    for match in SPLIT_COMMAND.finditer(text):
        start = max(0, match.start() - 30)
        problems.append(
            f"a LaTeX command split by a newline: {text[start : match.end() + 10]!r} "
            f"(\\n{match.group(1)} through a non-raw string?)"
        )
    return problems


def code_problems(source: str) -> list[str]:
    """Why ``source`` (a code cell) is not one step; empty when it is."""
    problems = []
    n_lines = source.count("\n") + 1
    if n_lines > MAX_CELL_LINES:
        problems.append(f"{n_lines} lines (at most {MAX_CELL_LINES}: one step per cell)")
    try:
        tree = ast.parse(MAGIC.sub("", source))
    except SyntaxError as err:
        return problems + [f"does not parse: {err}"]
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            kind = "class" if isinstance(node, ast.ClassDef) else "def"
            problems.append(f"defines {kind} {node.name} (move it into lqft_lab/ and test it)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            bad = control_characters(node.value)
            if bad:
                problems.append(
                    f"the string {node.value[:40]!r} holds {', '.join(bad)} "
                    "(LaTeX in a non-raw string?)"
                )
    return problems


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_markdown_renders_clean(path):
    found = [
        f"cell {i}: {problem}"
        for i, cell in enumerate(_cells(path))
        if cell["cell_type"] == "markdown"
        for problem in markdown_problems(_source(cell))
    ]
    assert not found, f"{path.name}:\n" + "\n".join(found)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_each_code_cell_is_one_step(path):
    found = [
        f"cell {i}: {problem}"
        for i, cell in enumerate(_cells(path))
        if cell["cell_type"] == "code"
        for problem in code_problems(_source(cell))
    ]
    assert not found, f"{path.name}:\n" + "\n".join(found)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_parameters_first_and_one_explore_cell(path):
    code = [c for c in _cells(path) if c["cell_type"] == "code"]
    tags = [c.get("metadata", {}).get("tags", []) for c in code]
    assert "parameters" in tags[0], f"{path.name}: the first code cell is not tagged parameters"
    explore = [i for i, t in enumerate(tags) if "explore" in t]
    assert len(explore) == 1, f"{path.name}: {len(explore)} code cells tagged explore, want 1"


# The checks themselves, on what they must catch and what they must let through.


def mangle(latex: str) -> str:
    """What a non-raw Python string makes of ``latex``: ``\\t``, ``\\b``, ``\\n`` escapes."""
    return latex.replace("\\t", "\t").replace("\\b", "\b").replace("\\n", "\n")


def test_markdown_check_catches_what_a_non_raw_string_leaves():
    latex = r"$E_{\theta\sim p}$ and $\nabla_\theta$ and $\beta$ and $\nu$"
    problems = markdown_problems(mangle(latex))
    assert any("'\\t'" in p and "'\\x08'" in p for p in problems), problems
    assert sum("split by a newline" in p for p in problems) == 2, problems
    assert markdown_problems(latex) == []
    # Ordinary prose across lines is not a split command.
    assert markdown_problems("the\nunit is not\nother\nequal\nusual") == []


def test_code_check_catches_long_cells_definitions_and_control_characters():
    assert code_problems("\n".join(["x = 1"] * MAX_CELL_LINES)) == []
    assert "41 lines" in code_problems("\n".join(["x = 1"] * (MAX_CELL_LINES + 1)))[0]
    assert "defines def f" in code_problems("def f():\n    return 1")[0]
    assert "defines class C" in code_problems("class C:\n    pass")[0]
    assert "'\\t'" in code_problems(mangle('display(Markdown("$\\theta$"))'))[0]
    assert code_problems('display(Markdown(r"$\\theta$"))\n%time x = 1') == []


def test_the_checks_fail_on_notebook_02_as_it_was():
    """The "Two losses" paragraph of notebook 02 before it was mended (commit 6dc0738)."""
    before = mangle(
        r"$\mathrm{KL}(p\|q) = E_{\theta\sim p}[\log p(\theta) - \log q(\theta)]$, whose "
        "gradient\n"
        r"$-E_p[\nabla\log q]$ is an ordinary average over draws of the target"
    )
    assert "\theta" in before and r"\nabla" not in before  # as the notebook held it
    problems = markdown_problems(before)
    assert len(problems) == 2 and "'\\t'" in problems[0] and "abla" in problems[1], problems
