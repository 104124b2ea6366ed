"""Variant calling end to end: simulate a genome with planted variants, align, call, compare.

Tests that need the C++ calling engine skip when gmsaccel._core has no call_region. Input
checks that happen before the engine runs (missing or unindexed BAM, contig lengths, regions)
are tested in every build.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pysam
import pysam.bcftools
import pytest
from conftest import error_free_bam, random_genome, run_cli, write_fasta, write_reads_bam

import gmsaccel.call
import gmsaccel.gvcf
import gmsaccel.report
from gmsaccel import _core, cli
from gmsaccel.align import Aligner, Index
from gmsaccel.call import Caller, engine_available, summarize_vcf
from gmsaccel.evaluate import variant_accuracy
from gmsaccel.simulate import (
    Variant,
    left_normalize,
    plant_variants,
    simulate_pairs,
    write_fastq,
    write_truth_vcf,
)

needs_engine = pytest.mark.skipif(not hasattr(_core, "call_region"),
                                  reason="calling engine (_core.call_region) not in this build")

DEPTH = 30
READ_LEN = 150


@dataclass(frozen=True)
class Sample:
    ref: Path
    bam: Path
    truth: Path
    variants: list[Variant]
    r1: Path
    r2: Path
    ploidy: int


def make_sample(d: Path, ploidy: int, seed: int) -> Sample:
    contigs = random_genome(seed, {"chr1": 40_000, "chr2": 15_000})
    ref = write_fasta(d / "ref.fa", contigs)
    pysam.faidx(str(ref))
    haps, variants = plant_variants(contigs, rate=0.002, indel_fraction=0.2, ploidy=ploidy,
                                    seed=seed + 1)
    genome = sum(len(s) for _, s in contigs)
    # reads are drawn over all haplotypes, so each haplotype gets 1 / ploidy of them
    pairs = DEPTH * genome // (2 * READ_LEN)
    r1, r2 = simulate_pairs(haps, pairs, read_length=READ_LEN, seed=seed + 2)
    fq1, fq2 = write_fastq(d / "r_1.fq.gz", r1), write_fastq(d / "r_2.fq.gz", r2)
    truth = write_truth_vcf(d / "truth.vcf.gz", ref, variants)
    index = Index.build(ref)
    bam = d / "sample.bam"
    Aligner(index, threads=2).align_fastq(fq1, fq2, bam, read_group=r"@RG\tID:s\tSM:sample")
    return Sample(ref, bam, truth, variants, fq1, fq2, ploidy)


@pytest.fixture(scope="module")
def diploid(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return make_sample(tmp_path_factory.mktemp("dip"), 2, 21)


@pytest.fixture(scope="module")
def haploid(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return make_sample(tmp_path_factory.mktemp("hap"), 1, 31)


def records(vcf: Path) -> list[pysam.VariantRecord]:
    with pysam.VariantFile(str(vcf)) as vf:
        return list(vf)


def assert_clean_failure(proc, command: str, *needles: str, outdir: Path | None = None,
                         allowed: tuple[str, ...] = ()) -> str:
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"gmsaccel {command}: error: "), err
    for n in needles:
        assert n in lines[0], (n, err)
    if outdir is not None:
        assert sorted(os.listdir(outdir)) == sorted(allowed), os.listdir(outdir)
    return lines[0]


# ---------------------------------------------------------------------------------------------
# calling accuracy (engine)


@needs_engine
def test_snvs_found_with_genotypes(diploid: Sample, tmp_path: Path) -> None:
    out = tmp_path / "calls.vcf.gz"
    stats = Caller(diploid.ref, threads=2).write_vcf(diploid.bam, out)
    assert stats["pass"] > 0
    called = {}
    for r in records(out):
        if "PASS" in r.filter.keys():
            for a in r.alts:
                called[(r.contig, r.pos, r.ref, a)] = r.samples[0]["GT"]
    missing, wrong_gt = [], []
    for v in diploid.variants:
        if len(v.ref) == len(v.alt) == 1:
            gt = called.get((v.contig, v.pos, v.ref, v.alt))
            if gt is None:
                missing.append(v)
            elif (len(set(gt)) > 1) != (len(set(v.genotype)) > 1):
                wrong_gt.append((v, gt))
    assert not missing, missing[:5]
    assert not wrong_gt, wrong_gt[:5]
    acc = variant_accuracy(diploid.ref, diploid.truth, out)
    assert acc["snv"]["recall"] == 1.0 and acc["snv"]["precision"] >= 0.98, acc
    assert acc["indel"]["recall"] >= 0.9 and acc["indel"]["precision"] >= 0.9, acc
    pysam.bcftools.norm("--check-ref", "e", "-f", str(diploid.ref), "-Ov", str(out))


@needs_engine
def test_threads_give_identical_output(diploid: Sample, tmp_path: Path) -> None:
    texts = []
    for t in (1, 2):
        out = tmp_path / f"t{t}.vcf"
        Caller(diploid.ref, threads=t).write_vcf(diploid.bam, out, command_line=["x"])
        texts.append(out.read_text())
    assert texts[0] == texts[1]


def _vcf_body(path: Path) -> list[str]:
    with pysam.BGZFile(str(path)) if str(path).endswith(".gz") else open(path, "rb") as fh:
        text = fh.read().decode()
    return [ln for ln in text.splitlines() if not ln.startswith("##")]


@needs_engine
@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_executor_gives_identical_output(diploid: Sample, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    # Shards are cut here, so a small shard size sends many of them to the executor's workers.
    monkeypatch.setattr(gmsaccel.call, "SHARD_SIZE", 7_000)
    for gvcf in (False, True):
        want = tmp_path / f"local-{gvcf}.vcf.gz"
        Caller(diploid.ref, threads=2).write_vcf(diploid.bam, want, gvcf=gvcf)
        pool = ThreadPoolExecutor(3) if kind == "threads" else \
            ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
        got = tmp_path / f"{kind}-{gvcf}.vcf.gz"
        with pool:
            stats = Caller(diploid.ref, executor=pool).write_vcf(diploid.bam, got, gvcf=gvcf)
        assert _vcf_body(got) == _vcf_body(want)
        assert stats["reads"]["loaded"] > 0 and stats["stage_seconds"]["load"] > 0


@needs_engine
def test_executor_workers_elsewhere_get_absolute_paths(diploid: Sample, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers in another directory (as a Dask cluster's are) open the reference and BAMs by
    the driver's absolute paths: relative ones on the driver still work."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    here = tmp_path / "here"
    here.mkdir()
    shutil.copy(diploid.ref, here / "ref.fa")
    shutil.copy(str(diploid.ref) + ".fai", here / "ref.fa.fai")
    for suffix in ("", ".bai"):
        shutil.copy(str(diploid.bam) + suffix, here / f"s.bam{suffix}")
    monkeypatch.chdir(here)
    local, remote = tmp_path / "local.vcf.gz", tmp_path / "remote.vcf.gz"
    Caller("ref.fa").write_vcf("s.bam", local)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=os.chdir, initargs=(str(elsewhere),)) as ex:
        Caller("ref.fa", executor=ex).write_vcf("s.bam", remote)
    assert _vcf_body(remote) == _vcf_body(local) and len(_vcf_body(local)) > 10


def test_an_index_beside_its_fasta_finds_the_fasta(diploid: Sample, tmp_path: Path) -> None:
    """Caller given REF.fa.gxi reads CRAM (and names ##reference) with REF.fa beside it."""
    ref = tmp_path / "ref.fa"
    shutil.copy(diploid.ref, ref)
    Index.build(ref).save(tmp_path / "ref.fa.gxi")
    assert Caller(tmp_path / "ref.fa.gxi").fasta == str(ref)
    Index.build(ref).save(tmp_path / "lone.gxi")
    assert Caller(tmp_path / "lone.gxi").fasta == ""


def test_write_vcf_reports_progress(diploid: Sample, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gmsaccel.call, "SHARD_SIZE", 7_000)
    for region, total in ((None, 55_000), ("chr1:1001-30000", 29_000)):
        seen: list[tuple[int, int]] = []
        Caller(diploid.ref, threads=2).write_vcf(diploid.bam, tmp_path / "p.vcf", region=region,
                                                 progress=lambda d, t, s=seen: s.append((d, t)))
        done = [d for d, _ in seen]
        assert len(seen) >= 4 and {t for _, t in seen} == {total}
        assert done == sorted(done) and done[-1] == total


@needs_engine
def test_dask_cluster_gives_identical_output(diploid: Sample, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    want = tmp_path / "local.vcf.gz"
    assert run_cli("call", "-f", diploid.ref, diploid.bam, "-o", want, "-q").returncode == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  protocol="tcp", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        api = tmp_path / "api.vcf.gz"
        Caller(diploid.ref, executor=client).write_vcf(diploid.bam, api)
        cli = tmp_path / "cli.vcf.gz"
        proc = run_cli("call", "-f", diploid.ref, diploid.bam, "-o", cli, "-q",
                       "--dask-scheduler", cluster.scheduler_address)
        assert proc.returncode == 0, proc.stderr.decode()
        # run: aligned here, called on the cluster
        outdir = tmp_path / "run"
        proc = run_cli("run", "-f", diploid.ref, diploid.r1, diploid.r2, "--sample", "S",
                       "-o", outdir, "-q", "--no-report",
                       "--dask-scheduler", cluster.scheduler_address)
        assert proc.returncode == 0, proc.stderr.decode()
    body = _vcf_body(want)
    assert len(body) > 10 and _vcf_body(api) == body
    # The command line differs (## lines); the records do not.
    assert _vcf_body(cli) == body
    local_run = tmp_path / "local-run"
    assert run_cli("run", "-f", diploid.ref, diploid.r1, diploid.r2, "--sample", "S",
                   "-o", local_run, "-q", "--no-report").returncode == 0
    assert _vcf_body(outdir / "S.vcf.gz") == _vcf_body(local_run / "S.vcf.gz")


def test_dask_scheduler_without_dask_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    with pytest.raises(RuntimeError, match=r"needs Dask: pip install 'gmsaccel\[dist\]'"):
        cli._dask_client("tcp://127.0.0.1:8786")


@needs_engine
def test_api_variants_match_vcf(diploid: Sample, tmp_path: Path) -> None:
    caller = Caller(diploid.ref)
    vs = list(caller.call([diploid.bam], region="chr1:1-20000"))
    assert vs and all(v.contig == "chr1" and 1 <= v.pos <= 20000 for v in vs)
    assert [v.pos for v in vs] == sorted(v.pos for v in vs)
    assert all(v.gt.shape == (1, 2) for v in vs)
    pile = caller.pileup(diploid.bam, "chr1:1001-1100")
    assert pile["base_counts"].shape == (100, 5) and pile["depth"].mean() > DEPTH / 3


@needs_engine
def test_haploid_genotypes(haploid: Sample, tmp_path: Path) -> None:
    out = tmp_path / "h.vcf.gz"
    Caller(haploid.ref, ploidy=1).write_vcf(haploid.bam, out)
    recs = records(out)
    assert recs and all(len(r.samples[0]["GT"]) == 1 for r in recs)
    acc = variant_accuracy(haploid.ref, haploid.truth, out)
    assert acc["snv"]["recall"] >= 0.98, acc


@pytest.mark.parametrize("compressed", [False, True])
def test_reference_codes_read_ahead(tmp_path: Path, compressed: bool) -> None:
    # The caller reads each contig's codes through htslib's faidx on a thread of its own, the
    # next contig ahead of its shards: the codes are pysam's bases mapped A0 C1 G2 T3, else 4
    # (lower case too), for plain and bgzipped FASTA, any line width.
    rng = np.random.default_rng(5)
    letters = np.frombuffer(b"ACGTacgtNnRYKM", np.uint8)
    seqs = {f"c{i}": letters[rng.integers(0, len(letters), n)].tobytes().decode()
            for i, n in enumerate((10_007, 1, 3_000, 777))}
    fa = tmp_path / "ref.fa"
    with open(fa, "w") as f:
        for i, (name, seq) in enumerate(seqs.items()):
            width = (7, 60, 1, 80)[i]
            f.write(f">{name} description\n")
            f.write("".join(seq[j:j + width] + "\n" for j in range(0, len(seq), width)))
    if compressed:
        pysam.tabix_compress(str(fa), str(fa) + ".gz")
        fa = Path(str(fa) + ".gz")
    pysam.faidx(str(fa))
    caller = Caller(fa, index=None)
    lut = {b: i % 4 for i, b in enumerate("ACGTacgt")}
    for name, seq in seqs.items():
        codes = caller.ref_codes(name)
        assert codes.dtype == np.uint8 and codes.tolist() == [lut.get(c, 4) for c in seq]
    assert len(caller._codes) <= 3
    # a run reads ahead the contig its shards come to next (here c3 after c1), and only then
    caller = Caller(fa, index=None)
    caller.ref_codes("c1")
    assert list(caller._codes) == ["c1"]
    caller._results([], gmsaccel.call.resolve_regions(["c1", "c3"], caller.contigs), False)
    caller.ref_codes("c1")
    assert list(caller._codes) == ["c1", "c3"]
    with pytest.raises(_core.InputError, match="'nope' is not in"):
        _core.fasta_codes(str(fa), "nope")


@needs_engine
def test_run_summary_is_the_vcfs(diploid: Sample, haploid: Sample, tmp_path: Path) -> None:
    # The engine counts each shard's variants by type, Ti/Tv and het/hom as it makes their
    # lines; the counts are those of the VCF written, read back by pysam.
    for sample, ploidy in ((diploid, 2), (haploid, 1)):
        out = tmp_path / f"p{ploidy}.vcf.gz"
        stats = Caller(sample.ref, ploidy=ploidy, threads=2).write_vcf(sample.bam, out)
        want = summarize_vcf(out)
        assert want["records"] > 10
        assert {k: stats[k] for k in want} == want


@needs_engine
def test_no_bam_left_open_after_a_run(haploid: Sample, tmp_path: Path) -> None:
    # Shards that ran on this thread kept their BAM open for the next; the run's end closes it
    # (a deleted BAM's space is not held, nor descriptors piled up over many runs).
    def open_on(path: Path) -> int:
        fds = Path("/proc/self/fd")
        return sum(1 for fd in fds.iterdir()
                   if os.path.realpath(fd) == os.path.realpath(path))

    bam = tmp_path / "s.bam"
    shutil.copyfile(haploid.bam, bam)
    shutil.copyfile(f"{haploid.bam}.bai", f"{bam}.bai")
    caller = Caller(haploid.ref)  # one thread: the shards run on this one
    caller.write_vcf(bam, tmp_path / "a.vcf.gz")
    assert open_on(bam) == 0
    assert len(list(caller.call(bam, region="chr1:1-5000"))) >= 0 and open_on(bam) == 0


def test_reference_loader_works_in_a_forked_child(tmp_path: Path) -> None:
    # The reference loader's thread stays behind in a forked child (a process pool's worker):
    # the child reads with a loader of its own instead of waiting on one that is not there.
    fa = write_fasta(tmp_path / "ref.fa", random_genome(3, {"a": 3000, "b": 2000}))
    pysam.faidx(str(fa))
    caller = _FORKED["caller"] = Caller(fa)
    assert len(caller.ref_codes("a")) == 3000
    ctx = multiprocessing.get_context("fork")
    try:
        with ctx.Pool(1) as pool:
            got = pool.apply_async(_reference_length, ("b",)).get(timeout=60)
    finally:
        _FORKED.clear()
    assert got == 2000


_FORKED: dict[str, Caller] = {}  # what a forked child inherits (a Caller does not pickle)


def _reference_length(contig: str) -> int:
    return len(_FORKED["caller"].ref_codes(contig))


@needs_engine
def test_a_bam_replaced_between_calls_is_read_anew(haploid: Sample, tmp_path: Path) -> None:
    # Calling threads keep BAMs open between shards (loading an index each time was minutes of
    # a human genome); a file replaced at the same path, by a new file or rewritten in place,
    # is opened again.
    fewer = tmp_path / "fewer.bam"
    with pysam.AlignmentFile(str(haploid.bam)) as reads, \
            pysam.AlignmentFile(str(fewer), "wb", template=reads) as out:
        for i, r in enumerate(reads):
            if i % 3:
                out.write(r)
    pysam.index(str(fewer))
    caller = Caller(haploid.ref)  # one thread: every call on this thread's open files
    expected = tmp_path / "expected.vcf"
    caller.write_vcf(fewer, expected)
    path = tmp_path / "s.bam"
    for replace in ("rename", "in place"):
        shutil.copyfile(haploid.bam, path)
        shutil.copyfile(f"{haploid.bam}.bai", f"{path}.bai")
        first = tmp_path / f"first-{replace}.vcf"
        caller.write_vcf(path, first)
        if replace == "rename":
            shutil.copyfile(fewer, tmp_path / "new.bam")
            os.replace(tmp_path / "new.bam", path)
        else:
            shutil.copyfile(fewer, path)  # the same inode, new contents
        shutil.copyfile(f"{fewer}.bai", f"{path}.bai")
        got = tmp_path / f"got-{replace}.vcf"
        caller.write_vcf(path, got)
        assert _vcf_body(got) == _vcf_body(expected) != _vcf_body(first), replace


@needs_engine
def test_gvcf_end_to_end(diploid: Sample, tmp_path: Path) -> None:
    out = tmp_path / "s.g.vcf.gz"
    Caller(diploid.ref, threads=2).write_vcf(diploid.bam, out, region="chr2", gvcf=True)
    recs = records(out)
    end = 0
    for r in recs:
        assert r.alts[-1] == "<*>"
        if r.start >= end:
            assert r.start == end
        end = max(end, r.stop)
    assert end == 15_000
    pysam.bcftools.norm("--check-ref", "e", "-f", str(diploid.ref), "-Ov", str(out))


@needs_engine
def test_gvcf_blocks_are_the_models_over_the_pileup(diploid: Sample, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # The engine computes reference confidence from the candidates' pileup windows, over reads
    # loaded with the caller's padding. The same blocks come from the model's definition
    # (gvcf.homref_likelihoods, here in pieces of 997 positions) over Caller.pileup's counts of
    # the region, a load of its own.
    out = tmp_path / "s.g.vcf.gz"
    caller = Caller(diploid.ref, threads=2)
    caller.write_vcf(diploid.bam, out, region="chr1", gvcf=True)
    monkeypatch.setattr(gmsaccel.gvcf, "LIKELIHOOD_PIECE", 997)
    pile = caller.pileup(diploid.bam, "chr1")
    gq, pl, depth = gmsaccel.gvcf.homref_likelihoods(pile, pile["ref_codes"], 2)
    recs = records(out)
    spans = [(r.start, r.start + len(r.ref)) for r in recs if r.alts != ("<*>",)]
    want = gmsaccel.gvcf.reference_block_arrays(int(pile["start"]), gq, pl, depth, spans,
                                                gmsaccel.call.MAX_BLOCK)
    got = [(r.start, r.stop, r.samples[0]["GQ"], r.samples[0]["MIN_DP"], r.samples[0]["DP"],
            tuple(r.samples[0]["PL"])) for r in recs if r.alts == ("<*>",)]
    assert len(got) > 100 and got == list(zip(want.start.tolist(), want.end.tolist(),
                                              want.gq.tolist(), want.min_dp.tolist(),
                                              want.dp.tolist(), map(tuple, want.pl.tolist()),
                                              strict=True))


@needs_engine
@pytest.mark.parametrize("size", [101, 997])
def test_calls_do_not_depend_on_shards(diploid: Sample, haploid: Sample, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    # Candidates are found past a shard's edges and windows grouped from the last gap before
    # it, so the windows over an edge are those of one whole-contig run: the same records (a
    # shard starting inside a deletion once called a false SNV under it; records just after
    # an edge had other QUALs), the same gVCF.
    for sample, ploidy in ((diploid, 2), (haploid, 1)):
        bodies = []
        for shard in (10**8, size):
            monkeypatch.setattr(gmsaccel.call, "MIN_SHARD_SIZE", shard)
            monkeypatch.setattr(gmsaccel.call, "SHARD_SIZE", shard)
            vcf, gvcf = tmp_path / f"{ploidy}-{shard}.vcf", tmp_path / f"{ploidy}-{shard}.g.vcf"
            Caller(sample.ref, ploidy=ploidy, threads=2).write_vcf(sample.bam, vcf,
                                                                   gvcf_out=gvcf)
            bodies.append((_vcf_body(vcf), _vcf_body(gvcf)))
        assert len(bodies[0][0]) > 10
        assert bodies[1][0] == bodies[0][0] and bodies[1][1] == bodies[0][1], (ploidy, size)


@needs_engine
def test_gvcf_blocks_do_not_depend_on_shards(diploid: Sample, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # A reference block that reaches a shard's edge is joined to the next shard's first block
    # when they meet in one GQ band: the gVCF is the one a single shard would have written.
    monkeypatch.setattr(gmsaccel.call, "MIN_SHARD_SIZE", 10**8)
    monkeypatch.setattr(gmsaccel.call, "SHARD_SIZE", 10**8)
    one = tmp_path / "one.g.vcf.gz"
    Caller(diploid.ref, threads=2).write_vcf(diploid.bam, one, gvcf=True)
    body = _vcf_body(one)
    for size in (7_000, 1_234):
        monkeypatch.setattr(gmsaccel.call, "SHARD_SIZE", size)
        cut = tmp_path / f"cut-{size}.g.vcf.gz"
        Caller(diploid.ref, threads=2).write_vcf(diploid.bam, cut, gvcf=True)
        assert _vcf_body(cut) == body, size
    assert len(body) > 100


def _tandem_repeat_sample(d: Path, imperfect: bool = False) -> tuple[Path, Path, Path, Path]:
    """chr1 with a tandem repeat tract every 500 bases (homopolymers of 14-30 and di- and
    trinucleotide tracts of 8-12 copies), and at each tract one variant of the kinds that end
    up at a window's edge: a base inserted just inside the tract, a unit added or removed (at
    the tract's normalised, leftmost place), or a substitution inside it. imperfect: tracts of
    4-6 base units, 6-9 copies, one base changed in the third."""
    import random

    rng = random.Random(17 + imperfect)
    seq, variants = [], []
    at = 0
    for t in range(60):
        flank = "".join(rng.choices("ACGT", k=500))
        seq.append(flank)
        at += len(flank)
        if imperfect:
            unit = rng.choice(["CTAATC", "ACATG", "AGGTC", "CAGT", "ACGTT"])
            copies = rng.randint(6, 9)
        else:
            unit = rng.choice(["A", "C", "G", "T", "AC", "AG", "CT", "ATG", "CAG"])
            copies = rng.randint(14, 30) if len(unit) == 1 else rng.randint(8, 12)
        before = seq[-1][-1]
        if before == unit[0] or before == unit[-1]:  # keep the tract's start where it is
            seq[-1] = seq[-1][:-1] + next(b for b in "ACGT" if b not in (unit[0], unit[-1]))
        tract = unit * copies
        if imperfect:
            at_odd = 2 * len(unit) + 1
            odd = next(b for b in "ACGT" if b != tract[at_odd] and b != tract[at_odd - 1])
            tract = tract[:at_odd] + odd + tract[at_odd + 1:]
        seq.append(tract)
        kind = t % 4
        gt = (1, 1) if t % 3 == 0 else (0, 1)
        pos1 = at + 1  # 1-based position of the tract's first base
        if kind == 0:  # a foreign base inserted after the tract's first unit
            other = next(b for b in "ACGT" if b != unit[0] and b != unit[-1])
            variants.append(Variant("chr1", pos1 + len(unit) - 1, unit[-1], unit[-1] + other, gt))
        elif kind == 1:  # one unit more, anchored on the base before the tract
            variants.append(Variant("chr1", pos1 - 1, seq[-2][-1], seq[-2][-1] + unit, gt))
        elif kind == 2:  # one unit fewer
            variants.append(Variant("chr1", pos1 - 1, seq[-2][-1] + unit, seq[-2][-1], gt))
        else:  # a substitution at the tract's second base
            b = tract[1]
            variants.append(Variant("chr1", pos1 + 1, b, next(x for x in "ACGT" if x != b), gt))
        at += len(tract)
    seq.append("".join(rng.choices("ACGT", k=500)))
    contigs = [("chr1", "".join(seq))]
    ref = write_fasta(d / "ref.fa", contigs)
    pysam.faidx(str(ref))
    from gmsaccel.simulate import apply_variants

    haps = apply_variants(contigs, variants, 2)
    pairs = DEPTH * len(contigs[0][1]) // (2 * READ_LEN)
    r1, r2 = simulate_pairs(haps, pairs, read_length=READ_LEN, seed=5)
    fq1, fq2 = write_fastq(d / "r_1.fq.gz", r1), write_fastq(d / "r_2.fq.gz", r2)
    truth = write_truth_vcf(d / "truth.vcf.gz", ref, variants)
    bam = d / "str.bam"
    Aligner(Index.build(ref), threads=2).align_fastq(fq1, fq2, bam)
    return ref, bam, truth, d


@needs_engine
@pytest.mark.parametrize("imperfect", [False, True], ids=["perfect", "imperfect"])
def test_variants_in_tandem_repeats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    imperfect: bool) -> None:
    # Windows reach past the tandem repeat tracts their edges would fall in, and past the
    # imperfect repeats of an indel's unit: an insertion at a homopolymer's start was once
    # called as a substitution at the window's edge inside it (a false SNV and a missed indel).
    # Calls stay independent of where shards are cut.
    ref, bam, truth, d = _tandem_repeat_sample(tmp_path, imperfect)
    vcf = d / "calls.vcf.gz"
    Caller(ref, threads=2).write_vcf(bam, vcf)
    acc = variant_accuracy(ref, truth, vcf)
    assert acc["indel"]["truth"] == 45 and acc["snv"]["truth"] == 15
    assert acc["indel"]["recall"] == 1.0 and acc["indel"]["precision"] == 1.0, acc
    assert acc["snv"]["recall"] == 1.0 and acc["snv"]["precision"] == 1.0, acc
    monkeypatch.setattr(gmsaccel.call, "MIN_SHARD_SIZE", 97)
    monkeypatch.setattr(gmsaccel.call, "SHARD_SIZE", 97)
    cut = d / "cut.vcf.gz"
    Caller(ref, threads=2).write_vcf(bam, cut)
    assert _vcf_body(cut) == _vcf_body(vcf)


# Tandem repeats among close variants, where a window's end once fell as its reach grew, so
# that windows and the shard gap rule (which see different reaches) split at different places
# and one record's QUAL changed with the shard size (found by a review's search).
_CROWDED_REPEATS = (
    "GGACCAGTATTCCGCTAACATTGTGTCAAGCCGGCCTCCTCCCTCCGCCGCCGCTCTTAGGACGTCTATGTGTGTGTGCGGCCGGCC"
    "GGCCGGCCGTCGTCGTCGGGCCAGTGCTCCGCTCCTTTTTTAACTAAATAAATAAAGATCAGACACTGTTATGGGCATAGTTAATC"
    "ATAACACAGATAGTACTCGGTCCTATG")
_CROWDED_VARIANTS = [  # (0-based position in the sequence above, ref, alt, haplotype)
    (38, "C", "G", 1), (43, "T", "G", 1), (47, "C", "G", 0), (59, "G", "C", 1), (61, "A", "T", 0),
    (69, "GTGT", "G", 1), (70, "TG", "T", 0), (100, "C", "A", 1), (117, "GC", "G", 1),
    (121, "CTTT", "C", 1), (136, "A", "G", 1), (162, "CATAGT", "C", 0)]


def _bodies_by_shard(ref: Path, bam: Path, d: Path, monkeypatch: pytest.MonkeyPatch,
                     sizes: tuple[int, ...]) -> dict[int, list[str]]:
    bodies = {}
    for size in sizes:
        monkeypatch.setattr(gmsaccel.call, "MIN_SHARD_SIZE", size)
        monkeypatch.setattr(gmsaccel.call, "SHARD_SIZE", size)
        vcf = d / f"s{size}.vcf.gz"
        Caller(ref, threads=2).write_vcf(bam, vcf)
        bodies[size] = _vcf_body(vcf)
    return bodies


@needs_engine
def test_calls_in_crowded_repeats_do_not_depend_on_shards(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    rng = random.Random(7)
    flank = 1_000
    seq = ("".join(rng.choice("ACGT") for _ in range(flank)) + _CROWDED_REPEATS +
           "".join(rng.choice("ACGT") for _ in range(flank)))
    variants = [(flank + p, r, a, h) for p, r, a, h in _CROWDED_VARIANTS]
    ref, bam = error_free_bam(tmp_path, seq, variants)
    bodies = _bodies_by_shard(ref, bam, tmp_path, monkeypatch, (10**8, 1, 7, 50))
    assert len(bodies[10**8]) >= 8
    for size in (1, 7, 50):
        assert bodies[size] == bodies[10**8], size


@needs_engine
@pytest.mark.parametrize("spacing", [9, 17])
def test_calls_in_a_long_dense_variant_stretch_do_not_depend_on_shards(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spacing: int) -> None:
    # Variants every few bases for 1,500 bases (a divergent stretch) make one gapless chain of
    # candidates, longer than a shard looks back for a gap: windows in such a chain are cut at
    # fixed places, so every shard groups them as a whole-contig run does. Windows of five or
    # six candidates, three on each haplotype, once had only haplotypes of two: a third of the
    # variants 9 bases apart were missed.
    import random

    rng = random.Random(spacing)
    flank = 1_500
    seq = "".join(rng.choice("ACGT") for _ in range(2 * flank + 1_500))
    variants = []
    for n, p in enumerate(range(flank, 2 * flank, spacing)):
        if n % 7 == 3:  # a short deletion now and then
            variants.append((p, seq[p:p + 3], seq[p], n % 2))
        else:
            variants.append((p, seq[p], next(b for b in "ACGT" if b != seq[p]), n % 2))
    ref, bam = error_free_bam(tmp_path, seq, variants)
    bodies = _bodies_by_shard(ref, bam, tmp_path, monkeypatch, (10**8, 7, 97, 333))
    truth = write_truth_vcf(tmp_path / "truth.vcf.gz", ref,
                            [Variant("chr1", p + 1, r, a, (1, 0) if h == 0 else (0, 1))
                             for p, r, a, h in variants])
    acc = variant_accuracy(ref, truth, tmp_path / f"s{10**8}.vcf.gz")
    for kind in ("snv", "indel"):
        assert acc[kind]["recall"] >= 0.98 and acc[kind]["precision"] >= 0.98, acc
    for size in (7, 97, 333):
        assert bodies[size] == bodies[10**8], size



@needs_engine
@pytest.mark.parametrize("length", [250, 2_500])
def test_long_deletions_do_not_depend_on_shards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                length: int) -> None:
    # A deletion's window reaches its whole length back and forth: one of 2,500 bases reached
    # past the 1,300 bases a shard loads around itself, and its QUAL went from 32 to 667 with
    # the shard size (found by a review). Indels over 300 bases are structural variants, not
    # candidates; shorter ones fit the shard's padding.
    import random

    rng = random.Random(1)
    seq = "".join(rng.choice("ACGT") for _ in range(9_000))
    at = 3_000
    variants = [(at, seq[at:at + length + 1], seq[at], 0)]
    for q in range(at + 100, at + length, 60):  # the other haplotype's SNVs in the span
        variants.append((q, seq[q], next(b for b in "ACGT" if b != seq[q]), 1))
    ref, bam = error_free_bam(tmp_path, seq, variants)
    bodies = _bodies_by_shard(ref, bam, tmp_path, monkeypatch, (10**8, 97, 2_000, 3_100))
    records = [ln.split("\t") for ln in bodies[10**8] if not ln.startswith("#")]
    deletion = [r for r in records if len(r[3]) > 1]
    if length <= 300:
        assert [(r[1], len(r[3])) for r in deletion] == [(str(at + 1), length + 1)], deletion
    else:
        assert deletion == [], deletion
    assert len(records) - len(deletion) == len(variants) - 1
    for size in (97, 2_000, 3_100):
        assert bodies[size] == bodies[10**8], size

@needs_engine
def test_substitutions_in_a_long_tandem_repeat(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # Substitutions 80 bases apart in a 600-base tract: windows of substitutions alone keep
    # their plain edges (moving them past tracts chained the whole tract into one window, which
    # dropped calls and made them depend on shards; found by a review).
    import random

    rng = random.Random(3)
    flank = 1_000
    seq = ("".join(rng.choice("ACGT") for _ in range(flank)) + "AGGTCA" * 100 +
           "".join(rng.choice("ACGT") for _ in range(flank)))
    variants = []
    for n, p in enumerate(range(flank + 40, flank + 600, 80)):
        variants.append((p, seq[p], next(b for b in "ACGT" if b != seq[p]), n % 2))
    ref, bam = error_free_bam(tmp_path, seq, variants)
    bodies = _bodies_by_shard(ref, bam, tmp_path, monkeypatch, (10**8, 7, 50))
    called = [(int(line.split("\t")[1]) - 1, line.split("\t")[4]) for line in bodies[10**8]
              if not line.startswith("#") and "PASS" in line]
    assert called == [(p, a) for p, _, a, _ in variants]
    for size in (7, 50):
        assert bodies[size] == bodies[10**8], size


@needs_engine
def test_long_insertions_from_soft_clips(tmp_path: Path) -> None:
    # Reads across a 40-50 base insertion are mostly soft-clipped at it (the gap costs more than
    # the shorter flank scores). Clips whose far part rejoins the reference give the inserted
    # bases as a candidate; and the window covers the insertion's length either side, so that
    # reads aligned without it do not make substitutions of their own there.
    import random

    from gmsaccel.simulate import apply_variants

    rng = random.Random(23)
    seq = "".join(rng.choices("ACGT", k=80_000))
    variants = []
    for i, pos in enumerate(range(1_000, 79_000, 2_000)):
        n = rng.randint(40, 50)
        gt = (1, 1) if i % 3 == 0 else (0, 1)
        variants.append(Variant("chr1", pos, seq[pos - 1],
                                seq[pos - 1] + "".join(rng.choices("ACGT", k=n)), gt))
    contigs = [("chr1", seq)]
    ref = write_fasta(tmp_path / "ref.fa", contigs)
    pysam.faidx(str(ref))
    haps = apply_variants(contigs, variants, 2)
    r1, r2 = simulate_pairs(haps, DEPTH * len(seq) // (2 * READ_LEN), seed=24)
    fq1, fq2 = write_fastq(tmp_path / "r_1.fq.gz", r1), write_fastq(tmp_path / "r_2.fq.gz", r2)
    truth = write_truth_vcf(tmp_path / "truth.vcf.gz", ref, variants)
    bam = tmp_path / "ins.bam"
    Aligner(Index.build(ref), threads=2).align_fastq(fq1, fq2, bam)
    vcf = tmp_path / "calls.vcf.gz"
    Caller(ref, threads=2).write_vcf(bam, vcf)
    acc = variant_accuracy(ref, truth, vcf)
    assert acc["indel"]["truth"] == 39
    assert acc["indel"]["recall"] >= 0.9 and acc["indel"]["precision"] == 1.0, acc
    assert acc["snv"]["query"] == 0, acc


@needs_engine
@pytest.mark.parametrize("long_runs", [False, True], ids=["runs-under-100", "runs-over-100"])
def test_unit_changes_in_repeats_aligned_without_gaps(tmp_path: Path, long_runs: bool) -> None:
    # A unit inserted into or deleted from a long, imperfect tandem repeat, in reads aligned
    # as a gap-averse aligner does: without a gap, the repeat shifted one unit (mismatches where
    # its imperfection lands), the flank past the repeat soft-clipped. The pileup then has no
    # indel, only substitutions in the repeat: the caller once called those (false SNVs) and
    # missed the indel. Runs beside such substitutions now get one-unit indel candidates.
    # A run longer than the 100 bases a tract is followed gets none: its start, where they
    # belong, is out of sight, and candidates placed inside it were written as records that
    # are not left-aligned, one event in several spellings (found by a review). Every record
    # is left-aligned, PASS or not.
    import random

    rng = random.Random(29)
    seq, variants, tracts = [], [], []
    at = 0
    n_tracts = 4 if long_runs else 24
    for t in range(n_tracts):
        flank = "".join(rng.choices("ACGT", k=600))
        p = 6 if long_runs else 3 + t % 3
        unit = "".join(rng.choices("ACGT", k=p))
        while len(set(unit)) < 2 or unit[0] == flank[-1] or unit[-1] == flank[-1]:
            unit = "".join(rng.choices("ACGT", k=p))
        tract = list(unit * (22 if long_runs else rng.randint(10, 14)))
        odd = (1 if long_runs else 5) * p + 1  # one base changed in the second or sixth unit
        tract[odd] = next(b for b in "ACGT" if b not in (tract[odd], tract[odd - p],
                                                          tract[(odd + p) % len(tract)]))
        tract = "".join(tract)
        seq += [flank, tract]
        at += len(flank)
        anchor = at + odd  # 0-based: the changed base; the run after it starts at anchor + 1
        u = tract[odd + 1:odd + 1 + p]
        gt = (1, 1) if t % 3 == 0 else (0, 1)
        if t % 2:
            variants.append(Variant("chr1", anchor + 1, tract[odd], tract[odd] + u, gt))
        else:
            variants.append(Variant("chr1", anchor + 1, tract[odd] + u, tract[odd], gt))
        tracts.append((at, at + len(tract)))
        at += len(tract)
    seq.append("".join(rng.choices("ACGT", k=600)))
    ref_seq = "".join(seq)
    ref = write_fasta(tmp_path / "ref.fa", [("chr1", ref_seq)])
    pysam.faidx(str(ref))
    truth = write_truth_vcf(tmp_path / "truth.vcf.gz", ref, variants)

    def tract_end(pos: int) -> int:
        return next((e for s, e in tracts if s <= pos < e), -1)

    reads = []
    for h in (0, 1):
        # the haplotype as (base, reference position or None for an inserted base)
        hap, i = [], 0
        changes = {v.pos - 1: v for v in variants if v.genotype[h]}
        while i < len(ref_seq):
            v = changes.get(i)
            hap.append((ref_seq[i], i))
            if v is not None and len(v.alt) > len(v.ref):
                hap += [(b, None) for b in v.alt[1:]]
            i += len(v.ref) if v is not None else 1
        for n in range(15 * len(hap) // READ_LEN):
            s = rng.randrange(0, len(hap) - READ_LEN)
            part = hap[s:s + READ_LEN]
            start = next(r for _, r in part if r is not None)
            start -= next(k for k, (_, r) in enumerate(part) if r is not None)
            bases = "".join(b for b, _ in part)
            # gapless from start; past a repeat the shifted flank mismatches: clipped there
            aligned = READ_LEN
            for k in range(READ_LEN):
                r = start + k
                end = tract_end(r - 8)
                if r >= len(ref_seq) or (end >= 0 and r >= end and bases[k] != ref_seq[r]):
                    aligned = k
                    break
            cigar = [(0, aligned)] + ([(4, READ_LEN - aligned)] if aligned < READ_LEN else [])
            reads.append((start, bases, cigar, f"h{h}_{n}"))
    bam = write_reads_bam(tmp_path / "gapless.bam", len(ref_seq), reads)
    vcf = tmp_path / "calls.vcf.gz"
    Caller(ref, threads=2).write_vcf(bam, vcf)
    acc = variant_accuracy(ref, truth, vcf)
    assert acc["indel"]["truth"] == n_tracts and acc["snv"]["query"] == 0, acc
    if not long_runs:
        assert acc["indel"]["recall"] == 1.0 and acc["indel"]["precision"] == 1.0, acc
    records = [ln.split("\t") for ln in _vcf_body(vcf) if not ln.startswith("#")]
    assert records
    for r in records:
        at = int(r[1]) - 1
        alt = r[4].split(",")[0]
        assert left_normalize(ref_seq, at, r[3], alt) == (at, r[3], alt), r


@needs_engine
def test_substitution_before_a_repeat_keeps_its_own_alleles(tmp_path: Path) -> None:
    # A substitution at the base before a tandem run gets unit insertion and deletion
    # candidates at the same position (add_unit_changes). When those are not called, the record
    # is the substitution alone, as normalise() writes it: G>T, not GACAC>TACAC (the record's REF
    # was once the longest of every candidate's at the position, called or not).
    import random

    rng = random.Random(5)
    left = "".join(rng.choice("ACGT") for _ in range(500))
    right = "".join(rng.choice("ACGT") for _ in range(500))
    seq = left + "G" + "AC" * 8 + "T" + right
    ref, bam = error_free_bam(tmp_path, seq, [(500, "G", "T", 0)])
    vcf = tmp_path / "calls.vcf.gz"
    Caller(ref, threads=2).write_vcf(bam, vcf)
    records = [ln.split("\t") for ln in _vcf_body(vcf) if not ln.startswith("#")]
    assert [(r[1], r[3], r[4]) for r in records] == [("501", "G", "T")]


# ---------------------------------------------------------------------------------------------
# CLI


@needs_engine
def test_cli_call_happy_path(diploid: Sample, tmp_path: Path) -> None:
    out = tmp_path / "c.vcf.gz"
    metrics = tmp_path / "c.json"
    proc = run_cli("call", "-f", diploid.ref, diploid.bam, "-o", out, "-t", "2",
                   "-r", "chr1:1-30,000", "--min-mapq", "1", "--metrics", metrics)
    assert proc.returncode == 0, proc.stderr.decode()
    assert sorted(os.listdir(tmp_path)) == ["c.json", "c.vcf.gz", "c.vcf.gz.tbi"]
    m = json.loads(metrics.read_text())
    assert m["pass"] + m["low_qual"] == len(list(records(out))) and m["device"] == "cpu"
    assert m["reads"]["loaded"] > 0
    # where the time went: every stage ran, and threads x wall bounds their sum
    stages = m["stage_seconds"]
    assert set(stages) == {"load", "candidates", "jobs", "costs", "genotype"}
    assert all(v > 0 for v in stages.values()), stages
    assert sum(stages.values()) <= 2 * m["wall_seconds"]
    hdr = str(pysam.VariantFile(str(out)).header)
    assert "##gmsaccelCommand=gmsaccel call -f" in hdr
    assert all(r.contig == "chr1" and r.pos <= 30_000 for r in records(out))
    bed = tmp_path / "r.bed"
    bed.write_text("chr2\t0\t5000\n")
    proc = run_cli("call", "-f", diploid.ref, diploid.bam, "-R", bed, "-o", "-", "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    body = [ln for ln in proc.stdout.decode().splitlines() if not ln.startswith("#")]
    assert body and all(ln.startswith("chr2\t") and int(ln.split("\t")[1]) <= 5000
                        for ln in body)


@needs_engine
def test_cli_run(diploid: Sample, tmp_path: Path) -> None:
    outdir = tmp_path / "out"
    proc = run_cli("run", "-f", diploid.ref, diploid.r1, diploid.r2, "--sample", "NA1",
                   "-o", outdir, "-t", "2")
    assert proc.returncode == 0, proc.stderr.decode()
    assert sorted(os.listdir(outdir)) == [".NA1.run.json", "NA1.bam", "NA1.bam.bai",
                                          "NA1.metrics.json", "NA1.report.html", "NA1.vcf.gz",
                                          "NA1.vcf.gz.tbi"]
    m = json.loads((outdir / "NA1.metrics.json").read_text())
    assert m["reads"] > 0 and m["mapped"] / m["reads"] > 0.95
    assert DEPTH * 0.7 < m["mean_depth"] < DEPTH * 1.3
    assert m["variants"]["SNV"] > 0 and m["titv"] is None or m["titv"] > 0
    assert m["het"] + m["hom"] > 0
    assert m["align_stage_seconds"]["seed"] > 0 and m["call_stage_seconds"]["costs"] > 0
    assert pysam.VariantFile(str(outdir / "NA1.vcf.gz")).header.samples[0] == "NA1"
    # duplicates are marked by default: the BAM's flags agree with the metrics
    with pysam.AlignmentFile(str(outdir / "NA1.bam")) as f:
        recs = [r for r in f if not (r.is_secondary or r.is_supplementary)]
    assert m["duplicates"]["reads_marked"] == sum(r.is_duplicate for r in recs)
    assert m["duplicates"]["pairs_examined"] == sum(
        1 for r in recs if r.is_read1 and not r.is_unmapped and not r.mate_is_unmapped)
    assert m["duplicate_fraction"] == m["duplicates"]["fraction"] < 0.05
    assert all(r.has_tag("ms") for r in recs if not r.is_unmapped and not r.mate_is_unmapped)
    proc = run_cli("run", "-f", diploid.ref, diploid.r1, diploid.r2, "--sample", "NA2",
                   "-o", outdir, "--no-mark-duplicates", "--no-report", "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads((outdir / "NA2.metrics.json").read_text())["duplicates"] is None
    with pysam.AlignmentFile(str(outdir / "NA2.bam")) as f:
        assert not any(r.is_duplicate or r.has_tag("ms") for r in f)


@needs_engine
def test_cli_run_gvcf(diploid: Sample, tmp_path: Path) -> None:
    # --gvcf adds NAME.g.vcf.gz from the same calling pass: the gVCF `call --gvcf` writes from
    # the run's BAM, beside the VCF `call` writes.
    outdir = tmp_path / "out"
    proc = run_cli("run", "-f", diploid.ref, diploid.r1, diploid.r2, "--sample", "G1",
                   "-o", outdir, "-t", "2", "--gvcf", "--no-report", "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    assert sorted(os.listdir(outdir)) == [".G1.run.json", "G1.bam", "G1.bam.bai", "G1.g.vcf.gz",
                                          "G1.g.vcf.gz.tbi", "G1.metrics.json", "G1.vcf.gz",
                                          "G1.vcf.gz.tbi"]
    m = json.loads((outdir / "G1.metrics.json").read_text())
    assert m["gvcf"] == str(outdir / "G1.g.vcf.gz")
    for extra, name in (([], "G1.vcf.gz"), (["--gvcf"], "G1.g.vcf.gz")):
        alone = tmp_path / f"alone-{name}"
        assert run_cli("call", "-f", diploid.ref, outdir / "G1.bam", "-o", alone, "-t", "2",
                       "-q", *extra).returncode == 0
        body = _vcf_body(alone)
        assert len(body) > 10 and _vcf_body(outdir / name) == body, name


@needs_engine
def test_cli_run_cram(diploid: Sample, tmp_path: Path) -> None:
    """run --cram: NAME.cram and its .crai instead of the BAM; the same VCF and metrics."""
    outdir = tmp_path / "out"
    for name, extra in (("B", ["--no-report"]), ("C", ["--cram"])):
        proc = run_cli("run", "-f", diploid.ref, diploid.r1, diploid.r2, "--sample", name,
                       "-o", outdir, "-t", "2", "-q", *extra)
        assert proc.returncode == 0, proc.stderr.decode()
    assert sorted(p for p in os.listdir(outdir) if p.startswith("C.")) == [
        "C.cram", "C.cram.crai", "C.metrics.json", "C.report.html", "C.vcf.gz", "C.vcf.gz.tbi"]
    records_of = [[ln for ln in _vcf_body(outdir / f"{n}.vcf.gz") if not ln.startswith("#")]
                  for n in "BC"]
    assert records_of[0] == records_of[1] and len(records_of[0]) > 10
    b, c = (json.loads((outdir / f"{n}.metrics.json").read_text()) for n in "BC")
    for key in ("reads", "mapped", "duplicates", "variants", "het", "hom"):
        assert b[key] == c[key], key
    assert c["mean_depth"] == pytest.approx(b["mean_depth"], rel=1e-6)
    # the run's own count of mapped records by contig is what the BAM's index says
    with pysam.AlignmentFile(str(outdir / "B.bam")) as f:
        index_stats = {s.contig: s.mapped for s in f.get_index_statistics()}
    assert b["mapped_by_contig"] == c["mapped_by_contig"] == index_stats
    # the report's depth chart counts them too (a .crai has no statistics to read)
    sampled = gmsaccel.report.sample_bam(outdir / "C.cram", 1_000, c["mapped_by_contig"],
                                         c["reference"])
    assert {name: m for name, _, m in sampled.contigs} == index_stats
    with pytest.raises(ValueError, match="mapped reads must be given"):
        gmsaccel.call.mean_depth(outdir / "C.cram", 55_000, reference=str(diploid.ref))
    # CRAM is read against the FASTA: an index alone will not do
    idx = tmp_path / "ref.gxi"
    Index.build(diploid.ref).save(idx)
    proc = run_cli("run", "-f", idx, diploid.r1, diploid.r2, "--sample", "D", "-o", outdir,
                   "--cram")
    assert_clean_failure(proc, "run", "--cram needs the reference FASTA")
    assert not any(p.startswith("D.") for p in os.listdir(outdir))


def test_cli_help_lists_commands() -> None:
    proc = run_cli("--help")
    text = proc.stdout.decode()
    assert proc.returncode == 0 and "call" in text and "run" in text
    for cmd in ("call", "run"):
        assert run_cli(cmd, "--help").returncode == 0


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A reference and a small aligned BAM for the bad-input tests."""
    d = tmp_path_factory.mktemp("small")
    contigs = random_genome(41, {"chr1": 8000, "chr2": 3000})
    ref = write_fasta(d / "ref.fa", contigs)
    pysam.faidx(str(ref))
    haps, _ = plant_variants(contigs, rate=0.002, seed=42)
    r1, r2 = simulate_pairs(haps, 300, seed=43)
    bam = d / "s.bam"
    Aligner(Index.build(ref)).align_fastq(write_fastq(d / "1.fq", r1), write_fastq(d / "2.fq", r2),
                                          bam, read_group=r"@RG\tID:s\tSM:s")
    return ref, bam


def test_cli_call_metrics_directory_missing(small: tuple[Path, Path], tmp_path: Path) -> None:
    ref, bam = small
    metrics = tmp_path / "no" / "m.json"
    proc = run_cli("call", "-f", ref, bam, "-o", tmp_path / "o.vcf.gz", "--metrics", metrics)
    assert_clean_failure(proc, "call", str(metrics), "does not exist", outdir=tmp_path)


def test_cli_call_missing_bam(small: tuple[Path, Path], tmp_path: Path) -> None:
    ref, _ = small
    missing = tmp_path / "nope.bam"
    proc = run_cli("call", "-f", ref, missing, "-o", tmp_path / "o.vcf.gz")
    assert_clean_failure(proc, "call", str(missing), outdir=tmp_path)


def test_cli_call_unindexed_bam(small: tuple[Path, Path], tmp_path: Path) -> None:
    ref, bam = small
    copy = tmp_path / "copy.bam"
    copy.write_bytes(bam.read_bytes())
    proc = run_cli("call", "-f", ref, copy, "-o", tmp_path / "o.vcf.gz")
    assert_clean_failure(proc, "call", str(copy), "index", outdir=tmp_path, allowed=("copy.bam",))


def test_cli_call_contig_length_differs(small: tuple[Path, Path], tmp_path: Path) -> None:
    ref, bam = small
    with pysam.FastaFile(str(ref)) as fa:
        other = write_fasta(tmp_path / "other.fa", [("chr1", fa.fetch("chr1")[:7000]),
                                                    ("chr2", fa.fetch("chr2"))])
    proc = run_cli("call", "-f", other, bam, "-o", tmp_path / "o.vcf.gz")
    assert_clean_failure(proc, "call", "chr1", str(bam), str(other), outdir=tmp_path,
                         allowed=("other.fa",) + tuple(p.name for p in tmp_path.glob("other.fa.*")))


def test_cli_call_region_outside_contig(small: tuple[Path, Path], tmp_path: Path) -> None:
    ref, bam = small
    proc = run_cli("call", "-f", ref, bam, "-r", "chr2:2,900-3,100", "-o", tmp_path / "o.vcf.gz")
    assert_clean_failure(proc, "call", "chr2:2,900-3,100", "outside", outdir=tmp_path)
    proc = run_cli("call", "-f", ref, bam, "-r", "chrZ", "-o", tmp_path / "o.vcf.gz")
    assert_clean_failure(proc, "call", "chrZ", outdir=tmp_path)
    bed = tmp_path / "r.bed"
    bed.write_text("chr1\t7990\t8010\n")
    proc = run_cli("call", "-f", ref, bam, "-R", bed, "-o", tmp_path / "o.vcf.gz")
    assert_clean_failure(proc, "call", "chr1:7990-8010", str(bed), outdir=tmp_path,
                         allowed=("r.bed",))


def test_cli_call_without_engine(small: tuple[Path, Path], tmp_path: Path) -> None:
    if engine_available():
        pytest.skip("this build has the calling engine")
    ref, bam = small
    proc = run_cli("call", "-f", ref, bam, "-o", tmp_path / "o.vcf.gz")
    assert_clean_failure(proc, "call", "unavailable", outdir=tmp_path)
    proc = run_cli("run", "-f", ref, bam, "--sample", "x", "-o", tmp_path / "run")
    assert_clean_failure(proc, "run", "unavailable", outdir=tmp_path)


def test_cli_run_bad_input(small: tuple[Path, Path], tmp_path: Path) -> None:
    ref, _ = small
    proc = run_cli("run", "-f", ref, tmp_path / "missing.fq", "--sample", "x",
                   "-o", tmp_path / "out")
    assert_clean_failure(proc, "run", "missing.fq", outdir=tmp_path)
    proc = run_cli("run", "-f", ref, tmp_path / "missing.fq", "--sample", "a/b",
                   "-o", tmp_path / "out")
    assert_clean_failure(proc, "run", "--sample", outdir=tmp_path)


@needs_engine
def test_cli_run_bad_fastq_leaves_nothing(small: tuple[Path, Path], tmp_path: Path) -> None:
    ref, _ = small
    bad = tmp_path / "bad.fq"
    bad.write_text("@r1\nACGT\n+\nII\n")
    outdir = tmp_path / "out"
    proc = run_cli("run", "-f", ref, bad, "--sample", "x", "-o", outdir)
    assert_clean_failure(proc, "run", str(bad))
    assert not outdir.exists() or os.listdir(outdir) == []


# ---------------------------------------------------------------------------------------------
# several samples jointly, extreme piles, empty stretches


@needs_engine
def test_two_samples_called_jointly(diploid: Sample, tmp_path: Path) -> None:
    contigs = [(n, s) for n, s in random_genome(21, {"chr1": 40_000, "chr2": 15_000})]
    haps, other = plant_variants(contigs, rate=0.002, indel_fraction=0.2, seed=77)
    r1, r2 = simulate_pairs(haps, DEPTH * 55_000 // (2 * READ_LEN), seed=78)
    bam_b = tmp_path / "b.bam"
    Aligner(Index.build(diploid.ref), threads=2).align_fastq(
        write_fastq(tmp_path / "b1.fq.gz", r1), write_fastq(tmp_path / "b2.fq.gz", r2), bam_b,
        read_group=r"@RG\tID:b\tSM:second")
    out = tmp_path / "joint.vcf.gz"
    Caller(diploid.ref, threads=2).write_vcf([diploid.bam, bam_b], out)
    with pysam.VariantFile(str(out)) as vf:
        assert list(vf.header.samples) == ["sample", "second"]
        calls = {(r.contig, r.pos, r.ref, r.alts[0]): r for r in vf if r.filter.keys() == ["PASS"]}
    mine = {(v.contig, v.pos, v.ref, v.alt) for v in diploid.variants}
    theirs = {(v.contig, v.pos, v.ref, v.alt) for v in other}
    only_a = [k for k in mine - theirs if k in calls]
    only_b = [k for k in theirs - mine if k in calls]
    assert len(only_a) > 0.9 * len(mine - theirs) and len(only_b) > 0.9 * len(theirs - mine)
    for k in only_a:  # the second sample is hom-ref where only the first carries the allele
        assert calls[k].samples["second"]["GT"] == (0, 0), k
        assert 1 in calls[k].samples["sample"]["GT"], k
    for k in only_b:
        assert calls[k].samples["sample"]["GT"] == (0, 0), k


def _pile_bam(path: Path, ref: str, depth: int) -> None:
    """depth identical-position reads carrying an A>C/T>G SNV at 100 (half of them)."""
    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": "c", "LN": len(ref)}]}
    seq = ref[50:200]
    alt = seq[:50] + {"A": "C", "C": "G", "G": "T", "T": "A"}[seq[50]] + seq[51:]
    with pysam.AlignmentFile(str(path), "wb", header=header) as f:
        for i in range(depth):
            a = pysam.AlignedSegment(f.header)
            a.query_name = f"r{i}"
            a.query_sequence = alt if i % 2 else seq
            a.flag = 0
            a.reference_id, a.reference_start, a.mapping_quality = 0, 50, 60
            a.cigarstring = "150M"
            a.query_qualities = pysam.qualitystring_to_array("I" * 150)
            f.write(a)
    pysam.index(str(path))


@needs_engine
def test_ten_thousand_x_pile_is_capped_and_called(tmp_path: Path) -> None:
    ref_seq = random_genome(5, {"c": 3_000})[0][1]
    ref = write_fasta(tmp_path / "ref.fa", [("c", ref_seq)])
    pysam.faidx(str(ref))
    bam = tmp_path / "pile.bam"
    _pile_bam(bam, ref_seq, 10_000)
    out = tmp_path / "pile.vcf.gz"
    proc = run_cli("call", "-f", ref, bam, "-o", out, "--max-depth", "500")
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "warning: 9,500 reads skipped where depth exceeded --max-depth 500" in err
    recs = records(out)
    assert [(r.pos, r.ref, r.alts) for r in recs] == [
        (101, ref_seq[100], ({"A": "C", "C": "G", "G": "T", "T": "A"}[ref_seq[100]],))]
    assert recs[0].samples[0]["GT"] == (0, 1)


@needs_engine
def test_zero_coverage_stretches(diploid: Sample, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # chr2 of the diploid sample, but a region past all its reads' reach is empty: no records,
    # and a gVCF covers it with one DP 0 block, however many shards it is cut into (each shard
    # is then one block continuing the one before)
    monkeypatch.setattr(gmsaccel.call, "MIN_SHARD_SIZE", 1_000)
    monkeypatch.setattr(gmsaccel.call, "SHARD_SIZE", 2_500)
    out = tmp_path / "empty.vcf.gz"
    caller = Caller(diploid.ref)
    length = dict(caller.contigs)["chr2"]
    header = {"HD": {"VN": "1.6", "SO": "coordinate"},
              "SQ": [{"SN": n, "LN": ln} for n, ln in caller.contigs]}
    empty = tmp_path / "empty.bam"
    with pysam.AlignmentFile(str(empty), "wb", header=header):
        pass
    pysam.index(str(empty))
    caller.write_vcf([empty], out, region=f"chr2:1-{length}")
    assert records(out) == []
    gout = tmp_path / "empty.g.vcf.gz"
    caller.write_vcf([empty], gout, region=f"chr2:1-{length}", gvcf=True)
    blocks = records(gout)
    assert length > 3 * 2_500 and len(blocks) == 1
    assert blocks[0].pos == 1 and blocks[0].stop == length
    assert blocks[0].alts == ("<*>",) and blocks[0].samples[0]["MIN_DP"] == 0


@needs_engine
def test_cram_calls_equal_bam_calls(diploid: Sample, tmp_path: Path) -> None:
    cram = tmp_path / "sample.cram"
    pysam.view("-C", "-T", str(diploid.ref), "-o", str(cram), str(diploid.bam),
               catch_stdout=False)
    pysam.index(str(cram))
    caller = Caller(diploid.ref, threads=2)
    from_bam, from_cram = tmp_path / "b.vcf.gz", tmp_path / "c.vcf.gz"
    caller.write_vcf([diploid.bam], from_bam)
    caller.write_vcf([cram], from_cram)
    body = [str(r) for r in records(from_bam)]
    assert len(body) > 50 and body == [str(r) for r in records(from_cram)]
