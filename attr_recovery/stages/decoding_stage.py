"""The decoding stage of the main job: a small decoder trained on the synthetic world.

``run_decoding_stage(world_dir, recognition_model, out_dir, seconds_budget)``
trains a small decoder + latent transformer (joint mode of
``attr_recovery.trainers.training``) on the world's CASIA-format training images for
the recognition model, writes ``decoding_grid.png`` (input faces next to their
decoded faces) and ``eigen_features.png`` (decoded eigen-features of the
training representations, alone and added to the mean), and returns figures:
how much closer each decoded face's representation is to its own input than
to other inputs.

``train_small_recognizer`` trains a tiny softmax face recogniser in seconds,
for callers (and tests) that have no recognition model at hand.
"""
import os
import time

import keras
import numpy as np
from PIL import Image

from attr_recovery.analysis import attack_metrics, reconstruction
from attr_recovery.nets import decoder as decoder_lib
from attr_recovery.readers.recognition import as_recognition_model
from attr_recovery.analysis.attack_metrics import identity_figures
from attr_recovery.trainers.training import DecoderTrainConfig, DecoderTrainer, ImageSource
from attr_recovery.nets.decoder import to_uint8
from interp_fr.common.atomic_io import atomic_write
from interp_fr.data import dat_files, synthetic_faces, synthetic_world
from interp_fr.common.errors import DataFileError
from interp_fr.data.image_scaling import to_unit_range

GRID_FILE = "decoding_grid.png"
GRID_UNSEEN_FILE = "decoding_grid_unseen.png"
EIGEN_FILE = "eigen_features.png"


def build_small_recognizer(input_size=32, width=16, feature_dim=64, name="small_fr"):
    """A tiny functional Keras CNN: images [N, s, s, 3] -> features [N, feature_dim].

    Three stride-2 stages of two 3x3 convs (ReLU), global average pooling and
    a linear layer; not normalised (``RecognitionModel`` normalises).
    """
    inputs = keras.Input((input_size, input_size, 3))
    x = inputs
    for i, mult in enumerate((1, 2, 4)):
        x = keras.layers.Conv2D(width * mult, 3, strides=2, padding="same",
                                activation="relu", name=f"conv{i}_a")(x)
        x = keras.layers.Conv2D(width * mult, 3, padding="same", activation="relu",
                                name=f"conv{i}_b")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(feature_dim, name="embedding")(x)
    return keras.Model(inputs, out, name=name)


def train_small_recognizer(data_dir, steps=300, batch_size=32, seed=0, input_size=32,
                           width=16, feature_dim=64, scale=16.0, learning_rate=0.003):
    """Builds `build_small_recognizer` and trains it
    (`recogniser_training.train_recogniser`: cosine softmax, random crops).

    Args:
      data_dir: CASIA-format folder (``CASIA_all_images_110_110.dat`` + list).
    Returns: (Keras model images -> features, training accuracy of the last 50 steps).
    """
    from attr_recovery.trainers.recogniser_training import train_recogniser
    keras.utils.set_random_seed(seed)
    model = build_small_recognizer(input_size, width, feature_dim)
    acc = train_recogniser(model, data_dir, steps, batch_size, seed, input_size, scale,
                           learning_rate)
    return model, acc


def _save_png(path, array):
    with atomic_write(path, "wb") as f:
        Image.fromarray(array).save(f, format="PNG")


def grid_image(rows, pad=2):
    """Rows of equally sized uint8 images [K, h, w, 3] -> one uint8 image."""
    h, w = rows[0][0].shape[:2]
    cols = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            out[pad + i * (h + pad):pad + i * (h + pad) + h,
                pad + j * (w + pad):pad + j * (w + pad) + w] = img
    return out


def _upscale(images_uint8, size):
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.NEAREST))
                     for im in images_uint8])


