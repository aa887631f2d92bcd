"""S27 (seed 004 §2 names GANs): a DCGAN whose ``compile`` takes its own arguments.

- :class:`GAN`: a ``keras.Model`` holding a generator and a discriminator, with
  ``compile(d_optimizer, g_optimizer, loss_fn)`` and a ``train_step`` that makes
  one discriminator step and one generator step per batch. History has
  ``d_loss``, ``g_loss`` and ``loss`` (their sum, which trainctl's NaN guard
  watches); ``evaluate`` gives the same on the test images (no update).
  ``generator`` and ``latent_dim`` are the convention ``trainctl predict`` uses
  to draw samples. With ``codes`` the generator reads a class off its latent
  vector (:class:`LatentCode`) and the discriminator has a class head: trained on
  labelled images (``data.source: mnist``) it is an auxiliary-classifier GAN
  (AC-GAN), the class of each sample set by its latent; on unlabelled ones
  (:func:`mnist_images`) the head only learns the codes back (InfoGAN).
- :func:`mnist_images`: MNIST images without labels (a GAN needs no targets).
- :class:`SampleGrid`: a callback writing the generator's samples, from fixed
  latent vectors, as ``<log_dir>/epoch_NNN.png`` in the run after each epoch.

Example (YAML)::

    imports: [examples.plugins.gan]
    data: {source: mnist, features: [{reshape: [28, 28, 1]}, {rescale: 0.00392156862745098}]}
    model: {type: GAN, args: {latent_dim: 64, codes: 10},
            inputs: {images: {shape: [28, 28, 1]}}}
    compile:
      d_optimizer: {type: Adam, learning_rate: 0.0002, beta_1: 0.5}
      g_optimizer: {type: Adam, learning_rate: 0.0002, beta_1: 0.5}
      loss_fn: {type: BinaryCrossentropy, from_logits: true}
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

import trainctl


@keras.saving.register_keras_serializable(package="trainctl_examples")
class LatentCode(layers.Layer):
    """z -> [one_hot(argmax(z[:codes])), z]: a class (code) read off the latent vector.

    The argmax of ``codes`` independent standard normals is uniform over the codes, so
    the generator still takes plain N(0, 1) vectors (``trainctl predict``'s, or
    ``--input`` ones) and no sampler changes. The one-hot code lets the generator
    jump between digit shapes (a continuous map of a Gaussian must put some samples
    between the classes); the discriminator's class head (:meth:`GAN.class_loss`)
    makes it use the code: as the real images' class when they are labelled
    (AC-GAN, Odena et al. 2017), else as whatever it can tell back (InfoGAN, Chen
    et al. 2016).

    Args:
        codes: number of code values (the first ``codes`` entries of the latent).

    Example:
        >>> LatentCode(3)(np.array([[0.1, 2.0, -1.0, 0.5]], "float32"))  # code 1
        [[0., 1., 0., 0.1, 2., -1., 0.5]]
    """

    def __init__(self, codes: int, **kwargs):
        super().__init__(**kwargs)
        self.codes = codes

    def call(self, z):
        code = ops.one_hot(ops.argmax(z[:, :self.codes], axis=-1), self.codes, dtype=z.dtype)
        return ops.concatenate([code, z], axis=-1)

    def compute_output_shape(self, shape):
        return (shape[0], None if shape[1] is None else shape[1] + self.codes)

    def get_config(self):
        return {**super().get_config(), "codes": self.codes}


def make_generator(latent_dim: int, filters: int, image_size: int,
                   codes: int = 0) -> keras.Model:
    """Latent vector -> image in [0, 1]: dense to (size/4)^2 maps, two 2x upsamplings.

    Nearest-neighbour upsampling then a 3x3 convolution: on CPU several times cheaper
    than Conv2DTranspose for the same shapes (and free of its checkerboard artefacts).
    With ``codes``, :class:`LatentCode` first appends the one-hot code to the latent.
    """
    side = image_size // 4
    return keras.Sequential([
        keras.Input((latent_dim,), name="latent"),
        *([LatentCode(codes, name="code")] if codes else []),
        layers.Dense(side * side * filters * 2),
        layers.BatchNormalization(),  # DCGAN: batch norm in the generator steadies the game
        layers.LeakyReLU(0.2),
        layers.Reshape((side, side, filters * 2)),
        layers.UpSampling2D(),
        layers.Conv2D(filters * 2, 3, padding="same"),
        layers.BatchNormalization(),
        layers.LeakyReLU(0.2),
        layers.UpSampling2D(),
        layers.Conv2D(filters, 3, padding="same"),
        layers.BatchNormalization(),
        layers.LeakyReLU(0.2),
        # float32: samples stay exact under a mixed precision policy
        layers.Conv2D(1, 3, padding="same", activation="sigmoid", dtype="float32"),
    ], name="generator")


def make_discriminator(filters: int, image_size: int, codes: int = 0) -> keras.Model:
    """Image -> logits: two strided convolutions, dropout, then 1 + ``codes`` logits:
    real (> 0) or fake, and the image's class (a real image's label, a fake's
    :class:`LatentCode`).
    """
    return keras.Sequential([
        keras.Input((image_size, image_size, 1)),
        layers.Conv2D(filters, 3, strides=2, padding="same"),
        layers.LeakyReLU(0.2),
        layers.Conv2D(filters * 2, 3, strides=2, padding="same"),
        layers.LeakyReLU(0.2),
        layers.Flatten(),
        layers.Dropout(0.2),
        layers.Dense(1 + codes, dtype="float32"),
    ], name="discriminator")


@trainctl.register("model")
@keras.saving.register_keras_serializable(package="trainctl_examples")
class GAN(keras.Model):
    """A DCGAN: ``call(images)`` is the discriminator's logit; ``generator`` draws images.

    Both networks are built in ``__init__`` (functional), so a saved ``model.keras``
    reloads with every weight in place. ``fit``/``evaluate`` take images alone or
    (images, class ids): with ``codes``, the labels train the discriminator's class
    head (AC-GAN, see :meth:`class_loss`); without, they are ignored.

    Args:
        latent_dim: size of the generator's input vector.
        filters: width of the first convolution (the others are twice it).
        image_size: side of the square one-channel images (a multiple of 4).
        seed: seed of the latent vectors drawn in ``train_step``.
        codes: number of classes read off the latent (:class:`LatentCode`; 0: none,
            a plain DCGAN). The class losses (:meth:`class_loss`) are added to
            ``d_loss`` and ``g_loss``.

    Example:
        >>> gan = GAN(latent_dim=64, codes=10)
        >>> gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5),
        ...             keras.optimizers.Adam(2e-4, beta_1=0.5),
        ...             keras.losses.BinaryCrossentropy(from_logits=True))
        >>> gan.fit(images, labels, batch_size=64)  # or gan.fit(images): no real-label term
    """

    def __init__(self, latent_dim: int = 64, filters: int = 16, image_size: int = 28,
                 seed: int = 1337, codes: int = 0, **kwargs):
        super().__init__(**kwargs)
        if codes > latent_dim:
            raise ValueError(f"codes ({codes}) cannot exceed latent_dim ({latent_dim})")
        if codes == 1:  # argmax of one entry: always code 0, a class head with nothing to learn
            raise ValueError("codes must be 0 (none) or at least 2")
        self.latent_dim, self.filters, self.image_size, self.seed = (
            latent_dim, filters, image_size, seed)
        self.codes = codes
        self.generator = make_generator(latent_dim, filters, image_size, codes)
        self.discriminator = make_discriminator(filters, image_size, codes)
        # a model variable: saved with the weights, so a resumed run draws the same latents
        self.seed_generator = keras.random.SeedGenerator(seed)
        # here, not in compile: trainctl calls the model (builds it) before compiling.
        # `loss` (d_loss + g_loss) is what trainctl watches for NaN/inf and, without
        # fit.monitor, for best.keras; the game's progress is in the other two.
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")

    def compile(self, d_optimizer, g_optimizer, loss_fn, **kwargs):
        """Set the two optimizers and the loss; ``kwargs`` (steps_per_execution,
        jit_compile) go to Keras.

        ``optimizer=None``: Keras would otherwise add a third, unused RMSprop.
        Each optimizer is built on its own network's variables here, so resumable
        state holds exactly its slots.
        """
        super().compile(optimizer=None, **kwargs)
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    @property
    def metrics(self):
        return [self.loss_tracker, self.d_loss_tracker, self.g_loss_tracker]

    def _track(self, d_loss, g_loss):
        self.loss_tracker.update_state(d_loss + g_loss)
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {m.name: m.result() for m in self.metrics}

    def call(self, images, training=False):
        """The discriminator's real/fake logit (its class logits left out)."""
        return self.discriminator(images, training=training)[:, :1]

    def _latents(self, batch):
        return keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)

    def class_loss(self, classes, class_logits):
        """Mean cross-entropy of the discriminator's class logits against ``classes``
        (integer ids): on real images with their labels (AC-GAN's real-label term), on
        fakes with their latent's code (:class:`LatentCode`); 0 without ``codes``."""
        if not self.codes or classes is None:
            return 0.0
        return ops.mean(keras.losses.sparse_categorical_crossentropy(
            classes, class_logits, from_logits=True))

    def _labels(self, y):
        """Class ids (batch,) int32 from a batch's targets, or None (unlabelled, no codes)."""
        if y is None or not self.codes:
            return None  # a plain DCGAN has no class head: labels are not its business
        y = keras.tree.flatten(y)[0]  # {output: ids} or ids
        if len(y.shape) > 2 or (len(y.shape) == 2 and y.shape[1] != 1):
            raise ValueError(
                f"GAN: the targets must be class ids (one integer in [0, {self.codes}) a "
                f"sample), or none; got a batch of shape {tuple(y.shape)} (one-hot labels? "
                "drop one_hot from data.targets)")
        return ops.cast(ops.reshape(y, (-1,)), "int32")

    def _fakes(self, batch, training):
        """Fresh fakes' real/fake logits and their class loss against their codes."""
        latents = self._latents(batch)
        logits = self.discriminator(self.generator(latents, training=training),
                                    training=training)
        codes = ops.argmax(latents[:, :self.codes], axis=-1) if self.codes else None
        return logits[:, :1], self.class_loss(codes, logits[:, 1:])

    def _both_losses(self, real, labels, training):
        """The discriminator's and the generator's loss on one batch of real images
        (``labels``: their class ids, or None)."""
        fake_logits, fake_class = self._fakes(ops.shape(real)[0], training)
        logits = self.discriminator(real, training=training)
        real_logits = logits[:, :1]
        d_loss = (self.loss_fn(ops.ones_like(real_logits), real_logits)
                  + self.loss_fn(ops.zeros_like(fake_logits), fake_logits)
                  + self.class_loss(labels, logits[:, 1:]) + fake_class)
        g_loss = self.loss_fn(ops.ones_like(fake_logits), fake_logits) + fake_class
        return d_loss, g_loss

    def _unpack(self, data):
        """(images, class ids or None) from a batch: images, (images,), (images, labels),
        each of them possibly {input name: array}."""
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return keras.tree.flatten(x)[0], self._labels(y)

    def train_step(self, data):
        real, labels = self._unpack(data)
        # 1. discriminator: real -> 1, fake -> 0; the class of reals (labels) and fakes (codes)
        with tf.GradientTape() as tape:
            d_loss, _ = self._both_losses(real, labels, training=True)
        weights = self.discriminator.trainable_weights
        self.d_optimizer.apply(tape.gradient(d_loss, weights), weights)
        # 2. generator: make the discriminator say 1, and read the code as the class,
        # on fresh fakes
        with tf.GradientTape() as tape:
            logits, fake_class = self._fakes(ops.shape(real)[0], training=True)
            g_loss = self.loss_fn(ops.ones_like(logits), logits) + fake_class
        weights = self.generator.trainable_weights
        self.g_optimizer.apply(tape.gradient(g_loss, weights), weights)
        return self._track(d_loss, g_loss)

    def test_step(self, data):
        d_loss, g_loss = self._both_losses(*self._unpack(data), training=False)
        return self._track(d_loss, g_loss)

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "filters": self.filters,
                "image_size": self.image_size, "seed": self.seed, "codes": self.codes}


