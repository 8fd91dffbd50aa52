"""The OpenAI wire format both tiers speak: bodies, requests, the field table, responses."""

from .body import decode_json, error_body, too_deep
from .errors import InvalidBody, InvalidRequest
from .fields import FIELDS, Field, Kind, Tier
from .request import Request, parse, prediction_text, text_parts
from .response import Envelope, Usage, sse

__all__ = ["FIELDS", "Envelope", "Field", "InvalidBody", "InvalidRequest", "Kind", "Request",
           "Tier", "Usage", "decode_json", "error_body", "parse", "prediction_text", "sse",
           "text_parts", "too_deep"]
