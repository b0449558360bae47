"""netmon.scan.embed: the shipped static word embeddings the risk model reads meaning from."""

from __future__ import annotations

import numpy as np
import pytest

from netmon.scan.embed import Embedder, pack, quantise, unpack
from netmon.scan.model import RiskModel


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    model = RiskModel.load()
    assert model.embedder is not None, "the shipped model carries its embeddings"
    return model.embedder


def _v(embedder: Embedder, text: str) -> np.ndarray:
    return embedder.embed(text.split())


def test_words_split_into_the_vectors_own_tokens(embedder: Embedder) -> None:
    names = lambda w: [embedder.vocab[i] for i in embedder.tokens(w)]  # noqa: E731
    assert names("hello") == ["\u2581hello"]
    assert "".join(names("unsubscribing")).replace("\u2581", "") == "unsubscribing"
    # a character the tokens lack falls back to its UTF-8 bytes
    assert names("\U0001f62d")[1:] == ["<0xF0>", "<0x9F>", "<0x98>", "<0xAD>"]


def test_words_that_mean_alike_are_near(embedder: Embedder) -> None:
    assert (
        _v(embedder, "pills") @ _v(embedder, "tablets")
        > _v(embedder, "pills") @ _v(embedder, "football") + 0.2
    )
    assert (
        _v(embedder, "knife") @ _v(embedder, "blade") > _v(embedder, "knife") @ _v(embedder, "pencil") + 0.2
    )


def test_a_text_is_a_unit_vector_and_nothing_is_zero(embedder: Embedder) -> None:
    rows = embedder.embed_batch([["i", "want", "to", "go", "home"], []])
    assert rows.shape == (2, embedder.dim)
    assert abs(float(np.linalg.norm(rows[0])) - 1.0) < 1e-4 and not rows[1].any()


def test_packing_and_quantising_round_trip() -> None:
    words = ["\u2581a", "b c", "<0x0A>", "\u0627\u0644"]
    assert unpack(pack(words)) == words
    with pytest.raises(ValueError):
        pack(["two\nlines"])
    table = np.array([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0]], dtype=np.float32)
    q, scales = quantise(table)
    assert q.dtype == np.int8 and np.allclose(q * scales[:, None], table, atol=0.01)


def test_a_table_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="does not match"):
        Embedder(["a", "b"], [], np.zeros((3, 4), dtype=np.int8), np.ones(3, dtype=np.float32))


def test_pooled_is_the_mean_then_the_standout_word(embedder: Embedder) -> None:
    words = "can you tell me how many tablets are in a box of the normal ones".split()
    pooled = embedder.pooled(words)
    d = embedder.dim
    assert pooled.shape == (2 * d,)
    assert np.allclose(pooled[:d], embedder.embed(words), atol=1e-6)
    # the maximum half holds each word's strongest dimensions, however many ordinary words surround it
    word = embedder.embed(["tablets"])
    assert (pooled[d:] >= 0.5 * word - 1e-6).all()
    assert not embedder.pooled([]).any()
    assert embedder.pooled_batch([words, []]).shape == (2, 2 * d)
