"""One session's work: the conversation (saved after each change) and the attached files, and
what the conversation and file commands do with them. The terminal is the app's: each
method returns the text to show, or raises a ReplError with the one line to show."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from . import attach, blocks, conversation, sanitize, store, workspace
from .client import Answer
from .conversation import Conversation, Turn
from .errors import ReplError


@dataclass(frozen=True)
class Change:
    """An answer's version of one file: where it goes, the old and new text, their diff."""

    name: str
    path: Path
    old: str | None  # None: the file does not exist yet
    new: str
    diff: str
    complete: bool  # the answer's block had its closing fence (else it was cut off)


def paths(arg: str) -> list[str]:
    """A command's PATH arguments, shell-quoted like a shell's (`"my file.py"`)."""
    try:
        return shlex.split(arg)
    except ValueError as exc:
        raise ReplError(f"cannot read the paths: {exc}") from None


class Workbench:
    """The conversation and the attached files of one REPL session."""

    def __init__(self, cwd: Path, directory: Path, conv: Conversation | None = None):
        self.cwd, self.directory = cwd, directory
        self.conv = conv or store.new()
        self.files: dict[str, Path] = {}  # name -> where, in the order attached

    # Files

    def attach(self, given: list[str]) -> list[str]:
        """Attach each file; a line per file, saying what was attached or why not."""
        out = []
        for one in given:
            try:
                found = attach.read(self.cwd, one)
            except attach.AttachError as exc:
                out.append(str(exc))
                continue
            again = found.name in self.files
            self.files[found.name] = found.path
            lines = found.text.count("\n") + (not found.text.endswith("\n") and bool(found.text))
            out.append(f"{'still attached' if again else 'attached'}: {found.name} "
                       f"({lines} lines)")
        return out

    def drop(self, given: list[str]) -> str:
        """Detach the named files, or all without a name."""
        if not given:
            if not self.files:
                return "no files attached"
            names, self.files = list(self.files), {}
            return f"dropped: {', '.join(names)}"
        out = []
        for one in given:
            name = attach.name_of(self.cwd, one)[0]
            out.append(f"dropped: {name}" if self.files.pop(name, None) else
                       f"{name}: not attached")
        return "\n".join(out)

    def files_text(self) -> str:
        """`:files`: the attached files, one a line."""
        if not self.files:
            return "no files attached: :add PATH or @path in a prompt"
        out = []
        for name, path in self.files.items():
            try:
                size = f"{path.stat().st_size} bytes"
            except OSError:
                size = "missing now"
            out.append(f"{name} · {size}")
        return "\n".join(out)

    def read_files(self) -> list[attach.Attached]:
        """The attached files as they are on disk now; AttachError if one cannot be read."""
        return [attach.read(self.cwd, str(path)) for path in self.files.values()]

    # The conversation

    def messages(self, prompt: str) -> list[dict[str, str]]:
        """The chat messages that send `prompt` now: the conversation, the prompt, the files."""
        files = self.read_files()
        files = [attach.Attached(name, f.path, f.text) for name, f in zip(self.files, files,
                                                                        strict=True)]
        return conversation.messages(self.conv.turns, attach.user_content(prompt, files),
                                     with_files=bool(files))

    def finish(self, prompt: str, answer: Answer) -> None:
        """Keep a finished exchange and save the conversation."""
        # Lone surrogates (JSON can carry them) cannot be saved: U+FFFD, as on the screen.
        turn = Turn(prompt, sanitize.encodable(answer.text), tuple(self.files),
                    answer.prompt_tokens,
                    answer.tokens, answer.stats.get("model") if isinstance(
                        answer.stats.get("model"), str) else None)
        self.conv = conversation.add(self.conv, turn)
        self.save()

    def save(self) -> None:
        """Write the conversation to its file."""
        try:
            store.save(self.directory, self.conv)
        except OSError as exc:
            raise ReplError(f"conversation not saved: {type(exc).__name__}") from None

    def new(self) -> str:
        """Start a new conversation (the last one is already saved)."""
        self.conv = store.new()
        kept = f"; still attached: {', '.join(self.files)}" if self.files else ""
        return "new conversation" + kept

    def undo(self) -> str:
        """Drop the last exchange."""
        if not self.conv.turns:
            return "nothing to undo: the conversation is empty"
        dropped = self.conv.turns[-1].prompt.strip().split("\n", 1)[0]
        self.conv = conversation.undo(self.conv)
        self.save()
        return f"dropped the last exchange ({dropped[:60]}); {len(self.conv.turns)} turns left"

    def resume(self, arg: str) -> str:
        """List the saved conversations, or reopen number `arg` (with its last files)."""
        saved = store.listing(self.directory)
        if not arg:
            return store.listing_text(saved, self.conv.id)
        n = int(arg)
        if not 1 <= n <= len(saved):
            raise ReplError(f"no conversation {n}: :resume lists {len(saved)}")
        self.conv = saved[n - 1]
        out = [f"resumed: {self.conv.title} ({len(self.conv.turns)} turns; :history "
               "lists them)"]
        last_files = self.conv.turns[-1].files if self.conv.turns else ()
        if last_files:
            out += self.attach(list(last_files))
        return "\n".join(out)

    # Answers back to disk

    def changes(self, arg: str, *, writing: bool) -> list[Change]:
        """The last answer's version of each file it changes (`:diff`, `:apply`, `:save`).

        A PATH given is written wherever it points; a file matched by name must be inside
        the working directory to be written (`workspace.target`).
        """
        given = paths(arg)
        if len(given) > 1:
            raise ReplError("one PATH at most")
        target = given[0] if given else None
        out = []
        for name, block in blocks.pairs(self.conv.last_answer, list(self.files), target):
            path = workspace.target(self.cwd, name, explicit=target is not None or not writing)
            old = workspace.read_current(path)
            new = blocks.new_text(old, block)
            out.append(Change(name, path, old, new, blocks.unified(old, new, name),
                              block.closed))
        return out


def write(changes: list[Change]) -> list[str]:
    """Write each change (whose block is complete); a line per file."""
    out = []
    for change in changes:
        if not change.complete:
            out.append(f"{change.name}: not written: the answer's code block is cut off "
                       "(no closing fence)")
            continue
        if not change.diff:
            out.append(f"{change.name}: unchanged")
            continue
        backup = workspace.write(change.path, change.new)
        out.append(f"wrote {change.name}" + (f" (the old one is {change.name}"
                                              f"{workspace.BACKUP_SUFFIX})" if backup else ""))
    return out
