"""The paper's normalized network (Gatys et al. 2016, sec. 2: "We normalized the network by scaling the weights
such that the mean activation of each convolutional filter over images and positions is equal to one"), for
--normalize-network.

Each filter's mean activation is taken over the six images of examples/ (three photographs, three paintings) with
their longest side SIZE px, at every one of the 16 convolutions' rectified outputs, and cached per weights file.
The normalized network divides each filter's kernel and bias by its mean and multiplies the next convolution's
kernel by it on that input channel: a ReLU and a pooling commute with a positive scale, so every layer's output is
the published network's divided by its own means, and the scaling is undone downstream.
"""
import dataclasses
import hashlib
import os
import zipfile

import numpy as np

import vgg
from styletransfer.compute import devices
from styletransfer.media import files, images
from styletransfer.method import losses

# The repository's examples/, beside this package (installed in place: README, Install)
EXAMPLES_DIRECTORY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                  'examples')
EXAMPLES = ('chelsea.png', 'astronaut.png', 'coffee.png', 'starry_night.jpg', 'the_scream.jpg', 'shipwreck.jpg')
SIZE = 256  # their longest side in pixels, as docs/method.md measured them
POOLING = 'avg'  # the default pooling: it decides the means of the layers after the first pooling
VERSION = 1  # of how the means are computed: a new value makes every cached file stale
RELU_LAYERS = tuple(name for name in vgg.LAYERS if name.startswith('relu'))  # one per convolution, all 16


def sized(image, size):
    """The image with its longest side `size` pixels."""
    return images.resize(image, *images.longest_side(image.shape[:2], size))


def example_pictures(size):
    """The six images of examples/, each with its longest side `size` pixels."""
    return [sized(images.read_image(os.path.join(EXAMPLES_DIRECTORY, name)), size) for name in EXAMPLES]


def mean_activations(net, pictures, placement=None):
    """relu name -> each filter's mean activation over the pictures and their positions (the mean of each
    picture's mean over its positions), for every convolution; on the placement's first device (default:
    devices.one_device())."""
    placement = placement or devices.one_device()
    features = losses.layer_features(net, pictures, RELU_LAYERS, (), POOLING, 'zero', placement.devices[0],
                                     placement=placement)
    return {name: np.mean([f[name].reshape(-1, f[name].shape[-1]).mean(axis=0) for f, _, _ in features], axis=0)
            for name in RELU_LAYERS}


def normalized(net, means):
    """The network with each filter's mean activation scaled to 1 (a dead filter, mean 0, kept as it is)."""
    kernels, biases, previous = dict(net.kernels), dict(net.biases), None
    for relu in RELU_LAYERS:
        conv = relu.replace('relu', 'conv')
        mean = np.where(means[relu] > 0, means[relu], 1.0).astype(np.float32)
        kernel = net.kernels[conv] / mean
        if previous is not None:
            kernel = kernel * previous[:, None]  # [height, width, in, out]: the input channel's scale undone
        kernels[conv], biases[conv], previous = kernel, net.biases[conv] / mean, mean
    return dataclasses.replace(net, kernels=kernels, biases=biases, normalized=True)


def cache_path(cache_dir, weights_sha256):
    """The cached means of the weights file whose SHA256 is given, in `cache_dir`: named by a digest of it, of
    the example images' contents, SIZE, POOLING and VERSION, so that a change to any of them gets a file of its
    own."""
    key = hashlib.sha256(f'{VERSION}|{SIZE}|{POOLING}|{weights_sha256}'.encode())
    for name in EXAMPLES:
        key.update(f'|{name}|{files.file_digest(os.path.join(EXAMPLES_DIRECTORY, name))}'.encode())
    return os.path.join(cache_dir, f'mean-activations-{key.hexdigest()[:24]}.npz')


def read_means(path):
    """The means stored at `path`, or None when the file is missing, unreadable or damaged (the zip's CRC catches
    a changed byte), or does not hold a finite mean of at least 0 for every filter."""
    try:
        with np.load(path) as stored:
            means = {name: stored[name] for name in RELU_LAYERS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    whole = all(m.shape == (vgg.channels(name),) and m.dtype == np.float32 and np.all(np.isfinite(m)) and
                np.all(m >= 0) for name, m in means.items())
    return means if whole else None


def cached_mean_activations(net, weights_sha256, cache_dir, placement=None):
    """(mean_activations of the example pictures, None or a sentence saying they could not be cached): read from
    cache_path's file, else computed (on `placement`) and written there atomically, with the mode the umask gives.
    A file that cannot be read is computed again; a cache that cannot be written is skipped."""
    path = cache_path(cache_dir, weights_sha256)
    means = read_means(path)
    if means is not None:
        return means, None
    means = mean_activations(net, example_pictures(SIZE), placement)
    try:
        os.makedirs(cache_dir, exist_ok=True)
        files.write_atomically(path, lambda f: np.savez(f, **means))
    except OSError as error:
        return means, (f'the mean activations of the normalized network could not be cached in {cache_dir} '
                       f'({error.strerror or error}): computed for this run only')
    return means, None
