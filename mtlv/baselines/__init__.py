"""The machinery behind `mtlv.baseline`: `classical.py` (bag-of-words / TF-IDF features with logistic
regression or a random forest) and `job.py` (one baseline run, recorded like a training job)."""
