"""VCF/gVCF writing, gVCF reference confidence, regions, variant summaries and variant accuracy:
the pure-Python side of calling, tested with synthetic records (no calling engine needed). The
Caller's sharding, ordering and gVCF interleaving run against a stand-in engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pysam
import pysam.bcftools
import pytest
from conftest import cli_env, random_genome, write_fasta
from hypothesis import given, settings
from hypothesis import strategies as st

import gmsaccel.call as gcall
from gmsaccel import InputError, _core
from gmsaccel.call import (
    Caller,
    Region,
    VariantSummary,
    parse_region,
    read_bed,
    resolve_regions,
    shard_size,
    shards,
    summarize_vcf,
    variant_type,
)
from gmsaccel.evaluate import variant_accuracy
from gmsaccel.gvcf import (
    GQ_BANDS,
    gq_band,
    homref_likelihoods,
    reference_block_arrays,
    reference_block_arrays_numpy,
    reference_blocks,
)
from gmsaccel.vcf import VcfWriter, extend_pl_non_ref, genotype_index, genotypes

CODE = {"A": 0, "C": 1, "G": 2, "T": 3}


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    d = tmp_path_factory.mktemp("vcfref")
    contigs = random_genome(5, {"c1": 2000, "c2": 1000})
    # a homopolymer for indel normalisation tests
    seq = contigs[0][1]
    contigs[0] = ("c1", seq[:1500] + "AAAAAA" + seq[1506:])
    path = write_fasta(d / "ref.fa", contigs)
    pysam.faidx(str(path))
    return path, dict(contigs)


def other_base(b: str) -> str:
    return {"A": "G", "G": "A", "C": "T", "T": "C"}[b]


def record(pos: int, ref: str, alts: list[str], gt: list[int], qual: float = 50.0,
           filt: str = "PASS", n_samples: int = 1) -> dict:
    n_al = 1 + len(alts)
    n_gt = n_al if len(gt) == 1 else n_al * (n_al + 1) // 2
    pl = [60] * n_gt
    pl[genotype_index([max(a, 0) for a in gt])] = 0
    return {"pos": pos, "ref": ref, "alts": alts, "qual": qual, "filter": filt, "dp": 20,
            "mq": 60, "samples": [{"gt": gt, "ad": [10] + [10] * len(alts), "dp": 20, "gq": 50,
                                   "pl": pl} for _ in range(n_samples)]}


def synthetic_records(seqs: dict[str, str]) -> list[tuple[str, dict]]:
    s1, s2 = seqs["c1"], seqs["c2"]
    return [
        ("c1", record(99, s1[99], [other_base(s1[99])], [0, 1])),            # SNV, transition
        ("c1", record(199, s1[199:203], [s1[199]], [1, 1])),                 # 3 bp deletion
        ("c1", record(299, s1[299], [s1[299] + "TTG"], [0, 1])),             # insertion
        ("c1", record(399, s1[399], [b for b in "ACGT" if b != s1[399]][:2], [1, 2])),
        ("c1", record(499, s1[499], [other_base(s1[499])], [0, 1], qual=5, filt="LowQual")),
        ("c2", record(49, s2[49], [other_base(s2[49])], [-1, -1])),
    ]


def write_records(path: Path, ref: Path, seqs: dict[str, str], **kw) -> list[tuple[str, dict]]:
    recs = synthetic_records(seqs)
    with VcfWriter(path, [(n, len(s)) for n, s in seqs.items()], ["S1"], ref,
                   ["gmsaccel", "call", "x"], **kw) as w:
        for contig, r in recs:
            w.write(contig, r)
    return recs


# ---------------------------------------------------------------------------------------------
# VcfWriter


def test_vcf_gz_roundtrip(tmp_path: Path, ref: tuple[Path, dict[str, str]]) -> None:
    fa, seqs = ref
    out = tmp_path / "out.vcf.gz"
    recs = write_records(out, fa, seqs)
    assert sorted(os.listdir(tmp_path)) == ["out.vcf.gz", "out.vcf.gz.tbi"]
    text = pysam.bcftools.query("-f", "%CHROM\t%POS\t%REF\t%ALT\t%FILTER\t%INFO/DP\t[%GT]\n",
                                str(out))
    rows = [ln.split("\t") for ln in text.splitlines()]
    assert len(rows) == len(recs)
    assert rows[0][:5] == ["c1", "100", seqs["c1"][99], other_base(seqs["c1"][99]), "PASS"]
    assert rows[3][6] == "1/2" and rows[4][4] == "LowQual" and rows[5][6] == "./."
    # REF matches the reference everywhere
    pysam.bcftools.norm("--check-ref", "e", "-f", str(fa), "-Ov", str(out))
    # header
    hdr = str(pysam.VariantFile(str(out)).header)
    assert "##fileformat=VCFv4.2" in hdr
    assert "##contig=<ID=c1,length=2000>" in hdr and "##contig=<ID=c2,length=1000>" in hdr
    assert f"##reference=file://{fa.resolve()}" in hdr
    assert "##source=gmsaccel-" in hdr and "##gmsaccelCommand=gmsaccel call x" in hdr
    assert '##FILTER=<ID=LowQual,Description="Low quality (QUAL < 20)">' in hdr
    for line in ("INFO=<ID=DP,Number=1,Type=Integer", "INFO=<ID=MQ,Number=1,Type=Float",
                 "FORMAT=<ID=AD,Number=R", "FORMAT=<ID=PL,Number=G", "FORMAT=<ID=GQ"):
        assert line in hdr
    # the index works
    with pysam.VariantFile(str(out)) as vf:
        assert [r.pos for r in vf.fetch("c1", 150, 350)] == [200, 300]
        assert [r.pos for r in vf.fetch("c2")] == [50]
    assert len(pysam.bcftools.view("-H", "-r", "c1:390-410", str(out)).splitlines()) == 1


def test_vcf_plain_and_overwrite(tmp_path: Path, ref: tuple[Path, dict[str, str]]) -> None:
    fa, seqs = ref
    out = tmp_path / "out.vcf"
    out.write_text("old")
    recs = write_records(out, fa, seqs)
    assert os.listdir(tmp_path) == ["out.vcf"]
    body = [ln for ln in out.read_text().splitlines() if not ln.startswith("#")]
    assert len(body) == len(recs)


def test_vcf_stdout(ref: tuple[Path, dict[str, str]]) -> None:
    fa, seqs = ref
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from test_vcf import *; "
            "write_records('-', Path(sys.argv[2]), read_seqs(sys.argv[2]))")
    proc = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(fa)],
                          capture_output=True, env=cli_env(), check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert lines[0] == "##fileformat=VCFv4.2"
    assert sum(1 for ln in lines if not ln.startswith("#")) == 6


def read_seqs(fa: str) -> dict[str, str]:
    with pysam.FastaFile(fa) as f:
        return {n: f.fetch(n) for n in f.references}


def test_vcf_abort_leaves_nothing(tmp_path: Path, ref: tuple[Path, dict[str, str]]) -> None:
    fa, seqs = ref
    out = tmp_path / "out.vcf.gz"
    with pytest.raises(RuntimeError, match="boom"), \
            VcfWriter(out, [("c1", 2000)], ["S1"], fa) as w:
        w.write("c1", synthetic_records(seqs)[0][1])
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    w2 = VcfWriter(out, [("c1", 2000)], ["S1"], fa)
    w2.abort()
    assert os.listdir(tmp_path) == []


def test_vcf_rejects_bad_records(tmp_path: Path, ref: tuple[Path, dict[str, str]]) -> None:
    fa, seqs = ref
    with VcfWriter(tmp_path / "x.vcf.gz", [("c1", 2000)], ["S1"], fa) as w:
        with pytest.raises(ValueError, match="not in the VCF header"):
            w.write("chrZ", record(5, "A", ["C"], [0, 1]))
        with pytest.raises(ValueError, match="outside"):
            w.write("c1", record(1999, "AC", ["A"], [0, 1]))
        with pytest.raises(ValueError, match="samples"):
            w.write("c1", record(5, seqs["c1"][5], ["C"], [0, 1], n_samples=2))


def test_gvcf_variant_records_carry_non_ref(tmp_path: Path,
                                            ref: tuple[Path, dict[str, str]]) -> None:
    fa, seqs = ref
    out = tmp_path / "g.vcf.gz"
    write_records(out, fa, seqs, gvcf=True)
    with pysam.VariantFile(str(out)) as vf:
        recs = list(vf)
        assert "MIN_DP" in vf.header.formats and "END" in vf.header.info
    for r in recs:
        assert r.alts[-1] == "<*>"
        n = len(r.alleles)
        assert len(r.samples["S1"]["PL"]) == n * (n + 1) // 2
        assert r.samples["S1"]["AD"][-1] == 0
        assert r.stop == r.pos - 1 + len(r.ref)
    # the called genotype keeps PL 0 and genotypes with <*> are never more likely
    pl = recs[0].samples["S1"]["PL"]
    assert pl[genotype_index((0, 1))] == 0 and min(pl[3:]) > 0


def test_pl_extension_and_genotype_order() -> None:
    assert genotypes(3, 2) == [(0, 0), (0, 1), (1, 1), (0, 2), (1, 2), (2, 2)]
    assert [genotype_index(g) for g in genotypes(4, 2)] == list(range(10))
    assert extend_pl_non_ref([30, 0, 40], 2, 2) == [30, 0, 40, 30, 40, 40]
    assert extend_pl_non_ref([50, 0], 2, 1) == [50, 0, 50]


def test_write_block(tmp_path: Path, ref: tuple[Path, dict[str, str]]) -> None:
    fa, seqs = ref
    out = tmp_path / "b.vcf.gz"
    with VcfWriter(out, [("c1", 2000)], ["S1"], fa, gvcf=True) as w:
        w.write_block("c1", 0, 10, 3, 20, [0, 9, 90], dp=5)  # ref base read from the FASTA
        w.write_block("c1", 10, 20, 0, 0, [0, 0])             # haploid
    text = pysam.bcftools.query("-f", "%POS\t%REF\t%ALT\t%END\t[%GT\t%DP\t%GQ\t%MIN_DP\t%PL]\n",
                                str(out))
    rows = [ln.split("\t") for ln in text.splitlines()]
    assert rows[0] == ["1", seqs["c1"][0], "<*>", "10", "0/0", "5", "20", "3", "0,9,90"]
    assert rows[1] == ["11", seqs["c1"][10], "<*>", "20", "0", "0", "0", "0", "0,0"]


def block_line(contig: str, start: int, end: int, min_dp: int, gq: int, pl: list[int],
               dp: int, base: str, n_samples: int) -> str:
    """The definition of a reference-block line, written out plainly."""
    letter = base.upper() if base.upper() in "ACGT" else "N"
    gt = "0/0" if len(pl) == 3 else "0"
    call = f"\t{gt}:{dp}:{gq}:{min_dp}:{','.join(map(str, pl))}"
    return (f"{contig}\t{start + 1}\t.\t{letter}\t<*>\t.\t.\tEND={end}\tGT:DP:GQ:MIN_DP:PL"
            f"{call * n_samples}\n")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**9), st.integers(1, 10**6), st.integers(0, 10**4),
                          st.integers(0, 99), st.integers(0, 10**4),
                          st.sampled_from("ACGTNacgtnRY*")), max_size=40),
       st.sampled_from([2, 3]), st.integers(1, 3), st.data())
def test_reference_block_formatter_matches_definition(blocks: list, n_pl: int, n_samples: int,
                                                      data: st.DataObject) -> None:
    pls = [data.draw(st.lists(st.integers(0, 9999), min_size=n_pl, max_size=n_pl))
           for _ in blocks]
    cols = [np.array([b[i] for b in blocks], dtype=np.int64) for i in range(5)]
    start, length, min_dp, gq, dp = cols
    bases = "".join(b[5] for b in blocks)
    got = _core.format_reference_blocks("chr1", start, start + length, min_dp, gq,
                                        np.array(pls, dtype=np.int64).reshape(len(blocks), n_pl),
                                        dp, bases, n_samples)
    want = "".join(block_line("chr1", int(b[0]), int(b[0] + b[1]), int(b[2]), int(b[3]), pl,
                              int(b[4]), b[5], n_samples)
                   for b, pl in zip(blocks, pls, strict=True))
    assert got.decode() == want


def test_reference_block_formatter_rejects_bad_columns() -> None:
    one = np.zeros(1, np.int64)
    with pytest.raises(ValueError, match="2 .haploid. or 3"):
        _core.format_reference_blocks("c", one, one + 1, one, one, np.zeros((1, 4), np.int64),
                                      one, "A", 1)
    with pytest.raises(ValueError, match="one letter per block"):
        _core.format_reference_blocks("c", one, one + 1, one, one, np.zeros((1, 3), np.int64),
                                      one, "AC", 1)


@st.composite
def engine_records(draw: st.DrawFn) -> tuple[list[dict], int]:
    """Records in the engine's form: multi-allelic, haploid or diploid, missing genotypes,
    LowQual, any QUAL (a float the VCF keeps as 32 bits), one or two samples."""
    ploidy = draw(st.sampled_from([1, 2]))
    n_samples = draw(st.integers(1, 2))
    bases = st.text("ACGT", min_size=1, max_size=5)
    out = []
    pos = 0
    for _ in range(draw(st.integers(1, 6))):
        pos += draw(st.integers(0, 1000))
        ref = draw(bases)
        alts = draw(st.lists(bases.filter(lambda a, r=ref: a != r), min_size=1, max_size=3,
                             unique=True))
        n_al = 1 + len(alts)
        n_gt = n_al if ploidy == 1 else n_al * (n_al + 1) // 2
        samples = [{"gt": draw(st.lists(st.integers(-1, n_al - 1), min_size=ploidy,
                                        max_size=ploidy)),
                    "ad": draw(st.lists(st.integers(0, 500), min_size=n_al, max_size=n_al)),
                    "dp": draw(st.integers(0, 1000)), "gq": draw(st.integers(0, 99)),
                    "pl": draw(st.lists(st.integers(0, 9999), min_size=n_gt, max_size=n_gt))}
                   for _ in range(n_samples)]
        out.append({"pos": pos, "ref": ref, "alts": alts,
                    "qual": draw(st.floats(0, 1e7, allow_nan=False)),
                    "filter": draw(st.sampled_from(["PASS", "LowQual"])),
                    "dp": draw(st.integers(0, 10**5)), "mq": draw(st.integers(0, 60)),
                    "samples": samples})
    return out, n_samples


@settings(max_examples=80, deadline=None)
@given(engine_records(), st.booleans())
def test_variant_lines_match_pysam_records(tmp_path_factory: pytest.TempPathFactory,
                                           case: tuple[list[dict], int], gvcf: bool) -> None:
    """The engine's own VCF lines are the lines VcfWriter.write makes through pysam."""
    records, n_samples = case
    out = tmp_path_factory.mktemp("lines") / "r.vcf"
    with VcfWriter(out, [("c1", 10**6)], [f"S{i}" for i in range(n_samples)],
                   gvcf=gvcf) as w:
        for rec in records:
            w.write("c1", rec)
    want = [ln for ln in out.read_text().splitlines(keepends=True) if not ln.startswith("#")]
    got = [b.decode() for b in _core.format_variant_records("c1", records, gvcf)]
    assert got == want


