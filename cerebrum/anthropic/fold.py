"""A streamed Messages answer (its events' payloads, as an upstream sends them) folded into
the body the same request without `stream` gets (pure): the message of `message_start`, each
content block with its deltas (text, a tool call's JSON input), the stop reason and usage of
`message_delta`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Folder:
    """Event payloads in (`add`), one message out (`body`)."""

    message: dict[str, Any] = field(default_factory=dict)
    blocks: dict[int, dict[str, Any]] = field(default_factory=dict)
    json_parts: dict[int, list[str]] = field(default_factory=dict)

    def add(self, event: dict[str, Any]) -> None:
        """Take one event's payload (`ping` and unknown ones change nothing)."""
        kind = event.get("type")
        if kind == "message_start" and isinstance(event.get("message"), dict):
            self.message = dict(event["message"])
        elif kind == "content_block_start" and isinstance(event.get("content_block"), dict):
            self.blocks[int(event.get("index", len(self.blocks)))] = dict(
                event["content_block"])
        elif kind == "content_block_delta" and isinstance(event.get("delta"), dict):
            index, delta = int(event.get("index", 0)), event["delta"]
            block = self.blocks.setdefault(index, {"type": "text", "text": ""})
            if delta.get("type") == "text_delta":
                block["text"] = block.get("text", "") + str(delta.get("text", ""))
            elif delta.get("type") == "input_json_delta":
                self.json_parts.setdefault(index, []).append(str(delta.get("partial_json", "")))
        elif kind == "message_delta":
            self.message.update({k: v for k, v in (event.get("delta") or {}).items()
                                 if k in ("stop_reason", "stop_sequence")})
            usage = event.get("usage")
            if isinstance(usage, dict):
                self.message["usage"] = {**(self.message.get("usage") or {}), **usage}

    def body(self) -> dict[str, Any]:
        """The whole message."""
        content = []
        for index in sorted(self.blocks):
            block = dict(self.blocks[index])
            if index in self.json_parts:
                text = "".join(self.json_parts[index])
                try:
                    block["input"] = json.loads(text) if text else {}
                except ValueError:
                    block["input"] = {}
            content.append(block)
        return {**self.message, "content": content}
