// Google Benchmark over the C API: match, forward, backward and fused
// forward+backward, per preset, for the SSD300 and RetinaNet workloads,
// with 1 and 2 threads. Reports bytes/s against the fused call's minimum
// traffic. Run: mbx_bench --benchmark_repetitions=7 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "workloads.h"

using namespace mbx_bench;

namespace {

Workload& workload(const std::string& kind, mbx_preset_t p, int64_t B) {
  static std::map<std::string, std::unique_ptr<Workload>> cache;
  const std::string key = kind + std::to_string(p) + "/" + std::to_string(B);
  auto& w = cache[key];
  if (!w) w = std::make_unique<Workload>(make_workload(kind, p, B));
  return *w;
}

// One operation on one workload, with the preset's options changed by name
// (mbx_options_set, "name=value ..."; "" = the preset as is).
void BM_OpWith(benchmark::State& st, std::string kind, mbx_preset_t preset, Op op, std::string overrides) {
  const int threads = static_cast<int>(st.range(0));
  Workload& w = workload(kind, preset, st.range(1));
  mbx_options_t o;
  mbx_options_init(&o, preset);
  size_t pos = 0;
  while (pos < overrides.size()) {
    size_t end = overrides.find(' ', pos);
    if (end == std::string::npos) end = overrides.size();
    const std::string item = overrides.substr(pos, end - pos);
    const size_t eq = item.find('=');
    if (!item.empty() && (eq == std::string::npos ||
                          mbx_options_set(&o, item.substr(0, eq).c_str(),
                                          item.substr(eq + 1).c_str()) != MBX_STATUS_OK)) {
      st.SkipWithError(("bad override \"" + item + "\": " + mbx_last_error()).c_str());
      return;
    }
    pos = end + 1;
  }
  mbx_context_t* ctx;
  mbx_context_create(&ctx);
  mbx_context_set_num_threads(ctx, threads);
  if (run_op(ctx, o, w, op) != MBX_STATUS_OK) {
    st.SkipWithError(mbx_last_error());
    mbx_context_destroy(ctx);
    return;
  }
  for (auto _ : st) {
    mbx_status_t s = run_op(ctx, o, w, op);
    benchmark::DoNotOptimize(s);
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * w.floor_bytes()));
  st.counters["P"] = static_cast<double>(w.P);
  mbx_context_destroy(ctx);
}

void BM_Op(benchmark::State& st, std::string kind, mbx_preset_t preset, Op op) {
  BM_OpWith(st, std::move(kind), preset, op, std::string());
}

struct Reg {
  Reg() {
    const std::pair<const char*, mbx_preset_t> ssd[] = {{"ssd_pytorch", MBX_PRESET_SSD_PYTORCH},
                                                         {"torchvision_ssd", MBX_PRESET_TORCHVISION_SSD}};
    const std::pair<const char*, mbx_preset_t> ret[] = {
        {"yhenon_retinanet", MBX_PRESET_YHENON_RETINANET},
        {"torchvision_retinanet", MBX_PRESET_TORCHVISION_RETINANET}};
    const std::pair<const char*, Op> ops[] = {
        {"match", Op::kMatch}, {"forward", Op::kForward}, {"backward", Op::kBackward}, {"fused", Op::kFused}};
    // MBX_BENCH_B overrides the batch (CI smoke runs use a tiny one).
    const char* env = std::getenv("MBX_BENCH_SCALE");
    const bool tiny = env && std::string(env) == "tiny";
    for (auto& pr : ssd)
      for (auto& op : ops)
        benchmark::RegisterBenchmark((std::string("ssd300/") + pr.first + "/" + op.first).c_str(), BM_Op,
                                     std::string("ssd300"), pr.second, op.second)
            ->Args({1, tiny ? 2 : 32})->Args({2, tiny ? 2 : 32})->Unit(benchmark::kMillisecond)->UseRealTime();
    // The Caffe / Tiny-Detector presets and mining modes (SSD300, B = 32).
    const std::pair<const char*, const char*> caffe[] = {
        {"caffe_ssd", ""},
        {"caffe_ssd+hard_example", "mining=HARD_EXAMPLE"},
        {"caffe_ssd+hard_example_nms0.45", "mining=HARD_EXAMPLE mining_nms_threshold=0.45"},
        {"caffe_ssd+logistic", "conf_loss=LOGISTIC"}};
    for (auto& cv : caffe)
      for (auto& op : {ops[0], ops[3]})
        benchmark::RegisterBenchmark((std::string("ssd300/") + cv.first + "/" + op.first).c_str(), BM_OpWith,
                                     std::string("ssd300"), MBX_PRESET_CAFFE_SSD, op.second, std::string(cv.second))
            ->Args({1, tiny ? 2 : 32})->Args({2, tiny ? 2 : 32})->Unit(benchmark::kMillisecond)->UseRealTime();
    for (auto& op : {ops[3]})
      benchmark::RegisterBenchmark((std::string("ssd300/sgrvinod_ssd/") + op.first).c_str(), BM_Op,
                                   std::string("ssd300"), MBX_PRESET_SGRVINOD_SSD, op.second)
          ->Args({1, tiny ? 2 : 32})->Args({2, tiny ? 2 : 32})->Unit(benchmark::kMillisecond)->UseRealTime();
    for (auto& pr : ret)
      for (auto& op : ops)
        benchmark::RegisterBenchmark((std::string("retinanet/") + pr.first + "/" + op.first).c_str(), BM_Op,
                                     std::string("retinanet"), pr.second, op.second)
            ->Args({1, tiny ? 1 : 8})->Args({2, tiny ? 1 : 8})->Unit(benchmark::kMillisecond)->UseRealTime();
    // The ATSS assigner against the preset's MAX_IOU rows above (the
    // pyramid's prior_levels through mbx_run).
    for (auto& op : {ops[0], ops[3]})
      benchmark::RegisterBenchmark((std::string("retinanet/torchvision_retinanet+atss/") + op.first).c_str(),
                                   BM_OpWith, std::string("retinanet"), MBX_PRESET_TORCHVISION_RETINANET, op.second,
                                   std::string("assigner=ATSS"))
          ->Args({1, tiny ? 1 : 8})->Args({2, tiny ? 1 : 8})->Unit(benchmark::kMillisecond)->UseRealTime();
    // The IoU-family box losses against the preset's L1 (retinanet/torchvision_retinanet/fused).
    for (const char* loss : {"GIOU", "DIOU", "CIOU"})
      for (auto& op : {ops[1], ops[3]})
        benchmark::RegisterBenchmark(
            (std::string("retinanet/torchvision_retinanet+") + loss + "/" + op.first).c_str(), BM_OpWith,
            std::string("retinanet"), MBX_PRESET_TORCHVISION_RETINANET, op.second, std::string("loc_loss=") + loss)
            ->Args({1, tiny ? 1 : 8})->Args({2, tiny ? 1 : 8})->Unit(benchmark::kMillisecond)->UseRealTime();
  }
} reg;

}  // namespace

BENCHMARK_MAIN();