VCF_HEADER = ("##fileformat=VCFv4.2\n##contig=<ID=c1,length=50000000>\n"
              "##contig=<ID=c2,length=50000000>\n##contig=<ID=c3,length=50000000>\n"
              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")


def random_vcf_lines(seed: int) -> list[tuple[str, list[str], np.ndarray, np.ndarray]]:
    """Pieces of sorted VCF lines (contig, lines, beg, end) with intervals from END. The first
    piece's lines are 256 bytes, so that lines end exactly at 0xff00-byte block ends (the
    header ends a block); later lengths vary, lines crossing block ends."""
    rng = np.random.default_rng(seed)
    pieces = []
    for contig in ("c2", "c1", "c3"):  # not header order: tabix numbers contigs as they come
        pos = int(rng.integers(0, 1000))
        for _ in range(int(rng.integers(1, 6))):
            lines, beg, end = [], [], []
            whole_blocks = not pieces and not lines
            for _ in range(600 if whole_blocks else int(rng.integers(0, 1500))):
                # whole blocks: a 16 kbp window per line, so every line's start (the end of
                # the line before, a block end for some) is a linear-index entry
                pos += 16_384 if whole_blocks else int(rng.integers(0, 400))
                span = int(rng.integers(1, 100 if whole_blocks else 3000))
                head = f"{contig}\t{pos + 1}\t.\tA\t<*>\t.\t.\tEND={pos + span}\t"
                pad = 256 - len(head) - 1 if whole_blocks else int(rng.integers(1, 300))
                lines.append(head + "x" * pad + "\n")
                beg.append(pos)
                end.append(pos + span)
            pieces.append((contig, lines, np.array(beg, np.int64), np.array(end, np.int64)))
    return pieces


@pytest.mark.parametrize("threads", [1, 4])
def test_bgzf_output_is_what_bgzip_and_tabix_make(tmp_path: Path, threads: int) -> None:
    """The bgzipped VCF decompresses to the text written, and its index is byte for byte the
    one tabix builds from the finished file (the independent oracle)."""
    out = tmp_path / "o.vcf.gz"
    w = _core.VcfBgzfOutput(str(out), -1, threads, str(out) + ".tbi")
    w.write_header(VCF_HEADER)
    text = VCF_HEADER
    for contig, lines, beg, end in random_vcf_lines(threads):
        body = "".join(lines)
        w.write_lines(contig, body.encode(), beg, end)
        text += body
    w.finish()
    with pysam.BGZFile(str(out), "rb") as f:
        assert f.read().decode() == text
    copy = tmp_path / "copy.vcf.gz"
    copy.write_bytes(out.read_bytes())
    pysam.tabix_index(str(copy), preset="vcf", force=True)
    assert (tmp_path / "o.vcf.gz.tbi").read_bytes() == (tmp_path / "copy.vcf.gz.tbi").read_bytes()
    with pysam.TabixFile(str(out)) as tf:
        assert set(tf.contigs) == {"c1", "c2", "c3"}


@pytest.mark.parametrize("threads", [1, 3])
def test_bgzf_output_write_failure_is_reported_and_sticks(threads: int) -> None:
    """A write that fails (a full disk) is an error naming the file, and so is every later
    call: nothing accumulates in a block that can no longer be written (incompressible lines
    that would overflow one, with a single thread, once did)."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    w = _core.VcfBgzfOutput("/dev/full", -1, threads, "")
    with pytest.raises(RuntimeError, match="cannot write /dev/full"):
        w.write_header(VCF_HEADER)
    rng = np.random.default_rng(7)
    noise = rng.integers(33, 127, 200_000, dtype=np.uint8)
    noise[rng.integers(0, len(noise), 400)] = ord("\n")
    noise[-1] = ord("\n")
    n = int(np.count_nonzero(noise == ord("\n")))
    beg = np.arange(n, dtype=np.int64)
    for _ in range(3):
        with pytest.raises(RuntimeError, match="cannot write /dev/full"):
            w.write_lines("c1", noise.tobytes() * 3, np.tile(beg, 3), np.tile(beg, 3) + 1)
    with pytest.raises(RuntimeError, match="cannot write /dev/full"):
        w.finish()
    w.close()


def run_limited(code: str, tmp_path: Path, *, file_size: int | None = None,
                extra_address_space: int | None = None) -> subprocess.CompletedProcess:
    """Python code in a child process with a file-size limit (SIGXFSZ ignored: writes past it
    fail with EFBIG) or an address-space limit a little above what it has mapped."""
    prelude = (
        "import resource, signal\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"file_size, extra = {file_size!r}, {extra_address_space!r}\n"
        "import numpy, pysam, gmsaccel.vcf, gmsaccel._core\n"
        "if file_size is not None:\n"
        "    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))\n"
        "if extra is not None:\n"
        "    vm = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
        "    resource.setrlimit(resource.RLIMIT_AS, (vm + extra, vm + extra))\n")
    return subprocess.run([sys.executable, "-c", prelude + code], cwd=tmp_path, env=cli_env(),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("threads", [1, 3])
def test_vcf_writer_failures_leave_nothing(tmp_path: Path, threads: int) -> None:
    """A disk that fills while the VCF is written, or already while its header is: an error,
    and no file left behind, temporary or final."""
    code = f"""
import numpy as np, sys
from gmsaccel.vcf import VcfWriter
where = sys.argv[-1] if len(sys.argv) > 1 else ""
n = 200_000
start = np.arange(n, dtype=np.int64) * 5
try:
    with VcfWriter("out.g.vcf.gz", [("c1", 10**7)], ["S1"], gvcf=True, threads={threads}) as w:
        w.write_block_columns("c1", start, start + 5, start % 40, start % 99,
                              np.zeros((n, 3), np.int64), start % 40, "A" * n)
except (OSError, RuntimeError) as e:
    print("failed:", e)
"""
    for limit in (100_000, 100):  # part way through the records; in the header
        proc = run_limited(code, tmp_path, file_size=limit)
        assert proc.returncode == 0, proc.stderr
        assert "failed:" in proc.stdout and "out.g.vcf.gz" in proc.stdout, proc.stdout
        assert os.listdir(tmp_path) == [], (limit, os.listdir(tmp_path))


def test_bgzf_output_without_threads_to_start_is_an_error(tmp_path: Path) -> None:
    """Threads that cannot be started (an address-space limit) are an error, not a hang."""
    code = """
from gmsaccel import _core
try:
    _core.VcfBgzfOutput("x.vcf.gz", -1, 1000, "")
    print("started")
except RuntimeError as e:
    print("failed:", e)
"""
    proc = run_limited(code, tmp_path, extra_address_space=64 << 20)
    assert proc.returncode == 0, proc.stderr
    # 8 MiB stacks: a few threads fit in 64 MiB, not 256 (the most it starts)
    assert proc.stdout.startswith("failed: cannot start") and "x.vcf.gz" in proc.stdout, \
        proc.stdout
    assert os.listdir(tmp_path) == []


def test_long_contigs_get_a_csi_index(tmp_path: Path) -> None:
    """A contig longer than a .tbi can index (2^29) gets the .csi `tabix --csi` would make."""
    out = tmp_path / "big.vcf.gz"
    length = 3 << 29
    recs = [record(p, "A", ["C"], [0, 1]) for p in (5, 600_000_000, 1_500_000_000)]
    with VcfWriter(out, [("big", length), ("small", 1000)], ["S1"], threads=2) as w:
        for rec in recs:
            w.write("big", rec)
        w.write("small", record(9, "G", ["T"], [1, 1]))
    assert sorted(os.listdir(tmp_path)) == ["big.vcf.gz", "big.vcf.gz.csi"]
    copy = tmp_path / "copy.vcf.gz"
    copy.write_bytes(out.read_bytes())
    pysam.tabix_index(str(copy), preset="vcf", force=True, csi=True)
    assert (tmp_path / "big.vcf.gz.csi").read_bytes() == (tmp_path / "copy.vcf.gz.csi").read_bytes()
    with pysam.VariantFile(str(out)) as vf:
        assert [r.pos for r in vf.fetch("big", 1_000_000_000, 2_000_000_000)] == [1_500_000_001]


def test_bgzf_output_rejects_mismatched_lines(tmp_path: Path) -> None:
    w = _core.VcfBgzfOutput(str(tmp_path / "x.vcf.gz"), -1, 2, str(tmp_path / "x.tbi"))
    w.write_header(VCF_HEADER)
    one = np.array([5], np.int64)
    with pytest.raises(ValueError, match="fewer lines than intervals"):
        w.write_lines("c1", b"c1\t6\n", np.array([5, 9], np.int64), np.array([6, 10], np.int64))
    with pytest.raises(ValueError, match="more lines than intervals"):
        w.write_lines("c1", b"c1\t6\nc1\t7\n", one, one + 1)
    with pytest.raises(ValueError, match="empty"):
        w.write_lines("c1", b"c1\t6\n", one, one)
    w.close()
    with pytest.raises(RuntimeError, match="x.vcf.gz"):
        _core.VcfBgzfOutput(str(tmp_path / "no" / "x.vcf.gz"), -1, 1, "")


# ---------------------------------------------------------------------------------------------
# gVCF reference confidence


def pileup_arrays(ref_codes: np.ndarray, depth: np.ndarray, alt: np.ndarray | None = None,
                  q: int = 30) -> dict[str, np.ndarray]:
    n = len(ref_codes)
    counts = np.zeros((n, 5), np.uint32)
    alt = np.zeros(n, np.uint32) if alt is None else np.asarray(alt, np.uint32)
    counts[np.arange(n), ref_codes] = depth - alt
    counts[np.arange(n), (ref_codes + 1) % 4] += alt
    return {"base_counts": counts, "base_qual_sums": counts * q,
            "deletions": np.zeros(n, np.uint32), "insertions": np.zeros(n, np.uint32),
            "depth": depth.astype(np.uint32), "start": 0}


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.sampled_from([1, 2]), st.integers(0, 2**31 - 1))
def test_engine_reference_confidence_is_the_model(n: int, ploidy: int, seed: int) -> None:
    """The engine's reference confidence (computed from the candidates' pileup when calling a
    gVCF) equals homref_likelihoods, the model's definition, on random pileups: low and high
    depth, no coverage, N reference bases, deletions, insertions, any base qualities."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 40, (n, 5)).astype(np.uint32)
    counts[rng.random(n) < 0.2] = 0                        # bases without quality
    counts[rng.random(n) < 0.3, 1:] = 0                    # mostly one base
    quals = (counts * rng.integers(1, 45, (n, 5))).astype(np.uint32)
    dels = (rng.random(n) < 0.1) * rng.integers(0, 10, n)
    ins = (rng.random(n) < 0.1) * rng.integers(0, 10, n)
    depth = counts.sum(axis=1) + dels + rng.integers(0, 3, n)
    pile = {"base_counts": counts, "base_qual_sums": quals, "deletions": dels.astype(np.uint32),
            "insertions": ins.astype(np.uint32), "depth": depth.astype(np.uint32)}
    codes = rng.integers(0, 5, n).astype(np.uint8)
    gq, pl, dp = homref_likelihoods(pile, codes, ploidy)
    got = _core.reference_confidence(pile["base_counts"], pile["base_qual_sums"],
                                     pile["deletions"], pile["insertions"], pile["depth"], codes,
                                     ploidy)
    assert np.array_equal(got["gq"], gq) and np.array_equal(got["pl"], pl)
    assert np.array_equal(got["depth"], dp)


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 400), st.sampled_from([2, 3]), st.integers(0, 2**31 - 1),
       st.sampled_from([0, 0, 1, 7]), st.integers(0, 10**6))
