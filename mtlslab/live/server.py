"""A real TLS resource server on loopback that decides nothing itself.

Each request is turned into the engine's :class:`~mtlslab.scenarios.Request`, evaluated by
:func:`mtlslab.rs.evaluate`, and answered by an :class:`~mtlslab.interpretations.Interpretation` —
exactly the calls the simulation makes, so the wire can be compared with the model.

TLS is pyOpenSSL's, because Python's :mod:`ssl` cannot accept a client certificate without validating it
(``optional-no-ca``, RFC 8705 §2.2 / §6.2). Every server here is a :class:`Listener`: one I/O thread drives
each connection without blocking — TLS handshake, request, answer, graceful close — and a connection takes
one of a few worker threads only once its request is complete, to compute the answer. So a slow client,
at any stage, holds a descriptor and a few kilobytes, never a worker, and is cut off at its deadline. A
handshake that fails is closed gracefully (write side shut, what the client already sent drained) so the
client reliably sees the TLS alert rather than a TCP reset.

:class:`Origin` is the same server without TLS, behind a TLS-terminating proxy (:mod:`mtlslab.live.proxy`):
it sees the proxy's RFC 9440 ``Client-Cert`` header and trusts it only if the deployment says so.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import ipaddress
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import h11
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL, crypto

from mtlslab.compare import lab_config
from mtlslab.findings import Finding
from mtlslab.interpretations import Interpretation, reason_phrase
from mtlslab.pki import LAB_NOW, Identity, Lab
from mtlslab.rs import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    Decision,
    evaluate,
    size_decision,
)
from mtlslab.scenarios import Deployment, Request
from mtlslab.tls import ClientAuth, TlsVersion
from mtlslab.tokens import AuthorizationServer

__all__ = [
    "HEAD_SLACK",
    "Incoming",
    "Limits",
    "Listener",
    "LiveServer",
    "Origin",
    "RequestReader",
    "http_answer",
    "is_loopback",
    "is_wildcard",
    "listen_host",
    "listening_socket",
    "peer_der",
    "server_context",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Bounds on what clients can make a server hold; every one is tested.

    * ``connection_timeout`` (5 s): the whole connection — TLS handshake, request, answer. A silent client,
      or one that trickles its handshake or its request a byte at a time (slowloris), is cut off unanswered
      when it runs out, however often it sends.
    * ``max_pending`` (512): connections held at once, at any stage from accept to close, each one file
      descriptor; never more than a quarter of the process's descriptor limit (``ulimit -n``: 256 under the
      common 1024). When it is reached, the connection that has waited longest without a complete request
      is dropped to make room, so a flood of slow clients cannot lock prompt ones out.
    * ``max_connections`` (64): requests answered at once (worker threads). A connection takes a worker only
      once its request is complete; further complete requests queue, each still within its deadline.
    * ``max_header_bytes`` (16 KiB, :data:`mtlslab.rs.MAX_HEADER_BYTES`): the request line and header fields
      as :func:`mtlslab.rs.head_size` counts them. Beyond it the engine's ``headers_too_large`` answer goes
      out (431, RFC 6585 §5) — the same bytes the simulation predicts. The HTTP parser itself stops buffering
      an unfinished header section at this limit plus :data:`HEAD_SLACK`, for the framing fields the count
      leaves out.
    * ``max_body_bytes`` (64 KiB, :data:`mtlslab.rs.MAX_BODY_BYTES`): beyond it, ``body_too_large`` (413,
      RFC 9110 §15.5.14); the rest of the body is not kept.
    * ``drain_timeout`` (1 s): before closing, the server shuts its side and reads (and discards) what the
      client still sends for at most twice this long, so a client still writing — a refused handshake, an
      oversized request answered early — reads the alert or the answer instead of a TCP reset.
    """

    connection_timeout: float = 5.0
    max_pending: int = 512
    max_connections: int = 64
    max_header_bytes: int = MAX_HEADER_BYTES
    max_body_bytes: int = MAX_BODY_BYTES
    drain_timeout: float = 1.0


#: What the HTTP parser buffers beyond ``max_header_bytes`` before giving up on an unfinished header section:
#: room for the framing the engine's count leaves out (``HTTP/1.1``, CR LFs, Host, Connection, Content-Length).
HEAD_SLACK = 1024


_T = TypeVar("_T")

