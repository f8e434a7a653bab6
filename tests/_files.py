"""File helpers the file-writing tests share: a file's mode, and a file a link attack would aim at."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def mode(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def victim_state(path: Path) -> tuple[bytes, int, int]:
    """A file someone else cares about, as a link attack would aim at it: (bytes, mode, owner)."""
    found = path.stat()
    return path.read_bytes(), stat.S_IMODE(found.st_mode), found.st_uid


def plant_victim(tmp_path: Path) -> Path:
    """A file of another user (when the tests run as root), mode 0640, that no lab write may touch."""
    victim = tmp_path / "elsewhere" / "victim"
    victim.parent.mkdir()
    victim.write_bytes(b"someone else's file\n")
    victim.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(victim, 65534, 65534)
    return victim
