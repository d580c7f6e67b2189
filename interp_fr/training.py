"""Training of InterpFRNet (SPEC A2, A3): the loop, checkpoints, resume, logging.

Faithful parts: Adam(lr, beta1) over all model variables, one occlusion
rectangle per batch, batches as consecutive slices of one permutation, the
checkpoint folder ``<dataset>_<batch>_96_<gf>_<gfc>_<df>_<dfc>`` with TF1-named
``DCGAN.model-<epoch>`` saves every epoch, and the restore of the pretrained
base variables from a TF1 checkpoint found in that folder.

Added (BUILD_NOTES.md, "Training"): a full-state resume checkpoint (weights,
optimizer, global step; the data order and all randomness are functions of the
seed and the step), NaN/inf detection that stops without touching the last good
save, TensorBoard scalars, a progress line, tf.distribute strategies, mixed
precision and XLA switches.
"""
import dataclasses
import os
import shutil
import time

import numpy as np
import tensorflow as tf
import keras

from interp_fr import losses, model_loading, occlusion, precision, tf1_checkpoint
# The resume checkpoints' key scheme belongs to the one model loader, which reads them.
from interp_fr.model_loading import resume_variables
from interp_fr.common import tf_logging
from interp_fr.common import progress as progress_lib
from interp_fr.data import dat_files, mat_files, pipeline
from interp_fr.model import VARIANT_BASE, VARIANT_FULL, InterpFRNet

RESUME_SUBDIR = "resume"
TENSORBOARD_SUBDIR = "logs"
ORIGINAL_LOG_FORMAT = ("Epoch: [%2d] [%4d/%4d] time: %4.1f, d_loss: %.4f d_loss_o: %.4f "
                       "div_loss: %.8f div_loss_a:%.8f o_loss:%.8f "
                       "(id: %.3f (R: %.2f, R_o: %.2f))")
# The base CNN computes only the identity term: its line leaves out the rest
# rather than printing nan for them.
BASE_LOG_FORMAT = "Epoch: [%2d] [%4d/%4d] time: %4.1f, d_loss: %.4f (id: %.3f (R: %.2f))"


def write_scalar(name, value, step):
    """A TensorBoard scalar without importing the tensorboard package.

    TF >= 2.20 no longer installs TensorBoard, and ``tf.summary.scalar`` needs
    it; ``tf.summary.write`` with the scalars plugin's metadata writes the same
    event record using core TF only.
    """
    from tensorflow.core.framework import summary_pb2
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    return tf.summary.write(name, tf.constant(value, tf.float32), step=step,
                            metadata=metadata)


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or inf; training stopped before saving."""


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs. Defaults are the original's."""
    data_dir: str = "../DATA"
    aux_dir: str = "."
    checkpoint_dir: str = "checkpoint"
    dataset: str = "celebA"
    batch_size: int = 64
    gf_dim: int = 32
    gfc_dim: int = 512
    df_dim: int = 32
    dfc_dim: int = 512
    n_subjects: int = None          # None: max subject id in the file list + 1
    variant: str = "full"
    epochs: int = 1000
    learning_rate: float = 0.0002
    beta1: float = 0.5
    # "constant" is the original's; "cosine" warms up linearly over
    # warmup_steps, then decays to lr_final_fraction * learning_rate at the
    # last step (a recipe choice of the main job and the experiments).
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    lr_final_fraction: float = 0.01
    # Learning-rate multiplier of the variables the original names "_new"
    # (the hypercolumn head and the classifier, which a fine-tuning run starts
    # from scratch); 1.0 is the original's single learning rate.
    head_lr_multiplier: float = 1.0
    train_size: int = 1000000
    max_steps: int = None
    seed: int = 0
    reshuffle_each_epoch: bool = False
    # Strength of the training images' colour jitter (data.pipeline
    # .jitter_colours); 0 is the original (none).
    colour_jitter: float = 0.0
    loss_weights: losses.LossWeights = losses.LossWeights()
    num_keep: int = None            # None: 260 of 320, the same fraction otherwise
    dropout_keep_prob: float = 0.6
    diversity_epsilon: float = None
    restore_bn_moving_stats: bool = False
    save_every_steps: int = 0       # 0: resume checkpoint at each epoch end only
    keep_resume_checkpoints: int = 2
    log_every: int = 25
    tensorboard: bool = True
    jit_compile: bool = False
    # "float32", "bfloat16", "float16" or "auto" (interp_fr.precision);
    # mixed_precision=True is the older spelling of "float16".
    precision: str = "float32"
    mixed_precision: bool = False
    devices: tuple = ()             # e.g. ("/gpu:0", "/gpu:1"); () = default
    multi_worker: bool = False
    progress: bool = True

    @property
    def feature_keep(self):
        """FAD dimensions kept: the original's 260 for dfc_dim 320, else 13/16."""
        if self.num_keep is not None:
            return self.num_keep
        return max(1, round(self.dfc_dim * losses.DEFAULT_NUM_KEEP / 320))

    @property
    def model_dir_name(self):
        # The original always builds the model with output_size 96.
        return (f"{self.dataset}_{self.batch_size}_96_{self.gf_dim}_{self.gfc_dim}_"
                f"{self.df_dim}_{self.dfc_dim}")

    @property
    def model_dir(self):
        return os.path.join(self.checkpoint_dir, self.model_dir_name)


