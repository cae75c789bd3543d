"""Ports handed out for tests' servers: never the kernel's ephemeral ones, never one another process of ours holds."""

from __future__ import annotations

import subprocess
import sys

from send_devkit.ports import free_port


def _ephemeral_start() -> int:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
        return int(ranges.read().split()[0])


def _in_another_process(ports: range) -> subprocess.CompletedProcess[str]:
    code = f"import send_devkit.ports as p\np._RANGE = range({ports.start}, {ports.stop})\nprint(p.free_port())\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False)


def test_ports_are_distinct_and_below_the_ephemeral_range() -> None:
    ports = [free_port() for _ in range(60)]
    assert len(set(ports)) == len(ports)
    assert max(ports) < _ephemeral_start()


def test_another_process_is_not_given_a_port_this_one_holds() -> None:
    held = free_port()
    refused = _in_another_process(range(held, held + 1))
    assert refused.returncode != 0
    assert "no free port" in refused.stderr


def test_a_port_is_given_again_once_its_holder_has_ended() -> None:
    first = _in_another_process(range(20000, 32768))
    assert first.returncode == 0, first.stderr
    port = int(first.stdout)
    again = _in_another_process(range(port, port + 1))
    assert again.returncode == 0, again.stderr
    assert int(again.stdout) == port
