"""Anthropic's Messages API wire format (`/v1/messages`, `/v1/messages/count_tokens`):
requests into the internal request, its headers checked, the internal events out as its
stream and bodies, its errors, its field table."""

from cerebrum.jsonwire import decode_json, too_deep

from .errors import InvalidBody, InvalidRequest, error_body, error_type, invalid, prompt_too_long
from .fields import FIELDS, Endpoint, Field, Tier
from .headers import betas, check_headers
from .render import Render, count_tokens_body, frame, usage_dict
from .request import parse, parse_count_tokens, session_key

__all__ = ["FIELDS", "Endpoint", "Field", "InvalidBody", "InvalidRequest", "Render", "Tier",
           "betas", "check_headers", "count_tokens_body", "decode_json", "error_body",
           "error_type", "frame", "invalid", "parse", "parse_count_tokens",
           "prompt_too_long", "session_key", "too_deep", "usage_dict"]