def test_engine_reference_blocks_are_the_definition(n: int, n_pl: int, seed: int,
                                                    max_block: int, start: int) -> None:
    """The engine's reference blocks equal reference_block_arrays_numpy's (the definition):
    runs of one GQ band, records' spans left out (overlapping, reaching past either end),
    long runs cut at max_block."""
    rng = np.random.default_rng(seed)
    runs = rng.integers(1, 30, n)  # GQ in runs, so that blocks span several positions
    gq = np.repeat(rng.integers(0, 100, n), runs)[:n].astype(np.int32)
    pl = rng.integers(0, 10_000, (n, n_pl)).astype(np.int32)
    depth = rng.integers(0, 200, n).astype(np.int32)
    spans = [(int(a), int(a + rng.integers(1, 40)))
             for a in start + rng.integers(-20, max(n, 1) + 20, rng.integers(0, 8))]
    got = reference_block_arrays(start, gq, pl, depth, spans, max_block)
    want = reference_block_arrays_numpy(start, gq, pl, depth, spans, max_block)
    for name in ("start", "end", "gq", "min_dp", "dp_sum", "pl_min"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
    assert got.pl_min.shape == want.pl_min.shape


def test_reference_blocks_at_the_edges_of_their_inputs() -> None:
    """Values past 32 bits go to the definition's numpy (the engine's columns are 32-bit), and
    spans at the ends of 64 bits exclude what they cover."""
    gq = np.array([20, 25, 30, 5], np.int64)
    pl = np.array([[0, 20, 200], [0, 25, 250], [0, 30, 2**33], [0, 5, 50]], np.int64)
    depth = np.array([7, 2**31 + 5, 9, 1], np.int64)
    for spans in ([], [(-(2**63), 2**63 - 1)], [(2**62, 2**62 + 3)], [(0, 1)]):
        got = reference_block_arrays(10, gq, pl, depth, spans)
        want = reference_block_arrays_numpy(10, gq, pl, depth, spans)
        for name in ("start", "end", "gq", "min_dp", "dp_sum", "pl_min"):
            assert np.array_equal(getattr(got, name), getattr(want, name)), (spans, name)
    assert len(reference_block_arrays(10, gq, pl, depth, [(-(2**63), 2**63 - 1)])) == 0
    # 32-bit columns (the engine's), spans from and to the ends of 64 bits: positions 11-12 left
    small = reference_block_arrays(10, gq.astype(np.int32), pl.clip(0, 9999).astype(np.int32),
                                   depth.clip(0, 99).astype(np.int32),
                                   [(-(2**63), 11), (13, 2**63 - 1)])
    assert small.start.tolist() == [11, 12] and small.end.tolist() == [12, 13]  # GQ 25 | 30


def test_homref_model() -> None:
    codes = np.array([0, 1, 2, 3, 0, 1], np.uint8)
    depth = np.array([30, 0, 1, 3, 20, 20])
    alt = np.array([0, 0, 0, 0, 10, 1])
    gq, pl, dp = homref_likelihoods(pileup_arrays(codes, depth, alt), codes, 2)
    assert gq[0] == 90 and pl[0][0] == 0  # about 3 per reference read against 0/X
    assert gq[1] == 0 and list(pl[1]) == [0, 0, 0]          # no coverage
    assert 0 < gq[2] < gq[3] < 99                           # confidence grows with depth
    assert gq[4] == 0 and pl[4][1] == 0                     # 10/20 non-ref: het is best
    assert 0 < gq[5] < 99                                   # one stray base lowers confidence
    assert list(dp) == list(depth)
    gq1, pl1, _ = homref_likelihoods(pileup_arrays(codes, depth, alt), codes, 1)
    assert pl1.shape == (6, 2) and gq1[0] == 99
    # an N reference base is never confidently hom-ref
    gqn, _, _ = homref_likelihoods(pileup_arrays(np.array([0]), np.array([30])),
                                   np.array([4], np.uint8), 2)
    assert gqn[0] == 0


def test_reference_blocks_bands_and_exclusions() -> None:
    gq = np.array([0, 0, 5, 5, 15, 15, 15, 99, 99, 99, 99, 99])
    pl = np.stack([np.zeros(12, int), gq, gq * 10], axis=1)
    depth = np.arange(12)
    assert list(gq_band(np.array([0, 1, 9, 10, 59, 60, 98, 99, 500]))) == [0, 1, 1, 2, 5, 6, 6,
                                                                           7, 7]
    assert GQ_BANDS[0] == 0
    blocks = list(reference_blocks(100, gq, pl, depth, excluded=[(108, 110)]))
    spans = [(b.start, b.end) for b in blocks]
    assert spans == [(100, 102), (102, 104), (104, 107), (107, 108), (110, 112)]
    assert blocks[2].gq == 15 and blocks[2].min_dp == 4 and blocks[2].dp == 5
    assert blocks[2].pl == (0, 15, 150)
    split = list(reference_blocks(0, np.full(10, 99), np.zeros((10, 3), int),
                                  np.full(10, 30), max_block=4))
    assert [(b.start, b.end) for b in split] == [(0, 4), (4, 8), (8, 10)]


def _blocks_one_by_one(start, gq, pl, depth, excluded, max_block):
    """reference_blocks' definition, a block at a time: runs of one GQ band outside the
    excluded spans, cut every max_block; min GQ, min and mean depth, element-wise min PL."""
    n = len(gq)
    keep = [not any(s <= start + i < e for s, e in excluded) for i in range(n)]
    band = [int(gq_band(g)) for g in gq]
    out, i = [], 0
    while i < n:
        j = i + 1
        while j < n and keep[j] == keep[i] and band[j] == band[i]:
            j += 1
        if keep[i]:
            step = max_block if max_block > 0 else j - i
            for a in range(i, j, step):
                b = min(a + step, j)
                m = [min(int(pl[r][c]) for r in range(a, b)) for c in range(len(pl[0]))]
                out.append((start + a, start + b, min(int(x) for x in gq[a:b]),
                            min(int(x) for x in depth[a:b]),
                            round(sum(int(x) for x in depth[a:b]) / (b - a) + 0.0),
                            tuple(x - min(m) for x in m)))
        i = j
    return out


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_reference_blocks_match_their_definition(data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 60))
    ploidy = data.draw(st.sampled_from([1, 2]))
    gq = np.array(data.draw(st.lists(st.sampled_from([0, 0, 3, 12, 25, 50, 75, 99]), min_size=n,
                                     max_size=n)), dtype=np.int64)
    pl = np.array(data.draw(st.lists(st.lists(st.integers(0, 300), min_size=ploidy + 1,
                                              max_size=ploidy + 1), min_size=n, max_size=n)),
                  dtype=np.int64).reshape(n, ploidy + 1)
    depth = np.array(data.draw(st.lists(st.integers(0, 80), min_size=n, max_size=n)),
                     dtype=np.int64)
    start = data.draw(st.integers(0, 1000))
    excluded = [(start + a, start + a + w) for a, w in data.draw(
        st.lists(st.tuples(st.integers(-5, 65), st.integers(1, 10)), max_size=4))]
    max_block = data.draw(st.sampled_from([0, 0, 1, 3, 7]))
    got = [(b.start, b.end, b.gq, b.min_dp, b.dp, b.pl)
           for b in reference_blocks(start, gq, pl, depth, excluded, max_block)]
    assert got == _blocks_one_by_one(start, gq, pl, depth, excluded, max_block)


