"""``python -m mtlslab`` (also the ``mtlslab`` console script): a thin adapter over the library.

Each subcommand parses its arguments, makes one or two library calls and prints. Unusable input — a
bad file, an unknown name, a malformed header, a file over :data:`INPUT_LIMIT` — is one line on stderr
and exit status 2; never a traceback from inside a dependency. When standard output is closed under a
command (``mtlslab scenarios | head``) it stops quietly with :data:`EXIT_OUTPUT_CLOSED`.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, cast

from mtlslab.errors import InputError, MtlslabError
from mtlslab.pki import Lab
from mtlslab.tokens import ALGORITHMS, LAB_AUDIENCE, LAB_ISSUER, AuthorizationServer

if TYPE_CHECKING:
    from mtlslab.compare import Cell
    from mtlslab.interpretations import Interpretation
    from mtlslab.live.terminal import LabFolderConflict

__all__ = ["EXIT_OUTPUT_CLOSED", "INPUT_LIMIT", "build_parser", "main"]

#: The most the command line reads from any one file it is given (1 MiB): a certificate, a key, a
#: token, an interpretation. ``--cert /dev/zero`` is refused after that much, not read without end.
INPUT_LIMIT = 1 << 20

#: The exit status when standard output is closed under a command (``mtlslab scenarios | head``):
#: what a shell shows for a program that SIGPIPE stopped (128 + 13), with nothing on stderr.
EXIT_OUTPUT_CLOSED = 141

#: Options whose value is the next argument, whatever it starts with (as getopt takes it): a token
#: or a header value may begin with ``-``.
_VERBATIM = ("--token", "--unbound-token", "--authorization")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _read_input(path: str, *, field: str) -> bytes:
    """The bytes of a file the user named, at most :data:`INPUT_LIMIT` (a pipe or FIFO too)."""
    with open(path, "rb") as fh:
        data = fh.read(INPUT_LIMIT + 1)
    if len(data) > INPUT_LIMIT:
        raise InputError(field, f"{path} is larger than 1 MiB, the limit for a file mtlslab reads")
    return data


def _read_option(args: argparse.Namespace, flag: str) -> bytes | None:
    """The file an option names (``--other-cert``), read; None when the option is not given."""
    path = getattr(args, flag.lstrip("-").replace("-", "_"))
    return None if path is None else _read_input(path, field=flag)


def _read_token(path: str, *, field: str) -> str:
    """A token from a file (surrounding whitespace, such as the final newline, dropped)."""
    return _read_input(path, field=field).decode("utf-8", errors="replace").strip()


def _write(out: TextIO, text: str) -> int:
    """``text`` on ``out``, ending in one newline; the exit status 0."""
    out.write(text if text.endswith("\n") else text + "\n")
    return 0


def _write_json(out: TextIO, value: object) -> int:
    return _write(out, json.dumps(value, indent=2))


def _port(text: str) -> int:
    """argparse type: a TCP port number, 0-65535 (0: any free port)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0-65535)")
    return port


def _tag(text: str) -> str:
    """argparse type: a tag some catalogue scenario carries."""
    from mtlslab.scenarios import CATALOGUE

    known = sorted({tag for scenario in CATALOGUE for tag in scenario.tags})
    if text in known:
        return text
    near = difflib.get_close_matches(text, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(near)}? " if near else ""
    raise argparse.ArgumentTypeError(f"unknown tag {text!r}; {hint}known: {', '.join(known)}")


_INTERPRETATION_HELP = (
    "a built-in's name, or FILE.json: an interpretation saved by the editor or derive() "
    "(a value ending in .json or holding a path separator is a file; at most 1 MiB)"
)

#: The options several subcommands share, by name: their flags, help and other ``add_argument``
#: keywords.
_SHARED: dict[str, tuple[tuple[str, ...], str, dict[str, Any]]] = {
    "seed": (
        ("--seed",),
        "lab seed: the same seed gives the same material (default: %(default)s)",
        {"default": "mtlslab"},
    ),
    "alg": (
        ("--alg",),
        "signature algorithm of the lab authorization server (default: %(default)s)",
        {"default": "ES256", "choices": ALGORITHMS},
    ),
    "tag": (
        ("--tag",),
        "only scenarios with this tag (repeatable; `mtlslab scenarios` shows them)",
        {"action": "append", "type": _tag},
    ),
    "force": (
        ("--force",),
        "replace files of another lab (or unknown ones) in the folder; each is replaced by a new "
        "file, never written through a link",
        {"action": "store_true"},
    ),
    "interpretations": (
        ("-i", "--interpretation"),
        "an interpretation to include (repeatable; default: all built-ins): "
        + _INTERPRETATION_HELP,
        {"action": "append", "metavar": "NAME|FILE"},
    ),
}


