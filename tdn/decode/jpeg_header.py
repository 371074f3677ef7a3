"""A JPEG file's markers, walked as stb_image walks them (no entropy decoding).

Gives what the pixel arithmetic needs and libraries report unreliably (sampling factors as
(H, V) straight from SOF; JFIF and Adobe APP14 flags that decide whether three components
are YCbCr or RGB), and says why stb_image would refuse a file, so that such files go to
Pillow instead of getting pixels Darknet could never have seen.
"""

from __future__ import annotations

from dataclasses import dataclass

_SOF = (0xC0, 0xC1, 0xC2)  # baseline, extended sequential, progressive: all stb accepts
_SOS, _EOI, _DNL, _DRI, _DQT, _DHT, _COM = 0xDA, 0xD9, 0xDC, 0xDD, 0xDB, 0xC4, 0xFE


class NotForStb(Exception):
    """The file is not one stb_image would decode; the message says why."""


@dataclass(frozen=True)
class Component:
    id: int
    h: int
    v: int


@dataclass(frozen=True)
class JpegHeader:
    width: int
    height: int
    components: tuple[Component, ...]
    jfif: bool
    adobe_transform: int  # -1: no Adobe APP14 segment
    progressive: bool = False

    @property
    def is_rgb(self) -> bool:
        """stb passes three components through as RGB, without colour conversion."""
        ids_rgb = tuple(c.id for c in self.components) == (ord("R"), ord("G"), ord("B"))
        return len(self.components) == 3 and (ids_rgb or (self.adobe_transform == 0 and not self.jfif))


def _u16(data: bytes, at: int) -> int:
    if at + 2 > len(data):
        raise NotForStb(f"truncated at byte {at}")
    return (data[at] << 8) | data[at + 1]


def _marker(data: bytes, at: int) -> tuple[int, int]:
    """stbi__get_marker: 0xFF, fill bytes, the marker code; returns (code, offset after it)."""
    if at >= len(data) or data[at] != 0xFF:
        raise NotForStb(f"expected a marker at byte {at}")
    while at < len(data) and data[at] == 0xFF:
        at += 1
    if at >= len(data):
        raise NotForStb("file ends inside a marker")
    return data[at], at + 1


def parse(data: bytes) -> JpegHeader:
    """Walk every marker from SOI to EOI, checking what stb_image checks."""
    if data[:2] != b"\xff\xd8":
        raise NotForStb("no SOI marker")
    at = 2
    frame: tuple[int, int, tuple[Component, ...]] | None = None
    jfif, adobe, progressive = False, -1, False
    while True:
        code, at = _marker(data, at)
        if code == _EOI:
            break
        length = _u16(data, at)
        segment = data[at + 2:at + length]
        if len(segment) != length - 2 or length < 2:
            raise NotForStb(f"segment 0x{code:02X} at byte {at - 2} runs past the end of the file")
        if code in _SOF:
            if frame is not None:
                raise NotForStb(f"a second frame header at byte {at - 2}")
            frame = _frame(segment, at)
            progressive = code == 0xC2
        elif code == _SOS:
            if frame is None:
                raise NotForStb(f"scan before the frame header at byte {at - 2}")
            _scan(segment, frame[2], code_at=at - 2, progressive=progressive)
            at = _after_entropy_coded_data(data, at + length)
            continue
        elif 0xE0 <= code <= 0xEF or code == _COM:
            if code == 0xE0 and segment[:5] == b"JFIF\x00":
                jfif = True
            if code == 0xEE and len(segment) >= 12 and segment[:6] == b"Adobe\x00":
                adobe = segment[11]
        elif code == _DQT:
            _check_dqt(segment, at)
        elif code == _DHT:
            _check_dht(segment, at)
        elif code == _DRI or code == _DNL:
            if length != 4:
                raise NotForStb(f"bad DRI/DNL length at byte {at - 2}")
        else:
            raise NotForStb(f"marker 0x{code:02X} at byte {at - 2} (stb_image reads only baseline and "
                            "progressive Huffman JPEG)")
        at += length
    if frame is None:
        raise NotForStb("no frame header")
    width, height, components = frame
    return JpegHeader(width, height, components, jfif, adobe, progressive)