# ---------------------------------------------------------------------------------------------
# regions

CONTIGS = [("chr1", 5_000_000), ("chr2", 1000)]


def test_parse_region() -> None:
    lengths = dict(CONTIGS)
    assert parse_region("chr2", lengths) == Region("chr2", 0, 1000)
    assert parse_region("chr1:1,001-2,000", lengths) == Region("chr1", 1000, 2000)
    assert parse_region("chr1:4999000", lengths) == Region("chr1", 4998999, 5_000_000)
    assert str(Region("chr1", 1000, 2000)) == "chr1:1001-2000"
    for bad, msg in (("chr3", "unknown contig 'chr3'"), ("chr3:1-5", "unknown contig 'chr3'"),
                     ("chr2:900-1001", "outside contig chr2"), ("chr2:0-10", "at least 1"),
                     ("chr2:50-10", "at least 1"), ("chr2:a-b", "expected")):
        with pytest.raises(InputError, match=msg) as e:
            parse_region(bad, lengths)
        assert bad in str(e.value)


def test_resolve_regions_merges_and_orders() -> None:
    regs = resolve_regions(["chr2:10-20", ("chr1", 100, 200), "chr1:150-300", "chr2:21-30"],
                           CONTIGS)
    assert regs == [Region("chr1", 100, 300), Region("chr2", 9, 30)]
    assert resolve_regions(None, CONTIGS) == [Region("chr1", 0, 5_000_000),
                                              Region("chr2", 0, 1000)]
    with pytest.raises(InputError, match="outside contig chr2"):
        resolve_regions([("chr2", 0, 1001)], CONTIGS)
    sh = shards([Region("chr1", 0, 2_500_000), Region("chr2", 0, 1000)], 1_000_000)
    assert sh == [Region("chr1", 0, 1_000_000), Region("chr1", 1_000_000, 2_000_000),
                  Region("chr1", 2_000_000, 2_500_000), Region("chr2", 0, 1000)]


