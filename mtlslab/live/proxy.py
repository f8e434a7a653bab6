"""TLS-terminating reverse proxies that forward the client certificate as RFC 9440 ``Client-Cert``.

Two implementations, one behaviour:

* :class:`HAProxy` — Debian's HAProxy, configured with ``ssl_c_der,base64`` to build the header and
  ``del-header`` to strip any copy the client sent (RFC 9440 §2). This is what the tests run.
* :class:`BuiltinProxy` — a small pyOpenSSL proxy for machines without HAProxy (a laptop). It stands in for
  a real proxy and is documented as such; a test shows both produce the same header for the same
  certificate.

Both listen with TLS on 127.0.0.1 (client authentication per the deployment) and forward plain HTTP to an
:class:`~mtlslab.live.server.Origin` on loopback.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import h11

from mtlslab.live.client import client_context
from mtlslab.live.server import (
    Incoming,
    Limits,
    Listener,
    is_loopback,
    is_wildcard,
    listen_host,
    server_context,
)
from mtlslab.pki import Lab
from mtlslab.scenarios import Deployment, encode_client_cert
from mtlslab.tls import ClientAuth, TlsVersion

__all__ = ["BuiltinProxy", "HAProxy", "Proxy", "find_haproxy", "haproxy_config", "make_proxy"]


def find_haproxy() -> str | None:
    """The haproxy executable, if installed (Debian: ``apt-get install haproxy``)."""
    return shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy",) if os.path.exists(p)), None
    )


class Proxy:
    """What both proxies offer: a URL, a port, a context manager, and what they are."""

    kind = "proxy"
    port: int

    @property
    def url(self) -> str:
        """Where clients connect."""
        raise NotImplementedError

    @property
    def on_loopback(self) -> bool:
        """Whether it listens on loopback only."""
        raise NotImplementedError

    def start(self) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        try:
            return self.start()
        except BaseException:  # __exit__ will not run: release what the constructor made
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()


class BuiltinProxy(Listener, Proxy):
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
        super().__init__(host=host, port=port, limits=limits)
        self.deployment = deployment
        self.origin_port = origin_port
        self.context = self._guarded(lambda: server_context(deployment, lab))

    def _answer(self, incoming: Incoming, *, peer: bytes | None, deadline: float) -> bytes:
        """Forward the request to the origin with the client certificate as ``Client-Cert``; the origin's
        answer is the answer."""
        request = incoming.request
        if request is None or incoming.status is not None:
            return self._refuse(incoming)
        headers = [(k, v) for k, v in request.headers if k.lower() != b"connection"]
        if self.deployment.proxy_strips_client_cert:
            headers = [(k, v) for k, v in headers if k.lower() != b"client-cert"]  # RFC 9440 §2
        if peer is not None:
            headers.append((b"Client-Cert", encode_client_cert(peer).encode("ascii")))
        headers.append((b"Connection", b"close"))
        return _forward(
            self.origin_port,
            request.method,
            request.target,
            headers,
            incoming.body,
            timeout=max(0.1, deadline - time.monotonic()),
        )


def _forward(
    port: int,
    method: bytes,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    *,
    timeout: float,
) -> bytes:
    """One request to the origin; returns the raw response bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as upstream:
        conn = h11.Connection(h11.CLIENT)
        out = conn.send(h11.Request(method=method, target=target, headers=headers)) or b""
        if body:
            out += conn.send(h11.Data(data=body)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        upstream.sendall(out)
        chunks = []
        while True:
            data = upstream.recv(65536)
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


_HAPROXY_VERIFY = {
    ClientAuth.NONE: "",
    ClientAuth.OPTIONAL: "ca-file {ca} verify optional",
    ClientAuth.OPTIONAL_NO_CA: "ca-file {ca} verify optional ca-ignore-err all crt-ignore-err all",
    ClientAuth.REQUIRED: "ca-file {ca} verify required",
    ClientAuth.REQUIRED_NO_CA: "ca-file {ca} verify required ca-ignore-err all crt-ignore-err all",
}
_HAPROXY_VERSION = {TlsVersion.TLS1_2: "TLSv1.2", TlsVersion.TLS1_3: "TLSv1.3"}


#: On an IPv6 wildcard, haproxy takes IPv4 too, as the Python listener does (not left to net.ipv6.bindv6only).
_V4V6 = " v4v6"


def haproxy_config(
    deployment: Deployment,
    *,
    port: int,
    origin_port: int,
    crt: str,
    ca: str,
    host: str = "127.0.0.1",
) -> str:
    """The HAProxy configuration for ``deployment`` (RFC 9440 header via ``ssl_c_der,base64``), listening
    on ``host`` (HAProxy reads an IPv6 address's port after its last colon)."""
    version = _HAPROXY_VERSION[deployment.tls_version]
    verify = _HAPROXY_VERIFY[deployment.client_auth].format(ca=ca)
    lines = [
        "global",
        "    log stderr format raw local0 err",
        "    noreuseport",  # a port another process holds is an error, not a port shared with it
        "",
        "defaults",
        "    mode http",
        "    timeout connect 5s",
        "    timeout client 5s",
        "    timeout server 5s",
        "",
        "frontend mtlslab",
        f"    bind {host}:{port}{_V4V6 if is_wildcard(host) and ':' in host else ''} ssl crt {crt} {verify} "
        f"ssl-min-ver {version} ssl-max-ver {version}".rstrip(),
    ]
    if deployment.proxy_strips_client_cert:
        lines.append("    http-request del-header Client-Cert")
    else:
        lines.append("    # deliberately broken: the client's own Client-Cert is passed through")
    lines += [
        "    http-request set-header Client-Cert :%[ssl_c_der,base64]: if { ssl_c_used }",
        "    default_backend origin",
        "",
        "backend origin",
        f"    server origin 127.0.0.1:{origin_port}",
        "",
    ]
    return "\n".join(lines)


class HAProxy(Proxy):
    """Debian's HAProxy as the TLS-terminating proxy, run in the foreground from a temporary config."""

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
    ) -> None:
        found = executable or find_haproxy()
        if found is None:
            raise FileNotFoundError("haproxy is not installed (Debian: apt-get install haproxy)")
        self.executable = found
        self.lab = lab
        self.deployment = deployment
        self.origin_port = origin_port
        self.start_timeout = start_timeout
        self._dir = tempfile.TemporaryDirectory(prefix="mtlslab-haproxy-")
        directory = Path(self._dir.name)
        crt = directory / "server.pem"
        crt.write_bytes(lab.server.cert_chain_pem.bytes() + lab.server.private_key_pem.bytes())
        os.chmod(crt, 0o600)
        lab.ca.cert_pem.write_to_path(directory / "ca.pem")
        self._crt, self._ca = str(crt), str(directory / "ca.pem")
        self._proc: subprocess.Popen[bytes] | None = None
        self.host = listen_host(host)
        self._wanted_port = port
        self.port = 0
        self.config = ""

    @property
    def url(self) -> str:
        """``https://HOST:PORT`` once started (``https://127.0.0.1:PORT`` by default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def on_loopback(self) -> bool:
        """Whether haproxy listens on loopback only."""
        return is_loopback(self.host)

    def start(self) -> HAProxy:
        """Start haproxy on ``host``: on the port asked for, or on a free one (another free one if haproxy
        exits because a process took it first). Ready means a TLS handshake there shows the lab server's
        certificate while haproxy runs, so another process answering the port is not taken for it."""
        if self._wanted_port:
            try:  # taken now: say so, rather than let haproxy fail while the holder answers the port
                _free_port(self.host, self._wanted_port)
            except OSError as exc:
                why = "is taken" if exc.errno == errno.EADDRINUSE else "cannot be bound"
                raise RuntimeError(
                    f"haproxy did not start listening on {self.host}: port {self._wanted_port} {why} "
                    f"({exc.strerror or exc})"
                ) from None
        problem = "no log output"
        for _attempt in range(1 if self._wanted_port else 5):
            port = self._wanted_port or _free_port(self.host)
            try:
                problem = self._run(port)
            except BaseException:  # Ctrl-C, or a bug: no haproxy is left running
                self._stop()
                raise
            if not problem:
                self.port = port
                return self
            exited = self._proc is not None and self._proc.poll() is not None
            self._stop()
            # Only a port taken in the meantime is worth another port. haproxy says "cannot bind socket"
            # for that (and, rarely, for a refused or missing address, which costs a few attempts); a bad
            # config, which haproxy also reports with its bind line, or a haproxy that ran but never
            # answered as it should, would fail on any port.
            if not (exited and "cannot bind socket" in self._log_tail()):
                break
        raise RuntimeError(
            f"haproxy did not start listening on {self.host}: {problem}; its log: {self._log_tail()}"
        )

    def _run(self, port: int) -> str:
        """Start haproxy on ``port`` and wait until it is ready: ``""``, or why it is not."""
        self.config = haproxy_config(
            self.deployment,
            port=port,
            origin_port=self.origin_port,
            crt=self._crt,
            ca=self._ca,
            host=self.host,
        )
        cfg = Path(self._dir.name) / "haproxy.cfg"
        cfg.write_text(self.config)
        log = (Path(self._dir.name) / "haproxy.log").open("wb")  # this attempt's words only
        with log:  # the child keeps its own descriptor; a file never fills up like a pipe would
            self._proc = subprocess.Popen(  # noqa: S603 - our own config, fixed arguments
                [self.executable, "-db", "-f", str(cfg)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self._ready(port)

    def _ready(self, port: int) -> str:
        """``""`` once haproxy, still running, answers a handshake on ``port`` with the lab server certificate
        (the lab client presents its own, so every client-auth mode completes); else why not."""
        client = client_context(
            ca=self.lab.ca, identity=self.lab.client, version=self.deployment.tls_version
        )
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE  # the certificate is compared below, byte for byte
        last = "it never answered"
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                return f"haproxy exited with status {self._proc.returncode}"
            try:
                with (
                    socket.create_connection((_reachable(self.host), port), timeout=0.5) as raw,
                    client.wrap_socket(raw) as tls,
                ):
                    if tls.getpeercert(binary_form=True) == self.lab.server.der:
                        if self._proc.poll() is None:
                            return ""
                        continue
                    last = "the process answering there presents another certificate"
            except OSError as exc:  # refused, reset, or a handshake that failed: not yet
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.02)
        return f"not ready after {self.start_timeout:g} s (last: {last})"

    def _log_tail(self) -> str:
        """The end of haproxy's own log: why it did not start."""
        log = Path(self._dir.name) / "haproxy.log"
        lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
        tail = " | ".join(lines[-4:])
        return (f"…{tail[-600:]}" if len(tail) > 600 else tail) or "no log output"

    def _stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None

    def close(self) -> None:
        """Stop haproxy and remove its files (the files even if stopping fails)."""
        try:
            self._stop()
        finally:
            self._dir.cleanup()


def _free_port(host: str = "127.0.0.1", port: int = 0) -> int:
    """A port free on ``host`` (``port``, or any when 0): bound for a moment, then released; OSError when
    another socket holds it."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As haproxy and every server here bind: a closed connection's TIME_WAIT is no hold on the port.
        if os.name != "nt":
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        found: int = probe.getsockname()[1]
        return found


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
) -> Proxy:
    """``"haproxy"``, ``"builtin"``, or ``"auto"`` (HAProxy when installed, else the built-in stand-in),
    listening on ``host`` and ``port`` (0: a free port)."""
    if kind == "auto":
        kind = "haproxy" if find_haproxy() else "builtin"
    if kind == "haproxy":
        return HAProxy(
            lab=lab, deployment=deployment, origin_port=origin_port, host=host, port=port
        )
    if kind == "builtin":
        return BuiltinProxy(
            lab=lab, deployment=deployment, origin_port=origin_port, host=host, port=port
        )
    raise ValueError(f"unknown proxy kind {kind!r}: haproxy, builtin or auto")
