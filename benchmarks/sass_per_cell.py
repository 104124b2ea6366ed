"""Static profile of the tiles kernels: sm_90 SASS instructions per DP cell, registers, spills.

No GPU needed: the kernels are compiled for sm_90 with nvcc and disassembled with cuobjdump
(from the CUDA toolkit, or `pip download nvidia-cuda-cuobjdump` and unzip it). A strip row is
kTileWidth (8) cells, so a row loop's instruction count / 8 is the issue-slot cost of a cell; the
smallest row loop of a kernel is its unmasked rows (cells strictly inside the band), the others
its band-edge rows. The query-N copy of the extension row (a rare branch) is compiled out of a
scratch copy of the sources so that the counts are those of the common path.

    python benchmarks/sass_per_cell.py [--cuobjdump PATH]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TILE_WIDTH = 8
QUERY_N_BRANCH = "if (qb == kBaseN) row_impl<kMasked, true>(c, r, qb);"
KERNELS = {"extension": "extend_kernel.cu", "haplotype": "haplotype_kernel.cu"}


def find_tool(name: str, given: str | None) -> str:
    path = given or shutil.which(name)
    if not path:
        for base in ("/usr/local/cuda/bin", "/opt/cuda/bin"):
            if (Path(base) / name).exists():
                path = str(Path(base) / name)
    if not path:
        sys.exit(f"{name} not found: install the CUDA toolkit or pass --{name} PATH")
    return path


def compile_kernel(nvcc: str, src_root: Path, name: str, out: Path) -> dict[str, tuple[int, int]]:
    """Compiles kernels/NAME for sm_90; returns {layout digit: (registers, spill bytes)}."""
    proc = subprocess.run(
        [nvcc, "-I", str(src_root / "csrc/include"), "-I", str(src_root / "kernels"), "-O3",
         "-std=c++17", "--generate-code=arch=compute_90,code=sm_90", "-Xptxas", "-v", "-c",
         str(src_root / "kernels" / name), "-o", str(out)],
        capture_output=True, text=True, check=True)
    usage, layout = {}, None
    for line in proc.stderr.splitlines():
        m = re.search(r"Compiling entry function '.*LayoutE(\d)E", line)
        if m:
            layout = m.group(1)
        m = re.search(r"(\d+) bytes spill stores", line)
        if m and layout is not None:
            spill = int(m.group(1))
        m = re.search(r"Used (\d+) registers", line)
        if m and layout is not None:
            usage[layout] = (int(m.group(1)), spill)
            layout = None
    return usage


def row_loops(cuobjdump: str, obj: Path, layout: str = "0") -> list[Counter]:
    """Instruction mixes of the loops of the kernel for `layout` that load and store an 8-byte
    edge record: the strip-row loops."""
    sass = subprocess.run([cuobjdump, "-sass", str(obj)], capture_output=True, text=True,
                          check=True).stdout
    loops = []
    for func in re.split(r"\n\s*Function : ", sass)[1:]:
        if f"LayoutE{layout}E" not in func.split("\n", 1)[0]:
            continue
        ins = [(int(m.group(1), 16), m.group(2).strip()) for m in
               re.finditer(r"/\*([0-9a-f]{4,})\*/\s+(.*?);", func)]
        at = {a: i for i, (a, _) in enumerate(ins)}
        for i, (a, text) in enumerate(ins):
            m = re.search(r"BRA.*0x([0-9a-f]+)", text)
            if not m or int(m.group(1), 16) >= a or int(m.group(1), 16) not in at:
                continue
            body = [t for _, t in ins[at[int(m.group(1), 16)]: i + 1]]
            has_edge = any("LDG.E.64" in t for t in body) and any("STG.E.64" in t for t in body)
            nested = sum("BRA" in t and "0x" in t for t in body) > 2
            if has_edge and not nested:
                loops.append(Counter(
                    (t.split()[1] if t.startswith("@") else t.split()[0]).split(".")[0]
                    for t in body))
    return loops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nvcc")
    ap.add_argument("--cuobjdump")
    args = ap.parse_args()
    nvcc = find_tool("nvcc", args.nvcc)
    cuobjdump = find_tool("cuobjdump", args.cuobjdump)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ROOT / "csrc", src / "csrc")
        shutil.copytree(ROOT / "kernels", src / "kernels")
        header = src / "csrc/include/gmsaccel/extend_tiled.hpp"
        text = header.read_text()
        if QUERY_N_BRANCH not in text:
            sys.exit("extend_tiled.hpp changed: update QUERY_N_BRANCH in this script")
        header.write_text(text.replace(QUERY_N_BRANCH, QUERY_N_BRANCH.replace(
            "qb == kBaseN", "false")))
        print("| kernel (tiles, sm_90) | registers | spill bytes | unmasked row: SASS/cell "
              "| band-edge rows: SASS/cell | most frequent |")
        print("| --- | ---: | ---: | ---: | ---: | --- |")
        for what, name in KERNELS.items():
            obj = Path(tmp) / f"{name}.o"
            regs, spill = compile_kernel(nvcc, src, name, obj)["0"]
            loops = sorted(row_loops(cuobjdump, obj), key=lambda c: sum(c.values()))
            if not loops:
                sys.exit(f"no strip-row loop found in {name}'s tiles kernel")
            per_cell = [sum(c.values()) / TILE_WIDTH for c in loops]
            edge = ", ".join(f"{x:.1f}" for x in per_cell[1:]) or "-"
            top = ", ".join(f"{op} {n}" for op, n in loops[0].most_common(5))
            print(f"| {what} | {regs} | {spill} | {per_cell[0]:.1f} | {edge} | {top} |")


if __name__ == "__main__":
    main()
