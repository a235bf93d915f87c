// dnnl_peak: oneDNN's own f32 matmul throughput on this machine — the ceiling that
// bench/train_mnist.sh compares a Loom training epoch with.
//
// Times oneDNN matmul primitives (created once, executed repeatedly on the same
// buffers, as a training loop does) for
//   - every matmul of one training step of an MLP (forward, backward-data and
//     backward-weights of each layer, transposes expressed as memory layouts, as a
//     training loop does), and all of them run back to back ("mlp step");
//   - a large square product (n x n x n), the best case for any GEMM.
// GFLOP/s = 2*M*N*K / seconds. Each figure is the best of 5 timed blocks of --min-ms
// each, after a warm-up block.
//
// usage: loom_bench_dnnl_peak [--batch 128] [--layers 784,256,128,10] [--square 1024]
//                             [--threads N] [--min-ms 200] [--json]
// Threads: oneDNN's OpenMP runtime, OMP_NUM_THREADS or --threads (default: all cores).
#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

/// One matmul C[m x n] = A[m x k] * B[k x n]; A and/or B may be stored transposed.
struct shape {
  std::string name;
  int64_t m, n, k;
  bool a_t = false, b_t = false;
  double flops() const { return 2.0 * double(m) * double(n) * double(k); }
};

/// A matmul primitive with its buffers, ready to run.
struct bound_matmul {
  shape s;
  dnnl::matmul prim;
  dnnl::memory a, b, c;

  bound_matmul(const shape& sh, const dnnl::engine& eng, std::mt19937& rng) : s(sh) {
    dnnl::memory::desc a_md({s.m, s.k}, dt::f32, s.a_t ? tag::ba : tag::ab);
    dnnl::memory::desc b_md({s.k, s.n}, dt::f32, s.b_t ? tag::ba : tag::ab);
    dnnl::memory::desc c_md({s.m, s.n}, dt::f32, tag::ab);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), eng);
    prim = dnnl::matmul(pd);
    a = dnnl::memory(a_md, eng);
    b = dnnl::memory(b_md, eng);
    c = dnnl::memory(c_md, eng);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (auto* m : {&a, &b}) {
      auto* p = static_cast<float*>(m->get_data_handle());
      size_t n = m->get_desc().get_size() / sizeof(float);
      for (size_t i = 0; i < n; ++i)
        p[i] = u(rng);
    }
  }

  void run(dnnl::stream& st) {
    prim.execute(st, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
  }
};

/// Best seconds per call of `body` over `blocks` blocks, each running calls until
/// min_ms have passed (a block measures time, not a call count fixed in advance, so a
/// machine that gets busier while measuring cannot stretch it), after a warm-up block.
/// oneDNN's CPU primitives run synchronously: a call is done when execute returns.
template <class F>
double best_seconds(F&& body, dnnl::stream& st, double min_ms, int blocks = 5) {
  using clock = std::chrono::steady_clock;
  const auto span = std::chrono::duration<double, std::milli>(min_ms);
  double best = 1e300;
  for (int bl = 0; bl <= blocks; ++bl) {
    int64_t calls = 0;
    auto t0 = clock::now();
    std::chrono::duration<double> elapsed{};
    do {
      body();
      st.wait();
      ++calls;
      elapsed = clock::now() - t0;
    } while (elapsed < span);
    if (bl > 0) // block 0 warms up
      best = std::min(best, elapsed.count() / double(calls));
  }
  return best;
}

std::vector<int64_t> parse_list(const char* text) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ','))
    out.push_back(std::stoll(item));
  return out;
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "dnnl_peak: %s\nusage: loom_bench_dnnl_peak [--batch 128] [--layers 784,256,128,10] "
               "[--square 1024] [--threads N] [--min-ms 200] [--json]\n",
               why);
  std::exit(2);
}

} // namespace