@trainctl.register("dataset")
def mnist_images(ctx, *, limit: int | None = None):
    """MNIST images only (``y`` is None), found where the ``mnist`` source looks.

    Args:
        limit: keep only the first ``limit`` training and test images.
    """
    from trainctl.data.base import SOURCES, RawData
    from trainctl.data.types import Split

    raw = SOURCES["mnist"](ctx)
    cut = slice(None, limit)
    return RawData(train=Split(raw.train.x[cut]), test=Split(raw.test.x[cut]), files=raw.files)


mnist_images.trainctl_source = True  # takes trainctl's SourceContext, like `mnist`


@trainctl.register("callback")
class SampleGrid(keras.callbacks.Callback):
    """After each epoch, ``<folder>/epoch_NNN.png``: a grid of the generator's samples.

    The latent vectors are fixed (``seed``), so the grids of successive epochs
    show the same samples improving; with ``codes`` they are sorted by class. One ``predict`` of ``count`` samples and
    one ``imsave`` an epoch: well under a second.

    Args:
        count: samples in the grid (a square number draws a square grid).
        seed: seed of the fixed latent vectors.
        log_dir: the PNGs' folder; trainctl puts a relative one inside the run folder
            when the config names it (``log_dir: samples``).
    """

    def __init__(self, count: int = 64, seed: int = 0, log_dir: str = "samples"):
        super().__init__()
        self.count, self.seed, self.log_dir = count, seed, log_dir

    def on_epoch_end(self, epoch, logs=None):
        model = self.model
        z = np.random.default_rng(self.seed).normal(size=(self.count, model.latent_dim))
        codes = getattr(model, "codes", 0)
        if codes:  # by class (the latent's code), so the grid reads 0s, 1s, ... in order
            z = z[np.argsort(z[:, :codes].argmax(axis=1), kind="stable")]
        images = model.generator.predict(z.astype("float32"), verbose=0)
        out = Path(self.log_dir)
        out.mkdir(parents=True, exist_ok=True)
        save_grid(images, out / f"epoch_{epoch:03d}.png")


def save_grid(images: np.ndarray, path: Path) -> None:
    """Write ``images`` (N, H, W, 1) in [0, 1] as one PNG grid, ceil(sqrt(N)) columns.

    Example:
        >>> save_grid(model.generator.predict(z), Path("grid.png"))
    """
    import matplotlib

    matplotlib.use("Agg")  # no display; the cheapest backend
    import matplotlib.pyplot as plt

    n = len(images)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    h, w = images.shape[1:3]
    canvas = np.ones((rows * (h + 2), cols * (w + 2)), dtype=np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * (h + 2) + 1:r * (h + 2) + 1 + h, c * (w + 2) + 1:c * (w + 2) + 1 + w] = \
            img[..., 0]
    plt.imsave(path, canvas, cmap="gray", vmin=0.0, vmax=1.0)
