"""Small, valid, clearly simulated audio files for the scripted scenarios.

Each file is a real WAV (8 kHz, 16-bit mono PCM, made with the stdlib ``wave`` module):
a few seconds of tones, one short beep per utterance at a pitch per speaker, so it plays
in any player and is obviously not a recording of anyone. The scenario key travels inside
the file in a standard RIFF ``LIST``/``INFO`` comment chunk, which players ignore and
:func:`scenario_key` reads back, so the sandbox's Deepgram can tell which script the
bytes it was sent belong to (the app uploads the bytes it downloaded from CallRail).
"""

from __future__ import annotations

import io
import math
import re
import struct
import wave
from collections.abc import Sequence
from functools import lru_cache

CONTENT_TYPE = "audio/wav"
SAMPLE_RATE = 8000
BEEP_SECONDS = 0.25
MAX_BEEPS = 16  # at most 4 s of audio, however long the script
SPEAKER_HZ = (440.0, 660.0)
AMPLITUDE = 8000

_MARKER = b"otto-sandbox-scenario="
_KEY = re.compile(re.escape(_MARKER) + rb"([a-z0-9_]+)")


def render(key: str, speakers: Sequence[int]) -> bytes:
    """A WAV file for the scenario ``key`` whose utterances are by ``speakers``."""
    return _render(key, tuple(speakers))


@lru_cache(maxsize=32)
def _render(key: str, speakers: tuple[int, ...]) -> bytes:
    frames = bytearray()
    per_beep = int(SAMPLE_RATE * BEEP_SECONDS)
    silence = bytes(2 * per_beep // 5)
    for speaker in speakers[:MAX_BEEPS] or (0,):
        hz = SPEAKER_HZ[speaker % len(SPEAKER_HZ)]
        for n in range(per_beep):
            sample = int(AMPLITUDE * math.sin(2 * math.pi * hz * n / SAMPLE_RATE))
            frames += struct.pack("<h", sample)
        frames += silence

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(bytes(frames))
    return _with_info(buffer.getvalue(), key)


def _with_info(wav: bytes, key: str) -> bytes:
    """Append a ``LIST``/``INFO`` chunk (title and comment) and fix the RIFF size."""
    comment = _MARKER + key.encode() + b"; simulated audio from the Otto sandbox, not a call"
    title = b"Otto sandbox scenario " + key.encode()
    info = b"INFO" + _subchunk(b"INAM", title) + _subchunk(b"ICMT", comment)
    body = wav + _subchunk(b"LIST", info, terminate=False)
    return body[:4] + struct.pack("<I", len(body) - 8) + body[8:]


def _subchunk(tag: bytes, data: bytes, *, terminate: bool = True) -> bytes:
    if terminate:
        data += b"\x00"  # INFO strings are NUL-terminated
    padding = b"\x00" if len(data) % 2 else b""  # RIFF chunks are word-aligned
    return tag + struct.pack("<I", len(data)) + data + padding


def scenario_key(data: bytes) -> str | None:
    """The scenario key embedded in a file made by :func:`render`, or None."""
    if not data.startswith(b"RIFF"):
        return None
    match = _KEY.search(data)
    return match.group(1).decode() if match else None