int main(int argc, char** argv) {
  int64_t batch = 128, square = 1024;
  std::vector<int64_t> layers = {784, 256, 128, 10};
  double min_ms = 200;
  bool json = false;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&]() -> const char* {
        if (i + 1 >= argc)
          usage((a + " needs a value").c_str());
        return argv[++i];
      };
      if (a == "--batch")
        batch = std::stoll(next());
      else if (a == "--layers")
        layers = parse_list(next());
      else if (a == "--square")
        square = std::stoll(next());
      else if (a == "--threads")
        omp_set_num_threads(std::stoi(next()));
      else if (a == "--min-ms")
        min_ms = std::stod(next());
      else if (a == "--json")
        json = true;
      else
        usage(("unknown argument " + a).c_str());
    }
  } catch (const std::exception&) {
    usage("a value is not a number");
  }
  if (batch <= 0 || square <= 0 || layers.size() < 2 ||
      std::any_of(layers.begin(), layers.end(), [](int64_t v) { return v <= 0; }))
    usage("sizes must be positive and --layers must name at least two sizes");

  // the matmuls of one training step: for layer l with input X [batch x in], weights
  // W [in x out], output gradient dY [batch x out]:
  //   forward  Y  = X  * W       (batch x out x in)
  //   backward dX = dY * W^T     (batch x in x out; not needed for the first layer)
  //   backward dW = X^T * dY     (in x out x batch)
  std::vector<shape> step;
  for (size_t l = 0; l + 1 < layers.size(); ++l) {
    int64_t in = layers[l], out = layers[l + 1];
    std::string dims = std::to_string(in) + "x" + std::to_string(out);
    step.push_back({"fwd  " + dims, batch, out, in, false, false});
    if (l > 0)
      step.push_back({"bwd-data " + dims, batch, in, out, false, true});
    step.push_back({"bwd-wts  " + dims, in, out, batch, true, false});
  }

  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream st(eng);
  std::mt19937 rng(42);
  std::vector<bound_matmul> mms;
  for (auto& s : step)
    mms.emplace_back(s, eng, rng);
  bound_matmul sq({"square", square, square, square}, eng, rng);

  struct result {
    std::string name;
    int64_t m, n, k;
    double seconds, gflops;
  };
  std::vector<result> results;
  double step_flops = 0;
  for (auto& mm : mms) {
    double s = best_seconds([&] { mm.run(st); }, st, min_ms);
    results.push_back({mm.s.name, mm.s.m, mm.s.n, mm.s.k, s, mm.s.flops() / s / 1e9});
    step_flops += mm.s.flops();
  }
  double step_s = best_seconds([&] { for (auto& mm : mms) mm.run(st); }, st, min_ms);
  double step_gflops = step_flops / step_s / 1e9;
  double sq_s = best_seconds([&] { sq.run(st); }, st, min_ms, 3);
  double sq_gflops = sq.s.flops() / sq_s / 1e9;
  int threads = omp_get_max_threads();
  auto v = dnnl::version();

  if (json) {
    std::printf("{\"onednn\": \"%d.%d.%d\", \"threads\": %d, \"batch\": %lld, \"shapes\": [", v->major, v->minor,
                v->patch, threads, static_cast<long long>(batch));
    for (size_t i = 0; i < results.size(); ++i)
      std::printf("%s{\"name\": \"%s\", \"m\": %lld, \"n\": %lld, \"k\": %lld, \"gflops\": %.3f}", i ? ", " : "",
                  results[i].name.c_str(), static_cast<long long>(results[i].m), static_cast<long long>(results[i].n),
                  static_cast<long long>(results[i].k), results[i].gflops);
    std::printf("], \"mlp_step_gflops\": %.3f, \"mlp_step_flops\": %.0f, \"square\": %lld, \"square_gflops\": %.3f}\n",
                step_gflops, step_flops, static_cast<long long>(square), sq_gflops);
    return 0;
  }
  std::printf("oneDNN %d.%d.%d f32 matmul on %d thread(s), batch %lld\n", v->major, v->minor, v->patch, threads,
              static_cast<long long>(batch));
  std::printf("%-24s %8s %8s %8s %12s %10s\n", "matmul", "M", "N", "K", "us/call", "GFLOP/s");
  for (auto& r : results)
    std::printf("%-24s %8lld %8lld %8lld %12.1f %10.2f\n", r.name.c_str(), static_cast<long long>(r.m),
                static_cast<long long>(r.n), static_cast<long long>(r.k), r.seconds * 1e6, r.gflops);
  std::printf("%-24s %35.1f %10.2f\n", "mlp step (all above)", step_s * 1e6, step_gflops);
  std::printf("%-24s %8lld %8lld %8lld %12.1f %10.2f\n", "square", static_cast<long long>(square),
              static_cast<long long>(square), static_cast<long long>(square), sq_s * 1e6, sq_gflops);
  return 0;
}
