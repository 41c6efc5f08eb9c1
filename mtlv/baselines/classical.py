"""Classical multi-label text classifiers: bag-of-words or TF-IDF features with one-vs-rest logistic
regression or a random forest. They are the floor a fine-tuned encoder has to clear: on short,
formulaic reports such as Open-I, word n-grams already separate most labels."""
from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from mtlv.errors import ConfigError, DataError
from mtlv.options import choices

# declared with the other options in the option registry (mtlv/options.py: OPTIONS), which sits below this module
FEATURES = choices("baseline.features")         # tfidf, bow
CLASSIFIERS = choices("baseline.classifier")    # logreg, random_forest


def make_vectorizer(bcfg: DictConfig):
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    if bcfg.features not in FEATURES:
        raise ConfigError(f"baseline.features={bcfg.features}: choose one of {', '.join(FEATURES)}")
    opts = {"ngram_range": (1, int(bcfg.ngram_max)), "min_df": int(bcfg.min_df),
            "max_features": int(bcfg.max_features) if bcfg.max_features else None, "lowercase": True}
    # sublinear tf: a term repeated in one report is not ten times as informative
    return TfidfVectorizer(sublinear_tf=True, **opts) if bcfg.features == "tfidf" else CountVectorizer(**opts)


def make_classifier(bcfg: DictConfig, seed: int):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    if bcfg.classifier == "logreg":
        # liblinear: deterministic and fast on sparse, small corpora; one binary model per label
        return OneVsRestClassifier(LogisticRegression(C=float(bcfg.C), solver="liblinear", max_iter=2000,
                                                      random_state=seed))
    if bcfg.classifier == "random_forest":
        # one multi-output forest: trees are shared across labels, far faster than one forest per label
        return RandomForestClassifier(n_estimators=int(bcfg.n_estimators), n_jobs=int(bcfg.n_jobs),
                                      random_state=seed)
    raise ConfigError(f"baseline.classifier={bcfg.classifier}: choose one of {', '.join(CLASSIFIERS)}")


def positive_probs(model, X, num_labels: int) -> np.ndarray:
    """(n, m) probability of the positive class, also for labels constant in the training data."""
    raw = model.predict_proba(X)
    if num_labels == 1:  # one label was fitted as a binary problem: (n, classes), in the order of model.classes_
        classes = list(model.classes_)
        positive = raw[:, classes.index(1)] if 1 in classes else np.zeros(raw.shape[0])
        return np.asarray(positive, dtype=np.float64)[:, None]
    if not isinstance(raw, list):  # one-vs-rest: already (n, m)
        return np.asarray(raw, dtype=np.float64)
    cols = []
    for proba, classes in zip(raw, model.classes_):  # forest: one (n, classes) array per label
        classes = list(classes)
        cols.append(proba[:, classes.index(1)] if 1 in classes else np.zeros(proba.shape[0]))
    out = np.column_stack(cols).astype(np.float64)
    assert out.shape[1] == num_labels
    return out


def fit_features(vectorizer, bcfg: DictConfig, train_texts: list[str]):
    """The training documents' features; a `baseline.min_df` that keeps no term is a DataError naming a value
    that works (scikit-learn raises a ValueError about max_df, or "After pruning, no terms remain")."""
    if int(bcfg.min_df) > len(train_texts):
        raise DataError(f"baseline.min_df={bcfg.min_df}: a term must be in at least {bcfg.min_df} training "
                        f"documents, and there are {len(train_texts)}; use baseline.min_df=2 (the default) or another "
                        f"value up to {most_documents(bcfg, train_texts)}")
    try:
        return vectorizer.fit_transform(train_texts)
    except ValueError as err:
        if "no terms remain" not in str(err):
            raise
        raise DataError(f"baseline.min_df={bcfg.min_df}: no term is in {bcfg.min_df} of the {len(train_texts)} "
                        f"training documents; the most common is in {most_documents(bcfg, train_texts)}, so use "
                        "baseline.min_df=2 (the default) or a value up to that") from err


def most_documents(bcfg: DictConfig, train_texts: list[str]) -> int:
    """The number of training documents of the most common term (the largest min_df that keeps one)."""
    from sklearn.feature_extraction.text import CountVectorizer

    try:
        counts = CountVectorizer(ngram_range=(1, int(bcfg.ngram_max)), lowercase=True, binary=True).fit_transform(
            train_texts)
    except ValueError:  # no word at all (e.g. only punctuation)
        return 0
    return int(counts.sum(axis=0).max())


def coefficients(model) -> int | None:
    """The fitted weights and intercepts of a one-vs-rest logistic regression (a label constant in the
    training data gets a constant predictor: none); None for a forest, whose size is not a coefficient count."""
    if not hasattr(model, "estimators_") or isinstance(model.estimators_, np.ndarray):  # a forest's trees
        return None
    return int(sum(e.coef_.size + e.intercept_.size for e in model.estimators_ if hasattr(e, "coef_")))


def fit_predict(bcfg: DictConfig, seed: int, train_texts: list[str], train_labels: np.ndarray,
                eval_texts: list[list[str]]) -> tuple[list[np.ndarray], int | None]:
    """Fit features and classifier on the training documents only; return probabilities per eval set and
    the classifier's coefficient count (`coefficients`)."""
    import warnings

    vectorizer = make_vectorizer(bcfg)
    X = fit_features(vectorizer, bcfg, train_texts)
    model = make_classifier(bcfg, seed)
    with warnings.catch_warnings():
        # a label without a positive in train gets a constant predictor; the split module already warned
        warnings.filterwarnings("ignore", message="Label .* is present in all training examples")
        labels = np.asarray(train_labels)
        # one label (a binary dataset): scikit-learn takes a class vector; an (n, 1) matrix would be read as a
        # binary target with a warning, and one-vs-rest would then return both classes' probabilities
        model.fit(X, labels[:, 0] if labels.shape[1] == 1 else labels)
    probs = [positive_probs(model, vectorizer.transform(texts), train_labels.shape[1]) for texts in eval_texts]
    return probs, coefficients(model)
