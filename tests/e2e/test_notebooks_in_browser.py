"""Every numbered notebook in a real browser: its equations typeset and its Explore widget runs.

The other notebook tests check what a notebook computes; this module checks what a reader
sees. For each notebook, JupyterLab in headless Chromium (``conftest.py``: one server for the
module, one page per notebook) opens the copy that ``notebook_metrics`` executed
(``build/notebooks-test/<stem>.ipynb``; nothing is executed twice), put in place of the
notebook in the server's temporary copy of ``notebooks/`` (the kernel's working directory is
the notebooks folder, as under papermill; the repository's files are never written), and:

1. **Equations.** Waits until every markdown cell is rendered and MathJax has typeset it
   (windowing is off, so all cells are in the DOM), then fails on a MathJax error
   (``mjx-merror``, or an undefined macro, which MathJax shows in red instead), on math left
   as text (``$…$``, ``$$…$$`` or a stray ``$`` in a rendered markdown cell's text outside
   ``code`` and ``pre``), and on a widget error (``BROKEN`` of ``test_browser.py``) in the
   page or its console. Screenshot of the first screen: ``build/e2e/<stem>.png``.
2. **Explore widget.** The notebook must have one code cell tagged ``explore`` (found in
   the executed copy's JSON; with windowing off the DOM's cells are in the same order).
   The cell tagged ``parameters``, then the explore cell, run in the live kernel through
   the UI (click the prompt, Shift+Enter). The widget (``lqft_lab/widgets/explore.py``)
   shows its inputs, a primary button ``Run`` (notebook 01's older explorer: ``Train``),
   ``Stop`` and a status line ``idle ·``, ``running · …``, ``stopped · …``, ``done · …`` or
   ``error · …`` (notebook 01's training dashboard: ``ready · step 0 / N``, ``running ·
   step …``, ``done · …``). The test halves the number in the input labelled "… steps …"
   (every explorer has one; a shorter run), clicks Run, waits for ``running`` or ``done``,
   then for ``done`` within ``RUN_S`` seconds, or clicks Stop and waits for ``stopped``.
   The status must never read ``error``, and no widget error may appear. Screenshot:
   ``build/e2e/<stem>-explore.png``.

Failure messages name the notebook and quote the offending text; a failure also leaves
``build/e2e/<stem>-failure.png`` and prints the page's console errors and the server's log.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from test_browser import assert_not_broken, prompt, wait_until

from lqft_lab.notebooks import find_notebooks

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "e2e"  # as in conftest.py
EXECUTED = ROOT / "build" / "notebooks-test"  # where notebook_metrics writes (tests/conftest.py)
NOTEBOOKS = find_notebooks(ROOT / "notebooks")

# Time limits. In `make test` this module's first test is the first to ask for
# notebook_metrics, and so waits for the papermill run of every notebook: the limit of
# test_notebooks.py's tests for that (RUN_ALL_TIMEOUT), plus the browser part's. That took
# 17-34 s per notebook on an idle 2-core machine, and up to 230 s (notebook 01, the server
# starting included) on one loaded 10-fold by other runs.
RUN_ALL_S = 2700
BROWSER_S = 480
TYPESET_S = 60.0  # MathJax loads lazily on first use; a busy 2-core machine needs a while
RUN_S = 90.0  # a run that has not finished by then is stopped (Stop must work, too)
STARTED_S = 60.0  # for the status to change after a click (notebook 01 builds a dashboard)
# The status line: "running · step 40 / 200"; notebook 01's: "error: <message> · step …".
STATUS = re.compile(r"^(idle|ready|running|stopped|done|error)\b[^·\n]*·")
# Math MathJax left as text: display math first, then inline (within a paragraph), then a
# stray dollar (what is left of a pair MathJax matched differently, e.g. "$x^{2$ … $y$").
UNRENDERED = re.compile(r"\$\$.+?\$\$|\$(?:[^$\n]|\n(?!\s*\n))+?\$|\$", re.S)

# The cells of the notebook in view (a hidden panel would be another notebook's).
CELLS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-cell"
# Per markdown cell (index among all cells): whether it has been rendered, its text without
# code, pre and typeset math, how many formulas MathJax typeset, and its MathJax errors.
MARKDOWN_JS = r"""() => {
    const cells = Array.from(document.querySelectorAll("CELLS"));
    const found = [];
    cells.forEach((cell, index) => {
        if (!cell.classList.contains("jp-MarkdownCell")) return;
        const md = cell.querySelector(".jp-RenderedMarkdown");
        // Rendering is asynchronous: the node may still be empty (an empty cell renders a
        // placeholder text, so a rendered cell never is).
        if (!md || !md.textContent.trim()) { found.push({index, rendered: false}); return; }
        // A TeX error: its message and source (MathJax's hidden MathML holds the source).
        const errors = Array.from(md.querySelectorAll("mjx-assistive-mml merror")).map(
            e => `${e.getAttribute("data-mjx-error")}: ${e.textContent.trim()}`);
        const shown = md.querySelectorAll("mjx-merror").length;
        if (shown > errors.length) errors.push(`${shown} mjx-merror elements`);
        // An undefined macro is no merror: MathJax shows its name in red.
        md.querySelectorAll('mjx-assistive-mml mtext[mathcolor="red"]').forEach(e => {
            if (e.textContent.startsWith("\\")) errors.push(`undefined macro ${e.textContent}`);
        });
        const text = md.cloneNode(true);
        text.querySelectorAll("code, pre, mjx-container").forEach(e => e.remove());
        found.push({index, rendered: true, text: text.textContent,
                    math: md.querySelectorAll("mjx-container").length, errors});
    });
    return found;
}""".replace("CELLS", CELLS)


def cells_tagged(cells: list[dict], tag: str) -> list[int]:
    """Indices of the code cells carrying ``tag`` in their metadata."""
    return [
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "code" and tag in c["metadata"].get("tags", [])
    ]


def quote(text: str, start: int, end: int, around: int = 40) -> str:
    """``text[start:end]`` with some context, on one line."""
    snippet = text[max(0, start - around) : end + around]
    return " ".join(snippet.split())


def typeset_markdown(page, stem: str, n_markdown: int) -> list[dict]:
    """Wait until every markdown cell is rendered and MathJax has typeset them; return what
    :data:`MARKDOWN_JS` finds then.

    MathJax typesets a cell as it renders (synchronously once MathJax is loaded), so the
    page is done when all ``n_markdown`` cells are rendered and nothing changes any more:
    no math is left as text, or the same math has been left for a few seconds.
    """
    seen: dict = {}

    def settled():
        cells = page.evaluate(MARKDOWN_JS)
        key = (
            sum(c["rendered"] for c in cells),
            sum(c.get("math", 0) for c in cells),
            tuple(m.group() for c in cells for m in UNRENDERED.finditer(c.get("text", ""))),
        )
        now = time.monotonic()
        if key != seen.get("key"):
            seen.update(key=key, since=now)
        rendered = len(cells) == n_markdown and key[0] == n_markdown
        if rendered and (not key[2] or now - seen["since"] > 5.0):
            return cells
        return None

    return wait_until(
        page,
        settled,
        lambda: (
            f"{stem}: MathJax to typeset {n_markdown} markdown cells (last seen "
            f"rendered, formulas, unrendered: {seen.get('key')})"
        ),
        TYPESET_S,
        poll_ms=500,
    )


def markdown_problems(stem: str, cells: list[dict]) -> list[str]:
    """MathJax errors and math left as text, one line each, quoting the text."""
    problems = []
    for cell in cells:
        where = f"{stem}, markdown cell {cell['index']}"
        problems += [f"{where}: MathJax error: {error}" for error in cell["errors"]]
        text = cell["text"]
        problems += [
            f"{where}: math not typeset: “{quote(text, m.start(), m.end())}”"
            for m in UNRENDERED.finditer(text)
        ]
    return problems


# The values of the page's Bokeh number inputs (panel's IntInput) labelled "… steps …".
STEPS_JS = """() => Array.from(Bokeh.documents).flatMap(doc => Array.from(doc.all_models))
    .filter(m => m.type === "Spinner" && /steps/.test(m.title)).map(m => m.value)"""
# Records every text the prompt of a cell shows from now on (``[*]:`` included, however
# briefly it shows).
WATCH_PROMPT_JS = """(el) => {
    el.lqftPrompts = [];
    new MutationObserver(() => el.lqftPrompts.push(el.textContent.trim()))
        .observe(el, {childList: true, subtree: true, characterData: true});
}"""


def run_executed_cell(page, cell, timeout: float = 120.0) -> str:
    """Select ``cell``, Shift+Enter, wait until it has run; returns its output text.

    Unlike ``run_cell`` of ``test_browser.py`` this does not wait for a new execution
    count: a cell of an executed notebook may show the count it gets again (``[1]:``).
    It waits for the prompt to have shown ``[*]:`` and to show a count again.
    """
    input_prompt = cell.locator(".jp-InputPrompt")
    cell.scroll_into_view_if_needed()
    input_prompt.evaluate(WATCH_PROMPT_JS)
    input_prompt.click()
    page.keyboard.press("Shift+Enter")
    wait_until(
        page,
        lambda: (
            "[*]:" in input_prompt.evaluate("el => el.lqftPrompts")
            and re.fullmatch(r"\[\d+\]:", prompt(cell))
        ),
        f"cell {cell.locator('.jp-InputArea-editor').inner_text()[:60]!r} to run",
        timeout,
    )
    output = cell.locator(".jp-OutputArea").inner_text()
    assert "Traceback" not in output, output
    return output


def fewer_steps(page, widget, stem: str) -> str:
    """Halve the explorer's steps (every explorer has a "… steps …" input: how long a run
    is), to keep the run short; returns what was changed.

    Tab, as a user leaves the field, commits the value (Enter does not, in a Bokeh number
    input); the test waits until the page's Bokeh model holds it, so the kernel gets the new
    value before the click on Run (panel sends both, in order, on the same comm).
    """
    field = widget.get_by_label(re.compile("steps"))
    assert field.count() == 1, f"{stem}: {field.count()} inputs labelled '…steps…', not one"
    old = int(field.input_value())
    new = max(old // 2, min(old, 20))  # the sampling explorers need 20 production steps
    field.fill(str(new))
    field.press("Tab")
    wait_until(
        page,
        lambda: new in page.evaluate(STEPS_JS),
        lambda: f"{stem}: the steps input's model to hold {new} ({page.evaluate(STEPS_JS)})",
    )
    return f"steps {old} → {new}"


class StatusWatch:
    """Reads the explore widget's status line and fails on ``error``; ``lines`` holds the
    first line of each status in turn and the latest line."""

    def __init__(self, page, widget, stem: str, changed: str):
        self.page, self.widget, self.stem, self.changed = page, widget, stem, changed
        self.first: list[str] = []
        self.latest = ""

    @property
    def lines(self) -> list[str]:
        return self.first + ([self.latest] if self.latest not in self.first else [])

    def now(self) -> str | None:
        line = self.widget.get_by_text(STATUS)
        text = line.first.inner_text().strip() if line.count() else ""
        match = STATUS.match(text)
        if not match:
            return None
        if not self.first or not self.first[-1].startswith(match.group(1)):
            self.first.append(text)
        self.latest = text
        assert match.group(1) != "error", (
            f"{self.stem}: the explorer reports {text!r} ({self.changed})"
        )
        return match.group(1)

    def wait(self, wanted: tuple[str, ...], timeout: float, what: str = "") -> str | None:
        """Poll until the status is one of ``wanted``; after ``timeout`` seconds return
        ``None``, or fail saying ``what`` when given."""
        deadline = time.monotonic() + timeout
        while (now := self.now()) not in wanted:
            if time.monotonic() > deadline:
                assert not what, f"{self.stem}: no status {what} (seen: {self.lines})"
                return None
            self.page.wait_for_timeout(300)
        return now


@pytest.fixture(scope="module")
def executed_lab(lab_server, notebook_metrics):
    """The lab server, its notebooks replaced by the executed copies ``notebook_metrics`` wrote
    (the copies in ``notebooks/`` and ``build/`` are never written to)."""
    for nb in NOTEBOOKS:
        executed = EXECUTED / nb.name
        if executed.exists():
            shutil.copyfile(executed, lab_server.root_dir / nb.name)
        else:
            (lab_server.root_dir / nb.name).unlink(missing_ok=True)
    return lab_server


@pytest.mark.browser
@pytest.mark.notebooks
@pytest.mark.timeout(RUN_ALL_S + BROWSER_S)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_in_chromium(notebook, page, executed_lab, notebook_metrics):
    stem = notebook.stem
    executed = EXECUTED / notebook.name
    meta = notebook_metrics.get("_meta", {}).get(stem, {})
    assert executed.exists(), f"{stem}: no executed copy at {executed} ({meta})"
    cells = json.loads(executed.read_text())["cells"]
    n_markdown = sum(c["cell_type"] == "markdown" for c in cells)
    (ARTIFACTS / f"{stem}-failure.png").unlink(missing_ok=True)
    t0 = time.monotonic()
    times: dict[str, float] = {}
    try:
        # 1. The executed copy: every markdown cell typeset, no error on the first screen.
        # ?reset: a fresh workspace, not the previous test's tabs.
        page.goto(executed_lab.lab_url(notebook.name) + "&reset")
        dom_cells = page.locator(CELLS)
        dom_cells.first.wait_for(timeout=90_000)
        page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(
            state="attached", timeout=90_000
        )
        wait_until(page, lambda: dom_cells.count() == len(cells), f"{stem}: {len(cells)} cells")
        times["lab open"] = time.monotonic() - t0
        markdown = typeset_markdown(page, stem, n_markdown)
        times[f"{sum(c['math'] for c in markdown)} formulas typeset"] = time.monotonic() - t0
        page.screenshot(path=str(ARTIFACTS / f"{stem}.png"))
        # Reported with the Explore widget's outcome, not instead of it.
        problems = markdown_problems(stem, markdown)
        print(*problems, sep="\n")
        assert_not_broken(page)

        # 2. The Explore widget, live: parameters, explore cell, change an input, Run.
        explore = cells_tagged(cells, "explore")
        if len(explore) != 1:
            many = f"{len(explore)} code cells tagged explore ({explore}), not one"
            problems.append(f"{stem}: {many if explore else 'no cell tagged explore'}")
            pytest.fail("\n".join(problems), pytrace=False)
        (parameters,) = cells_tagged(cells, "parameters")
        run_executed_cell(page, dom_cells.nth(parameters))
        cell = dom_cells.nth(explore[0])
        run_executed_cell(page, cell)
        widget = cell.locator(".jp-OutputArea")
        run = widget.get_by_role("button", name=re.compile(r"^\s*(Run|Train)\s*$"))
        stop = widget.get_by_role("button", name=re.compile(r"^\s*Stop\s*$")).first
        wait_until(page, lambda: run.count() == 1 and run.is_visible(), f"{stem}: a Run button")
        assert_not_broken(page)
        times["explore widget shown"] = time.monotonic() - t0

        changed = fewer_steps(page, widget, stem)
        run.click()
        status = StatusWatch(page, widget, stem, changed)
        status.wait(("running", "done"), STARTED_S, "'running' or 'done' after Run")
        times["running"] = time.monotonic() - t0
        if status.wait(("done",), RUN_S) != "done":
            stop.click()  # the run may end meanwhile: done is fine, too
            status.wait(("stopped", "done"), STARTED_S, "'stopped' after Stop")
        times[status.lines[-1]] = time.monotonic() - t0
        assert_not_broken(page)
        widget.scroll_into_view_if_needed()
        page.wait_for_timeout(500)  # the last redraw
        page.screenshot(path=str(ARTIFACTS / f"{stem}-explore.png"))
        print(f"{stem}: {changed}; status lines {status.lines}")
        print("console errors (not fatal):", *page.errors, sep="\n  ")
        assert not problems, "\n".join(problems)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"{stem}-failure.png"))
        print("console errors:", *page.errors, sep="\n  ")
        print("server log:", executed_lab.log_tail(), sep="\n")
        raise
    finally:
        print(*(f"{t:6.1f} s  {what}" for what, t in times.items()), sep="\n")
        executed_lab.shutdown_kernels()  # a run left going would slow the next notebook
