"""A tiny random BERT (2 layers, hidden 32, 4 heads, FFN 37) against transformers' BertModel and
sentence-transformers (tests/golden/tiny.npz): proves the code follows config.json, not constants."""

from __future__ import annotations

import numpy as np
import pytest

import tiny_bert
import tinyminilm
from tinyminilm import model as M
from tinyminilm.config import read_config
from tinyminilm.weights import load_params

TOL = 1e-5


@pytest.fixture(scope="module")
def tiny_golden(tmp_path_factory):
    from conftest import GOLDEN

    with np.load(GOLDEN / "tiny.npz") as z:
        return dict(z)


def test_hidden_states_match_bert_model_with_random_padding(tmp_path, tiny_golden):
    folder = tiny_bert.make_folder(tmp_path / "bert", "pooling_mode_mean_tokens", True)
    config = read_config(folder)
    params = load_params(folder / "model.safetensors", config.bert)
    ids, types, mask = tiny_bert.random_batch()
    hs = np.stack(M.transformer(params, config, ids, mask, types))  # [1 + layers, B, L, H]
    ref = tiny_golden["bert_hidden_states"]
    assert hs.shape == ref.shape == (3, 4, 12, 32)
    real = mask.astype(bool)  # padded query rows are never read; compare the real tokens
    assert np.abs(hs[:, real] - ref[:, real]).max() <= TOL


@pytest.mark.parametrize("name,flag,normalize", tiny_bert.VARIANTS)
def test_sentence_embeddings_match_sentence_transformers(tmp_path, tiny_golden, name, flag, normalize):
    enc = tinyminilm.load(tiny_bert.make_folder(tmp_path / name, flag, normalize))
    assert enc.config.pooling_mode == {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls",
                                       "pooling_mode_max_tokens": "max",
                                       "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len"}[flag]
    assert enc.max_seq_length == tiny_bert.MAX_SEQ_LENGTH and enc.get_embedding_dimension() == 32
    off = tiny_golden[f"{name}_ids_offsets"]
    ref_ids = [tiny_golden[f"{name}_ids_flat"][off[i]:off[i + 1]].tolist() for i in range(len(off) - 1)]
    assert enc.token_ids(tiny_bert.TEXTS) == ref_ids
    assert max(len(x) for x in ref_ids) == tiny_bert.MAX_SEQ_LENGTH  # truncation happened
    emb = enc.encode(tiny_bert.TEXTS, batch_size=3)
    assert np.abs(emb - tiny_golden[f"{name}_embeddings"]).max() <= TOL
    norms = np.linalg.norm(emb, axis=1)
    assert np.allclose(norms, 1, atol=1e-6) == normalize
