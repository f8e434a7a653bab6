"""Create the project's virtual environment, even where Debian's python3 lacks ``ensurepip``.

Debian splits ``venv``'s pip bootstrap into the ``python3-venv`` package. When it is missing we create the
environment without pip and install pip from its wheel on PyPI (the only network this needs), so the
README's two commands work on a machine that has nothing but Python and make.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.request
import venv
from pathlib import Path


def main(target: str) -> int:
    path = Path(target)
    try:
        venv.EnvBuilder(with_pip=True, clear=False).create(path)
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"venv with pip failed ({exc}); bootstrapping pip from PyPI", file=sys.stderr)
        venv.EnvBuilder(with_pip=False, clear=True).create(path)
        _bootstrap_pip(path / "bin" / "python")
    return 0


def _bootstrap_pip(python: Path) -> None:
    with urllib.request.urlopen("https://pypi.org/pypi/pip/json", timeout=60) as response:
        release = json.load(response)
    wheel = next(u for u in release["urls"] if u["filename"].endswith(".whl"))
    with tempfile.TemporaryDirectory() as tmp:
        wheel_path = Path(tmp) / wheel["filename"]
        urllib.request.urlretrieve(wheel["url"], wheel_path)  # noqa: S310
        # A pip wheel can run itself: python pip-*.whl/pip install pip
        command = [str(python), f"{wheel_path}/pip", "install", "--quiet", str(wheel_path)]
        subprocess.run(command, check=True)  # noqa: S603 - our own venv's python and the pip wheel


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else ".venv"))
