"""Run scenarios for real and compare the wire with the simulation.

:func:`run_scenario` starts what the deployment needs (a :class:`LiveStack`: the TLS resource server, or an
origin behind a proxy), sends the request with a real client and returns the observed outcome beside the
simulated one; :func:`run_many` starts each server once; :func:`verify` reports every difference;
:func:`live_matrix` is the comparison matrix from the wire. What cannot run for real (HTTP/2; HAProxy in
front of a certificate asked for late) :func:`live_limitation` names: ``verify`` reports it as not run,
never as agreeing, and ``run_scenario`` and ``run_many`` refuse it.
"""

from __future__ import annotations

import collections
import html
import socket
import ssl
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mtlslab.compare import Cell, Matrix, Simulator
from mtlslab.errors import ScenarioError
from mtlslab.findings import Finding
from mtlslab.interpretations import BUILTINS, Interpretation, Outcome
from mtlslab.live.client import Observed, client_context, send
from mtlslab.live.proxy import HAProxy, Proxy, find_haproxy, make_proxy
from mtlslab.live.server import Limits, Listener, LiveServer, Origin
from mtlslab.pki import Identity, Lab
from mtlslab.scenarios import (
    CATALOGUE,
    CertChoice,
    Deployment,
    Request,
    Scenario,
    Topology,
    realize,
)

__all__ = [
    "DEFAULT_VERIFY",
    "LiveRun",
    "LiveStack",
    "VerifyReport",
    "live_limitation",
    "live_matrix",
    "run_many",
    "run_scenario",
    "verify",
]

#: The interpretations ``verify`` checks by default: the RFC baseline and both readings from the thread.
DEFAULT_VERIFY = ("baseline", "thread-400", "thread-401")


def live_limitation(scenario: Scenario, proxy: str = "auto") -> str | None:
    """Why ``scenario`` cannot run for real here (behind ``proxy``, for a proxied one), or None."""
    deployment = scenario.deployment
    if deployment.http2:
        return (
            "HTTP/2: the live server and client speak HTTP/1.1 only (h11); what HTTP/2 changes (no "
            "certificate asked for late, RFC 9113 §9.2.1, §9.2.3) is simulated only"
        )
    haproxy = proxy == "haproxy" or (proxy == "auto" and find_haproxy())
    if deployment.topology is Topology.PROXY and haproxy:
        return HAProxy.limitation(deployment)
    return None


def _partition(
    scenarios: Iterable[Scenario], proxy: str
) -> tuple[list[Scenario], list[tuple[Scenario, str]]]:
    """The scenarios that can run live, and the others with the reason."""
    reasons = [(scenario, live_limitation(scenario, proxy)) for scenario in scenarios]
    return [s for s, why in reasons if why is None], [(s, why) for s, why in reasons if why]