def test_shard_size_follows_the_regions(monkeypatch: pytest.MonkeyPatch) -> None:
    human = [Region(f"chr{i}", 0, 150_000_000) for i in range(20)]
    assert shard_size(human) == 1_000_000
    isolate = [Region("chr", 0, 5_400_000), Region("plasmid", 0, 120_000)]
    assert shard_size(isolate) == 50_000  # 5.52 Mbp / 128, up to the floor
    assert shard_size([Region("c", 0, 20_000_000)]) == 160_000  # 156,250 in 10 kbp steps
    assert shard_size([Region("c", 10, 20)]) == 50_000
    cut = shards(isolate)
    assert len(cut) == 108 + 3 and max(r.end - r.start for r in cut) == 50_000
    assert [(r.start, r.end) for r in cut if r.contig == "plasmid"] == [
        (0, 50_000), (50_000, 100_000), (100_000, 120_000)]
    monkeypatch.setattr(gcall, "SHARD_SIZE", 7_000)  # a cap below the floor wins
    assert shard_size(isolate) == 7_000


def test_read_bed(tmp_path: Path) -> None:
    bed = tmp_path / "r.bed"
    bed.write_text("track name=x\n# comment\nchr2\t0\t100\nchr1\t10\t20\textra\n")
    assert read_bed(bed, dict(CONTIGS)) == [Region("chr2", 0, 100), Region("chr1", 10, 20)]
    bed.write_text("chr2\t900\t1001\n")
    with pytest.raises(InputError, match=r"chr2:900-1001 .*line 1.*outside contig chr2"):
        read_bed(bed, dict(CONTIGS))
    bed.write_text("chrX\t0\t10\n")
    with pytest.raises(InputError, match="unknown contig 'chrX'"):
        read_bed(bed, dict(CONTIGS))
    with pytest.raises(InputError, match="no such file"):
        read_bed(tmp_path / "missing.bed", dict(CONTIGS))


