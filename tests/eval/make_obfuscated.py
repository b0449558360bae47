"""Write the obfuscated forms of the evaluation messages (tests/eval/obfuscated.jsonl).

Pupils dodge keyword filters by disguising the words that matter. Every message in concerning.jsonl is
rewritten four ways, each a disguise the normaliser must undo:

- ``leet``: letters swapped for look-alike digits and symbols (a->4/@, e->3, i->1, o->0, s->5/$, t->7; in a
  third of the messages every l->1 as well);
- ``spacing``: the key word written with its letters apart ("k i l l", "k.i.l.l", "k-i-l-l");
- ``homoglyph``: Latin letters swapped for Cyrillic/Greek look-alikes and fullwidth forms;
- ``zero-width``: invisible characters (U+200B, U+200C, U+200D, U+2060, U+00AD) inside the key words;

and, with ``--gap-forms``, three ways more where the message lends itself to them (issue 14, "the
normalisation gaps"; not in the committed file, whose four forms of equal size tests/test_library_quality.py
holds):

- ``leet-l``: some of the ``l`` of a word written ``1`` and some not ("ki1l", "se1f");
- ``elongation``: letters of the key words repeated, several runs in a word ("kiiilllll");
- ``spacing-after``: the word after a one-letter word "a" or "I" written with its letters apart
  ("a k.n.i.f.e", "I w a n t").

The output is deterministic (seeded from each message id), so re-running this script gives the same file.
Run it after editing concerning.jsonl and commit both:

    .venv/bin/python tests/eval/make_obfuscated.py
"""

from __future__ import annotations

import argparse
import json
import random
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent

LEET = {"a": "4@", "e": "3", "i": "1", "o": "0", "s": "5$", "t": "7"}
HOMOGLYPHS = {
    "a": "\u0430",  # Cyrillic a
    "c": "\u0441",  # Cyrillic es
    "e": "\u0435",  # Cyrillic ie
    "i": "\u0456",  # Cyrillic byelorussian-ukrainian i
    "o": "\u043e\u03bf",  # Cyrillic o, Greek omicron
    "p": "\u0440",  # Cyrillic er
    "s": "\u0455",  # Cyrillic dze
    "x": "\u0445",  # Cyrillic ha
    "y": "\u0443",  # Cyrillic u
    "k": "\u03ba",  # Greek kappa
    "n": "\uff4e",  # fullwidth n
    "d": "\u217e",  # small roman numeral five hundred
    "m": "\uff4d",  # fullwidth m
}
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\u00ad")
WORD = re.compile(r"[^\W\d_]+")


def _rng(item_id: str, form: str) -> random.Random:
    return random.Random(zlib.crc32(f"{item_id}/{form}".encode()))


def _key_words(text: str) -> list[re.Match[str]]:
    """Words worth disguising: the longest first, ignoring short function words."""
    words = [m for m in WORD.finditer(text) if len(m.group()) >= 3]
    return sorted(words, key=lambda m: (-len(m.group()), m.start()))


def leet(text: str, rng: random.Random) -> str:
    """Swap letters for digits inside words; every word keeps at least one letter (a token of digits
    alone, like "4" or "70", reads as a number, and the normaliser rightly leaves numbers alone)."""
    # Someone who writes "l" as "1" does it throughout ("ki11", "fee1"): a third of messages do.
    l_as_one = rng.random() < 0.33

    def word(m: re.Match[str]) -> str:
        w = m.group()
        if len(w) < 2:
            return w
        out = []
        for ch in w:
            subs = "1" if ch.lower() == "l" and l_as_one else LEET.get(ch.lower())
            out.append(rng.choice(subs) if subs and (ch.lower() == "l" or rng.random() < 0.6) else ch)
        if not any(c.isalpha() for c in out):
            return w
        return "".join(out)

    result = WORD.sub(word, text)
    if result == text:  # no letter swapped: force one so the form differs
        for m in WORD.finditer(text):
            for i in range(m.start() + 1, m.end()):
                if text[i].lower() in LEET:
                    return text[:i] + LEET[text[i].lower()][0] + text[i + 1 :]
    return result


def spacing(text: str, rng: random.Random) -> str:
    """Space out the letters of the longest word whose neighbours are not single letters."""
    tokens = text.split(" ")
    candidates = [
        i
        for i, tok in sorted(enumerate(tokens), key=lambda p: -len(p[1]))
        if len(tok) >= 3
        and WORD.fullmatch(tok)
        and not (i > 0 and len(tokens[i - 1]) == 1)
        and not (i + 1 < len(tokens) and len(tokens[i + 1]) == 1)
    ]
    if not candidates:
        candidates = [max(range(len(tokens)), key=lambda i: len(tokens[i]))]
    i = candidates[0]
    sep = rng.choice((" ", " ", ".", "-"))
    tokens[i] = sep.join(tokens[i])
    return " ".join(tokens)


