"""Each loss weighting's combined loss and gradient on examples worked out by hand."""
from __future__ import annotations

import math

import pytest
import torch
from hydra.utils import instantiate

from mtlv.config import compose
from mtlv.errors import ConfigError
from mtlv.weighting import LabelMean, PCGrad, Static, Uncertainty, from_reduction


def test_sum_mean_static():
    losses = torch.tensor([1.0, 2.0, 3.0])
    assert from_reduction("sum", None, 3)(losses).item() == pytest.approx(6.0)
    assert from_reduction("mean", None, 3)(losses).item() == pytest.approx(2.0)
    assert from_reduction("weighted", [1.0, 2.0, 0.5], 3)(losses).item() == pytest.approx(1 + 4 + 1.5)
    with pytest.raises(ConfigError, match="one weight per head"):
        Static(3, weights=[1.0, 2.0])


def test_uncertainty_loss_and_gradient_by_hand():
    weighting = Uncertainty(2)
    with torch.no_grad():
        weighting.log_vars.copy_(torch.tensor([0.0, math.log(2.0)]))
    losses = torch.tensor([1.0, 4.0], requires_grad=True)
    loss = weighting(losses)
    # exp(-0) * 1 + 0  +  exp(-ln 2) * 4 + ln 2 = 1 + 2 + 0.6931
    assert loss.item() == pytest.approx(3.0 + math.log(2.0))
    loss.backward()
    assert weighting.log_vars.grad.tolist() == pytest.approx([0.0, -1.0])  # 1 - exp(-s) L
    assert losses.grad.tolist() == pytest.approx([1.0, 0.5])               # exp(-s)


def _features_and_losses(a, b):
    z = torch.tensor([0.3, -0.2], requires_grad=True)
    losses = torch.stack([torch.tensor(a) @ z, torch.tensor(b) @ z])  # gradients on z: a and b
    return z, losses


def test_pcgrad_projects_conflicting_gradients():
    z, losses = _features_and_losses([1.0, 0.0], [-1.0, 1.0])  # a.b = -1 < 0: conflict
    PCGrad(2)(losses, z).backward()
    # a - (a.b/|b|^2) b = [0.5, 0.5];  b - (a.b/|a|^2) a = [0, 1];  sum = [0.5, 1.5]
    assert z.grad.tolist() == pytest.approx([0.5, 1.5])


def test_pcgrad_leaves_agreeing_gradients_alone():
    z, losses = _features_and_losses([1.0, 0.0], [1.0, 1.0])  # a.b = 1 > 0
    weighting = PCGrad(2)
    weighting(losses, z).backward()
    assert z.grad.tolist() == pytest.approx([2.0, 1.0]) and weighting.last_weights.tolist() == pytest.approx([1, 1])


def test_weightings_come_from_config_and_legacy_keys_still_work():
    groups, names = [[0, 2], [1]], list("abc")
    cfg = compose(["model=tiny", "weighting=uncertainty"])
    module = instantiate(cfg.model.module, groups=groups, label_names=names, _convert_="all")
    assert type(module.weighting).__name__ == "Uncertainty"
    assert "weighting.log_vars" in module.state_dict()  # trained and checkpointed with the model
    optimizer = module.configure_optimizers()
    assert any(p is module.weighting.log_vars for g in optimizer.param_groups for p in g["params"])
    legacy = compose(["model=tiny", "model.module.loss_reduction=weighted", "model.module.head_weights=[2.0,0.5]"])
    module = instantiate(legacy.model.module, groups=groups, label_names=names, _convert_="all")
    assert module.combine(torch.tensor([1.0, 4.0])).item() == pytest.approx(4.0)
    static = compose(["model=tiny", "weighting=static", "weighting.weights=[3.0,1.0]"])
    module = instantiate(static.model.module, groups=groups, label_names=names, _convert_="all")
    assert module.combine(torch.tensor([1.0, 4.0])).item() == pytest.approx(7.0)


def test_per_head_lr_and_mlp_heads():
    cfg = compose(["model=tiny", "model.module.head_lrs=[0.01,0.02]", "model.module.head_hidden=16"])
    module = instantiate(cfg.model.module, groups=[[0, 2], [1]], label_names=list("abc"), _convert_="all")
    head_lrs = [g["lr"] for g in module.configure_optimizers().param_groups if g["params"]][-2:]
    assert head_lrs == [0.01, 0.02]
    layers = [type(m).__name__ for m in module.heads.heads[0]]
    assert layers == ["Dropout", "Linear", "GELU", "Dropout", "Linear"]
    assert module.heads.heads[0][1].out_features == 16 and module.heads.heads[1][-1].out_features == 1
    with pytest.raises(Exception, match="one learning rate per head"):  # ConfigError inside Hydra's wrapper
        instantiate(compose(["model=tiny", "model.module.head_lrs=[0.1]"]).model.module, groups=[[0], [1]],
                    label_names=list("ab"), _convert_="all")


def test_export_keeps_mlp_heads_and_drops_training_only_state(tmp_path):
    from mtlv.models.encoder import load_tokenizer
    from mtlv.models.export import ExportedModel, export_model

    cfg = compose(["model=tiny", "weighting=uncertainty", "model.module.head_hidden=8"])
    module = instantiate(cfg.model.module, groups=[[0, 2], [1]], label_names=list("abc"), _convert_="all").eval()
    export_model(module, load_tokenizer("packaged:minilm"), tmp_path / "export",
                 {"label_names": list("abc"), "groups": [[0, 2], [1]], "pooling": "cls", "max_length": 32,
                  "dropout": 0.1, "head_hidden": 8, "threshold": 0.5, "encoder": "packaged:minilm"})
    loaded = ExportedModel(tmp_path / "export")  # strict load: no weighting.log_vars in the file
    texts = ["heart size is normal", "small left effusion"]
    enc = loaded.tokenizer(texts, truncation=True, padding=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        expected = torch.sigmoid(module(enc["input_ids"], enc["attention_mask"]))
    torch.testing.assert_close(loaded.predict_proba(texts), expected)


def test_labelmean_weighs_heads_by_their_labels_by_hand():
    # heads of 3 and 1 labels with mean losses 1 and 4: (3 * 1 + 1 * 4) / 4 labels
    assert LabelMean(2, head_sizes=[3, 1])(torch.tensor([1.0, 4.0])).item() == pytest.approx(1.75)
    with pytest.raises(ConfigError, match="number of labels of each head"):
        LabelMean(2)


def test_labelmean_makes_the_gmhl_loss_the_mtl_loss():
    """GMHL with labelmean, on non-contiguous groups of unequal size, trains on the mean binary cross-entropy
    over all labels: what MTL's one head computes (worked out with torch's BCE on the whole label matrix)."""
    groups, names = [[3, 0, 4], [1], [2]], list("abcde")
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0, -2.0], [-0.5, 1.5, -3.0, 0.0, 1.0]])
    labels = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0, 1.0]])
    mtl_loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels).item()
    losses = {}
    for weighting in ("labelmean", "sum"):
        module = instantiate(compose(["model=tiny", f"weighting={weighting}"]).model.module, groups=groups,
                             label_names=names, _convert_="all")
        losses[weighting] = module.combine(module.head_losses(logits, labels)).item()
    assert losses["labelmean"] == pytest.approx(mtl_loss)
    assert losses["sum"] != pytest.approx(mtl_loss)  # the reference's sum weighs the one-label heads 3 times
