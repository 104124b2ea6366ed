"""The command line, end to end: `python -m gmsaccel index|align|doctor` in a subprocess.

Happy paths check the BAM it writes (sorted, indexed, header lines, read groups), stdout output,
determinism over threads and batch sizes. Bad input must fail with exit status 1, one stderr line
'gmsaccel COMMAND: error: ...' that names the file (and the record where there is one), no
traceback, nothing at the output path and no temporary files left beside it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pysam
import pytest
from conftest import Dataset, cli_env, random_genome, run_cli, write_fasta

from gmsaccel.evaluate import mapping_accuracy

RG = r"@RG\tID:grp1\tSM:sample1"


# ---------------------------------------------------------------------------------------------
# helpers


def fastq_records(path: Path) -> list[tuple[str, str, str]]:
    with pysam.FastxFile(str(path)) as fh:
        return [(r.name, r.sequence, r.quality) for r in fh]


def write_fq(path: Path, recs: list[tuple[str, str, str]]) -> Path:
    text = "".join(f"@{n}\n{s}\n+\n{q}\n" for n, s, q in recs)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        path.write_text(text)
    return path


def sam_records(bam: Path | bytes) -> list[str]:
    """All records as SAM text lines (header excluded), in file order."""
    if isinstance(bam, bytes):
        text = bam.decode()
    else:
        text = pysam.samtools.view(str(bam))
    return [ln for ln in text.splitlines() if ln and not ln.startswith("@")]


def header_of(bam: Path) -> dict:
    with pysam.AlignmentFile(str(bam)) as f:
        return f.header.to_dict()


def ok(proc: subprocess.CompletedProcess[bytes]) -> str:
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    return err


def assert_clean_failure(proc: subprocess.CompletedProcess[bytes], command: str,
                         *needles: str, out: Path | None = None) -> str:
    """Exit 1, exactly one stderr line 'gmsaccel COMMAND: error: ...' containing every needle,
    no traceback; nothing at `out` (nor its index) and nothing else left in its directory,
    which the caller created empty."""
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith(f"gmsaccel {command}: error: "), line
    for n in needles:
        assert n in line, f"{n!r} not in {line!r}"
    if out is not None:
        assert not out.exists()
        assert not Path(f"{out}.bai").exists()
        assert sorted(p.name for p in out.parent.iterdir()) == []
    return line


@pytest.fixture()
def outdir(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


@pytest.fixture(scope="module")
def paired_bam(dataset: Dataset, index_path: Path,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("paired") / "sample.bam"
    proc = run_cli("align", index_path, dataset.r1, dataset.r2, "-o", out, "-R", RG,
                   "--metrics", out.with_suffix(".json"))
    return out, ok(proc)


# ---------------------------------------------------------------------------------------------
# help, doctor, device


@pytest.mark.parametrize("command", [[], ["index"], ["align"], ["demo"], ["doctor"]])
def test_help_exits_zero(command: list[str]) -> None:
    proc = run_cli(*command, "--help")
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    assert out.startswith("usage: gmsaccel")
    if command:
        assert f"gmsaccel {command[0]}" in out.splitlines()[0]


def test_version() -> None:
    import gmsaccel

    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.decode().strip() == f"gmsaccel {gmsaccel.__version__}"


def test_doctor_text() -> None:
    proc = run_cli("doctor")
    ok(proc)
    keys = {ln.split()[0] for ln in proc.stdout.decode().splitlines() if ln.strip()}
    assert {"version", "simd_level", "cuda_compiled", "gpu_available", "devices"} <= keys


def test_doctor_json() -> None:
    import gmsaccel
    from gmsaccel import _core

    proc = run_cli("doctor", "--json")
    ok(proc)
    info = json.loads(proc.stdout)
    assert {"version", "simd_level", "cuda_compiled", "gpu_available", "devices"} <= info.keys()
    assert info["version"] == gmsaccel.__version__
    assert info["simd_level"] == _core.simd_level()
    assert info["gzip_inflater"] == (_core.fast_inflate_library() or "htslib (zlib)")
    assert info["bam_deflater"].startswith("isa-l" if _core.fast_bam_deflate_available()
                                           else "htslib")
    assert info["bam_inflater"].startswith("isa-l" if _core.fast_bam_inflate_available()
                                           else "htslib")
    assert info["spill_codec"].startswith("isa-l" if _core.spill_compression_available()
                                          else "none")
    assert isinstance(info["cuda_compiled"], bool)
    assert isinstance(info["gpu_available"], bool)
    assert isinstance(info["devices"], list)
    if not info["gpu_available"]:
        assert info["devices"] == []
    # why not, in the runtime's words (a driver older than the toolkit shows as such)
    assert bool(info["gpu_problem"]) == (not info["gpu_available"])


@pytest.mark.parametrize("device", ["gpu", "gpu:0"])
def test_device_gpu_without_cuda(dataset: Dataset, index_path: Path, outdir: Path,
                                 device: str) -> None:
    info = json.loads(run_cli("doctor", "--json").stdout)
    if info["cuda_compiled"]:
        pytest.skip("this build has CUDA kernels")
    out = outdir / "x.bam"
    proc = run_cli("align", index_path, dataset.r1, dataset.r2, "-o", out, "--device", device)
    assert_clean_failure(proc, "align", f"--device {device}", "CUDA", out=out)


def test_unknown_device(dataset: Dataset, index_path: Path, outdir: Path) -> None:
    out = outdir / "x.bam"
    proc = run_cli("align", index_path, dataset.r1, "-o", out, "--device", "tpu")
    assert_clean_failure(proc, "align", "tpu", out=out)


# ---------------------------------------------------------------------------------------------
# index


def test_index_writes_gxi_and_reports(dataset: Dataset, tmp_path: Path) -> None:
    ref = tmp_path / "genome.fa"
    shutil.copy(dataset.ref, ref)
    proc = run_cli("index", ref)
    err = ok(proc)
    gxi = tmp_path / "genome.fa.gxi"
    assert gxi.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genome.fa", "genome.fa.gxi"]
    assert f"wrote {gxi}" in err
    assert re.search(r"indexed 2 contigs, 42,000 bp, [\d,]+ minimizers in \d+\.\d+ s", err), err
    mb = re.search(r"\((\d+\.\d) MB\)", err)
    assert mb and abs(float(mb.group(1)) - gxi.stat().st_size / 1e6) <= 0.05, err

    from gmsaccel.align import Index

    idx = Index.load(gxi)
    assert [(c.name, c.length) for c in idx.contigs] == [
        (n, len(s)) for n, s in dataset.contigs]


def test_index_output_option_and_quiet(dataset: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "other.gxi"
    proc = run_cli("index", dataset.ref, "-o", out, "-q")
    assert ok(proc) == ""
    assert out.stat().st_size > 0


def test_index_threads_write_the_same_index(dataset: Dataset, tmp_path: Path) -> None:
    import numpy as np

    from gmsaccel import _core

    one, three = tmp_path / "one.gxi", tmp_path / "three.gxi"
    assert ok(run_cli("index", dataset.ref, "-o", one, "-q")) == ""
    assert ok(run_cli("index", dataset.ref, "-o", three, "-q", "-t", "3")) == ""
    a, b = (_core.Index.load(str(p)).table_arrays() for p in (one, three))
    assert all(np.array_equal(a[name], b[name]) for name in a if name != "id")
    assert one.stat().st_size == three.stat().st_size


def _index_failure(tmp_path: Path, fasta_text: str, *needles: str) -> None:
    d = tmp_path / "ref"
    d.mkdir()
    fa = d / "bad.fa"
    fa.write_text(fasta_text)
    proc = run_cli("index", fa)
    assert_clean_failure(proc, "index", str(fa), *needles)
    assert sorted(p.name for p in d.iterdir()) == ["bad.fa"]


def test_index_duplicate_contig(tmp_path: Path) -> None:
    _index_failure(tmp_path, ">c1\nACGTACGTAC\n>c2 x\nACGTAAAA\n>c1\nGGGGCCCC\n",
                   "record 3", "c1", "duplicate")


def test_index_empty_contig(tmp_path: Path) -> None:
    _index_failure(tmp_path, ">c1\nACGTACGTAC\n>empty\n>c3\nGGGGCCCC\n",
                   "record 2", "empty")


def test_index_empty_last_contig(tmp_path: Path) -> None:
    _index_failure(tmp_path, ">c1\nACGTACGTAC\n>tail\n", "record 2", "tail", "empty")


def test_index_missing_fasta(tmp_path: Path) -> None:
    fa = tmp_path / "nope.fa"
    proc = run_cli("index", fa)
    assert_clean_failure(proc, "index", str(fa))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# align: happy paths


def test_align_paired_bam(paired_bam: tuple[Path, str], dataset: Dataset) -> None:
    bam, err = paired_bam
    assert pysam.samtools.quickcheck(str(bam)) == ""
    assert Path(f"{bam}.bai").exists()
    assert sorted(p.name for p in bam.parent.iterdir()) == [
        "sample.bam", "sample.bam.bai", "sample.json"]
    assert re.search(r"6,000 reads, [\d,]+ mapped", err), err

    hdr = header_of(bam)
    assert hdr["HD"]["SO"] == "coordinate"
    want_sq = [{"SN": n, "LN": len(s), "M5": hashlib.md5(s.upper().encode()).hexdigest()}
               for n, s in dataset.contigs]
    assert [{k: sq[k] for k in ("SN", "LN", "M5")} for sq in hdr["SQ"]] == want_sq
    assert hdr["RG"] == [{"ID": "grp1", "SM": "sample1"}]
    (pg,) = [p for p in hdr["PG"] if p["ID"] == "gmsaccel"]
    assert pg["CL"].startswith("gmsaccel align ")
    assert str(dataset.r1) in pg["CL"] and str(dataset.r2) in pg["CL"]
    assert "ID:grp1" in pg["CL"]

    keys = []
    n = 0
    with pysam.AlignmentFile(str(bam)) as f:
        for r in f:
            n += 1
            assert r.get_tag("RG") == "grp1"
            keys.append((r.reference_id if r.reference_id >= 0 else 1 << 30,
                         r.reference_start))
    assert n >= 2 * dataset.n_pairs
    assert keys == sorted(keys)
    # the .bai works
    with pysam.AlignmentFile(str(bam)) as f:
        assert f.count(dataset.contigs[1][0], 1000, 2000) > 0

    acc = mapping_accuracy(bam)
    assert acc.reads == 2 * dataset.n_pairs
    assert acc.mapped_fraction(0) > 0.99
    assert acc.wrong_fraction(20) < 0.01


def test_metrics_json(paired_bam: tuple[Path, str], dataset: Dataset) -> None:
    bam, _ = paired_bam
    m = json.loads(bam.with_suffix(".json").read_text())
    assert m["reads"] == 2 * dataset.n_pairs
    assert 0.99 * m["reads"] <= m["mapped"] <= m["reads"]
    assert m["insert_model"]["valid"]
    assert abs(m["insert_model"]["mean"] - 400) < 20


def test_align_interleaved_from_stdin(dataset: Dataset, index_path: Path, tmp_path: Path,
                                     outdir: Path) -> None:
    """`samtools fastq | gmsaccel align -p REF -`: the pairs from one stream, the records the
    two files give; -p with a second file is refused."""
    with gzip.open(dataset.r1, "rt") as a, gzip.open(dataset.r2, "rt") as b:
        l1, l2 = a.read().splitlines(), b.read().splitlines()
    text = "".join("\n".join(l1[i:i + 4] + l2[i:i + 4]) + "\n" for i in range(0, len(l1), 4))
    one, two = tmp_path / "one.bam", tmp_path / "two.bam"
    ok(run_cli("align", index_path, "-", "-p", "-o", one, "-q", stdin=text.encode()))
    ok(run_cli("align", index_path, dataset.r1, dataset.r2, "-o", two, "-q"))
    with pysam.AlignmentFile(str(one)) as f, pysam.AlignmentFile(str(two)) as g:
        assert [r.to_string() for r in f] == [r.to_string() for r in g]
    proc = run_cli("align", index_path, dataset.r1, dataset.r2, "-p", "-o", outdir / "x.bam")
    assert_clean_failure(proc, "align", "give no reads2", out=outdir / "x.bam")


def test_align_single_end(dataset: Dataset, index_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "se.bam"
    ok(run_cli("align", index_path, dataset.r1, "-o", out, "-t", "2", "-q"))
    assert pysam.samtools.quickcheck(str(out)) == ""
    assert Path(f"{out}.bai").exists()
    assert header_of(out)["HD"]["SO"] == "coordinate"
    with pysam.AlignmentFile(str(out)) as f:
        recs = [r for r in f if not (r.is_secondary or r.is_supplementary)]
    assert len(recs) == dataset.n_pairs
    assert not any(r.is_paired for r in recs)
    assert sum(not r.is_unmapped for r in recs) > 0.99 * dataset.n_pairs


def test_align_copy_comment(index_path: Path, dataset: Dataset, tmp_path: Path,
                            outdir: Path) -> None:
    """-C puts each read's comment tags on its records; a comment that is not SAM tags fails
    cleanly, naming the file, the record and the field, with nothing written."""
    with gzip.open(dataset.r1, "rt") as f:
        lines = f.read().splitlines()
    good, bad = tmp_path / "good.fq", tmp_path / "bad.fq"
    for path, tag in ((good, "RX:Z:AAC-GTT"), (bad, "1:N:0:ATCACG")):
        path.write_text("".join(
            f"{line} {tag if i == 4 * 9 else 'RX:Z:AAC-GTT'}\n" if i % 4 == 0 else line + "\n"
            for i, line in enumerate(lines[:4 * 50])))
    out = tmp_path / "c.bam"
    ok(run_cli("align", index_path, good, "-o", out, "-C", "-q"))
    with pysam.AlignmentFile(str(out)) as f:
        assert [r.get_tag("RX") for r in f] == ["AAC-GTT"] * 50
    proc = run_cli("align", index_path, bad, "-o", outdir / "c.bam", "--copy-comment")
    assert_clean_failure(proc, "align", f"{bad}: record 10 (", '"1:N:0:ATCACG"',
                         out=outdir / "c.bam")


def test_stdout_bam(dataset: Dataset, index_path: Path, tmp_path: Path) -> None:
    proc = run_cli("align", index_path, dataset.r1, dataset.r2, "-o", "-", "-q")
    assert ok(proc) == ""
    assert proc.stdout[:2] == b"\x1f\x8b"  # BGZF
    path = tmp_path / "stdout.bam"
    path.write_bytes(proc.stdout)
    assert pysam.samtools.quickcheck(str(path)) == ""
    with pysam.AlignmentFile(str(path)) as f:
        assert f.header.to_dict()["HD"]["SO"] == "coordinate"
        assert sum(1 for _ in f) >= 2 * dataset.n_pairs
    assert list(tmp_path.iterdir()) == [path]  # no index, no temporaries in the cwd either


def test_stdout_is_default_and_sam_format(dataset: Dataset, index_path: Path,
                                          paired_bam: tuple[Path, str]) -> None:
    proc = run_cli("align", index_path, dataset.r1, dataset.r2, "--output-fmt", "sam",
                   "-R", RG)
    ok(proc)
    text = proc.stdout.decode()
    assert text.startswith("@HD\tVN:1.6\tSO:coordinate\n")
    assert sam_records(proc.stdout) == sam_records(paired_bam[0])


def test_sam_file_by_extension(dataset: Dataset, index_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.sam"
    ok(run_cli("align", index_path, dataset.r1, "-o", out, "-q"))
    assert out.read_text().startswith("@HD")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.sam"]


def test_unsorted_keeps_input_order(dataset: Dataset, index_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "u.bam"
    ok(run_cli("align", index_path, dataset.r1, dataset.r2, "-o", out, "--unsorted", "-t", "2",
               "--batch-size", "100"))
    assert header_of(out)["HD"]["SO"] == "unsorted"
    assert not Path(f"{out}.bai").exists()
    names = [n for n, _, _ in fastq_records(dataset.r1)]
    with pysam.AlignmentFile(str(out)) as f:
        prim = [(r.query_name, r.is_read1) for r in f
                if not (r.is_secondary or r.is_supplementary)]
    assert prim == [(n, first) for n in names for first in (True, False)]


def test_fasta_with_saved_index_is_used(dataset: Dataset, tmp_path: Path) -> None:
    ref = tmp_path / "ref.fa"
    shutil.copy(dataset.ref, ref)
    shutil.copy(f"{dataset.ref}.fai", f"{ref}.fai")
    ok(run_cli("index", ref, "-q"))
    gxi = Path(f"{ref}.gxi")
    before = gxi.stat().st_mtime_ns
    out = tmp_path / "a.bam"
    err = ok(run_cli("align", ref, dataset.r1, "-o", out))
    assert "indexing" not in err  # the saved index was loaded, not rebuilt
    assert gxi.stat().st_mtime_ns == before
    assert pysam.samtools.quickcheck(str(out)) == ""


def test_fasta_without_index_is_indexed_on_the_fly(dataset: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "a.bam"
    err = ok(run_cli("align", dataset.ref, dataset.r1, "-o", out))
    assert f"indexed {dataset.ref} in memory" in err
    assert not Path(f"{dataset.ref}.gxi").exists()
    assert pysam.samtools.quickcheck(str(out)) == ""


def test_reads_from_stdin(dataset: Dataset, index_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "stdin.bam"
    ok(run_cli("align", index_path, "-", "-o", out, "-q", stdin=dataset.r1.read_bytes()))
    with pysam.AlignmentFile(str(out)) as f:
        assert sum(not r.is_secondary and not r.is_supplementary for r in f) == dataset.n_pairs


def test_overwrites_existing_output_and_index(dataset: Dataset, index_path: Path,
                                              tmp_path: Path) -> None:
    out = tmp_path / "o.bam"
    out.write_bytes(b"old")
    Path(f"{out}.bai").write_bytes(b"old")
    ok(run_cli("align", index_path, dataset.r1, "-o", out, "-q"))
    assert pysam.samtools.quickcheck(str(out)) == ""
    with pysam.AlignmentFile(str(out)) as f:
        assert f.count(dataset.contigs[0][0]) > 0  # uses the new .bai


# ---------------------------------------------------------------------------------------------
# determinism


@pytest.fixture(scope="module")
def baseline_records(dataset: Dataset, index_path: Path,
                     tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("det") / "t1.bam"
    ok(run_cli("align", index_path, dataset.r1, dataset.r2, "-o", out, "-t", "1", "-q",
               "-R", RG))
    return sam_records(out)


# -t 4: each gzip input also gets an inflating thread (kInflateAheadThreads)
@pytest.mark.parametrize("opts", [["-t", "2"], ["-t", "3"], ["-t", "4"], ["--batch-size", "7"],
                                  ["--batch-size", "7", "-t", "2"],
                                  ["--sort-memory", "1"]],
                         ids=lambda o: " ".join(o))
def test_deterministic(dataset: Dataset, index_path: Path, tmp_path: Path,
                       baseline_records: list[str], opts: list[str]) -> None:
    out = tmp_path / "x.bam"
    ok(run_cli("align", index_path, dataset.r1, dataset.r2, "-o", out, "-q", "-R", RG, *opts))
    assert sam_records(out) == baseline_records
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.bam", "x.bam.bai"]


@pytest.mark.parametrize("threads", ["1", "4", "8"])
def test_deterministic_bgzf_inputs(dataset: Dataset, index_path: Path, tmp_path: Path,
                                   baseline_records: list[str], threads: str) -> None:
    # BGZF FASTQ: ISA-L on the reader's thread, then read-ahead (-t 4), then htslib's
    # block-parallel threads (-t 8); always the records of gzip input at -t 1
    r1, r2 = tmp_path / "r1.fq.bgz", tmp_path / "r2.fq.bgz"
    _bgzip(r1, fastq_records(dataset.r1))
    _bgzip(r2, fastq_records(dataset.r2))
    out = tmp_path / "x.bam"
    ok(run_cli("align", index_path, r1, r2, "-o", out, "-q", "-R", RG, "-t", threads))
    assert sam_records(out) == baseline_records


# ---------------------------------------------------------------------------------------------
# align: bad input


def _align_fail(index: Path, reads: list[Path], outdir: Path, *needles: str,
                extra: tuple[str, ...] = ()) -> str:
    out = outdir / "x.bam"
    proc = run_cli("align", index, *reads, "-o", out, *extra)
    return assert_clean_failure(proc, "align", *needles, out=out)


def test_missing_reads_file(index_path: Path, tmp_path: Path, outdir: Path) -> None:
    missing = tmp_path / "missing_1.fq.gz"
    _align_fail(index_path, [missing], outdir, str(missing), "No such file")


def test_missing_mate_file(dataset: Dataset, index_path: Path, tmp_path: Path,
                           outdir: Path) -> None:
    missing = tmp_path / "missing_2.fq"
    _align_fail(index_path, [dataset.r1, missing], outdir, str(missing))


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root can read any file")
def test_unreadable_reads_file(dataset: Dataset, index_path: Path, tmp_path: Path,
                               outdir: Path) -> None:
    r1 = tmp_path / "locked.fq.gz"
    shutil.copy(dataset.r1, r1)
    r1.chmod(0)
    try:
        _align_fail(index_path, [r1], outdir, str(r1), "Permission denied")
    finally:
        r1.chmod(0o644)


def test_truncated_gzip(dataset: Dataset, index_path: Path, tmp_path: Path,
                        outdir: Path) -> None:
    data = dataset.r1.read_bytes()
    assert len(data) > 100_000
    r1 = tmp_path / "cut.fq.gz"
    r1.write_bytes(data[:-1000])
    line = _align_fail(index_path, [r1], outdir, str(r1), "truncated")
    assert re.search(r"record \d+", line), line


@pytest.mark.parametrize("threads", ["2", "4"])
def test_truncated_gzip_paired_threads(dataset: Dataset, index_path: Path, tmp_path: Path,
                                       outdir: Path, threads: str) -> None:
    data = dataset.r2.read_bytes()
    r2 = tmp_path / "cut_2.fq.gz"
    r2.write_bytes(data[:-1000])
    _align_fail(index_path, [dataset.r1, r2], outdir, str(r2),
                extra=("-t", threads, "--batch-size", "50"))


BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def _bgzip(path: Path, recs: list[tuple[str, str, str]]) -> bytes:
    plain = write_fq(path.with_suffix(".plain"), recs)
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()
    return path.read_bytes()


def test_truncated_bgzf_mid_block(dataset: Dataset, index_path: Path, tmp_path: Path,
                                  outdir: Path) -> None:
    r1 = tmp_path / "cut.fq.bgz"
    data = _bgzip(r1, fastq_records(dataset.r1))
    assert len(data) > 100_000
    r1.write_bytes(data[:-5000])
    _align_fail(index_path, [r1], outdir, str(r1), "record", extra=("-t", "2"))


def test_bgzf_without_eof_marker(dataset: Dataset, index_path: Path, tmp_path: Path,
                                 outdir: Path) -> None:
    r1 = tmp_path / "noeof.fq.gz"
    data = _bgzip(r1, fastq_records(dataset.r1)[:1000])
    assert data.endswith(BGZF_EOF)
    r1.write_bytes(data[: -len(BGZF_EOF)])
    _align_fail(index_path, [r1], outdir, str(r1), "truncated")


def test_index_truncated_gzip_fasta(dataset: Dataset, tmp_path: Path) -> None:
    fa = tmp_path / "ref.fa.gz"
    data = gzip.compress(dataset.ref.read_bytes(), mtime=0)
    fa.write_bytes(data[: len(data) // 2])
    proc = run_cli("index", fa)
    assert_clean_failure(proc, "index", str(fa), "truncated")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.fa.gz"]


def test_fastq_missing_plus_line(index_path: Path, tmp_path: Path, outdir: Path) -> None:
    r1 = tmp_path / "noplus.fq"
    r1.write_text("@a\nACGT\n+\nIIII\n@b\nACGT\n+\nIIII\n@c\nACGT\nIIII\n@d\nACGT\n+\nIIII\n")
    _align_fail(index_path, [r1], outdir, str(r1), "record 3", "(c)", "'+'")


def test_fastq_seq_qual_mismatch(index_path: Path, tmp_path: Path, outdir: Path) -> None:
    r1 = tmp_path / "len.fq.gz"
    recs = [(f"q{i}", "ACGTACGT", "IIIIIIII") for i in range(5)]
    recs[3] = ("q3", "ACGTACGT", "IIIIIII")
    write_fq(r1, recs)
    _align_fail(index_path, [r1], outdir, str(r1), "record 4", "(q3)", "8 vs 7")


def test_mate_files_with_different_counts(dataset: Dataset, index_path: Path, tmp_path: Path,
                                          outdir: Path) -> None:
    recs = fastq_records(dataset.r2)
    r2 = write_fq(tmp_path / "short_2.fq", recs[:-10])
    _align_fail(index_path, [dataset.r1, r2], outdir, str(r2), str(dataset.r1),
                f"after {len(recs) - 10} records")


def test_mate_files_r1_shorter(dataset: Dataset, index_path: Path, tmp_path: Path,
                               outdir: Path) -> None:
    recs = fastq_records(dataset.r1)
    r1 = write_fq(tmp_path / "short_1.fq", recs[:25])
    _align_fail(index_path, [r1, dataset.r2], outdir, str(r1), "after 25 records",
                extra=("-t", "2", "--batch-size", "10"))


def test_mate_files_with_mismatched_names(dataset: Dataset, index_path: Path, tmp_path: Path,
                                          outdir: Path) -> None:
    recs = fastq_records(dataset.r2)
    recs[1500], recs[1501] = recs[1501], recs[1500]
    r2 = write_fq(tmp_path / "swapped_2.fq.gz", recs)
    _align_fail(index_path, [dataset.r1, r2], outdir, str(r2), str(dataset.r1), "record 1501",
                f"({recs[1500][0]})", extra=("-t", "2"))


def test_index_of_other_reference_beside_fasta(dataset: Dataset, index_path: Path,
                                               tmp_path: Path, outdir: Path) -> None:
    other = write_fasta(tmp_path / "B.fa", random_genome(99, {"chr1": 20_000}))
    pysam.faidx(str(other))
    shutil.copy(index_path, f"{other}.gxi")
    _align_fail(other, [dataset.r1], outdir, f"{other}.gxi", str(other), "different reference")


def test_index_of_other_reference_same_names(dataset: Dataset, index_path: Path,
                                             tmp_path: Path, outdir: Path) -> None:
    lengths = {n: len(s) for n, s in dataset.contigs}
    other = write_fasta(tmp_path / "B.fa", random_genome(99, lengths))
    pysam.faidx(str(other))
    shutil.copy(index_path, f"{other}.gxi")
    _align_fail(other, [dataset.r1], outdir, f"{other}.gxi", "different reference")


def test_not_an_index(dataset: Dataset, tmp_path: Path, outdir: Path) -> None:
    fake = tmp_path / "fake.gxi"
    shutil.copy(dataset.ref, fake)  # a FASTA under an index name
    _align_fail(fake, [dataset.r1], outdir, str(fake), "not a gmsaccel index")


def test_empty_file_as_index(dataset: Dataset, tmp_path: Path, outdir: Path) -> None:
    fake = tmp_path / "empty.gxi"
    fake.write_bytes(b"")
    _align_fail(fake, [dataset.r1], outdir, str(fake), "not a gmsaccel index")


def test_truncated_index(dataset: Dataset, index_path: Path, tmp_path: Path,
                         outdir: Path) -> None:
    cut = tmp_path / "cut.gxi"
    cut.write_bytes(index_path.read_bytes()[:-100])
    _align_fail(cut, [dataset.r1], outdir, str(cut), "truncated")


def test_missing_reference(dataset: Dataset, tmp_path: Path, outdir: Path) -> None:
    for ref in (tmp_path / "none.fa", tmp_path / "none.gxi"):
        _align_fail(ref, [dataset.r1], outdir, str(ref))


def test_output_directory_missing(dataset: Dataset, index_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "no" / "such" / "x.bam"
    proc = run_cli("align", index_path, dataset.r1, "-o", out)
    assert_clean_failure(proc, "align", str(out), "does not exist")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("rg", [r"@RG\tSM:y", r"@RG\tID:\tSM:y", "ID:x", r"@RG\tIDx"])
def test_malformed_read_group(dataset: Dataset, index_path: Path, outdir: Path,
                              rg: str) -> None:
    line = _align_fail(index_path, [dataset.r1], outdir, extra=("-R", rg))
    assert "read group" in line


def test_output_is_a_directory(dataset: Dataset, index_path: Path, outdir: Path) -> None:
    proc = run_cli("align", index_path, dataset.r1, "-o", outdir)
    assert_clean_failure(proc, "align", str(outdir), "is a directory")
    assert list(outdir.iterdir()) == []
    assert sorted(p.name for p in outdir.parent.iterdir()) == ["out"]


def test_metrics_directory_missing(dataset: Dataset, index_path: Path, tmp_path: Path,
                                   outdir: Path) -> None:
    metrics = tmp_path / "nodir" / "m.json"
    _align_fail(index_path, [dataset.r1], outdir, str(metrics), "does not exist",
                extra=("--metrics", str(metrics)))


def test_reference_is_a_directory(dataset: Dataset, tmp_path: Path, outdir: Path) -> None:
    ref = tmp_path / "refdir"
    ref.mkdir()
    _align_fail(ref, [dataset.r1], outdir, str(ref), "is a directory")


@pytest.fixture(scope="module")
def big_fastq(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 150,000 single-end reads (plain text), enough for a second or more of work."""
    path = tmp_path_factory.mktemp("big") / "big.fq"
    path.write_bytes(gzip.decompress(dataset.r1.read_bytes()) * 50)
    return path