def _evaluation_images(source, count, per_subject=1):
    """A fixed, subject-balanced sample of ``count`` training images (sorted indices).

    ``per_subject`` images of a subject are taken in a row (1: round robin over
    all subjects, so ``count`` subjects when there are that many; k > 1:
    ``count / k`` subjects with k images each, which gives the genuine pairs a
    type-II attack figure needs).
    """
    by_subject = {}
    for i in np.argsort(source.subject_ids, kind="stable"):
        by_subject.setdefault(int(source.subject_ids[i]), []).append(int(i))
    # Each subject's images in a fixed shuffled order, taken round robin.
    queues = [list(np.random.default_rng((0x57A6, s)).permutation(ids))
              for s, ids in sorted(by_subject.items())]
    pick, count = [], min(count, len(source))
    while len(pick) < count:
        for queue in queues:
            take = min(per_subject, len(queue), count - len(pick))
            pick.extend(int(queue.pop(0)) for _ in range(take))
    return np.asarray(sorted(pick))


def _rounded(figures, digits=4):
    return {k: round(v, digits) if isinstance(v, float) else v for k, v in figures.items()}


def world_portraits(world_dir, split, subjects):
    """Canonical portraits (96 px frame) of the world's subjects, or None when
    ``world_dir`` is not a synthetic world."""
    if not os.path.isfile(os.path.join(world_dir, "world.json")):
        return None
    identities = synthetic_world.world_identities(world_dir, split)
    unique = np.unique(subjects)
    faces = synthetic_faces.render_canonical([identities[s] for s in unique],
                                             dat_files.IJBA_IMAGE_SIZE, 0.0)
    return faces[np.searchsorted(unique, subjects)]


def unseen_test_images(world_dir, data_dir, count):
    """(uint8 images, subjects) of the first ``count`` test images (subjects never
    seen in training; None for all), or None when the world has no test set or
    no subject file."""
    path = os.path.join(world_dir, synthetic_world.ATTR_DIR, "ijba_attributes.npz")
    try:
        test = dat_files.open_ijba_images(data_dir)
    except (FileNotFoundError, DataFileError):
        return None
    if not os.path.isfile(path):
        return None
    subjects = np.load(path)["subject"]
    n = min(len(test), len(subjects)) if count is None else min(count, len(test),
                                                                 len(subjects))
    if n < 4 or len(np.unique(subjects[:n])) < 2:
        return None
    return test.read_range(0, n), subjects[:n]


def _attack(decoder, rec, images, subjects, portraits, seed):
    figures = attack_metrics.attack_figures(decoder, rec, images, subjects, seed=seed,
                                            portraits=portraits)
    return _rounded(figures)


def attack_table_markdown(figures):
    """A Markdown table of the ``reconstruction attack, seen / unseen subjects``
    entries of `evaluate_decoder`'s figures."""
    lines = ["| subjects | images | type-I TAR@1e-2 | type-II TAR@1e-2 | type-I TAR@1e-3 "
             "| type-II TAR@1e-3 | real TAR@1e-2 | SSIM / PSNR vs input | SSIM / PSNR "
             "vs portrait |", "|---|---|---|---|---|---|---|---|---|"]
    for which in ("seen", "unseen"):
        a = figures.get(f"reconstruction attack, {which} subjects")
        if not a:
            continue
        portrait = (f"{a['SSIM vs portrait']:.3f} / {a['PSNR vs portrait (dB)']:.1f} dB"
                    if "SSIM vs portrait" in a else "-")
        lines.append(
            f"| {which} | {a['images']} | {a['type-I TAR@0.01']:.3f} | "
            f"{a['type-II TAR@0.01']:.3f} | {a['type-I TAR@0.001']:.3f} | "
            f"{a['type-II TAR@0.001']:.3f} | {a['real TAR@0.01']:.3f} | "
            f"{a['SSIM']:.3f} / {a['PSNR (dB)']:.1f} dB | {portrait} |")
    return "\n".join(lines)


def decoded_grid(path, inputs, decoded, portraits):
    """Writes a PNG: inputs over decoded faces (shown at the input's size) over
    the portraits.

    Args:
      path: the PNG file.
      inputs: uint8 [K, S, S, 3].
      decoded: [K, s, s, 3] in [-1, 1], or a list of such (one row each: the
        faces of several decoders).
      portraits: uint8 [K, S, S, 3] or None.
    Returns: ``path``.
    """
    decoded = decoded if isinstance(decoded, (list, tuple)) else [decoded]
    rows = [list(inputs)] + [list(_upscale(to_uint8(d), inputs.shape[1])) for d in decoded]
    if portraits is not None:
        rows.append(list(portraits))
    _save_png(path, grid_image(rows))
    return path