LR_SCHEDULES = ("constant", "cosine")


def learning_rate_schedule(config, total_steps, multiplier=1.0):
    """The learning rate for Adam: a float, or a schedule of the optimizer step
    (times ``multiplier``).

    The schedule counts the optimizer's own iterations, which the resume
    checkpoint restores, so a resumed run continues on the same curve.
    """
    c = config
    lr = c.learning_rate * multiplier
    if c.lr_schedule == "constant":
        return lr
    if c.lr_schedule != "cosine":
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got "
                         f"{c.lr_schedule!r}")
    warmup = min(int(c.warmup_steps), max(0, total_steps - 1))
    if warmup:
        return keras.optimizers.schedules.CosineDecay(
            lr * 1e-2, max(1, total_steps - warmup), alpha=c.lr_final_fraction,
            warmup_target=lr, warmup_steps=warmup)
    return keras.optimizers.schedules.CosineDecay(
        lr, max(1, total_steps), alpha=c.lr_final_fraction)


def make_strategy(devices=(), multi_worker=False):
    """The tf.distribute strategy for the requested devices.

    ``multi_worker`` (with ``TF_CONFIG`` set) gives MultiWorkerMirroredStrategy;
    several devices MirroredStrategy; otherwise the default strategy, placed on
    the single device if one is named.
    """
    if multi_worker:
        if "TF_CONFIG" not in os.environ:
            raise ValueError("multi-worker training needs the TF_CONFIG environment "
                             "variable describing the cluster")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(devices) > 1:
        return tf.distribute.MirroredStrategy(devices=list(devices))
    if len(devices) == 1:
        return tf.distribute.OneDeviceStrategy(devices[0])
    return tf.distribute.get_strategy()


