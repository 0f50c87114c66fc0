"""The line of servers waiting to start (hubstack_hub.startline): first come, first served."""

import asyncio

import pytest

from hubstack_hub.startline import StartLine


def run(coroutine):
    return asyncio.run(coroutine)


def test_places_go_in_the_order_asked():
    async def scenario():
        line = StartLine(places=2)
        started = []

        async def researcher(name):
            await line.enter(name)
            started.append(name)

        tasks = [asyncio.create_task(researcher(n)) for n in "abcde"]
        await asyncio.sleep(0)
        assert started == ["a", "b"] and [line.ahead_of(n) for n in "cde"] == [0, 1, 2]
        line.leave("b")  # b's server is up
        await asyncio.sleep(0)
        assert started == ["a", "b", "c"] and line.ahead_of("d") == 0
        for name in "acde":
            line.leave(name)
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        assert started == list("abcde") and not line.starting and not line.waiting

    run(scenario())


def test_one_who_gives_up_in_line_frees_nothing_and_loses_the_place():
    async def scenario():
        line = StartLine(places=1)
        await line.enter("a")
        waiting = asyncio.create_task(line.enter("b"))
        then = asyncio.create_task(line.enter("c"))
        await asyncio.sleep(0)
        waiting.cancel()  # b's spawn was cancelled while waiting
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert line.ahead_of("b") is None and line.ahead_of("c") == 0 and line.starting == {"a"}
        line.leave("a")
        await then
        assert line.starting == {"c"}

    run(scenario())


def test_no_line_when_places_are_zero_and_leaving_twice_is_harmless():
    async def scenario():
        line = StartLine(places=0)
        for name in "abc":
            await line.enter(name)  # none waits
        assert not line.starting
        line.places = 1
        await line.enter("a")
        line.leave("a")
        line.leave("a")
        await asyncio.wait_for(line.enter("b"), 1)
        assert line.starting == {"b"}

    run(scenario())
