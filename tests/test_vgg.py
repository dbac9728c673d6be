import os

import numpy as np
import pytest
import scipy.io

import reference
import vgg
from styletransfer.testing import synthetic_vgg
from helpers import random_image


def run_layers(net, image, names, pooling='avg', padding='zero', convolutions='tensorflow'):
    import tensorflow.compat.v1 as tf
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [1, None, None, 3])
        layers = vgg.build_network(net, x, max(names, key=vgg.LAYERS.index), pooling, padding=padding,
                                   convolutions=convolutions)
    with tf.Session(graph=graph) as session:
        vgg.initialize(session)
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


@pytest.mark.parametrize('pooling, padding', [('avg', 'zero'), ('max', 'zero'), ('avg', 'reflect')])
@pytest.mark.parametrize('convolutions', vgg.CONVOLUTIONS)
def test_network_matches_numpy_reference(net, conv_weights, pooling, padding, convolutions):
    # Odd sizes at every pooling (21 -> 11 -> 6 -> 3 -> 2) exercise the border windows; in each of Winograd's
    # layers (6x7, 3x4, 2x2) its last 4x4 blocks reach past the edge.
    image = random_image(21, 26, seed=3)
    expected = reference.features(conv_weights, net.mean_pixel, image, pooling, padding)
    names = ['conv1_1', 'relu1_2', 'pool1', 'relu2_1', 'pool3', 'relu4_2', 'relu5_1', 'relu5_4']
    got = run_layers(net, image, names, pooling, padding, convolutions)
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


# Keras's file: vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5, and what Keras 3 writes.

@pytest.mark.parametrize('layout', ['keras2', 'published-names', 'keras3'])
def test_keras_files_load_to_the_matconvnet_tensors(net, keras_paths, layout):
    """Built from the same random arrays, each Keras layout gives the MatConvNet file's kernels exactly: the
    BGR first layer flipped to RGB, and the mean pixel in RGB."""
    keras_net = vgg.load_net(keras_paths[layout])
    for name in vgg.CONV_SHAPES:
        np.testing.assert_array_equal(keras_net.kernels[name], net.kernels[name], err_msg=name)
        np.testing.assert_array_equal(keras_net.biases[name], net.biases[name], err_msg=name)
    np.testing.assert_allclose(keras_net.mean_pixel, net.mean_pixel, rtol=1e-6)
    assert keras_net.layout.startswith('Keras 3' if layout == 'keras3' else 'Keras 1/2')


def test_keras_file_and_matconvnet_file_give_identical_features(net, keras_paths):
    image = random_image(20, 24, seed=4)
    names = ['relu1_1', 'relu3_1', 'relu5_1']
    from_mat = run_layers(net, image, names)
    from_keras = run_layers(vgg.load_net(keras_paths['keras2']), image, names)
    for name in names:
        np.testing.assert_array_equal(from_keras[name], from_mat[name], err_msg=name)


def test_keras_file_matches_keras_own_model_on_caffe_preprocessing(keras_model, keras_paths):
    """Independent of our conversion: Keras's VGG19 with its own preprocess_input (RGB -> BGR, minus the BGR
    mean) gives the features that our network gives on RGB minus the RGB mean. Max pooling and even sizes,
    where Keras's VALID pooling equals our SAME pooling."""
    import keras
    image = random_image(32, 32, seed=5)
    names = {'block1_conv1': 'relu1_1', 'block3_conv4': 'relu3_4', 'block5_conv4': 'relu5_4'}
    probe = keras.Model(keras_model.input, [keras_model.get_layer(n).output for n in names])
    expected = probe(keras.applications.vgg19.preprocess_input(image[None].copy()))
    got = run_layers(vgg.load_net(keras_paths['keras2']), image, list(names.values()), pooling='max')
    for ours, theirs in zip(names.values(), expected):
        theirs = np.asarray(theirs)[0]
        np.testing.assert_allclose(got[ours], theirs, atol=1e-4 * np.abs(theirs).max(), err_msg=ours)


def test_keras_vgg16_names_the_missing_layer(tmp_path):
    import keras
    model = keras.applications.VGG16(weights=None, include_top=False)
    synthetic_vgg.write_keras2(str(tmp_path / 'vgg16.h5'), model)
    message = error_of(tmp_path / 'vgg16.h5')
    assert 'block3_conv4' in message and 'not VGG-19' in message