def _command(
    sub: argparse._SubParsersAction[_Parser],
    handler: Callable[[argparse.Namespace, TextIO], int],
    help: str,
    description: str,
    *shared: str,
) -> _Parser:
    """The subcommand named after ``handler`` (``_cmd_NAME``), with the shared options named."""
    parser = sub.add_parser(
        handler.__name__.removeprefix("_cmd_"), help=help, description=description
    )
    parser.set_defaults(handler=handler)
    _shared(parser, *shared)
    return parser


def _shared(parser: argparse.ArgumentParser, *names: str) -> None:
    """Add the shared options ``names`` (of :data:`_SHARED`) to ``parser``, in that order."""
    for name in names:
        flags, help, keywords = _SHARED[name]
        parser.add_argument(*flags, help=help, **keywords)


def _formats(parser: argparse.ArgumentParser, *choices: str) -> None:
    """``--format``, the first choice the default."""
    parser.add_argument("--format", choices=choices, default=choices[0])


def _tls_options(parser: argparse.ArgumentParser) -> None:
    """--client-auth and --tls, their choices taken from the TLS model's enums."""
    from mtlslab.tls import ClientAuth, TlsVersion

    parser.add_argument(
        "--client-auth",
        choices=[mode.value for mode in ClientAuth],
        default=ClientAuth.OPTIONAL.value,
        help="how the TLS server asks for a client certificate (default: %(default)s)",
    )
    parser.add_argument(
        "--tls",
        choices=[version.value for version in TlsVersion],
        default=TlsVersion.TLS1_3.value,
        help="the TLS version the server pins (default: %(default)s)",
    )


