/* teeprover._native: the loops over many points that neither curve library does for us.
 *
 * from_montgomery: ffjavascript (snarkjs) stores base-field coordinates as x * 2^384 mod p
 *   (.zkey and .ptau points); neither curve library (py-arkworks-bls12381, ark-algebra-py) reads
 *   that form (nor projective input, which (xR : yR : R) would be), and converting in Python costs
 *   ~1.4 us a coordinate (~1.1 s for a 2^16 key) against ~0.1 us here.  Releases the GIL, checks
 *   every coordinate < p; errors are ValueError.
 *
 * to_montgomery: the inverse (x -> x * 2^384 mod p), for writing .ptau/.zkey points.
 *
 * comb_table / comb_mul: [k * B for k in scalars] for one fixed base B of G1 or G2 with a comb
 *   table of w-bit digits (table[j][d] = d * 2^(w j) * B, affine, Montgomery form; w = 8: 32 mixed
 *   additions a point, 0.8 / 1.5 MB of table; w = 16: 16 additions, 100 / 200 MB), then one batch
 *   inversion for the affine results.  Neither curve library has a batch or fixed-base
 *   multiplication (only one point times one scalar, GIL held, ~100 us), and this is what the
 *   development .ptau and setup are made of: millions of multiples of the generators.  Output
 *   is affine x || y, little endian, Montgomery form (.ptau / .zkey layout) or standard form
 *   (the curve library's xy constructors), identity as zeros.  Releases the GIL.
 *
 * g1_scale: [k * P for P in points], one scalar for every G1 point (setup's division of the C and
 *   H queries by delta: two million points at k = 20): GLV, one joint width-5 NAF chain shared by
 *   every point, batch inversions.  See its section below.
 *
 * sums: sums of +-points in G1 or G2 (setup's A, B and C queries), mixed additions, one inversion
 *   per batch.  See its section below.
 *
 * fr_witness_map / fr_evaluations / fr_ntt: the prover's QAP witness map and A z, B z on 32-byte arrays
 *   (Fr, four limbs), so that no vector of n Python objects is made.  See its section below.
 *
 * blake2b_blocks: BLAKE2b-512 compression over whole 128-byte blocks from an exported state.  The
 *   .ptau contribution record stores a BLAKE2b mid-state (snarkjs's "partialHash"), which hashlib
 *   cannot export, and the Python compression runs at ~0.7 MB/s (hundreds of MB at power 20).
 *
 * Field arithmetic: Montgomery multiplication (CIOS) on six 64-bit limbs, constant p of BLS12-381,
 * in mulx/adcx/adox assembler where the CPU has BMI2 and ADX, portable C otherwise;
 * Fp2 = Fp[u]/(u^2 + 1).  Curve y^2 = x^3 + 4 (G1), y^2 = x^3 + 4(1 + u) (G2): Jacobian
 * coordinates, madd-2007-bl and dbl-2009-l (a = 0).  Correctness is checked against the curve
 * library in tests/unit/test_curve.py and tests/unit/test_native_scale.py (random scalars, both
 * groups, identity and edge cases; both field products against Python integers).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

typedef unsigned __int128 u128;
static const uint64_t P[6] = {
    0xb9feffffffffaaabULL, 0x1eabfffeb153ffffULL, 0x6730d2a0f6b0f624ULL,
    0x64774b84f38512bfULL, 0x4b1ba7b6434bacd7ULL, 0x1a0111ea397fe69aULL};
static const uint64_t PINV = 0x89f3fffcfffcfffdULL; /* -p^-1 mod 2^64 */

#define STR_(x) #x
#define STR(x) STR_(x)
#define UNROLL(n) _Pragma(STR(GCC unroll n))

/* Montgomery arithmetic modulo MOD: N 64-bit limbs, MOD odd with its top limb below 2^63 - 1, so that a
 * sum of two elements and CIOS's running sum need no extra word.  Shared by Fp (N = 6, below) and Fr
 * (N = 4, the scalar field: the prover's witness map).  MONT_FIELD gives F##_geq_mod, F##_load_le /
 * F##_store_le (little-endian bytes <-> limbs), F##_reduce_once, F##_add, F##_sub and F##_mul_c, the
 * portable CIOS product with the "no-carry" shortcut, its loops unrolled explicitly (gcc -O3 left the
 * outer one rolled: 67 -> 55 ns for Fp); MONT_FIELD_POW adds F##_pow, F##_inv (Fermat) and
 * F##_from_mont once F##_mul (the C or the mulx/adx product) exists. */
#define MONT_FIELD(F, N, MOD, PINV_)                                                            \
static inline int F##_geq_mod(const uint64_t a[N]) {                                            \
    for (int i = N - 1; i >= 0; i--) {                                                           \
        if (a[i] != MOD[i]) return a[i] > MOD[i];                                                \
    }                                                                                            \
    return 1;                                                                                    \
}                                                                                                \
static inline void F##_load_le(uint64_t t[N], const unsigned char *src) {                       \
    for (int j = 0; j < N; j++) {                                                                \
        uint64_t v = 0;                                                                          \
        for (int b = 7; b >= 0; b--) v = (v << 8) | src[8 * j + b];                              \
        t[j] = v;                                                                                \
    }                                                                                            \
}                                                                                                \
static inline void F##_store_le(unsigned char *dst, const uint64_t t[N]) {                      \
    for (int j = 0; j < N; j++) {                                                                \
        uint64_t v = t[j];                                                                       \
        for (int b = 0; b < 8; b++) { dst[8 * j + b] = (unsigned char)v; v >>= 8; }              \
    }                                                                                            \
}                                                                                                \
/* r = t mod MOD for t < 2 MOD, branch-free */                                                   \
static inline void F##_reduce_once(F *r, const uint64_t t[N]) {                                 \
    uint64_t s[N], borrow = 0;                                                                   \
    UNROLL(N)                                                                                    \
    for (int j = 0; j < N; j++) {                                                                \
        u128 d = (u128)t[j] - MOD[j] - borrow;                                                   \
        s[j] = (uint64_t)d;                                                                      \
        borrow = (uint64_t)(d >> 64) & 1;                                                        \
    }                                                                                            \
    uint64_t keep = -borrow; /* t < MOD: keep t, else t - MOD */                                 \
    UNROLL(N)                                                                                    \
    for (int j = 0; j < N; j++) r->l[j] = (t[j] & keep) | (s[j] & ~keep);                       \
}                                                                                                \
static inline void F##_add(F *r, const F *a, const F *b) { /* a, b < MOD: no carry out */       \
    uint64_t t[N], carry = 0;                                                                    \
    UNROLL(N)                                                                                    \
    for (int j = 0; j < N; j++) {                                                                \
        u128 c = (u128)a->l[j] + b->l[j] + carry;                                                \
        t[j] = (uint64_t)c;                                                                      \
        carry = (uint64_t)(c >> 64);                                                             \
    }                                                                                            \
    F##_reduce_once(r, t);                                                                       \
}                                                                                                \
static inline void F##_sub(F *r, const F *a, const F *b) {                                      \
    uint64_t t[N], borrow = 0;                                                                   \
    UNROLL(N)                                                                                    \
    for (int j = 0; j < N; j++) {                                                                \
        u128 d = (u128)a->l[j] - b->l[j] - borrow;                                               \
        t[j] = (uint64_t)d;                                                                      \
        borrow = (uint64_t)(d >> 64) & 1;                                                        \
    }                                                                                            \
    uint64_t mask = -borrow, carry = 0; /* a < b: add MOD back */                                \
    UNROLL(N)                                                                                    \
    for (int j = 0; j < N; j++) {                                                                \
        u128 c = (u128)t[j] + (MOD[j] & mask) + carry;                                           \
        r->l[j] = (uint64_t)c;                                                                   \
        carry = (uint64_t)(c >> 64);                                                             \
    }                                                                                            \
}                                                                                                \
/* a b / 2^(64 N) mod MOD (a, b < MOD); r may alias a or b */                                    \
static inline void F##_mul_c(F *r, const F *a, const F *b) {                                    \
    uint64_t t[N + 1];                                                                           \
    const uint64_t *x = a->l;                                                                    \
    UNROLL(N)                                                                                    \
    for (int i = 0; i < N; i++) {                                                                \
        uint64_t bi = b->l[i], carry = 0;                                                        \
        u128 c;                                                                                  \
        if (i == 0) {                                                                            \
            UNROLL(N)                                                                            \
            for (int j = 0; j < N; j++) {                                                        \
                c = (u128)x[j] * bi + carry;                                                     \
                t[j] = (uint64_t)c;                                                              \
                carry = (uint64_t)(c >> 64);                                                     \
            }                                                                                    \
        } else {                                                                                 \
            UNROLL(N)                                                                            \
            for (int j = 0; j < N; j++) {                                                        \
                c = (u128)x[j] * bi + t[j] + carry;                                              \
                t[j] = (uint64_t)c;                                                              \
                carry = (uint64_t)(c >> 64);                                                     \
            }                                                                                    \
        }                                                                                        \
        t[N] = carry;                                                                            \
        uint64_t m = t[0] * PINV_;                                                               \
        c = (u128)m * MOD[0] + t[0];                                                             \
        carry = (uint64_t)(c >> 64);                                                             \
        UNROLL(N)                                                                                \
        for (int j = 1; j < N; j++) {                                                            \
            c = (u128)m * MOD[j] + t[j] + carry;                                                 \
            t[j - 1] = (uint64_t)c;                                                              \
            carry = (uint64_t)(c >> 64);                                                         \
        }                                                                                        \
        t[N - 1] = t[N] + carry;                                                                 \
    }                                                                                            \
    F##_reduce_once(r, t);                                                                       \
}

#define MONT_FIELD_POW(F, N, MOD, ONE)                                                          \
static void F##_pow(F *r, const F *a, const uint64_t e[N]) { /* a^e, Montgomery form in and out */ \
    F acc = ONE;                                                                                 \
    for (int i = N - 1; i >= 0; i--) {                                                           \
        for (int b = 63; b >= 0; b--) {                                                          \
            F##_mul(&acc, &acc, &acc);                                                           \
            if ((e[i] >> b) & 1) F##_mul(&acc, &acc, a);                                         \
        }                                                                                        \
    }                                                                                            \
    *r = acc;                                                                                    \
}                                                                                                \
static void F##_inv(F *r, const F *a) { /* a^(MOD - 2) for a != 0; MOD's low limb is above 2 */ \
    uint64_t e[N];                                                                               \
    memcpy(e, MOD, sizeof e);                                                                    \
    e[0] -= 2;                                                                                   \
    F##_pow(r, a, e);                                                                            \
}                                                                                                \
static void F##_from_mont(F *r, const F *a) { /* Montgomery -> standard: times raw 1 */         \
    F one = {{1}};                                                                               \
    F##_mul(r, a, &one);                                                                         \
}

