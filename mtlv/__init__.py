"""MTLV: which tasks (labels) should be learned together? Multi-task learning for
multi-label text classification with BERT-family encoders."""

__version__ = "0.1.0"
