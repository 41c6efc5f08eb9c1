"""Lightning's MLflow logger, except that a tracking server which stops answering during training stops the
logging, not the training.

Lightning's logger raises from `log_metrics` when MLflow gives up on a request, and that ended a job hours
into its training. Here the first such failure is one warning naming the server; the job trains on without
logging, writes its files, and then reports that its result could not be logged (`job.train_job`), so that
`python -m mtlv.track` records it once the server is back. Any other MLflow error still raises.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from lightning.pytorch.loggers import MLFlowLogger as LightningMLFlowLogger

from mtlv import tracking

log = logging.getLogger(__name__)


class MLFlowLogger(LightningMLFlowLogger):
    gone: str | None = None  # why the server stopped answering; nothing is sent to it any more

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if tracking.is_server(self._tracking_uri or ""):
            tracking.bound_http_requests()  # MTLV's bounds on MLflow's retries, also for a logger made alone

    def _unless_gone(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if self.gone is not None:
            return
        try:
            call(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - MlflowException wrapping urllib3's error; others re-raised
            if not tracking.server_gone(self._tracking_uri, err):
                raise
            self.gone = str(err)
            log.warning("MLflow tracking server %s stopped answering during training; the job trains on without "
                        "logging to it and keeps its files", self._tracking_uri)

    def log_hyperparams(self, params) -> None:
        self._unless_gone(super().log_hyperparams, params)

    def log_metrics(self, metrics, step=None) -> None:
        self._unless_gone(super().log_metrics, metrics, step)

    def after_save_checkpoint(self, checkpoint_callback) -> None:
        self._unless_gone(super().after_save_checkpoint, checkpoint_callback)

    def finalize(self, status: str = "success") -> None:
        self._unless_gone(super().finalize, status)
