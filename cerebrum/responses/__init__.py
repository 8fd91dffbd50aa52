"""OpenAI's Responses API wire format (`POST /v1/responses`, `POST /v1/responses/input_tokens`):
requests into the internal request, the internal events out as its stream and body, its
errors, its field table."""

from cerebrum.generation.errors import InvalidBody, InvalidRequest

from .errors import error_body, invalid_request_body
from .fields import FIELDS, Field, Kind, Tier
from .render import Render
from .request import parse
from .response import Envelope, input_tokens_body, sse, usage_dict

__all__ = ["FIELDS", "Envelope", "Field", "InvalidBody", "InvalidRequest", "Kind", "Render",
           "Tier", "error_body", "input_tokens_body", "invalid_request_body", "parse", "sse",
           "usage_dict"]
