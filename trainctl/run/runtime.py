"""Process-wide TensorFlow set-up: quiet start-up, seeds, determinism, precision, strategy.

All of these are global to the process in TensorFlow (KERAS3_NOTES: logical
devices, the precision policy and op determinism persist), so they are set in
one place, once, before the model is built.

Example:
    >>> tf = import_tensorflow(verbose=False)
    >>> strategy = configure(exp.runtime, seed=exp.seed)
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Any

from trainctl.config.schema import RuntimeConfig


def import_tensorflow(verbose: bool = False) -> Any:
    """Import TensorFlow with its C++ and oneDNN start-up noise silenced unless ``verbose``.

    TF 2.21 logs through absl before ``TF_CPP_MIN_LOG_LEVEL`` is read, so the
    only reliable silence is to point file descriptor 2 at /dev/null while the
    import and device discovery run (device discovery prints the CUDA probe).
    Python exceptions still propagate and are reported after the fd is restored.
    """
    if "tensorflow" in sys.modules or verbose:
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf = with_stderr_silenced(_import_and_discover)
    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"keras\..*", category=UserWarning,
                            message=r".*(tf\.data\.Dataset|HDF5 file).*")
    return tf


def _import_and_discover() -> Any:
    import tensorflow as tf

    tf.config.list_physical_devices()  # the CUDA probe prints here; no context yet
    return tf


def with_stderr_silenced(func: Any) -> Any:
    """``func()`` with file descriptor 2 pointed at /dev/null: for C++ code that prints
    there directly (TensorFlow's start-up, LiteRT's delegate); exceptions still propagate."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        return func()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def set_seed(seed: int | None, deterministic: bool) -> None:
    """Seed Python, NumPy and TensorFlow; make ops deterministic when asked."""
    import keras
    import tensorflow as tf

    if seed is not None:
        keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def set_precision(policy: str) -> None:
    """Set Keras's global dtype policy (``float32``, ``mixed_float16``, ``mixed_bfloat16``)."""
    import keras

    keras.mixed_precision.set_global_policy(policy)


def set_threads(threads: Any) -> None:
    """``runtime.threads``: the sizes of TensorFlow's intra-op and inter-op thread pools.

    0 leaves TensorFlow's choice (a thread per core: measured fastest here, see
    docs/benchmarks.md). The pools can only be sized before TensorFlow's first
    operation; a process that already ran one (several runs in one process) keeps
    its pools, and a different size asked for there is a UsageError.
    """
    import tensorflow as tf

    from trainctl.errors import UsageError

    wanted = {"intra_op": threads.intra_op, "inter_op": threads.inter_op}
    setters = {"intra_op": tf.config.threading.set_intra_op_parallelism_threads,
               "inter_op": tf.config.threading.set_inter_op_parallelism_threads}
    getters = {"intra_op": tf.config.threading.get_intra_op_parallelism_threads,
               "inter_op": tf.config.threading.get_inter_op_parallelism_threads}
    for pool, count in wanted.items():
        if count == 0 or getters[pool]() == count:
            continue
        try:
            setters[pool](count)
        except RuntimeError:
            raise UsageError(f"runtime.threads.{pool}: {count} threads asked, but TensorFlow "
                             f"was already initialised in this process with "
                             f"{getters[pool]() or 'its default'}; run this config in its "
                             "own process (e.g. `python -m trainctl fit ...`)") from None


def make_strategy(runtime: RuntimeConfig) -> Any:
    """The tf.distribute strategy of ``runtime.distribution``."""
    import tensorflow as tf

    dist = runtime.distribution
    if dist.strategy == "multi_worker":
        return _multi_worker()
    if dist.strategy == "one_device":
        return tf.distribute.OneDeviceStrategy(dist.device or "/cpu:0")
    if dist.strategy == "mirrored":
        if dist.logical_cpus:
            _split_cpu(dist.logical_cpus)
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
            return tf.distribute.MirroredStrategy(devices)
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _multi_worker() -> Any:
    """MultiWorkerMirroredStrategy over the workers of TF_CONFIG (just this process
    without it). It must come before TensorFlow's first operation, and its
    constructor waits until every worker of the cluster has started.

    No collective timeout (``CommunicationOptions(timeout_seconds=T)``): TF 2.21 keeps
    a thread alive for T seconds per collective, thousands within a minute, until
    thread creation fails and the process aborts. A dead worker is found without it:
    TensorFlow's coordination service misses its heartbeats within seconds.
    """
    import tensorflow as tf

    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as exc:
        from trainctl.errors import UsageError

        raise UsageError(f"runtime.distribution.strategy: multi_worker must be set up before "
                         f"TensorFlow's first operation, but this process ran one already "
                         f"({exc}); run it in its own process (`trainctl fit` or "
                         "`trainctl launch`), not after other runs in the same one") from None
    _reclaim_signals()
    return strategy


