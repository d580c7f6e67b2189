"""Spreadness of the filters' average peak locations for three trained models.

Trains, with the same budget on one synthetic world, the paper's three models:

  * base:     the base CNN alone (variant "base", identity loss only); its map
              is k4_2 (6x6x gfc_dim), analysed with a 16 px stride;
  * sad_only: the full architecture (hypercolumn + peak mask) trained without
              any occlusion term: identity + filter diversity + SAD on the clean
              batch (occluded identity, occluded SAD and FAD weights 0);
  * full:     every loss with the original's weights.

With ``--from_base`` (the original's procedure, and the main job's) the base
CNN is trained first and the other two start from it: their training restores
the base variables from a TF1 checkpoint placed in their folder, exactly as the
original restores its pretrained base; each then trains ``--steps`` steps of its
own. Without it all three start from scratch with ``--steps`` steps each.

Then computes each model's average peak locations on the world's IJB-A images
(`eval.peak_locations`, average_location.m semantics) and prints the spreadness
d per model and sign. The paper reports base 6.9 < SAD only 17.1 < full 18.7.

    python experiments/spreadness.py --out_dir spread_run --steps 300

This is an experiment, not a test: its numbers depend on the budget (see
notes/interpretability.md for a run and its reading).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# (name, model variant, loss weights as LossWeights keyword overrides)
MODELS = (
    ("base", "base", {}),
    ("sad_only", "full", {"identity_occl": 0.0, "spatial_diversity_occl": 0.0,
                          "occlusion": 0.0}),
    ("full", "full", {}),
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out_dir", default="spreadness_run")
    p.add_argument("--steps", type=int, default=300, help="training steps per model")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--learning_rate", type=float, default=0.001)
    p.add_argument("--df_dim", type=int, default=8)
    p.add_argument("--gfc_dim", type=int, default=64)
    p.add_argument("--dfc_dim", type=int, default=64)
    p.add_argument("--train_subjects", type=int, default=40)
    p.add_argument("--train_images_per_subject", type=int, default=32)
    p.add_argument("--test_subjects", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--from_base", action="store_true",
                   help="start sad_only and full from the trained base CNN")
    p.add_argument("--models", default=",".join(m[0] for m in MODELS),
                   help="comma-separated subset of " + ",".join(m[0] for m in MODELS))
    return p.parse_args(argv)


def train(world, out_dir, name, variant, overrides, a, base_model=None):
    from interp_fr import losses, tf1_checkpoint
    from interp_fr.training import Trainer, TrainConfig
    config = TrainConfig(
        data_dir=os.path.join(world, "DATA"), aux_dir=os.path.join(world, "aux"),
        checkpoint_dir=os.path.join(out_dir, "checkpoints", name), dataset="synthetic",
        batch_size=a.batch_size, df_dim=a.df_dim, gfc_dim=a.gfc_dim, dfc_dim=a.dfc_dim,
        variant=variant, max_steps=a.steps, learning_rate=a.learning_rate,
        loss_weights=losses.LossWeights(**overrides), seed=a.seed, progress=False,
        tensorboard=False, log_every=100)
    if base_model is not None and not os.path.isdir(config.model_dir):
        # Where the original looks for its pretrained base: a TF1 checkpoint in
        # the model folder, of which only the base variables are restored.
        tf1_checkpoint.save_tf1_checkpoint(base_model, config.model_dir, global_step=0)
    trainer = Trainer(config, log=lambda m: print(f"  [{name}] {m}", flush=True))
    t0 = time.perf_counter()
    last = trainer.fit()
    return trainer.model, last, time.perf_counter() - t0


def main(argv=None):
    a = parse_args(argv)
    from interp_fr.data import synthetic_world
    from interp_fr.eval import interp_common
    from interp_fr.eval import peak_locations as pl
    os.makedirs(a.out_dir, exist_ok=True)
    world = os.path.join(a.out_dir, "world")
    if not os.path.isfile(os.path.join(world, "world.json")):
        t0 = time.perf_counter()
        synthetic_world.build_world(world, synthetic_world.WorldConfig(
            train_subjects=a.train_subjects,
            train_images_per_subject=a.train_images_per_subject,
            test_subjects=a.test_subjects, seed=a.seed))
        print(f"world written in {time.perf_counter() - t0:.0f} s", flush=True)
    wanted = a.models.split(",")
    models, info = {}, {}
    for name, variant, overrides in MODELS:
        if name not in wanted:
            continue
        base = models.get("base") if a.from_base and name != "base" else None
        model, last, secs = train(world, a.out_dir, name, variant, overrides, a, base)
        models[name] = model
        info[name] = {"variant": variant, "loss_weight_overrides": overrides,
                      "started_from_base": base is not None,
                      "train_seconds": secs, "last_scalars": last}
        print(f"{name}: {a.steps} steps in {secs:.0f} s, train accuracy "
              f"{last.get('d_acc', float('nan')):.3f}", flush=True)
    t0 = time.perf_counter()
    out = pl.peak_location_figure_for_models(
        models, world, os.path.join(a.out_dir, "peak_locations.png"),
        out_dir=a.out_dir)
    print(f"peak locations in {time.perf_counter() - t0:.0f} s")
    print(f"\n{'model':<10} {'d_pos':>7} {'d_neg':>7} {'d':>7}  located pos/neg  "
          "train acc")
    for name, res in out.items():
        print(f"{name:<10} {res['d_pos']:7.2f} {res['d_neg']:7.2f} {res['d']:7.2f}  "
              f"{res['filters_located_pos']:>5}/{res['filters_located_neg']:<5}      "
              f"{info[name]['last_scalars'].get('d_acc', float('nan')):.3f}")
        info[name]["peak_locations"] = {k: v for k, v in res.items() if k != "figures"}
    summary = {"args": vars(a), "models": info}
    with open(os.path.join(a.out_dir, "spreadness.json"), "w") as f:
        json.dump(interp_common.jsonable(summary), f, indent=1)
    print(f"\nwrote {os.path.join(a.out_dir, 'spreadness.json')} and "
          f"{os.path.join(a.out_dir, 'peak_locations.png')}")


if __name__ == "__main__":
    main()
