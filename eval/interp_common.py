"""Shared plumbing of the interpretability analyses (peak locations, heat maps,
feature change under occlusion): where a synthetic world keeps its files, how a
model is loaded and run, and how figures are written.

Nothing here is in the original code; it exists so that the three analyses take
models and data the same way.
"""
import dataclasses
import os

import numpy as np

from interp_fr.data.image_scaling import to_unit_range

FACE_SIZE = 96


@dataclasses.dataclass(frozen=True)
class WorldPaths:
    """The files of a synthetic world (or of a real setup laid out the same way)."""
    root: str

    @property
    def ijba_images(self):
        return os.path.join(self.root, "DATA", "IJBA_recrop_images_96_96_test.dat")

    @property
    def ijba_landmarks(self):
        return os.path.join(self.root, "aux", "landmarks68_IJBA.mat")

    @property
    def triangulation(self):
        return os.path.join(self.root, "aux", "tVM.mat")

    @property
    def frontal_template(self):
        return os.path.join(self.root, "aux", "landmark68_7.mat")

    @property
    def protocol_dir(self):
        return os.path.join(self.root, "IJB-A")

    @property
    def dataset_mat(self):
        return os.path.join(self.root, "IJB-A", "dataset.mat")

    @property
    def ijba_attributes(self):
        return os.path.join(self.root, "attributes", "ijba_attributes.npz")


def make_forward(model):
    """A traced inference call: float32 [b, 96, 96, 3] -> dict of numpy-able
    ``feature`` [b, D] and ``feature_map`` [b, H, W, C].

    Accepts an `InterpFRNet` or any callable already returning such a dict
    (tests pass hand-built Keras models or plain functions).
    """
    from interp_fr.model import InterpFRNet
    if isinstance(model, InterpFRNet):
        from interp_fr.features import keras_forward
        return keras_forward(model)
    return model


def _padded_call(forward, batch, batch_size):
    """``forward`` on a batch padded to ``batch_size`` rows, outputs sliced back:
    one traced shape for every batch, so a short last batch does not retrace."""
    n = len(batch)
    if n < batch_size:
        pad = np.zeros((batch_size - n,) + batch.shape[1:], batch.dtype)
        batch = np.concatenate([batch, pad])
    out = forward(np.ascontiguousarray(batch, np.float32))
    return {k: np.asarray(v)[:n] for k, v in out.items()
            if k in ("feature", "feature_map")}


def resize_maps(maps, size):
    """Maps [b, h, w, C] brought to [b, size, size, C] with the hypercolumn's
    legacy bilinear resize (the way the model itself up-samples k4_2); maps
    already of that size are returned unchanged."""
    maps = np.asarray(maps, np.float32)
    if size is None or maps.shape[1:3] == (size, size):
        return maps
    from interp_fr.layers import legacy_bilinear_resize
    return np.asarray(legacy_bilinear_resize(maps, (size, size)))


def run_forward(forward, images, batch_size=64, want_maps=False):
    """Runs ``forward`` over an in-memory image array in batches.

    Args:
        forward: see `make_forward`.
        images: float32 [N, 96, 96, 3] in [-1, 1] (uint8 is converted).
        want_maps: also return the feature maps.

    Returns:
        features float64 [N, D] (and maps float32 [N, H, W, C] if asked).
    """
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = to_unit_range(images)
    feats, maps = [], []
    for start in range(0, len(images), batch_size):
        out = _padded_call(forward, images[start:start + batch_size], batch_size)
        feats.append(out["feature"].astype(np.float64))
        if want_maps:
            maps.append(out["feature_map"].astype(np.float32))
    d = feats[0].shape[1] if feats else 0
    features = np.concatenate(feats) if feats else np.zeros((0, d))
    if want_maps:
        return features, (np.concatenate(maps) if maps else None)
    return features


def iter_dat_maps(forward, dat_images, num_images, batch_size=64, map_size=None):
    """Feature maps of the first ``num_images`` images of a ``.dat``, in chunks.

    Args:
        map_size: if given, maps of another size are resized to it
            (`resize_maps`).

    Yields:
        float32 [b, H, W, C] in file order (only the chunks, so that 1000 maps
        of 24x24x320 never sit in memory at once).
    """
    total = min(int(num_images), len(dat_images))
    for start in range(0, total, batch_size):
        stop = min(total, start + batch_size)
        imgs = to_unit_range(dat_images.read_range(start, stop))
        yield resize_maps(_padded_call(forward, imgs, batch_size)["feature_map"],
                          map_size)


def load_model(source, variant=None, df_dim=None, gfc_dim=None, dfc_dim=None,
               n_subjects=None, dataset="CASIA", batch_size=64, gf_dim=32):
    """Loads an `InterpFRNet` through the project's one loader
    (`interp_fr.model_loading.load_keras_model`).

    Args:
        source: anything that loader reads (``*.weights.h5``, a checkpoint
            folder or prefix, a frozen graph, a SavedModel), or a
            ``checkpoint_dir`` as in training: when all three widths are given
            and the run folder they name (`interp_fr.training.TrainConfig.model_dir`:
            ``dataset``, ``batch_size``, ``gf_dim`` and the widths) exists under
            it, that run is loaded.
        variant, df_dim, gfc_dim, dfc_dim, n_subjects: None reads them off the
            stored weights; given values must agree with them ("full" asks for
            nothing, so a base CNN loads under the default).

    Returns:
        the built model.
    """
    from interp_fr import model_loading, training
    from interp_fr.model import VARIANT_FULL
    path = os.fspath(source)
    if os.path.isdir(path) and None not in (df_dim, gfc_dim, dfc_dim):
        named = training.TrainConfig(checkpoint_dir=path, dataset=dataset,
                                     batch_size=batch_size, gf_dim=gf_dim, df_dim=df_dim,
                                     gfc_dim=gfc_dim, dfc_dim=dfc_dim).model_dir
        if os.path.isdir(named):
            path = named
    overrides = {k: v for k, v in (("df_dim", df_dim), ("gfc_dim", gfc_dim),
                                   ("dfc_dim", dfc_dim), ("n_subjects", n_subjects))
                 if v is not None}
    if variant not in (None, VARIANT_FULL):
        overrides["variant"] = variant
    return model_loading.load_keras_model(path, **overrides)[0]


def define_model_flags(flags, world_help="Synthetic world (or a folder laid out the "
                       "same way)."):
    """Defines the flags that name the world and the model to analyse.

    Shared by the analysis commands (filter heat maps, occlusion analysis); read
    them back with `model_from_flags`.
    """
    flags.DEFINE_string("world_dir", None, world_help)
    flags.DEFINE_string("source", None, "Keras .weights.h5 file or checkpoint folder.")
    flags.DEFINE_string("variant", None, "Model variant (default: read off the weights).")
    flags.DEFINE_integer("df_dim", None, "Model width (default: read off the weights).")
    flags.DEFINE_integer("gfc_dim", None, "Channels of k4_2 (default: read off the weights).")
    flags.DEFINE_integer("dfc_dim", None, "Channels of k5 (default: read off the weights).")
    flags.DEFINE_string("dataset", "CASIA", "Checkpoint naming: dataset.")
    flags.DEFINE_integer("ckpt_batch_size", 64, "Checkpoint naming: batch size.")


def model_from_flags(f):
    """The model named by the flags of `define_model_flags`."""
    return load_model(f.source, variant=f.variant, df_dim=f.df_dim, gfc_dim=f.gfc_dim,
                      dfc_dim=f.dfc_dim, dataset=f.dataset, batch_size=f.ckpt_batch_size)
