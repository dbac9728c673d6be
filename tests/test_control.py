"""Spatial control with guided Grams, and coarse-to-fine stages (Gatys et al. 2017), on the synthetic network."""
import numpy as np
import pytest

from styletransfer.compute import devices, host_memory
from styletransfer.method import losses
import reference
import stylize
from helpers import graph_terms, objective_settings, random_image, stylize_with
from styletransfer.media.images import resize

FAST = dict(content_layers=('relu2_2',), style_layers=('relu1_1', 'relu2_1'), device='/cpu:0')


def halves(height, width):
    """Complementary masks: the left half of the image and the right half."""
    left = np.zeros((height, width))
    left[:, :width // 2] = 1.0
    return left, 1.0 - left


def reference_guides(mask):
    """The mask pooled by the reference network's own pooling code, at every layer after each pooling."""
    guides, x = {}, mask[:, :, None]
    for name in reference.ORDER:
        if name.startswith('pool'):
            x = reference.pool2x2(x, 'avg')
        guides[name.replace('conv', 'relu')] = x[:, :, 0]
    return guides


def test_guides_have_each_layers_resolution_and_the_networks_pooling(conv_weights, net):
    mask = np.random.default_rng(0).uniform(size=(21, 27))  # odd sizes at every pooling: border windows
    layers = ('relu1_1', 'relu2_1', 'relu3_1', 'relu4_2', 'relu5_1')
    guides = losses.layer_guides(mask, layers)
    features = reference.features(conv_weights, net.mean_pixel, random_image(21, 27, seed=1))
    expected = reference_guides(mask)
    for name in layers:
        assert guides[name].shape == features[name].shape[:2], name
        np.testing.assert_allclose(guides[name], expected[name], rtol=1e-12, err_msg=name)


def guided_style_loss(conv_weights, mean_pixel, x, styles, masks, layer_weights, blend):
    """L_style with guided Grams, in NumPy: per style, its region's Gram per guided position against the
    style's Gram per position."""
    F = reference.features(conv_weights, mean_pixel, x)
    blend = np.asarray(blend, float) / np.sum(blend)
    total = 0.0
    for b, style, mask in zip(blend, styles, masks):
        S = reference.features(conv_weights, mean_pixel, style)
        guides = reference_guides(mask)
        for name, w in layer_weights.items():
            T = guides[name][:, :, None]
            N = F[name].shape[2]
            G = reference.gram(F[name] * T) / np.sum(T ** 2)
            A = reference.gram(S[name]) / (S[name].shape[0] * S[name].shape[1])
            total += b * w * np.sum((G - A) ** 2) / (4 * N ** 2)
    return total


def test_guided_objective_matches_numpy(net, conv_weights):
    height, width = 12, 15
    content, style, second = random_image(height, width, seed=4), random_image(10, 13, seed=2), random_image(14, 9, 5)
    masks = [np.random.default_rng(3).uniform(size=(height, width)), np.tile(np.linspace(0, 1, width), (height, 1))]
    layer_weights = {'relu1_1': 0.5, 'relu2_1': 2.0}
    settings = objective_settings(content_weight=0.0, style_weight=1.0, content_layer_weights={'relu1_2': 1.0},
                                  style_layer_weights=layer_weights,
                                  style_blend_weights=[1.0, 3.0],
                                  style_guides=[losses.layer_guides(m, layer_weights) for m in masks])
    x = random_image(height, width, seed=6)
    terms, _ = graph_terms(net, x, content, [style, second], settings)(x)
    expected = guided_style_loss(conv_weights, net.mean_pixel, x, [style, second], masks, layer_weights, [1, 3])
    assert terms['style'] == pytest.approx(expected, rel=2e-4)


def test_a_guide_of_ones_is_the_unguided_loss(net, image_arrays):
    content, style = image_arrays
    layer_weights = {'relu1_1': 1.0, 'relu2_1': 1.0}
    ones = losses.layer_guides(np.ones(content.shape[:2]), layer_weights)
    x = random_image(*content.shape[:2], seed=7)
    settings = dict(content_layer_weights={'relu1_2': 1.0}, style_layer_weights=layer_weights)
    plain, _ = graph_terms(net, x, content, [style], objective_settings(**settings))(x)
    guided, _ = graph_terms(net, x, content, [style], objective_settings(**settings, style_guides=[ones]))(x)
    assert guided['style'] == pytest.approx(plain['style'], rel=1e-5)


def test_complementary_masks_give_each_region_its_own_style(net, conv_weights):
    height, width = 20, 24
    rng = np.random.default_rng(8)
    reddish = np.stack([rng.uniform(150, 255, (18, 18)), rng.uniform(0, 60, (18, 18)), rng.uniform(0, 60, (18, 18))],
                       axis=2).astype(np.float32)
    bluish = reddish[:, :, ::-1].copy()
    masks = halves(height, width)
    content = random_image(height, width, seed=9)
    progress = list(stylize_with(net, content, [reddish, bluish], style_masks=masks, content_weight=0.0,
                                    iterations=25, seed=10, **FAST))
    start, result = progress[0].best_image, progress[-1].best_image
    F = {name: reference.features(conv_weights, net.mean_pixel, image)
         for name, image in (('start', start), ('result', result), ('reddish', reddish), ('bluish', bluish))}
    for layer in FAST['style_layers']:
        def distance(image, mask, style):
            """|G_r / sum T^2 - A / M_style|: how far a region's Gram is from a style's, per position."""
            T = reference_guides(mask)[layer][:, :, None]
            S = F[style][layer]
            return np.linalg.norm(reference.gram(F[image][layer] * T) / np.sum(T ** 2) -
                                  reference.gram(S) / (S.shape[0] * S.shape[1]))

        for mask, own, other in ((masks[0], 'reddish', 'bluish'), (masks[1], 'bluish', 'reddish')):
            assert distance('result', mask, own) < 0.5 * distance('start', mask, own), layer
            assert distance('result', mask, own) < 0.5 * distance('result', mask, other), layer
    # and in pixels: red on the left, blue on the right
    left, right = result[:, :width // 2].mean(axis=(0, 1)), result[:, width // 2:].mean(axis=(0, 1))
    assert left[0] > left[2] + 50 and right[2] > right[0] + 50


@pytest.mark.parametrize('masks, message', [
    ([np.ones((20, 28))], '1 style masks given for 2 style images'),
    ([np.ones((20, 28)), np.zeros((20, 28))], 'not be 0 everywhere'),
    ([np.ones((20, 28)), np.ones((10, 14))], "content's height and width"),
    ([np.ones((20, 28)), 2 * np.ones((20, 28))], 'values in 0..1'),
])
def test_bad_masks(net, image_arrays, masks, message):
    content, style = image_arrays
    with pytest.raises(ValueError, match=message):
        next(stylize_with(net, content, [style, style], style_masks=masks, **FAST))


def test_each_stage_has_its_size_and_starts_from_the_last_result_upsampled(net, image_arrays):
    content, style = image_arrays
    sizes = [(10, 14), (20, 28)]
    layers = {name: value for name, value in FAST.items() if name != 'device'}
    settings = [stylize.Settings(iterations=count, seed=0, **layers) for count in (4, 2)]
    stages = list(stylize.stylize_in_stages(net, content, [style], list(zip(sizes, settings)), style_scales=[1.0],
                                            placement=devices.one_device(FAST['device'])))
    assert [(stage, p.iteration) for stage, p in stages] == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4),
                                                             (1, 0), (1, 1), (1, 2)]
    for stage, p in stages:
        assert p.best_image.shape == sizes[stage] + (3,)
    first_result = stages[4][1].best_image
    second_start = stages[5][1].best_image  # iteration 0 of a stage: its starting image
    np.testing.assert_allclose(second_start, resize(first_result, 20, 28), atol=1e-3)


def test_the_memory_a_stage_freed_is_returned_before_the_next_starts(net, image_arrays, monkeypatch):
    """A --scales run's larger stage starts from what the last one freed: 2048x1362 after 512 and 1024 px stages
    peaked at 8.26 GB without the release and 7.53 GB with it, as the 2048 px stage alone (docs/large-outputs.md)."""
    content, style = image_arrays
    layers = {name: value for name, value in FAST.items() if name != 'device'}
    stages = [((10, 14), stylize.Settings(iterations=2, seed=0, **layers)),
              ((20, 28), stylize.Settings(iterations=1, seed=0, **layers))]
    seen, released_after = [], []
    monkeypatch.setattr(host_memory, 'release_freed_memory', lambda: released_after.append(list(seen)))
    for stage, progress in stylize.stylize_in_stages(net, content, [style], stages, style_scales=[1.0],
                                                     placement=devices.one_device(FAST['device'])):
        seen.append((stage, progress.iteration))
    # once, between the stages: after the first stage's last step, before the second's first; not after the last
    assert released_after == [[(0, 0), (0, 1), (0, 2)]]
