"""Running experiments: fit, evaluate and predict (imports TensorFlow)."""
