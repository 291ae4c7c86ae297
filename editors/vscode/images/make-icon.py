"""Draws images/icon.png: beams branching from one point, brighter where more probable.

Run from editors/vscode: `python images/make-icon.py` (numpy only).  The picture is
LLooM's idea: from the cursor, a tree of continuations, each split where the model's
alternatives pass the cutoff, every beam ending in a dot.
"""

import itertools
import struct
import zlib
from pathlib import Path

import numpy as np

SIZE = 128
SS = 4  # supersampling per axis, for smooth edges
N = SIZE * SS

BACKGROUND = np.array([30, 27, 46], float)
THREAD = np.array([255, 196, 92], float)  # warm gold, strongest beam
FAINT = np.array([120, 150, 255], float)  # cool blue, weakest beam


def bezier(p0, p1, p2, p3, steps=48):
    t = np.linspace(0, 1, steps)[:, None]
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def segment_distance(px, py, a, b):
    ab = b - a
    t = ((px - a[0]) * ab[0] + (py - a[1]) * ab[1]) / max(ab @ ab, 1e-9)
    t = np.clip(t, 0, 1)
    dx = px - (a[0] + t * ab[0])
    dy = py - (a[1] + t * ab[1])
    return np.sqrt(dx * dx + dy * dy)


def main() -> None:
    ys, xs = np.mgrid[0:N, 0:N].astype(float) / SS + 0.5 / SS
    image = np.zeros((N, N, 3)) + BACKGROUND
    alpha = np.zeros((N, N))

    # Rounded square.
    r = 26.0
    cx = np.clip(xs, r, SIZE - r)
    cy = np.clip(ys, r, SIZE - r)
    inside = np.hypot(xs - cx, ys - cy) <= r
    alpha[inside] = 1.0

    root = np.array([18.0, 64.0])
    # (split point, end point, probability) for each beam: a tree of continuations.
    beams = [
        ((46, 64), (110, 34), 0.55),
        ((46, 64), (110, 64), 1.00),
        ((46, 64), (110, 94), 0.40),
        ((78, 64), (110, 50), 0.70),
        ((78, 64), (110, 78), 0.30),
    ]
    lines = [
        (
            bezier(root, root + np.array([10.0, 0.0]), np.array([36.0, 64]), np.array([46.0, 64])),
            1.0,
        )
    ]
    for split, end, prob in beams:
        split = np.array(split, float)
        end = np.array(end, float)
        mid = (split + end) / 2
        curve = bezier(split, np.array([mid[0], split[1]]), np.array([mid[0], end[1]]), end)
        lines.append((curve, prob))

    for curve, prob in sorted(lines, key=lambda item: item[1]):
        width = 2.2 + 3.0 * prob
        colour = FAINT + (THREAD - FAINT) * prob
        dist = np.full((N, N), np.inf)
        for a, b in itertools.pairwise(curve):
            dist = np.minimum(dist, segment_distance(xs, ys, a, b))
        mask = (dist <= width / 2) & inside
        image[mask] = colour
    for _, end, prob in beams:
        colour = FAINT + (THREAD - FAINT) * prob
        mask = (np.hypot(xs - end[0], ys - end[1]) <= 4.5 + 2.5 * prob) & inside
        image[mask] = colour
    mask = (np.hypot(xs - root[0], ys - root[1]) <= 7.0) & inside
    image[mask] = [255, 255, 255]

    # Average each SS x SS block; colour weighted by coverage so edges do not darken.
    rgba = np.dstack([image * alpha[..., None], alpha])
    rgba = rgba.reshape(SIZE, SS, SIZE, SS, 4).mean(axis=(1, 3))
    cover = rgba[..., 3:4]
    rgb = np.where(cover > 0, rgba[..., :3] / np.maximum(cover, 1e-9), 0)
    pixels = np.dstack([rgb, cover * 255]).round().clip(0, 255).astype(np.uint8)

    raw = b"".join(b"\0" + row.tobytes() for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9))
    png += chunk(b"IEND", b"")
    Path(__file__).with_name("icon.png").write_bytes(png)


if __name__ == "__main__":
    main()
