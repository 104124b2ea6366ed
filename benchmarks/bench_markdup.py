#!/usr/bin/env python3
"""Duplicate-marking benchmark: gmsaccel align --mark-duplicates against the samtools pipeline
that peers use (minimap2 -ax sr | samtools fixmate -m | samtools sort | samtools markdup), in
one sitting, on a library with planted PCR duplicates.

The library is the shared data set's 100k-pair subset (shared/bench/prepare.sh) in which a
tenth of the molecules are copied one to three times under new names (``NAME_dupK``), each
copy with its base qualities shuffled (a copy sequenced again: same bases, other qualities),
and the pairs shuffled; it is made once in the cache. It measures:

1. wall time and peak RSS of ``gmsaccel align`` to a sorted, indexed BAM, with and without
   ``--mark-duplicates`` (what marking costs inside the aligner);
2. the same for minimap2 -ax sr (prebuilt .mmi) | fixmate -m | sort | markdup -m s + index;
3. ``samtools markdup -m s -c`` alone on gmsaccel's marked BAM (re-marking a finished BAM);
4. against the planted truth, for each tool: planted duplicates found (at most all but one per
   molecule), molecules left with no unmarked copy, chance duplicates (marks outside the planted
   sets: different molecules that share both ends, which every rule marks), and the share of
   molecules whose kept copy is the best by base-quality sum;
5. whether gmsaccel's flags equal samtools markdup -m s -c's on gmsaccel's own records.

Usage: python3 benchmarks/bench_markdup.py --threads 2 [--repeats 3] [--out results.json]
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shlex
import sys
import tempfile
from pathlib import Path

from bench_align import (
    BenchError,
    Timer,
    common_parser,
    find_bench_kit,
    fmt,
    machine_info,
)
from bench_align import resolve_data as resolve_kit_data

DUP_FRACTION = 0.10  # molecules that get copies
MAX_COPIES = 3
SEED = 29


def _read_fastq(path: Path) -> list[tuple[str, str, str]]:
    with gzip.open(path, "rt") as fh:
        lines = fh.read().splitlines()
    return [(lines[i][1:].split()[0], lines[i + 1], lines[i + 3]) for i in range(0, len(lines), 4)]


def _copy_name(name: str, k: int) -> str:
    """NAME_dupK, keeping a /1 or /2 mate suffix at the end."""
    stem, mate = (name[:-2], name[-2:]) if name[-2:] in ("/1", "/2") else (name, "")
    return f"{stem}_dup{k}{mate}"


def duplicated_library(data: Path, cache: Path) -> tuple[Path, Path]:
    """sub_1/sub_2 with planted PCR duplicates, made once in cache (not timed)."""
    out1, out2 = cache / "dup_1.fq.gz", cache / "dup_2.fq.gz"
    if out1.exists() and out2.exists():
        return out1, out2
    cache.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    r1, r2 = _read_fastq(data / "sub_1.fq.gz"), _read_fastq(data / "sub_2.fq.gz")
    pairs = list(zip(r1, r2, strict=True))
    extra = []
    for a, b in pairs:
        if rng.random() >= DUP_FRACTION:
            continue
        for k in range(rng.randint(1, MAX_COPIES)):
            qa, qb = list(a[2]), list(b[2])
            rng.shuffle(qa)
            rng.shuffle(qb)
            extra.append(((_copy_name(a[0], k), a[1], "".join(qa)),
                          (_copy_name(b[0], k), b[1], "".join(qb))))
    pairs += extra
    rng.shuffle(pairs)
    for path, end in ((out1, 0), (out2, 1)):
        tmp = path.with_suffix(".tmp")
        with gzip.open(tmp, "wt", compresslevel=1) as fh:
            fh.writelines(f"@{p[end][0]}\n{p[end][1]}\n+\n{p[end][2]}\n" for p in pairs)
        tmp.rename(path)
    return out1, out2


def _score(qual: list[int] | None) -> int:
    return sum(q for q in (qual or []) if q >= 15)


def score_marks(bam: Path) -> dict[str, float]:
    """Duplicate marks of a BAM against the planted molecules (names without _dupK)."""
    import pysam

    templates: dict[str, dict[str, object]] = {}
    with pysam.AlignmentFile(str(bam)) as f:
        for r in f:
            if r.is_secondary or r.is_supplementary:
                continue
            t = templates.setdefault(r.query_name, {"dup": False, "mapped": 0, "score": 0})
            t["dup"] = bool(t["dup"]) or r.is_duplicate
            t["mapped"] = int(t["mapped"]) + (not r.is_unmapped)
            t["score"] = int(t["score"]) + _score(r.query_qualities)
    molecules: dict[str, list[str]] = {}
    for name in templates:
        molecules.setdefault(name.split("_dup")[0], []).append(name)
    planted = found = lost = chance = best_kept = sets = 0
    for names in molecules.values():
        mapped = [n for n in names if templates[n]["mapped"] == 2]
        marked = [n for n in mapped if templates[n]["dup"]]
        if len(names) == 1:
            chance += len(marked)
            continue
        if len(mapped) < 2:
            continue
        sets += 1
        planted += len(mapped) - 1
        found += min(len(marked), len(mapped) - 1)
        kept = [n for n in mapped if not templates[n]["dup"]]
        lost += not kept
        best = max(int(templates[n]["score"]) for n in mapped)
        best_kept += any(int(templates[n]["score"]) == best for n in kept)
    return {
        "molecules_with_copies": sets,
        "planted_duplicates": planted,
        "found": found,
        "recall": found / planted if planted else 0.0,
        "molecules_lost": lost,
        "chance_duplicates": chance,
        "best_copy_kept": best_kept / sets if sets else 0.0,
        "marked_templates": sum(1 for t in templates.values() if t["dup"]),
    }


def flags(bam: Path) -> list[tuple[str, int]]:
    import pysam

    with pysam.AlignmentFile(str(bam)) as f:
        return [(r.query_name, r.flag) for r in f]


def main(argv: list[str] | None = None) -> int:
    p = common_parser(__doc__.split("\n\n")[0],
                      "where the duplicated library and the .mmi are kept "
                      "(default: DATA/../bench_markdup-cache)",
                      "keep BAMs and logs here (default: a temporary directory)")
    args = p.parse_args(argv)
    kit = Path(args.kit).resolve() if args.kit else find_bench_kit(Path(__file__).resolve())
    kit, data = resolve_kit_data(args, kit)
    cache = Path(args.cache) if args.cache else data.parent / "bench_markdup-cache"
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_markdup."))
    work.mkdir(parents=True, exist_ok=True)
    gms = shlex.split(args.gmsaccel)
    t = str(args.threads)
    timer = Timer(args.rss, work, args.verbose)
    machine = machine_info(gms)

    print("[bench] planting duplicates (not timed)", file=sys.stderr)
    r1, r2 = duplicated_library(data, cache)
    ref = data / "ref.fa"
    gxi, mmi = cache / "ref.gxi", cache / "ref.mmi"
    if not gxi.exists():
        timer.run([gms + ["index", str(ref), "-o", str(gxi)]], label="gmsaccel index")
    if not mmi.exists():
        timer.run([["minimap2", "-x", "sr", "-d", str(mmi), str(ref)]], label="minimap2 index")

    runs: dict[str, dict[str, object]] = {}

    def measure(name: str, pipeline: list[list[str]], then: list[list[str]], out: Path) -> None:
        walls, peak = [], 0.0
        for _ in range(max(1, args.repeats)):
            wall, rss = timer.run(pipeline, then=then, label=name)
            walls.append(wall)
            peak = max(peak, rss)
        runs[name] = {"wall_s": min(walls), "walls_s": walls, "peak_rss_mb": peak,
                      "bam": str(out)}
        print(f"[bench] {name}: {min(walls):.2f} s", file=sys.stderr)

    errors = []
    g_marked, g_plain = work / "gmsaccel.md.bam", work / "gmsaccel.bam"
    mm = work / "minimap2.md.bam"
    try:
        if not args.skip_gmsaccel:
            measure("gmsaccel align --mark-duplicates",
                    [gms + ["align", str(gxi), str(r1), str(r2), "-o", str(g_marked), "-t", t,
                            "-q", "--mark-duplicates"]], [], g_marked)
            measure("gmsaccel align",
                    [gms + ["align", str(gxi), str(r1), str(r2), "-o", str(g_plain), "-t", t,
                            "-q"]], [], g_plain)
        measure("minimap2 -> fixmate -m -> sort -> markdup -m s",
                [["minimap2", "-ax", "sr", "-t", t, str(mmi), str(r1), str(r2)],
                 ["samtools", "fixmate", "-m", "-u", "-", "-"],
                 ["samtools", "sort", "-u", "-@", t, "-T", str(work / "sort"), "-"],
                 ["samtools", "markdup", "-m", "s", "-@", t, "-T", str(work / "md"), "-",
                  str(mm)]],
                [["samtools", "index", str(mm)]], mm)
        if not args.skip_gmsaccel:
            again = work / "samtools.remark.bam"
            measure("samtools markdup -m s -c (on gmsaccel's BAM)",
                    [["samtools", "markdup", "-m", "s", "-c", "-@", t, "-T", str(work / "re"),
                      str(g_marked), str(again)]], [], again)
    except BenchError as e:
        errors.append(str(e))

    for name, run in runs.items():
        if "markdup" in name or "mark-duplicates" in name:
            run["truth"] = score_marks(Path(str(run["bam"])))
    same = None
    if "gmsaccel align --mark-duplicates" in runs and not errors:
        same = flags(g_marked) == flags(work / "samtools.remark.bam")

    lines = [f"### Duplicate marking, 2x150 pairs with planted copies, {args.threads} threads, "
             f"min of {max(1, args.repeats)} run(s)", "",
             "| tool | wall s | peak RSS MB | planted dups found | molecules lost | "
             "chance dups | best copy kept % |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, run in runs.items():
        tr = run.get("truth") or {}
        lines.append(f"| {name} | {run['wall_s']:.2f} | {run['peak_rss_mb']:.0f} | "
                     f"{fmt(tr.get('found'), ',')} / {fmt(tr.get('planted_duplicates'), ',')} | "
                     f"{fmt(tr.get('molecules_lost'), ',')} | "
                     f"{fmt(tr.get('chance_duplicates'), ',')} | "
                     f"{fmt(100 * tr['best_copy_kept'] if tr else None, '.1f')} |")
    lines.append("")
    g = runs.get("gmsaccel align --mark-duplicates")
    plain = runs.get("gmsaccel align")
    peer = runs.get("minimap2 -> fixmate -m -> sort -> markdup -m s")
    if g and plain:
        lines.append(f"- marking inside the aligner: {g['wall_s']:.2f} s against "
                     f"{plain['wall_s']:.2f} s without ({g['wall_s'] / plain['wall_s']:.3f}x)")
    if g and peer:
        lines.append(f"- gmsaccel align --mark-duplicates / minimap2+fixmate+sort+markdup wall: "
                     f"{g['wall_s'] / peer['wall_s']:.3f}")
    if same is not None:
        lines.append(f"- gmsaccel's flags equal samtools markdup -m s -c's on the same records: "
                     f"{'yes' if same else 'NO'}")
    load = machine["loadavg_start"][0]  # type: ignore[index]
    if load > 0.5 * (os.cpu_count() or 1):
        lines.append(f"- WARNING: 1-min load average {load:.1f} at the start: compare ratios")
    for e in errors:
        lines.append(f"- ERROR: {e.splitlines()[0]}")
    print("\n".join(lines))
    if args.out:
        Path(args.out).write_text(json.dumps({"machine": machine, "runs": runs,
                                              "flags_equal_samtools": same,
                                              "errors": errors}, indent=1) + "\n")
    return 1 if errors or same is False else 0


if __name__ == "__main__":
    sys.exit(main())