@pytest.mark.parametrize(("threads", "sig"), [
    ("1", signal.SIGINT),
    ("2", signal.SIGINT),
    ("2", signal.SIGTERM),  # a scheduler's cancel or time limit
], ids=["1-SIGINT", "2-SIGINT", "2-SIGTERM"])
def test_interrupt_cleans_up(big_fastq: Path, index_path: Path, outdir: Path,
                             threads: str, sig: signal.Signals) -> None:
    out = outdir / "x.bam"
    cmd = [sys.executable, "-m", "gmsaccel", "align", str(index_path), str(big_fastq),
           "-o", str(out), "-t", threads, "--batch-size", "500"]
    proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not any(outdir.iterdir()):  # the writer has started: alignment is under way
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        time.sleep(0.2)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = err.decode(errors="replace")
    assert proc.returncode == 128 + sig, text
    said = "interrupted" if sig == signal.SIGINT else "terminated (SIGTERM)"
    assert text.strip().splitlines() == [f"gmsaccel align: {said}"]
    assert list(outdir.iterdir()) == []


@pytest.mark.parametrize("args", [
    ["align", "--batch-size", "0"], ["align", "--batch-size", "-5"],
    ["align", "--sort-memory", "-1"], ["align", "--batch-size", "x"],
    ["index", "--max-occ", "-1"],
], ids=" ".join)
def test_bad_numeric_options(dataset: Dataset, index_path: Path, outdir: Path,
                             args: list[str]) -> None:
    command, *opts = args
    files = [index_path, dataset.r1, "-o", outdir / "x.bam"] if command == "align" else [
        dataset.ref, "-o", outdir / "x.gxi"]
    proc = run_cli(command, *files, *opts)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(
        f"gmsaccel {command}: error: argument {opts[0]}: "), err
    assert list(outdir.iterdir()) == []


