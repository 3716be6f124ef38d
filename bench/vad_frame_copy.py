"""Per-frame cost of copying a pjsua2 MediaFrame buffer, and of the whole VAD callback.

Run: ``python bench/vad_frame_copy.py``. Measured on the project machine
(2 cores, CPython 3.11, pjsua2-python 2.15.1), 20 ms frames at 8 kHz (320 bytes):

    bytes(frame.buf)                 150-167 us   (SWIG per-element iteration)
    bytearray(frame.buf)             150-165 us
    frame.buf[:]                     2.3 us       (but a ByteVector, not bytes)
    ctypes begin/end + string_at     1.9-2.5 us   (softphone.frames.vector_bytes)
    webrtcvad.is_speech              1.4 us
    SpeechPort.onFrameReceived body  4.6 us       (copy + VAD + hangover)

This process creates an Endpoint (libCreate/libInit only) for the SpeechPort.
"""

from __future__ import annotations

import os
import sys
import timeit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import pjsua2 as pj
import webrtcvad

from softphone.frames import FAST_COPY, vector_bytes_fast

FRAME_BYTES = 320
RUNS = 3000


def frame_with_noise() -> pj.MediaFrame:
    frame = pj.MediaFrame()
    frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
    payload = os.urandom(FRAME_BYTES)
    vector = pj.ByteVector()
    for byte in payload:
        vector.append(byte)
    frame.buf = vector
    frame.size = FRAME_BYTES
    return frame


def per_call_us(fn: object, runs: int = RUNS) -> float:
    return timeit.timeit(fn, number=runs) / runs * 1e6  # type: ignore[arg-type]


def main() -> None:
    frame = frame_with_noise()
    assert vector_bytes_fast(frame.buf) == bytes(frame.buf)
    vad = webrtcvad.Vad(2)
    pcm = vector_bytes_fast(frame.buf)
    rows = [
        ("bytes(frame.buf)", lambda: bytes(frame.buf)),
        ("bytearray(frame.buf)", lambda: bytearray(frame.buf)),
        ("frame.buf[:] (ByteVector)", lambda: frame.buf[:]),
        ("ctypes begin/end + string_at", lambda: vector_bytes_fast(frame.buf)),
        ("webrtcvad.is_speech", lambda: vad.is_speech(pcm, 8000)),
    ]
    print(f"layout check passed: {FAST_COPY}; {FRAME_BYTES}-byte frames, {RUNS} runs each")
    for name, fn in rows:
        print(f"{name:34s} {per_call_us(fn):8.2f} us/frame")

    ep = pj.Endpoint()
    ep.libCreate()
    config = pj.EpConfig()
    config.uaConfig.threadCnt = 0
    config.uaConfig.mainThreadOnly = True
    config.logConfig.consoleLevel = 0
    config.medConfig.clockRate = 8000
    ep.libInit(config)
    from softphone.media import SpeechPort

    ports = [SpeechPort("bench", lambda notice: None)]
    ports[0].assign("bench-call")  # an unassigned port returns before the copy
    cost = per_call_us(lambda: ports[0].onFrameReceived(frame))
    print(f"{'SpeechPort.onFrameReceived body':34s} {cost:8.2f} us/frame")
    ports.clear()
    ep.libDestroy()


if __name__ == "__main__":
    main()
