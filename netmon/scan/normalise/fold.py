"""Step 2 of normalisation, per character: NFKD, marks dropped, homoglyphs folded, casefold, native-script
folding (Arabic script, Bengali, Gurmukhi and their digits: ``_SCRIPT_FOLD``), format characters
removed, apostrophes deleted, other punctuation and symbols turned into spaces. ASCII goes through a
byte table; other characters through a cached fold, applied by the ``netmon-fold`` codec error handler
so that ASCII text encodes at C speed."""

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


# Native-script folding (issue 14), applied to each character after NFKD and casefold, before marks are
# dropped. Keys are single code points; the value replaces the character ("" deletes it). Phrases and
# traffic fold the same way, so a spelling the table merges matches either way; the tables merge only
# spellings that informal typing mixes up, never two different words of the language.
_SCRIPT_FOLD: dict[str, str] = {
    # Arabic script (Arabic, Urdu, Shahmukhi Punjabi, Persian keyboards). Harakat/tashkeel and the hamza
    # above or below (alef forms, waw and yeh with hamza after NFKD) are marks, dropped below.
    "\u0640": "",  # tatweel (kashida), the stretching stroke: "انتحـــر" is "انتحر"
    "\u0674": "",  # high hamza
    "\u0671": "\u0627",  # alef wasla -> alef
    "\u0672": "\u0627",
    "\u0673": "\u0627",
    "\u0649": "\u064a",  # alef maksura -> yeh ("على" / "علي")
    "\u06cc": "\u064a",  # Farsi/Urdu yeh -> Arabic yeh
    "\u06d0": "\u064a",
    "\u0620": "\u064a",
    "\u06a9": "\u0643",  # keheh (Urdu/Farsi kaf) -> Arabic kaf
    "\u06aa": "\u0643",
    "\u06c1": "\u0647",  # heh goal (Urdu) -> heh
    "\u06be": "\u0647",  # heh doachashmee (Urdu aspirates: بھ) -> heh, as typed on Arabic keyboards
    "\u06d5": "\u0647",
    "\u0629": "\u0647",  # teh marbuta -> heh (written either way at a word's end)
    "\u06c3": "\u0647",
    "\u06ba": "\u0646",  # noon ghunna (Urdu) -> noon
    # Bengali: vowel signs become their vowel letters (letters, so word boundaries and the spaced-letters
    # step see one word); long and short i/u merged (spelling mixes them); chandrabindu, visarga, nukta
    # (after NFKD: য় -> য, ড় -> ড) and the virama go; anusvara is ng, khanda ta is ta.
    "\u09be": "\u0986",
    "\u09bf": "\u0987",
    "\u09c0": "\u0987",
    "\u0988": "\u0987",
    "\u09c1": "\u0989",
    "\u09c2": "\u0989",
    "\u098a": "\u0989",
    "\u09c3": "\u098b",
    "\u09c4": "\u098b",
    "\u09e0": "\u098b",
    "\u09c7": "\u098f",
    "\u09c8": "\u0990",
    "\u09d7": "\u0994",
    "\u0981": "",
    "\u0983": "",
    "\u09bc": "",
    "\u09cd": "",
    "\u0982": "\u0999",
    "\u09ce": "\u09a4",
    # Gurmukhi (Punjabi): the same for vowel signs; bindi, tippi and addak (nasal and doubling marks,
    # often left out or swapped), nukta (ਸ਼ -> ਸ after NFKD), virama, udaat and yakash go.
    "\u0a3e": "\u0a06",
    "\u0a3f": "\u0a07",
    "\u0a40": "\u0a07",
    "\u0a08": "\u0a07",
    "\u0a41": "\u0a09",
    "\u0a42": "\u0a09",
    "\u0a0a": "\u0a09",
    "\u0a47": "\u0a0f",
    "\u0a48": "\u0a10",
    "\u0a4b": "\u0a13",
    "\u0a4c": "\u0a14",
    "\u0a01": "",
    "\u0a02": "",
    "\u0a03": "",
    "\u0a70": "",
    "\u0a71": "",
    "\u0a3c": "",
    "\u0a4d": "",
    "\u0a51": "",
    "\u0a75": "",
}
# Arabic-Indic, Eastern (Persian/Urdu), Devanagari, Bengali and Gurmukhi digits -> ASCII digits.
for _zero in (0x0660, 0x06F0, 0x0966, 0x09E6, 0x0A66):
    for _d in range(10):
        _SCRIPT_FOLD[chr(_zero + _d)] = str(_d)


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
            script = _SCRIPT_FOLD.get(x)
            if script is not None:
                out.append(script)
                continue
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