_VERSIONS = {TlsVersion.TLS1_2: SSL.TLS1_2_VERSION, TlsVersion.TLS1_3: SSL.TLS1_3_VERSION}


def server_context(
    deployment: Deployment,
    lab: Lab,
    *,
    identity: Identity | None = None,
    pin_version: bool = True,
) -> SSL.Context:
    """A pyOpenSSL server context for ``deployment``: TLS version pinned to the deployment's (or, without
    ``pin_version``, TLS 1.2 and 1.3 both), client auth as configured."""
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    version = _VERSIONS[deployment.tls_version]
    ctx.set_min_proto_version(version if pin_version else SSL.TLS1_2_VERSION)
    ctx.set_max_proto_version(version if pin_version else SSL.TLS1_3_VERSION)
    server = identity or lab.server
    ctx.use_certificate(server.certificate)
    for extra in server.chain:
        ctx.add_extra_chain_cert(extra)
    ctx.use_privatekey(server.private_key)
    ctx.check_privatekey()
    mode = deployment.client_auth
    if mode is ClientAuth.NONE:
        ctx.set_verify(SSL.VERIFY_NONE)
        return ctx
    store = ctx.get_cert_store()
    assert store is not None
    store.add_cert(crypto.X509.from_cryptography(lab.ca.certificate))
    flags = SSL.VERIFY_PEER | (SSL.VERIFY_FAIL_IF_NO_PEER_CERT if mode.requires else 0)
    if mode.validates:
        ctx.set_verify(flags)
    else:
        ctx.set_verify(flags, _accept_any)
    return ctx


def _accept_any(
    _conn: SSL.Connection, _cert: crypto.X509, _errno: int, _depth: int, _ok: int
) -> bool:
    """``optional-no-ca`` / ``required-no-ca``: accept any certificate; the application checks the binding."""
    return True


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or an address in 127.0.0.0/8 or ::1 (in brackets or not)."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    """Whether ``host`` is a wildcard address, every interface (``0.0.0.0``, ``::``, ``::0``...)."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def listen_host(host: str) -> str:
    """``host`` as a listener binds it: ``[::1]`` is ``::1``, and an empty host is every IPv4 interface,
    which a URL spells ``0.0.0.0``."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return bare or "0.0.0.0"  # noqa: S104 - the wildcard the empty host already means


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host`` (as :func:`listen_host` reads it) and ``port`` (0: a free one);
    OSError when the port is taken."""
    host = listen_host(host)
    ipv6 = ":" in host
    return socket.create_server(
        (host, port),
        family=socket.AF_INET6 if ipv6 else socket.AF_INET,
        backlog=128,
        # "::" is every interface, IPv4 as well where the system allows one socket for both
        dualstack_ipv6=ipv6 and is_wildcard(host) and socket.has_dualstack_ipv6(),
    )


def peer_der(tls: SSL.Connection) -> bytes | None:
    """The DER of the certificate the client presented in this handshake, or None."""
    peer = tls.get_peer_certificate(as_cryptography=True)
    return peer.public_bytes(Encoding.DER) if peer is not None else None


# ---- reading one request ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Incoming:
    """One request as read off the wire: complete (``status`` None), or refused part-way.

    ``status`` says why reading stopped: 431 (the header section ran past the parser's bound, so ``request``
    is None), 413 (the body ran past ``max_body_bytes``), or another code the parser suggests for a
    malformed request. ``request`` and ``status`` both None: the client closed without asking anything.
    ``conn`` is the parser, which serialises the answer (:func:`http_answer`).
    """

    conn: h11.Connection
    request: h11.Request | None
    body: bytes = b""
    status: int | None = None
    received: int = 0  # bytes read, framing included


class RequestReader:
    """Reads one HTTP/1.1 request, head and body, within the limits: bytes in, an :class:`Incoming` out.

    No I/O and no clock: the caller feeds what it reads (``b""`` at end of stream) and keeps the deadline.
    """

    def __init__(self, limits: Limits) -> None:
        self._max_body = limits.max_body_bytes
        self._conn = h11.Connection(
            h11.SERVER, max_incomplete_event_size=limits.max_header_bytes + HEAD_SLACK
        )
        self._request: h11.Request | None = None
        self._body = bytearray()
        self._received = 0

    def feed(self, data: bytes) -> Incoming | None:
        """The request once it is complete, refused or cut off; None while more bytes are needed."""
        self._received += len(data)
        self._conn.receive_data(data)
        while True:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as exc:  # 431 for an endless head, 400 for most others
                return self._incoming(exc.error_status_hint)
            if event is h11.NEED_DATA:
                return None if data else self._incoming(None)
            if isinstance(event, h11.Request):
                self._request = event
            elif isinstance(event, h11.Data):
                self._body += event.data
                if len(self._body) > self._max_body:
                    return self._incoming(413)
            else:  # EndOfMessage, or ConnectionClosed before any request
                return self._incoming(None)

    def _incoming(self, status: int | None) -> Incoming:
        return Incoming(
            conn=self._conn,
            request=self._request,
            body=bytes(self._body),
            status=status,
            received=self._received,
        )


