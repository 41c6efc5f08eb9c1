"""Self-contained trained models: safetensors weights + encoder config + tokenizer + metadata.
Loading never unpickles anything (no torch.load of arbitrary objects)."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoTokenizer

from mtlv.io import atomic_dir, honour_umask, read_json, write_json
from mtlv.models.heads import GroupedHeads, pool

META = "mtlv_model.json"  # what the export is: labels, groups, thresholds, pooling, encoder


def export_model(module, tokenizer, out_dir: str | Path, meta: dict) -> Path:
    out = Path(out_dir)
    # Encoder and heads only: training-time state (e.g. learned loss weights) is not part of the model.
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()
             if k.startswith(("encoder.", "heads."))}
    with atomic_dir(out) as tmp:  # the whole folder appears at once: never a partial export
        save_file(state, str(tmp / "model.safetensors"))
        honour_umask(tmp / "model.safetensors")  # safetensors writes it private (0600)
        module.encoder.config.to_json_file(str(tmp / "encoder_config.json"))
        tokenizer.save_pretrained(str(tmp / "tokenizer"))
        write_json(tmp / META, meta)
    return out


class ExportedModel(torch.nn.Module):
    """Encoder + grouped heads rebuilt from an export folder (no network, no pickle)."""

    def __init__(self, folder: str | Path) -> None:
        super().__init__()
        folder = Path(folder)
        self.meta = read_json(folder / META)
        config = AutoConfig.from_pretrained(str(folder / "encoder_config.json"))
        self.encoder = AutoModel.from_config(config)
        self.heads = GroupedHeads(config.hidden_size, self.meta["groups"], self.meta.get("dropout", 0.1),
                                   hidden=self.meta.get("head_hidden"))
        self.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
        self.eval()

    @torch.no_grad()
    def predict_proba(self, texts: list[str], batch_size: int = 32) -> torch.Tensor:
        out = []
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer(texts[start:start + batch_size], truncation=True, padding=True,
                                 max_length=self.meta["max_length"], return_tensors="pt")
            hidden = self.encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            out.append(torch.sigmoid(self.heads(pool(hidden, enc["attention_mask"], self.meta["pooling"]))))
        return torch.cat(out) if out else torch.zeros((0, len(self.meta["label_names"])))

