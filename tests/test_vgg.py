import os

import numpy as np
import pytest
import scipy.io

import reference
import synthetic_vgg
import vgg
from conftest import random_image


def run_layers(net, image, names, pooling='avg'):
    import tensorflow.compat.v1 as tf
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [1, None, None, 3])
        layers = vgg.build_network(net, x, max(names, key=vgg.LAYERS.index), pooling)
    with tf.Session(graph=graph) as session:
        out = session.run({n: layers[n] for n in names}, {x: vgg.preprocess(image, net.mean_pixel)[None]})
    return {n: v[0] for n, v in out.items()}


def test_layer_names():
    assert vgg.LAYERS[:5] == ('conv1_1', 'relu1_1', 'conv1_2', 'relu1_2', 'pool1')
    assert len([n for n in vgg.LAYERS if n.startswith('conv')]) == 16
    assert vgg.LAYERS[-1] == 'pool5'


def test_current_layout_loads_transposed_kernels_and_mean(net, conv_weights):
    assert set(net.kernels) == set(vgg.CONV_SHAPES)
    for name, (W, b) in conv_weights.items():
        stored_w_h = W  # [width, height, in, out]
        for x in range(3):
            for y in range(3):
                np.testing.assert_array_equal(net.kernels[name][y, x], stored_w_h[x, y])
        np.testing.assert_array_equal(net.biases[name], b[:, 0])
        assert net.kernels[name].shape == vgg.CONV_SHAPES[name]
    np.testing.assert_allclose(net.mean_pixel, synthetic_vgg.MEAN_PIXEL, rtol=1e-6)


def test_both_layouts_load_to_identical_tensors(net, older_network_path):
    older = vgg.load_net(older_network_path)
    for name in vgg.CONV_SHAPES:
        np.testing.assert_array_equal(older.kernels[name], net.kernels[name])
        np.testing.assert_array_equal(older.biases[name], net.biases[name])
    np.testing.assert_allclose(older.mean_pixel, net.mean_pixel, atol=1e-3)


@pytest.mark.parametrize('pooling', ['avg', 'max'])
def test_network_matches_numpy_reference(net, conv_weights, pooling):
    # Odd sizes at every pooling (21 -> 11 -> 6 -> 3 -> 2) exercise the border windows.
    image = random_image(21, 26, seed=3)
    expected = reference.features(conv_weights, net.mean_pixel, image, pooling)
    names = ['conv1_1', 'relu1_2', 'pool1', 'relu2_1', 'pool3', 'relu4_2', 'relu5_1', 'relu5_4']
    got = run_layers(net, image, names, pooling)
    for name in names:
        assert got[name].shape == expected[name].shape, name
        scale = np.abs(expected[name]).max()
        np.testing.assert_allclose(got[name], expected[name], atol=1e-4 * scale, err_msg=name)


def test_graph_stops_at_the_deepest_layer(net):
    import tensorflow.compat.v1 as tf
    with tf.Graph().as_default() as graph:
        layers = vgg.build_network(net, tf.placeholder(tf.float32, [1, 16, 16, 3]), 'relu3_1')
    assert list(layers)[-1] == 'relu3_1'
    assert not [op for op in graph.get_operations() if 'conv3_2' in op.name or 'conv4' in op.name]


def test_conv_only_file_loads(tmp_path, conv_weights):
    path = str(tmp_path / 'conv-only.mat')
    synthetic_vgg.write_current(path, conv_weights, fully_connected=False)
    assert vgg.load_net(path).kernels['conv5_4'].shape == (3, 3, 512, 512)


def error_of(path):
    with pytest.raises(vgg.WeightsError) as caught:
        vgg.load_net(str(path))
    message = str(caught.value)
    assert '\n' not in message
    return message


def test_missing_file_says_where_to_get_it(tmp_path):
    message = error_of(tmp_path / 'nothing.mat')
    assert vgg.WEIGHTS_URL in message and vgg.WEIGHTS_SHA256 in message and '--network' in message


