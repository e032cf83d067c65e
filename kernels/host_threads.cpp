// Fibers for the host emulation of GPU blocks (host_threads.hpp): Boost.Context switches between the
// emulated threads' stacks in a few nanoseconds, so every emulation suite runs this way in ctest.
#include "host_threads.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef CAUSALSWEEP_HAVE_FIBERS
#include <cxxabi.h>
#include <sys/mman.h>
#include <unistd.h>

#include <exception>

#include <boost/context/fiber.hpp>
#endif

namespace causalsweep::cuda {

bool fiber_emulation() {
  static const bool fibers = [] {
    const char* value = std::getenv("CAUSALSWEEP_EMULATION");
    return value && std::strcmp(value, "fibers") == 0;
  }();
  return fibers;
}

#ifndef CAUSALSWEEP_HAVE_FIBERS

void run_on_fibers(int, const std::function<void(int)>&) {
  throw std::runtime_error(
      "CAUSALSWEEP_EMULATION=fibers: this build has no Boost.Context (install libboost-context-dev and reconfigure)");
}
void fiber_barrier(const void*, const char*) { throw std::logic_error("fiber_barrier outside run_on_fibers"); }

#else

namespace {

namespace ctx = boost::context;

// Stacks for the fibers, kept for the next block: a suite runs hundreds of thousands of blocks.
// Untouched pages of a stack are never committed, so 256 KiB each costs only what a thread uses;
// the page below each is inaccessible, so an overflow faults instead of corrupting the heap.
class PooledStack {
 public:
  static constexpr size_t bytes = 256 * 1024;
  ctx::stack_context allocate() {
    char* base = nullptr;  // the stack's lowest usable byte
    if (pool().empty()) {
      const size_t guard = page();
      void* mapping = mmap(nullptr, guard + bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (mapping == MAP_FAILED) throw std::bad_alloc();
      mprotect(mapping, guard, PROT_NONE);
      base = static_cast<char*>(mapping) + guard;
    } else {
      base = pool().back().release();
      pool().pop_back();
    }
    ctx::stack_context context;
    context.size = bytes;
    context.sp = base + bytes;  // stacks grow down
    return context;
  }
  void deallocate(ctx::stack_context& context) { pool().emplace_back(static_cast<char*>(context.sp) - bytes); }

 private:
  static size_t page() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }
  struct Unmap {
    void operator()(char* base) const { munmap(base - page(), page() + bytes); }
  };
  static std::vector<std::unique_ptr<char, Unmap>>& pool() {
    thread_local std::vector<std::unique_ptr<char, Unmap>> stacks;
    return stacks;
  }
};

// One emulated block: its threads' fibers and where each stands.
struct Team {
  std::vector<ctx::fiber> threads;     // suspended at a barrier (empty once finished)
  std::vector<ctx::fiber> scheduler;   // per running thread: the way back to run_on_fibers
  std::vector<const void*> site;       // the barrier each thread waits at; nullptr: finished
  std::vector<const char*> site_name;
  std::exception_ptr failure;          // the first exception a thread's program threw
  int current = -1;
};
thread_local Team* running_team = nullptr;

std::string demangle(const char* name) {
  if (!name) return "(finished)";
  int status = 0;
  char* readable = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string text = status == 0 && readable ? readable : name;
  std::free(readable);
  return text.size() > 200 ? text.substr(0, 200) + "..." : text;
}

std::mt19937_64& resume_order_generator() {
  thread_local std::mt19937_64 generator([] {
    const char* seed = std::getenv("CAUSALSWEEP_EMULATION_SEED");
    return seed ? std::strtoull(seed, nullptr, 10) : 1ull;
  }());
  return generator;
}

}  // namespace

void fiber_barrier(const void* site, const char* name) {
  if (!running_team) throw std::logic_error("fiber_barrier outside run_on_fibers");
  Team& team = *running_team;
  const int tid = team.current;
  team.site[static_cast<size_t>(tid)] = site;
  team.site_name[static_cast<size_t>(tid)] = name;
  team.scheduler[static_cast<size_t>(tid)] = std::move(team.scheduler[static_cast<size_t>(tid)]).resume();
}

void run_on_fibers(int threads, const std::function<void(int)>& body) {
  const auto count = static_cast<size_t>(threads);
  Team team;
  team.scheduler.resize(count);
  team.site.assign(count, nullptr);
  team.site_name.assign(count, nullptr);
  for (int tid = 0; tid < threads; ++tid)
    team.threads.emplace_back(std::allocator_arg, PooledStack{}, [&team, &body, tid](ctx::fiber&& scheduler) {
      team.scheduler[static_cast<size_t>(tid)] = std::move(scheduler);
      try {  // an exception must not leave a fiber (Boost.Context would terminate): rethrown below
        body(tid);
      } catch (const ctx::detail::forced_unwind&) {
        throw;  // a suspended fiber being destroyed: Boost's own unwinding
      } catch (...) {
        if (!team.failure) team.failure = std::current_exception();
      }
      team.site[static_cast<size_t>(tid)] = nullptr;
      team.site_name[static_cast<size_t>(tid)] = nullptr;
      return std::move(team.scheduler[static_cast<size_t>(tid)]);
    });
  Team* const outer = running_team;
  struct Restore {
    Team* const& outer;
    ~Restore() { running_team = outer; }
  } restore{outer};
  std::vector<int> order(count);
  for (long round = 1;; ++round) {
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), resume_order_generator());
    bool any = false;
    for (const int tid : order) {
      ctx::fiber& thread = team.threads[static_cast<size_t>(tid)];
      if (!thread) continue;
      any = true;
      running_team = &team;
      team.current = tid;
      thread = std::move(thread).resume();
    }
    if (team.failure) std::rethrow_exception(team.failure);
    if (!any) return;
    // On the GPU every thread of the block must reach the same __syncthreads().
    for (size_t t = 1; t < count; ++t)
      if (team.site[t] != team.site[0])
        throw std::logic_error("emulated block of " + std::to_string(threads) + " threads, barrier round " +
                               std::to_string(round) + ": thread 0 at " + demangle(team.site_name[0]) +
                               " but thread " + std::to_string(t) + " at " + demangle(team.site_name[t]) +
                               " (a barrier in divergent code)");
  }
}

#endif

}  // namespace causalsweep::cuda
