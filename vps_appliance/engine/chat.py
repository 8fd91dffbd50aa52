"""Turning chat messages and prompts into model tokens with the model's own chat template."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jinja2
import llama_cpp
from llama_cpp import llama_chat_format

from ..errors import BadRequest
from . import tools

ChatFormatter = Callable[..., llama_chat_format.ChatFormatterResponse]


def _plain(messages: Sequence[dict[str, Any]], **_: Any) -> llama_chat_format.ChatFormatterResponse:
    """For base models without a template: the contents one after another."""
    return llama_chat_format.ChatFormatterResponse(
        prompt="\n\n".join(m["content"] for m in messages) + "\n"
    )


def make_formatter(llm: llama_cpp.Llama, chat_format: str) -> ChatFormatter:
    """The formatter for `chat_format`; "auto" takes the GGUF's embedded template."""
    if chat_format == "chatml":
        return llama_chat_format.format_chatml
    if chat_format == "llama-2":
        return llama_chat_format.format_llama2
    template = llm.metadata.get("tokenizer.chat_template")
    if chat_format == "none" or not template:
        return _plain
    vocab = llama_cpp.llama_model_get_vocab(llm.model)

    def text_of(token: int) -> str:
        return llama_cpp.llama_vocab_get_text(vocab, token).decode() if token >= 0 else ""

    return llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=text_of(llm.token_eos()),
        bos_token=text_of(llm.token_bos()),
    )


def renders_tools(llm: llama_cpp.Llama, chat_format: str) -> bool:
    """Whether the formatter for `chat_format` renders tools: only a GGUF template that
    reads them does."""
    template = llm.metadata.get("tokenizer.chat_template")
    return chat_format == "auto" and tools.supports(template)


def chat_tokens(llm: llama_cpp.Llama, formatter: ChatFormatter,
                messages: Sequence[dict[str, Any]], tools: list[dict[str, Any]] | None = None
                ) -> tuple[list[int], tuple[str, ...]]:
    """Prompt tokens and extra stop strings for a chat request (`tools`: OpenAI's tool
    objects, for a template that renders them)."""
    try:
        result = formatter(messages=[dict(m) for m in messages], tools=tools)
    except (jinja2.TemplateError, ValueError) as exc:
        # A template's raise_exception("…") tells the user what the model expects.
        raise BadRequest(f"messages do not fit the model's chat template: {exc}",
                         param="messages") from None
    tokens = llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special,
                          special=True)
    stop = result.stop
    stops = (stop,) if isinstance(stop, str) else tuple(s for s in (stop or ()) if s)
    return tokens, stops


def prompt_tokens(llm: llama_cpp.Llama, text: str, add_special: bool = True) -> list[int]:
    """Tokens of a plain prompt, with BOS when the model wants one."""
    return llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=True)


def text_tokens(llm: llama_cpp.Llama, text: str) -> list[int]:
    """Tokens of text the model may write itself (a prediction): no BOS, no special tokens."""
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