def http_answer(
    conn: h11.Connection, status: int, headers: Iterable[tuple[str, str]], body: bytes
) -> bytes:
    """An HTTP/1.1 answer serialised by the request's own parser, with ``Content-Length`` and
    ``Connection: close`` added; ``b""`` when the parser can send no answer any more."""
    fields = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    fields += [(b"Content-Length", str(len(body)).encode()), (b"Connection", b"close")]
    head = h11.Response(
        status_code=status, headers=fields, reason=reason_phrase(status).encode("ascii")
    )
    try:
        return b"".join(
            conn.send(event) or b"" for event in (head, h11.Data(data=body), h11.EndOfMessage())
        )
    except h11.LocalProtocolError:
        return b""


# ---- the listener ------------------------------------------------------------------------------------

_HANDSHAKE, _READ, _WORK, _WRITE, _DRAIN, _CLOSED = range(6)  # a connection's stages, in order
_R, _W = selectors.EVENT_READ, selectors.EVENT_WRITE


class _Conn:
    """One connection's state, touched only by the listener's I/O thread (workers read it, never write)."""

    def __init__(self, sock: socket.socket, tls: SSL.Connection | None, limits: Limits) -> None:
        self.sock, self.tls, self.fd = sock, tls, sock.fileno()
        self.deadline = time.monotonic() + limits.connection_timeout  # handshake, request, answer
        self.ends = self.deadline  # when the current stage is cut off (a drain has its own)
        self.stage = _HANDSHAKE if tls is not None else _READ
        self.reader = RequestReader(limits)
        self.peer: bytes | None = None  # the client certificate's DER, once the handshake is done
        self.out = b""  # the answer still to write
        self.events = 0  # what the selector watches for


