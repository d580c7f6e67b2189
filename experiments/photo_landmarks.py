"""The landmarks dlib finds on a real photograph, and the aligned crops (issue 17, part 3).

    python experiments/photo_landmarks.py --out experiments/results/photos

Reads scikit-image's ``astronaut.png`` (public domain), finds the face and its
68 landmarks (``interp_fr.data.photos``), and writes ``astronaut_landmarks.png``
(the photo's face region with the 68 points and the hand-measured eye, nose and
mouth positions of ``tests/data/test_photos.py``) and ``astronaut_aligned.png`` (the
110 px CASIA and 96 px IJB-A crops with their landmarks).
"""
import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(REPO, "experiments", "results", "photos"))
    a = p.parse_args()
    import skimage.data
    from PIL import Image, ImageDraw
    from interp_fr.data import photos, synthetic_faces
    from tests.test_photos import HAND
    image = skimage.data.astronaut()
    lm, score = photos.FaceFinder()(image)
    x0, y0, size, zoom = 150, 40, 150, 4
    crop = Image.fromarray(image).crop((x0, y0, x0 + size, y0 + size)).resize(
        (size * zoom, size * zoom), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(crop)
    for x, y in lm:
        cx, cy = (x - x0) * zoom, (y - y0) * zoom
        draw.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=(0, 255, 0))
    for x, y in HAND.values():
        cx, cy = (x - x0) * zoom, (y - y0) * zoom
        draw.line([cx - 12, cy, cx + 12, cy], fill=(255, 0, 0), width=3)
        draw.line([cx, cy - 12, cx, cy + 12], fill=(255, 0, 0), width=3)
    os.makedirs(a.out, exist_ok=True)
    crop.save(os.path.join(a.out, "astronaut_landmarks.png"))
    template = synthetic_faces.frontal_template()
    tiles = []
    for s, off in ((110, 7.0), (96, 0.0)):
        face, moved = photos.align_face(image, lm, template, s, off)
        big = Image.fromarray(face).resize((s * 3, s * 3), Image.Resampling.NEAREST)
        d = ImageDraw.Draw(big)
        for x, y in moved:
            d.ellipse([x * 3 - 2, y * 3 - 2, x * 3 + 2, y * 3 + 2], fill=(0, 255, 0))
        tiles.append(big)
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + 10, tiles[0].height), "white")
    sheet.paste(tiles[0], (0, 0))
    sheet.paste(tiles[1], (tiles[0].width + 10, 0))
    sheet.save(os.path.join(a.out, "astronaut_aligned.png"))
    print(f"detector score {score:.2f}; green: dlib's 68 points, red crosses: by hand")


if __name__ == "__main__":
    main()
