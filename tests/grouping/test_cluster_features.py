from __future__ import annotations

import numpy as np
import pytest

import mtlv.models.encoder as enc
from mtlv.grouping.features import embed_texts, task_features, task_texts
from mtlv.errors import ConfigError

MINILM = "packaged:minilm"
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
TEXTS = ["cardiomegaly", "enlarged heart", "spine degenerative changes", "cardiomegaly"]


def _forbid_loading(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("the encoder was loaded although every text was cached")

    monkeypatch.setattr(enc, "load_encoder", boom)
    monkeypatch.setattr(enc, "load_tokenizer", boom)


def _cos(a, b) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def minilm_vectors() -> np.ndarray:
    return embed_texts(TEXTS, MINILM)


def test_task_texts_names_and_descriptions():
    labels = ["a", "b"]
    assert task_texts(labels, {}, "name") == ["a", "b"]
    assert task_texts(labels, {"a": " first ", "b": "second", "c": "unused"}, "description") == ["first", "second"]


def test_task_texts_lists_every_missing_description():
    labels = ["Cardiomegaly", "Effusion", "Nodule", "Mass"]
    with pytest.raises(ConfigError) as err:
        task_texts(labels, {"Effusion": "fluid", "Mass": "   "}, "description")
    msg = str(err.value)
    for missing in ("Cardiomegaly", "Nodule", "Mass"):
        assert f"'{missing}'" in msg
    assert "'Effusion'" not in msg
    assert "3 of 4" in msg
    assert "dataset.source.descriptions_path=" in msg and "clustering.feature=name" in msg


def test_task_texts_unknown_feature():
    with pytest.raises(ConfigError, match=r"clustering\.feature.*'name', 'description'"):
        task_texts(["a"], {}, "names")


def test_minilm_shape_dtype_and_identical_texts(minilm_vectors):
    assert minilm_vectors.shape == (4, 384) and minilm_vectors.dtype == np.float32
    assert np.isfinite(minilm_vectors).all()
    assert np.array_equal(minilm_vectors[0], minilm_vectors[3])
    assert not np.allclose(minilm_vectors[0], minilm_vectors[1])


def test_minilm_semantics(minilm_vectors):
    heart, enlarged, spine = minilm_vectors[:3]
    assert _cos(heart, enlarged) > _cos(heart, spine) + 0.05


def test_padding_is_masked_out(minilm_vectors):
    # Batched next to a long text, "cardiomegaly" is padded; a masked mean must not notice.
    long_text = "small bilateral pleural effusions with basilar atelectasis and a tortuous calcified aorta"
    batched = embed_texts(["cardiomegaly", long_text], MINILM, batch_size=2)
    np.testing.assert_allclose(batched[0], minilm_vectors[0], atol=1e-5)


def test_truncation_to_max_length():
    text = "heart " * 100
    short = embed_texts([text, "heart " * 10], MINILM, max_length=8)
    # with 8 tokens both texts are [CLS] + 6 x heart + [SEP]
    np.testing.assert_allclose(short[0], short[1], atol=1e-5)


def test_cache_hit_skips_the_encoder(tmp_path, monkeypatch, minilm_vectors):
    first = embed_texts(TEXTS, MINILM, cache_dir=str(tmp_path))
    np.testing.assert_allclose(first, minilm_vectors, atol=1e-5)
    files = sorted((tmp_path / "embeddings").glob("*.npz"))
    assert len(files) == 3  # one per distinct text
    assert not list((tmp_path / "embeddings").glob("*.tmp"))
    _forbid_loading(monkeypatch)
    again = embed_texts(TEXTS, MINILM, cache_dir=str(tmp_path))
    assert np.array_equal(again, first)
    # another max_length is another key, so it needs the encoder
    with pytest.raises(AssertionError, match="encoder was loaded"):
        embed_texts(TEXTS, MINILM, max_length=16, cache_dir=str(tmp_path))


def test_partial_cache_embeds_only_new_texts(tmp_path, monkeypatch):
    embed_texts(["alpha", "beta"], MINILM, cache_dir=str(tmp_path), random_init=TINY)
    seen = []
    real = enc.load_tokenizer

    class Spy:
        def __init__(self, tok):
            self.tok = tok

        def __call__(self, texts, **kwargs):
            seen.extend(texts)
            return self.tok(texts, **kwargs)

        def __len__(self):
            return len(self.tok)

    monkeypatch.setattr(enc, "load_tokenizer", lambda *a, **k: Spy(real(*a, **k)))
    out = embed_texts(["beta", "gamma", "alpha"], MINILM, cache_dir=str(tmp_path), random_init=TINY)
    assert seen == ["gamma"]
    assert out.shape == (3, 32)


def test_corrupt_cache_entry_is_recomputed(tmp_path):
    first = embed_texts(["alpha"], MINILM, cache_dir=str(tmp_path), random_init=TINY)
    (entry,) = (tmp_path / "embeddings").glob("*.npz")
    entry.write_bytes(b"not a zip")
    again = embed_texts(["alpha"], MINILM, cache_dir=str(tmp_path), random_init=TINY)
    np.testing.assert_allclose(again, first, atol=1e-6)


def test_tiny_random_model_is_deterministic_and_differs_from_pretrained(minilm_vectors):
    a = embed_texts(TEXTS, MINILM, random_init=TINY)
    b = embed_texts(TEXTS, MINILM, random_init=TINY)
    assert a.shape == (4, 32) and a.dtype == np.float32 and np.isfinite(a).all()
    assert np.array_equal(a, b)
    assert not np.allclose(a[0], a[2])


def test_task_features_minmax_and_raw():
    labels = ["Cardiomegaly", "Effusion", "Pneumothorax"]
    descriptions = {"Cardiomegaly": "enlarged heart", "Effusion": "fluid around the lung",
                    "Pneumothorax": "air in the pleural space"}
    raw = task_features(labels, descriptions, "description", MINILM, scale=None, random_init=TINY)
    np.testing.assert_allclose(raw, embed_texts(list(descriptions.values()), MINILM, random_init=TINY), atol=1e-6)
    scaled = task_features(labels, descriptions, "description", MINILM, random_init=TINY)
    assert scaled.shape == (3, 32) and scaled.dtype == np.float32
    np.testing.assert_allclose(scaled.min(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(scaled.max(axis=0), 1.0, atol=1e-6)
    expected = (raw - raw.min(0)) / (raw.max(0) - raw.min(0))
    np.testing.assert_allclose(scaled, expected, atol=1e-5)
    with pytest.raises(ConfigError, match="clustering.scale"):
        task_features(labels, descriptions, "name", MINILM, scale="zscore", random_init=TINY)


def test_empty_and_bad_arguments():
    assert embed_texts([], MINILM).shape == (0, 0)
    with pytest.raises(ConfigError, match="batch_size"):
        embed_texts(["a"], MINILM, batch_size=0)
