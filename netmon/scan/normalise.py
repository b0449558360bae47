"""Text normalisation, identical for library phrases and for traffic.

Steps, in order (docs/library-format.md):

1. ``html-entity`` / ``percent-decoding``: ``&eacute;``, ``&#105;`` and ``%6B%69`` are decoded.
2. Per character, from a cached fold table: NFKD (``nfkc``: fullwidth, ligatures, mathematical letters;
   ``diacritics``: marks dropped), ``homoglyph`` folding (Cyrillic/Greek/small-capital look-alikes),
   casefold, ``zero-width`` and other format characters removed, ``leetspeak`` digits and symbols
   (0 o, 1 i, 3 e, 4 a, 5 s, 7 t, @ a, $ s), apostrophes removed ("don't" -> "dont") and every other
   punctuation, symbol or space character turned into a space.
3. ``!`` between two word characters is leetspeak for ``i`` ("k!ll"); any other ``!`` is a space.
4. Whitespace collapsed to single spaces, ends stripped.
5. ``spaced-letters``: three or more single letters separated by spaces are joined ("s u i c i d e",
   "s.u.i.c.i.d.e", "s-u-i-c-i-d-e" -> "suicide").
6. ``repeats``: a run of three or more of the same character becomes exactly three ("killllll" ->
   "killl"); the matcher indexes phrase variants so that such a run matches the letter written once or
   twice in the phrase.

``normalise`` is the fast path used on all traffic (an ASCII byte table, a cached fold for non-ASCII
characters, cheap gates in front of the rare regex steps). ``normalise_mapped`` is the slow path that
also maps each normalised character back to the original text; it is only run when a match needs
explaining. Both produce exactly the same text (a property test proves it).
"""

from __future__ import annotations

import codecs
import html
import re
import threading
import unicodedata
from bisect import bisect_right
from functools import lru_cache
from urllib.parse import unquote_to_bytes

import numpy as np

#: Bumped whenever the output of ``normalise`` changes; part of the library fingerprint.
NORMALISER_VERSION = "1"

#: Normalisation step names, in the order they are reported in explanations.
STEPS = (
    "html-entity",
    "percent-decoding",
    "nfkc",
    "diacritics",
    "homoglyph",
    "zero-width",
    "leetspeak",
    "spaced-letters",
    "repeats",
)

_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
_DELETED_ASCII = "'`"

# Look-alikes that NFKD does not fold. Keys are single code points (upper- and lower-case forms).
_HOMOGLYPHS: dict[str, str] = {}
for _latin, _alikes in {
    "a": "аɑαАΑᴀ",
    "b": "ЬьВвβΒʙ",
    "c": "сСϲϹᴄ",
    "d": "ԁᴅ",
    "e": "еЕёЁεΕᴇ",
    "f": "ғ",
    "g": "ɡɢ",
    "h": "һНнΗʜ",
    "i": "іІӏιΙıɪ",
    "j": "јЈᴊ",
    "k": "кКκΚᴋ",
    "l": "ӀǀⅼʟłŁ",
    "m": "мМΜᴍ",
    "n": "ηɴ",
    "o": "оОοΟօᴏøØ",
    "p": "рРρΡᴘ",
    "q": "ԛǫ",
    "r": "гᴦʀ",
    "s": "ѕЅꜱ",
    "t": "тТτΤᴛ",
    "u": "υμսᴜ",
    "v": "νѵᴠ",
    "w": "ԝωᴡ",
    "x": "хХχΧ",
    "y": "уУγΥʏ",
    "z": "ΖᴢΖ",
}.items():
    for _c in _alikes:
        _HOMOGLYPHS[_c] = _latin


#: Deleted characters (apostrophes, marks, zero-width) are first written as this placeholder, one for
#: one, and dropped in step 4: that keeps every step before it one character for one character.
_GONE = "'"


def _ascii_fold(c: str) -> str:
    """The fold of one ASCII character (the byte table below is built from this)."""
    if c in _DELETED_ASCII:
        return _GONE
    if c in "!@$":
        return c  # decided by context in step 3
    if c.isalnum():
        return c.lower()
    return " "


