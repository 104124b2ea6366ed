#!/usr/bin/env python3
"""Variant-calling benchmark: gmsaccel call against bcftools and freebayes, in one sitting.

On the shared K. pneumoniae data set (shared/bench/prepare.sh), with the same thread count for
every tool where the tool has threads, it measures:

1. diploid, on ``kp/bwa.bam`` (26x, planted diploid truth ``kp/truth.vcf.gz``):
   ``bcftools mpileup --threads N | bcftools call -mv``, ``freebayes`` (single-threaded; its
   calls evaluated at QUAL >= 20) and ``gmsaccel call --ploidy 2``, exactly as
   shared/bench/anchors.sh runs the peers;
2. haploid: a haploid truth set simulated once into the cache with ``dwgsim -H`` (the read
   parameters of prepare.sh, 200k pairs, fixed seed) and aligned with ``bwa mem | samtools sort``
   (not timed); ``bcftools call --ploidy 1`` against ``gmsaccel call --ploidy 1``;
3. with ``--own-bam``: ``gmsaccel call`` on the BAM that ``gmsaccel align`` makes of
   ``kp/reads_{1,2}.fq.gz`` (made once into the cache, not timed), against its calls on bwa.bam.

Accuracy is shared/bench/vcfeval.sh: SNV and indel precision, recall and F1 against the truth.
Wall time is ``time.perf_counter`` around the whole pipeline, the minimum of ``--repeats``; peak
RSS is the sum over the pipeline's concurrent processes of each one's peak (GNU time, or a Python
wrapper), the maximum over repeats (see bench_align.py, whose probe this script shares).

Usage: python3 benchmarks/bench_call.py --threads 2 [--skip-freebayes] [--out results.json]
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench_align import (
    BenchError,
    BestOfRepeats,
    Timer,
    common_parser,
    find_bench_kit,
    finish,
    fmt,
    machine_info,
    resolve_data,
    sitting_notes,
    tool_version,
    verdict,
)

# Every target compares gmsaccel with a figure measured in the same sitting.
TARGETS = {
    "snv_f1_vs_bcftools": "gmsaccel SNV F1 >= bcftools SNV F1 (diploid, bwa.bam)",
    "indel_f1_vs_bcftools": "gmsaccel indel F1 >= bcftools indel F1 (diploid, bwa.bam)",
    "wall_vs_bcftools": "gmsaccel wall <= bcftools wall / 3 (diploid, bwa.bam)",
    "haploid_f1": "gmsaccel --ploidy 1 SNV and indel F1 >= bcftools --ploidy 1's",
    "own_bam_f1": "gmsaccel call SNV and indel F1 on its own BAM >= on bwa.bam",
}
WALL_RATIO = 1.0 / 3.0
FREEBAYES_MIN_QUAL = 20  # as in anchors.sh
HAPLOID_PAIRS = 200_000
HAPLOID_SEED = 23  # prepare.sh uses 11 for the diploid set
# prepare.sh's dwgsim read parameters: 2x150, insert 400 +- 40, 0.1% mutations (15% indels),
# base errors 0.1-1% along the read, no random reads.
DWGSIM_READS = ["-1", "150", "-2", "150", "-d", "400", "-s", "40", "-r", "0.001", "-R", "0.15",
                "-X", "0.3", "-y", "0", "-e", "0.001-0.01", "-E", "0.001-0.01"]
KINDS = {"snps": "snv", "indels": "indel"}
LABEL = {"snv": "SNV", "indel": "indel"}


@dataclass
class CallRun(BestOfRepeats):
    """One caller on one BAM: the best of its repeats and the accuracy of its calls."""

    tool: str
    dataset: str
    walls_s: list[float] = field(default_factory=list)
    peak_rss_mb: float | None = None
    min_qual: float = 0
    # {"snv"|"indel": {"truth", "query", "tp", "precision", "recall", "f1"}}
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)
    vcf: str = ""


def parse_vcfeval(text: str) -> dict[str, dict[str, float]]:
    """vcfeval.sh's two lines (``snps truth N query N tp N precision P recall R F1 F``)."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] not in KINDS:
            continue
        pairs = dict(zip(words[1::2], words[2::2], strict=False))
        out[KINDS[words[0]]] = {k.lower(): float(v) for k, v in pairs.items()}
    missing = set(KINDS.values()) - out.keys()
    if missing:
        raise ValueError(f"vcfeval.sh output lacks {sorted(missing)}: {text!r}")
    return out