typedef struct { uint64_t l[6]; } fp;
MONT_FIELD(fp, 6, P, PINV)


/* ---------------------------------------------------------------- Fp in Montgomery form */

static fp FP_ONE; /* 2^384 mod p: one in Montgomery form */
static fp FP_R2;  /* 2^768 mod p: to_montgomery(x) = mont_mul(x, R2) */

static int FP_ADX; /* the CPU has mulx/adcx/adox (BMI2 + ADX): set once by init_constants */

/* The same product with mulx and two carry chains (adox for the low words, adcx for the high ones),
 * as blst and gnark do it.  On the 2-core EPYC of docs/benchmarks.md: ~38 ns a product in a loop of
 * independent ones, and g1_scale at 82 us a point against 107 with the C product below (under load,
 * same run), every curve operation being made of these.  The instructions are plain assembler text (no
 * -march needed at build time); fp_mul picks this only when the CPU reports BMI2 and ADX.  Checked
 * against Python integers, like the C version, by tests/unit/test_native_scale.py (fp_mul_check). */
#if defined(__x86_64__) && defined(__GNUC__)
#define FP_HAVE_ADX_ASM 1
/* one CIOS row: t += a * b[i] (mulx, lows on the OF chain, highs on the CF chain), then
 * t += m p with m = t0 * PINV, which zeroes t0: the caller rotates the registers (seven for Fp).  Its
 * pieces, shared by FP_ROW (six limbs) and FR_ROW (four, in the Fr section): load b[i]; one mulx with its
 * low and high words added on the two chains; close the OF chain into the top word; m = t0 * PINV. */
#define ADX_LOAD_B(BOFF) "movq " BOFF "(%[b]), %%rdx\n\t" "xorl %%eax, %%eax\n\t"
#define ADX_MUL(SRC, LO, HI) "mulxq " SRC ", %%rax, %%rbx\n\t" "adoxq %%rax, " LO "\n\t" "adcxq %%rbx, " HI "\n\t"
#define ADX_CLOSE(T) "movl $0, %%eax\n\t" "adoxq %%rax, " T "\n\t"
#define ADX_M(T0) "movq %[pinv], %%rdx\n\t" "imulq " T0 ", %%rdx\n\t" "xorl %%eax, %%eax\n\t"
#define FP_ROW(T0, T1, T2, T3, T4, T5, T6, BOFF)                                              \
    ADX_LOAD_B(BOFF)                                                                          \
    ADX_MUL("0(%[a])", T0, T1) ADX_MUL("8(%[a])", T1, T2) ADX_MUL("16(%[a])", T2, T3)         \
    ADX_MUL("24(%[a])", T3, T4) ADX_MUL("32(%[a])", T4, T5) ADX_MUL("40(%[a])", T5, T6)       \
    ADX_CLOSE(T6)                                                                             \
    ADX_M(T0)                                                                                 \
    ADX_MUL("%[p0]", T0, T1) ADX_MUL("%[p1]", T1, T2) ADX_MUL("%[p2]", T2, T3)                \
    ADX_MUL("%[p3]", T3, T4) ADX_MUL("%[p4]", T4, T5) ADX_MUL("%[p5]", T5, T6)                \
    ADX_CLOSE(T6)

