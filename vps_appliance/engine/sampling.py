"""llama.cpp sampler chains in a request's order (llama-server's `samplers` field).

llama-server builds its chain from the names in `samplers`, then draws from what is left
(`dist`); without "temperature" in the list no temperature is applied. "dry", "xtc",
"top_n_sigma" and "adaptive_p" are accepted as llama-server's with their default
parameters, which disable them (dry_multiplier 0, xtc_probability 0, top_n_sigma -1,
adaptive_target -1): this backend takes none of those parameters, so they are no-ops here too.

`repeat_last_n` -1 is the whole context, as llama.cpp's common parameters define it (llama-server
sets `penalty_last_n = llama_n_ctx(ctx)`); the penalties sampler itself would clamp -1 to 0, i.e.
off, so `SamplerSpec.for_context` resolves it before a chain is built.

OpenAI's `logit_bias` is added to the logits first, as llama.cpp's common sampler does. A
grammar (structured output) is a sampler of its own, beside the chain: the prompt is replayed
into the chain only (the penalties count it; a grammar would reject it, and llama.cpp aborts
the process on a token its grammar rejects). As llama.cpp's common sampler does, a token is
drawn from the chain first and only checked against the grammar (masking the whole vocabulary
costs ~25 ms a token on Qwen's 151k); when the grammar rejects it, the logits are masked by
the grammar and the token drawn again. Every token accepted has passed the grammar.
"""

from __future__ import annotations

import ctypes
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import llama_cpp
import numpy as np

from ..errors import BadRequest

# llama-server's default order (common_params_sampling.samplers).
DEFAULT_ORDER = ("penalties", "top_k", "typ_p", "top_p", "min_p", "temperature")
DISABLED_BY_DEFAULT = frozenset({"dry", "xtc", "top_n_sigma", "adaptive_p"})
KNOWN = frozenset({*DEFAULT_ORDER, "typical_p", "infill", *DISABLED_BY_DEFAULT})


@dataclass(frozen=True)
class SamplerSpec:
    """Everything a chain needs beyond the request's GenerationParams."""

    order: tuple[str, ...] = DEFAULT_ORDER
    typical_p: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repeat_last_n: int = 64  # -1: the context size (resolve with for_context)
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, added to its logit)
    grammar: str | None = None  # GBNF the answer must match (root rule "root")

    def for_context(self, n_ctx: int) -> SamplerSpec:
        """This spec with `repeat_last_n` -1 replaced by the context size."""
        if self.repeat_last_n != -1:
            return self
        return dataclasses.replace(self, repeat_last_n=n_ctx)


def with_request(spec: SamplerSpec, n_vocab: int, *, logit_bias: tuple[tuple[int, float], ...],
                 presence_penalty: float | None, frequency_penalty: float | None,
                 grammar: str | None) -> SamplerSpec:
    """`spec` with a request's OpenAI sampling options; a 400 for a token id past the
    vocabulary."""
    for token, _ in logit_bias:
        if token >= n_vocab:
            raise BadRequest(f"'logit_bias' names token {token}, but the model's vocabulary "
                             f"has {n_vocab} tokens", param="logit_bias")
    return dataclasses.replace(
        spec, logit_bias=logit_bias, grammar=grammar,
        presence_penalty=spec.presence_penalty if presence_penalty is None else presence_penalty,
        frequency_penalty=(spec.frequency_penalty if frequency_penalty is None
                           else frequency_penalty))


_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])