# ---------------------------------------------------------------------------------------------
# summaries


def test_variant_summary() -> None:
    s = VariantSummary()
    s.add("A", ["G"], "PASS", [[0, 1]])          # transition, het
    s.add("C", ["T"], "PASS", [[1, 1]])          # transition, hom
    s.add("A", ["C"], None, [[0, 1]])            # transversion
    s.add("AT", ["A"], "PASS", [[1, 1]])         # deletion
    s.add("A", ["AT", "ATT"], "PASS", [[1, 2]])  # two insertions, het
    s.add("AC", ["GT"], "PASS", [[0, 0]])        # MNP no sample carries: ref_only, no type
    s.add("G", ["T"], "PASS", [[-1, -1]])        # not seen at all: ref_only too
    s.add("A", ["G"], "LowQual", [[0, 1]])       # not counted
    s.add("A", ["G"], "PASS", [[-1, -1], [1]])   # missing; haploid alt counts as hom
    d = s.as_dict()
    assert d["variants"] == {"SNV": 4, "insertion": 2, "deletion": 1, "MNP": 0}
    assert (d["transitions"], d["transversions"]) == (3, 1) and d["titv"] == 3.0
    assert (d["het"], d["hom"]) == (3, 3) and d["low_qual"] == 1 and d["pass"] == 8
    assert d["ref_only"] == 2
    assert variant_type("A", "<*>") is None and variant_type("ACG", "TCA") == "MNP"
    assert VariantSummary().as_dict()["titv"] is None


def test_variant_summaries_merge_as_one() -> None:
    """Shards' summaries, merged, are the summary of all their records."""
    adds = [("A", ["G"], "PASS", [[0, 1]]), ("C", ["A"], "PASS", [[1, 1]]),
            ("AT", ["A"], "LowQual", [[0, 1]]), ("A", ["AT", "C"], None, [[1, 2]]),
            ("AC", ["GT"], "PASS", [[0, 1]])]
    whole, first, second = VariantSummary(), VariantSummary(), VariantSummary()
    for i, a in enumerate(adds):
        whole.add(*a)
        (first if i < 2 else second).add(*a)
    first.merge(second)
    assert first == whole and first.as_dict() == whole.as_dict()


def test_summarize_vcf(tmp_path: Path, ref: tuple[Path, dict[str, str]]) -> None:
    fa, seqs = ref
    out = tmp_path / "g.vcf.gz"
    write_records(out, fa, seqs, gvcf=True)
    d = summarize_vcf(out)
    # (the SNV genotyped ./. is carried by no sample: ref_only, not an SNV)
    assert d["variants"] == {"SNV": 3, "insertion": 1, "deletion": 1, "MNP": 0}
    assert d["low_qual"] == 1 and d["het"] == 3 and d["hom"] == 1 and d["ref_only"] == 1


# ---------------------------------------------------------------------------------------------
# variant accuracy


