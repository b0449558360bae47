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

Each text also gets a dense part: the mean of its static word embeddings (:mod:`netmon.scan.embed`,
WordLlama's token vectors), weighted by one column per category, so that wording nobody wrote into the
training data still scores by what it means ("tablets" is near "pills"; "the roof of the car park" is
near "a bridge").

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
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from netmon.scan.embed import Embedder, pack, unpack
from netmon.scan.normalise import NORMALISER_VERSION, normalise

log = logging.getLogger(__name__)

DIM = 1 << 18
MAX_TOKENS = 128
CHAR_NGRAMS = (3, 4, 5)
MODEL_FILE = "risk_model.npz"
_CACHE_LIMIT = 200_000


def shipped_or_none() -> RiskModel | None:
    """The shipped model as the scan loads it: None when ``NETMON_RISK_MODEL`` is off, or (logged) when
    it cannot load, so that scanning goes on with the library and grammar alone."""
    if os.environ.get("NETMON_RISK_MODEL", "on").lower() in ("off", "0", "no", "false"):
        return None
    try:
        return RiskModel.load()
    except (OSError, ValueError, KeyError) as exc:
        log.error("risk model not loaded (%s): scanning with the library alone", type(exc).__name__)
        return None


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
        return self.token_ids(normalise(text).split()[:MAX_TOKENS])

    def token_ids(self, tokens: Sequence[str]) -> list[int]:
        """The feature ids of a text already normalised and split into its first ``MAX_TOKENS`` words."""
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
        embedder: Embedder | None = None,
        dense: np.ndarray | None = None,
    ) -> None:
        if weights.shape != (DIM, len(categories)):
            raise ValueError(f"weights must be ({DIM}, {len(categories)}), got {weights.shape}")
        self.categories: tuple[str, ...] = tuple(categories)
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.calibration = np.asarray(calibration, dtype=np.float32)
        self.meta: dict[str, object] = dict(meta or {})
        self.featuriser = Featuriser(lexicon)
        if (embedder is None) != (dense is None):
            raise ValueError("an embedder needs its dense weights, and dense weights their embedder")
        # "mean": the unit-length mean embedding; "mean+max": that and the word vectors' maximum
        self.pooling = str(self.meta.get("pooling", "mean"))
        if self.pooling not in ("mean", "mean+max"):
            raise ValueError(f"unknown pooling {self.pooling!r} in the model file")
        width = 0 if embedder is None else embedder.dim * (2 if self.pooling == "mean+max" else 1)
        if embedder is not None and dense is not None and dense.shape != (width, len(categories)):
            raise ValueError(f"dense weights must be ({width}, {len(categories)}), got {dense.shape}")
        self.embedder = embedder
        self.dense = None if dense is None else np.ascontiguousarray(dense, dtype=np.float32)
        self.splits: dict[str, tuple[int, str, str]] = {}
        self.split_weights = np.zeros((DIM, 0), dtype=np.float32)
        self.split_bias = np.zeros(0, dtype=np.float32)
        self.split_dense: np.ndarray | None = None

    def with_splits(
        self,
        names: Sequence[tuple[str, str, str]],
        weights: np.ndarray,
        bias: np.ndarray,
        dense: np.ndarray | None,
    ) -> RiskModel:
        """Attach the per-family splits: ``names`` (model category, first, second library category); a
        positive score means the second."""
        if weights.shape != (DIM, len(names)) or bias.shape != (len(names),):
            raise ValueError(f"split weights must be ({DIM}, {len(names)})")
        if (dense is None) != (self.embedder is None):
            raise ValueError("split dense weights go with the embedder")
        self.splits = {c: (j, first, second) for j, (c, first, second) in enumerate(names)}
        self.split_weights = np.ascontiguousarray(weights, dtype=np.float32)
        self.split_bias = np.asarray(bias, dtype=np.float32)
        self.split_dense = None if dense is None else np.ascontiguousarray(dense, dtype=np.float32)
        return self

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
            embedder, dense = None, None
            if "emb_table" in data.files:
                embedder = Embedder(
                    unpack(data["emb_vocab"]),
                    unpack(data["emb_merges"]),
                    data["emb_table"],
                    data["emb_scales"],
                )
                dense = data["dense"].astype(np.float32)
            model = cls(
                categories, data["weights"], data["bias"], data["calibration"], lexicon, meta, embedder, dense
            )
            if "split_weights" in data.files:
                names = [tuple(n.split(" ")) for n in unpack(data["split_names"])]
                model.with_splits(
                    names,  # type: ignore[arg-type]
                    data["split_weights"],
                    data["split_bias"],
                    data["split_dense"].astype(np.float32) if "split_dense" in data.files else None,
                )
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
        extra: dict[str, Any] = {}
        if self.embedder is not None and self.dense is not None:
            e = self.embedder
            extra = {
                "emb_vocab": pack(e.vocab),
                "emb_merges": pack(e.merges),
                "emb_table": e.table,
                "emb_scales": e.scales,
                "dense": self.dense.astype(np.float16),
            }
        if self.splits:
            ordered = sorted(self.splits.items(), key=lambda kv: kv[1][0])
            extra["split_names"] = pack([f"{c} {first} {second}" for c, (_, first, second) in ordered])
            extra["split_weights"] = self.split_weights.astype(np.float16)
            extra["split_bias"] = self.split_bias
            if self.split_dense is not None:
                extra["split_dense"] = self.split_dense.astype(np.float16)
        np.savez_compressed(
            path,
            **extra,
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
    def _raw(
        self,
        id_lists: Sequence[Sequence[int]],
        weights: np.ndarray | None = None,
        bias: np.ndarray | None = None,
    ) -> np.ndarray:
        weights = self.weights if weights is None else weights
        bias = self.bias if bias is None else bias
        k = weights.shape[1]
        out = np.tile(bias, (len(id_lists), 1))
        lengths = np.fromiter((len(ids) for ids in id_lists), dtype=np.int64, count=len(id_lists))
        nonempty = lengths > 0
        if nonempty.any():
            flat = np.fromiter((i for ids in id_lists for i in ids), dtype=np.int64, count=int(lengths.sum()))
            starts = np.concatenate(([0], np.cumsum(lengths[nonempty])[:-1]))
            sums = np.add.reduceat(weights[flat], starts, axis=0).reshape(-1, k)
            out[nonempty] += sums / np.sqrt(lengths[nonempty])[:, None]
        return out

    def _calibrated(self, raw: np.ndarray) -> np.ndarray:
        z = raw * self.calibration[:, 0] + self.calibration[:, 1]
        return 1.0 / (1.0 + np.exp(-z))

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """The dense part's input: each text's pooled embedding (``pooling`` in the model file; no
        columns without an embedder)."""
        return self._vectors([normalise(t).split()[:MAX_TOKENS] for t in texts])

    def _vectors(self, words: Sequence[Sequence[str]]) -> np.ndarray:
        if self.embedder is None:
            return np.zeros((len(words), 0), dtype=np.float32)
        if self.pooling == "mean+max":
            return self.embedder.pooled_batch(words)
        return self.embedder.embed_batch(words)

    def score_batch(self, texts: Iterable[str]) -> np.ndarray:
        """Probabilities, shape ``(len(texts), len(categories))``, columns in ``self.categories`` order."""
        words = [normalise(t).split()[:MAX_TOKENS] for t in texts]  # once, for both parts
        raw = self._raw([self.featuriser.token_ids(w) for w in words])
        if self.dense is not None:
            raw += self._vectors(words) @ self.dense
        return self._calibrated(raw).astype(np.float32)

    def refine(self, text: str, category: str) -> str | None:
        """Which of its two library categories a text of model ``category`` belongs to (suicide or
        self-harm; bullying or hate speech; violence or weapons), or None when the model has no such split."""
        split = self.splits.get(category)
        if split is None:
            return None
        column, first, second = split
        words = [normalise(text).split()[:MAX_TOKENS]]
        raw = self._raw([self.featuriser.token_ids(words[0])], self.split_weights, self.split_bias)[:, column]
        if self.split_dense is not None:
            raw += (self._vectors(words) @ self.split_dense)[:, column]
        return second if float(raw[0]) > 0 else first

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
