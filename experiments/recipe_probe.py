"""One training recipe on one synthetic world: how well does it recognise unseen identities?

    python experiments/recipe_probe.py --variant base --steps 2400 --lr 3e-4
    python experiments/recipe_probe.py --variant full --from_base DIR --steps 1000 \\
        --head_lr_multiplier 10

Builds (once) a world of ``--train_subjects`` x ``--images_per_subject``
training images and ``--test_subjects`` test subjects, trains one model with
the given recipe and prints, as one JSON line (also appended to ``--results``),
TAR@FAR 0.01 / 0.001 and rank-1 / rank-5 on the world's ten IJB-A-style splits.
The probes behind the main job's recipe and world (BUILD_NOTES.md, "Training
recipe of the synthetic world") were runs of this script.
"""
import argparse
import dataclasses
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from interp_fr.common.cpu_kernels import use_onednn_kernels  # noqa: E402
use_onednn_kernels()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", default="recipe_probe")
    p.add_argument("--results", default=None, help="JSON-lines file to append to "
                   "(default <work>/results.jsonl)")
    p.add_argument("--tag", default="probe")
    p.add_argument("--train_subjects", type=int, default=300)
    p.add_argument("--images_per_subject", type=int, default=16)
    p.add_argument("--test_subjects", type=int, default=100)
    p.add_argument("--train_occlusion_rate", type=float, default=0.1)
    p.add_argument("--impostor_ratio", type=int, default=20)
    p.add_argument("--world_seed", type=int, default=0)
    p.add_argument("--variant", default="base")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--lr_schedule", default="cosine")
    p.add_argument("--warmup_steps", type=int, default=30)
    p.add_argument("--beta1", type=float, default=0.9)
    p.add_argument("--dropout_keep_prob", type=float, default=1.0)
    p.add_argument("--head_lr_multiplier", type=float, default=1.0)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--df_dim", type=int, default=8)
    p.add_argument("--gfc_dim", type=int, default=64)
    p.add_argument("--dfc_dim", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--from_base", default="", help="model folder of a trained base "
                   "CNN whose TF1 checkpoint the model starts from")
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    from interp_fr import features, training
    from interp_fr.data import synthetic_world
    from interp_fr.eval import recognition_report
    world_config = synthetic_world.WorldConfig(
        train_subjects=a.train_subjects, train_images_per_subject=a.images_per_subject,
        test_subjects=a.test_subjects, train_occlusion_rate=a.train_occlusion_rate,
        impostor_ratio=a.impostor_ratio, seed=a.world_seed)
    key = "_".join(str(v) for v in dataclasses.astuple(world_config))
    world = os.path.join(a.work, "world_" + key)
    t0 = time.perf_counter()
    if not os.path.isfile(os.path.join(world, "world.json")):
        synthetic_world.build_world(world, world_config)
    world_seconds = time.perf_counter() - t0
    ckpt = os.path.join(a.work, "checkpoints_" + a.tag)
    shutil.rmtree(ckpt, ignore_errors=True)
    config = training.TrainConfig(
        data_dir=os.path.join(world, "DATA"), aux_dir=os.path.join(world, "aux"),
        checkpoint_dir=ckpt, dataset="SYNTH", batch_size=a.batch_size,
        gfc_dim=a.gfc_dim, df_dim=a.df_dim, dfc_dim=a.dfc_dim, variant=a.variant,
        learning_rate=a.lr, lr_schedule=a.lr_schedule, warmup_steps=a.warmup_steps,
        beta1=a.beta1, head_lr_multiplier=a.head_lr_multiplier,
        dropout_keep_prob=a.dropout_keep_prob, max_steps=a.steps, seed=a.seed,
        reshuffle_each_epoch=True, log_every=max(1, a.steps // 6), progress=False,
        tensorboard=False)
    if a.from_base:
        os.makedirs(config.model_dir, exist_ok=True)
        for name in os.listdir(a.from_base):
            if name.startswith("DCGAN.model") or name == "checkpoint":
                shutil.copy(os.path.join(a.from_base, name), config.model_dir)
    t0 = time.perf_counter()
    trainer = training.Trainer(config, log=print)
    last = trainer.fit()
    train_seconds = time.perf_counter() - t0
    figs = recognition_report.recogniser_figures(features.keras_forward(trainer.model),
                                                 world)
    out = dict(vars(a), world_seconds=round(world_seconds, 1),
               train_seconds=round(train_seconds, 1), batch_accuracy=last.get("d_acc"),
               model_dir=config.model_dir, **{f"{c} {m}": v for c, ms in figs.items()
                                              for m, v in ms.items()})
    line = json.dumps(out)
    print(line)
    with open(a.results or os.path.join(a.work, "results.jsonl"), "a") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    main()
