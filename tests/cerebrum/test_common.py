"""Shared pieces: bearer keys, loopback/exposure rules, socket-activation env, idle tracking."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from cerebrum.activation import Activity, host_of, inherited_socket, wait_idle
from cerebrum.auth import bearer_ok
from cerebrum.config import ConfigError, check_exposure, env_overrides, is_loopback, keys_from


def test_bearer_keys():
    keys = ("alpha", "beta")
    assert bearer_ok("Bearer alpha", keys) and bearer_ok("bearer beta", keys)
    assert not bearer_ok("Bearer gamma", keys)
    assert not bearer_ok("alpha", keys)
    assert not bearer_ok("Basic alpha", keys)
    assert not bearer_ok("", keys)
    assert not bearer_ok("Bearer alpha", ())


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
