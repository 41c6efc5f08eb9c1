"""Report of the studies in an MLflow store, for any dataset: per section a recommendation written from the
numbers, the tables (Markdown, LaTeX, CSV; beside the reference study's published numbers where it has them),
figures, and one page (report.md, and report.html with the figures embedded). Entry point:
`python -m mtlv.report [tracking_uri=...] [out=...]`."""
