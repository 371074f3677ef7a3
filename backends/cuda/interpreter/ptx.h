// The inline PTX the kernels use, emulated from the PTX ISA's definitions (PTX ISA 8.x). ptx.py
// rewrites each known asm statement into a call of one of these functions, operands in the
// order the instruction template names them.
#pragma once

namespace tdn_ptx {

inline uint32_t bits(float v) { return tdn::bits_of(v); }
inline float value(uint32_t u) { return tdn::from_bits<float>(u); }

// cvt.rna.tf32.f32 d, a (§9.7.9.21 cvt): a rounded to tf32 (10 explicit mantissa bits) to the
// nearest, ties away from zero; the result is an f32 bit pattern with the low 13 bits zero.
// NaN gives the canonical NaN; infinities stay; a finite value may round up to infinity.
inline uint32_t round_tf32(uint32_t x) {
    if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fffffffu;
    // Sign and magnitude: adding half an ulp to the magnitude rounds ties away from zero.
    return (x + 0x1000u) & ~0x1fffu;
}

inline void cvt_rna_tf32_f32(unsigned& d, float a) { d = round_tf32(bits(a)); }

// f32 -> f16, round to nearest even (.rn); overflow gives infinity (no .satfinite), NaN the
// canonical f16 NaN 0x7fff.
inline uint16_t to_f16(float f) {
    uint32_t x = bits(f), sign = (x >> 16) & 0x8000u, magnitude = x & 0x7fffffffu;
    if (magnitude > 0x7f800000u) return 0x7fff;
    if (magnitude >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // at or past 65520: infinity
    uint32_t exponent = magnitude >> 23, mantissa = magnitude & 0x7fffffu;
    uint32_t half, rest, halfway, shift;
    if (exponent >= 113) {  // a normal f16: 2^-14 and above
        shift = 13;
        half = ((exponent - 112) << 10) | (mantissa >> 13);
        rest = mantissa & 0x1fffu;
    } else {  // an f16 subnormal, in units of 2^-24
        shift = 126 - exponent;
        if (exponent == 0 || shift > 24) return uint16_t(sign);
        uint32_t m = mantissa | 0x800000u;
        half = m >> shift;
        rest = m & ((1u << shift) - 1);
    }
    halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1u))) ++half;  // a carry moves into the exponent
    return uint16_t(sign | half);
}

