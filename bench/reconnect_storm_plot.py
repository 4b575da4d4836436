"""Plot reconnect storms side by side: collectors live again vs seconds since the new gateway was ready.

    .venv/bin/python bench/reconnect_storm_plot.py OUT.png LABEL=bench/results/a.json LABEL=bench/results/b.json

One curve per (file, restart variant): the cumulative number of collectors live again
per second since the restarted gateway was ready (`handshakes_per_second.buckets_from_ready`
of `bench/reconnect_storm.py`'s JSON). Writes the PNG itself (zlib, no plotting library:
the venv has none), with a legend written beside it as text (colours in order) because
this writer draws no letters; tick labels on the axes are digits.
"""

from __future__ import annotations

import itertools
import json
import struct
import sys
import zlib
from pathlib import Path

WIDTH, HEIGHT = 900, 520
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 20, 50
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
NAMES = ["blue", "orange", "green", "red", "purple", "brown"]
DIGITS = {  # 3x5 bitmaps
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001001001001",
    "8": "111101111101111",
    "9": "111101111001111",
    ".": "000000000000010",
}


class Canvas:
    def __init__(self) -> None:
        self.pixels = bytearray(b"\xff" * (WIDTH * HEIGHT * 3))

    def dot(self, x: int, y: int, colour: tuple[int, int, int]) -> None:
        if 0 <= x < WIDTH and 0 <= y < HEIGHT:
            i = (y * WIDTH + x) * 3
            self.pixels[i : i + 3] = bytes(colour)

    def line(self, x0: float, y0: float, x1: float, y1: float, colour: tuple[int, int, int], width: int = 1) -> None:
        steps = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        for s in range(steps + 1):
            x = x0 + (x1 - x0) * s / steps
            y = y0 + (y1 - y0) * s / steps
            for dx, dy in itertools.product(range(width), repeat=2):
                self.dot(round(x) + dx, round(y) + dy, colour)

    def text(self, x: int, y: int, value: str, scale: int = 2) -> None:
        for n, char in enumerate(value):
            bitmap = DIGITS.get(char)
            if bitmap is None:
                continue
            for k, bit in enumerate(bitmap):
                if bit == "1":
                    for dx, dy in itertools.product(range(scale), repeat=2):
                        self.dot(x + n * 4 * scale + (k % 3) * scale + dx, y + (k // 3) * scale + dy, (0, 0, 0))

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(self.pixels[y * WIDTH * 3 : (y + 1) * WIDTH * 3]) for y in range(HEIGHT))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)
        body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
        return b"\x89PNG\r\n\x1a\n" + body


def curves(label: str, path: Path) -> list[tuple[str, list[int]]]:
    result = json.loads(path.read_text())
    found = []
    for variant, figure in result.get("restarts", {}).items():
        buckets = figure["handshakes_per_second"]["buckets_from_ready"]
        found.append((f"{label} {variant}", list(itertools.accumulate(buckets))))
    return found


def nice(value: float) -> float:
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000):
        if value / step <= 8:
            return step
    return 10000


def main() -> None:
    out = Path(sys.argv[1])
    series = []
    for argument in sys.argv[2:]:
        label, _, path = argument.partition("=")
        series += curves(label, Path(path))
    max_x = max(len(s) for _, s in series) or 1
    max_y = max(max(s, default=0) for _, s in series) or 1
    canvas = Canvas()
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def at(x: float, y: float) -> tuple[float, float]:
        return LEFT + plot_w * x / max_x, TOP + plot_h * (1 - y / max_y)

    black = (0, 0, 0)
    canvas.line(LEFT, TOP, LEFT, TOP + plot_h, black)
    canvas.line(LEFT, TOP + plot_h, LEFT + plot_w, TOP + plot_h, black)
    x_step, y_step = nice(max_x), nice(max_y)
    tick = 0.0
    while tick <= max_x:
        px, py = at(tick, 0)
        canvas.line(px, py, px, py + 5, black)
        canvas.text(int(px) - 6, int(py) + 10, f"{tick:g}")
        tick += x_step
    tick = 0.0
    while tick <= max_y:
        px, py = at(0, tick)
        canvas.line(px - 5, py, px, py, black)
        canvas.line(px, py, LEFT + plot_w, py, (225, 225, 225))
        canvas.text(5, int(py) - 5, f"{tick:g}")
        tick += y_step
    legend = []
    for (name, values), colour, colour_name in zip(series, itertools.cycle(COLOURS), itertools.cycle(NAMES)):
        points = [at(0, 0)] + [at(i + 1, v) for i, v in enumerate(values)]
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            canvas.line(x0, y0, x1, y1, colour, width=2)
        legend.append(f"{colour_name}: {name}")
    out.write_bytes(canvas.png())
    note = out.with_suffix(".txt")
    note.write_text(
        "x: seconds since the restarted gateway was ready; y: collectors live again (cumulative)\n"
        + "\n".join(legend)
        + "\n"
    )
    print(f"wrote {out} and {note}")
    print("\n".join(legend))


if __name__ == "__main__":
    main()