def test_api_batch_reads_zero(big_fastq: Path, index_path: Path, tmp_path: Path) -> None:
    from gmsaccel.align import align_fastq

    n = sum(1 for _ in pysam.FastxFile(str(big_fastq)))
    assert n > 10_000
    try:
        stats = align_fastq(index_path, big_fastq, None, tmp_path / "z.bam", batch_reads=0)
    except ValueError:
        return
    assert stats["reads"] == n


def test_mate_suffixes_are_stripped(dataset: Dataset, index_path: Path, tmp_path: Path) -> None:
    recs1 = fastq_records(dataset.r1)[:50]
    recs2 = fastq_records(dataset.r2)[:50]
    r1 = write_fq(tmp_path / "s_1.fq", [(f"{n}/1", s, q) for n, s, q in recs1])
    r2 = write_fq(tmp_path / "s_2.fq", [(f"{n}/2", s, q) for n, s, q in recs2])
    out = tmp_path / "s.bam"
    ok(run_cli("align", index_path, r1, r2, "-o", out, "--unsorted", "-q"))
    with pysam.AlignmentFile(str(out)) as f:
        names = [r.query_name for r in f if not (r.is_secondary or r.is_supplementary)]
    assert names == [n for n, _, _ in recs1 for _ in (1, 2)]