inline float from_f16(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    if (exponent == 0x1f) return value(sign | 0x7f800000u | (mantissa << 13));
    if (exponent == 0) {  // subnormal: mantissa * 2^-24, exact in f32
        float v = float(mantissa) * 0x1p-24f;
        return sign ? -v : v;
    }
    return value(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

// cvt.rn.f16x2.f32 d, a, b (§9.7.9.21 cvt): d = {cvt(a), cvt(b)}, a in the upper half.
inline void cvt_rn_f16x2_f32(unsigned& d, float a, float b) {
    d = uint32_t(to_f16(a)) << 16 | to_f16(b);
}

// mma.sync.aligned: D = A * B + C over one warp, with each lane holding the fragments the ISA's
// tables give it (§9.7.14.5.x "Matrix Fragments for mma.m16n8k8" and "... for mma.m16n8k16 with
// floating point type"). groupID = laneid >> 2, threadID_in_group = laneid % 4.
// The products of tf32 or f16 values are exact in double; each element's K products are summed
// in double and added to C there, and the sum is rounded once to f32. (The hardware's own order
// and rounding of the sum are not specified by the ISA: results may differ in the last bits.)
enum Operand { TF32, F16 };

// in[lane] = {a0..a3, b0, b1, c0..c3} as registers; out[lane] = d0..d3.
template <int K, Operand TYPE>
inline void mma_combine(tdn::Collective& w) {
    double a[16][K], b[K][8], acc[16][8];
    for (int lane = 0; lane < 32; ++lane) {
        int group = lane >> 2, in_group = lane % 4;
        const uint32_t* r = w.in[lane];
        if (TYPE == TF32) {
            // m16n8k8 .tf32: A 16x8, one element per register: a_i at row groupID (+8 for i = 1, 3),
            // column threadID_in_group (+4 for i = 2, 3). B 8x8: b_i at row threadID_in_group + 4i,
            // column groupID. Only the tf32 bits of a register are read (the low 13 are ignored).
            for (int i = 0; i < 4; ++i)
                a[group + 8 * (i % 2)][in_group + 4 * (i / 2)] = value(r[i] & ~0x1fffu);
            for (int i = 0; i < 2; ++i) b[in_group + 4 * i][group] = value(r[4 + i] & ~0x1fffu);
        } else {
            // m16n8k16 .f16: A 16x16, elements a0..a7, two per register (a_2j in the low half of
            // register j): a_i at row groupID (+8 for i = 2, 3, 6, 7), column
            // threadID_in_group * 2 + (i & 1) (+8 for i >= 4). B 16x8, b0..b3 in two registers:
            // b_i at row threadID_in_group * 2 + (i & 1) (+8 for i >= 2), column groupID.
            for (int i = 0; i < 8; ++i) {
                uint16_t h = uint16_t(r[i / 2] >> (16 * (i % 2)));
                a[group + 8 * ((i / 2) % 2)][in_group * 2 + (i & 1) + 8 * (i / 4)] = from_f16(h);
            }
            for (int i = 0; i < 4; ++i) {
                uint16_t h = uint16_t(r[4 + i / 2] >> (16 * (i % 2)));
                b[in_group * 2 + (i & 1) + 8 * (i / 2)][group] = from_f16(h);
            }
        }
        // C and D, 16x8 f32: c_i at row groupID (+8 for i >= 2), column threadID_in_group * 2 + (i & 1).
        for (int i = 0; i < 4; ++i) acc[group + 8 * (i / 2)][in_group * 2 + (i & 1)] = value(r[6 + i]);
    }
    for (int row = 0; row < 16; ++row)
        for (int col = 0; col < 8; ++col)
            for (int k = 0; k < K; ++k) acc[row][col] += a[row][k] * b[k][col];
    for (int lane = 0; lane < 32; ++lane) {
        int group = lane >> 2, in_group = lane % 4;
        for (int i = 0; i < 4; ++i)
            w.out[lane][i] = bits(float(acc[group + 8 * (i / 2)][in_group * 2 + (i & 1)]));
    }
}

template <int K, Operand TYPE>
inline void mma(int line, const char* what, float& d0, float& d1, float& d2, float& d3, unsigned a0,
                unsigned a1, unsigned a2, unsigned a3, unsigned b0, unsigned b1, float c0, float c1, float c2,
                float c3) {
    uint32_t in[10] = {a0, a1, a2, a3, b0, b1, bits(c0), bits(c1), bits(c2), bits(c3)}, out[4];
    tdn::collective(0xffffffffu, line, what, in, 10, out, 4, mma_combine<K, TYPE>);
    d0 = value(out[0]);
    d1 = value(out[1]);
    d2 = value(out[2]);
    d3 = value(out[3]);
}

#define TDN_MMA_ARGS float &d0, float &d1, float &d2, float &d3, unsigned a0, unsigned a1, unsigned a2, \
    unsigned a3, unsigned b0, unsigned b1, float c0, float c1, float c2, float c3
#define TDN_MMA_PASS d0, d1, d2, d3, a0, a1, a2, a3, b0, b1, c0, c1, c2, c3

inline void mma_m16n8k8_tf32(int line, TDN_MMA_ARGS) {
    mma<8, TF32>(line, "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32", TDN_MMA_PASS);
}

inline void mma_m16n8k16_f16(int line, TDN_MMA_ARGS) {
    mma<16, F16>(line, "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", TDN_MMA_PASS);
}


// ---- asynchronous copies (PTX ISA, "Data Movement and Conversion Instructions": cp.async,
// cp.async.commit_group, cp.async.wait_group / cp.async.wait_all) -----------------------------
// cp.async.{ca,cg}.shared.global [dst], [src], cp-size{, src-size}: copies cp-size bytes (4, 8 or
// 16; .cg only 16) from global src to shared dst, the first src-size of them from src and the
// rest zeros (src-size <= cp-size; more is undefined behaviour, here an error). Both addresses
// must be aligned to cp-size ("Addresses as Operands"). The copy is asynchronous: until a wait of
// the issuing thread covers it, its destination holds poison (all bits set: NaN in f16 and f32),
// so that a read before the wait, or a thread reading another's copy without the barrier that
// must follow the other's wait, sees NaN or a schedule-dependent value.
inline void cp_async(int line, const char* what, bool cache_global, uint32_t dst, const void* src, int cp_size,
                     int src_size) {
    if (cp_size != 4 && cp_size != 8 && cp_size != 16)
        tdn::fail("line %d: %s with cp-size %d (4, 8 or 16)", line, what, cp_size);
    if (cache_global && cp_size != 16) tdn::fail("line %d: %s with cp-size %d (.cg copies 16 bytes)", line, what, cp_size);
    if (src_size < 0) src_size = cp_size;
    if (src_size > cp_size) tdn::fail("line %d: %s with src-size %d > cp-size %d", line, what, src_size, cp_size);
    if (dst % cp_size) tdn::fail("line %d: %s to shared address 0x%x, not aligned to %d bytes", line, what, dst, cp_size);
    if (reinterpret_cast<uintptr_t>(src) % cp_size)
        tdn::fail("line %d: %s from %p, not aligned to %d bytes", line, what, src, cp_size);
    tdn::AsyncCopies& copies = tdn::async_copies_[tdn::current_->index];
    if (copies.count == tdn::kMaxPendingCopies)
        tdn::fail("line %d: %s: more than %d copies pending in thread %d (the interpreter's limit)", line, what,
                  tdn::kMaxPendingCopies, tdn::current_->index);
    tdn::PendingCopy& copy = copies.pending[copies.count++];
    copy.destination = tdn::shared_memory(dst, cp_size, line, what);
    copy.bytes = cp_size;
    copy.group = copies.committed;
    copy.line = line;
    memset(copy.data, 0, sizeof copy.data);
    memcpy(copy.data, src, src_size);  // an out-of-bounds source faults here, in the issuing thread
    memset(copy.destination, 0xff, cp_size);
}

inline void cp_async_ca_shared_global(int line, unsigned dst, const void* src, int cp_size, int src_size = -1) {
    cp_async(line, "cp.async.ca.shared.global", false, dst, src, cp_size, src_size);
}

inline void cp_async_cg_shared_global(int line, unsigned dst, const void* src, int cp_size, int src_size = -1) {
    cp_async(line, "cp.async.cg.shared.global", true, dst, src, cp_size, src_size);
}

// cp.async.commit_group: the thread's copies not yet in a group become its newest group (an
// empty group when there are none).
inline void cp_async_commit_group() { ++tdn::async_copies_[tdn::current_->index].committed; }

// cp.async.wait_group N: waits until at most the N newest committed groups are pending; the
// copies of older groups land, in the order they were issued. Copies not yet committed stay.
inline void cp_async_wait_group(int newest_pending) {
    tdn::AsyncCopies& copies = tdn::async_copies_[tdn::current_->index];
    int kept = 0;
    for (int i = 0; i < copies.count; ++i) {
        tdn::PendingCopy& copy = copies.pending[i];
        if (copy.group < copies.committed - newest_pending)
            memcpy(copy.destination, copy.data, copy.bytes);
        else
            copies.pending[kept++] = copy;
    }
    copies.count = kept;
}

// cp.async.wait_all: cp.async.commit_group followed by cp.async.wait_group 0.
inline void cp_async_wait_all() {
    cp_async_commit_group();
    cp_async_wait_group(0);
}

// ---- ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{.trans}.shared.b16 (PTX ISA, "Warp-level matrix load
// instruction: ldmatrix") ------------------------------------------------------------------------
// A warp collective loading COUNT 8x8 matrices of 16-bit elements: lanes 8i..8i+7 give the
// shared addresses of rows 0..7 of matrix i (each row 16 contiguous bytes, 16-byte aligned; the
// other lanes' addresses are not used). Register i of lane l receives matrix i's elements at
// row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1 (the lower column in the lower half); with
// .trans, those at rows 2 (l % 4) and 2 (l % 4) + 1 of column l / 4.
template <int COUNT, bool TRANS>
inline void ldmatrix_combine(tdn::Collective& w) {
    for (int matrix = 0; matrix < COUNT; ++matrix) {
        uint16_t element[8][8];
        for (int row = 0; row < 8; ++row) {
            uint32_t address = w.in[8 * matrix + row][0];
            if (address % 16)
                tdn::fail("line %d: %s: lane %d gives row address 0x%x, not 16-byte aligned", w.line, w.what,
                          8 * matrix + row, address);
            memcpy(element[row], tdn::shared_memory(address, 16, w.line, w.what), 16);
        }
        for (int lane = 0; lane < 32; ++lane) {
            int fixed = lane / 4, first = 2 * (lane % 4);
            uint16_t low = TRANS ? element[first][fixed] : element[fixed][first];
            uint16_t high = TRANS ? element[first + 1][fixed] : element[fixed][first + 1];
            w.out[lane][matrix] = uint32_t(high) << 16 | low;
        }
    }
}

template <int COUNT, bool TRANS>
inline void ldmatrix(int line, const char* what, unsigned* registers, unsigned address) {
    uint32_t in[1] = {address}, out[4];
    tdn::collective(0xffffffffu, line, what, in, 1, out, COUNT, ldmatrix_combine<COUNT, TRANS>);
    for (int i = 0; i < COUNT; ++i) registers[i] = out[i];
}

#define TDN_LDMATRIX(SUFFIX, TRANS, NAME)                                                              \
    inline void ldmatrix_x1##SUFFIX(int line, unsigned& r0, unsigned address) {                       \
        unsigned r[1];                                                                                  \
        ldmatrix<1, TRANS>(line, "ldmatrix.sync.aligned.m8n8.x1" NAME ".shared.b16", r, address);      \
        r0 = r[0];                                                                                      \
    }                                                                                                   \
    inline void ldmatrix_x2##SUFFIX(int line, unsigned& r0, unsigned& r1, unsigned address) {         \
        unsigned r[2];                                                                                  \
        ldmatrix<2, TRANS>(line, "ldmatrix.sync.aligned.m8n8.x2" NAME ".shared.b16", r, address);      \
        r0 = r[0];                                                                                      \
        r1 = r[1];                                                                                      \
    }                                                                                                   \
    inline void ldmatrix_x4##SUFFIX(int line, unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3, \
                                    unsigned address) {                                                 \
        unsigned r[4];                                                                                  \
        ldmatrix<4, TRANS>(line, "ldmatrix.sync.aligned.m8n8.x4" NAME ".shared.b16", r, address);      \
        r0 = r[0];                                                                                      \
        r1 = r[1];                                                                                      \
        r2 = r[2];                                                                                      \
        r3 = r[3];                                                                                      \
    }
TDN_LDMATRIX(, false, "")
TDN_LDMATRIX(_trans, true, ".trans")
#undef TDN_LDMATRIX

}  // namespace tdn_ptx
