"""Alignment in shards on an executor: the merged BAM equals the one a single process writes,
record for record (duplicate flags included), on thread pools, process pools and Dask; bad
input fails as the local run fails, with nothing left behind."""

from __future__ import annotations

import gzip
import json
import os
import random
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pysam
import pytest
from conftest import run_cli

from gmsaccel import _core
from gmsaccel.align import Aligner
from gmsaccel.simulate import write_fastq

MODEL_PAIRS = 500  # leading pairs: a small first shard, so that the test data makes many shards


def records(path: Path) -> list[str]:
    with pysam.AlignmentFile(str(path)) as f:
        return [r.to_string() for r in f]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".parts-" in p.name or ".tmp" in p.name)


def read_fastq(path: Path) -> list[tuple[str, str, str]]:
    with gzip.open(path, "rt") as f:
        lines = f.read().splitlines()
    return [(lines[i][1:], lines[i + 1], lines[i + 3]) for i in range(0, len(lines), 4)]


@pytest.fixture(scope="module")
def copied_library(dataset, tmp_path_factory):
    """The dataset's pairs with every tenth of the first 1200 copied again at the end of the
    files, under new names: a duplicate and its original are in different shards."""
    d = tmp_path_factory.mktemp("copies")
    r1, r2 = read_fastq(dataset.r1), read_fastq(dataset.r2)
    extra1 = [(f"copy{i}/1", s, q[::-1]) for i, (_, s, q) in enumerate(r1[:1200:10])]
    extra2 = [(f"copy{i}/2", s, q) for i, (_, s, q) in enumerate(r2[:1200:10])]
    return write_fastq(d / "c_1.fq.gz", r1 + extra1), write_fastq(d / "c_2.fq.gz", r2 + extra2)


@pytest.fixture(scope="module")
def aligner(index_path):
    return Aligner(index_path, threads=2, insert_model_pairs=MODEL_PAIRS)


