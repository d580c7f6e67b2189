"""What a recogniser's representation carries, measured on a synthetic world.

A decoder can only render, and a significance ranking can only find, what the
recogniser's representation z carries. Two measures answer that directly:

* recognition on grey-scale copies of the test images (the same protocol as in
  colour): how much of the model's identity is colour;
* for each exact attribute of the world, the R^2 on the test identities of a
  ridge read-out fitted on the training identities
  (`attribute_significance.heldout_probe_r2`): whether z encodes it in a way
  that carries over to new people.

`world_sets` reads what both need from a world folder; `encoding_row` adds the
colour figures and the significance ranking with the exact attributes.
"""
import dataclasses
import os

import numpy as np

from attr_recovery.analysis import attribute_significance as sig
from attr_recovery.analysis import significance_truth
from attr_recovery.readers.recognition import as_recognition_model
from interp_fr.data import pipeline
from interp_fr.data.image_scaling import to_unit_range

OTHER_ATTRIBUTES = ("gender", "age", "facial_hair", "yaw", "pitch", "smile", "mouth_open",
                    "light_x", "occluder")
PROBED_ATTRIBUTES = (significance_truth.SHAPE_ATTRIBUTES
                     + significance_truth.COLOUR_ATTRIBUTES + OTHER_ATTRIBUTES)


@dataclasses.dataclass
class WorldSets:
    """The images and exact attributes of a world's two identity sets.

    Attributes:
        world: the world folder.
        train_images: uint8 [N, 96, 96, 3], centre crops of the training images.
        test_images: uint8 [M, 96, 96, 3], the test images (other identities).
        train_attributes, test_attributes: dicts of the world's attribute files.
    """
    world: str
    train_images: np.ndarray
    test_images: np.ndarray
    train_attributes: dict
    test_attributes: dict


def world_sets(world):
    """`WorldSets` of a synthetic world folder."""
    from interp_fr.data import dat_files, mat_files, synthetic_world
    data = os.path.join(world, synthetic_world.DATA_DIR)
    casia = dat_files.load_casia(data).images
    c = int(round(mat_files.FRONTAL_TEMPLATE_SHIFT_110))
    train = casia.read_range(0, len(casia))[:, c:c + 96, c:c + 96]
    test = dat_files.open_ijba_images(data)
    attrs = os.path.join(world, synthetic_world.ATTR_DIR)
    return WorldSets(world, train, test.read_range(0, len(test)),
                     dict(np.load(os.path.join(attrs, "casia_attributes.npz"))),
                     dict(np.load(os.path.join(attrs, "ijba_attributes.npz"))))


def grey_figures(model, sets):
    """Recognition figures of ``model`` (an InterpFRNet or anything
    `as_recognition_model` takes) on grey-scale copies of the test images
    (`recognition_report.figures_from_features`, all images)."""
    from interp_fr.eval import recognition_report
    z = sig.representations(as_recognition_model(model),
                            to_unit_range(pipeline.grey_copies(sets.test_images)))
    return recognition_report.figures_from_features(z, z, sets.world)["all"]


def representations(model, sets):
    """(z of the training images [N, d], z of the test images [M, d])."""
    rec = as_recognition_model(model)
    return (sig.representations(rec, to_unit_range(sets.train_images)),
            sig.representations(rec, to_unit_range(sets.test_images)))


def heldout_probes(model, sets, names=PROBED_ATTRIBUTES, z=None):
    """name -> held-out R^2 of the attribute read out of ``model``'s representation
    (fitted on the training identities, scored on the test identities); ``z``:
    optional `representations` of the model."""
    z_train, z_test = representations(model, sets) if z is None else z
    truth_train = significance_truth.truth_table(sets.train_attributes)
    truth_test = significance_truth.truth_table(sets.test_attributes)
    return {n: sig.heldout_probe_r2(z_train, truth_train[n], z_test, truth_test[n])
            for n in names}


def encoding_row(model, sets):
    """Recognition figures in colour and in grey, held-out probe R^2 of every
    attribute of `PROBED_ATTRIBUTES` and the significance ranking with the exact
    attributes (sensitivity, its identity-over-nuisance AUC and top 8) of one
    model."""
    from interp_fr.eval import recognition_report
    from interp_fr.model import InterpFRNet
    if isinstance(model, InterpFRNet):
        forward = model  # traced by recognition_report with its feature maps
    else:
        rec = as_recognition_model(model)

        def forward(images):
            return {"feature": rec(images)}
    figs = recognition_report.recogniser_figures(forward, sets.world)
    z = representations(model, sets)
    probes = heldout_probes(model, sets, z=z)
    z_test = z[1]
    attrs = sets.test_attributes
    check = significance_truth.check_against_truth(z_test, attrs, attrs["subject"])
    sens = check["measures"]["sensitivity"]
    return {"all": figs["all"], "grey": grey_figures(model, sets), "probe_r2": probes,
            "significance_auc": check["auc"]["sensitivity"],
            "significance_top": sorted(sens, key=lambda n: -sens[n])[:8],
            "sensitivity": sens,
            "mean shape R2": float(np.mean([probes[n] for n in
                                            significance_truth.SHAPE_ATTRIBUTES])),
            "mean colour R2": float(np.mean([probes[n] for n in
                                             significance_truth.COLOUR_ATTRIBUTES]))}
