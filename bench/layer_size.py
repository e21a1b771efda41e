"""Build the Lambda layer with its Makefile, as `sam build` does (arm64, Python 3.12), and measure it.

Lambda allows 250 MB unzipped for a function and its layers together. Prints a table and, last,
`layer_mb_unzipped=… layer_mb_zipped=… limit_mb=250`; exits 1 when the layer is over the limit.
"""

from __future__ import annotations

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
        # the Makefile's own target, as sam build runs it: one definition of what the layer holds
        make = ["make", "--no-print-directory", "-C", str(LAYER), "build-HashcheckLayer"]
        subprocess.run([*make, f"ARTIFACTS_DIR={tmp}", f"PYTHON={sys.executable}"], check=True)
        target = Path(tmp) / "python"
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