def _build_table() -> bytes:
    table = bytearray(range(256))  # bytes >= 0x80 (UTF-8 sequences) pass through unchanged
    for i in range(128):
        folded = _ascii_fold(chr(i))
        table[i] = ord(folded)
    return bytes(table)


_TABLE = _build_table()


#: Apostrophe look-alikes are removed like ASCII apostrophes ("don’t" -> "dont").
_APOSTROPHES = frozenset("\u2018\u2019\u201b\u02bc\u02b9\u02bb\u2032\u00b4\uff07")


def _fold_uncached(c: str) -> str:
    if c in _APOSTROPHES:
        return _GONE
    out: list[str] = []
    for ch in unicodedata.normalize("NFKD", c):
        ch = _HOMOGLYPHS.get(ch, ch)
        for x in unicodedata.normalize("NFKD", ch.casefold()):
            x = _HOMOGLYPHS.get(x, x)
            cat = unicodedata.category(x)
            if cat[0] == "M" or cat == "Cf":
                continue
            if x < "\x80":
                out.append(_ascii_fold(x))
            elif cat[0] in "LN":
                out.append(x)
            else:
                out.append(" ")
    folded = "".join(out).replace(_GONE, "")
    if not folded:
        return _GONE
    return " " if folded.isspace() else folded  # "…" is one separator, not three


_FOLD_CACHE: dict[str, str] = {chr(i): _ascii_fold(chr(i)) for i in range(128)}


def fold_char(c: str) -> str:
    """The fold of one character (step 2): lower-case letters/digits, a space, '!', '@', '$', or the
    placeholder ``'`` of a deleted character."""
    folded = _FOLD_CACHE.get(c)
    if folded is None:
        folded = _FOLD_CACHE[c] = _fold_uncached(c)
    return folded


_RUN_CACHE: dict[str, tuple[bytes, bool]] = {}
_local = threading.local()  # .expanded: set when a character folded to more than one (e.g. "ß" -> "ss")


def _fold_errors(exc: UnicodeError) -> tuple[bytes, int]:
    """Codec error handler: folds each run of non-ASCII characters while ASCII encodes at C speed."""
    assert isinstance(exc, UnicodeEncodeError)
    run = exc.object[exc.start : exc.end]
    cached = _RUN_CACHE.get(run)
    if cached is None:
        if len(_RUN_CACHE) > 100_000:
            _RUN_CACHE.clear()
        pieces = [fold_char(c) for c in run]
        cached = _RUN_CACHE[run] = ("".join(pieces).encode("utf-8"), all(len(p) == 1 for p in pieces))
    if not cached[1]:
        _local.expanded = True
    return cached[0], exc.end


codecs.register_error("netmon-fold", _fold_errors)

_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2})*")
#: one pass decodes both (so "&#37;41" gives "%41", not "A": nothing is decoded twice)
_CODED = re.compile(f"{_ENTITY.pattern}|{_PERCENT.pattern}")
_BANG = re.compile(r"!+")
_SPACES = re.compile(r"  +")
_SPACED = re.compile(r" ([^\W\d_](?: [^\W\d_]){2,})(?= )")
_REPEATS = re.compile(r"(\w)\1{3,}")
_RUN3 = re.compile(r"([^\W\d_])\1\1")


def _entity(m: re.Match[str]) -> str:
    return html.unescape(m.group())


def _percent(m: re.Match[str]) -> str:
    return unquote_to_bytes(m.group()).decode("utf-8", "replace")


def _coded(m: re.Match[str]) -> str:
    return _entity(m) if m.group().startswith("&") else _percent(m)


def _bang(m: re.Match[str]) -> str:
    s, start, end = m.string, m.start(), m.end()
    inside = 0 < start and end < len(s) and s[start - 1].isalnum() and s[end].isalnum()
    return ("i" if inside else " ") * (end - start)


def _spaced(m: re.Match[str]) -> str:
    return " " + m.group(1).replace(" ", "")


def _repeats(m: re.Match[str]) -> str:
    return m.group(1) * 3