def _descriptor_budget() -> int:
    """A quarter of this process's descriptor limit (``ulimit -n``): the most one listener holds."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return 1 << 20
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 1 << 20 if soft == resource.RLIM_INFINITY else max(1, soft // 4)


class Listener:
    """A bounded TCP listener (TLS with ``context``): one I/O thread, at most ``max_connections`` workers.

    The I/O thread accepts, drives each TLS handshake, reads each request with a :class:`RequestReader`,
    writes each answer and closes gracefully, all without blocking, and cuts every connection off at its
    deadline. A subclass says how a request is answered (:meth:`_answer`, run on a worker).
    """

    scheme = "https"
    context: SSL.Context | None = None  # None: plain TCP (the origin behind a proxy)

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, limits: Limits | None = None
    ) -> None:
        self.host = listen_host(host)
        self.limits = limits or Limits()
        self._listener = listening_socket(self.host, port)
        bound = self._listener.getsockname()
        self._bound_address = str(bound[0])
        self.port: int = bound[1]
        self._max_pending = min(self.limits.max_pending, _descriptor_budget())
        self._conns: dict[int, _Conn] = {}  # by descriptor, oldest first
        # answers from workers: (connection, answer, whether the request was refused)
        self._done: collections.deque[tuple[_Conn, bytes, bool]] = collections.deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._close_by = 0.0
        self._io: threading.Thread | None = None
        self._workers: ThreadPoolExecutor | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._paused_until = 0.0  # accepting stopped for a moment (no room); 0: accepting
        self.served = 0  # HTTP answers sent
        self.failed_handshakes = 0
        self.dropped = 0  # connections dropped for a limit, a deadline or a protocol error

    # ---- lifecycle --------------------------------------------------------------------------------
    def _guarded(self, make: Callable[[], _T]) -> _T:
        """``make()``, for a subclass's constructor: if it fails, the socket bound here is released first."""
        try:
            return make()
        except BaseException:
            self._listener.close()
            raise

    @property
    def url(self) -> str:
        """Base URL, e.g. ``https://127.0.0.1:41234``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def address(self) -> str:
        """The address the socket is bound to (a host name resolved, ``[::1]`` as ``::1``)."""
        return self._bound_address

    @property
    def on_loopback(self) -> bool:
        """Whether the listener is on loopback only: judged by the address it is bound to, so ``localhost``,
        ``127.0.0.2`` and ``::1`` are, and ``0.0.0.0`` or an empty host (every interface) are not. It stays
        answerable after :meth:`close`."""
        return is_loopback(self._bound_address)

    def start(self) -> Any:
        """Start serving in the background; returns ``self``."""
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._listener, _R)
        self._selector.register(self._wake_r, _R)
        self._workers = ThreadPoolExecutor(
            self.limits.max_connections, thread_name_prefix=f"mtlslab-conn-{self.port}"
        )
        self._io = threading.Thread(target=self._run, name=f"mtlslab-io-{self.port}", daemon=True)
        self._io.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, let answers in progress finish (bounded by ``timeout``), release everything."""
        self._close_by = time.monotonic() + timeout
        self._closing.set()
        if self._io is not None:
            self._wake()
            self._io.join(timeout + 1.0)
        if self._workers is not None:
            self._workers.shutdown(wait=True, cancel_futures=True)
        self._listener.close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def active_connections(self) -> int:
        """Connections open right now, at any stage from accept to close."""
        return len(self._conns)

    def _count(self, counter: str) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + 1)

    # ---- what a subclass says ---------------------------------------------------------------------
    def _answer(self, incoming: Incoming, *, peer: bytes | None, deadline: float) -> bytes:
        """The bytes that answer ``incoming`` (``b""``: close unanswered), computed on a worker thread;
        ``peer`` is the client certificate's DER, ``deadline`` the connection's (``time.monotonic()``)."""
        raise NotImplementedError

    @staticmethod
    def _refuse(incoming: Incoming) -> bytes:
        """A plain-text answer to a request refused part-way (its status, or 400)."""
        status = incoming.status or 400
        text = f"{reason_phrase(status).lower()}\n".encode()
        return http_answer(incoming.conn, status, [("Content-Type", "text/plain")], text)

    # ---- the I/O thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        assert self._selector is not None
        stopping = False
        try:
            while True:
                now = time.monotonic()
                if self._closing.is_set() and not stopping:
                    stopping = True
                    self._listen(False)
                    self._paused_until = 0.0  # for good
                    self._listener.close()  # new clients are refused from here on
                    # those that have asked nothing yet are let go; answers in progress go out
                    for conn in [c for c in self._conns.values() if c.stage in (_HANDSHAKE, _READ)]:
                        self._finish(conn)
                if stopping and (not self._conns or now > self._close_by):
                    return
                if self._paused_until and now >= self._paused_until:
                    self._listen(True)
                ends = [c.ends for c in self._conns.values()]
                ends.append(self._close_by if stopping else self._paused_until or now + 60.0)
                timeout = max(0.0, min(ends) - now)
                for key, _ in self._selector.select(timeout):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        self._collect()
                    elif key.data.stage != _CLOSED:  # not evicted by an accept in this round
                        self._step(key.data)
                now = time.monotonic()
                for conn in [c for c in self._conns.values() if c.ends <= now]:
                    if conn.stage == _DRAIN:
                        self._close(conn)
                    else:  # past its deadline, even while a worker computes its answer
                        self._count("dropped")
                        self._finish(conn)
        finally:
            for conn in list(self._conns.values()):
                self._close(conn)
            self._selector.close()
            self._listener.close()
            for end in (self._wake_r, self._wake_w):
                assert end is not None
                end.close()

    def _listen(self, on: bool) -> None:
        """Accept connections, or stop for a moment (0.1 s) when there is no room for another."""
        assert self._selector is not None
        if on and self._paused_until:
            self._selector.register(self._listener, _R)
            self._paused_until = 0.0
        elif not on and not self._paused_until:
            self._selector.unregister(self._listener)
            self._paused_until = time.monotonic() + 0.1

    def _accept(self) -> None:
        for _ in range(64):  # a burst, then the connections already here get their turn
            full = len(self._conns) >= self._max_pending
            victim = self._waiting() if full else None
            if full and victim is None:  # every one is being answered: wait a moment
                self._listen(False)
                return
            try:
                sock, _addr = self._listener.accept()
            except BlockingIOError:
                return
            except OSError:  # out of descriptors (EMFILE): make room, or wait a moment
                victim = self._waiting()
                if victim is None:
                    self._listen(False)
                else:
                    self._drop(victim)
                return
            if victim is not None:  # room for the newcomer
                self._drop(victim)
            sock.setblocking(False)
            tls = None
            if self.context is not None:
                tls = SSL.Connection(self.context, sock)
                tls.set_accept_state()
            conn = _Conn(sock, tls, self.limits)
            self._conns[conn.fd] = conn
            self._watch(conn, _R)

    def _waiting(self) -> _Conn | None:
        """The oldest connection without a complete request yet (or closing): the one to drop for room."""
        return next(
            (c for c in self._conns.values() if c.stage in (_HANDSHAKE, _READ, _DRAIN)), None
        )

    def _drop(self, conn: _Conn) -> None:
        if conn.stage != _DRAIN:
            self._count("dropped")
        self._close(conn)

    def _step(self, conn: _Conn) -> None:
        """Take ``conn`` as far as it goes without blocking."""
        try:
            if conn.stage == _HANDSHAKE:
                assert conn.tls is not None
                conn.tls.do_handshake()
                conn.peer = peer_der(conn.tls)
                conn.stage = _READ
            if conn.stage == _READ:
                incoming = None
                while incoming is None:
                    incoming = conn.reader.feed(self._recv(conn))
                self._submit(conn, incoming)
            elif conn.stage == _WRITE:
                while conn.out:
                    conn.out = conn.out[(conn.tls or conn.sock).send(conn.out[:65536]) :]
                self._finish(conn)
            elif conn.stage == _DRAIN:
                for _ in range(
                    16
                ):  # then the others get their turn: a client may write without end
                    if not conn.sock.recv(65536):
                        self._close(conn)
                        return
        except SSL.WantReadError:
            self._watch(conn, _R)
        except SSL.WantWriteError:
            self._watch(conn, _W)
        except BlockingIOError:
            self._watch(conn, _W if conn.stage == _WRITE else _R)
        except (SSL.Error, OSError):
            if conn.stage == _DRAIN:
                self._close(conn)
            else:
                self._count("failed_handshakes" if conn.stage == _HANDSHAKE else "dropped")
                self._finish(conn)

    @staticmethod
    def _recv(conn: _Conn) -> bytes:
        if conn.tls is None:
            return conn.sock.recv(65536)
        try:
            return conn.tls.recv(65536)
        except SSL.ZeroReturnError:  # the client's close_notify: end of stream
            return b""

    def _submit(self, conn: _Conn, incoming: Incoming) -> None:
        """Hand a request read to a worker (the client closed without one: close)."""
        if incoming.request is None and incoming.status is None:
            self._count("dropped")
            self._finish(conn)
            return
        assert self._workers is not None
        conn.stage = _WORK
        self._watch(conn, 0)
        self._workers.submit(self._work, conn, incoming)

    def _work(self, conn: _Conn, incoming: Incoming) -> None:
        """On a worker: compute the answer (none once the deadline has passed) and hand it back."""
        out = b""
        try:
            if time.monotonic() < conn.deadline:
                out = self._answer(incoming, peer=conn.peer, deadline=conn.deadline)
        except Exception:  # noqa: S110 - a failure is a connection closed unanswered, and counted
            pass
        self._done.append((conn, out, incoming.status is not None))
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # closed, or a wake-up already pending
            assert self._wake_w is not None
            self._wake_w.send(b"\0")

    def _collect(self) -> None:
        """Write the answers workers finished."""
        assert self._wake_r is not None
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass
        while self._done:
            conn, out, refused = self._done.popleft()
            if conn.stage != _WORK:  # cut off at its deadline meanwhile, or closed
                continue
            if refused or not out:  # refused for a limit or as malformed, or not answered at all
                self._count("dropped")
            if out:
                self._count("served")  # before it is sent: whoever reads the answer sees the count
                conn.stage, conn.out, conn.ends = _WRITE, out, conn.deadline
                self._step(conn)
            else:
                self._finish(conn)

    def _finish(self, conn: _Conn) -> None:
        """Close gracefully: shut our write side (after TLS close_notify) and drain what the client sends.

        Closing with unread data makes the kernel send a reset, which can destroy a TLS alert or an answer
        in flight; draining first makes the client see it every time (measured: 200 of 200 runs).
        """
        if conn.tls is not None and conn.stage != _HANDSHAKE:
            with contextlib.suppress(SSL.Error):
                conn.tls.shutdown()
        with contextlib.suppress(OSError):
            conn.sock.shutdown(socket.SHUT_WR)
        conn.stage, conn.ends = _DRAIN, time.monotonic() + 2 * self.limits.drain_timeout
        self._watch(conn, _R)

    def _close(self, conn: _Conn) -> None:
        self._watch(conn, 0)
        conn.stage = _CLOSED
        del self._conns[conn.fd]
        conn.sock.close()

    def _watch(self, conn: _Conn, events: int) -> None:
        assert self._selector is not None
        if events == conn.events:
            return
        if not conn.events:
            self._selector.register(conn.sock, events, conn)
        elif not events:
            self._selector.unregister(conn.sock)
        else:
            self._selector.modify(conn.sock, events, conn)
        conn.events = events