static inline __attribute__((always_inline)) void fp_mul_adx(fp *r, const fp *a, const fp *b) {
    const uint64_t *pa = a->l, *pb = b->l; /* overwritten: the last two scratch registers */
    __asm__ volatile(
        "xorl %%r8d, %%r8d\n\t" "xorl %%r9d, %%r9d\n\t" "xorl %%r10d, %%r10d\n\t" "xorl %%r11d, %%r11d\n\t"
        "xorl %%r12d, %%r12d\n\t" "xorl %%r13d, %%r13d\n\t" "xorl %%r14d, %%r14d\n\t"
        FP_ROW("%%r8", "%%r9", "%%r10", "%%r11", "%%r12", "%%r13", "%%r14", "0")
        FP_ROW("%%r9", "%%r10", "%%r11", "%%r12", "%%r13", "%%r14", "%%r8", "8")
        FP_ROW("%%r10", "%%r11", "%%r12", "%%r13", "%%r14", "%%r8", "%%r9", "16")
        FP_ROW("%%r11", "%%r12", "%%r13", "%%r14", "%%r8", "%%r9", "%%r10", "24")
        FP_ROW("%%r12", "%%r13", "%%r14", "%%r8", "%%r9", "%%r10", "%%r11", "32")
        FP_ROW("%%r13", "%%r14", "%%r8", "%%r9", "%%r10", "%%r11", "%%r12", "40")
        /* t = (r14, r8, r9, r10, r11, r12) < 2p: subtract p into scratch, keep t if that borrowed */
        "movq %%r14, %%rax\n\t" "subq %[p0], %%rax\n\t"
        "movq %%r8, %%rbx\n\t" "sbbq %[p1], %%rbx\n\t"
        "movq %%r9, %%rdx\n\t" "sbbq %[p2], %%rdx\n\t"
        "movq %%r10, %%r13\n\t" "sbbq %[p3], %%r13\n\t"
        "movq %%r11, %[a]\n\t" "sbbq %[p4], %[a]\n\t"
        "movq %%r12, %[b]\n\t" "sbbq %[p5], %[b]\n\t"
        "cmovcq %%r14, %%rax\n\t" "cmovcq %%r8, %%rbx\n\t" "cmovcq %%r9, %%rdx\n\t"
        "cmovcq %%r10, %%r13\n\t" "cmovcq %%r11, %[a]\n\t" "cmovcq %%r12, %[b]\n\t"
        "movq %%rax, 0(%[r])\n\t" "movq %%rbx, 8(%[r])\n\t" "movq %%rdx, 16(%[r])\n\t"
        "movq %%r13, 24(%[r])\n\t" "movq %[a], 32(%[r])\n\t" "movq %[b], 40(%[r])\n\t"
        : [a] "+&r"(pa), [b] "+&r"(pb)
        : [r] "r"(r->l), [pinv] "m"(PINV),
          [p0] "m"(P[0]), [p1] "m"(P[1]), [p2] "m"(P[2]), [p3] "m"(P[3]), [p4] "m"(P[4]), [p5] "m"(P[5])
        : "rax", "rbx", "rdx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "cc", "memory");
}
#endif

static inline void fp_mul(fp *r, const fp *a, const fp *b) {
#ifdef FP_HAVE_ADX_ASM
    if (FP_ADX) { fp_mul_adx(r, a, b); return; }
#endif
    fp_mul_c(r, a, b);
}

static inline int fp_is_zero(const fp *a) {
    return (a->l[0] | a->l[1] | a->l[2] | a->l[3] | a->l[4] | a->l[5]) == 0;
}

MONT_FIELD_POW(fp, 6, P, FP_ONE)

/* Converts every 48-byte little-endian coordinate; returns the index of the first one >= p, or -1. */
static Py_ssize_t convert(const unsigned char *src, unsigned char *dst, Py_ssize_t count) {
    fp t;
    for (Py_ssize_t i = 0; i < count; i++) {
        fp_load_le(t.l, src + 48 * i);
        if (fp_geq_mod(t.l)) return i;
        fp_from_mont(&t, &t);
        fp_store_le(dst + 48 * i, t.l);
    }
    return -1;
}

/* ---------------------------------------------------------------- Fp2 = Fp[u]/(u^2+1) */

typedef struct { fp c0, c1; } fp2;

static inline void fp2_add(fp2 *r, const fp2 *a, const fp2 *b) { fp_add(&r->c0, &a->c0, &b->c0); fp_add(&r->c1, &a->c1, &b->c1); }
static inline void fp2_sub(fp2 *r, const fp2 *a, const fp2 *b) { fp_sub(&r->c0, &a->c0, &b->c0); fp_sub(&r->c1, &a->c1, &b->c1); }

static inline void fp2_mul(fp2 *r, const fp2 *a, const fp2 *b) { /* Karatsuba: 3 multiplications */
    fp t0, t1, s0, s1, t2;
    fp_mul(&t0, &a->c0, &b->c0);
    fp_mul(&t1, &a->c1, &b->c1);
    fp_add(&s0, &a->c0, &a->c1);
    fp_add(&s1, &b->c0, &b->c1);
    fp_mul(&t2, &s0, &s1);
    fp_sub(&r->c0, &t0, &t1);
    fp_sub(&t2, &t2, &t0);
    fp_sub(&r->c1, &t2, &t1);
}

static inline int fp2_is_zero(const fp2 *a) { return fp_is_zero(&a->c0) && fp_is_zero(&a->c1); }

static void fp2_inv(fp2 *r, const fp2 *a) { /* (a0 - a1 u) / (a0^2 + a1^2) */
    fp n0, n1, inv;
    fp_mul(&n0, &a->c0, &a->c0);
    fp_mul(&n1, &a->c1, &a->c1);
    fp_add(&n0, &n0, &n1);
    fp_inv(&inv, &n0);
    fp zero = {{0}};
    fp_mul(&r->c0, &a->c0, &inv);
    fp_sub(&n1, &zero, &a->c1);
    fp_mul(&r->c1, &n1, &inv);
}

/* ---------------------------------------------------------------- Jacobian points, generic over the field
 * F: field type, PFX: its function prefix.  Z = 0 is the identity. */

#define DEFINE_CURVE(F, PFX, NAME)                                                                    \
typedef struct { F x, y, z; } NAME##_jac;                                                             \
typedef struct { F x, y; int inf; } NAME##_aff;                                                       \
                                                                                                      \
static void NAME##_dbl(NAME##_jac *r, const NAME##_jac *p) { /* dbl-2009-l */                        \
    if (PFX##_is_zero(&p->z)) { *r = *p; return; }                                                    \
    F a, b, c, d, e, f, t;                                                                             \
    PFX##_mul(&a, &p->x, &p->x);                                                                       \
    PFX##_mul(&b, &p->y, &p->y);                                                                       \
    PFX##_mul(&c, &b, &b);                                                                             \
    PFX##_add(&t, &p->x, &b);                                                                          \
    PFX##_mul(&t, &t, &t);                                                                             \
    PFX##_sub(&t, &t, &a);                                                                             \
    PFX##_sub(&t, &t, &c);                                                                             \
    PFX##_add(&d, &t, &t);                                                                             \
    PFX##_add(&e, &a, &a);                                                                             \
    PFX##_add(&e, &e, &a);                                                                             \
    PFX##_mul(&f, &e, &e);                                                                             \
    F z3;                                                                                              \
    PFX##_mul(&z3, &p->y, &p->z);                                                                      \
    PFX##_add(&r->z, &z3, &z3);                                                                        \
    PFX##_sub(&r->x, &f, &d);                                                                          \
    PFX##_sub(&r->x, &r->x, &d);                                                                       \
    PFX##_sub(&t, &d, &r->x);                                                                          \
    PFX##_mul(&t, &e, &t);                                                                             \
    PFX##_add(&c, &c, &c);                                                                             \
    PFX##_add(&c, &c, &c);                                                                             \
    PFX##_add(&c, &c, &c);                                                                             \
    PFX##_sub(&r->y, &t, &c);                                                                          \
}                                                                                                     \
                                                                                                      \
/* r = p + q with q affine (madd-2007-bl); r may alias p. */                                          \
static void NAME##_madd(NAME##_jac *r, const NAME##_jac *p, const NAME##_aff *q, const F *one) {     \
    if (q->inf) { *r = *p; return; }                                                                  \
    if (PFX##_is_zero(&p->z)) { r->x = q->x; r->y = q->y; r->z = *one; return; }                     \
    F z1z1, u2, s2, h, hh, i, j, rr, v, t;                                                             \
    PFX##_mul(&z1z1, &p->z, &p->z);                                                                    \
    PFX##_mul(&u2, &q->x, &z1z1);                                                                      \
    PFX##_mul(&s2, &q->y, &p->z);                                                                      \
    PFX##_mul(&s2, &s2, &z1z1);                                                                        \
    PFX##_sub(&h, &u2, &p->x);                                                                         \
    PFX##_sub(&rr, &s2, &p->y);                                                                        \
    if (PFX##_is_zero(&h)) {                                                                          \
        if (PFX##_is_zero(&rr)) { NAME##_dbl(r, p); return; }                                         \
        memset(r, 0, sizeof *r); return;                                                              \
    }                                                                                                 \
    PFX##_add(&rr, &rr, &rr);                                                                          \
    PFX##_mul(&hh, &h, &h);                                                                            \
    PFX##_add(&i, &hh, &hh);                                                                           \
    PFX##_add(&i, &i, &i);                                                                             \
    PFX##_mul(&j, &h, &i);                                                                             \
    PFX##_mul(&v, &p->x, &i);                                                                          \
    F x3, y3, z3;                                                                                      \
    PFX##_mul(&x3, &rr, &rr);                                                                          \
    PFX##_sub(&x3, &x3, &j);                                                                           \
    PFX##_sub(&x3, &x3, &v);                                                                           \
    PFX##_sub(&x3, &x3, &v);                                                                           \
    PFX##_sub(&t, &v, &x3);                                                                            \
    PFX##_mul(&y3, &rr, &t);                                                                           \
    PFX##_mul(&t, &p->y, &j);                                                                          \
    PFX##_add(&t, &t, &t);                                                                             \
    PFX##_sub(&y3, &y3, &t);                                                                           \
    PFX##_add(&z3, &p->z, &h);                                                                         \
    PFX##_mul(&z3, &z3, &z3);                                                                          \
    PFX##_sub(&z3, &z3, &z1z1);                                                                        \
    PFX##_sub(&z3, &z3, &hh);                                                                          \
    r->x = x3; r->y = y3; r->z = z3;                                                                   \
}

DEFINE_CURVE(fp, fp, g1)
DEFINE_CURVE(fp2, fp2, g2)

static void fp_load_mont(fp *r, const unsigned char *src) { fp_load_le(r->l, src); }
static void fp_store(unsigned char *dst, const fp *a) { fp_store_le(dst, a->l); }

/* Normalise a batch of Jacobian points to affine (one inversion: Montgomery's trick) and write them
 * as x || y, Montgomery (mont = 1) or standard form; identity as zeros.  scratch: count elements. */
#define DEFINE_NORMALISE(F, PFX, NAME, NCOORD)                                                        \
static void NAME##_write_affine(NAME##_jac *pts, Py_ssize_t count, F *scratch, unsigned char *out,   \
                                int mont, const F *one) {                                             \
    F acc = *one;                                                                                     \
    for (Py_ssize_t i = 0; i < count; i++) {                                                          \
        scratch[i] = acc;                                                                             \
        if (!PFX##_is_zero(&pts[i].z)) PFX##_mul(&acc, &acc, &pts[i].z);                              \
    }                                                                                                 \
    F inv;                                                                                            \
    PFX##_inv(&inv, &acc);                                                                            \
    for (Py_ssize_t i = count - 1; i >= 0; i--) {                                                     \
        unsigned char *dst = out + (Py_ssize_t)i * 96 * NCOORD;                                       \
        if (PFX##_is_zero(&pts[i].z)) { memset(dst, 0, 96 * NCOORD); continue; }                      \
        F zinv, z2, x, y;                                                                             \
        PFX##_mul(&zinv, &inv, &scratch[i]);                                                          \
        PFX##_mul(&inv, &inv, &pts[i].z);                                                             \
        PFX##_mul(&z2, &zinv, &zinv);                                                                 \
        PFX##_mul(&x, &pts[i].x, &z2);                                                                \
        PFX##_mul(&z2, &z2, &zinv);                                                                   \
        PFX##_mul(&y, &pts[i].y, &z2);                                                                \
        const fp *cs[4];                                                                              \
        NAME##_coords(&x, &y, cs);                                                                    \
        for (int c = 0; c < 2 * NCOORD; c++) {                                                        \
            fp v = *cs[c];                                                                            \
            if (!mont) fp_from_mont(&v, cs[c]);                                                       \
            fp_store(dst + 48 * c, &v);                                                               \
        }                                                                                             \
    }                                                                                                 \
}

static void g1_coords(const fp *x, const fp *y, const fp *cs[4]) { cs[0] = x; cs[1] = y; }
static void g2_coords(const fp2 *x, const fp2 *y, const fp *cs[4]) {
    cs[0] = &x->c0; cs[1] = &x->c1; cs[2] = &y->c0; cs[3] = &y->c1;
}
DEFINE_NORMALISE(fp, fp, g1, 1)
DEFINE_NORMALISE(fp2, fp2, g2, 2)

static void g1_load_aff(g1_aff *a, const unsigned char *src) {
    static const unsigned char zero[96];
    a->inf = memcmp(src, zero, 96) == 0;
    fp_load_mont(&a->x, src);
    fp_load_mont(&a->y, src + 48);
}

static void g2_load_aff(g2_aff *a, const unsigned char *src) {
    static const unsigned char zero[192];
    a->inf = memcmp(src, zero, 192) == 0;
    fp_load_mont(&a->x.c0, src);
    fp_load_mont(&a->x.c1, src + 48);
    fp_load_mont(&a->y.c0, src + 96);
    fp_load_mont(&a->y.c1, src + 144);
}

#define COMB_BATCH 1024

/* Fixed-base comb with w-bit digits (w = 8 or 16): table[j * 2^w + d] = d * 2^(w j) * B, affine,
 * Montgomery form, read in place (entry d = 0 is never read).  k * B = sum_j table[j][digit_j(k)]. */
#define DEFINE_COMB(F, NAME, SIZE)                                                                    \
static int NAME##_comb(const unsigned char *table, int window, const unsigned char *scalars,        \
                       Py_ssize_t count, unsigned char *out, int mont, const F *one) {                \
    NAME##_jac *pts = PyMem_RawMalloc(sizeof(NAME##_jac) * COMB_BATCH);                               \
    F *scratch = PyMem_RawMalloc(sizeof(F) * COMB_BATCH);                                             \
    if (!pts || !scratch) { PyMem_RawFree(pts); PyMem_RawFree(scratch); return -1; }                  \
    const int rows = 256 / window;                                                                    \
    const Py_ssize_t width = (Py_ssize_t)1 << window;                                                 \
    for (Py_ssize_t start = 0; start < count; start += COMB_BATCH) {                                  \
        Py_ssize_t n = count - start < COMB_BATCH ? count - start : COMB_BATCH;                       \
        for (Py_ssize_t i = 0; i < n; i++) {                                                          \
            const unsigned char *k = scalars + 32 * (start + i);                                      \
            memset(&pts[i], 0, sizeof pts[i]);                                                        \
            for (int j = 0; j < rows; j++) {                                                          \
                unsigned d = window == 8 ? k[j] : ((unsigned)k[2 * j] | ((unsigned)k[2 * j + 1] << 8)); \
                if (d) {                                                                              \
                    NAME##_aff a;                                                                     \
                    NAME##_load_aff(&a, table + ((Py_ssize_t)j * width + d) * SIZE);                  \
                    NAME##_madd(&pts[i], &pts[i], &a, one);                                           \
                }                                                                                     \
            }                                                                                         \
        }                                                                                             \
        NAME##_write_affine(pts, n, scratch, out + start * SIZE, mont, one);                          \
    }                                                                                                 \
    PyMem_RawFree(pts); PyMem_RawFree(scratch);                                                       \
    return 0;                                                                                         \
}                                                                                                     \
                                                                                                      \
static int NAME##_table(const unsigned char *base, int window, unsigned char *out, const F *one) {   \
    const int rows = 256 / window;                                                                    \
    const Py_ssize_t width = (Py_ssize_t)1 << window;                                                 \
    NAME##_jac *pts = PyMem_RawMalloc(sizeof(NAME##_jac) * width);                                    \
    F *scratch = PyMem_RawMalloc(sizeof(F) * width);                                                  \
    if (!pts || !scratch) { PyMem_RawFree(pts); PyMem_RawFree(scratch); return -1; }                  \
    NAME##_aff b;                                                                                     \
    unsigned char next[SIZE];                                                                         \
    NAME##_load_aff(&b, base);                                                                        \
    for (int j = 0; j < rows; j++) {                                                                  \
        memset(&pts[0], 0, sizeof pts[0]);                                                            \
        for (Py_ssize_t d = 1; d < width; d++) NAME##_madd(&pts[d], &pts[d - 1], &b, one);            \
        NAME##_jac nb;                                                                                \
        NAME##_madd(&nb, &pts[width - 1], &b, one);                                                   \
        NAME##_write_affine(pts, width, scratch, out + (Py_ssize_t)j * width * SIZE, 1, one);         \
        NAME##_write_affine(&nb, 1, scratch, next, 1, one);                                           \
        NAME##_load_aff(&b, next);                                                                    \
    }                                                                                                 \
    PyMem_RawFree(pts); PyMem_RawFree(scratch);                                                       \
    return 0;                                                                                         \
}

DEFINE_COMB(fp, g1, 96)
DEFINE_COMB(fp2, g2, 192)

static fp2 FP2_ONE;

/* ---------------------------------------------------------------- one scalar, many G1 points (GLV)
 *
 * g1_scale: [k * P for P in points], every point multiplied by the same k (setup's division of the
 * C and H queries by delta: two million points at k = 20).  Neither curve library has a batch
 * operation, and a fixed-base table does not help a variable base, so this is the curve library's
 * multiplication redone with what the shared scalar allows:
 *
 *   GLV: phi(x, y) = (beta x, y) is lambda * P on G1, with lambda = z^2 - 1 (z = -0xd201000000010000,
 *     lambda^2 + lambda + 1 = 0 mod r) and beta the cube root of unity below; k = k1 + k2 lambda with
 *     k1 = k mod lambda, k2 = k div lambda, both < 2^128 (split by the caller, teeprover/curve.py), so
 *     k P = k1 P + k2 phi(P): 128 doublings instead of 255.  Valid for points of the prime-order
 *     subgroup only (lambda is phi's eigenvalue there): every point setup scales is one.
 *   Joint wNAF (width 5) over k1 and k2, recoded once for all points; a table of the odd multiples
 *     P, 3P, ..., 15P per point and their images under phi, made affine in batches (one inversion per
 *     SCALE_BATCH points, Montgomery's trick) so every addition is a mixed one.
 *   Results batch-normalised to affine x || y (standard or Montgomery form), identity as zeros.
 *
 * Input: affine x || y, standard form (g1s_to_xy layout), all zeros for the identity.  Releases the
 * GIL; teeprover/curve.py runs one call a core. */

static const uint64_t GLV_BETA[6] = { /* standard form; beta^3 = 1, phi(P) = lambda P (test_native_scale.py) */
    0x8bfd00000000aaacULL, 0x409427eb4f49fffdULL, 0x897d29650fb85f9bULL,
    0xaa0d857d89759ad4ULL, 0xec02408663d4de85ULL, 0x1a0111ea397fe699ULL};
static fp FP_BETA; /* Montgomery form, set by init_constants */

#define SCALE_WINDOW 5
#define SCALE_ODD (1 << (SCALE_WINDOW - 2)) /* odd multiples per table: P, 3P, ..., 15P */
#define SCALE_BATCH 256
#define SCALE_DIGITS 130

/* Width-5 NAF of a 128-bit k (little-endian bytes): digits in {0, +-1, +-3, ..., +-15}; returns the
 * number of digits (<= 129: k < 2^128, so k + 15 never wraps). */
static int wnaf128(int8_t digits[SCALE_DIGITS], const unsigned char *k16) {
    u128 k = 0;
    for (int b = 15; b >= 0; b--) k = (k << 8) | k16[b];
    int n = 0;
    memset(digits, 0, SCALE_DIGITS);
    while (k) {
        if (k & 1) {
            int d = (int)(k & ((1 << SCALE_WINDOW) - 1));
            if (d >= 1 << (SCALE_WINDOW - 1)) d -= 1 << SCALE_WINDOW;
            digits[n] = (int8_t)d;
            if (d > 0) k -= (u128)d; else k += (u128)(-d);
        }
        k >>= 1;
        n++;
    }
    return n;
}

/* Jacobian -> affine for count points with one inversion (z = 0 gives inf).  scratch: count elements. */
static void g1_batch_affine(const g1_jac *in, Py_ssize_t count, fp *scratch, g1_aff *out) {
    fp acc = FP_ONE;
    for (Py_ssize_t i = 0; i < count; i++) {
        scratch[i] = acc;
        if (!fp_is_zero(&in[i].z)) fp_mul(&acc, &acc, &in[i].z);
    }
    fp inv;
    fp_inv(&inv, &acc);
    for (Py_ssize_t i = count - 1; i >= 0; i--) {
        if (fp_is_zero(&in[i].z)) { memset(&out[i], 0, sizeof out[i]); out[i].inf = 1; continue; }
        fp zinv, z2;
        fp_mul(&zinv, &inv, &scratch[i]);
        fp_mul(&inv, &inv, &in[i].z);
        fp_mul(&z2, &zinv, &zinv);
        fp_mul(&out[i].x, &in[i].x, &z2);
        fp_mul(&z2, &z2, &zinv);
        fp_mul(&out[i].y, &in[i].y, &z2);
        out[i].inf = 0;
    }
}

typedef struct {
    g1_jac *jac;    /* SCALE_BATCH * SCALE_ODD */
    g1_aff *tab;    /* SCALE_BATCH * SCALE_ODD: (2j + 1) P */
    g1_aff *phi;    /* SCALE_BATCH * SCALE_ODD: phi((2j + 1) P) */
    g1_aff *base;   /* SCALE_BATCH: P, then 2P */
    fp *scratch;    /* SCALE_BATCH * SCALE_ODD */
} scale_work;

static void scale_work_free(scale_work *w) {
    PyMem_RawFree(w->jac); PyMem_RawFree(w->tab); PyMem_RawFree(w->phi); PyMem_RawFree(w->base);
    PyMem_RawFree(w->scratch);
}

static int scale_work_alloc(scale_work *w) {
    Py_ssize_t n = (Py_ssize_t)SCALE_BATCH * SCALE_ODD;
    w->jac = PyMem_RawMalloc(sizeof(g1_jac) * n);
    w->tab = PyMem_RawMalloc(sizeof(g1_aff) * n);
    w->phi = PyMem_RawMalloc(sizeof(g1_aff) * n);
    w->base = PyMem_RawMalloc(sizeof(g1_aff) * SCALE_BATCH);
    w->scratch = PyMem_RawMalloc(sizeof(fp) * n);
    if (!w->jac || !w->tab || !w->phi || !w->base || !w->scratch) { scale_work_free(w); return -1; }
    return 0;
}

/* Adds digit d (odd, non-zero) of table t (SCALE_ODD affine points) to acc. */
static inline void scale_add_digit(g1_jac *acc, const g1_aff *t, int d) {
    if (d > 0) { g1_madd(acc, acc, &t[d >> 1], &FP_ONE); return; }
    g1_aff q = t[(-d) >> 1];
    fp zero = {{0}};
    if (!q.inf) fp_sub(&q.y, &zero, &q.y);
    g1_madd(acc, acc, &q, &FP_ONE);
}

/* points (count * 96 bytes, standard form) times k1 + k2 lambda -> out (count * 96 bytes). */
static int g1_scale_points(const unsigned char *points, Py_ssize_t count, const unsigned char *k1,
                           const unsigned char *k2, unsigned char *out, int mont) {
    int8_t d1[SCALE_DIGITS], d2[SCALE_DIGITS];
    int n1 = wnaf128(d1, k1), n2 = wnaf128(d2, k2);
    int top = n1 > n2 ? n1 : n2;
    scale_work w;
    if (scale_work_alloc(&w) != 0) return -1;
    for (Py_ssize_t start = 0; start < count; start += SCALE_BATCH) {
        Py_ssize_t n = count - start < SCALE_BATCH ? count - start : SCALE_BATCH;
        /* P (Montgomery form) and 2P, made affine together */
        for (Py_ssize_t i = 0; i < n; i++) {
            const unsigned char *src = points + 96 * (start + i);
            g1_aff *p = &w.tab[i * SCALE_ODD];
            static const unsigned char zero[96];
            p->inf = memcmp(src, zero, 96) == 0;
            fp_load_le(p->x.l, src);
            fp_load_le(p->y.l, src + 48);
            fp_mul(&p->x, &p->x, &FP_R2);
            fp_mul(&p->y, &p->y, &FP_R2);
            g1_jac pj = {p->x, p->y, FP_ONE};
            if (p->inf) memset(&pj, 0, sizeof pj);
            g1_dbl(&w.jac[i], &pj);
        }
        g1_batch_affine(w.jac, n, w.scratch, w.base);
        /* (2j + 1) P = (2j - 1) P + 2P, then all made affine */
        for (Py_ssize_t i = 0; i < n; i++) {
            const g1_aff *p = &w.tab[i * SCALE_ODD];
            g1_jac *row = &w.jac[i * SCALE_ODD];
            if (p->inf) memset(&row[0], 0, sizeof row[0]);
            else { row[0].x = p->x; row[0].y = p->y; row[0].z = FP_ONE; }
            for (int j = 1; j < SCALE_ODD; j++) g1_madd(&row[j], &row[j - 1], &w.base[i], &FP_ONE);
        }
        g1_batch_affine(w.jac, n * SCALE_ODD, w.scratch, w.tab);
        for (Py_ssize_t e = 0; e < n * SCALE_ODD; e++) {
            w.phi[e] = w.tab[e];
            fp_mul(&w.phi[e].x, &w.tab[e].x, &FP_BETA);
        }
        /* the joint chain, the same for every point */
        for (Py_ssize_t i = 0; i < n; i++) {
            const g1_aff *t = &w.tab[i * SCALE_ODD], *f = &w.phi[i * SCALE_ODD];
            g1_jac acc;
            memset(&acc, 0, sizeof acc);
            for (int b = top - 1; b >= 0; b--) {
                g1_dbl(&acc, &acc);
                if (d1[b]) scale_add_digit(&acc, t, d1[b]);
                if (d2[b]) scale_add_digit(&acc, f, d2[b]);
            }
            w.jac[i] = acc;
        }
        g1_write_affine(w.jac, n, w.scratch, out + 96 * start, mont, &FP_ONE);
    }
    scale_work_free(&w);
    return 0;
}

/* g1_scale(points, k1, k2, montgomery) -> bytes: see the section comment.  k1, k2: 16 bytes LE each. */
static PyObject *g1_scale(PyObject *self, PyObject *args) {
    Py_buffer points, k1, k2;
    int mont;
    if (!PyArg_ParseTuple(args, "y*y*y*p", &points, &k1, &k2, &mont)) return NULL;
    PyObject *out = NULL;
    if (points.len % 96 || k1.len != 16 || k2.len != 16) {
        PyErr_SetString(PyExc_ValueError, "g1_scale: 96-byte affine points, 16-byte k1 and k2");
        goto done;
    }
    Py_ssize_t count = points.len / 96;
    const unsigned char *src = points.buf;
    for (Py_ssize_t i = 0; i < 2 * count; i++) { /* coordinates must be reduced (as from_montgomery checks) */
        uint64_t t[6];
        fp_load_le(t, src + 48 * i);
        if (fp_geq_mod(t)) {
            PyErr_Format(PyExc_ValueError, "g1_scale: coordinate %zd is not reduced modulo p", i);
            goto done;
        }
    }
    out = PyBytes_FromStringAndSize(NULL, points.len);
    if (out == NULL) goto done;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = g1_scale_points(src, count, k1.buf, k2.buf, (unsigned char *)PyBytes_AS_STRING(out), mont);
    Py_END_ALLOW_THREADS
    if (rc != 0) { Py_CLEAR(out); PyErr_NoMemory(); }
done:
    PyBuffer_Release(&points);
    PyBuffer_Release(&k1);
    PyBuffer_Release(&k2);
    return out;
}

static Py_ssize_t table_bytes(int group, int window) {
    return (Py_ssize_t)(256 / window) * ((Py_ssize_t)1 << window) * (group == 1 ? 96 : 192);
}

/* comb_table(group, base, window) -> bytes: the table of base (affine x || y, Montgomery form). */
static PyObject *comb_table(PyObject *self, PyObject *args) {
    int group, window;
    Py_buffer base;
    if (!PyArg_ParseTuple(args, "iy*i", &group, &base, &window)) return NULL;
    PyObject *out = NULL;
    if ((group != 1 && group != 2) || (window != 8 && window != 16) || base.len != (group == 1 ? 96 : 192)) {
        PyErr_SetString(PyExc_ValueError, "comb_table: group 1 or 2, window 8 or 16, one affine point");
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, table_bytes(group, window));
    if (out == NULL) goto done;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    if (group == 1)
        rc = g1_table(base.buf, window, (unsigned char *)PyBytes_AS_STRING(out), &FP_ONE);
    else
        rc = g2_table(base.buf, window, (unsigned char *)PyBytes_AS_STRING(out), &FP2_ONE);
    Py_END_ALLOW_THREADS
    if (rc != 0) { Py_CLEAR(out); PyErr_NoMemory(); }
done:
    PyBuffer_Release(&base);
    return out;
}

/* comb_mul(group, table, window, scalars, montgomery) -> bytes */
static PyObject *comb_mul(PyObject *self, PyObject *args) {
    int group, window, mont;
    Py_buffer table, scalars;
    if (!PyArg_ParseTuple(args, "iy*iy*p", &group, &table, &window, &scalars, &mont)) return NULL;
    Py_ssize_t size = group == 1 ? 96 : 192;
    PyObject *out = NULL;
    if ((group != 1 && group != 2) || (window != 8 && window != 16) || table.len != table_bytes(group, window)
        || scalars.len % 32) {
        PyErr_SetString(PyExc_ValueError, "comb_mul: group 1 or 2, window 8 or 16, a whole table, 32-byte scalars");
        goto done;
    }
    Py_ssize_t count = scalars.len / 32;
    out = PyBytes_FromStringAndSize(NULL, count * size);
    if (out == NULL) goto done;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    if (group == 1)
        rc = g1_comb(table.buf, window, scalars.buf, count, (unsigned char *)PyBytes_AS_STRING(out), mont, &FP_ONE);
    else
        rc = g2_comb(table.buf, window, scalars.buf, count, (unsigned char *)PyBytes_AS_STRING(out), mont, &FP2_ONE);
    Py_END_ALLOW_THREADS
    if (rc != 0) { Py_CLEAR(out); PyErr_NoMemory(); }
done:
    PyBuffer_Release(&table);
    PyBuffer_Release(&scalars);
    return out;
}

/* sums(group, points, terms, counts, montgomery) -> bytes: sums of +-points, affine.  points: affine
 * x || y of G1 or G2 (g1s_to_xy / g2s_to_xy layout), standard form, zeros for the identity; terms:
 * int32 (native order) t = +-(index + 1); counts: int32, how many consecutive terms each output
 * sums.  Setup's A, B and C queries are such sums (every coefficient +-1 for most circuits): one
 * mixed addition a term and one inversion per SCALE_BATCH outputs, where the curve library adds
 * point objects one at a time and inverts every sum on its own to encode it (~15 us in G1). */
static void g1_load_std(g1_aff *q, const unsigned char *src) {
    fp_load_le(q->x.l, src); fp_load_le(q->y.l, src + 48);
    fp_mul(&q->x, &q->x, &FP_R2); fp_mul(&q->y, &q->y, &FP_R2);
}
static void g2_load_std(g2_aff *q, const unsigned char *src) {
    fp_load_le(q->x.c0.l, src); fp_load_le(q->x.c1.l, src + 48); fp_load_le(q->y.c0.l, src + 96); fp_load_le(q->y.c1.l, src + 144);
    fp_mul(&q->x.c0, &q->x.c0, &FP_R2); fp_mul(&q->x.c1, &q->x.c1, &FP_R2);
    fp_mul(&q->y.c0, &q->y.c0, &FP_R2); fp_mul(&q->y.c1, &q->y.c1, &FP_R2);
}
static int std_reduced(const unsigned char *src, int coords) {
    for (int c = 0; c < coords; c++) {
        uint64_t v[6];
        fp_load_le(v, src + 48 * c);
        if (fp_geq_mod(v)) return 0;
    }
    return 1;
}

#define DEFINE_SUMS(F, PFX, NAME, SIZE)                                                               \
static int NAME##_sums_run(const unsigned char *points, const int32_t *terms, const int32_t *counts, \
                           Py_ssize_t outputs, unsigned char *out, int mont, const F *one, int32_t *bad) { \
    NAME##_jac *acc = PyMem_RawMalloc(sizeof(NAME##_jac) * SCALE_BATCH);                              \
    F *scratch = PyMem_RawMalloc(sizeof(F) * SCALE_BATCH);                                            \
    if (!acc || !scratch) { PyMem_RawFree(acc); PyMem_RawFree(scratch); return -1; }                  \
    static const unsigned char zero[SIZE];                                                            \
    const int32_t *t = terms;                                                                         \
    int rc = 0;                                                                                       \
    for (Py_ssize_t start = 0; start < outputs && rc == 0; start += SCALE_BATCH) {                    \
        Py_ssize_t n = outputs - start < SCALE_BATCH ? outputs - start : SCALE_BATCH;                 \
        for (Py_ssize_t i = 0; i < n && rc == 0; i++) {                                               \
            memset(&acc[i], 0, sizeof acc[i]);                                                        \
            for (int32_t j = 0; j < counts[start + i]; j++, t++) {                                    \
                int32_t idx = *t > 0 ? *t - 1 : -*t - 1;                                              \
                const unsigned char *src = points + SIZE * (Py_ssize_t)idx;                           \
                if (memcmp(src, zero, SIZE) == 0) continue;                                           \
                if (!std_reduced(src, SIZE / 48)) { *bad = idx; rc = 1; break; }                      \
                NAME##_aff q;                                                                         \
                q.inf = 0;                                                                            \
                NAME##_load_std(&q, src);                                                             \
                if (*t < 0) { F z; memset(&z, 0, sizeof z); PFX##_sub(&q.y, &z, &q.y); }              \
                NAME##_madd(&acc[i], &acc[i], &q, one);                                               \
            }                                                                                         \
        }                                                                                             \
        if (rc == 0) NAME##_write_affine(acc, n, scratch, out + SIZE * start, mont, one);             \
    }                                                                                                 \
    PyMem_RawFree(acc);                                                                               \
    PyMem_RawFree(scratch);                                                                           \
    return rc;                                                                                        \
}

DEFINE_SUMS(fp, fp, g1, 96)
DEFINE_SUMS(fp2, fp2, g2, 192)

static PyObject *sums(PyObject *self, PyObject *args) {
    Py_buffer points, terms, counts;
    int group, mont;
    if (!PyArg_ParseTuple(args, "iy*y*y*p", &group, &points, &terms, &counts, &mont)) return NULL;
    PyObject *out = NULL;
    Py_ssize_t size = group == 1 ? 96 : 192;
    if ((group != 1 && group != 2) || points.len % size || terms.len % 4 || counts.len % 4) {
        PyErr_SetString(PyExc_ValueError, "sums: group 1 or 2, affine points, int32 terms and counts");
        goto done;
    }
    Py_ssize_t npoints = points.len / size, nterms = terms.len / 4, outputs = counts.len / 4;
    const int32_t *t = terms.buf, *c = counts.buf;
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < outputs; i++) {
        if (c[i] < 0) { PyErr_SetString(PyExc_ValueError, "sums: negative count"); goto done; }
        total += c[i];
    }
    if (total != nterms) { PyErr_SetString(PyExc_ValueError, "sums: counts do not add up to the terms"); goto done; }
    for (Py_ssize_t i = 0; i < nterms; i++) {
        if (t[i] == 0 || t[i] == INT32_MIN || (t[i] > 0 ? t[i] : -t[i]) > npoints) {
            PyErr_Format(PyExc_ValueError, "sums: term %zd is not +-(index + 1) of a point", i);
            goto done;
        }
    }
    out = PyBytes_FromStringAndSize(NULL, size * outputs);
    if (out == NULL) goto done;
    int rc;
    int32_t bad = -1;
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS /* coordinates are checked (< p) as they are read */
    if (group == 1) rc = g1_sums_run(points.buf, t, c, outputs, dst, mont, &FP_ONE, &bad);
    else rc = g2_sums_run(points.buf, t, c, outputs, dst, mont, &FP2_ONE, &bad);
    Py_END_ALLOW_THREADS
    if (rc < 0) { Py_CLEAR(out); PyErr_NoMemory(); }
    else if (rc > 0) {
        Py_CLEAR(out);
        PyErr_Format(PyExc_ValueError, "sums: point %d has a coordinate not reduced modulo p", (int)bad);
    }
done:
    PyBuffer_Release(&points);
    PyBuffer_Release(&terms);
    PyBuffer_Release(&counts);
    return out;
}