def _has_codes(text: str) -> bool:
    """Whether ``text`` holds an entity or a percent-code: a few ``find`` calls where the regular
    expression would read every character ("&" and "%" are common in text, codes are not)."""
    for mark in ("&", "%"):
        i, seen = text.find(mark), 0
        while i != -1:
            if _CODED.match(text, i) is not None or seen == 64:  # many marks: let the regex decide
                return True
            i, seen = text.find(mark, i + 1), seen + 1
    return False


def _decode(text: str, log: list[tuple[object, ...]] | None) -> str:
    if ("&" in text or "%" in text) and _has_codes(text):
        decoded = _CODED.sub(_coded, text)
        if log is not None and decoded != text:
            log.append(("decode", text))
        return decoded
    return text


def _run(text: str, log: list[tuple[object, ...]] | None) -> str:
    """The whole normalisation. With ``log``, records (cheaply: references and masks) how to map
    normalised positions back to ``text``; ``_map_back`` replays it backwards."""
    text = _decode(text, log)
    if log is not None:
        _local.expanded = False
    data = text.encode("ascii", "netmon-fold").translate(_TABLE)
    if log is not None and _local.expanded:
        log.append(("fold", text))  # some character became several: map through per-character counts
    if b"!" in data:
        if _bang_inside(data):
            data = _BANG.sub(_bang, data.decode("utf-8")).encode("utf-8")  # one character for one
        else:
            data = data.replace(b"!", b" ")
    data = _leet(data)  # one character for one
    if not data:
        return ""
    if log is None and len(data) <= _SMALL:
        return _tail_small(data.decode("utf-8"))
    if data.isascii():
        return _tail(np.frombuffer(data, dtype=np.uint8), log).tobytes().decode("ascii")
    wide = np.frombuffer(data.decode("utf-8").encode("utf-32-le"), dtype=np.uint32)
    return _tail(wide, log).tobytes().decode("utf-32-le")


_SMALL = 512  # bytes: below this the fast path uses str methods and regular expressions, not numpy
_FOUR = re.compile(r"(.)\1\1\1")


def _tail_small(s: str) -> str:
    """Steps 4-6 for short texts (search terms, form fields, chat lines): the same result as ``_tail``
    (property-tested), without numpy's fixed cost per call."""
    if _GONE in s:
        s = s.replace(_GONE, "")
    s = " ".join(s.split())  # only ' ' is left as whitespace after folding
    if s.count(" ") >= 2 and _SPACED.search(f" {s} "):
        s = _SPACED.sub(_spaced, f" {s} ").strip(" ")
    if _FOUR.search(s):
        s = _REPEATS.sub(_repeats, s)
    return s


def normalise(text: str) -> str:
    """Normalise ``text`` for matching (fast path). ``normalise(phrase)`` is how phrases are stored."""
    return _run(text, None)


def _byte_table(mapping: dict[int, int], default: int | None = None) -> bytes:
    return bytes(mapping.get(i, i if default is None else default) for i in range(256))


_LEET_BYTES = b"013457@$"
#: letters (and UTF-8 bytes of folded non-ASCII letters) -> 'a', leetspeak candidates -> '1', rest -> ' '
_CLASS = _byte_table(
    {**{i: 97 for i in range(97, 123)}, **{i: 97 for i in range(128, 256)}, **{i: 49 for i in _LEET_BYTES}},
    default=32,
)
_LEET_TABLE = _byte_table({ord(k): ord(v) for k, v in _LEET.items()})
_SYMBOLS_TO_SPACE = _byte_table({ord("@"): 32, ord("$"): 32})


def _leet(data: bytes) -> bytes:
    """Step 3b: a run of leetspeak digits/symbols next to a letter folds to letters ("k1ll", "5u1c1d3",
    "@ss", "sh00t"); numbers stay numbers ("2000", "a21"), and any other '@' or '$' is a space."""
    cls = data.translate(_CLASS)
    if b"1" not in cls:
        return data
    if b"a1" not in cls and b"1a" not in cls:
        return data.translate(_SYMBOLS_TO_SPACE) if b"@" in data or b"$" in data else data
    out = bytearray(data)
    n = len(cls)
    i = cls.find(b"a1")
    while i != -1:  # runs with a letter before them
        a = b = i + 1
        while b < n and cls[b] == 49:
            b += 1
        out[a:b] = data[a:b].translate(_LEET_TABLE)
        i = cls.find(b"a1", b)
    i = cls.find(b"1a")
    while i != -1:  # runs with a letter after them
        a = b = i + 1
        while a > 0 and cls[a - 1] == 49:
            a -= 1
        out[a:b] = data[a:b].translate(_LEET_TABLE)
        i = cls.find(b"1a", b)
    return bytes(out).translate(_SYMBOLS_TO_SPACE)


