"""Training and sampling throughput of the Keras generators against the torch ones, in one process.

    python benchmarks/bench_keras.py [--preset small] [--batch-size 16] [--steps 20] [--repeats 2] [--json out.json]
    python benchmarks/bench_keras.py --layers      # crystens_keras.layers against the stock Keras layers

Pairs `gan-keras` with `gan` and `wgan-gp-keras` with `wgan-gp`. Every generator is
trained through `generator.fit` on the 1000 `mp20-sample` tensors with the same
batch size (each pair also with the same number of critic steps), after a warm-up
fit of 2 steps that builds the networks (and traces the Keras training step);
timings alternate between the two members of a pair and the best of the repeats
counts. Reported: training samples per second (steps × batch / seconds), their
ratio, parameter counts, and sampling throughput (`generator.sample`, tensors per
second). The torch and the Keras networks differ by design (2-D DCGAN-style versus
the paper's 3-D stacks; docs/generators-keras.md), so this compares the two
plugins as shipped, not the two frameworks on one network.

``--layers`` times one forward and backward pass of each fast layer of
:mod:`crystens_keras.layers` against the stock Keras layer on the shapes of the
small and paper networks (milliseconds, best of ``--repeats``).
"""

from __future__ import annotations

import argparse
import json
import os
import time

PAIRS = (("gan", "gan-keras"), ("wgan-gp", "wgan-gp-keras"))


def parameter_count(model) -> int:
    if getattr(model, "networks_", None):  # Keras
        return int(sum(network.count_params() for network in model.networks_.values()))
    return int(sum(p.numel() for module in model.modules_.values() for p in module.parameters()))


def time_fit(name: str, settings: dict, tensors, steps: int):
    from crystens_core import get_generator

    model = get_generator(name, **settings)
    model.fit(tensors, steps=2, progress=False)  # build, trace, warm up
    started = time.perf_counter()
    model.fit(tensors, steps=2 + steps, progress=False)
    return time.perf_counter() - started, model


def bench_layers(repeats: int) -> None:
    """Stock Keras layer versus crystens_keras.layers, forward + backward, in milliseconds."""
    from crystens_keras import layers as fast
    from crystens_keras.backend import keras, tf

    cases = [
        ("Conv3D 8→8 (7,7,1), 50×50×4, batch 32", lambda m: m.Conv3D(8, (7, 7, 1)), (32, 50, 50, 4, 8)),
        ("Conv3D 4→1 (1,1,10) stride 10, 64×64×40, batch 16", lambda m: m.Conv3D(1, (1, 1, 10), strides=(1, 1, 10)), (16, 64, 64, 40, 4)),
        ("Conv3DTranspose 4→2 (2,2,2) stride 2, 32×32×20, batch 16", lambda m: m.Conv3DTranspose(2, (2, 2, 2), strides=2), (16, 32, 32, 20, 4)),
        ("BatchNormalization, 64×64×40×2, batch 16", lambda m: m.BatchNormalization(), (16, 64, 64, 40, 2)),
    ]
    print(f"{'layer':58s} {'stock ms':>9s} {'fast ms':>8s} {'speed-up':>9s}")
    for label, make, shape in cases:
        x = tf.random.normal(shape)
        times = []
        for module in (keras.layers, fast):
            layer = make(module)
            layer.build(shape)

            @tf.function
            def step(x, layer=layer):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    loss = tf.reduce_sum(tf.square(layer(x, training=True)))
                return tape.gradient(loss, [x] + layer.trainable_weights)

            step(x)
            best = float("inf")
            for _ in range(repeats):
                started = time.perf_counter()
                step(x)
                best = min(best, time.perf_counter() - started)
            times.append(1000 * best)
        print(f"{label:58s} {times[0]:9.1f} {times[1]:8.1f} {times[0] / times[1]:8.1f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", choices=("small", "paper"))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--critic-steps", type=int, default=2, help="for both WGAN-GPs")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--samples", type=int, default=256, help="tensors generated for the sampling rate")
    parser.add_argument("--only", choices=("gan", "wgan-gp"), default=None, help="one pair only")
    parser.add_argument("--json", default=None, help="also write the figures as JSON")
    parser.add_argument("--layers", action="store_true", help="time the fast layers against the stock Keras layers instead")
    args = parser.parse_args()
    if args.layers:
        print(f"load average {os.getloadavg()[0]:.2f}")
        bench_layers(max(args.repeats, 3))
        print(f"load average {os.getloadavg()[0]:.2f}")
        return

    import torch

    from crystens_core import get_encoder
    from crystens_keras.backend import tf  # before anything imports triton (see crystens_keras/backend.py)
    from crystens_core.data import load_dataset

    data = load_dataset("mp20-sample")
    tensors = get_encoder("crystens").encode_batch(data.structures, data.spacegroups)
    load_start = os.getloadavg()
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), tensorflow {tf.__version__} "
        f"(intra-op {tf.config.threading.get_intra_op_parallelism_threads() or 'auto'}), {os.cpu_count()} CPUs; "
        f"mp20-sample {tensors.shape}; preset {args.preset}, batch {args.batch_size}, {args.steps} steps per timing, best of {args.repeats}; "
        f"load average {load_start[0]:.2f}"
    )
    rows = []
    for torch_name, keras_name in PAIRS:
        if args.only and torch_name != args.only:
            continue
        common = {"preset": args.preset, "batch_size": args.batch_size, "device": "cpu"}
        if torch_name == "wgan-gp":
            common["critic_steps"] = args.critic_steps
        seconds = {torch_name: [], keras_name: []}
        models = {}
        for _ in range(args.repeats):
            for name in (torch_name, keras_name):
                elapsed, models[name] = time_fit(name, common, tensors, args.steps)
                seconds[name].append(elapsed)
                print(f"  {name:14s} {elapsed:7.2f} s for {args.steps} steps", flush=True)
        row = {"pair": torch_name, "batch_size": args.batch_size}
        for name in (torch_name, keras_name):
            model = models[name]
            started = time.perf_counter()
            model.sample(args.samples, seed=0)
            row[name] = {
                "train_samples_per_s": args.steps * args.batch_size / min(seconds[name]),
                "seconds_per_step": min(seconds[name]) / args.steps,
                "parameters": parameter_count(model),
                "sample_tensors_per_s": args.samples / (time.perf_counter() - started),
                "settings": model.settings,
            }
        row["keras_over_torch"] = row[keras_name]["train_samples_per_s"] / row[torch_name]["train_samples_per_s"]
        rows.append(row)
    load_end = os.getloadavg()
    print()
    print(f"{'generator':14s} {'params':>11s} {'s/step':>8s} {'train samples/s':>16s} {'sample tensors/s':>17s}")
    for row in rows:
        for name in PAIRS[0 if row["pair"] == "gan" else 1]:
            r = row[name]
            print(f"{name:14s} {r['parameters']:11,d} {r['seconds_per_step']:8.3f} {r['train_samples_per_s']:16.1f} {r['sample_tensors_per_s']:17.1f}")
        print(f"{'':14s} Keras / torch training throughput: {row['keras_over_torch']:.3f}")
    print(f"load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"arguments": vars(args), "load_average": [load_start[0], load_end[0]], "rows": rows}, out, indent=1, default=str)


if __name__ == "__main__":
    main()