def _interpretation(value: str) -> Interpretation:
    """``-i VALUE``: a file when VALUE ends in ``.json`` or holds a path separator (an interpretation saved
    by the editor or ``derive``), otherwise a built-in's name."""
    from mtlslab.errors import InterpretationError
    from mtlslab.interpretations import Interpretation, get_interpretation

    separators = [os.sep, *([os.altsep] if os.altsep else [])]
    if not value.endswith(".json") and not any(sep in value for sep in separators):
        return get_interpretation(value)
    raw = _read_input(value, field="-i")
    try:
        return Interpretation.from_json(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InterpretationError(value, "not UTF-8 text") from None
    except InterpretationError as exc:
        raise InterpretationError(value, str(exc)) from None


def _interpretations(values: Iterable[str] | None) -> list[Interpretation]:
    """Every ``-i`` in order (default: the built-ins); two of one name are refused."""
    from mtlslab.interpretations import BUILTINS

    chosen = [_interpretation(v) for v in values] if values else list(BUILTINS.values())
    names = [i.name for i in chosen]
    for name in names:
        if names.count(name) > 1:
            raise InputError("-i", f"two interpretations are named {name!r}")
    return chosen


def _refusal(exc: LabFolderConflict, flag: str, *, seed: str) -> InputError:
    """The one line for a folder that holds other material: what to give instead."""
    if exc.seed is not None and exc.seed != seed:
        hint = f"give --seed {shlex.quote(exc.seed)} to use that lab, or another {flag}"
    else:
        hint = f"give another {flag}"
    return InputError(flag, f"{exc.strerror}: {hint} (--force replaces those files)")


def _blocks(cells: Sequence[Cell], note: Callable[[Cell], str] | None = None) -> list[str]:
    """Each distinct trace once, with its finding, then each interpretation's answer as raw HTTP; with
    ``note`` (explain), a note on each trace and each answer's own note."""
    shown: set[tuple[str, ...]] = set()
    blocks = []
    for cell in cells:
        trace = tuple(str(step) for step in cell.trace)
        if trace not in shown:
            shown.add(trace)
            lines, why = "\n".join(trace), note(cell) if note else ""
            blocks.append(f"--- trace{why} ---\n{lines}\n→ finding: {cell.finding.value}\n")
        http = cell.outcome.http_text().replace("\r\n", "\n").rstrip("\n")
        blocks.append(f"=== {cell.interpretation}: {cell.outcome.summary()} ===\n{http}\n")
        if note and cell.outcome.note:
            blocks[-1] += f"(note: {cell.outcome.note})\n"
    return blocks


def _cmd_certs(args: argparse.Namespace, out: TextIO) -> int:
    from mtlslab.live.terminal import LabFolderConflict, write_lab_folder

    lab = Lab(seed=args.seed)
    try:
        folder = write_lab_folder(lab, args.out, every_identity=False, force=args.force)
    except LabFolderConflict as exc:
        raise _refusal(exc, "--out", seed=args.seed) from None
    for name in folder.written:
        out.write(f"wrote {folder.path / name}\n")
    for name in folder.kept:
        out.write(f"kept  {folder.path / name} (already there, the same bytes)\n")
    thumbprints = {"ca.pem": lab.ca.x5t_s256, "client.pem": lab.client.x5t_s256}
    thumbprints["server.pem"] = lab.server.x5t_s256
    lines = "".join(f"  {name:<11} {x5t}\n" for name, x5t in thumbprints.items())
    return _write(out, f"\nx5t#S256 (RFC 8705 §3.1)\n{lines}")


def _cmd_token(args: argparse.Namespace, out: TextIO) -> int:
    asrv = AuthorizationServer(Lab(seed=args.seed), alg=args.alg)
    return _write(out, asrv.mint("unbound" if args.unbound else args.variant).value)


def _cmd_jwks(args: argparse.Namespace, out: TextIO) -> int:
    return _write_json(out, AuthorizationServer(Lab(seed=args.seed), alg=args.alg).jwks())


def _foundation(sub: argparse._SubParsersAction[_Parser]) -> None:
    """The foundation subcommands: certs, token, jwks."""
    from mtlslab.tokens import TOKEN_VARIANTS

    p = _command(
        sub,
        _cmd_certs,
        "write the lab CA, client and server certificates and keys",
        "Write ca.pem, client.pem, client.key, server.pem, server.key (keys 0600) and lab.json "
        "(the seed and the thumbprints), and print each certificate's x5t#S256. Files already "
        "there with the same bytes are kept; other material is refused unless --force.",
        "seed",
    )
    p.add_argument(
        "--out", type=Path, required=True, help="directory to write into (created if missing)"
    )
    _shared(p, "force")
    p = _command(
        sub,
        _cmd_token,
        "print a lab access token",
        "Print a JWT access token (RFC 9068) for the lab client, bound to client.pem by "
        "cnf.x5t#S256 (RFC 8705 §3.1) unless --unbound.",
        "seed",
    )
    p.add_argument("--unbound", action="store_true", help="a plain bearer token without cnf")
    p.add_argument(
        "--variant",
        default="bound",
        choices=sorted(TOKEN_VARIANTS),
        metavar="NAME",
        help="any lab token variant (default: %(default)s); see the README for the list",
    )
    _shared(p, "alg")
    _command(
        sub,
        _cmd_jwks,
        "print the authorization server's public JWKS",
        "Print the lab authorization server's public JWK Set.",
        "seed",
        "alg",
    )


def _cmd_scenarios(args: argparse.Namespace, out: TextIO) -> int:
    from mtlslab.scenarios import scenarios_tagged

    chosen = scenarios_tagged(*(args.tag or ()))
    if args.format == "json":
        return _write_json(out, [s.to_json() for s in chosen])
    width = max((len(s.id) for s in chosen), default=0)
    for s in chosen:
        out.write(f"{s.id:<{width}}  [{', '.join(s.tags)}]  {s.title}\n")
    return 0


def _cmd_interpretations(args: argparse.Namespace, out: TextIO) -> int:
    chosen = _interpretations(None)
    if args.format == "json":
        return _write_json(out, [i.to_json() for i in chosen])
    for i in chosen:
        out.write(f"{i.name}  ({i.kind})  {i.title}\n    {i.stance}\n    source: {i.source}\n")
        for d in i.departures:
            out.write(f"    departs: {d.what} — {d.reason}\n")
    return 0


def _cmd_explain(args: argparse.Namespace, out: TextIO) -> int:
    from mtlslab.compare import Simulator
    from mtlslab.scenarios import get_scenario

    scenario = get_scenario(args.scenario)
    chosen = _interpretations(args.interpretation)
    sim = Simulator(seed=args.seed)
    out.write(f"{scenario.id}: {scenario.title}\n{scenario.describe()}\n")
    if scenario.description:
        out.write(f"{scenario.description}\n")
    request = sim.exchange(scenario).client_request.http_text().rstrip("\r\n").replace("\r\n", "\n")
    out.write(f"\n--- request (as the client sends it) ---\n{request}\n")

    def note(cell: Cell) -> str:
        if cell.deployment == scenario.deployment or cell.deployment is None:
            return ""
        return f" (as {cell.interpretation} deploys it: {cell.deployment.describe()})"

    cells = [sim.cell(scenario, interpretation) for interpretation in chosen]
    out.write("".join("\n" + block for block in _blocks(cells, note)))
    return 0


def _cmd_matrix(args: argparse.Namespace, out: TextIO) -> int:
    from mtlslab.compare import Simulator
    from mtlslab.scenarios import get_scenario, scenarios_tagged

    if args.scenario:
        scenarios = [get_scenario(i) for i in args.scenario]
    else:
        scenarios = list(scenarios_tagged(*(args.tag or ())))
    matrix = Simulator(seed=args.seed).matrix(scenarios, _interpretations(args.interpretation))
    if args.only_disagreements:
        matrix = matrix.disagreements(strict=args.strict)
    return _write(out, getattr(matrix, f"to_{args.format}")())


def _cmd_evaluate(args: argparse.Namespace, out: TextIO) -> int:
    from mtlslab.compare import Cell, Simulator
    from mtlslab.errors import ScenarioError
    from mtlslab.pki import certificate_der, load_certificate
    from mtlslab.rs import evaluate
    from mtlslab.scenarios import Deployment, Request, Topology, encode_client_cert, received
    from mtlslab.tls import ClientAuth, TlsVersion, handshake

    sim = Simulator(seed=args.seed)
    deployment = Deployment(
        client_auth=ClientAuth(args.client_auth),
        tls_version=TlsVersion(args.tls),
        topology=Topology.PROXY if args.via_proxy else Topology.DIRECT,
    )
    certificate = None
    if args.cert and args.cert != "none":
        certificate = load_certificate(_read_input(args.cert, field="--cert"), field="--cert")
    headers: list[tuple[str, str]] = []
    if args.authorization is not None:
        if any(c in args.authorization for c in "\r\n\0"):
            raise ScenarioError("--authorization", "a header value cannot contain CR, LF or NUL")
        headers.append(("Authorization", args.authorization))
    source, flag = args.client_cert_header, "--client-cert-header"
    if source is not None:
        forged = certificate
        if source != "-":
            forged = load_certificate(_read_input(source, field=flag), field=flag)
        elif forged is None:
            raise ScenarioError(flag, "no file given and no --cert to copy")
        headers.append(("Client-Cert", encode_client_cert(certificate_der(forged))))
    request = Request(method=args.method, url=args.url, headers=tuple(headers))
    cells = []
    for interp in _interpretations(args.interpretation):
        effective = interp.adapt(deployment)
        tls = handshake(
            client_auth=effective.client_auth,
            version=effective.tls_version,
            presented=certificate,
            roots=[sim.lab.ca.certificate],
            at=sim.now,
        )
        arrived = received(request, tls, effective)
        decision = (
            None if arrived is None else evaluate(arrived, sim.config(effective), now=sim.now)
        )
        outcome = interp.respond(decision, tls_alert=tls.alert)
        cell = Cell(
            scenario="(request)",
            interpretation=interp.name,
            finding=outcome.finding,
            outcome=outcome,
            trace=tls.steps + (decision.trace if decision else ()),
        )
        cells.append(cell)
    if args.format == "json":
        return _write_json(out, [c.to_json() for c in cells])
    out.write("".join(block + "\n" for block in _blocks(cells)))
    return 0


def _engine(sub: argparse._SubParsersAction[_Parser]) -> None:
    """The engine subcommands: scenarios, interpretations, explain, matrix, evaluate."""
    p = _command(
        sub,
        _cmd_scenarios,
        "list the scenario catalogue",
        "List the catalogue's scenarios with their ids, tags and titles.",
        "tag",
    )
    _formats(p, "text", "json")
    p = _command(
        sub,
        _cmd_interpretations,
        "list the built-in interpretations",
        "List the interpretations with their stance, source and departures from the RFCs.",
    )
    _formats(p, "text", "json")
    p = _command(
        sub,
        _cmd_explain,
        "trace one scenario and show each interpretation's answer",
        "Show the resource server's trace for SCENARIO (each step with its RFC clause), then each "
        "interpretation's answer as raw HTTP.",
    )
    p.add_argument("scenario", metavar="SCENARIO", help="a scenario id (see `mtlslab scenarios`)")
    _shared(p, "interpretations", "seed")
    p = _command(
        sub,
        _cmd_matrix,
        "scenarios × interpretations",
        "The comparison matrix of scenarios × interpretations.",
    )
    p.add_argument(
        "--only-disagreements", action="store_true", help="only scenarios where the readings differ"
    )
    p.add_argument(
        "-s",
        "--scenario",
        action="append",
        metavar="ID",
        help="a scenario to include, in this order (repeatable; default: the catalogue, or --tag)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="with --only-disagreements: compare every byte on the wire, not only status and error",
    )
    _shared(p, "interpretations", "tag")
    p.add_argument(
        "--format",
        choices=("markdown", "text", "csv", "json"),
        default="text",
        help="markdown, text (≤ 72 columns, for an Internet-Draft), csv or json (default: "
        "%(default)s)",
    )
    _shared(p, "seed")
    p = _command(
        sub,
        _cmd_evaluate,
        "evaluate one arbitrary request",
        "Evaluate one request against a lab resource server (trusting the lab authorization server "
        "for --seed) under each interpretation.",
        "seed",
    )
    _tls_options(p)
    p.add_argument(
        "--cert",
        metavar="FILE",
        help="PEM or DER certificate the client presents, at most 1 MiB (or 'none')",
    )
    p.add_argument(
        "--authorization",
        metavar="'RAW HEADER VALUE'",
        help="the Authorization header value, verbatim",
    )
    p.add_argument(
        "--client-cert-header",
        metavar="FILE",
        nargs="?",
        const="-",
        help="the client adds a Client-Cert header itself (with FILE's certificate, at most 1 MiB, "
        "or --cert's)",
    )
    p.add_argument(
        "--via-proxy", action="store_true", help="behind a trusted TLS-terminating proxy"
    )
    p.add_argument("--method", default="GET")
    p.add_argument("--url", default="https://rs.mtlslab.test/resource")
    _shared(p, "interpretations")
    _formats(p, "text", "json")


def _cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    import datetime as dt
    import signal
    import threading

    from mtlslab.compare import Simulator
    from mtlslab.live import LiveStack, client_url, curl_command
    from mtlslab.live.terminal import LabFolderConflict, write_lab_folder
    from mtlslab.scenarios import CertChoice, ClientAuth, Deployment, Scenario, TlsVersion

    interp = _interpretation(args.interpretation or "baseline")
    lab = Lab(seed=args.seed)
    sim = Simulator(lab, asrv=AuthorizationServer(lab, issuer=args.issuer or LAB_ISSUER))
    deployment = Deployment(
        client_auth=ClientAuth(args.client_auth), tls_version=TlsVersion(args.tls)
    )
    try:  # before listening: a folder of another lab stops serve here
        written = write_lab_folder(lab, args.lab_dir, force=args.force)
    except LabFolderConflict as exc:
        raise _refusal(exc, "--lab-dir", seed=args.seed) from None
    folder = written.path
    minted_at = dt.datetime.now(dt.timezone.utc) if args.wall_clock else sim.now
    stop = threading.Event()
    installed: dict[signal.Signals, Any] = {}  # the handlers replaced, to put back
    stack = LiveStack(
        simulator=sim,
        deployment=deployment,
        interpretation=interp,
        host=args.host,
        port=args.port,
        wall_clock=args.wall_clock,
    )
    try:
        stack.start()
        if threading.current_thread() is threading.main_thread():  # signals are the main thread's
            for sig in (signal.SIGINT, signal.SIGTERM):
                # Kept as they are: a handler installed outside Python (it reads as None and could
                # not be put back), and a signal the caller chose to ignore (a background job's
                # Ctrl-C).
                if signal.getsignal(sig) not in (None, signal.SIG_IGN):
                    installed[sig] = signal.signal(sig, lambda *_: stop.set())
        out.write(f"mtlslab resource server listening on {stack.url}/resource\n")
        url, resolve = client_url(stack.url, address=stack.address)
        if not stack.on_loopback:
            out.write(
                f"WARNING: listening on {args.host}, not on loopback: other machines can reach it\n"
            )
            # A wildcard listener: the lines below reach it on loopback, from this machine only.
            if url.startswith(("https://127.0.0.1:", "https://[::1]:")):
                out.write(
                    "  from another machine: the lab certificate names only localhost, 127.0.0.1 "
                    f"and ::1, so use https://localhost:{stack.port} with curl --resolve "
                    f"localhost:{stack.port}:ADDRESS-OF-THIS-MACHINE\n"
                )
        wrote = " ".join(written.written) or "nothing (every file was already there)"
        kept = " ".join(written.kept)
        clock = (
            "  clock:          the wall clock (tokens must be fresh)"
            if args.wall_clock
            else f"  lab clock:      tokens are evaluated at {sim.now:%Y-%m-%dT%H:%M:%SZ}"
        )
        out.write(
            f"  deployment:     {stack.deployment.describe()}\n"
            f"  interpretation: {interp.name} — {interp.title}\n"
            f"  lab folder:     {folder}/ for seed {args.seed!r}\n    wrote:        {wrote}\n"
            + (f"    kept:         {kept} (already there, the same bytes)\n" if kept else "")
            + f"  CA file:        {folder / 'ca.pem'} (client certificates and keys in {folder}/)\n"
            f"  issuer:         {sim.asrv.issuer} "
            f"(JWKS: python -m mtlslab jwks --seed {args.seed})\n"
            f"{clock}\n\n"
        )
        for label, cert in (
            ("success", CertChoice.CLIENT),
            ("certificate missing", CertChoice.NONE),
            ("certificate mismatch", CertChoice.OTHER),
        ):
            scenario = Scenario(id=label, title=label, deployment=stack.deployment, token="bound")
            command = curl_command(
                scenario.with_(certificate=cert),
                url=url,
                lab=sim.lab,
                asrv=sim.asrv,
                folder=str(folder),
                now=minted_at,
                resolve=resolve,
            )
            out.write(f"# {label}\n{command}\n\n")
        out.flush()
        stop.wait(args.duration or None)
    finally:
        try:
            stack.close()
        finally:
            # A caller's handlers come back (serve run in-process).
            for signum, handler in installed.items():
                signal.signal(signum, handler)
    return 0


def _cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    from mtlslab.live import verify
    from mtlslab.live.runner import DEFAULT_VERIFY
    from mtlslab.scenarios import scenarios_tagged

    names = args.interpretation or DEFAULT_VERIFY
    report = verify(scenarios_tagged(*(args.tag or ())), _interpretations(names), proxy=args.proxy)
    _write(out, json.dumps(report.to_json(), indent=2) if args.format == "json" else report.text())
    return 0 if report.ok else 1


def _live(sub: argparse._SubParsersAction[_Parser]) -> None:
    """The live subcommands: serve, verify."""
    p = _command(
        sub,
        _cmd_serve,
        "run the live resource server for outside clients",
        "Start the live TLS resource server (on 127.0.0.1 unless --host says otherwise) and print "
        "its URL, the CA file, the interpretation it answers with, and curl lines.",
        "seed",
    )
    _tls_options(p)
    p.add_argument(
        "-i",
        "--interpretation",
        metavar="NAME|FILE",
        help=f"the interpretation to answer with (default: baseline): {_INTERPRETATION_HELP}",
    )
    p.add_argument("--port", type=_port, default=0, help="port, 0-65535 (default 0: any free port)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s, loopback only)"
    )
    p.add_argument(
        "--lab-dir",
        type=Path,
        default=Path("lab"),
        help="where the lab's certificates and keys go (default: ./lab); files already there with "
        "the same bytes are kept, another seed's are refused unless --force",
    )
    _shared(p, "force")
    p.add_argument(
        "--issuer",
        metavar="URL",
        help="the lab authorization server's issuer identifier to trust (default: "
        "https://as.mtlslab.test; e.g. https://127.0.0.1:8414 to accept the tokens of `mtlslab "
        "probe --lab-issuer`)",
    )
    p.add_argument(
        "--wall-clock",
        action="store_true",
        help="evaluate tokens at the current time instead of the fixed lab clock",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=0,
        help="stop after this many seconds (default: until Ctrl-C)",
    )
    p = _command(
        sub,
        _cmd_verify,
        "run the catalogue live and compare with the simulation",
        "Run the scenario catalogue over real mutual TLS on 127.0.0.1 and compare every observed "
        "outcome with the simulated one. Exit status 1 on any difference.",
        "interpretations",
        "tag",
    )
    p.add_argument(
        "--proxy",
        choices=("auto", "haproxy", "builtin"),
        default="auto",
        help="the TLS-terminating proxy for proxied scenarios (default: HAProxy if installed)",
    )
    _formats(p, "text", "json")


def _cmd_probe(args: argparse.Namespace, out: TextIO) -> int:
    from mtlslab.interpretations import BUILTINS
    from mtlslab.live.issuer import LabIssuer
    from mtlslab.probe import BringYourOwn, check_target, probe

    check_target(args.url, allow_remote=args.allow_remote)
    ca = _read_option(args, "--ca")
    # The interpretations to score besides the built-ins (a built-in named again is scored once;
    # another interpretation under a built-in's name is refused).
    extra = []
    for interp in _interpretations(args.interpretation):
        if interp.name not in BUILTINS:
            extra.append(interp)
        elif interp != BUILTINS[interp.name]:
            raise InputError("-i", f"{interp.name!r} is a built-in's name: give yours another")
    common: dict[str, Any] = {
        "ca": ca,
        "tls_version": args.tls,
        "interpretations": extra,
        "allow_remote": args.allow_remote,
    }
    own = ("cert", "key", "unbound_token", "unbound_token_file", "other_cert", "other_key")
    if args.lab_issuer:
        if args.token is not None or args.token_file is not None:
            raise InputError("--token", "give either --lab-issuer or your own --token, not both")
        given = [name for name in own if getattr(args, name) is not None]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise InputError(flag, "only with --token: --lab-issuer uses the lab's certificates")
        audience = args.audience or LAB_AUDIENCE
        with LabIssuer(Lab(seed=args.seed), audience=audience, port=args.issuer_port) as issuer:
            if args.format != "json":
                out.write(
                    f"lab issuer {issuer.issuer}, serving while the probe runs:\n"
                    f"  metadata  {issuer.metadata_url}\n"
                    f"  JWKS      {issuer.jwks_url}\n"
                    f"  audience  {issuer.audience}\n"
                    f"  lab CA    mtlslab certs --seed {args.seed} --out DIR (writes ca.pem)\n\n"
                )
                out.flush()
            report = probe(args.url, issuer=issuer, **common)
    else:
        token = (
            _read_token(args.token_file, field="--token-file") if args.token_file else args.token
        )
        if token is None:
            raise InputError(
                "--token", "give --lab-issuer, or your own --token with --cert and --key"
            )
        if args.cert is None or args.key is None:
            raise InputError(
                "--cert", "--token needs the certificate it is bound to: --cert and --key"
            )
        if args.audience is not None:
            raise InputError("--audience", "only with --lab-issuer (your token has its own)")
        unbound = args.unbound_token
        if args.unbound_token_file:
            unbound = _read_token(args.unbound_token_file, field="--unbound-token-file")
        yours = BringYourOwn.from_pem(
            token=token,
            cert=_read_input(args.cert, field="--cert"),
            key=_read_input(args.key, field="--key"),
            unbound_token=unbound,
            other_cert=_read_option(args, "--other-cert"),
            other_key=_read_option(args, "--other-key"),
        )
        report = probe(args.url, own=yours, **common)
    _write(out, getattr(report, f"to_{args.format}")())
    return 3 if report.inconclusive else 1 if report.warnings else 0


def _probe(sub: argparse._SubParsersAction[_Parser]) -> None:
    """The probe subcommand: probe a real resource server."""
    p = _command(
        sub,
        _cmd_probe,
        "probe a real resource server and say which reading it follows",
        "Send a bounded battery of GET requests (at most 40, sequential, each with a timeout) to "
        "the protected resource URL over real TLS, and score every interpretation by how many of "
        "its predicted outcomes match. Tokens: --lab-issuer (mtlslab serves its JWKS and RFC 8414 "
        "metadata on loopback; the full battery) or your own --token, --cert, --key (fewer "
        "probes; the report says which were skipped). Only loopback targets unless "
        "--allow-remote. Files it reads (--ca, --cert, --key, --other-cert, --other-key, the "
        "token files, -i FILE) are at most 1 MiB each. Exit status: 0, 1 when the server accepted "
        "something it must refuse, 2 on unusable input, 3 when the run is inconclusive (the "
        "control, a bound token with its own certificate, was not served: the report says what to "
        "check).",
    )
    p.add_argument("url", metavar="URL", help="the protected resource, https://...")
    p.add_argument(
        "--ca", metavar="FILE", help="CA (PEM) for the server's certificate (default: system)"
    )
    p.add_argument("--cert", metavar="FILE", help="the certificate (PEM chain) --token is bound to")
    p.add_argument("--key", metavar="FILE", help="its private key (PEM)")
    given = p.add_mutually_exclusive_group()
    given.add_argument(
        "--token",
        metavar="TOKEN",
        help="your certificate-bound access token (the next argument, even one starting with '-')",
    )
    given.add_argument("--token-file", metavar="FILE", help="the same, read from FILE")
    unbound = p.add_mutually_exclusive_group()
    unbound.add_argument(
        "--unbound-token", metavar="TOKEN", help="an unbound token the server accepts"
    )
    unbound.add_argument("--unbound-token-file", metavar="FILE", help="the same, read from FILE")
    p.add_argument("--other-cert", metavar="FILE", help="a second certificate the server accepts")
    p.add_argument("--other-key", metavar="FILE", help="its private key (PEM)")
    p.add_argument(
        "--lab-issuer",
        action="store_true",
        help="serve the lab authorization server on loopback and mint every token variant",
    )
    p.add_argument(
        "--audience",
        metavar="AUD",
        help="with --lab-issuer: the aud of minted tokens (default: https://rs.mtlslab.test)",
    )
    p.add_argument(
        "--issuer-port",
        type=_port,
        default=8414,
        metavar="N",
        help="with --lab-issuer: the loopback port it serves on (default: %(default)s; 0: any)",
    )
    p.add_argument("--tls", choices=("1.2", "1.3"), default="1.3")
    p.add_argument(
        "-i",
        "--interpretation",
        action="append",
        metavar="NAME|FILE",
        help="an interpretation to score besides the built-ins (repeatable): "
        + _INTERPRETATION_HELP,
    )
    p.add_argument(
        "--allow-remote", action="store_true", help="allow a target that is not on loopback"
    )
    _formats(p, "text", "markdown", "json")
    _shared(p, "seed")


def build_parser() -> _Parser:
    """The full argument parser."""
    parser = _Parser(
        prog="mtlslab",
        description="mtlslab: certificate-bound access tokens (RFC 8705), "
        "simulated, compared and proven on the wire.",
        epilog="Every file a command reads is read to at most 1 MiB. Exit status: 0; 2 on "
        "unusable input (one line on stderr); 141 when standard output is closed under the "
        "command (`mtlslab scenarios | head`); verify and probe also use 1, probe also 3 (see "
        "their --help).",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    for register in (_foundation, _engine, _live, _probe):
        register(sub)
    return parser


class _OutputClosed(Exception):
    """Standard output's reader went away."""


class _Output:
    """A handler's ``out``: a write or flush that finds the pipe closed raises :class:`_OutputClosed`, so
    that a broken pipe elsewhere (a socket) is never taken for it."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise _OutputClosed from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise _OutputClosed from None


def _output_closed(stream: TextIO) -> int:
    """Stop quietly: point the stream's descriptor at /dev/null, so that what Python still holds for it
    goes nowhere when it exits (instead of a second complaint)."""
    with contextlib.suppress(OSError, ValueError):
        fd = stream.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
    return EXIT_OUTPUT_CLOSED


def _verbatim(argv: Sequence[str]) -> list[str]:
    """``--token VALUE`` as ``--token=VALUE`` (for each of :data:`_VERBATIM`), so that argparse does not
    take a value starting with ``-`` for an option."""
    joined: list[str] = []
    rest = iter(argv)
    for arg in rest:
        if arg == "--":
            joined += [arg, *rest]
            break
        value = next(rest, None) if arg in _VERBATIM else None
        joined.append(arg if value is None else f"{arg}={value}")
    return joined


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command line; returns the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    parser = build_parser()
    given = _verbatim(sys.argv[1:] if argv is None else argv)
    try:  # argparse prints --help and usage errors itself: send them to out/err too
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                args = parser.parse_args(given)
            finally:
                out.flush()
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return int(exc.code or 0)
    except BrokenPipeError:
        return _output_closed(out)
    output = _Output(out)
    try:
        status: int = args.handler(args, cast("TextIO", output))
        output.flush()
        return status
    except _OutputClosed:
        return _output_closed(out)
    except MtlslabError as exc:
        err.write(f"mtlslab {args.command}: {exc}\n")
        return 2
    except OSError as exc:
        message = f"mtlslab {args.command}: {exc.strerror or exc}: {exc.filename or ''}\n"
        err.write(message.replace(": \n", "\n"))
        return 2
