"""The optimization loop: L-BFGS and Adam on tiny images with the synthetic network."""
import numpy as np
import pytest

import stylize
from styletransfer.compute import devices
from styletransfer.method import optimizers
from helpers import stylize_with

FAST = dict(style_layers=('relu1_1', 'relu2_1', 'relu3_1'), content_layers=('relu2_2',), device='/cpu:0')


def run(net, content, style, **options):
    return list(stylize_with(net, content, [style], **dict(FAST, **options)))


@pytest.mark.parametrize('optimizer', ['lbfgs', 'adam'])
def test_optimizer_lowers_the_objective_and_keeps_pixels_in_range(net, image_arrays, optimizer):
    content, style = image_arrays
    progress = run(net, content, style, optimizer=optimizer, iterations=8, seed=0)
    assert [p.iteration for p in progress] == list(range(9))  # row 0 is the initial image
    assert progress[-1].best_total < 0.5 * progress[0].total
    for p in progress:
        assert p.total == pytest.approx(p.content + p.style + p.tv, rel=1e-5)
        assert p.best_total == min(q.total for q in progress[:p.iteration + 1]) or optimizer == 'lbfgs'
        assert p.best_image.shape == content.shape and p.best_image.dtype == np.float32
        assert p.best_image.min() >= 0 and p.best_image.max() <= 255
    assert all(b.best_total <= a.best_total for a, b in zip(progress, progress[1:]))


def test_lbfgs_best_is_the_lowest_of_all_evaluations(net, image_arrays):
    """L-BFGS's line search evaluates points between iterations: the best may come from any of them,
    and it is never worse than the reported iterates."""
    content, style = image_arrays
    progress = run(net, content, style, iterations=6, seed=1)
    assert progress[-1].best_total <= min(p.total for p in progress)


def test_seed_repeats_exactly_and_differs_between_seeds(net, image_arrays):
    content, style = image_arrays
    first = run(net, content, style, iterations=4, seed=3)
    second = run(net, content, style, iterations=4, seed=3)
    other = run(net, content, style, iterations=4, seed=4)
    np.testing.assert_array_equal(first[-1].best_image, second[-1].best_image)
    assert [p.total for p in first] == [p.total for p in second]
    assert not np.array_equal(first[0].best_image, other[0].best_image)


def test_initial_image_and_noise_blend(net, image_arrays):
    content, style = image_arrays
    noise = run(net, content, style, seed=2, iterations=1)[0].best_image
    assert abs(noise.mean(axis=(0, 1)) - net.mean_pixel).max() < 0.1  # white noise around the mean pixel
    assert noise.std(axis=(0, 1)) == pytest.approx([stylize.NOISE_STDDEV] * 3, rel=0.1)
    start = run(net, content, style, initial=content, iterations=1)[0]
    np.testing.assert_allclose(start.best_image, content, atol=1e-3)
    assert start.content == pytest.approx(0.0, abs=1e-6)  # the content loss of the content image itself
    blended = run(net, content, style, initial=content, noise_blend=0.5, seed=2, iterations=1)[0]
    noise = net.mean_pixel + np.random.default_rng(2).normal(0, stylize.NOISE_STDDEV, content.shape)
    np.testing.assert_allclose(blended.best_image, 0.5 * content + 0.5 * noise, atol=1e-3)


def test_zero_style_weight_reconstructs_content(net, image_arrays):
    content, style = image_arrays
    progress = run(net, content, style, style_weight=0.0, tv_weight=0.0, iterations=30, seed=5)
    assert progress[-1].style == 0.0
    assert progress[-1].content < 0.1 * progress[0].content


def test_closing_the_generator_stops_the_lbfgs_worker_before_the_session(net, image_arrays, monkeypatch):
    import threading
    content, style = image_arrays
    threads_at_close = []  # per session opened, the names of the live threads at each close
    open_session = devices.session

    def recording_session(graph, *options):
        session, counts = open_session(graph, *options), []
        close = session.close

        def recording_close():
            counts.append([thread.name for thread in threading.enumerate()])
            close()
        session.close = recording_close
        threads_at_close.append(counts)
        return session

    monkeypatch.setattr(devices, 'session', recording_session)
    generator = stylize_with(net, content, [style], iterations=500, **FAST)
    next(generator)
    generator.close()
    assert optimizers.LBFGS_THREAD not in [thread.name for thread in threading.enumerate()]
    optimization_session = threads_at_close[-1]
    assert optimization_session and optimizers.LBFGS_THREAD not in optimization_session[0]


