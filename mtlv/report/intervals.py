"""What a setting's score is known to within, and whether two settings are shown equivalent.

Samples of one study are not independent: the folds of a cross-validation share most of their training
documents, and repeated random splits (seeds) reuse the documents. A Student t interval over them treats
them as independent and is far too narrow (a 3-fold x 2-seed simulation covered the true expected F1 in
about 69% of repeats, tests/report/test_intervals.py). So:

- two or more (fold, seed) samples: the *corrected resampled t* (Nadeau & Bengio 2003, "Inference for the
  generalization error", Machine Learning 52; Bouckaert & Frank 2004, "Evaluating the replicability of
  significance tests for comparing learning algorithms", PAKDD): the variance of the mean of J samples is
  (1/J + n_test/n_train) s^2 instead of s^2 / J, with J - 1 degrees of freedom;
- one split: a percentile bootstrap over the test documents of that one result, from its saved predictions
  (F1-macro recomputed on each resample at the threshold the job chose on validation; seeded, so the same
  predictions give the same interval). It says how much the score depends on which documents were tested,
  not how much it moves with the training seed, which one run cannot tell.

Every interval is clipped to [0, 1] and names its method. Equivalence (`equivalence`) is the two one-sided
tests (TOST; Schuirmann 1987) of the paired mean gap against a margin, with the same corrected variance.
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from mtlv.report.stats import ALPHA

CONFIDENCE = 0.95
RESAMPLES = 2000        # bootstrap resamples: the percentile bounds move by < 0.005 between seeds at this count
BOOTSTRAP_SEED = 20031  # fixed: the same predictions always give the same interval
NADEAU_BENGIO = "corrected resampled t (Nadeau & Bengio 2003)"
BOOTSTRAP = "bootstrap over test documents"


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    method: str          # NADEAU_BENGIO | BOOTSTRAP
    n: int               # samples (corrected t) or test documents (bootstrap)
    detail: str = ""     # the ratio used, or the resamples

    def text(self) -> str:
        """'95% interval 0.701 to 0.744, corrected resampled t over 6 samples (Nadeau & Bengio 2003; n_test/n_train
        0.59)': how the report prints a setting's interval."""
        how = (f"{self.method} over {self.n} (fold, seed) samples" if self.method == NADEAU_BENGIO
               else f"bootstrap over its {self.n} test documents")
        return (f"{100 * CONFIDENCE:g}% interval {self.low:.3f} to {self.high:.3f}, {how}"
                + (f" ({self.detail})" if self.detail else ""))

    def to_json(self) -> dict:
        return {"low": self.low, "high": self.high, "method": self.method, "n": self.n, "detail": self.detail}


def _clip(value: float) -> float:
    return float(min(1.0, max(0.0, value)))


def corrected_se(values, ratio: float) -> float:
    """Standard error of the mean of resampled scores, corrected for their overlap: sqrt((1/J + ratio) s^2),
    ratio = n_test / n_train of one resample (Nadeau & Bengio 2003, eq. for the corrected resampled t)."""
    arr = np.asarray(values, dtype=float)
    return float(math.sqrt((1 / len(arr) + ratio) * arr.var(ddof=1)))


def corrected_t(values, ratio: float, confidence: float = CONFIDENCE) -> Interval | None:
    """The corrected resampled t interval of the mean of `values` (one per (fold, seed) sample), clipped to
    [0, 1]; None for fewer than two values."""
    arr = np.asarray(pd.Series(values, dtype=float).dropna(), dtype=float)
    if len(arr) < 2:
        return None
    half = float(stats.t.ppf(0.5 + confidence / 2, len(arr) - 1)) * corrected_se(arr, ratio)
    return Interval(_clip(arr.mean() - half), _clip(arr.mean() + half), NADEAU_BENGIO, len(arr),
                    f"n_test/n_train {ratio:.2f}")


def f1_macro_of_counts(weights: np.ndarray, pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """F1-macro per row of `weights` (resamples x documents: how often each document is drawn), by MTLV's rule
    (mtlv/evaluation/metrics.py): labels without a positive in the resample are left out of the mean."""
    pred, true = pred.astype(float), true.astype(float)
    tp = weights @ (pred * true)
    fp = weights @ (pred * (1 - true))
    fn = weights @ ((1 - pred) * true)
    support = weights @ true
    f1 = np.where(support > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1.0), np.nan)  # counts: >= 1 where defined
    defined = np.isfinite(f1).sum(axis=1)
    return np.where(defined > 0, np.nansum(f1, axis=1) / np.maximum(defined, 1), np.nan)


def bootstrap_f1_macro(pred, true, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> Interval | None:
    """Percentile bootstrap interval of F1-macro over documents: `pred` and `true` are the 0/1 matrices
    (documents x labels) of one result's test set. None without documents."""
    pred, true = np.asarray(pred), np.asarray(true)
    n = len(true)
    if n == 0:
        return None
    rng = np.random.default_rng(seed)
    scores = []
    for start in range(0, resamples, 250):  # in batches: a (resamples x documents) matrix can be large
        weights = rng.multinomial(n, np.full(n, 1 / n), size=min(250, resamples - start)).astype(float)
        scores.append(f1_macro_of_counts(weights, pred, true))
    scores = np.concatenate(scores)
    scores = scores[np.isfinite(scores)]
    if not len(scores):
        return None
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(scores, [tail, 100 - tail])
    return Interval(_clip(low), _clip(high), BOOTSTRAP, n, f"{resamples} resamples, seeded; the training seed's "
                    "effect is not in it")


