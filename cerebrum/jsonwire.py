"""JSON on the wire, strict in and compact out.

In: `decode_json` reads a request body as UTF-8 JSON within limits, or says why not
(`InvalidBody`), whatever wire format the body is in.

Out: the one JSON serializer both tiers write with, for every body, SSE payload and upstream
request: compact (`{"content":"…"}`), as llama.cpp's `llama-server` writes it.

Editor plugins check the raw bytes before they parse them: llama.vim drops any `/infill`
reply that does not match `"content"\\s*:"` — no space between the colon and the quote — so
Python's default `", "`/`": "` separators made every completion vanish. Compact JSON also
holds no raw newline (Vim's job channels hand a callback one line at a time) and is smaller
over the tailnet.
"""

from __future__ import annotations

import json
import math
import operator
import re
from itertools import accumulate, count
from typing import Any

from cerebrum.generation.errors import InvalidBody

SEPARATORS = (",", ":")


def dumps(obj: Any) -> str:
    """`obj` as compact JSON text, non-ASCII characters as they are (UTF-8 on the wire)."""
    return json.dumps(obj, ensure_ascii=False, separators=SEPARATORS)


def dump_bytes(obj: Any) -> bytes:
    """`obj` as compact UTF-8 JSON bytes."""
    return dumps(obj).encode("utf-8")


def sse_event(data: Any) -> bytes:
    """One server-sent event: `data: <compact JSON>` (a str, such as `[DONE]`, as it is)."""
    payload = data if isinstance(data, str) else dumps(data)
    return f"data: {payload}\n\n".encode()


MAX_DEPTH = 64  # an OpenAI body nests ~6 deep; a JSON schema in it, a few more
MAX_NUMBER_CHARS = 64  # for floats: a double needs 17 significant digits
# A JSON string, or an unterminated one to the end of the text: possessive, so each
# character is looked at once and a failed string is never rescanned from a later quote.
_STRING = re.compile(r'"(?:[^"\\]++|\\.?)*+"?', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_TWICE_OPENS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
_TOO_DEEP = f"request body nests arrays/objects more than {MAX_DEPTH} levels deep"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def too_deep(text: str) -> bool:
    """Whether arrays/objects in JSON `text` nest deeper than MAX_DEPTH, in linear time.

    With strings cut out, the depth after the i-th bracket is 2 * (opens so far) - i; every
    step runs in C and stops at the first bracket past the limit.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False  # cannot be deeper: ordinary bodies skip the scan
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).encode("ascii")
    depths = map(operator.sub, accumulate(brackets.translate(_TWICE_OPENS)), count(1))
    return any(map(MAX_DEPTH.__lt__, depths))


def _constant(name: str) -> Any:
    raise InvalidBody(f"request body holds {name}, which is not a JSON number",
                      "invalid_json")


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise InvalidBody(f"request body holds a number of {len(text)} characters; "
                          f"at most {MAX_NUMBER_CHARS} are accepted", "invalid_json")
    value = float(text)
    if not math.isfinite(value):
        raise InvalidBody(f"request body holds a number out of range ({text[:24]})",
                          "invalid_json")
    return value


def _check_unicode(value: Any, text: str) -> None:
    """A `\\ud800` escape decodes to a lone surrogate, which no encoder or tokenizer takes."""
    if not _SURROGATE_ESCAPE.search(text):
        return  # decoded UTF-8 never holds a surrogate; only an escape can make one
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        point = ord(exc.object[exc.start])
        raise InvalidBody(f"request body holds a lone UTF-16 surrogate escape (\\u{point:04x}) "
                          "in a string; escape characters above U+FFFF as a surrogate pair",
                          "invalid_encoding") from None


def decode_json(raw: bytes) -> Any:
    """Parse a request body as UTF-8 JSON, or say why it is not acceptable JSON.

    Beyond syntax and encoding: nesting deeper than MAX_DEPTH, NaN/Infinity and numbers
    out of range, and lone surrogate escapes are refused, so nothing later meets them.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidBody(f"request body is not valid UTF-8 (byte {exc.start})",
                          "invalid_encoding") from None
    if not text.strip():
        raise InvalidBody("request body is empty; expected a JSON object", "invalid_json")
    if too_deep(text):
        raise InvalidBody(_TOO_DEEP, "invalid_json")
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float)
    except json.JSONDecodeError as exc:
        raise InvalidBody(f"request body is not valid JSON: {exc.msg} at line {exc.lineno} "
                          f"column {exc.colno}", "invalid_json") from None
    except InvalidBody:
        raise
    except ValueError:  # an integer over Python's 4,300-digit limit for int()
        raise InvalidBody("request body holds an integer too long to read",
                          "invalid_json") from None
    except RecursionError:  # unbalanced brackets the depth scan left to the parser
        raise InvalidBody(_TOO_DEEP, "invalid_json") from None
    _check_unicode(value, text)
    return value