@pytest.mark.parametrize('bad, message', [
    (dict(optimizer='sgd'), 'unknown optimizer'),
    (dict(style_layers=('relu9_1',)), 'unknown layer'),
    (dict(style_blend_weights=[0.0]), 'sum to more than 0'),
    (dict(style_layer_weights=[1.0, 2.0]), 'weights given'),
])
def test_bad_arguments(net, image_arrays, bad, message):
    content, style = image_arrays
    with pytest.raises(ValueError, match=message):
        next(stylize_with(net, content, [style], **dict(FAST, **bad)))


def test_mixed_precision_drifts_little_from_float32(net, image_arrays):
    """16-bit convolutions change the losses by the rounding of bfloat16 (8 significant bits), not more; the
    final objective after a few L-BFGS steps from the same start stays within a few percent."""
    content, style = image_arrays
    exact = run(net, content, style, iterations=10, seed=0)
    mixed = run(net, content, style, iterations=10, seed=0, precision='mixed')
    for term in ('content', 'style', 'total'):
        assert getattr(mixed[0], term) == pytest.approx(getattr(exact[0], term), rel=0.02), term
    assert mixed[-1].best_total == pytest.approx(exact[-1].best_total, rel=0.05)
    assert mixed[-1].best_total < 0.5 * mixed[0].total
    with pytest.raises(ValueError, match='unknown precision'):
        next(stylize_with(net, content, [style], precision='half', **FAST))


@pytest.mark.parametrize('optimizer', ['lbfgs', 'adam'])
def test_a_loss_that_overflows_stops_the_run_and_keeps_the_finite_best(net, image_arrays, optimizer, monkeypatch):
    """Starting from the content, alpha L_content is 0; after one step it overflows float32 (alpha = 3e38).
    The optimizer must stop there, naming the term, and L-BFGS must never be handed the infinite value."""
    import scipy.optimize
    content, style = image_arrays
    handed_to_scipy = []
    minimize = scipy.optimize.minimize

    def recording_minimize(fun, *args, **kwargs):
        def recorded(x):
            value, gradient = fun(x)
            handed_to_scipy.append(np.isfinite(value) and np.all(np.isfinite(gradient)))
            return value, gradient
        return minimize(recorded, *args, **kwargs)

    monkeypatch.setattr(scipy.optimize, 'minimize', recording_minimize)
    progress = []
    with pytest.raises(stylize.NonFiniteLoss) as caught:
        for p in stylize_with(net, content, [style], **dict(FAST, optimizer=optimizer, iterations=20,
                                                                 initial=content, content_weight=3e38)):
            progress.append(p)
    assert caught.value.term == 'content' and str(caught.value) == 'the content loss became inf'
    assert [p.iteration for p in progress] == [0]
    np.testing.assert_allclose(progress[0].best_image, content, atol=1e-3)
    assert all(handed_to_scipy) and (handed_to_scipy or optimizer == 'adam')


def test_an_overflowing_first_evaluation_yields_nothing(net, image_arrays):
    content, style = image_arrays
    generator = stylize_with(net, content, [style], **dict(FAST, style_weight=1e38, iterations=5))
    with pytest.raises(stylize.NonFiniteLoss, match='the style loss became inf'):
        next(generator)


def test_tolerance_stops_at_the_iteration_the_criterion_names(net, image_arrays):
    """Ruder et al.'s criterion, every `window` iterations |f - f_past| / f_past < tolerance, computed
    here from a full run's totals, names the iteration where a run with the tolerance ends."""
    content, style = image_arrays
    window, iterations = 4, 40
    full = run(net, content, style, iterations=iterations, seed=6)
    totals = [p.total for p in full]
    changes = {k: abs(totals[k] - totals[k - window]) / totals[k - window]
               for k in range(2 * window, iterations + 1, window)}
    tolerance = sorted(changes.values())[len(changes) // 2]  # fires part-way, wherever that is
    expected = min(k for k, change in changes.items() if change < tolerance)
    stopped = run(net, content, style, iterations=iterations, seed=6, tolerance=tolerance, tolerance_window=window)
    assert [p.iteration for p in stopped] == list(range(expected + 1))
    assert [p.total for p in stopped] == totals[:expected + 1]
    assert stopped[-1].converged and not any(p.converged for p in stopped[:-1])
    assert not any(p.converged for p in full)  # tolerance 0: every iteration runs
