#!/usr/bin/env python3
"""Developer entry point that needs nothing but Python 3.11+:

    python3 dev.py demo    # the main job on its embedded default (see README)
    python3 dev.py test    # the test suite
    python3 dev.py lint    # ruff, and mypy over the library

Each creates .venv on first use and installs the project with its dev extras into it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".hashcheck-installed"


def ensure_venv() -> None:
    """Create .venv and (re)install the project whenever pyproject.toml changed since last time."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("creating .venv ...", file=sys.stderr)
        venv.create(VENV, with_pip=True)
    print("installing hashcheck and its dev dependencies into .venv ...", file=sys.stderr)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def run(*command: str) -> int:
    return subprocess.run(command, cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    task, rest = (argv[0], argv[1:]) if argv else ("", [])
    tasks = {
        "demo": lambda: run(str(BIN / "hashcheck"), "demo", *rest),
        "test": lambda: run(str(BIN / "python"), "-m", "pytest", *rest),
        "lint": lambda: (
            run(str(BIN / "ruff"), "check", ".")
            or run(str(BIN / "ruff"), "format", "--check", ".")
            or run(str(BIN / "mypy"))
        ),
    }
    if task not in tasks:
        print(__doc__, file=sys.stderr)
        return 2
    ensure_venv()
    return tasks[task]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
