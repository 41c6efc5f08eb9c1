"""Predict labels of new texts with a trained MTL/GMHL model or a whole STL/GMTL set of group models.

`python -m mtlv.predict run=<run id | job or cell folder> input=<file | -> [output=preds.csv]`
Thresholds are those chosen on validation when the models were evaluated (mtlv/models/inference.py).
"""
from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

import mtlv.config  # noqa: F401
from mtlv.config import CONF_DIR
from mtlv.errors import entry_point


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="predict")
@entry_point
def main(cfg: DictConfig) -> None:
    from mtlv.io import check_writable
    from mtlv.options import PREDICT_OPTIONS, check_values
    from mtlv.models.inference import predict, read_texts, resolve_folder, write_predictions

    check_values(cfg, PREDICT_OPTIONS)
    if cfg.output is not None:
        check_writable(Path(str(cfg.output)).parent, "output", "set output=... to a file in a writable folder "
                       "(or leave it out to print to stdout)")
    folder = resolve_folder(str(cfg.run), cfg.tracking_uri)
    ids, texts = read_texts(str(cfg.input), cfg.text_column, cfg.id_column)
    write_predictions(predict(folder, ids, texts, int(cfg.batch_size)),
                      None if cfg.output is None else str(cfg.output))


if __name__ == "__main__":
    main()
