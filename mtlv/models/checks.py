"""A check of the model options that needs the encoder's own config (read without loading its weights):
the input length the model takes."""
from __future__ import annotations

from omegaconf import DictConfig

from mtlv.errors import ConfigError


def check_max_length(cfg: DictConfig) -> None:
    from mtlv.models.encoder import model_max_length

    wanted = int(cfg.model.max_length)
    allowed = model_max_length(cfg.model.name_or_path, cfg.model.module.random_init,
                               bool(cfg.model.get("trust_remote_code", False)))
    if not 8 <= wanted <= allowed:
        # named by the model option (model=tiny), not the tokenizer's path: tiny is a random BERT with MiniLM's
        # tokenizer, and "packaged:minilm accepts 8..128" read as if MiniLM itself took only 128 tokens. Not
        # clamped: a shorter input than asked (e.g. experiment=ohsumed_paper's 256) changes what is measured.
        source = (f"its random_init.max_position_embeddings={allowed}" if cfg.model.module.get("random_init")
                  else f"the position embeddings of {cfg.model.name_or_path}")
        raise ConfigError(f"model.max_length={wanted}: model={cfg.model.name} takes 8 to {allowed} tokens "
                          f"({source}); add model.max_length={min(max(wanted, 8), allowed)} to the command, or "
                          "choose a model that takes longer inputs")
