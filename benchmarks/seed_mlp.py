"""The users' plain Keras script for the seed MLP (S1), as written in ../shared/seeds/000.

Run: python benchmarks/seed_mlp.py [--seed N] [--data ../shared/datasets/mnist.npz]
Prints test accuracy and model.fit's wall time; the reference against which trainctl's
mnist config is compared (benchmarks/runner_vs_script.py runs both).
"""

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--data", default="../shared/datasets/mnist.npz")
    args = parser.parse_args()

    import keras
    from keras import layers

    if args.seed is not None:
        keras.utils.set_random_seed(args.seed)
    with np.load(args.data) as f:
        x_train, y_train, x_test, y_test = (f[k] for k in ("x_train", "y_train", "x_test", "y_test"))

    inputs = keras.Input(shape=(784,), name="digits")
    x = layers.Dense(64, activation="relu", name="dense_1")(inputs)
    x = layers.Dense(64, activation="relu", name="dense_2")(x)
    outputs = layers.Dense(10, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)

    x_train = x_train.reshape(60000, 784).astype("float32") / 255
    x_test = x_test.reshape(10000, 784).astype("float32") / 255
    y_train = y_train.astype("float32")
    y_test = y_test.astype("float32")
    x_val, y_val = x_train[-10000:], y_train[-10000:]
    x_train, y_train = x_train[:-10000], y_train[:-10000]

    model.compile(optimizer=keras.optimizers.RMSprop(),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy()])
    started = time.perf_counter()
    model.fit(x_train, y_train, batch_size=64, epochs=2, validation_data=(x_val, y_val),
              verbose=2)
    fit_seconds = time.perf_counter() - started
    results = model.evaluate(x_test, y_test, batch_size=128, verbose=0)
    print(f"test loss {results[0]:.4f}, test acc {results[1]:.4f}")
    print(f"fit seconds {fit_seconds:.3f}")


if __name__ == "__main__":
    main()
