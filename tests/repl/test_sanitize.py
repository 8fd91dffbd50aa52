"""Scrubbing model text for the terminal: sequences removed, text kept, split anywhere."""

from __future__ import annotations

import time
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from repl.sanitize import Scrubber, State, clean, encodable, scrub


def scrubbed_in_pieces(pieces: list[str]) -> str:
    scrubber = Scrubber()
    return "".join(scrubber(piece) for piece in pieces)


def test_escape_sequences_are_removed():
    assert clean("a\x1b]52;c;ZXZpbA==\x07b") == "ab"            # OSC 52, BEL-terminated
    assert clean("a\x1b]0;pwned\x1b\\b") == "ab"                 # title, ST-terminated
    assert clean("a\x1b[2J\x1b[10;20H\x1b[?1049hb") == "ab"      # CSI: clear, move, alt screen
    assert clean("a\x1bPq#0;2;0;0;0#0!7~\x1b\\b") == "ab"        # DCS (sixel)
    assert clean("a\x1b_apc\x07\x1b^pm\x07\x1bXsos\x1b\\b") == "ab"
    assert clean("a\x1b(0\x1b7\x1bcb") == "ab"                   # charset, save cursor, reset
    assert clean("a\x9b31m\x9d0;t\x9c\x90dcs\x9cb") == "ab"      # the 8-bit (C1) forms
    assert clean("a\x1b]0;t\x18b\x1b]0;t\x1ac") == "abc"         # CAN and SUB abort strings


def test_controls_are_removed_but_tabs_and_newlines_kept():
    assert clean("a\x00\x07\x08\x0b\x0c\x7f\x85b\tc\nd") == "ab\tc\nd"


def test_carriage_returns_become_line_breaks():
    assert clean("rm -rf /\rls") == "rm -rf /\nls"  # nothing hidden by overwriting
    assert clean("a\r\nb\r\rc\n\rd") == "a\nb\n\nc\n\nd"
    assert scrubbed_in_pieces(["a\r", "\nb"]) == "a\nb"


def test_an_unterminated_string_ends_at_the_line_break():
    assert clean("keep\x1b]0;no terminator\nthe rest") == "keep\nthe rest"
    assert clean("keep\x1b]8;;http://x\rthe rest") == "keep\nthe rest"


def test_a_broken_sequence_keeps_the_text_after_it():
    assert clean("a\x1b\nb") == "a\nb"
    assert clean("a\x1b[12\x1b[1mb") == "ab"
    assert clean("a\x1b[1;\xe9b") == "a\xe9b"
    assert clean("a\x1bé") == "aé"
    assert clean("x\x1b]0;t\x1b[31my") == "xy"  # ESC inside a string starts a new sequence


def test_lone_surrogates_become_replacement_characters():
    assert clean("a\ud800b") == "a\ufffdb"
    assert encodable("a\udfff\x1b") == "a\ufffd\x1b"


def test_state_carries_across_pieces():
    out, state = scrub("text \x1b]52;c;ZX")
    assert (out, state) == ("text ", State.STRING)
    assert scrub("pbA==\x07 more", state) == (" more", State.GROUND)
    pieces = ["a\x1b", "[", "3", "1m", "b\x1b]0", ";x\x1b", "\\c"]
    assert scrubbed_in_pieces(pieces) == "abc"


def printable(text: str) -> bool:
    return all(c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cs") for c in text)


hostile = st.lists(st.sampled_from(["\x1b", "[", "]", "P", "\\", "\x07", "\x9b", "\x9c", "\x9d",
                                    "\r", "\n", "\t", ";", "0", "52", "m", "H", "\x18", "\x00",
                                    "\x7f", "\x08", "é", "漢", "a b", "\ud800", " "]),
                   max_size=80).map("".join)
texts = st.one_of(st.text(max_size=200), hostile)


@given(texts)
def test_output_holds_no_control_character_but_newline_and_tab(text):
    out = clean(text)
    assert printable(out)
    out.encode("utf-8")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")) | st.sampled_from(
    "\n\t"), max_size=300))
def test_plain_text_passes_unchanged(text):
    assert clean(text) == text
    assert encodable(text) == text


@given(texts, st.lists(st.integers(min_value=0, max_value=300), max_size=6))
def test_split_anywhere_gives_the_unsplit_result(text, cuts):
    points = sorted({min(c, len(text)) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    assert scrubbed_in_pieces(pieces) == clean(text)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["\x1b", "\x1b[", "\x1b[1;", "\x1b]", "\x1b]0;\x1b", "\r", "\x9b0",
                        "a\x1b[", "\x1bP\x1b\\", "漢\x00"]))
def test_time_is_linear_in_the_input(unit):
    text = unit * (256_000 // len(unit))  # about 256 KB of one hostile pattern
    started = time.perf_counter()
    out = clean(text)
    per_kb = (time.perf_counter() - started) / (len(text) / 1024)
    assert printable(out)
    assert per_kb < 0.01, f"{per_kb * 1000:.2f} ms per KB"  # catches quadratic time only