def test_failure_keeps_existing_output(dataset: Dataset, index_path: Path, tmp_path: Path,
                                       outdir: Path) -> None:
    out = outdir / "x.bam"
    out.write_bytes(b"previous")
    Path(f"{out}.bai").write_bytes(b"previous")
    r1 = tmp_path / "cut.fq.gz"
    r1.write_bytes(dataset.r1.read_bytes()[:-1000])
    proc = run_cli("align", index_path, r1, "-o", out)
    assert proc.returncode == 1
    assert out.read_bytes() == b"previous"
    assert Path(f"{out}.bai").read_bytes() == b"previous"
    assert sorted(p.name for p in outdir.iterdir()) == ["x.bam", "x.bam.bai"]


# ---------------------------------------------------------------------------------------------
# align: edge inputs that must succeed


def test_empty_fastq(index_path: Path, tmp_path: Path) -> None:
    for paired in (False, True):
        r1 = tmp_path / "empty_1.fq"
        r1.write_text("")
        r2 = tmp_path / "empty_2.fq.gz"
        r2.write_bytes(gzip.compress(b""))
        out = tmp_path / f"empty{int(paired)}.bam"
        ok(run_cli("align", index_path, r1, *([r2] if paired else []), "-o", out, "-R", RG))
        assert pysam.samtools.quickcheck(str(out)) == ""
        assert Path(f"{out}.bai").exists()
        hdr = header_of(out)
        assert hdr["HD"]["SO"] == "coordinate" and len(hdr["SQ"]) == 2
        assert hdr["RG"][0]["ID"] == "grp1"
        assert sam_records(out) == []