def test_directory(tmp_path):
    assert 'directory' in error_of(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / 'empty.mat').write_bytes(b'')
    assert 'empty' in error_of(tmp_path / 'empty.mat')


def test_html_page(tmp_path):
    (tmp_path / 'page.mat').write_text('<!DOCTYPE html><html><body>Not Found</body></html>')
    assert 'HTML' in error_of(tmp_path / 'page.mat')


def test_truncated_file(tmp_path, network_path):
    with open(network_path, 'rb') as f:
        data = f.read()
    (tmp_path / 'cut.mat').write_bytes(data[:len(data) // 3])
    assert 'truncated or corrupt' in error_of(tmp_path / 'cut.mat')


def test_another_mat_file(tmp_path):
    scipy.io.savemat(str(tmp_path / 'other.mat'), {'x': np.arange(5)})
    assert 'not a MatConvNet network' in error_of(tmp_path / 'other.mat')


def test_vgg16_names_the_missing_layer(tmp_path):
    depths = (2, 2, 3, 3, 3)
    weights = synthetic_vgg.random_conv_weights(seed=1, depths=depths)
    synthetic_vgg.write_current(str(tmp_path / 'vgg16.mat'), weights, depths=depths, fully_connected=False)
    message = error_of(tmp_path / 'vgg16.mat')
    assert 'conv3_4' in message and 'not VGG-19' in message


def test_wrong_shape_names_the_layer(tmp_path, conv_weights):
    weights = dict(conv_weights)
    W, b = weights['conv2_1']
    weights['conv2_1'] = (W[:, :, :32, :], b)
    synthetic_vgg.write_current(str(tmp_path / 'wrong.mat'), weights, fully_connected=False)
    message = error_of(tmp_path / 'wrong.mat')
    assert 'conv2_1' in message and 'another network' in message


def assert_same_net(a, b):
    for name in vgg.CONV_SHAPES:
        np.testing.assert_array_equal(a.kernels[name], b.kernels[name])
        np.testing.assert_array_equal(a.biases[name], b.biases[name])
    np.testing.assert_array_equal(a.mean_pixel, b.mean_pixel)


def test_cache_gives_the_same_weights_without_reading_the_mat_file(tmp_path, network_path, net, monkeypatch):
    first = vgg.load_net_cached(network_path, str(tmp_path))
    assert len(os.listdir(tmp_path)) == 1
    monkeypatch.setattr(vgg, 'load_net', lambda path: pytest.fail('the .mat file was read again'))
    assert_same_net(vgg.load_net_cached(network_path, str(tmp_path)), net)
    assert_same_net(first, net)


def test_cache_entry_goes_stale_when_the_file_changes(tmp_path, conv_weights):
    path = str(tmp_path / 'net.mat')
    synthetic_vgg.write_current(path, conv_weights, fully_connected=False)
    vgg.load_net_cached(path, str(tmp_path / 'cache'))
    changed = {name: (W * 2, b) for name, (W, b) in conv_weights.items()}
    synthetic_vgg.write_current(path, changed, fully_connected=False)
    os.utime(path, ns=(1, 1))  # a new modification time, even on a coarse clock
    reloaded = vgg.load_net_cached(path, str(tmp_path / 'cache'))
    np.testing.assert_array_equal(reloaded.kernels['conv1_1'], vgg.load_net(path).kernels['conv1_1'])
    assert len(os.listdir(tmp_path / 'cache')) == 2


def test_damaged_cache_entry_is_ignored_and_rewritten(tmp_path, network_path, net):
    vgg.load_net_cached(network_path, str(tmp_path))
    (entry,) = tmp_path.iterdir()
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside an array
    entry.write_bytes(bytes(data))
    assert_same_net(vgg.load_net_cached(network_path, str(tmp_path)), net)
    assert_same_net(vgg.load_net_cached(network_path, str(tmp_path)), net)


def test_unwritable_cache_is_skipped(tmp_path, network_path, net):
    blocker = tmp_path / 'file'
    blocker.write_text('not a directory')
    assert_same_net(vgg.load_net_cached(network_path, str(blocker / 'cache')), net)
