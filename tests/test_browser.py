"""In a real browser: JupyterLab runs notebook 04 and Voilà serves the explorer app; a changed control changes
the rendered answers. Debian's Chromium, driven by Playwright; screenshots go to tests/artifacts/ and the
README's two to docs/screenshots/.

Locally a missing Chromium, Playwright or Jupyter skips these tests with the reason; with ``CI`` set it fails.
Every server runs on 127.0.0.1 in its own session, is waited for with a deadline, and is stopped in a
``finally`` (SIGTERM, then SIGKILL for whatever is left of its process group).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "tests" / "artifacts"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
BIN = Path(sys.executable).parent
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NOTEBOOK = "04-the-missing-certificate-debate.ipynb"
APP = "explorer-app.ipynb"
#: Seconds a server may take to start, and a page to show the explorer.
START_TIMEOUT = 45.0
RENDER_TIMEOUT_MS = 60_000


def _require(condition: bool, reason: str) -> None:
    """Skip when something the test needs is missing — but fail under CI, where it must be there."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)")
    pytest.skip(reason)


def _free_port() -> int:
    """A port that was free a moment ago (the caller retries if someone takes it meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server (it shuts its kernels down), then SIGKILL what is left of its process group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # the group we created with start_new_session


@contextlib.contextmanager
def _server(
    command: Callable[[int], list[str]],
    ready: Callable[[int], bool],
    *,
    log: Path,
    env: dict[str, str],
    cwd: Path,
) -> Iterator[int]:
    """Start ``command(port)`` on a free port (retrying on a collision), wait until ``ready(port)``, yield
    the port; always stop the process."""
    for _attempt in range(3):
        port = _free_port()
        with log.open("ab") as out:
            process = subprocess.Popen(
                command(port),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while process.poll() is None and time.monotonic() < deadline:
                if ready(port):
                    break
                time.sleep(0.25)
            else:
                if process.poll() is None:
                    pytest.fail(
                        f"{command(port)[0]} not ready after {START_TIMEOUT:.0f} s; see {log}"
                    )
                continue  # it exited: most likely the port was taken between bind and listen; retry
            yield port
            return
        finally:
            _stop(process)
    pytest.fail(f"{command(0)[0]} did not start in 3 attempts; see {log}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL we built
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A private copy of notebooks/, and private Jupyter runtime, workspace and user-settings folders."""
    _require(
        CHROMIUM.exists(), f"Debian's Chromium is not installed at {CHROMIUM} (make system-deps)"
    )
    _require(
        (BIN / "jupyter-lab").exists() and (BIN / "voila").exists(),
        f"jupyter-lab and voila are not in {BIN} (the notebook extra)",
    )
    base = tmp_path_factory.mktemp("browser")
    root = base / "notebooks"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = base / "settings"
    for plugin, values in {
        "@jupyterlab/notebook-extension/tracker": {
            "windowingMode": "none",
            "autoStartDefaultKernel": True,
        },
        "@jupyterlab/apputils-extension/notification": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
    }.items():
        target = settings / f"{plugin}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    env = dict(os.environ)
    env.update(
        {
            "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
            "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "PYTHONUNBUFFERED": "1",
        }
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return {"root": root, "env": env}


@pytest.fixture(scope="module")
def browser(workspace: dict[str, Any]) -> Iterator[Any]:
    """Debian's Chromium under Playwright (never a downloaded browser), closed at the end."""
    _require(
        importlib.util.find_spec("playwright") is not None,
        "Playwright for Python is not installed (the dev extra)",
    )
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield chromium
        finally:
            chromium.close()


_VERDICTS = "() => [...document.querySelectorAll('.mtlslab-explorer .mtlslab-verdict')].map(e => e.innerText.trim())"


def _verdicts(page: Any) -> list[str]:
    """The verdict badge of every answer card of the explorer, as rendered."""
    found: list[str] = page.evaluate(_VERDICTS)
    return found


def _wait_for_the_threads_case(page: Any) -> list[str]:
    """The explorer has rendered the thread's case: the readings disagree (400 and 401 side by side)."""
    page.locator(".mtlslab-explorer .mtlslab-answers").first.wait_for(
        state="visible", timeout=RENDER_TIMEOUT_MS
    )
    page.wait_for_function(
        f"() => ({_VERDICTS})().includes('400 invalid_request')", timeout=RENDER_TIMEOUT_MS
    )
    before = _verdicts(page)
    assert "400 invalid_request" in before, before
    assert "401 invalid_token" in before, before
    return before


def _give_the_client_its_certificate(page: Any, before: list[str]) -> list[str]:
    """Set the explorer's certificate control to `client`: every reading now answers 200."""
    select = page.locator(".mtlslab-explorer .mtlslab-control-certificate select").first
    select.select_option(label="client")
    page.wait_for_function(
        f"() => {{ const v = ({_VERDICTS})(); return v.length > 0 && v.every(t => t === '200'); }}",
        timeout=20_000,
    )
    after = _verdicts(page)
    assert len(after) == len(before), after
    assert set(after) == {"200"}, after
    return after


def _shoot(page: Any, element: Any, path: Path) -> None:
    """A screenshot of one element, in a viewport tall enough that no scrolling pane cuts it."""
    page.set_viewport_size({"width": 1800, "height": 2800})
    element.scroll_into_view_if_needed()
    page.wait_for_timeout(400)
    element.screenshot(path=str(path))


def _keep(shot: Path, readme_name: str) -> None:
    """Refresh the README's screenshot when asked (MTLSLAB_UPDATE_SCREENSHOTS=1) or when it is missing;
    every run keeps its own in tests/artifacts/."""
    target = SCREENSHOTS / readme_name
    if os.environ.get("MTLSLAB_UPDATE_SCREENSHOTS") or not target.exists():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)


