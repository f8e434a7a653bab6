"""mtlslab benchmarks: each cost measured side by side with a baseline in the same run, as a ratio.

Timings on a shared machine are noisy, so every figure is a *ratio* against a baseline measured in the
same process, interleaved sample by sample (mtlslab, baseline, mtlslab, baseline, ...), each figure the
median of the samples. Absolute times are printed too, but only the ratios compare across machines.

    python benchmarks/run.py            # a table
    python benchmarks/run.py --quick    # fewer repetitions
    python benchmarks/run.py --json     # machine-readable

A section is a function ``(Settings) -> list[Result]`` in :data:`SECTIONS`; later sections (the engine,
live TLS, the widgets) add theirs to the list.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """How many samples to take, and how many calls make one sample."""

    samples: int
    batch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """One measured cost: mtlslab against its baseline, per call, medians of the samples."""

    section: str
    name: str
    what: str
    baseline: str
    mtlslab_s: float
    baseline_s: float
    target: float | None = None

    @property
    def ratio(self) -> float:
        """mtlslab's median time divided by the baseline's (< 1.0: mtlslab is faster)."""
        return self.mtlslab_s / self.baseline_s

    def as_dict(self) -> dict[str, object]:
        """The result with its ratio, for ``--json``."""
        return {**asdict(self), "ratio": self.ratio}


def side_by_side(
    subject: Callable[[], object], baseline: Callable[[], object], settings: Settings
) -> tuple[float, float]:
    """Median seconds per call of ``subject`` and ``baseline``, sampled alternately after a warm-up."""
    subject()
    baseline()
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(settings.samples):
        for fn, into in ((subject, ours), (baseline, theirs)):
            start = time.perf_counter()
            for _ in range(settings.batch):
                fn()
            into.append((time.perf_counter() - start) / settings.batch)
    return statistics.median(ours), statistics.median(theirs)


# --------------------------------------------------------------------------------------------------
# Section: the lab PKI and tokens (the foundation).


def foundation(settings: Settings) -> list[Result]:
    """CA + client certificate against trustme, a seeded Lab, and minting a token."""
    import jwt
    import trustme
    from cryptography.hazmat.primitives.asymmetric import ec

    from mtlslab.pki import Lab
    from mtlslab.tokens import LAB_AUDIENCE, LAB_ISSUER, AuthorizationServer

    results: list[Result] = []

    # (a) A fresh CA and one EC client certificate for a DNS name, as trustme's front door makes them.
    def mtlslab_ca_and_client() -> object:
        return Lab().ca.issue_client("client", san_dns=("client.example",))

    def trustme_ca_and_client() -> object:
        return trustme.CA().issue_cert("client.example")

    ours, theirs = side_by_side(mtlslab_ca_and_client, trustme_ca_and_client, settings)
    results.append(
        Result(
            section="foundation",
            name="ca_and_client",
            what='Lab().ca.issue_client("client", san_dns=("client.example",)) — unseeded, EC P-256',
            baseline='trustme.CA().issue_cert("client.example")',
            mtlslab_s=ours,
            baseline_s=theirs,
            target=1.0,
        )
    )

    # (b) A seeded lab with every named identity, against trustme making the same number of certificates.
    def seeded_lab() -> object:
        lab = Lab(seed="benchmark")
        return [lab.ca, lab.rogue_ca, lab.server, *lab.identities().values()]

    probe = Lab(seed="benchmark")
    leaves = len(probe.identities()) + 1  # + the server
    roots = 2  # ca and rogue_ca

    def trustme_lab() -> object:
        cas = [trustme.CA() for _ in range(roots)]
        return [cas[0].issue_cert(f"leaf{i}.example") for i in range(leaves)]

    ours, theirs = side_by_side(seeded_lab, trustme_lab, settings)
    results.append(
        Result(
            section="foundation",
            name="seeded_lab",
            what=f"Lab(seed=...) with ca, rogue_ca, server and {leaves - 1} named client identities",
            baseline=f"{roots} × trustme.CA() + {leaves} × issue_cert",
            mtlslab_s=ours,
            baseline_s=theirs,
        )
    )

    # (c) Minting one bound access token from a fresh authorization server (nothing cached).
    lab = Lab(seed="benchmark")
    _ = lab.client.x5t_s256

    def mint() -> object:
        return AuthorizationServer(lab).mint("bound")

    now = int(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    claims = {"iss": LAB_ISSUER, "aud": LAB_AUDIENCE, "sub": "alice", "iat": now, "exp": now + 3600}

    def bare_es256() -> object:
        key = ec.generate_private_key(ec.SECP256R1())
        return jwt.encode(claims, key, algorithm="ES256")

    ours, theirs = side_by_side(mint, bare_es256, settings)
    results.append(
        Result(
            section="foundation",
            name="mint_token",
            what='AuthorizationServer(lab).mint("bound") — derived ES256 key, deterministic signature',
            baseline='ec.generate_private_key(SECP256R1) + jwt.encode(claims, key, "ES256")',
            mtlslab_s=ours,
            baseline_s=theirs,
        )
    )
    return results


#: The benchmark sections, run in this order; later modules append theirs.
# --------------------------------------------------------------------------------------------------
# Section: the engine (one scenario under every interpretation; the whole matrix).


def _bare_check() -> Callable[[], object]:
    """pyjwt decode of a bound token + an x5t#S256 comparison: what a minimal RS does per request."""
    import hashlib
    import hmac

    import jwt

    from mtlslab.pki import Lab
    from mtlslab.tokens import LAB_AUDIENCE, LAB_ISSUER, AuthorizationServer

    lab = Lab(seed="benchmark")
    asrv = AuthorizationServer(lab)
    token = asrv.mint("bound").value
    key = jwt.PyJWKSet.from_dict(asrv.jwks()).keys[0]
    der = lab.client.der
    lab_now = 1767225600 + 60

    def bare() -> object:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=["ES256"],
            audience=LAB_AUDIENCE,
            issuer=LAB_ISSUER,
            leeway=max(0, int(time.time()) - lab_now),
        )
        presented = jwt.utils.base64url_encode(hashlib.sha256(der).digest()).decode()
        return hmac.compare_digest(claims["cnf"]["x5t#S256"].encode(), presented.encode())

    assert bare() is True
    return bare