@dataclass
class Chain:
    """A request's samplers: `sample` draws and accepts a token; replay the prompt into
    `history`. Freed once, with `free`."""

    sampler: Any  # the llama_sampler chain
    grammar: Any = None  # a grammar sampler, or None
    n_vocab: int = 0
    _data: Any = field(default=None, repr=False)  # the candidates, reused token to token

    @property
    def history(self) -> Any:
        """Where prompt tokens are accepted (the chain; never the grammar)."""
        return self.sampler

    def sample(self, ctx: Any, index: int) -> int:
        """Draw a token from the logits at batch position `index` (-1: the last) and accept
        it."""
        if self.grammar is None:
            return llama_cpp.llama_sampler_sample(self.sampler, ctx, index)
        token = self._draw(ctx, index, grammar_first=False)
        if not self._allowed(token):
            token = self._draw(ctx, index, grammar_first=True)
        llama_cpp.llama_sampler_accept(self.grammar, token)
        llama_cpp.llama_sampler_accept(self.sampler, token)
        return token

    def _draw(self, ctx: Any, index: int, grammar_first: bool) -> int:
        if self._data is None:
            self._data = np.zeros(self.n_vocab, dtype=_TOKEN_DATA)
        data = self._data
        data["id"] = np.arange(self.n_vocab, dtype=np.int32)
        data["logit"] = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, index),
                                              shape=(self.n_vocab,))
        data["p"] = 0.0
        cur = llama_cpp.llama_token_data_array(
            data.ctypes.data_as(llama_cpp.llama_token_data_p), self.n_vocab, -1, False)
        if grammar_first:
            llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(cur))
        llama_cpp.llama_sampler_apply(self.sampler, ctypes.byref(cur))
        return int(cur.data[cur.selected].id)

    def _allowed(self, token: int) -> bool:
        one = llama_cpp.llama_token_data(token, 1.0, 0.0)
        cur = llama_cpp.llama_token_data_array(ctypes.pointer(one), 1, -1, False)
        llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(cur))
        return not math.isinf(cur.data[0].logit)

    def free(self) -> None:
        """Free every sampler."""
        llama_cpp.llama_sampler_free(self.sampler)
        if self.grammar is not None:
            llama_cpp.llama_sampler_free(self.grammar)


class GrammarError(ValueError):
    """llama.cpp refused a grammar (it logs why)."""


def build_chain(vocab: Any, n_vocab: int, spec: SamplerSpec, *, temperature: float,
                top_k: int, top_p: float, min_p: float, repeat_penalty: float,
                seed: int | None) -> Chain:
    """The request's sampler chain (the caller frees it with `Chain.free`)."""
    grammar = None
    if spec.grammar is not None:
        grammar = llama_cpp.llama_sampler_init_grammar(vocab, spec.grammar.encode(), b"root")
        if not grammar:
            raise GrammarError("llama.cpp could not parse the grammar")
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())

    def add(sampler: Any) -> None:
        llama_cpp.llama_sampler_chain_add(chain, sampler)

    if spec.logit_bias:
        biases = (llama_cpp.llama_logit_bias * len(spec.logit_bias))(
            *(llama_cpp.llama_logit_bias(token, bias) for token, bias in spec.logit_bias))
        add(llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(spec.logit_bias), biases))

    for name in spec.order:
        if name == "penalties":
            add(llama_cpp.llama_sampler_init_penalties(
                n_vocab, spec.repeat_last_n, repeat_penalty, spec.frequency_penalty,
                spec.presence_penalty))
        elif name == "top_k":
            add(llama_cpp.llama_sampler_init_top_k(top_k))
        elif name in ("typ_p", "typical_p"):
            add(llama_cpp.llama_sampler_init_typical(spec.typical_p, 1))
        elif name == "top_p":
            add(llama_cpp.llama_sampler_init_top_p(top_p, 1))
        elif name == "min_p":
            add(llama_cpp.llama_sampler_init_min_p(min_p, 1))
        elif name == "temperature":
            add(llama_cpp.llama_sampler_init_temp(temperature))
        elif name == "infill":
            add(llama_cpp.llama_sampler_init_infill(vocab))
    greedy = "temperature" in spec.order and temperature <= 0.0
    add(llama_cpp.llama_sampler_init_greedy() if greedy else llama_cpp.llama_sampler_init_dist(
        llama_cpp.LLAMA_DEFAULT_SEED if seed is None else seed))
    return Chain(sampler=chain, grammar=grammar, n_vocab=n_vocab)