def vcfeval(kit: Path, ref: Path, truth: Path, query: Path,
            min_qual: float) -> dict[str, dict[str, float]]:
    p = subprocess.run(["bash", str(kit / "vcfeval.sh"), str(ref), str(truth), str(query),
                        format(min_qual, "g")], capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError(f"vcfeval.sh {query.name} failed (exit {p.returncode}):\n"
                         f"{p.stderr[-2000:]}")
    return parse_vcfeval(p.stdout)


def _fresh(dst: Path, *sources: Path) -> bool:
    return dst.exists() and all(dst.stat().st_mtime >= s.stat().st_mtime for s in sources)


def _sh(script: str, what: str) -> None:
    p = subprocess.run(["bash", "-c", "set -euo pipefail; " + script], capture_output=True,
                       text=True, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise BenchError(f"{what} failed (exit {p.returncode}):\n{p.stderr[-2000:]}")


def haploid_set(ref: Path, cache: Path, threads: int, pairs: int) -> tuple[Path, Path]:
    """A haploid read set simulated once into ``cache``: (sorted, indexed bwa BAM, truth VCF).

    Not timed. dwgsim -H plants homozygous mutations; its mutations VCF, sorted and indexed,
    is the truth.
    """
    d = cache / f"haploid_{pairs // 1000}k_z{HAPLOID_SEED}"
    bam, truth = d / "bwa.bam", d / "truth.vcf.gz"
    if _fresh(d / ".complete", ref):
        return bam, truth
    d.mkdir(parents=True, exist_ok=True)
    q = shlex.quote
    dw = d / "dw"
    print(f"[bench] simulating the haploid set into {d} (once, not timed)", file=sys.stderr,
          flush=True)
    _sh(shlex.join(["dwgsim", "-H", "-z", str(HAPLOID_SEED), "-N", str(pairs), *DWGSIM_READS,
                    "-o", "1", str(ref), str(dw)]) + " >/dev/null", "dwgsim -H")
    r1, r2 = d / "reads_1.fq.gz", d / "reads_2.fq.gz"
    Path(f"{dw}.bwa.read1.fastq.gz").replace(r1)
    Path(f"{dw}.bwa.read2.fastq.gz").replace(r2)
    _sh(f"bcftools sort -Oz -o {q(str(truth))} {q(f'{dw}.mutations.vcf')}"
        f" && bcftools index -f -t {q(str(truth))}", "bcftools sort (haploid truth)")
    _sh(f"bwa mem -t {threads} -v 1 -R '@RG\\tID:hap\\tSM:hap' {q(str(ref))} {q(str(r1))} "
        f"{q(str(r2))} | samtools sort -@{threads} -o {q(str(bam))} - "
        f"&& samtools index {q(str(bam))}", "bwa mem | samtools sort (haploid set)")
    (d / ".complete").touch()
    return bam, truth


class Bench:
    def __init__(self, args: argparse.Namespace, kit: Path, data: Path, work: Path,
                 cache: Path):
        self.args = args
        self.kit = kit
        self.data = data
        self.work = work
        self.cache = cache
        self.t = args.threads
        self.ref = data / "ref.fa"
        self.timer = Timer(args.rss, work / "logs", args.verbose)
        self.gms = shlex.split(args.gmsaccel)
        self.errors: list[str] = []

    def _measure(self, tool: str, dataset: str, truth: Path, min_qual: float, vcf: Path,
                 once: Callable[[], tuple[float, float]]) -> CallRun:
        run = CallRun(tool, dataset, min_qual=min_qual, vcf=str(vcf))
        peaks = []
        for _ in range(self.args.repeats):
            vcf.unlink(missing_ok=True)
            wall, peak = once()
            run.walls_s.append(wall)
            peaks.append(peak)
        run.peak_rss_mb = max(peaks)
        if not vcf.exists():
            raise BenchError(f"{tool} on {dataset} wrote no {vcf.name}")
        run.accuracy = vcfeval(self.kit, self.ref, truth, vcf, min_qual)
        return run

    def _vcf(self, key: str, dataset: str) -> Path:
        return self.work / f"{key}.{dataset}.vcf.gz"

    def bcftools(self, dataset: str, bam: Path, truth: Path, ploidy: int) -> CallRun:
        # anchors.sh: mpileup --threads N -Ou -f ref.fa bwa.bam | call -mv -Oz (call unthreaded)
        vcf = self._vcf(f"bcftools-p{ploidy}", dataset)
        mpileup = ["bcftools", "mpileup", "--threads", str(self.t), "-Ou", "-f", str(self.ref),
                   str(bam)]
        call = ["bcftools", "call", "-mv", "-Oz", "-o", str(vcf)]
        if ploidy == 1:
            call[2:2] = ["--ploidy", "1"]
        tool = "bcftools" if ploidy == 2 else "bcftools --ploidy 1"
        return self._measure(tool, dataset, truth, 0, vcf,
                             lambda: self.timer.run([mpileup, call], label=tool))

    def freebayes(self, dataset: str, bam: Path, truth: Path) -> CallRun:
        # anchors.sh: freebayes -f ref.fa bwa.bam | bgzip, evaluated at QUAL >= 20
        vcf = self._vcf("freebayes", dataset)
        fb = ["freebayes", "-f", str(self.ref), str(bam)]
        tool = f"freebayes (QUAL>={FREEBAYES_MIN_QUAL})"
        return self._measure(tool, dataset, truth, FREEBAYES_MIN_QUAL, vcf,
                             lambda: self.timer.run([fb, ["bgzip"]], stdout=vcf, label=tool))

    def gmsaccel(self, dataset: str, bam: Path, truth: Path, ploidy: int,
                 tool: str = "gmsaccel") -> CallRun:
        vcf = self._vcf(f"gmsaccel-p{ploidy}", dataset)
        argv = self.gms + ["call", "-f", str(self.ref), str(bam), "-o", str(vcf),
                           "-t", str(self.t), "--ploidy", str(ploidy), "-q"]
        return self._measure(tool, dataset, truth, 0, vcf,
                             lambda: self.timer.run([argv], label=f"{tool} call"))

    def own_bam(self) -> Path:
        """kp/reads_{1,2} aligned by ``gmsaccel align``, once per gmsaccel version (not timed)."""
        version = tool_version(self.gms + ["--version"])
        tag = hashlib.sha1(version.encode()).hexdigest()[:10]
        bam = self.cache / f"own.{tag}.bam"
        r1, r2 = self.data / "reads_1.fq.gz", self.data / "reads_2.fq.gz"
        if _fresh(bam.with_suffix(".complete"), r1, r2, self.ref):
            return bam
        gxi = self.cache / f"ref.{tag}.gxi"
        print(f"[bench] gmsaccel align of reads_{{1,2}} into {bam} ({version}; once, not timed)",
              file=sys.stderr, flush=True)
        q = shlex.join
        _sh(q(self.gms + ["index", str(self.ref), "-o", str(gxi), "-q"]), "gmsaccel index")
        _sh(q(self.gms + ["align", str(gxi), str(r1), str(r2), "-o", str(bam),
                          "-t", str(self.t), "-q"]), "gmsaccel align")
        if not any(p.exists() for p in (Path(f"{bam}.bai"), bam.with_suffix(".bai"))):
            _sh(q(["samtools", "index", str(bam)]), "samtools index (own BAM)")
        bam.with_suffix(".complete").write_text(version + "\n")
        return bam

    def attempt(self, what: str, fn: Callable[[], object]) -> object:
        """Runs one measurement; a failure is recorded and reported, and the rest goes on."""
        print(f"[bench] {what}", file=sys.stderr, flush=True)
        try:
            return fn()
        except (BenchError, subprocess.CalledProcessError, OSError, ValueError) as e:
            self.errors.append(f"{what}: {e}")
            print(f"[bench] FAILED {what}: {e}", file=sys.stderr, flush=True)
            return None


def _f1(run: dict[str, object] | None, kind: str) -> float | None:
    if not run:
        return None
    acc = run["accuracy"]
    return acc[kind]["f1"] if kind in acc else None  # type: ignore[index,operator]


def targets(datasets: dict[str, dict[str, object]]) -> list[dict[str, object]]:
    """Each target that has both sides measured: its figures and whether it is met."""
    out: list[dict[str, object]] = []
    dip = datasets.get("diploid", {}).get("runs", {})
    g, b = dip.get("gmsaccel"), dip.get("bcftools")  # type: ignore[union-attr]
    if g and b:
        for kind in ("snv", "indel"):
            gv, bv = _f1(g, kind), _f1(b, kind)
            out.append({"target": f"{kind}_f1_vs_bcftools", "gmsaccel": gv, "peer": bv,
                        "text": f"gmsaccel {LABEL[kind]} F1 "
                                f"{gv:.4f} vs bcftools {bv:.4f} (target >=)",
                        "pass": gv >= bv})  # type: ignore[operator]
        ratio = g["wall_s"] / b["wall_s"]  # type: ignore[operator]
        out.append({"target": "wall_vs_bcftools", "ratio": ratio,
                    "text": f"gmsaccel wall / bcftools wall: {g['wall_s']:.2f} / "
                            f"{b['wall_s']:.2f} s = {ratio:.3f} (target <= {WALL_RATIO:.3f})",
                    "pass": ratio <= WALL_RATIO})
    hap = datasets.get("haploid", {}).get("runs", {})
    g, b = hap.get("gmsaccel"), hap.get("bcftools")  # type: ignore[union-attr]
    if g and b:
        for kind in ("snv", "indel"):
            gv, bv = _f1(g, kind), _f1(b, kind)
            out.append({"target": "haploid_f1", "kind": kind, "gmsaccel": gv, "peer": bv,
                        "text": f"haploid {LABEL[kind]} F1: gmsaccel --ploidy 1 {gv:.4f} vs "
                                f"bcftools --ploidy 1 {bv:.4f} (target >=)",
                        "pass": gv >= bv})  # type: ignore[operator]
    own = datasets.get("own_bam", {}).get("runs", {}).get("gmsaccel")  # type: ignore[union-attr]
    g = dip.get("gmsaccel")  # type: ignore[union-attr]
    if own and g:
        for kind in ("snv", "indel"):
            ov, gv = _f1(own, kind), _f1(g, kind)
            out.append({"target": "own_bam_f1", "kind": kind, "own_bam": ov, "bwa_bam": gv,
                        "text": f"gmsaccel call {LABEL[kind]} F1 on its own BAM {ov:.4f} vs on "
                                f"bwa.bam {gv:.4f} (target >=)",
                        "pass": ov >= gv})  # type: ignore[operator]
    return out


def report(results: dict[str, object]) -> str:
    lines: list[str] = []
    for ds in results["datasets"].values():  # type: ignore[union-attr]
        lines.append(f"### {ds['title']}: {results['threads']} threads, "
                     f"min of {results['repeats']} run(s)\n")
        lines.append("| tool | wall s | peak RSS MB | SNV P | SNV R | SNV F1 | "
                     "indel P | indel R | indel F1 |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        if not ds["runs"]:
            lines.append("| (no successful runs) | | | | | | | | |")
        for r in ds["runs"].values():
            acc = r["accuracy"]
            cells = [fmt(acc.get(k, {}).get(m), ".4f")
                     for k in ("snv", "indel") for m in ("precision", "recall", "f1")]
            lines.append(f"| {r['tool']} | {r['wall_s']:.2f} | {fmt(r['peak_rss_mb'], '.0f')} | "
                         + " | ".join(cells) + " |")
        lines.append("")
    for t in results["targets"]:  # type: ignore[union-attr]
        lines.append(f"- {verdict(bool(t['pass']))}: {t['text']}")
    lines += sitting_notes(results)
    return "\n".join(lines).rstrip() + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = common_parser(__doc__.split("\n\n")[0],
                      "where the haploid set and own BAM are kept "
                      "(default: DATA/../bench_call-cache)",
                      "keep VCFs and logs here (default: a temporary directory)")
    p.add_argument("--skip-freebayes", action="store_true", help="leave out freebayes (slow)")
    p.add_argument("--skip-haploid", action="store_true", help="leave out the haploid set")
    p.add_argument("--own-bam", action="store_true",
                   help="also call on gmsaccel align's BAM of reads_{1,2} (made once, cached)")
    p.add_argument("--haploid-pairs", type=int, default=HAPLOID_PAIRS,
                   help=f"read pairs in the simulated haploid set ({HAPLOID_PAIRS})")
    args = p.parse_args(argv)
    if args.threads < 1 or args.repeats < 1 or args.haploid_pairs < 1:
        p.error("--threads, --repeats and --haploid-pairs must be >= 1")
    if args.skip_gmsaccel and args.own_bam:
        p.error("--own-bam needs gmsaccel (drop --skip-gmsaccel)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    kit = Path(args.kit).resolve() if args.kit else find_bench_kit(Path(__file__).resolve())
    need = ("ref.fa", "bwa.bam", "truth.vcf.gz")
    if args.own_bam:
        need += ("reads_1.fq.gz", "reads_2.fq.gz")
    kit, data = resolve_data(args, kit, need)
    tools = ["bcftools", "bgzip", "samtools"]
    tools += [] if args.skip_freebayes else ["freebayes"]
    tools += [] if args.skip_haploid else ["dwgsim", "bwa"]
    for tool in tools:
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found on PATH")
    cache = Path(args.cache) if args.cache else data.parent / "bench_call-cache"
    cache.mkdir(parents=True, exist_ok=True)
    run_gms = not args.skip_gmsaccel

    with tempfile.TemporaryDirectory(prefix="bench_call.") as tmp:
        work = Path(args.workdir).resolve() if args.workdir else Path(tmp)
        (work / "logs").mkdir(parents=True, exist_ok=True)
        b = Bench(args, kit, data, work, cache)
        machine = machine_info(b.gms if run_gms else None)
        for tool in ("bcftools", "freebayes", "dwgsim"):
            argv_v = [tool, "--version"] if tool != "dwgsim" else ["dwgsim", "-h"]
            machine[tool] = tool_version(argv_v)
        datasets: dict[str, dict[str, object]] = {}
        results: dict[str, object] = {
            "machine": machine, "threads": args.threads, "repeats": args.repeats,
            "rss_probe": b.timer.method, "data": str(data), "targets_def": TARGETS,
            "datasets": datasets, "targets": [], "errors": b.errors,
        }

        def measure(name: str, title: str, bam: Path, truth: Path,
                    jobs: list[tuple[str, Callable[[], object]]]) -> None:
            runs: dict[str, CallRun] = {}
            for key, fn in jobs:
                run = b.attempt(f"{key} on {name}", fn)
                if isinstance(run, CallRun):
                    runs[key] = run
            datasets[name] = {"title": title, "bam": str(bam), "truth": str(truth),
                              "runs": {k: r.as_dict() for k, r in runs.items()}}

        bam, truth = data / "bwa.bam", data / "truth.vcf.gz"
        jobs: list[tuple[str, Callable[[], object]]] = [
            ("bcftools", lambda: b.bcftools("diploid", bam, truth, 2))]
        if not args.skip_freebayes:
            jobs.append(("freebayes", lambda: b.freebayes("diploid", bam, truth)))
        if run_gms:
            jobs.append(("gmsaccel", lambda: b.gmsaccel("diploid", bam, truth, 2)))
        where = "kp/bwa.bam (26x)" if data.name == "kp" else f"{data}/bwa.bam"
        measure("diploid", f"Diploid, {where}", bam, truth, jobs)

        if not args.skip_haploid:
            hap = b.attempt("haploid set (simulated once, not timed)",
                            lambda: haploid_set(b.ref, cache, args.threads, args.haploid_pairs))
            if isinstance(hap, tuple):
                hbam, htruth = hap
                jobs = [("bcftools", lambda: b.bcftools("haploid", hbam, htruth, 1))]
                if run_gms:
                    jobs.append(("gmsaccel",
                                 lambda: b.gmsaccel("haploid", hbam, htruth, 1,
                                                    tool="gmsaccel --ploidy 1")))
                measure("haploid", f"Haploid, dwgsim -H {args.haploid_pairs:,} pairs "
                        f"(seed {HAPLOID_SEED}), bwa mem BAM", hbam, htruth, jobs)

        if args.own_bam:
            own = b.attempt("own BAM (gmsaccel align, once, not timed)", b.own_bam)
            if isinstance(own, Path):
                jobs = [("gmsaccel", lambda: b.gmsaccel("own_bam", own, truth, 2,
                                                        tool="gmsaccel (own BAM)"))]
                measure("own_bam", "Diploid, gmsaccel align's BAM of kp/reads_{1,2}", own,
                        truth, jobs)

        results["targets"] = targets(datasets)

    return finish(results, report, args.out)


if __name__ == "__main__":
    sys.exit(main())