def evaluate_decoder(decoder, recognition_model, world_dir, out_dir, seed=0,
                     eval_images=64, attack_images=None, unseen_images=None,
                     grid_subjects=8, num_eigen=8, train_features=None):
    """Every figure and picture of a representation decoder on a synthetic world.

    Args:
      decoder: `decoder.FeatureDecoder`.
      recognition_model: anything ``recognition.as_recognition_model`` takes.
      world_dir: a synthetic world, or any folder with a CASIA-format ``DATA/``.
      out_dir: receives ``decoding_grid.png`` (training subjects: input, decoded,
        canonical portrait), ``decoding_grid_unseen.png`` (test subjects) and
        ``eigen_features.png``.
      eval_images: training images (one per subject) of the identity figures.
      attack_images: training images (four per subject) of the seen-subject
        attack figures; None: ``eval_images``.
      unseen_images: first test images of the unseen-subject figures (the
        identity figures use at most ``eval_images`` of them); None: all.
      grid_subjects: subjects per grid.
      num_eigen: eigen-features shown.
      train_features: [N, d] representations of the training set's centre crops
        if already computed (eigen-features).
    Returns: dict of figures (identity cosines and rank-1, reconstruction attack
      on seen and unseen subjects, eigenvalue share, file paths).
    """
    rec = as_recognition_model(recognition_model)
    data_dir = os.path.join(world_dir, synthetic_world.DATA_DIR)
    if not os.path.isdir(data_dir):
        data_dir = world_dir
    os.makedirs(out_dir, exist_ok=True)
    source = ImageSource(data_dir, 1)
    figures = {"representation size": rec.feature_dim, "decoder resolution": decoder.size}
    pick = _evaluation_images(source, eval_images)
    crops = source.center_crops(pick)
    ident, decoded = identity_figures(decoder, rec, crops, source.subject_ids[pick],
                                      seed=seed)
    figures.update(ident)
    test = unseen_test_images(world_dir, data_dir, unseen_images)
    if test is not None:
        n = min(eval_images, len(test[0]))
        unseen, _ = identity_figures(decoder, rec, test[0][:n], None, seed=seed)
        figures.update({f"unseen subjects: {k}": unseen[k] for k in (
            "images", "matched cosine", "random-pair cosine", "matched minus random",
            "rank-1 decoded -> input")})
    # Four images of each subject: the type-II figure needs other images of
    # the same (seen) subject.
    seen = _evaluation_images(source, attack_images or eval_images, per_subject=4)
    seen_subjects = source.subject_ids[seen]
    figures["reconstruction attack, seen subjects"] = _attack(
        decoder, rec, source.center_crops(seen), seen_subjects,
        world_portraits(world_dir, "train", seen_subjects), seed)
    if test is not None:
        figures["reconstruction attack, unseen subjects"] = _attack(
            decoder, rec, test[0], test[1], world_portraits(world_dir, "test", test[1]), seed)

    # Grids: one image per subject.
    first = {}
    for row, i in enumerate(pick):
        first.setdefault(int(source.subject_ids[i]), row)
    rows = sorted(first.values())[:grid_subjects]
    figures["grid"] = decoded_grid(
        os.path.join(out_dir, GRID_FILE), crops[rows], decoded[rows],
        world_portraits(world_dir, "train", source.subject_ids[pick][rows]))
    if test is not None:
        _, rows = np.unique(test[1], return_index=True)
        rows = rows[:grid_subjects]
        _, dec = identity_figures(decoder, rec, test[0][rows], None, seed=seed)
        figures["grid, unseen subjects"] = decoded_grid(
            os.path.join(out_dir, GRID_UNSEEN_FILE), test[0][rows], dec,
            world_portraits(world_dir, "test", test[1][rows]))

    # Eigen-features of the training representations (lfw_recon sub-task 3).
    feats = train_features if train_features is not None else rec.features(
        to_unit_range(source.center_crops(np.arange(len(source)))))
    eig = reconstruction.eigen_features(feats.T)
    k = min(num_eigen, eig.vectors.shape[1])
    vecs = eig.vectors[:, :k].T
    alone = to_uint8(decoder.decode(vecs, seed=seed))
    plus = to_uint8(decoder.decode(vecs + eig.mean[None], seed=seed))
    mean_img = to_uint8(decoder.decode(eig.mean[None], seed=seed))
    up = crops.shape[1]
    eigen_grid = grid_image([list(_upscale(mean_img, up)) + list(_upscale(alone, up)),
                             list(_upscale(mean_img, up)) + list(_upscale(plus, up))])
    eigen_path = os.path.join(out_dir, EIGEN_FILE)
    _save_png(eigen_path, eigen_grid)
    figures["top eigenvalue share"] = float(eig.values[0] / max(eig.values.sum(), 1e-30))
    figures["eigen features"] = eigen_path
    figures["reconstruction attack table"] = attack_table_markdown(figures)
    return figures