@pytest.mark.parametrize("mark", [False, True], ids=["plain", "marked"])
def test_sharded_bam_equals_the_local_one(aligner, copied_library, tmp_path, mark) -> None:
    r1, r2 = copied_library
    local, sharded = tmp_path / "local.bam", tmp_path / "sharded.bam"
    want = aligner.align_fastq(r1, r2, local, mark_duplicates=mark, read_group="@RG\tID:s1\tSM:x")
    with ThreadPoolExecutor(3) as ex:
        got = aligner.align_fastq(r1, r2, sharded, mark_duplicates=mark, executor=ex,
                                  shard_pairs=400, read_group="@RG\tID:s1\tSM:x")
    assert got["shards"] == 1 + -(-(len(read_fastq(r1)) - MODEL_PAIRS) // 400)
    assert records(sharded) == records(local)
    assert got["insert_model"] == want["insert_model"]
    for key in ("reads", "mapped", "properly_paired", "supplementary", "rescued",
                "mapped_by_contig"):
        assert got[key] == want[key], key
    if mark:
        assert got["duplicates"] == want["duplicates"]
        assert got["duplicates"]["pair_duplicates"] >= 100  # the copies, found across shards
    # The driver's own wall time by phase: each spent, and together within the whole run's.
    phases = got["driver_seconds"]
    assert set(phases) == {"cut", "leading_shard", "merge"}
    assert all(v > 0 for v in phases.values()) and sum(phases.values()) <= got["seconds"]
    pysam.index(str(sharded), str(tmp_path / "check.bai"))  # samtools reads it back whole
    assert (tmp_path / "sharded.bam.bai").exists()
    assert leftovers(tmp_path) == []


def test_processes_single_end_and_many_parts(aligner, dataset, tmp_path) -> None:
    """Single-end reads in more shards than the writer merges at once (so parts are folded),
    aligned in other processes."""
    local, sharded = tmp_path / "local.bam", tmp_path / "sharded.bam"
    aligner.align_fastq(dataset.r1, None, local)
    with ProcessPoolExecutor(2) as ex:
        got = aligner.align_fastq(dataset.r1, None, sharded, executor=ex, shard_pairs=20)
    assert got["shards"] == dataset.n_pairs // 20 and got["shards"] > 128
    assert records(sharded) == records(local)


def test_fasta_reads_in_shards(aligner, dataset, tmp_path) -> None:
    """Reads without qualities (wrapped FASTA) travel to the shards as FASTA: the same records."""
    paths = []
    for src in (dataset.r1, dataset.r2):
        dest = tmp_path / (src.name + ".fa.gz")
        with gzip.open(dest, "wt") as out:
            out.writelines(f">{n}\n{s[:70]}\n{s[70:]}\n" for n, s, _ in read_fastq(src))
        paths.append(dest)
    local, sharded = tmp_path / "local.bam", tmp_path / "sharded.bam"
    aligner.align_fastq(*paths, local, mark_duplicates=True)
    with ThreadPoolExecutor(2) as ex:
        aligner.align_fastq(*paths, sharded, mark_duplicates=True, executor=ex, shard_pairs=400)
    want = records(local)
    assert len(want) >= 2 * dataset.n_pairs and all(r.split("\t")[10] == "*" for r in want)
    assert records(sharded) == want


@pytest.mark.parametrize("empty_at", [0, 5])
def test_fasta_with_empty_reads_in_shards(aligner, tmp_path, empty_at: int) -> None:
    """An empty FASTA read travels to its shard as FASTA too (it has no quality byte to say)."""
    rng = random.Random(9)
    recs = [f">r{i}\n{''.join(rng.choice('ACGT') for _ in range(100))}\n" for i in range(30)]
    recs[empty_at] = f">r{empty_at}\n"
    fa = tmp_path / "e.fa"
    fa.write_text("".join(recs))
    local, sharded = tmp_path / "local.bam", tmp_path / "sharded.bam"
    aligner.align_fastq(fa, None, local)
    with ThreadPoolExecutor(2) as ex:
        aligner.align_fastq(fa, None, sharded, executor=ex, shard_pairs=4)
    want = records(local)
    assert len(want) == 30 and records(sharded) == want


def test_copied_comments_in_shards(aligner, dataset, tmp_path) -> None:
    """Comments copied as tags in shards as locally; a bad one in a later shard is reported by
    its own file and record number, not the shard's scratch copy."""
    bad = MODEL_PAIRS + 2 * 400 + 17  # in the third shard after the leading one
    paths = []
    for src in (dataset.r1, dataset.r2):
        recs = [(f"{n}\tRX:Z:{s[:8]}", s, q) for n, s, q in read_fastq(src)]
        paths.append(write_fastq(tmp_path / ("ok_" + src.name), recs))
        name, s, q = recs[bad - 1]
        recs[bad - 1] = (name.replace("RX:Z:", "RX:i:"), s, q)
        paths.append(write_fastq(tmp_path / ("bad_" + src.name), recs))
    ok1, bad1, ok2, bad2 = paths
    local, sharded = tmp_path / "local.bam", tmp_path / "sharded.bam"
    aligner.align_fastq(ok1, ok2, local, copy_comment=True)
    with ThreadPoolExecutor(2) as ex:
        aligner.align_fastq(ok1, ok2, sharded, copy_comment=True, executor=ex, shard_pairs=400)
        want = records(local)
        assert all("\tRX:Z:" in r for r in want)
        assert records(sharded) == want
        with pytest.raises(_core.InputError, match=rf"^{bad1}: record {bad} \(.*RX:i:"):
            aligner.align_fastq(bad1, bad2, tmp_path / "bad.bam", copy_comment=True,
                                executor=ex, shard_pairs=400)
    assert leftovers(tmp_path) == [] and not (tmp_path / "bad.bam").exists()


def test_sharded_cram(aligner, dataset, tmp_path) -> None:
    """Shards' parts are BAM; the merge writes CRAM against the FASTA: the local run's records."""
    local, sharded = tmp_path / "local.cram", tmp_path / "sharded.cram"
    aligner.align_fastq(dataset.r1, dataset.r2, local, fasta=dataset.ref)
    with ThreadPoolExecutor(2) as ex:
        aligner.align_fastq(dataset.r1, dataset.r2, sharded, executor=ex, shard_pairs=700,
                            fasta=dataset.ref)
    assert (tmp_path / "sharded.cram.crai").exists()

    def body(path: Path) -> list[str]:
        with pysam.AlignmentFile(str(path), reference_filename=str(dataset.ref)) as f:
            assert f.is_cram
            return [r.to_string() for r in f]
    want = body(local)
    assert len(want) >= 2 * dataset.n_pairs and body(sharded) == want
    assert leftovers(tmp_path) == []


def test_interleaved_pairs_in_shards(aligner, dataset, tmp_path) -> None:
    """An interleaved file is cut into pairs for the shards: the two-file run's records; a bad
    comment is reported by the interleaved file's own record number."""
    r1, r2 = read_fastq(dataset.r1), read_fastq(dataset.r2)
    recs = [(f"{n}\tRX:Z:{s[:6]}", s, q) for pair in zip(r1, r2, strict=True)
            for n, s, q in pair]
    both = write_fastq(tmp_path / "both.fq.gz", recs)
    local, sharded = tmp_path / "local.bam", tmp_path / "sharded.bam"
    aligner.align_fastq(dataset.r1, dataset.r2, local)
    with ThreadPoolExecutor(2) as ex:
        aligner.align_fastq(both, None, sharded, interleaved=True, executor=ex,
                            shard_pairs=400)
        assert records(sharded) == records(local)
        bad_at = 2 * (MODEL_PAIRS + 400 + 7)  # a second mate, in the second shard after
        name, s, q = recs[bad_at - 1]
        recs[bad_at - 1] = (name.replace("RX:Z:", "RX:i:"), s, q)
        bad = write_fastq(tmp_path / "bad.fq.gz", recs)
        with pytest.raises(_core.InputError, match=rf"^{bad}: record {bad_at} \("):
            aligner.align_fastq(bad, None, tmp_path / "bad.bam", interleaved=True,
                                executor=ex, shard_pairs=400, copy_comment=True)
    assert leftovers(tmp_path) == []


def test_dask_cluster(aligner, copied_library, tmp_path) -> None:
    distributed = pytest.importorskip("distributed")
    r1, r2 = copied_library
    local, sharded = tmp_path / "local.bam", tmp_path / "sharded.bam"
    aligner.align_fastq(r1, r2, local, mark_duplicates=True)
    with distributed.Client(n_workers=2, threads_per_worker=1, processes=True,
                            dashboard_address=None) as client:
        aligner.align_fastq(r1, r2, sharded, mark_duplicates=True, executor=client,
                            shard_pairs=1000)
    assert records(sharded) == records(local)


def test_bad_input_fails_as_locally(aligner, dataset, tmp_path) -> None:
    r1 = read_fastq(dataset.r1)
    r2 = read_fastq(dataset.r2)
    # record 1700 of R2 renamed: found while cutting shards, after some shards have run
    r2[1699] = ("stranger/2", *r2[1699][1:])
    bad2 = write_fastq(tmp_path / "bad_2.fq.gz", r2)
    out = tmp_path / "out.bam"
    with ThreadPoolExecutor(2) as ex, pytest.raises(
            _core.InputError, match=r"bad_2\.fq\.gz: record 1700 \(stranger\) does not match"):
        aligner.align_fastq(dataset.r1, bad2, out, executor=ex, shard_pairs=300)
    short = write_fastq(tmp_path / "short_1.fq.gz", r1[:-1])
    with ThreadPoolExecutor(2) as ex, pytest.raises(_core.InputError, match="short_1.fq.gz: ends"):
        aligner.align_fastq(short, dataset.r2, out, executor=ex, shard_pairs=300)
    assert not out.exists() and leftovers(tmp_path) == []


def test_a_failed_shard_leaves_nothing(aligner, dataset, tmp_path) -> None:
    out = tmp_path / "out.bam"

    class Failing(ThreadPoolExecutor):
        calls = 0

        def submit(self, fn, /, *args):
            Failing.calls += 1
            if Failing.calls == 3:
                raise OSError("worker lost")
            return super().submit(fn, *args)

    with Failing(2) as ex, pytest.raises(OSError, match="worker lost"):
        aligner.align_fastq(dataset.r1, dataset.r2, out, executor=ex, shard_pairs=500)
    assert not out.exists() and leftovers(tmp_path) == []


def test_needs_sorted_output_and_an_index_on_disk(dataset, index_path, tmp_path) -> None:
    with ThreadPoolExecutor(1) as ex:
        with pytest.raises(ValueError, match="sorted"):
            Aligner(index_path).align_fastq(dataset.r1, dataset.r2, tmp_path / "u.bam",
                                            sort=False, executor=ex)
        # an index built in memory from a FASTA is rebuilt by the workers from that FASTA
        got = Aligner(dataset.ref, insert_model_pairs=MODEL_PAIRS).align_fastq(
            dataset.r1, dataset.r2, tmp_path / "f.bam", executor=ex, shard_pairs=1000)
    assert got["shards"] == 4
    assert records(tmp_path / "f.bam") == records_local(dataset, index_path, tmp_path)


def records_local(dataset, index_path, tmp_path) -> list[str]:
    out = tmp_path / "l.bam"
    Aligner(index_path, insert_model_pairs=MODEL_PAIRS).align_fastq(dataset.r1, dataset.r2, out)
    return records(out)


def test_cli_align_on_dask(dataset, index_path, tmp_path) -> None:
    distributed = pytest.importorskip("distributed")
    local, sharded = tmp_path / "local.bam", tmp_path / "sharded.bam"
    run_cli("align", index_path, dataset.r1, dataset.r2, "-o", local, "--mark-duplicates")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  dashboard_address=None) as cluster:
        res = run_cli("align", index_path, dataset.r1, dataset.r2, "-o", sharded,
                      "--mark-duplicates", "--dask-scheduler", cluster.scheduler_address,
                      "--shard-pairs", "1000")
    assert res.returncode == 0, res.stderr
    assert records(sharded) == records(local)
    assert os.path.exists(str(sharded) + ".bai")


