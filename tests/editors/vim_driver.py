"""The real llama.vim plugin in real Vim under tmux: a session per file, keys sent as a person
types them, the screen read back with `tmux capture-pane`. Used by test_real_llama_vim.py and
bench/editor.py; the plugin comes from `LLAMA_VIM_DIR` (a checkout of ggml-org/llama.vim), as
no package registry this project installs from carries it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

# What the plugin draws beside a suggestion (show_info = 2): "   | c: 12, r: 0/16, … | p: …"
INFO_MARK = " | c: "


def plugin_dir() -> Path | None:
    """The llama.vim checkout named by LLAMA_VIM_DIR, when it holds the plugin."""
    where = os.environ.get("LLAMA_VIM_DIR")
    if not where or not (Path(where) / "autoload" / "llama.vim").is_file():
        return None
    return Path(where)


def missing_tools() -> str | None:
    """Why a real-Vim session cannot run here, or None."""
    if plugin_dir() is None:
        return ("LLAMA_VIM_DIR does not name a checkout of ggml-org/llama.vim "
                "(docs/editors.md: checking with the real plugin)")
    for tool in ("vim", "tmux", "curl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


class VimSession:
    """Vim with llama.vim pointed at `endpoint` (an /infill URL), editing `path`."""

    def __init__(self, work: Path, endpoint: str, path: Path, *, api_key: str = "",
                 model: str = "", columns: int = 160, rows: int = 40):
        self.work, self.path = work, path
        self.socket = str(work / "tmux.sock")
        plugin = plugin_dir()
        assert plugin is not None, missing_tools()
        vimrc = work / "vimrc"
        vimrc.write_text(
            "set nocompatible noswapfile nobackup viminfo= shortmess+=I\n"
            "filetype plugin indent on\n"
            f"set runtimepath^={plugin}\n"
            f"let g:llama_config = {{'endpoint_fim': '{endpoint}', 'api_key': '{api_key}',"
            f" 'model_fim': '{model}', 'show_info': 2}}\n")
        self._tmux("new-session", "-d", "-x", str(columns), "-y", str(rows),
                   f"vim -u {vimrc} -i NONE {path}")
        try:
            # llama.vim warns on Vim 9.0 (it wants 9.1) and Vim waits for Enter; 9.0 runs it.
            _, screen = self.wait_for(lambda screen: path.name in screen
                                      or "Press ENTER" in screen, 30)
            if "Press ENTER" in screen:
                self.keys("Enter")
                self.wait_for(lambda screen: path.name in screen, 30)
        except BaseException:
            self.close()  # no Vim left behind when it never came up
            raise

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], check=True,
                              capture_output=True, text=True, timeout=30).stdout

    def screen(self) -> str:
        """What the terminal shows now."""
        return self._tmux("capture-pane", "-p")

    def keys(self, *keys: str, literal: bool = False) -> None:
        """Type `keys` (tmux key names such as Escape, Tab, Enter; or text with literal)."""
        self._tmux("send-keys", *(["-l"] if literal else []), *keys)

    def wait_for(self, shows: Callable[[str], bool], timeout: float) -> tuple[float, str]:
        """Seconds until the screen `shows` what is asked, and that screen; TimeoutError."""
        start = time.monotonic()
        while True:
            screen = self.screen()
            if shows(screen):
                return time.monotonic() - start, screen
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"not shown within {timeout:.0f} s; the screen:\n{screen}")
            time.sleep(0.02)

    def wait_exit(self, timeout: float) -> None:
        """Until Vim has quit (its tmux session ended, so its files are written whole)."""
        deadline = time.monotonic() + timeout
        while subprocess.run(["tmux", "-S", self.socket, "has-session"], capture_output=True,
                             timeout=30).returncode == 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Vim did not quit within {timeout:.0f} s")
            time.sleep(0.05)

    def close(self) -> None:
        """Quit Vim without saving and end the tmux server."""
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True,
                       timeout=30)
