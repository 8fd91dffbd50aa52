"""Shared pieces: bearer keys, exposure rules, socket activation, idle tracking, JSON bodies."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time

import pytest

from cerebrum.activation import Activity, host_of, inherited_socket, wait_idle
from cerebrum.auth import bearer_ok, key_ok
from cerebrum.config import ConfigError, check_exposure, env_overrides, is_loopback, keys_from
from cerebrum.openai import InvalidBody, decode_json


def test_bearer_keys():
    keys = ("alpha", "beta")
    assert bearer_ok("Bearer alpha", keys) and bearer_ok("bearer beta", keys)
    assert not bearer_ok("Bearer gamma", keys)
    assert not bearer_ok("alpha", keys)
    assert not bearer_ok("Basic alpha", keys)
    assert not bearer_ok("", keys)
    assert not bearer_ok("Bearer alpha", ())


def test_a_key_that_is_not_utf8_is_refused_not_an_error():
    # aiohttp hands a header's bytes that are not UTF-8 over as surrogate escapes.
    sent = b"\xff\xfealpha".decode("utf-8", "surrogateescape")
    assert not bearer_ok("Bearer " + sent, ("alpha",))
    assert not key_ok("", sent, ("alpha",)) and not key_ok("", "\ud800", ("alpha",))
    assert key_ok("Bearer " + sent, "alpha", ("alpha",))


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("10.0.0.1", False), ("example.org", False)])
def test_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_exposure_needs_a_key_off_loopback():
    check_exposure("127.0.0.1", ())
    check_exposure("0.0.0.0", ("k",))
    with pytest.raises(ConfigError, match=r"refusing to listen on 0\.0\.0\.0"):
        check_exposure("0.0.0.0", ())


def test_keys_from_file_and_env(tmp_path):
    path = tmp_path / "keys"
    path.write_text("one\n# note\n\n two \n")
    assert keys_from(path, {"CEREBRUM_API_KEYS": "three,, four"}) == ("one", "two", "three", "four")
    with pytest.raises(ConfigError, match="api_keys_file: cannot read"):
        keys_from(tmp_path / "missing", {})


def test_env_overrides_parse_by_type():
    schema = {"port": int, "debug": bool, "name": str}
    env = {"X_PORT": "80", "X_DEBUG": "yes", "OTHER": "1"}
    assert env_overrides(schema, "X_", env) == {"port": 80, "debug": True}
    with pytest.raises(ConfigError, match="X_DEBUG"):
        env_overrides(schema, "X_", {"X_DEBUG": "maybe"})


def test_inherited_socket_only_for_our_pid():
    assert inherited_socket({}, pid=1) is None
    assert inherited_socket({"LISTEN_PID": "2", "LISTEN_FDS": "1"}, pid=1) is None
    assert inherited_socket({"LISTEN_PID": "1", "LISTEN_FDS": "0"}, pid=1) is None
    assert inherited_socket({"LISTEN_PID": "1", "LISTEN_FDS": "x"}, pid=1) is None


def test_inherited_socket_adopts_the_passed_descriptor():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "1"}
        sock = inherited_socket(env, first_fd=os.dup(listener.fileno()))
        assert sock is not None
        with sock:
            assert sock.getsockname() == listener.getsockname()
            assert sock.family == socket.AF_INET and host_of(sock) == "127.0.0.1"


async def test_idle_tracking_with_a_steered_clock():
    now = [100.0]
    activity = Activity(lambda: now[0])
    activity.begin()
    now[0] += 50
    assert activity.idle_for() == 0.0
    activity.end()
    now[0] += 2
    assert activity.idle_for() == 2.0
    now[0] += 10
    assert await asyncio.wait_for(wait_idle(activity, 5.0), 5) == 12.0


@pytest.mark.parametrize("raw, code, fragment", [
    (b"[" * 100_000 + b"]" * 100_000, "invalid_json", "more than 64 levels deep"),
    (b"{" * 100_000, "invalid_json", "more than 64 levels deep"),
    (b'{"a": ' + b"[" * 65 + b"]" * 65 + b"}", "invalid_json", "more than 64 levels deep"),
    (b'"\\ud800"', "invalid_encoding", "lone UTF-16 surrogate escape (\\ud800)"),
    (b'{"\\udc00": 1}', "invalid_encoding", "(\\udc00)"),
    (b"[NaN]", "invalid_json", "NaN"),
    (b'{"t": -Infinity}', "invalid_json", "-Infinity"),
    (b"[1e400]", "invalid_json", "out of range"),
    (b"[0." + b"1" * 100 + b"]", "invalid_json", "a number of 102 characters"),
    (b"9" * 5000, "invalid_json", "integer too long"),
    (b"\xc3\x28", "invalid_encoding", "not valid UTF-8 (byte 0)"),
    (b" \n ", "invalid_json", "empty"),
    (b'{"a": 1', "invalid_json", "not valid JSON"),
])
def test_decode_json_refuses_what_later_code_cannot_take(raw, code, fragment):
    with pytest.raises(InvalidBody) as caught:
        decode_json(raw)
    assert caught.value.code == code and fragment in str(caught.value)


def test_decode_json_accepts_what_is_merely_unusual():
    assert decode_json(b"[" * 64 + b"]" * 64) is not None
    assert decode_json(b'{"code": "' + b"[{" * 5000 + b'"}') == {"code": "[{" * 5000}
    assert decode_json(b'"\\ud83d\\ude00 \\\\ud800"') == "\U0001f600 \\ud800"
    assert decode_json(b'{"nul": "a\\u0000b", "n": 18446744073709551615, "x": 1e308}') == {
        "nul": "a\x00b", "n": 2**64 - 1, "x": 1e308}


@pytest.mark.parametrize("shape", [
    b"[" * 512, b"[]" * 256, b'{"a":' * 200, b'["\\' * 300, b'"\\"' * 300, b"[0," * 256,
    b"[" * 64 + b"]" * 64, b'{"s": "' + b"\\ud800" * 150,
])
def test_decode_json_is_linear_on_hostile_shapes(shape):
    """1 MiB of each shape decodes (or is refused) in well under a second: no quadratic path."""
    body = shape * (2**20 // len(shape))
    started = time.perf_counter()
    with contextlib.suppress(InvalidBody):
        decode_json(body)
    assert time.perf_counter() - started < 2.0