def _reclaim_signals() -> None:
    """Point SIGINT and SIGTERM at Python's handlers again.

    The strategy's start-up installs TensorFlow's own SIGTERM handler (its preemption
    notifier) over Python's, and a SIGTERM then never reaches trainctl: the run
    trained on to its end (measured). trainctl's handlers stop it at the next step.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler is not None:
            signal.signal(sig, handler)


def _split_cpu(count: int) -> None:
    """Split the CPU into ``count`` logical devices (only before TF initialises)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current and len(current) == count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    except RuntimeError:
        from trainctl.errors import UsageError

        have = len(tf.config.list_logical_devices("CPU"))
        raise UsageError(f"runtime.distribution.logical_cpus: {count} logical CPUs asked, but "
                         f"TensorFlow was already initialised in this process with {have}; "
                         "logical devices can only be set before TensorFlow's first "
                         "operation: run this config in its own process (e.g. `python -m "
                         "trainctl fit ...`), not after other runs in the same one") from None


def describe_strategy(strategy: Any) -> str:
    """``strategy: MirroredStrategy, 2 replicas (/cpu:0, /cpu:1)``: the line ``fit`` prints."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        from trainctl.run.workers import role

        count = strategy.num_replicas_in_sync
        return (f"strategy: MultiWorkerMirroredStrategy, {count} replica"
                f"{'s' if count != 1 else ''}; this is {role()}")
    devices = getattr(getattr(strategy, "extended", None), "worker_devices", ())
    where = f" ({', '.join(d.split('/device:')[-1].lower() for d in devices)})" \
        if devices else ""
    count = strategy.num_replicas_in_sync
    return (f"strategy: {type(strategy).__name__}, {count} "
            f"replica{'s' if count != 1 else ''}{where}")


def configure(runtime: RuntimeConfig, *, seed: int | None) -> Any:
    """Apply seed, determinism and precision; return the strategy to build under.

    A strategy other than the default is announced on stdout (its class and
    replica count), so a log shows that the run really was distributed.
    """
    set_threads(runtime.threads)  # first: thread pools and logical devices precede any op
    strategy = make_strategy(runtime)
    set_seed(seed, runtime.deterministic)
    set_precision(runtime.precision)
    if runtime.distribution.strategy != "default":
        print(describe_strategy(strategy), flush=True)
    return strategy


def configure_for(cfg: Any, *, seed: int | None) -> Any:
    """:func:`configure` for a loaded config: a distribution TensorFlow cannot set up
    (a device it cannot parse: ``garbage``, ``cpu:x``) is a ConfigError at its key.

    Example:
        >>> strategy = configure_for(cfg, seed=42)
    """
    from trainctl.errors import ConfigError

    runtime = cfg.experiment.runtime
    try:
        return configure(runtime, seed=seed)
    except (ValueError, TypeError) as exc:
        from trainctl.diagnose import exception_text

        first = exception_text(exc, lines=3)
        key = "runtime.distribution" + (".device" if runtime.distribution.device else "")
        raise ConfigError(f"TensorFlow cannot set up this distribution: "
                          f"{type(exc).__name__}: {first}", key=key, where=cfg.locate(key),
                          hint="a device is written like /cpu:0, /gpu:1 or "
                               "/job:worker/task:0/device:CPU:0") from None


def reset_process_state(verbose: bool = False) -> None:
    """Undo what one run set process-wide, so the next run in the process starts clean.

    KERAS3_NOTES (Runtime facts): the precision policy, op determinism and seeds
    persist across runs in one process, and Keras's auto-generated layer names drift.
    ``trainctl smoke`` calls this between configs. Logical devices and thread pools
    cannot be reset: configs that set them run in a process of their own.

    Args:
        verbose: show TensorFlow's start-up messages, if this imports it first.

    Example:
        >>> reset_process_state()  # float32 policy, no op determinism, a new Keras session
    """
    import_tensorflow(verbose)  # the first config of `trainctl smoke`: quietly
    import keras
    # TF 2.21 exports enable_op_determinism but not its inverse, which exists only in a
    # private module (tensorflow.python.framework.config.disable_op_determinism).
    from tensorflow.python.framework import config as tf_config

    keras.mixed_precision.set_global_policy("float32")
    tf_config.disable_op_determinism()
    keras.backend.clear_session()
    # Every run seeds itself; this only keeps one run's RNG state from reaching code that
    # runs before the next run's seeding (plug-in imports, model construction order).
    keras.utils.set_random_seed(0)
