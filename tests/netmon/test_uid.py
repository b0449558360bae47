"""Incident ids: drawn from the OS's randomness in bulk (no system call per id on the proxy's event
loop), unique, and never repeated by a forked process."""

from __future__ import annotations

import os

from netmon.incidents.decisions import new_uid


def test_ids_are_unique_hex_and_a_forked_child_draws_its_own() -> None:
    ids = [new_uid() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    new_uid()  # the parent's buffer now holds the next ids
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, "".join(new_uid() for _ in range(300)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as fh:
        theirs = fh.read()
    child = {theirs[i : i + 32] for i in range(0, len(theirs), 32)}
    mine = {new_uid() for _ in range(300)}
    assert len(child) == 300 and not child & mine
