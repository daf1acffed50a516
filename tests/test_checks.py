"""The one rule for counts given as arguments (xvertfast._checks): each caller had its own, one
taking 2.0, another True, and each said so in its own words."""

import json
import math
import re

import numpy as np
import pytest
import torch

from xvertfast._checks import number_of, whole_number


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_python_and_numpy_integers_are_taken_as_plain_ints(value):
    got = whole_number(value, "tiles", "clahe", low=1)
    assert got == 3 and type(got) is int


@pytest.mark.parametrize("value", [2.0, np.float64(2.0), np.float32(2.0), 2.5, True, False, np.bool_(True), "2", None])
def test_floats_bools_and_strings_are_refused_naming_who_asked(value):
    with pytest.raises(ValueError, match=rf"^clahe: tiles must be a whole number >= 1 \(contextual regions per side\), "
                                         rf"got {re.escape(repr(value))}$"):  # fmt: skip
        whole_number(value, "tiles", "clahe", low=1, meaning="contextual regions per side")


def test_the_bounds_are_said_as_they_are_checked():
    assert whole_number(0, "pictures", "evaluate", low=0) == 0
    with pytest.raises(ValueError, match=r"^evaluate: pictures must be a whole number >= 0, got -1$"):
        whole_number(-1, "pictures", "evaluate", low=0)
    assert whole_number(64, "workers", low=1, high=64) == 64
    for outside in (0, 65):  # no who: the caller's message began with the name
        with pytest.raises(ValueError, match=rf"^workers must be a whole number from 1 to 64, got {outside}$"):
            whole_number(outside, "workers", low=1, high=64)
    with pytest.raises(ValueError, match=r"^f: n must be a whole number <= 2, got 3$"):
        whole_number(3, "n", "f", high=2)
    assert whole_number(-(10**30), "seed", "TrainConfig") == -(10**30)  # no bounds: any integer
    with pytest.raises(ValueError, match=r"^TrainConfig: seed must be a whole number, got 1.0$"):
        whole_number(1.0, "seed", "TrainConfig")


def test_floats_of_whole_numbers_are_taken_only_where_asked_for():
    assert whole_number(5e8, "max_pixels", "read_image", low=1, floats=True) == 500_000_000
    assert whole_number(np.float32(1440), "max_pixels", "read_image", low=1, floats=True) == 1440
    for bad in (1439.5, math.nan, math.inf, -math.inf, 0.0, True):
        with pytest.raises(ValueError, match=r"^read_image: max_pixels must be a whole number >= 1, got "):
            whole_number(bad, "max_pixels", "read_image", low=1, floats=True)


@pytest.mark.parametrize("value", [np.float32(0.35), np.float16(0.5), np.int64(3), np.array(np.float32(0.35))])
def test_a_numpy_scalar_is_read_as_its_python_number(value):
    # np.float32 came back as given: load_rois(lam=np.float32(0.35)) failed at its cache key, "Object
    # of type float32 is not JSON serializable"
    got = number_of(value, "lam", "load_rois")
    assert got == float(str(value)) and type(got) is type(value.item()) and json.loads(json.dumps(got)) == got


@pytest.mark.parametrize("value, number", [
    (np.float32(0.35), 0.35), (np.array(np.float32(0.35)), 0.35), (np.float16(0.1), 0.1),
    (np.float32(0.35000002), 0.35000002), (np.float32(np.inf), math.inf), (np.float64(0.1 + 0.2), 0.1 + 0.2),
    (np.float32(1e-45), 1e-45), (np.int32(7), 7),
])  # fmt: skip
def test_a_float32_value_is_read_as_the_decimal_it_reads_as(value, number):
    # np.float32(0.35) was read as 0.3499999940395355: load_rois keyed its crops and cache apart from
    # lam=0.35's, and configs recorded that; float64 values are kept to the last bit
    assert number_of(value, "lam", "load_rois") == number
    if not isinstance(value, np.ndarray) and value.dtype != np.float16:
        assert number_of(torch.tensor(value), "lam", "load_rois") == number


def test_a_whole_number_big_endian_array_and_bfloat16_are_read_as_meant():
    # the shortest decimal moved whole numbers (np.float32(123456792) read as 123456790, np.float16(65504)
    # as 65500: read_image's max_pixels), a big-endian array (">f4", not "float32") was read to its last
    # bit, and a bfloat16 0.35 as 0.349609375 where a float16 one read 0.35
    assert whole_number(np.float32(123456792), "max_pixels", "read_image", low=1, floats=True) == 123456792
    assert whole_number(np.float16(65504), "max_pixels", "read_image", low=1, floats=True) == 65504
    assert number_of(torch.tensor(123456792.0), "lam", None) == 123456792
    assert number_of(np.array(0.35, dtype=">f4"), "lam", None) == 0.35
    assert number_of(torch.tensor(0.35, dtype=torch.bfloat16), "lam", None) == 0.35
    assert number_of(torch.tensor(-3e-3, dtype=torch.bfloat16), "lam", None) == -3e-3
    assert number_of(torch.tensor(math.inf, dtype=torch.bfloat16), "lam", None) == math.inf
