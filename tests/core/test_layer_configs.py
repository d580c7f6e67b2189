"""Every layer of the model, and the model, rebuilds from its config (registered
with Keras under "interp_fr") and computes the same outputs with the same weights;
a whole model saved as a .keras archive loads back without custom_objects."""
import keras
import numpy as np
import pytest

from interp_fr import layers
from interp_fr.model import InterpFRNet

X = np.random.default_rng(0).normal(size=(2, 12, 12, 4)).astype(np.float32)


@pytest.mark.parametrize("layer, x", [
    (layers.TF1Conv2D(6, 4, kernel_size=3, strides=2), X),
    (layers.TF1Linear(5, 4), X[:, 0, 0, :]),
    (layers.TF1BatchNorm(4, momentum=0.8, epsilon=1e-3), X),
    (layers.PeakMask(k=7), X),
])
def test_layer_round_trips_through_its_config(layer, x):
    want = np.asarray(layer(x))
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(np.asarray(clone(x)), want)
    assert keras.saving.get_registered_name(type(layer)).startswith("interp_fr>")


def test_model_round_trips_and_loads_from_a_keras_archive(tmp_path):
    model = InterpFRNet(df_dim=4, gfc_dim=8, dfc_dim=6, n_subjects=3, variant="full",
                        dropout_keep_prob=0.8)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 96, 96, 3)).astype(np.float32)
    want = model(x, training=False)["feature"].numpy()
    clone = InterpFRNet.from_config(model.get_config())
    clone(x)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone(x, training=False)["feature"].numpy(), want)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, InterpFRNet) and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded(x, training=False)["feature"].numpy(), want,
                               rtol=0, atol=1e-6)