class LiveStack:
    """The resource server a deployment needs: direct TLS, or an origin behind a proxy (HAProxy or built-in)."""

    def __init__(
        self,
        *,
        simulator: Simulator,
        deployment: Deployment,
        interpretation: Interpretation,
        proxy: str = "auto",
        limits: Limits | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        wall_clock: bool = False,
    ) -> None:
        self.deployment = interpretation.adapt(deployment)
        self.interpretation = interpretation
        self.lab = simulator.lab
        self._client_contexts: dict[tuple[Identity | None, bool], ssl.SSLContext] = {}
        common: dict[str, Any] = {
            "lab": simulator.lab,
            "deployment": self.deployment,
            "interpretation": interpretation,
            "asrv": simulator.asrv,
            "now": None if wall_clock else simulator.now,
            "limits": limits,
        }
        proxied = self.deployment.topology is Topology.PROXY
        # The origin stays on loopback; the proxy is what clients reach, so it takes host and port.
        self.server = Origin(**common) if proxied else LiveServer(host=host, port=port, **common)
        self.proxy: Proxy | None = None
        if proxied:
            try:
                self.proxy = make_proxy(
                    proxy,
                    lab=simulator.lab,
                    deployment=self.deployment,
                    origin_port=self.server.port,
                    host=host,
                    port=port,
                    response_fields=(
                        "WWW-Authenticate",
                        "Content-Type",
                        *interpretation.field_names(),
                    ),
                )
            except BaseException:
                self.server.close()
                raise
        front = self.proxy if self.proxy is not None else self.server
        #: The address clients' connections arrive at (None behind haproxy).
        self.address = front.address if isinstance(front, Listener) else None

    @property
    def url(self) -> str:
        """Where clients connect: the proxy when there is one."""
        return self.proxy.url if self.proxy is not None else self.server.url

    @property
    def port(self) -> int:
        """The port clients connect to (the proxy's when there is one)."""
        return self.proxy.port if self.proxy is not None else self.server.port

    @property
    def on_loopback(self) -> bool:
        """Whether what clients connect to (the proxy when there is one) listens on loopback only."""
        return self.proxy.on_loopback if self.proxy is not None else self.server.on_loopback

    def client_context(
        self, identity: Identity | None, *, post_handshake_auth: bool = True
    ) -> ssl.SSLContext:
        """A client's TLS context for this stack (the lab CA trusted, the deployment's version pinned) that
        presents ``identity`` and offers TLS 1.3 post-handshake authentication unless told not to (RFC 8446
        §4.2.6): made once for each, since loading keys costs more than a loopback run."""
        key = (identity, post_handshake_auth)
        found = self._client_contexts.get(key)
        if found is None:
            found = self._client_contexts[key] = self.fresh_context(
                identity, post_handshake_auth=post_handshake_auth
            )
        return found

    def fresh_context(
        self, identity: Identity | None, *, post_handshake_auth: bool = True
    ) -> ssl.SSLContext:
        """A client context as :meth:`client_context` makes, made anew (not shared with other runs)."""
        ctx = client_context(ca=self.lab.ca, identity=identity, version=self.deployment.tls_version)
        ctx.post_handshake_auth = post_handshake_auth
        return ctx

    def start(self) -> LiveStack:
        """Start the server (and the proxy)."""
        self.server.start()
        if self.proxy is not None:
            try:
                self.proxy.start()
            except BaseException:  # Ctrl-C during haproxy's start too: nothing stays behind
                self.close()
                raise
        return self

    def close(self) -> None:
        """Stop everything (the server even if the proxy fails to stop)."""
        try:
            if self.proxy is not None:
                self.proxy.close()
        finally:
            self.server.close()

    def __enter__(self) -> LiveStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveRun:
    """One scenario run for real under one interpretation, beside its simulation."""

    scenario: Scenario
    interpretation: str
    observed: Observed
    simulated: Outcome
    proxy: str | None = None
    # what the live server decided (TLS_REJECTED when it never saw a request)
    finding: Finding | None = None

    @property
    def agree(self) -> bool:
        """Whether the wire shows exactly what the simulation said."""
        return self.observed.wire() == self.simulated.wire()

    def outcome(self) -> Outcome:
        """The observed response as an :class:`Outcome` (finding from the live server's own decision)."""
        obs = self.observed
        unanswered = obs.status is None and obs.tls_alert is None
        return Outcome(
            finding=self.finding or self.simulated.finding,
            tls_alert=obs.tls_alert,
            status=obs.status,
            www_authenticate=obs.header("WWW-Authenticate"),
            error=obs.error_code(),
            content_type=obs.header("Content-Type"),
            body=obs.body,
            note="observed on the wire" + (f" (no answer: {obs.error})" if unanswered else ""),
        )

    def _repr_html_(self) -> str:
        colour, verdict = ("#1b5e20", "agrees with") if self.agree else ("#b00020", "DIFFERS from")
        via = f" via {self.proxy}" if self.proxy else ""
        cells = "".join(
            f"<td style='vertical-align:top;padding:4px 8px'><div style='font-weight:bold'>{title}</div>"
            f"<pre style='margin:2px 0;background:#f6f6f6;padding:4px;white-space:pre-wrap;word-break:break-all'>"
            f"{html.escape(text)}</pre></td>"
            for title, text in (
                ("simulated", self.simulated.http_text().replace("\r\n", "\n")),
                ("observed on the wire", self.observed.http_text().replace("\r\n", "\n")),
            )
        )
        return (
            f"<div style='border:1px solid #ccc;border-radius:4px;padding:6px'>"
            f"<div><b>{html.escape(self.scenario.id)}</b> × {html.escape(self.interpretation)}{html.escape(via)} — "
            f"<span style='color:{colour}'>the wire {verdict} the simulation</span></div>"
            f"<table style='border-collapse:collapse'><tr>{cells}</tr></table></div>"
        )

    def describe(self) -> str:
        """One line, or two when the wire and the simulation differ."""
        mark = "✓" if self.agree else "✗"
        via = f" via {self.proxy}" if self.proxy else ""
        line = f"{mark} {self.scenario.id} × {self.interpretation}{via}: {self.observed.summary()}"
        if not self.agree:
            line += f"\n    simulated: {self.simulated.summary()} {self.simulated.wire()!r}\n    observed:  {self.observed.wire()!r}"
        return line


