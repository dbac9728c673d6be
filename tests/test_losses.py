"""The loss terms and the objective against the NumPy reference, and gradients against closed forms and
finite differences."""
import numpy as np
import pytest

import vgg
from styletransfer.compute import devices
from styletransfer.method import losses
import reference
from helpers import as_settings, graph_terms, objective_settings, random_image, write_cpuinfo


def evaluate(fn, *arrays):
    """Builds fn over placeholders for `arrays` in a graph of its own; returns (value, gradients)."""
    import tensorflow.compat.v1 as tf
    graph = tf.Graph()
    with graph.as_default():
        inputs = [tf.placeholder(tf.float64, a.shape) for a in arrays]
        out = fn(*inputs)
        grads = tf.gradients(out, inputs)
    with tf.Session(graph=graph) as session:
        return session.run((out, grads), dict(zip(inputs, arrays)))


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_content_loss_and_its_gradient(rng):
    F, P = rng.normal(size=(1, 5, 6, 8)), rng.normal(size=(1, 5, 6, 8))
    value, (dF, _) = evaluate(losses.content_loss, F, P)
    assert value == pytest.approx(0.5 * ((F - P) ** 2).sum(), rel=1e-12)
    np.testing.assert_allclose(dF, F - P, rtol=1e-12)  # paper eq. 2


def test_gram_matrix(rng):
    F = rng.normal(size=(1, 4, 7, 5))
    G, _ = evaluate(losses.gram_matrix, F)
    expected = np.array([[np.sum(F[0, :, :, i] * F[0, :, :, j]) for j in range(5)] for i in range(5)])
    np.testing.assert_allclose(G, expected, rtol=1e-12)


def test_gram_matrix_gradient_for_any_upstream_gradient(rng):
    """gram_matrix's own gradient, F (dL/dG + dL/dG'), against the closed form for L = sum(G o W) with W not
    symmetric (a symmetric W would hide 2 F dL/dG), in one product where TensorFlow's takes two."""
    import tensorflow.compat.v1 as tf
    F, W = rng.normal(size=(1, 4, 7, 5)), rng.normal(size=(5, 5))
    _, (dF, _) = evaluate(lambda F, W: tf.reduce_sum(losses.gram_matrix(F) * W), F, W)
    M_by_N = F[0].reshape(-1, 5)
    np.testing.assert_allclose(dF[0].reshape(-1, 5), M_by_N @ (W + W.T), rtol=1e-12)
    graph = tf.Graph()
    with graph.as_default():
        G = losses.gram_matrix(tf.placeholder(tf.float32, (1, 4, 7, 5)))
        tf.gradients(G, G.op.inputs[0])
    assert [op.type for op in graph.get_operations()].count('MatMul') == 2  # the Gram and its gradient


def test_style_layer_loss_and_the_papers_gradient(rng):
    N, h, w = 6, 4, 5
    M = h * w
    F = np.abs(rng.normal(size=(1, h, w, N)))
    A = reference.gram(rng.normal(size=(h, w, N)))

    def E(F, A):
        return losses.style_layer_loss(losses.gram_matrix(F), A, N, M)

    value, (dF, _) = evaluate(E, F, A)
    G = reference.gram(F[0])
    assert value == pytest.approx(np.sum((G - A) ** 2) / (4 * N ** 2 * M ** 2), rel=1e-12)
    # Paper eq. 6 (for F > 0): dE/dF^l_ij = 1/(N^2 M^2) ((F^l)^T (G^l - A^l))_ji, F being N x M there.
    F_paper = F[0].reshape(M, N).T
    expected = (F_paper.T @ (G - A)).T / (N ** 2 * M ** 2)
    np.testing.assert_allclose(dF[0].reshape(M, N).T, expected, rtol=1e-10)


def test_total_variation(rng):
    image = rng.normal(size=(1, 6, 5, 3))
    value, _ = evaluate(losses.total_variation, image)
    assert value == pytest.approx(reference.total_variation(image[0]), rel=1e-12)


# The same terms on arrays, as tiling.py's host sums take them

