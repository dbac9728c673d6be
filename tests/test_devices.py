"""Several devices and machines: an evaluation's tiles over two logical CPU devices and over two cluster
workers equal one device's, a worker lost mid-run, an unreachable worker, and reproduce.py's cells side by side."""
import _thread
import csv
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

import neural_style
import reproduce
import stylize
import vgg
from styletransfer.compute import cluster, devices
from styletransfer.compute.devices import Placement
from styletransfer.media import images
from styletransfer.method import tiling
from helpers import ROOT, as_settings, objective_settings, random_image, save, write_inputs
from styletransfer.testing.workers import free_port, running

EXACT = 1e-5  # float32 sums in another order: the tiles' Grams and gradients are added up in the same order
CSV_AGREEMENT = 1e-4  # after a few L-BFGS iterations


def tiled_evaluation(net, placement, x, content, style, tile_size=32):
    """The terms and gradient of the tiled objective at x, its targets and tiles spread over the placement's
    devices, and the bytes an evaluation fed and fetched."""
    settings = objective_settings()
    content_weights, style_weights = settings['content_layer_weights'], settings['style_layer_weights']
    networks = [tiling.TileNetwork(net, {name: w for name, w in content_weights.items()}, list(style_weights),
                                   pooling='avg', dtype='float32', device=device, placement=placement)
                for device in placement.devices]

    def tiles(image):
        return tiling.make_tiles(*image.shape[:2], tile_size, networks[0].deepest)

    def preprocessed(image):
        return vgg.preprocess(image, net.mean_pixel)[None]

    try:
        P = tiling.image_targets(networks, tiles(content), preprocessed(content))[0]
        _, A, M = tiling.image_targets(networks, tiles(style), preprocessed(style))
        objective = tiling.TiledObjective(
            networks, tiles(x), P, [{name: (A[name], M[name]) for name in style_weights}], as_settings(settings))
        terms, gradient = objective.evaluate(preprocessed(x))
        return terms, gradient, objective.moved
    finally:
        for network in networks:
            network.close()


def assert_same_evaluation(one, several):
    (terms, gradient, _), (expected, expected_gradient, _) = several, one
    for name in expected:
        assert terms[name] == pytest.approx(expected[name], rel=EXACT), name
    assert np.abs(gradient - expected_gradient).max() <= EXACT * np.abs(expected_gradient).max()


@pytest.fixture(scope='module')
def case(net):
    """An odd-sized image cut into 9 tiles of 32 px, and its evaluation on one device."""
    x, content, style = random_image(70, 83, seed=4), random_image(70, 83, seed=1), random_image(40, 50, seed=2)
    return x, content, style, tiled_evaluation(net, Placement(('/cpu:0',)), x, content, style)


def test_two_logical_cpu_devices_equal_one(net, case):
    x, content, style, one = case
    several = tiled_evaluation(net, Placement(('/cpu:0', '/cpu:1')), x, content, style)
    assert_same_evaluation(one, several)
    assert several[2] == one[2]  # the same tiles travel, whichever device runs them


def test_the_tiles_are_spread_so_that_each_device_has_one():
    """spread: the largest aligned tile cutting the image into at least as many tiles as devices."""
    for wanted, (height, width) in [(2, (70, 83)), (3, (384, 512)), (8, (384, 512)), (4, (16, 16))]:
        size = tiling.spread((height, width), ['relu4_2'], list(stylize.STYLE_LAYERS), wanted)
        count = len(tiling.make_tiles(height, width, size, 'relu5_1'))
        assert size % 16 == 0 and (count >= wanted or size == 16)
        if size > 16:  # one alignment step larger gives too few tiles
            assert len(tiling.make_tiles(height, width, size + 16, 'relu5_1')) < wanted


