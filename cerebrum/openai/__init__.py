"""OpenAI's Chat and Text Completions wire format: requests into the internal request, the
internal events out as its chunks and bodies, its errors, its field table."""

from cerebrum.jsonwire import decode_json, too_deep

from .errors import InvalidBody, InvalidRequest, error_body
from .fields import FIELDS, Field, Kind, Tier
from .request import chat_messages, parse, prediction_text, text_parts
from .response import Envelope, sse, usage_dict

__all__ = ["FIELDS", "Envelope", "Field", "InvalidBody", "InvalidRequest", "Kind", "Tier",
           "chat_messages", "decode_json", "error_body", "parse", "prediction_text", "sse",
           "text_parts", "too_deep", "usage_dict"]
