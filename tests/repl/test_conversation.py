"""Conversations: the messages a turn sends, undo, :history, and the saved files (private,
atomic, listed most recent first, reopened as they were)."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime

import pytest

from repl import conversation, store
from repl.conversation import Conversation, Turn


def two_turns() -> Conversation:
    conv = store.new(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    conv = conversation.add(conv, Turn("write f", "def f(): pass", ("app.py",), 40, 7, "qwen"))
    return conversation.add(conv, Turn("now test it", "def test_f(): f()", (), 90, 9))


def test_a_turn_sends_the_exchanges_so_far_then_the_new_prompt():
    conv = two_turns()
    assert conversation.messages(conv.turns, "and document it") == [
        {"role": "user", "content": "write f"},
        {"role": "assistant", "content": "def f(): pass"},
        {"role": "user", "content": "now test it"},
        {"role": "assistant", "content": "def test_f(): f()"},
        {"role": "user", "content": "and document it"}]
    with_files = conversation.messages((), "x", with_files=True)
    assert [m["role"] for m in with_files] == ["system", "user"]
    assert "```py app.py" in with_files[0]["content"]


def test_undo_drops_the_last_exchange_only():
    conv = two_turns()
    assert [t.prompt for t in conversation.undo(conv).turns] == ["write f"]
    assert conversation.undo(conversation.undo(conversation.undo(conv))).turns == ()
    assert conv.last_answer == "def test_f(): f()"
    assert conversation.undo(conv).last_answer == "def f(): pass"


def test_history_lists_turns_with_their_token_counts():
    text = conversation.history_text(two_turns())
    assert text.split("\n") == [
        "  1. write f + app.py · 40 tokens sent · 7 tokens answered",
        "  2. now test it · 90 tokens sent · 9 tokens answered"]
    empty = store.new()
    assert conversation.history_text(empty) == "no turns yet in this conversation"
    unknown = conversation.add(empty, Turn("x" * 80, "y"))
    assert "x" * 49 + "… · ? tokens sent · ? tokens answered" in conversation.history_text(
        unknown)


def test_saved_private_and_reopened_as_it_was(tmp_path):
    directory = tmp_path / "state" / "cerebrum" / "conversations"
    conv = two_turns()
    umask = os.umask(0o022)
    try:
        store.save(directory, conv)
    finally:
        os.umask(umask)
    path = directory / f"{conv.id}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert [p.name for p in directory.iterdir()] == [path.name]  # no temporary file left
    assert json.loads(path.read_text())["turns"][0]["prompt"] == "write f"
    assert store.listing(directory) == [conv]


def test_an_empty_conversation_is_not_kept(tmp_path):
    conv = two_turns()
    store.save(tmp_path, conv)
    store.save(tmp_path, conversation.undo(conversation.undo(conv)))
    assert list(tmp_path.iterdir()) == [] and store.listing(tmp_path) == []


def test_listing_is_most_recent_first_and_skips_what_is_not_a_conversation(tmp_path):
    older = conversation.add(store.new(datetime(2025, 5, 1, tzinfo=UTC)), Turn("old", "a"))
    newer = two_turns()
    for conv in (older, newer):
        store.save(tmp_path, conv)
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"version": 2}))
    (tmp_path / "renamed.json").write_text(json.dumps(conversation.to_json(older)))
    assert store.listing(tmp_path) == [newer, older]
    text = store.listing_text(store.listing(tmp_path), newer.id)
    assert text.split("\n") == ["  1. 2026-01-02 03:04 · 2 turns · write f (current)",
                                "  2. 2025-05-01 00:00 · 1 turns · old",
                                ":resume N reopens one"]
    assert store.listing_text([], "x") == "no saved conversations yet"


@pytest.mark.parametrize("bad", [
    [], {"version": 1}, {"version": 1, "id": "a", "created": "b", "turns": [{"prompt": 1}]},
    {"version": 1, "id": "a", "created": "b", "turns": [{"prompt": "p", "answer": "a",
                                                         "files": [3]}]}])
def test_a_malformed_file_is_a_value_error(bad):
    with pytest.raises(ValueError):
        conversation.from_json(bad)


def test_saved_files_live_under_xdg_state_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert store.default_dir() == tmp_path / "cerebrum" / "conversations"