def split_lanes(r1: Path, r2: Path | None, folder: Path, cuts: list[int]
                ) -> tuple[list[Path], list[Path]]:
    """The pairs of r1 (and r2) cut into lanes at the given pair numbers, one file per lane and
    mate."""
    folder.mkdir(exist_ok=True)
    files: tuple[list[Path], list[Path]] = ([], [])
    for mate, path in enumerate((r1, r2)):
        if path is None:
            continue
        reads = read_fastq(path)
        bounds = [0, *cuts, len(reads)]
        for lane, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
            files[mate].append(write_fastq(folder / f"L{lane + 1}_R{mate + 1}.fq.gz", reads[a:b]))
    return files


@pytest.mark.parametrize(("paired", "cuts"), [
    (True, [MODEL_PAIRS + 300, 2000]),
    (True, [3, 200, 2000]),  # the insert-size model's leading pairs span three lanes
    (False, [MODEL_PAIRS + 300, 2000]),
], ids=["pairs", "short-first-lanes", "single"])
def test_lanes_align_as_one_file_of_them_all(aligner, copied_library, tmp_path, paired,
                                             cuts) -> None:
    """A sample's lanes, read in turn, give the records of their concatenation (duplicates
    across lanes marked as in one file), locally at any batch size and in shards."""
    r1, r2 = copied_library
    r2 = r2 if paired else None
    lanes1, lanes2 = split_lanes(r1, r2, tmp_path / "lanes", cuts)
    whole = tmp_path / "whole.bam"
    want = aligner.align_fastq(r1, r2, whole, mark_duplicates=True)
    for batch in (10000, 333):
        out = tmp_path / f"lanes-{batch}.bam"
        got = aligner.align_fastq(lanes1, lanes2 or None, out, mark_duplicates=True,
                                  batch_reads=batch)
        assert records(out) == records(whole)
        for key in ("reads", "mapped", "properly_paired", "insert_model", "duplicates"):
            assert got[key] == want[key], key
    with ThreadPoolExecutor(3) as ex:
        sharded = tmp_path / "sharded.bam"
        got = aligner.align_fastq(lanes1, lanes2 or None, sharded, mark_duplicates=True,
                                  executor=ex, shard_pairs=400)
    assert records(sharded) == records(whole)
    for key in ("properly_paired", "insert_model", "duplicates"):
        assert got[key] == want[key], key
    if paired:
        assert want["insert_model"]["valid"] and want["properly_paired"] > 0.9 * want["reads"]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("sharded", [False, True], ids=["local", "sharded"])
