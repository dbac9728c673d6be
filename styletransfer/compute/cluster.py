"""Several devices and machines on TensorFlow's distributed runtime: the worker server, the cluster spec, and
which devices a run may use.

    neural-style-cluster worker --port 2222     # on each machine: serves until stopped (Ctrl-C)

A client (`neural_style.py --cluster host1:2222,host2:2222`) names the workers in its session's cluster_def as
the job `worker`, places its ops on `/job:worker/task:i/device:...`, and runs one Session.run over them all,
through the first worker's master. Nothing here is a protocol of its own: it is TensorFlow's gRPC runtime.

TensorFlow's server has no authentication and (as of TensorFlow 2.21) listens on every interface whatever
address the cluster spec gives it: anyone who reaches the port can run any graph on the worker, file reads and
writes included. Keep the port private (docs/devices.md).
"""
import argparse
import re
import signal
import socket
import sys
import time

from styletransfer.compute import devices
from styletransfer.run import console, quiet_tensorflow

DEFAULT_PORT = 2222  # TensorFlow's documented example port for a tf.distribute.Server
JOB = 'worker'  # the job a client names the workers by
SERVER_JOB = 'neural_style_server'  # the name a worker boots with: a client's cluster_def may not reuse it
CONNECT_TIMEOUT = 5.0  # seconds to wait for a worker's port at the start of a run
WARNING = ('this worker runs any TensorFlow graph sent by anyone who can reach port {port} on any of this '
           "machine's network interfaces, file reads and writes included (TensorFlow's server has no "
           'authentication and listens on all interfaces): keep the port private with a firewall rule or an SSH '
           'tunnel (docs/devices.md)')


class ClusterError(Exception):
    """A worker cannot be used: unreachable, not a TensorFlow server, or lost during a run. One sentence."""


def parse_addresses(text):
    """'host1:2222,host2:2222' -> ['host1:2222', 'host2:2222']; raises ClusterError for a malformed entry."""
    addresses = [entry.strip() for entry in text.split(',') if entry.strip()]
    if not addresses:
        raise ClusterError('--cluster names no workers; give host:port,host:port')
    for address in addresses:
        host, _, port = address.rpartition(':')
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ClusterError(f'--cluster entry {address!r} is not host:port (e.g. gpu-box:{DEFAULT_PORT})')
    if len(set(addresses)) != len(addresses):
        raise ClusterError('--cluster names a worker twice')
    return addresses


def check_reachable(addresses, timeout=CONNECT_TIMEOUT):
    """Raises ClusterError naming the first worker whose port does not accept a connection."""
    for task, address in enumerate(addresses):
        host, _, port = address.rpartition(':')
        try:
            socket.create_connection((host.strip('[]'), int(port)), timeout=timeout).close()
        except OSError as error:
            raise ClusterError(f'worker {task} ({address}) cannot be reached: {error.strerror or error}; is '
                               f'`neural-style-cluster worker --port {port}` running there?') from None


def cluster_def(addresses):
    """The ClusterDef of a client's session: the workers as the job 'worker', task i at addresses[i]."""
    import tensorflow.compat.v1 as tf
    return tf.train.ClusterSpec({JOB: list(addresses)}).as_cluster_def()


def session_target(addresses):
    """The master a client's session talks to: the first worker's."""
    return f'grpc://{addresses[0]}'


def worker_devices(addresses):
    """The devices a run uses on each worker, in order: every GPU of a worker that has one, else its CPU, named
    as a client places ops on them (/job:worker/task:i/device:GPU:k)."""
    import tensorflow.compat.v1 as tf

    placed = []
    for task, address in enumerate(addresses):
        try:
            with tf.Session(f'grpc://{address}', graph=tf.Graph()) as session:
                found = [d.name for d in session.list_devices()]
        except tf.errors.OpError as error:
            raise ClusterError(f'worker {task} ({address}) did not answer as a TensorFlow server: '
                               f'{error.message.splitlines()[0]}') from None
        kinds = [name.rsplit('/', 1)[-1] for name in found]  # device:CPU:0, device:GPU:0, ...
        gpus = sorted(kind for kind in kinds if kind.startswith('device:GPU:'))
        placed += [f'/job:{JOB}/task:{task}/{kind}' for kind in (gpus or ['device:CPU:0'])]
    return placed


