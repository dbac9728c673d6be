"""job.py: the beta each stage and frame gets from --style-weight, scaled with the output's pixels."""
import numpy as np
import pytest

import neural_style
from styletransfer.media import images, video
from helpers import clip_run, image_run, random_image, save, stylize_with

REFERENCE_PIXELS = 512 * 384  # written out here: the docs' reference size, not read from stylize.py


def run_of(inputs, *extra):
    argv = ['--content', inputs['content'], '--styles', inputs['style'], '--network', inputs['network'],
            '--output', str(inputs['dir'] / 'out.png'), '--iterations', '1', '--seed', '0', *extra]
    return image_run(argv)


def test_each_stage_gets_beta_scaled_by_its_pixels(inputs):
    """The content is 30x40 (height x width): --scales 16,40 gives stages of 12x16 and 30x40."""
    run = run_of(inputs, '--style-weight', '1e4', '--scales', '16,40')
    assert [size for size, _ in run.stages] == [(12, 16), (30, 40)]
    assert [settings.style_weight for _, settings in run.stages] == pytest.approx(
        [1e4 * 192 / REFERENCE_PIXELS, 1e4 * 1200 / REFERENCE_PIXELS], rel=1e-12)
    plan = run.plan()
    assert '16x12: beta 9.766 (' in plan and '40x30: beta 61.04 (' in plan and 'at 512x384, scaled to the pixels' in plan


def test_the_raw_style_weight_is_taken_as_given_at_every_size(inputs):
    run = run_of(inputs, '--style-weight', '1e4', '--scales', '16,40', '--raw-style-weight')
    assert [settings.style_weight for _, settings in run.stages] == [1e4, 1e4]
    assert '--raw-style-weight' in run.plan()


def test_a_clip_gets_beta_scaled_by_its_frames_pixels(tmp_path, network_path):
    clip = str(tmp_path / 'clip.mp4')
    video.write_clip(clip, [random_image(32, 48, seed=index) for index in range(2)], 10)
    argv = ['--content', clip, '--styles', save(tmp_path / 'style.png', random_image(20, 20, seed=5)),
            '--network', network_path, '--output', str(tmp_path / 'out.gif'), '--style-weight', '1e4',
            '--flow', 'farneback']
    run = clip_run(argv)
    assert run.frames[0].shape[:2] == (32, 48)
    assert run.settings.style_weight == pytest.approx(1e4 * 32 * 48 / REFERENCE_PIXELS, rel=1e-12)


def first_terms(net, content, style, x, style_weight):
    """alpha L_content and beta L_style of the image x itself (the optimization's iteration 0)."""
    progress = next(stylize_with(net, content, [style], initial=x, iterations=1, seed=0, style_weight=style_weight))
    return progress.content, progress.style


def test_one_scaled_beta_gives_the_same_balance_at_two_sizes(net):
    """Pictures of the same statistics at 40x56 and 80x112 (white noise; the image x of lower contrast than the
    style, so that their Grams differ by more than chance): L_content sums over positions and grows 4x, E_l does
    not, so with the raw beta the ratio of the terms moves about 4x and with the scaled beta it stays near 1."""
    ratios = {}
    for scale in (1, 2):
        height, width = 40 * scale, 56 * scale
        content, style, x = (random_image(height, width, seed=seed) for seed in (1, 2, 3))
        x = 128 + 0.3 * (x - 128)
        for kind in ('raw', 'scaled'):
            beta = 1e3 if kind == 'raw' else 1e3 * height * width / REFERENCE_PIXELS
            content_term, style_term = first_terms(net, content, style, x, beta)
            ratios[kind, scale] = content_term / style_term
    assert 3 < ratios['raw', 2] / ratios['raw', 1] < 5
    assert 0.75 < ratios['scaled', 2] / ratios['scaled', 1] < 1.25


def recorded_image(path, software):
    images.write_image(str(path), np.zeros((4, 4, 3), np.float32), {
        'Software': software, 'Command': 'python neural_style.py --content c.png --styles s.png --output o.png '
                                         '--style-weight 10000.0'})
    return str(path)


def test_settings_recorded_before_scaling_keep_their_raw_beta(tmp_path):
    old = recorded_image(tmp_path / 'old.png', 'neural-style 1.0.0')
    new = recorded_image(tmp_path / 'new.png', f'neural-style {neural_style.VERSION}')
    assert neural_style.with_recorded_settings(['--settings-from', old])[-1] == '--raw-style-weight'
    assert '--raw-style-weight' not in neural_style.with_recorded_settings(['--settings-from', new])
