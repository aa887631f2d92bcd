"""``trainctl predict`` on a generative model: samples from its generator (S27).

Convention: a model with a ``generator`` (a Keras model) and an integer
``latent_dim`` (the GAN of examples/plugins/gan.py) is predicted through its
generator. Without ``--input`` it draws :data:`SAMPLES` latent vectors from a
standard normal seeded with the run's seed, so the same run gives the same
samples; ``--input latents.npy`` gives the vectors, shape ``(N, latent_dim)``.
What the model itself returns (a GAN: the discriminator's logit) is not what a
user asks ``predict`` for.

Example:
    >>> generator = generator_of(model)           # None for any other model
    >>> z = latents(64, generator.input_shape[-1], seed=27)
"""

from __future__ import annotations

from typing import Any

import numpy as np

SAMPLES = 64


def generator_of(model: Any) -> Any:
    """The model's ``generator`` when it follows the convention (also has ``latent_dim``).

    Example:
        >>> generator_of(keras.Sequential()) is None
        True
    """
    generator, latent_dim = getattr(model, "generator", None), getattr(model, "latent_dim", None)
    if generator is None or not isinstance(latent_dim, int) or not hasattr(generator, "predict"):
        return None
    return generator


def latents(count: int, latent_dim: int, *, seed: int | None) -> np.ndarray:
    """``count`` standard-normal vectors of size ``latent_dim`` (float32), seeded.

    Example:
        >>> latents(2, 3, seed=0).shape
        (2, 3)
    """
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count, latent_dim)).astype(np.float32)
