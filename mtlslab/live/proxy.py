"""TLS-terminating reverse proxies (client authentication per the deployment) that forward plain HTTP to an
:class:`~mtlslab.live.server.Origin` on loopback, with the client certificate as RFC 9440 ``Client-Cert``
and the intermediates the client sent as §2.3 ``Client-Cert-Chain``:

* :class:`HAProxy` — Debian's HAProxy (``ssl_c_der,base64``; ``del-header`` strips any copy the client
  sent, RFC 9440 §2). What the tests run. It can spell one intermediate (all the lab's chains have one),
  and asks for a certificate in the handshake or not at all.
* :class:`BuiltinProxy` — a pyOpenSSL stand-in for machines without HAProxy; a test shows both forward
  the same headers. It can also ask for a certificate late (post-handshake authentication, renegotiation).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import h11

from mtlslab.challenge import TOKEN
from mtlslab.errors import ScenarioError
from mtlslab.live.client import client_context
from mtlslab.live.server import (
    Incoming,
    Limits,
    Listener,
    is_loopback,
    is_wildcard,
    listen_host,
    listening_socket,
    server_context,
)
from mtlslab.pki import Lab
from mtlslab.scenarios import Deployment, encode_client_cert
from mtlslab.tls import ClientAuth

__all__ = ["BuiltinProxy", "HAProxy", "Proxy", "find_haproxy", "haproxy_config", "make_proxy"]


def find_haproxy() -> str | None:
    """The haproxy executable, if installed (Debian: ``apt-get install haproxy``)."""
    return shutil.which("haproxy") or shutil.which("/usr/sbin/haproxy")  # sbin: not on every PATH


class BuiltinProxy(Listener):
    """A stand-in TLS-terminating proxy in Python (for machines without HAProxy)."""

    kind = "builtin"

    def __init__(
        self,
        *,
        lab: Lab,
        deployment: Deployment,
        origin_port: int,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: Limits | None = None,
    ) -> None:
        self.context = server_context(deployment, lab)
        super().__init__(host=host, port=port, limits=limits)
        self.deployment = deployment
        self.origin_port = origin_port

    def _answer(
        self, incoming: Incoming, *, peer: bytes | None, chain: tuple[bytes, ...], deadline: float
    ) -> bytes:
        """Forward the request to the origin with the client certificate as ``Client-Cert`` and the
        intermediates the client sent as ``Client-Cert-Chain`` (RFC 9440 §2.3); its answer is the answer."""
        request = incoming.request
        if request is None or incoming.status is not None:
            return self._refuse(incoming)
        headers = [(k, v) for k, v in request.headers if k.lower() != b"connection"]
        if self.deployment.proxy_strips_client_cert:  # RFC 9440 §2
            headers = [(k, v) for k, v in headers if k.lower() not in _CLIENT_CERT_FIELDS]
        if peer is not None:
            headers.append((b"Client-Cert", encode_client_cert(peer).encode("ascii")))
            if chain:
                value = ", ".join(encode_client_cert(der) for der in chain)
                headers.append((b"Client-Cert-Chain", value.encode("ascii")))
        headers.append((b"Connection", b"close"))
        timeout = max(0.1, deadline - time.monotonic())
        with socket.create_connection(("127.0.0.1", self.origin_port), timeout=timeout) as upstream:
            conn = h11.Connection(h11.CLIENT)
            head = h11.Request(method=request.method, target=request.target, headers=headers)
            body = [h11.Data(data=incoming.body)] if incoming.body else []
            events = [head, *body, h11.EndOfMessage()]
            upstream.sendall(b"".join(conn.send(event) or b"" for event in events))
            return b"".join(iter(lambda: upstream.recv(65536), b""))  # to the end: the answer


_CLIENT_CERT_FIELDS = (b"client-cert", b"client-cert-chain")


_HAPROXY_VERIFY = {
    ClientAuth.NONE: "",
    ClientAuth.OPTIONAL: "ca-file {ca} verify optional",
    ClientAuth.OPTIONAL_NO_CA: "ca-file {ca} verify optional ca-ignore-err all crt-ignore-err all",
    ClientAuth.REQUIRED: "ca-file {ca} verify required",
    ClientAuth.REQUIRED_NO_CA: "ca-file {ca} verify required ca-ignore-err all crt-ignore-err all",
}


def haproxy_config(
    deployment: Deployment,
    *,
    port: int,
    origin_port: int,
    crt: str,
    ca: str,
    host: str = "127.0.0.1",
    fd: int | None = None,
    response_fields: Iterable[str] = (),
) -> str:
    """The HAProxy configuration for ``deployment`` (RFC 9440 header via ``ssl_c_der,base64``), listening
    on ``host`` and ``port`` (an IPv6 address's port after its last colon) or the inherited descriptor
    ``fd``. HAProxy lower-cases header names, except ``response_fields`` (``h1-case-adjust``)."""
    if reason := HAProxy.limitation(deployment):
        raise ScenarioError("deployment.client_auth", reason)
    version = f"TLSv{deployment.tls_version.value}"
    verify = _HAPROXY_VERIFY[deployment.client_auth].format(ca=ca)
    # on an IPv6 wildcard, IPv4 too, as the Python listener (not left to net.ipv6.bindv6only)
    address = f"{host}:{port}{' v4v6' if is_wildcard(host) and ':' in host else ''}"
    cased = sorted({n for n in response_fields if TOKEN.fullmatch(n) and n != n.lower()})
    lines = [
        "global",
        "    log stderr format raw local0 err",
        "    noreuseport",  # a port another process holds is an error, not a port shared with it
        *(f"    h1-case-adjust {name.lower()} {name}" for name in cased),
        "",
        "defaults",
        "    mode http",
        "    timeout connect 5s",
        "    timeout client 5s",
        "    timeout server 5s",
        "",
        "frontend mtlslab",
        f"    bind {address if fd is None else f'fd@{fd}'} ssl crt {crt} {verify} "
        f"ssl-min-ver {version} ssl-max-ver {version}".rstrip(),
        *(["    option h1-case-adjust-bogus-client"] if cased else []),
    ]
    if deployment.proxy_strips_client_cert:
        lines += [
            "    http-request del-header Client-Cert",
            "    http-request del-header Client-Cert-Chain",
        ]
    else:
        lines.append("    # deliberately broken: the client's own Client-Cert is passed through")
    lines += [
        "    http-request set-header Client-Cert :%[ssl_c_der,base64]: if { ssl_c_used }",
        # the intermediates the client sent (RFC 9440 §2.3), as one item: right for a single intermediate
        "    http-request set-header Client-Cert-Chain :%[ssl_c_chain_der,base64]: "
        "if { ssl_c_used } { ssl_c_chain_der,length gt 0 }",
        "    default_backend origin",
        "",
        "backend origin",
        f"    server origin 127.0.0.1:{origin_port}",
        "",
    ]
    return "\n".join(lines)


#: Runs haproxy (``argv[3:]``) on the inherited listening socket ``argv[1]`` and stops it on SIGTERM or SIGINT,
#: or when the process that started it is gone, however that died (SIGKILL included): stdin is a pipe only
#: that process holds open, which reads as ended once it is gone; haproxy's folder ``argv[2]`` (the private
#: key is there) is then removed too. The supervisor's exit status is haproxy's.
_SUPERVISOR = """\
import os, select, shutil, signal, subprocess, sys
stop = []
for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda *_: stop.append(sig))
fd, folder, orphaned = int(sys.argv[1]), sys.argv[2], False
child = subprocess.Popen(sys.argv[3:], stdin=subprocess.DEVNULL, pass_fds=(fd,))
os.close(fd)
while child.poll() is None and not stop and not orphaned:
    orphaned = bool(select.select([0], [], [], 0.05)[0]) and not os.read(0, 1)
