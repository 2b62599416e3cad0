"""A JupyterLab server on localhost and a headless Chromium page for the browser tests.

The server serves a temporary copy of ``notebooks/`` (the tests type into notebooks and
JupyterLab autosaves; the repository's copies are never touched) from this interpreter, with
every Jupyter directory (config, data, runtime, settings, workspaces, IPython) in the same
temporary folder so that nothing from the user's home leaks in or is written there. Its
kernels run *live*: ``LQFT_LAB_HEADLESS=0`` overrides the ``=1`` that pytest-env sets for
every other test, and ``MPLBACKEND`` is dropped, as in a user's JupyterLab.

Chromium is Debian's (``/usr/bin/chromium``, or ``LQFT_LAB_CHROMIUM``), driven by Playwright
for Python; ``playwright install`` is never needed. Without either, the tests fail under CI
(``CI`` set, as ``.ci/run`` installs both) and are skipped with the reason elsewhere.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "build" / "e2e"

# Root runs need --no-sandbox; the rest keeps Chromium off the (closed) network and off GPUs.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# JupyterLab user settings for the test profile: every cell in the DOM (no windowing, so a
# locator finds cells outside the viewport), and no news or update checks.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def unavailable(reason: str) -> None:
    """Fail under CI (which installs everything the browser tests need), skip elsewhere."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason} (CI is set, and .ci/run installs it)", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str:
    """Debian's Chromium, or the executable named by ``LQFT_LAB_CHROMIUM``."""
    path = os.environ.get("LQFT_LAB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        unavailable(f"no Chromium at {path}: apt-get install chromium, or set LQFT_LAB_CHROMIUM")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LabServer:
    """A running JupyterLab: its URL, token, served folder and log file."""

    url: str
    token: str
    root_dir: Path
    log: Path
    process: subprocess.Popen

    def lab_url(self, path: str) -> str:
        return f"{self.url}/lab/tree/{path}?token={self.token}"

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def _request(self, path: str, method: str = "GET", timeout: float = 5.0):
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        return urllib.request.urlopen(request, timeout=timeout)

    def shutdown_kernels(self) -> None:
        """Shut down every running kernel (a test's computations end with it)."""
        with self._request("/api/kernels") as response:
            kernels = json.load(response)
        for kernel in kernels:
            self._request(f"/api/kernels/{kernel['id']}", method="DELETE", timeout=30).close()

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited early:\n{self.log_tail()}")
            try:
                with self._request("/api/status", timeout=2.0) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def shutdown(self) -> None:
        """Ask the server to stop (it shuts its kernels down), then make sure it has."""
        if self.process.poll() is None:
            try:
                self._request("/api/shutdown", method="POST").close()
            except (urllib.error.URLError, OSError):
                pass
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        # The server leads its own process group (start_new_session): end what is left of it.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.process.poll() is not None:
                break
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory) -> LabServer:
    """JupyterLab on a free localhost port, serving a temporary copy of ``notebooks/``."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root_dir = base / "notebooks"
    shutil.copytree(NOTEBOOKS, root_dir, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = base / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))

    env = dict(os.environ)
    env.pop("MPLBACKEND", None)
    env.update(
        LQFT_LAB_HEADLESS="0",  # live dashboards, whatever pytest-env set for other tests
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),  # leave a core to the browser
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
        IPYTHONDIR=str(base / "ipython"),
    )
    token = secrets.token_hex(24)
    port = _free_port()
    log = base / "jupyterlab.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            cmd,
            env=env,
            cwd=base,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LabServer(f"http://127.0.0.1:{port}", token, root_dir, log, process)
    try:
        server.wait_ready()
        yield server
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def chromium() -> str:
    """Chromium's executable, once Playwright is known to be importable."""
    executable = chromium_path()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("Playwright for Python is not installed: pip install playwright")
    return executable


@pytest.fixture
def page(chromium, lab_server):
    """A fresh headless Chromium page (1400×1000); console errors land in ``page.errors``."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.errors = []
            page.on(
                "console",
                lambda msg: page.errors.append(msg.text) if msg.type == "error" else None,
            )
            page.on("pageerror", lambda err: page.errors.append(f"uncaught: {err}"))
            page.on(
                "requestfailed",
                lambda req: page.errors.append(f"request failed: {req.url} ({req.failure})"),
            )
            yield page
        finally:
            browser.close()
