"""Random-weight VGG-19 files in MatConvNet's two layouts and Keras's, for tests and benchmarks (never the real
weights).

The convolutional layers have VGG-19's real shapes, so the network costs what the real one does. The fully
connected layers, which the method never uses, are kept in the layout but shrunk, to keep the files small.

As a program it writes one, for measurements whose result does not depend on the weights (memory, time):

    python -m styletransfer.testing.synthetic_vgg random.mat               # MatConvNet's current layout
    python -m styletransfer.testing.synthetic_vgg vgg.mat --layout older   # the older one, anishathalye's
"""
import argparse
import functools
import warnings

import numpy as np
import scipy.io

MEAN_PIXEL = np.array([123.68, 116.779, 103.939], dtype=np.float32)  # MatConvNet's VGG-19 mean pixel
DEPTHS = (2, 2, 4, 4, 4)
CHANNELS = (64, 128, 256, 512, 512)


def random_conv_weights(seed=0, depths=DEPTHS):
    """conv name -> (W as stored: [width, height, in, out] float32, bias [out, 1] float32), He-initialized so
    that activations keep their scale through the 16 layers."""
    rng = np.random.default_rng(seed)
    weights, channels_in = {}, 3
    for block, (depth, channels) in enumerate(zip(depths, CHANNELS), start=1):
        for i in range(1, depth + 1):
            W = rng.normal(0, np.sqrt(2.0 / (9 * channels_in)), (3, 3, channels_in, channels)).astype(np.float32)
            b = rng.normal(0, 0.01, (channels, 1)).astype(np.float32)
            weights[f'conv{block}_{i}'] = (W, b)
            channels_in = channels
    return weights


def _cell(items):
    cell = np.empty((1, len(items)), dtype=object)
    for k, item in enumerate(items):
        cell[0, k] = item
    return cell


def _current_layers(weights, depths):
    def conv(name, W, b, pad=1):
        return {'name': name, 'type': 'conv', 'weights': _cell([W, b]), 'size': np.array([W.shape], float),
                'pad': np.full((1, 4), pad, float), 'stride': np.ones((1, 2)), 'precious': 0, 'dilate': 1,
                'opts': np.empty((1, 0), dtype=object)}

    def other(name, kind, **fields):
        return dict({'name': name, 'type': kind, 'weights': np.empty((1, 0), dtype=object), 'precious': 0}, **fields)

    layers = []
    for block, depth in enumerate(depths, start=1):
        for i in range(1, depth + 1):
            name = f'conv{block}_{i}'
            layers += [conv(name, *weights[name]), other(f'relu{block}_{i}', 'relu', leak=0)]
        layers.append(other(f'pool{block}', 'pool', method='max', pool=np.array([[2, 2]], float),
                            stride=np.array([[2, 2]], float), pad=np.zeros((1, 4))))
    return layers


def _fully_connected(rng):
    """fc6 (7x7 kernel), fc7, fc8 (1x1) and the softmax, as in the real file but with few channels."""
    def fc(name, shape):
        return {'name': name, 'type': 'conv',
                'weights': _cell([rng.normal(0, 0.01, shape).astype(np.float32), np.zeros((shape[3], 1), np.float32)]),
                'size': np.array([shape], float), 'pad': np.zeros((1, 4)), 'stride': np.ones((1, 2)), 'precious': 0,
                'dilate': 1, 'opts': np.empty((1, 0), dtype=object)}

    def relu(name):
        return {'name': name, 'type': 'relu', 'weights': np.empty((1, 0), dtype=object), 'precious': 0, 'leak': 0}

    return [fc('fc6', (7, 7, 512, 16)), relu('relu6'), fc('fc7', (1, 1, 16, 16)), relu('relu7'),
            fc('fc8', (1, 1, 16, 10)),
            {'name': 'prob', 'type': 'softmax', 'weights': np.empty((1, 0), dtype=object), 'precious': 0}]


def write_current(path, weights, mean_pixel=MEAN_PIXEL, depths=DEPTHS, fully_connected=True, seed=0):
    """The current layout: `layers` a 1x43 cell of structs; mean pixel in meta.normalization.averageImage."""
    layers = _current_layers(weights, depths)
    if fully_connected:
        layers += _fully_connected(np.random.default_rng(seed))
    meta = {'normalization': {'imageSize': np.array([[224, 224, 3]], float),
                              'averageImage': np.asarray(mean_pixel, np.float32).reshape(1, 1, 3),
                              'keepAspect': 1, 'interpolation': 'bilinear'},
            'classes': {'name': _cell(['a', 'b']), 'description': _cell(['a', 'b'])}}
    scipy.io.savemat(path, {'layers': _cell(layers), 'meta': meta}, do_compression=False)


