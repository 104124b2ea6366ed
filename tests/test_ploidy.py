"""Ploidy by region and sex (ploidy.py, `call --ploidy-file --sex`): a male's chrX outside the
pseudo-autosomal region and his chrY are called haploid, a female's chrY not at all, each
sample with its own ploidy in one joint call."""

from __future__ import annotations

from pathlib import Path

import pysam
import pysam.bcftools
import pytest
from conftest import random_genome, run_cli, write_fasta

import gmsaccel.call
from gmsaccel import _core
from gmsaccel.align import Aligner, Index
from gmsaccel.call import Caller
from gmsaccel.ploidy import read_ploidy_file
from gmsaccel.simulate import plant_variants, simulate_pairs, write_fastq

PAR_END = 3_000  # chrX 1-3000 is pseudo-autosomal: diploid in males too
LENGTHS = {"chr1": 20_000, "chrX": 30_000, "chrY": 8_000}
MAP = f"# a male's X outside its PAR, and Y\nchrX {PAR_END + 1} * M 1\nchrY * * M 1\nchrY * * F 0\n"


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory):
    """ref.fa, a male's and a female's BAMs (30x per haplotype), and the male's chrX truth."""
    d = tmp_path_factory.mktemp("family")
    contigs = random_genome(61, LENGTHS)
    ref = write_fasta(d / "ref.fa", contigs)
    pysam.faidx(str(ref))
    index = Index.build(ref)
    seqs = dict(contigs)
    bams, truth = {}, {}
    for sex, copies, seed in (("male", {"chr1": 2, "chrX": 1, "chrY": 1}, 7),
                              ("female", {"chr1": 2, "chrX": 2, "chrY": 0}, 17)):
        haps, variants = [], []
        for i, (name, n) in enumerate(copies.items()):
            if n:
                h, v = plant_variants({name: seqs[name]}, rate=0.003, ploidy=n, seed=seed + i)
                haps += h
                variants += v
        pairs = 30 * sum(len(h.seq) for h in haps) // 300
        r1, r2 = simulate_pairs(haps, pairs, seed=seed + 9)
        fq1, fq2 = write_fastq(d / f"{sex}_1.fq.gz", r1), write_fastq(d / f"{sex}_2.fq.gz", r2)
        bams[sex] = d / f"{sex}.bam"
        Aligner(index, threads=2).align_fastq(fq1, fq2, bams[sex],
                                              read_group=f"@RG\\tID:{sex}\\tSM:{sex}")
        truth[sex] = variants
    ploidy_file = d / "ploidy.txt"
    ploidy_file.write_text(MAP)
    return ref, bams, truth, ploidy_file


def _records(path: Path) -> list[pysam.VariantRecord]:
    with pysam.VariantFile(str(path)) as f:
        return list(f)


def test_joint_call_gives_each_sample_its_ploidy(family, tmp_path: Path) -> None:
    ref, bams, truth, ploidy_file = family
    out = tmp_path / "joint.vcf.gz"
    Caller(ref, threads=2, ploidy_file=ploidy_file,
           sex={"male": "M", "female": "F"}).write_vcf([bams["male"], bams["female"]], out)
    recs = _records(out)
    seen = {"chr1": 0, "par": 0, "chrX": 0, "chrY": 0}
    for r in recs:
        male, female = r.samples["male"]["GT"], r.samples["female"]["GT"]
        where = "par" if r.chrom == "chrX" and r.pos <= PAR_END else r.chrom
        seen[where] += 1
        if where in ("chr1", "par"):
            assert len(male) == len(female) == 2, str(r)
        elif where == "chrX":
            assert len(male) == 1 and len(female) == 2, str(r)
        else:  # chrY: the female has none
            assert len(male) == 1 and female == (None,), str(r)
            assert r.samples["female"]["PL"] in (None, (None,)), str(r)
    assert all(n > 5 for n in seen.values()), seen
    # the male's haploid variants beyond the PAR: found, each with his one allele
    called = {(r.chrom, r.pos, r.ref, r.alts[0]): r.samples["male"]["GT"] for r in recs}
    beyond = [v for v in truth["male"] if v.contig in ("chrX", "chrY") and
              not (v.contig == "chrX" and v.pos <= PAR_END)]
    hits = [called.get((v.contig, v.pos, v.ref, v.alt)) for v in beyond]
    assert sum(h == (1,) for h in hits) >= 0.9 * len(beyond) and len(beyond) > 20