def test_short_and_all_n_reads_are_unmapped(dataset: Dataset, index_path: Path,
                                            tmp_path: Path) -> None:
    chr_a = dataset.contigs[0][1]
    recs = [
        ("short20", chr_a[5000:5020], "I" * 20),
        ("short1", "A", "I"),
        ("empty", "", ""),
        ("allN", "N" * 150, "#" * 150),
        ("good", chr_a[8000:8150], "I" * 150),
    ]
    r1 = write_fq(tmp_path / "edge.fq", recs)
    out = tmp_path / "edge.bam"
    ok(run_cli("align", index_path, r1, "-o", out, "--unsorted", "-q"))
    with pysam.AlignmentFile(str(out)) as f:
        got = {r.query_name: r for r in f}
    assert set(got) == {n for n, _, _ in recs}
    for name in ("short20", "short1", "empty", "allN"):
        assert got[name].flag == 4, name
        assert got[name].reference_id == -1
    assert got["allN"].query_sequence == "N" * 150
    assert got["good"].flag == 0 and got["good"].reference_start == 8000


def test_duplicate_names_single_end(dataset: Dataset, index_path: Path,
                                    tmp_path: Path) -> None:
    chr_a = dataset.contigs[0][1]
    recs = [("dup", chr_a[1000:1150], "I" * 150), ("dup", chr_a[20000:20150], "I" * 150)]
    r1 = write_fq(tmp_path / "dup.fq", recs)
    out = tmp_path / "dup.bam"
    ok(run_cli("align", index_path, r1, "-o", out, "-q"))
    with pysam.AlignmentFile(str(out)) as f:
        got = [(r.query_name, r.reference_start) for r in f]
    assert got == [("dup", 1000), ("dup", 20000)]


