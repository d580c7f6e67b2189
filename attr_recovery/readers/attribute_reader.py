"""p(a | x) as one object: every attribute the estimators give, by name.

Not in the original code. `AttributeReader` joins the trained multi-head
`AttributeEstimator`, the `LandmarkEstimator` and the landmark geometry of
`face_geometry`: ``reader(images)`` returns a dict name -> float64 [N] of
scalar readouts (regression heads in natural units, classification heads as
expected readout values, the ``lm_*`` pose and descriptors from the estimated
landmarks). Any object with this call signature can stand in for it in the
significance and counterfactual code (the tests use analytic ones).
"""
import numpy as np
import tensorflow as tf

from attr_recovery.readers import face_geometry
from interp_fr.data.image_scaling import as_unit_images


class AttributeReader:
    """Images -> attributes.

    Args:
      attribute_model: an `estimators.AttributeEstimator` or None.
      landmark_model: an `estimators.LandmarkEstimator` or None.
      batch_size: images per forward pass.

    Call: images [N, H, W, 3] (uint8, or float in [-1, 1]) showing the 96 px
    face frame at any resolution -> dict name -> float64 numpy [N]; with
    ``probabilities=True`` also ``name + "/probs"`` [N, C] for classification
    heads.
    """

    def __init__(self, attribute_model=None, landmark_model=None, batch_size=128):
        if attribute_model is None and landmark_model is None:
            raise ValueError("an AttributeReader needs at least one model")
        self.attribute_model = attribute_model
        self.landmark_model = landmark_model
        self.batch_size = int(batch_size)
        self._attr_fn = (None if attribute_model is None else
                         tf.function(lambda x: attribute_model.readout(x, training=False),
                                     reduce_retracing=True))
        self._lm_fn = (None if landmark_model is None else
                       tf.function(lambda x: landmark_model(x, training=False)["landmarks"],
                                   reduce_retracing=True))

    @property
    def heads(self):
        """The attribute heads (tuple of `AttributeSpec`)."""
        return () if self.attribute_model is None else self.attribute_model.heads

    @property
    def names(self):
        """Names of the scalar readouts, heads first, then ``lm_*``."""
        out = [h.name for h in self.heads]
        if self.landmark_model is not None:
            out += list(face_geometry.LANDMARK_ATTRIBUTES)
        return out

    def landmarks(self, images):
        """Estimated landmarks [N, 68, 2] in pixels of the 96 px frame (float64)."""
        if self.landmark_model is None:
            raise ValueError("this reader has no landmark model")
        x = as_unit_images(images)
        out = [np.asarray(self._lm_fn(tf.constant(x[i:i + self.batch_size])))
               for i in range(0, len(x), self.batch_size)]
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 68, 2))

    def __call__(self, images, probabilities=False):
        x = as_unit_images(images)
        out = {}
        if self.attribute_model is not None:
            parts = [self._attr_fn(tf.constant(x[i:i + self.batch_size]))
                     for i in range(0, len(x), self.batch_size)]
            for key in (parts[0] if parts else {}):
                if key.endswith("/probs") and not probabilities:
                    continue
                out[key] = np.concatenate([np.asarray(p[key]) for p in parts]
                                          ).astype(np.float64)
        if self.landmark_model is not None and len(x):
            out.update(face_geometry.landmark_attributes(self.landmarks(x)))
        return out