def homoglyph(text: str, rng: random.Random) -> str:
    out = []
    for ch in text:
        subs = HOMOGLYPHS.get(ch)
        out.append(rng.choice(subs) if subs and rng.random() < 0.5 else ch)
    result = "".join(out)
    if result == text:
        for i, ch in enumerate(text):
            if ch in HOMOGLYPHS:
                return text[:i] + HOMOGLYPHS[ch][0] + text[i + 1 :]
    return result


def zero_width(text: str, rng: random.Random) -> str:
    chars = list(text)
    for m in _key_words(text)[:2]:
        for pos in range(m.end() - 1, m.start(), -1):
            if rng.random() < 0.7:
                chars.insert(pos, rng.choice(ZERO_WIDTH))
    return "".join(chars)


def leet_l(text: str, rng: random.Random) -> str | None:
    """Some of the ``l`` of the words holding one written ``1``, at least one per word; in a word with
    several, at least one left as it is. None when no word has an ``l``."""
    out = []
    last = 0
    for m in WORD.finditer(text):
        w = m.group()
        spots = [i for i, c in enumerate(w) if c.lower() == "l"]
        if not spots or len(w) < 3:
            continue
        ones = {i for i in spots if rng.random() < 0.5} or {rng.choice(spots)}
        if len(spots) > 1 and len(ones) == len(spots):
            ones.discard(rng.choice(spots))
        out += (text[last : m.start()], "".join("1" if i in ones else c for i, c in enumerate(w)))
        last = m.end()
    return "".join(out) + text[last:] if out else None


def elongation(text: str, rng: random.Random) -> str:
    """In the two longest words, one or two letters written three to seven times."""
    chars = [[c] for c in text]
    for m in _key_words(text)[:2]:
        for pos in sorted(rng.sample(range(m.start(), m.end()), min(2, m.end() - m.start()))):
            chars[pos] = [text[pos]] * rng.randint(3, 7)
    return "".join("".join(c) for c in chars)


def spacing_after(text: str, rng: random.Random) -> str | None:
    """Space out the letters of a word of four letters or more that follows the word "a" or "I" (the
    separator "." or "-" or " " within the word); None when no word follows one."""
    tokens = text.split(" ")
    candidates = [
        i
        for i in range(1, len(tokens))
        if tokens[i - 1].lower() in ("a", "i") and len(tokens[i]) >= 4 and WORD.fullmatch(tokens[i])
    ]
    if not candidates:
        return None
    i = rng.choice(candidates)
    tokens[i] = rng.choice((" ", ".", "-")).join(tokens[i])
    return " ".join(tokens)


Form = Callable[[str, random.Random], str | None]
FORMS: dict[str, Form] = {
    "leet": leet,
    "spacing": spacing,
    "homoglyph": homoglyph,
    "zero-width": zero_width,
}
GAP_FORMS: dict[str, Form] = {
    "leet-l": leet_l,
    "elongation": elongation,
    "spacing-after": spacing_after,
}


def obfuscate(items: list[dict[str, object]], forms: dict[str, Form] = FORMS) -> Iterator[dict[str, object]]:
    for item in items:
        item_id = str(item["id"])
        for form, fn in forms.items():
            text = fn(str(item["text"]), _rng(item_id, form))
            if text is None:
                continue  # the message does not lend itself to this disguise
            yield {**item, "id": f"{item_id}~{form}", "text": text, "form": form, "source": item_id}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=HERE / "concerning.jsonl")
    parser.add_argument("-o", "--output", type=Path, default=HERE / "obfuscated.jsonl")
    parser.add_argument(
        "--gap-forms",
        action="store_true",
        help="add the forms of issue 14: leet-l, elongation, spacing-after",
    )
    args = parser.parse_args(argv)
    with args.source.open(encoding="utf-8") as fh:
        items = [json.loads(line) for line in fh if line.strip()]
    count = 0
    with args.output.open("w", encoding="utf-8") as out:
        for obj in obfuscate(items, {**FORMS, **GAP_FORMS} if args.gap_forms else FORMS):
            out.write(json.dumps(obj, ensure_ascii=False) + "\n")
            count += 1
    print(f"{args.output}: {count} obfuscated messages from {len(items)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