def test_only_a_run_on_one_local_cpu_runs_one_operation_at_a_time():
    """is_one_local_cpu decides devices.session's single inter-op thread: several devices in one process need
    their operations to run at once, and a worker's threads are its own."""
    assert Placement(('/cpu:0',)).is_one_local_cpu()
    assert not Placement(('/cpu:0', '/cpu:1')).is_one_local_cpu()
    assert not Placement(('/gpu:0',)).is_one_local_cpu()
    assert not Placement(('/job:worker/task:0/cpu:0',), target='grpc://127.0.0.1:2222').is_one_local_cpu()


@pytest.fixture(scope='module')
def one_device_table(tmp_path_factory, network_path):
    """The CSV's losses of 3 L-BFGS iterations on one device, in tiles of 16 px, on the inputs fixture's images:
    what two devices and two workers must give."""
    inputs = write_inputs(tmp_path_factory.mktemp('one-device'), network_path)
    assert neural_style.main(command(inputs, inputs['dir'], 'one', ['--device', '/cpu:0', '--tile-size', '16'])) == 0
    return read_csv(inputs['dir'] / 'one.csv')


def test_devices_on_the_command_line(inputs, tmp_path, one_device_table):
    """--devices /cpu:0,/cpu:1 against one device, the same tiles: the same CSV after 3 L-BFGS iterations."""
    assert neural_style.main(command(inputs, tmp_path, 'two', ['--devices', '/cpu:0,/cpu:1', '--tile-size', '16'])) == 0
    np.testing.assert_allclose(read_csv(tmp_path / 'two.csv'), one_device_table, rtol=CSV_AGREEMENT)


def command(inputs, tmp_path, name, extra, iterations=3):
    return ['--content', inputs['content'], '--styles', inputs['style'], '--network', inputs['network'],
            '--output', str(tmp_path / f'{name}.png'), '--progress-write', str(tmp_path / f'{name}.csv'),
            '--iterations', str(iterations), '--seed', '3', '--print-iterations', '1'] + extra


def read_csv(path):
    with open(path, newline='') as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(images.ProgressLog.HEADER)
    return np.array([[float(value) for value in row[1:5]] for row in rows[1:]])  # the losses, not the seconds


@pytest.mark.parametrize('devices, expected', [
    ('/gpu:5', 'device /gpu:5 does not exist here'),
    ('/cpu:0,/cpu:0', 'names a device twice'),
    (',', 'names no device'),
])
def test_bad_devices(inputs, tmp_path, capsys, devices, expected):
    assert neural_style.main(command(inputs, tmp_path, 'out', ['--devices', devices])) == 1
    assert expected in capsys.readouterr().err
    assert not os.listdir(tmp_path) or not any(name.startswith('out') for name in os.listdir(tmp_path))


def test_one_place_for_the_run(inputs, tmp_path, capsys):
    assert neural_style.main(command(inputs, tmp_path, 'out', ['--device', '/cpu:0', '--devices', 'all'])) == 1
    assert '--device and --devices each say where the run goes' in capsys.readouterr().err


# Workers

def test_two_workers_equal_one_device(net, case, inputs, tmp_path, one_device_table):
    """The same evaluation with its tiles on two cluster workers (started here, on 127.0.0.1); then 3
    L-BFGS iterations on the command line give the CSV of one local device; and reproduce.py renders its
    cells side by side on the workers, the same cells as one after another here."""
    x, content, style, one = case
    with running(2) as workers:
        addresses = [worker.address for worker in workers]
        placement = cluster.remote_placement(addresses)
        assert placement.devices == ('/job:worker/task:0/device:CPU:0', '/job:worker/task:1/device:CPU:0')
        assert_same_evaluation(one, tiled_evaluation(net, placement, x, content, style))

        assert neural_style.main(command(inputs, tmp_path, 'cluster', ['--cluster', ','.join(addresses),
                                                                      '--tile-size', '16'])) == 0
        np.testing.assert_allclose(read_csv(tmp_path / 'cluster.csv'), one_device_table, rtol=CSV_AGREEMENT)

        sheets = {}
        for name, extra in (('here', []), ('workers', ['--cluster', ','.join(addresses)])):
            directory = tmp_path / name
            directory.mkdir()
            assert reproduce.main(['styles', '--content', inputs['content'], '--style', inputs['style'], '--style',
                                   save(tmp_path / 'second.png', random_image(20, 24, seed=9)),
                                   '--network', inputs['network'], '--output', str(directory / 'sheet.png'),
                                   '--max-size', '16', '--iterations', '2'] + extra) == 0
            sheets[name] = {entry.name: np.asarray(Image.open(entry.path)) for entry in os.scandir(directory)
                            if entry.name.endswith('.png')}
    assert sorted(sheets['workers']) == sorted(sheets['here']) and len(sheets['here']) == 3  # 2 cells, the sheet
    for name, image in sheets['here'].items():
        np.testing.assert_array_equal(sheets['workers'][name], image, err_msg=name)