def run_decoding_stage(world_dir, recognition_model, out_dir, seconds_budget=120.0,
                       seed=0, max_steps=20000, eval_images=64, grid_subjects=8,
                       num_eigen=8, recognizer_steps=300, identity_every=4,
                       config_overrides=None, attack_images=None, unseen_images=None,
                       log=None):
    """Trains a small decoder for ``recognition_model`` and writes the stage's figures.

    Args:
      world_dir: a synthetic world (``build_world`` output) or any folder with a
        ``DATA/`` CASIA-format training set.
      recognition_model: anything ``recognition.as_recognition_model`` takes
        (our InterpFRNet, an ArcFace backbone, a Keras model, a callable); any
        representation size. None: a small recogniser is trained first.
      out_dir: receives ``decoding_grid.png``, ``eigen_features.png`` and the
        trainer's folder ``decoder/`` (checkpoint, ``decoder.json``, logs).
      seconds_budget: wall-clock budget of the whole stage. The decoder trains
        for what is left after the set-up (recogniser training when needed,
        feature caching, the untrained control) minus a reserve for the final
        evaluation and figures, estimated from the control's duration.
      seed: seed of everything random.
      max_steps: upper bound on training steps.
      eval_images: number of training images for the identity figures.
      grid_subjects: subjects shown in the grid (one image each, input above
        decoded).
      num_eigen: eigen-features shown.
      recognizer_steps: training steps of the small recogniser (only when
        ``recognition_model`` is None).
      identity_every: identity loss on every k-th step, k times the weight
        (``DecoderTrainConfig.identity_every``): R's backward pass is the most
        expensive part of a step with a full-size recognition model.
      config_overrides: dict of `DecoderTrainConfig` fields to change.
      attack_images, unseen_images: as `evaluate_decoder` (unseen_images None:
        ``eval_images``).
      log: callable(str) or None (silent).
    Returns: dict of figures (matched / random-pair cosines, their difference,
      rank-1, steps, seconds, file paths; ``"decoder folder"`` loads with
      ``decoder.load_trained_decoder``). Run again on the same ``out_dir``, the
      stage resumes the decoder's training from its checkpoint.
    """
    t_start = time.perf_counter()
    say = log or (lambda _: None)
    data_dir = os.path.join(world_dir, synthetic_world.DATA_DIR)
    if not os.path.isdir(data_dir):
        data_dir = world_dir
    os.makedirs(out_dir, exist_ok=True)
    figures = {}
    if recognition_model is None:
        t0 = time.perf_counter()
        recognition_model, acc = train_small_recognizer(data_dir, steps=recognizer_steps,
                                                        seed=seed)
        figures["small recogniser training accuracy"] = acc
        figures["small recogniser seconds"] = time.perf_counter() - t0
    rec = as_recognition_model(recognition_model)
    config = DecoderTrainConfig(data_dir=data_dir, out_dir=os.path.join(out_dir, "decoder"),
                                max_steps=max_steps, max_seconds=seconds_budget, seed=seed,
                                progress=False, tensorboard=False, save_every_steps=0,
                                log_every=100, identity_every=identity_every)
    for key, value in (config_overrides or {}).items():
        setattr(config, key, value)
    t0 = time.perf_counter()
    trainer = DecoderTrainer(config, rec, log=say)
    pick = _evaluation_images(trainer.source, eval_images)
    crops = trainer.source.center_crops(pick)
    # Control: the same figures for the untrained (or resumed) decoder; its
    # duration also sizes the reserve kept for the final evaluation.
    t_eval = time.perf_counter()
    before, _ = identity_figures(trainer.decoder, rec, crops,
                                 trainer.source.subject_ids[pick], seed=seed)
    t_eval = time.perf_counter() - t_eval
    label = "untrained" if int(trainer.step.numpy()) == 0 else "before resuming"
    figures[f"{label}: matched minus random"] = before["matched minus random"]
    figures[f"{label}: rank-1 decoded -> input"] = before["rank-1 decoded -> input"]
    if "max_seconds" not in (config_overrides or {}):
        reserve = 3.0 * t_eval + 2.0
        trainer.config.max_seconds = max(
            5.0, seconds_budget - (time.perf_counter() - t_start) - reserve)
    t0 = time.perf_counter()
    trainer.fit()
    figures["decoder folder"] = config.out_dir
    figures["training steps"] = int(trainer.step.numpy())
    figures["training seconds"] = time.perf_counter() - t0
    figures.update(evaluate_decoder(
        trainer.decoder, rec, world_dir, out_dir, seed=seed, eval_images=eval_images,
        attack_images=attack_images, unseen_images=unseen_images or eval_images,
        grid_subjects=grid_subjects, num_eigen=num_eigen,
        train_features=trainer.cache[0] if trainer.cache is not None else None))
    figures["stage seconds"] = time.perf_counter() - t_start
    return figures