static Py_ssize_t convert_to(const unsigned char *src, unsigned char *dst, Py_ssize_t count) {
    fp t;
    for (Py_ssize_t i = 0; i < count; i++) {
        fp_load_le(t.l, src + 48 * i);
        if (fp_geq_mod(t.l)) return i;
        fp_mul(&t, &t, &FP_R2);
        fp_store_le(dst + 48 * i, t.l);
    }
    return -1;
}

/* F##_mul_check(a, b, adx) -> bytes: the Montgomery products a_i b_i / 2^(64 N) mod MOD of (8 N)-byte LE
 * elements (each < MOD) with the chosen multiplication (adx: the assembler one, ValueError where the CPU
 * lacks it), so the tests can check both against Python integers: fp_mul_check here, fr_mul_check in
 * the Fr section. */
#ifdef FP_HAVE_ADX_ASM
#define MUL_PICK(F, r, x, y, adx) ((adx) ? F##_mul_adx(r, x, y) : F##_mul_c(r, x, y))
#define MUL_HAVE_ADX FP_ADX
#else
#define MUL_PICK(F, r, x, y, adx) F##_mul_c(r, x, y)
#define MUL_HAVE_ADX 0
#endif
#define MUL_CHECK(F, N, MODNAME)                                                                    \
static PyObject *F##_mul_check(PyObject *self, PyObject *args) {                                    \
    Py_buffer a, b;                                                                                 \
    int adx;                                                                                        \
    if (!PyArg_ParseTuple(args, "y*y*p", &a, &b, &adx)) return NULL;                                \
    PyObject *out = NULL;                                                                           \
    const Py_ssize_t size = 8 * N;                                                                  \
    if (a.len != b.len || a.len % size) {                                                           \
        PyErr_Format(PyExc_ValueError, #F "_mul_check: two equal runs of %zd-byte elements", size); \
        goto done;                                                                                  \
    }                                                                                               \
    if (adx && !MUL_HAVE_ADX) {                                                                     \
        PyErr_SetString(PyExc_ValueError, #F "_mul_check: this CPU has no BMI2/ADX");               \
        goto done;                                                                                  \
    }                                                                                               \
    out = PyBytes_FromStringAndSize(NULL, a.len);                                                   \
    if (out == NULL) goto done;                                                                     \
    for (Py_ssize_t i = 0; i < a.len / size; i++) {                                                 \
        F x, y, r;                                                                                  \
        F##_load_le(x.l, (const unsigned char *)a.buf + size * i);                                  \
        F##_load_le(y.l, (const unsigned char *)b.buf + size * i);                                  \
        if (F##_geq_mod(x.l) || F##_geq_mod(y.l)) {                                                 \
            Py_CLEAR(out);                                                                          \
            PyErr_SetString(PyExc_ValueError, #F "_mul_check: element >= " MODNAME);                \
            goto done;                                                                              \
        }                                                                                           \
        MUL_PICK(F, &r, &x, &y, adx);                                                               \
        F##_store_le((unsigned char *)PyBytes_AS_STRING(out) + size * i, r.l);                      \
    }                                                                                               \
done:                                                                                               \
    PyBuffer_Release(&a);                                                                           \
    PyBuffer_Release(&b);                                                                           \
    return out;                                                                                     \
}

MUL_CHECK(fp, 6, "p")

static PyObject *to_montgomery(PyObject *self, PyObject *arg) {
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
    bad = convert_to((const unsigned char *)view.buf, (unsigned char *)PyBytes_AS_STRING(out), view.len / 48);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (bad >= 0) {
        Py_DECREF(out);
        PyErr_Format(PyExc_ValueError, "coordinate %zd is not reduced modulo p", bad);
        return NULL;
    }
    return out;
}

/* ---------------------------------------------------------------- BLAKE2b compression (RFC 7693) */

static const uint64_t B2_IV[8] = {
    0x6A09E667F3BCC908ULL, 0xBB67AE8584CAA73BULL, 0x3C6EF372FE94F82BULL, 0xA54FF53A5F1D36F1ULL,
    0x510E527FADE682D1ULL, 0x9B05688C2B3E6C1FULL, 0x1F83D9ABFB41BD6BULL, 0x5BE0CD19137E2179ULL};
static const uint8_t B2_SIGMA[10][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0}};

#define ROTR64(x, n) (((x) >> (n)) | ((x) << (64 - (n))))
#define B2_G(a, b, c, d, x, y)                     \
    do {                                           \
        v[a] = v[a] + v[b] + (x); v[d] = ROTR64(v[d] ^ v[a], 32); \
        v[c] = v[c] + v[d]; v[b] = ROTR64(v[b] ^ v[c], 24);       \
        v[a] = v[a] + v[b] + (y); v[d] = ROTR64(v[d] ^ v[a], 16); \
        v[c] = v[c] + v[d]; v[b] = ROTR64(v[b] ^ v[c], 63);       \
    } while (0)

static void b2_compress(uint64_t h[8], const unsigned char *block, uint64_t t) {
    uint64_t m[16], v[16];
    for (int i = 0; i < 16; i++) {
        uint64_t x = 0;
        for (int b = 7; b >= 0; b--) x = (x << 8) | block[8 * i + b];
        m[i] = x;
    }
    for (int i = 0; i < 8; i++) { v[i] = h[i]; v[i + 8] = B2_IV[i]; }
    v[12] ^= t; /* t < 2^64 here: the high word stays zero; never the final block */
    for (int r = 0; r < 12; r++) {
        const uint8_t *s = B2_SIGMA[r % 10];
        B2_G(0, 4, 8, 12, m[s[0]], m[s[1]]);
        B2_G(1, 5, 9, 13, m[s[2]], m[s[3]]);
        B2_G(2, 6, 10, 14, m[s[4]], m[s[5]]);
        B2_G(3, 7, 11, 15, m[s[6]], m[s[7]]);
        B2_G(0, 5, 10, 15, m[s[8]], m[s[9]]);
        B2_G(1, 6, 11, 12, m[s[10]], m[s[11]]);
        B2_G(2, 7, 8, 13, m[s[12]], m[s[13]]);
        B2_G(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

/* blake2b_blocks(state64, data, done) -> state64: compress len(data)/128 blocks, block i with counter
 * done + 128 * (i + 1) (none is the final block). */
static PyObject *blake2b_blocks(PyObject *self, PyObject *args) {
    Py_buffer state, data;
    unsigned long long done;
    if (!PyArg_ParseTuple(args, "y*y*K", &state, &data, &done)) return NULL;
    PyObject *out = NULL;
    if (state.len != 64 || data.len % 128) {
        PyErr_SetString(PyExc_ValueError, "blake2b_blocks: state is 64 bytes, data whole 128-byte blocks");
        goto end;
    }
    uint64_t h[8];
    const unsigned char *st = state.buf;
    for (int i = 0; i < 8; i++) {
        uint64_t x = 0;
        for (int b = 7; b >= 0; b--) x = (x << 8) | st[8 * i + b];
        h[i] = x;
    }
    Py_BEGIN_ALLOW_THREADS
    const unsigned char *d = data.buf;
    for (Py_ssize_t i = 0; i < data.len / 128; i++) b2_compress(h, d + 128 * i, (uint64_t)done + 128 * (uint64_t)(i + 1));
    Py_END_ALLOW_THREADS
    out = PyBytes_FromStringAndSize(NULL, 64);
    if (out != NULL) {
        unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
        for (int i = 0; i < 8; i++) for (int b = 0; b < 8; b++) o[8 * i + b] = (unsigned char)(h[i] >> (8 * b));
    }
end:
    PyBuffer_Release(&state);
    PyBuffer_Release(&data);
    return out;
}

/* ---------------------------------------------------------------- Fr: the scalar field r, and the QAP witness map
 *
 * The prover's witness map (teeprover/groth16/qap.py) on 32-byte arrays instead of vectors of library
 * scalar objects (~93 B each: four or five vectors of n of them made the streamed prover's memory grow
 * with the domain; here it is a few n x 32-byte buffers), and A z, B z straight from a zkey's section 4.
 * Neither binding has an FFT over byte arrays nor one in ffjavascript's root order (ark-algebra-py's
 * Domain uses 7^t: its output had to be permuted), so the NTT is written here.
 *
 * Fr in Montgomery form on four 64-bit limbs, CIOS with the no-carry shortcut (r's top limb is below
 * 2^63 - 1): the mulx/adcx/adox rows of fp_mul_adx where the CPU has them (19 ns a dependent product
 * against 37 in C; the witness map at n = 2^20, ~6 x 10^7 products, took ~4.8 CPU-s with the C one),
 * portable C otherwise.
 *
 * NTT: radix 2, roots w_n = 5^((r-1)/n) (ffjavascript's, teeprover/curve.py:root_of_unity), one
 * twiddle table w^t (t < n/2).  The inverse is a decimation in frequency (natural order in, bit-reversed
 * out), the forward one a decimation in time (bit-reversed in, natural out): a transform pair needs no
 * permutation, and the coset shift between them multiplies coefficient k (at slot bitrev(k)) by
 * w_2n^k / n, where w_2n^(2t) = w^t comes from the same table.
 *
 * fr_witness_map(a, b): a, b = A z, B z on the domain (n x 32 bytes, little endian, standard form,
 *   constraint c at w^c) -> h with h_i = D(w_2n^(2i+1)), D = A B - C, C = A∘B on the domain: the three
 *   transforms run on their own threads (two or more cores), GIL released.
 * fr_evaluations(section4, witness, n): (A z, B z) from zkey section-4 records and the witness
 *   (32-byte values), one thread per matrix.
 * fr_ntt(data, inverse): the plain transform in natural order, what fr_witness_map is made of (tests).
 * fr_first_unreduced(data): index of the first 32-byte value >= r, or -1 (the .wtns check).
 * Checked against Python integers (naive O(n^2) evaluation, the Python evaluation of section 4) in
 * tests/unit/test_native_fr.py. */

typedef struct { uint64_t l[4]; } fr;

static const uint64_t FR_P[4] = {
    0xffffffff00000001ULL, 0x53bda402fffe5bfeULL, 0x3339d80809a1d805ULL, 0x73eda753299d7d48ULL};
static uint64_t FR_PINV; /* -r^-1 mod 2^64 */
static fr FR_ONE;        /* 2^256 mod r */
static fr FR_R2;         /* 2^512 mod r */
#define FR_MAX_LOG 31    /* domain sizes up to 2^31 (2n must divide 2^32, r's two-adicity) */
MONT_FIELD(fr, 4, FR_P, FR_PINV)


#ifdef FP_HAVE_ADX_ASM
/* The same product with mulx/adcx/adox, rows as FP_ROW above on four limbs (five words of t). */
#define FR_ROW(T0, T1, T2, T3, T4, BOFF)                                                      \
    ADX_LOAD_B(BOFF)                                                                          \
    ADX_MUL("0(%[a])", T0, T1) ADX_MUL("8(%[a])", T1, T2)                                     \
    ADX_MUL("16(%[a])", T2, T3) ADX_MUL("24(%[a])", T3, T4)                                   \
    ADX_CLOSE(T4)                                                                             \
    ADX_M(T0)                                                                                 \
    ADX_MUL("%[p0]", T0, T1) ADX_MUL("%[p1]", T1, T2)                                         \
    ADX_MUL("%[p2]", T2, T3) ADX_MUL("%[p3]", T3, T4)                                         \
    ADX_CLOSE(T4)

static inline __attribute__((always_inline)) void fr_mul_adx(fr *r, const fr *a, const fr *b) {
    __asm__ volatile(
        "xorl %%r8d, %%r8d\n\t" "xorl %%r9d, %%r9d\n\t" "xorl %%r10d, %%r10d\n\t" "xorl %%r11d, %%r11d\n\t"
        "xorl %%r12d, %%r12d\n\t"
        FR_ROW("%%r8", "%%r9", "%%r10", "%%r11", "%%r12", "0")
        FR_ROW("%%r9", "%%r10", "%%r11", "%%r12", "%%r8", "8")
        FR_ROW("%%r10", "%%r11", "%%r12", "%%r8", "%%r9", "16")
        FR_ROW("%%r11", "%%r12", "%%r8", "%%r9", "%%r10", "24")
        /* t = (r12, r8, r9, r10) < 2r: subtract r into scratch, keep t if that borrowed */
        "movq %%r12, %%rax\n\t" "subq %[p0], %%rax\n\t"
        "movq %%r8, %%rbx\n\t" "sbbq %[p1], %%rbx\n\t"
        "movq %%r9, %%rdx\n\t" "sbbq %[p2], %%rdx\n\t"
        "movq %%r10, %%r11\n\t" "sbbq %[p3], %%r11\n\t"
        "cmovcq %%r12, %%rax\n\t" "cmovcq %%r8, %%rbx\n\t" "cmovcq %%r9, %%rdx\n\t" "cmovcq %%r10, %%r11\n\t"
        "movq %%rax, 0(%[r])\n\t" "movq %%rbx, 8(%[r])\n\t" "movq %%rdx, 16(%[r])\n\t" "movq %%r11, 24(%[r])\n\t"
        :
        : [a] "r"(a->l), [b] "r"(b->l), [r] "r"(r->l), [pinv] "m"(FR_PINV),
          [p0] "m"(FR_P[0]), [p1] "m"(FR_P[1]), [p2] "m"(FR_P[2]), [p3] "m"(FR_P[3])
        : "rax", "rbx", "rdx", "r8", "r9", "r10", "r11", "r12", "cc", "memory");
}
#endif

static inline void fr_mul(fr *r, const fr *a, const fr *b) {
#ifdef FP_HAVE_ADX_ASM
    if (FP_ADX) { fr_mul_adx(r, a, b); return; }
#endif
    fr_mul_c(r, a, b);
}

MONT_FIELD_POW(fr, 4, FR_P, FR_ONE)

/* The primitive 2^k-th root of unity 5^((r-1) >> k), Montgomery form (k <= 32). */
static void fr_root(fr *w, int k) {
    uint64_t e[4];
    memcpy(e, FR_P, 32);
    e[0] -= 1; /* r - 1: r's low limb is odd */
    for (int s = 0; s < k; s++) { /* e >>= 1, four limbs */
        for (int j = 0; j < 3; j++) e[j] = (e[j] >> 1) | (e[j + 1] << 63);
        e[3] >>= 1;
    }
    fr five = {{5, 0, 0, 0}};
    fr_mul(&five, &five, &FR_R2);
    fr_pow(w, &five, e);
}

static void fr_init_constants(void) {
    uint64_t inv = 1; /* Newton: inv = r0^-1 mod 2^64 (doubles the correct bits each step) */
    for (int i = 0; i < 6; i++) inv *= 2 - FR_P[0] * inv;
    FR_PINV = -inv;
    fr x = {{1, 0, 0, 0}};
    for (int i = 0; i < 512; i++) {
        fr_add(&x, &x, &x);
        if (i == 255) FR_ONE = x;
    }
    FR_R2 = x;
}

static inline size_t fr_bitrev(size_t i, int logn) {
    size_t r = 0;
    for (int b = 0; b < logn; b++) { r = (r << 1) | (i & 1); i >>= 1; }
    return r;
}

/* tw[t] = w^t for t < max(1, n/2), w the primitive n-th root (Montgomery form). */
static void fr_twiddles(fr *tw, size_t n, int logn) {
    fr w;
    fr_root(&w, logn);
    tw[0] = FR_ONE;
    for (size_t t = 1; t < n / 2; t++) fr_mul(&tw[t], &tw[t - 1], &w);
}

/* Forward transform: bit-reversed in, natural out (Cooley-Tukey, decimation in time). */
static void fr_ntt_dit(fr *a, size_t n, const fr *tw) {
    for (size_t m = 1; m < n; m <<= 1) {
        size_t stride = n / (2 * m);
        for (size_t k = 0; k < n; k += 2 * m) {
            for (size_t j = 0; j < m; j++) {
                fr t, u = a[k + j];
                fr_mul(&t, &tw[j * stride], &a[k + j + m]);
                fr_add(&a[k + j], &u, &t);
                fr_sub(&a[k + j + m], &u, &t);
            }
        }
    }
}

/* Inverse transform without the 1/n: natural in, bit-reversed out (Gentleman-Sande, decimation in
 * frequency).  Twiddle w^-t = w^(n-t) = -w^(n/2-t) for 0 < t < n/2: (u - v) w^-t = (v - u) w^(n/2-t). */
static void fr_intt_dif(fr *a, size_t n, const fr *tw) {
    for (size_t m = n >> 1; m >= 1; m >>= 1) {
        size_t stride = n / (2 * m);
        for (size_t k = 0; k < n; k += 2 * m) {
            fr u = a[k], v = a[k + m];
            fr_add(&a[k], &u, &v);
            fr_sub(&a[k + m], &u, &v);
            for (size_t j = 1; j < m; j++) {
                fr d;
                u = a[k + j];
                v = a[k + j + m];
                fr_add(&a[k + j], &u, &v);
                fr_sub(&d, &v, &u);
                fr_mul(&a[k + j + m], &d, &tw[n / 2 - j * stride]);
            }
        }
    }
}

static void fr_bitrev_permute(fr *a, size_t n, int logn) {
    for (size_t i = 0; i < n; i++) {
        size_t j = fr_bitrev(i, logn);
        if (i < j) { fr t = a[i]; a[i] = a[j]; a[j] = t; }
    }
}

/* Runs fn(arg + i * size) for i < count, on count - 1 new threads and this one (all on this one if a
 * thread cannot be started).  Called with the GIL released; fn touches no Python object. */
static void fr_run_parallel(void *(*fn)(void *), void *args, size_t size, int count) {
    pthread_t th[8];
    int started[8] = {0};
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cores > 1;
    for (int i = 0; i < count - 1; i++) {
        if (threads && i < 8 && pthread_create(&th[i], NULL, fn, (char *)args + i * size) == 0) started[i] = 1;
        else fn((char *)args + i * size);
    }
    fn((char *)args + (count - 1) * size);
    for (int i = 0; i < count - 1 && i < 8; i++) {
        if (started[i]) pthread_join(th[i], NULL);
    }
}

typedef struct {
    fr *v;
    size_t n;
    int logn;
    const fr *tw;
    fr scale_even, scale_odd; /* 1/n and w_2n/n */
} fr_coset_job;

/* Values on the domain -> values on the odd coset w_2n * domain, in place, natural order. */
static void *fr_coset_run(void *arg) {
    fr_coset_job *j = arg;
    fr *v = j->v;
    fr_intt_dif(v, j->n, j->tw);
    for (size_t p = 0; p < j->n; p++) { /* slot p holds coefficient k = bitrev(p): times w_2n^k / n */
        size_t k = fr_bitrev(p, j->logn);
        fr_mul(&v[p], &v[p], &j->tw[k >> 1]);
        fr_mul(&v[p], &v[p], (k & 1) ? &j->scale_odd : &j->scale_even);
    }
    fr_ntt_dit(v, j->n, j->tw);
    return NULL;
}

/* Loads n 32-byte standard-form values into Montgomery form; returns the first index >= r, or -1. */
static Py_ssize_t fr_load_all(fr *dst, const unsigned char *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint64_t t[4];
        fr_load_le(t, src + 32 * i);
        if (fr_geq_mod(t)) return (Py_ssize_t)i;
        memcpy(dst[i].l, t, 32);
        fr_mul(&dst[i], &dst[i], &FR_R2);
    }
    return -1;
}

/* The first of count 32-byte standard-form values that is >= r, or -1. */
static Py_ssize_t fr_first_geq(const unsigned char *src, size_t count) {
    for (size_t i = 0; i < count; i++) {
        uint64_t t[4];
        fr_load_le(t, src + 32 * i);
        if (fr_geq_mod(t)) return (Py_ssize_t)i;
    }
    return -1;
}

/* v (Montgomery form) out as n 32-byte standard-form values; dst may be v's own storage. */
static void fr_store_all(unsigned char *dst, const fr *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        fr t;
        fr_from_mont(&t, &v[i]);
        fr_store_le(dst + 32 * i, t.l);
    }
}

/* 1/n in Montgomery form. */
static void fr_inv_n(fr *out, size_t n) {
    fr n_m = {{n, 0, 0, 0}};
    fr_mul(&n_m, &n_m, &FR_R2);
    fr_inv(out, &n_m);
}

static int fr_log2(Py_ssize_t n) { /* log2 of a power of two n <= 2^FR_MAX_LOG, else -1 */
    if (n < 1 || (n & (n - 1))) return -1;
    int k = 0;
    while (((Py_ssize_t)1 << k) < n) k++;
    return k <= FR_MAX_LOG ? k : -1;
}

/* fr_witness_map(a, b) -> bytes: see the section comment. */
static PyObject *fr_witness_map(PyObject *self, PyObject *args) {
    Py_buffer a, b;
    if (!PyArg_ParseTuple(args, "y*y*", &a, &b)) return NULL;
    PyObject *out = NULL;
    fr *va = NULL, *vb = NULL, *tw = NULL;
    int logn = a.len % 32 ? -1 : fr_log2(a.len / 32);
    if (a.len != b.len || logn < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "fr_witness_map: A z and B z are n x 32 bytes each, n a power of two <= 2^31");
        goto done;
    }
    size_t n = (size_t)1 << logn;
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(32 * n));
    va = PyMem_RawMalloc(sizeof(fr) * n);
    vb = PyMem_RawMalloc(sizeof(fr) * n);
    tw = PyMem_RawMalloc(sizeof(fr) * (n > 1 ? n / 2 : 1));
    if (out == NULL || va == NULL || vb == NULL || tw == NULL) {
        Py_CLEAR(out);
        PyErr_NoMemory();
        goto done;
    }
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    fr *vc = (fr *)dst; /* C works in the output's own storage (bytes objects are 8-aligned) */
    Py_ssize_t bad_a, bad_b = -1;
    Py_BEGIN_ALLOW_THREADS
    bad_a = fr_load_all(va, a.buf, n);
    if (bad_a < 0) bad_b = fr_load_all(vb, b.buf, n);
    if (bad_a < 0 && bad_b < 0) {
        for (size_t i = 0; i < n; i++) fr_mul(&vc[i], &va[i], &vb[i]);
        fr_twiddles(tw, n, logn);
        fr_coset_job jobs[3];
        fr g;
        fr_inv_n(&jobs[0].scale_even, n);
        fr_root(&g, logn + 1);
        fr_mul(&jobs[0].scale_odd, &g, &jobs[0].scale_even);
        fr *vs[3] = {va, vb, vc};
        for (int i = 0; i < 3; i++) {
            jobs[i].v = vs[i];
            jobs[i].n = n;
            jobs[i].logn = logn;
            jobs[i].tw = tw;
            jobs[i].scale_even = jobs[0].scale_even;
            jobs[i].scale_odd = jobs[0].scale_odd;
        }
        fr_run_parallel(fr_coset_run, jobs, sizeof jobs[0], 3);
        for (size_t i = 0; i < n; i++) { /* h = A' B' - C', written over C' slot by slot */
            fr t;
            fr_mul(&t, &va[i], &vb[i]);
            fr_sub(&t, &t, &vc[i]);
            fr_from_mont(&t, &t);
            fr_store_le(dst + 32 * i, t.l);
        }
    }
    Py_END_ALLOW_THREADS
    if (bad_a >= 0 || bad_b >= 0) {
        Py_CLEAR(out);
        PyErr_Format(PyExc_ValueError, "fr_witness_map: value %zd of %s is not reduced modulo r",
                     bad_a >= 0 ? bad_a : bad_b, bad_a >= 0 ? "A z" : "B z");
    }
done:
    PyMem_RawFree(va);
    PyMem_RawFree(vb);
    PyMem_RawFree(tw);
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    return out;
}