def test_a_haploid_region_is_called_as_by_ploidy_one(family, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The male alone: his records beyond the PAR are those a --ploidy 1 run writes there, for
    any shard size (shards are cut at the map's edges)."""
    ref, bams, _, ploidy_file = family
    region = f"chrX:{PAR_END + 1}-{LENGTHS['chrX']}"
    haploid = tmp_path / "haploid.vcf.gz"
    Caller(ref, ploidy=1).write_vcf(bams["male"], haploid, region=region)
    want = [str(r) for r in _records(haploid)]
    assert len(want) > 20
    for size in (1_000, 100_000):
        monkeypatch.setattr(gmsaccel.call, "MIN_SHARD_SIZE", size)
        monkeypatch.setattr(gmsaccel.call, "SHARD_SIZE", size)
        mapped = tmp_path / f"mapped{size}.vcf.gz"
        Caller(ref, ploidy_file=ploidy_file, sex="M").write_vcf(bams["male"], mapped)
        got = [str(r) for r in _records(mapped) if r.chrom == "chrX" and r.pos > PAR_END]
        assert got == want, size


def test_the_api_variants_carry_their_ploidy(family) -> None:
    """Variant.gt rows hold the caller's ploidy of alleles, -1 past a haploid call's one; a
    sample of ploidy 0 (a male's chrY reads, called as a female's) carries nothing there."""
    ref, bams, _, ploidy_file = family
    xs = list(Caller(ref, ploidy_file=ploidy_file, sex="M").call(
        bams["male"], region=f"chrX:{PAR_END + 1}-{LENGTHS['chrX']}"))
    assert xs and all(v.gt.shape == (1, 2) and v.gt[0, 0] >= 0 and v.gt[0, 1] == -1 for v in xs)
    assert not list(Caller(ref, ploidy_file=ploidy_file, sex="F").call(bams["male"],
                                                                      region="chrY"))


def test_api_rows_are_as_wide_as_the_widest_ploidy(family, tmp_path: Path) -> None:
    """Variant rows: as many alleles as the highest ploidy of the caller or its map; a sample
    called with fewer has -1 past its GT and PL, and to_record gives back what the VCF holds."""
    ref, bams, _, ploidy_file = family
    wide = tmp_path / "wide.txt"
    wide.write_text("chr1 * * * 2\n")
    diploid = list(Caller(ref, ploidy=1, ploidy_file=wide).call(bams["female"], region="chr1"))
    assert any((v.gt[0] == [0, 1]).all() for v in diploid)
    assert all(v.gt.shape[1] == 2 and len(v.pl[0]) == 3 for v in diploid)
    caller = Caller(ref, ploidy_file=ploidy_file, sex={"male": "M", "female": "F"})
    out = tmp_path / "w.vcf.gz"
    caller.write_vcf([bams["male"], bams["female"]], out, region="chrY")
    from gmsaccel.vcf import VcfWriter

    back = tmp_path / "back.vcf.gz"
    with VcfWriter(back, caller.contigs, ["male", "female"], str(ref), None) as w:
        for v in caller.call([bams["male"], bams["female"]], region="chrY"):
            assert v.gt[0, 1] == -1 and (v.pl[0, 2:] == -1).all()
            assert list(v.sample_ploidy) == [1, 0]
            w.write(v.contig, v.to_record())

    def calls(path: Path) -> list:  # (pysam pads a missing PL to the record's width)
        return [[(c["GT"], c["AD"], c["DP"], c["GQ"],
                  tuple(x for x in c["PL"] or () if x is not None))
                 for c in r.samples.values()] for r in _records(path)]

    assert calls(out) and calls(back) == calls(out)


def test_bad_maps_and_sexes_are_errors(family, tmp_path: Path) -> None:
    ref, bams, _, ploidy_file = family
    contigs = dict(Caller(ref).contigs)
    for text, message in (("chrX 1 10 M\n", "line 1: expected CHROM FROM TO SEX PLOIDY"),
                          ("# c\nchrX 1 10 M 3\n", "line 2: ploidy 3: must be 0, 1 or 2"),
                          ("chrX 10 5 M 1\n", "line 1: empty or negative interval"),
                          ("chrX 1 99999 M 1\n", "runs past the contig's end"),
                          ("chr9 1 10 M 1\n", "none of its lines names a contig")):
        bad = tmp_path / "bad.txt"
        bad.write_text(text)
        with pytest.raises(_core.InputError, match=message):
            read_ploidy_file(bad, contigs, 2)
    with pytest.raises(ValueError, match="say each sample's sex"):
        Caller(ref, ploidy_file=ploidy_file).write_vcf(bams["male"], tmp_path / "a.vcf.gz")
    with pytest.raises(ValueError, match="BAMs do not hold: dad"):
        Caller(ref, ploidy_file=ploidy_file, sex="dad=M").write_vcf(bams["male"],
                                                                    tmp_path / "b.vcf.gz")
    for spec, message in (("m", "sex 'm' is not one .* names \\(F, M\\)"),
                          ("M,F", "sex 'M,F' is not one"),
                          ("male=M,male=F", "gives male twice"),
                          ("male=X", "sex 'X' is not one")):
        with pytest.raises(ValueError, match=message):
            Caller(ref, ploidy_file=ploidy_file, sex=spec).write_vcf(bams["male"],
                                                                     tmp_path / "d.vcf.gz")
    assert not list(tmp_path.glob("*.vcf.gz*"))


def test_cli_ploidy_file(family, tmp_path: Path) -> None:
    ref, bams, _, ploidy_file = family
    out = tmp_path / "m.vcf.gz"
    proc = run_cli("call", "-f", ref, bams["male"], "--ploidy-file", ploidy_file, "--sex", "M",
                   "-o", out, "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    text = pysam.bcftools.view("-H", "-r", "chrY", str(out))  # bcftools reads it
    assert text and all(ln.split("\t")[9].split(":")[0] in ("0", "1")
                        for ln in text.splitlines())
    proc = run_cli("call", "-f", ref, bams["male"], "--sex", "M", "-o", tmp_path / "x.vcf.gz")
    assert proc.returncode == 1 and b"--sex goes with --ploidy-file" in proc.stderr


@pytest.mark.parametrize("who", ["male", "female"])
def test_gvcf_with_a_ploidy_map(family, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                who: str) -> None:
    """Reference blocks and records take the sample's ploidy where they lie (haploid blocks
    GT 0 with two PLs), cover every base of the contigs it has a copy of once, none of the
    others (a female's chrY), and do not depend on the shards."""
    ref, bams, _, ploidy_file = family
    bodies = []
    for size in (1_000, 100_000):
        monkeypatch.setattr(gmsaccel.call, "MIN_SHARD_SIZE", size)
        monkeypatch.setattr(gmsaccel.call, "SHARD_SIZE", size)
        out = tmp_path / f"{who}{size}.g.vcf.gz"
        Caller(ref, ploidy_file=ploidy_file, sex="M" if who == "male" else "F").write_vcf(
            bams[who], out, gvcf=True)
        bodies.append([str(r) for r in _records(out)])
    assert bodies[0] == bodies[1]
    covered: dict[str, int] = {}
    for r in _records(tmp_path / f"{who}1000.g.vcf.gz"):
        assert covered.get(r.chrom, 0) == r.pos - 1, str(r)  # no gap, no overlap
        covered[r.chrom] = r.stop
        haploid = r.chrom == "chrY" or (r.chrom == "chrX" and r.pos > PAR_END and who == "male")
        gt = r.samples[who]["GT"]
        assert len(gt) == (1 if haploid else 2), str(r)
        if r.alts == ("<*>",):
            assert len(r.samples[who]["PL"]) == (2 if haploid else 3), str(r)
    want = {c: n for c, n in LENGTHS.items() if who == "male" or c != "chrY"}
    assert covered == want


def test_gvcf_of_a_bam_without_a_haploid_contig(family, tmp_path: Path) -> None:
    """A male's BAM whose header lacks chrY: chrY is one haploid block of no coverage."""
    ref, bams, _, ploidy_file = family
    with pysam.AlignmentFile(str(bams["male"])) as f:
        header = f.header.to_dict()
        header["SQ"] = [sq for sq in header["SQ"] if sq["SN"] != "chrY"]
        lean = tmp_path / "noY.bam"
        with pysam.AlignmentFile(str(lean), "wb", header=header) as out:
            for r in f.fetch("chr1"):
                seg = pysam.AlignedSegment.fromstring(r.to_string(), out.header)
                out.write(seg)
    pysam.index(str(lean))
    out = tmp_path / "noY.g.vcf.gz"
    Caller(ref, ploidy_file=ploidy_file, sex="M").write_vcf(lean, out, gvcf=True,
                                                            region="chrY")
    (block,) = _records(out)
    assert (block.pos, block.stop, block.samples[0]["GT"], block.samples[0]["PL"]) == (
        1, LENGTHS["chrY"], (0,), (0, 0))


def test_api_sample_ploidy_inside_a_deletion(family, tmp_path: Path) -> None:
    """A given SNV inside the male's own deletion beyond the PAR: his allele there is missing,
    yet Variant.sample_ploidy still says he is haploid there (from the map, not the GT)."""
    ref, bams, truth, ploidy_file = family
    dels = [v for v in truth["male"] if v.contig == "chrX" and v.pos > PAR_END + 200 and
            len(v.ref) >= 3 and len(v.alt) == 1]
    assert dels
    v = dels[0]
    seq = {c.name: c.sequence for c in pysam.FastxFile(str(ref))}["chrX"]
    inside = v.pos + 1  # 1-based: the second deleted base
    sites = tmp_path / "s.vcf"
    base = seq[inside - 1]
    sites.write_text("##fileformat=VCFv4.2\n##contig=<ID=chrX,length=30000>\n"
                     "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                     f"chrX\t{inside}\t.\t{base}\t{'C' if base != 'C' else 'G'}\t.\t.\t.\n")
    caller = Caller(ref, ploidy_file=ploidy_file, sex="M", alleles=sites, alleles_only=True)
    (got,) = list(caller.call(bams["male"]))
    assert got.pos == inside and (got.gt[0] == -1).all() and list(got.sample_ploidy) == [1]
