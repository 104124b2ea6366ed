"""Checkpoints within an alignment (gmsaccel.checkpoint; align --checkpoint, run --resume): a run
cut short after a checkpoint and run again writes the records one uninterrupted run writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pysam
import pytest
from conftest import Dataset, cli_env

import gmsaccel.checkpoint as checkpoint_module
from gmsaccel import _core, cli
from gmsaccel.align import Aligner
from gmsaccel.checkpoint import LOCK, MANIFEST, AlignCheckpoint, kept_checkpoint
from gmsaccel.simulate import plant_variants, simulate_pairs, write_fastq

# Small batches and sort buffers: many checkpoints, and spills folded across them.
OPTIONS = {"batch_reads": 20, "memory_bytes": 4096, "mark_duplicates": True}


def body(bam: Path) -> list[str]:
    with pysam.AlignmentFile(str(bam), check_sq=False) as f:
        return [r.to_string() for r in f.fetch(until_eof=True)]


@pytest.fixture(scope="module")
def aligner(dataset: Dataset) -> Aligner:
    # The model from the leading 200 pairs: the first batch (which holds them) ends early.
    return Aligner(dataset.ref, threads=2, insert_model_pairs=200)


@pytest.fixture(scope="module")
def longer(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """30,000 pairs: more than the leading 10,000 the CLI's model takes in its first batch."""
    d = tmp_path_factory.mktemp("longer")
    haps, _ = plant_variants(dataset.contigs, rate=0.001, seed=5)
    r1, r2 = simulate_pairs(haps, 30_000, read_length=150, seed=6)
    return write_fastq(d / "r_1.fq.gz", r1), write_fastq(d / "r_2.fq.gz", r2)


