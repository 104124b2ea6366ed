#!/usr/bin/env python3
"""Somatic-calling benchmark: gmsaccel call --somatic against bcftools and freebayes, one sitting.

On a simulated tumour/normal pair with a known somatic truth (somatic_sample.py; by default on
the shared K. pneumoniae genome: 30x normal, 60x tumour at purity 0.6, somatic variants at
expected allele fractions 0.30, 0.15, 0.08 and 0.04), built once into the cache, it:

1. aligns both samples once, not timed: ``bwa mem -R '@RG\\tID:normal\\tSM:NORMAL' | samtools
   sort`` and ``samtools index`` (and the same for TUMOUR); with ``--own-bam`` also ``gmsaccel
   align``;
2. times, with the same thread count where the tool has threads, the minimum of ``--repeats``:
   - ``gmsaccel call -f REF --somatic --normal normal.bam tumour.bam -o OUT -t N -q`` (its PASS
     records are its somatic calls);
   - ``bcftools mpileup -a AD,DP tumour.bam normal.bam | bcftools call -mv``, then germline
     subtraction: records where TUMOUR's genotype has an alternate allele and NORMAL's is 0/0;
   - ``freebayes --pooled-continuous --min-alternate-fraction 0.03 --min-alternate-count 2
     tumour.bam normal.bam`` (single-threaded; run ``--freebayes-repeats`` times, default once),
     then, atomised (``bcftools norm -a -m-any``), the alleles with QUAL >= 20, no alternate
     observation in NORMAL and >= 2 in TUMOUR;
   the peers' filters (a second or two) are not timed; with ``--tumour-only`` also the tumour
   alone: ``gmsaccel call --somatic tumour.bam`` without and with ``--germline-resource
   population-v2.vcf.gz`` (somatic_sample.py's simulated population resource), and ``bcftools
   mpileup tumour.bam | bcftools call -mv`` less the calls whose allele the resource holds at
   AF > 0.001 (``bcftools isec -C``); with ``--pipeline`` also the whole job from FASTQ:
   ``gmsaccel run --somatic`` (both alignments, sorted, indexed, duplicates marked, and the
   somatic VCF) against ``bwa mem | samtools sort`` and ``samtools index`` of each sample then
   bcftools' germline subtraction, both timed whole (bwa's and gmsaccel's indexes made before);
   with ``--tumour-in-normal S`` also against a normal holding the tumour's cells (bwa's
   normal BAM with a share S of its reads replaced by the tumour's, ``samtools view -s`` on each
   BAM by read name, merged into the normal's read group, made once; its somatic alleles show
   at S times their tumour fraction): ``gmsaccel call --somatic`` as is, and with
   ``--tumour-in-normal auto``, and bcftools' germline subtraction;
3. scores each caller's somatic calls with shared/bench/vcfeval.sh against the somatic truth
   (SNV and indel precision, recall, F1), against the truth of each VAF level (recall: the true
   positives there over the level's variants), and against the germline truth (its true
   positives are germline variants reported as somatic: "germline leaks").

Wall time and peak RSS are measured as in bench_align.py (its probe is shared).

Usage: python3 benchmarks/bench_somatic.py --threads 2 [--skip-freebayes] [--out results.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pysam
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
)
from bench_call import FREEBAYES_MIN_QUAL, _fresh, _sh, vcfeval

REPO = Path(__file__).resolve().parents[1]
DEFAULT_GMSACCEL = f"env PYTHONPATH={REPO / 'src'} python3 -m gmsaccel"
# freebayes' low-fraction mode, and what a call needs to count as somatic
FREEBAYES_ARGS = ["--pooled-continuous", "--min-alternate-fraction", "0.03",
                  "--min-alternate-count", "2"]
FREEBAYES_MIN_TUMOUR_AO = 2
# tumour-only bcftools: alleles more common than this in the population resource are germline
BCFTOOLS_MAX_POPULATION_AF = 1e-3
KINDS = ("snv", "indel")


@dataclass
class SomaticRun(BestOfRepeats):
    """One caller on the pair: the best of its repeats and the accuracy of its somatic calls."""

    tool: str
    walls_s: list[float] = field(default_factory=list)
    peak_rss_mb: float | None = None
    # {"snv"|"indel": {"truth", "query", "tp", "precision", "recall", "f1"}}
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)
    # one per VAF level, clonal first: {"level", "vaf", "truth", "tp", "recall", "snv", "indel"}
    levels: list[dict[str, object]] = field(default_factory=list)
    # germline truth variants among the somatic calls: {"snv", "indel", "total"}
    germline_leaks: dict[str, int] = field(default_factory=dict)
    raw_vcf: str = ""
    vcf: str = ""
    estimate: dict | None = None  # --tumour-in-normal auto's estimate


def split_truth_by_level(truth: Path, out_dir: Path, n_levels: int) -> list[Path]:
    """One truth VCF per INFO/LEVEL (BGZF + tabix), made once beside the sample."""
    paths = [out_dir / f"somatic.level{k}.vcf.gz" for k in range(n_levels)]
    if all(_fresh(p, truth) for p in paths):
        return paths
    with pysam.VariantFile(os.fspath(truth)) as src:
        outs = [pysam.VariantFile(os.fspath(p), "wz", header=src.header) for p in paths]
        try:
            for rec in src:
                outs[int(rec.info["LEVEL"])].write(rec)
        finally:
            for o in outs:
                o.close()
    for p in paths:
        pysam.tabix_index(os.fspath(p), preset="vcf", force=True)
    return paths


def sample_tag(args: argparse.Namespace) -> str:
    tag = f"sample-s{args.seed}-p{args.purity:g}-r{args.somatic_rate:g}"
    if args.normal_pairs:
        tag += f"-n{args.normal_pairs}"
    if args.tumour_pairs:
        tag += f"-t{args.tumour_pairs}"
    return tag


def _samples(vcf: Path) -> list[str]:
    with pysam.VariantFile(os.fspath(vcf)) as fh:
        return list(fh.header.samples)


class Bench:
    def __init__(self, args: argparse.Namespace, kit: Path, sdir: Path, info: dict[str, object],
                 work: Path, cache: Path):
        self.args = args
        self.kit = kit
        self.sdir = sdir
        self.info = info
        self.work = work
        self.cache = cache
        self.t = args.threads
        self.ref = (sdir / "ref.fa").resolve()
        self.timer = Timer(args.rss, work / "logs", args.verbose)
        self.gms = shlex.split(args.gmsaccel)
        self.errors: list[str] = []
        self.prep: dict[str, float] = {}
        n_levels = len(info["levels"])  # type: ignore[arg-type]
        self.level_truths = split_truth_by_level(sdir / "somatic.vcf.gz", sdir, n_levels)

    # ---------------------------------------------------------------- alignment (not timed)

    def bwa_reference(self) -> Path:
        """A reference path with bwa's index beside it: the sample's (resolved) reference when
        prepare.sh indexed it, else a copy indexed once in the cache."""
        if Path(f"{self.ref}.bwt").exists() and _fresh(Path(f"{self.ref}.bwt"), self.ref):
            return self.ref
        d = self.cache / "bwa"
        d.mkdir(parents=True, exist_ok=True)
        ref = d / "ref.fa"
        if not _fresh(d / ".complete", self.ref):
            print(f"[bench] bwa index of {self.ref} into {d} (once, not timed)", file=sys.stderr,
                  flush=True)
            shutil.copyfile(self.ref, ref)
            _sh(shlex.join(["bwa", "index", str(ref)]) + " 2>/dev/null", "bwa index")
            (d / ".complete").touch()
        return ref

    def bwa_bam(self, name: str, sm: str) -> Path:
        """``{name}.bwa.bam`` of the sample's reads, made once (not timed)."""
        bam = self.sdir / f"{name}.bwa.bam"
        r1, r2 = self.sdir / f"{name}_1.fq.gz", self.sdir / f"{name}_2.fq.gz"
        done = bam.with_suffix(".complete")
        if bam.exists() and _fresh(done, r1, r2, bam):
            return bam
        print(f"[bench] bwa mem | samtools sort of the {name} reads into {bam} (once, not timed)",
              file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        _sh(self._bwa_sort(name, sm, bam), f"bwa mem | samtools sort ({name})")
        self.prep[f"bwa mem | samtools sort + index, {name}"] = time.perf_counter() - t0
        done.write_text(f"bwa mem -R @RG\\tID:{name}\\tSM:{sm}\n")
        return bam

    def _bwa_sort(self, name: str, sm: str, bam: Path) -> str:
        """The shell command aligning a sample's reads with bwa mem into a sorted, indexed
        BAM."""
        q = shlex.quote
        rg = q(f"@RG\\tID:{name}\\tSM:{sm}")
        r1, r2 = map(q, self._reads(name))
        return (f"bwa mem -t {self.t} -v 1 -R {rg} {q(str(self.bwa_reference()))} {r1} {r2} "
                f"| samtools sort -@{self.t} -o {q(str(bam))} - && samtools index {q(str(bam))}")

    def _reads(self, name: str) -> tuple[str, str]:
        return str(self.sdir / f"{name}_1.fq.gz"), str(self.sdir / f"{name}_2.fq.gz")

    def _saved_index(self) -> Path:
        """gmsaccel's saved index of the reference, made once per gmsaccel version."""
        tag = hashlib.sha1(tool_version(self.gms + ["--version"]).encode()).hexdigest()[:10]
        gxi = self.cache / f"ref.{tag}.gxi"
        if not _fresh(gxi, self.ref):
            _sh(shlex.join(self.gms + ["index", str(self.ref), "-o", str(gxi), "-q"]),
                "gmsaccel index")
        return gxi

    def own_bam(self, name: str, sm: str) -> Path:
        """``gmsaccel align`` of the sample's reads, once per gmsaccel version (not timed)."""
        version = tool_version(self.gms + ["--version"])
        tag = hashlib.sha1(version.encode()).hexdigest()[:10]
        bam = self.sdir / f"{name}.own.{tag}.bam"
        r1, r2 = self.sdir / f"{name}_1.fq.gz", self.sdir / f"{name}_2.fq.gz"
        done = bam.with_suffix(".complete")
        if bam.exists() and _fresh(done, r1, r2, self.ref, bam):
            return bam
        gxi = self._saved_index()
        q = shlex.join
        print(f"[bench] gmsaccel align of the {name} reads into {bam} ({version}; once, not "
              "timed)", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        _sh(q(self.gms + ["align", str(gxi), str(r1), str(r2), "-o", str(bam),
                          "-R", f"@RG\\tID:{name}\\tSM:{sm}", "-t", str(self.t), "-q"]),
            f"gmsaccel align ({name})")
        if not any(p.exists() for p in (Path(f"{bam}.bai"), bam.with_suffix(".bai"))):
            _sh(q(["samtools", "index", str(bam)]), f"samtools index ({name}, own BAM)")
        self.prep[f"gmsaccel align, {name}"] = time.perf_counter() - t0
        done.write_text(version + "\n")
        return bam

    # ---------------------------------------------------------------- scoring

    def score(self, run: SomaticRun, vcf: Path) -> None:
        """Somatic accuracy, recall per VAF level and germline leaks of the PASS calls in
        ``vcf`` (vcfeval.sh keeps PASS/'.' records with an alternate genotype somewhere)."""
        ref = self.ref
        run.accuracy = vcfeval(self.kit, ref, self.sdir / "somatic.vcf.gz", vcf, 0)
        for k, (truth, lv) in enumerate(zip(self.level_truths, self.info["levels"],  # type: ignore[call-overload]
                                            strict=True)):
            acc = vcfeval(self.kit, ref, truth, vcf, 0)
            t = sum(int(acc[kind]["truth"]) for kind in KINDS)
            tp = sum(int(acc[kind]["tp"]) for kind in KINDS)
            run.levels.append({"level": k, "vaf": lv["vaf"], "truth": t, "tp": tp,
                               "recall": tp / t if t else None,
                               **{kind: {"truth": int(acc[kind]["truth"]),
                                         "tp": int(acc[kind]["tp"])} for kind in KINDS}})
        germ = vcfeval(self.kit, ref, self.sdir / "germline.vcf.gz", vcf, 0)
        leaks = {kind: int(germ[kind]["tp"]) for kind in KINDS}
        run.germline_leaks = {**leaks, "total": sum(leaks.values())}

    def _measure(self, tool: str, raw: Path, repeats: int,
                 once: Callable[[], tuple[float, float]],
                 somatic: Callable[[Path], Path] | None = None) -> SomaticRun:
        run = SomaticRun(tool, raw_vcf=str(raw))
        peaks = []
        for _ in range(repeats):
            raw.unlink(missing_ok=True)
            wall, peak = once()
            run.walls_s.append(wall)
            peaks.append(peak)
        run.peak_rss_mb = max(peaks)
        if not raw.exists():
            raise BenchError(f"{tool} wrote no {raw.name}")
        vcf = somatic(raw) if somatic else raw
        run.vcf = str(vcf)
        self.score(run, vcf)
        return run

    # ---------------------------------------------------------------- callers

    def gmsaccel(self, tumour: Path, normal: Path, key: str = "gmsaccel",
                 tool: str = "gmsaccel", extra: Sequence[str] = ()) -> SomaticRun:
        vcf = self.work / f"{key}.vcf.gz"
        argv = self.gms + ["call", "-f", str(self.ref), "--somatic", "--normal", str(normal),
                           str(tumour), "-o", str(vcf), "-t", str(self.t), "-q", *extra]
        return self._measure(tool, vcf, self.args.repeats,
                             lambda: self.timer.run([argv], label=f"{tool} call --somatic"))

    def tin_normal_bam(self, share: float) -> Path:
        """bwa's normal BAM with ``share`` of its reads the tumour's (pairs kept by read name:
        ``samtools view -s``), every read in the normal's read group: made once, not timed."""
        normal, tumour = self.bwa_bam("normal", "NORMAL"), self.bwa_bam("tumour", "TUMOUR")
        bam = self.sdir / f"normal.tin{share:g}.bwa.bam"
        done = bam.with_suffix(".complete")
        if bam.exists() and _fresh(done, normal, tumour, bam):
            return bam
        params = self.info["params"]  # type: ignore[index]
        from_tumour = share * params["normal_pairs"] / params["tumour_pairs"]
        if not 0 < share < 1 or from_tumour >= 1:
            raise BenchError(f"--tumour-in-normal {share:g}: the tumour has too few reads")
        q = shlex.quote

        def subsample(src: Path, seed: int, keep: float, dst: Path) -> str:
            return f"samtools view -u -s {seed}{f'{keep:.6f}'[1:]} {q(str(src))} -o {q(str(dst))}"

        parts = [self.work / "tin.normal.bam", self.work / "tin.tumour.bam"]
        header = self.work / "tin.header.sam"
        merged = self.work / "tin.merged.bam"
        _sh(f"{subsample(normal, 1, 1 - share, parts[0])} && "
            f"{subsample(tumour, 2, from_tumour, parts[1])} && "
            f"samtools view -H {q(str(normal))} > {q(str(header))} && "
            f"samtools merge -f -u -o - {q(str(parts[0]))} {q(str(parts[1]))} "
            f"| samtools addreplacerg -m overwrite_all -R normal -o {q(str(merged))} - && "
            f"samtools reheader {q(str(header))} {q(str(merged))} > {q(str(bam))} && "
            f"samtools index {q(str(bam))}", f"the normal with {share:g} tumour")
        for p in (*parts, header, merged):
            p.unlink(missing_ok=True)
        done.write_text(f"tumour in normal {share:g}\n")
        return bam

    def gmsaccel_tin(self, tumour: Path, normal: Path, auto: bool) -> SomaticRun:
        """gmsaccel on the pair whose normal holds tumour cells: as is, or with
        --tumour-in-normal auto (its estimate kept as run.estimate)."""
        key = "gmsaccel-tin" + ("-auto" if auto else "")
        tool = "gmsaccel" + (" --tumour-in-normal auto" if auto else "") + \
            ", normal with tumour"
        metrics = self.work / f"{key}.json"
        extra = ["--metrics", str(metrics), "--tumour-in-normal", "auto"] if auto else []
        run = self.gmsaccel(tumour, normal, key, tool, extra)
        if auto:
            run.estimate = json.loads(metrics.read_text()).get("tumour_in_normal_estimate")
        return run

    def gmsaccel_tumour_only(self, tumour: Path, resource: Path | None) -> SomaticRun:
        key = "gmsaccel-tumour-only" + ("-resource" if resource else "")
        tool = "gmsaccel tumour-only" + (" + germline resource" if resource else "")
        vcf = self.work / f"{key}.vcf.gz"
        argv = self.gms + ["call", "-f", str(self.ref), "--somatic", str(tumour), "-o", str(vcf),
                           "-t", str(self.t), "-q"]
        if resource:
            argv += ["--germline-resource", str(resource)]
        return self._measure(tool, vcf, self.args.repeats,
                             lambda: self.timer.run([argv], label=tool))

    def bcftools_tumour_only(self, tumour: Path, resource: Path) -> SomaticRun:
        """bcftools on the tumour alone, then the population's common alleles subtracted (as
        tumour-only pipelines without a somatic caller do): calls whose allele the resource
        holds at AF > BCFTOOLS_MAX_POPULATION_AF are dropped."""
        raw = self.work / "bcftools-tumour-only.raw.vcf.gz"
        mpileup = ["bcftools", "mpileup", "-a", "AD,DP", "-f", str(self.ref), str(tumour),
                   "--threads", str(self.t), "-Ou"]
        call = ["bcftools", "call", "-mv", "-Oz", "-o", str(raw)]

        def somatic(raw: Path) -> Path:
            q = shlex.quote
            split = self._filter(raw, self.work / "bcftools-tumour-only.split.vcf.gz",
                                 'GT="alt"', "bcftools view (tumour-only)")
            common = self.work / "population.common.vcf.gz"
            _sh(f"bcftools view -i {q(f'INFO/AF>{BCFTOOLS_MAX_POPULATION_AF:g}')} "
                f"{q(str(resource))} -Oz -o {q(str(common))} "
                f"&& bcftools index -f -t {q(str(common))}", "bcftools view (common alleles)")
            out = self.work / "bcftools-tumour-only.somatic.vcf.gz"
            _sh(f"bcftools isec -C -w1 {q(str(split))} {q(str(common))} -Oz -o {q(str(out))} "
                f"&& bcftools index -f -t {q(str(out))}", "bcftools isec (resource subtraction)")
            return out

        return self._measure(f"bcftools tumour-only - resource AF > "
                             f"{BCFTOOLS_MAX_POPULATION_AF:g}", raw, self.args.repeats,
                             lambda: self.timer.run([mpileup, call], label="bcftools"), somatic)

    def _filter(self, raw: Path, out: Path, expr: str, what: str) -> Path:
        """``raw`` split into biallelic records, those matching ``expr`` kept (not timed)."""
        q = shlex.quote
        _sh(f"bcftools norm -m-any -f {q(str(self.ref))} {q(str(raw))} -Ou 2>/dev/null "
            f"| bcftools view -i {q(expr)} -Oz -o {q(str(out))} "
            f"&& bcftools index -f -t {q(str(out))}", what)
        return out

    def _order(self, raw: Path) -> tuple[int, int]:
        samples = _samples(raw)
        if "TUMOUR" not in samples or "NORMAL" not in samples:
            raise BenchError(f"{raw.name}: samples {samples}, expected TUMOUR and NORMAL")
        return samples.index("TUMOUR"), samples.index("NORMAL")

    def bcftools(self, tumour: Path, normal: Path, key: str = "bcftools",
                 tool: str = "bcftools (germline subtraction)") -> SomaticRun:
        raw = self.work / f"{key}.raw.vcf.gz"
        mpileup = ["bcftools", "mpileup", "-a", "AD,DP", "-f", str(self.ref), str(tumour),
                   str(normal), "--threads", str(self.t), "-Ou"]
        call = ["bcftools", "call", "-mv", "-Oz", "-o", str(raw)]

        return self._measure(tool, raw, self.args.repeats,
                             lambda: self.timer.run([mpileup, call], label="bcftools"),
                             lambda raw: self._subtract(raw, f"{key}.somatic.vcf.gz"))

    def _subtract(self, raw: Path, name: str) -> Path:
        """bcftools' somatic calls by germline subtraction: records with an alternate allele
        in TUMOUR and 0/0 in NORMAL, into work/name."""
        t, n = self._order(raw)
        return self._filter(raw, self.work / name, f'GT[{t}]="alt" && GT[{n}]="RR"',
                            "bcftools view (somatic)")

    def freebayes(self, tumour: Path, normal: Path) -> SomaticRun:
        raw = self.work / "freebayes.raw.vcf.gz"
        fb = ["freebayes", "-f", str(self.ref), *FREEBAYES_ARGS, str(tumour), str(normal)]

        def somatic(raw: Path) -> Path:
            t, n = self._order(raw)
            atoms = self.work / "freebayes.atoms.vcf.gz"
            q = shlex.quote
            _sh(f"bcftools norm -a -m-any -f {q(str(self.ref))} {q(str(raw))} -Oz "
                f"-o {q(str(atoms))} 2>/dev/null && bcftools index -f -t {q(str(atoms))}",
                "bcftools norm (freebayes atoms)")
            return self._freebayes_somatic(atoms, self.work / "freebayes.somatic.vcf.gz", t, n)

        return self._measure(f"freebayes (pooled-continuous, QUAL>={FREEBAYES_MIN_QUAL})", raw,
                             self.args.freebayes_repeats,
                             lambda: self.timer.run([fb, ["bgzip"]], stdout=raw,
                                                    label="freebayes"), somatic)

    @staticmethod
    def _freebayes_somatic(atoms: Path, dst: Path, t: int, n: int) -> Path:
        """The somatic calls among freebayes' atomised, biallelic records: QUAL >= 20, no
        alternate observation in NORMAL, at least FREEBAYES_MIN_TUMOUR_AO in TUMOUR.

        The observation counts are read from AD (freebayes' RO,AO), which ``bcftools norm -a``
        carries onto the atoms of a complex allele (AO it leaves as it was), summed over the
        records that atomise to the same allele. A complex allele thus cannot pass an atom the
        normal carries. Kept records are written as TUMOUR 0/1, NORMAL 0/0, FILTER PASS, since
        pooled-continuous genotypes do not say which sample carries an allele.
        """
        alt_obs: dict[tuple[str, int, str, str], list[int]] = {}
        first: dict[tuple[str, int, str, str], pysam.VariantRecord] = {}
        with pysam.VariantFile(os.fspath(atoms)) as fh:
            header = fh.header
            names = list(header.samples)
            contigs = {c: i for i, c in enumerate(header.contigs)}
            for rec in fh:
                alt = (rec.alts or ("*",))[0]
                if alt == "*" or rec.qual is None or rec.qual < FREEBAYES_MIN_QUAL:
                    continue
                key = (rec.chrom, rec.pos, rec.ref, alt)
                obs = alt_obs.setdefault(key, [0, 0])
                for slot, idx in enumerate((t, n)):
                    ad = rec.samples[names[idx]].get("AD") or ()
                    obs[slot] += ad[1] if len(ad) > 1 and ad[1] is not None else 0
                first.setdefault(key, rec)
            kept = sorted((k for k, (ao_t, ao_n) in alt_obs.items()
                           if ao_n == 0 and ao_t >= FREEBAYES_MIN_TUMOUR_AO),
                          key=lambda k: (contigs[k[0]], k[1], k[2], k[3]))
            with pysam.VariantFile(os.fspath(dst), "wz", header=header) as out:
                for k in kept:
                    rec = first[k]
                    rec.samples[names[t]]["GT"] = (0, 1)
                    rec.samples[names[n]]["GT"] = (0, 0)
                    rec.filter.clear()
                    rec.filter.add("PASS")
                    out.write(rec)
        pysam.tabix_index(os.fspath(dst), preset="vcf", force=True)
        return dst

    # ---------------------------------------------------------------- whole jobs (--pipeline)

    def gmsaccel_pipeline(self) -> SomaticRun:
        """``gmsaccel run --somatic`` from both samples' FASTQ: both alignments (sorted,
        indexed, duplicates marked) and the somatic VCF, against a saved index (as bwa's)."""
        gxi = self._saved_index()
        out = self.work / "run"
        argv = self.gms + ["run", "-f", str(gxi), *self._reads("tumour"), "--sample", "TUMOUR",
                           "--somatic", "--normal-reads1", self._reads("normal")[0],
                           "--normal-reads2", self._reads("normal")[1], "--normal-sample",
                           "NORMAL", "-o", str(out), "-t", str(self.t), "-q", "--no-report"]

        def once() -> tuple[float, float]:
            shutil.rmtree(out, ignore_errors=True)
            return self.timer.run([argv], label="gmsaccel run --somatic")

        return self._measure("gmsaccel run --somatic (FASTQ to BAMs and VCF)",
                             out / "TUMOUR.vcf.gz", self.args.repeats, once)

    def peer_pipeline(self) -> SomaticRun:
        """The same job by the peers: ``bwa mem | samtools sort`` and ``samtools index`` of
        each sample, then bcftools' germline subtraction (no duplicate marking: in the peers'
        favour)."""
        q = shlex.quote
        steps = [self._bwa_sort(name, sm, self.work / f"pipeline.{name}.bam")
                 for name, sm in (("tumour", "TUMOUR"), ("normal", "NORMAL"))]
        tumour, normal = (q(str(self.work / f"pipeline.{n}.bam")) for n in ("tumour", "normal"))
        raw = self.work / "pipeline.bcftools.raw.vcf.gz"
        steps.append(f"bcftools mpileup -a AD,DP -f {q(str(self.ref))} {tumour} {normal} "
                     f"--threads {self.t} -Ou | bcftools call -mv -Oz -o {q(str(raw))}")
        script = ["bash", "-c", "set -o pipefail; " + " && ".join(steps)]

        return self._measure("bwa mem + samtools sort, bcftools (germline subtraction)", raw,
                             self.args.repeats,
                             lambda: self.timer.run([script], label="bwa + bcftools pipeline"),
                             lambda raw: self._subtract(raw, "pipeline.bcftools.somatic.vcf.gz"))

    def attempt(self, what: str, fn: Callable[[], object]) -> object:
        """Runs one measurement; a failure is recorded and reported, and the rest goes on."""
        print(f"[bench] {what}", file=sys.stderr, flush=True)
        try:
            return fn()
        except (BenchError, subprocess.CalledProcessError, OSError, ValueError, KeyError) as e:
            self.errors.append(f"{what}: {e}")
            print(f"[bench] FAILED {what}: {e}", file=sys.stderr, flush=True)
            return None


def report(results: dict[str, object]) -> str:
    sample = results["sample"]
    params, counts = sample["params"], sample["counts"]  # type: ignore[index]
    levels = sample["levels"]  # type: ignore[index]
    vaf_head = " | ".join(f"R@{lv['vaf']:.2f}" for lv in levels)
    lines = [
        f"### Somatic: tumour {params['tumour_pairs']:,} pairs (purity {params['purity']:g}) / "
        f"normal {params['normal_pairs']:,} pairs, {counts['somatic']['total']} somatic "
        f"({counts['somatic']['snv']} SNVs, {counts['somatic']['indel']} indels), "
        f"{counts['germline']['total']:,} germline; {results['threads']} threads, "
        f"min of {results['repeats']} run(s)\n",
        "| tool | wall s | peak RSS MB | SNV P | SNV R | SNV F1 | indel P | indel R | indel F1 | "
        f"{vaf_head} | germline leaks |",
        "|---|" + "---:|" * (9 + len(levels)),
    ]
    runs = results["runs"]
    if not runs:
        lines.append("| (no successful runs) |" + " |" * (9 + len(levels)))
    for r in runs.values():  # type: ignore[union-attr]
        acc = r["accuracy"]
        cells = [fmt(acc.get(k, {}).get(m), ".4f")
                 for k in KINDS for m in ("precision", "recall", "f1")]
        cells += [fmt(lv["recall"], ".3f") for lv in r["levels"]]
        lines.append(f"| {r['tool']} | {r['wall_s']:.2f} | {fmt(r['peak_rss_mb'], '.0f')} | "
                     + " | ".join(cells) + f" | {r['germline_leaks'].get('total', 'n/a')} |")
    lines.append("")
    if tin := results.get("tumour_in_normal"):
        lines.append(f"- normal holding tumour cells: a share {tin['share']:g} of its reads the "
                     f"tumour's ({tin['bam']})")
    for r in runs.values():  # type: ignore[union-attr]
        if est := r.get("estimate"):
            lines.append(f"- {r['tool']}: estimate {100 * est['fraction']:.2f}% (95% interval "
                         f"{100 * est['low']:.2f}-{100 * est['high']:.2f}%) from "
                         f"{est['sites']:,} candidate alleles")
    per_level = ", ".join(f"{lv['vaf']:.2f}: {lv['total']}" for lv in levels)
    lines.append(f"- somatic truth per VAF level: {per_level}")
    for what, secs in results["prep"].items():  # type: ignore[union-attr]
        lines.append(f"- {what}: {secs:.1f} s (not timed)")
    lines += sitting_notes(results)
    return "\n".join(lines).rstrip() + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = common_parser(__doc__.split("\n\n")[0],
                      "where the sample, its BAMs and indexes are kept "
                      "(default: DATA/../somatic, i.e. ~/.cache/gmsaccel-bench/somatic)",
                      "keep VCFs and logs here (default: a temporary directory)")
    p.set_defaults(gmsaccel=DEFAULT_GMSACCEL)
    for action in p._actions:  # the shared help names another default
        if action.dest == "gmsaccel":
            action.help = f"gmsaccel command line (default: this checkout's, {DEFAULT_GMSACCEL!r})"
    p.add_argument("--skip-bcftools", action="store_true", help="leave out bcftools")
    p.add_argument("--skip-freebayes", action="store_true", help="leave out freebayes (slow)")
    p.add_argument("--freebayes-repeats", type=int, default=1,
                   help="runs of freebayes (slow), min wall (1)")
    p.add_argument("--tumour-only", action="store_true",
                   help="also call the tumour alone: gmsaccel without and with a germline "
                        "resource (somatic_sample.py's simulated population, made once), and "
                        "bcftools with the resource's common alleles subtracted")
    p.add_argument("--pipeline", action="store_true",
                   help="also time the whole job from FASTQ: gmsaccel run --somatic (both "
                        "alignments, sorted, indexed, duplicates marked, and the somatic VCF) "
                        "against bwa mem | samtools sort and samtools index of both samples "
                        "then bcftools' germline subtraction")
    p.add_argument("--tumour-in-normal", type=float, metavar="S",
                   help="also call against a normal holding the tumour's cells: bwa's normal "
                        "BAM with a share S of its reads the tumour's (made once): gmsaccel as "
                        "is and with --tumour-in-normal auto, and bcftools")
    p.add_argument("--own-bam", action="store_true",
                   help="also call with gmsaccel on gmsaccel align's BAMs (made once, cached)")
    g = p.add_argument_group("the sample (somatic_sample.py; made once per parameter set)")
    g.add_argument("--sample-dir", help="use or make the sample here (default: in the cache)")
    g.add_argument("--normal-pairs", type=int, help="normal read pairs (default 30x)")
    g.add_argument("--tumour-pairs", type=int, help="tumour read pairs (default 60x)")
    g.add_argument("--purity", type=float, default=0.6, help="tumour purity (0.6)")
    g.add_argument("--somatic-rate", type=float, default=1e-4,
                   help="somatic variants per base (1e-4)")
    g.add_argument("--seed", type=int, default=1, help="the sample's seed (1)")
    args = p.parse_args(argv)
    if args.threads < 1 or args.repeats < 1 or args.freebayes_repeats < 1:
        p.error("--threads, --repeats and --freebayes-repeats must be >= 1")
    if args.skip_gmsaccel and args.own_bam:
        p.error("--own-bam needs gmsaccel (drop --skip-gmsaccel)")
    if not 0 < args.purity <= 1:
        p.error("--purity must be in (0, 1]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # htslib's notes on the peers' headers (MQ, GQ types) and on unindexed inputs are noise
    pysam.set_verbosity(0)
    kit = Path(args.kit).resolve() if args.kit else find_bench_kit(Path(__file__).resolve())
    kit, data = resolve_data(args, kit, ("ref.fa",))
    tools = ["bcftools", "bgzip", "samtools", "bwa"]
    tools += [] if args.skip_freebayes else ["freebayes"]
    for tool in tools:
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found on PATH")
    cache = Path(args.cache) if args.cache else data.parent / "somatic"
    cache.mkdir(parents=True, exist_ok=True)
    sdir = Path(args.sample_dir) if args.sample_dir else cache / sample_tag(args)
    run_gms = not args.skip_gmsaccel

    from somatic_sample import (  # needs gmsaccel.simulate
        make_population_resource,
        make_somatic_sample,
    )

    t0 = time.perf_counter()
    info = make_somatic_sample(data / "ref.fa", sdir, args.normal_pairs, args.tumour_pairs,
                               args.purity, args.somatic_rate, args.seed)
    sample_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory(prefix="bench_somatic.") as tmp:
        work = Path(args.workdir).resolve() if args.workdir else Path(tmp)
        (work / "logs").mkdir(parents=True, exist_ok=True)
        b = Bench(args, kit, sdir, info, work, cache)
        b.prep["somatic_sample.py (made or reused)"] = sample_s
        machine = machine_info(b.gms if run_gms else None)
        for tool in ("bcftools", "freebayes"):
            machine[tool] = tool_version([tool, "--version"])
        runs: dict[str, SomaticRun] = {}
        results: dict[str, object] = {
            "machine": machine, "threads": args.threads, "repeats": args.repeats,
            "freebayes_repeats": args.freebayes_repeats, "rss_probe": b.timer.method,
            "sample_dir": str(sdir), "sample": {k: info[k] for k in ("params", "counts",
                                                                     "levels", "components")},
            "prep": b.prep, "runs": {}, "errors": b.errors,
        }
        bams = b.attempt("aligning the pair with bwa mem (once, not timed)",
                         lambda: (b.bwa_bam("tumour", "TUMOUR"), b.bwa_bam("normal", "NORMAL")))
        jobs: list[tuple[str, Callable[[], object]]] = []
        if isinstance(bams, tuple):
            tumour, normal = bams
            results["bams"] = {"tumour": str(tumour), "normal": str(normal)}
            if run_gms:
                jobs.append(("gmsaccel", lambda: b.gmsaccel(tumour, normal)))
            if not args.skip_bcftools:
                jobs.append(("bcftools", lambda: b.bcftools(tumour, normal)))
            if not args.skip_freebayes:
                jobs.append(("freebayes", lambda: b.freebayes(tumour, normal)))
        if args.tumour_only and isinstance(bams, tuple):
            resource = b.attempt("the population resource (once, not timed)",
                                 lambda: make_population_resource(sdir, args.seed))
            if isinstance(resource, Path):
                results["resource"] = str(resource)
                if run_gms:
                    jobs.append(("gmsaccel_tumour_only",
                                 lambda: b.gmsaccel_tumour_only(bams[0], None)))
                    jobs.append(("gmsaccel_tumour_only_resource",
                                 lambda: b.gmsaccel_tumour_only(bams[0], resource)))
                if not args.skip_bcftools:
                    jobs.append(("bcftools_tumour_only",
                                 lambda: b.bcftools_tumour_only(bams[0], resource)))
        if args.pipeline:
            if run_gms:
                jobs.append(("gmsaccel_pipeline", b.gmsaccel_pipeline))
            if not args.skip_bcftools:
                jobs.append(("peer_pipeline", b.peer_pipeline))
        if args.tumour_in_normal is not None and isinstance(bams, tuple):
            tin = b.attempt("the normal holding tumour cells (once, not timed)",
                            lambda: b.tin_normal_bam(args.tumour_in_normal))
            if isinstance(tin, Path):
                results["tumour_in_normal"] = {"share": args.tumour_in_normal, "bam": str(tin)}
                if run_gms:
                    jobs.append(("gmsaccel_tin", lambda: b.gmsaccel_tin(bams[0], tin, False)))
                    jobs.append(("gmsaccel_tin_auto",
                                 lambda: b.gmsaccel_tin(bams[0], tin, True)))
                if not args.skip_bcftools:
                    jobs.append(("bcftools_tin", lambda: b.bcftools(
                        bams[0], tin, key="bcftools-tin",
                        tool="bcftools (germline subtraction), normal with tumour")))
        if args.own_bam:
            own = b.attempt("aligning the pair with gmsaccel align (once, not timed)",
                            lambda: (b.own_bam("tumour", "TUMOUR"), b.own_bam("normal", "NORMAL")))
            if isinstance(own, tuple):
                results["own_bams"] = {"tumour": str(own[0]), "normal": str(own[1])}
                jobs.append(("gmsaccel_own_bam",
                             lambda: b.gmsaccel(own[0], own[1], key="gmsaccel-own",
                                                tool="gmsaccel (own BAMs)")))
        for key, fn in jobs:
            run = b.attempt(key, fn)
            if isinstance(run, SomaticRun):
                runs[key] = run
        results["runs"] = {k: r.as_dict() for k, r in runs.items()}

    return finish(results, report, args.out)


if __name__ == "__main__":
    sys.exit(main())
