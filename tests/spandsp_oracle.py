"""spandsp (Debian libspandsp2, from libspandsp-dev) through ctypes: an independent DTMF sender and
receiver and caller-ID (ADSI) receiver for the DSP tests. Loaded by tests only, never by the firmware.

spandsp allocates its own state when given NULL, so no struct layouts are mirrored here.
"""

from __future__ import annotations

import array
import ctypes
import ctypes.util
import functools

import pytest

ADSI_STANDARD_CLASS = 1
ADSI_STANDARD_CLIP = 2
ADSI_STANDARD_JCLIP = 4
ADSI_STANDARD_CLIP_DTMF = 5


def _load() -> ctypes.CDLL:
    name = ctypes.util.find_library("spandsp") or "libspandsp.so.2"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        pytest.fail(f"spandsp not found ({exc}); on Debian: apt-get install libspandsp-dev")
    vp, i16p = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16)
    lib.dtmf_tx_init.restype = vp
    lib.dtmf_tx_init.argtypes = [vp]
    lib.dtmf_tx_put.argtypes = [vp, ctypes.c_char_p, ctypes.c_int]
    lib.dtmf_tx_set_level.argtypes = [vp, ctypes.c_int, ctypes.c_int]
    lib.dtmf_tx_set_timing.argtypes = [vp, ctypes.c_int, ctypes.c_int]
    lib.dtmf_tx.argtypes = [vp, i16p, ctypes.c_int]
    lib.dtmf_tx_free.argtypes = [vp]
    lib.dtmf_rx_init.restype = vp
    lib.dtmf_rx_init.argtypes = [vp, vp, vp]
    lib.dtmf_rx.argtypes = [vp, i16p, ctypes.c_int]
    lib.dtmf_rx_get.restype = ctypes.c_size_t
    lib.dtmf_rx_get.argtypes = [vp, ctypes.c_char_p, ctypes.c_int]
    lib.dtmf_rx_free.argtypes = [vp]
    lib.adsi_rx_init.restype = vp
    lib.adsi_rx_init.argtypes = [vp, ctypes.c_int, vp, vp]
    lib.adsi_rx.argtypes = [vp, i16p, ctypes.c_int]
    lib.adsi_rx_free.argtypes = [vp]
    lib.adsi_next_field.argtypes = [
        vp, ctypes.c_char_p, ctypes.c_int, ctypes.c_int,
        ctypes.POINTER(ctypes.c_uint8), ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_int),
    ]
    lib.crc_itu16_calc.restype = ctypes.c_uint16
    lib.crc_itu16_calc.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint16]
    return lib


@functools.cache
def spandsp() -> ctypes.CDLL:
    return _load()


def _ptr(samples: array.array) -> ctypes._Pointer:
    addr, _ = samples.buffer_info()
    return ctypes.cast(addr, ctypes.POINTER(ctypes.c_int16))


def dtmf_tx(digits: str, level_dbm0: int = -10, twist_db: int = 0, on_ms: int = 50,
            off_ms: int = 55) -> array.array:
    """spandsp's DTMF generator: `digits` at `level_dbm0` (low tone), high tone `twist_db` above."""
    lib = spandsp()
    s = lib.dtmf_tx_init(None)
    try:
        lib.dtmf_tx_set_level(s, level_dbm0, twist_db)
        lib.dtmf_tx_set_timing(s, on_ms, off_ms)
        lib.dtmf_tx_put(s, digits.encode(), len(digits))
        out = array.array("h")
        buf = array.array("h", bytes(320))
        while (n := lib.dtmf_tx(s, _ptr(buf), 160)) > 0:
            out.extend(buf[:n])
        return out
    finally:
        lib.dtmf_tx_free(s)


class DtmfRx:
    """spandsp's DTMF receiver with its default settings."""

    def __init__(self) -> None:
        self._lib = spandsp()
        self._s = self._lib.dtmf_rx_init(None, None, None)

    def feed(self, samples: array.array) -> None:
        for k in range(0, len(samples), 160):
            chunk = samples[k : k + 160]
            self._lib.dtmf_rx(self._s, _ptr(chunk), len(chunk))

    def digits(self) -> str:
        buf = ctypes.create_string_buffer(256)
        n = self._lib.dtmf_rx_get(self._s, buf, 255)
        return buf.raw[:n].decode()

    def close(self) -> None:
        self._lib.dtmf_rx_free(self._s)


def dtmf_rx(samples: array.array) -> str:
    rx = DtmfRx()
    try:
        rx.feed(samples)
        return rx.digits()
    finally:
        rx.close()


_PUT_MSG = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint8), ctypes.c_int)


def adsi_rx(samples: array.array, standard: int) -> list[bytes]:
    """Messages spandsp's caller-ID receiver delivers from `samples` (spandsp checks the checksum
    of FSK messages and drops bad ones)."""
    lib = spandsp()
    got: list[bytes] = []

    def put(_user: int | None, msg: ctypes._Pointer, length: int) -> None:
        if length > 0:
            got.append(ctypes.string_at(msg, length))

    cb = _PUT_MSG(put)
    s = lib.adsi_rx_init(None, standard, ctypes.cast(cb, ctypes.c_void_p), None)
    try:
        for k in range(0, len(samples), 160):
            chunk = samples[k : k + 160]
            lib.adsi_rx(s, _ptr(chunk), len(chunk))
        tail = array.array("h", bytes(2 * 1600))  # let a DTMF receiver time out its last digit
        for k in range(0, len(tail), 160):
            lib.adsi_rx(s, _ptr(tail[k : k + 160]), 160)
    finally:
        lib.adsi_rx_free(s)
    return got


def adsi_fields(message: bytes, standard: int) -> list[tuple[int, bytes]]:
    """Split a received message into (field type, body) with spandsp's own parser; the first
    entry is the message type with an empty body (FSK) as spandsp reports it."""
    lib = spandsp()
    s = lib.adsi_rx_init(None, standard, None, None)
    fields: list[tuple[int, bytes]] = []
    try:
        pos = 0
        ftype = ctypes.c_uint8()
        body = ctypes.c_void_p()
        flen = ctypes.c_int()
        while True:
            pos = lib.adsi_next_field(s, message, len(message), pos, ctypes.byref(ftype),
                                      ctypes.byref(body), ctypes.byref(flen))
            if pos <= 0:
                break
            data = ctypes.string_at(body.value, flen.value) if body.value and flen.value > 0 else b""
            fields.append((ftype.value, data))
    finally:
        lib.adsi_rx_free(s)
    return fields


def crc_itu16(data: bytes, crc: int = 0) -> int:
    """spandsp's CRC-16 (ITU polynomial, as its JCLIP transmitter and receiver use it)."""
    return int(spandsp().crc_itu16_calc(data, len(data), crc))