if child.poll() is None:
    child.terminate()
status = child.wait()
if orphaned:
    shutil.rmtree(folder, ignore_errors=True)
sys.exit(status)
"""


class HAProxy:
    """Debian's HAProxy, run in the foreground from a temporary config under a small supervisor, so it
    never outlives the Python process that started it (exited, interrupted or killed, SIGKILL too)."""

    kind = "haproxy"

    def __init__(
        self,
        *,
        lab: Lab,
        deployment: Deployment,
        origin_port: int,
        executable: str | None = None,
        start_timeout: float = 10.0,
        host: str = "127.0.0.1",
        port: int = 0,
        response_fields: Iterable[str] = (),
    ) -> None:
        found = executable or find_haproxy()
        if found is None:
            raise FileNotFoundError("haproxy is not installed (Debian: apt-get install haproxy)")
        if reason := HAProxy.limitation(deployment):
            raise ScenarioError("deployment.client_auth", reason)
        self.executable = found
        self.response_fields = tuple(response_fields)
        self.lab = lab
        self.deployment = deployment
        self.origin_port = origin_port
        self.start_timeout = start_timeout
        self.host = listen_host(host)
        self.port = port
        self.config = ""
        self._socket: socket.socket | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def limitation(deployment: Deployment) -> str | None:
        """Why HAProxy cannot stand in front of ``deployment`` (one asking late), or None."""
        if deployment.client_auth in _HAPROXY_VERIFY:
            return None
        return (
            "HAProxy asks for a client certificate in the handshake or not at all (no post-handshake "
            "authentication, no renegotiation); --proxy builtin can ask late"
        )

    @property
    def url(self) -> str:
        """Where clients connect: ``https://HOST:PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def on_loopback(self) -> bool:
        """Whether it listens on loopback only."""
        return is_loopback(self.host)

    def start(self) -> HAProxy:
        """Start haproxy once on ``host`` and ``port`` (0: a free one), bound here and handed over (a port
        taken fails at once, OSError), and wait until it completes a TLS handshake (``start_timeout``); if it
        does not, the RuntimeError carries its log. Nothing (process, socket, key file) is left on failure."""
        try:
            self._socket = listening_socket(self.host, self.port)
            self.port = self._socket.getsockname()[1]
            problem = self._launch(self._socket.fileno())
            if problem:
                raise RuntimeError(
                    f"haproxy did not start on {self.url}: {problem}; its log: {self._log()}"
                )
        except BaseException:  # Ctrl-C too: no process, socket or file stays behind
            self.close()
            raise
        return self

    def _launch(self, fd: int) -> str:
        """Write the files, start haproxy on ``fd``, and wait until it answers: ``""``, or why it did not."""
        # Only its owner may enter (the private key is safe while written); the supervisor may remove it.
        self._dir = tempfile.TemporaryDirectory(
            prefix="mtlslab-haproxy-", ignore_cleanup_errors=True
        )
        folder = Path(self._dir.name)
        crt, server = folder / "server.pem", self.lab.server
        crt.write_bytes(server.cert_chain_pem.bytes() + server.private_key_pem.bytes())
        self.lab.ca.cert_pem.write_to_path(folder / "ca.pem")
        self.config = haproxy_config(
            self.deployment,
            port=self.port,
            origin_port=self.origin_port,
            crt=str(crt),
            ca=str(folder / "ca.pem"),
            host=self.host,
            fd=fd,
            response_fields=self.response_fields,
        )
        (folder / "haproxy.cfg").write_text(self.config)
        with (folder / "haproxy.log").open("wb") as log:  # a file never fills up like a pipe would
            argv = [sys.executable, "-I", "-S", "-c", _SUPERVISOR, str(fd), str(folder)]
            self._proc = subprocess.Popen(  # noqa: S603 - our own supervisor, config and arguments
                [*argv, self.executable, "-db", "-f", str(folder / "haproxy.cfg")],
                stdin=subprocess.PIPE,  # held open, never written: its end tells the supervisor we are gone
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(fd,),
            )
        client = client_context(
            ca=self.lab.ca, identity=self.lab.client, version=self.deployment.tls_version
        )
        client.check_hostname = False  # the address may be a wildcard's loopback stand-in
        deadline = time.monotonic() + self.start_timeout
        last, address = "it never answered", (_reachable(self.host), self.port)
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return f"haproxy exited with status {self._proc.returncode}"
            try:  # the connection waits in the backlog until haproxy takes it
                with (
                    socket.create_connection(address, timeout=0.25) as raw,
                    client.wrap_socket(raw),
                ):
                    return ""
            except OSError as exc:  # not yet
                last = f"{type(exc).__name__}: {exc}"
        return f"not ready after {self.start_timeout:g} s (last: {last})"

    def _log(self) -> str:
        """haproxy's own log (its last 2,000 characters): why it did not start."""
        log = Path(self._dir.name) / "haproxy.log" if self._dir is not None else None
        text = log.read_text(errors="replace").strip() if log and log.exists() else ""
        return (f"…{text[-2000:]}" if len(text) > 2000 else text) or "no log output"

    def close(self) -> None:
        """Stop haproxy and remove its socket and files (those even if stopping fails)."""
        try:
            if self._proc is not None:
                self._proc.terminate()  # the supervisor stops haproxy, then exits
                try:
                    self._proc.wait(5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(5)
                finally:
                    if self._proc.stdin is not None:
                        self._proc.stdin.close()
                self._proc = None
        finally:
            if self._socket is not None:
                self._socket.close()
            if self._dir is not None:
                self._dir.cleanup()

    def __enter__(self) -> HAProxy:
        return self.start()  # which leaves nothing behind when it fails

    def __exit__(self, *exc: object) -> None:
        self.close()


#: What both proxies offer: a URL, a port, start and close, a context manager, and what they are (``kind``).
Proxy = BuiltinProxy | HAProxy


def _reachable(host: str) -> str:
    """Where a local client reaches a listener bound to ``host`` (a wildcard is reached on loopback)."""
    host = listen_host(host)
    if is_wildcard(host):
        return "::1" if ":" in host else "127.0.0.1"
    return host


def make_proxy(
    kind: str,
    *,
    lab: Lab,
    deployment: Deployment,
    origin_port: int,
    host: str = "127.0.0.1",
    port: int = 0,
    response_fields: Iterable[str] = (),
) -> Proxy:
    """``"haproxy"``, ``"builtin"``, or ``"auto"`` (HAProxy when installed, else the built-in stand-in),
    listening on ``host`` and ``port`` (0: a free port); HAProxy keeps the case of ``response_fields``."""
    where: dict[str, Any] = {"lab": lab, "deployment": deployment, "origin_port": origin_port}
    if kind == "haproxy" or (kind == "auto" and find_haproxy()):
        return HAProxy(**where, host=host, port=port, response_fields=response_fields)
    if kind in ("builtin", "auto"):
        return BuiltinProxy(**where, host=host, port=port)
    raise ValueError(f"unknown proxy kind {kind!r}: haproxy, builtin or auto")
