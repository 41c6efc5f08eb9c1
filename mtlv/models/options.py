"""The choices of the module's options (`model.module.*`), declared once: the code that implements each
(`heads.pool`, `MultiTaskModule`) reads its list here, and so does the option registry (mtlv/options.py). This file
imports nothing, so a bad value is one error line before torch loads."""

POOLINGS = ("cls", "pooler", "mean")             # heads.pool
SCHEDULES = ("constant", "linear")               # MultiTaskModule.configure_optimizers
LOSS_REDUCTIONS = ("sum", "mean", "weighted")    # MultiTaskModule: weighting.from_reduction
POS_WEIGHTS = ("none", "sqrt", "balanced")  # MultiTaskModule.positive_weights: weight of a positive in BCE