/* fr_ntt(data, inverse) -> bytes: [p(w^i)] from coefficients (natural order both ways), or back. */
static PyObject *fr_ntt(PyObject *self, PyObject *args) {
    Py_buffer data;
    int inverse;
    if (!PyArg_ParseTuple(args, "y*p", &data, &inverse)) return NULL;
    PyObject *out = NULL;
    fr *v = NULL, *tw = NULL;
    int logn = data.len % 32 ? -1 : fr_log2(data.len / 32);
    if (logn < 0) {
        PyErr_SetString(PyExc_ValueError, "fr_ntt: n x 32 bytes, n a power of two <= 2^31");
        goto done;
    }
    size_t n = (size_t)1 << logn;
    v = PyMem_RawMalloc(sizeof(fr) * n);
    tw = PyMem_RawMalloc(sizeof(fr) * (n > 1 ? n / 2 : 1));
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(32 * n));
    if (out == NULL || v == NULL || tw == NULL) {
        Py_CLEAR(out);
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t bad;
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    bad = fr_load_all(v, data.buf, n);
    if (bad < 0) {
        fr_twiddles(tw, n, logn);
        if (inverse) {
            fr n_inv;
            fr_inv_n(&n_inv, n);
            fr_intt_dif(v, n, tw);
            fr_bitrev_permute(v, n, logn);
            for (size_t i = 0; i < n; i++) fr_mul(&v[i], &v[i], &n_inv);
        } else {
            fr_bitrev_permute(v, n, logn);
            fr_ntt_dit(v, n, tw);
        }
        fr_store_all(dst, v, n);
    }
    Py_END_ALLOW_THREADS
    if (bad >= 0) {
        Py_CLEAR(out);
        PyErr_Format(PyExc_ValueError, "fr_ntt: value %zd is not reduced modulo r", bad);
    }
done:
    PyMem_RawFree(v);
    PyMem_RawFree(tw);
    PyBuffer_Release(&data);
    return out;
}

