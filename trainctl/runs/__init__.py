"""Looking at finished and running runs: ``trainctl runs list``, ``runs show`` and
``compare``. Reads run folders only (run.json, history.json, metrics.json,
config.yaml); imports neither TensorFlow nor matplotlib.
"""
