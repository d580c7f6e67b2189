"""Installs the interpretable-face-recognition suite.

Installed layout (see BUILD_NOTES.md, "Package layout"): the checkout's top-level
folders ``data/``, ``eval/`` and ``tools/`` are installed *inside* the
``interp_fr`` package (``interp_fr.data``, ``interp_fr.eval``,
``interp_fr.tools``), so that installing never creates or overwrites top-level
modules with common names such as ``data`` or ``eval``.
"""
from setuptools import setup

PACKAGE_DIR = {
    "interp_fr": "interp_fr",
    "interp_fr.common": "interp_fr/common",
    "interp_fr.export": "interp_fr/export",
    "interp_fr.pipeline": "interp_fr/pipeline",
    "interp_fr.data": "data",
    "interp_fr.eval": "eval",
    "interp_fr.tools": "tools",
    "interp_fr.tools.freeze": "tools/freeze",
    "attr_recovery": "attr_recovery",
    "attr_recovery.nets": "attr_recovery/nets",
    "attr_recovery.conversion": "attr_recovery/conversion",
    "attr_recovery.readers": "attr_recovery/readers",
    "attr_recovery.export": "attr_recovery/export",
    "attr_recovery.trainers": "attr_recovery/trainers",
    "attr_recovery.analysis": "attr_recovery/analysis",
    "attr_recovery.shipped": "attr_recovery/shipped",
    "attr_recovery.stages": "attr_recovery/stages",
    "attr_recovery.cli": "attr_recovery/cli",
}

CONSOLE_SCRIPTS = [
    "interp-fr-demo = interp_fr.pipeline.demo:run",
    "interp-fr-synthetic = interp_fr.data.synthetic:run",
    "interp-fr-train = interp_fr.train:run",
    "interp-fr-gen-syn-occl = interp_fr.gen_syn_occl:run",
    "attr-recovery-convert-checkpoint = attr_recovery.cli.convert_checkpoint:run",
    "attr-recovery-train = attr_recovery.cli.train:run",
    "attr-recovery-recon = attr_recovery.cli.recon:run",
    "attr-recovery-train-estimators = attr_recovery.cli.train_estimators:run",
    "attr-recovery-significance = attr_recovery.cli.significance:run",
    "attr-recovery-explain-pair = attr_recovery.cli.explain_pair:run",
    "attr-recovery-export-decoder = attr_recovery.cli.export_decoder:run",
    "interp-fr-convert-checkpoint = interp_fr.convert_checkpoint:run",
    "interp-fr-ijba = interp_fr.eval.ijba_cli:run",
    "interp-fr-ijbc = interp_fr.eval.ijbc_cli:run",
    "interp-fr-ijb = interp_fr.eval.ijb_insightface_cli:run",
    "interp-fr-extract = interp_fr.extract:run",
    "interp-fr-freeze = interp_fr.tools.freeze.freeze_my_model:run",
    "interp-fr-export-savedmodel = interp_fr.tools.freeze.export_saved_model:run",
    "interp-fr-export-litert = interp_fr.tools.freeze.export_litert:run",
    "interp-fr-export-onnx = interp_fr.tools.freeze.export_onnx:run",
    "interp-fr-import-photos = interp_fr.data.import_photos:run",
    "interp-fr-frozen-to-keras = interp_fr.tools.freeze.frozen_to_keras:run",
    "interp-fr-peak-locations = interp_fr.eval.peak_locations_cli:run",
]

setup(
    name="interp-fr",
    version="0.1.0",
    description=("TensorFlow 2 / Keras reimplementation of interpretable face "
                 "recognition (Yin et al.) and facial attribute recovery (Ren et al.)"),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=list(PACKAGE_DIR),
    package_dir=PACKAGE_DIR,
    # Reference weights of our own models (interp_fr/reference_models.py,
    # attr_recovery/shipped/reference_decoder.py, attr_recovery/shipped/reference_estimators.py).
    package_data={"interp_fr": ["reference_weights/*.weights.h5",
                                "reference_weights/*.json",
                                "reference_weights/*/*.weights.h5",
                                "reference_weights/*/*.json"],
                  "attr_recovery": ["reference_weights/*/*.json",
                                    "reference_weights/*/checkpoints/*"]},
    install_requires=[
        "tensorflow>=2.16,<3",
        "numpy",
        "scipy",
        "absl-py",
        "matplotlib",
    ],
    extras_require={
        # The tests run the ONNX export with onnxruntime, and read a real
        # photograph (scikit-image's astronaut.png) with dlib.
        "test": ["pytest", "tf2onnx>=1.17", "onnx", "onnxruntime", "dlib-bin",
                 "face_recognition_models", "scikit-image"],
        "gpu": ["tensorflow[and-cuda]>=2.16,<3"],
        # LiteRT's own interpreter for .tflite exports (TensorFlow's deprecated
        # tf.lite.Interpreter is used when it is absent).
        "litert": ["ai-edge-litert"],
        # ONNX export (tf2onnx) and its runtime for parity checks and inference.
        "onnx": ["tf2onnx>=1.17", "onnx", "onnxruntime"],
        # Photos to the original formats: dlib's detector and 68-point model.
        "photos": ["dlib-bin", "face_recognition_models"],
    },
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
