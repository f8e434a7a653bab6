"""For people at a terminal: the lab's files on disk and the ``curl`` command for each scenario."""

from __future__ import annotations

import datetime as dt
import errno
import ipaddress
import json
import os
import shlex
import socket
import stat
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mtlslab.pki import LAB_NOW, Artefact, Lab
from mtlslab.scenarios import CertChoice, Request, Scenario, TlsVersion, realize
from mtlslab.spec import shorten
from mtlslab.tokens import AuthorizationServer

__all__ = [
    "ARGUMENT_LIMIT_BYTES",
    "LAB_MANIFEST",
    "LabFolder",
    "LabFolderConflict",
    "client_url",
    "curl_argv",
    "curl_command",
    "curl_shown",
    "too_long_for_an_argument",
    "write_lab_folder",
]

#: The file in a lab folder that names the lab which wrote it: its seed and its certificates' ``x5t#S256``.
LAB_MANIFEST = "lab.json"


class LabFolderConflict(FileExistsError):
    """``folder`` holds files (``names``) :func:`write_lab_folder` would write differently, another seed's
    or unknown material; ``seed``: the seed the folder's ``lab.json`` names (None: none, or no file)."""

    def __init__(self, folder: Path, names: tuple[str, ...], seed: str | None) -> None:
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        whose = f"its {LAB_MANIFEST} names seed {seed!r}"
        if seed is None:
            whose = f"no {LAB_MANIFEST} there names their seed"
        message = f"{folder} holds other material ({shown}; {whose})"
        super().__init__(errno.EEXIST, message, str(folder))
        self.folder, self.names, self.seed = folder, names, seed


@dataclass(frozen=True, slots=True, kw_only=True)
class LabFolder:
    """What :func:`write_lab_folder` did: the folder, the files it wrote, those it kept (the same bytes)."""

    path: Path
    written: tuple[str, ...]
    kept: tuple[str, ...]


def write_lab_folder(
    lab: Lab, directory: str | os.PathLike[str], *, every_identity: bool = True, force: bool = False
) -> LabFolder:
    """Write ``ca.pem``, ``client.pem``/``.key``, ``server.pem``/``.key`` (chain, key 0600), with
    ``every_identity`` every named identity's ``NAME.pem``/``.key``, and ``lab.json`` (the seed and the
    ``x5t#S256`` of ``ca.pem``, ``client.pem`` and ``server.pem``) into ``directory`` (made if missing).
    A file there with the same bytes is kept; any other of the same name (another seed's, a link, a
    folder) raises :class:`LabFolderConflict` before anything is written, unless ``force`` replaces it
    (never writing through it)."""
    folder = Path(directory)
    files = {"ca.pem": lab.ca.cert_pem}
    named = {"client": lab.client, "server": lab.server}
    for name, identity in {**named, **(lab.identities() if every_identity else {})}.items():
        files[f"{name}.pem"] = identity.cert_chain_pem
        files[f"{name}.key"] = identity.private_key_pem
    try:  # lab.json: the seed (when it is text) and the thumbprints that identify the lab's files
        text: str | None = lab.seed.decode() if isinstance(lab.seed, bytes) else str(lab.seed)
    except UnicodeDecodeError:
        text = None
    pems = ("ca", "client", "server")
    thumbprints = {f"{name}.pem": getattr(lab, name).x5t_s256 for name in pems}
    manifest = json.dumps({"seed": text, "x5t#S256": thumbprints}, indent=2) + "\n"
    files[LAB_MANIFEST] = Artefact(manifest.encode(), "lab manifest")
    # None: nothing there; True: the same bytes; False: anything else (a link is never the same).
    found = {
        name: None
        if not os.path.lexists(folder / name)
        else _regular_bytes(folder / name, len(artefact.data) + 1) == artefact.data
        for name, artefact in files.items()
    }
    differ = tuple(name for name, same in found.items() if same is False)
    if differ and not force:
        try:
            seed = json.loads(_regular_bytes(folder / LAB_MANIFEST, 1 << 16) or b"").get("seed")
        except (ValueError, AttributeError):
            seed = None
        raise LabFolderConflict(folder, differ, seed if isinstance(seed, str) else None)
    folder.mkdir(parents=True, exist_ok=True)
    written = tuple(name for name, same in found.items() if not same)
    for name in written:
        files[name].write_to_path(folder / name, force=found[name] is False)
    kept = tuple(name for name, same in found.items() if same)
    return LabFolder(path=folder, written=written, kept=kept)


