"""lab._proc: free ports for throwaway servers."""

from __future__ import annotations

from lab._proc import free_ports


def test_free_ports_are_distinct_and_avoid_the_ones_taken() -> None:
    taken = set(free_ports(20))
    ports = free_ports(200, taken)
    assert len(set(ports)) == 200
    assert not taken & set(ports)
