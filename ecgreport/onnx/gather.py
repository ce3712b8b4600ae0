"""Select batch rows of caches that live on the GPU, without copying them to the host.

Decoding keeps its key/value caches on the session's device (onnxruntime I/O binding).
Choosing a record's best window, repeating one window's cache for each beam, reordering
the beams' caches after each step and dropping finished rows are all the same operation,
``cache[rows]`` along the batch axis; numpy can do it only on the host. A tiny ONNX graph
of ``Gather(axis=0)`` nodes does it where the caches are.

The graph is written here as protobuf bytes (a few fields of onnx.proto's ModelProto), so
that inference needs neither the ``onnx`` package nor a change of the model bundle; a
test checks the bytes with ``onnx.checker`` and the result against numpy.
"""

from __future__ import annotations

import numpy as np

from ecgreport.onnx.providers import quiet_stdout

OPSET = 13   # Gather is unchanged since opset 13
IR_VERSION = 7
_FLOAT, _INT64 = 1, 7  # TensorProto.DataType


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, elem_type: int, rank: int) -> bytes:
    """ValueInfoProto: name, TypeProto.tensor_type(elem_type, shape of named dims)."""
    dims = b"".join(_bytes(1, _bytes(2, f"{name}_d{i}")) for i in range(rank))
    tensor = _int(1, elem_type) + _bytes(2, dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor))


def gather_model(n_inputs: int, rank: int = 4) -> bytes:
    """An ONNX model: float inputs ``x0..x{n-1}`` (each of rank ``rank``) and int64 ``rows``
    (m,) -> outputs ``y0..y{n-1}``, ``y_i = x_i[rows]`` along axis 0."""
    nodes = b""
    for i in range(n_inputs):
        axis = _bytes(1, "axis") + _int(3, 0) + _int(20, 2)   # AttributeProto, type INT
        nodes += _bytes(1, _bytes(1, f"x{i}") + _bytes(1, "rows") + _bytes(2, f"y{i}")
                        + _bytes(3, f"gather{i}") + _bytes(4, "Gather") + _bytes(5, axis))
    inputs = b"".join(_bytes(11, _value_info(f"x{i}", _FLOAT, rank)) for i in range(n_inputs))
    inputs += _bytes(11, _value_info("rows", _INT64, 1))
    outputs = b"".join(_bytes(12, _value_info(f"y{i}", _FLOAT, rank)) for i in range(n_inputs))
    graph = nodes + _bytes(2, "ecgreport_gather_rows") + inputs + outputs
    opset = _bytes(1, "") + _int(2, OPSET)
    return _int(1, IR_VERSION) + _bytes(2, "ecgreport") + _bytes(7, graph) + _bytes(8, opset)


class RowGather:
    """``gather(values, rows)`` -> ``[v[rows] for v in values]``, run by onnxruntime on the
    values' device; ``values`` are OrtValues (or numpy arrays, copied in) of rank 4."""

    def __init__(self, n_inputs: int, providers: list, options, device: str):
        import onnxruntime as ort

        self.n, self.device = n_inputs, device
        with quiet_stdout():  # no onnxruntime fallback: the runner's CUDA check decides
            self._session = ort.InferenceSession(gather_model(n_inputs), options, providers=providers,
                                                 enable_fallback=0)
        self._session.disable_fallback()

    def __call__(self, values: list, rows) -> list:
        if len(values) != self.n:
            raise ValueError(f"RowGather made for {self.n} arrays, got {len(values)}")
        io = self._session.io_binding()
        for i, value in enumerate(values):
            if isinstance(value, np.ndarray):
                io.bind_cpu_input(f"x{i}", np.ascontiguousarray(value))
            else:
                io.bind_ortvalue_input(f"x{i}", value)
        io.bind_cpu_input("rows", np.asarray(rows, dtype=np.int64).reshape(-1))
        for i in range(self.n):
            io.bind_output(f"y{i}", self.device)
        self._session.run_with_iobinding(io)
        return list(io.get_outputs())