def test_lane_errors_name_the_lanes_file_and_record(aligner, dataset, tmp_path,
                                                    sharded) -> None:
    lanes1, lanes2 = split_lanes(dataset.r1, dataset.r2, tmp_path / "lanes", [1000, 2000])
    kw = {"executor": ThreadPoolExecutor(2), "shard_pairs": 300} if sharded else {}
    # A broken record in the second lane: its own file, its own record number.
    reads = read_fastq(lanes1[1])
    text = "".join(f"@{n}\n{s}\n+\n{q}\n" for n, s, q in reads).replace(
        f"@{reads[6][0]}\n", f"{reads[6][0]}\n", 1)
    bad = tmp_path / "bad_R1.fq.gz"
    bad.write_bytes(gzip.compress(text.encode()))
    out = tmp_path / "x.bam"
    with pytest.raises(_core.InputError, match=rf"{bad}: record 7\b"):
        aligner.align_fastq([lanes1[0], bad, lanes1[2]], lanes2, out, **kw)
    # A lane whose R2 file holds one read fewer: that lane's two files.
    short = write_fastq(tmp_path / "short_R2.fq.gz", read_fastq(lanes2[0])[:-1])
    with pytest.raises(_core.InputError, match=rf"{lanes1[0]}.*{short}|{short}.*{lanes1[0]}"):
        aligner.align_fastq(lanes1, [short, *lanes2[1:]], out, **kw)
    # One more: where the R1 file ends at a batch's end, the next batch is the next lane's.
    extra = read_fastq(lanes2[0])
    longer = write_fastq(tmp_path / "long_R2.fq.gz", [*extra, ("extra/2", *extra[0][1:])])
    with pytest.raises(_core.InputError,
                       match=rf"{longer}.*{lanes1[0]}|{lanes1[0]}.*{longer}"):
        aligner.align_fastq(lanes1, [longer, *lanes2[1:]], out, batch_reads=500, **kw)
    # A missing lane, or a folder, fails before any is aligned.
    with pytest.raises(_core.InputError, match=rf"{tmp_path / 'L9.fq'}: cannot open \(No such"):
        aligner.align_fastq([*lanes1, tmp_path / "L9.fq"], [*lanes2, tmp_path / "L9.fq"], out,
                            progress=lambda n: pytest.fail("aligned before the check"), **kw)
    with pytest.raises(_core.InputError, match=rf"{tmp_path}: cannot open \(Is a directory"):
        aligner.align_fastq([*lanes1, tmp_path], [*lanes2, tmp_path], out,
                            progress=lambda n: pytest.fail("aligned before the check"), **kw)
    with pytest.raises(ValueError, match="3 files of first mates but 2 of second mates"):
        aligner.align_fastq(lanes1, lanes2[:2], out, **kw)
    if sharded:
        kw["executor"].shutdown()
    assert not out.exists() and leftovers(tmp_path) == []