def test_a_worker_lost_mid_run(inputs, tmp_path):
    """Worker 1 killed after iteration 2: one sentence naming it, exit 1, the best image and the CSV on disk,
    and the command to continue on the worker that remains."""
    with running(2) as workers:
        addresses = ','.join(worker.address for worker in workers)
        client = subprocess.Popen([sys.executable, os.path.join(ROOT, 'neural_style.py')] +
                                  command(inputs, tmp_path, 'out', ['--cluster', addresses, '--tile-size', '16'],
                                          iterations=500),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
        try:
            for line in client.stdout:
                if line.startswith('iteration   2/'):
                    break
            workers[1].stop()
            _, err = client.communicate(timeout=300)
        finally:
            if client.poll() is None:
                client.kill()
            client.wait()
    assert client.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert 'Traceback' not in err
    assert last.startswith(f'neural_style.py: error: worker 1 ({workers[1].address}) was lost during the run'), last
    assert 'wrote the best image so far (iteration' in last
    assert last.endswith(f'; continue with --initial {tmp_path / "out.png"} --output {tmp_path / "out-continued.png"} '
                         f'--progress-write {tmp_path / "out-continued.csv"} --cluster {workers[0].address}'), last
    assert 'Graph execution error' not in last and '()' not in last  # TensorFlow's part tells the user nothing
    assert Image.open(tmp_path / 'out.png').size == (40, 30)
    assert len(read_csv(tmp_path / 'out.csv')) >= 3


def test_an_unreachable_worker_at_the_start(inputs, tmp_path, capsys):
    address = f'127.0.0.1:{free_port()}'
    assert neural_style.main(command(inputs, tmp_path, 'out', ['--cluster', address])) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f'neural_style.py: error: worker 0 ({address}) cannot be reached'), line
    assert not any(name.startswith('out') for name in os.listdir(tmp_path))
    assert reproduce.main(['init', '--content', inputs['content'], '--style', inputs['style'], '--network',
                           inputs['network'], '--output', str(tmp_path / 'sheet.png'), '--cluster', address]) == 1
    assert f'worker 0 ({address}) cannot be reached' in capsys.readouterr().err
    assert not any(name.startswith('sheet') for name in os.listdir(tmp_path))


