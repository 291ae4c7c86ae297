"""The slot pool: a weave's requests go to slots that hold its story, or wait for one."""

from __future__ import annotations

import asyncio
import os

from hypothesis import given
from hypothesis import strategies as st

from lloom_lsp.backends.slots import SlotPool, missing

LONG = "The keeper climbed the stairs. " * 200  # 6,200 characters: costly to evaluate twice
OTHER = "A different story altogether. " * 200


async def test_a_cold_story_takes_one_slot_and_the_rest_wait_for_it() -> None:
    pool = SlotPool(4)
    order: list[tuple[str, int]] = []
    first_in = asyncio.Event()
    release = asyncio.Event()

    async def request(name: str, ids: tuple[int, ...]) -> None:
        async with pool.slot(LONG, ids) as slot:
            order.append((name, slot))
            first_in.set()
            await release.wait()

    first = asyncio.ensure_future(request("root", ()))
    await first_in.wait()
    waiting = [asyncio.ensure_future(request(f"alt{i}", (i,))) for i in range(3)]
    await asyncio.sleep(0)
    assert order == [("root", 0)]  # nobody evaluates the story on a second slot
    release.set()
    await asyncio.gather(first, *waiting)
    assert {slot for _, slot in order} == {0}


async def test_warm_slots_are_all_used_and_a_new_story_gets_a_cold_one() -> None:
    pool = SlotPool(3)
    for state in pool.slots[:2]:
        state.story = LONG
    held: list[int] = []
    gate = asyncio.Event()

    async def request(story: str) -> None:
        async with pool.slot(story) as slot:
            held.append(slot)
            await gate.wait()

    tasks = [asyncio.ensure_future(request(LONG)) for _ in range(2)]
    tasks.append(asyncio.ensure_future(request(OTHER)))
    while len(held) < 3:
        await asyncio.sleep(0)
    assert sorted(held[:2]) == [0, 1] and held[2] == 2  # OTHER took the one cold slot
    gate.set()
    await asyncio.gather(*tasks)
    assert pool.slots[2].story == OTHER


def test_a_slot_holding_an_earlier_draft_counts_as_holding_the_story() -> None:
    pool = SlotPool(2)
    pool.slots[0].story = LONG
    pool.slots[1].story = OTHER
    longer = LONG + "Then the light went out."
    assert pool.choose(longer).id == 0  # type: ignore[union-attr]
    assert [s.id for s in pool.holding(longer)] == [0]


def test_the_slot_sharing_the_longest_beam_prefix_is_preferred() -> None:
    pool = SlotPool(3)
    for state, ids in zip(pool.slots, [(1, 2), (1, 2, 3, 4), (9,)]):
        state.story, state.ids = LONG, ids
    assert pool.choose(LONG, (1, 2, 3, 4, 5)).id == 1  # type: ignore[union-attr]


def test_a_chain_decoded_in_a_slot_draws_the_beams_that_branch_off_it() -> None:
    pool = SlotPool(2)
    for state, ids in zip(pool.slots, [(1,), (1, 2)]):
        state.story, state.ids = LONG, ids
    for token in (7, 8, 9):  # the chain slot 0 streamed after its prompt (1,)
        pool.decoded(0, token)
    assert pool.slots[0].ids == (1, 7, 8, 9)
    assert pool.choose(LONG, (1, 7, 8, 4)).id == 0  # type: ignore[union-attr]


@given(st.text("ab", max_size=12), st.text("ab", max_size=12))
def test_missing_counts_what_the_cache_lacks_as_commonprefix_would(held: str, story: str) -> None:
    expected = len(story) - len(os.path.commonprefix([held, story]))  # noqa: RUF071 (characters)
    assert missing(held, story) == expected


def test_a_short_story_counts_as_held_everywhere() -> None:
    pool = SlotPool(4)
    short = "Once upon a time,"
    pool.slots[0].story, pool.slots[0].busy = short, True
    chosen = pool.choose(short)
    assert chosen is not None and chosen.id != 0  # evaluating it again costs less than waiting


async def test_a_cancelled_warm_up_forgets_what_the_slot_held() -> None:
    pool = SlotPool(1)
    started = asyncio.Event()

    async def warm() -> None:
        async with pool.slot(LONG, only=0):
            started.set()
            await asyncio.Event().wait()

    task = asyncio.ensure_future(warm())
    await started.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert pool.slots[0].story == "" and not pool.slots[0].busy


# -- copies (a server with --slot-save-path) ---------------------------------------------------


async def test_with_a_saved_copy_nobody_waits_for_the_slot_that_holds_the_story() -> None:
    pool = SlotPool(3)
    pool.copies = True
    pool.remember_saved("a.bin", LONG)
    held: list[int] = []
    gate = asyncio.Event()

    async def request() -> None:
        async with pool.slot(LONG) as slot:
            held.append(slot)
            await gate.wait()

    tasks = [asyncio.ensure_future(request()) for _ in range(3)]
    while len(held) < 3:
        await asyncio.sleep(0)
    assert sorted(held) == [0, 1, 2]  # the two cold slots take copies, at once
    gate.set()
    await asyncio.gather(*tasks)


async def test_without_copies_a_saved_file_changes_nothing() -> None:
    pool = SlotPool(2)
    pool.copies = False
    pool.remember_saved("a.bin", LONG)
    pool.slots[0].story = LONG
    pool.slots[0].busy = True
    assert pool.choose(LONG) is None  # wait for the slot that holds it, as before


def test_a_later_draft_is_saved_over_its_earlier_one_and_others_take_free_names() -> None:
    pool = SlotPool(2)
    pool.copies = True
    first = pool.save_name(LONG)
    pool.remember_saved(first, LONG)
    assert pool.save_name(LONG + " And then the lamp went out.") == first
    other = pool.save_name(OTHER)
    assert other != first
    pool.remember_saved(other, OTHER)
    assert pool.covered(OTHER + " More.") == other
    assert pool.covered("Nothing like either of them. " * 100) is None


def test_when_every_name_is_used_the_oldest_saved_story_is_overwritten() -> None:
    pool = SlotPool(1)  # two names
    pool.copies = True
    stories = [f"Story {i}. " + "x " * 1200 for i in range(3)]
    names = []
    for story in stories:
        name = pool.save_name(story)
        pool.remember_saved(name, story)
        names.append(name)
    assert names[2] == names[0] and names[1] != names[0]
    assert pool.covered(stories[0]) is None and pool.covered(stories[2]) == names[2]
