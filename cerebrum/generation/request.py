"""The one request both tiers validate and run, whatever wire format it came in (pure).

A wire format package (`cerebrum.openai`, `cerebrum.llamacpp`) parses its body into a
`Request` (a conversation or a prompt) or a `Fill` (fill in the middle); the tiers run these
and never look at a wire format's shapes. None means "the client sent nothing": each tier
applies its model's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "developer", "user", "assistant", "tool"]
Kind = Literal["chat", "completion"]
ToolMode = Literal["auto", "none", "required", "named"]
OutputType = Literal["text", "json_object", "json_schema"]


@dataclass(frozen=True)
class ToolCall:
    """A call the model made (or a client passes back): its id, the tool, the arguments."""

    id: str
    name: str
    arguments: str  # JSON text; a free-form tool's input as it is


@dataclass(frozen=True)
class Turn:
    """One turn of a conversation. System and developer instructions may come anywhere; an
    assistant turn may carry tool calls and the reasoning a client passes back; a tool turn
    answers the call `call_id`."""

    role: Role
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    call_id: str | None = None
    reasoning: str = ""


@dataclass(frozen=True)
class Tool:
    """A tool the model may call: a function with a JSON schema, or a free-form tool that
    takes one string."""

    name: str
    description: str | None = None
    parameters: dict[str, object] | None = None  # JSON Schema; None: none given
    strict: bool | None = None
    freeform: bool = False


@dataclass(frozen=True)
class ToolChoice:
    """How the tools may be called: as the model likes, not at all, at least one, or the one
    named."""

    mode: ToolMode = "auto"
    name: str | None = None


@dataclass(frozen=True)
class Output:
    """The answer's shape: text, any JSON object, or JSON matching a schema."""

    type: OutputType = "text"
    name: str = ""
    schema: dict[str, object] | None = None
    strict: bool = False
    description: str | None = None


@dataclass(frozen=True)
class Sampling:
    """How tokens are drawn; None: the model's default."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None  # as sent: up to 64 bits
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias -100..100)


@dataclass(frozen=True)
class Request:
    """A conversation (`chat`) or a prompt (`completion`; with `suffix`, fill in the middle)
    to generate an answer for."""

    kind: Kind
    model: str | None
    stream: bool
    turns: tuple[Turn, ...] = ()
    prompt: str = ""
    suffix: str | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    sampling: Sampling = field(default_factory=Sampling)
    output: Output = field(default_factory=Output)
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None  # None: auto with tools, else none
    parallel_tool_calls: bool = True
    logprobs: bool = False
    top_logprobs: int = 0  # alternatives per token, with logprobs
    n: int = 1  # answers to the one prompt
    prediction: str = ""  # text the answer will largely repeat (drafted from)
    speculative: bool | None = None  # None: the model's default
    cache_key: str | None = None  # the client's key for its prompt prefix

    @property
    def content(self) -> str:
        """The text a context pipeline works on: the last user turn, or the prompt."""
        if self.kind == "completion":
            return self.prompt
        return next((t.text for t in reversed(self.turns) if t.role == "user"), "")

    @property
    def choice(self) -> ToolChoice:
        """The tool choice in force."""
        if self.tool_choice is not None:
            return self.tool_choice
        return ToolChoice("auto" if self.tools else "none")


@dataclass(frozen=True)
class Controls:
    """llama.cpp's generation controls an editor may set (its `/infill` and `/completion`)."""

    samplers: tuple[str, ...] | None = None  # the sampler chain's order; None: the default
    typical_p: float = 1.0
    repeat_last_n: int = 64  # -1: the whole context
    n_indent: int = 0  # a completed line is at least this indented, or the answer ends
    t_max_predict_ms: int = 0  # once past, the answer ends at the next newline
    cache_prompt: bool = True


@dataclass(frozen=True)
class Fill:
    """Fill in the middle (`prefix` … `suffix`, the text typed so far in `prompt`, chunks of
    other files in `extra`), or (`rendered`) a prompt the client rendered itself."""

    model: str | None
    stream: bool
    prefix: str = ""
    suffix: str = ""
    prompt: str = ""
    extra: tuple[tuple[str, str], ...] = ()  # (filename, text)
    rendered: bool = False
    max_tokens: int | None = None  # None: the model's default
    stop: tuple[str, ...] = ()
    sampling: Sampling = field(default_factory=Sampling)
    controls: Controls = field(default_factory=Controls)
