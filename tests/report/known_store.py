"""The numbers the test MLflow store (conftest.py) is built from, importable by the tests that check them."""
import numpy as np

FOLDS, SEEDS = (0, 1, 2), (42, 43)
SAMPLES = [(f, s) for s in SEEDS for f in FOLDS]          # 6 (fold, seed) samples for bert
MTL = np.array([0.70, 0.72, 0.74, 0.71, 0.73, 0.75])
GMTL_LABEL_DIFF = np.array([0.05, 0.06, 0.04, 0.07, 0.03, 0.08])    # best on test, worse on validation
GMTL_DESC_DIFF = np.array([0.01, -0.02, 0.03, 0.02, 0.04, 0.05])    # best on validation
BASELINE = 0.74
LABELS = ["Cardiomegaly", "lung/hypoinflation"]