/* fr_first_unreduced(data) -> int: the index of the first 32-byte LE value >= r, -1 if none. */
static PyObject *fr_first_unreduced(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    if (view.len % 32) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "fr_first_unreduced: length is not a multiple of 32 bytes");
        return NULL;
    }
    Py_ssize_t bad;
    Py_BEGIN_ALLOW_THREADS
    bad = fr_first_geq(view.buf, (size_t)view.len / 32);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(bad);
}

MUL_CHECK(fr, 4, "r")

enum { FR_REC_OK, FR_REC_MATRIX, FR_REC_CONSTRAINT, FR_REC_SIGNAL, FR_REC_VALUE };
#define FR_REC_SIZE 44 /* u32 matrix, u32 constraint, u32 signal, 32-byte value */

typedef struct {
    const unsigned char *recs;
    size_t count, n, nv;
    const unsigned char *witness; /* nv x 32 bytes, standard form, each < r (checked first) */
    uint32_t matrix;
    fr *acc;
    size_t bad; /* first failing record, with why (FR_REC_*) */
    int why;
} fr_eval_job;

static inline uint32_t fr_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* acc[c] += v z_s over this job's matrix.  The stored value is v 2^512 mod r and z_s is in standard
 * form, so the Montgomery product v 2^512 z_s / 2^256 is v z_s in Montgomery form: no conversion. */