def check_answering(addresses, timeout=devices.ANSWER_TIMEOUT):
    """Raises ClusterError naming the first worker that accepts connections but does not answer as a TensorFlow
    server within `timeout` seconds (stopped, say, with SIGSTOP or Ctrl-Z)."""
    task = devices.silent_worker(addresses, timeout)
    if task is not None:
        raise ClusterError(f'worker {task} ({addresses[task]}) accepts connections but did not answer within '
                           f'{timeout:g} s; is it stopped (Ctrl-Z, SIGSTOP) or hung? Restart it or leave it out '
                           f'of --cluster')


def remote_placement(addresses, answer_timeout=devices.ANSWER_TIMEOUT, stall_check=devices.STALL_CHECK):
    """--cluster: every worker's devices (worker_devices), with the first worker's master and the cluster's
    ClusterDef. Checks first that every worker can be reached and answers within answer_timeout seconds
    (ClusterError, before any work); the run's sessions probe the workers with answer_timeout and stall_check
    (devices.ClusterSession)."""
    check_reachable(addresses)
    check_answering(addresses, answer_timeout)
    return devices.Placement(tuple(worker_devices(addresses)), session_target(addresses), cluster_def(addresses),
                             answer_timeout, stall_check)


def lost_worker(addresses, error):
    """Which worker a run lost: (its task index, or None when neither TensorFlow's message nor a probe of the
    ports tells, and a sentence naming it)."""
    match = re.search(rf'/job:{JOB}/replica:0/task:(\d+)', str(error))
    suspects = [int(match.group(1))] if match else []
    for task, address in enumerate(addresses):
        try:
            check_reachable([address], timeout=1.0)
        except ClusterError:
            suspects.insert(0, task)  # a worker that does not answer any more is the likelier culprit
    if not suspects:
        return None, f'a worker of {", ".join(addresses)} failed during the run'
    task = suspects[0]
    return task, f'worker {task} ({addresses[task]}) was lost during the run'


def serve(port, threads=None, stream=sys.stdout):
    """Starts a TensorFlow server on `port` (0: any free port), its ops running on `threads` threads (default:
    TensorFlow's, one per core), prints its address, devices and the warning, and serves until the process is
    stopped."""
    import tensorflow.compat.v1 as tf

    config = tf.ConfigProto(intra_op_parallelism_threads=threads or 0, inter_op_parallelism_threads=threads or 0)
    server = tf.distribute.Server(tf.train.ClusterSpec({SERVER_JOB: [f'localhost:{port}']}), job_name=SERVER_JOB,
                                  task_index=0, config=config, start=True)
    bound = int(server.target.rpartition(':')[2])
    with tf.Session(server.target, graph=tf.Graph()) as session:
        devices = [d.name.rsplit('/', 1)[-1] for d in session.list_devices()]
    print(f'neural-style-cluster: serving on {socket.gethostname()}:{bound} (all interfaces), devices: {", ".join(devices)}',
          file=stream, flush=True)
    print(f'neural-style-cluster: warning: {WARNING.format(port=bound)}', file=stream, flush=True)
    while True:  # not server.join(): a blocking C++ call would keep Ctrl-C and SIGTERM from being handled
        time.sleep(3600)


def build_parser():
    parser = argparse.ArgumentParser(prog='neural-style-cluster', description=__doc__.split('\n\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    worker = commands.add_parser('worker', help='serve this machine\'s devices to neural_style.py --cluster',
                                 description=f'Starts a TensorFlow server. Warning: {WARNING.format(port="PORT")}.')
    worker.add_argument('--port', type=int, default=DEFAULT_PORT, help='TCP port to serve on (0: any free port)')
    worker.add_argument('--threads', type=int, help='threads for the work it runs (default: one per core); '
                        'e.g. to share a machine with other work')
    worker.add_argument('--verbose', action='store_true', help='let TensorFlow print its start-up and log lines')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, console.interrupt_on_sigterm)
    try:
        quiet_tensorflow.import_tensorflow(args.verbose)
    except ImportError as error:
        print(f'neural-style-cluster: error: {quiet_tensorflow.import_failure(error)}', file=sys.stderr)
        return 1
    try:
        serve(args.port, args.threads)
    except KeyboardInterrupt:
        print('neural-style-cluster: stopped', file=sys.stderr)
    except Exception as error:  # TensorFlow's error for a port in use is long; its first line says it
        print(f'neural-style-cluster: error: could not serve on port {args.port} (in use?): {str(error).splitlines()[0]}',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
