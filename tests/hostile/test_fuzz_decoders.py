"""A bounded run of the decoder fuzzer (benchmarks/fuzz_decoders.py runs 100 000 inputs):
no exception escapes, every ok result reads back as CIF, every failure has a clear
reason, summaries are strict JSON and nothing is printed to stderr."""

from crystens_core.fuzzing import decoder_variants, fuzz, real_tensors

COUNT = 1200  # inputs, spread over every decoder variant (about 10 s on a loaded 2-core machine)
SEED = 20261128


def test_bounded_fuzz_of_every_decoder_and_option(capfd):
    variants = decoder_variants()
    assert {label.split()[0] for label, _ in variants} >= {"auto", "paper"}
    report = fuzz(range(COUNT), SEED, real_tensors(limit=100), variants)
    out, err = capfd.readouterr()
    assert report.count == COUNT and report.ok > COUNT // 10
    assert report.exceptions == [], report.exceptions[:5]
    assert report.bad_ok == [], report.bad_ok[:5]
    assert report.bad_failures == [], report.bad_failures[:5]
    assert report.nonfinite_summaries == 0
    assert err == "", err[:500]
