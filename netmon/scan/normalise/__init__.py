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
   "s.u.i.c.i.d.e", "s-u-i-c-i-d-e" -> "suicide"); a run of four or more that starts with "a" or "i"
   keeps that first letter apart, as the word it most likely is ("a k.n.i.f.e" -> "a knife"; the
   matcher also indexes "anxiety" as "a nxiety", counted only where letters were spaced).
6. ``repeats``: a run of three or more of the same character becomes exactly three ("killllll" ->
   "killl"); the matcher indexes phrase variants so that such a run matches the letter written once or
   twice in the phrase.

``normalise`` is the fast path used on all traffic (an ASCII byte table, a cached fold for non-ASCII
characters, cheap gates in front of the rare regex steps). ``normalise_mapped`` is the slow path that
also maps each normalised character back to the original text; it is only run when a match needs
explaining. Both produce exactly the same text (a property test proves it).

Modules: ``fold`` (step 2, per character), ``fast`` (the whole pipeline, ``normalise``), ``mapped``
(``normalise_mapped`` and the way back), ``explain`` (``steps_applied``), ``variants`` (the spellings
under which the matcher indexes a phrase, and traffic with letter runs written shorter).
"""

from __future__ import annotations

from netmon.scan.normalise.explain import STEPS, steps_applied
from netmon.scan.normalise.fast import NORMALISER_VERSION, normalise
from netmon.scan.normalise.fold import fold_char
from netmon.scan.normalise.mapped import Mapped, normalise_mapped

__all__ = [
    "NORMALISER_VERSION",
    "STEPS",
    "Mapped",
    "fold_char",
    "normalise",
    "normalise_mapped",
    "steps_applied",
]
