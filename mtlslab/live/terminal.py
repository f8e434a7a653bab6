"""For people at a terminal: the lab's files on disk and the ``curl`` command for each scenario."""

from __future__ import annotations

import datetime as dt
import os
import shlex
from pathlib import Path

from mtlslab.pki import Lab
from mtlslab.scenarios import Scenario, client_request, curl_argv, curl_shown
from mtlslab.tokens import AuthorizationServer

__all__ = ["curl_command", "write_lab_folder"]


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


def curl_command(
    scenario: Scenario,
    *,
    url: str,
    lab: Lab,
    asrv: AuthorizationServer | None = None,
    folder: str = "lab",
    now: dt.datetime | None = None,
) -> str:
    """The ``curl`` command that sends ``scenario``'s request to ``url`` (the server's base URL), using the
    files :func:`write_lab_folder` writes into ``folder``.

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
    shown, notes = curl_shown(args)
    return "\n".join([*notes, " ".join(shlex.quote(a) for a in shown)])
