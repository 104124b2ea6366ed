"""`gmsaccel run --resume`: finished stages kept after a failure and reused, unless what they
depend on changed; the stage stamps themselves (gmsaccel.resume)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pysam
import pytest
from conftest import Dataset

from gmsaccel import _core, cli
from gmsaccel.resume import RunStamp, file_identity

needs_engine = pytest.mark.skipif(not hasattr(_core, "call_region"),
                                  reason="calling engine (_core.call_region) not in this build")


def run(dataset: Dataset, outdir: Path, *extra: str, r1: Path | None = None) -> int:
    return cli.main(["run", "-f", str(dataset.ref), str(r1 or dataset.r1), str(dataset.r2),
                     "--sample", "S", "-o", str(outdir), "--no-report", *extra])


def vcf_records(path: Path) -> list[str]:
    with pysam.VariantFile(str(path)) as f:
        return [str(r) for r in f]


def files(outdir: Path) -> dict[str, int]:
    """name -> mtime_ns of everything in outdir."""
    return {p.name: p.stat().st_mtime_ns for p in outdir.iterdir()}


def refuse(*args: object, **kw: object) -> None:
    raise AssertionError("this stage should have been reused")


@pytest.fixture(scope="module")
def straight(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted run."""
    outdir = tmp_path_factory.mktemp("straight")
    assert run(dataset, outdir, "-q") == 0
    return outdir


