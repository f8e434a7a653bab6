"""mtlslab.cli, the foundation subcommands: `certs`, `token`, `jwks`; bad input is one line and status 2."""

from __future__ import annotations

import io
import json
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest

from mtlslab.cli import main
from mtlslab.pki import LAB_NOW, Lab, x5t_s256
from mtlslab.tokens import LAB_AUDIENCE, LAB_ISSUER

SEED = "test-cli"
LAB_FILES = ["ca.pem", "client.key", "client.pem", "server.key", "server.pem"]


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
    """`certs --seed --out` writes ca/client/server PEM and keys (keys 0600) and prints each x5t#S256."""
    status, out, err = run("certs", "--seed", SEED, "--out", str(tmp_path / "lab"))
    assert (status, err) == (0, "")
    assert sorted(p.name for p in (tmp_path / "lab").iterdir()) == LAB_FILES
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
