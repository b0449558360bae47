"""netmon.safe_text: captured text shown inert in every output."""

from __future__ import annotations

import pytest

from netmon.safe_text import neutralise


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("plain Cymraeg ŵ ŷ zażółć", "plain Cymraeg ŵ ŷ zażółć"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("\x1b[31mred\x1b[0m", "\\u001b[31mred\\u001b[0m"),
        ("\x1b]0;title\x07x", "\\u001b]0;title\\u0007x"),
        ("nul\x00del\x7fc1\x85", "nul\\u0000del\\u007fc1\\u0085"),
        ("moc.elgoog\u202e", "moc.elgoog\\u202e"),
        ("a\u2066b\u2069c\u200fd", "a\\u2066b\\u2069c\\u200fd"),
        ("line\u2028sep", "line\\u2028sep"),
    ],
)
def test_neutralise(text: str, want: str) -> None:
    assert neutralise(text) == want


def test_one_line_form() -> None:
    assert neutralise("a\r\nb\nc", keep_newlines=False) == "a b c"
