"""mtlslab benchmarks: the budgets a person feels, and costs beside a baseline measured in the same run.

    python benchmarks/run.py            # a table
    python benchmarks/run.py --quick    # fewer repetitions (a smoke test)
    python benchmarks/run.py --json     # machine-readable

Every row is measured interleaved with its baseline (ours, baseline, ours, baseline, ...). A row with a
**budget** says whether it is met, twice: in seconds, for the 2-core machine the budgets were set on, and as
a ratio to its baseline, which carries over to other machines. A verdict is never decided by noise: a budget
is ``met`` when three samples in four are within it, ``MISSED`` when three in four are beyond it, and
``borderline`` when the spread of the samples straddles it.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """What a person should never wait longer for: seconds on the reference machine (2 cores), and the same
    as a ratio to the row's baseline, as measured there when the budget was set."""

    seconds: float
    ratio: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """One measured cost beside its baseline: the samples of each, in seconds per call."""

    section: str
    name: str
    what: str
    baseline: str
    ours: tuple[float, ...]
    theirs: tuple[float, ...]
    budget: Budget | None = None

    @property
    def mtlslab_s(self) -> float:
        """The median seconds per call."""
        return statistics.median(self.ours)

    @property
    def baseline_s(self) -> float:
        """The baseline's median seconds per call."""
        return statistics.median(self.theirs)

    @property
    def ratio(self) -> float:
        """Median over the samples of ours / baseline, sample by sample (< 1.0: mtlslab is faster)."""
        return statistics.median(a / b for a, b in zip(self.ours, self.theirs, strict=True))

    def verdicts(self) -> dict[str, str]:
        """``{"seconds": …, "ratio": …}``: met, MISSED or borderline, or {} without a budget."""
        if self.budget is None:
            return {}
        ratios = [a / b for a, b in zip(self.ours, self.theirs, strict=True)]
        return {
            "seconds": _verdict(self.ours, self.budget.seconds),
            "ratio": _verdict(ratios, self.budget.ratio),
        }

    def as_dict(self) -> dict[str, object]:
        """The result with its medians, ratio and verdicts, for ``--json``."""
        out = asdict(self)
        out.update(
            mtlslab_s=self.mtlslab_s,
            baseline_s=self.baseline_s,
            ratio=self.ratio,
            verdicts=self.verdicts(),
        )
        return out


def _verdict(samples: list[float] | tuple[float, ...], limit: float) -> str:
    """met when the upper quartile is within ``limit``, MISSED when the lower quartile is beyond it."""
    if len(samples) < 2:
        return "met" if samples[0] <= limit else "MISSED"
    low, _, high = statistics.quantiles(samples, n=4)
    if high <= limit:
        return "met"
    if low > limit:
        return "MISSED"
    return "borderline"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """How many samples to take."""

    samples: int


