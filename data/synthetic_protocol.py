"""IJB-A-style 10-split protocols over the synthetic test images.

Mirrors the structure of the real protocol (shared/ijba_protocol/README.md):
per split, a subset of the test subjects; each subject's images are partitioned
into templates; verification compares every same-subject template pair and a
sample of different-subject pairs; search has one gallery template for about
two thirds of the split's subjects and probes for all of them (closed- and
open-set); ``train_N`` holds the templates of the subjects outside the split.
"""
import dataclasses

import numpy as np

from interp_fr.data import ijba_protocol

@dataclasses.dataclass
class TestImageInfo:
    """What the protocol needs to know of each synthetic test image (arrays [N])."""
    subject: np.ndarray      # subject id (IJB-A style, not 0-based)
    sighting: np.ndarray     # sighting id of the image
    media: np.ndarray        # media id
    landmarks: np.ndarray    # [N, 2, 76]
    yaw: np.ndarray
    visibility: np.ndarray   # [N, 3] forehead, eyes, nose-mouth visible
    indoor: np.ndarray
    gender: np.ndarray
    skin_tone: np.ndarray
    age: np.ndarray
    facial_hair: np.ndarray


def metadata_table(info, rows, template_ids):
    """The protocol table of image ``rows`` under ``template_ids``.

    Args:
        info: `TestImageInfo`.
        rows: int [R] 0-based test image rows.
        template_ids: int [R] the template each row belongs to.

    Returns:
        `ijba_protocol.ProtocolTable`.
    """
    rows = np.asarray(rows, np.int64)
    lm = info.landmarks[rows]
    # IJB-A's three points: right eye, left eye (subject's), nose base.
    right_eye = lm[:, :, 36:42].mean(axis=2)
    left_eye = lm[:, :, 42:48].mean(axis=2)
    nose = lm[:, :, 33]
    return ijba_protocol.make_table(
        template_ids, info.subject[rows], info.sighting[rows],
        mediaID=info.media[rows], frame=np.full(len(rows), np.nan),
        bbox=np.tile([0.0, 0.0, 96.0, 96.0], (len(rows), 1)),
        landmark=np.concatenate([right_eye, left_eye, nose], axis=1),
        faceYaw=info.yaw[rows], visibility=info.visibility[rows],
        indoor=info.indoor[rows], gender=info.gender[rows],
        skinTone=info.skin_tone[rows], age=info.age[rows],
        facialHair=info.facial_hair[rows])


def _partition_templates(rng, image_rows, max_templates):
    """Splits one subject's image rows into 2..max_templates non-empty templates."""
    rows = rng.permutation(image_rows)
    k = int(rng.integers(2, max(2, min(max_templates, len(rows))) + 1))
    cuts = np.sort(rng.choice(np.arange(1, len(rows)), size=k - 1, replace=False))
    return np.split(rows, cuts)


def build_splits(info, num_splits=10, seed=0, split_fraction=0.8,
                 gallery_fraction=2 / 3, impostor_ratio=5, max_templates=4):
    """Builds the per-split protocol tables.

    Returns:
        list of dicts (one per split) with keys ``comparison`` (int [K, 2]),
        ``verify_metadata``, ``search_gallery``, ``search_probe`` and ``train``
        (each a `ijba_protocol.ProtocolTable`), the keyword arguments of
        `ijba_protocol.write_split`.
    """
    subjects = np.unique(info.subject)
    rows_of = {s: np.nonzero(info.subject == s)[0] for s in subjects}
    next_template = 1
    splits = []
    for split in range(num_splits):
        rng = np.random.default_rng((seed, split, 0x1B4A))
        chosen = np.sort(rng.choice(subjects, size=max(2, int(round(
            split_fraction * len(subjects)))), replace=False))
        others = np.setdiff1d(subjects, chosen)
        templates = []  # (template id, subject, rows)
        for s in chosen:
            for part in _partition_templates(rng, rows_of[s], max_templates):
                templates.append((next_template, s, part))
                next_template += 1
        train_templates = []
        for s in others:
            for part in _partition_templates(rng, rows_of[s], max_templates):
                train_templates.append((next_template, s, part))
                next_template += 1
        if next_template >= 2 ** 16:
            raise ValueError("too many templates for uint16 template ids")

        def table(tpls):
            if not tpls:
                return metadata_table(info, np.zeros(0, np.int64), np.zeros(0))
            rows = np.concatenate([t[2] for t in tpls])
            tids = np.concatenate([np.full(len(t[2]), t[0]) for t in tpls])
            return metadata_table(info, rows, tids)

        tid = np.array([t[0] for t in templates])
        tsub = np.array([t[1] for t in templates])
        same = tsub[:, None] == tsub[None, :]
        upper = np.triu(np.ones_like(same), k=1)
        genuine = np.argwhere(same & upper)
        impostor_all = np.argwhere(~same & upper)
        n_imp = min(len(impostor_all), impostor_ratio * len(genuine))
        impostor = impostor_all[rng.choice(len(impostor_all), n_imp, replace=False)]
        pairs = np.concatenate([genuine, impostor])
        pairs = pairs[rng.permutation(len(pairs))]
        comparisons = tid[pairs]

        gallery_subjects = rng.choice(chosen, size=max(1, int(round(
            gallery_fraction * len(chosen)))), replace=False)
        gallery, probe, seen = [], [], set()
        for t in templates:
            if t[1] in gallery_subjects and t[1] not in seen:
                gallery.append(t)
                seen.add(t[1])
            else:
                probe.append(t)
        splits.append({
            "comparison": comparisons,
            "verify_metadata": table(templates),
            "search_gallery": table(gallery),
            "search_probe": table(probe),
            "train": table(train_templates),
        })
    return splits
