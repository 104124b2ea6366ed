"""`gmsaccel demo`: the main job on bundled data. Simulates read pairs with planted variants from
the packaged phage lambda genome, aligns them to a sorted, indexed BAM, calls variants and
reports speed and accuracy (placement; SNV and indel precision/recall) against the truth."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pysam

from gmsaccel.align import Aligner, Index
from gmsaccel.evaluate import mapping_accuracy, variant_accuracy
from gmsaccel.simulate import simulate_demo


def run_demo(outdir: str | None = None, threads: int = 2, pairs: int = 20000,
             quiet: bool = False) -> int:
    def say(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr if quiet else sys.stdout, flush=True)

    with tempfile.TemporaryDirectory(prefix="gmsaccel-demo-") as tmp:
        work = Path(outdir) if outdir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        files = simulate_demo(work, n_pairs=pairs, seed=7)
        n_truth = sum(1 for _ in pysam.VariantFile(str(files.truth)))
        say(f"simulated {pairs:,} read pairs (2x150) from phage lambda NC_001416.1 with "
            f"{n_truth} planted variants in {time.monotonic() - t0:.1f} s -> {work}")
        t1 = time.monotonic()
        index = Index.build(files.ref)
        index.save(str(files.ref) + ".gxi")
        say(f"indexed {index.contigs[0].length:,} bp in {time.monotonic() - t1:.2f} s")
        bam = work / "demo.bam"
        aligner = Aligner(index, threads=threads)
        t2 = time.monotonic()
        stats = aligner.align_fastq(files.reads1, files.reads2, bam,
                                    read_group="@RG\\tID:demo\\tSM:demo",
                                    command_line=["gmsaccel", "demo"])
        wall = time.monotonic() - t2
        say(f"aligned {stats['reads']:,} reads in {wall:.2f} s "
            f"({stats['reads'] / max(wall, 1e-9):,.0f} reads/s, {threads} threads, SIMD "
            f"{aligner.simd}): {100 * stats['mapped'] / max(stats['reads'], 1):.2f}% mapped, "
            f"{100 * stats['properly_paired'] / max(stats['reads'], 1):.2f}% properly paired")
        model = stats["insert_model"]
        if model["valid"]:
            say(f"insert size {model['mean']:.1f} +- {model['sd']:.1f} (simulated 400 +- 40)")
        acc = mapping_accuracy(bam)
        say(f"placement vs truth: {100 * acc.mapped_fraction(20):.2f}% of reads at MAPQ>=20, "
            f"{100 * acc.wrong_fraction(20):.3f}% of those misplaced")
        pysam.samtools.quickcheck(str(bam))
        say(f"output: {bam} (+ .bai), passes samtools quickcheck")
        from gmsaccel.call import Caller, engine_available

        if not engine_available():
            say("variant calling: caller unavailable in this build")
            return 0
        t3 = time.monotonic()
        caller = Caller(files.ref, threads=threads, index=index)
        vcf = work / "demo.vcf.gz"
        vstats = caller.write_vcf(bam, vcf, command_line=["gmsaccel", "demo"])
        say(f"called {vstats['pass']:,} PASS variants in {time.monotonic() - t3:.2f} s -> {vcf}")
        acc = variant_accuracy(files.ref, files.truth, vcf)
        for kind, label in (("snv", "SNVs"), ("indel", "indels")):
            a = acc[kind]
            say(f"{label:6} vs planted truth: precision {a['precision']:.4f}  recall "
                f"{a['recall']:.4f}  F1 {a['f1']:.4f}  (truth {a['truth']}, called {a['query']},"
                f" matched {a['tp']})")
    return 0
