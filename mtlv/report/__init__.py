"""Report of a study: the reference study's tables (Markdown, LaTeX, CSV), figures and a summary page,
rendered from the MLflow store. Entry point: `python -m mtlv.report [tracking_uri=...] [out=...]`."""