def _cold(
    sim: object,
    interpretations: Sequence[object],
    *,
    answers: bool = True,
    realisation: bool = False,
) -> None:
    """Forget every decision and signature verification; with ``answers`` the interpretations' rendered
    answers too; with ``realisation`` also chain validations, TLS-model results and built requests
    (never the minted lab material)."""
    from mtlslab import pki, rs, scenarios, tls

    rs._verify_jws.cache_clear()
    rs._check_proof.cache_clear()
    rs._prefix.cache_clear()
    rs._front.cache_clear()
    sim._decisions.clear()  # type: ignore[attr-defined]
    if answers:
        for interp in interpretations:
            interp._cache.clear()  # type: ignore[attr-defined]
    if realisation:
        pki._validate_cached.cache_clear()
        tls._handshake.cache_clear()
        scenarios._client_request.cache_clear()


def engine(settings: Settings) -> list[Result]:
    """One scenario under all interpretations, and the whole matrix, against the bare check."""
    from mtlslab.compare import Simulator
    from mtlslab.interpretations import BUILTINS, Interpretation
    from mtlslab.pki import Lab
    from mtlslab.scenarios import CATALOGUE, get_scenario
    from mtlslab.tokens import AuthorizationServer

    bare = _bare_check()
    lab = Lab(seed="benchmark")
    asrv = AuthorizationServer(lab)
    interpretations = list(BUILTINS.values())
    sim = Simulator(lab, asrv=asrv)
    scenario = get_scenario("success")
    for interp in interpretations:
        sim.exchange(sim.effective(scenario, interp))  # the request as it arrives: realised once

    def one_scenario() -> object:
        _cold(sim, interpretations, answers=False)
        return sim.row(scenario, interpretations)

    def one_scenario_cold_answers() -> object:
        _cold(sim, interpretations, answers=True)
        return sim.row(scenario, interpretations)

    ours, theirs = side_by_side(one_scenario, bare, settings)
    results = [
        Result(
            section="engine",
            name="one_scenario_all_interpretations",
            what=f"Simulator.row: 'success' decided and answered under all {len(interpretations)} built-ins; decisions "
            "and signature verification cold each call; each interpretation's answer for a finding "
            "rendered once and reused",
            baseline="one bare check: jwt.decode(ES256, aud, iss) + x5t#S256 compare",
            mtlslab_s=ours,
            baseline_s=theirs,
            target=1.2,
        )
    ]
    ours, theirs = side_by_side(one_scenario_cold_answers, bare, settings)
    results.append(
        Result(
            section="engine",
            name="one_scenario_all_interpretations_cold",
            what="the same with every interpretation's answer rendered afresh (challenge validated, body "
            "templated) each call",
            baseline="one bare check",
            mtlslab_s=ours,
            baseline_s=theirs,
        )
    )

    # Where the row's cost comes from, measured in the same run (no targets: these rows explain the one
    # above). Readings that share the baseline's resource-server configuration share its decision; each
    # other configuration is a decision and a trace of its own.
    baseline_reading = BUILTINS["baseline"]
    _cold(sim, interpretations, answers=False)
    _, shared_decision = sim.decide(scenario, baseline_reading)
    sharing = [i for i in interpretations if sim.decide(scenario, i)[1] is shared_decision]
    configurations = len({id(sim.decide(scenario, i)[1]) for i in interpretations})
    for name, chosen, what in (
        (
            "one_scenario_one_reading",
            [baseline_reading],
            "Simulator.row: 'success' under the baseline alone (one decision with its trace, one answer)",
        ),
        (
            "one_scenario_one_configuration",
            sharing,
            f"Simulator.row: 'success' under the {len(sharing)} built-ins that share the baseline's "
            f"resource-server configuration (one decision, {len(sharing)} answers); the other "
            f"{len(interpretations) - len(sharing)} built-ins bring {configurations - 1} more configurations",
        ),
    ):

        def part_of_row(chosen: list[Interpretation] = chosen) -> object:
            _cold(sim, interpretations, answers=False)
            return sim.row(scenario, chosen)

        ours, theirs = side_by_side(part_of_row, bare, settings)
        results.append(
            Result(
                section="engine",
                name=name,
                what=what,
                baseline="one bare check",
                mtlslab_s=ours,
                baseline_s=theirs,
            )
        )

    n = len(CATALOGUE)

    def whole_matrix() -> object:
        fresh = Simulator(lab, asrv=asrv)
        _cold(fresh, interpretations, answers=False, realisation=True)
        return fresh.matrix()

    def n_bare() -> object:
        return [bare() for _ in range(n)]

    matrix_settings = Settings(samples=max(3, settings.samples // 4), batch=1)
    ours, theirs = side_by_side(whole_matrix, n_bare, matrix_settings)
    results.append(
        Result(
            section="engine",
            name="whole_matrix",
            what=f"the catalogue ({n} scenarios) × {len(interpretations)} built-ins, from a fresh simulator "
            "(realisation, TLS model, decisions, answers; minted tokens reused)",
            baseline=f"{n} × the bare check",
            mtlslab_s=ours,
            baseline_s=theirs,
            target=1.5,
        )
    )

    # The same matrix from a simulator that has realised every scenario already: decisions and answers only.
    realised = Simulator(lab, asrv=asrv)
    realised.matrix()

    def decided_matrix() -> object:
        _cold(realised, interpretations, answers=False)
        return realised.matrix()

    ours, theirs = side_by_side(decided_matrix, n_bare, matrix_settings)
    results.append(
        Result(
            section="engine",
            name="whole_matrix_realised",
            what="the same matrix with every scenario already realised (TLS model, requests, DPoP proofs): "
            "decisions, signature checks and cells only",
            baseline=f"{n} × the bare check",
            mtlslab_s=ours,
            baseline_s=theirs,
        )
    )
    return results


# --------------------------------------------------------------------------------------------------
# Section: live TLS on loopback.


def live(settings: Settings) -> list[Result]:
    """One live scenario against a bare Python ssl mutual-TLS request, and the whole live catalogue."""
    import socket
    import ssl
    import threading

    from mtlslab.compare import Simulator
    from mtlslab.interpretations import BUILTINS
    from mtlslab.live import LiveStack, send, verify
    from mtlslab.live.client import client_context
    from mtlslab.scenarios import Deployment, TlsVersion, client_request, get_scenario

    sim = Simulator(seed="benchmark")
    lab = sim.lab

    # Baseline: Python's ssl on both ends, mutual TLS 1.3, one HTTP request and a fixed answer.
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = server_ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    lab.server.configure_cert(server_ctx)
    lab.ca.configure_trust(server_ctx)
    server_ctx.verify_mode = ssl.CERT_OPTIONAL
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            try:
                with server_ctx.wrap_socket(sock, server_side=True) as tls:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = tls.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    tls.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    )
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = client_context(ca=lab.ca, identity=lab.client, version=TlsVersion.TLS1_3)

    def bare_mtls() -> object:
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            client_ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"GET /resource HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
            return data

    scenario = get_scenario("success")
    with LiveStack(
        simulator=sim, deployment=Deployment(), interpretation=BUILTINS["baseline"]
    ) as stack:
        token = sim.asrv.mint(scenario.token)
        request = client_request(
            scenario.presentation, token, lab=lab, resource_url=f"{stack.url}/resource"
        )

        def one_live() -> object:
            observed = send(request, context=client_ctx)  # the same client context as the baseline
            assert observed.status == 200
            return observed

        ours, theirs = side_by_side(one_live, bare_mtls, settings)
    stop.set()
    listener.close()
    thread.join(5)
    results = [
        Result(
            section="live",
            name="one_live_scenario",
            what="'success' over real mutual TLS 1.3: pyOpenSSL server, engine, interpretation, h11 both ends",
            baseline="Python ssl mutual TLS 1.3 handshake + one request, fixed 200 answer",
            mtlslab_s=ours,
            baseline_s=theirs,
            target=1.5,
        )
    ]
    started = time.perf_counter()
    report = verify(simulator=sim)
    catalogue_s = time.perf_counter() - started
    assert report.ok, report.text()
    results.append(
        Result(
            section="live",
            name="whole_live_catalogue",
            what=f"verify(): {len(report.runs)} live runs (catalogue × baseline, thread-400, thread-401), "
            "servers and proxies started per deployment",
            baseline=f"{len(report.runs)} × the bare mutual-TLS request",
            mtlslab_s=catalogue_s,
            baseline_s=theirs * len(report.runs),
        )
    )
    return results


# --------------------------------------------------------------------------------------------------
# Section: the explorer widget.


def widgets(settings: Settings) -> list[Result]:
    """The explorer's Python re-render after one control change (target ≤ 50 ms), against one evaluation."""
    from mtlslab.compare import Simulator
    from mtlslab.interpretations import BUILTINS
    from mtlslab.scenarios import get_scenario
    from mtlslab.widgets.bench import CHANGES, bench_explorer_rerender

    rounds = 2 if settings.samples < 10 else 6
    rerender = bench_explorer_rerender(rounds=rounds)
    # Baseline: what the re-render must do at least — one scenario under the default readings, cold.
    sim = Simulator(seed="benchmark")
    scenario = get_scenario("no-cert-optional")
    readings = [
        BUILTINS[n] for n in ("baseline", "thread-400", "thread-401", "tls-required", "auth0")
    ]
    samples = []
    for _ in range(max(5, settings.samples)):
        fresh = Simulator(sim.lab, asrv=sim.asrv)
        start = time.perf_counter()
        for interp in readings:
            fresh.cell(scenario, interp)
        samples.append(time.perf_counter() - start)
    return [
        Result(
            section="widgets",
            name="explorer_rerender",
            what=f"ScenarioExplorer: set one control's .value → every view re-rendered (median of "
            f"{rounds} rounds of {len(CHANGES)} changes; target ≤ 50 ms absolute)",
            baseline="the same scenario under the explorer's default readings, from a fresh simulator",
            mtlslab_s=rerender,
            baseline_s=statistics.median(samples),
        )
    ]


SECTIONS: list[Callable[[Settings], list[Result]]] = [foundation, engine, live, widgets]


# --------------------------------------------------------------------------------------------------


def _table(results: list[Result], settings: Settings) -> str:
    lines = [
        f"mtlslab benchmarks — median of {settings.samples} samples × {settings.batch} calls, "
        f"interleaved with the baseline (Python {platform.python_version()})",
        "",
    ]
    for r in results:
        verdict = ""
        if r.target is not None:
            verdict = "  (target ≤ {:.1f}×: {})".format(
                r.target, "met" if r.ratio <= r.target else "MISSED"
            )
        lines += [
            f"[{r.section}] {r.name}: {r.ratio:.2f}×{verdict}",
            f"    mtlslab   {r.mtlslab_s * 1e3:8.3f} ms  {r.what}",
            f"    baseline  {r.baseline_s * 1e3:8.3f} ms  {r.baseline}",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run every section and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke test)")
    args = parser.parse_args(argv)
    settings = Settings(samples=5, batch=2) if args.quick else Settings(samples=31, batch=10)
    results = [result for section in SECTIONS for result in section(settings)]
    if args.json:
        payload = {
            "settings": asdict(settings),
            "python": platform.python_version(),
            "results": [r.as_dict() for r in results],
        }
        print(json.dumps(payload, indent=2))
    else:
        print(_table(results, settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
