// CUDA's execution model for a kernel source compiled as C++ on the CPU (tdn's interpret mode).
//
// g++ gets this header through -include, then the kernel text NVRTC gets (its asm statements
// rewritten into calls of tdn_ptx functions by ptx.py, and each __shared__ declaration followed
// by a TDN_SHARED registration by shared.py, line for line), then one TDN_ENTRY per entry point. A launch runs the grid's blocks one after another; a block's threads are
// cooperative fibers on their own stacks, switched only at barriers (__syncthreads, warp
// collectives) and at exit, in an order the launch chooses (a schedule). Everything here is
// single-threaded: the Python side holds a lock around launches.
#pragma once

#include <cmath>
#include <csetjmp>
#include <csignal>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <sys/mman.h>
#include <type_traits>
#include <utility>

// ---- CUDA C++ keywords and built-ins ---------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// A __shared__ variable is one static object (blocks run one at a time), registered by the
// TDN_SHARED statement after its declaration so that every block finds it full of junk.
#define __shared__ static
#define TDN_SHARED(name) tdn::shared_region(&(name), sizeof(name));

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

namespace tdn {

constexpr int kMaxThreads = 1024;
constexpr size_t kStackBytes = 64 * 1024;

enum State { RUNNABLE, AT_BARRIER, AT_COLLECTIVE, EXITED };

struct Fiber {
    void* sp = nullptr;
    dim3 thread;
    int index = 0, lane = 0, warp = 0;
    State state = RUNNABLE;
    int line = 0;  // the barrier or collective it waits at
};

// A warp collective in progress: each arriving lane leaves its registers in `in`; the last lane
// of the mask computes every lane's `out` and wakes the others.
struct Collective {
    unsigned arrived = 0, mask = 0;
    int line = 0;
    const char* what = nullptr;
    uint32_t in[32][12];
    uint32_t out[32][4];
};

// What Python passes to a launch (backends/cuda/interpreter/library.py mirrors it).
struct LaunchConfig {
    unsigned grid[3], block[3];
    int thread_order;     // 0 forward, 1 reversed, 2 shuffled every round, 3 the last warp ahead
    int blocks_reversed;  // 1: the last block first
    uint64_t seed;        // shuffles and shared-memory junk
    const char* source_name;
};

struct Launch {
    const LaunchConfig* config;
    const char* kernel;
    void (*body)(void*);
    void* body_arg;
    char* error;
    size_t error_size;
    sigjmp_buf abort;
    Fiber fibers[kMaxThreads];
    Collective warps[kMaxThreads / 32];
    int threads;
    char* stacks;
    size_t stacks_bytes;
    void* scheduler_sp;
    uint64_t rng;
    uintptr_t fault_address;
    int fault_write;
};

// A __shared__ variable, and where it lies in the block's shared state space: the 32-bit
// addresses __cvta_generic_to_shared gives and cp.async and ldmatrix take ("r" operands). Each
// variable gets its own window there, as aligned modulo 128 as the variable itself.
struct Region {
    void* address;
    size_t bytes;
    uint32_t window;
};
inline Region shared_regions_[64];
inline int shared_count_ = 0;
inline uint32_t shared_window_end_ = 0;
inline uint64_t junk_seed_ = 0;

inline Launch* launch_ = nullptr;
inline Fiber* current_ = nullptr;

// cp.async copies a thread has issued and that have not landed (PTX ISA, "Data Movement and
// Conversion Instructions: cp.async"): each thread has its own groups. A copy's source is read
// when it is issued and its bytes are kept here; its destination is poisoned then, and the bytes
// land when the thread's cp.async.wait_group or wait_all covers its group (ptx.h).
constexpr int kMaxPendingCopies = 128;
struct PendingCopy {
    unsigned char* destination;
    unsigned char data[16];
    int bytes, group, line;
};
struct AsyncCopies {
    PendingCopy pending[kMaxPendingCopies];
    int count;
    int committed;  // groups committed so far; copies issued since are in group `committed`
};
inline AsyncCopies async_copies_[kMaxThreads];
inline dim3 block_index_, block_dim_, grid_dim_;

[[noreturn]] inline void fail(const char* format, ...) {
    va_list args;
    va_start(args, format);
    int used = snprintf(launch_->error, launch_->error_size, "%s: ", launch_->kernel);
    vsnprintf(launch_->error + used, launch_->error_size - used, format, args);
    va_end(args);
    siglongjmp(launch_->abort, 1);
}

inline uint64_t next_random(uint64_t& state) {  // splitmix64
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// ---- fibers: a user-space stack switch (no system call, unlike swapcontext) -----------------
extern "C" void tdn_switch(void** save_sp, void* load_sp);
#if defined(__x86_64__)
asm(R"(
    .text
    .globl tdn_switch
    .hidden tdn_switch
    .type tdn_switch, @function
tdn_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size tdn_switch, .-tdn_switch
)");
#else
#error "the CUDA interpreter switches fibers with x86-64 code; port tdn_switch to this machine"
#endif

inline void yield_to_scheduler() { tdn_switch(&current_->sp, launch_->scheduler_sp); }

[[noreturn]] inline void fiber_main() {
    launch_->body(launch_->body_arg);
    Fiber* self = current_;
    self->state = EXITED;
    const AsyncCopies& copies = async_copies_[self->index];
    if (copies.count)
        fail("thread %d exited with %d cp.async copies pending, the first issued at line %d (no "
             "cp.async.wait_group or wait_all covers them)", self->index, copies.count, copies.pending[0].line);
    Collective& warp = launch_->warps[self->warp];
    if (warp.arrived && (warp.mask >> self->lane & 1u))
        fail("thread %d exited while lanes of its warp wait for it at %s (line %d)", self->index,
             warp.what, warp.line);
    yield_to_scheduler();
    __builtin_unreachable();
}

// A new fiber's stack holds what tdn_switch pops: six registers, then fiber_main as the return
// address, then a dummy return address, so that fiber_main starts with the ABI's alignment.
inline void start_fiber(Fiber& f, char* stack_top) {
    auto* top = reinterpret_cast<void**>(reinterpret_cast<uintptr_t>(stack_top) & ~uintptr_t(15));
    *--top = nullptr;
    *--top = reinterpret_cast<void*>(&fiber_main);
    for (int i = 0; i < 6; ++i) *--top = nullptr;
    f.sp = top;
}

inline void fill_junk(const Region& r) {
    for (size_t at = 0; at < r.bytes; at += 8) {
        uint64_t v = next_random(junk_seed_);
        memcpy(static_cast<char*>(r.address) + at, &v, r.bytes - at < 8 ? r.bytes - at : 8);
    }
}

// The first time a thread passes a __shared__ declaration, its variable joins those filled with
// junk at each block's start, and gets junk now (no thread of the block has written it yet).
inline void shared_region(void* address, size_t bytes) {
    for (int i = 0; i < shared_count_; ++i)
        if (shared_regions_[i].address == address) return;
    if (shared_count_ == 64) fail("more than 64 __shared__ variables");
    uint32_t start = (shared_window_end_ + 127) & ~127u;
    uint32_t window = start + uint32_t(reinterpret_cast<uintptr_t>(address) & 127);
    shared_window_end_ = window + uint32_t(bytes);
    shared_regions_[shared_count_] = {address, bytes, window};
    fill_junk(shared_regions_[shared_count_++]);
}

// __cvta_generic_to_shared: a generic pointer into a __shared__ variable as its address in the
// shared state space.
inline size_t cvta_generic_to_shared(const void* pointer, int line) {
    auto at = reinterpret_cast<uintptr_t>(pointer);
    for (int i = 0; i < shared_count_; ++i) {
        auto start = reinterpret_cast<uintptr_t>(shared_regions_[i].address);
        if (at >= start && at < start + shared_regions_[i].bytes) return shared_regions_[i].window + (at - start);
    }
    fail("line %d: __cvta_generic_to_shared of %p, which is not in a __shared__ variable", line, pointer);
}

// The memory behind `bytes` bytes at shared-space address `address`, which must lie within one
// __shared__ variable.
inline unsigned char* shared_memory(uint32_t address, uint32_t bytes, int line, const char* what) {
    for (int i = 0; i < shared_count_; ++i) {
        const Region& r = shared_regions_[i];
        if (address >= r.window && address - r.window < r.bytes) {
            if (address - r.window + bytes > r.bytes)
                fail("line %d: %s of %u bytes at shared address 0x%x runs %u bytes past the end of its "
                     "__shared__ variable", line, what, bytes, address,
                     uint32_t(address - r.window + bytes - r.bytes));
            return static_cast<unsigned char*>(r.address) + (address - r.window);
        }
    }
    fail("line %d: %s at shared address 0x%x, which is in no __shared__ variable", line, what, address);
}

// ---- barriers ------------------------------------------------------------------------------
inline void syncthreads(int line) {
    current_->state = AT_BARRIER;
    current_->line = line;
    yield_to_scheduler();
}

// The lanes of `mask` meet; the last to arrive runs `combine` over all their registers.
inline void collective(unsigned mask, int line, const char* what, const uint32_t* in, int n_in,
                       uint32_t* out, int n_out, void (*combine)(Collective&)) {
    Fiber* self = current_;
    Collective& w = launch_->warps[self->warp];
    int base = self->warp * 32, lanes = launch_->threads - base < 32 ? launch_->threads - base : 32;
    unsigned existing = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
    if (!(mask >> self->lane & 1u))
        fail("line %d: %s with mask 0x%08x called by lane %d, which the mask leaves out", line, what, mask,
             self->lane);
    if (mask & ~existing)
        fail("line %d: %s with mask 0x%08x names lanes the block does not have", line, what, mask);
    if (!w.arrived) {
        // Lanes exiting later, while the collective waits for them, fail in fiber_main.
        for (int lane = 0; lane < lanes; ++lane)
            if ((mask >> lane & 1u) && launch_->fibers[base + lane].state == EXITED)
                fail("line %d: %s with mask 0x%08x, but lane %d of warp %d has exited", line, what, mask, lane,
                     self->warp);
        w.mask = mask;
        w.line = line;
        w.what = what;
    } else if (w.mask != mask || w.line != line || w.what != what) {
        fail("warp %d: lanes meet at different collectives: %s (line %d, mask 0x%08x) and %s (line %d, "
             "mask 0x%08x)", self->warp, w.what, w.line, w.mask, what, line, mask);
    }
    memcpy(w.in[self->lane], in, sizeof(uint32_t) * n_in);
    w.arrived |= 1u << self->lane;
    if (w.arrived == mask) {
        combine(w);
        w.arrived = 0;
        for (int lane = 0; lane < 32; ++lane)
            if ((mask >> lane & 1u) && lane != self->lane) launch_->fibers[base + lane].state = RUNNABLE;
    } else {
        self->state = AT_COLLECTIVE;
        self->line = line;
        yield_to_scheduler();
    }
    memcpy(out, w.out[self->lane], sizeof(uint32_t) * n_out);
}

template <class T>
inline uint32_t bits_of(T v) {
    static_assert(sizeof(T) == 4, "32-bit shuffles only");
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

template <class T>
inline T from_bits(uint32_t u) {
    T v;
    memcpy(&v, &u, 4);
    return v;
}

// in[lane] = {value, source lane or lane mask}; a source outside the mask keeps the lane's value.
inline void shuffle_combine(Collective& w) {
    for (int lane = 0; lane < 32; ++lane) {
        if (!(w.mask >> lane & 1u)) continue;
        unsigned src = w.in[lane][1];
        w.out[lane][0] = (src < 32 && (w.mask >> src & 1u)) ? w.in[src][0] : w.in[lane][0];
    }
}

template <class T>
inline T shfl_xor(unsigned mask, T value, int lane_mask, int width, int line) {
    if (width != 32) fail("line %d: __shfl_xor_sync with width %d (the interpreter knows width 32)", line, width);
    uint32_t in[2] = {bits_of(value), unsigned(current_->lane ^ lane_mask)}, out[1];
    collective(mask, line, "__shfl_xor_sync", in, 2, out, 1, shuffle_combine);
    return from_bits<T>(out[0]);
}

template <class T>
inline T shfl(unsigned mask, T value, int src_lane, int width, int line) {
    if (width != 32) fail("line %d: __shfl_sync with width %d (the interpreter knows width 32)", line, width);
    uint32_t in[2] = {bits_of(value), unsigned(src_lane & 31)}, out[1];
    collective(mask, line, "__shfl_sync", in, 2, out, 1, shuffle_combine);
    return from_bits<T>(out[0]);
}

inline void no_combine(Collective&) {}

inline void syncwarp(unsigned mask, int line) {
    collective(mask, line, "__syncwarp", nullptr, 0, nullptr, 0, no_combine);
}

// ---- the scheduler -------------------------------------------------------------------------
inline void order_threads(int* order, int n) {
    const LaunchConfig& c = *launch_->config;
    for (int i = 0; i < n; ++i) order[i] = i;
    if (c.thread_order == 1) {
        for (int i = 0; i < n; ++i) order[i] = n - 1 - i;
    } else if (c.thread_order == 2) {
        for (int i = n - 1; i > 0; --i) std::swap(order[i], order[next_random(launch_->rng) % (i + 1)]);
    } else if (c.thread_order == 3) {
        // The last warp first (run_block lets it run on to its next __syncthreads).
        int first = (n - 1) / 32 * 32, k = 0;
        for (int i = first; i < n; ++i) order[k++] = i;
        for (int i = 0; i < first; ++i) order[k++] = i;
    }
}

// Schedule 3: the last warp's lanes run, through their own warp collectives, until none of them
// can move (all at a __syncthreads, or exited) before any other thread runs.
inline void run_warp_ahead() {
    Launch& l = *launch_;
    int first = (l.threads - 1) / 32 * 32;
    for (bool ran = true; ran;) {
        ran = false;
        for (int i = first; i < l.threads; ++i) {
            Fiber& f = l.fibers[i];
            if (f.state != RUNNABLE) continue;
            ran = true;
            current_ = &f;
            tdn_switch(&l.scheduler_sp, f.sp);
        }
    }
}

// All live threads wait: release a __syncthreads they all reached, or fail naming who waits where.
inline void resolve_barrier() {
    Launch& l = *launch_;
    int line = -1, first = -1;
    for (int i = 0; i < l.threads; ++i) {
        Fiber& f = l.fibers[i];
        if (f.state == AT_COLLECTIVE) {
            Collective& w = l.warps[f.warp];
            fail("thread %d waits at %s (line %d, mask 0x%08x) for lanes that never arrive (arrived: 0x%08x)",
                 i, w.what, w.line, w.mask, w.arrived);
        }
        if (f.state != AT_BARRIER) continue;
        if (line < 0) {
            line = f.line;
            first = i;
        } else if (f.line != line) {
            fail("threads wait at different __syncthreads: thread %d at line %d, thread %d at line %d", first, line,
                 i, f.line);
        }
    }
    for (int i = 0; i < l.threads; ++i)
        if (l.fibers[i].state == AT_BARRIER) l.fibers[i].state = RUNNABLE;
}

inline void run_block(unsigned bx, unsigned by, unsigned bz, uint64_t block_seed) {
    Launch& l = *launch_;
    block_index_ = {bx, by, bz};
    // Shared memory starts as junk: random bits, different for every block and every schedule.
    junk_seed_ = block_seed;
    for (int i = 0; i < shared_count_; ++i) fill_junk(shared_regions_[i]);
    const LaunchConfig& c = *l.config;
    for (int i = 0; i < l.threads; ++i) {
        Fiber& f = l.fibers[i];
        f.index = i;
        f.thread = {unsigned(i) % c.block[0], unsigned(i) / c.block[0] % c.block[1],
                    unsigned(i) / (c.block[0] * c.block[1])};
        f.lane = i % 32;
        f.warp = i / 32;
        f.state = RUNNABLE;
        start_fiber(f, l.stacks + (size_t(i) + 1) * kStackBytes);
    }
    for (auto& w : l.warps) w.arrived = 0;
    for (int i = 0; i < l.threads; ++i) async_copies_[i].count = async_copies_[i].committed = 0;
    int order[kMaxThreads];
    for (;;) {
        order_threads(order, l.threads);
        if (c.thread_order == 3) run_warp_ahead();
        bool ran = false;
        for (int k = 0; k < l.threads; ++k) {
            Fiber& f = l.fibers[order[k]];
            if (f.state != RUNNABLE) continue;
            ran = true;
            current_ = &f;
            tdn_switch(&l.scheduler_sp, f.sp);
        }
        if (ran) continue;
        bool live = false;
        for (int i = 0; i < l.threads; ++i) live |= l.fibers[i].state != EXITED;
        if (!live) return;
        resolve_barrier();
    }
}

// ---- faults: a guard page touched by a kernel aborts the launch ----------------------------
inline void on_fault(int, siginfo_t* info, void* context) {
    launch_->fault_address = reinterpret_cast<uintptr_t>(info->si_addr);
#if defined(__x86_64__)
    auto* uc = static_cast<ucontext_t*>(context);
    launch_->fault_write = (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#else
    (void)context;
#endif
    int thread = current_ ? current_->index : -1;
    snprintf(launch_->error, launch_->error_size, "%s: fault at 0x%lx (thread %d of block (%u, %u, %u))",
             launch_->kernel, static_cast<unsigned long>(launch_->fault_address), thread, block_index_.x,
             block_index_.y, block_index_.z);
    siglongjmp(launch_->abort, 2);
}

inline char* stack_memory(size_t bytes) {
    static char* memory = nullptr;
    static size_t size = 0;
    if (size < bytes) {
        if (memory) munmap(memory, size);
        memory = static_cast<char*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (memory == MAP_FAILED) {
            memory = nullptr;
            size = 0;
            return nullptr;
        }
        size = bytes;
        // The lowest page of each stack is a guard: a thread that overflows faults.
        for (size_t at = 0; at < bytes; at += kStackBytes) mprotect(memory + at, 4096, PROT_NONE);
    }
    return memory;
}

// Returns 0, or 1 with a message in `error`, or 2 after a memory fault (address in fault[0],
// 1 for a write in fault[1]).
inline int run_grid(Launch& l, uint64_t fault[2]) {
    const LaunchConfig& c = *l.config;
    long threads = long(c.block[0]) * c.block[1] * c.block[2];
    if (threads < 1 || threads > kMaxThreads) {
        snprintf(l.error, l.error_size, "%s: %ld threads per block (1 to %d)", l.kernel, threads, kMaxThreads);
        return 1;
    }
    l.threads = int(threads);
    l.stacks = stack_memory(size_t(threads) * kStackBytes);
    if (!l.stacks) {
        snprintf(l.error, l.error_size, "%s: no memory for %ld thread stacks", l.kernel, threads);
        return 1;
    }
    l.rng = c.seed;
    l.fault_address = 0;
    l.fault_write = 0;
    launch_ = &l;
    current_ = nullptr;
    block_dim_ = {c.block[0], c.block[1], c.block[2]};
    grid_dim_ = {c.grid[0], c.grid[1], c.grid[2]};

    static char alt_stack[64 * 1024];
    stack_t alt{}, old_alt{};
    alt.ss_sp = alt_stack;
    alt.ss_size = sizeof alt_stack;
    struct sigaction action{}, old_segv{}, old_bus{};
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaltstack(&alt, &old_alt);
    sigaction(SIGSEGV, &action, &old_segv);
    sigaction(SIGBUS, &action, &old_bus);
    int result = sigsetjmp(l.abort, 1);
    if (result == 0) {
        unsigned long blocks = (unsigned long)c.grid[0] * c.grid[1] * c.grid[2];
        for (unsigned long k = 0; k < blocks; ++k) {
            unsigned long b = c.blocks_reversed ? blocks - 1 - k : k;
            run_block(b % c.grid[0], b / c.grid[0] % c.grid[1], b / (c.grid[0] * (unsigned long)c.grid[1]),
                      c.seed ^ (b * 0x632be59bd9b4e019ull));
        }
    }
    sigaction(SIGSEGV, &old_segv, nullptr);
    sigaction(SIGBUS, &old_bus, nullptr);
    sigaltstack(&old_alt, nullptr);
    fault[0] = l.fault_address;
    fault[1] = l.fault_write;
    launch_ = nullptr;
    current_ = nullptr;
    return result;
}

// ---- entry points: arguments arrive as an array of pointers to their values ----------------
template <class T>
constexpr char type_code() {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_pointer_v<U>) return 'p';
    else if constexpr (std::is_same_v<U, int>) return 'i';
    else if constexpr (std::is_same_v<U, float>) return 'f';
    else return '?';
}

template <class... A>
struct Signature {
    static constexpr char text[] = {type_code<A>()..., '\0'};
};

template <class... A, size_t... I>
inline void call_with(void (*kernel)(A...), void** args, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_cv_t<A>*>(args[I])...);
}

template <class... A>
struct Entry {
    static inline void (*kernel)(A...);
    static inline void** args;
    static void body(void*) { call_with(kernel, args, std::index_sequence_for<A...>{}); }
};

template <class... A>
inline int launch(void (*kernel)(A...), const char* name, const LaunchConfig* config, void** args, char* error,
                  size_t error_size, uint64_t fault[2]) {
    static Launch l;  // large (fiber table): static, and launches are serialised by the caller
    l.config = config;
    l.kernel = name;
    l.error = error;
    l.error_size = error_size;
    Entry<A...>::kernel = kernel;
    Entry<A...>::args = args;
    l.body = &Entry<A...>::body;
    l.body_arg = nullptr;
    return run_grid(l, fault);
}

template <class... A>
inline const char* signature(void (*)(A...)) {
    return Signature<A...>::text;
}

}  // namespace tdn

#define TDN_ENTRY(name)                                                                              \
    extern "C" int tdn_launch_##name(const tdn::LaunchConfig* config, void** args, char* error,    \
                                     size_t error_size, uint64_t* fault) {                          \
        return tdn::launch(&name, #name, config, args, error, error_size, fault);                   \
    }                                                                                                \
    extern "C" const char* tdn_signature_##name() { return tdn::signature(&name); }

#define TDN_WIDTH(first, ...) first  // the first argument given, else the default after it
#define threadIdx (tdn::current_->thread)
#define blockIdx (tdn::block_index_)
#define blockDim (tdn::block_dim_)
#define gridDim (tdn::grid_dim_)
#define warpSize 32
#define __syncthreads() tdn::syncthreads(__LINE__)
#define __syncwarp(...) tdn::syncwarp(TDN_WIDTH(__VA_ARGS__ __VA_OPT__(, ) 0xffffffffu), __LINE__)
#define __shfl_xor_sync(mask, value, lane_mask, ...) \
    tdn::shfl_xor(mask, value, lane_mask, TDN_WIDTH(__VA_ARGS__ __VA_OPT__(, ) 32), __LINE__)
#define __shfl_sync(mask, value, src, ...) \
    tdn::shfl(mask, value, src, TDN_WIDTH(__VA_ARGS__ __VA_OPT__(, ) 32), __LINE__)
#define __cvta_generic_to_shared(pointer) tdn::cvta_generic_to_shared(pointer, __LINE__)

// ---- device math: CUDA's names over the C library, each operation rounded once -------------
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __int_as_float(int v) { return tdn::from_bits<float>(uint32_t(v)); }
inline int __float_as_int(float v) { return int(tdn::bits_of(v)); }
inline unsigned __float_as_uint(float v) { return tdn::bits_of(v); }
inline float __uint_as_float(unsigned v) { return tdn::from_bits<float>(v); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }

#include "ptx.h"
