"""In a real browser: JupyterLab runs notebook 04 and Voilà serves the explorer app; a changed control changes
the rendered answers, "Run live" shows the wire's answer, a clicked matrix cell is explained, and the
editor's reading is saved as a file and loaded back. Debian's Chromium, driven by Playwright; screenshots go
to tests/artifacts/.

The README's two screenshots in docs/screenshots/ each have a manifest beside them (``X.json``): every text
the page showed in that element when the screenshot was taken, and the PNG's SHA-256. Each run captures the
same texts from today's page and fails when they differ, naming the command that takes both again
(``MTLSLAB_UPDATE_SCREENSHOTS=1``), so a screenshot that no longer shows what the app shows fails the suite.

Locally a missing Chromium, Playwright or Jupyter skips these tests with the reason; with ``CI`` set it fails.
Every server runs on 127.0.0.1 in its own session, is waited for with a deadline, and is stopped in a
``finally`` (SIGTERM, then SIGKILL for whatever is left of its process group).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
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


#: Every text an element shows, in document order: text nodes (whitespace collapsed), a select's chosen
#: option ([x]/[ ] before each option of a list box), a checkbox as [x] or [ ], an input's value (or its
#: placeholder), the texts inside an SVG drawn as an image (JupyterLab's Mermaid); hidden elements (the tabs
#: not chosen) left out.
_VISIBLE_TEXTS = r"""(root) => {
  const out = [];
  const clean = (t) => t.replace(/\s+/g, " ").trim();
  const svgTexts = (src) => {
    const comma = src.indexOf(",");
    const head = src.slice(0, comma);
    const body = head.endsWith(";base64") ? atob(src.slice(comma + 1)) : decodeURIComponent(src.slice(comma + 1));
    const svg = new DOMParser().parseFromString(body, "image/svg+xml");
    return [...svg.querySelectorAll("text, foreignObject")].map((e) => clean(e.textContent)).filter(Boolean);
  };
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) {
      const text = clean(node.textContent);
      if (text) out.push(text);
      return;
    }
    if (node.nodeType !== Node.ELEMENT_NODE || ["STYLE", "SCRIPT", "TEMPLATE"].includes(node.tagName)) return;
    if (!node.checkVisibility({ visibilityProperty: true })) return;
    if (node.tagName === "SELECT") {
      if (node.multiple) for (const o of node.options) out.push((o.selected ? "[x] " : "[ ] ") + clean(o.text));
      else out.push("[" + clean(node.selectedOptions[0]?.text ?? "") + "]");
      return;
    }
    if (node.tagName === "INPUT" || node.tagName === "TEXTAREA") {
      if (node.type === "checkbox") out.push(node.checked ? "[x]" : "[ ]");
      else out.push("[" + (node.value ? clean(node.value) : "placeholder: " + clean(node.placeholder)) + "]");
      return;
    }
    if (node.tagName === "IMG") {
      if (node.src.startsWith("data:image/svg+xml")) out.push(...svgTexts(node.src));
      else out.push("<img>");
      return;
    }
    for (const child of node.childNodes) walk(child);
  };
  walk(root);
  return out;
}"""

UPDATE_COMMAND = "MTLSLAB_UPDATE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/test_browser.py"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _readme_screenshot(page: Any, element: Any, name: str) -> str:
    """Take the README's screenshot ``name`` (into tests/artifacts/) with the texts the element shows.

    With MTLSLAB_UPDATE_SCREENSHOTS set, the PNG and its manifest are written to docs/screenshots/ and ""
    is returned; otherwise the texts are compared with the committed manifest and what differs is returned
    (the caller asserts on it at the end, after its other checks)."""
    shot = ARTIFACTS / f"{name}.png"
    _shoot(page, element, shot)
    texts: list[str] = element.evaluate(_VISIBLE_TEXTS)
    assert texts, f"the {name} element shows no text"
    png, manifest = SCREENSHOTS / f"{name}.png", SCREENSHOTS / f"{name}.json"
    if os.environ.get("MTLSLAB_UPDATE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, png)
        record = {"png": png.name, "png_sha256": _sha256(png), "texts": texts}
        manifest.write_text(
            json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        return ""
    if not manifest.exists():
        return (
            f"{manifest.relative_to(ROOT)} is missing: take the screenshots with {UPDATE_COMMAND}"
        )
    kept: list[str] = json.loads(manifest.read_text(encoding="utf-8"))["texts"]
    if kept == texts:
        return ""
    diff = list(
        difflib.unified_diff(
            kept, texts, "in the README's screenshot", "on the page today", lineterm=""
        )
    )
    shown = "\n".join(diff[:60]) + ("\n…" if len(diff) > 60 else "")
    return (
        f"docs/screenshots/{name}.png no longer shows what the app shows (today's page is in "
        f"tests/artifacts/{name}.png). Take it again with\n  {UPDATE_COMMAND}\nlook at it, and commit "
        f"the PNG with its manifest.\n{shown}"
    )


_LIVE_LINES = "() => [...document.querySelectorAll('.mtlslab-explorer .mtlslab-live-run')].map(e => e.innerText.trim())"


def _run_live(page: Any, cards: list[str]) -> list[str]:
    """Press "Run live" and wait for the wire's answer: one line per card, each "the wire agrees", the
    thread's 400 among the observed answers."""
    page.locator(".mtlslab-explorer button.mtlslab-live").first.click()
    page.wait_for_function(
        f"() => ({_LIVE_LINES})().length === {len(cards)}", timeout=RENDER_TIMEOUT_MS
    )
    lines: list[str] = page.evaluate(_LIVE_LINES)
    assert all("✓ the wire agrees — observed" in line for line in lines), lines
    assert any(
        "observed 400 invalid_request, simulated 400 invalid_request" in line for line in lines
    ), lines
    return lines


