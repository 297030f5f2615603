#!/usr/bin/env python3
"""Writes the `.npy` / `.npz` reader fixtures of `tests/npy.rs` with NumPy itself.

    python3 tools/npy_fixtures.py [OUT_DIR]        # default: tests/fixtures/npy

Every case is a pair of files holding the same values:

* `NAME_f.npy` — written in Fortran order (`fortran_order: True` in the header);
* `NAME_c.npy` — its C-order twin (same dtype, same shape, same values).

2-d and 3-d Fortran arrays are written by `np.save` (a transposed view or `np.asfortranarray`).
`np.save` never writes `fortran_order: True` for an array that is also C-contiguous (0-d, 1-d,
arrays with at most one axis longer than 1, empty arrays), yet NumPy reads such headers; those
cases are written with NumPy's own header writer (`np.lib.format.write_array_header_1_0`) followed by
the Fortran-order bytes (`arr.tobytes(order="F")`), exactly as `np.lib.format.write_array` lays them
out. Every file is read back with `np.load` and checked against its twin before the script ends.

Values: element k (C order) of a case with n elements is `(k - 5) * 0.25` for floats, `k - 5` for
signed integers and `(7 * k) % 256` for uint8, so every element of an array is distinct (a wrong
transposition cannot go unnoticed) and exactly representable.

`.npz` archives: `fortran.npz` (`np.savez`) and `fortran_compressed.npz` (`np.savez_compressed`,
deflate), each with members `f` (a Fortran-order float64 (3, 4) array), `c` (its C twin),
`g` (a Fortran-order big-endian float32 (2, 3, 4) array) and `d` (its C twin, little-endian).
Rerunning the script reproduces every file byte for byte (NumPy 2.4.6 stamps `.npz` members with
the zip epoch, 1980-01-01).
"""

import os
import sys

import numpy as np

DTYPES = {
    "f4": "<f4",
    "f8": "<f8",
    "u1": "|u1",
    "i4": "<i4",
    "i8": "<i8",
    "f4be": ">f4",
    "f8be": ">f8",
    "i4be": ">i4",
    "i8be": ">i8",
}

# name -> shape; every dtype is written in every shape.
SHAPES = {
    "2d": (3, 4),
    "3d": (2, 3, 4),
    "4d": (2, 3, 1, 5),  # a size-1 axis in the middle
}

# Shapes NumPy stores identically in both orders: header written by hand (NumPy's writer).
HAND_SHAPES = {
    "0d": (),
    "1d": (5,),
    "row": (1, 6),
    "empty": (0, 3),
}


def values(shape, dtype):
    n = int(np.prod(shape, dtype=np.int64))
    k = np.arange(n, dtype=np.int64)
    kind = np.dtype(dtype).kind
    if kind == "f":
        v = (k - 5) * 0.25
    elif kind == "u":
        v = (7 * k) % 256
    else:
        v = k - 5
    return v.astype(dtype).reshape(shape)


def save_fortran_by_hand(path, arr):
    """Writes `arr` with `fortran_order: True` whatever its contiguity (NumPy's header writer)."""
    header = {
        "descr": np.lib.format.dtype_to_descr(arr.dtype),
        "fortran_order": True,
        "shape": arr.shape,
    }
    with open(path, "wb") as fp:
        np.lib.format.write_array_header_1_0(fp, header)
        fp.write(arr.tobytes(order="F"))


def header_of(path):
    with open(path, "rb") as fp:
        version = np.lib.format.read_magic(fp)
        read = {(1, 0): np.lib.format.read_array_header_1_0}.get(
            version, np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read(fp)
    return shape, fortran, dtype


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join("tests", "fixtures", "npy")
    os.makedirs(out, exist_ok=True)
    written = []
    for dname, dtype in DTYPES.items():
        for sname, shape in list(SHAPES.items()) + list(HAND_SHAPES.items()):
            c = values(shape, dtype)
            assert c.flags.c_contiguous
            stem = os.path.join(out, f"{dname}_{sname}")
            np.save(stem + "_c.npy", c)
            if sname in SHAPES:
                f = np.asfortranarray(c)
                assert f.flags.f_contiguous and not f.flags.c_contiguous
                np.save(stem + "_f.npy", f)
            else:
                save_fortran_by_hand(stem + "_f.npy", c)
            written.append((stem, c))
    # A transposed view, the common way to meet a Fortran-order file.
    t = values((4, 3), "<f8").T
    assert t.flags.f_contiguous and not t.flags.c_contiguous
    np.save(os.path.join(out, "transposed_f.npy"), t)
    np.save(os.path.join(out, "transposed_c.npy"), np.ascontiguousarray(t))
    written.append((os.path.join(out, "transposed"), np.ascontiguousarray(t)))

    f8 = values((3, 4), "<f8")
    be = values((2, 3, 4), ">f4")
    members = dict(f=np.asfortranarray(f8), c=f8, g=np.asfortranarray(be), d=be.astype("<f4"))
    np.savez(os.path.join(out, "fortran.npz"), **members)
    np.savez_compressed(os.path.join(out, "fortran_compressed.npz"), **members)

    # Self-check: NumPy reads every file back as written, Fortran flags as intended.
    for stem, c in written:
        fa, ca = np.load(stem + "_f.npy"), np.load(stem + "_c.npy")
        for a in (fa, ca):
            assert a.dtype == c.dtype and a.shape == c.shape and np.array_equal(a, c), stem
        assert header_of(stem + "_f.npy")[1] is True, stem
        assert header_of(stem + "_c.npy")[1] is False, stem
    for name in ("fortran.npz", "fortran_compressed.npz"):
        with np.load(os.path.join(out, name)) as z:
            assert sorted(z.files) == ["c", "d", "f", "g"]
            assert np.array_equal(z["f"], z["c"]) and np.array_equal(z["g"], z["d"])
    print(f"numpy {np.__version__}: wrote {2 * len(written)} .npy and 2 .npz files to {out}")


if __name__ == "__main__":
    main()
