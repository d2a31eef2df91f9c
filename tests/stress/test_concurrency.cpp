// Concurrency stress (issue 6): 8 threads x 1000 calls with mixed presets,
// paths and shared read-only inputs give bitwise the serial results; one
// context shared by two threads is either refused with CONTEXT_BUSY (as the
// header documents) or correct — never wrong, never a crash.
#include <gtest/gtest.h>

#include <atomic>
#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

using namespace mbx_test;

namespace {

struct Job {
  Problem pr;
  mbx_options_t o;
  mbx_path_t path;
  Result serial;
};

std::vector<Job> make_jobs() {
  std::vector<Job> jobs;
  const mbx_preset_t presets[] = {MBX_PRESET_SSD_PYTORCH, MBX_PRESET_TORCHVISION_SSD,
                                  MBX_PRESET_YHENON_RETINANET, MBX_PRESET_TORCHVISION_RETINANET};
  for (int k = 0; k < 8; ++k) {
    const mbx_preset_t p = presets[k % 4];
    mbx_options_t o = preset(p);
    const bool softmax = o.conf_loss == MBX_CONF_LOSS_SOFTMAX_CE;
    Job j{random_problem(1000 + k, 1 + k % 3, 97 + 13 * k, softmax ? 5 : 4, 4,
                         o.prior_format == MBX_PRIOR_CENTER_SIZE, softmax),
          o, k < 4 ? MBX_PATH_CPU : MBX_PATH_CPU_SCALAR, {}};
    j.serial = run_all(j.pr, j.o, j.path, 1);  // serial reference, one thread
    jobs.push_back(std::move(j));
  }
  return jobs;
}

// A DLTensor header of our own over shared, read-only tensor data.
template <typename T>
DLTensor view(const HostTensor<T>& h) {
  DLTensor t{};
  t.data = const_cast<T*>(h.data.data());
  t.device = {kDLCPU, 0};
  t.ndim = static_cast<int>(h.shape.size());
  t.dtype = DLType<T>::v;
  t.shape = const_cast<int64_t*>(h.shape.data());
  return t;
}

// match + fused forward/backward over the job's shared inputs.
Result run_shared(const Job& j, int threads) {
  const Problem& pr = j.pr;
  Result r = make_result(pr);
  DLTensor pri = view(pr.priors), box = view(pr.gt_boxes), lab = view(pr.gt_labels),
           cnt = view(pr.gt_counts), loc = view(pr.loc), conf = view(pr.conf);
  mbx_context_t* ctx = nullptr;
  mbx_context_create(&ctx);
  mbx_context_set_path(ctx, j.path);
  mbx_context_set_num_threads(ctx, threads);
  const int64_t K = j.o.conf_loss == MBX_CONF_LOSS_SOFTMAX_CE ? pr.C - 1 : pr.C;
  r.status = mbx_match(ctx, &j.o, K, &pri, &box, &lab, &cnt, r.conf_target.dl(), r.matched_gt.dl(),
                       r.loc_target.dl(), nullptr);
  if (r.status == MBX_STATUS_OK)
    r.status = mbx_loss_forward_backward(ctx, &j.o, &pri, &box, &lab, &cnt, &loc, &conf, nullptr,
                                         r.loss.dl(), r.num_pos.dl(), r.grad_loc.dl(), r.grad_conf.dl());
  mbx_context_destroy(ctx);
  return r;
}

bool same(const Result& a, const Result& b) {
  return a.status == b.status && a.conf_target.data == b.conf_target.data &&
         a.matched_gt.data == b.matched_gt.data && a.num_pos.data == b.num_pos.data &&
         std::memcmp(a.loc_target.data.data(), b.loc_target.data.data(), a.loc_target.data.size() * 4) == 0 &&
         std::memcmp(a.grad_loc.data.data(), b.grad_loc.data.data(), a.grad_loc.data.size() * 4) == 0 &&
         std::memcmp(a.grad_conf.data.data(), b.grad_conf.data.data(), a.grad_conf.data.size() * 4) == 0 &&
         std::memcmp(a.loss.data.data(), b.loss.data.data(), 16) == 0;
}

TEST(Concurrency, EightThreadsTimesThousandCallsAreBitwiseSerial) {
  std::vector<Job> jobs = make_jobs();
  for (const Job& j : jobs) ASSERT_EQ(j.serial.status, MBX_STATUS_OK);
  std::atomic<int> mismatches{0}, calls{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        const Job& j = jobs[(t * 3 + i) % jobs.size()];
        // Inputs shared read-only by all threads; mixed thread counts
        // (results may not depend on them).
        const Result r = run_shared(j, i % 3);
        if (!same(r, j.serial)) ++mismatches;
        ++calls;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(calls.load(), 8000);
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Concurrency, SharedContextIsRefusedWhenBusyOrCorrect) {
  std::vector<Job> jobs = make_jobs();
  Job& j = jobs[0];
  mbx_context_t* ctx = nullptr;
  ASSERT_EQ(mbx_context_create(&ctx), MBX_STATUS_OK);
  std::atomic<int> ok{0}, busy{0}, wrong{0};
  auto worker = [&] {
    const Problem& pr = j.pr;
    DLTensor pri = view(pr.priors), box = view(pr.gt_boxes), lab = view(pr.gt_labels),
             cnt = view(pr.gt_counts), loc = view(pr.loc), conf = view(pr.conf);
    HostTensor<double> loss({2}, -1.0);
    HostTensor<float> gl({pr.B, pr.P, 4}), gc({pr.B, pr.P, pr.C});
    for (int i = 0; i < 500; ++i) {
      std::fill(loss.data.begin(), loss.data.end(), -1.0);
      const mbx_status_t s = mbx_loss_forward_backward(
          ctx, &j.o, &pri, &box, &lab, &cnt, &loc, &conf, nullptr, loss.dl(), nullptr, gl.dl(), gc.dl());
      if (s == MBX_STATUS_OK) {
        ++ok;
        if (std::memcmp(loss.data.data(), j.serial.loss.data.data(), 16) != 0 || gl.data != j.serial.grad_loc.data)
          ++wrong;
      } else if (s == MBX_STATUS_CONTEXT_BUSY) {
        ++busy;
        if (loss.data[0] != -1.0) ++wrong;  // nothing written when refused
        if (std::string(mbx_last_error()).find("ctx") == std::string::npos) ++wrong;
      } else {
        ++wrong;
      }
    }
  };
  std::thread a(worker), b(worker);
  a.join();
  b.join();
  mbx_context_destroy(ctx);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(ok.load() + busy.load(), 1000);
  EXPECT_GT(ok.load(), 0);
}

}  // namespace
