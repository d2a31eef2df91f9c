// Decoding on the CPU: decode_box (encode_math.h) over every (image, prior).
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "common/parallel.h"
#include "encode/encode.h"
#include "match/match.h"

namespace mbx {

void decode_cpu(const Options& o, const PriorGeometry& pg, int64_t B, const float* loc,
                float* boxes, int num_threads) {
  const int64_t P = pg.P;
  const EncodeParams e = encode_params(o);
  tbb::task_arena arena = make_arena(num_threads);
  arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, B * P, 4096),
                      [&](const tbb::blocked_range<int64_t>& r) {
                        for (int64_t i = r.begin(); i < r.end(); ++i) {
                          const int64_t p = i % P;
                          decode_box(loc + 4 * i, pg.cx[p], pg.cy[p], pg.w[p], pg.h[p], e,
                                     boxes + 4 * i);
                        }
                      });
  });
}

}  // namespace mbx