class _ResourceServer(Listener):
    """A listener that answers HTTP requests with the engine and an interpretation."""

    from_proxy = False  # whether requests arrive through a TLS-terminating proxy

    def __init__(
        self,
        *,
        lab: Lab,
        deployment: Deployment,
        interpretation: Interpretation,
        asrv: AuthorizationServer | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        now: dt.datetime | None = LAB_NOW,
        limits: Limits | None = None,
        required_scope: str = "read",
    ) -> None:
        # Everything that can fail comes before the socket is bound, so a failure leaves nothing open.
        limits = limits or Limits()
        self.lab = lab
        self.deployment = interpretation.adapt(deployment)
        self.interpretation = interpretation
        self.asrv = asrv or AuthorizationServer(lab)
        self.now = now
        self.config = (
            lab_config(  # the simulation's own: the AS it was given, the lab CA, the lab client
                self.deployment,
                lab,
                self.asrv,
                now=now,
                required_scope=required_scope,
                max_header_bytes=limits.max_header_bytes,
                max_body_bytes=limits.max_body_bytes,
            )
        )
        self.last_finding: Finding | None = None  # the finding of the latest request answered
        super().__init__(host=host, port=port, limits=limits)

    def _now(self) -> dt.datetime:
        return self.now or dt.datetime.now(dt.timezone.utc)

    def _answer(self, incoming: Incoming, *, peer: bytes | None, deadline: float) -> bytes:  # noqa: ARG002
        """The engine decides, sizes first (what the simulation predicts); a malformed request gets 400."""
        decision: Decision | None = None
        if incoming.request is not None and incoming.status in (None, 413):
            request = self._request(incoming.request, incoming.body, peer)
            decision = evaluate(request, self.config, now=self._now())
        elif (
            incoming.status == 431
        ):  # an unfinished head ran past the parser's bound: measured only
            decision = size_decision(self.config, head=incoming.received)
        if decision is None:
            return self._refuse(incoming)
        self.last_finding = decision.finding
        outcome = self.interpretation.respond(decision)
        assert outcome.status is not None
        fields = [(k, v) for k, v in outcome.headers() if k != "Content-Length"]
        return http_answer(incoming.conn, outcome.status, fields, outcome.body.encode("utf-8"))

    def _request(self, request: h11.Request, body: bytes, client_cert: bytes | None) -> Request:
        """The engine's view of an HTTP request (framing fields left out)."""
        headers = tuple(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers
            if name.lower() not in (b"host", b"content-length", b"connection", b"transfer-encoding")
        )
        host = next(
            (v.decode("latin-1") for n, v in request.headers if n.lower() == b"host"),
            self.url.split("//")[1],
        )
        return Request(
            method=request.method.decode("ascii", "replace"),
            url=f"https://{host}{request.target.decode('latin-1')}",
            headers=headers,
            body=body,
            client_cert=client_cert,
            from_proxy=self.from_proxy,
        )


class LiveServer(_ResourceServer):
    """The resource server with TLS (client authentication per the deployment), on loopback by default.

    Usable as a context manager::

        with LiveServer(lab=lab, deployment=Deployment(), interpretation=BUILTINS["baseline"]) as srv:
            ...  # srv.url
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context = self._guarded(lambda: server_context(self.deployment, self.lab))


class Origin(_ResourceServer):
    """The resource server without TLS, as the origin behind a TLS-terminating proxy.

    It trusts the proxy's ``Client-Cert`` only when the deployment says the proxy is trusted.
    """

    scheme = "http"
    from_proxy = True