def test_jupyterlab_runs_notebook_04_and_the_explorer_follows_its_controls(
    workspace: dict[str, Any], browser: Any
) -> None:
    """JupyterLab runs notebook 04 to the end; "Run live" shows that the wire agrees with every card; setting
    the explorer's certificate to `client` turns 400/401 into 200; the README's explorer screenshot is current."""
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
            _run_live(page, before)
            stale = _readme_screenshot(page, explorer, "explorer")
            _give_the_client_its_certificate(page, before)
            page.wait_for_function(f"() => ({_LIVE_LINES})().length === 0", timeout=20_000)
            _shoot(page, explorer, ARTIFACTS / "jupyterlab-explorer-after.png")
            _shoot(page, page.locator(".mtlslab-matrix").first, ARTIFACTS / "jupyterlab-matrix.png")
            assert not stale, stale
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
    """The Voilà app: "Run live" shows the wire's answer; a changed control changes the answers; each of the
    explorer's tabs shows its view; a clicked matrix cell is explained; the editor's reading is saved as a
    file and that file's JSON loads back; the README's matrix screenshot is current."""
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
        page = browser.new_page(viewport={"width": 1500, "height": 1000}, accept_downloads=True)
        try:
            page.goto(f"http://127.0.0.1:{port}/", timeout=RENDER_TIMEOUT_MS)
            before = _wait_for_the_threads_case(page)
            explorer = page.locator(".mtlslab-explorer").first
            assert explorer.locator(".mtlslab-diagram svg").count() >= 1  # the app draws inline SVG
            _run_live(page, before)
            _shoot(page, explorer, ARTIFACTS / "voila-explorer.png")
            _give_the_client_its_certificate(page, before)
            _shoot(page, explorer, ARTIFACTS / "voila-explorer-after.png")
            _visit_the_explorers_tabs(page)
            stale = _click_a_matrix_cell(page)
            _save_and_load_a_reading(page)
            assert not stale, stale
        finally:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(ARTIFACTS / "voila-last.png"))
            page.close()


def _app_tab(page: Any, title: str) -> None:
    page.locator(".lm-TabBar-tabLabel", has_text=re.compile(f"^{re.escape(title)}$")).first.click()


def _visit_the_explorers_tabs(page: Any) -> None:
    """Each of the explorer's tabs, clicked, shows its own view (the others hidden)."""
    explorer = page.locator(".mtlslab-explorer").first
    for title, view, text in (
        ("Trace", ".mtlslab-trace", "RFC 8705 §3"),
        ("Raw HTTP", ".mtlslab-http", "GET /resource HTTP/1.1"),
        ("curl", ".mtlslab-curl", "--cert client.pem"),
        ("Sequence diagram", ".mtlslab-diagram", "Resource server"),
    ):
        explorer.locator(
            ".lm-TabBar-tabLabel", has_text=re.compile(f"^{re.escape(title)}$")
        ).click()
        shown = explorer.locator(view).first
        shown.wait_for(state="visible", timeout=20_000)
        assert text in shown.inner_text(), (title, shown.inner_text()[:300])