def run_trained_decoder_stage(world_dir, recognition_model, decoder_folder, out_dir,
                              seed=0, eval_images=64, attack_images=256,
                              unseen_images=None, log=None):
    """The decoding stage with a decoder trained elsewhere (e.g. the shipped one).

    Loads the decoder of ``decoder_folder`` (`decoder.load_trained_decoder`),
    measures the untrained control (the same architecture, freshly initialised)
    and every `evaluate_decoder` figure (attack on ``attack_images`` training
    images and on ``unseen_images`` test images; None: all of them).

    Returns: dict of figures, with ``"decoder folder"`` and the training steps
      and seconds recorded in the folder's description when it has them.
    """
    t_start = time.perf_counter()
    decoder, description, _ = decoder_lib.load_trained_decoder(decoder_folder)
    rec = as_recognition_model(recognition_model)
    if decoder.feature_dim != rec.feature_dim:
        raise ValueError(f"{decoder_folder}: the decoder reads {decoder.feature_dim}-d "
                         f"representations, the recognition model gives {rec.feature_dim}")
    data_dir = os.path.join(world_dir, synthetic_world.DATA_DIR)
    source = ImageSource(data_dir if os.path.isdir(data_dir) else world_dir, 1)
    pick = _evaluation_images(source, eval_images)
    # Control: the same architecture with fresh weights.
    keras.utils.set_random_seed(seed)
    untrained = decoder_lib.build_decoder(description)
    before, _ = identity_figures(untrained, rec, source.center_crops(pick),
                                 source.subject_ids[pick], seed=seed)
    figures = {"untrained: matched minus random": before["matched minus random"],
               "untrained: rank-1 decoded -> input": before["rank-1 decoded -> input"],
               "decoder folder": decoder_folder}
    provenance = description.get("provenance", {})
    if "steps" in provenance:
        figures["training steps"] = provenance["steps"]
    figures.update(evaluate_decoder(decoder, rec, world_dir, out_dir, seed=seed,
                                    eval_images=eval_images, attack_images=attack_images,
                                    unseen_images=unseen_images))
    figures["stage seconds"] = time.perf_counter() - t_start
    return figures