def _exchange(
    stack: LiveStack, simulator: Simulator, scenario: Scenario, timeout: float
) -> LiveRun:
    # The client's side of the scenario as the simulation makes it, sent to the live server's URL.
    made = realize(
        scenario,
        simulator.lab,
        simulator.asrv,
        resource_url=f"{stack.url}/resource",
        now=simulator.now,
    )
    identity, request = made.identity, made.client_request
    offers = scenario.presentation.post_handshake_auth
    session = None
    if scenario.presentation.certificate is CertChoice.RESUMED_WITHOUT and identity is not None:
        context = stack.fresh_context(None, post_handshake_auth=offers)
        session = _session_without_certificate(context, request, timeout)
        identity.configure_cert(context)  # the client holds its certificate now, and resumes
    else:
        context = stack.client_context(identity, post_handshake_auth=offers)
    before = stack.server.served
    observed = send(request, timeout=timeout, context=context, session=session)
    finding = Finding.TLS_REJECTED if observed.tls_alert is not None else None
    if finding is None and stack.server.served > before:
        finding = stack.server.last_finding
    return LiveRun(
        scenario=scenario,
        interpretation=stack.interpretation.name,
        observed=observed,
        simulated=simulator.cell(scenario, stack.interpretation).outcome,
        proxy=stack.proxy.kind if stack.proxy is not None else None,
        finding=finding,
    )


def _session_without_certificate(
    context: ssl.SSLContext, request: Request, timeout: float
) -> ssl.SSLSession | None:
    """A TLS session set up by ``context`` presenting no certificate, to be resumed later (RFC 8446 §2.2):
    one request to the server (its answer read, since a TLS 1.3 ticket comes after the handshake); None
    when the server refuses the handshake, as one that requires a certificate does."""
    parts = urllib.parse.urlsplit(request.url)
    try:
        with (
            socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            while tls.recv(65536):
                pass
            return tls.session
    except OSError:  # ssl.SSLError included: no session to resume
        return None


def run_scenario(
    scenario: Scenario,
    interpretation: Interpretation | str = "baseline",
    *,
    lab: Lab | None = None,
    simulator: Simulator | None = None,
    proxy: str = "auto",
    timeout: float = 5.0,
) -> LiveRun:
    """Run one scenario for real under one interpretation (starting and stopping its server); ScenarioError
    when it cannot run live (:func:`live_limitation`)."""
    sim = simulator or Simulator(lab)
    return run_many([scenario], [interpretation], simulator=sim, proxy=proxy, timeout=timeout)[0]


def run_many(
    scenarios: Iterable[Scenario],
    interpretations: Iterable[Interpretation | str],
    *,
    simulator: Simulator | None = None,
    proxy: str = "auto",
    timeout: float = 5.0,
) -> list[LiveRun]:
    """Run every scenario under every interpretation, one server per distinct deployment; ScenarioError when
    one cannot run live (:func:`live_limitation`)."""
    sim = simulator or Simulator()
    interps = [BUILTINS[i] if isinstance(i, str) else i for i in interpretations]
    chosen = list(scenarios)
    for scenario, reason in _partition(chosen, proxy)[1]:
        raise ScenarioError("deployment", f"{scenario.id} cannot run live: {reason}")
    groups: dict[tuple[int, Deployment], list[int]] = collections.defaultdict(list)
    for n, interp in enumerate(interps):
        for k, scenario in enumerate(chosen):
            groups[(n, interp.adapt(scenario.deployment))].append(k)
    runs: dict[tuple[int, int], LiveRun] = {}
    for (n, deployment), members in groups.items():
        with LiveStack(
            simulator=sim, deployment=deployment, interpretation=interps[n], proxy=proxy
        ) as stack:
            for k in members:
                runs[(k, n)] = _exchange(stack, sim, chosen[k], timeout)
    return [runs[(k, n)] for k in range(len(chosen)) for n in range(len(interps))]


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyReport:
    """The catalogue run live: how many runs agree with the simulation, the ones that do not, and those not
    run live (``skipped``, each with the reason, :func:`live_limitation`), which count as neither."""

    runs: tuple[LiveRun, ...]
    seconds: float
    proxies: tuple[str, ...] = field(default=())
    skipped: tuple[tuple[Scenario, str], ...] = field(default=())

    @property
    def differences(self) -> tuple[LiveRun, ...]:
        """The runs whose wire differs from the simulation."""
        return tuple(r for r in self.runs if not r.agree)

    @property
    def ok(self) -> bool:
        """Whether every run agrees."""
        return not self.differences

    def text(self) -> str:
        """A report for a terminal."""
        scenarios = len({r.scenario.id for r in self.runs})
        interps = sorted({r.interpretation for r in self.runs})
        agreed = len(self.runs) - len(self.differences)
        via = f"; proxied scenarios through {', '.join(self.proxies)}" if self.proxies else ""
        lines = [
            f"live vs simulated: {agreed}/{len(self.runs)} agree ({scenarios} scenarios × "
            f"{', '.join(interps)}) in {self.seconds:.1f} s{via}"
        ]
        if self.skipped:
            lines.append(f"not run live: {len(self.skipped)} scenarios (simulated only)")
            lines += [f"- {scenario.id}: {reason}" for scenario, reason in self.skipped]
        lines += [r.describe() for r in self.differences]
        return "\n".join(lines) + "\n"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td style='padding:2px 6px;color:{'#1b5e20' if r.agree else '#b00020'}'>{'✓' if r.agree else '✗'}</td>"
            f"<td style='padding:2px 6px;font-family:monospace'>{html.escape(r.scenario.id)}</td>"
            f"<td style='padding:2px 6px'>{html.escape(r.interpretation)}</td>"
            f"<td style='padding:2px 6px;font-family:monospace'>{html.escape(r.simulated.summary())}</td>"
            f"<td style='padding:2px 6px;font-family:monospace'>{html.escape(r.observed.summary())}</td></tr>"
            for r in self.runs
        )
        head = html.escape(self.text().splitlines()[0])
        skipped = "".join(
            f"<div style='color:#555'>not run live: <code>{html.escape(scenario.id)}</code> — "
            f"{html.escape(reason)}</div>"
            for scenario, reason in self.skipped
        )
        return (
            f"<div><b>{head}</b><table style='border-collapse:collapse;font-size:12px'>"
            "<tr><th></th><th style='text-align:left'>scenario</th><th style='text-align:left'>interpretation</th>"
            "<th style='text-align:left'>simulated</th><th style='text-align:left'>observed</th></tr>"
            f"{rows}</table>{skipped}</div>"
        )

    def to_json(self) -> dict[str, Any]:
        """Machine-readable form."""
        return {
            "agree": len(self.runs) - len(self.differences),
            "runs": len(self.runs),
            "seconds": round(self.seconds, 3),
            "skipped": [{"scenario": s.id, "reason": reason} for s, reason in self.skipped],
            "differences": [
                {
                    "scenario": r.scenario.id,
                    "interpretation": r.interpretation,
                    "simulated": list(r.simulated.wire()),
                    "observed": list(r.observed.wire()),
                }
                for r in self.differences
            ],
        }


