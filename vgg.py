"""VGG-19 from MatConvNet's imagenet-vgg-verydeep-19.mat: reading the weights file and building the network.

This module knows the weights file and the network, nothing else. Layers are found by their stored names and
fields, never by position, so both layouts of the file that exist in the wild load:

- current (SHA256 abdb5716...): `layers` is a cell of structs (name, type, weights, size, pad, stride, ...);
  the mean pixel is `meta.normalization.averageImage` (1x1x3).
- older: a top-level `normalization` whose `averageImage` is a whole 224x224x3 image (its per-channel mean is
  the mean pixel), and layer structs whose first field is `weights`.
"""
import os
from dataclasses import dataclass

import numpy as np

WEIGHTS_FILE = 'imagenet-vgg-verydeep-19.mat'
WEIGHTS_URL = 'https://www.vlfeat.org/matconvnet/models/imagenet-vgg-verydeep-19.mat'
WEIGHTS_SHA256 = 'abdb57167f82a2a1fbab1e1c16ad9373411883f262a1a37ee5db2e6fb0044695'

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


class WeightsError(Exception):
    """The weights file is missing, unreadable, or not MatConvNet's VGG-19."""


@dataclass(frozen=True)
class VGG19:
    """The convolutional weights of VGG-19 in TensorFlow's layout, and the mean pixel of its training set."""
    kernels: dict  # conv name -> float32 [height, width, in, out]
    biases: dict  # conv name -> float32 [out]
    mean_pixel: np.ndarray  # float32 [3], RGB


def _missing_message(path):
    return (f'weights file {path} does not exist: download {WEIGHTS_FILE} from {WEIGHTS_URL} '
            f'(SHA256 {WEIGHTS_SHA256}) and give its path with --network')


def load_net(path):
    """Reads VGG-19 from a MatConvNet .mat file (either layout); raises WeightsError with one clear sentence."""
    import scipy.io

    if not os.path.exists(path):
        raise WeightsError(_missing_message(path))
    if os.path.isdir(path):
        raise WeightsError(f'weights file {path} is a directory, not a .mat file')
    with open(path, 'rb') as f:
        head = f.read(512)
    if not head:
        raise WeightsError(f'weights file {path} is empty: download {WEIGHTS_FILE} again from {WEIGHTS_URL}')
    if head.lstrip().startswith(b'<'):
        raise WeightsError(f'weights file {path} is an HTML/XML page, not a MATLAB file '
                           f'(a failed download?): download it again from {WEIGHTS_URL}')
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
    return VGG19(kernels=kernels, biases=biases, mean_pixel=mean_pixel)


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


def preprocess(image, mean_pixel):
    """RGB in 0..255 to the network's input: the mean pixel subtracted."""
    return image - mean_pixel


def unprocess(image, mean_pixel):
    return image + mean_pixel


def layers_up_to(last):
    """The layers from the input up to and including `last`."""
    return LAYERS[:LAYERS.index(last) + 1]


def build_network(net, image, last_layer, pooling='avg', dtype='float32'):
    """The graph from `image` ([1, height, width, 3], preprocessed) up to `last_layer`: layer name -> tensor.

    dtype is the arithmetic of the convolutions ('float32', or 'bfloat16' / 'float16' for reduced precision);
    the layers' tensors come out in it.

    Convolutions are 3x3 with stride 1 and padding 1 (SAME). Pooling is 2x2 with stride 2 and SAME padding:
    for even sizes that is MatConvNet's and Caffe's pooling; for odd sizes it is Caffe's ceil mode, whose
    average over a border window counts only the pixels inside the image, as TensorFlow's SAME average does.
    """
    import tensorflow.compat.v1 as tf

    if pooling not in POOLING_METHODS:
        raise ValueError(f'unknown pooling {pooling!r}; choose one of {", ".join(POOLING_METHODS)}')
    layers, x = {}, tf.cast(image, dtype)
    for name in layers_up_to(last_layer):
        if name.startswith('conv'):
            kernel, bias = tf.constant(net.kernels[name], dtype=dtype), tf.constant(net.biases[name], dtype=dtype)
            x = tf.nn.bias_add(tf.nn.conv2d(x, kernel, strides=1, padding='SAME'), bias, name=name)
        elif name.startswith('relu'):
            x = tf.nn.relu(x, name=name)
        elif pooling == 'avg':
            x = tf.nn.avg_pool2d(x, ksize=2, strides=2, padding='SAME', name=name)
        else:
            x = tf.nn.max_pool2d(x, ksize=2, strides=2, padding='SAME', name=name)
        layers[name] = x
    return layers


def default_cache_dir():
    """Where converted weights are cached: $NEURAL_STYLE_CACHE, else neural-style in the user's cache directory."""
    return os.environ.get('NEURAL_STYLE_CACHE') or os.path.join(
        os.environ.get('XDG_CACHE_HOME') or os.path.expanduser(os.path.join('~', '.cache')), 'neural-style')


def load_net_cached(path, cache_dir):
    """load_net through a cache of the convolutional weights in `cache_dir`.

    The .mat file is about 550 MB, most of it fully connected layers this method never uses, and takes
    seconds to parse; the cache (80 MB) loads in a fraction of one. An entry is keyed by the file's path, size
    and modification time, and carries a checksum of its arrays: a damaged or stale entry is ignored and
    rewritten. A cache that cannot be written is skipped.
    """
    import hashlib
    import zlib

    path = os.path.abspath(path)
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
                             biases={n: arrays['bias_' + n] for n in CONV_SHAPES}, mean_pixel=arrays['mean_pixel'])
    except Exception:  # missing, stale or damaged: read the .mat file instead
        pass
    net = load_net(path)
    arrays = {'mean_pixel': net.mean_pixel}
    for name in CONV_SHAPES:
        arrays['kernel_' + name], arrays['bias_' + name] = net.kernels[name], net.biases[name]
    try:
        os.makedirs(cache_dir, exist_ok=True)
        temporary = f'{entry}.{os.getpid()}.tmp.npz'
        np.savez(temporary, checksum=np.int64(checksum(arrays)), **arrays)
        os.replace(temporary, entry)
    except OSError:
        pass
    return net
