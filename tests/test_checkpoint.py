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
from gmsaccel.checkpoint import MANIFEST, AlignCheckpoint
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


@pytest.mark.parametrize("stop", [1, 4])
def test_a_run_cut_short_goes_on_from_its_checkpoint(aligner: Aligner, dataset: Dataset,
                                                      straight: tuple[Path, dict],
                                                      tmp_path: Path, stop: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    folder, out = tmp_path / "ck", tmp_path / "o.bam"
    kw = dict(OPTIONS, checkpoint=folder, checkpoint_pairs=500)
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


def test_what_changed_starts_the_alignment_over(aligner: Aligner, dataset: Dataset,
                                                straight: tuple[Path, dict], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    folder, out = tmp_path / "ck", tmp_path / "o.bam"
    kw = dict(OPTIONS, checkpoint=folder, checkpoint_pairs=500)

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
    for damage in ("gone", "cut", "index"):
        cut_short()
        spill = folder / json.loads((folder / MANIFEST).read_text())["spills"][0]
        if damage == "gone":
            spill.unlink()
        elif damage == "cut":
            os.truncate(spill, spill.stat().st_size - 1)
        else:
            idx = Path(f"{spill}.idx")
            data = bytearray(idx.read_bytes())
            data[40] ^= 1
            idx.write_bytes(bytes(data))
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
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "sub").mkdir()
    kw = dict(OPTIONS, checkpoint=tmp_path, checkpoint_pairs=500)
    with monkeypatch.context() as m:
        stop_after(m, 2)
        with pytest.raises(KeyboardInterrupt):
            aligner.align_fastq(dataset.r1, dataset.r2, tmp_path / "o.bam", **kw)
    aligner.align_fastq(dataset.r1, dataset.r2, tmp_path / "o.bam",
                        **dict(kw, read_group="@RG\tID:x\tSM:y"))  # starts over
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "o.bam", "o.bam.bai",
                                                          "sub"]


def test_a_checkpoint_folder_takes_one_run_at_a_time(tmp_path: Path) -> None:
    with AlignCheckpoint(tmp_path / "ck", {"a": 1}):
        with pytest.raises(_core.InputError, match="another alignment is using"):
            AlignCheckpoint(tmp_path / "ck", {"a": 1})
    with AlignCheckpoint(tmp_path / "ck", {"a": 1}):  # released
        pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(_core.InputError, match="not a directory"):
        AlignCheckpoint(tmp_path / "file", {})


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
    # No spill beyond the checkpoint is left.
    state = json.loads((folder / MANIFEST).read_text())
    assert 10_000 <= state["pairs"] <= 30_000  # (the last: at the end of the input)
    listed = set(state["spills"]) | {s + ".idx" for s in state["spills"]} | {MANIFEST, "lock"}
    assert {p.name for p in folder.iterdir()} == listed
    done = subprocess.run(args, env=cli_env(), capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert b"going on from the checkpoint" in done.stderr
    assert body(out) == body(longer_bam)
    assert not folder.exists()


@pytest.mark.skipif(not hasattr(_core, "call_region"), reason="no calling engine in this build")
def test_run_resume_goes_on_from_the_alignment_checkpoint(dataset: Dataset,
                                                          longer: tuple[Path, Path],
                                                          longer_bam: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    outdir = tmp_path / "out"
    base = ["run", "-f", str(dataset.ref), *map(str, longer), "--sample", "S", "-o",
            str(outdir), "--no-report", "-q", "--resume", "--checkpoint-pairs", "1000"]
    with monkeypatch.context() as m:
        stop_after(m, 1)  # the first batch holds the model's leading 10,000 pairs
        assert cli.main(base) == 130  # (as after Ctrl-C)
    folder = outdir / ".S.align.checkpoint"
    assert json.loads((folder / MANIFEST).read_text())["pairs"] == 10_000
    assert not (outdir / "S.bam").exists()
    assert cli.main(base) == 0
    assert not folder.exists()
    # (run names the read group after the sample; the records are otherwise the same)
    assert [ln.replace("\tRG:Z:S", "") for ln in body(outdir / "S.bam")] == body(longer_bam)
    metrics = json.loads((outdir / "S.metrics.json").read_text())
    assert metrics["reads"] == 60_000
    assert metrics["duplicates"]["reads_marked"] == \
        pysam.AlignmentFile(str(longer_bam)).count(until_eof=True, read_callback=lambda r:
                                                   r.is_duplicate)
