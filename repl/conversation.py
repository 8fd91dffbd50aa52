"""A conversation (pure): its finished exchanges, and the chat messages a new turn sends.

Only finished exchanges are kept: an answer cancelled with Ctrl-C, or broken off by an error,
is dropped with its prompt (the prompt stays in the input history, one Up away). Earlier
turns are sent as the user typed them and as the model answered; the attached files go
only into the turn being sent, read fresh from disk, so the model sees each file once and
as it is now.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

# When files are attached: the answer's code blocks are matched to the files by the fence's
# name (`repl.blocks`), so the model is asked to name them.
FILES_SYSTEM = ("The user's files are attached as fenced code blocks whose info string is "
                "the language and the file name (```py app.py). When you change a file, "
                "answer with the whole new file in one fenced code block named the same way; "
                "a new file's block is named by its new name.")


@dataclass(frozen=True)
class Turn:
    """One finished exchange: the prompt as typed, the files it carried, the answer."""

    prompt: str
    answer: str
    files: tuple[str, ...] = ()
    prompt_tokens: int | None = None  # the whole request's, from the answer's usage
    completion_tokens: int | None = None
    model: str | None = None


@dataclass(frozen=True)
class Conversation:
    """The exchanges so far, oldest first, under an id (its file name once saved)."""

    id: str
    created: str  # ISO 8601, UTC
    turns: tuple[Turn, ...] = ()

    @property
    def title(self) -> str:
        """The first prompt's first line (cut), for listings."""
        if not self.turns:
            return "(empty)"
        first = self.turns[0].prompt.strip().split("\n", 1)[0]
        return first if len(first) <= 60 else first[:59] + "…"

    @property
    def last_answer(self) -> str | None:
        """The latest answer, or None before any."""
        return self.turns[-1].answer if self.turns else None


def add(conv: Conversation, turn: Turn) -> Conversation:
    """The conversation with a finished exchange appended."""
    return replace(conv, turns=(*conv.turns, turn))


def undo(conv: Conversation) -> Conversation:
    """The conversation without its last exchange (unchanged when empty)."""
    return replace(conv, turns=conv.turns[:-1])


def messages(turns: tuple[Turn, ...], content: str, *, with_files: bool = False
             ) -> list[dict[str, str]]:
    """The chat messages for a new turn: the exchanges so far, then `content` from the user
    (after a system message on how files are named, when files are attached)."""
    out = [{"role": "system", "content": FILES_SYSTEM}] if with_files else []
    for turn in turns:
        out += [{"role": "user", "content": turn.prompt},
                {"role": "assistant", "content": turn.answer}]
    out.append({"role": "user", "content": content})
    return out


def history_text(conv: Conversation) -> str:
    """`:history`: one line per exchange with its token counts."""
    if not conv.turns:
        return "no turns yet in this conversation"
    lines = []
    for n, turn in enumerate(conv.turns, 1):
        prompt = turn.prompt.strip().split("\n", 1)[0]
        prompt = prompt if len(prompt) <= 50 else prompt[:49] + "…"
        files = f" + {', '.join(turn.files)}" if turn.files else ""
        sent = "?" if turn.prompt_tokens is None else turn.prompt_tokens
        got = "?" if turn.completion_tokens is None else turn.completion_tokens
        lines.append(f"{n:3}. {prompt}{files} · {sent} tokens sent · {got} tokens answered")
    return "\n".join(lines)


def to_json(conv: Conversation) -> dict[str, Any]:
    """The conversation as saved."""
    return {"version": 1, "id": conv.id, "created": conv.created,
            "turns": [{"prompt": t.prompt, "answer": t.answer, "files": list(t.files),
                       "prompt_tokens": t.prompt_tokens,
                       "completion_tokens": t.completion_tokens, "model": t.model}
                      for t in conv.turns]}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def from_json(data: Any) -> Conversation:
    """A saved conversation; ValueError naming what is wrong when it is not one."""
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ValueError("not a version 1 conversation")
    if not isinstance(data.get("id"), str) or not isinstance(data.get("created"), str):
        raise ValueError("id and created must be strings")
    turns = data.get("turns")
    if not isinstance(turns, list):
        raise ValueError("turns must be a list")
    out = []
    for t in turns:
        if not (isinstance(t, dict) and isinstance(t.get("prompt"), str)
                and isinstance(t.get("answer"), str)):
            raise ValueError("each turn needs a prompt and an answer (strings)")
        files = t.get("files") or []
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ValueError("a turn's files must be a list of strings")
        model = t.get("model")
        out.append(Turn(t["prompt"], t["answer"], tuple(files), _int(t.get("prompt_tokens")),
                        _int(t.get("completion_tokens")),
                        model if isinstance(model, str) else None))
    return Conversation(data["id"], data["created"], tuple(out))