def test_main_puts_back_the_sigterm_handler(capsys: pytest.CaptureFixture[str]) -> None:
    from gmsaccel import cli

    before = signal.getsignal(signal.SIGTERM)
    assert cli.main(["doctor", "--json"]) == 0
    assert signal.getsignal(signal.SIGTERM) is before
    capsys.readouterr()


def test_progress_lines_in_a_log(dataset: Dataset, index_path: Path, outdir: Path,
                                 big_fastq: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """stderr to a file (a batch job's log): a progress line every GMSACCEL_PROGRESS_SECONDS,
    counts rising; none with -q; a bad setting fails before any work."""
    monkeypatch.setenv("GMSACCEL_PROGRESS_SECONDS", "0.000001")
    bam = outdir / "p.bam"
    # (the first batch holds the insert-size model's reads, 10,000: big_fastq has more)
    proc = run_cli("align", index_path, big_fastq, "-o", bam, "--batch-size", "20000")
    assert proc.returncode == 0, proc.stderr.decode()
    lines = [m for line in proc.stderr.decode().splitlines() if (m := re.fullmatch(
        r"\[gmsaccel\] align: ([\d,]+) reads, [\d,]+ reads/s; \d+:\d\d:\d\d elapsed", line))]
    counts = [int(m[1].replace(",", "")) for m in lines]
    assert len(counts) >= 3 and counts == sorted(counts) and counts[-1] == 50 * dataset.n_pairs
    proc = run_cli("call", "-f", dataset.ref, bam, "-o", outdir / "p.vcf.gz")
    assert proc.returncode == 0, proc.stderr.decode()
    assert re.search(r"^\[gmsaccel\] call: [\d,.]+ of [\d,.]+ Mbp called \(\d+%\), [\d,.]+ "
                     r"Mbp/s; \d+:\d\d:\d\d elapsed$", proc.stderr.decode(), re.M)
    proc = run_cli("align", index_path, dataset.r1, "-o", outdir / "q.bam", "-q")
    assert proc.returncode == 0 and proc.stderr == b""
    monkeypatch.setenv("GMSACCEL_PROGRESS_SECONDS", "-1")
    proc = run_cli("align", index_path, dataset.r1, "-o", outdir / "r.bam")
    assert proc.returncode == 1
    assert proc.stderr.decode().strip() == ("gmsaccel align: error: GMSACCEL_PROGRESS_SECONDS="
                                            "'-1': not a number of seconds (0: no progress "
                                            "lines in logs)")
    assert not (outdir / "r.bam").exists()


def test_run_sorts_in_tmp_dir(dataset: Dataset, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """run --tmp-dir (a node's local scratch) --sort-memory: spills go there, and go away; the
    BAM is the one a run sorting in memory writes. A missing --tmp-dir fails before any work."""
    from gmsaccel import cli
    from gmsaccel.align import Aligner

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    common = ["run", "-f", dataset.ref, dataset.r1, dataset.r2, "--sample", "S", "--no-report",
              "-q"]
    align_fastq, seen = Aligner.align_fastq, []

    def spying(self: Aligner, *args: object, **kw: object) -> dict:
        seen.append((kw["tmp_dir"], kw["memory_bytes"], sorted(os.listdir(scratch))))
        return align_fastq(self, *args, **kw)

    progress = cli.Progress.__call__

    def looking(self: cli.Progress, reads: int) -> None:  # after each batch: what is there
        seen.append(sorted(os.listdir(scratch)))
        progress(self, reads)

    monkeypatch.setattr(Aligner, "align_fastq", spying)
    monkeypatch.setattr(cli.Progress, "__call__", looking)
    assert cli.main([*map(str, common), "-o", str(tmp_path / "a"), "--tmp-dir", str(scratch),
                     "--sort-memory", "1"]) == 0
    assert seen[0] == (str(scratch), 1 << 20, [])
    assert any(any(".run" in name for name in names) for names in seen[1:])  # spills, there
    assert list(scratch.iterdir()) == []
    assert run_cli(*common, "-o", tmp_path / "b").returncode == 0

    def records(path: Path) -> list[str]:
        with pysam.AlignmentFile(str(path)) as f:
            return [r.to_string() for r in f]

    assert records(tmp_path / "a" / "S.bam") == records(tmp_path / "b" / "S.bam")
    proc = run_cli(*common, "-o", tmp_path / "c", "--tmp-dir", tmp_path / "missing")
    assert proc.returncode == 1
    assert proc.stderr.decode().strip() == \
        f"gmsaccel run: error: --tmp-dir {tmp_path / 'missing'}: not a directory"
    assert not (tmp_path / "c").exists()


def test_lanes_as_comma_separated_lists(dataset: Dataset, index_path: Path,
                                        tmp_path: Path) -> None:
    """align and run take a sample's lanes as comma-separated lists (bowtie2's and HISAT2's
    way): single reads give the records of one file of them all; a file whose own name holds a
    comma is taken whole; run --resume sees a changed list."""
    with gzip.open(dataset.r1, "rt") as f:
        lines = f.read().splitlines(keepends=True)
    lanes = []
    for i, (a, b) in enumerate([(0, 1000), (1000, 2200), (2200, dataset.n_pairs)]):
        lanes.append(tmp_path / f"L{i + 1}_R1.fq")
        lanes[-1].write_text("".join(lines[4 * a:4 * b]))
    whole = tmp_path / "whole.bam"
    assert run_cli("align", index_path, dataset.r1, "-o", whole, "-q").returncode == 0
    out = tmp_path / "lanes.bam"
    proc = run_cli("align", index_path, ",".join(map(str, lanes)), "-o", out, "-q")
    assert proc.returncode == 0, proc.stderr.decode()

    def records(path: Path) -> list[str]:
        with pysam.AlignmentFile(str(path)) as f:
            return [r.to_string() for r in f]

    assert len(records(out)) >= dataset.n_pairs and records(out) == records(whole)
    comma = tmp_path / "all,reads.fq"
    comma.write_text("".join(lines))
    assert run_cli("align", index_path, comma, "-o", out, "-q").returncode == 0
    assert records(out) == records(whole)
    # Pairs through run: each lane's R1 and R2, in the same order.
    r2 = tmp_path / "r2.fq"
    with gzip.open(dataset.r2, "rt") as f:
        r2.write_text(f.read())
    outdir = tmp_path / "run"
    common = ["run", "-f", dataset.ref, "--sample", "S", "-o", outdir, "--no-report"]
    firsts = ",".join(map(str, lanes[:2]))
    proc = run_cli(*common, firsts, f"{r2},{r2}")
    assert proc.returncode == 1
    assert "has more" in proc.stderr.decode() or "does not match" in proc.stderr.decode()
    proc = run_cli(*common, firsts, str(r2))
    assert proc.returncode == 1
    assert proc.stderr.decode().strip() == ("gmsaccel run: error: 2 files of first mates but 1 of"
                                            " second mates: each lane needs both")
    proc = run_cli(*common, ",".join(map(str, lanes)), "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads((outdir / "S.metrics.json").read_text())["reads"] == dataset.n_pairs
    with pysam.AlignmentFile(str(outdir / "S.bam")) as f:  # a read group per lane
        assert [(g["ID"], g["SM"]) for g in f.header.to_dict()["RG"]] == \
            [("S.1", "S"), ("S.2", "S"), ("S.3", "S")]
        assert {r.get_tag("RG") for r in f} == {"S.1", "S.2", "S.3"}
    proc = run_cli("align", index_path, ",".join(map(str, lanes)), "-o", out, "-q",
                   "-R", "@RG\\tID:a\\tSM:s", "-R", "@RG\\tID:b\\tSM:s")
    assert proc.returncode == 1
    assert "2 read groups for 3 files of reads" in proc.stderr.decode()
    proc = run_cli(*common, firsts, "--resume")
    assert proc.returncode == 0, proc.stderr.decode()
    assert "aligning again: reads1 are not the files they were" in proc.stderr.decode()


def test_an_ignored_sigterm_stays_ignored(big_fastq: Path, index_path: Path,
                                          outdir: Path) -> None:
    """A parent that ignores SIGTERM for its child (trap '' TERM) is obeyed: the handler is
    only installed over the default."""
    out = outdir / "x.bam"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gmsaccel", "align", str(index_path), str(big_fastq), "-o",
         str(out), "-q"], env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN))
    try:
        deadline = time.monotonic() + 60
        while not any(outdir.iterdir()):  # the writer has started
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    assert out.exists()
