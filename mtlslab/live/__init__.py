"""Live mode: every scenario over real mutual TLS on 127.0.0.1, compared with the simulation byte for byte.

The edge of mtlslab that opens sockets; nothing here decides anything (the server answers with
:func:`mtlslab.rs.evaluate` and an interpretation, the calls the simulation makes).

* :class:`LiveServer` — TLS resource server (pyOpenSSL; client auth none / optional / optional-no-ca /
  required; TLS 1.2 or 1.3 pinned), bounded by :class:`Limits` (slow clients hold no worker), a context
  manager. :class:`Origin` + :class:`HAProxy` / :class:`BuiltinProxy` — the same behind a TLS-terminating
  proxy that forwards RFC 9440 ``Client-Cert`` (HAProxy never outlives the process that started it).
* :func:`send` — a real client that reports TLS alerts with when they surfaced, and a connection closed
  without any alert (:data:`CLOSED_WITHOUT_ALERT`).
* :func:`run_scenario`, :func:`run_many`, :func:`verify`, :func:`live_matrix` — live runs;
  :func:`live_limitation` — why a scenario cannot run live here, which ``verify`` reports.
* :func:`curl_command`, :func:`client_url`, :func:`write_lab_folder` — the same from a terminal.
* ``mtlslab.live.issuer.LabIssuer`` — the lab authorization server on the wire (JWKS, RFC 9728 metadata,
  introspection, the RFC 8705 §2 token endpoint), which the probe points a real server at.
"""

from __future__ import annotations

from mtlslab.live.client import CLOSED_WITHOUT_ALERT, Observed, alert_from_error, send
from mtlslab.live.proxy import BuiltinProxy, HAProxy, find_haproxy, haproxy_config, make_proxy
from mtlslab.live.runner import (
    LiveRun,
    LiveStack,
    VerifyReport,
    live_limitation,
    live_matrix,
    run_many,
    run_scenario,
    verify,
)
from mtlslab.live.server import Limits, LiveServer, Origin, server_context
from mtlslab.live.terminal import client_url, curl_command, write_lab_folder

__all__ = [
    "CLOSED_WITHOUT_ALERT",
    "BuiltinProxy",
    "HAProxy",
    "Limits",
    "LiveRun",
    "LiveServer",
    "LiveStack",
    "Observed",
    "Origin",
    "VerifyReport",
    "alert_from_error",
    "client_url",
    "curl_command",
    "find_haproxy",
    "haproxy_config",
    "live_limitation",
    "live_matrix",
    "make_proxy",
    "run_many",
    "run_scenario",
    "send",
    "server_context",
    "verify",
    "write_lab_folder",
]
