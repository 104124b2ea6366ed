"""Ploidy by region and sex (`gmsaccel call --ploidy-file FILE --sex SPEC`): a male's chrX
outside the pseudo-autosomal regions and his chrY are haploid, a female's chrY absent.

The file is bcftools' `--ploidy-file` format: whitespace-separated CHROM FROM TO SEX PLOIDY,
1-based and inclusive, `*` in CHROM for every contig (and in FROM/TO for its whole length), `*`
in SEX for every sex; lines starting with `#` are comments. Where several lines cover a
position, the last one wins; elsewhere the caller's `--ploidy` holds. Ploidy is 0, 1 or 2. For
GRCh38, for instance (its pseudo-autosomal regions are chrX:10,001-2,781,479 and
chrX:155,701,383-156,030,895):

    chrX 1 10000 M 1
    chrX 2781480 155701382 M 1
    chrX 156030896 * M 1
    chrY * * M 1
    chrY * * F 0

`--sex` gives each sample's sex as the file's SEX column spells it: one value for every
sample (`M`), or `NAME=SEX` pairs (`child=M,mother=F`), NAME being the sample (@RG SM).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gmsaccel import _core


@dataclass(frozen=True)
class PloidyRule:
    contig: str  # or "*"
    start: int  # 0-based
    end: int  # exclusive; -1: the contig's end
    sex: str  # or "*"
    ploidy: int


@dataclass
class PloidyMap:
    path: str
    default: int
    rules: list[PloidyRule]

    @property
    def needs_sex(self) -> bool:
        return any(r.sex != "*" for r in self.rules)

    def _applies(self, r: PloidyRule, contig: str) -> bool:
        return r.contig in ("*", contig)

    def boundaries(self, contig: str, length: int) -> list[int]:
        """Positions in (0, length) where the ploidy of some sex may change."""
        cuts = set()
        for r in self.rules:
            if self._applies(r, contig):
                for p in (r.start, length if r.end < 0 else r.end):
                    if 0 < p < length:
                        cuts.add(p)
        return sorted(cuts)

    def ploidy(self, contig: str, pos: int, sex: str) -> int:
        """The ploidy of a sample of this sex at 0-based pos."""
        out = self.default
        for r in self.rules:
            if self._applies(r, contig) and r.sex in ("*", sex) and r.start <= pos and \
                    (r.end < 0 or pos < r.end):
                out = r.ploidy
        return out


def read_ploidy_file(path: str | os.PathLike, contigs: Mapping[str, int],
                     default: int) -> PloidyMap:
    """Reads and checks the file against the reference's contigs (name -> length). Lines for
    contigs the reference lacks are ignored (a map serves several analysis sets), unless no
    line names one of its contigs."""
    path = os.fspath(path)
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise _core.InputError(f"{path}: cannot read ({e.strerror})") from None
    rules: list[PloidyRule] = []
    named = 0
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        f = line.split()
        where = f"{path} line {n}"
        if len(f) != 5:
            raise _core.InputError(f"{where}: expected CHROM FROM TO SEX PLOIDY, found "
                                   f"{len(f)} fields")
        contig, a, b, sex, p = f
        try:
            start = 0 if a == "*" else int(a) - 1
            end = -1 if b == "*" else int(b)
            ploidy = int(p)
        except ValueError:
            raise _core.InputError(f"{where}: FROM, TO and PLOIDY must be numbers (or * for "
                                   f"FROM and TO)") from None
        if ploidy not in (0, 1, 2):
            raise _core.InputError(f"{where}: ploidy {ploidy}: must be 0, 1 or 2")
        if start < 0 or (end >= 0 and end <= start):
            raise _core.InputError(f"{where}: empty or negative interval {a}-{b}")
        if contig != "*" and contig not in contigs:
            continue
        named += contig != "*"
        if contig != "*" and end > contigs[contig]:
            raise _core.InputError(f"{where}: {contig}:{a}-{b} runs past the contig's end "
                                   f"({contigs[contig]:,} bases)")
        rules.append(PloidyRule(contig, start, end, sex, ploidy))
    if not rules or (named == 0 and all(r.contig != "*" for r in rules)):
        raise _core.InputError(f"{path}: none of its lines names a contig of the reference")
    return PloidyMap(path, default, rules)


def sample_sexes(spec: str | Mapping[str, str] | None, samples: Sequence[str],
                 ploidy_map: PloidyMap) -> list[str]:
    """Each sample's sex from `spec` (see the module's text); '*' where the map needs none."""
    if spec is None or spec == "":
        if ploidy_map.needs_sex:
            raise ValueError(f"{ploidy_map.path} gives ploidy by sex: say each sample's sex "
                             f"(--sex M, or --sex NAME=SEX,...)")
        return ["*"] * len(samples)
    known = sorted({r.sex for r in ploidy_map.rules if r.sex != "*"})

    def checked(sex: str) -> str:
        sex = sex.strip()
        if ploidy_map.needs_sex and sex not in known:
            raise ValueError(f"sex {sex!r} is not one {ploidy_map.path} names "
                             f"({', '.join(known)})")
        return sex

    if isinstance(spec, str) and "=" not in spec:
        return [checked(spec)] * len(samples)
    items = list(spec.items()) if not isinstance(spec, str) else \
        [tuple(item.split("=", 1)) for item in spec.split(",") if item.strip()]
    pairs: dict[str, str] = {}
    for item in items:
        if len(item) != 2:
            raise ValueError(f"--sex {spec!r}: give one sex for all, or NAME=SEX pairs")
        name, sex = item[0].strip(), checked(item[1])
        if name in pairs:
            raise ValueError(f"--sex gives {name} twice")
        pairs[name] = sex
    unknown = sorted(set(pairs) - set(samples))
    if unknown:
        raise ValueError(f"--sex names samples the BAMs do not hold: {', '.join(unknown)} "
                         f"(samples: {', '.join(samples)})")
    missing = [s for s in samples if s not in pairs]
    if missing:
        raise ValueError(f"--sex gives no sex for {', '.join(missing)}")
    return [pairs[s] for s in samples]
