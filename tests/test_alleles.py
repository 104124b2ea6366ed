"""Given alleles (alleles.py, `call --alleles`): read and normalised from a VCF, checked against
the reference, and genotyped by the caller whatever the reads say."""

from __future__ import annotations

import random
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pysam
import pytest
from conftest import error_free_bam, run_cli, write_fasta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gmsaccel.call
from gmsaccel import _core
from gmsaccel.alleles import read_given_alleles
from gmsaccel.call import Caller

HOLE = (4_000, 4_600)  # no read overlaps this stretch of the sample


def _seq() -> str:
    rng = random.Random(5)
    seq = [rng.choice("ACGT") for _ in range(6_000)]
    seq[2_990:2_996] = "AAAAAA"  # a homopolymer: its deletion has many spellings
    return "".join(seq)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """ref.fa, and a BAM of error-free reads: a het SNV at 1,000 and a het deletion of one A
    from the homopolymer at 2,990-2,995, and no reads over HOLE."""
    d = tmp_path_factory.mktemp("given")
    seq = _seq()
    snv_alt = "C" if seq[1_000] != "C" else "G"
    ref, full = error_free_bam(d, seq, [(1_000, seq[1_000], snv_alt, 0),
                                        (2_989, seq[2_989] + "A", seq[2_989], 1)])
    bam = d / "holed.bam"
    with pysam.AlignmentFile(str(full)) as f, pysam.AlignmentFile(str(bam), "wb",
                                                                  template=f) as out:
        for r in f:
            if r.reference_end <= HOLE[0] or r.reference_start >= HOLE[1]:
                out.write(r)
    pysam.index(str(bam))
    return ref, bam, seq


