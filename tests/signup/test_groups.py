"""Group commit (signup.stores._groups), with a sender the test holds and releases.

The cluster store's use of it, against a real Redis Cluster, is in test_cluster_store.py."""

from __future__ import annotations

import asyncio

from signup.stores._groups import Groups, TurnTimeout


class Node:
    """A node whose every group waits for `release`: the test decides when a group returns."""

    def __init__(self) -> None:
        self.groups: list[tuple[str, list[int]]] = []
        self.release = asyncio.Event()
        self.fail_next: Exception | None = None

    async def send(self, key: str, items: list[int]) -> list[int | BaseException]:
        self.groups.append((key, items))
        await self.release.wait()
        if self.fail_next is not None:
            failed, self.fail_next = self.fail_next, None
            raise failed
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


async def pending(
    groups: Groups[str, int, int], key: str, items: list[int]
) -> list[asyncio.Task[int]]:
    tasks = [asyncio.create_task(groups.submit(key, i)) for i in items]
    await asyncio.sleep(0)  # each one queued
    return tasks


def test_signups_arriving_while_a_group_is_out_leave_together_as_the_next() -> None:
    async def scenario() -> tuple[list[int | BaseException], list[tuple[str, list[int]]]]:
        node = Node()
        groups: Groups[str, int, int] = Groups(node.send, wait_turn=5, most=100)
        first = await pending(groups, "a", [0])
        later = await pending(groups, "a", [2, 4, 5, 6])
        node.release.set()
        answers = await asyncio.gather(*first, *later, return_exceptions=True)
        return answers, node.groups

    answers, sent = asyncio.run(scenario())
    assert sent == [("a", [0]), ("a", [2, 4, 5, 6])]
    assert answers[:3] == [0, 20, 40]
    assert answers[4] == 60
    assert isinstance(answers[3], ValueError)  # one signup's error is its own


def test_a_group_that_fails_fails_each_of_its_signups_and_the_next_group_still_goes() -> None:
    async def scenario() -> list[object]:
        node = Node()
        node.fail_next = ConnectionError("node gone")
        groups: Groups[str, int, int] = Groups(node.send, wait_turn=5, most=100)
        failing = await pending(groups, "a", [0, 2])
        node.release.set()
        failed = await asyncio.gather(*failing, return_exceptions=True)
        after = await groups.submit("a", 8)
        return [*failed, after]

    first, second, after = asyncio.run(scenario())
    assert isinstance(first, ConnectionError)
    assert isinstance(second, ConnectionError)
    assert after == 80


def test_a_signup_that_gets_no_turn_in_time_is_refused_and_never_sent() -> None:
    async def scenario() -> tuple[object, object, list[tuple[str, list[int]]]]:
        node = Node()
        groups: Groups[str, int, int] = Groups(node.send, wait_turn=0.05, most=100)
        (hung,) = await pending(groups, "a", [0])
        waiting = await asyncio.gather(groups.submit("a", 2), return_exceptions=True)
        elsewhere_task = await pending(groups, "b", [4])
        node.release.set()
        await hung
        elsewhere = await elsewhere_task[0]
        return waiting[0], elsewhere, node.groups

    waiting, elsewhere, sent = asyncio.run(scenario())
    assert isinstance(waiting, TurnTimeout)
    assert "a" in str(waiting)
    assert elsewhere == 40  # another node's signup was sent while "a" hung
    assert [items for _, items in sent if 2 in items] == []


def test_a_group_holds_at_most_its_limit_and_the_rest_go_next_in_order() -> None:
    async def scenario() -> list[tuple[str, list[int]]]:
        node = Node()
        groups: Groups[str, int, int] = Groups(node.send, wait_turn=5, most=3)
        tasks = await pending(groups, "a", [0])
        tasks += await pending(groups, "a", [2, 4, 6, 8, 10])
        node.release.set()
        await asyncio.gather(*tasks)
        return node.groups

    assert asyncio.run(scenario()) == [("a", [0]), ("a", [2, 4, 6]), ("a", [8, 10])]


def test_closing_answers_the_signups_of_a_group_still_out() -> None:
    async def scenario() -> object:
        node = Node()
        groups: Groups[str, int, int] = Groups(node.send, wait_turn=5, most=100)
        (out,) = await pending(groups, "a", [0])
        await asyncio.sleep(0)
        await groups.close()
        (answer,) = await asyncio.gather(out, return_exceptions=True)
        return answer

    answer = asyncio.run(scenario())
    assert isinstance(answer, ConnectionError), answer
    assert "closed" in str(answer)


def test_a_signup_whose_request_went_away_before_it_left_is_never_sent() -> None:
    async def scenario() -> list[tuple[str, list[int]]]:
        node = Node()
        groups: Groups[str, int, int] = Groups(node.send, wait_turn=5, most=100)
        (out,) = await pending(groups, "a", [0])
        gone, stays = await pending(groups, "a", [2, 4])
        gone.cancel()
        await asyncio.sleep(0)
        node.release.set()
        await asyncio.gather(out, stays)
        return node.groups

    assert asyncio.run(scenario()) == [("a", [0]), ("a", [4])]


def test_closing_answers_the_signups_still_waiting_for_their_turn() -> None:
    async def scenario() -> list[int | BaseException]:
        node = Node()
        groups: Groups[str, int, int] = Groups(node.send, wait_turn=5, most=100)
        tasks = await pending(groups, "a", [0])
        tasks += await pending(groups, "a", [2])
        await groups.close()
        return await asyncio.gather(*tasks, return_exceptions=True)

    out, waiting = asyncio.run(scenario())
    assert isinstance(out, ConnectionError)
    assert isinstance(waiting, ConnectionError)
