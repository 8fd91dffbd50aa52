"""The REPL's `:` commands, parsed purely: a line and the options in, an outcome out."""

from __future__ import annotations

from dataclasses import dataclass, replace

from cerebrum.languages import LANGUAGES

COMMANDS = {
    ":help": "this list",
    ":model": "NAME|auto — pin a model (or route), or let routing choose",
    ":lang": f"{'|'.join(LANGUAGES)}|auto — the code's language, or detect it",
    ":multi": "toggle multiline input (Enter adds a line; an empty line or Ctrl-D sends)",
    ":context": "what the next (or last) prompt sends, after the context pipeline",
    ":stats": "the last answer's stats",
    ":raw": "on|off — skip the context pipeline (send the prompt as typed)",
    ":clear": "clear the screen and forget the last prompt",
    ":new": "start a new conversation (attached files stay attached)",
    ":history": "the conversation's turns with their token counts",
    ":undo": "drop the conversation's last exchange",
    ":resume": "[N] — list saved conversations, or reopen number N",
    ":add": "PATH… — attach files (also: @path in a prompt)",
    ":drop": "[PATH…] — detach files (all without a PATH)",
    ":files": "the attached files",
    ":save": "PATH — write the last answer's code block to PATH",
    ":diff": "[PATH] — the last answer's changes to an attached file (or PATH), as a diff",
    ":apply": "[PATH] — write them after a y/N confirmation (old file kept as PATH.orig)",
    ":quit": "exit (as does Ctrl-D on an empty line)",
}


TAKES_PATHS = frozenset({":add", ":drop", ":save", ":diff", ":apply"})


@dataclass(frozen=True)
class Options:
    """What each request carries besides the prompt."""

    model: str = "auto"
    language: str = "auto"
    multiline: bool = False
    raw: bool = False


@dataclass(frozen=True)
class Outcome:
    """A command's effect: new options, a message to show, and what to do next."""

    options: Options
    message: str = ""
    action: str = ""   # "", or the command's name without its colon
    arg: str = ""      # what followed the command, for those that take one


def is_command(line: str) -> bool:
    """Whether the line is a `:` command rather than a prompt."""
    return line.startswith(":") and "\n" not in line.strip()


def help_text() -> str:
    """The command list, one a line."""
    return "\n".join(f"{name:9} {what}" for name, what in COMMANDS.items())


def run(line: str, opts: Options) -> Outcome:
    """Parse one command line against the current options."""
    name, _, arg = line.strip().partition(" ")
    arg = arg.strip()
    usage = f"{name} takes {COMMANDS.get(name, '').split(' — ')[0]}"
    if name not in COMMANDS:
        return Outcome(opts, f"unknown command {name}: try {', '.join(COMMANDS)}")
    if name == ":model":
        if not arg or " " in arg:
            return Outcome(opts, usage)
        return Outcome(replace(opts, model=arg), f"model: {arg}")
    if name == ":lang":
        if arg not in (*LANGUAGES, "auto"):
            return Outcome(opts, usage)
        return Outcome(replace(opts, language=arg), f"language: {arg}")
    if name == ":raw":
        if arg not in ("on", "off"):
            return Outcome(opts, usage)
        return Outcome(replace(opts, raw=arg == "on"), f"raw: {arg}")
    if name in (":add", ":save") and not arg:
        return Outcome(opts, usage)
    if name == ":resume" and arg and not arg.isdigit():
        return Outcome(opts, usage)
    if name in TAKES_PATHS or name == ":resume":
        return Outcome(opts, "", name[1:], arg)
    if arg:
        return Outcome(opts, f"{name} takes no argument")
    if name == ":multi":
        multi = not opts.multiline
        how = "Enter adds a line; an empty line or Ctrl-D sends" if multi else "Enter sends"
        return Outcome(replace(opts, multiline=multi),
                       f"multiline {'on' if multi else 'off'}: {how}")
    return Outcome(opts, "", name[1:])


def _common_prefix(words: tuple[str, ...]) -> str:
    first, last = min(words), max(words)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def complete(text: str) -> tuple[str, tuple[str, ...]]:
    """Tab on `text`: the completed text and, when still ambiguous, the candidates."""
    if not text.startswith(":") or " " in text:
        return text, ()
    matches = tuple(c for c in COMMANDS if c.startswith(text))
    if len(matches) == 1:
        return matches[0] + " ", ()
    prefix = _common_prefix(matches) if matches else text
    return prefix, matches if prefix == text else ()


def request_body(messages: list[dict[str, str]], opts: Options, *, stream: bool = True
                 ) -> dict[str, object]:
    """The chat request for a conversation's messages under the options."""
    body: dict[str, object] = {"messages": messages, "model": opts.model}
    if stream:  # the usage chunk gives the status line its exact token count
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if opts.language != "auto":
        body["language"] = opts.language
    if opts.raw:
        body["cerebrum"] = {"context": "raw"}
    return body
