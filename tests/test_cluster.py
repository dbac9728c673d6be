"""styletransfer.compute.cluster: the worker command, reading --cluster, reaching workers, and naming the one that was lost."""
import socket

import pytest

from styletransfer.compute import cluster
from styletransfer.testing.workers import free_port, running


def test_worker_serves_says_so_and_warns_and_stops():
    with running(1) as (worker,):
        printed = ''.join(worker.lines)
        assert f':{worker.port} (all interfaces), devices: device:CPU:0' in printed
        assert 'warning: this worker runs any TensorFlow graph sent by anyone who can reach port' in printed
        assert cluster.worker_devices([worker.address]) == ['/job:worker/task:0/device:CPU:0']
        cluster.check_reachable([worker.address])
    assert worker.process.returncode is not None  # stopped by the context


@pytest.mark.parametrize('text, expected', [
    ('', 'names no workers'),
    ('host', "'host' is not host:port"),
    ('host:port', "'host:port' is not host:port"),
    ('host:70000', "'host:70000' is not host:port"),
    ('a:1,a:1', 'names a worker twice'),
])
def test_malformed_cluster(text, expected):
    with pytest.raises(cluster.ClusterError, match=expected):
        cluster.parse_addresses(text)


def test_addresses_in_order():
    assert cluster.parse_addresses('a:1, b:2,[::1]:3') == ['a:1', 'b:2', '[::1]:3']


def test_unreachable_worker_is_named():
    """Worker 0 listens (a plain socket is enough for the check), worker 1's port is closed."""
    with socket.socket() as listening:
        listening.bind(('127.0.0.1', 0))
        listening.listen()
        open_address, closed_address = f'127.0.0.1:{listening.getsockname()[1]}', f'127.0.0.1:{free_port()}'
        cluster.check_reachable([open_address])
        with pytest.raises(cluster.ClusterError, match=rf'worker 1 \({closed_address}\) cannot be reached'):
            cluster.check_reachable([open_address, closed_address])
