import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.dirname(os.path.abspath(__file__))]
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import synthetic_vgg  # noqa: E402


@pytest.fixture(scope='session')
def conv_weights():
    return synthetic_vgg.random_conv_weights(seed=0)


@pytest.fixture(scope='session')
def network_path(tmp_path_factory, conv_weights):
    """A random-weight VGG-19 in the current MatConvNet layout."""
    path = tmp_path_factory.mktemp('net') / 'imagenet-vgg-verydeep-19.mat'
    synthetic_vgg.write_current(str(path), conv_weights)
    return str(path)


@pytest.fixture(scope='session')
def older_network_path(tmp_path_factory, conv_weights):
    """The same weights in the older layout."""
    path = tmp_path_factory.mktemp('net') / 'imagenet-vgg-verydeep-19-older.mat'
    synthetic_vgg.write_older(str(path), conv_weights)
    return str(path)


@pytest.fixture(scope='session')
def net(network_path):
    import vgg
    return vgg.load_net(network_path)


def random_image(height, width, seed):
    return np.random.default_rng(seed).uniform(0, 255, (height, width, 3)).astype(np.float32)


@pytest.fixture
def images():
    """A content image and a smaller style image, small enough for fast tests."""
    return random_image(20, 28, seed=1), random_image(18, 22, seed=2)


@pytest.fixture(scope='session', autouse=True)
def weights_cache(tmp_path_factory):
    """The command line caches converted weights; in tests, in a directory of their own, not the user's."""
    os.environ['NEURAL_STYLE_CACHE'] = str(tmp_path_factory.mktemp('cache'))
    return os.environ['NEURAL_STYLE_CACHE']
