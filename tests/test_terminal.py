"""mtlslab.live.terminal: the lab's files on disk (kept when they are the lab's, refused when they are not)
and the curl command lines (an argument too long for Linux shown shortened, with a note)."""

from __future__ import annotations

import datetime as dt
import json
import shlex
from pathlib import Path

import pytest
from _files import mode, plant_victim, victim_state

from mtlslab.live.terminal import (
    ARGUMENT_LIMIT_BYTES,
    LAB_MANIFEST,
    LabFolderConflict,
    curl_command,
    curl_shown,
    too_long_for_an_argument,
    write_lab_folder,
)
from mtlslab.pki import Lab, load_certificate
from mtlslab.scenarios import get_scenario
from mtlslab.spec import shorten
from mtlslab.tokens import decode_unverified

SEED = "test-terminal"
LAB_FILES = ("ca.pem", "client.pem", "client.key", "server.pem", "server.key")


@pytest.fixture(scope="module")
def lab() -> Lab:
    """One seeded lab for this module."""
    return Lab(SEED)


# --------------------------------------------------------------------------------------------------
# The lab folder.


def test_write_lab_folder_gives_the_five_files_with_their_modes_and_lab_json(
    lab: Lab, tmp_path: Path
) -> None:
    """write_lab_folder(every_identity=False) writes ca.pem, client.pem, client.key, server.pem, server.key (keys 0600) and lab.json,
    which names the seed and the certificates' x5t#S256."""
    done = write_lab_folder(lab, tmp_path / "new" / "dir", every_identity=False)
    assert done.path == tmp_path / "new" / "dir"
    assert done.written == (*LAB_FILES, LAB_MANIFEST)
    assert done.kept == ()
    for name in done.written:
        assert mode(done.path / name) == (0o600 if name.endswith(".key") else 0o644), name
    assert load_certificate((done.path / "client.pem").read_bytes()) == lab.client.certificate
    manifest = json.loads((done.path / LAB_MANIFEST).read_text())
    assert manifest == {
        "seed": SEED,
        "x5t#S256": {
            "ca.pem": lab.ca.x5t_s256,
            "client.pem": lab.client.x5t_s256,
            "server.pem": lab.server.x5t_s256,
        },
    }


def test_write_lab_folder_keeps_its_own_files_and_adds_the_missing_ones(
    lab: Lab, tmp_path: Path
) -> None:
    """Writing the same lab again rewrites nothing (the very same files stay); every_identity then adds
    each identity's NAME.pem / NAME.key (the default) and keeps the six already there."""
    first = write_lab_folder(lab, tmp_path, every_identity=False)
    inodes = {name: (tmp_path / name).stat().st_ino for name in first.written}
    again = write_lab_folder(Lab(SEED), tmp_path, every_identity=False)
    assert (again.written, again.kept) == ((), first.written)
    assert {name: (tmp_path / name).stat().st_ino for name in first.written} == inodes
    more = write_lab_folder(Lab(SEED), tmp_path)
    assert set(more.kept) == set(first.written)
    assert set(more.written) == {
        f"{name}.{ext}" for name in lab.identities() if name != "client" for ext in ("pem", "key")
    }
    assert mode(tmp_path / "other-client.key") == 0o600