_ALNUM_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789") | frozenset(range(128, 256))


def _bang_inside(data: bytes) -> bool:
    """Whether some run of '!' in folded UTF-8 ``data`` sits between two letters or digits."""
    i = data.find(b"!")
    while i != -1:
        j = i + 1
        while j < len(data) and data[j] == 33:
            j += 1
        if i > 0 and j < len(data) and data[i - 1] in _ALNUM_BYTES and data[j] in _ALNUM_BYTES:
            return True
        i = data.find(b"!", j)
    return False


def _is_letter(arr: np.ndarray) -> np.ndarray:
    """``[^\\W\\d_]`` of the regular expressions, on folded code points."""
    letter = (arr >= 97) & (arr <= 122)
    wide = arr >= 128
    if np.count_nonzero(wide):
        points = np.unique(arr[wide])
        decimal = [int(p) for p in points if unicodedata.category(chr(p)) == "Nd"]
        letter |= wide & ~np.isin(arr, np.array(decimal, dtype=arr.dtype))
    return letter


def _tail(arr: np.ndarray, log: list[tuple[object, ...]] | None) -> np.ndarray:
    """Steps 4-6 on folded code points with numpy masks: the same result as the regular expressions
    ``  +`` -> `` ``, ``_SPACED`` and ``_REPEATS`` (property-tested against them)."""
    keep = arr != 39
    if np.count_nonzero(keep) < len(keep):  # deleted characters go
        arr = arr[keep]
        if log is not None:
            log.append(("keep", keep, "deleted"))
        if not len(arr):
            return arr
    # whitespace: a space after a space goes, then at most one space at each end
    space = arr == 32
    double = space[1:] & space[:-1]
    if np.count_nonzero(double):
        keep = np.empty(len(arr), dtype=bool)
        keep[0] = True
        np.logical_not(double, out=keep[1:])
        arr = arr[keep]
        space = arr == 32
        if log is not None:
            log.append(("keep", keep, "whitespace"))
    if len(arr) and (space[0] or space[-1]):
        a, b = (1 if space[0] else 0), (len(arr) - 1 if space[-1] else len(arr))
        arr, space = arr[a:b], space[a:b]
        if log is not None:
            log.append(("slice", a))
    n = len(arr)
    if n >= 5:
        # spaced letters: a lone letter between spaces, three or more in a row, loses the spaces between
        edge = np.empty(n + 2, dtype=bool)
        edge[0] = edge[-1] = True
        edge[1:-1] = space
        single = edge[:-2] & edge[2:]
        single &= ~space
        triple = single[:-4] & single[2:-2]
        triple &= single[4:]
        if np.count_nonzero(triple):
            single &= _is_letter(arr)
            triple = single[:-4] & single[2:-2] & single[4:]
            if np.count_nonzero(triple):
                chain = np.zeros(n, dtype=bool)
                chain[:-4] |= triple
                chain[2:-2] |= triple
                chain[4:] |= triple
                drop = np.zeros(n, dtype=bool)
                drop[1:-1] = chain[:-2] & chain[2:]
                arr = arr[~drop]
                if log is not None:
                    log.append(("keep", ~drop, "spaced-letters"))
    if len(arr) >= 3:
        # repeats: the fourth and later characters of a run are dropped
        same = arr[1:] == arr[:-1]
        three = same[:-1] & same[1:]
        if np.count_nonzero(three):
            letter_runs = log is not None and np.count_nonzero(three & _is_letter(arr[:-2]))
            run = three[:-1] & same[2:]
            if np.count_nonzero(run):
                drop = np.zeros(len(arr), dtype=bool)
                drop[3:] = run
                arr = arr[~drop]
                if log is not None:
                    log.append(("keep", ~drop, "repeats"))
                same = arr[1:] == arr[:-1]
                three = same[:-1] & same[1:]
            if letter_runs and log is not None:
                # where the (now at most three long) letter runs start: the matcher also tries them as
                # single and double letters
                starts = np.flatnonzero(three & _is_letter(arr[:-2]))
                log.append(("runs", tuple(starts.tolist())))
    return arr


