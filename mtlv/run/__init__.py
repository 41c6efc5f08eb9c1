"""The machinery behind `mtlv.train` and `mtlv.aggregate`: how a training run is carried out.

- `cell.py`: a study cell (corpus, identity, folder, grouping); `job.py`: one training job in steps;
  `layout.py`: the file names of a cell and a job folder; `record.py`: recording a result (files,
  MLflow, console summary).
- `prepare.py`: what the sweeper (hydra_plugins/mtlv_sweeper) does before launching a
  one-model-per-group cell; `inprocess.py`: such a cell's groups in one job; `aggregation.py`:
  joining its group jobs into one result.
- `checkpoint.py` (atomic checkpoints, pre-emption), `slurm.py` (the SLURM launcher's loop),
  `distributed.py` (DDP prediction gather), `faults.py` (fault injection for drills and tests).
"""
