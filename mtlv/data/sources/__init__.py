"""Dataset sources: each returns a `Corpus` (see mtlv.data.corpus)."""