def test_lanes_read_groups(aligner, copied_library, tmp_path) -> None:
    """One read group per lane: each record carries its lane's, the header lists them all, and
    but for RG the records are those of a single read group; locally and in shards."""
    r1, r2 = copied_library
    lanes1, lanes2 = split_lanes(r1, r2, tmp_path / "lanes", [MODEL_PAIRS + 300, 2000])
    groups = [f"@RG\\tID:fc1.{i}\\tSM:s\\tLB:lib1\\tPU:fc1.{i}" for i in (1, 2, 3)]
    one = tmp_path / "one.bam"
    aligner.align_fastq(lanes1, lanes2, one, mark_duplicates=True,
                        read_group="@RG\tID:all\tSM:s")
    out = tmp_path / "lanes.bam"
    aligner.align_fastq(lanes1, lanes2, out, mark_duplicates=True, read_group=groups)
    with ThreadPoolExecutor(3) as ex:
        sharded = tmp_path / "sharded.bam"
        aligner.align_fastq(lanes1, lanes2, sharded, mark_duplicates=True, read_group=groups,
                            executor=ex, shard_pairs=400)
    assert records(sharded) == records(out)
    with pysam.AlignmentFile(str(out)) as f:
        assert [g["ID"] for g in f.header.to_dict()["RG"]] == ["fc1.1", "fc1.2", "fc1.3"]
    lane_of = {}
    for lane, path in enumerate(lanes1):
        for name, _, _ in read_fastq(path):
            lane_of[name.split("/")[0]] = f"fc1.{lane + 1}"
    with pysam.AlignmentFile(str(out)) as f, pysam.AlignmentFile(str(one)) as g:
        n = 0
        for a, b in zip(f, g, strict=True):
            assert a.get_tag("RG") == lane_of[a.query_name]
            a.set_tag("RG", "all")
            assert a.to_string() == b.to_string()
            n += 1
    assert n >= 2 * len(lane_of)


@pytest.mark.parametrize(("groups", "says"), [
    (["@RG\tID:a\tSM:s", "@RG\tID:b\tSM:s"], "2 read groups for 3 files"),
    (["@RG\tID:a\tSM:s"] * 3, "read groups share an ID"),
    ([f"@RG\tID:{i}\tSM:s\tLB:lib{i}" for i in range(3)], "within one library"),
])
def test_lanes_read_group_errors(aligner, dataset, tmp_path, groups, says) -> None:
    lanes1, lanes2 = split_lanes(dataset.r1, dataset.r2, tmp_path / "lanes", [1000, 2000])
    with pytest.raises(ValueError, match=says):
        aligner.align_fastq(lanes1, lanes2, tmp_path / "x.bam", read_group=groups,
                            mark_duplicates=True)
    assert not (tmp_path / "x.bam").exists()


