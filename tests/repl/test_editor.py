"""The pure line editor, history file, commands and formatting: keys in, buffer out."""

from __future__ import annotations

from readchar import key

from repl import commands, display, history
from repl.editor import Action, Editor, feed


def typed(keys: list[str], ed: Editor | None = None) -> Editor:
    ed = ed or Editor.new()
    for k in keys:
        ed, _ = feed(ed, k)
    return ed


def test_insert_anywhere_and_move():
    ed = typed([*"held", key.LEFT, key.LEFT, "l", key.HOME, ">", key.END, "!"])
    assert (ed.text, ed.cursor) == (">helld!", 7)
    ed = typed([key.RIGHT], typed(["x", "\x01"]))
    assert ed.cursor == 1


def test_backspace_and_delete_at_edges():
    ed = typed([key.BACKSPACE, key.DELETE, *"abc", key.LEFT, key.BACKSPACE, key.DELETE])
    assert (ed.text, ed.cursor) == ("a", 1)
    assert typed([*"ab", key.HOME, "\x04"]).text == "b"  # Ctrl-D deletes under the cursor


def test_kill_keys():
    base = [*"one two three", key.LEFT, key.LEFT]
    assert typed([*base, "\x0b"]).text == "one two thr"
    assert typed([*base, "\x15"]).text == "ee"
    assert typed([*base, "\x17"]).text == "one two ee"
    assert typed([*"a b  ", "\x17"]).text == "a "
    assert typed([*"xy", "\x05"]).cursor == 2


def test_utf8_characters_are_single_units():
    ed = typed([*"café 漢字", key.LEFT, key.BACKSPACE, "x"])
    assert (ed.text, ed.cursor) == ("café x字", 6)
    assert display.width("漢字é") == 5


def test_history_browsing_keeps_the_draft():
    ed = typed([*"dra", key.UP], Editor.new(("first", "multi\nline")))
    assert ed.text == "multi\nline"
    ed = typed([key.UP, key.UP], ed)
    assert ed.text == "first"
    ed = typed([key.DOWN, key.DOWN], ed)
    assert (ed.text, ed.cursor) == ("dra", 3)
    assert typed([key.DOWN], ed).text == "dra"


def test_actions():
    assert feed(Editor.new(), "\r")[1] is Action.SUBMIT
    assert feed(Editor.new(), "\x04")[1] is Action.EOF
    assert feed(Editor.new(), "\x0c")[1] is Action.CLEAR_SCREEN
    assert feed(Editor.new(), "\t")[1] is Action.COMPLETE
    assert feed(Editor.new(), key.F1)[1] is Action.IGNORE
    ed, action = feed(typed([*"abc"]), "\x03")
    assert (ed.text, action) == ("", Action.INTERRUPT)


def test_history_file_bounded_and_multiline(tmp_path):
    path = tmp_path / "h" / "history"
    entries: tuple[str, ...] = ()
    for i in range(1005):
        entries = history.append(entries, f"line {i}\nsecond")
    entries = history.append(entries, entries[-1])
    history.save(path, entries)
    loaded = history.load(path)
    assert len(loaded) == 1000 and loaded[-1] == "line 1004\nsecond"
    assert history.load(tmp_path / "missing") == ()


def test_commands_parse_and_reject():
    opts = commands.Options()
    assert commands.run(":model smollm2", opts).options.model == "smollm2"
    assert commands.run(":lang rust", opts).options.language == "rust"
    assert commands.run(":raw on", opts).options.raw
    assert commands.run(":multi", opts).options.multiline
    assert commands.run(":stats", opts).action == "stats"
    bad = commands.run(":lang cobol", opts)
    assert bad.options == opts and "python|javascript" in bad.message
    assert "try :help, :model" in commands.run(":nope", opts).message
    assert "on|off" in commands.run(":raw maybe", opts).message
    assert commands.complete(":mu") == (":multi ", ())
    assert commands.complete(":") == (":", tuple(commands.COMMANDS))
    messages = [{"role": "user", "content": "x"}]
    body = commands.request_body(messages, commands.Options(raw=True, language="c"))
    assert body["cerebrum"] == {"context": "raw"} and body["messages"] is messages
    assert commands.run(":add a.py 'b c.py'", opts) == commands.Outcome(opts, "", "add",
                                                                        "a.py 'b c.py'")
    assert commands.run(":add", opts).message == ":add takes PATH…"
    assert commands.run(":save", opts).message == ":save takes PATH"
    assert commands.run(":resume 2", opts).action == "resume"
    assert commands.run(":resume two", opts).message == ":resume takes [N]"
    assert commands.run(":undo now", opts).message == ":undo takes no argument"
    assert commands.run(":diff", opts) == commands.Outcome(opts, "", "diff", "")


def test_render_places_the_cursor_across_wrapped_rows():
    out, row = display.render("> ", 2, "abcdefghij", 3, 7, 0)
    assert row == 0 and out.startswith("\r\x1b[J> abcdefghij") and out.endswith("\x1b[1A\r\x1b[5C")
    out, row = display.render("> ", 2, "abcd", 4, 6, 1)
    assert out.startswith("\x1b[1A") and "\r\n" in out and row == 1
