"""Plausible wrong answers to lab 00's exercise; tests/exercise_trials.py runs each against
the exercise's test cell in the executed lab, and only the reference may pass."""

WRONG_ANSWERS = {
    "lab00-matrix-bytes": [
        # the misconception: every value is 4 bytes, whatever the dtype
        "def matrix_bytes(rows, cols, dtype='float32'):\n"
        "    if rows < 0 or cols < 0:\n"
        "        raise ValueError('negative size')\n"
        "    return rows * cols * 4",
        # off by one: bits, not bytes, for the item size
        "def matrix_bytes(rows, cols, dtype='float32'):\n"
        "    if rows < 0 or cols < 0:\n"
        "        raise ValueError('negative size')\n"
        "    return rows * cols * np.dtype(dtype).itemsize * 8",
        # no check at the door: a negative size gives a negative number of bytes
        "def matrix_bytes(rows, cols, dtype='float32'):\n"
        "    return int(rows) * int(cols) * np.dtype(dtype).itemsize",
        # the lazy answer: build the matrix and ask NumPy
        "def matrix_bytes(rows, cols, dtype='float32'):\n"
        "    return np.zeros((rows, cols), dtype=dtype).nbytes",
    ],
}