def test_the_merge_spills_in_tmp_dir(aligner, dataset, tmp_path, monkeypatch) -> None:
    """The driver's merge writer (which spills when it folds many parts) takes tmp_dir, as the
    shards' parts do: nothing of it lands beside the output."""
    made = []
    writer = _core.BamWriter

    def recording(*args, **kw):
        made.append(kw.get("tmp_dir"))
        return writer(*args, **kw)

    monkeypatch.setattr(_core, "BamWriter", recording)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with ThreadPoolExecutor(2) as ex:
        aligner.align_fastq(dataset.r1, dataset.r2, tmp_path / "o.bam", executor=ex,
                            shard_pairs=1000, tmp_dir=scratch)
    assert made == [str(scratch)]
    assert leftovers(scratch) == [] and leftovers(tmp_path) == []


@pytest.mark.parametrize("sharded", [False, True], ids=["local", "sharded"])
def test_interleaved_lanes_and_their_comment_errors(aligner, dataset, tmp_path,
                                                    sharded) -> None:
    """Interleaved lanes (-p with a list) align as the lanes' two files do; a bad comment in the
    second lane is named by that lane's file and its own record number."""
    lanes1, lanes2 = split_lanes(dataset.r1, dataset.r2, tmp_path / "lanes", [MODEL_PAIRS, 2000])
    both = []
    for lane, (a, b) in enumerate(zip(lanes1, lanes2, strict=True)):
        recs = [x for pair in zip(read_fastq(a), read_fastq(b), strict=True) for x in pair]
        both.append(write_fastq(tmp_path / f"L{lane + 1}.fq.gz", recs))
    kw = {"executor": ThreadPoolExecutor(2), "shard_pairs": 300} if sharded else {}
    two, one = tmp_path / "two.bam", tmp_path / "one.bam"
    aligner.align_fastq(lanes1, lanes2, two)
    aligner.align_fastq(both, None, one, interleaved=True, **kw)
    assert records(one) == records(two)
    recs = [(n + ("\tRX:i:AC" if i == 9 else "\tRX:Z:AC"), s, q)
            for i, (n, s, q) in enumerate(read_fastq(both[1]))]
    bad = write_fastq(tmp_path / "bad.fq.gz", recs)
    with pytest.raises(_core.InputError, match=rf"^{bad}: record 10 \(.*RX:i:"):
        aligner.align_fastq([both[0], bad, both[2]], None, tmp_path / "bad.bam",
                            interleaved=True, copy_comment=True, **kw)
    if sharded:
        kw["executor"].shutdown()
    assert not (tmp_path / "bad.bam").exists() and leftovers(tmp_path) == []


def test_lanes_through_pipes(aligner, copied_library, tmp_path) -> None:
    """Lanes that are pipes (process substitution, named pipes) can be read once only: they
    are, in turn, and give the records of the same lanes as files (the first holding the
    insert-size model's pairs)."""
    import threading

    r1, r2 = copied_library
    lanes1, lanes2 = split_lanes(r1, r2, tmp_path / "lanes", [MODEL_PAIRS + 300])
    want = tmp_path / "files.bam"
    aligner.align_fastq(lanes1, lanes2, want)
    fifos, feeders = [], []
    for path in [*lanes1, *lanes2]:
        fifo = tmp_path / f"{path.name}.pipe"
        os.mkfifo(fifo)
        fifos.append(fifo)

        def feed(src: Path = path, dest: Path = fifo) -> None:
            with open(dest, "wb") as f:  # (blocks until the aligner opens it)
                f.write(src.read_bytes())

        feeders.append(threading.Thread(target=feed, daemon=True))
        feeders[-1].start()
    got = tmp_path / "pipes.bam"
    aligner.align_fastq(fifos[:2], fifos[2:], got)
    for t in feeders:
        t.join(timeout=30)
    assert records(got) == records(want)


