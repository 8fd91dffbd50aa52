"""Settings: TOML + env overrides, validation messages that name the key, exposure guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from cerebrum.config import ConfigError, check_exposure
from vps_appliance.settings import default_state_dir, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "backend.toml"
    path.write_text(text)
    return path


def test_defaults_serve_the_packaged_models_on_loopback():
    s = load_settings(None, {})
    assert (s.host, s.port, s.max_queue) == ("127.0.0.1", 9000, 4)
    assert [m.name for m in s.models] == ["qwen2.5-coder-1.5b-instruct",
                                          "qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct"]
    assert [m.source for m in s.models] == [m.name for m in s.models]
    assert [m.n_ctx for m in s.models[:2]] == [32768, 32768]  # the agents' prompts fit


def test_toml_manifest_and_env_overrides(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# comment\nk1\n\nk2\n")
    path = write(tmp_path, f"""
port = 9100
api_keys_file = "{keys}"
[[models]]
name = "small"
path = "/models/small.gguf"
n_ctx = 1024
chat_format = "chatml"
[models.sampling]
temperature = 0
max_tokens = 32
""")
    s = load_settings(path, {"CEREBRUM_BACKEND_PORT": "9200", "CEREBRUM_API_KEYS": "k3, k4",
                             "CEREBRUM_BACKEND_MAX_QUEUE": "2"})
    assert s.port == 9200 and s.max_queue == 2
    assert s.api_keys == ("k1", "k2", "k3", "k4")
    assert "k1" not in repr(s)
    m = s.model("small")
    assert m is not None and m.path == Path("/models/small.gguf") and m.n_ctx == 1024
    assert m.sampling.temperature == 0.0 and m.sampling.max_tokens == 32
    assert s.model("../../etc/passwd") is None


@pytest.mark.parametrize("text, fragment", [
    ("port = 'x'", "port: expected int"),
    ("port = 70000", "port: must be between"),
    ("bogus = 1", "bogus: unknown key"),
    ("[[models]]\nname = 'a'", "set exactly one of 'path' or 'source'"),
    ("[[models]]\nname = 'a'\nsource = 'nope'", "models\\[0\\].source: unknown packaged model"),
    ("[[models]]\nname = 'a'\npath = 'x'\nn_ctx = 1", "models\\[0\\].n_ctx"),
    ("[[models]]\nname = 'a'\npath = 'x'\nchat_format = 'x'", "chat_format"),
    ("[[models]]\nname = 'a'\npath = 'x'\nfim_layout = 'x'", "models\\[0\\].fim_layout: must be"),
    ("[[models]]\nname = 'a'\npath = 'x'\nfim_suffix_tokens = -1", "fim_suffix_tokens"),
    ("[[models]]\nname = 'a'\npath = 'x'\nspeculative = 'on'", "models\\[0\\].speculative: must"),
    ("[[models]]\nname = 'a'\npath = 'x'\nspeculative = 'exact'", "needs flash_attn = true"),
    ("[[models]]\nname = 'a'\npath = 'x'\ndraft_min = 0", "models\\[0\\].draft_min"),
    ("[[models]]\nname = 'a'\npath = 'x'\ndraft_min = 8\ndraft_max = 4", "draft_max"),
    ("[[models]]\nname = 'a'\npath = 'x'\nweight_repack = 'yes'", "weight_repack: expected"),
    ("[[models]]\nname = 'a'\npath = 'x'\n[models.sampling]\ntop_p = 3", "sampling.top_p"),
    ("[[models]]\nname = 'a'\npath = 'x'\nparallel = 0", "models\\[0\\].parallel: must be "),
    ("[[models]]\nname = 'a'\npath = 'x'\nn_ctx = 128\nparallel = 4",
     "models\\[0\\].parallel: 4 sequences need n_ctx of at least 256"),
    ("[[models]]\nname = 'a'\npath = 'x'\nstep_ms = 0", "models\\[0\\].step_ms: must"),
    ("[[models]]\nname = 'a'\npath = 'x'\nprefix_cache_disk_bytes = -1",
     "models\\[0\\].prefix_cache_disk_bytes: must"),
    ("[[models]]\nname = 'a'\npath = 'x'\nprefix_cache_min_tokens = 8",
     "models\\[0\\].prefix_cache_min_tokens: must"),
    ("state_dir = 5", "state_dir"),
    ("[[models]]\npath = 'x'", "models\\[0\\].name: required"),
    ("models = []", "non-empty array"),
    ("[[models]]\nname='a'\npath='x'\n[[models]]\nname='a'\npath='y'", "duplicate names"),
    ("port = ", "config file"),
])
def test_invalid_config_names_the_key(tmp_path, text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_settings(write(tmp_path, text), {})


def test_bad_env_value_names_the_variable():
    with pytest.raises(ConfigError, match="CEREBRUM_BACKEND_PORT"):
        load_settings(None, {"CEREBRUM_BACKEND_PORT": "ninety"})


def test_missing_key_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="api_keys_file: cannot read"):
        load_settings(None, {"CEREBRUM_BACKEND_API_KEYS_FILE": str(tmp_path / "none")})


def test_exposure_guard_needs_a_key_off_loopback():
    check_exposure("127.0.0.1", load_settings(None, {}).api_keys)
    check_exposure("::1", ())
    check_exposure("localhost", ())
    with pytest.raises(ConfigError, match="CEREBRUM_API_KEYS"):
        check_exposure("0.0.0.0", load_settings(None, {}).api_keys)
    check_exposure("0.0.0.0", load_settings(None, {"CEREBRUM_API_KEYS": "k"}).api_keys)


def test_write_timeout_defaults_to_30_s_and_reads_the_file_and_environment(tmp_path):
    assert load_settings(None, {}).write_timeout == 30.0
    assert load_settings(write(tmp_path, "write_timeout = 5"), {}).write_timeout == 5.0
    env = {"CEREBRUM_BACKEND_WRITE_TIMEOUT": "2.5"}
    assert load_settings(write(tmp_path, "write_timeout = 5"), env).write_timeout == 2.5


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "inf", "3601"])
def test_write_timeout_out_of_range_names_the_key(raw):
    with pytest.raises(ConfigError, match=r"write_timeout: must be between 0\.01 and 3600"):
        load_settings(None, {"CEREBRUM_BACKEND_WRITE_TIMEOUT": raw})


def test_the_state_directory_is_systemds_else_xdgs(tmp_path):
    assert default_state_dir({"STATE_DIRECTORY": "/var/lib/cerebrum-backend:/var/lib/x"}) \
        == Path("/var/lib/cerebrum-backend")
    assert default_state_dir({"XDG_STATE_HOME": "/s"}) == Path("/s/cerebrum/backend")
    assert load_settings(None, {"CEREBRUM_BACKEND_STATE_DIR": str(tmp_path)}).state_dir \
        == tmp_path
