"""Install the Lambda layer as `sam build` would for arm64 / Python 3.12 and measure it.

Lambda allows 250 MB unzipped for a function and its layers together. Prints a table and, last,
`layer_mb_unzipped=… layer_mb_zipped=… limit_mb=250`; exits 1 when the layer is over the limit.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

LAYER = Path(__file__).resolve().parent.parent / "layers" / "hashcheck"
LIMIT_MB = 250


def size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "python"
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        platform = ["--platform", "manylinux_2_28_aarch64", "--platform", "manylinux2014_aarch64"]
        options = ["--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:"]
        subprocess.run(
            [*pip, *platform, *options, "--target", str(target), "-r", str(LAYER / "requirements.txt")], check=True
        )
        shutil.copytree(LAYER / "hashcheck", target / "hashcheck", ignore=shutil.ignore_patterns("__pycache__"))
        archive = Path(tmp) / "layer.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(target.rglob("*")):
                z.write(f, f.relative_to(tmp))
        top = sorted((size_mb(p) if p.is_dir() else p.stat().st_size / 1e6, p.name) for p in target.iterdir())
        for mb, name in top[-6:]:
            print(f"{name:<40} {mb:8.1f} MB")
        unzipped, zipped = size_mb(target), archive.stat().st_size / 1e6
    print(f"layer (arm64, Python 3.12): {unzipped:.1f} MB unzipped, {zipped:.1f} MB zipped, limit {LIMIT_MB} MB")
    print(f"layer_mb_unzipped={unzipped:.1f} layer_mb_zipped={zipped:.1f} limit_mb={LIMIT_MB}")
    return 0 if unzipped < LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
