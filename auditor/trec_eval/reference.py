"""Build the real C trec_eval from its source tarball, to use as an oracle (tests, benchmarks).

Nothing in an evaluation uses this module. The tarball kept in the repository is
``tests/data/trec_eval/trec_eval-f425365.tar.gz`` (usnistgov/trec_eval at f4253652, version
10.0-rc3, NIST's notice inside). The build uses the Makefile's own flags (no optimisation:
trec_eval's rbp reads two uninitialised doubles, and what it reads depends on the build).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TARBALL = Path(__file__).resolve().parents[2] / "tests" / "data" / "trec_eval" / "trec_eval-f425365.tar.gz"
TARBALL_SHA256 = "6fc14b67be68634b8cad602f9c81f01b57726af5ef72a49bbf7305832d040163"
VERSION = "10.0-rc3"


def c_compiler() -> str | None:
    """The C compiler to use (``$CC``, gcc, cc, clang), or None when there is none."""
    for cand in (os.environ.get("CC"), "gcc", "cc", "clang"):
        if cand and shutil.which(cand):
            return cand
    return None


def build(dest: str | os.PathLike, tarball: str | os.PathLike = TARBALL, optimize: bool = False) -> Path:
    """Unpack and compile trec_eval into ``dest``; returns the binary's path (reused when built).

    ``optimize``: add ``-O2`` (the benchmark's second C row). The oracle is the Makefile's build:
    with optimisation, rbp's uninitialised reads give another value (its summary line differs).
    Raises RuntimeError when no C compiler exists or the build fails.
    """
    dest = Path(dest)
    digest = hashlib.sha256(Path(tarball).read_bytes()).hexdigest()
    binary = dest / f"trec_eval-{digest[:12]}{'-O2' if optimize else ''}"
    if binary.exists():
        return binary
    cc = c_compiler()
    if cc is None:
        raise RuntimeError("no C compiler (gcc, cc or clang) on PATH")
    if optimize:
        dest = dest / "O2"
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        top = tar.getnames()[0].split("/")[0]
        tar.extractall(dest, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(dest)
    src = dest / top
    make = (src / "Makefile").read_text()
    srcs: list[str] = []
    for var in ("TOP_SRCS", "FORMAT_SRCS", "MEAS_SRCS"):
        m = re.search(rf"^{var}\s*=\s*((?:.*\\\n)*.*)$", make, re.M)
        if m:
            srcs += m.group(1).replace("\\\n", " ").split()
    if not srcs:
        raise RuntimeError("could not read the source list from trec_eval's Makefile")
    out = src / "trec_eval"
    flags = ["-g", "-I.", f'-DVERSIONID="{VERSION}"', "-w", *(["-O2"] if optimize else [])]

    def compile_one(name: str) -> subprocess.CompletedProcess:
        return subprocess.run([cc, *flags, "-c", name, "-o", name[:-2] + ".o"], cwd=src, capture_output=True,
                              text=True)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        done = list(pool.map(compile_one, srcs))
    bad = [p for p in done if p.returncode != 0]
    proc = bad[0] if bad else subprocess.run([cc, "-o", str(out), *(n[:-2] + ".o" for n in srcs), "-lm"], cwd=src,
                                             capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"building trec_eval failed: {proc.stderr[-2000:]}")
    tmp = binary.with_suffix(".tmp")
    shutil.copy2(out, tmp)
    os.replace(tmp, binary)
    return binary


def archive_file(name: str, tarball: str | os.PathLike = TARBALL) -> bytes:
    """A file of the source archive (e.g. ``test/out.test.meas_params``), without compiling anything."""
    with tarfile.open(tarball) as tar:
        top = tar.getnames()[0].split("/")[0]
        f = tar.extractfile(f"{top}/{name}")
        if f is None:
            raise FileNotFoundError(name)
        return f.read()