def _regular_bytes(path: Path, limit: int) -> bytes | None:
    """At most ``limit`` bytes of ``path`` if it is a regular file (None for a link, a FIFO, a folder,
    nothing), opened without following a link or blocking."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read(limit) if stat.S_ISREG(os.fstat(fd).st_mode) else None


#: Linux refuses to start a program (E2BIG) when one command-line argument's bytes, with the argument's
#: terminating NUL, are more than this: MAX_ARG_STRLEN, 32 pages (here of 4 KiB; more where pages are larger).
ARGUMENT_LIMIT_BYTES = 128 * 1024


def too_long_for_an_argument(arg: str) -> bool:
    """Whether ``arg`` is more than Linux lets one command-line argument be (:data:`ARGUMENT_LIMIT_BYTES`)."""
    return len(arg.encode("utf-8", "surrogateescape")) + 1 > ARGUMENT_LIMIT_BYTES


def curl_shown(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """``args`` as a person can be shown them, those too long for a command line shortened and those holding
    CR, LF or NUL escaped (:func:`mtlslab.spec.shorten`), and a comment for each: the command cannot run as
    printed, and why."""
    shown, notes = [], []
    for arg in args:
        if too_long_for_an_argument(arg):
            notes.append(
                f"# NOT RUNNABLE AS SHOWN: one argument has {len(arg.encode('utf-8', 'surrogateescape')):,} "
                f"bytes, more than Linux lets one command-line argument be ({ARGUMENT_LIMIT_BYTES // 1024} KiB); "
                "it is shortened below. Put the full value in a file and let curl read it (--header @FILE, "
                "--data-binary @FILE)"
            )
            arg = shorten(arg)
        elif any(c in arg for c in "\r\n\0"):  # no field value may hold them (RFC 9110 §5.5)
            notes.append(
                "# NOT RUNNABLE AS SHOWN: one argument holds CR, LF or NUL (escaped below as \\r \\n \\x00): "
                "no header value may (RFC 9110 §5.5) and curl will not send it as it is; the live lab "
                "(Run live, python -m mtlslab verify) sends these bytes"
            )
            arg = shorten(arg, len(arg) * 4 + 16)  # escaped whole: \x00 is four characters for one
        shown.append(arg)
    return shown, notes


def curl_argv(
    request: Request, *, certificate: CertChoice, tls_version: TlsVersion, folder: str = "lab"
) -> list[str]:
    """The ``curl`` arguments that send ``request`` presenting ``certificate`` with ``tls_version`` pinned,
    using the lab's file names in ``folder`` (``ca.pem``, ``NAME.pem``, ``NAME.key``)."""
    prefix = f"{folder}/" if folder not in ("", ".") else ""
    version = tls_version.value
    args = ["curl", "--silent", "--show-error", "--include", f"--tlsv{version}", "--tls-max"]
    args += [version, "--cacert", f"{prefix}ca.pem"]
    if certificate is not CertChoice.NONE:
        name = f"{prefix}{certificate.value}"
        args += ["--cert", f"{name}.pem", "--key", f"{name}.key"]
    if request.method != ("POST" if request.body else "GET"):
        args += ["--request", request.method]
    for header, value in request.headers:
        args += ["--header", f"{header}: {value}"]
    if request.body:
        args += ["--data-raw", request.body.decode("latin-1")]
    return [*args, request.url]


def client_url(url: str, *, address: str | None = None) -> tuple[str, str | None]:
    """For a server at ``url`` (``https://HOST:PORT``, any path kept): the URL a client uses and, when it
    needs one, the ``curl --resolve`` value, so that the lab server certificate (``localhost``,
    ``127.0.0.1``, ``::1``) verifies. ``address`` is the address bound, when known (else a host name is
    resolved here, IPv4). Those three are used as they are (``::ffff:127.0.0.1`` as ``127.0.0.1``), a
    wildcard is reached on loopback, any other address as ``localhost`` resolved to it; what curl cannot
    resolve to (a zone, a name that does not resolve, no usable port) is left as it is."""
    parts = urllib.parse.urlsplit(url)
    name = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:  # a port out of range
        return url, None
    if port == 0 or name == "localhost":  # no port a client can use, or the name as it is
        return url, None
    try:
        found = ipaddress.ip_address(address or name)
    except ValueError:
        try:
            infos = socket.getaddrinfo(name, port, family=socket.AF_INET, type=socket.SOCK_STREAM)
        except OSError:
            return url, None
        found = ipaddress.ip_address(str(infos[0][4][0]))
    if isinstance(found, ipaddress.IPv6Address):
        if found.scope_id:
            return url, None  # a zone (fe80::1%eth0): no --resolve value can carry it
        found = found.ipv4_mapped or found
    netloc_port = f":{port}" if port is not None else ""
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    loopback = "[::1]" if found.version == 6 else "127.0.0.1"
    # A wildcard is reached on loopback; the loopback addresses the certificate names, as literals.
    if found.is_unspecified or str(found) in ("127.0.0.1", "::1"):
        return f"{parts.scheme}://{loopback}{netloc_port}{rest}", None
    if port is None:
        return url, None  # --resolve needs the port
    shown = f"[{found}]" if found.version == 6 else str(found)
    return f"{parts.scheme}://localhost{netloc_port}{rest}", f"localhost:{port}:{shown}"


def curl_command(
    scenario: Scenario,
    *,
    url: str,
    lab: Lab,
    asrv: AuthorizationServer | None = None,
    folder: str = "lab",
    now: dt.datetime | None = None,
    resolve: str | None = None,
) -> str:
    """The ``curl`` command that sends ``scenario``'s request to ``url`` (the server's base URL) with the
    files :func:`write_lab_folder` writes into ``folder`` (with ``resolve``: ``--resolve``, see
    :func:`client_url`), an argument too long for a command line shortened (:func:`curl_shown`)."""
    server = asrv or AuthorizationServer(lab)
    exchange = realize(scenario, lab, server, resource_url=f"{url}/resource", now=now or LAB_NOW)
    # the token and proofs at that clock, to the scenario's endpoint
    request = exchange.client_request
    certificate, version = scenario.presentation.certificate, scenario.deployment.tls_version
    args = curl_argv(request, certificate=certificate, tls_version=version, folder=folder)
    if resolve is not None:
        # curl resolves the name the certificate carries to the server's address
        args[1:1] = ["--resolve", resolve]
    shown, notes = curl_shown(args)
    return "\n".join([*notes, " ".join(shlex.quote(a) for a in shown)])
