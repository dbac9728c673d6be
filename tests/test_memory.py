"""Memory over many runs in one process: a long-lived caller (reproduce.py's grid, a server) must not grow."""
import os
import subprocess
import sys

import pytest

import vgg
from helpers import ROOT, random_image, save, side_by_side

# Six runs of the command line in one process, sharing the loaded network, on tiny images with the default
# layers (so that each graph holds the convolutions' weights up to conv5_1 as constants, about 50 MB); the
# resident memory after each run, after a first warm-up run. A graph kept alive by a run costs that much again,
# so five leaking runs would grow it by 250 MB.
SCRIPT = r'''
import ctypes, gc, sys
import neural_style
import vgg
from styletransfer.run import run_config

# glibc's malloc_trim gives freed heap pages back to the system, so that the resident size is what is live
trim = getattr(ctypes.CDLL(None), 'malloc_trim', lambda pad: None)

def rss_mb():
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith('VmRSS:')) / 1024

content, style, network, directory = sys.argv[1:5]
RUNS = int(sys.argv[5])
net = vgg.load_net(network)
for run in range(RUNS):
    args = neural_style.build_parser().parse_args([
        '--content', content, '--styles', style, '--network', network, '--output', f'{directory}/out{run}.png',
        '--iterations', '2', '--max-size', '16', '--device', '/cpu:0', '--seed', '0', '--print-iterations', '0'])
    neural_style.run(run_config.from_options(args), net)
    gc.collect()
    trim(0)
    print('rss', rss_mb(), flush=True)
'''

RUNS = 6  # a warm-up run and five more
RUNS_GROWTH_LIMIT_MB = 100  # the five runs after the first grow the resident memory by less than this


def test_runs_in_one_process_do_not_grow_memory(tmp_path, network_path):
    content = save(tmp_path / 'content.png', random_image(12, 16, seed=1))
    style = save(tmp_path / 'style.png', random_image(12, 12, seed=2))
    result = subprocess.run([sys.executable, '-c', SCRIPT, content, style, network_path, str(tmp_path), str(RUNS)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0, result.stderr[-3000:]
    rss = [float(line.split()[1]) for line in result.stdout.splitlines() if line.startswith('rss ')]
    assert len(rss) == RUNS
    growth = max(rss[1:]) - rss[0]  # the highest after the later runs against that after the warm-up run
    assert growth < RUNS_GROWTH_LIMIT_MB, f'resident memory after each run, MB: {[round(r) for r in rss]}'


CELLS_OVER_ONE_RUN_MB = 300  # a sheet's cells in one process peak within this of one run


def peak_mbs(commands, cwd, network_path):
    """The peak resident memory of each program (RUSAGE_CHILDREN's maxrss of a process that only runs it), the
    programs run side by side: each peak is its own process's. The weights cache is filled first, so that every
    program loads the network from it, as any run but the first does."""
    vgg.load_net_cached(network_path, vgg.converted_cache_dir())
    script = ('import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); '
              'print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)')
    ran = side_by_side([[sys.executable, '-c', script, sys.executable] + argv for argv in commands], timeout=900,
                       cwd=cwd, env=dict(os.environ, PYTHONPATH=ROOT))
    for status, _, err in ran:
        assert status == 0, err[-3000:]
    return [float(out.split()[-1]) for _, out, _ in ran]


def test_a_sheets_cells_in_one_process_peak_as_one_run(tmp_path, network_path):
    """reproduce.py's six cells of the init figure (here at 32 px) once peaked far above one run of the
    same size, each cell's graph kept alive (docs/reproducing.md has the figures)."""
    content = save(tmp_path / 'content.png', random_image(24, 32, seed=1))
    style = save(tmp_path / 'style.png', random_image(64, 64, seed=2))
    common = ['--network', network_path, '--max-size', '32', '--iterations', '2']
    one, cells = peak_mbs([[os.path.join(ROOT, 'neural_style.py'), '--content', content, '--styles', style,
                            '--output', str(tmp_path / 'one.png'), '--print-iterations', '0'] + common,
                           [os.path.join(ROOT, 'reproduce.py'), 'init', '--content', content, '--style', style,
                            '--output', str(tmp_path / 'sheet.png')] + common], tmp_path, network_path)
    assert len(list(tmp_path.glob('sheet-*.json'))) == 6
    assert cells - one < CELLS_OVER_ONE_RUN_MB, f'one run {one:.0f} MB, six cells {cells:.0f} MB'


ESTIMATE_OVER_PEAK = 1.25  # the estimate is an upper bound of the peak, at most this over it


@pytest.mark.parametrize('optimizer', ['lbfgs', 'adam'])
def test_the_memory_estimate_bounds_the_measured_peak(tmp_path, network_path, optimizer):
    """tiling.estimate_peak, which decides whether a run is tiled, was below the measured peak
    (Adam by 9 to 12% at 64 to 320 px, L-BFGS by 16% at 1024x768). The smallest and largest of those sizes per
    optimizer, untiled; the larger sizes and tiled runs are in docs/large-outputs.md."""
    import stylize
    from styletransfer.method import tiling

    content = save(tmp_path / 'content.png', random_image(240, 320, seed=1))
    style = save(tmp_path / 'style.png', random_image(64, 64, seed=2))
    widths = (64, 320)
    peaks = peak_mbs([[os.path.join(ROOT, 'neural_style.py'), '--content', content, '--styles', style, '--network',
                       network_path, '--output', str(tmp_path / f'{width}.png'), '--max-size', str(width),
                       '--iterations', '3', '--optimizer', optimizer, '--print-iterations', '0'] for width in widths],
                     tmp_path, network_path)
    for width, peak_in_mb in zip(widths, peaks):
        peak = peak_in_mb * 2 ** 20
        estimate = tiling.estimate_peak(width * 3 // 4, width, stylize.CONTENT_LAYERS, stylize.STYLE_LAYERS, None,
                                        optimizer, stylize.LBFGS_HISTORY)
        assert peak <= estimate <= ESTIMATE_OVER_PEAK * peak, (f'{width} px, {optimizer}: peak {peak / 1e9:.3f} GB, '
                                                               f'estimate {estimate / 1e9:.3f} GB')