def side_by_side(
    subject: Callable[[], object], baseline: Callable[[], object], settings: Settings
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Seconds per call of ``subject`` and ``baseline``, sampled alternately after one warm-up call each."""
    subject()
    baseline()
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(settings.samples):
        for fn, into in ((subject, ours), (baseline, theirs)):
            start = time.perf_counter()
            fn()
            into.append(time.perf_counter() - start)
    return tuple(ours), tuple(theirs)


def _bare_check() -> Callable[[], object]:
    """pyjwt decode of a bound token + an x5t#S256 comparison: what a minimal resource server does."""
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


# --------------------------------------------------------------------------------------------------
# The budgets (issue 16): the whole matrix, an explorer refresh, the matrix command.


def budgets(settings: Settings) -> list[Result]:
    """The whole matrix from scratch, one explorer refresh, and ``python -m mtlslab matrix``."""
    from mtlslab import interpretations, jose, tls
    from mtlslab.compare import Simulator
    from mtlslab.interpretations import BUILTINS
    from mtlslab.pki import Lab
    from mtlslab.scenarios import CATALOGUE

    bare = _bare_check()
    lab = Lab(seed="benchmark")
    _ = lab.identities()  # the lab is made once, as a notebook makes it

    def whole_matrix() -> object:
        jose.verify_jws.cache_clear()  # nothing remembered: every token verified, every scenario realised,
        jose._read_proof.cache_clear()  # every DPoP proof read and verified,
        tls._chain_verdict.cache_clear()  # every certificate chain validated,
        interpretations._header.cache_clear()  # every challenge formatted
        return Simulator(lab).matrix()

    def bare_catalogue() -> object:
        return [bare() for _ in CATALOGUE]

    few = Settings(samples=max(4, settings.samples // 3))
    ours, theirs = side_by_side(whole_matrix, bare_catalogue, few)
    results = [
        Result(
            section="budgets",
            name="whole_matrix",
            what=f"Simulator(lab).matrix(): the catalogue ({len(CATALOGUE)} scenarios) × {len(BUILTINS)} "
            "built-ins from scratch (tokens minted, scenarios realised, signatures verified, cells answered)",
            baseline=f"{len(CATALOGUE)} × the bare check (pyjwt decode + x5t#S256 compare)",
            ours=ours,
            theirs=theirs,
            budget=Budget(seconds=0.150, ratio=10.0),
        )
    ]

    flip = _explorer()

    def bare_row() -> object:
        return [bare() for _ in range(5)]  # the explorer's five default readings, each one check

    ours, theirs = side_by_side(flip, bare_row, settings)
    results.append(
        Result(
            section="budgets",
            name="explorer_refresh",
            what="ScenarioExplorer: one control's .value set → the new scenario realised and every view "
            "re-rendered (controls flipped in turn; the simulator's exchanges forgotten before each flip)",
            baseline="5 × the bare check (the explorer's default readings)",
            ours=ours,
            theirs=theirs,
            budget=Budget(seconds=0.020, ratio=24.0),
        )
    )

    command = [sys.executable, "-m", "mtlslab", "matrix"]
    reference = [sys.executable, "-c", "import cryptography.x509, jwt"]

    def run(argv: list[str]) -> Callable[[], object]:
        return lambda: subprocess.run(argv, check=True, capture_output=True, cwd=ROOT, timeout=60)

    ours, theirs = side_by_side(run(command), run(reference), few)
    results.append(
        Result(
            section="budgets",
            name="cli_matrix",
            what="python -m mtlslab matrix (wall clock: start, lab, matrix, 72-column text)",
            baseline="python -c 'import cryptography.x509, jwt' (start and the dependencies' import)",
            ours=ours,
            theirs=theirs,
            budget=Budget(seconds=0.5, ratio=4.2),
        )
    )
    return results


#: The controls the explorer benchmark flips, each between two values.
_CHANGES: tuple[tuple[str, str, str], ...] = (
    ("certificate", "client", "none"),
    ("tls_version", "1.2", "1.3"),
    ("certificate", "other-client", "none"),
    ("client_auth", "required", "optional"),
    ("topology", "proxy", "direct"),
    ("placement", "form", "header"),
    ("scheme", "DPoP", "Bearer"),
    ("token", "unbound", "bound"),
)


def _explorer() -> Callable[[], object]:
    """A call that flips the next control of a fresh explorer and waits for the re-render."""
    from mtlslab.compare import Simulator
    from mtlslab.widgets.explorer import ScenarioExplorer

    explorer = ScenarioExplorer(Simulator(seed="benchmark"))
    turn = [0]

    def flip() -> object:
        name, first, second = _CHANGES[turn[0] % len(_CHANGES)]
        turn[0] += 1
        control = explorer.controls[name]
        current = getattr(control.value, "value", control.value)
        wanted = second if current == first else first
        before = explorer.renders
        explorer.simulator._exchanges.clear()  # a state first met, as a person at the controls meets it
        control.value = next(v for v in _options(control) if getattr(v, "value", v) == wanted)
        if explorer.renders != before + 1 or explorer.error.value:
            raise RuntimeError(f"changing {name} did not re-render cleanly")
        return explorer

    return flip


def _options(control: object) -> list[object]:
    options = getattr(control, "options", ())
    return [o[1] if isinstance(o, tuple) else o for o in options]


# --------------------------------------------------------------------------------------------------
# Costs beside a baseline (no budgets: they say where time goes).


def costs(settings: Settings) -> list[Result]:
    """The lab against trustme, minting a token, and one live scenario against bare mutual TLS."""
    import jwt
    import trustme
    from cryptography.hazmat.primitives.asymmetric import ec

    from mtlslab.pki import LAB_NOW, Lab
    from mtlslab.tokens import LAB_AUDIENCE, LAB_ISSUER, AuthorizationServer

    probe = Lab(seed="benchmark")
    leaves = len(probe.identities()) + 1  # + the server

    def seeded_lab() -> object:
        lab = Lab(seed="benchmark")
        return [lab.ca, lab.rogue_ca, lab.server, *lab.identities().values()]

    def trustme_lab() -> object:
        cas = [trustme.CA() for _ in range(2)]
        return [cas[0].issue_cert(f"leaf{i}.example") for i in range(leaves)]

    ours, theirs = side_by_side(seeded_lab, trustme_lab, settings)
    results = [
        Result(
            section="costs",
            name="seeded_lab",
            what=f"Lab(seed=...) with ca, rogue_ca, server and {leaves - 1} named client identities",
            baseline=f"2 × trustme.CA() + {leaves} × issue_cert",
            ours=ours,
            theirs=theirs,
        )
    ]
    now = int(LAB_NOW.timestamp())
    claims = {"iss": LAB_ISSUER, "aud": LAB_AUDIENCE, "sub": "alice", "iat": now, "exp": now + 3600}

    def mint() -> object:
        return AuthorizationServer(probe).mint("bound")

    def bare_es256() -> object:
        return jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")

    ours, theirs = side_by_side(mint, bare_es256, settings)
    results.append(
        Result(
            section="costs",
            name="mint_token",
            what='AuthorizationServer(lab).mint("bound"): derived ES256 key, deterministic signature',
            baseline='ec.generate_private_key(SECP256R1) + jwt.encode(claims, key, "ES256")',
            ours=ours,
            theirs=theirs,
        )
    )
    results.append(_one_live(settings))
    return results


def _one_live(settings: Settings) -> Result:
    """'success' over real mutual TLS through mtlslab's server, against Python ssl on both ends."""
    import socket
    import ssl
    import threading

    from mtlslab.compare import Simulator
    from mtlslab.interpretations import BUILTINS
    from mtlslab.live import LiveStack, send
    from mtlslab.live.client import client_context
    from mtlslab.scenarios import Deployment, TlsVersion, client_request, get_scenario

    sim = Simulator(seed="benchmark")
    lab = sim.lab
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = server_ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    lab.server.configure_cert(server_ctx)
    lab.ca.configure_trust(server_ctx)
    server_ctx.verify_mode = ssl.CERT_OPTIONAL
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            try:
                with server_ctx.wrap_socket(sock, server_side=True) as tls:
                    data = b""
                    while b"\r\n\r\n" not in data and (chunk := tls.recv(65536)):
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
            while tls.recv(65536):
                pass
        return None

    scenario = get_scenario("success")
    try:
        with LiveStack(
            simulator=sim, deployment=Deployment(), interpretation=BUILTINS["baseline"]
        ) as stack:
            request = client_request(
                scenario.presentation,
                sim.asrv.mint(scenario.token),
                lab=lab,
                resource_url=f"{stack.url}/resource",
            )

            def one_live() -> object:
                observed = send(request, context=client_ctx)
                assert observed.status == 200
                return observed

            ours, theirs = side_by_side(one_live, bare_mtls, settings)
    finally:
        listener.close()
        thread.join(5)
    return Result(
        section="costs",
        name="one_live_scenario",
        what="'success' over real mutual TLS 1.3: mtlslab's server (engine, interpretation, h11) and client",
        baseline="Python ssl mutual TLS 1.3 on both ends, one request, a fixed 200 answer",
        ours=ours,
        theirs=theirs,
    )


SECTIONS: list[Callable[[Settings], list[Result]]] = [budgets, costs]


def _table(results: list[Result], settings: Settings) -> str:
    lines = [
        f"mtlslab benchmarks: medians of {settings.samples} samples, interleaved with the baseline "
        f"(Python {platform.python_version()})",
        "",
    ]
    for r in results:
        lines.append(
            f"[{r.section}] {r.name}: {r.mtlslab_s * 1e3:.1f} ms, {r.ratio:.2f}× the baseline"
        )
        if r.budget is not None:
            verdicts = r.verdicts()
            lines.append(
                f"    budget {r.budget.seconds * 1e3:.0f} ms: {verdicts['seconds']}; "
                f"{r.budget.ratio:.1f}× the baseline: {verdicts['ratio']}"
            )
        lines += [
            f"    mtlslab   {r.what}",
            f"    baseline  {r.baseline_s * 1e3:.2f} ms  {r.baseline}",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run every section and print the results."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke test)")
    args = parser.parse_args(argv)
    settings = Settings(samples=5 if args.quick else 31)
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