def write_vcf_text(path: Path, rows: list[tuple], with_contigs: bool = False) -> Path:
    lines = ["##fileformat=VCFv4.2", '##INFO=<ID=X,Number=1,Type=String,Description="x">',
             '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">']
    if with_contigs:
        lines.append("##contig=<ID=c1,length=2000>")
    lines.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS")
    for contig, pos, r, a, qual, filt, gt in rows:
        lines.append(f"{contig}\t{pos}\t.\t{r}\t{a}\t{qual}\t{filt}\tUNDECLARED=1\tGT\t{gt}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_variant_accuracy(tmp_path: Path, ref: tuple[Path, dict[str, str]]) -> None:
    fa, seqs = ref
    s = seqs["c1"]
    hp = 1500  # 0-based start of AAAAAA; left-normalised deletion anchors on the base before
    truth = [
        ("c1", 101, s[100], other_base(s[100]), 50, "PASS", "0|1"),      # TP
        ("c1", 201, s[200], other_base(s[200]), 50, "PASS", "1|1"),      # TP, other genotype
        ("c1", 301, s[300], other_base(s[300]), 50, "PASS", "0|1"),      # FN
        ("c1", 401, s[400:402], other_base(s[400]) + other_base(s[401]), 50, "PASS", "0|1"),
        ("c1", hp, s[hp - 1 : hp + 1], s[hp - 1], 50, "PASS", "0|1"),   # 1 bp deletion, TP
        ("c1", 601, s[600], s[600] + "GGT", 50, "PASS", "0|1"),          # FN insertion
    ]
    query = [
        ("c1", 101, s[100], other_base(s[100]), 50, "PASS", "0/1"),
        ("c1", 201, s[200], other_base(s[200]), 50, "PASS", "0/1"),
        ("c1", 401, s[400:402], other_base(s[400]) + other_base(s[401]), 50, "PASS", "0/1"),
        ("c1", hp + 5, "AA", "A", 50, "PASS", "0/1"),                     # right-shifted form
        ("c1", 701, s[700], other_base(s[700]), 50, "PASS", "0/1"),      # FP
        ("c1", 801, s[800], other_base(s[800]), 5, "LowQual", "0/1"),    # filtered: ignored
        ("c1", 901, s[900], other_base(s[900]), 50, "PASS", "0/0"),      # not a call: ignored
        ("c1", 1001, s[1000], s[1000] + "T", 50, "PASS", "1/1"),         # FP insertion
    ]
    t = write_vcf_text(tmp_path / "truth.vcf", truth)
    q = write_vcf_text(tmp_path / "query.vcf", query, with_contigs=True)
    acc = variant_accuracy(fa, t, q)
    snv, indel = acc["snv"], acc["indel"]
    # the MNP is atomised into two SNVs on both sides
    assert (snv["truth"], snv["query"], snv["tp"], snv["fp"], snv["fn"]) == (5, 5, 4, 1, 1)
    assert snv["precision"] == pytest.approx(0.8) and snv["recall"] == pytest.approx(0.8)
    assert snv["f1"] == pytest.approx(0.8)
    assert (indel["truth"], indel["query"], indel["tp"]) == (2, 2, 1)
    assert indel["precision"] == pytest.approx(0.5) and indel["recall"] == pytest.approx(0.5)
    # min_qual drops the FP at QUAL 50 along with everything else
    assert variant_accuracy(fa, t, q, min_qual=60)["snv"]["query"] == 0
    # a BED restricts both sides by POS
    bed = tmp_path / "r.bed"
    bed.write_text("c1\t0\t250\n")
    acc = variant_accuracy(fa, t, q, regions_bed=bed)
    assert (acc["snv"]["truth"], acc["snv"]["query"], acc["snv"]["tp"]) == (2, 2, 2)
    assert acc["indel"]["truth"] == 0 and acc["indel"]["f1"] == 0.0


# ---------------------------------------------------------------------------------------------
# the Caller's Python side against a stand-in engine


@pytest.fixture(scope="module")
def tiny_bam(tmp_path_factory: pytest.TempPathFactory, ref: tuple[Path, dict[str, str]]) -> Path:
    """A sorted, indexed BAM with a header matching ref and a few reads."""
    fa, seqs = ref
    d = tmp_path_factory.mktemp("bam")
    bam = d / "s.bam"
    header = {"HD": {"VN": "1.6", "SO": "coordinate"},
              "SQ": [{"SN": n, "LN": len(s)} for n, s in seqs.items()],
              "RG": [{"ID": "g", "SM": "sampleX"}]}
    with pysam.AlignmentFile(str(bam), "wb", header=header) as out:
        for i, pos in enumerate((10, 500, 1200)):
            a = pysam.AlignedSegment(out.header)
            a.query_name, a.reference_id, a.reference_start = f"r{i}", 0, pos
            a.query_sequence = seqs["c1"][pos : pos + 50]
            a.query_qualities = pysam.qualitystring_to_array("I" * 50)
            a.cigarstring, a.mapping_quality, a.flag = "50M", 60, 0
            a.set_tag("RG", "g")
            out.write(a)
    pysam.index(str(bam))
    return bam


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch, ref: tuple[Path, dict[str, str]]) -> dict:
    """Replaces the engine: call_region returns fixed records; pileup gives depth 30 except a
    zero-coverage stretch c1:[700, 760) and a few positions with non-reference evidence."""
    _, seqs = ref
    s1 = seqs["c1"]
    recs = {"c1": [record(99, s1[99], [other_base(s1[99])], [0, 1]),
                   record(290, s1[290:310], [s1[290]], [0, 1]),   # deletion across shard ends
                   record(305, s1[305], [other_base(s1[305])], [0, 1]),
                   record(899, s1[899], [s1[899] + "GA"], [1, 1], qual=10, filt="LowQual")],
            "c2": [record(10, seqs["c2"][10], [other_base(seqs["c2"][10])], [1, 1])]}
    calls: list[tuple[str, int, int]] = []

    def call_region(bams, reference, ref_codes, contig, start, end, options):
        assert ref_codes.dtype == np.uint8 and len(ref_codes) == len(seqs[contig])
        assert "".join("ACGTN"[c] for c in ref_codes[:20]) == seqs[contig][:20]
        calls.append((contig, start, end))
        confidence = None
        if options.get("reference_confidence"):  # the model's definition, over pileup's counts
            pile = pileup(bams[0], contig, start, end, reference, options)
            gq, pl, depth = homref_likelihoods(pile, ref_codes[start:end], options["ploidy"])
            confidence = {"start": start, "gq": gq, "pl": pl, "depth": depth}
        return ([r for r in recs[contig] if start <= r["pos"] < end],
                {"loaded": 10, "filtered": 1, "depth_capped": 0}, confidence)

    def pileup(bam, contig, start, end, reference, options):
        codes = np.array([CODE[b] for b in seqs[contig][start:end]], np.int64)
        depth = np.full(end - start, 30)
        pos = np.arange(start, end)
        depth[(pos >= 700) & (pos < 760)] = 0 if contig == "c1" else 30
        depth[pos % 97 == 0] = 8
        alt = np.where(pos % 131 == 0, 4, 0)
        alt = np.minimum(alt, depth)
        out = pileup_arrays(codes, depth, alt)
        out["start"] = start
        return out

    monkeypatch.setattr(gcall, "_engine_call_region", call_region)
    monkeypatch.setattr(gcall, "_engine_pileup", pileup)
    monkeypatch.setattr(gcall, "_require_engine", lambda: None)
    monkeypatch.setattr(gcall, "SHARD_SIZE", 300)
    return {"calls": calls, "records": recs}


def gvcf_rows(path: Path) -> list[tuple[str, int, int, str, dict]]:
    out = []
    with pysam.VariantFile(str(path)) as vf:
        for r in vf:
            out.append((r.contig, r.start, r.stop, r.alts[-1], dict(r.samples[0])))
    return out