def is_chief(strategy):
    """Whether this process writes the shared checkpoints.

    True outside multi-worker training; in a cluster, the ``chief`` task, or
    worker 0 when the cluster names no chief (TF_CONFIG's convention).
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    cluster = resolver.cluster_spec().as_dict()
    return (resolver.task_type == "worker" and resolver.task_id == 0
            and "chief" not in cluster)


class Trainer:
    """Builds data, model and optimizer from a `TrainConfig` and trains.

    Attributes after construction: ``model``, ``optimizer``, ``history``
    (the logged (step, scalars) pairs), ``step`` (global
    batch counter, a tf.Variable), ``batches_per_epoch``, ``restored_from``.
    """

    def __init__(self, config, log=print):
        self.config = c = config
        self.log = log
        self.casia = dat_files.load_casia(c.data_dir, c.n_subjects)
        n_subjects = c.n_subjects or self.casia.num_subjects
        self.uses_occlusion = c.variant != VARIANT_BASE
        if self.uses_occlusion:
            self.landmarks = mat_files.read_landmarks(
                os.path.join(c.aux_dir, "landmarks68.mat"),
                expected_count=len(self.casia.images))
            self.occluder = occlusion.OcclusionSynthesizer.from_files(
                os.path.join(c.aux_dir, "tVM.mat"),
                os.path.join(c.aux_dir, "landmark68_7.mat"))
        usable = min(len(self.casia.images), c.train_size)
        self.batches_per_epoch = usable // c.batch_size
        if self.batches_per_epoch == 0:
            raise ValueError(f"{self.casia.images.path}: {usable} images are fewer "
                             f"than one batch of {c.batch_size}")
        self.total_steps = c.epochs * self.batches_per_epoch
        if c.max_steps is not None:
            self.total_steps = min(self.total_steps, c.max_steps)

        self.strategy = make_strategy(c.devices, c.multi_worker)
        # Seeds the initialisers and the dropout seed generator: the same seed
        # gives the same run, and a resumed run restores the generator's state.
        keras.utils.set_random_seed(c.seed)
        self.is_chief = is_chief(self.strategy)
        self.precision = precision.resolve(
            "float16" if c.mixed_precision else c.precision)
        policy = precision.policy_name(self.precision)
        with self.strategy.scope(), precision.dtype_policy(policy):
            self.model = InterpFRNet(df_dim=c.df_dim, gfc_dim=c.gfc_dim,
                                     dfc_dim=c.dfc_dim, n_subjects=n_subjects,
                                     variant=c.variant,
                                     dropout_keep_prob=c.dropout_keep_prob)
            self.model.build((None, 96, 96, 3))
            self.optimizer = keras.optimizers.Adam(
                learning_rate_schedule(c, self.total_steps), beta_1=c.beta1)
            loss_scaling = self.precision == "float16"
            if loss_scaling:
                # float16 gradients underflow without it; a step whose scaled
                # gradients overflow is skipped and the scale halved (bfloat16
                # has float32's exponent range and needs none).
                self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
            self.head_optimizer = None
            self.head_variables = []
            if c.head_lr_multiplier != 1.0:
                if loss_scaling:
                    raise ValueError("head_lr_multiplier != 1 does not combine with "
                                     "float16 (one loss scale per step)")
                names = {id(v): n for n, v in self.model.tf1_variable_map().items()}
                self.head_variables = [v for v in self.model.trainable_variables
                                       if "_new" in names[id(v)]]
                self.head_optimizer = keras.optimizers.Adam(
                    learning_rate_schedule(c, self.total_steps, c.head_lr_multiplier),
                    beta_1=c.beta1)
                self.head_optimizer.build(self.head_variables)
            head_ids = {id(v) for v in self.head_variables}
            self.body_variables = [v for v in self.model.trainable_variables
                                   if id(v) not in head_ids]
            self.optimizer.build(self.body_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        os.makedirs(c.model_dir, exist_ok=True)
        # model.variables, unlike model.weights, holds the dropout seed
        # generator's state; saving it makes a resumed run draw the same masks.
        weight_ids = {id(v) for v in self.model.weights}
        rng_state = [v for v in self.model.variables if id(v) not in weight_ids]
        # Variables are tracked by their TF1 names rather than through Keras'
        # attribute tracking, which does not see layers kept in plain tuples.
        slots = {"optimizer": self.optimizer}
        if self.head_optimizer is not None:
            slots["head_optimizer"] = self.head_optimizer
        self.checkpoint = tf.train.Checkpoint(
            variables=resume_variables(self.model), step=self.step,
            rng_state=rng_state, **slots)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(c.model_dir, RESUME_SUBDIR),
            max_to_keep=c.keep_resume_checkpoints)
        self.restored_from = self._restore()
        if not self.is_chief:
            # Every worker takes part in a save (it may run collectives), but
            # only the chief's lands in model_dir; the others write to a
            # private folder that is removed after each save.
            resolver = self.strategy.cluster_resolver
            self._scratch_dir = os.path.join(
                    c.model_dir, f".{resolver.task_type}{resolver.task_id}")
            self.manager = tf.train.CheckpointManager(
                self.checkpoint, self._scratch_dir, max_to_keep=1)
        self._train_step = self._make_train_step()
        # (step, scalars) at every logged step of this process's fit calls.
        self.history = []

    # -- checkpoints -------------------------------------------------------
    def _restore(self):
        c = self.config
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            self.log(f" [*] Resumed from {self.manager.latest_checkpoint} at step "
                     f"{int(self.step.numpy())}")
            return self.manager.latest_checkpoint
        if tf.train.latest_checkpoint(c.model_dir):
            # As the original: only the pretrained base's trainable variables.
            result = tf1_checkpoint.load_tf1_checkpoint(
                self.model, c.model_dir, subset=tf1_checkpoint.SUBSET_BASE)
            if c.restore_bn_moving_stats:
                self._restore_moving_stats(result.checkpoint)
            self.log(f" [*] Load SUCCESS: base variables from {result.checkpoint}"
                     f" ({len(result.loaded)} tensors)")
            return result.checkpoint
        self.log(" [!] Load failed...")
        return None

    def _restore_moving_stats(self, prefix):
        reader = tf.train.load_checkpoint(prefix)
        names = reader.get_variable_to_shape_map()
        for name, var in self.model.tf1_variable_map().items():
            if "moving_" in name and "new" not in name and name in names:
                var.assign(reader.get_tensor(name))

    def save_resume(self, step=None):
        """Writes the full-state checkpoint (atomic: the index file is updated last).

        ``step``: the global step, when the caller knows it (saves a device read).
        """
        if step is None:
            step = int(self.step.numpy())
        with tf_logging.quiet():
            path = self.manager.save(checkpoint_number=int(step))
        if not self.is_chief:
            shutil.rmtree(self._scratch_dir, ignore_errors=True)
        return path

    def save_tf1(self, epoch):
        """The original's per-epoch save: ``DCGAN.model-<epoch>`` with TF1 names
        (the chief's only: it reads the local copies, no collective involved)."""
        if not self.is_chief:
            return None
        return tf1_checkpoint.save_tf1_checkpoint(self.model, self.config.model_dir,
                                                  global_step=epoch)

    # -- data ----------------------------------------------------------------
    def dataset(self, start_batch, num_batches):
        c = self.config
        ds = pipeline.training_dataset(
            self.casia.images, self.casia.file_list.subject_ids, c.batch_size,
            seed=c.seed, start_batch=start_batch, num_batches=num_batches,
            reshuffle_each_epoch=c.reshuffle_each_epoch, colour_jitter=c.colour_jitter)
        if self.uses_occlusion:
            ds = ds.map(self._add_occlusion, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=True)
        # tf.distribute splits every component along the batch; the scalar step
        # number cannot be split (the trainer keeps its own step counter).
        return ds.map(lambda b: {k: v for k, v in b.items() if k != "step"})

    def _occlude(self, images, indices, offsets, step):
        rng = np.random.default_rng((self.config.seed, int(step), 0x0CC1))
        occl, _ = self.occluder.occlude(images, self.landmarks[indices], offsets, rng)
        return occl

    def _add_occlusion(self, batch):
        occl = tf.numpy_function(self._occlude, [batch["image"], batch["index"],
                                                 batch["offset"], batch["step"]],
                                 tf.float32, stateful=False)
        occl.set_shape(batch["image"].shape)
        return dict(batch, image_occl=occl)

    # -- step ----------------------------------------------------------------
    def _make_train_step(self):
        c = self.config
        model, optimizer = self.model, self.optimizer
        replicas = self.strategy.num_replicas_in_sync

        def replica_step(batch):
            with tf.GradientTape() as tape:
                images = batch["image"]
                if self.uses_occlusion:
                    terms = losses.model_losses(
                        model, images, batch["image_occl"], batch["label"],
                        training=True, weights=c.loss_weights, num_keep=c.feature_keep,
                        epsilon=c.diversity_epsilon)
                    out, out_o = terms["outputs"], terms["outputs_occl"]
                    zero = {"zero_channels": tf.reduce_sum(tf.cast(
                                losses.zero_channels(out["feature_map"]), tf.int32)),
                            "zero_channels_occl": tf.reduce_sum(tf.cast(
                                losses.zero_channels(out_o["feature_map"]), tf.int32))}
                    scalars = {k: tf.cast(terms[k], tf.float32) for k in losses.LOSS_TERMS}
                else:
                    out = model(images, training=True)
                    ce = c.loss_weights.identity * losses.identity_cross_entropy(
                        tf.cast(out["logits"], tf.float32), batch["label"])
                    scalars = {"d_loss": ce, "d_loss_real_id": ce,
                               "d_acc": losses.accuracy(out["logits"], batch["label"])}
                    zero = {}
                loss = tf.cast(scalars["d_loss"], tf.float32) / replicas
                if self.precision == "float16":
                    loss = optimizer.scale_loss(loss)
            body, head = self.body_variables, self.head_variables
            grads = tape.gradient(loss, body + head)
            optimizer.apply_gradients(zip(grads[:len(body)], body))
            if head:
                self.head_optimizer.apply_gradients(zip(grads[len(body):], head))
            return dict(scalars, **zero)

        def step_fn(batch):
            per_replica = self.strategy.run(replica_step, args=(batch,))
            reduced = {k: self.strategy.reduce(
                tf.distribute.ReduceOp.MEAN if "zero" not in k else tf.distribute.ReduceOp.SUM,
                v, axis=None) for k, v in per_replica.items()}
            self.step.assign_add(1)
            return reduced

        return tf.function(step_fn, jit_compile=c.jit_compile or None,
                           reduce_retracing=True)

    # -- loop ----------------------------------------------------------------
    def fit(self):
        """Trains until ``total_steps``; returns the last logged scalars (dict).

        The loop never waits for the device between log steps: the step
        counter is kept on the host, each step's scalars stay on the device,
        and they are read (all of them, for the NaN check) only at a log step,
        before a checkpoint is written, and at the end (`_read_scalars`). A
        non-finite term therefore stops training at the next read, naming the
        step where it first appeared, before any save could overwrite the last
        good checkpoint.
        """
        c = self.config
        start = int(self.step.numpy())
        remaining = self.total_steps - start
        if remaining <= 0:
            self.log(f"nothing to do: step {start} >= {self.total_steps}")
            return {}
        ds = self.strategy.experimental_distribute_dataset(self.dataset(start, remaining))
        writer = (tf.summary.create_file_writer(os.path.join(c.model_dir, TENSORBOARD_SUBDIR))
                  if c.tensorboard else None)
        progress = progress_lib.ProgressLine(self.total_steps, c.batch_size, "images",
                                              c.progress)
        t0 = time.time()
        last = {}
        pending = []            # (step, device scalars) not yet read
        step = start
        for batch in ds:
            pending.append((step + 1, self._train_step(batch)))
            step += 1
            log_now = (step - 1) % c.log_every == 0
            epoch_end = step % self.batches_per_epoch == 0
            save_now = epoch_end or bool(c.save_every_steps
                                         and step % c.save_every_steps == 0)
            if log_now or save_now or step == self.total_steps:
                try:
                    last = self._read_scalars(pending)
                except NonFiniteLossError:
                    progress.close()
                    raise
                pending = []
            if log_now:
                progress.close()
                epoch, idx = divmod(step - 1, self.batches_per_epoch)
                self.history.append((step, last))
                self.log(log_line(last, epoch, idx, self.batches_per_epoch,
                                  time.time() - t0))
                if writer is not None:
                    with writer.as_default():
                        for name, value in last.items():
                            write_scalar(name, value, step)
            progress.update(step)
            if epoch_end:
                self.save_tf1(step // self.batches_per_epoch)
                self.save_resume(step)
            elif save_now:
                self.save_resume(step)
        progress.close()
        if pending:
            last = self._read_scalars(pending)
        if step % self.batches_per_epoch:
            # A run cut short by max_steps still leaves both kinds of checkpoint;
            # the TF1 one is numbered by the epoch in progress.
            self.save_tf1(step // self.batches_per_epoch + 1)
            self.save_resume(step)
        if writer is not None:
            writer.flush()
        return last

    def _read_scalars(self, pending):
        """Reads the scalars of the pending steps to the host, in one go.

        Args:
            pending: list of (step, dict name -> device scalar), in step order.

        Returns:
            dict name -> float of the last pending step.

        Raises:
            NonFiniteLossError: naming the first pending step with a NaN or inf.
        """
        host = [(step, {k: float(v) for k, v in values.items()})
                for step, values in pending]
        for step, scalars in host:
            bad = losses.nonfinite_terms(scalars)
            if bad:
                detail = ""
                if scalars.get("zero_channels") or scalars.get("zero_channels_occl"):
                    detail = (f"; all-zero masked channels: clean "
                              f"{int(scalars.get('zero_channels', 0))}, occluded "
                              f"{int(scalars.get('zero_channels_occl', 0))} (the "
                              "diversity losses divide by their norms; see "
                              "--diversity_epsilon)")
                raise NonFiniteLossError(
                    f"non-finite loss at step {step}: {', '.join(bad)}{detail}. "
                    f"Stopped without saving; the last good checkpoint in "
                    f"{self.config.model_dir} is intact.")
        return host[-1][1]


def log_line(scalars, epoch, index, batches_per_epoch, seconds):
    """The original's progress line for the logged ``scalars`` of one step
    (`BASE_LOG_FORMAT` when only the identity term exists)."""
    head = (epoch, index, batches_per_epoch, seconds)
    if "d_loss_real_id_occl" not in scalars:
        return BASE_LOG_FORMAT % (*head, scalars["d_loss_real_id"],
                                  scalars["d_loss_real_id"], scalars["d_acc"])
    return ORIGINAL_LOG_FORMAT % (
        *head, scalars["d_loss_real_id"], scalars["d_loss_real_id_occl"],
        scalars["diver_loss"], scalars["diver_loss_A"], scalars["occl_loss"],
        scalars["d_loss_real_id"], scalars["d_acc"], scalars["d_acc_occl"])


def load_trained_model(config):
    """The whole trained model from ``config.model_dir``, through the project's
    one loader (`interp_fr.model_loading.load_keras_model`): our resume
    checkpoint when there is one, else every variable of the latest TF1
    checkpoint (the original's ``is_train False`` path restored only the base
    variables and never initialised the rest, so it could not run). Widths and
    subject count are read off the checkpoint; a variant other than "full" in
    ``config`` is checked against it.

    Raises:
        FileNotFoundError: ``config.model_dir`` does not exist.
        model_loading.ModelLoadError: it holds no checkpoint of ours.
    """
    if not os.path.isdir(config.model_dir):
        raise FileNotFoundError(f"no checkpoint folder {config.model_dir}")
    overrides = {} if config.variant == VARIANT_FULL else {"variant": config.variant}
    return model_loading.load_keras_model(config.model_dir, **overrides)[0]