static void *fr_eval_run(void *arg) {
    fr_eval_job *j = arg;
    j->why = FR_REC_OK;
    for (size_t i = 0; i < j->count; i++) {
        const unsigned char *rec = j->recs + FR_REC_SIZE * i;
        uint32_t m = fr_u32(rec), c = fr_u32(rec + 4), s = fr_u32(rec + 8);
        if (m > 1) { j->bad = i; j->why = FR_REC_MATRIX; return NULL; }
        if (m != j->matrix) continue;
        if (c >= j->n) { j->bad = i; j->why = FR_REC_CONSTRAINT; return NULL; }
        if (s >= j->nv) { j->bad = i; j->why = FR_REC_SIGNAL; return NULL; }
        fr v, z, t;
        fr_load_le(v.l, rec + 12);
        if (fr_geq_mod(v.l)) { j->bad = i; j->why = FR_REC_VALUE; return NULL; }
        fr_load_le(z.l, j->witness + 32 * (size_t)s);
        fr_mul(&t, &v, &z);
        fr_add(&j->acc[c], &j->acc[c], &t);
    }
    fr_store_all((unsigned char *)j->acc, j->acc, j->n); /* in place: each value is read before its slot is written */
    return NULL;
}

/* fr_evaluations(section4, witness, n) -> (A z, B z): see the section comment. */
static PyObject *fr_evaluations(PyObject *self, PyObject *args) {
    Py_buffer sec, wit;
    Py_ssize_t n_arg;
    if (!PyArg_ParseTuple(args, "y*y*n", &sec, &wit, &n_arg)) return NULL;
    PyObject *outa = NULL, *outb = NULL, *result = NULL;
    if (fr_log2(n_arg) < 0) {
        PyErr_SetString(PyExc_ValueError, "fr_evaluations: n must be a power of two <= 2^31");
        goto done;
    }
    size_t count = sec.len >= 4 ? fr_u32(sec.buf) : 0;
    if (sec.len < 4 || (size_t)sec.len != 4 + FR_REC_SIZE * count) {
        PyErr_SetString(PyExc_ValueError, "fr_evaluations: section 4 does not hold its coefficient count");
        goto done;
    }
    if (wit.len % 32) {
        PyErr_SetString(PyExc_ValueError, "fr_evaluations: the witness is not a run of 32-byte values");
        goto done;
    }
    size_t n = (size_t)n_arg;
    outa = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(32 * n));
    outb = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(32 * n));
    if (outa == NULL || outb == NULL) goto done;
    fr_eval_job jobs[2];
    for (int i = 0; i < 2; i++) {
        jobs[i].recs = (const unsigned char *)sec.buf + 4;
        jobs[i].count = count;
        jobs[i].n = n;
        jobs[i].nv = (size_t)wit.len / 32;
        jobs[i].witness = wit.buf;
        jobs[i].matrix = (uint32_t)i;
        jobs[i].acc = (fr *)PyBytes_AS_STRING(i ? outb : outa);
    }
    Py_ssize_t bad_z;
    Py_BEGIN_ALLOW_THREADS
    bad_z = fr_first_geq(wit.buf, jobs[0].nv);
    if (bad_z < 0) {
        memset(jobs[0].acc, 0, 32 * n);
        memset(jobs[1].acc, 0, 32 * n);
        fr_run_parallel(fr_eval_run, jobs, sizeof jobs[0], 2);
    }
    Py_END_ALLOW_THREADS
    if (bad_z >= 0) {
        PyErr_Format(PyExc_ValueError, "fr_evaluations: witness value %zd is not reduced modulo r", bad_z);
        goto done;
    }
    fr_eval_job *failed = NULL; /* the first failing record of either job */
    for (int i = 0; i < 2; i++) {
        if (jobs[i].why != FR_REC_OK && (failed == NULL || jobs[i].bad < failed->bad)) failed = &jobs[i];
    }
    if (failed != NULL) {
        const unsigned char *rec = failed->recs + FR_REC_SIZE * failed->bad;
        static const char *what[] = {"", "a matrix other than A and B", "a constraint outside the domain",
                                     "a signal outside the witness", "a value not reduced modulo r"};
        PyErr_Format(PyExc_ValueError,
                     "fr_evaluations: coefficient %zu (matrix %u, constraint %u, signal %u) has %s",
                     failed->bad, fr_u32(rec), fr_u32(rec + 4), fr_u32(rec + 8), what[failed->why]);
        goto done;
    }
    result = PyTuple_Pack(2, outa, outb);