def _click_a_matrix_cell(page: Any) -> str:
    """Matrix tab: a click on the proxy-no-cert × auth0 cell outlines it and explains it below (400
    invalid_request, with its trace); then the README's matrix screenshot is taken or checked."""
    _app_tab(page, "Matrix")
    matrix = page.locator(".mtlslab-matrix").first
    matrix.wait_for(state="visible", timeout=20_000)
    assert "no-cert-optional" in matrix.inner_text()
    detail = matrix.locator(".mtlslab-cell-detail").first
    assert "proxy-no-cert" not in detail.inner_text()
    matrix.locator("td.mtlslab-cell[data-scenario='proxy-no-cert'][data-reading='auth0']").click()
    page.wait_for_function(
        "() => { const d = document.querySelector('.mtlslab-matrix .mtlslab-cell-detail');"
        " return d && d.innerText.includes('proxy-no-cert') && d.innerText.includes('auth0'); }",
        timeout=20_000,
    )
    text = detail.inner_text()
    assert "400 invalid_request" in text, text[:400]
    assert "Trace for auth0" in text, text[:400]
    outlined = matrix.locator("td.mtlslab-cell[style*='outline']")
    assert outlined.count() == 1
    assert outlined.first.get_attribute("data-scenario") == "proxy-no-cert"
    return _readme_screenshot(page, matrix, "matrix")


def _save_and_load_a_reading(page: Any) -> None:
    """Editor tab: status 403 for the missing certificate; Save downloads my-reading.json holding it; that
    file's JSON pasted into the load box and loaded becomes the base ("my-reading answers 403")."""
    _app_tab(page, "Your interpretation")
    editor = page.locator(".mtlslab-editor").first
    editor.wait_for(state="visible", timeout=20_000)
    status = editor.locator(".mtlslab-control-status input").first
    status.fill("403")
    status.press("Enter")
    page.wait_for_function(
        "() => (document.querySelector('.mtlslab-editor .mtlslab-save')?.innerText ?? '').includes('my-reading.json')"
        " && document.querySelector('.mtlslab-editor').innerText.includes('yours: 403')",
        timeout=20_000,
    )
    with page.expect_download(timeout=20_000) as download_info:
        editor.locator(".mtlslab-save a").first.click()
    download = download_info.value
    assert download.suggested_filename == "my-reading.json"
    saved = Path(download.path()).read_text(encoding="utf-8")
    reading = json.loads(saved)
    assert reading["name"] == "my-reading"
    assert reading["answers"]["certificate_missing"]["status"] == 403, reading["answers"]
    editor.locator(".mtlslab-load-box textarea").first.fill(saved)
    editor.locator("button.mtlslab-load").first.click()
    page.wait_for_function(
        "() => document.querySelector('.mtlslab-editor').innerText.includes('my-reading answers 403')",
        timeout=20_000,
    )
    assert editor.locator(".mtlslab-control-base select").first.input_value() == "my-reading"
    assert editor.locator(".mtlslab-control-name input").first.input_value() == "my-reading-2"
    _shoot(page, editor, ARTIFACTS / "voila-editor.png")


def test_each_readme_screenshot_has_a_manifest_that_matches_it() -> None:
    """Every screenshot the README shows has its manifest, made together with that very PNG (last in this
    file: with MTLSLAB_UPDATE_SCREENSHOTS the tests above have just written both)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.findall(r"\]\((docs/screenshots/[^)]+\.png)\)", readme)
    assert shown
    for path in shown:
        png = ROOT / path
        manifest = png.with_suffix(".json")
        assert manifest.exists(), f"{path} has no manifest; take it with {UPDATE_COMMAND}"
        record = json.loads(manifest.read_text(encoding="utf-8"))
        assert record["png"] == png.name
        assert record["png_sha256"] == _sha256(png), (
            f"{path} was replaced without its manifest; take both with {UPDATE_COMMAND}"
        )
        assert record["texts"]
