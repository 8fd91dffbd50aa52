"""Both services' command lines: overrides validated like config values, one line, exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

SERVICES = ("vps_appliance", "pi_appliance")
BAD_FLAGS = [
    (("--port", "70000"), "--port: must be between 0 and 65535, got 70000"),
    (("--port", "-1"), "--port: must be between 0 and 65535, got -1"),
    (("--idle-exit", "-1"), "--idle-exit: must be >= 0.0, got -1.0"),
    (("--idle-exit", "nan"), "--idle-exit: must be a finite number of seconds"),
    (("--idle-exit", "inf"), "--idle-exit: must be a finite number of seconds"),
    (("--host", " "), "--host: must not be empty"),
]


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(("flags", "message"), BAD_FLAGS)
def test_a_bad_override_is_one_line_naming_the_flag_and_exit_2(service, flags, message):
    proc = subprocess.run([sys.executable, "-m", service, *flags], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
