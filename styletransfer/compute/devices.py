"""Where graphs run: the devices TensorFlow sees, a run's placement on devices and machines, and the sessions
that run its graphs there (docs/devices.md)."""
import contextlib
import os
import threading
import time
from dataclasses import dataclass

# 'float32' is the faithful arithmetic; 'mixed' runs the convolutions in 16 bits for speed; 'auto' is mixed on a
# CPU with bfloat16 arithmetic (CPU_BFLOAT16_FLAGS), float32 elsewhere (no GPU has shown float16's pictures equal).
PRECISIONS = ('float32', 'mixed', 'auto')
# 'auto' computes the deep float32 convolutions by Winograd's F(4x4, 3x3) where that is faster (convolutions());
# 'direct' sums every convolution directly, as TensorFlow does (docs/performance.md, "Winograd").
CONVOLUTION_CHOICES = ('auto', 'direct')
CPU_BFLOAT16_FLAGS = ('amx_bf16', 'avx512_bf16')  # /proc/cpuinfo's names for AMX's and AVX-512's bfloat16 units
CPUINFO_ENV = 'NEURAL_STYLE_CPUINFO'  # a file read in place of /proc/cpuinfo: how tests decide 'auto' for any CPU
CLUSTER_OPERATION_TIMEOUT = 600  # seconds a Session.run on a cluster may take before its worker counts as lost
CLUSTER_CLOSE_WAIT = 10  # seconds to wait for a cluster session's close (a lost worker's never comes)
# A worker answers a probe (its device list) from gRPC's threads at once, however busy its devices are: one that
# has not answered in ANSWER_TIMEOUT seconds is stopped or cut off. A cluster Session.run that has gone on for
# STALL_CHECK seconds probes every worker, again every STALL_CHECK seconds: a stalled evaluation is reported
# within STALL_CHECK + ANSWER_TIMEOUT seconds (50 s), whatever an evaluation takes. The defaults of a
# Placement's answer_timeout and stall_check (neural_style.py --cluster-timeouts).
ANSWER_TIMEOUT = 20
STALL_CHECK = 30
WAIT_SLICE = 0.5  # seconds between checks while a cluster Session.run is waited for: Ctrl-C is honoured at once
# Grappler's passes that a graph of constants with no loops or functions does not need: they cost time at the first
# run and gain nothing here (docs/performance.md); the remapper's fused convolutions and the layout optimizer stay.
UNNEEDED_GRAPPLER_PASSES = ('constant_folding', 'arithmetic_optimization', 'dependency_optimization',
                            'loop_optimization', 'function_optimization', 'shape_optimization',
                            'common_subgraph_elimination')


# Devices

def is_device_name(name):
    """Whether `name` is written as a device (/cpu:0, /GPU:1, /device:gpu:0), whether it exists or not."""
    kind, _, index = name.lower().lstrip('/').replace('device:', '').partition(':')
    return kind in ('cpu', 'gpu') and index.isdigit()


def default_device():
    """The first GPU when TensorFlow sees one, else the CPU."""
    import tensorflow as tf
    return '/gpu:0' if tf.config.list_physical_devices('GPU') else '/cpu:0'


def existing_device(name):
    """`name` (/cpu:0, /GPU:1, /device:gpu:0, ...) as /cpu:0 or /gpu:1 if TensorFlow sees that device here; a
    ValueError naming the devices it sees otherwise. The sessions place ops softly (an op without a kernel for
    the device falls back to the CPU), which would otherwise run a whole graph for /gpu:3 on the CPU."""
    return existing_devices([name])[0]


def existing_devices(names, logical_cpus=False):
    """existing_device of each name; with logical_cpus, /cpu:N of any N is allowed too (a session makes that many
    CPU devices on this machine's cores: Placement.logical_cpus)."""
    import tensorflow as tf
    seen = [f'/{device.device_type.lower()}:{device.name.rpartition(":")[2]}'
            for device in tf.config.list_physical_devices() if device.device_type in ('CPU', 'GPU')]
    found = []
    for name in names:
        kind, _, index = name.lower().lstrip('/').replace('device:', '').partition(':')
        if f'/{kind}:{index}' not in seen and not (logical_cpus and kind == 'cpu' and index.isdigit()):
            raise ValueError(f'device {name} does not exist here; TensorFlow sees {", ".join(seen)}')
        found.append(f'/{kind}:{index}')
    return found