def test_the_terms_on_arrays_equal_the_tensors(rng):
    F, P = rng.normal(size=(1, 5, 6, 8)), rng.normal(size=(1, 5, 6, 8))
    G, A = rng.normal(size=(8, 8)), rng.normal(size=(8, 8))
    image = rng.normal(size=(1, 6, 5, 3))
    for term, arrays in [(losses.content_loss, (F, P)), (lambda G, A: losses.style_layer_loss(G, A, 8, 30), (G, A)),
                         (losses.total_variation, (image,))]:
        value, _ = evaluate(term, *arrays)
        assert term(*arrays) == pytest.approx(value, rel=1e-12)
    assert losses.content_loss(F, P) == pytest.approx(0.5 * np.sum((F - P) ** 2), rel=1e-12)


def test_sum_of_squares_of_a_tall_image_in_float64_bands():
    """600 rows: two bands; float32 values whose squares' sum float32 would round (2^24 + 1)."""
    image = np.ones((1, 600, 3, 1), np.float32)
    image[0, 0, 0, 0] = 2 ** 12
    expected = 2.0 ** 24 + 600 * 3 - 1
    assert losses.sum_of_squares(image) == expected
    assert float(np.sum(np.square(image))) != expected  # float32 squares lose it


def test_the_total_variation_gradient_on_arrays(rng):
    image = rng.normal(size=(1, 7, 9, 3)).astype(np.float32)
    gradient = np.ones_like(image)
    losses.add_total_variation_gradient(image, 0.5, gradient)
    assert losses.total_variation(image) == pytest.approx(reference.total_variation(image[0].astype(np.float64)),
                                                          rel=1e-6)
    epsilon, numerical = 1e-3, np.zeros_like(image, np.float64)
    for index in np.ndindex(image.shape):
        ahead, behind = image.astype(np.float64), image.astype(np.float64)
        ahead[index] += epsilon
        behind[index] -= epsilon
        numerical[index] = (reference.total_variation(ahead[0]) - reference.total_variation(behind[0])) / (2 * epsilon)
    np.testing.assert_allclose(gradient - 1, 0.5 * numerical, rtol=1e-4, atol=1e-4)


def numpy_terms(conv_weights, mean_pixel, x, content, styles, settings):
    network = settings['pooling'], settings['padding']
    F = reference.features(conv_weights, mean_pixel, x, *network)
    P = reference.features(conv_weights, mean_pixel, content, *network)
    L_content = sum(w * reference.content_loss(F[n], P[n]) for n, w in settings['content_layer_weights'].items())
    blend = np.asarray(settings['style_blend_weights'], float)
    blend = blend / blend.sum()
    L_style = 0.0
    for b, style in zip(blend, styles):
        S = reference.features(conv_weights, mean_pixel, style, *network)
        for n, w in settings['style_layer_weights'].items():
            M_style = S[n].shape[0] * S[n].shape[1]
            L_style += b * w * reference.style_layer_loss(F[n], reference.gram(S[n]), M_style)
    return {'content': settings['content_weight'] * L_content, 'style': settings['style_weight'] * L_style,
            'tv': settings['tv_weight'] * reference.total_variation(x)}


@pytest.mark.parametrize('changes', [
    {},
    {'tv_weight': 0.5, 'pooling': 'max'},
    {'padding': 'reflect'},
    {'content_layer_weights': {'relu2_2': 0.3, 'relu4_2': 0.7},
     'style_layer_weights': {'relu1_1': 1.0, 'relu3_1': 0.5, 'pool4': 2.0}},
])
def test_objective_matches_numpy(net, conv_weights, image_arrays, changes):
    content, style = image_arrays  # the style image is smaller: Grams are compared per position
    x = random_image(*content.shape[:2], seed=4)
    settings = objective_settings(**changes)
    evaluate = graph_terms(net, x, content, [style], settings)
    terms, _ = evaluate(x)
    assert evaluate(x, gradient=False) == (terms, None)  # the forward pass alone: the same terms
    expected = numpy_terms(conv_weights, net.mean_pixel, x, content, [style], settings)
    for name in ('content', 'style', 'tv'):
        assert terms[name] == pytest.approx(expected[name], rel=2e-4), name
    assert terms['total'] == pytest.approx(sum(expected.values()), rel=2e-4)


def test_several_styles_blend(net, conv_weights, image_arrays):
    content, style = image_arrays
    second = random_image(24, 20, seed=5)
    settings = objective_settings(style_blend_weights=[3.0, 1.0])
    x = random_image(*content.shape[:2], seed=6)
    terms, _ = graph_terms(net, x, content, [style, second], settings)(x)
    expected = numpy_terms(conv_weights, net.mean_pixel, x, content, [style, second], settings)
    assert terms['style'] == pytest.approx(expected['style'], rel=2e-4)


