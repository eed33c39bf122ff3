"""The host's network as a Docker engine changes it, and the exact undo of those changes.

dockerd adds iptables chains and rules (DOCKER, DOCKER-USER, DOCKER-ISOLATION-STAGE-*, a
MASQUERADE per bridge), sets the FORWARD policy to DROP when it turns IP forwarding on, and
leaves its default bridge behind when it stops. Any later test that routes between network
namespaces would then be dropped. `snapshot()` before the engine starts, `undo(before)` after it
stopped: every rule, chain, policy, link and sysctl that differs is put back, nothing else is
touched. The parsing and the plan are pure functions, tested without an engine.
"""

from __future__ import annotations

import shlex
import subprocess
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

BUILTIN_CHAINS = frozenset({"INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"})
SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/ipv6/conf/all/forwarding",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
)
IPTABLES = {"ip": "iptables", "ip6": "ip6tables"}


@dataclass(frozen=True)
class Table:
    chains: dict[str, str] = field(default_factory=dict)  # name -> policy ("-" for user chains)
    rules: tuple[str, ...] = ()  # "-A CHAIN ..." lines, in order

    def is_empty(self) -> bool:
        """No rule, no chain of its own, every policy ACCEPT: filters nothing. iptables-nft
        keeps such a table once a rule was added and deleted; it is the same as none."""
        return not self.rules and all(
            name in BUILTIN_CHAINS and policy == "ACCEPT" for name, policy in self.chains.items()
        )


def parse_save(text: str) -> dict[str, Table]:
    """`iptables-save` output as tables; counters and comments dropped, empty tables left out."""
    tables: dict[str, Table] = {}
    name, chains, rules = "", dict[str, str](), list[str]()
    for line in text.splitlines():
        if line.startswith("*"):
            name, chains, rules = line[1:], {}, []
        elif line.startswith(":"):
            chain, policy, *_ = line[1:].split()
            chains[chain] = policy
        elif line.startswith("-A "):
            rules.append(line)
        elif line == "COMMIT":
            table = Table(chains, tuple(rules))
            if not table.is_empty():
                tables[name] = table
    return tables


def undo_plan(before: dict[str, Table], after: dict[str, Table]) -> list[list[str]]:
    """The iptables arguments that turn `after` back into `before`: rules added are deleted
    (once per copy added), chains added are flushed and removed, changed policies reset, and
    chains and rules that went missing (dockerd flushes chains named like its own at start)
    are put back, appended in their old order."""
    plan: list[list[str]] = []
    for name in sorted(set(before) | set(after)):
        was, now = before.get(name, Table()), after.get(name, Table())
        added = Counter(now.rules) - Counter(was.rules)
        for rule in reversed(now.rules):  # last added first: jumps go before their chains
            if added[rule]:
                added[rule] -= 1
                plan.append(["-t", name, "-D", *shlex.split(rule)[1:]])
        new_chains = [c for c in now.chains if c not in was.chains and c not in BUILTIN_CHAINS]
        plan += [["-t", name, "-F", chain] for chain in new_chains]
        plan += [["-t", name, "-X", chain] for chain in new_chains]
        for chain in was.chains:
            if chain not in now.chains and chain not in BUILTIN_CHAINS:
                plan.append(["-t", name, "-N", chain])
        removed = Counter(was.rules) - Counter(now.rules)
        for rule in was.rules:
            if removed[rule]:
                removed[rule] -= 1
                plan.append(["-t", name, *shlex.split(rule)])
        for chain, policy in now.chains.items():
            if chain in BUILTIN_CHAINS and policy != was.chains.get(chain, "ACCEPT"):
                plan.append(["-t", name, "-P", chain, was.chains.get(chain, "ACCEPT")])
    return plan


@dataclass(frozen=True)
class HostNetwork:
    iptables: dict[str, dict[str, Table]]  # "ip"/"ip6" -> tables
    links: frozenset[str]
    sysctls: dict[str, str]

    def differences(self, other: HostNetwork) -> list[str]:
        """What differs, one line each; empty when the two are the same."""
        lines = []
        for family, tables in self.iptables.items():
            if tables != other.iptables.get(family):
                lines.append(f"{IPTABLES[family]}: {tables} != {other.iptables.get(family)}")
        if self.links != other.links:
            lines.append(f"links: {sorted(self.links ^ other.links)} differ")
        lines += [
            f"{key}: {value} != {other.sysctls.get(key)}"
            for key, value in self.sysctls.items()
            if other.sysctls.get(key) != value
        ]
        return lines


def _run(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=30).stdout


def links() -> frozenset[str]:
    """Interface names (`ip -o link`: "3: name@peer: <...>")."""
    return frozenset(
        line.split(":")[1].strip().split("@")[0] for line in _run(["ip", "-o", "link"]).splitlines()
    )


def snapshot() -> HostNetwork:
    sysctls = {}
    for key in SYSCTLS:
        path = Path("/proc/sys") / key
        if path.exists():  # bridge-nf-* only once br_netfilter is loaded
            sysctls[key] = path.read_text().strip()
    return HostNetwork(
        iptables={f: parse_save(_run([f"{cmd}-save"])) for f, cmd in IPTABLES.items()},
        links=links(),
        sysctls=sysctls,
    )


def engine_links(names: Iterable[str]) -> list[str]:
    """The links a Docker engine makes: its default bridge, a network's, a container's veth."""
    return sorted(n for n in names if n == "docker0" or n.startswith(("br-", "veth")))


def undo(before: HostNetwork) -> list[str]:
    """Put back what changed since `before` was taken; return what could not be. Run it after
    the engine stopped: a running engine would add its rules again. Only links an engine
    makes are deleted: another one that appeared meanwhile (a VPN's) is not the test's."""
    now = snapshot()
    failed = []
    steps = [
        [command, *args]
        for family, command in IPTABLES.items()
        for args in undo_plan(before.iptables[family], now.iptables[family])
    ]
    steps += [["ip", "link", "delete", n] for n in engine_links(now.links - before.links)]
    for step in steps:
        try:
            _run(step)
        except subprocess.CalledProcessError as exc:
            failed.append(f"{' '.join(step)}: {exc.stderr.strip()}")
    for key, value in before.sysctls.items():
        if now.sysctls.get(key) != value:
            (Path("/proc/sys") / key).write_text(value)
    return failed