def every_gpu():
    """Each GPU TensorFlow sees here, else the CPU: --devices all."""
    import tensorflow as tf
    return [f'/gpu:{i}' for i in range(len(tf.config.list_physical_devices('GPU')))] or ['/cpu:0']


def compute_dtype(precision, device):
    """The convolutions' arithmetic: float32, or for 'mixed' bfloat16 on a CPU and float16 (tensor cores) on a GPU;
    'auto' is bfloat16 on a CPU with bfloat16 arithmetic (cpu_bfloat16_flags), else float32. The image, the
    feature maps entering the losses, the Grams and the losses stay float32."""
    if precision not in PRECISIONS:
        raise ValueError(f'unknown precision {precision!r}; choose one of {", ".join(PRECISIONS)}')
    if precision == 'auto':
        precision = 'mixed' if 'gpu' not in device.lower() and cpu_bfloat16_flags() else 'float32'
    if precision == 'float32':
        return 'float32'
    return 'float16' if 'gpu' in device.lower() else 'bfloat16'


def cpu_flags(cpuinfo=None):
    """The flags this machine's CPU lists in `cpuinfo` (default: $NEURAL_STYLE_CPUINFO, else /proc/cpuinfo; none
    where there is no such file)."""
    cpuinfo = cpuinfo or os.environ.get(CPUINFO_ENV) or '/proc/cpuinfo'
    try:
        with open(cpuinfo) as f:
            return next((line.split(':', 1)[1].split() for line in f if line.startswith('flags')), [])
    except OSError:
        return []


def cpu_bfloat16_flags(cpuinfo=None):
    """Which of CPU_BFLOAT16_FLAGS this machine's CPU lists (cpu_flags)."""
    flags = cpu_flags(cpuinfo)
    return [flag for flag in CPU_BFLOAT16_FLAGS if flag in flags]


def convolutions(device, dtype, choice='auto', tiled=False, cpuinfo=None):
    """How the convolutions are computed on `device` in `dtype` (vgg.CONVOLUTIONS), by `choice`, one of
    CONVOLUTION_CHOICES. 'auto' on a CPU with AVX-512 in float32: the deep layers by Winograd's F(4x4, 3x3),
    about 10% faster an iteration on a Zen 5 EPYC, with a rounding error about ten times direct summation's; but not
    in a tiled evaluation, whose exactness argument is direct summation's (Winograd's blocks would not line up with
    the crops). Otherwise summed directly. With AVX-512 by TensorFlow's own: its input gradient was as fast on an
    Ice Lake Xeon, 5-9% faster an iteration on the Zen 5. Without AVX-512 the input gradients as forward
    convolutions of the rotated kernel, where oneDNN's Conv2DBackpropInput ran 21% slower than its forward
    convolution (docs/performance.md). On a GPU, TensorFlow's own (cuDNN chooses its algorithms). A worker's CPU is
    taken to be this machine's."""
    if choice not in CONVOLUTION_CHOICES:
        raise ValueError(f'unknown convolutions {choice!r}; choose one of {", ".join(CONVOLUTION_CHOICES)}')
    if 'gpu' in device.lower():
        return 'tensorflow'
    if 'avx512f' not in cpu_flags(cpuinfo):
        return 'rotated'
    return 'winograd' if choice == 'auto' and dtype == 'float32' and not tiled else 'tensorflow'


def arithmetic_in_words(precision, choice, device):
    """The convolutions' arithmetic on `device` by `precision` and the convolutions' `choice`, and for 'auto' why:
    for the set-up line."""
    dtype = compute_dtype(precision, device)
    words = dtype
    if precision == 'auto':
        found = cpu_bfloat16_flags()
        words += (' (auto: on a GPU)' if 'gpu' in device.lower() else
                  f' (auto: this CPU has {" and ".join(found)})' if found else
                  f' (auto: this CPU has neither {" nor ".join(CPU_BFLOAT16_FLAGS)})')
    if convolutions(device, dtype, choice) == 'winograd':
        words += ", the deep convolutions untiled by Winograd's F(4x4, 3x3) (this CPU has avx512f)"
    return words


# Placement

