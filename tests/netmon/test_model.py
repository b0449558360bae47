"""The shipped risk model: it loads from the package, ranks clear cases right, and is deterministic.

Thresholds here are loose on purpose (clear positives >= 0.5 in their category, clear benign below 0.3,
the lowest operating point the card recommends, in every category): the measured precision and recall
live in docs/model-card.md, not in a test. Speed is measured by bench/bench_model.py, never timed here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from netmon.scan.model import DIM, RiskModel

CATEGORIES = ("suicide_self_harm", "bullying_hate", "sexual_exploitation", "violence_weapons")


@pytest.fixture(scope="module")
def model() -> RiskModel:
    return RiskModel.load()


def test_loads_the_shipped_file(model: RiskModel) -> None:
    assert model.categories == CATEGORIES
    assert model.weights.shape == (DIM, len(CATEGORIES))
    assert model.featuriser.lexicon, "the Empath word table ships inside the model file"


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("i hate my life so much i want to disappear", "suicide_self_harm"),
        ("best blades for cutting deep", "suicide_self_harm"),
        ("i will stab you", "violence_weapons"),
        ("send nudes", "sexual_exploitation"),
        ("you are a fat ugly loser", "bullying_hate"),
    ],
)
def test_clear_positives_score_high_in_their_category(model: RiskModel, text: str, category: str) -> None:
    scores = model.score(text)
    assert scores[category] >= 0.5, scores
    assert max(scores, key=scores.__getitem__) == category


@pytest.mark.parametrize(
    "text",
    [
        "what is the capital of france",
        "how do i revise for my maths gcse",
        "chicken curry recipe easy",
        "suicide prevention training",
        "",
    ],
)
def test_clear_benign_scores_low(model: RiskModel, text: str) -> None:
    # "how do i ..." questions sit near 0.25 for suicide_self_harm: first-person wording is a known bias.
    assert max(model.score(text).values()) < 0.3


def test_batch_equals_single_and_is_deterministic(model: RiskModel) -> None:
    texts = ["i will stab you", "", "what is the capital of france", "send nudes"] * 3
    first = model.score_batch(texts)
    again = model.score_batch(list(reversed(texts)))[::-1]
    assert first.shape == (len(texts), len(CATEGORIES))
    np.testing.assert_array_equal(first, again)
    for text, row in zip(texts, first, strict=True):
        single = model.score(text)
        assert [single[c] for c in CATEGORIES] == pytest.approx(row.tolist(), abs=1e-4)


def test_fresh_model_scores_the_same_as_a_cached_one(model: RiskModel) -> None:
    other = RiskModel.load()
    text = "he wants me to meet him at his flat and not tell anyone"
    model.score(text)  # fills the token cache of the shared fixture
    assert other.score(text) == model.score(text)


def test_explain_names_the_words(model: RiskModel) -> None:
    words = [w for w, _ in model.explain("i will stab you", "violence_weapons")]
    assert "stab" in words


def test_save_and_load_round_trip(model: RiskModel, tmp_path: Path) -> None:
    path = tmp_path / "copy.npz"
    model.save(path)
    copy = RiskModel.load(path)
    texts = ["best blades for cutting deep", "anti bullying week poster ideas"]
    np.testing.assert_allclose(copy.score_batch(texts), model.score_batch(texts), atol=1e-3)
    assert copy.splits == model.splits and copy.meta["alone_alert"] == model.meta["alone_alert"]
    assert [copy.refine(t, "suicide_self_harm") for t in texts] == [
        model.refine(t, "suicide_self_harm") for t in texts
    ]


@pytest.mark.parametrize(
    ("text", "family", "category"),
    [
        ("i cut my arm again last night and hid it under my sleeve", "suicide_self_harm", "self_harm"),
        ("i dont want to wake up tomorrow, everyone would be better off", "suicide_self_harm", "suicide"),
        ("where can i buy a zombie knife without id", "violence_weapons", "weapons"),
        ("me and the mandem are gonna jump him after school", "violence_weapons", "violence"),
        ("muslims are all terrorists and should be sent back", "bullying_hate", "hate_speech"),
        ("ur so ugly no one in our year can stand u", "bullying_hate", "bullying"),
    ],
)
def test_a_family_is_split_into_the_library_category(
    model: RiskModel, text: str, family: str, category: str
) -> None:
    assert model.refine(text, family) == category


def test_model_alone_thresholds_travel_in_the_file(model: RiskModel) -> None:
    assert 0.0 < float(str(model.meta["alone_review"])) <= float(str(model.meta["alone_alert"])) < 1.0
    assert "look-alikes" in str(model.meta["alone_from"])


def test_missing_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train_model.py"):
        RiskModel.load(tmp_path / "absent.npz")