def saved_test_predictions(uri: str, row: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """(0/1 predictions, targets) of one result's test set from its saved files (predictions_test.csv and the
    threshold of metrics.json, chosen on validation); None where the store or the run folder lacks them."""
    from mtlv.evaluation.predictions import Predictions
    from mtlv.io import read_json
    from mtlv.report.collect import artifact

    with tempfile.TemporaryDirectory(prefix="mtlv-report-") as tmp:
        preds = artifact(uri, row, "predictions_test.csv", f"{tmp}/p")
        metrics = artifact(uri, row, "metrics.json", f"{tmp}/m")
        if preds is None or metrics is None:
            return None
        test = Predictions.load(preds)
        threshold = read_json(metrics).get("threshold")
    if threshold is None:
        return None
    threshold = np.asarray(threshold, dtype=float)
    return (test.probs >= threshold).astype(int), test.targets


def split_ratio(rows: pd.DataFrame, part: str = "test") -> float:
    """n_part / n_train of the rows' split (part: test or val), from the documents each part had where the
    runs recorded them (columns n_train, n_val, n_test), else from the split options: k folds hold out 1/k
    for test, one split `test_size`; validation is `val_size` of the rest, and training what is left."""
    counts = [c for c in (f"n_{part}", "n_train") if c in rows]
    if len(counts) == 2:
        both = rows[counts].apply(pd.to_numeric, errors="coerce").dropna()
        both = both[both.n_train > 0]
        if len(both):
            return float((both[f"n_{part}"] / both.n_train).mean())
    first = rows.iloc[0] if len(rows) else pd.Series(dtype=object)
    folds = pd.to_numeric(first.get("folds"), errors="coerce")
    test = 1 / folds if folds and np.isfinite(folds) and folds >= 2 else _float(first.get("test_size"), 0.2)
    val = _float(first.get("val_size"), 0.15)
    train = (1 - test) * (1 - val)
    return float((test if part == "test" else (1 - test) * val) / train)


def _float(value, default: float) -> float:
    value = pd.to_numeric(value, errors="coerce")
    return float(value) if value is not None and np.isfinite(value) else default


def setting_interval(uri: str | None, rows: pd.DataFrame, metric: str = "f1_macro") -> Interval | None:
    """The interval the report prints for one setting's test F1-macro (`rows`: its results, one per
    (fold, seed) sample): corrected resampled t over two or more samples, a bootstrap over the test documents
    of one result whose predictions the store (or its run folder) has, else None."""
    values = rows[metric].dropna()
    if len(values) >= 2:
        return corrected_t(values, split_ratio(rows, "test"))
    if len(values) == 1 and uri:
        saved = saved_test_predictions(uri, rows.loc[values.index[0]])
        if saved is not None:
            return bootstrap_f1_macro(*saved)
    return None


def samples_needed(mean: float, sd: float, ratio: float, margin: float, alpha: float = ALPHA,
                   limit: int = 1000) -> int | None:
    """The fewest samples J with which a paired gap of this mean and spread would be shown within +-margin:
    |mean| + t(1 - alpha, J - 1) sqrt((1/J + ratio) sd^2) < margin. None when no J up to `limit` would (the
    ratio term does not shrink with J: a spread that large needs another design, or a wider margin)."""
    for j in range(2, limit + 1):
        if abs(mean) + stats.t.ppf(1 - alpha, j - 1) * math.sqrt((1 / j + ratio) * sd ** 2) < margin:
            return j
    return None


def equivalence(gaps, margin: float, ratio: float, alpha: float = ALPHA) -> dict:
    """Two one-sided tests (TOST) that the mean paired gap lies within (-margin, margin), each at `alpha`,
    with the corrected resampled variance: equivalent when both reject, i.e. when the (1 - 2 alpha) corrected
    interval of the mean gap lies inside the margin. Returns n, mean, sd, lower/upper (that interval), p
    (the larger one-sided p), equivalent, and needed (samples that would show it at this mean and spread;
    None when none would, or when one sample gives no spread)."""
    arr = np.asarray(gaps, dtype=float)
    n = len(arr)
    out = {"n": n, "mean": float(arr.mean()) if n else math.nan, "sd": math.nan, "lower": math.nan,
           "upper": math.nan, "p": math.nan, "equivalent": False, "needed": None}
    if n < 2:
        return out
    mean, sd = float(arr.mean()), float(arr.std(ddof=1))
    se = corrected_se(arr, ratio)
    half = float(stats.t.ppf(1 - alpha, n - 1)) * se
    if se > 0:
        p = max(stats.t.sf((mean + margin) / se, n - 1), stats.t.cdf((mean - margin) / se, n - 1))
    else:  # the same gap in every pair
        p = 0.0 if abs(mean) < margin else 1.0
    out.update(sd=sd, lower=mean - half, upper=mean + half, p=float(p), equivalent=bool(p < alpha))
    if not out["equivalent"]:
        out["needed"] = samples_needed(mean, sd, ratio, margin, alpha)
    return out
