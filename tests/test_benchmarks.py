"""benchmarks/bench.py's arithmetic (not its timings): achieved GFLOP/s count every evaluation; and the inputs
the docs' commands make for the benchmarks (a random-weight network, a generated clip)."""
import sys

import pytest

import bench
import stylize
import vgg
import video_bench
from helpers import clip_run, textured_clip
from styletransfer.media import images, video
from styletransfer.testing import synthetic_vgg


def measured(monkeypatch, network_path, evaluations_per_iteration):
    """bench.run_configuration on a stand-in for the optimization whose every evaluation takes exactly one
    second of a fake clock, `evaluations_per_iteration` of them an iteration."""
    clock = [0.0]
    monkeypatch.setattr(bench.time, 'perf_counter', lambda: clock[0])

    def optimization(net, content, styles, settings, **options):
        for iteration in range(settings.iterations + 1):
            count = 1 + evaluations_per_iteration * iteration
            if iteration:
                clock[0] += evaluations_per_iteration
            yield stylize.Progress(iteration=iteration, content=0.0, style=0.0, tv=0.0, total=0.0, seconds=0.0,
                                   evaluations=count, best_total=0.0, best_image=content)

    monkeypatch.setattr(stylize, 'stylize', optimization)
    return bench.run_configuration(dict(network=network_path, size=16, optimizer='lbfgs', precision='float32',
                                        iterations=6, warmup=2))


def test_gflops_count_every_evaluation(monkeypatch, network_path):
    """At 2 evaluations per iteration (L-BFGS's line search) and one second per evaluation,
    the achieved GFLOP/s are those of one evaluation a second, as at 1 evaluation per iteration."""
    one, two = (measured(monkeypatch, network_path, count) for count in (1, 2))
    assert (one['evaluations_per_iteration'], two['evaluations_per_iteration']) == (1.0, 2.0)
    assert (one['seconds_per_iteration'], two['seconds_per_iteration']) == (1.0, 2.0)
    assert two['gflops'] == pytest.approx(one['gflops'])
    # a 16x12 image through conv1_1 ... conv5_1 at 16x12, 8x6, 4x3, 2x2 and 1x1: 2 (forward and input
    # gradient) x 2 (multiply and add) x 9 x C_in x C_out x positions, summed
    blocks = [(16 * 12, [(3, 64), (64, 64)]), (8 * 6, [(64, 128), (128, 128)]),
              (4 * 3, [(128, 256)] + [(256, 256)] * 3), (2 * 2, [(256, 512)] + [(512, 512)] * 3), (1, [(512, 512)])]
    flops = sum(4 * 9 * positions * c_in * c_out for positions, convolutions in blocks for c_in, c_out in convolutions)
    assert one['gflops'] == pytest.approx(flops / 1e9)


@pytest.mark.parametrize('layout, described', [('current', 'current layout'), ('older', 'older layout')])
def test_synthetic_vgg_as_a_program_writes_a_network_vgg_reads(tmp_path, layout, described):
    path = str(tmp_path / 'random.mat')
    synthetic_vgg.main([path, '--layout', layout])
    net = vgg.load_net(path)
    assert described in net.layout
    assert net.kernels['conv5_4'].shape == vgg.CONV_SHAPES['conv5_4']


def test_video_bench_clip_writes_a_clip_neural_style_reads(tmp_path, monkeypatch):
    path = str(tmp_path / 'clip.mp4')
    monkeypatch.setattr(sys, 'argv', ['video_bench.py', 'clip', '--out', path, '--size', '64', '--frames', '6'])
    video_bench.main()
    frames, fps = video.read_clip(path, lambda frame: frame)
    assert (len(frames), frames[0].shape, fps) == (6, (48, 64, 3), 12)


def test_video_bench_runs_frames_as_the_command_line_does(tmp_path, network_path):
    """The coherence benchmark's frames get the stylize.Settings and gamma_t that neural_style.py gives a clip of
    their size at the defaults: beta scaled to the frame's pixels, gamma_t from that beta, the frames' tolerance."""
    path = str(tmp_path / 'clip.mp4')
    video.write_clip(path, textured_clip(height=48, width=64), 12)
    style = str(tmp_path / 'style.png')
    images.write_image(style, textured_clip(count=1, height=48, width=64, seed=3)[0])
    run = clip_run(['--content', path, '--styles', style, '--network', network_path,
                    '--output', str(tmp_path / 'out.mp4'), '--seed', '0'])
    assert run.settings == video_bench.frame_settings(stylize.STYLE_WEIGHT, 48, 64, tolerance=video.FRAME_TOLERANCE)
    beta = stylize.STYLE_WEIGHT * 48 * 64 / (384 * 512)
    # the authors' temporal / style balance, 1e3 / 1e2, at relu4_1 and relu5_1: w_l = 1/5, N_l = 512
    assert run.clip.temporal_weight == pytest.approx(1e3 / 1e2 * beta * 0.2 * 512 ** 2 / 4, rel=1e-12)
    assert video.default_temporal_weight(run.settings.style_weight, run.settings.style_weights()) \
        == pytest.approx(run.clip.temporal_weight, rel=1e-12)
