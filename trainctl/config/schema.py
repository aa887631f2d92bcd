"""The config schema: pydantic v2 models, strict, closed and frozen.

Every section forbids unknown keys, values are not coerced (``epochs: "2"`` is
an error, not 2), and a validated config cannot be changed. Components
(layers, losses, optimizers, ...) are kept as plain YAML values here — a name
or a ``{type: ..., **args}`` mapping — and checked against the registry's
catalog in :mod:`trainctl.config.validate`.

Example:
    >>> Experiment.model_validate({"data": {"source": "mnist"}, "model": {...}})
"""


import re
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag

from trainctl.sweep.space import SweepConfig

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Strict(BaseModel):
    """Base of every section: unknown keys are errors, no coercion, frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _component(value: Any) -> Any:
    if isinstance(value, str):
        if not value:
            raise ValueError("expected a component name; received an empty string")
        return value
    if isinstance(value, dict):
        if "type" not in value:
            raise ValueError("a component mapping needs a 'type' key naming the class, "
                             "e.g. {type: Dense, units: 64}")
        if not isinstance(value["type"], str) or not value["type"]:
            raise ValueError(f"'type' must be a name; received {value['type']!r}")
        return value
    raise ValueError(f"expected a name or a mapping with 'type'; "
                     f"received {value!r} ({type(value).__name__})")


Component = Annotated[Any, AfterValidator(_component)]
"""A name (``rmsprop``) or ``{type: Name, **constructor_args}``."""


def check_run_name(value: str) -> str:
    if not _NAME.fullmatch(value):  # match() lets "$" accept a trailing newline
        raise ValueError("expected 1-64 letters, digits, '_', '-' or '.', starting with a "
                         f"letter or digit (it becomes part of a folder name); received {value!r}")
    return value


def _transform(value: Any) -> Any:
    if not (isinstance(value, dict) and len(value) == 1):
        raise ValueError("expected a one-key mapping such as {rescale: 0.0039} or "
                         f"{{reshape: [784]}}; received {value!r}")
    return value


Transform = Annotated[Any, AfterValidator(_transform)]


class Validation(Strict):
    """Where validation data comes from: a holdout, a split fraction, or its own source."""

    holdout: Optional[Annotated[int, Field(ge=1)]] = None
    split: Optional[Annotated[float, Field(gt=0.0, lt=1.0)]] = None
    source: Optional[Component] = None
    path: Optional[str] = None
    use_test: bool = False


class SampleWeight(Strict):
    """``data.sample_weight``: training-sample weights derived from the labels.

    ``by_class`` maps a class id to a weight (others weigh 1.0); with several
    outputs, ``output`` names the output whose labels decide (default: the first).
    """

    by_class: dict[int, Annotated[float, Field(ge=0.0)]]
    output: Optional[str] = None


class DataConfig(Strict):
    """``data:``: the dataset, its transforms and splits (SPEC §5)."""

    source: Component
    path: Optional[str] = None
    features: list[Transform] = []
    targets: list[Transform] = []
    validation: Optional[Validation] = None
    test: bool = True
    shuffle: Union[bool, Annotated[int, Field(ge=1)]] = True
    sample_weight: Optional[SampleWeight] = None




class InputSpec(Strict):
    """One named model input."""

    shape: list[Optional[Annotated[int, Field(ge=1)]]]
    dtype: str = "float32"


class LayerSpec(BaseModel):
    """A layer: ``type``, optional ``name`` and ``inputs``; other keys are its arguments."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    type: Annotated[str, Field(min_length=1)]
    name: Optional[Annotated[str, Field(min_length=1)]] = None
    inputs: Optional[Union[str, list[str]]] = None

    @property
    def args(self) -> dict[str, Any]:
        """Constructor arguments: everything but ``type`` and ``inputs``."""
        out = dict(self.model_extra or {})
        if self.name is not None:
            out["name"] = self.name
        return out


