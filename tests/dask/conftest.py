"""A real ``dask.distributed.LocalCluster``: 2 worker processes on 127.0.0.1, started here.

One cluster serves every test of tests/dask/ (starting worker processes takes
seconds; idle workers still cost CPU, so it does not outlive the package). It
binds only to loopback (its HTTP server too, on a free port; see
test_cluster_loopback.py). Each worker has
a memory limit of ``WORKER_MEMORY_LIMIT`` so that tests can push data several
times larger than a worker's memory through it.
"""

from __future__ import annotations

import pytest

WORKER_MEMORY_LIMIT = 512 * 2**20
"""Bytes per worker process; Dask's nanny kills a worker that passes 95% of it."""


@pytest.fixture(scope="package")
def cluster():
    """The LocalCluster (2 processes × 1 thread, loopback only), shut down after tests/dask/."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",  # its HTTP server on loopback, any free port
        memory_limit=WORKER_MEMORY_LIMIT,
        silence_logs=40,
    ) as local_cluster:
        yield local_cluster


@pytest.fixture
def client(cluster):
    """A Client of the session's cluster, the default scheduler for the test, closed after."""
    distributed = pytest.importorskip("distributed")
    with distributed.Client(cluster, set_as_default=True) as dask_client:
        yield dask_client