@needs_engine
def test_resume_reuses_every_finished_stage(dataset: Dataset, straight: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    outdir = tmp_path / "out"
    shutil.copytree(straight, outdir)  # (copytree keeps mtimes: the outputs are as they were)
    before = files(outdir)
    monkeypatch.setattr("gmsaccel.align.Aligner.align_fastq", refuse)
    monkeypatch.setattr("gmsaccel.call.Caller.write_vcf", refuse)
    assert run(dataset, outdir, "--resume") == 0
    err = capsys.readouterr().err
    assert "not aligning again" in err and "not calling again" in err
    after = files(outdir)
    assert {k: v for k, v in after.items() if k != "S.metrics.json"} == \
        {k: v for k, v in before.items() if k != "S.metrics.json"}
    old = json.loads((straight / "S.metrics.json").read_text())
    new = json.loads((outdir / "S.metrics.json").read_text())
    assert old["reused_stages"] == [] and new["reused_stages"] == ["align", "call"]
    for key in ("reads", "mapped", "properly_paired", "duplicates", "variants", "pass",
                "titv", "mapped_by_contig", "mean_depth", "align_seconds", "call_seconds"):
        assert new[key] == old[key], key


@needs_engine
def test_a_failed_call_keeps_the_alignment_for_resume(dataset: Dataset, straight: Path,
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    outdir = tmp_path / "out"

    def cancelled(*args: object, **kw: object) -> None:
        raise cli.Terminated

    with monkeypatch.context() as m:
        m.setattr("gmsaccel.call.Caller.write_vcf", cancelled)
        assert run(dataset, outdir, "-q") == 128 + 15
    err = capsys.readouterr().err
    assert "kept" in err and "S.bam" in err and "--resume" in err
    assert sorted(os.listdir(outdir)) == [".S.run.json", "S.bam", "S.bam.bai"]
    bam_time = (outdir / "S.bam").stat().st_mtime_ns
    monkeypatch.setattr("gmsaccel.align.Aligner.align_fastq", refuse)
    assert run(dataset, outdir, "--resume", "-q") == 0
    assert (outdir / "S.bam").stat().st_mtime_ns == bam_time
    assert vcf_records(outdir / "S.vcf.gz") == vcf_records(straight / "S.vcf.gz")
    metrics = json.loads((outdir / "S.metrics.json").read_text())
    assert metrics["reused_stages"] == ["align"]
    assert metrics["mapped"] == json.loads((straight / "S.metrics.json").read_text())["mapped"]


@needs_engine
def test_resume_reruns_what_changed(dataset: Dataset, straight: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    outdir = tmp_path / "out"
    r1 = tmp_path / "r1.fq.gz"
    shutil.copy2(dataset.r1, r1)
    assert run(dataset, outdir, "-q", r1=r1) == 0
    # A caller option changed: the alignment stays, calling runs again.
    with monkeypatch.context() as m:
        m.setattr("gmsaccel.align.Aligner.align_fastq", refuse)
        assert run(dataset, outdir, "--resume", "--min-mapq", "20", r1=r1) == 0
    err = capsys.readouterr().err
    assert "calling again: min_mapq was 0, now 20" in err
    assert json.loads((outdir / "S.metrics.json").read_text())["reused_stages"] == ["align"]
    # The reads rewritten since (same bytes, new mtime): both stages run again.
    os.utime(r1, ns=(r1.stat().st_atime_ns, r1.stat().st_mtime_ns + 10**9))
    assert run(dataset, outdir, "--resume", "--min-mapq", "20", r1=r1) == 0
    err = capsys.readouterr().err
    assert "aligning again: reads1 is not the file it was" in err
    assert json.loads((outdir / "S.metrics.json").read_text())["reused_stages"] == []
    # An output changed behind the run's back: its stage runs again.
    vcf = outdir / "S.vcf.gz"
    os.utime(vcf, ns=(vcf.stat().st_atime_ns, vcf.stat().st_mtime_ns + 10**9))
    assert run(dataset, outdir, "--resume", "--min-mapq", "20", r1=r1) == 0
    err = capsys.readouterr().err
    assert "not aligning again" in err and f"calling again: its output {vcf} has " \
        "changed" in err
    # Without --resume every stage runs, whatever the record says.
    before = (outdir / "S.bam").stat().st_mtime_ns
    assert run(dataset, outdir, "-q", "--min-mapq", "20", r1=r1) == 0
    assert (outdir / "S.bam").stat().st_mtime_ns != before
    assert json.loads((outdir / "S.metrics.json").read_text())["reused_stages"] == []


@needs_engine
def test_resume_without_a_record_runs_everything(dataset: Dataset, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    outdir = tmp_path / "out"
    assert run(dataset, outdir, "--resume") == 0
    assert "--resume: no earlier run recorded there: running every stage" in \
        capsys.readouterr().err
    assert json.loads((outdir / "S.metrics.json").read_text())["reused_stages"] == []


def test_stamp_round_trip_and_checks(tmp_path: Path) -> None:
    out = tmp_path / "o.txt"
    out.write_text("x")
    src = tmp_path / "in.txt"
    src.write_text("y")
    inputs = {"version": "1", "reads1": file_identity(src), "options": {"q": 1}}
    stamp = RunStamp(tmp_path / ".s.json")
    stamp.finish("align", inputs, [out, tmp_path / "absent"], {"stats": {"n": 3}})
    loaded, why_not = RunStamp.load(tmp_path / ".s.json")
    assert why_not is None
    assert loaded.outputs() == [out]
    assert loaded.reusable("align", inputs) == ({"stats": {"n": 3}}, "")
    assert loaded.reusable("call", inputs) == (None, "it did not finish")
    assert loaded.reusable("align", {**inputs, "options": {"q": 2}}) == \
        (None, "q was 1, now 2")
    assert loaded.reusable("align", {**inputs, "version": "2"}) == \
        (None, "version was '1', now '2'")
    src.write_text("yy")
    assert loaded.reusable("align", {**inputs, "reads1": file_identity(src)}) == \
        (None, "reads1 is not the file it was")
    out.write_text("xx")
    assert loaded.reusable("align", inputs) == (None, f"its output {out} has changed")
    out.unlink()
    assert loaded.reusable("align", inputs) == (None, f"its output {out} is gone")
    loaded.forget("align")
    assert RunStamp.load(tmp_path / ".s.json")[0].stages == {}


@pytest.mark.parametrize(("text", "says"), [
    (None, "no earlier run recorded there"),
    ("{not json", "is unreadable"),
    ('{"format": 99, "stages": {}}', "is not one this version reads"),
    ("[]", "is not one this version reads"),
])
def test_unusable_stamps_run_everything(tmp_path: Path, text: str | None, says: str) -> None:
    path = tmp_path / ".s.json"
    if text is not None:
        path.write_text(text)
    stamp, why_not = RunStamp.load(path)
    assert stamp.stages == {} and why_not is not None and says in why_not


@needs_engine
def test_a_signal_just_after_a_stage_keeps_its_output(dataset: Dataset, straight: Path,
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """SIGTERM handled just after the VCF's writer put it in place, before the stage was
    recorded: the VCF is complete and stays; --resume calls again (it cannot know the stage's
    statistics) and writes the same records."""
    from gmsaccel.call import Caller

    outdir = tmp_path / "out"
    write_vcf = Caller.write_vcf

    def then_cancelled(self: Caller, *args: object, **kw: object) -> None:
        write_vcf(self, *args, **kw)
        raise cli.Terminated

    with monkeypatch.context() as m:
        m.setattr(Caller, "write_vcf", then_cancelled)
        assert run(dataset, outdir, "-q") == 128 + 15
    assert sorted(os.listdir(outdir)) == [".S.run.json", "S.bam", "S.bam.bai", "S.vcf.gz",
                                          "S.vcf.gz.tbi"]
    err = capsys.readouterr().err
    assert "kept" in err and "before its stage was recorded: --resume runs that stage" in err
    assert vcf_records(outdir / "S.vcf.gz") == vcf_records(straight / "S.vcf.gz")
    assert run(dataset, outdir, "--resume") == 0
    err = capsys.readouterr().err
    assert "not aligning again" in err and "calling again: it did not finish" in err
    assert vcf_records(outdir / "S.vcf.gz") == vcf_records(straight / "S.vcf.gz")


@needs_engine
def test_resume_sees_a_rebuilt_saved_index(dataset: Dataset, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """With -f REF.fa, align uses REF.fa.gxi where it is saved: an index rebuilt since (other
    -k, -w or --max-occ) means aligning again, though the FASTA is the same."""
    ref = tmp_path / "ref.fa"
    shutil.copy2(dataset.ref, ref)
    assert cli.main(["index", str(ref), "-q"]) == 0
    outdir = tmp_path / "out"
    args = ["run", "-f", str(ref), str(dataset.r1), str(dataset.r2), "--sample", "S", "-o",
            str(outdir), "--no-report"]
    assert cli.main([*args, "-q"]) == 0
    assert cli.main([*args, "--resume"]) == 0
    assert "not aligning again" in capsys.readouterr().err
    assert cli.main(["index", str(ref), "-w", "9", "-q"]) == 0
    assert cli.main([*args, "--resume"]) == 0
    assert "aligning again: index is not the file it was" in capsys.readouterr().err
