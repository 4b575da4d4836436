"""Generate the Python protobuf/gRPC code under libs/ from protos/, or check it is fresh.

`python scripts/protos.py` regenerates in place; `python scripts/protos.py --check`
generates into a temporary directory and exits 1 listing every file that differs from
the committed copy, so a contract change without regenerated code cannot land.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "libs"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(out: Path) -> list[Path]:
    """Run protoc for every contract; return the generated files relative to `out`."""
    sources = sorted(PROTOS.rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *(str(s) for s in sources),
    ]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    generated = [p.relative_to(out) for p in out.rglob("*") if p.name.endswith(GENERATED_SUFFIXES)]
    for rel in generated:
        # Generated packages need __init__.py so mypy and setuptools see plain packages.
        for parent in rel.parents:
            if parent != Path("."):
                (out / parent / "__init__.py").touch()
    return sorted(generated)


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        committed = sorted(p.relative_to(OUT) for p in OUT.rglob("*") if p.name.endswith(GENERATED_SUFFIXES))
        stale = [
            str(p) for p in fresh if not (OUT / p).exists() or not filecmp.cmp(Path(tmp) / p, OUT / p, shallow=False)
        ]
        extra = [str(p) for p in committed if p not in fresh]
    if stale or extra:
        print("generated protobuf code is stale; run `make protos` and commit:", file=sys.stderr)
        for name in stale + extra:
            print(f"  libs/{name}", file=sys.stderr)
        return 1
    print(f"generated protobuf code is fresh ({len(fresh)} files)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed code is stale")
    if parser.parse_args().check:
        return check()
    generate(OUT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