def write_older(path, weights, mean_pixel=MEAN_PIXEL, seed=0):
    """The older layout: a top-level `normalization` whose averageImage is a whole 224x224x3 image, and layer
    structs whose first field is `weights`."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 20, (224, 224, 3))
    average_image = (np.asarray(mean_pixel, np.float64) + noise - noise.mean(axis=(0, 1))).astype(np.float32)
    layers = []
    for block, depth in enumerate(DEPTHS, start=1):
        for i in range(1, depth + 1):
            name = f'conv{block}_{i}'
            layers += [{'weights': _cell(list(weights[name])), 'pad': np.ones((1, 4)), 'type': 'conv',
                        'name': name, 'stride': np.ones((1, 2))},
                       {'weights': np.empty((1, 0), dtype=object), 'type': 'relu', 'name': f'relu{block}_{i}'}]
        layers.append({'weights': np.empty((1, 0), dtype=object), 'name': f'pool{block}',
                       'stride': np.array([[2, 2]], float), 'pad': np.zeros((1, 4)), 'type': 'pool',
                       'method': 'max', 'pool': np.array([[2, 2]], float)})
    normalization = {'averageImage': average_image, 'keepAspect': 1, 'border': np.zeros((1, 2)),
                     'imageSize': np.array([[224, 224, 3]], float), 'interpolation': 'bilinear'}
    scipy.io.savemat(path, {'layers': _cell(layers), 'normalization': normalization,
                            'classes': {'name': _cell(['a', 'b'])}}, do_compression=False)


def keras_vgg19(weights):
    """Keras's own VGG-19 (include_top=False) holding `weights`, converted to Keras's conventions: kernels
    [height, width, in, out], and the first layer taking Caffe's BGR."""
    import keras

    model = keras.applications.VGG19(weights=None, include_top=False)
    for name, (W, b) in weights.items():
        block, index = name[len('conv'):].split('_')
        kernel = W.transpose(1, 0, 2, 3)  # MatConvNet's [width, height, in, out]
        if name == 'conv1_1':
            kernel = kernel[:, :, ::-1, :]  # RGB -> BGR input channels
        model.get_layer(f'block{block}_conv{index}').set_weights([kernel, b[:, 0]])
    return model


def _quiet_keras(write):
    """Keras 3.15 with NumPy 2 warns about its own copy= keyword on every weight it reads; not ours to fix."""
    @functools.wraps(write)
    def quiet(*args):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', DeprecationWarning)
            write(*args)
    return quiet


@_quiet_keras
def write_keras2(path, model):
    """The layout of Keras 1/2's save_weights, which the published vgg19_..._notop.h5 has: a group per layer
    listing its weights in attrs['weight_names'], the layer names in the root's attrs['layer_names']. Written
    by Keras 3's own writer for that format."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, 'w') as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


@_quiet_keras
def write_keras3(path, model):
    """What Keras 3's save_weights writes (`path` must end in .weights.h5): layers/<key>/vars/0 and 1."""
    model.save_weights(path)


@_quiet_keras
def write_keras_published_names(path, model):
    """Keras 1's names, as in the published file itself: flat datasets block1_conv1_W_1:0 and block1_conv1_b_1:0
    in each layer's group, names stored as bytes. Written with h5py, since no Keras writes them any more."""
    import h5py

    with h5py.File(path, 'w') as f:
        f.attrs['layer_names'] = [layer.name.encode() for layer in model.layers]
        for layer in model.layers:
            group = f.create_group(layer.name)
            names = [f'{layer.name}_{kind}_1:0' for kind in 'Wb'][:len(layer.get_weights())]
            group.attrs['weight_names'] = [name.encode() for name in names]
            for name, value in zip(names, layer.get_weights()):
                group.create_dataset(name, data=value)


def build_parser():
    parser = argparse.ArgumentParser(prog='python -m styletransfer.testing.synthetic_vgg',
                                     description='Write a random-weight VGG-19 of '
                                     'the real size in MatConvNet\'s layout (never the real weights).')
    parser.add_argument('path', help='the .mat file to write')
    parser.add_argument('--layout', choices=('current', 'older'), default='current',
                        help='MatConvNet\'s current layout, or the older one (beta16\'s)')
    parser.add_argument('--seed', type=int, default=0, help='of the random weights')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    write = write_current if args.layout == 'current' else write_older
    write(args.path, random_conv_weights(seed=args.seed))


if __name__ == '__main__':
    main()
