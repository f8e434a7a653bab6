"""Real third-party resource servers for the tests: auth0's express-oauth2-jwt-bearer and node-oidc-provider.

The Node side lives in ``tests/thirdparty/`` (``package.json`` and ``package-lock.json`` pin every package;
``make test`` runs ``npm ci`` there). Each server is a subprocess on 127.0.0.1 that listens on port 0 and
prints one JSON line, ``{"ready": true, "port": N, ...}``; :func:`auth0` and :func:`oidc_provider` start one,
wait for that line within :data:`STARTUP_TIMEOUT` seconds, and always stop it (SIGTERM, then SIGKILL for its
process group). Its stdout and stderr go to files in ``log_dir``, kept for a failing test; a server that does
not start raises :class:`ServerFailed` with the end of its logs.

:func:`unavailable` says why these servers cannot run here (no Node, too old a Node, packages not installed
or not the pinned versions), or None.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mtlslab.live.issuer import LabIssuer
from mtlslab.live.terminal import write_lab_folder
from mtlslab.pki import Lab
from mtlslab.tokens import LAB_AUDIENCE, DPoPKey

THIRDPARTY = Path(__file__).resolve().parent / "thirdparty"
NODE_MODULES = THIRDPARTY / "node_modules"
#: Seconds a server may take to print its ready line (it takes about half a second).
STARTUP_TIMEOUT = 30.0
#: node-oidc-provider 9 hashes with ``crypto.hash`` (Node 20.12 and later): package.json's engines say so.
MIN_NODE = tuple(
    int(n)
    for n in json.loads((THIRDPARTY / "package.json").read_text())["engines"]["node"]
    .removeprefix(">=")
    .split(".")
)

Auth0Config = Literal["supplier", "default", "required"]
NodeEnv = Literal["production", "development"]
AUTH0_CONFIGS: tuple[Auth0Config, ...] = ("supplier", "default", "required")
NODE_ENVS: tuple[NodeEnv, ...] = ("production", "development")


_RUNS = itertools.count(1)


class ServerFailed(RuntimeError):
    """A third-party server did not start (the message ends with its logs)."""


def pinned() -> dict[str, str]:
    """The packages ``package.json`` pins, by name."""
    data = json.loads((THIRDPARTY / "package.json").read_text())
    return dict(data["dependencies"])


def node_version() -> tuple[int, ...] | None:
    """The version of ``node`` on PATH, or None when there is none."""
    node = shutil.which("node")
    if node is None:
        return None
    out = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    found = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)\s*", out)
    return tuple(int(n) for n in found.groups()) if found else None


def unavailable() -> str | None:
    """Why the third-party servers cannot run here, or None when they can."""
    version = node_version()
    if version is None:
        return "Node.js is not installed (make node-deps installs Debian's nodejs when it is new enough)"
    if version[:2] < MIN_NODE:
        have = ".".join(map(str, version))
        return f"Node.js {have} is too old: node-oidc-provider 9 needs {MIN_NODE[0]}.{MIN_NODE[1]} or later"
    for name, want in pinned().items():
        manifest = NODE_MODULES / name / "package.json"
        if not manifest.exists():
            return f"{name} is not installed in {THIRDPARTY} (make node-deps runs npm ci)"
        have = json.loads(manifest.read_text()).get("version")
        if have != want:
            return f"{name} {have} is installed in {THIRDPARTY}, not the pinned {want} (make node-deps)"
    return None


def write_material(lab: Lab, directory: Path) -> Path:
    """The lab's PEM files the servers and the probe use: ``write_lab_folder``'s, plus ``other.pem`` and
    ``other.key`` (another client of the same CA) and ``rogue.pem`` and ``rogue.key`` (the lab client's key
    in a certificate from a CA nobody trusts)."""
    write_lab_folder(lab, directory, every_identity=False)
    lab.other_client.cert_chain_pem.write_to_path(directory / "other.pem")
    lab.other_client.private_key_pem.write_to_path(directory / "other.key")
    lab.untrusted_ca_client.cert_chain_pem.write_to_path(directory / "rogue.pem")
    lab.untrusted_ca_client.private_key_pem.write_to_path(directory / "rogue.key")
    return directory


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeServer:
    """A started third-party server: where its protected resource is, what it printed, its logs."""

    name: str
    url: str  # the protected resource
    ready: Mapping[str, Any] = field(repr=False)  # the JSON line it printed
    stdout: Path
    stderr: Path
    seconds: float  # from starting the process to its ready line

    @property
    def tokens(self) -> Mapping[str, str]:
        """Tokens the server minted itself (node-oidc-provider), by name."""
        tokens: Mapping[str, str] = self.ready.get("tokens", {})
        return tokens

    def logs(self) -> str:
        """Both logs, for a failure message."""
        return _tail(self.stdout, "stdout") + _tail(self.stderr, "stderr")


def _tail(path: Path, label: str, limit: int = 4000) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    if len(text) > limit:
        text = "…" + text[-limit:]
    return f"\n--- {label} ({path}) ---\n{text}"


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left of it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def _ready_line(path: Path) -> dict[str, Any] | None:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith('{"ready":'):
            data: dict[str, Any] = json.loads(line)
            return data
    return None


@contextlib.contextmanager
def _node(
    name: str,
    script: str,
    args: list[str],
    *,
    log_dir: Path,
    env: Mapping[str, str],
    path: str,
    timeout: float,
) -> Iterator[NodeServer]:
    log_dir.mkdir(parents=True, exist_ok=True)
    run = f"{name}-{next(_RUNS)}"  # two servers of one name keep their own logs
    stdout, stderr = log_dir / f"{run}.out", log_dir / f"{run}.err"
    node = shutil.which("node")
    if node is None:
        raise ServerFailed(f"{name}: node is not on PATH")
    started = time.monotonic()
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [node, str(THIRDPARTY / script), *args],
            cwd=THIRDPARTY,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    try:
        deadline = started + timeout
        ready = _ready_line(stdout)
        while ready is None:
            if process.poll() is not None:
                raise ServerFailed(f"{name} exited with {process.returncode} before it was ready")
            if time.monotonic() > deadline:
                raise ServerFailed(f"{name} printed no ready line within {timeout:.0f} s")
            time.sleep(0.05)
            ready = _ready_line(stdout)
        server = NodeServer(
            name=name,
            url=f"https://127.0.0.1:{int(ready['port'])}{path}",
            ready=ready,
            stdout=stdout,
            stderr=stderr,
            seconds=time.monotonic() - started,
        )
    except ServerFailed as exc:
        _stop(process)
        raise ServerFailed(str(exc) + _tail(stdout, "stdout") + _tail(stderr, "stderr")) from None
    except BaseException:
        _stop(process)
        raise
    try:
        yield server
    finally:
        _stop(process)


def auth0(
    config: Auth0Config,
    *,
    issuer: LabIssuer | str,
    material: Path,
    node_env: NodeEnv,
    log_dir: Path,
    audience: str | None = None,
    timeout: float = STARTUP_TIMEOUT,
) -> contextlib.AbstractContextManager[NodeServer]:
    """auth0's express-oauth2-jwt-bearer 1.10 guarding ``GET /resource`` (Express, ``node_env`` mode):
    ``supplier`` checks ``cnf.x5t#S256`` against the TLS client certificate, ``default`` (no supplier)
    ignores ``cnf``, ``required`` also refuses tokens without ``cnf.x5t#S256``. It trusts ``issuer`` (a
    started :class:`~mtlslab.probe.LabIssuer`, or the URL of one that will serve by the first request: the
    SDK fetches the issuer's metadata then) for ``audience`` (default: the issuer's, else the lab's);
    ``material`` is :func:`write_material`'s."""
    url = issuer if isinstance(issuer, str) else issuer.url
    if audience is None:
        audience = LAB_AUDIENCE if isinstance(issuer, str) else issuer.audience
    return _node(
        f"auth0-{config}-{node_env}",
        "auth0-server.mjs",
        [config, url, audience, str(material)],
        log_dir=log_dir,
        env={"NODE_ENV": node_env, "NODE_EXTRA_CA_CERTS": str(material / "ca.pem")},
        path="/resource",
        timeout=timeout,
    )


def oidc_provider(
    lab: Lab,
    *,
    material: Path,
    node_env: NodeEnv,
    log_dir: Path,
    timeout: float = STARTUP_TIMEOUT,
) -> contextlib.AbstractContextManager[NodeServer]:
    """node-oidc-provider 9.13's UserInfo endpoint (``GET /me``) with certificate-bound access tokens; its
    :attr:`NodeServer.tokens` are ``bound`` (to ``lab.client``), ``unbound``, ``dpop-bound`` (to the lab's
    DPoP key), ``insufficient-scope`` (no ``openid``), ``wrong-audience`` and ``expired`` (a minute ago)."""
    return _node(
        f"oidc-provider-{node_env}",
        "oidc-provider-server.mjs",
        [str(material), DPoPKey.for_lab(lab).jkt],
        log_dir=log_dir,
        env={"NODE_ENV": node_env},
        path="/me",
        timeout=timeout,
    )
