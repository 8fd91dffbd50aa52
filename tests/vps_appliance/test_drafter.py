"""The drafter (pure): n-gram lookup takes the most recent match, the prediction is followed
with a cursor, and the draft length adapts, down to off, to what is accepted."""

from __future__ import annotations

import pytest

from vps_appliance.engine.speculative import DraftConfig, Drafter

# align=1: these tests are about what is drafted; the batch alignment has its own test.
ON = DraftConfig(enabled=True, draft_min=2, draft_max=16, ngram_min=2, ngram_max=4, align=1)


def test_the_most_recent_occurrence_of_the_ngram_is_drafted_not_the_first():
    #        a  b  c  1  2  3  ...  a  b  c  7  8  9  ...  a  b  c
    prompt = [1, 2, 3, 10, 11, 12, 50, 1, 2, 3, 70, 80, 90, 60, 1, 2, 3]
    d = Drafter(ON, prompt)
    assert d.draft(3) == [70, 80, 90]


def test_the_longest_ngram_wins_over_a_more_recent_shorter_one():
    prompt = [5, 1, 2, 3, 40, 41, 9, 2, 3, 60, 61, 5, 1, 2, 3]
    d = Drafter(ON, prompt)
    # the 4-gram (5, 1, 2, 3) occurred once, followed by 40, 41; the 2-gram (2, 3) more recently
    assert d.draft(2) == [40, 41]


def test_the_tail_never_matches_itself_and_no_match_drafts_nothing():
    d = Drafter(ON, [1, 2, 3, 4, 5])
    assert d.draft(8) == []


def test_an_occurrence_followed_by_a_whole_draft_wins_over_a_more_recent_cut_off_one():
    d = Drafter(ON, [1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 40, 1, 2, 3])
    assert d.draft(6) == [4, 5, 6, 7, 8, 9]  # the recent (1, 2, 3) has only 4 tokens after it
    assert d.draft(4) == [40, 1, 2, 3]  # … which is enough for 4
    d = Drafter(ON, [9, 1, 2, 3, 40, 1, 2, 3])
    assert d.draft(6) == [40, 1, 2, 3]  # none has 6 after it: the most recent


def test_generated_tokens_are_searched_too():
    d = Drafter(ON, [100, 101])
    d.append([7, 8, 9, 10, 11, 7, 8])
    assert d.draft(3) == [9, 10, 11]


def test_drafts_respect_the_limit_and_the_minimum():
    prompt = [1, 2, 3, 4, 5, 6, 7, 8, 1, 2]
    d = Drafter(ON, prompt)
    assert d.draft(3) == [3, 4, 5]
    assert d.draft(1) == []  # below draft_min: not worth a batch
    assert Drafter(DraftConfig(enabled=False), prompt).draft(8) == []


def test_the_prediction_is_followed_in_order_with_a_cursor():
    line = [20, 21, 22]
    prediction = [*line, 1, *line, 2, *line, 3]  # the same line three times, then different
    d = Drafter(ON, [99], prediction)
    d.append([20, 21, 22])
    assert d.draft(2) == [1, 20]  # the first occurrence at or after the cursor (0)
    d.result(2, 2)
    d.append([1, 20, 21, 22])
    assert d.draft(2) == [2, 20]  # the cursor moved past the first line: the second follows
    d.result(2, 2)
    d.append([2, 20, 21, 22])
    # one token of the prediction is left ([3]): too short, so the answer's own history drafts
    assert d.draft(2) == [2, 20]


def test_accepted_drafts_grow_and_misses_back_off_down_to_off():
    prompt = list(range(100)) * 2 + [0, 1]
    d = Drafter(ON, prompt)
    assert len(d.draft(64)) == 7
    d.result(7, 7)
    assert len(d.draft(64)) == 15  # the batch doubles: 8 → 16
    d.result(15, 15)
    assert len(d.draft(64)) == 16  # capped at draft_max
    d.result(16, 9)
    assert len(d.draft(64)) == 10  # half or more accepted: halved at most, to no less than
    d.result(10, 5)                # what was accepted plus one
    assert len(d.draft(64)) == 6
    d.result(6, 2)  # less than half accepted: a miss; what was accepted plus one
    assert len(d.draft(64)) == 3
    d.result(3, 0)  # a second miss in a row switches drafting off for a while
    off = 0
    while not d.draft(64):
        off += 1
        assert off < 1000
    assert off == 8  # the first cool-down
    d.result(2, 0)  # a third miss: the cool-down doubles
    off = 0
    while not d.draft(64):
        off += 1
    assert off == 16
    d.result(2, 2)  # an accepted draft resets the count of misses
    d.draft(64)
    d.result(2, 0)  # so one miss does not switch drafting off
    assert d.draft(64)
    assert d.stats.drafted == 7 + 15 + 16 + 10 + 6 + 3 + 2 + 2 + 2
    assert d.stats.accepted == 7 + 15 + 9 + 5 + 2 + 2


def test_verified_batches_are_multiples_of_four_where_the_source_allows():
    cfg = DraftConfig()  # align 4, draft_min 4, draft_max 47
    d = Drafter(cfg, list(range(100)) * 2 + [0, 1, 2, 3])
    sizes = []
    for _ in range(4):
        sizes.append(n := len(d.draft(100)))
        d.result(n, n)
    assert sizes == [7, 15, 31, 47]  # batches of 8, 16, 32 and 48: never 17 or 33
    assert len(d.draft(20)) == 19  # limited to 20: a batch of 20, not 21
    d.result(19, 12)  # most accepted: halved, then up to the next aligned batch (24)
    assert len(d.draft(100)) == 23
    # a source with fewer tokens left than an aligned draft: what there is, if worth a batch
    assert Drafter(cfg, [1, 2, 3, 4], [1, 2, 3, 4, 5, 6, 7, 8, 9]).draft(100) == [5, 6, 7, 8, 9]
    assert Drafter(cfg, [1, 2, 3, 4], [1, 2, 3, 4, 5, 6, 7]).draft(100) == []


@pytest.mark.parametrize("bad", [0, -1])
def test_no_room_no_draft(bad):
    assert Drafter(ON, [1, 2, 3, 1, 2]).draft(bad) == []


def test_the_default_keys_are_long_enough_to_guess_well():
    cfg = DraftConfig()
    prompt = [7, 1, 2, 3, 4, 5, 6, 9, 9, 1, 2, 3]  # only a 3-gram repeats: too short a key
    assert Drafter(cfg, prompt).draft(4) == []
    prompt = [1, 2, 3, 4, 5, 6, 9, 9, 1, 2, 3, 4]
    assert cfg.ngram_min == 4 and Drafter(cfg, prompt).draft(4) == [5, 6, 9, 9]