@dataclass(frozen=True)
class Placement:
    """Where a run's graphs go (docs/devices.md). devices: the first holds an untiled run's graph; a tiled
    evaluation spreads its tiles over all of them. target: the master of the sessions, '' for this process or
    'grpc://host:port', a worker's, with cluster_def naming every worker of the cluster. answer_timeout and
    stall_check: a cluster session's probes of its workers, in seconds (ClusterSession)."""
    devices: tuple
    target: str = ''
    cluster_def: object = None
    answer_timeout: float = ANSWER_TIMEOUT
    stall_check: float = STALL_CHECK

    def is_one_local_cpu(self):
        """Whether the run is on this machine's CPU alone, as one device."""
        return not self.target and len(self.devices) == 1 and 'cpu' in self.devices[0].lower()

    def logical_cpus(self):
        """How many CPU devices a local session makes: enough for the highest /cpu:N named (several logical
        CPU devices share this machine's cores)."""
        indexes = [int(name.rpartition(':')[2]) for name in self.devices if not self.target and 'cpu' in name]
        return max(indexes, default=0) + 1


def one_device(name=None):
    """The placement of a run on one device of this machine: `name` if TensorFlow sees it (ValueError
    otherwise), else default_device()."""
    return Placement((existing_device(name) if name else default_device(),))


def local_placement(text):
    """--devices: 'all' (every GPU TensorFlow sees here, else the CPU) or a comma-separated list of devices such as
    /gpu:0,/gpu:1; /cpu:N names logical CPU devices on this machine's cores (useful to test, and to measure what
    spreading costs). ValueError for a device that does not exist."""
    names = every_gpu() if text.strip() == 'all' else [name.strip() for name in text.split(',') if name.strip()]
    if not names:
        raise ValueError('--devices names no device; give e.g. /gpu:0,/gpu:1 or all')
    found = existing_devices(names, logical_cpus=True)
    if len(set(found)) != len(found):
        raise ValueError(f'--devices names a device twice: {text}')
    return Placement(tuple(found))


# Sessions

def session(graph, placement=None, grappler_passes=None):
    """A session for `graph` on the placement's devices and master (default: this process). grappler_passes:
    the only Grappler passes to run, e.g. ('layout', 'remap'); default: all but UNNEEDED_GRAPPLER_PASSES."""
    import tensorflow.compat.v1 as tf
    from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

    config = tf.ConfigProto(allow_soft_placement=True)
    config.gpu_options.allow_growth = True  # share the GPU with others
    rewrite = config.graph_options.rewrite_options
    if grappler_passes:
        rewrite.optimizers.extend(grappler_passes)
    else:
        for unneeded in UNNEEDED_GRAPPLER_PASSES:
            setattr(rewrite, unneeded, RewriterConfig.OFF)
    if (placement or one_device()).is_one_local_cpu():
        # one operation at a time, each on every core: two at once (a Gram beside a convolution) share the cores
        # and slow each other down, by up to 13% of an iteration (docs/performance.md)
        config.inter_op_parallelism_threads = 1
    if placement is None:
        return tf.Session(graph=graph, config=config)
    config.device_count['CPU'] = placement.logical_cpus()
    if placement.cluster_def is None:
        return tf.Session(placement.target, graph=graph, config=config)
    config.cluster_def.CopyFrom(placement.cluster_def)
    config.operation_timeout_in_ms = CLUSTER_OPERATION_TIMEOUT * 1000  # a worker that hangs is a lost one
    addresses = [job.tasks[task] for job in placement.cluster_def.job for task in sorted(job.tasks)]
    return ClusterSession(tf.Session(placement.target, graph=graph, config=config), addresses,
                          placement.answer_timeout, placement.stall_check)


def silent_worker(addresses, timeout=ANSWER_TIMEOUT):
    """The index of the first worker (TensorFlow server at host:port) that does not list its devices within
    `timeout` seconds, or None when all answer (or fail at once: not a silence). The probes run at the same time,
    each in a thread of its own."""
    import tensorflow.compat.v1 as tf

    def probe(address):
        config = tf.ConfigProto(operation_timeout_in_ms=int(timeout * 1000))
        with tf.Session(f'grpc://{address}', graph=tf.Graph(), config=config) as probing:
            probing.list_devices()

    probes = [_Call(probe, address) for address in addresses]
    deadline = time.monotonic() + timeout + WAIT_SLICE
    for task, call in enumerate(probes):
        call.thread.join(max(0.0, deadline - time.monotonic()))
        if call.thread.is_alive() or isinstance(call.outcome.get('error'), tf.errors.DeadlineExceededError):
            return task
    return None


