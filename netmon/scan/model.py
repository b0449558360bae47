"""The learned second signal: a small linear model that scores the pupil's own short texts per category.

Search queries, chat and AI-chat prompts and form posts are scored for four risks, each on its own
(one-vs-rest logistic regression, then a per-category sigmoid calibration):

- ``suicide_self_harm``    suicide and self-harm (the library's ``suicide`` and ``self_harm``);
- ``bullying_hate``        bullying, hate speech and discrimination;
- ``sexual_exploitation``  grooming, child sexual exploitation, intimate image abuse and sextortion;
- ``violence_weapons``     threats, fights, attacks, weapons and violent extremism.

Features are hashed into one table of ``2**18`` rows: the words, the word pairs, the character 3-5-grams of
each word (so that a misspelling or an unseen inflection still shares most of its n-grams) and, for words in
the Empath lexicon (MIT; categories such as ``weapon``, ``violence``, ``sexual``, ``death``), the Empath
categories of the word, so that a weapon nobody wrote into the training data still carries the weight the
model learned for ``weapon``. Text goes through the library's own ``normalise`` first (leetspeak,
homoglyphs, repeats, spaced letters).

Scoring is pure numpy (no scikit-learn at run time): the shipped ``models/risk_model.npz`` holds the
weights, biases, calibration and the Empath word table. ``bench/train_model.py`` builds it and
``docs/model-card.md`` says from what data, with which figures and known biases.

    model = RiskModel.load()
    model.score("i want to end it tonight")      # {"suicide_self_harm": 0.97, ...}
    model.score_batch(texts)                     # numpy array, one row per text, columns = model.categories
"""

from __future__ import annotations

import json
import logging
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from netmon.scan.normalise import NORMALISER_VERSION, normalise

log = logging.getLogger(__name__)

DIM = 1 << 18
MAX_TOKENS = 128
CHAR_NGRAMS = (3, 4, 5)
MODEL_FILE = "risk_model.npz"
_CACHE_LIMIT = 200_000


def _h(feature: str) -> int:
    return zlib.crc32(feature.encode("utf-8")) & (DIM - 1)


def token_features(token: str, lexicon: dict[str, tuple[str, ...]]) -> list[str]:
    """The named features one word contributes (before hashing): the word, its char n-grams, Empath."""
    out = ["w " + token]
    padded = "<" + token + ">"
    for n in CHAR_NGRAMS:
        out.extend("c " + padded[i : i + n] for i in range(len(padded) - n + 1))
    cats = lexicon.get(token)
    if cats is None and len(token) > 3:
        for suffix in ("s", "ing", "ed", "es"):
            if token.endswith(suffix) and (cats := lexicon.get(token[: -len(suffix)])) is not None:
                break
    if cats:
        out.extend("e " + c for c in cats)
    return out


def text_features(norm: str, lexicon: dict[str, tuple[str, ...]]) -> list[str]:
    """Every named feature of a normalised text (the slow path behind ``explain`` and the trainer)."""
    tokens = norm.split()[:MAX_TOKENS]
    named: list[str] = []
    for token in tokens:
        named.extend(token_features(token, lexicon))
    named.extend("b " + a + " " + b for a, b in zip(tokens, tokens[1:], strict=False))
    return named