def test_reproduce_interrupted_with_cells_side_by_side(inputs, tmp_path):
    """Ctrl-C while two cells (white-noise starts, 100000 iterations) run on two logical devices: one sentence and
    exit 130; each run writes its image, and a cell whose run was interrupted is not done (L-BFGS may end a run
    early when it can make no progress: that cell is done)."""
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, 'reproduce.py'), 'styles', '--content',
                                inputs['content'], '--style', inputs['style'], '--style', inputs['content'],
                                '--network', inputs['network'],
                                '--output', str(tmp_path / 'sheet.png'), '--max-size', '48', '--iterations',
                                '100000', '--devices', '/cpu:0,/cpu:1'], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
    try:
        started = 0
        for line in process.stdout:
            started += line.startswith('[') and ': on /cpu:' in line
            if started == 2:
                break
        deadline = time.monotonic() + 120
        # Both cells are optimizing once each has logged the start and an iteration, in its CSV's temporary file
        # (images.ProgressLog renames it to sheet-....csv only when the run ends).
        while time.monotonic() < deadline and sum(rows(path) >= 2 for path in tmp_path.glob('.sheet-*.csv.*.tmp')) < 2:
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert process.returncode == 130, err
    assert 'Traceback' not in err
    assert err.strip().splitlines()[-1] == ('reproduce.py: interrupted; run the same command again to resume from '
                                            'the cells rendered')
    cells = sorted(tmp_path.glob('sheet-*.png'))
    assert len(cells) == 2  # each run wrote its image: its best so far, or its result
    interrupted = [cell for cell in cells if not cell.with_suffix('.json').exists()]
    assert interrupted and all(rows(cell.with_suffix('.csv')) < 100000 for cell in interrupted)


def rows(path):
    with open(path) as f:
        return sum(1 for _ in f) - 1


def client(inputs, tmp_path, name, extra, iterations=100000):
    """neural_style.py on the workers in a subprocess, printing every iteration."""
    return subprocess.Popen([sys.executable, os.path.join(ROOT, 'neural_style.py')] +
                            command(inputs, tmp_path, name, extra, iterations=iterations),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))


def wait_for_iteration(process, iteration):
    for line in process.stdout:
        if line.startswith('iteration') and int(line.split()[1].split('/')[0]) >= iteration:
            return
    raise AssertionError(f'the run ended before iteration {iteration}: {process.stderr.read()}')


def test_a_session_whose_run_was_abandoned_is_not_waited_for_at_close():
    """A run abandoned at Ctrl-C, its Session.run still waiting on a stopped worker, leaves a session whose close
    never comes either: devices.close returns at once instead of waiting CLUSTER_CLOSE_WAIT for it."""
    running, released = threading.Event(), threading.Event()

    class StoppedWorker:  # a tf.Session whose run and close wait, as on a worker stopped with SIGSTOP
        def run(self, fetches, feed_dict=None):
            running.set()
            released.wait()

        def close(self):
            released.wait()

    def ctrl_c_while_it_runs():
        # once the main thread waits in run(), unless the test is over
        if running.wait(60) and not released.wait(2 * devices.WAIT_SLICE):
            _thread.interrupt_main()

    session = devices.ClusterSession(StoppedWorker(), ['127.0.0.1:1'])
    interrupter = threading.Thread(target=ctrl_c_while_it_runs)
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            session.run('fetch')
        started = time.monotonic()
        devices.close(session, devices.Placement(('/job:worker/task:0/device:CPU:0',), 'grpc://127.0.0.1:1'))
        assert time.monotonic() - started < devices.CLUSTER_CLOSE_WAIT / 2
    finally:
        released.set()
        interrupter.join()


# Short probes for the test: a stopped worker never answers, so any timeout shows it, while a live one answers
# its probe at once; the production defaults, far longer, would make the test wait them out.
ANSWER_TIMEOUT, STALL_CHECK = 3, 3
SHORT_TIMEOUTS = ['--cluster-timeouts', f'{ANSWER_TIMEOUT},{STALL_CHECK}']