def test_jupyterlab_runs_notebook_04_and_the_explorer_follows_its_controls(
    workspace: dict[str, Any], browser: Any
) -> None:
    """JupyterLab runs notebook 04 to the end; setting the explorer's certificate to `client` turns 400/401 into 200."""
    token = secrets.token_hex(16)
    root: Path = workspace["root"]
    user = ["--allow-root"] if os.geteuid() == 0 else []

    def command(port: int) -> list[str]:
        return [
            str(BIN / "jupyter-lab"),
            "--no-browser",
            f"--ServerApp.token={token}",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *user,
        ]

    def ready(port: int) -> bool:
        return _http_ok(f"http://127.0.0.1:{port}/api/status?token={token}")

    with _server(
        command, ready, log=ARTIFACTS / "jupyterlab.log", env=workspace["env"], cwd=root
    ) as port:
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        try:
            page.goto(
                f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK}?token={token}",
                timeout=RENDER_TIMEOUT_MS,
            )
            page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=RENDER_TIMEOUT_MS)
            page.wait_for_function(  # the kernel is up and idle: "Run All Cells" is enabled now
                "() => /\\|\\s*Idle/.test(document.getElementById('jp-main-statusbar')?.innerText ?? '')",
                timeout=RENDER_TIMEOUT_MS,
            )
            dialog = page.locator(".jp-Dialog .jp-mod-accept")
            if dialog.count():  # a kernel chooser despite the setting: take the notebook's python3
                dialog.first.click()
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            before = _wait_for_the_threads_case(page)
            explorer = page.locator(".mtlslab-explorer").first
            # The sequence diagram: Mermaid, rendered offline by JupyterLab (as an <img> of SVG).
            explorer.locator(".mtlslab-diagram .jp-RenderedMermaid img").first.wait_for(
                state="visible", timeout=20_000
            )
            shot = ARTIFACTS / "jupyterlab-explorer.png"
            _shoot(page, explorer, shot)
            _keep(shot, "explorer.png")
            _give_the_client_its_certificate(page, before)
            _shoot(page, explorer, ARTIFACTS / "jupyterlab-explorer-after.png")
            _shoot(page, page.locator(".mtlslab-matrix").first, ARTIFACTS / "jupyterlab-matrix.png")
        finally:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(ARTIFACTS / "jupyterlab-last.png"))
            page.close()
            _shutdown_kernels(port, token)


def _shutdown_kernels(port: int, token: str) -> None:
    """Ask JupyterLab to shut down the kernels this test started (bounded; the server stop follows anyway)."""
    base = f"http://127.0.0.1:{port}/api/kernels"
    headers = {"Authorization": f"token {token}"}
    with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
        request = urllib.request.Request(base, headers=headers)
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback URL we built
            kernels = json.load(response)
        for kernel in kernels:
            url = f"{base}/{kernel['id']}"
            delete = urllib.request.Request(url, headers=headers, method="DELETE")  # noqa: S310
            with urllib.request.urlopen(delete, timeout=10):  # noqa: S310 - loopback URL we built
                pass


def test_voila_app_serves_the_explorer_and_follows_its_controls(
    workspace: dict[str, Any], browser: Any
) -> None:
    """The Voilà app renders the explorer; a changed control changes the answers; the Matrix tab shows the matrix."""
    root: Path = workspace["root"]

    def command(port: int) -> list[str]:
        return [
            str(BIN / "voila"),
            str(root / APP),
            "--no-browser",
            f"--port={port}",
            "--Voila.ip=127.0.0.1",
            "--Voila.port_retries=0",
            "--show_tracebacks=True",
        ]

    with _server(
        command, _port_open, log=ARTIFACTS / "voila.log", env=workspace["env"], cwd=root
    ) as port:
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        try:
            page.goto(f"http://127.0.0.1:{port}/", timeout=RENDER_TIMEOUT_MS)
            before = _wait_for_the_threads_case(page)
            explorer = page.locator(".mtlslab-explorer").first
            assert explorer.locator(".mtlslab-diagram svg").count() >= 1  # the app draws inline SVG
            _shoot(page, explorer, ARTIFACTS / "voila-explorer.png")
            _give_the_client_its_certificate(page, before)
            _shoot(page, explorer, ARTIFACTS / "voila-explorer-after.png")
            page.locator(".lm-TabBar-tabLabel", has_text="Matrix").first.click()
            matrix = page.locator(".mtlslab-matrix").first
            matrix.wait_for(state="visible", timeout=20_000)
            assert "no-cert-optional" in matrix.inner_text()
            shot = ARTIFACTS / "voila-matrix.png"
            _shoot(page, matrix, shot)
            _keep(shot, "matrix.png")
        finally:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(ARTIFACTS / "voila-last.png"))
            page.close()
