"""Studies: from a dataset to a recommendation in one command (`python -m mtlv.study`, docs/study.md).

spec (the study config -> sweeps), plan (cells, jobs, reuse, what is finished), estimate (time from this
machine's earlier jobs or a probe), run (the sweeps through Hydra's launchers), progress (one line per event).
The report, with its recommendation, is mtlv.report's."""