# --------------------------------------------------------------------------------------------------
# Mapping back to the original text


def _decode_pieces(text: str) -> list[tuple[int, int, int, int]]:
    """The decode step as (input start, input end, output start, output end) of each replacement."""
    pieces: list[tuple[int, int, int, int]] = []
    shift = 0
    for m in _CODED.finditer(text):
        a, b = m.span()
        size = len(_coded(m))
        pieces.append((a, b, a + shift, a + shift + size))
        shift += size - (b - a)
    return pieces


def _back(
    pieces: list[tuple[int, int, int, int]], starts: np.ndarray, lasts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Maps output positions (start, last character) through replacement ``pieces`` to the input."""
    out_s = starts.copy()
    out_l = lasts.copy()
    if not pieces:
        return out_s, out_l
    outs = [p[2] for p in pieces]
    for k, (pos, res, is_start) in enumerate(((starts, out_s, True), (lasts, out_l, False))):
        del k
        for idx, q in enumerate(pos.tolist()):
            j = bisect_right(outs, q) - 1
            if j < 0:
                res[idx] = q
                continue
            a, b, c, d = pieces[j]
            if q < d:
                res[idx] = a if is_start else b - 1
            else:
                res[idx] = q - d + b
    return out_s, out_l


def _map_back(
    log: list[tuple[object, ...]], starts: np.ndarray, lasts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Replays ``log`` backwards: normalised (start, last character) positions -> original positions."""
    s = np.asarray(starts, dtype=np.int64)
    e = np.asarray(lasts, dtype=np.int64)
    for entry in reversed(log):
        kind = entry[0]
        if kind == "keep":
            mask = entry[1]
            assert isinstance(mask, np.ndarray)
            kept = np.flatnonzero(mask)
            if entry[2] == "repeats":  # the kept letters of a run also cover the dropped ones after them
                nxt = e + 1
                inside = nxt < len(kept)
                e_new = np.full(len(e), len(mask) - 1, dtype=np.int64)
                e_new[inside] = kept[nxt[inside]] - 1
                s, e = kept[s], e_new
            else:
                s, e = kept[s], kept[e]
        elif kind == "slice":
            offset = entry[1]
            assert isinstance(offset, int)
            s, e = s + offset, e + offset
        elif kind == "fold":
            pre = entry[1]
            assert isinstance(pre, str)
            codes = np.frombuffer(pre.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            counts = np.ones(len(codes), dtype=np.int64)
            wide = codes >= 128
            points, inverse = np.unique(codes[wide], return_inverse=True)
            lengths = np.array([len(fold_char(chr(p))) for p in points.tolist()], dtype=np.int64)
            counts[wide] = lengths[inverse]
            ends = np.cumsum(counts)  # folded characters produced up to and including each char
            s = np.searchsorted(ends, s, side="right")
            e = np.searchsorted(ends, e, side="right")
        elif kind == "runs":
            continue
        elif kind == "decode":
            original = entry[1]
            assert isinstance(original, str)
            s, e = _back(_decode_pieces(original), s, e)
    return s, e


class Mapped:
    """Normalised text that can map its positions back to the original text.

    ``span(a, b)`` maps the normalised span ``[a, b)`` to the original (cheap: only the positions
    asked for). ``offsets[i]`` / ``ends[i]``: original start and end (exclusive) of normalised char i
    (computed for every character on first use).
    """

    __slots__ = ("original", "text", "_log", "_all")

    def __init__(self, original: str, text: str, log: list[tuple[object, ...]]) -> None:
        self.original = original
        self.text = text
        self._log = log
        self._all: tuple[np.ndarray, np.ndarray] | None = None

    def spans(self, starts: list[int], ends: list[int]) -> list[tuple[int, int]]:
        """Original spans of several normalised spans ``[starts[k], ends[k])`` (ends exclusive, > start)."""
        if not starts:
            return []
        s, e = _map_back(self._log, np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64) - 1)
        return [(int(a), int(b) + 1) for a, b in zip(s.tolist(), e.tolist(), strict=True)]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original span of the normalised span ``[start, end)`` (end exclusive)."""
        if start >= end:
            pos = self.span(start, start + 1)[0] if start < len(self.text) else len(self.original)
            return pos, pos
        return self.spans([start], [end])[0]

    def original_text(self, start: int, end: int) -> str:
        """The original text of the normalised span ``[start, end)``: what the pupil saw."""
        a, b = self.span(start, end)
        return self.original[a:b]

    @property
    def has_runs(self) -> bool:
        """Whether the normalised text has a run of three of the same letter."""
        return bool(self.letter_runs)

    @property
    def letter_runs(self) -> list[tuple[int, int]]:
        """Spans of the runs of three of the same letter in the normalised text."""
        for entry in self._log:
            if entry[0] == "runs":
                starts = entry[1]
                assert isinstance(starts, tuple)
                return [(p, p + 3) for p in starts]
        return []

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._all is None:
            n = len(self.text)
            s, e = _map_back(self._log, np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64))
            self._all = (s, e + 1)
        return self._all

    @property
    def offsets(self) -> np.ndarray:
        return self._arrays()[0]

    @property
    def starts(self) -> np.ndarray:
        return self._arrays()[0]

    @property
    def ends(self) -> np.ndarray:
        return self._arrays()[1]


def normalise_mapped(text: str) -> Mapped:
    """Normalise ``text`` exactly like ``normalise`` (same code) and keep the way back to ``text``."""
    log: list[tuple[object, ...]] = []
    return Mapped(text, _run(text, log), log)


# --------------------------------------------------------------------------------------------------
# Explanations


@lru_cache(maxsize=8192)
def steps_applied(original: str) -> tuple[str, ...]:
    """Names of the normalisation steps that changed ``original`` (a matched span), in STEPS order."""
    words = original.split(" ")
    if (
        original.isascii()
        and "".join(words).isalpha()
        and min(map(len, words)) > 1
        and not _RUN3.search(original.lower())
    ):
        return ()  # plain words: only case and spacing, which are not worth explaining
    found: set[str] = set()
    if "&" in original or "%" in original:
        for m in _CODED.finditer(original):
            found.add("html-entity" if m.group().startswith("&") else "percent-decoding")
    decoded = _CODED.sub(_coded, original) if found else original
    for c in decoded:
        if c < "\x80":
            continue
        if unicodedata.category(c) == "Cf":
            found.add("zero-width")
            continue
        decomposed = unicodedata.normalize("NFKD", c)
        if any(unicodedata.category(x)[0] == "M" for x in decomposed):
            found.add("diacritics")
        if any(unicodedata.category(x)[0] != "M" for x in decomposed) and decomposed != unicodedata.normalize(
            "NFD", c
        ):
            found.add("nfkc")
        if any(x in _HOMOGLYPHS or x.casefold() in _HOMOGLYPHS for x in decomposed):
            found.add("homoglyph")
    data = decoded.encode("ascii", "netmon-fold").translate(_TABLE)
    if b"!" in data and _bang_inside(data):
        found.add("leetspeak")
    data = data.replace(b"!", b" ")
    if _leet(data).translate(_SYMBOLS_TO_SPACE) != data.translate(_SYMBOLS_TO_SPACE):
        found.add("leetspeak")
    log: list[tuple[object, ...]] = []
    _run(original, log)
    found.update(str(entry[2]) for entry in log if entry[0] == "keep" and entry[2] in STEPS)
    letters = " ".join(data.decode("utf-8").replace(_GONE, "").split())  # before leetspeak: "ki11" is no run
    if _RUN3.search(_SPACED.sub(_spaced, f" {letters} ")):
        found.add("repeats")
    return tuple(step for step in STEPS if step in found)