def test_truncated_keras_file(tmp_path, keras_paths):
    with open(keras_paths['keras2'], 'rb') as f:
        data = f.read()
    (tmp_path / 'cut.h5').write_bytes(data[:len(data) // 3])
    assert 'truncated or corrupt' in error_of(tmp_path / 'cut.h5')


def test_another_hdf5_file(tmp_path):
    import h5py
    with h5py.File(tmp_path / 'other.h5', 'w') as f:
        f['x'] = np.arange(5)
    assert 'not Keras\'s VGG-19' in error_of(tmp_path / 'other.h5')


def test_detected_by_content_not_name(tmp_path, keras_paths, network_path):
    os.symlink(keras_paths['keras2'], tmp_path / 'weights.mat')
    os.symlink(network_path, tmp_path / 'weights.h5')
    assert vgg.load_net(str(tmp_path / 'weights.mat')).layout.startswith('Keras')
    assert vgg.load_net(str(tmp_path / 'weights.h5')).layout.startswith('MatConvNet')


# Where the weights are looked for, and `python vgg.py check`.

@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """An empty current directory and empty cache directories."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    monkeypatch.setenv('KERAS_HOME', str(tmp_path / 'keras'))
    monkeypatch.delenv(vgg.NETWORK_ENV, raising=False)
    return tmp_path


def test_search_order(elsewhere, monkeypatch):
    keras_file = elsewhere / 'keras' / 'models' / vgg.KERAS_WEIGHTS_FILE
    cached = elsewhere / 'cache' / 'neural-style' / vgg.WEIGHTS_FILE
    here = elsewhere / vgg.WEIGHTS_FILE
    named = elsewhere / 'named.mat'
    for path in (keras_file, cached, here, named):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'x')
        if path != named:
            assert os.path.samefile(vgg.find_weights(), path)
    monkeypatch.setenv(vgg.NETWORK_ENV, str(named))
    assert vgg.find_weights() == str(named)
    assert vgg.find_weights('given.mat') == 'given.mat'


def test_nothing_found_names_the_download_command(elsewhere):
    message = error_of_default()
    assert '`python vgg.py download`' in message and '--network' in message and vgg.NETWORK_ENV in message
    assert str(elsewhere / 'cache' / 'neural-style' / vgg.WEIGHTS_FILE) in message


def test_environment_variable_naming_a_missing_file(elsewhere, monkeypatch):
    monkeypatch.setenv(vgg.NETWORK_ENV, str(elsewhere / 'gone.mat'))
    message = error_of_default()
    assert vgg.NETWORK_ENV in message and 'gone.mat' in message and '`python vgg.py download`' in message


def error_of_default():
    with pytest.raises(vgg.WeightsError) as caught:
        vgg.load_net()
    assert '\n' not in str(caught.value)
    return str(caught.value)


def test_check_says_which_layout(network_path, older_network_path, keras_paths, capsys):
    expected = {network_path: 'MatConvNet, current layout', older_network_path: 'MatConvNet, older layout',
                keras_paths['keras2']: 'Keras 1/2 layout', keras_paths['keras3']: 'Keras 3 layout'}
    for path, layout in expected.items():
        assert vgg.main(['check', path]) == 0
        out = capsys.readouterr().out
        assert layout in out and 'not a published file' in out


def test_check_recognizes_a_published_file_by_its_digest(network_path, monkeypatch, capsys):
    import hashlib
    with open(network_path, 'rb') as f:
        md5 = hashlib.md5(f.read()).hexdigest()
    monkeypatch.setitem(vgg.PUBLISHED, md5, 'the published test file')
    assert vgg.main(['check', network_path]) == 0
    assert capsys.readouterr().out.strip().endswith('the published test file')


def test_check_fails_in_one_line(tmp_path, capsys):
    (tmp_path / 'page.mat').write_text('<html>moved</html>')
    assert vgg.main(['check', str(tmp_path / 'page.mat')]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith('vgg.py: error:') and 'HTML' in err and '\n' not in err


def test_reflect_padding_differs_from_zero_padding_at_the_border_only(net):
    """The check above can tell the paddings apart: they agree inside, differ at the border."""
    image = random_image(21, 26, seed=3)
    zero, reflect = run_layers(net, image, ['conv1_1'], padding='zero'), run_layers(net, image, ['conv1_1'],
                                                                                    padding='reflect')
    np.testing.assert_allclose(zero['conv1_1'][1:-1, 1:-1], reflect['conv1_1'][1:-1, 1:-1], rtol=1e-5, atol=1e-3)
    assert np.abs(zero['conv1_1'][0] - reflect['conv1_1'][0]).max() > 1.0


@pytest.mark.parametrize('padding', ['SAME', 'VALID'])
def test_convolution_gradient_equals_tensorflows_own(conv_weights, padding):
    """build_network takes each convolution's input gradient as a forward convolution with the rotated kernel
    (the incoming gradient zero-padded by 2 for VALID, the reflect padding's); it must equal TensorFlow's
    Conv2DBackpropInput, here for a kernel with no symmetry."""
    import tensorflow.compat.v1 as tf
    kernel = np.random.default_rng(5).normal(size=(3, 3, 4, 6)).astype(np.float32)
    x = np.random.default_rng(6).normal(size=(1, 7, 9, 4)).astype(np.float32)
    out = (7, 9) if padding == 'SAME' else (5, 7)
    weights = np.random.default_rng(7).normal(size=(1, *out, 6)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        image = tf.constant(x)
        ours = tf.gradients(tf.reduce_sum(vgg._conv3x3(image, kernel, 'float32', padding, 'rotated') * weights),
                            image)[0]
        theirs = tf.gradients(tf.reduce_sum(tf.nn.conv2d(image, kernel, 1, padding) * weights), image)[0]
    # the rotated kernel's forward convolution, not TensorFlow's Conv2DBackpropInput, makes our gradient
    assert [op.type for op in graph.get_operations()].count('Conv2DBackpropInput') == 1  # theirs only
    with tf.Session(graph=graph) as session:
        ours, theirs = session.run((ours, theirs))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