def write_sites(path: Path, seq: str, rows: list[tuple],
                contig: str = "chr1") -> Path:
    """A VCF of (1-based POS, REF, ALT[, ID]) rows; REF '=' takes the reference's base there."""
    lines = ["##fileformat=VCFv4.2", f"##contig=<ID=chr1,length={len(seq)}>",
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    for pos, ref, alt, *rest in rows:
        ref = seq[pos - 1] if ref == "=" else ref
        lines.append(f"{contig}\t{pos}\t{rest[0] if rest else '.'}\t{ref}\t{alt}\t.\t.\t.")
    path.write_text("\n".join(lines) + "\n")
    return path


def _other(base: str) -> str:
    return "C" if base != "C" else "G"


def _given_rows(seq: str) -> list[tuple[int, str, str]]:
    return [
        (1_001, "=", _other(seq[1_000])),           # the sample's het SNV
        (2_001, "=", _other(seq[2_000])),           # a SNV the sample lacks
        (2_501, "=", seq[2_500] + "GT"),            # an insertion it lacks
        (2_995, "AA", "A"),                         # its deletion, written right-aligned
        (4_301, "=", _other(seq[4_300])),           # no read covers it
        (1_001, "=", _other(seq[1_000])),           # a duplicate line
        (3_501, seq[3_500:3_502], "TT" if seq[3_500:3_502] != "TT" else "GG"),  # an MNP
        (3_601, "=", "<DEL>"),                      # symbolic
    ]


def _genotypes(vcf: Path) -> dict[tuple[int, str, str], tuple]:
    with pysam.VariantFile(str(vcf)) as f:
        return {(r.pos, r.ref, r.alts[0]): (r.samples[0]["GT"], r.samples[0]["DP"],
                                            r.filter.keys(), r.samples[0]["GQ"]) for r in f}


def test_reading_normalises_dedupes_and_skips(sample, tmp_path: Path) -> None:
    ref, _, seq = sample
    caller = Caller(ref)
    given = read_given_alleles(write_sites(tmp_path / "s.vcf", seq, _given_rows(seq)),
                               dict(caller.contigs), caller.ref_codes)
    alleles = given.by_contig["chr1"]
    assert len(given) == len(alleles) == 5
    # the deletion moved to the homopolymer's left end, anchored on the base before it
    assert (2_988, seq[2_988] + "A", seq[2_988], "") in alleles
    assert given.skipped == {"MNP": 1, "symbolic": 1}
    assert "record 7 (chr1:3501" in given.skipped_note()
    assert given.near("chr1", 2_000, 2_989) == [(2_000, seq[2_000], _other(seq[2_000]), ""),
                                                (2_500, seq[2_500], seq[2_500] + "GT", ""),
                                                (2_988, seq[2_988] + "A", seq[2_988], "")]


@pytest.mark.parametrize("only", [False, True], ids=["with-discovered", "only"])
def test_given_alleles_get_records(sample, tmp_path: Path, only: bool) -> None:
    ref, bam, seq = sample
    sites = write_sites(tmp_path / "s.vcf", seq, _given_rows(seq))
    plain, given = tmp_path / "plain.vcf.gz", tmp_path / "given.vcf.gz"
    Caller(ref).write_vcf(bam, plain)
    Caller(ref, alleles=sites, alleles_only=only).write_vcf(bam, given)
    discovered, got = _genotypes(plain), _genotypes(given)
    snv = (1_001, seq[1_000], _other(seq[1_000]))
    deletion = (2_989, seq[2_988] + "A", seq[2_988])
    assert discovered.keys() == {snv, deletion}  # what the reads alone give
    ref_snv = (2_001, seq[2_000], _other(seq[2_000]))
    insertion = (2_501, seq[2_500], seq[2_500] + "GT")
    unseen = (4_301, seq[4_300], _other(seq[4_300]))
    assert got.keys() == {snv, deletion, ref_snv, insertion, unseen}
    for key in (snv, deletion):  # found anyway: the same record as without given alleles
        assert got[key] == discovered[key] and got[key][0] == (0, 1)
    for key in (ref_snv, insertion):  # seen in ~60 reads, carried by none
        gt, dp, filters, gq = got[key]
        assert gt == (0, 0) and dp > 40 and gq == 99 and list(filters) == ["PASS"]
    gt, dp, filters, gq = got[unseen]
    assert gt == (None, None) and dp == 0 and gq == 0
    if not only:  # every discovered record is still there, unchanged
        with pysam.VariantFile(str(plain)) as a, pysam.VariantFile(str(given)) as b:
            wanted = {str(r) for r in a}
            assert wanted <= {str(r) for r in b}
    summary = gmsaccel.call.summarize_vcf(given)
    assert summary["ref_only"] == 3 and summary["variants"]["SNV"] == 1


def test_given_records_do_not_depend_on_shards(sample, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ref, bam, seq = sample
    sites = write_sites(tmp_path / "s.vcf", seq, _given_rows(seq))
    bodies = []
    for size in (700, 10_000):  # shard edges beside the given alleles, or none
        monkeypatch.setattr(gmsaccel.call, "MIN_SHARD_SIZE", size)
        monkeypatch.setattr(gmsaccel.call, "SHARD_SIZE", size)
        out = tmp_path / f"s{size}.vcf.gz"
        Caller(ref, alleles=sites, threads=2).write_vcf(bam, out)
        with pysam.VariantFile(str(out)) as f:
            bodies.append([str(r) for r in f])
    assert bodies[0] == bodies[1] and len(bodies[0]) == 5


def test_alleles_only_calls_just_their_neighbourhoods(sample, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ref, bam, seq = sample
    sites = write_sites(tmp_path / "s.vcf", seq, _given_rows(seq))
    caller = Caller(ref, alleles=sites, alleles_only=True)
    assert [(r.contig, r.start, r.end) for r in caller.regions()] == [("chr1", 1_000, 4_301)]
    # alleles less than GIVEN_GAP apart share a span
    monkeypatch.setattr(gmsaccel.call, "GIVEN_GAP", 900)
    assert [(r.contig, r.start, r.end) for r in caller.regions()] == [
        ("chr1", 1_000, 1_001), ("chr1", 2_000, 2_989), ("chr1", 4_300, 4_301)]
    near, whole = tmp_path / "near.vcf.gz", tmp_path / "whole.vcf.gz"
    caller.write_vcf(bam, near)
    caller.write_vcf(bam, whole, region="chr1")
    with pysam.VariantFile(str(near)) as a, pysam.VariantFile(str(whole)) as b:
        assert [str(r) for r in a] == [str(r) for r in b]


def test_given_alleles_on_an_executor(sample, tmp_path: Path) -> None:
    """Workers in other processes read the alleles themselves (by the path): same output."""
    ref, bam, seq = sample
    sites = write_sites(tmp_path / "s.vcf", seq, _given_rows(seq))
    local, remote = tmp_path / "local.vcf.gz", tmp_path / "remote.vcf.gz"
    Caller(ref, alleles=sites, alleles_only=True).write_vcf(bam, local)
    with ProcessPoolExecutor(2) as ex:
        Caller(ref, alleles=sites, alleles_only=True, executor=ex).write_vcf(bam, remote)
    with pysam.VariantFile(str(local)) as a, pysam.VariantFile(str(remote)) as b:
        assert [str(r) for r in a] == [str(r) for r in b]


def test_given_alleles_in_a_gvcf(sample, tmp_path: Path) -> None:
    ref, bam, seq = sample
    sites = write_sites(tmp_path / "s.vcf", seq, _given_rows(seq))
    out = tmp_path / "g.vcf.gz"
    Caller(ref, alleles=sites).write_vcf(bam, out, gvcf=True)
    with pysam.VariantFile(str(out)) as f:
        recs = [r for r in f if r.alts[0] != "<*>"]
    assert len(recs) == 5 and all(r.alts[-1] == "<*>" for r in recs)
    # QUAL of a record no read reaches is 0, and none is written "-0"
    assert [r.qual for r in recs if r.pos == 4_301] == [0]
    assert all("\t-0\t" not in str(r) for r in recs)
    with pytest.raises(ValueError, match="alleles_only"):
        Caller(ref, alleles=sites, alleles_only=True).write_vcf(bam, tmp_path / "x.g.vcf.gz",
                                                                gvcf=True)


@pytest.mark.parametrize(("rows", "contig", "message"), [
    ([(100, "=", "A")], "chrZ", "record 1 (chrZ:100): contig chrZ is not in the reference"),
    ([(100, "=", "A"), (200, "N", "A")], "chr1", "record 2 (chr1:200): REF N differs from the "
                                                 "reference"),
    ([(5_999, "ACGT", "A")], "chr1", "record 1 (chr1:5999): REF runs past the contig's end"),
])
def test_bad_sites_are_errors(sample, tmp_path: Path, rows, contig: str, message: str) -> None:
    ref, _, seq = sample
    sites = write_sites(tmp_path / "bad.vcf", seq, rows, contig)
    with pytest.raises(_core.InputError, match=f"^{sites}: {message}".replace("(", r"\(")
                       .replace(")", r"\)")):
        Caller(ref, alleles=sites)


def test_unreadable_sites_file(sample, tmp_path: Path) -> None:
    ref, _, _ = sample
    sites = tmp_path / "junk.vcf"
    sites.write_text("this is not a VCF\n")
    with pytest.raises(_core.InputError, match=f"^{sites}: cannot read as VCF/BCF"):
        Caller(ref, alleles=sites)


def test_cli_alleles(sample, tmp_path: Path) -> None:
    ref, bam, seq = sample
    sites = write_sites(tmp_path / "s.vcf", seq, _given_rows(seq))
    out = tmp_path / "o.vcf.gz"
    proc = run_cli("call", "-f", ref, "--alleles", sites, "--alleles-only", "-o", out, bam)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "5 given alleles" in err and "2 given ALT alleles skipped (MNP 1, symbolic 1" in err
    assert "3 given alleles no sample carries" in err
    assert len(_genotypes(out)) == 5
    proc = run_cli("call", "-f", ref, "--alleles-only", "-o", tmp_path / "n.vcf.gz", bam)
    assert proc.returncode == 1 and b"--alleles-only needs --alleles" in proc.stderr
    assert not (tmp_path / "n.vcf.gz").exists()


def test_reading_fetches_each_contig_once_and_skips_what_cannot_be_given(dataset,
                                                                         tmp_path: Path) -> None:
    """Records alternate between contigs; an indel at a contig's first base has nothing to
    anchor on; a record without ALT and an IUPAC REF over a reference N are skipped, counted."""
    seqs = dict(dataset.contigs)
    a, b = seqs["chrA"], seqs["chrB"]
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=chrA,length=30000>",
             "##contig=<ID=chrB,length=12000>", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    rows = [("chrB", 100, b[99], _other(b[99])), ("chrA", 100, a[99], _other(a[99])),
            ("chrB", 1, b[0:2], b[1]),             # deletes the contig's first base
            ("chrA", 200, a[199], "."),            # no ALT
            ("chrB", 300, b[299], _other(b[299]))]
    lines += [f"{c}\t{p}\t.\t{r}\t{x}\t.\t.\t." for c, p, r, x in rows]
    sites = tmp_path / "mixed.vcf"
    sites.write_text("\n".join(lines) + "\n")
    caller = Caller(dataset.ref)
    fetched: list[str] = []

    def codes(contig: str):
        fetched.append(contig)
        return caller.ref_codes(contig)

    given = read_given_alleles(sites, dict(caller.contigs), codes)
    assert sorted(fetched) == ["chrA", "chrB"]
    assert {c: [p for p, *_ in v] for c, v in given.by_contig.items()} == {
        "chrA": [99], "chrB": [99, 299]}
    assert given.skipped == {"indel at the contig's start": 1, "no ALT": 1}
    assert given.first_skipped.startswith("record 3 (chrB:1 ")
    # a reference N stands for an IUPAC REF (skipped as non-ACGT, not an error)
    seq = "ACGT" * 50 + "N" + "ACGT" * 50
    ref = write_fasta(tmp_path / "n.fa", [("chrN", seq)])
    iupac = tmp_path / "iupac.vcf"
    iupac.write_text("##fileformat=VCFv4.2\n##contig=<ID=chrN,length=401>\n"
                     "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchrN\t201\t.\tR\tA\t.\t.\t.\n")
    n_caller = Caller(ref)
    assert read_given_alleles(iupac, dict(n_caller.contigs), n_caller.ref_codes).skipped == {
        "non-ACGT": 1}


def test_given_alleles_inside_a_called_deletion(tmp_path: Path) -> None:
    """A given SNV in a 10-base deletion: a haplotype that deletes it has no base there, so its
    allele is missing (./. homozygous, 0/. heterozygous), and its reads are not REF depth."""
    rng = random.Random(3)
    seq = "".join(rng.choice("ACGT") for _ in range(4_000))
    out = {}
    for zygosity, haps in (("hom", (0, 1)), ("het", (0,))):
        d = tmp_path / zygosity
        d.mkdir()
        ref, bam = error_free_bam(d, seq, [(1_000, seq[1_000:1_011], seq[1_000], h)
                                           for h in haps])
        sites = write_sites(d / "s.vcf", seq, [(1_006, "=", _other(seq[1_005])),
                                               (2_001, "=", _other(seq[2_000]))])
        Caller(ref, alleles=sites, alleles_only=True).write_vcf(bam, d / "o.vcf.gz")
        with pysam.VariantFile(str(d / "o.vcf.gz")) as f:
            out[zygosity] = {r.pos: r.samples[0] for r in f}
    inside, outside = out["hom"][1_006], out["hom"][2_001]
    assert inside["GT"] == (None, None) and inside["AD"] == (0, 0) and inside["GQ"] == 0
    assert outside["GT"] == (0, 0) and outside["GQ"] == 99
    het = out["het"][1_006]
    assert het["GT"] == (0, None) and 20 < het["AD"][0] < 40 and het["AD"][1] == 0


def test_a_rewritten_sites_file_is_read_again_on_an_executor(sample, tmp_path: Path) -> None:
    ref, bam, seq = sample
    sites = tmp_path / "s.vcf"
    positions = []
    with ThreadPoolExecutor(2) as ex:
        for pos in (2_001, 3_501):
            write_sites(sites, seq, [(pos, "=", _other(seq[pos - 1]))])
            out = tmp_path / f"o{pos}.vcf.gz"
            Caller(ref, alleles=sites, alleles_only=True, executor=ex).write_vcf(bam, out)
            with pysam.VariantFile(str(out)) as f:
                positions.append([r.pos for r in f])
    assert positions == [[2_001], [3_501]]


def test_run_checks_the_alleles_before_aligning(sample, dataset, tmp_path: Path) -> None:
    outdir = tmp_path / "out"
    for extra, message in ((["--alleles-only"], "--alleles-only needs --alleles"),
                           (["--alleles", str(tmp_path / "none.vcf")], "none.vcf: cannot read"),
                           (["--alleles", str(write_sites(tmp_path / "s.vcf", "", []))],
                            None)):
        args = ["run", "-f", dataset.ref, dataset.r1, dataset.r2, "--sample", "S", "-o", outdir,
                "--gvcf", "--alleles-only", *extra] if message is None else \
            ["run", "-f", dataset.ref, dataset.r1, dataset.r2, "--sample", "S", "-o", outdir,
             *extra]
        proc = run_cli(*args)
        err = proc.stderr.decode()
        assert proc.returncode == 1, err
        assert (message or "does not go with --alleles-only") in err and "aligned" not in err
        assert not (outdir / "S.bam").exists()


def test_given_ids_reach_the_records(sample, tmp_path: Path) -> None:
    """The sites file's IDs (rsIDs of a panel) label the records of their alleles, however
    the allele was spelt and wherever it is written twice."""
    ref, bam, seq = sample
    snv = _other(seq[1_000])
    rows = [(1_001, "=", snv, "rs1"), (1_001, "=", snv, "rs1b;rs1"),  # one allele, two lines
            (2_001, "=", _other(seq[2_000]), "rs2"),
            (2_995, "AA", "A", "rs3"),  # written right-aligned: the same deletion
            (2_501, "=", seq[2_500] + "GT")]  # no ID
    sites = write_sites(tmp_path / "s.vcf", seq, rows)
    out = tmp_path / "ids.vcf.gz"
    caller = Caller(ref, alleles=sites, alleles_only=True)
    caller.write_vcf(bam, out)
    with pysam.VariantFile(str(out)) as f:
        ids = {r.pos: r.id for r in f}
    assert ids == {1_001: "rs1;rs1b", 2_001: "rs2", 2_989: "rs3", 2_501: None}
    # the API's variants carry them too
    assert {v.pos: v.id for v in caller.call(bam)} == {1_001: "rs1;rs1b", 2_001: "rs2",
                                                      2_989: "rs3", 2_501: ""}


def test_alleles_the_reads_lack_leave_the_other_records_as_they_were(
        sample, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """Given alleles the reads do not propose ride in the windows beside the sample's own
    variants (or in windows of their own) on haplotypes of their own: every record the reads
    make is written as without them, byte for byte, however dense the panel. (Simulated reads
    with errors, so that QUAL and PL are not all at their caps.)"""
    from test_call import make_sample

    sim = make_sample(tmp_path_factory.mktemp("sim"), 2, 41)
    seqs = {c.name: c.sequence for c in pysam.FastxFile(str(sim.ref))}
    rows = []
    for v in sim.variants:
        for d in (-7, -4, -2, 3, 5, 9):
            p = v.pos + d  # (0-based)
            if 0 < p < len(seqs[v.contig]) and all(abs(p - w.pos) > 1 for w in sim.variants):
                rows.append((v.contig, p + 1, seqs[v.contig][p], _other(seqs[v.contig][p])))
    lines = ["##fileformat=VCFv4.2"] + [f"##contig=<ID={c},length={len(s)}>"
                                        for c, s in seqs.items()]
    lines += ["#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    lines += [f"{c}\t{p}\t.\t{r}\t{a}\t.\t.\t." for c, p, r, a in sorted(set(rows))]
    panel = tmp_path / "panel.vcf"
    panel.write_text("\n".join(lines) + "\n")
    plain, given = tmp_path / "p.vcf.gz", tmp_path / "g.vcf.gz"
    Caller(sim.ref, threads=2).write_vcf(sim.bam, plain)
    Caller(sim.ref, threads=2, alleles=panel).write_vcf(sim.bam, given)
    with pysam.VariantFile(str(plain)) as a, pysam.VariantFile(str(given)) as b:
        want = [str(r) for r in a]
        got = {str(r) for r in b}
    assert len(want) > 50 and all(r in got for r in want)

    ref, bam, seq = sample
    near = [p for p in range(960, 1_050, 3) if p != 1_000] + \
        [p for p in range(2_950, 3_040, 4) if not 2_988 <= p <= 2_996]
    rows = [(p + 1, "=", _other(seq[p])) for p in near]
    rows += [(2_001, "=", seq[2_000] + "TTG"), (2_981, "=", seq[2_980] + "C")]  # insertions
    sites = write_sites(tmp_path / "dense.vcf", seq, rows)
    plain, given = tmp_path / "plain.vcf.gz", tmp_path / "given.vcf.gz"
    Caller(ref).write_vcf(bam, plain)
    Caller(ref, alleles=sites).write_vcf(bam, given)
    with pysam.VariantFile(str(plain)) as a, pysam.VariantFile(str(given)) as b:
        want = [str(r) for r in a]
        got = {(r.pos, r.ref, r.alts): r for r in b}
    assert len(want) == 2 and len(got) == 2 + len(rows)
    with pysam.VariantFile(str(plain)) as a:
        for r in a:
            assert str(got[(r.pos, r.ref, r.alts)]) == str(r)
    lacking = [r for k, r in got.items() if str(r) not in want]
    assert all(r.samples[0]["GT"] == (0, 0) and r.samples[0]["GQ"] > 20 for r in lacking)


def test_a_satellite_the_few_reads_carry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A given allele on too few reads for the reads to propose it (one of two here): its
    haplotype is better than every other for that read, and it is genotyped from them, the
    same for any shard."""
    from conftest import write_reads_bam

    rng = random.Random(8)
    seq = "".join(rng.choice("ACGT") for _ in range(3_000))
    ref = write_fasta(tmp_path / "ref.fa", [("chr1", seq)])
    pysam.faidx(str(ref))
    alt = _other(seq[1_500])
    with_alt = seq[1_420:1_500] + alt + seq[1_501:1_570]
    reads = [(1_420, seq[1_420:1_570], [(0, 150)], "ref1"), (1_420, with_alt, [(0, 150)], "alt1")]
    reads += [(s, seq[s:s + 150], [(0, 150)], f"far{s}") for s in range(0, 1_200, 40)]
    bam = write_reads_bam(tmp_path / "two.bam", len(seq), reads)
    sites = write_sites(tmp_path / "s.vcf", seq, [(1_501, "=", alt), (1_511, "=",
                                                                      _other(seq[1_510]))])
    bodies = []
    for size in (100, 1_000_000):
        monkeypatch.setattr(gmsaccel.call, "MIN_SHARD_SIZE", size)
        monkeypatch.setattr(gmsaccel.call, "SHARD_SIZE", size)
        for _ in range(2):
            out = tmp_path / f"o{size}.vcf.gz"
            Caller(ref, alleles=sites, alleles_only=True).write_vcf(bam, out)
            with pysam.VariantFile(str(out)) as f:
                bodies.append([str(r) for r in f])
    assert all(b == bodies[0] for b in bodies)
    with pysam.VariantFile(str(tmp_path / "o100.vcf.gz")) as f:
        recs = {r.pos: r.samples[0] for r in f}
    assert recs[1_501]["GT"] == (0, 1) and recs[1_501]["AD"] == (1, 1)
    assert recs[1_511]["GT"] == (0, 0)


# ----------------------------------------------------------------------------------------------
# The reading against a definition in Python (pysam's parsing, the rules written out plainly)

_BASES = "ACGTN"


def _why_not(ref: str, alt: str) -> str | None:
    if ref == alt:
        return "not a change"
    if not ref or not alt:
        return "indel at the contig's start"
    if len(ref) == 1 and len(alt) == 1:
        return None
    if (len(ref) == 1 or len(alt) == 1) and ref[0] == alt[0]:
        return None if abs(len(ref) - len(alt)) <= 300 else "long indel"
    return "MNP" if len(ref) == len(alt) else "complex"


def _read_by_python(path: Path, contigs: dict[str, int], ref_codes) -> tuple:
    """(by_contig, skipped, first_skipped) as read_given_alleles defines them."""
    rows: dict[str, list] = {}
    with pysam.VariantFile(str(path)) as vcf:
        for n, rec in enumerate(vcf, 1):
            if rec.chrom not in contigs:
                raise _core.InputError(f"{path}: record {n} ({rec.chrom}:{rec.pos}): contig "
                                       f"{rec.chrom} is not in the reference")
            rows.setdefault(rec.chrom, []).append(
                (n, rec.pos - 1, rec.ref.upper(), [a.upper() for a in rec.alts or ()],
                 rec.id or ""))
    by_contig, skipped, first = {}, {}, None
    for contig, records in rows.items():
        codes = ref_codes(contig)
        ids: dict[tuple, list[str]] = {}
        for n, start, ref, alts, rec_id in records:
            where = f"record {n} ({contig}:{start + 1})"
            if start + len(ref) > contigs[contig]:
                raise _core.InputError(f"{path}: {where}: REF runs past the contig's end "
                                       f"({contigs[contig]:,} bases)")
            actual = "".join(_BASES[min(int(c), 4)] for c in codes[start:start + len(ref)])
            pairs = zip(ref, actual, strict=True)
            if any(r != a and not (a == "N" and r not in "ACGT") for r, a in pairs):
                raise _core.InputError(f"{path}: {where}: REF {ref[:20]} differs from the "
                                       f"reference ({actual[:20]}); is it the same build?")
            why_alt = [("no ALT", ".")] if not alts else []
            for alt in alts:
                if alt.startswith("<") or "[" in alt or "]" in alt or alt in ("*", "."):
                    why_alt.append(("symbolic", alt))
                elif set(alt) - set("ACGT") or set(ref) - set("ACGT"):
                    why_alt.append(("non-ACGT", alt))
                else:
                    allele = tuple(_core.normalise_allele(start, ref, alt, codes))
                    why = _why_not(allele[1], allele[2])
                    if why:
                        why_alt.append((why, alt))
                        continue
                    known = ids.setdefault(allele, [])
                    known += [i for i in rec_id.split(";") if rec_id and i not in known]
            for why, alt in why_alt:
                skipped[why] = skipped.get(why, 0) + 1
                if first is None or n < first[0]:
                    first = (n, f"record {n} ({contig}:{start + 1} {ref}>{alt})")
        if ids:
            by_contig[contig] = sorted((*a, ";".join(v)) for a, v in ids.items())
    return by_contig, skipped, first[1] if first else ""


_REF_A = "".join(random.Random(11).choice("ACGT") for _ in range(120))
_REF_B = "AAAAAAAAAA" + "CA" * 20 + "NNNN" + "".join(random.Random(12).choice("ACGT")
                                                    for _ in range(80))
_IDS = ["rs1", "rs2", "rs3;rs1", "COSV9"]


@st.composite
def _site_rows(draw) -> list[tuple[str, int, str, str, str]]:
    rows = []
    for _ in range(draw(st.integers(0, 25))):
        contig = draw(st.sampled_from(["chrA", "chrB"]))
        seq = _REF_A if contig == "chrA" else _REF_B
        start = draw(st.integers(0, len(seq) - 6))
        ref = seq[start:start + draw(st.integers(1, 5))]
        if draw(st.integers(0, 9)) == 0:
            ref = ref.lower()
        if "N" in ref and draw(st.booleans()):
            ref = ref.replace("N", "R")  # IUPAC over a reference N
        if draw(st.integers(0, 40)) == 0:  # the wrong build: an error naming the record
            ref = "T" + ref[1:] if ref[0] != "T" else "G" + ref[1:]
        if draw(st.integers(0, 40)) == 0:  # a REF past the contig's end
            start, ref = len(seq) - 2, seq[-2:] + "A"
        alts = []
        for _ in range(draw(st.integers(0, 3))):
            kind = draw(st.integers(0, 8))
            base = draw(st.sampled_from("ACGT"))
            alts.append([base, ref[0] + base * draw(st.integers(1, 4)), ref[0], ref[:1] + base,
                         ref[:-1] + base if len(ref) > 1 else base + base, "<DEL>", "*", "ANC",
                         ref][kind])
        alts = list(dict.fromkeys(a for a in alts if a.upper() != ref.upper()))
        rec_id = draw(st.sampled_from([".", *_IDS]))
        rows.append((contig, start + 1, ref, ",".join(alts) or ".", rec_id))
    return rows


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_site_rows())
def test_reading_matches_its_definition(tmp_path: Path, rows) -> None:
    """Random records (unsorted, lower case, IUPAC, repeats, several ALTs, IDs, every kind of
    ALT): htslib's reading in C++ gives what the rules written in Python give."""
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=chrA,length=120>",
             "##contig=<ID=chrB,length=134>", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    lines += [f"{c}\t{p}\t{i}\t{r}\t{a}\t.\t.\t." for c, p, r, a, i in rows]
    sites = tmp_path / "random.vcf"
    sites.write_text("\n".join(lines) + "\n")
    contigs = {"chrA": len(_REF_A), "chrB": len(_REF_B)}
    codes = {"chrA": _core.encode(_REF_A), "chrB": _core.encode(_REF_B)}
    asked: list[str] = []

    def ref_codes(contig: str) -> np.ndarray:
        asked.append(contig)
        return codes[contig]

    try:
        want = _read_by_python(sites, contigs, lambda c: codes[c])
    except _core.InputError as e:
        with pytest.raises(_core.InputError) as got_error:
            read_given_alleles(sites, contigs, ref_codes)
        assert str(got_error.value) == str(e)
        return
    got = read_given_alleles(sites, contigs, ref_codes)
    assert (got.by_contig, got.skipped, got.first_skipped) == want
    assert list(got.by_contig) == list(want[0])
    assert asked == list(dict.fromkeys(r[0] for r in rows))


_HEADER = ("##fileformat=VCFv4.2\n##contig=<ID=c,length=30>\n"
           "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
_C = "A" * 10 + "N" + "A" * 19


def test_pos_0_is_skipped_not_read_before_the_contig(tmp_path: Path) -> None:
    """POS 0 (a telomere) has no base: skipped and counted, never read before the contig."""
    sites = tmp_path / "p0.vcf"
    sites.write_text(_HEADER + "c\t0\t.\tA\tC\t.\t.\t.\nc\t5\trs5\tA\tC\t.\t.\t.\n")
    got = read_given_alleles(sites, {"c": 30}, lambda _: _core.encode(_C))
    assert got.by_contig == {"c": [(4, "A", "C", "rs5")]}
    assert got.skipped == {"at POS 0": 1} and got.first_skipped == "record 1 (c:0 A>C)"


def test_a_truncated_bgzipped_sites_file_is_an_error(tmp_path: Path) -> None:
    """A bgzipped file cut at a block boundary still parses; its missing end-of-file block is
    the only sign, and reading it would silently lose the alleles after the cut."""
    body = "".join(f"c\t{p}\t.\tA\tC\t.\t.\t.\n" for p in range(1, 30) if p != 11)
    whole = tmp_path / "whole.vcf.gz"
    with pysam.BGZFile(str(whole), "wb") as f:
        f.write((_HEADER + body).encode())
    assert len(read_given_alleles(whole, {"c": 30}, lambda _: _core.encode(_C))) == 28
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(whole.read_bytes()[:-28])  # without the empty end-of-file block
    with pytest.raises(_core.InputError, match="no BGZF EOF marker; file may be truncated"):
        read_given_alleles(cut, {"c": 30}, lambda _: _core.encode(_C))


def test_non_ascii_text_in_a_sites_file_gives_clear_errors(tmp_path: Path) -> None:
    """Messages show file text as printable ASCII ('?' for anything else), so that a REF cut at
    20 bytes never splits a character; an ID that is not UTF-8 is an error naming its record."""
    sites = tmp_path / "u.vcf"
    sites.write_text(_HEADER + "c\t1\t.\t" + "A" * 19 + "\u00e9\tA\t.\t.\t.\n", encoding="utf-8")
    with pytest.raises(_core.InputError, match=r"record 1 \(c:1\): REF A{19}\? differs"):
        read_given_alleles(sites, {"c": 30}, lambda _: _core.encode(_C))
    sites.write_bytes((_HEADER + "c\t2\trs\xff1\tA\tC\t.\t.\t.\n").encode("latin-1"))
    with pytest.raises(_core.InputError, match=r"record 1 \(c:2\): ID rs\?1 is not UTF-8 text"):
        read_given_alleles(sites, {"c": 30}, lambda _: _core.encode(_C))
