// Parallel loops of the CPU fast path. Work is cut into fixed-size
// (image, prior block) tasks — never sized by the thread count — so every
// per-task partial result, and hence every reduction, is the same for any
// number of threads.
#pragma once

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cstdint>

namespace mbx {

// An arena of `num_threads` threads (0 = all hardware threads).
inline tbb::task_arena make_arena(int num_threads) {
  return tbb::task_arena(num_threads > 0 ? num_threads : tbb::task_arena::automatic);
}

// body(b, p0, p1, task) for every image b and block [p0, p1) of `block`
// priors; task = b * nblocks + block index.
template <typename Body>
void for_image_blocks(tbb::task_arena& arena, int64_t B, int64_t P, int64_t block, Body&& body) {
  const int64_t nblk = (P + block - 1) / block;
  arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, B * nblk, 1),
                      [&](const tbb::blocked_range<int64_t>& r) {
                        for (int64_t t = r.begin(); t < r.end(); ++t) {
                          const int64_t p0 = (t % nblk) * block;
                          body(t / nblk, p0, std::min(P, p0 + block), t);
                        }
                      });
  });
}

}  // namespace mbx
