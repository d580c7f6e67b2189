"""What a recogniser carries: held-out probes, the world's sets."""
import numpy as np
import pytest

from attr_recovery.analysis import recogniser_content as rc
from interp_fr.data import synthetic_world
from tests.helpers import learning


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("world"))
    synthetic_world.build_world(out, synthetic_world.WorldConfig(
        train_subjects=12, train_images_per_subject=8, test_subjects=10,
        test_images_min=4, test_images_max=5, num_splits=2, seed=learning.seed(2)))
    return rc.world_sets(out)


def test_world_sets_and_held_out_probes(sets):
    assert sets.train_images.shape == (96, 96, 96, 3)
    assert len(sets.test_images) == len(sets.test_attributes["subject"])
    assert len(sets.train_images) == len(sets.train_attributes["subject"])

    # A "recogniser" whose representation is the mean colour of the cheeks
    # carries skin colour to new people and no pose.
    def cheeks(x):
        x = np.asarray(x, np.float32)
        return x[:, 55:70, 20:35].mean(axis=(1, 2)) + 1e-3 * np.random.default_rng(
            0).normal(size=(len(x), 3))
    probes = rc.heldout_probes(cheeks, sets, names=("skin_g", "yaw"))
    assert probes["skin_g"] > 0.5 > probes["yaw"]