def test_caller_gvcf_covers_contigs(tmp_path: Path, ref: tuple[Path, dict[str, str]],
                                    tiny_bam: Path, fake_engine: dict) -> None:
    fa, seqs = ref
    out = tmp_path / "s.g.vcf.gz"
    stats = Caller(fa, threads=3).write_vcf(tiny_bam, out, gvcf=True,
                                            command_line=["gmsaccel", "call"])
    assert stats["samples"] == ["sampleX"] and stats["reads"]["loaded"] == 10 * 11
    assert stats["variants"]["SNV"] == 3 and stats["low_qual"] == 1
    rows = gvcf_rows(out)
    pysam.bcftools.norm("--check-ref", "e", "-f", str(fa), "-Ov", str(out))
    blocks = [r for r in rows if r[4].get("MIN_DP") is not None]
    variants = [r for r in rows if r[4].get("MIN_DP") is None]
    assert all(r[3] == "<*>" for r in blocks)
    for contig, length in (("c1", 2000), ("c2", 1000)):
        in_block = np.zeros(length, int)
        in_variant = np.zeros(length, bool)
        for r in blocks:
            if r[0] == contig:
                in_block[r[1] : r[2]] += 1
        for r in variants:
            if r[0] == contig:
                in_variant[r[1] : r[2]] = True
        assert in_block.max() == 1                      # blocks never overlap each other
        assert not (in_variant & (in_block > 0)).any()  # nor a variant record
        assert ((in_block > 0) | in_variant).all()      # and cover the contig with them
    zero = [r for r in blocks if r[0] == "c1" and r[1] >= 700 and r[2] <= 760]
    assert zero and all(r[4]["GQ"] == 0 and r[4]["DP"] == 0 and r[4]["MIN_DP"] == 0 for r in zero)
    assert sum(r[2] - r[1] for r in zero) == 60
    # GQ bands are respected inside each block
    assert all(r[4]["GQ"] <= 99 for r in blocks)


def test_caller_writes_vcf_and_gvcf_in_one_pass(tmp_path: Path,
                                                ref: tuple[Path, dict[str, str]],
                                                tiny_bam: Path, fake_engine: dict,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """gvcf_out: the plain VCF and the gVCF from one pass are what two passes write."""
    fa, _ = ref
    caller = Caller(fa, threads=2)
    caller.write_vcf(tiny_bam, tmp_path / "alone.vcf.gz")
    caller.write_vcf(tiny_bam, tmp_path / "alone.g.vcf.gz", gvcf=True)
    fake_engine["calls"].clear()
    stats = caller.write_vcf(tiny_bam, tmp_path / "both.vcf.gz",
                             gvcf_out=tmp_path / "both.g.vcf.gz")
    assert len(fake_engine["calls"]) == len(set(fake_engine["calls"]))  # each shard once
    assert stats["variants"]["SNV"] == 3 and stats["low_qual"] == 1
    for kind in ("vcf", "g.vcf"):
        with pysam.BGZFile(str(tmp_path / f"alone.{kind}.gz")) as a, \
                pysam.BGZFile(str(tmp_path / f"both.{kind}.gz")) as b:
            assert a.read() == b.read()
    with pytest.raises(InputError, match="paths of their own"):
        caller.write_vcf(tiny_bam, tmp_path / "x.vcf.gz", gvcf_out=tmp_path / "x.vcf.gz")
    with pytest.raises(ValueError, match="plain VCF"):
        caller.write_vcf(tiny_bam, tmp_path / "x.vcf.gz", gvcf=True, gvcf_out=tmp_path / "y")

    # a failure part way leaves neither file
    def broken(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("engine failed")

    monkeypatch.setattr(gcall, "_engine_call_region", broken)
    with pytest.raises(RuntimeError, match="engine failed"):
        caller.write_vcf(tiny_bam, tmp_path / "f.vcf.gz", gvcf_out=tmp_path / "f.g.vcf.gz")
    assert not [n for n in os.listdir(tmp_path) if n.startswith("f.")]


def test_vcf_and_gvcf_pair_fails_before_either_lands(tmp_path: Path,
                                                     ref: tuple[Path, dict[str, str]],
                                                     tiny_bam: Path, fake_engine: dict) -> None:
    """When the second file of a VCF/gVCF pair cannot be put in place (here a directory where
    its index goes), the first is not put in place either: an older file there stays."""
    fa, _ = ref
    (tmp_path / "both.vcf.gz").write_bytes(b"older")
    (tmp_path / "both.g.vcf.gz.tbi").mkdir()
    (tmp_path / "both.g.vcf.gz.tbi" / "x").write_text("")
    with pytest.raises(OSError, match="is a directory"):
        Caller(fa, threads=2).write_vcf(tiny_bam, tmp_path / "both.vcf.gz",
                                        gvcf_out=tmp_path / "both.g.vcf.gz")
    assert (tmp_path / "both.vcf.gz").read_bytes() == b"older"
    assert sorted(os.listdir(tmp_path)) == ["both.g.vcf.gz.tbi", "both.vcf.gz"]


def test_caller_threads_deterministic(tmp_path: Path, ref: tuple[Path, dict[str, str]],
                                      tiny_bam: Path, fake_engine: dict) -> None:
    fa, _ = ref
    texts = []
    for threads in (1, 2, 5):
        out = tmp_path / f"t{threads}.g.vcf"
        Caller(fa, threads=threads).write_vcf([tiny_bam], out, gvcf=True)
        texts.append(out.read_text())
    assert texts[0] == texts[1] == texts[2]
    variants = list(Caller(fa, threads=4).call([tiny_bam]))
    assert [(v.contig, v.pos) for v in variants] == [("c1", 100), ("c1", 291), ("c1", 306),
                                                     ("c1", 900), ("c2", 11)]
    v = variants[0]
    assert v.gt.shape == (1, 2) and v.gt.dtype == np.int8 and v.gt.tolist() == [[0, 1]]
    assert v.pl.shape == (1, 3) and v.ad.shape == (1, 2) and v.info == {"DP": 20, "MQ": 60}
    assert v.to_record()["pos"] == 99
    # a region restricts the shards asked for
    fake_engine["calls"].clear()
    got = list(Caller(fa).call(tiny_bam, region="c1:250-700"))
    assert [v.pos for v in got] == [291, 306]
    assert fake_engine["calls"] == [("c1", 249, 549), ("c1", 549, 700)]


def test_caller_input_checks(tmp_path: Path, ref: tuple[Path, dict[str, str]],
                             tiny_bam: Path, fake_engine: dict) -> None:
    fa, seqs = ref
    caller = Caller(fa)
    with pytest.raises(InputError, match="no such file"):
        caller.call([tmp_path / "missing.bam"])
    with pytest.raises(InputError, match="outside contig c2"):
        caller.call([tiny_bam], region="c2:1-1001")
    with pytest.raises(InputError, match="also the sample"):
        caller.call([tiny_bam, tiny_bam])
    with pytest.raises(InputError, match="one BAM"):
        caller.write_vcf([tiny_bam, tiny_bam], tmp_path / "x.g.vcf.gz", gvcf=True)
    with pytest.raises(InputError, match="does not exist"):
        caller.write_vcf(tiny_bam, tmp_path / "nodir" / "x.vcf.gz")
    # a BAM whose contig is longer than the FASTA's
    other = tmp_path / "long.bam"
    hdr = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": "c1", "LN": 2500}]}
    with pysam.AlignmentFile(str(other), "wb", header=hdr):
        pass
    pysam.index(str(other))
    with pytest.raises(InputError, match=rf"{other}: contig c1 has length 2,500 .*{fa}"):
        caller.call([other])
    # unindexed
    unidx = tmp_path / "unidx.bam"
    with pysam.AlignmentFile(str(unidx), "wb", header=hdr):
        pass
    with pytest.raises(InputError, match="index"):
        caller.call([unidx], region="c2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.bam", "long.bam.bai",
                                                          "unidx.bam"]
    with pytest.raises(ValueError, match="ploidy"):
        Caller(fa, ploidy=3)