def _after_entropy_coded_data(data: bytes, at: int) -> int:
    """Offset of the first marker after a scan's data: a 0xFF that is not a stuffed 0xFF00,
    a restart marker or a fill byte."""
    while True:
        at = data.find(b"\xff", at)
        if at < 0 or at + 1 >= len(data):
            raise NotForStb("file ends inside entropy-coded data (no EOI)")
        following = data[at + 1]
        if following != 0 and not 0xD0 <= following <= 0xD7 and following != 0xFF:
            return at
        at += 1


def _frame(segment: bytes, at: int) -> tuple[int, int, tuple[Component, ...]]:
    if len(segment) < 9:
        raise NotForStb(f"short frame header at byte {at}")
    precision, height, width, count = segment[0], _u16(segment, 1), _u16(segment, 3), segment[5]
    if precision != 8:
        raise NotForStb(f"{precision}-bit samples (stb_image reads 8-bit JPEG only)")
    if height == 0 or width == 0:
        raise NotForStb("zero width or height in the frame header")
    if count not in (1, 3, 4) or len(segment) != 6 + 3 * count:
        raise NotForStb(f"{count} components (stb_image reads 1, 3 or 4)")
    components = []
    for i in range(count):
        ident, factors, table = segment[6 + 3 * i:9 + 3 * i]
        h, v = factors >> 4, factors & 15
        if not (1 <= h <= 4 and 1 <= v <= 4) or table > 3:
            raise NotForStb(f"bad sampling factors or quantisation table for component {i}")
        components.append(Component(ident, h, v))
    return width, height, tuple(components)


def _scan(segment: bytes, components: tuple[Component, ...], code_at: int, progressive: bool) -> None:
    count = segment[0] if segment else 0
    if not 1 <= count <= min(4, len(components)) or len(segment) != 4 + 2 * count:
        raise NotForStb(f"bad scan header at byte {code_at}")
    ids = {c.id for c in components}
    if any(segment[1 + 2 * i] not in ids for i in range(count)):
        raise NotForStb(f"scan names an unknown component at byte {code_at}")
    if any(segment[2 + 2 * i] >> 4 > 3 or segment[2 + 2 * i] & 15 > 3 for i in range(count)):
        raise NotForStb(f"bad Huffman table number at byte {code_at}")
    start, end, approx = segment[1 + 2 * count:4 + 2 * count]
    if progressive:
        if start > 63 or end > 63 or start > end or approx >> 4 > 13 or approx & 15 > 13:
            raise NotForStb(f"bad progressive scan parameters at byte {code_at}")
    elif start != 0 or approx != 0:
        raise NotForStb(f"bad sequential scan parameters at byte {code_at}")


def _check_dqt(segment: bytes, at: int) -> None:
    pos = 0
    while pos < len(segment):
        precision, table = segment[pos] >> 4, segment[pos] & 15
        if precision > 1 or table > 3:
            raise NotForStb(f"bad quantisation table header at byte {at + 2 + pos}")
        pos += 1 + 64 * (precision + 1)
    if pos != len(segment):
        raise NotForStb(f"bad quantisation table length at byte {at}")


def _check_dht(segment: bytes, at: int) -> None:
    pos = 0
    while pos < len(segment):
        kind, table = segment[pos] >> 4, segment[pos] & 15
        if kind > 1 or table > 3 or pos + 17 > len(segment):
            raise NotForStb(f"bad Huffman table header at byte {at + 2 + pos}")
        pos += 17 + sum(segment[pos + 1:pos + 17])
    if pos != len(segment):
        raise NotForStb(f"bad Huffman table length at byte {at}")
