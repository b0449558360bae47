"""Static word embeddings for the risk model: a text becomes the mean of its sub-word token vectors.

A list of strings, or a model of hashed words and n-grams, knows only the words someone wrote into it.
Static embeddings place words that mean alike near each other ("tablets" near "pills", "roof" near
"bridge" and "ledge"), so the model's weights for a kind of meaning carry over to wording nobody wrote
down. The vectors are WordLlama's ``l2_supercat`` token embeddings (MIT, Lee Miller 2024; distilled from
the input embeddings of several large language models; ``docs/model-card.md`` has the provenance), cut to
their first ``dim`` dimensions (they are trained so that a prefix is itself an embedding) and stored in
the model file as int8 with one scale per token. Nothing is fetched at run time and nothing beyond numpy
is needed: the sub-word split is the same byte-pair encoding as the vectors' own tokenizer (Llama 2's
32,000 tokens; ``merges`` ranked pairs; bytes for characters it lacks), done here per word and cached.

    embedder = Embedder(vocab, merges, table, scales)
    embedder.embed_batch(["i want to end it"])     # float32 (1, dim), unit length
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SPACE = "\u2581"  # the tokenizer's word-start mark
_CACHE_LIMIT = 200_000


class Embedder:
    """Text -> mean of its token vectors, unit length. Immutable once built; word vectors are cached."""

    def __init__(self, vocab: Sequence[str], merges: Sequence[str], table: np.ndarray, scales: np.ndarray):
        if table.shape[0] != len(vocab) or scales.shape[0] != len(vocab):
            raise ValueError(f"embedding table {table.shape} does not match {len(vocab)} tokens")
        self.vocab = tuple(vocab)
        self.merges = tuple(merges)
        self.ids = {t: i for i, t in enumerate(self.vocab)}
        self.ranks = {m: r for r, m in enumerate(self.merges)}  # "left right" -> rank
        # kept as int8 (a quarter of the memory of float32): a word's vector is worked out once and cached
        self.table = np.asarray(table, dtype=np.int8)
        self.scales = np.asarray(scales, dtype=np.float32)
        self.dim = int(table.shape[1])
        self._bytes = [self.ids.get(f"<0x{b:02X}>", 0) for b in range(256)]
        self._cache: dict[str, tuple[np.ndarray, int]] = {}

    def tokens(self, word: str) -> list[int]:
        """Token ids of one word (byte-pair encoding, lowest-ranked pair first)."""
        parts = list(SPACE + word)
        ranks = self.ranks
        while len(parts) > 1:
            best, at = None, -1
            for i in range(len(parts) - 1):
                rank = ranks.get(parts[i] + " " + parts[i + 1])
                if rank is not None and (best is None or rank < best):
                    best, at = rank, i
            if best is None:
                break
            merged = parts[at] + parts[at + 1]
            # merge every occurrence of this pair, left to right, as the tokenizer does
            out: list[str] = []
            i = 0
            left, right = parts[at], parts[at + 1]
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == left and parts[i + 1] == right:
                    out.append(merged)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        ids: list[int] = []
        for part in parts:
            tid = self.ids.get(part)
            if tid is not None:
                ids.append(tid)
            else:
                ids.extend(self._bytes[b] for b in part.encode("utf-8"))
        return ids

    def _word(self, word: str) -> tuple[np.ndarray, int]:
        hit = self._cache.get(word)
        if hit is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            ids = self.tokens(word)
            hit = ((self.table[ids].astype(np.float32) * self.scales[ids, None]).sum(axis=0), len(ids))
            self._cache[word] = hit
        return hit

    def embed(self, words: Sequence[str]) -> np.ndarray:
        """One text, already split into words: the unit-length mean of every token vector."""
        total = np.zeros(self.dim, dtype=np.float32)
        count = 0
        for word in words:
            vec, n = self._word(word)
            total += vec
            count += n
        norm = float(np.linalg.norm(total))
        return total / norm if count and norm else total

    def embed_batch(self, texts: Sequence[Sequence[str]]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.embed(words) for words in texts])

    def pooled(self, words: Sequence[str]) -> np.ndarray:
        """One text: its unit-length mean (as :meth:`embed`) followed by half the element-wise maximum
        of its unit-length word vectors, ``2 * dim`` values. The mean is dominated by the many common
        words of a sentence; the maximum keeps the one word that stands out ("tablets" in a long
        ordinary question)."""
        out = np.zeros(2 * self.dim, dtype=np.float32)
        if not words:
            return out
        vecs = np.stack([self._word(word)[0] for word in words])
        total = vecs.sum(axis=0)
        norm = float(np.linalg.norm(total))
        if norm:
            out[: self.dim] = total / norm
        lengths = np.linalg.norm(vecs, axis=1, keepdims=True)
        out[self.dim :] = 0.5 * (vecs / np.maximum(lengths, 1e-6)).max(axis=0)
        return out

    def pooled_batch(self, texts: Sequence[Sequence[str]]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 2 * self.dim), dtype=np.float32)
        return np.stack([self.pooled(words) for words in texts])


def pack(strings: Sequence[str]) -> np.ndarray:
    """Strings -> one uint8 array (UTF-8, newline-separated): far smaller than a numpy string array."""
    if any("\n" in t for t in strings):
        raise ValueError("a token or merge holds a newline")
    return np.frombuffer("\n".join(strings).encode("utf-8"), dtype=np.uint8)


def unpack(packed: np.ndarray) -> list[str]:
    return packed.tobytes().decode("utf-8").split("\n")


def quantise(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float table -> (int8 table, float32 per-row scale), as the model file stores it."""
    peak = np.abs(table).max(axis=1)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    return np.round(table / scales[:, None]).astype(np.int8), scales
