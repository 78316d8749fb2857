/* teeprover._native: the one loop of the snarkjs key reader that no library does for us.
 *
 * from_montgomery: ffjavascript (snarkjs) stores base-field coordinates as x * 2^384 mod p
 *   (.zkey and .ptau points); neither curve library (py-arkworks-bls12381, ark-algebra-py) reads
 *   that form (nor projective input, which (xR : yR : R) would be), and converting in Python costs
 *   ~1.4 us a coordinate (~1.1 s for a 2^16 key) against ~0.1 us here.  Releases the GIL, checks
 *   every coordinate < p; errors are ValueError.
 *
 * REDC (Montgomery reduction with multiplier 1) on six 64-bit limbs, constant p of BLS12-381.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef unsigned __int128 u128;
static const uint64_t P[6] = {
    0xb9feffffffffaaabULL, 0x1eabfffeb153ffffULL, 0x6730d2a0f6b0f624ULL,
    0x64774b84f38512bfULL, 0x4b1ba7b6434bacd7ULL, 0x1a0111ea397fe69aULL};
static const uint64_t PINV = 0x89f3fffcfffcfffdULL; /* -p^-1 mod 2^64 */

static int geq_p(const uint64_t a[6]) {
    for (int i = 5; i >= 0; i--) {
        if (a[i] != P[i]) return a[i] > P[i];
    }
    return 1;
}

static void redc(uint64_t t[6]) {
    for (int i = 0; i < 6; i++) {
        uint64_t m = t[0] * PINV;
        u128 c = (u128)m * P[0] + t[0];
        uint64_t carry = (uint64_t)(c >> 64);
        for (int j = 1; j < 6; j++) {
            c = (u128)m * P[j] + t[j] + carry;
            t[j - 1] = (uint64_t)c;
            carry = (uint64_t)(c >> 64);
        }
        t[5] = carry;
    }
    if (geq_p(t)) {
        uint64_t borrow = 0;
        for (int j = 0; j < 6; j++) {
            u128 d = (u128)t[j] - P[j] - borrow;
            t[j] = (uint64_t)d;
            borrow = (uint64_t)(d >> 64) & 1;
        }
    }
}

static void load(uint64_t t[6], const unsigned char *src) {
    for (int j = 0; j < 6; j++) {
        uint64_t v = 0;
        for (int b = 7; b >= 0; b--) v = (v << 8) | src[8 * j + b];
        t[j] = v;
    }
}

static void store(unsigned char *dst, const uint64_t t[6]) {
    for (int j = 0; j < 6; j++) {
        uint64_t v = t[j];
        for (int b = 0; b < 8; b++) { dst[8 * j + b] = (unsigned char)v; v >>= 8; }
    }
}

/* Converts every 48-byte little-endian coordinate; returns the index of the first one >= p, or -1. */
static Py_ssize_t convert(const unsigned char *src, unsigned char *dst, Py_ssize_t count) {
    uint64_t t[6];
    for (Py_ssize_t i = 0; i < count; i++) {
        load(t, src + 48 * i);
        if (geq_p(t)) return i;
        redc(t);
        store(dst + 48 * i, t);
    }
    return -1;
}

static PyObject *from_montgomery(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    if (view.len % 48) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "length is not a multiple of 48 bytes");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, view.len);
    if (out == NULL) { PyBuffer_Release(&view); return NULL; }
    Py_ssize_t bad;
    Py_BEGIN_ALLOW_THREADS
    bad = convert((const unsigned char *)view.buf, (unsigned char *)PyBytes_AS_STRING(out), view.len / 48);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (bad >= 0) {
        Py_DECREF(out);
        PyErr_Format(PyExc_ValueError, "coordinate %zd is not reduced modulo p", bad);
        return NULL;
    }
    return out;
}

static PyMethodDef methods[] = {
    {"from_montgomery", from_montgomery, METH_O,
     "from_montgomery(data) -> bytes: 48-byte LE coordinates x*2^384 mod p -> x (each must be < p)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", NULL, -1, methods};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
