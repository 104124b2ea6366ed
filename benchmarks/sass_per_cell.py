"""Static profile of the tiles kernels: sm_90 SASS instructions per DP cell, registers, spills.

No GPU needed: the kernels are compiled for sm_90 with nvcc and disassembled with cuobjdump
(from the CUDA toolkit, or `pip download nvidia-cuda-cuobjdump` and unzip it). A strip row is
kTileWidth (8) cells of each of the thread's jobs (two for tile pairs), so a row loop's
instruction count over its job-cells is the issue-slot cost of a cell; the smallest row loop of a
kernel is its unmasked rows (cells strictly inside the band), the others its band-edge rows.
"common path" leaves out what the loop's forward branches skip (the best-cell update, entered
only in rows that raise a job's best score); "all" counts every instruction of the loop. The
query-N copies of the extension rows (a rare branch) are compiled out of a scratch copy of the
sources so that the counts are those of the common rows.

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
# header -> the row's query-N branch, compiled out for the count
QUERY_N_BRANCHES = {
    "extend_tiled.hpp": "if (any_n) row_impl<kMasked, true>(c, r, q);",
}
# what: (source, kernel function name part, jobs per thread)
KERNELS = {
    "extension, tile pairs (16-bit, 2 jobs/thread)": ("extend_kernel.cu", "extend_pair_kernel", 2),
    "extension, tiles (32-bit)": ("extend_kernel.cu", "LayoutE0E", 1),
    "haplotype, tiles": ("haplotype_kernel.cu", "LayoutE0E", 1),
}


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
    """Compiles kernels/NAME for sm_90; returns {entry function: (registers, spill bytes)}."""
    proc = subprocess.run(
        [nvcc, "-I", str(src_root / "csrc/include"), "-I", str(src_root / "kernels"), "-O3",
         "-std=c++17", "--generate-code=arch=compute_90,code=sm_90", "-Xptxas", "-v", "-c",
         str(src_root / "kernels" / name), "-o", str(out)],
        capture_output=True, text=True, check=True)
    usage, func, spill = {}, None, 0
    for line in proc.stderr.splitlines():
        m = re.search(r"Compiling entry function '([^']+)'", line)
        if m:
            func = m.group(1)
        m = re.search(r"(\d+) bytes spill stores", line)
        if m:
            spill = int(m.group(1))
        m = re.search(r"Used (\d+) registers", line)
        if m and func is not None:
            usage[func] = (int(m.group(1)), spill)
            func = None
    return usage


def opcode(text: str) -> str:
    return (text.split()[1] if text.startswith("@") else text.split()[0]).split(".")[0]


def row_loops(cuobjdump: str, obj: Path, kernel: str) -> list[tuple[list[str], list[str]]]:
    """(every instruction, common path) of each loop of the kernel whose name contains `kernel`
    that loads and stores an 8-byte edge record: the strip-row loops."""
    sass = subprocess.run([cuobjdump, "-sass", str(obj)], capture_output=True, text=True,
                          check=True).stdout
    loops = []
    for func in re.split(r"\n\s*Function : ", sass)[1:]:
        if kernel not in func.split("\n", 1)[0]:
            continue
        ins = [(int(m.group(1), 16), m.group(2).strip()) for m in
               re.finditer(r"/\*([0-9a-f]{4,})\*/\s+(.*?);", func)]
        at = {a: i for i, (a, _) in enumerate(ins)}
        for i, (a, text) in enumerate(ins):
            m = re.search(r"BRA.*0x([0-9a-f]+)", text)
            if not m or int(m.group(1), 16) >= a or int(m.group(1), 16) not in at:
                continue
            start = at[int(m.group(1), 16)]
            body = ins[start: i + 1]
            texts = [t for _, t in body]
            has_edge = any("LDG.E.64" in t for t in texts) and any("STG.E.64" in t for t in texts)
            inner_loops = sum(1 for b, t in body[:-1] if (mm := re.search(r"BRA.*0x([0-9a-f]+)", t))
                              and int(mm.group(1), 16) < b)
            if not has_edge or inner_loops:
                continue
            skipped = set()  # what forward branches inside the loop jump over
            for b, t in body[:-1]:
                mm = re.search(r"BRA.*0x([0-9a-f]+)", t)
                if mm and b < int(mm.group(1), 16) <= a:
                    skipped.update(x for x, _ in body if b < x < int(mm.group(1), 16))
            common = [t for x, t in body if x not in skipped and opcode(t) not in ("BSSY", "BSYNC")]
            loops.append((texts, common))
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
        for name, branch in QUERY_N_BRANCHES.items():
            header = src / "csrc/include/gmsaccel" / name
            text = header.read_text()
            if branch not in text:
                sys.exit(f"{name} changed: update QUERY_N_BRANCHES in this script")
            cond = branch[branch.index("(") + 1: branch.index(")")]
            header.write_text(text.replace(branch, branch.replace(cond, "false", 1)))
        print("| kernel (sm_90) | registers | spill bytes | unmasked row: SASS per job-cell, "
              "common path (all) | band-edge rows: common path (all) | most frequent |")
        print("| --- | ---: | ---: | ---: | ---: | --- |")
        objs: dict[str, Path] = {}
        for what, (name, kernel, jobs) in KERNELS.items():
            obj = objs.get(name)
            if obj is None:
                obj = objs[name] = Path(tmp) / f"{name}.o"
                usage = compile_kernel(nvcc, src, name, obj)
                objs[name + ":usage"] = usage  # type: ignore[assignment]
            usage = objs[name + ":usage"]  # type: ignore[assignment]
            regs, spill = next(v for k, v in usage.items() if kernel in k)  # type: ignore[union-attr]
            loops = sorted(row_loops(cuobjdump, obj, kernel), key=lambda x: len(x[1]))
            if not loops:
                sys.exit(f"no strip-row loop found in {name}'s {kernel}")
            cells = TILE_WIDTH * jobs
            fmt = [f"{len(c) / cells:.1f} ({len(t) / cells:.1f})" for t, c in loops]
            top = ", ".join(f"{op} {n}" for op, n in
                            Counter(opcode(t) for t in loops[0][1]).most_common(5))
            print(f"| {what} | {regs} | {spill} | {fmt[0]} | {', '.join(fmt[1:]) or '-'} | {top} |")


if __name__ == "__main__":
    main()