@dataclass(frozen=True)
class Featuriser:
    """Text -> hashed feature ids (a sorted, de-duplicated int array); token ids are cached."""

    lexicon: dict[str, tuple[str, ...]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cache", {})

    def _token_ids(self, token: str) -> frozenset[int]:
        cache: dict[str, frozenset[int]] = self._cache  # type: ignore[attr-defined]
        ids = cache.get(token)
        if ids is None:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            ids = frozenset(_h(f) for f in token_features(token, self.lexicon))
            cache[token] = ids
        return ids

    def ids(self, text: str) -> list[int]:
        tokens = normalise(text).split()[:MAX_TOKENS]
        found: set[int] = set()
        for token in tokens:
            found |= self._token_ids(token)
        for a, b in zip(tokens, tokens[1:], strict=False):
            found.add(_h("b " + a + " " + b))
        return sorted(found)


class RiskModel:
    """Calibrated per-category risk probabilities for short texts. Immutable once loaded."""

    def __init__(
        self,
        categories: Sequence[str],
        weights: np.ndarray,
        bias: np.ndarray,
        calibration: np.ndarray,
        lexicon: dict[str, tuple[str, ...]],
        meta: dict[str, object] | None = None,
    ) -> None:
        if weights.shape != (DIM, len(categories)):
            raise ValueError(f"weights must be ({DIM}, {len(categories)}), got {weights.shape}")
        self.categories: tuple[str, ...] = tuple(categories)
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.calibration = np.asarray(calibration, dtype=np.float32)
        self.meta: dict[str, object] = dict(meta or {})
        self.featuriser = Featuriser(lexicon)

    # --- loading -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None) -> RiskModel:
        """Load the model shipped in ``netmon/scan/models/`` (or the ``.npz`` file at ``path``)."""
        if path is None:
            ref = resources.files("netmon.scan").joinpath("models", MODEL_FILE)
            with resources.as_file(ref) as real:
                return cls._from_npz(Path(real))
        return cls._from_npz(Path(path))

    @classmethod
    def _from_npz(cls, path: Path) -> RiskModel:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: risk model file missing; rebuild it with bench/train_model.py")
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            categories = [str(c) for c in data["categories"]]
            words = [str(w) for w in data["lex_words"]]
            offsets = data["lex_offsets"]
            cat_ids = data["lex_cats"]
            cat_names = [str(c) for c in data["lex_names"]]
            lexicon = {
                w: tuple(cat_names[j] for j in cat_ids[offsets[i] : offsets[i + 1]])
                for i, w in enumerate(words)
            }
            model = cls(categories, data["weights"], data["bias"], data["calibration"], lexicon, meta)
        if meta.get("normaliser_version") != NORMALISER_VERSION:
            log.warning(
                "risk model %s was trained with normaliser %s, running %s: scores may drift; retrain",
                path.name,
                meta.get("normaliser_version"),
                NORMALISER_VERSION,
            )
        return model

    def save(self, path: str | Path) -> None:
        words = sorted(self.featuriser.lexicon)
        names = sorted({c for cats in self.featuriser.lexicon.values() for c in cats})
        index = {c: i for i, c in enumerate(names)}
        offsets = [0]
        cats: list[int] = []
        for w in words:
            cats.extend(index[c] for c in self.featuriser.lexicon[w])
            offsets.append(len(cats))
        meta = {**self.meta, "normaliser_version": NORMALISER_VERSION, "dim": DIM}
        np.savez_compressed(
            path,
            categories=np.array(self.categories),
            weights=self.weights.astype(np.float16),
            bias=self.bias,
            calibration=self.calibration,
            lex_words=np.array(words),
            lex_offsets=np.array(offsets, dtype=np.int32),
            lex_cats=np.array(cats, dtype=np.int16),
            lex_names=np.array(names),
            meta=np.array(json.dumps(meta, sort_keys=True)),
        )

    # --- scoring -------------------------------------------------------------------------------------
    def _raw(self, id_lists: Sequence[Sequence[int]]) -> np.ndarray:
        k = len(self.categories)
        out = np.tile(self.bias, (len(id_lists), 1))
        lengths = np.fromiter((len(ids) for ids in id_lists), dtype=np.int64, count=len(id_lists))
        nonempty = lengths > 0
        if nonempty.any():
            flat = np.fromiter((i for ids in id_lists for i in ids), dtype=np.int64, count=int(lengths.sum()))
            starts = np.concatenate(([0], np.cumsum(lengths[nonempty])[:-1]))
            sums = np.add.reduceat(self.weights[flat], starts, axis=0).reshape(-1, k)
            out[nonempty] += sums / np.sqrt(lengths[nonempty])[:, None]
        return out

    def _calibrated(self, raw: np.ndarray) -> np.ndarray:
        z = raw * self.calibration[:, 0] + self.calibration[:, 1]
        return 1.0 / (1.0 + np.exp(-z))

    def score_batch(self, texts: Iterable[str]) -> np.ndarray:
        """Probabilities, shape ``(len(texts), len(categories))``, columns in ``self.categories`` order."""
        ids = [self.featuriser.ids(t) for t in texts]
        return self._calibrated(self._raw(ids)).astype(np.float32)

    def score(self, text: str) -> dict[str, float]:
        row = self.score_batch([text])[0]
        return {c: round(float(p), 4) for c, p in zip(self.categories, row, strict=True)}

    def explain(self, text: str, category: str, top: int = 3) -> list[tuple[str, float]]:
        """The words or word pairs that pushed ``category`` up most (slow path: for explanations only)."""
        col = self.categories.index(category)
        ids = self.featuriser.ids(text)
        if not ids:
            return []
        scale = 1.0 / math.sqrt(len(ids))
        tokens = normalise(text).split()[:MAX_TOKENS]
        contrib: dict[str, float] = {}
        seen: set[int] = set()
        for token in tokens:
            total = 0.0
            for fid in {_h(f) for f in token_features(token, self.featuriser.lexicon)} - seen:
                total += float(self.weights[fid, col])
                seen.add(fid)
            contrib[token] = contrib.get(token, 0.0) + total * scale
        for a, b in zip(tokens, tokens[1:], strict=False):
            fid = _h("b " + a + " " + b)
            if fid not in seen:
                seen.add(fid)
                contrib[a + " " + b] = float(self.weights[fid, col]) * scale
        ranked = sorted(contrib.items(), key=lambda kv: kv[1], reverse=True)
        return [(name, round(w, 3)) for name, w in ranked[:top] if w > 0]
