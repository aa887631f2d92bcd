"""Commands on a finished run's model: evaluate, predict, export."""

from __future__ import annotations

from pathlib import Path

import click

from trainctl.cli import cli


def model_options(command):
    """--checkpoint, --unsafe and --verbose: how evaluate, predict and export load a run."""
    options = [
        click.option("--checkpoint", type=click.Choice(["final", "best", "last"]),
                     default="final", show_default=True,
                     help="The model: final (model.keras), or checkpoints/best.keras or "
                          "last.keras (also of a run that did not complete)."),
        click.option("--unsafe", is_flag=True,
                     help="Load the model without Keras's safe mode (it may run Python code "
                          "stored in the file, e.g. a Lambda layer): only for files you trust."),
        click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up messages."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@model_options
def evaluate(run_dir: Path, checkpoint: str, unsafe: bool, verbose: bool) -> None:
    """Evaluate a run's model on the test split; writes metrics.json (final model only)."""
    from trainctl.run.console import format_metrics
    from trainctl.run.evaluate import evaluate as run_evaluate

    metrics = run_evaluate(run_dir, verbose=verbose, unsafe=unsafe, checkpoint=checkpoint)
    # another model than the final one: say which, since metrics.json keeps the final's
    which = "" if checkpoint == "final" else f" ({checkpoint}.keras)"
    click.echo(f"test{which} - {format_metrics(metrics)}")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--input", "input_path", type=click.Path(dir_okay=False, path_type=Path),
              help=".npy (or .npz by input name) shaped like the model's inputs; "
                   "default: the test split.")
@click.option("--output", "output_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to save predictions: .npy, or .npz keyed by output name for a "
                   "model with several outputs (default: RUN_DIR/predictions.npy|.npz).")
@model_options
def predict(run_dir: Path, input_path: Path | None, output_path: Path | None,
            checkpoint: str, unsafe: bool, verbose: bool) -> None:
    """Predict with a run's model."""
    import numpy as np

    from trainctl.run.predict import predict as run_predict

    path, y = run_predict(run_dir, input_path=input_path, output_path=output_path,
                          verbose=verbose, unsafe=unsafe, checkpoint=checkpoint)
    shape = {k: np.shape(v) for k, v in y.items()} if isinstance(y, dict) else \
        [np.shape(v) for v in y] if isinstance(y, list) else np.shape(y)
    click.echo(f"predictions {shape} -> {path}")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", required=True,
              type=click.Choice(["saved_model", "litert", "onnx"]),
              help="SavedModel (serving_default signature), LiteRT flat buffer, or ONNX "
                   "(needs pip install 'trainctl[onnx]').")
@click.option("--output", "output_path", type=click.Path(path_type=Path),
              help="Where to write it (default: RUN_DIR/exports/saved_model/, "
                   "exports/litert/model.tflite or exports/onnx/model.onnx).")
@click.option("--force", is_flag=True, help="Replace an existing export at that path.")
@model_options
def export(run_dir: Path, fmt: str, output_path: Path | None, force: bool, checkpoint: str,
           unsafe: bool, verbose: bool) -> None:
    """Export a run's model for serving, checked against Keras on its test data.

    The artifact is loaded with its own runtime and a batch of the test split runs
    through it and through the Keras model: exit 1 when they differ by more than
    1e-4 (1e-3 for LiteRT), and nothing is written.
    """
    from trainctl.run.export import export as run_export

    record = run_export(run_dir, fmt=fmt, output=output_path, force=force, verbose=verbose,
                        unsafe=unsafe, checkpoint=checkpoint)
    click.echo(record["output"])
