"""`neural-style-cluster worker` processes for tests and benchmarks: started on 127.0.0.1 at free ports, always stopped afterwards."""
import contextlib
import os
import socket
import subprocess
import sys
import time

START_TIMEOUT = 120  # seconds for a worker to import TensorFlow and serve, on 2 busy cores


def free_port():
    """A TCP port nothing listens on now (the worker binds it a moment later)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Worker:
    """One `neural-style-cluster worker` subprocess; `address` is 127.0.0.1:PORT, `lines` what it printed."""

    def __init__(self, threads=None):
        self.port = free_port()
        self.address = f'127.0.0.1:{self.port}'
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', PYTHONUNBUFFERED='1')
        self.process = subprocess.Popen([sys.executable, '-m', 'styletransfer.compute.cluster', 'worker', '--port',
                                         str(self.port)] + (['--threads', str(threads)] if threads else []),
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines = []

    def wait_serving(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f'worker on port {self.port} exited: {"".join(self.lines)}')
            self.lines.append(line)
            if 'warning:' in line:  # printed last, once serving
                return self
        raise RuntimeError(f'worker on port {self.port} did not start in {START_TIMEOUT} s')

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stdout.close()


def terminate(process, timeout=30):
    """SIGTERM, so that the process cleans up; SIGKILL if it has not ended within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def running(count, threads=None):
    """`count` workers, serving; killed at the end, whatever happens in between."""
    workers = []
    try:
        workers = [Worker(threads) for _ in range(count)]
        for worker in workers:
            worker.wait_serving()
        yield workers
    finally:
        for worker in workers:
            worker.stop()
