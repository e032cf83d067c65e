// The fiber emulation of GPU blocks (kernels/host_threads.hpp) must catch what the phase-by-phase
// emulation cannot: a barrier that only some threads reach, and a value read between two barriers
// that a later phase overwrites.
#include <gtest/gtest.h>

#ifdef CAUSALSWEEP_HAVE_CUDA

#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "host_threads.hpp"

namespace cuda = causalsweep::cuda;

namespace {

// A thread's view of the block, as kernels/block_program.cuh's FiberBlock.
struct Thread {
  int threads, tid;
  template <class Phase>
  void parallel(Phase&& phase) {
    phase(tid, threads);
    cuda::fiber_barrier_after<Phase>();
  }
};

// Runs program(thread) on fibers; false (and a skip) when this build has no Boost.Context.
template <class Program>
bool on_fibers(int threads, Program program) {
  try {
    cuda::run_on_fibers(threads, [&](int tid) {
      Thread thread{threads, tid};
      program(thread);
    });
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()).find("Boost.Context") == std::string::npos) throw;
    return false;
  }
  return true;
}

}  // namespace

// A correct program: every thread writes its slot, then reads its neighbour's after the barrier.
TEST(CudaFibers, BarriersOrderPhasesAcrossThreads) {
  const int threads = 64;
  std::vector<int> slot(threads, -1), seen(threads, -1);
  if (!on_fibers(threads, [&](Thread& t) {
        t.parallel([&](int tid, int) { slot[tid] = 10 * tid; });
        int local = 0;  // a per-thread value between phases, as a register on the GPU
        t.parallel([&](int tid, int n) { local = slot[(tid + 1) % n]; });
        t.parallel([&](int tid, int) { seen[tid] = local + 1; });
      }))
    GTEST_SKIP() << "built without Boost.Context";
  for (int tid = 0; tid < threads; ++tid) EXPECT_EQ(seen[tid], 10 * ((tid + 1) % threads) + 1) << tid;
}

// Thread 0 takes a branch with one more barrier than the others: on a GPU a hang or worse.
TEST(CudaFibers, ABarrierInDivergentCodeIsAnError) {
  try {
    const bool ran = on_fibers(32, [&](Thread& t) {
      t.parallel([](int, int) {});
      if (t.tid == 0) t.parallel([](int, int) {});
      t.parallel([](int, int) {});
    });
    if (!ran) GTEST_SKIP() << "built without Boost.Context";
    ADD_FAILURE() << "the divergent barrier went unnoticed";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("divergent"), std::string::npos) << e.what();
  }
  // The next block starts clean after the error.
  int after = 0;
  EXPECT_TRUE(on_fibers(4, [&](Thread& t) { t.parallel([&](int tid, int) { after += tid; }); }));
  EXPECT_EQ(after, 6);
}

// An exception in one thread's program reaches the caller (leaving a fiber would end the process),
// and the suspended threads are unwound.
TEST(CudaFibers, AnExceptionInOneThreadReachesTheCaller) {
  int unwound = 0;
  struct Counter {
    int& count;
    ~Counter() { ++count; }
  };
  try {
    const bool ran = on_fibers(16, [&](Thread& t) {
      const Counter counter{unwound};
      t.parallel([](int, int) {});
      if (t.tid == 3) throw std::invalid_argument("planted in thread 3");
      t.parallel([](int, int) {});
    });
    if (!ran) GTEST_SKIP() << "built without Boost.Context";
    ADD_FAILURE() << "the exception was lost";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "planted in thread 3");
  }
  EXPECT_EQ(unwound, 16);  // thread 3 by its throw, the others finished or unwound at their barrier
}

// A value read between barriers while the next phase overwrites it: thread 0 rewrites `shared` in
// the phase after every thread read it, without a barrier in between. Phase by phase the read
// always comes first; on fibers, threads resumed after thread 0 see the new value.
TEST(CudaFibers, AReadThatALaterPhaseOverwritesIsCaught) {
  const int threads = 32;
  int racy_blocks = 0;
  for (int block = 0; block < 5; ++block) {
    int shared = 0;
    std::vector<int> seen(threads, -1);
    if (!on_fibers(threads, [&](Thread& t) {
          t.parallel([&](int tid, int) { if (tid == 0) shared = 1; });
          const int read = shared;  // every thread, between the barriers
          t.parallel([&](int tid, int) { if (tid == 0) shared = 2; });
          t.parallel([&](int tid, int) { seen[tid] = read; });
        }))
      GTEST_SKIP() << "built without Boost.Context";
    bool racy = false;
    for (int v : seen) racy = racy || v == 2;
    racy_blocks += racy;
  }
  EXPECT_GT(racy_blocks, 0) << "no resume order exposed the race in 5 blocks";
}

// Just deeper than a fiber's 256 KiB stack: the guard page below it must fault, not let thread 0's
// recursion run on into the memory below (thread 1's stack, mapped after it).
int deep(int depth) {
  volatile char frame[4096];
  frame[0] = static_cast<char>(depth);
  return depth == 0 ? frame[0] : deep(depth - 1) + frame[0];
}

TEST(CudaFibersDeathTest, AStackOverflowFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  if (!on_fibers(1, [](Thread&) {})) GTEST_SKIP() << "built without Boost.Context";
  EXPECT_EXIT(on_fibers(2, [](Thread& t) { if (t.tid == 0) std::exit(deep(70) == -1 ? 3 : 0); }),
              testing::KilledBySignal(SIGSEGV), "");
}

#else

TEST(CudaFibers, NeedsACudaBuild) { GTEST_SKIP() << "built without CUDA (nvcc was not found)"; }

#endif
