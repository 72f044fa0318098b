"""The test cluster is what the tests claim: 2 worker processes, listening on loopback only."""

from __future__ import annotations

import ipaddress
import os

import pytest

psutil = pytest.importorskip("psutil")


def _listening_addresses(processes):
    for process in processes:
        for connection in process.net_connections(kind="inet"):
            if connection.status == psutil.CONN_LISTEN:
                yield connection.laddr


def test_cluster_listens_on_loopback_only(client):
    """Every listening socket of the scheduler and the worker processes is bound to 127.0.0.1."""
    me = psutil.Process()
    processes = [me, *me.children(recursive=True)]
    workers = client.scheduler_info()["workers"]
    assert len(workers) == 2
    worker_pids = set(client.run(os.getpid).values())
    assert worker_pids <= {p.pid for p in processes}  # separate processes, started by the test
    addresses = list(_listening_addresses(processes))
    assert addresses, "the scheduler listens somewhere"
    for address in addresses:
        assert ipaddress.ip_address(address.ip).is_loopback, address
