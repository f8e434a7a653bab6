"""mtlslab.cli, the foundation subcommands: `certs`, `token`, `jwks`; bad input is one line and status 2."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import jwt
import pytest

from mtlslab.cli import EXIT_OUTPUT_CLOSED, INPUT_LIMIT, build_parser, main
from mtlslab.live.terminal import write_lab_folder
from mtlslab.pki import LAB_NOW, Lab, x5t_s256
from mtlslab.tokens import LAB_AUDIENCE, LAB_ISSUER

SEED = "test-cli"
ROOT = Path(__file__).resolve().parent.parent
LAB_FILES = ["ca.pem", "client.key", "client.pem", "lab.json", "server.key", "server.pem"]


def run(*argv: str) -> tuple[int, str, str]:
    """Call the command line in-process: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def run_process(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m mtlslab` for real."""
    return subprocess.run(
        [sys.executable, "-m", "mtlslab", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def verify_at_lab_now(token: str, jwks: dict[str, object]) -> dict[str, object]:
    """Verify with plain pyjwt; its clock is moved to LAB_NOW through leeway (pyjwt has no clock argument)."""
    (key,) = jwt.PyJWKSet.from_dict(jwks).keys
    return jwt.decode(
        token,
        key,
        algorithms=["ES256"],
        audience=LAB_AUDIENCE,
        issuer=LAB_ISSUER,
        leeway=time.time() - LAB_NOW.timestamp(),
    )


# --------------------------------------------------------------------------------------------------
# certs


def test_certs_writes_the_five_files_and_prints_matching_thumbprints(tmp_path: Path) -> None:
    """`certs --seed --out` writes ca/client/server PEM and keys (keys 0600) and lab.json, says what it
    wrote where, and prints each x5t#S256."""
    status, out, err = run("certs", "--seed", SEED, "--out", str(tmp_path / "lab"))
    assert (status, err) == (0, "")
    assert sorted(p.name for p in (tmp_path / "lab").iterdir()) == LAB_FILES
    wrote = sorted(line.split()[1] for line in out.splitlines() if line.startswith("wrote "))
    assert wrote == [str(tmp_path / "lab" / name) for name in LAB_FILES]
    for name in LAB_FILES:
        mode = stat.S_IMODE((tmp_path / "lab" / name).stat().st_mode)
        assert mode == (0o600 if name.endswith(".key") else 0o644), name
    printed = dict(re.findall(r"^\s+(\S+\.pem)\s+(\S+)$", out, flags=re.MULTILINE))
    lab = Lab(SEED)
    assert printed == {
        "ca.pem": lab.ca.x5t_s256,
        "client.pem": lab.client.x5t_s256,
        "server.pem": lab.server.x5t_s256,
    }
    for name, thumbprint in printed.items():
        assert x5t_s256((tmp_path / "lab" / name).read_bytes()) == thumbprint
    assert "RFC 8705 §3.1" in out


def test_certs_in_a_real_process(tmp_path: Path) -> None:
    """`python -m mtlslab certs` works as a process and writes what the in-process call writes."""
    done = run_process("certs", "--seed", SEED, "--out", str(tmp_path / "proc"))
    assert (done.returncode, done.stderr) == (0, "")
    assert (tmp_path / "proc" / "client.pem").read_bytes() == Lab(
        SEED
    ).client.cert_chain_pem.bytes()
    assert Lab(SEED).client.x5t_s256 in done.stdout


# --------------------------------------------------------------------------------------------------
# token and jwks


def test_token_is_bound_to_the_written_client_certificate(tmp_path: Path) -> None:
    """`token` prints one JWT whose cnf.x5t#S256 is the thumbprint of the client.pem `certs` writes."""
    run("certs", "--seed", SEED, "--out", str(tmp_path))
    status, out, err = run("token", "--seed", SEED)
    assert (status, err) == (0, "")
    assert out.endswith("\n")
    assert out.count("\n") == 1
    claims = jwt.decode(out.strip(), options={"verify_signature": False})
    assert claims["cnf"] == {"x5t#S256": x5t_s256((tmp_path / "client.pem").read_bytes())}


def test_unbound_token_has_no_cnf() -> None:
    """`token --unbound` prints a plain bearer JWT without cnf."""
    status, out, _ = run("token", "--seed", SEED, "--unbound")
    assert status == 0
    assert "cnf" not in jwt.decode(out.strip(), options={"verify_signature": False})


def test_jwks_verifies_the_token() -> None:
    """The JWKS `jwks` prints is public only and verifies the token `token` prints (pyjwt, at the lab clock)."""
    _, token, _ = run("token", "--seed", SEED)
    status, out, err = run("jwks", "--seed", SEED)
    assert (status, err) == (0, "")
    jwks = json.loads(out)
    assert all("d" not in key for key in jwks["keys"])
    claims = verify_at_lab_now(token.strip(), jwks)
    assert claims["cnf"]["x5t#S256"] == Lab(SEED).client.x5t_s256  # type: ignore[index]


def test_token_and_jwks_in_real_processes() -> None:
    """`python -m mtlslab token` and `jwks` work as processes and agree with each other."""
    token = run_process("token", "--seed", SEED)
    jwks = run_process("jwks", "--seed", SEED)
    assert (token.returncode, token.stderr, jwks.returncode, jwks.stderr) == (0, "", 0, "")
    verify_at_lab_now(token.stdout.strip(), json.loads(jwks.stdout))


def test_another_seed_gives_a_token_the_jwks_does_not_verify() -> None:
    """A token from one seed does not verify against another seed's JWKS."""
    _, token, _ = run("token", "--seed", SEED)
    _, other, _ = run("jwks", "--seed", SEED + "-other")
    with pytest.raises(jwt.InvalidSignatureError):
        verify_at_lab_now(token.strip(), json.loads(other))


# --------------------------------------------------------------------------------------------------
# Bad input and --help


def test_unwritable_out_path_is_one_line_and_status_2(tmp_path: Path) -> None:
    """An --out path that cannot be a directory is one line on stderr, status 2, nothing on stdout."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    status, out, err = run("certs", "--seed", SEED, "--out", str(blocker / "sub"))
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.endswith("\n")
    assert err.startswith("mtlslab certs: ")
    assert str(blocker / "sub") in err


@pytest.mark.parametrize(
    "argv",
    [
        ["certs", "--seed", SEED, "--out", "x", "--no-such-option"],
        ["token", "--bogus"],
        ["jwks", "--alg", "HS256"],
        ["token", "--variant", "no-such-variant"],
        ["certs"],
        ["no-such-command"],
        [],
    ],
    ids=[
        "unknown-option",
        "token-unknown-option",
        "bad-choice",
        "bad-variant",
        "missing-out",
        "bad-command",
        "empty",
    ],
)
def test_usage_errors_are_one_line_and_status_2(argv: list[str]) -> None:
    """Unknown options, bad choices and missing arguments: one line on stderr, status 2."""
    status, out, err = run(*argv)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.endswith("(see --help)\n")


def test_usage_error_in_a_real_process() -> None:
    """As a process, an unknown option is one stderr line and exit status 2."""
    done = run_process("certs", "--out", "x", "--no-such-option")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "--no-such-option" in done.stderr


@pytest.mark.parametrize(
    "argv", [[], ["certs"], ["token"], ["jwks"]], ids=["mtlslab", "certs", "token", "jwks"]
)
def test_help_works_for_each_command(argv: list[str]) -> None:
    """`--help` prints usage on stdout and exits 0, for the program and each subcommand."""
    status, out, err = run(*argv, "--help")
    assert (status, err) == (0, "")
    assert out.startswith("usage: mtlslab")
    for word in argv:
        assert word in out


# --------------------------------------------------------------------------------------------------
# The lab folder: certs and serve keep their own files, refuse other material, never write through links


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def refused(*argv: str) -> str:
    """A command that must refuse: exit 2, nothing on stdout, one line on stderr (returned)."""
    status, out, err = run(*argv)
    assert (status, out) == (2, ""), (status, out, err)
    assert err.endswith("\n")
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_certs_again_with_the_same_seed_keeps_every_file(tmp_path: Path) -> None:
    """A second `certs` of the same seed writes nothing and says it kept each file (the same inodes stay)."""
    run("certs", "--seed", SEED, "--out", str(tmp_path))
    inodes = {p.name: p.stat().st_ino for p in tmp_path.iterdir()}
    status, out, err = run("certs", "--seed", SEED, "--out", str(tmp_path))
    assert (status, err) == (0, "")
    assert "wrote" not in out
    kept = [line.split()[1] for line in out.splitlines() if line.startswith("kept ")]
    assert sorted(kept) == [str(tmp_path / name) for name in LAB_FILES]
    assert {p.name: p.stat().st_ino for p in tmp_path.iterdir()} == inodes


def test_certs_refuses_another_seeds_folder_and_says_which_seed(tmp_path: Path) -> None:
    """`certs` over another seed's folder: one line naming that seed (`--seed workshop`), another --out or
    --force; nothing changes. With --force the folder becomes this seed's."""
    run("certs", "--seed", "workshop", "--out", str(tmp_path))
    before = _folder_bytes(tmp_path)
    err = refused("certs", "--seed", SEED, "--out", str(tmp_path))
    assert err.startswith("mtlslab certs: --out: ")
    assert "--seed workshop" in err
    assert "another --out" in err
    assert "--force" in err
    assert _folder_bytes(tmp_path) == before
    status, _, err = run("certs", "--seed", SEED, "--out", str(tmp_path), "--force")
    assert (status, err) == (0, "")
    assert json.loads((tmp_path / "lab.json").read_text())["seed"] == SEED
    assert (tmp_path / "client.pem").read_bytes() == Lab(SEED).client.cert_chain_pem.bytes()


@pytest.mark.parametrize("name", ["ca.pem", "client.key"])
def test_certs_never_writes_through_a_planted_link(tmp_path: Path, name: str) -> None:
    """A link planted as ca.pem or client.key (to a file of another user): `certs` refuses it; with
    --force it replaces the link, and the linked file keeps its bytes, mode and owner."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"another user's file\n")
    victim.chmod(0o600 if name == "ca.pem" else 0o644)
    if os.geteuid() == 0:
        os.chown(victim, 65534, 65534)
    before = (victim.read_bytes(), victim.stat().st_mode, victim.stat().st_uid)
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / name).symlink_to(victim)
    assert name in refused("certs", "--seed", SEED, "--out", str(lab))
    assert (victim.read_bytes(), victim.stat().st_mode, victim.stat().st_uid) == before
    status, _, _ = run("certs", "--seed", SEED, "--out", str(lab), "--force")
    assert status == 0
    assert (victim.read_bytes(), victim.stat().st_mode, victim.stat().st_uid) == before
    assert not (lab / name).is_symlink()
    assert stat.S_IMODE((lab / name).stat().st_mode) == (0o600 if name.endswith(".key") else 0o644)


def test_serve_refuses_another_seeds_lab_folder_before_listening(tmp_path: Path) -> None:
    """`serve` (default seed) on a folder `certs --seed workshop` wrote: one line telling --seed workshop
    or another --lab-dir, exit 2, no server, the folder unchanged (the README's workshop flow)."""
    run("certs", "--seed", "workshop", "--out", str(tmp_path / "lab"))
    before = _folder_bytes(tmp_path / "lab")
    err = refused("serve", "--lab-dir", str(tmp_path / "lab"), "--duration", "0.1")
    assert err.startswith("mtlslab serve: --lab-dir: ")
    assert "--seed workshop" in err
    assert "another --lab-dir" in err
    assert _folder_bytes(tmp_path / "lab") == before


def test_serve_reuses_its_own_seeds_folder_and_says_what_it_wrote(tmp_path: Path) -> None:
    """`serve --seed workshop` on `certs --seed workshop`'s folder keeps those six files and writes only the
    other identities, and says which, in which folder."""
    folder = tmp_path / "lab"
    run("certs", "--seed", "workshop", "--out", str(folder))
    before = _folder_bytes(folder)
    status, out, err = run(
        "serve", "--seed", "workshop", "--lab-dir", str(folder), "--duration", "0.05"
    )
    assert (status, err) == (0, "")
    assert f"  lab folder:     {folder}/ for seed 'workshop'\n" in out
    wrote = re.search(r"^    wrote: +(.*)$", out, re.MULTILINE)
    kept = re.search(r"^    kept: +(.*) \(already there, the same bytes\)$", out, re.MULTILINE)
    assert wrote is not None
    assert kept is not None
    assert sorted(kept.group(1).split()) == sorted(before)
    assert sorted(wrote.group(1).split()) == sorted(set(_folder_bytes(folder)) - set(before))
    assert "other-client.pem" in wrote.group(1).split()
    assert {name: data for name, data in _folder_bytes(folder).items() if name in before} == before


# --------------------------------------------------------------------------------------------------
# Ports, a closed standard output, and the Makefile's two servers


@pytest.mark.parametrize(
    "argv",
    [
        ("serve", "--port", "80000"),
        ("serve", "--port", "-1"),
        ("serve", "--port", "http"),
        ("probe", "https://127.0.0.1:1/", "--lab-issuer", "--issuer-port", "65536"),
    ],
)
def test_a_port_outside_0_to_65535_is_a_usage_error(argv: tuple[str, ...]) -> None:
    """A port outside 0-65535 (or not a number) is refused while parsing: one line naming the option."""
    err = refused(*argv)
    assert "argument --" in err
    assert "port" in err


def test_the_port_range_edges_are_accepted() -> None:
    """0 (any free port) and 65535 parse, for serve and for probe's --issuer-port."""
    parser = build_parser()
    assert parser.parse_args(["serve", "--port", "65535"]).port == 65535
    assert parser.parse_args(["serve", "--port", "0"]).port == 0
    probe = parser.parse_args(["probe", "https://127.0.0.1:1/", "--issuer-port", "65535"])
    assert probe.issuer_port == 65535


class _ClosedPipe(io.StringIO):
    """Standard output whose reader has gone: every write finds the pipe closed."""

    def write(self, text: str) -> int:
        del text
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_stdout_ends_the_command_quietly_in_process() -> None:
    """A write that finds standard output closed ends the command: EXIT_OUTPUT_CLOSED, nothing on stderr."""
    err = io.StringIO()
    assert main(["scenarios"], out=_ClosedPipe(), err=err) == EXIT_OUTPUT_CLOSED == 141
    assert err.getvalue() == ""


def test_a_broken_pipe_elsewhere_is_not_taken_for_a_closed_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A BrokenPipeError that is not standard output's (a socket, say) stays an error: one line, status 2."""

    def broken(*_args: object, **_kwargs: object) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("mtlslab.live.terminal.write_lab_folder", broken)
    err = refused("certs", "--seed", SEED, "--out", str(tmp_path))
    assert "Broken pipe" in err


@pytest.mark.parametrize("unbuffered", ["", "1"], ids=["buffered", "PYTHONUNBUFFERED"])
def test_a_closed_pipe_ends_a_real_process_quietly(unbuffered: str) -> None:
    """`mtlslab scenarios` writing into a pipe nobody reads any more: exit 141 and an empty stderr (no
    "Broken pipe", no traceback), with Python's output buffered or not."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write: no race
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mtlslab", "scenarios"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (EXIT_OUTPUT_CLOSED, "")


def test_mtlslab_piped_into_head_stops_quietly() -> None:
    """`mtlslab matrix --format json | head -c 100` (megabytes for 100 bytes): head gets its bytes, mtlslab
    stops with 141 and says nothing."""
    head = shutil.which("head")
    if head is None:
        pytest.skip("no head on PATH")
    # Under PYTHONUNBUFFERED, CPython's text layer reports a partial write to a pipe as whole and drops the
    # rest, so no program can notice the reader leave; the closed-pipe test above covers that mode.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    producer = subprocess.Popen(
        [sys.executable, "-m", "mtlslab", "matrix", "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert producer.stdout is not None
    assert producer.stderr is not None
    consumer = subprocess.run(
        [head, "-c", "100"], stdin=producer.stdout, capture_output=True, timeout=60, check=False
    )
    producer.stdout.close()
    try:
        status = producer.wait(60)
        stderr = producer.stderr.read()
    finally:
        producer.stderr.close()
    assert consumer.stdout.startswith(b"{")
    assert len(consumer.stdout) == 100
    assert (status, stderr) == (EXIT_OUTPUT_CLOSED, b"")


def _make_dry_run(*argv: str) -> str:
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make on PATH")
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "HOST", "MAKEFLAGS")}
    done = subprocess.run(
        [make, "--no-print-directory", "-n", "-o", ".venv/.stamp-notebook", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
        check=True,
    )
    return done.stdout


def test_make_lab_and_make_voila_default_to_different_ports() -> None:
    """`make lab` serves JupyterLab on 8888 and `make voila` the app on 8866, so both run at once; PORT
    still chooses either; the README names the same defaults."""
    assert "--ServerApp.port=8888" in _make_dry_run("lab")
    assert "--port=8866" in _make_dry_run("voila")
    assert "--port=9000" in _make_dry_run("voila", "PORT=9000")
    assert "--ServerApp.port=9001" in _make_dry_run("lab", "PORT=9001")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make voila   # http://127.0.0.1:8866/" in readme
    assert "make lab     # " in readme
    assert "8888" in readme.split("## For a workshop room", 1)[0]


# --------------------------------------------------------------------------------------------------
# Files the command line reads: at most 1 MiB each


def test_an_input_file_over_1_mib_is_one_line_and_the_limit_itself_is_read(tmp_path: Path) -> None:
    """A file of 1 MiB + 1 byte is refused as too large; one of exactly 1 MiB is read (and then found to
    be no certificate)."""
    big = tmp_path / "big.pem"
    big.write_bytes(b"x" * (INPUT_LIMIT + 1))
    assert "larger than 1 MiB" in refused("evaluate", "--cert", str(big))
    exact = tmp_path / "exact.pem"
    exact.write_bytes(b"x" * INPUT_LIMIT)
    err = refused("evaluate", "--cert", str(exact))
    assert "larger than" not in err
    assert "--cert" in err


@pytest.mark.parametrize(
    "argv",
    [
        ("evaluate", "--cert", "/dev/zero"),
        ("evaluate", "--client-cert-header", "/dev/zero"),
        ("explain", "success", "-i", "/dev/zero"),
        ("serve", "-i", "/dev/zero"),
        ("probe", "https://127.0.0.1:1/", "--lab-issuer", "--ca", "/dev/zero"),
        ("probe", "https://127.0.0.1:1/", "--lab-issuer", "-i", "/dev/zero"),
        ("probe", "https://127.0.0.1:1/", "--token-file", "/dev/zero", "--cert", "c", "--key", "k"),
        ("probe", "https://127.0.0.1:1/", "--token", "t", "--cert", "/dev/zero", "--key", "k"),
        ("probe", "https://127.0.0.1:1/", "--token", "t", "--cert", "{pem}", "--key", "/dev/zero"),
        (
            "probe",
            "https://127.0.0.1:1/",
            "--token",
            "t",
            "--cert",
            "{pem}",
            "--key",
            "{key}",
            "--unbound-token-file",
            "/dev/zero",
        ),
        (
            "probe",
            "https://127.0.0.1:1/",
            "--token",
            "t",
            "--cert",
            "{pem}",
            "--key",
            "{key}",
            "--other-cert",
            "/dev/zero",
            "--other-key",
            "{key}",
        ),
        (
            "probe",
            "https://127.0.0.1:1/",
            "--token",
            "t",
            "--cert",
            "{pem}",
            "--key",
            "{key}",
            "--other-cert",
            "{pem}",
            "--other-key",
            "/dev/zero",
        ),
    ],
    ids=[
        "cert",
        "client-cert-header",
        "explain-i",
        "serve-i",
        "ca",
        "probe-i",
        "token-file",
        "probe-cert",
        "key",
        "unbound-token-file",
        "other-cert",
        "other-key",
    ],
)
def test_every_file_the_command_line_reads_stops_at_1_mib(
    tmp_path: Path, argv: tuple[str, ...]
) -> None:
    """Every file option reads through one reader that stops after 1 MiB: /dev/zero is one line naming
    the option, exit 2 (and nothing is served or probed)."""
    done = write_lab_folder(Lab(SEED), tmp_path, every_identity=False)
    files = {"pem": str(done.path / "client.pem"), "key": str(done.path / "client.key")}
    err = refused(*(a.format(**files) for a in argv))
    assert "/dev/zero is larger than 1 MiB" in err


def _measured(*argv: str) -> tuple[int, str, float, int]:
    """Run `python -m mtlslab ARGV` to its end, killed after 60 s: (status, stderr, seconds, peak RSS KiB)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mtlslab", *argv], stdout=subprocess.DEVNULL, stderr=err
        )
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > started + 60:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode()
    return proc.returncode, text, time.monotonic() - started, usage.ru_maxrss


def test_dev_zero_costs_no_more_time_or_memory_than_an_empty_file(tmp_path: Path) -> None:
    """`evaluate --cert /dev/zero` as a process: refused, in about the time and memory of the same command
    given an empty file (at most 16 MiB and 5 s more; unbounded, it would grow until killed at 60 s)."""
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"")
    base_status, base_err, base_seconds, base_kib = _measured("evaluate", "--cert", str(empty))
    status, err, seconds, kib = _measured("evaluate", "--cert", "/dev/zero")
    assert (base_status, status) == (2, 2), (base_err, err)
    assert (
        err
        == "mtlslab evaluate: --cert: /dev/zero is larger than 1 MiB, the limit for a file mtlslab reads\n"
    )
    assert seconds < base_seconds + 5
    assert kib - base_kib < 16 * 1024, (kib, base_kib)


def test_a_fifo_that_never_ends_is_refused_after_1_mib(tmp_path: Path) -> None:
    """--cert naming a FIFO whose writer never stops: refused after 1 MiB, and the writer sees the reader go."""
    fifo = tmp_path / "endless.pem"
    os.mkfifo(fifo)
    written: list[int] = []

    def writer() -> None:
        chunk = b"A" * 65536
        with contextlib.suppress(BrokenPipeError), open(fifo, "wb") as fh:
            while sum(written) < 64 * INPUT_LIMIT:
                fh.write(chunk)
                written.append(len(chunk))

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert "larger than 1 MiB" in refused("evaluate", "--cert", str(fifo))
    thread.join(30)
    assert not thread.is_alive()
    assert INPUT_LIMIT < sum(written) < 64 * INPUT_LIMIT


# --------------------------------------------------------------------------------------------------
# Tokens that start with '-', and tokens from files


def test_a_token_starting_with_a_dash_reaches_the_probe(tmp_path: Path) -> None:
    """`probe --token -abc…` takes the next argument as the token (argparse alone called it a missing
    value): the probe's own token check is what answers."""
    done = write_lab_folder(Lab(SEED), tmp_path, every_identity=False)
    own = ("--cert", str(done.path / "client.pem"), "--key", str(done.path / "client.key"))
    err = refused("probe", "https://127.0.0.1:1/", "--token", "-not a token", *own)
    assert "expected one argument" not in err
    assert "token: not an access token" in err


def test_a_token_file_is_read_and_excludes_token(tmp_path: Path) -> None:
    """--token-file FILE reads the token (its final newline dropped); with --token too it is a usage error;
    a token file with --lab-issuer is refused like --token."""
    done = write_lab_folder(Lab(SEED), tmp_path, every_identity=False)
    own = ("--cert", str(done.path / "client.pem"), "--key", str(done.path / "client.key"))
    token = tmp_path / "token.txt"
    token.write_text("-bad token\n")
    err = refused("probe", "https://127.0.0.1:1/", "--token-file", str(token), *own)
    assert "token: not an access token" in err
    assert "not allowed with argument" in refused(
        "probe", "https://127.0.0.1:1/", "--token", "t", "--token-file", str(token)
    )
    assert "--lab-issuer" in refused(
        "probe", "https://127.0.0.1:1/", "--lab-issuer", "--token-file", str(token)
    )
    assert "--unbound-token-file" in refused(
        "probe", "https://127.0.0.1:1/", "--lab-issuer", "--unbound-token-file", str(token)
    )


# --------------------------------------------------------------------------------------------------
# probe -i FILE and --token-file against mtlslab's own server


@pytest.mark.live
def test_probe_scores_a_saved_interpretation_and_reads_the_token_from_a_file(
    tmp_path: Path,
) -> None:
    """`serve -i mine.json` answers with a saved reading; `probe --token-file … -i mine.json` (your own
    material, the token read from a file) scores it besides the built-ins and names it the closest."""
    from mtlslab.findings import Finding
    from mtlslab.interpretations import BUILTINS, Answer, derive

    mine = derive(
        BUILTINS["thread-401"],
        name="forbid-missing",
        stance="No certificate is an authorization failure.",
        answers={Finding.CERTIFICATE_MISSING: Answer(status=403, scheme=None)},
    )
    saved = tmp_path / "forbid-missing.json"
    saved.write_text(json.dumps(mine.to_json()))
    token = tmp_path / "token.txt"
    token.write_text(run_process("token", "--seed", SEED).stdout)
    serve = ["serve", "--seed", SEED, "-i", str(saved), "--lab-dir", str(tmp_path / "lab")]
    server = subprocess.Popen(
        [sys.executable, "-m", "mtlslab", *serve, "--duration", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert "listening on https://127.0.0.1:" in first
        url = first.split("listening on ", 1)[1].strip()
        said = [server.stdout.readline() for _ in range(3)]
        assert "  interpretation: forbid-missing — forbid-missing\n" in said, said
        lab = tmp_path / "lab"
        done = run_process(
            "probe",
            url,
            "--ca",
            str(lab / "ca.pem"),
            "--token-file",
            str(token),
            "--cert",
            str(lab / "client.pem"),
            "--key",
            str(lab / "client.key"),
            "-i",
            str(saved),
            "--format",
            "json",
        )
    finally:
        server.terminate()
        server.wait(10)
        for stream in (server.stdout, server.stderr):
            if stream is not None:
                stream.close()
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    report = json.loads(done.stdout)
    assert report["closest"] == ["forbid-missing"]
    assert {score["interpretation"] for score in report["scores"]} == {*BUILTINS, "forbid-missing"}