done:
    Py_XDECREF(outa);
    Py_XDECREF(outb);
    PyBuffer_Release(&sec);
    PyBuffer_Release(&wit);
    return result;
}

static void init_constants(void) {
#ifdef FP_HAVE_ADX_ASM
    __builtin_cpu_init();
    FP_ADX = __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("adx");
#endif
    fp x = {{1, 0, 0, 0, 0, 0}};
    for (int i = 0; i < 768; i++) {
        fp_add(&x, &x, &x);
        if (i == 383) FP_ONE = x;
    }
    FP_R2 = x;
    memcpy(FP_BETA.l, GLV_BETA, 48);
    fp_mul(&FP_BETA, &FP_BETA, &FP_R2);
    FP2_ONE.c0 = FP_ONE;
    memset(&FP2_ONE.c1, 0, sizeof FP2_ONE.c1);
    fr_init_constants();
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
    {"to_montgomery", to_montgomery, METH_O,
     "to_montgomery(data) -> bytes: 48-byte LE coordinates x -> x*2^384 mod p (each must be < p)."},
    {"blake2b_blocks", blake2b_blocks, METH_VARARGS,
     "blake2b_blocks(state, data, done) -> state: BLAKE2b-512 compression of whole blocks (see the C source)."},
    {"comb_table", comb_table, METH_VARARGS,
     "comb_table(group, base, window) -> bytes: the fixed-base comb table of one affine point (see the C source)."},
    {"g1_scale", g1_scale, METH_VARARGS,
     "g1_scale(points, k1, k2, montgomery) -> bytes: every affine G1 point times k1 + k2 lambda (see the C source)."},
    {"sums", sums, METH_VARARGS,
     "sums(group, points, terms, counts, montgomery) -> bytes: affine sums of +-points (see the C source)."},
    {"fp_mul_check", fp_mul_check, METH_VARARGS,
     "fp_mul_check(a, b, adx) -> bytes: Montgomery products of 48-byte elements, one implementation (tests)."},
    {"comb_mul", comb_mul, METH_VARARGS,
     "comb_mul(group, table, window, scalars, montgomery) -> bytes: affine multiples of a fixed base."},
    {"fr_witness_map", fr_witness_map, METH_VARARGS,
     "fr_witness_map(a, b) -> bytes: h_i = D(w_2n^(2i+1)) from A z, B z on the domain (see the C source)."},
    {"fr_evaluations", fr_evaluations, METH_VARARGS,
     "fr_evaluations(section4, witness, n) -> (bytes, bytes): A z and B z from zkey section-4 records."},
    {"fr_ntt", fr_ntt, METH_VARARGS,
     "fr_ntt(data, inverse) -> bytes: the radix-2 transform over Fr at ffjavascript's roots, natural order."},
    {"fr_mul_check", fr_mul_check, METH_VARARGS,
     "fr_mul_check(a, b, adx) -> bytes: Montgomery products of 32-byte elements, one implementation (tests)."},
    {"fr_first_unreduced", fr_first_unreduced, METH_O,
     "fr_first_unreduced(data) -> int: index of the first 32-byte LE value >= r, or -1."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", NULL, -1, methods};

PyMODINIT_FUNC PyInit__native(void) {
    init_constants();
    return PyModule_Create(&module);
}
