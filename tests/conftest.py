import os

import pytest

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ['NEURAL_STYLE_NO_DOWNLOAD'] = '1'  # no test fetches weights from the internet unless it says so

from styletransfer.testing import synthetic_vgg  # noqa: E402
import vgg  # noqa: E402
from styletransfer.media import video  # noqa: E402
from helpers import CLIP_FPS, random_image, save, textured_clip, write_cpuinfo, write_inputs  # noqa: E402


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
    return vgg.load_net(network_path)


@pytest.fixture
def image_arrays():
    """A content image and a smaller style image, small enough for fast tests."""
    return random_image(20, 28, seed=1), random_image(18, 22, seed=2)


@pytest.fixture(scope='session', autouse=True)
def weights_cache(tmp_path_factory):
    """The command line caches converted weights; in tests, in a directory of their own, not the user's."""
    os.environ['NEURAL_STYLE_CACHE'] = str(tmp_path_factory.mktemp('cache'))
    return os.environ['NEURAL_STYLE_CACHE']


@pytest.fixture(scope='session', autouse=True)
def cpu_without_bfloat16(tmp_path_factory):
    """--precision auto, the default, decides by the CPU's flags: every test, and every program a test starts,
    sees a CPU without bfloat16 units (float32), whatever this machine has; a test of auto sets its own."""
    path = write_cpuinfo(tmp_path_factory.mktemp('cpu') / 'cpuinfo', 'fpu sse2 avx2 fma')
    os.environ['NEURAL_STYLE_CPUINFO'] = path
    return path


@pytest.fixture(scope='session')
def keras_model(conv_weights):
    """Keras's VGG-19 holding the same random weights as network_path."""
    return synthetic_vgg.keras_vgg19(conv_weights)


@pytest.fixture(scope='session')
def keras_paths(tmp_path_factory, keras_model):
    """The same weights in each Keras layout: layout -> path."""
    directory = tmp_path_factory.mktemp('keras')
    paths = {'keras2': str(directory / 'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'),
             'published-names': str(directory / 'published-names.h5'),
             'keras3': str(directory / 'vgg19.weights.h5')}
    synthetic_vgg.write_keras2(paths['keras2'], keras_model)
    synthetic_vgg.write_keras_published_names(paths['published-names'], keras_model)
    synthetic_vgg.write_keras3(paths['keras3'], keras_model)
    return paths


@pytest.fixture
def inputs(tmp_path, network_path):
    """A content and a style image on disk, the network, and the directory they are in."""
    return write_inputs(tmp_path, network_path)


@pytest.fixture
def clip(tmp_path, network_path):
    """A four-frame clip of a moving texture on disk, a style image, the network, and their directory."""
    path = str(tmp_path / 'clip.mp4')
    video.write_clip(path, textured_clip(), CLIP_FPS)
    style = save(tmp_path / 'style.png', random_image(20, 20, seed=2))
    return dict(content=path, style=style, network=network_path, dir=tmp_path)