class SubModel(Strict):
    """A reusable graph under ``model.submodels``: a layer ``{type: <its name>}`` makes a new
    instance (own weights) each time it is used."""

    inputs: Annotated[dict[str, InputSpec], Field(min_length=1)]
    layers: Annotated[list[LayerSpec], Field(min_length=1)]
    outputs: Optional[Union[str, list[str]]] = None


class WeightsFrom(Strict):
    """``model.weights_from`` as a mapping: where the starting weights come from.

    ``path``: a run folder (a glob such as ``runs/mnist-mlp-*`` takes the newest completed
    match), a ``.keras`` or a ``.weights.h5`` file, relative to the config file's folder.
    ``checkpoint`` (run folders only): ``final`` (model.keras), ``best`` or ``last``.
    ``skip_mismatch``: a layer whose shapes differ keeps its fresh weights instead of failing.
    """

    path: Annotated[str, Field(min_length=1)]
    checkpoint: Optional[Literal["final", "best", "last"]] = None
    skip_mismatch: bool = False


def _weights_from_kind(value: Any) -> Optional[str]:
    # tags named like the types, so error messages show no union-member names
    return "str" if isinstance(value, str) else \
        "dict" if isinstance(value, (dict, WeightsFrom)) else None


WeightsFromValue = Annotated[
    Union[Annotated[Annotated[str, Field(min_length=1)], Tag("str")],
          Annotated[WeightsFrom, Tag("dict")]],
    Discriminator(_weights_from_kind, custom_error_type="weights_from_type",
                  custom_error_message="expected a path (a run folder, a .keras or a "
                                       ".weights.h5 file) or a mapping {path, checkpoint, "
                                       "skip_mismatch}")]
"""``model.weights_from``: a path, or :class:`WeightsFrom`."""


class ModelConfig(Strict):
    """``model:``: named inputs, a list of layers, outputs (default: the last layer), and
    ``freeze``: layer names or globs (``dense_*``) whose weights do not train.
    ``weights_from`` starts the model from trained weights, layer by layer by name
    (a path, or :class:`WeightsFrom`).

    ``type`` (with ``args``) names a registered ``keras.Model`` subclass: with ``layers``
    the graph is built as ``type(inputs=..., outputs=...)`` (a Model overriding
    ``train_step``); without ``layers`` it is ``type(**args)`` (a subclassed model).
    """

    inputs: Annotated[dict[str, InputSpec], Field(min_length=1)]
    layers: list[LayerSpec] = []
    outputs: Optional[Union[str, list[str]]] = None
    freeze: list[Annotated[str, Field(min_length=1)]] = []
    submodels: dict[str, SubModel] = {}
    type: Optional[Annotated[str, Field(min_length=1)]] = None
    args: dict[str, Any] = {}
    weights_from: Optional[WeightsFromValue] = None


PerOutput = Any  # one value, a list (by output order) or a mapping (by output name)


class CompileConfig(Strict):
    """``compile:``: the arguments of ``model.compile``.

    Other keys are allowed here only for a ``model.type`` whose class defines its own
    ``compile`` (a GAN's ``d_optimizer``, ...): ``validate`` checks them against that
    method's signature and rejects them for any other model (trainctl.model_compile).
    """

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)
    optimizer: Component = "rmsprop"
    loss: PerOutput = None
    metrics: PerOutput = []
    weighted_metrics: PerOutput = []
    loss_weights: PerOutput = None
    # "auto": trainctl picks it (trainctl.run.execution): exact epochs, per-step hooks kept
    steps_per_execution: Union[Annotated[int, Field(ge=1)], Literal["auto"]] = "auto"
    jit_compile: Union[bool, Literal["auto"]] = "auto"


