"""The workshop room, rehearsed with the README's own commands as real processes in a scratch directory.

The trainer runs `certs --seed workshop --out lab/`, then `serve --seed workshop`; an attendee runs the
`curl` lines `serve` prints, with the `lab/` files, and `evaluate --seed workshop --cert lab/client.pem
--authorization "Bearer $(token --seed workshop)"`. The wire and the simulation give the same answers;
another seed's server refuses the folder, and another seed's client certificate is refused on the wire and
in `evaluate` alike.
"""

from __future__ import annotations

import json
import queue
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.live

SEED = "workshop"
LABELS = ("success", "certificate missing", "certificate mismatch")
PYTHON = shlex.quote(sys.executable)


def mtlslab(room: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """`python -m mtlslab ARGV` in the room, at most 60 s."""
    return subprocess.run(
        [sys.executable, "-m", "mtlslab", *argv],
        cwd=room,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def shell(room: Path, line: str) -> subprocess.CompletedProcess[str]:
    """A command line as an attendee types it (``python`` is this interpreter), run by sh in the room."""
    return subprocess.run(
        ["sh", "-c", line.replace("python ", f"{PYTHON} ")],
        cwd=room,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Served:
    """What `serve` printed before it settled down to serve."""

    url: str
    text: str
    curl: dict[str, list[str]]  # label → argv, as printed


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """What a client saw: an HTTP status and RFC 6750 error, or a TLS alert."""

    status: int | None
    error: str | None
    alert: str | None = None


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch directory where the trainer ran `certs --seed workshop --out lab/`."""
    room = tmp_path_factory.mktemp("room")
    done = mtlslab(room, "certs", "--seed", SEED, "--out", "lab/")
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return room


@pytest.fixture(scope="module")
def certs_files(room: Path) -> dict[str, bytes]:
    """The files `certs` wrote, as they were before `serve` ran."""
    return {p.name: p.read_bytes() for p in (room / "lab").iterdir()}


@pytest.fixture(scope="module")
def served(room: Path, certs_files: dict[str, bytes]) -> Iterator[Served]:
    """`serve --seed workshop --port 0` running in the room (it stops by itself after 120 s; the fixture
    ends it sooner with SIGTERM, which serve answers by closing, exit 0)."""
    assert certs_files
    argv = ["serve", "--seed", SEED, "--port", "0", "--duration", "120"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mtlslab", *argv],
        cwd=room,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()])
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while sum(line.startswith("curl ") for line in seen) < len(LABELS):
            seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
        text = "".join(seen)
        found = re.search(r"listening on (https://127\.0\.0\.1:\d+)/resource$", text, re.MULTILINE)
        assert found, text
        curl = {}
        for label in LABELS:
            line = re.search(rf"^# {label}\n(curl .*)$", text, re.MULTILINE)
            assert line, text
            curl[label] = shlex.split(line.group(1))
        yield Served(url=found.group(1), text=text, curl=curl)
    finally:
        proc.terminate()
        status = proc.wait(20)
        reader.join(20)
        stderr = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert (status, stderr) == (0, "")


def curl(room: Path, argv: list[str]) -> tuple[Answer, subprocess.CompletedProcess[str]]:
    """Run a printed curl line with Debian's curl, in the room: what it saw."""
    binary = shutil.which("curl")
    if binary is None:
        pytest.skip("curl is not installed (Debian: apt-get install curl)")
    assert argv[0] == "curl"
    done = subprocess.run(
        [binary, *argv[1:]], cwd=room, capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        alert = re.search(r"alert ([a-z ]+)", done.stderr)
        return Answer(status=None, error=None, alert=alert.group(1) if alert else None), done
    status = re.match(r"HTTP/1\.1 (\d{3}) ", done.stdout)
    assert status, done.stdout
    head = done.stdout.split("\r\n\r\n", 1)[0]
    error = re.search(r'^WWW-Authenticate: .*error="([^"]+)"', head, re.MULTILINE | re.IGNORECASE)
    return Answer(status=int(status.group(1)), error=error.group(1) if error else None), done


def evaluated(room: Path, line: str) -> Answer:
    """An `evaluate … --format json` line typed in the room: the baseline's answer (serve's default)."""
    done = shell(room, line)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    (cell,) = [c for c in json.loads(done.stdout) if c["interpretation"] == "baseline"]
    outcome = cell["outcome"]
    alert = outcome["tls_alert"]
    return Answer(
        status=outcome["status"],
        error=outcome["error"],
        alert=alert["name"].replace("_", " ") if alert else None,
    )


EVALUATE = (
    'python -m mtlslab evaluate --seed workshop --cert {cert} --authorization "Bearer '
    '$(python -m mtlslab token --seed workshop)" --format json'
)


def test_serve_keeps_the_trainers_folder_and_says_what_it_added(
    room: Path, certs_files: dict[str, bytes], served: Served
) -> None:
    """`serve --seed workshop` in the trainer's room keeps every file `certs` wrote (byte for byte) and
    adds the other identities for its curl lines, saying which."""
    after = {p.name: p.read_bytes() for p in (room / "lab").iterdir()}
    assert {name: after[name] for name in certs_files} == certs_files
    kept = re.search(r"^    kept: +(.*) \(already there", served.text, re.MULTILINE)
    wrote = re.search(r"^    wrote: +(.*)$", served.text, re.MULTILINE)
    assert kept is not None
    assert wrote is not None
    assert sorted(kept.group(1).split()) == sorted(certs_files)
    assert sorted(wrote.group(1).split()) == sorted(set(after) - set(certs_files))


def test_an_attendees_curl_and_evaluate_agree(room: Path, served: Served) -> None:
    """The three printed curl lines over real TLS and `evaluate` with the same lab files and the same
    token (`token --seed workshop` is byte for byte the token in the curl line) give the same answers:
    200; 401 without an error code (the baseline's missing certificate); 401 invalid_token."""
    token = mtlslab(room, "token", "--seed", SEED).stdout.strip()
    assert f"Authorization: Bearer {token}" in served.curl["success"]
    wire = {label: curl(room, served.curl[label])[0] for label in LABELS}
    assert served.curl["certificate mismatch"][
        served.curl["certificate mismatch"].index("--cert") + 1
    ] == ("lab/other-client.pem")
    simulated = {
        "success": evaluated(room, EVALUATE.format(cert="lab/client.pem")),
        "certificate missing": evaluated(room, EVALUATE.format(cert="none")),
        "certificate mismatch": evaluated(room, EVALUATE.format(cert="lab/other-client.pem")),
    }
    assert wire == simulated
    assert wire == {
        "success": Answer(status=200, error=None),
        "certificate missing": Answer(status=401, error="unspecified"),
        "certificate mismatch": Answer(status=401, error="invalid_token"),
    }


def test_another_seeds_client_certificate_is_refused_on_the_wire_and_in_evaluate(
    room: Path, served: Served
) -> None:
    """Negative control: the success line with a client certificate of another seed (`certs --seed
    elsewhere`) is refused with the TLS alert unknown_ca, and `evaluate` with that file says the same."""
    done = mtlslab(room, "certs", "--seed", "elsewhere", "--out", "elsewhere/")
    assert done.returncode == 0, done.stderr
    argv = [
        {"lab/client.pem": "elsewhere/client.pem", "lab/client.key": "elsewhere/client.key"}.get(
            a, a
        )
        for a in served.curl["success"]
    ]
    assert "elsewhere/client.pem" in argv
    wire, raw = curl(room, argv)
    assert raw.returncode != 0
    assert wire == Answer(status=None, error=None, alert="unknown ca"), raw.stderr
    assert evaluated(room, EVALUATE.format(cert="elsewhere/client.pem")) == wire


def test_serve_with_another_seed_refuses_the_workshop_folder(
    room: Path, certs_files: dict[str, bytes], served: Served
) -> None:
    """Negative control: `serve` with the default seed in the same room refuses lab/ (one line naming
    --seed workshop and --lab-dir, exit 2, nothing served), and the folder keeps the workshop's files."""
    assert served.url
    before = {p.name: p.read_bytes() for p in (room / "lab").iterdir()}
    done = mtlslab(room, "serve", "--port", "0", "--duration", "5")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.count("\n") == 1
    assert "--seed workshop" in done.stderr
    assert "--lab-dir" in done.stderr
    assert {p.name: p.read_bytes() for p in (room / "lab").iterdir()} == before
    assert {name: before[name] for name in certs_files} == certs_files
