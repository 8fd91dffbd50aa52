"""llama.cpp's own wire format (`/infill`, `/completion`): requests into the internal `Fill`,
the internal events out as its replies, and its replies read back as events."""

from .read import events, finish, is_last
from .render import Reply, select_fields
from .request import Native, model, parse_completion, parse_infill

__all__ = ["Native", "Reply", "events", "finish", "is_last", "model", "parse_completion",
           "parse_infill", "select_fields"]
