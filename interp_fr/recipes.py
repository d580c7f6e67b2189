"""How the main job and the experiments train the paper's three models.

The paper compares a base CNN, a model with the hypercolumn head and spatial
activation diversity but no occlusion branch ("SAD only"), and the full model.
As in the original procedure the last two start from the trained base CNN: its
TF1 checkpoint is placed in their checkpoint folder and their trainer restores
the base variables from it exactly as the original does.

A `Recipe` holds only training choices (sizes, steps, learning rates, schedule,
dropout); the model graph, the losses and the original command line are those
of `interp_fr.model`, `interp_fr.losses` and `interp_fr.train`. Why the
defaults are what they are: BUILD_NOTES.md, "Training recipe of the synthetic
world".
"""
import dataclasses
import os
import shutil
import time

from interp_fr import losses, tf1_checkpoint, training
from interp_fr.data import synthetic_world
from interp_fr.model import VARIANT_BASE, VARIANT_FULL

# name -> (model variant, LossWeights overrides)
PAPER_MODELS = {
    "base": (VARIANT_BASE, {}),
    "sad_only": (VARIANT_FULL, {"identity_occl": 0.0, "spatial_diversity_occl": 0.0,
                                "occlusion": 0.0}),
    "full": (VARIANT_FULL, {}),
}


@dataclasses.dataclass
class Recipe:
    """Training choices for the paper's models on a synthetic world.

    Attributes:
        df_dim, gfc_dim, dfc_dim: model widths.
        batch_size: images per step.
        pretrain_steps, pretrain_learning_rate: the base CNN's budget.
        max_steps, learning_rate: each model trained from the base.
        lr_schedule, warmup_steps: `training.TrainConfig`'s schedule.
        head_lr_multiplier: learning-rate factor of the head ("_new"
            variables) when training from the base.
        beta1: Adam's beta1.
        dropout_keep_prob: keep probability before the classifier.
        seed: initialisation, data order, crops and occlusions.
        colour_jitter: strength of the training images' colour jitter
            (`training.TrainConfig.colour_jitter`; 0: none, as the original).
        pretrained_base: where the main job's full model starts.
            "reference": the shipped reference base CNN
            (`interp_fr.reference_models`, trained for 4,400 steps on the
            training identities of the world of seed 0) when its widths and
            subject count fit the recipe and the world, else a base trained
            here for ``pretrain_steps``; "train": always trained here.
    """
    df_dim: int = 8
    gfc_dim: int = 64
    dfc_dim: int = 64
    batch_size: int = 32
    pretrain_steps: int = 1500
    pretrain_learning_rate: float = 3e-4
    learning_rate: float = 3e-4
    max_steps: int = 700
    lr_schedule: str = "cosine"
    warmup_steps: int = 30
    beta1: float = 0.9
    head_lr_multiplier: float = 10.0
    dropout_keep_prob: float = 1.0
    seed: int = 0
    colour_jitter: float = 0.0
    pretrained_base: str = "reference"


PRETRAINED_BASE_CHOICES = ("reference", "train")


def train_config(recipe, world_dir, checkpoint_dir, name, progress=False,
                 dataset="SYNTH"):
    """The `training.TrainConfig` of paper model ``name`` under ``recipe``."""
    r = recipe
    variant, overrides = PAPER_MODELS[name]
    pretrain = variant == VARIANT_BASE
    steps = r.pretrain_steps if pretrain else r.max_steps
    return training.TrainConfig(
        data_dir=os.path.join(world_dir, synthetic_world.DATA_DIR),
        aux_dir=os.path.join(world_dir, synthetic_world.AUX_DIR),
        checkpoint_dir=checkpoint_dir, dataset=dataset, batch_size=r.batch_size,
        gf_dim=32, gfc_dim=r.gfc_dim, df_dim=r.df_dim, dfc_dim=r.dfc_dim,
        variant=variant, loss_weights=losses.LossWeights(**overrides),
        learning_rate=r.pretrain_learning_rate if pretrain else r.learning_rate,
        lr_schedule=r.lr_schedule, warmup_steps=r.warmup_steps, beta1=r.beta1,
        head_lr_multiplier=1.0 if pretrain else r.head_lr_multiplier,
        dropout_keep_prob=r.dropout_keep_prob, max_steps=steps, seed=r.seed,
        reshuffle_each_epoch=True, colour_jitter=r.colour_jitter,
        log_every=max(1, steps // 8), tensorboard=False, progress=progress)


@dataclasses.dataclass
class TrainedModel:
    """A trained paper model: the trainer (``.model``), its log and timing."""
    name: str
    trainer: training.Trainer
    log: list
    seconds: float
    last: dict

    @property
    def model(self):
        return self.trainer.model


def continue_training(trained, recipe, name, world_dir, out_dir):
    """Makes `train_paper_model` (recipe, name, world_dir, out_dir) resume from a
    copy of the finished run ``trained`` instead of starting from scratch.

    The copy holds the whole training state (weights, optimizer moments and
    iteration count, data position), so the new run goes on at the step where
    ``trained`` stopped, up to its own budget, and its learning rate follows
    its own (longer) schedule from that step on: the last steps of a run of
    the longer budget, after a first part trained on the shorter schedule.
    ``trained``'s folder is left as it was; nothing is copied when the new
    run's folder exists (a finished or resumed continuation).

    Args:
        trained: the `TrainedModel` to continue.
        recipe: the new run's `Recipe` (a larger step budget).
        name: a key of `PAPER_MODELS`, the same variant as ``trained``.
        world_dir, out_dir: as for `train_paper_model`.
    """
    target = train_config(recipe, world_dir, os.path.join(out_dir, name), name).model_dir
    if os.path.isdir(target):
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = target + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(trained.trainer.config.model_dir, tmp)
    os.replace(tmp, target)


def train_paper_model(recipe, name, world_dir, out_dir, base=None, progress=False,
                      log=None):
    """Trains paper model ``name`` into ``<out_dir>/<name>/``.

    Args:
        recipe: `Recipe`.
        name: a key of `PAPER_MODELS`.
        world_dir: the synthetic world.
        out_dir: the checkpoint root.
        base: for the models with the hypercolumn head, the trained base CNN
            (a `TrainedModel` or an `InterpFRNet`) to start from, placed where
            the original looks for it; None starts from scratch.
        progress: show the trainer's progress line.
        log: optional callable(str) receiving each log line as well.

    Returns:
        `TrainedModel`. Run again on the same folder, training resumes.
    """
    config = train_config(recipe, world_dir, os.path.join(out_dir, name), name,
                          progress=progress)
    lines = []

    def say(line):
        lines.append(line)
        if log is not None:
            log(line)
    if base is not None and not os.path.isdir(config.model_dir):
        base_model = base.model if isinstance(base, TrainedModel) else base
        tf1_checkpoint.save_tf1_checkpoint(base_model, config.model_dir, global_step=0)
    trainer = training.Trainer(config, log=say)
    t0 = time.perf_counter()
    last = trainer.fit()
    return TrainedModel(name, trainer, lines, time.perf_counter() - t0, last)
