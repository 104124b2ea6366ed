"""The GPU extension path of the aligner writes exactly the CPU's records. Without a GPU the CUDA
module's host emulation (same packing, layout and unpacking; kernel threads run on the host)
stands in, so CI checks everything but the device itself."""

from __future__ import annotations

import random

import pysam
import pytest

from gmsaccel.align import Aligner, Index, cuda_module
from gmsaccel.simulate import plant_variants, simulate_pairs, write_fastq

cuda = cuda_module()
pytestmark = pytest.mark.skipif(cuda is None, reason="this build has no CUDA kernels")


def _records(path) -> list[str]:
    with pysam.AlignmentFile(str(path)) as f:
        return [r.to_string() for r in f]


@pytest.mark.parametrize("mode", ["emulated", "no room", "device"])
def test_gpu_records_equal_cpu_records(tmp_path, monkeypatch, mode: str) -> None:
    """The same records on the GPU path, and where the device has no room even for one
    extension job (emulated: allocations over 1,000 bytes fail), the CPU runs the batch."""
    if mode == "device" and cuda.device_count() == 0:
        pytest.skip("no CUDA device")
    if mode != "device":
        monkeypatch.setenv("GMSACCEL_GPU_EMULATE", "1")
    if mode == "no room":
        monkeypatch.setenv("GMSACCEL_GPU_EMULATE_MEMORY", "1000")
    rng = random.Random(4)
    contigs = {"c1": "".join(rng.choice("ACGT") for _ in range(40_000))}
    ref = tmp_path / "ref.fa"
    ref.write_text(">c1\n" + contigs["c1"] + "\n")
    haps, _ = plant_variants(contigs, rate=0.003, seed=3)
    r1, r2 = simulate_pairs(haps, 600, seed=5)
    f1 = write_fastq(tmp_path / "r1.fq", r1)
    f2 = write_fastq(tmp_path / "r2.fq", r2)
    index = Index.build(ref)
    cpu = tmp_path / "cpu.bam"
    gpu = tmp_path / "gpu.bam"
    cpu_stats = Aligner(index, device="cpu").align_fastq(f1, f2, cpu)
    aligner = Aligner(index, device="gpu", threads=2)
    assert aligner.device == "gpu"
    gpu_stats = aligner.align_fastq(f1, f2, gpu, batch_reads=97)
    assert _records(cpu) == _records(gpu)
    # seeding ran on the GPU path for every read (each end's batch in one call)
    assert cpu_stats["gpu_seeded_reads"] == 0
    assert gpu_stats["gpu_seeded_reads"] == gpu_stats["reads"] == 1200
    assert (gpu_stats["gpu_extend_fallbacks"] > 0) == (mode == "no room")
    assert cpu_stats["gpu_extend_fallbacks"] == 0


def test_gpu_without_device_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.delenv("GMSACCEL_GPU_EMULATE", raising=False)
    if cuda.device_count() > 0:
        pytest.skip("a CUDA device is visible")
    from gmsaccel.align import resolve_device

    with pytest.raises(RuntimeError, match="no CUDA device is visible"):
        resolve_device("gpu")
    assert resolve_device("auto") == ("cpu", -1, False)
    assert resolve_device("cpu") == ("cpu", -1, False)