def test_write_lab_folder_refuses_another_seeds_folder_and_names_that_seed(
    lab: Lab, tmp_path: Path
) -> None:
    """A folder another seed wrote is refused before anything is written (LabFolderConflict: the files
    that differ, and the seed its lab.json names); with force it becomes this lab's."""
    write_lab_folder(Lab("someone-else"), tmp_path, every_identity=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(LabFolderConflict) as refused:
        write_lab_folder(lab, tmp_path)
    assert refused.value.seed == "someone-else"
    assert refused.value.names == (*LAB_FILES, LAB_MANIFEST)
    assert "its lab.json names seed 'someone-else'" in str(refused.value)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    done = write_lab_folder(lab, tmp_path, every_identity=False, force=True)
    assert done.written == (*LAB_FILES, LAB_MANIFEST)
    assert json.loads((tmp_path / LAB_MANIFEST).read_text())["seed"] == SEED
    assert (tmp_path / "client.pem").read_bytes() == lab.client.cert_chain_pem.bytes()


def test_write_lab_folder_refuses_unknown_material_and_links(lab: Lab, tmp_path: Path) -> None:
    """A client.pem that is no lab's (no lab.json says whose) and a client.key that is a link are refused;
    with force both are replaced and the linked file is untouched; a lab.json that is not JSON names no seed."""
    victim = plant_victim(tmp_path)
    before = victim_state(victim)
    folder = tmp_path / "lab"
    folder.mkdir()
    (folder / "client.pem").write_text("my own notes\n")
    (folder / "client.key").symlink_to(victim)
    with pytest.raises(LabFolderConflict) as refused:
        write_lab_folder(lab, folder, every_identity=False)
    assert (refused.value.names, refused.value.seed) == (("client.pem", "client.key"), None)
    assert "no lab.json there names their seed" in str(refused.value)
    (folder / LAB_MANIFEST).write_text("not json")
    with pytest.raises(LabFolderConflict) as refused:
        write_lab_folder(lab, folder, every_identity=False)
    assert refused.value.seed is None
    write_lab_folder(lab, folder, every_identity=False, force=True)
    assert victim_state(victim) == before
    assert (folder / "client.key").read_bytes() == lab.client.private_key_pem.bytes()
    assert not (folder / "client.key").is_symlink()


# --------------------------------------------------------------------------------------------------
# Command lines too long to run.


def test_an_argument_is_too_long_when_its_bytes_and_nul_exceed_128_kib() -> None:
    """Linux's MAX_ARG_STRLEN (128 KiB with 4 KiB pages) counts bytes and the terminating NUL: 131,071
    bytes still run, 131,072 do not; a character of two UTF-8 bytes counts twice."""
    assert ARGUMENT_LIMIT_BYTES == 131_072
    assert not too_long_for_an_argument("a" * 131_071)
    assert too_long_for_an_argument("a" * 131_072)
    assert too_long_for_an_argument("é" * 65_536)
    assert not too_long_for_an_argument("é" * 65_535)


def test_a_command_with_an_argument_too_long_is_shown_shortened_with_a_note() -> None:
    """Each argument over the limit is shortened and gets a note that the command cannot run as printed;
    a command whose arguments all fit is shown as it is, without notes."""
    fine = ["curl", "--header", "Authorization: Bearer " + "a" * 131_040]
    assert curl_shown(fine) == (fine, [])
    huge = [
        "curl",
        "--header",
        "Authorization: Bearer " + "a" * 200_000,
        "--data-raw",
        "b" * 200_000,
    ]
    shown, notes = curl_shown(huge)
    assert len(notes) == 2
    assert all(note.startswith("# NOT RUNNABLE AS SHOWN") for note in notes)
    assert "200,022 bytes" in notes[0]
    assert shown[:2] == ["curl", "--header"]
    assert shown[2] == shorten(huge[2])
    assert all(not too_long_for_an_argument(a) for a in shown)


def test_an_argument_holding_cr_or_nul_is_shown_escaped_with_a_note() -> None:
    """RFC 9110 §5.5: no field value holds CR, LF or NUL, and curl cannot send one as given: the argument
    is shown escaped, whole, under a note that the command cannot run as printed."""
    shown, notes = curl_shown(["curl", "--header", "Authorization: Bearer x\ry\0z"])
    assert shown == ["curl", "--header", "Authorization: Bearer x\\ry\\x00z"]
    (note,) = notes
    assert note.startswith("# NOT RUNNABLE AS SHOWN: one argument holds CR, LF or NUL")


def test_a_curl_command_is_the_scenarios_own_request_at_the_clock_given() -> None:
    """curl_command sends what the simulation sends: a token-endpoint scenario POSTs to /token, and a DPoP
    scenario's token and proof are both made at the clock given (RFC 9449 §4.3: iat is checked)."""
    lab, url = Lab(seed="curl-clock"), "https://127.0.0.1:8443"
    token_endpoint = curl_command(get_scenario("token-endpoint-success"), url=url, lab=lab)
    assert token_endpoint.endswith(f" {url}/token")
    now = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    dpop = shlex.split(curl_command(get_scenario("dpop-success"), url=url, lab=lab, now=now))
    fields = dict(dpop[i + 1].split(": ", 1) for i, a in enumerate(dpop) if a == "--header")
    token_iat = decode_unverified(fields["Authorization"].split(" ", 1)[1])[1]["iat"]
    proof_iat = decode_unverified(fields["DPoP"])[1]["iat"]
    assert token_iat == proof_iat == int(now.timestamp())
