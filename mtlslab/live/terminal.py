"""For people at a terminal: the lab's files on disk and the ``curl`` command for each scenario."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shlex
import socket
import urllib.parse
from pathlib import Path

from mtlslab.pki import Lab
from mtlslab.scenarios import Scenario, client_request, curl_argv, curl_shown
from mtlslab.tokens import AuthorizationServer

__all__ = ["client_url", "curl_command", "write_lab_folder"]


def write_lab_folder(lab: Lab, directory: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write ``ca.pem``, ``server.pem``/``server.key``, every client identity as ``NAME.pem``/``NAME.key``
    (certificate chain / private key, keys with mode 0600) and ``lab.json``. Returns the folder.

    Files already there with the same bytes are kept; other material is refused unless ``force`` (see
    :meth:`~mtlslab.pki.Lab.write`)."""
    return lab.write(directory, every_identity=True, force=force).path


def client_url(url: str, *, address: str | None = None) -> tuple[str, str | None]:
    """For a server listening at ``url`` (``https://HOST:PORT``, any path kept): the URL a client uses and,
    when it needs one, the ``curl --resolve`` value, so that the lab server certificate (``localhost``,
    ``127.0.0.1``, ``::1``) verifies. ``address`` is the address the server bound, when known; otherwise a
    host name is resolved here (IPv4, as the Python listener binds a name).

    - ``localhost``, ``127.0.0.1`` and ``::1`` are used as they are (an IPv4-mapped ``::ffff:127.0.0.1``
      as ``127.0.0.1``).
    - A wildcard listener (``0.0.0.0``, ``::``) is reached on loopback from this machine.
    - Any other address (``127.0.0.2``, a LAN address) is reached as ``localhost``, resolved to it.
    - What curl cannot be told to resolve to (a link-local address with a zone, a name that does not
      resolve, a URL that names no usable port) is left as it is: the certificate will not verify there,
      and nothing printed can change that.
    """
    parts = urllib.parse.urlsplit(url)
    name = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:  # a port out of range
        return url, None
    if port == 0:  # no port a client can use
        return url, None
    if name == "localhost":
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
    if found.is_unspecified:
        local = "[::1]" if found.version == 6 else "127.0.0.1"
        return f"{parts.scheme}://{local}{netloc_port}{rest}", None
    if str(found) in (
        "127.0.0.1",
        "::1",
    ):  # named by the certificate: written as an address literal
        literal = "[::1]" if found.version == 6 else "127.0.0.1"
        return f"{parts.scheme}://{literal}{netloc_port}{rest}", None
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
    """The ``curl`` command that sends ``scenario``'s request to ``url`` (the server's base URL), using the
    files :func:`write_lab_folder` writes into ``folder``; with ``resolve``, ``--resolve`` that value
    (see :func:`client_url`).

    An argument too long for a command line (the huge token) is shortened, after a comment line that says
    the command cannot run as printed."""
    server = asrv or AuthorizationServer(lab)
    token = server.mint(scenario.token) if now is None else server.mint(scenario.token, now=now)
    request = client_request(scenario.presentation, token, lab=lab, resource_url=f"{url}/resource")
    args = curl_argv(
        request,
        certificate=scenario.presentation.certificate,
        tls_version=scenario.deployment.tls_version,
        folder=folder,
    )
    if resolve is not None:
        # curl resolves the name the certificate carries to the server's address
        args[1:1] = ["--resolve", resolve]
    shown, notes = curl_shown(args)
    return "\n".join([*notes, " ".join(shlex.quote(a) for a in shown)])
