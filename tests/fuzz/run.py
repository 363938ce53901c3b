"""Run the fuzz targets under atheris, each for a bounded time: ``python -m tests.fuzz.run --seconds 60 [NAME...]``.

Needs the ``fuzz`` extra (``pip install -e '.[fuzz]'``, which ``make fuzz`` does). A crash prints the input that
caused it and leaves it in ``.fuzz/<name>/crash-*``; the corpus grows in ``.fuzz/<name>/corpus``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def targets() -> list[str]:
    return sorted(m.name.removeprefix("fuzz_") for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("fuzz_"))


def run_one(name: str, seconds: int) -> int:
    work = ROOT / ".fuzz" / name
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    module = importlib.import_module(f"tests.fuzz.fuzz_{name}")
    for i, seed in enumerate(getattr(module, "SEEDS", [])):
        (corpus / f"seed-{i}").write_bytes(seed)
    command = [sys.executable, "-m", f"tests.fuzz.fuzz_{name}", f"-max_total_time={seconds}",
               f"-artifact_prefix={work}/", "-print_final_stats=1", str(corpus)]
    print(f"fuzz {name}: {seconds} s ...", flush=True)
    return subprocess.run(command, cwd=ROOT).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=30, help="time per target (default 30)")
    parser.add_argument("names", nargs="*", help=f"targets to run (default all: {', '.join(targets())})")
    args = parser.parse_args(argv)
    names = args.names or targets()
    unknown = sorted(set(names) - set(targets()))
    if unknown:
        parser.error(f"unknown targets: {', '.join(unknown)}")
    failed = [name for name in names if run_one(name, args.seconds) != 0]
    print("fuzz: all targets clean" if not failed else f"fuzz: crashes in {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