def test_fastq_and_fasta_lanes(aligner, dataset, tmp_path) -> None:
    """A short FASTQ lane then a FASTA one: no single file holds both, so the model is the
    first lane's; the run still aligns every read."""
    lanes1, lanes2 = split_lanes(dataset.r1, dataset.r2, tmp_path / "lanes", [3])
    fasta = []
    for path in (lanes1[1], lanes2[1]):
        fasta.append(tmp_path / f"{path.name}.fa")
        fasta[-1].write_text("".join(f">{n}\n{s}\n" for n, s, _ in read_fastq(path)))
    stats = aligner.align_fastq([lanes1[0], fasta[0]], [lanes2[0], fasta[1]],
                                tmp_path / "mixed.bam")
    assert stats["reads"] == 2 * dataset.n_pairs


@pytest.mark.parametrize("stop", [1, 3])
def test_a_sharded_run_cut_short_reuses_its_finished_parts(aligner, copied_library, tmp_path,
                                                          monkeypatch, stop: int) -> None:
    # With a checkpoint folder, each finished part is recorded as it comes (in input order);
    # a run cut short after `stop` of them reuses those and aligns the rest: the same BAM.
    import gmsaccel.align_shards as align_shards_module
    import gmsaccel.checkpoint as checkpoint_module
    from gmsaccel.checkpoint import MANIFEST, AlignCheckpoint

    monkeypatch.setattr(align_shards_module, "RECORD_SECONDS", 0.0)  # a record per part

    r1, r2 = copied_library
    local, out, folder = tmp_path / "local.bam", tmp_path / "o.bam", tmp_path / "ck"
    want = aligner.align_fastq(r1, r2, local, mark_duplicates=True)
    record = AlignCheckpoint.record_parts
    seen = [0]

    def interrupted(self, parts, totals, model, paired) -> None:
        record(self, parts, totals, model, paired)
        seen[0] += 1
        if seen[0] == stop:
            raise KeyboardInterrupt

    kw = dict(mark_duplicates=True, shard_pairs=400, checkpoint=folder)

    def cut_short() -> Path:
        """A run stopped after `stop` parts were recorded; its first recorded part."""
        seen[0] = 0
        with monkeypatch.context() as m, ThreadPoolExecutor(2) as ex:
            m.setattr(checkpoint_module.AlignCheckpoint, "record_parts", interrupted)
            with pytest.raises(KeyboardInterrupt):
                aligner.align_fastq(r1, r2, out, executor=ex, **kw)
        return folder / json.loads((folder / MANIFEST).read_text())["parts"][0]["name"]

    cut_short()
    assert not out.exists()
    assert len(json.loads((folder / MANIFEST).read_text())["parts"]) == stop
    said: list[str] = []
    with ThreadPoolExecutor(2) as ex:
        got = aligner.align_fastq(r1, r2, out, executor=ex, log=said.append, **kw)
    assert "going on from the checkpoint" in said[0]
    assert got["resumed_shards"] == stop
    assert records(out) == records(local)
    for key in ("reads", "mapped", "properly_paired", "mapped_by_contig", "duplicates",
                "insert_model"):
        assert got[key] == want[key], key
    assert not folder.exists()
    # A part that changed is not reused: the run starts over.
    part = cut_short()
    part.write_bytes(part.read_bytes() + b"x")
    said.clear()
    with ThreadPoolExecutor(2) as ex:
        got = aligner.align_fastq(r1, r2, out, executor=ex, log=said.append, **kw)
    assert "has changed" in said[0] and got["resumed_shards"] == 0
    assert records(out) == records(local)
    # A part damaged where its size and time stay the same: its checksum tells.
    part = cut_short()
    st = part.stat()
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 1
    part.write_bytes(bytes(data))
    os.utime(part, ns=(st.st_atime_ns, st.st_mtime_ns))
    said.clear()
    with ThreadPoolExecutor(2) as ex:
        got = aligner.align_fastq(r1, r2, out, executor=ex, log=said.append, **kw)
    assert "is damaged" in said[0] and got["resumed_shards"] == 0
    assert records(out) == records(local)
    # Workers of another build: their parts are not mixed with the recorded ones.
    cut_short()
    said.clear()
    with monkeypatch.context() as m, ThreadPoolExecutor(2) as ex:
        m.setattr(align_shards_module, "engine_id", lambda: "another-build")
        got = aligner.align_fastq(r1, r2, out, executor=ex, log=said.append, **kw)
    assert "worker_engine was" in said[0] and got["resumed_shards"] == 0
    assert records(out) == records(local)
