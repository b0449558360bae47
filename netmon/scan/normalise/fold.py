"""Step 2 of normalisation, per character: NFKD, marks dropped, homoglyphs folded, casefold, format
characters removed, apostrophes deleted, other punctuation and symbols turned into spaces. ASCII goes
through a byte table; other characters through a cached fold, applied by the ``netmon-fold`` codec error
handler so that ASCII text encodes at C speed."""

from __future__ import annotations

import codecs
import threading
import unicodedata

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
