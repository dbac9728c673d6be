"""Pictures side by side with a caption above each, for the docs (benchmarks' sheets)."""
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import images  # noqa: E402

LINE = 14  # pixels per caption line (PIL's default font)
GAP = 8


def write_sheet(path, pictures, captions):
    """pictures: RGB arrays, 0..255; captions: one string each, lines split by newlines. JPEG or PNG by the name."""
    lines = max(caption.count('\n') + 1 for caption in captions)
    height = max(picture.shape[0] for picture in pictures)
    width = sum(picture.shape[1] for picture in pictures) + GAP * (len(pictures) - 1)
    canvas = Image.new('RGB', (width, height + lines * LINE + 4), 'white')
    draw, x = ImageDraw.Draw(canvas), 0
    for picture, caption in zip(pictures, captions):
        for row, text in enumerate(caption.split('\n')):
            draw.text((x + 2, 2 + row * LINE), text, fill='black')
        canvas.paste(Image.fromarray(images.to_uint8(np.asarray(picture))), (x, lines * LINE + 4))
        x += picture.shape[1] + GAP
    canvas.save(path, quality=90)