@pytest.fixture(scope="module")
def longer_bam(dataset: Dataset, longer: tuple[Path, Path],
               tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("longer_bam") / "s.bam"
    Aligner(dataset.ref, threads=2).align_fastq(*longer, out, mark_duplicates=True)
    return out


@pytest.fixture(scope="module")
def straight(aligner: Aligner, dataset: Dataset, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("straight") / "s.bam"
    stats = aligner.align_fastq(dataset.r1, dataset.r2, out, **OPTIONS)
    return out, stats


def stop_after(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """The n-th recorded checkpoint is followed by a KeyboardInterrupt (as a signal would
    raise): the run fails there, after recording it."""
    record = AlignCheckpoint.record
    seen = [0]

    def interrupted(self: AlignCheckpoint, cp: dict, paired: bool) -> None:
        record(self, cp, paired)
        seen[0] += 1
        if seen[0] == n:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module.AlignCheckpoint, "record", interrupted)


def compression_available() -> bool:
    return _core.spill_compression_available()


@pytest.mark.parametrize("stop,compression", [
    (1, "never"), (4, "never"),
    pytest.param(4, "always", marks=pytest.mark.skipif(not compression_available(),
                                                       reason="compressed spills need ISA-L"))])
def test_a_run_cut_short_goes_on_from_its_checkpoint(aligner: Aligner, dataset: Dataset,
                                                      straight: tuple[Path, dict],
                                                      tmp_path: Path, stop: int,
                                                      compression: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    folder, out = tmp_path / "ck", tmp_path / "o.bam"
    kw = dict(OPTIONS, checkpoint=folder, checkpoint_pairs=500, spill_compression=compression)
    with monkeypatch.context() as m:
        stop_after(m, stop)
        with pytest.raises(KeyboardInterrupt):
            aligner.align_fastq(dataset.r1, dataset.r2, out, **kw)
    assert not out.exists()
    state = json.loads((folder / MANIFEST).read_text())
    assert state["pairs"] == 500 * stop
    assert all((folder / s).is_file() and (folder / (s + ".idx")).is_file()
               for s in state["spills"])
    # A spill a batch: by the fourth checkpoint, folds of 32 (some listed by earlier
    # checkpoints, removed only once the next is recorded).
    assert len(state["spills"]) < 2000 // 20 if stop == 4 else len(state["spills"]) <= 32
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    said: list[str] = []
    stats = aligner.align_fastq(dataset.r1, dataset.r2, out, log=said.append, **kw)
    assert f"{500 * stop:,} pairs aligned before" in said[0]
    assert body(out) == body(straight[0])
    assert not folder.exists()
    want = straight[1]
    assert stats["resumed_pairs"] == 500 * stop
    for key in ("reads", "mapped", "properly_paired", "mapped_by_contig"):
        assert stats[key] == want[key], key
    assert stats["duplicates"] == want["duplicates"]
    assert stats["insert_model"] == want["insert_model"]


def test_lanes_and_single_reads_resume_alike(aligner: Aligner, dataset: Dataset, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Two lanes, cut inside the second's first half; and unpaired reads (checkpoints count reads).
    lane_a, lane_b = tmp_path / "a_1.fq", tmp_path / "b_1.fq"
    lines = [ln for ln in _fastq_lines(dataset.r1)]
    cut = 4 * 1300
    lane_a.write_text("".join(lines[:cut]))
    lane_b.write_text("".join(lines[cut:]))
    mates_a, mates_b = tmp_path / "a_2.fq", tmp_path / "b_2.fq"
    mate_lines = _fastq_lines(dataset.r2)
    mates_a.write_text("".join(mate_lines[:cut]))
    mates_b.write_text("".join(mate_lines[cut:]))
    for r1, r2 in (([lane_a, lane_b], [mates_a, mates_b]), ([lane_a, lane_b], None)):
        straight = tmp_path / "straight.bam"
        aligner.align_fastq(r1, r2, straight, **OPTIONS)
        folder, out = tmp_path / "ck", tmp_path / "o.bam"
        kw = dict(OPTIONS, checkpoint=folder, checkpoint_pairs=700)
        with monkeypatch.context() as m:
            stop_after(m, 2)
            with pytest.raises(KeyboardInterrupt):
                aligner.align_fastq(r1, r2, out, **kw)
        stats = aligner.align_fastq(r1, r2, out, **kw)
        assert stats["resumed_pairs"] == 1400
        assert body(out) == body(straight)


def _fastq_lines(path: Path) -> list[str]:
    import gzip

    with gzip.open(path, "rt") as f:
        return f.readlines()


@pytest.mark.parametrize("compression", ["never", pytest.param("always", marks=pytest.mark.skipif(
    not compression_available(), reason="compressed spills need ISA-L"))])
def test_what_changed_starts_the_alignment_over(aligner: Aligner, dataset: Dataset,
                                                straight: tuple[Path, dict], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                compression: str) -> None:
    folder, out = tmp_path / "ck", tmp_path / "o.bam"
    kw = dict(OPTIONS, checkpoint=folder, checkpoint_pairs=500, spill_compression=compression)

    def cut_short() -> None:
        with monkeypatch.context() as m:
            stop_after(m, 2)
            with pytest.raises(KeyboardInterrupt):
                aligner.align_fastq(dataset.r1, dataset.r2, out, **kw)

    # Another read group shapes every record.
    cut_short()
    said: list[str] = []
    stats = aligner.align_fastq(dataset.r1, dataset.r2, out, log=said.append,
                                **dict(kw, read_group="@RG\\tID:x\\tSM:y"))
    assert stats["resumed_pairs"] == 0
    assert "not used: read_groups was [], now ['x']" in said[0]
    # A spill gone, or damaged: not trusted.
    for damage in ("gone", "cut", "flip", "index", "manifest"):
        cut_short()
        spill = folder / json.loads((folder / MANIFEST).read_text())["spills"][0]
        if damage == "gone":
            spill.unlink()
        elif damage == "cut":
            os.truncate(spill, spill.stat().st_size - 1)
        elif damage in ("flip", "index"):  # a bit inside a record; one in the index
            target = spill if damage == "flip" else Path(f"{spill}.idx")
            data = bytearray(target.read_bytes())
            data[len(data) // 2] ^= 1
            target.write_bytes(bytes(data))
        else:  # a count edited: the manifest's checksum no longer holds
            text = (folder / MANIFEST).read_text()
            (folder / MANIFEST).write_text(text.replace('"pairs": 1000', '"pairs": 900'))
        said.clear()
        stats = aligner.align_fastq(dataset.r1, dataset.r2, out, log=said.append, **kw)
        assert stats["resumed_pairs"] == 0, damage
        assert "aligning from the start" in said[0]
        assert body(out) == body(straight[0])
        assert not folder.exists()


def test_only_the_checkpoints_own_files_are_removed(aligner: Aligner, dataset: Dataset,
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # A folder given by mistake (the working directory, say) keeps what was already there.
    for name in ("notes.txt", "checkpoint.json", "lock"):
        (tmp_path / name).write_text("mine")
    (tmp_path / "sub").mkdir()
    kw = dict(OPTIONS, checkpoint=tmp_path, checkpoint_pairs=500)
    with monkeypatch.context() as m:
        stop_after(m, 2)
        with pytest.raises(KeyboardInterrupt):
            aligner.align_fastq(dataset.r1, dataset.r2, tmp_path / "o.bam", **kw)
    aligner.align_fastq(dataset.r1, dataset.r2, tmp_path / "o.bam",
                        **dict(kw, read_group="@RG\tID:x\tSM:y"))  # starts over
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json", "lock",
                                                          "notes.txt", "o.bam", "o.bam.bai",
                                                          "sub"]


def test_a_signal_after_the_output_is_written_keeps_a_usable_checkpoint(
        aligner: Aligner, dataset: Dataset, straight: tuple[Path, dict], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Between the writer's close (the BAM in place) and the checkpoint's removal, the
    # checkpoint still holds every file it lists: a rerun goes on from it.
    folder, out = tmp_path / "ck", tmp_path / "o.bam"
    kw = dict(OPTIONS, checkpoint=folder, checkpoint_pairs=500)

    def late_signal(self: AlignCheckpoint) -> None:
        raise KeyboardInterrupt
    with monkeypatch.context() as m:
        m.setattr(checkpoint_module.AlignCheckpoint, "finish", late_signal)
        with pytest.raises(KeyboardInterrupt):
            aligner.align_fastq(dataset.r1, dataset.r2, out, **kw)
    assert body(out) == body(straight[0])
    assert kept_checkpoint(folder) == 3000
    stats = aligner.align_fastq(dataset.r1, dataset.r2, out, **kw)
    assert stats["resumed_pairs"] == 3000
    assert body(out) == body(straight[0])
    assert not folder.exists()


def test_an_earlier_attempts_temporaries_are_removed(aligner: Aligner, dataset: Dataset,
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # A SIGKILL leaves OUT.tmp-PID (and its index's) beside the output: the next attempt
    # removes the ones its checkpoint recorded.
    folder, out = tmp_path / "ck", tmp_path / "o.bam"
    kw = dict(OPTIONS, checkpoint=folder, checkpoint_pairs=500)
    with monkeypatch.context() as m:
        stop_after(m, 1)
        with pytest.raises(KeyboardInterrupt):
            aligner.align_fastq(dataset.r1, dataset.r2, out, **kw)
    left = [Path(f"{out}.tmp-{os.getpid()}"), Path(f"{out}.tmp-{os.getpid()}.bai")]
    for p in left:
        p.write_bytes(b"partial")
    aligner.align_fastq(dataset.r1, dataset.r2, out, **kw)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.bam", "o.bam.bai"]


def test_a_failure_stops_the_checkpoints(aligner: Aligner, dataset: Dataset, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # A checkpoint that cannot be recorded (a full disk, say) fails the run there: no later
    # batch is written or checkpointed.
    calls: list[int] = []

    def full_disk(self: AlignCheckpoint, cp: dict, paired: bool) -> None:
        calls.append(cp["pairs"])
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(checkpoint_module.AlignCheckpoint, "record", full_disk)
    with pytest.raises(OSError, match="No space"):
        aligner.align_fastq(dataset.r1, dataset.r2, tmp_path / "o.bam",
                            **dict(OPTIONS, batch_reads=5, checkpoint=tmp_path / "ck",
                                   checkpoint_pairs=5))
    assert calls == [200]  # (the first batch holds the model's 200 leading pairs)
    # Nothing was recorded: nothing of the folder stays.
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_checkpoint_identity(aligner: Aligner, dataset: Dataset, tmp_path: Path) -> None:
    from gmsaccel.align import Index

    # An index with no file behind it cannot be found again by a later run.
    bare = Aligner(Index(aligner.index._core))
    with pytest.raises(ValueError, match="saved to a file or built from a FASTA"):
        bare.align_fastq(dataset.r1, dataset.r2, tmp_path / "o.bam", checkpoint=tmp_path / "ck")
    # Two in-memory indexes of one FASTA with another frequency cut are told apart.
    ids = [Aligner(Index.build(dataset.ref, max_occ=m))._checkpoint_identity(
        [str(dataset.r1)], [str(dataset.r2)], [], False, False, False) for m in (500, 1)]
    assert ids[0]["index"] != ids[1]["index"]
    assert ids[0]["engine"] == ids[1]["engine"] is not None


def test_a_checkpoint_folder_takes_one_run_at_a_time(tmp_path: Path) -> None:
    with AlignCheckpoint(tmp_path / "ck", {"a": 1}):
        with pytest.raises(_core.InputError, match="another alignment is using"):
            AlignCheckpoint(tmp_path / "ck", {"a": 1})
    with AlignCheckpoint(tmp_path / "ck", {"a": 1}):  # released
        pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(_core.InputError, match="not a directory"):
        AlignCheckpoint(tmp_path / "file", {})
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / LOCK).mkdir()
    with pytest.raises(_core.InputError, match="cannot open as the checkpoint's lock file"):
        AlignCheckpoint(tmp_path / "odd", {})


def test_checkpoints_need_files_and_sorted_output(aligner: Aligner, dataset: Dataset,
                                                  tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sorted output to a file"):
        aligner.align_fastq(dataset.r1, dataset.r2, "-", checkpoint=tmp_path / "ck")
    with pytest.raises(ValueError, match="sorted output to a file"):
        aligner.align_fastq(dataset.r1, dataset.r2, tmp_path / "o.bam", sort=False,
                            checkpoint=tmp_path / "ck")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="a pipe cannot be read again"):
        aligner.align_fastq(fifo, None, tmp_path / "o.bam", checkpoint=tmp_path / "ck")


def test_skipping_past_the_input_is_an_error(aligner: Aligner, dataset: Dataset,
                                             tmp_path: Path) -> None:
    # (a checkpoint of a longer input: its identity check comes first, this is the engine's)
    with pytest.raises(_core.InputError, match="fewer than the 3001 records a checkpoint"):
        aligner._core.align_fastq([str(dataset.r1)], [str(dataset.r2)], str(tmp_path / "o.bam"),
                                  "@HD\tVN:1.6\n", skip_pairs=3001)
    assert not (tmp_path / "o.bam").exists()


def test_align_cli_terminated_then_run_again(dataset: Dataset, longer: tuple[Path, Path],
                                             longer_bam: Path, tmp_path: Path) -> None:
    folder, out = tmp_path / "ck", tmp_path / "o.bam"
    args = [sys.executable, "-m", "gmsaccel", "align", str(dataset.ref), *map(str, longer),
            "-o", str(out), "-t", "2", "--mark-duplicates", "--batch-size", "10",
            "--sort-memory", "1", "--checkpoint", str(folder), "--checkpoint-pairs", "100"]
    proc = subprocess.Popen(args, env=cli_env(), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (folder / MANIFEST).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err.decode()
    assert b"kept the checkpoint in" in err
    assert not out.exists()
    state = json.loads((folder / MANIFEST).read_text())
    assert 10_000 <= state["pairs"] <= 30_000  # (the last: at the end of the input)
    # The spills it lists are there; beside them at most those of a checkpoint being recorded
    # as the signal came (kept, in case it was), which the next run removes.
    listed = set(state["spills"]) | {s + ".idx" for s in state["spills"]} | {MANIFEST, LOCK}
    there = {p.name for p in folder.iterdir()}
    assert listed <= there
    assert all(".spill." in n and n.endswith((".run", ".run.idx")) for n in there - listed)
    done = subprocess.run(args, env=cli_env(), capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert b"going on from the checkpoint" in done.stderr
    assert body(out) == body(longer_bam)
    assert not folder.exists()


@pytest.mark.skipif(not hasattr(_core, "call_region"), reason="no calling engine in this build")
@pytest.mark.parametrize("scratch", [False, True], ids=["outdir", "tmp-dir"])
def test_run_resume_goes_on_from_the_alignment_checkpoint(dataset: Dataset,
                                                          longer: tuple[Path, Path],
                                                          longer_bam: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          scratch: bool) -> None:
    outdir = tmp_path / "out"
    base = ["run", "-f", str(dataset.ref), *map(str, longer), "--sample", "S", "-o",
            str(outdir), "--no-report", "-q", "--resume", "--checkpoint-pairs", "1000"]
    if scratch:  # the checkpoint (and the spills) go to --tmp-dir, named after OUTDIR too
        (tmp_path / "scratch").mkdir()
        base += ["--tmp-dir", str(tmp_path / "scratch")]
    with monkeypatch.context() as m:
        stop_after(m, 1)  # the first batch holds the model's leading 10,000 pairs
        assert cli.main(base) == 130  # (as after Ctrl-C)
    folders = list((tmp_path / "scratch" if scratch else outdir).glob(".S.*checkpoint"))
    assert len(folders) == 1
    folder = folders[0]
    assert json.loads((folder / MANIFEST).read_text())["pairs"] == 10_000
    assert not (outdir / "S.bam").exists()
    assert cli.main(base) == 0
    assert not folder.exists()
    # (run names the read group after the sample; the records are otherwise the same)
    assert [ln.replace("\tRG:Z:S", "") for ln in body(outdir / "S.bam")] == body(longer_bam)
    metrics = json.loads((outdir / "S.metrics.json").read_text())
    assert metrics["reads"] == 60_000
    # A run without --resume leaves no earlier run's checkpoint behind (it can hold every
    # spill of a genome).
    (outdir / "S.bam").unlink()  # (so that --resume aligns again)
    with monkeypatch.context() as m:
        stop_after(m, 1)
        assert cli.main(base) == 130
    assert folder.is_dir()
    assert cli.main([a for a in base if a != "--resume"]) == 0
    assert not folder.exists()
    assert metrics["duplicates"]["reads_marked"] == \
        pysam.AlignmentFile(str(longer_bam)).count(until_eof=True, read_callback=lambda r:
                                                   r.is_duplicate)


def test_a_signal_while_the_checkpoint_goes_waits_till_it_is_gone(
        aligner: Aligner, dataset: Dataset, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder, out = tmp_path / "ck", tmp_path / "o.bam"
    drop = AlignCheckpoint._drop

    def signalled(self: AlignCheckpoint) -> None:  # SIGINT half way through
        os.kill(os.getpid(), signal.SIGINT)
        drop(self)
    monkeypatch.setattr(checkpoint_module.AlignCheckpoint, "_drop", signalled)
    with pytest.raises(KeyboardInterrupt):
        aligner.align_fastq(dataset.r1, dataset.r2, out,
                            **dict(OPTIONS, checkpoint=folder, checkpoint_pairs=500))
    assert out.exists() and not folder.exists()  # raised once the checkpoint was gone


@pytest.mark.skipif(not hasattr(_core, "call_region"), reason="no calling engine in this build")
def test_run_records_its_alignment_before_the_checkpoint_goes(
        dataset: Dataset, longer: tuple[Path, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    outdir, scratch = tmp_path / "out", tmp_path / "scratch"
    scratch.mkdir()
    base = ["run", "-f", str(dataset.ref), *map(str, longer), "--sample", "S", "-o",
            str(outdir), "--no-report", "-q", "--resume", "--checkpoint-pairs", "1000"]

    def late_signal(self: AlignCheckpoint) -> None:
        raise KeyboardInterrupt
    with monkeypatch.context() as m:
        m.setattr(checkpoint_module.AlignCheckpoint, "finish", late_signal)
        assert cli.main(base) == 130
    assert (outdir / "S.bam").exists() and (outdir / ".S.align.checkpoint").is_dir()
    # The alignment was recorded: --resume calls from it, and the stale checkpoint (in OUTDIR,
    # while this run keeps its own in --tmp-dir) goes.
    with monkeypatch.context() as m:
        m.setattr(Aligner, "align_fastq", lambda *a, **k: pytest.fail("aligned again"))
        assert cli.main([*base, "--tmp-dir", str(scratch)]) == 0
    assert not (outdir / ".S.align.checkpoint").exists()
    assert list(scratch.iterdir()) == []