class FitConfig(Strict):
    """``fit:``: the arguments of ``model.fit``."""

    epochs: Annotated[int, Field(ge=0)] = 1
    batch_size: Annotated[int, Field(ge=1)] = 32
    steps_per_epoch: Optional[Annotated[int, Field(ge=1)]] = None
    validation_steps: Optional[Annotated[int, Field(ge=1)]] = None
    validation_freq: Annotated[int, Field(ge=1)] = 1
    loop: Literal["keras", "custom"] = "keras"
    log_every: Optional[Annotated[int, Field(ge=1)]] = None
    callbacks: list[Component] = []
    class_weight: Optional[dict[int, Annotated[float, Field(ge=0.0)]]] = None
    monitor: Optional[Annotated[str, Field(min_length=1)]] = None
    # epoch checkpoints kept as checkpoints/epoch-NNN.keras besides last and best
    # (the oldest pruned); 0: last.keras and best.keras only
    keep_checkpoints: Annotated[int, Field(ge=0)] = 0


class EvaluateConfig(Strict):
    """``evaluate:``: evaluation on the test split."""

    batch_size: Optional[Annotated[int, Field(ge=1)]] = None
    steps: Optional[Annotated[int, Field(ge=1)]] = None


class PredictConfig(Strict):
    """``predict:``: batch size for ``trainctl predict``."""

    batch_size: Optional[Annotated[int, Field(ge=1)]] = None


class Distribution(Strict):
    """``runtime.distribution``: the tf.distribute strategy.

    ``fit.batch_size`` is always the global batch: each step takes that many samples
    in all, split over the replicas (``mirrored``: the local devices;
    ``multi_worker``: the workers TF_CONFIG names, see ``trainctl launch``).
    """

    strategy: Literal["default", "one_device", "mirrored", "multi_worker"] = "default"
    device: Optional[str] = None
    logical_cpus: Optional[Annotated[int, Field(ge=1)]] = None


class Threads(Strict):
    """``runtime.threads``: TensorFlow's thread pools; 0 leaves TensorFlow's choice
    (one thread per core)."""

    intra_op: Annotated[int, Field(ge=0)] = 0
    inter_op: Annotated[int, Field(ge=0)] = 0


class MlflowTracking(Strict):
    """``runtime.tracking.mlflow``: where the run is logged (trainctl.run.tracking)."""

    # default: sqlite:///<runs folder>/mlflow.db, artifacts beside it
    uri: Optional[Annotated[str, Field(min_length=1)]] = None
    experiment: Optional[Annotated[str, Field(min_length=1)]] = None  # default: the run's name


class Tracking(Strict):
    """``runtime.tracking``: experiment trackers to log runs to."""

    mlflow: Optional[MlflowTracking] = None


class RuntimeConfig(Strict):
    """``runtime:``: precision, distribution, determinism, TensorBoard and the
    performance knobs (``threads``, ``prefetch``, ``cache``; see README "Speed")."""

    deterministic: bool = False
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = "float32"
    distribution: Distribution = Distribution()
    tensorboard: Union[bool, dict[str, Any]] = False
    threads: Threads = Threads()
    # batches tf.data prepares ahead of the step: "auto" (AUTOTUNE), 0 (none) or N
    prefetch: Union[Annotated[int, Field(ge=0)], Literal["auto"]] = "auto"
    # keep the validation and test batches after their first pass (they never change)
    cache: bool = False
    # curves.png in the run folder, drawn by a background process (trainctl.run.curves)
    plots: bool = True
    tracking: Tracking = Tracking()


class Experiment(Strict):
    """A whole experiment config (SPEC §2). Built only by :func:`trainctl.config.load_config`."""

    name: Optional[Annotated[str, AfterValidator(check_run_name)]] = None
    seed: Optional[Annotated[int, Field(ge=0, le=2**32 - 1)]] = None
    imports: list[Annotated[str, Field(min_length=1)]] = []
    extends: Optional[Union[str, list[str]]] = None
    data: DataConfig
    model: ModelConfig
    compile: CompileConfig = CompileConfig()
    fit: FitConfig = FitConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    predict: PredictConfig = PredictConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    sweep: Optional[SweepConfig] = None  # trainctl sweep's search space (trainctl.sweep.space)