def test_a_stopped_worker_is_named_and_never_hangs_the_run(inputs, tmp_path):
    """A worker that hangs, here a real worker stopped with SIGSTOP (continued and killed at the end): named before
    any work within the answer timeout; stopped mid-run, SIGINT is honoured within seconds (the best image
    written, with Adam, whose evaluations ran in the main thread; the default timeouts, far longer than the test's
    wait); left alone, the stalled evaluation is reported as a lost worker within the stall check and the answer
    timeout (with L-BFGS). The first and last runs take --cluster-timeouts short."""
    processes = []
    with running(1) as (worker,):
        try:
            os.kill(worker.process.pid, signal.SIGSTOP)
            started = time.monotonic()
            processes.append(client(inputs, tmp_path, 'start', ['--cluster', worker.address] + SHORT_TIMEOUTS))
            _, err = processes[-1].communicate(timeout=ANSWER_TIMEOUT + 120)
            assert processes[-1].returncode == 1 and 'Traceback' not in err, err
            assert err.strip().splitlines()[-1] == (
                f'neural_style.py: error: worker 0 ({worker.address}) accepts connections but did not answer within '
                f'{ANSWER_TIMEOUT} s; is it stopped (Ctrl-Z, SIGSTOP) or hung? Restart it or leave it out of '
                f'--cluster')
            assert time.monotonic() - started < ANSWER_TIMEOUT + 60  # TensorFlow's import, on a busy box
            assert not any(name.startswith('start') for name in os.listdir(tmp_path))
            os.kill(worker.process.pid, signal.SIGCONT)

            processes.append(client(inputs, tmp_path, 'adam', ['--cluster', worker.address, '--tile-size', '16',
                                                              '--optimizer', 'adam']))
            wait_for_iteration(processes[-1], 2)
            os.kill(worker.process.pid, signal.SIGSTOP)
            time.sleep(2)  # the evaluation under way waits for the worker
            interrupted = time.monotonic()
            processes[-1].send_signal(signal.SIGINT)
            _, err = processes[-1].communicate(timeout=120)
            assert time.monotonic() - interrupted < 15, err  # it waited for the worker's 600 s operation timeout
            assert processes[-1].returncode == 130 and 'Traceback' not in err, err
            last = err.strip().splitlines()[-1]
            assert last.startswith('neural_style.py: interrupted (SIGINT); wrote the best image so far'), last
            assert Image.open(tmp_path / 'adam.png').size == (40, 30)
            os.kill(worker.process.pid, signal.SIGCONT)

            processes.append(client(inputs, tmp_path, 'lbfgs', ['--cluster', worker.address, '--tile-size', '16'] +
                                    SHORT_TIMEOUTS))
            wait_for_iteration(processes[-1], 2)
            os.kill(worker.process.pid, signal.SIGSTOP)
            stopped = time.monotonic()
            _, err = processes[-1].communicate(timeout=STALL_CHECK + ANSWER_TIMEOUT + 120)
            assert time.monotonic() - stopped < STALL_CHECK + ANSWER_TIMEOUT + 30, err
            assert processes[-1].returncode == 1 and 'Traceback' not in err, err
            last = err.strip().splitlines()[-1]
            assert last.startswith(f'neural_style.py: error: worker 0 ({worker.address}) was lost during the run '
                                   f'(/job:worker/replica:0/task:0 did not answer within {ANSWER_TIMEOUT} s'), last
            assert 'wrote the best image so far' in last
            assert Image.open(tmp_path / 'lbfgs.png').size == (40, 30)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                process.wait()
            os.kill(worker.process.pid, signal.SIGCONT)


@pytest.mark.parametrize('extra, expected', [
    (['--cluster-timeouts', '5,5'], '--cluster-timeouts is for the workers of --cluster'),
    (['--cluster', '127.0.0.1:1', '--cluster-timeouts', '5'], 'must be two numbers of seconds separated by a comma'),
    (['--cluster', '127.0.0.1:1', '--cluster-timeouts', '5,0'], 'must be a positive number, not 0'),
])
def test_cluster_timeouts_go_with_cluster(inputs, tmp_path, capsys, extra, expected):
    try:
        code = neural_style.main(command(inputs, tmp_path, 'out', extra))
    except SystemExit as exit:
        code = exit.code
    assert code not in (0, None)
    assert expected in capsys.readouterr().err
    assert not any(name.startswith('out') for name in os.listdir(tmp_path))