def verify(
    scenarios: Sequence[Scenario] = CATALOGUE,
    interpretations: Iterable[Interpretation | str] = DEFAULT_VERIFY,
    *,
    simulator: Simulator | None = None,
    proxy: str = "auto",
) -> VerifyReport:
    """Run ``scenarios`` live under ``interpretations`` and compare each wire outcome with the simulation;
    those that cannot run live are reported as skipped, with the reason."""
    started = time.monotonic()
    runnable, skipped = _partition(scenarios, proxy)
    runs = run_many(runnable, interpretations, simulator=simulator, proxy=proxy)
    proxies = tuple(sorted({r.proxy for r in runs if r.proxy}))
    seconds = time.monotonic() - started
    return VerifyReport(runs=tuple(runs), seconds=seconds, proxies=proxies, skipped=tuple(skipped))


def live_matrix(
    scenarios: Sequence[Scenario] = CATALOGUE,
    interpretations: Iterable[Interpretation | str] = DEFAULT_VERIFY,
    *,
    simulator: Simulator | None = None,
    proxy: str = "auto",
) -> Matrix:
    """The comparison matrix built from what the wire showed (each cell's note says so), over the scenarios
    that can run live (:func:`live_limitation`)."""
    interps = [BUILTINS[i] if isinstance(i, str) else i for i in interpretations]
    scenarios, _ = _partition(scenarios, proxy)
    cells = {}
    for run in run_many(scenarios, interps, simulator=simulator, proxy=proxy):
        outcome = run.outcome()
        cells[(run.scenario.id, run.interpretation)] = Cell(
            scenario=run.scenario.id,
            interpretation=run.interpretation,
            finding=outcome.finding,
            outcome=outcome,
        )
    return Matrix(scenarios=tuple(scenarios), interpretations=tuple(interps), cells=cells)
