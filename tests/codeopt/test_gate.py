"""The correctness gate on awkward outputs."""

from __future__ import annotations

import numpy as np

from airda.codeopt import check_outputs


def test_equal_outputs_pass_including_empty_nan_and_inf():
    a = np.array([1.0, np.nan, np.inf, -np.inf, 0.0])
    assert check_outputs([a, np.zeros(0)], [a.copy(), np.zeros(0)]) is None
    assert check_outputs([np.int32(3)], [np.int32(3)]) is None


def test_nan_where_the_reference_has_a_number_fails():
    msg = check_outputs([np.array([1.0, np.nan])], [np.array([1.0, 2.0])])
    assert msg == "wrong output 0: NaN mismatch at index 1"


def test_wrong_infinity_fails_with_its_index():
    msg = check_outputs([np.array([1.0, -np.inf])], [np.array([1.0, np.inf])])
    assert msg is not None
    assert "index 1" in msg


def test_error_size_and_tolerances():
    ref = np.array([1e6, 1.0, 2.0], np.float32)
    out = ref.copy()
    out[0] += 50.0  # relative 5e-5: within rtol 1e-4
    assert check_outputs([out], [ref]) is None
    out[2] += 0.5
    msg = check_outputs([out], [ref], atol=1e-5, rtol=1e-4)
    assert msg.startswith("wrong output 0: max abs error 50 at index 0")


def test_shape_and_count_mismatch():
    assert "shape" in check_outputs([np.zeros(3)], [np.zeros(4)])
    assert "count" in check_outputs([np.zeros(3)], [])


def test_verify_function_results():
    ref = [np.ones(2)]
    assert check_outputs([np.ones(2)], ref, verify=lambda o, e: True) is None
    assert check_outputs([np.ones(2)], ref, verify=lambda o, e: None) is None
    assert check_outputs([np.ones(2)], ref, verify=lambda o, e: False) == "verify returned False"
    assert check_outputs([np.ones(2)], ref, verify=lambda o, e: "off by one") == (
        "verify failed: off by one"
    )

    def boom(o, e):
        raise AssertionError("bad row 3")

    assert (
        check_outputs([np.ones(2)], ref, verify=boom) == "verify failed: AssertionError: bad row 3"
    )
