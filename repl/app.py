"""The interactive REPL: read a line, run a command or stream an answer, repeat."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from . import attach, client, commands, conversation, display, editor, history, sanitize, store
from .editor import Action, Editor
from .errors import ReplError
from .terminal import PASTE_OFF, PASTE_ON, Keys, Paste, raw
from .workbench import Change, Workbench, paths, write

CLEAR = "\x1b[H\x1b[2J"


class Repl:
    """One terminal session against one orchestrator."""

    def __init__(self, url: str, *, api_key: str | None, fd: int, out: TextIO,
                 style: display.Style, history_path: Path, work: Workbench):
        self.url, self.api_key, self.fd, self.out, self.style = url, api_key, fd, out, style
        self.history_path = history_path
        self.history = history.load(history_path)
        self.work = work
        self.opts = commands.Options()
        self.pending: list[str] = []
        self.last_prompt: str | None = None
        self.last_messages: list[dict[str, str]] | None = None
        self.last_stats: dict | None = None
        self.keys = Keys(fd)

    def write(self, text: str) -> None:
        """Write and flush (newlines become CR LF: the terminal's output processing is on)."""
        self.out.write(text)
        self.out.flush()

    def say(self, text: str) -> None:
        """A message on lines of its own."""
        self.write(text + "\n")

    def prompt(self) -> tuple[str, int]:
        """The prompt (styled) and its width; it tells how Enter behaves."""
        if self.pending:
            plain = "... "
        elif self.opts.multiline:
            plain = "cerebrum [multi: blank line sends]> "
        else:
            plain = "cerebrum> "
        return self.style.bold(plain), display.width(plain)

    def run(self) -> int:
        """The loop, until :quit or Ctrl-D; 0."""
        self.say(self.style.dim(f"cerebrum → {self.url} · :help for commands · Ctrl-D exits"))
        self.write(PASTE_ON)
        try:
            while True:
                with raw(self.fd):
                    entry = self.read_input()
                if entry is None:
                    return 0
                try:
                    if not self.handle(entry):
                        return 0
                except KeyboardInterrupt:
                    self.say("^C")
                except ReplError as exc:
                    self.say(self.style.error(f"error: {sanitize.clean(str(exc))}"))
                except Exception as exc:  # never a traceback at the prompt
                    self.say(self.style.error(
                        f"internal error: {type(exc).__name__}: {sanitize.clean(str(exc))}"))
        except EOFError:
            return 0
        finally:
            self.write(PASTE_OFF)

    def read_input(self) -> str | None:
        """One whole input (a line, the multiline block, or a paste); None at Ctrl-D."""
        ed, row = Editor.new(self.history), 0
        cols = shutil.get_terminal_size((80, 24)).columns

        def draw(cursor: int | None = None, text: str | None = None) -> int:
            prompt, pwidth = self.prompt()
            text = ed.text if text is None else text
            out, new_row = display.render(prompt, pwidth, text,
                                          ed.cursor if cursor is None else cursor, cols, row)
            self.write(out)
            return new_row

        row = draw()
        while True:
            key = self.keys.read()
            if isinstance(key, Paste):
                draw(len(ed.text))
                self.write("\r\x1b[J" + self.prompt()[0] + ed.text + key.text + "\n")
                self.pending.append((ed.text + key.text).rstrip("\n"))
                ed, row = Editor.new(self.history), 0
                row = draw()
                continue
            typed = ed.text
            ed, action = editor.feed(ed, key)
            if action in (Action.SUBMIT, Action.EOF):
                draw(len(ed.text))
                self.write("\n")
                row = 0
                entry = self.finish(ed.text, eof=action is Action.EOF)
                if entry is not None:
                    return entry or None
                ed = Editor.new(self.history)
            elif action is Action.INTERRUPT:
                draw(len(typed), typed)  # what was typed stays on screen, as in a shell
                self.write("^C\n")
                self.pending.clear()
                row = 0
            elif action is Action.CLEAR_SCREEN:
                self.write(CLEAR)
                row = 0
            elif action is Action.COMPLETE:
                text, candidates = commands.complete(ed.text)
                ed = editor.set_text(ed, text)
                if candidates:
                    draw(len(ed.text))
                    self.write("\n" + "  ".join(candidates) + "\n")
                    row = 0
            row = draw()

    def finish(self, text: str, *, eof: bool) -> str | None:
        """After Enter or Ctrl-D: the input to handle, "" to exit, None to keep reading."""
        if eof:
            if not self.pending:
                return ""
            block, self.pending = "\n".join(self.pending), []
            return block
        if not self.pending:
            if commands.is_command(text) or not self.opts.multiline:
                return text if text.strip() else None
            if text:
                self.pending.append(text)
            return None
        if text:
            self.pending.append(text)
            if self.opts.multiline:
                return None
        block, self.pending = "\n".join(self.pending).strip("\n"), []
        return block or None

    def handle(self, entry: str) -> bool:
        """Run a command or ask; False to exit."""
        if commands.is_command(entry):
            return self.command(entry)
        self.history = history.append(self.history, entry)
        try:
            history.save(self.history_path, self.history)
        except OSError as exc:
            self.say(self.style.error(f"history not saved: {type(exc).__name__}"))
        self.last_prompt = entry
        for line in self.work.attach(attach.mentions(entry)):
            self.say(self.style.dim(line))
        messages = self.work.messages(entry)
        self.last_messages = messages
        answer = self.ask(messages)
        if answer is not None:
            self.work.finish(entry, answer)
        return True

    def command(self, line: str) -> bool:
        """A `:` command; False for :quit."""
        outcome = commands.run(line, self.opts)
        self.opts = outcome.options
        if outcome.message:
            self.say(outcome.message)
        if outcome.action == "quit":
            return False
        if outcome.action == "help":
            self.say(commands.help_text())
        elif outcome.action == "clear":
            self.write(CLEAR)
            self.last_prompt, self.last_stats, self.last_messages = None, None, None
        elif outcome.action == "stats":
            self.say(display.stats_text(self.last_stats) if self.last_stats
                     else "no stats yet: ask something first")
        elif outcome.action == "context":
            messages = self.work.messages("\n".join(self.pending)) if self.pending \
                else self.last_messages
            if messages is None:
                self.say("nothing to preview yet: ask something first")
            else:
                body = commands.request_body(messages, self.opts, stream=False)
                found = asyncio.run(client.preview(self.url, body, self.api_key))
                self.say(display.preview_text(found, self.style))
        else:
            self.work_command(outcome.action, outcome.arg)
        return True

    def work_command(self, action: str, arg: str) -> None:
        """The conversation and file commands."""
        work = self.work
        if action == "new":
            self.say(work.new())
        elif action == "history":
            self.say(sanitize.clean(conversation.history_text(work.conv)))
        elif action == "undo":
            self.say(sanitize.clean(work.undo()))
        elif action == "resume":
            self.say(sanitize.clean(work.resume(arg)))
        elif action == "add":
            for line in work.attach(paths(arg)):
                self.say(sanitize.clean(line))
        elif action == "drop":
            self.say(sanitize.clean(work.drop(paths(arg))))
        elif action == "files":
            self.say(sanitize.clean(work.files_text()))
        elif action == "diff":
            for change in work.changes(arg, writing=False):
                self.show(change)
        elif action in ("apply", "save"):
            self.write_back(work.changes(arg, writing=True), confirm_new=action == "apply")

    def show(self, change: Change) -> None:
        """A change's diff (or that there is none), with a note when its block is cut off."""
        if not change.diff:
            self.say(f"{sanitize.clean(change.name)}: no changes")
        else:
            self.say(display.diff_text(change.diff, self.style))
        if not change.complete:
            self.say(self.style.error(f"{sanitize.clean(change.name)}: the answer's code "
                                      "block is cut off (no closing fence)"))

    def write_back(self, changes: list[Change], *, confirm_new: bool) -> None:
        """Show the diffs and write after a y/N (a new file by :save needs none)."""
        asking = [c for c in changes if c.diff and c.complete and (confirm_new or c.old)]
        for change in asking:
            self.show(change)
        if asking:
            names = ", ".join(sanitize.clean(c.name) for c in asking)
            backups = ", ".join(sanitize.clean(c.name) + ".orig" for c in asking if c.old)
            if not self.confirm(f"write {names}" + (f" (old kept as {backups})" if backups
                                                     else "") + "? [y/N] "):
                self.say("not written")
                return
        for line in write(changes):
            self.say(sanitize.clean(line))

    def confirm(self, question: str) -> bool:
        """Ask; True only for y or Y (any other key, Enter or Ctrl-C is no)."""
        self.write(self.style.bold(question))
        with raw(self.fd):
            key = self.keys.read()
        yes = key in ("y", "Y")
        self.say("y" if yes else "n")
        return yes

    def ask(self, messages: list[dict[str, str]]) -> client.Answer | None:
        """Stream the answer as it arrives, scrubbed for the terminal; Ctrl-C cancels it
        (None: a cancelled answer is not kept in the conversation)."""
        answer = client.Answer()
        body = commands.request_body(messages, self.opts)
        scrub, last = sanitize.Scrubber(), ""

        def show(piece: str) -> None:
            nonlocal last
            text = scrub(piece)
            if text:
                self.write(text)
                last = text[-1]

        with raw(self.fd, signals=True):
            try:
                done = asyncio.run(self._stream(body, answer, show))
            finally:
                if last and last != "\n":
                    self.write("\n")
        if not done:
            self.say(self.style.dim("[cancelled]"))
            return None
        self.last_stats = answer.stats
        elapsed = time.monotonic() - answer.started
        ttft = None if answer.first_token is None else \
            (answer.first_token - answer.started) * 1000
        rate = answer.tokens / elapsed if elapsed > 0 else None
        self.say(self.style.dim(display.status_line(answer.stats, answer.tokens, ttft, rate)))
        return answer

    async def _stream(self, body: dict, answer: client.Answer,
                      show: Callable[[str], None]) -> bool:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None
        loop.add_signal_handler(signal.SIGINT, task.cancel)
        try:
            await client.stream_chat(self.url, body, show, answer, self.api_key)
        except asyncio.CancelledError:
            task.uncancel()
            return False
        finally:
            loop.remove_signal_handler(signal.SIGINT)
        return True


def colour_wanted(out: TextIO) -> bool:
    """Colours only on a terminal, and never with NO_COLOR set."""
    return out.isatty() and "NO_COLOR" not in os.environ


def interactive(url: str, api_key: str | None, files: list[str]) -> int:
    """Run the REPL on this terminal, `files` attached."""
    work = Workbench(Path.cwd(), store.default_dir())
    repl = Repl(url, api_key=api_key, fd=sys.stdin.fileno(), out=sys.stdout,
                style=display.Style(colour_wanted(sys.stdout)),
                history_path=history.default_path(), work=work)
    for line in work.attach(files):
        repl.say(sanitize.clean(line))
    return repl.run()
