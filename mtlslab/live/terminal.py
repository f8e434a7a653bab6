"""For people at a terminal: the lab's files on disk and the ``curl`` command for each scenario."""

from __future__ import annotations

import datetime as dt
import os
import shlex
from pathlib import Path

from mtlslab.pki import Lab
from mtlslab.scenarios import Scenario, client_request, curl_argv, curl_shown
from mtlslab.tokens import AuthorizationServer

__all__ = ["client_url", "curl_command", "write_lab_folder"]

#: The names the lab server certificate is for (:meth:`mtlslab.pki.Lab.server`).
_CERTIFIED = ("localhost", "127.0.0.1", "::1")


def write_lab_folder(lab: Lab, directory: str | os.PathLike[str]) -> Path:
    """Write ``ca.pem``, ``server.pem``/``server.key`` and every client identity as ``NAME.pem``/``NAME.key``
    (certificate chain / private key, keys with mode 0600). Returns the folder."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    lab.ca.cert_pem.write_to_path(folder / "ca.pem")
    lab.server.cert_chain_pem.write_to_path(folder / "server.pem")
    lab.server.private_key_pem.write_to_path(folder / "server.key")
    for name, identity in lab.identities().items():
        identity.cert_chain_pem.write_to_path(folder / f"{name}.pem")
        identity.private_key_pem.write_to_path(folder / f"{name}.key")
    return folder


def client_url(url: str) -> tuple[str, str | None]:
    """For a server listening at ``url`` (``https://HOST:PORT``): the URL a client uses and, when it needs
    one, the ``curl --resolve`` value, so that the lab server certificate (``localhost``, ``127.0.0.1``,
    ``::1``) verifies.

    A wildcard listener (``0.0.0.0``, ``::``) is reached on loopback from this machine. Any other address
    the certificate does not name (``127.0.0.2``, a LAN address) is reached as ``localhost``, resolved to
    that address."""
    scheme, rest = url.split("://", 1)
    host, _, port = rest.rpartition(":")
    bare = host.strip("[]")
    if bare in ("", "0.0.0.0", "::"):  # noqa: S104 - recognising the wildcard, not binding it
        local = "[::1]" if bare == "::" else "127.0.0.1"
        return f"{scheme}://{local}:{port}", None
    if bare in _CERTIFIED:
        return url, None
    address = f"[{bare}]" if ":" in bare else bare
    return f"{scheme}://localhost:{port}", f"localhost:{port}:{address}"


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
    if (
        resolve is not None
    ):  # curl resolves the name the certificate carries to the server's address
        args[1:1] = ["--resolve", resolve]
    shown, notes = curl_shown(args)
    return "\n".join([*notes, " ".join(shlex.quote(a) for a in shown)])
