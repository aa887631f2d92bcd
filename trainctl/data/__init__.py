"""Data for a run: sources, transforms, splits, checks against the model, and tf.data.

Importing this package does not import TensorFlow; only :func:`make_dataset`
(and the keras.datasets download fallback) do.

Example:
    >>> splits = load_splits(exp.data, config_dir=cfg.config_dir, signature=sig,
    ...                      seed=exp.seed, locate=cfg.locate)
    >>> check_against_model(splits, sig, locate=cfg.locate)
    >>> train = make_dataset(splits.train, batch_size=64, shuffle=exp.data.shuffle,
    ...                      seed=exp.seed)
"""

from trainctl.data.base import SOURCES, RawData, SourceContext, source
from trainctl.data.checks import check_against_model
from trainctl.data.load import load_splits
from trainctl.data.pipeline import batches_per_pass, make_dataset, make_stream
from trainctl.data.sources import check_source, source_names
from trainctl.data.transforms import TRANSFORMS, apply_transforms, check_transform, \
    check_transforms
from trainctl.data.types import OutputInfo, Signature, Split, Splits
from trainctl.data.weights import weigh_splits

__all__ = [
    "SOURCES", "TRANSFORMS", "OutputInfo", "RawData", "Signature", "SourceContext", "Split",
    "Splits", "apply_transforms", "batches_per_pass", "check_against_model", "check_source",
    "check_transform", "check_transforms", "load_splits", "make_dataset", "make_stream", "source",
    "source_names", "weigh_splits",
]