class _Call:
    """call(*args) in a daemon thread of its own, started at once; `outcome` gets its 'result' or 'error'."""

    def __init__(self, call, *args):
        self.outcome = {}

        def work():
            try:
                self.outcome['result'] = call(*args)
            except BaseException as error:  # handed to the thread that waits for it
                self.outcome['error'] = error

        self.thread = threading.Thread(target=work, daemon=True, name='a call on a cluster')
        self.thread.start()


class ClusterSession:
    """A session on a cluster (the rest is tf.Session's) whose run() is waited for in short slices, so that
    Ctrl-C and SIGTERM are honoured within a second whatever a worker does: each Session.run goes on in a daemon
    thread, abandoned (raising CancelledError) once the session is closed. A run that takes stall_check seconds
    probes the workers (silent_worker): a worker that does not answer within answer_timeout seconds raises
    UnavailableError naming its task, as TensorFlow names a lost one."""

    def __init__(self, session, addresses, answer_timeout=ANSWER_TIMEOUT, stall_check=STALL_CHECK):
        self.session, self.addresses = session, addresses
        self.answer_timeout, self.stall_check = answer_timeout, stall_check
        self.closed, self.running, self.abandoned = threading.Event(), 0, 0

    def run(self, fetches, feed_dict=None):
        import tensorflow.compat.v1 as tf

        call, probe = _Call(self.session.run, fetches, feed_dict), None
        self.running += 1
        try:
            next_probe = time.monotonic() + self.stall_check
            while call.thread.is_alive():
                call.thread.join(WAIT_SLICE)
                if self.closed.is_set():
                    raise tf.errors.CancelledError(None, None, 'the session was closed during a Session.run')
                if probe is None and time.monotonic() >= next_probe:
                    probe = _Call(silent_worker, self.addresses, self.answer_timeout)
                if probe is not None and not probe.thread.is_alive():
                    task = probe.outcome.get('result')
                    if task is not None:
                        raise tf.errors.UnavailableError(
                            None, None, f'/job:worker/replica:0/task:{task} did not answer within '
                            f'{self.answer_timeout:g} s while an evaluation had gone on for {self.stall_check:g} s '
                            f'or more')
                    probe, next_probe = None, time.monotonic() + self.stall_check
        finally:
            self.running -= 1
            # Left to its thread (an interrupt, a silent worker): no outcome yet. Not is_alive(): Python 3.11's
            # Thread.join interrupted by Ctrl-C can mark a thread that goes on as stopped.
            self.abandoned += not call.outcome
        if 'error' in call.outcome:
            raise call.outcome['error']
        return call.outcome['result']

    def close(self):
        self.closed.set()
        self.session.close()

    def __getattr__(self, name):
        return getattr(self.session, name)


@contextlib.contextmanager
def opened(graph, placement=None):
    """A session for `graph` (session()), closed at the end (close())."""
    running = session(graph, placement)
    try:
        yield running
    finally:
        close(running, placement)


def close(running, placement=None):
    """Closes a session. On a cluster it waits at most CLUSTER_CLOSE_WAIT seconds: TensorFlow's close waits for
    every worker of the session, a lost one too (until the operation timeout), and the run is over by then."""
    if placement is None or not placement.target:
        running.close()
        return
    in_flight = running.running + running.abandoned  # runs under way or abandoned: their close may never come
    running.closed.set()  # those runs return at once
    closing = threading.Thread(target=_close_quietly, args=(running,), daemon=True, name='closing a session')
    closing.start()
    closing.join(0 if in_flight else CLUSTER_CLOSE_WAIT)


def _close_quietly(running):
    try:
        running.close()
    except Exception:  # a lost worker's error, reported already by the run
        pass


class DeviceLost(Exception):
    """A device of a cluster failed during a run (a worker stopped or became unreachable): TensorFlow's error,
    raised where the run was; the last Progress yielded holds the best image so far."""

    def __init__(self, error):
        super().__init__(error)
        self.error = error

    def __str__(self):
        """TensorFlow's message: its first line that says something (not "Graph execution error:"), else the
        error's kind."""
        lines = [line.strip() for line in (getattr(self.error, 'message', None) or str(self.error)).splitlines()]
        said = [line for line in lines if line and line != 'Graph execution error:']
        return said[0] if said else type(self.error).__name__.replace('Error', '')


def device_failures(placement, events):
    """`events` passed on, TensorFlow's error for a device of a cluster that failed raised as DeviceLost."""
    import tensorflow.compat.v1 as tf
    try:
        yield from events
    except tf.errors.OpError as error:
        if not placement.target:
            raise
        raise DeviceLost(error) from None
