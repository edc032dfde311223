"""An artifact codec for Point: a tiny text format instead of pickle."""

from __future__ import annotations

from .geometry import Point


class PointCodec:
    @staticmethod
    def encode(value: Point) -> bytes:
        return f"point:{value.x!r},{value.y!r}".encode()

    @staticmethod
    def decode(data: bytes) -> Point:
        x, y = data.decode().removeprefix("point:").split(",")
        return Point(float(x), float(y))
