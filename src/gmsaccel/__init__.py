"""gmsaccel: short-read alignment and variant calling on GPUs and SIMD CPUs."""

from __future__ import annotations

__version__ = "0.1.0"

import pysam as _pysam

from gmsaccel import _core
from gmsaccel._core import InputError


def _check_htslib() -> None:
    """The extension links the htslib inside pysam's wheel; refuse a different one at run time."""
    loaded = _core.htslib_runtime_version()
    built = _core.htslib_compiled_version  # e.g. 102400 for 1.24
    major, minor = built // 100000, (built // 100) % 1000
    if not loaded.startswith(f"{major}.{minor}"):
        raise ImportError(
            f"gmsaccel was built against htslib {major}.{minor} (pysam "
            f"{_core.pysam_compiled_version}) but htslib {loaded} (pysam {_pysam.__version__}) is "
            "loaded; reinstall gmsaccel against the installed pysam"
        )


_check_htslib()

__all__ = ["InputError", "__version__"]
