"""Whether a study can show anything significant, said before it trains (the plan) and in its report.

A two-sided Wilcoxon signed-rank test of n paired samples with no zero difference can give p no smaller
than 2 / 2**n (all differences of one sign). Holm's correction over T tests multiplies the smallest p by T,
and rejects nothing unless that product is below alpha. So with n samples and T tests no comparison can be
significant when T * 2 / 2**n >= alpha, whatever the data: 6 samples give 0.031 alone, but 0.22 after Holm
over 7 tests. `reachable` applies the same bound per comparison (each at the fewest pairs it has).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from mtlv.report.stats import ALPHA, holm, min_two_sided_p


def samples_for(tests: int, alpha: float = ALPHA) -> int:
    """The fewest paired samples with which the smallest of `tests` Wilcoxon p-values can pass Holm:
    tests * 2 / 2**n < alpha."""
    n = 1
    while max(tests, 1) * min_two_sided_p(n) >= alpha:
        n += 1
    return n


@dataclass(frozen=True)
class Power:
    samples: int          # paired (fold, seed) samples per comparison
    tests: int            # comparisons corrected together (Holm)
    folds: int = 0        # folds of the cross-validation (0: one split per seed), for how to get more samples
    alpha: float = ALPHA

    @property
    def best_p(self) -> float:
        """The smallest p one test can give, and the smallest Holm-adjusted p of the family."""
        return min_two_sided_p(self.samples)

    @property
    def best_holm_p(self) -> float:
        return min(1.0, max(self.tests, 1) * self.best_p)

    @property
    def can_reach(self) -> bool:
        return self.tests > 0 and self.best_holm_p < self.alpha

    @property
    def needed(self) -> int:
        return samples_for(self.tests, self.alpha)

    def to_json(self) -> dict:
        return {**asdict(self), "best_p": self.best_p, "best_holm_p": self.best_holm_p, "can_reach": self.can_reach,
                "needed": self.needed}

    def sentence(self) -> str:
        """One plain sentence: can any of the comparisons be significant, and if not, how many samples (seeds
        over the folds) would make it possible."""
        tests = f"{self.tests} test{'s' if self.tests != 1 else ''}"
        head = (f"{self.samples} paired sample{'s' if self.samples != 1 else ''} and {tests} (Holm's correction): "
                f"the smallest p a two-sided Wilcoxon signed-rank test can give is {self.best_p:.3g}, "
                f"{self.best_holm_p:.3g} after Holm")
        if self.can_reach:
            return f"Power: {head}, so a difference can reach p < {self.alpha:g}."
        if self.folds > 1:
            how = f" ({math.ceil(self.needed / self.folds)} seeds over the {self.folds} folds: study.seeds=[...])"
        else:
            how = f" ({self.needed} seeds of the split, study.seeds=[...], or {self.needed} folds, study.folds)"
        return (f"⚠ Power: {head}: no comparison can be significant at {self.alpha:g}, whatever the results. "
                f"At least {self.needed} paired samples would make it possible{how}.")


def reachable(min_ps, alpha: float = ALPHA) -> np.ndarray:
    """Per comparison, whether it can be significant after Holm at all: its Holm-adjusted p when every test of
    the family gives its smallest possible p (min_ps) is below alpha. Adjusted p-values only grow when any p
    grows, so this is each comparison's best case; a row False here cannot be significant, whatever the data."""
    adjusted = holm(min_ps)
    return np.isfinite(adjusted) & (adjusted < alpha)


def _values(overrides, key: str) -> int:
    """How many values a sweep gives `key` (`seed=42,43` -> 2), 1 when it is not swept, 0 when not set."""
    for override in overrides:
        name, _, value = override.partition("=")
        if name.lstrip("+~") == key:
            return len(value.split(","))
    return 0


def plan_samples(plan) -> tuple[int, int]:
    """(samples, folds) of the plan's training sweeps: (fold, seed) samples per setting, and the folds."""
    train = [s for s in plan.sweeps if s.module == "mtlv.train"]
    if not train:
        return 0, 0
    folds = _values(train[0].overrides, "split.fold")
    return max(folds, 1) * max(_values(train[0].overrides, "seed"), 1), folds


def plan_ranking_line(plan, spread: float | None) -> list[str]:
    """The plan's line on how far the ranking of settings can be trusted, before anything trains. `spread`:
    the study's measured seed-to-seed range of one setting's test F1-macro at its budget (study.seed_spread,
    docs/study.md), said so that a one-sample study is not read as a ranking."""
    samples, folds = plan_samples(plan)
    if samples == 0:
        return []
    if samples > 1:
        return [f"Ranking: {samples} samples per setting: the report shows each setting's seed-to-seed spread and "
                "names a setting chosen only when its lead on validation is larger than that spread."]
    measured = (f" At this study's budget the seed alone moved a setting's test F1-macro by up to "
                f"{100 * spread:.1f} points (docs/study.md), so smaller gaps between settings are noise."
                if spread else "")
    return [f"⚠ Ranking: one sample per setting (one split, one seed): the report's ranking will be unchecked and "
            f"it names no setting chosen.{measured} To check it: study.seeds=[42,43,44] (every setting on 3 "
            "splits, about 3x the time) or study.confirm=2 (after the report, the leaders again on 2 fresh seeds)."]


def plan_power(plan) -> Power | None:
    """The power of the report a study's plan will have (before anything trains): samples = folds x seeds of
    its training sweeps, tests = the comparisons of every setting with STL and MTL of its model (Table 8).
    None when the plan has no STL or MTL to compare with."""
    train = [i for i, s in enumerate(plan.sweeps) if s.module == "mtlv.train"]
    if not train:
        return None
    samples, folds = plan_samples(plan)
    models = max((_values(plan.sweeps[i].overrides, "model") for i in train), default=1) or 1
    cells: dict[str, set] = {}
    for job in plan.jobs:
        if job.sweep in train:
            cells.setdefault(job.arch, set()).add(job.cell)
    settings = {arch: max(round(len(c) / (samples * models)), 1) for arch, c in cells.items()}
    total, stl, mtl = sum(settings.values()), "stl" in settings, "mtl" in settings
    per_model = (total - 1 if stl else 0) + (total - 1 - stl if mtl else 0)
    return Power(samples, per_model * models, folds) if per_model > 0 else None


def plan_power_line(plan) -> list[str]:
    """The plan's line on power (empty when the study makes no test)."""
    power = plan_power(plan)
    return [] if power is None else [power.sentence()]