def test_same_size_style_is_the_papers_formula(net, conv_weights, image_arrays):
    """With a style image of the output's size, E_l is eq. 4 exactly, with no rescaling."""
    content, _ = image_arrays
    style = random_image(*content.shape[:2], seed=8)
    settings = objective_settings(content_weight=0.0, style_weight=1.0,
                                  style_layer_weights={'relu2_1': 1.0})
    x = random_image(*content.shape[:2], seed=9)
    terms, _ = graph_terms(net, x, content, [style], settings)(x)
    F = reference.features(conv_weights, net.mean_pixel, x)['relu2_1']
    S = reference.features(conv_weights, net.mean_pixel, style)['relu2_1']
    N, M = F.shape[2], F.shape[0] * F.shape[1]
    expected = np.sum((reference.gram(F) - reference.gram(S)) ** 2) / (4 * N ** 2 * M ** 2)
    assert terms['style'] == pytest.approx(expected, rel=2e-4)


@pytest.mark.parametrize('padding', ['zero', 'reflect'])
@pytest.mark.parametrize('cpu_flags', ['avx2 fma', 'avx2 fma avx512f'])
def test_gradient_matches_finite_differences(net, conv_weights, image_arrays, padding, cpu_flags, tmp_path,
                                             monkeypatch):
    """TensorFlow's gradient of the total against central differences of the float64 NumPy objective, with the
    convolutions of a CPU without AVX-512 (the rotated kernel's input gradients) and with (Winograd's from conv3_2).

    The step is tiny because a random network has many ReLUs near their kink; float64 makes that possible."""
    monkeypatch.setenv('NEURAL_STYLE_CPUINFO', write_cpuinfo(tmp_path / 'cpuinfo', f'fpu {cpu_flags}'))
    content, style = image_arrays
    settings = objective_settings(tv_weight=0.1, padding=padding)
    x = random_image(*content.shape[:2], seed=10).astype(np.float64)
    _, gradient = graph_terms(net, x, content, [style], settings)(x)

    def total(pixels):
        return sum(numpy_terms(conv_weights, net.mean_pixel, pixels, content, [style], settings).values())

    rng = np.random.default_rng(11)
    h = 1e-4
    for _ in range(2):
        d = rng.normal(size=x.shape)
        numeric = (total(x + h * d) - total(x - h * d)) / (2 * h)
        analytic = float(np.sum(gradient[0] * d))
        # float32's own error here reaches 8.8e-5 (direct, reflect); Winograd's rounding adds to it (1.2e-4)
        assert analytic == pytest.approx(numeric, rel=2e-4 if 'avx512f' in cpu_flags else 1e-4)


@pytest.mark.parametrize('choice, winograd_layers', [('auto', 8), ('direct', 0)])
def test_the_convolutions_choice_reaches_the_graph(net, image_arrays, tmp_path, monkeypatch, choice,
                                                   winograd_layers):
    """On a CPU with AVX-512 in float32, --convolutions auto builds conv3_2 to conv5_1 by Winograd's (one
    ExtractImagePatches each, besides the gradient's), direct none; both give the same objective to float32's
    rounding."""
    monkeypatch.setenv('NEURAL_STYLE_CPUINFO', write_cpuinfo(tmp_path / 'cpuinfo', 'fpu avx2 fma avx512f'))
    content, style = image_arrays
    weights = objective_settings()
    x = random_image(*content.shape[:2], seed=12)
    objective = losses.UntiledObjective(net, content, [style], as_settings(dict(weights, convolutions=choice)),
                                        placement=devices.one_device('/cpu:0'))
    patches = [op for op in objective.session.graph.get_operations()
               if op.type == 'ExtractImagePatches' and not op.name.startswith('gradients/')]
    assert len(patches) == winograd_layers
    terms, _ = objective.evaluate(vgg.preprocess(x, net.mean_pixel)[None])
    objective.close()
    expected, _ = graph_terms(net, x, content, [style], dict(weights, convolutions='direct'))(x)
    assert terms['total'] == pytest.approx(expected['total'], rel=1e-5)
