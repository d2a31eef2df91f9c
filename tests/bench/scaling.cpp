// Scaling table of the fused forward+backward: time against B, P, C, G and
// threads (median of N runs after a warm-up), with ns per B*P*C element, to
// show cost linear in B*P*C (+ B*P*G for matching).
//   mbx_scaling [--tiny] [--runs N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "workloads.h"

using namespace mbx_bench;

namespace {

double median_ms(mbx_context_t* ctx, const mbx_options_t& o, Workload& w, Op op, int runs) {
  std::vector<double> t;
  run_op(ctx, o, w, op);  // warm-up: workspace, page faults
  for (int r = 0; r < runs; ++r) {
    auto a = std::chrono::steady_clock::now();
    if (run_op(ctx, o, w, op) != MBX_STATUS_OK) {
      std::fprintf(stderr, "error: %s\n", mbx_last_error());
      std::exit(1);
    }
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void row(const char* what, const std::string& kind, mbx_preset_t preset, int64_t B, int64_t C, int64_t G,
         int threads, int runs) {
  Workload w = make_workload(kind, preset, B, C, G);
  mbx_options_t o;
  mbx_options_init(&o, preset);
  mbx_context_t* ctx;
  mbx_context_create(&ctx);
  mbx_context_set_num_threads(ctx, threads);
  const double fused = median_ms(ctx, o, w, Op::kFused, runs);
  const double fwd = median_ms(ctx, o, w, Op::kForward, runs);
  const double match = median_ms(ctx, o, w, Op::kMatch, runs);
  mbx_context_destroy(ctx);
  const double elems = double(w.B) * w.P * w.C;
  std::printf("%-10s %-10s %4lld %7lld %4lld %4lld %3d %10.3f %10.3f %10.3f %8.2f\n", what, kind.c_str(),
              (long long)w.B, (long long)w.P, (long long)w.C, (long long)w.G, threads, match, fwd, fused,
              fused * 1e6 / elems);
}

}  // namespace

int main(int argc, char** argv) {
  bool tiny = false;
  int runs = 7;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--tiny")) tiny = true;
    else if (!std::strcmp(argv[i], "--runs") && i + 1 < argc) runs = std::atoi(argv[++i]);
  }
  if (tiny) runs = 1;
  std::printf("%-10s %-10s %4s %7s %4s %4s %3s %10s %10s %10s %8s\n", "vary", "workload", "B", "P", "C", "G",
              "thr", "match ms", "fwd ms", "fused ms", "ns/BPC");
  const mbx_preset_t ssd = MBX_PRESET_SSD_PYTORCH, ret = MBX_PRESET_TORCHVISION_RETINANET;
  const std::vector<int64_t> Bs = tiny ? std::vector<int64_t>{1, 2} : std::vector<int64_t>{8, 16, 32, 64};
  for (int64_t B : Bs) row("B", "ssd300", ssd, B, 21, 6, 1, runs);
  const std::vector<int64_t> Cs = tiny ? std::vector<int64_t>{3} : std::vector<int64_t>{11, 21, 41, 81};
  for (int64_t C : Cs) row("C", "ssd300", ssd, tiny ? 2 : 32, C, 6, 1, runs);
  const std::vector<int64_t> Gs = tiny ? std::vector<int64_t>{2} : std::vector<int64_t>{2, 6, 20, 60};
  for (int64_t G : Gs) row("G", "ssd300", ssd, tiny ? 2 : 32, 21, G, 1, runs);
  row("P", "ssd300", ssd, tiny ? 1 : 8, 80, 15, 1, runs);
  row("P", "retinanet", ret, tiny ? 1 : 8, tiny ? 4 : 80, 15, 1, runs);
  for (int t : {1, 2}) row("threads", "ssd300", ssd, tiny ? 2 : 32, 21, 6, t, runs);
  for (int t : {1, 2}) row("threads", "retinanet", ret, tiny ? 1 : 8, tiny ? 4 : 80, 15, t, runs);
  return 0;
}
