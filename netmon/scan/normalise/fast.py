"""The fast path, run on all traffic: ``normalise(text)`` (decode entities and percent-codes, fold,
leetspeak, whitespace, spaced letters, repeats). With a ``log`` the same code records, cheaply, how to map
the result back to the text (``netmon.scan.normalise.mapped``)."""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import unquote_to_bytes

import numpy as np

from netmon.scan.normalise.fold import _GONE, _LEET, _TABLE, _local

#: Bumped whenever the output of ``normalise`` changes; part of the library fingerprint.
NORMALISER_VERSION = "1"

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
    letters = m.group(1)
    if letters[0] in "ai" and len(letters) >= 7:  # "a k n i f e" is "a knife": "a" and "i" are words
        return f" {letters[0]} {letters[2:].replace(' ', '')}"
    return " " + letters.replace(" ", "")


def _repeats(m: re.Match[str]) -> str:
    return m.group(1) * 3


#: Texts with more '&' and '%' than this are decoded by the regular expression's own scan (linear in C);
#: with fewer, ``find`` jumps from mark to mark and the expression is tried only there.
_FEW_MARKS = 256


def _code_pieces(text: str) -> list[tuple[int, int, str]]:
    """(start, end, decoded text) of every entity and percent-code in ``text``, exactly as
    ``_CODED.finditer`` finds them (left to right, never overlapping). "&" and "%" are common in text,
    codes are not: a few ``find`` calls where the regular expression would read every character."""
    if text.count("&") + text.count("%") > _FEW_MARKS:
        return [(m.start(), m.end(), _coded(m)) for m in _CODED.finditer(text)]
    out: list[tuple[int, int, str]] = []
    amp, pct, end = text.find("&"), text.find("%"), 0
    while amp != -1 or pct != -1:
        if pct == -1 or (amp != -1 and amp < pct):
            i, amp = amp, text.find("&", amp + 1)
        else:
            i, pct = pct, text.find("%", pct + 1)
        if i < end:
            continue  # inside the code just decoded
        m = _CODED.match(text, i)
        if m is not None:
            end = m.end()
            out.append((i, end, _coded(m)))
    return out


def _decode(text: str, log: list[tuple[object, ...]] | None) -> str:
    if "&" not in text and "%" not in text:
        return text
    pieces = _code_pieces(text)
    if not pieces:
        return text
    out: list[str] = []
    last = 0
    for a, b, decoded in pieces:
        out += (text[last:a], decoded)
        last = b
    out.append(text[last:])
    result = "".join(out)
    if log is not None and result != text:
        log.append(("decode", text, pieces))
    return result


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
_LEET_TABLE = _byte_table({ord(k): ord(v) for k, v in _LEET.items()})
_SYMBOLS_TO_SPACE = _byte_table({ord("@"): 32, ord("$"): 32})


#: A run of leetspeak digits/symbols with a letter (or a byte of a folded non-ASCII letter) before it,
#: or a whole such run with one after it. It starts with the digit class, so the regular expression
#: engine skips to the next digit in C; the look-behinds are checked only there (linear: a position
#: inside a run that is not a run's start fails at once). ``_leet`` runs the same expression on the
#: bytes' classes (``_LEET_CLASSES``), where it starts with a literal the engine finds quicker still.
_LEET_RUN = re.compile(
    rb"[013457@$](?:(?<=[a-z\x80-\xff][013457@$])[013457@$]*+"
    rb"|(?<![013457@$][013457@$])[013457@$]*+(?=[a-z\x80-\xff]))"
)
#: Each byte as its class in ``_LEET_RUN``: "1" a leetspeak digit or symbol, "a" a letter (or a byte of a
#: folded non-ASCII letter), " " anything else.
_LEET_CLASSES = bytes(
    ord("1") if i in _LEET_BYTES else ord("a") if 97 <= i <= 122 or i >= 128 else ord(" ") for i in range(256)
)
#: ``_LEET_RUN`` over ``_LEET_CLASSES``: the same matches at the same offsets (a test compares them).
_LEET_RUN_CLASSES = re.compile(rb"1(?:(?<=a1)1*+|(?<!11)1*+(?=a))")


def _leet(data: bytes) -> bytes:
    """Step 3b: a run of leetspeak digits/symbols next to a letter folds to letters ("k1ll", "5u1c1d3",
    "@ss", "sh00t"); numbers stay numbers ("2000", "a21"), and any other '@' or '$' is a space.
    The runs are found in the bytes' classes: one ``translate``, then an expression that starts with a
    literal (``_LEET_RUN`` itself starts with a class, which the engine tests at every byte)."""
    out: list[bytes] = []
    last = 0
    for m in _LEET_RUN_CLASSES.finditer(data.translate(_LEET_CLASSES)):
        a, b = m.span()
        out += (data[last:a], data[a:b].translate(_LEET_TABLE))
        last = b
    if out:
        out.append(data[last:])
        data = b"".join(out)
    return data.translate(_SYMBOLS_TO_SPACE) if b"@" in data or b"$" in data else data


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
        if decimal:
            letter |= wide & ~np.isin(arr, np.array(decimal, dtype=arr.dtype))
        else:
            letter |= wide
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
    letter: np.ndarray | None = None  # _is_letter(arr), worked out once when a step needs it
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
            letter = _is_letter(arr)
            single &= letter
            triple = single[:-4] & single[2:-2] & single[4:]
            if np.count_nonzero(triple):
                chain = np.zeros(n, dtype=bool)
                chain[:-4] |= triple
                chain[2:-2] |= triple
                chain[4:] |= triple
                drop = np.zeros(n, dtype=bool)
                drop[1:-1] = chain[:-2] & chain[2:]
                # a chain of four or more starting with the word "a" or "i" keeps it apart ("a knife")
                words = (arr[: n - 6] == 97) | (arr[: n - 6] == 105) if n >= 7 else arr[:0] == 0
                for p in np.flatnonzero(drop[1 : n - 5] & words).tolist():
                    if (p == 0 or not chain[p - 2]) and drop[p + 3] and drop[p + 5]:
                        drop[p + 1] = False
                kept = ~drop
                arr, letter = arr[kept], letter[kept]
                if log is not None:
                    log.append(("keep", kept, "spaced-letters"))
    if len(arr) >= 3:
        # repeats: the fourth and later characters of a run are dropped
        same = arr[1:] == arr[:-1]
        three = same[:-1] & same[1:]
        if np.count_nonzero(three):
            letter_runs = 0
            if log is not None:
                if letter is None:
                    letter = _is_letter(arr)
                letter_runs = np.count_nonzero(three & letter[:-2])
            run = three[:-1] & same[2:]
            if np.count_nonzero(run):
                drop = np.zeros(len(arr), dtype=bool)
                drop[3:] = run
                kept = ~drop
                arr = arr[kept]
                if letter is not None:
                    letter = letter[kept]
                if log is not None:
                    log.append(("keep", kept, "repeats"))
                same = arr[1:] == arr[:-1]
                three = same[:-1] & same[1:]
            if letter_runs and log is not None and letter is not None:
                # where the (now at most three long) letter runs start: the matcher also tries them as
                # single and double letters
                starts = np.flatnonzero(three & letter[:-2])
                log.append(("runs", tuple(starts.tolist())))
    return arr
