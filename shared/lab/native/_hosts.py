"""Hosts of their own for the native runtime: network namespaces on a bridge the run creates.

Phase 4's Redis Cluster must talk across real addresses, as its nodes would on separate
machines: a node announces its address to the others and to clients, and a lost host is a
link that goes down, not a port that closes. Each host here is a network namespace with one
veth link to a bridge on this machine; the bridge has the subnet's first address, so the
phase's other processes (on 127.0.0.1) reach every host directly, and nothing is routed
further. Load still enters only through 127.0.0.1.

Every name carries the pid of the process that made it (`slab<pid>`, `slab<pid>n<i>` for a
namespace, `slab<pid>v<i>` for its link), so what a crashed run left behind is found and
removed by `remove_stale()` (`make down`, and every new run), and a live run's are left alone.
iproute2's `ip` does the work: the commands are the ones a person would type to do it by hand.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field

import psutil

PREFIX = "slab"
SUBNETS = ipaddress.IPv4Network("10.213.0.0/16")
FIRST_HOST = 10  # host i has address .10 + i; .1 is the bridge
_NAME = re.compile(rf"^{PREFIX}(\d+)(?:[nv]\d+)?$")


class HostsError(RuntimeError):
    pass


def available() -> str | None:
    """None when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "not root: network namespaces cannot be created"
    if shutil.which("ip") is None and not os.path.exists("/usr/sbin/ip"):
        return "no `ip` command: install the Debian package iproute2"
    return None


def _ip(*args: str, check: bool = True) -> str:
    binary = shutil.which("ip") or "/usr/sbin/ip"
    result = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise HostsError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def _used_subnets() -> set[ipaddress.IPv4Network]:
    used = set()
    for line in _ip("-4", "-o", "addr", "show").splitlines():
        for word in line.split():
            if "/" in word and word[0].isdigit():
                used.add(ipaddress.ip_interface(word).network)
    return {net for net in used if isinstance(net, ipaddress.IPv4Network)}


@dataclass
class Hosts:
    """`count` hosts of one run; `create()` makes them, `destroy()` removes every trace."""

    count: int
    owner: int = field(default_factory=os.getpid)
    subnet: ipaddress.IPv4Network | None = None

    @property
    def bridge(self) -> str:
        return f"{PREFIX}{self.owner}"

    def namespace(self, index: int) -> str:
        return f"{PREFIX}{self.owner}n{index}"

    def link(self, index: int) -> str:
        """The host's end of host `index`'s veth: down, and the host is cut off."""
        return f"{PREFIX}{self.owner}v{index}"

    def address(self, index: int) -> str:
        if self.subnet is None:
            raise HostsError("hosts not created yet")
        return str(self.subnet.network_address + FIRST_HOST + index)

    @property
    def gateway(self) -> str:
        """This machine's address on the bridge: what the hosts see our processes come from."""
        if self.subnet is None:
            raise HostsError("hosts not created yet")
        return str(self.subnet.network_address + 1)

    def plan(self) -> Hosts:
        """Pick the subnet, so every address is known before anything is made."""
        used = _used_subnets()
        self.subnet = next((net for net in SUBNETS.subnets(new_prefix=24) if net not in used), None)
        if self.subnet is None:
            raise HostsError(f"every /24 of {SUBNETS} is in use")
        return self

    def create(self) -> None:
        if self.subnet is None:
            self.plan()
        assert self.subnet is not None
        prefix = self.subnet.prefixlen
        if self.bridge in _ip("-o", "link", "show", check=False):
            # Names carry only the pid: a second set in one process would take the first's.
            raise HostsError(f"process {self.owner} has hosts already ({self.bridge})")
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            # Bridged frames skip iptables: a Docker engine sets FORWARD to DROP, which would
            # otherwise cut host from host.
            _ip("link", "set", self.bridge, "type", "bridge", "nf_call_iptables", "0", check=False)
            _ip("addr", "add", f"{self.gateway}/{prefix}", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for index in range(1, self.count + 1):
                ns = self.namespace(index)
                _ip("netns", "add", ns)
                _ip("link", "add", self.link(index), "type", "veth", "peer", "name", "eth0",
                    "netns", ns)  # fmt: skip
                _ip("link", "set", self.link(index), "master", self.bridge, "up")
                _ip("-n", ns, "addr", "add", f"{self.address(index)}/{prefix}", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                _ip("-n", ns, "link", "set", "lo", "up")
        except HostsError:
            self.destroy()
            raise

    def wrap(self, index: int, command: list[str]) -> list[str]:
        """`command` run inside host `index` (ip netns exec replaces itself with it)."""
        binary = shutil.which("ip") or "/usr/sbin/ip"
        return [binary, "netns", "exec", self.namespace(index), *command]

    def set_link(self, index: int, up: bool) -> None:
        _ip("link", "set", self.link(index), "up" if up else "down")

    def destroy(self) -> None:
        remove(self.owner)


def remove(owner: int) -> list[str]:
    """Every namespace, link and bridge `owner` made; returns their names."""
    removed = []
    for ns in _ip("netns", "list", check=False).split("\n"):
        name = ns.split(" ")[0]
        if _owner(name) == owner:
            _ip("netns", "delete", name, check=False)  # takes its veth pair with it
            removed.append(name)
    for line in _ip("-o", "link", "show", check=False).splitlines():
        parts = line.split(":")
        name = parts[1].strip().split("@")[0] if len(parts) > 1 else ""
        if _owner(name) == owner:
            _ip("link", "delete", name, check=False)
            removed.append(name)
    return removed


def remove_stale() -> list[str]:
    """What runs whose process is gone left behind (a crash, a SIGKILL)."""
    owners = set()
    for ns in _ip("netns", "list", check=False).split("\n"):
        owners.add(_owner(ns.split(" ")[0]))
    for line in _ip("-o", "link", "show", check=False).splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            owners.add(_owner(parts[1].strip().split("@")[0]))
    removed = []
    for owner in owners - {None}:
        assert owner is not None
        if not psutil.pid_exists(owner):
            removed += remove(owner)
    return removed


def _owner(name: str) -> int | None:
    match = _NAME.match(name)
    return int(match.group(1)) if match else None
