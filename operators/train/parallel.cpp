#include "parallel.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>

namespace loom::ops::train {

namespace {

/// About 20-50 microseconds of polling before a wait sleeps: enough to hand over
/// without a system call when the threads run in step, short enough not to steal a
/// busy machine's time from the thread being waited for.
constexpr int spin_iterations = 1024;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

} // namespace

// ---- worker_pool -----------------------------------------------------------------------

worker_pool::worker_pool(int threads) {
  for (int t = 1; t < threads; ++t)
    helpers_.emplace_back([this, t] { helper(t); });
}

worker_pool::~worker_pool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& h : helpers_)
    h.join();
}

void worker_pool::run_impl(void (*call)(void*, int), void* fn) {
  if (helpers_.empty()) {
    call(fn, 0);
    return;
  }
  call_ = call;
  fn_ = fn;
  error_ = nullptr;
  done_.store(0);
  generation_.fetch_add(1);
  generation_.notify_all();
  try {
    call(fn, 0);
  } catch (...) {
    std::lock_guard lock(error_mutex_);
    if (!error_)
      error_ = std::current_exception();
  }
  const auto want = static_cast<uint32_t>(helpers_.size());
  for (int i = 0; i < spin_iterations && done_.load() != want; ++i)
    cpu_relax();
  for (uint32_t d; (d = done_.load()) != want;)
    done_.wait(d);
  if (error_)
    std::rethrow_exception(error_);
}

void worker_pool::helper(int t) {
  omp_set_num_threads(1); // oneDNN runs single-threaded on this thread
  uint32_t seen = 0;
  for (;;) {
    for (int i = 0; i < spin_iterations && generation_.load() == seen; ++i)
      cpu_relax();
    uint32_t g;
    while ((g = generation_.load()) == seen)
      generation_.wait(seen);
    seen = g;
    if (stop_.load())
      return;
    try {
      call_(fn_, t);
    } catch (...) {
      std::lock_guard lock(error_mutex_);
      if (!error_)
        error_ = std::current_exception();
    }
    if (done_.fetch_add(1) + 1 == helpers_.size())
      done_.notify_one();
  }
}

omp_threads_scope::omp_threads_scope(int threads) : before_(omp_get_max_threads()) {
  omp_set_num_threads(threads);
}

omp_threads_scope::~omp_threads_scope() { omp_set_num_threads(before_); }

// ---- parallel_network --------------------------------------------------------------------

int auto_threads(const net_spec& spec, int64_t batch, int passes) {
  double weights = 0;
  int64_t in = spec.inputs;
  for (auto h : spec.hidden) {
    weights += static_cast<double>(in) * static_cast<double>(h);
    in = h;
  }
  weights += static_cast<double>(in) * static_cast<double>(spec.outputs);
  double flops = 2.0 * weights * static_cast<double>(batch) * passes;
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return static_cast<int>(std::clamp(flops / 1e7, 1.0, static_cast<double>(cores)));
}

parallel_network::parallel_network(const net_spec& spec, int64_t batch, bool training, int threads)
  : batch_(batch), pool_(static_cast<int>(std::clamp<int64_t>(threads, 1, std::max<int64_t>(batch, 1)))) {
  const int t = pool_.size();
  per_ = (batch + t - 1) / t;
  omp_threads_scope one(1); // primitives planned for one thread: each replica has its own
  for (int i = 0; i < t; ++i) {
    replicas_.push_back(std::make_unique<network>(spec, per_, training, i == 0 ? nullptr : replicas_[0].get()));
    targets_.emplace_back(static_cast<size_t>(per_), 0.0f);
  }
  stats_.resize(static_cast<size_t>(t));
  grads_.resize(static_cast<size_t>(t));
}

parallel_network::~parallel_network() = default;

template <class Step>
batch_stats parallel_network::each_replica(const dataset& data, const uint32_t* idx, size_t n, Step&& step) {
  omp_threads_scope one(1);
  const size_t per = static_cast<size_t>(per_), cols = data.cols;
  n = std::min(n, static_cast<size_t>(batch_));
  pool_.run([&](int t) {
    size_t lo = static_cast<size_t>(t) * per, hi = std::min(n, lo + per);
    auto& st = stats_[static_cast<size_t>(t)];
    st = {};
    if (lo >= hi)
      return;
    auto& net = *replicas_[static_cast<size_t>(t)];
    float* in = net.input();
    float* y = targets_[static_cast<size_t>(t)].data();
    for (size_t i = lo; i < hi; ++i) {
      std::memcpy(in + (i - lo) * cols, data.rows[idx[i]], cols * sizeof(float));
      y[i - lo] = data.y[idx[i]];
    }
    st = step(net, t, hi - lo, y, n);
  });
  batch_stats sum;
  for (auto& st : stats_) {
    sum.loss += st.loss;
    sum.abs_err += st.abs_err;
    sum.correct += st.correct;
  }
  return sum;
}

batch_stats parallel_network::train_step(const dataset& data, const uint32_t* idx, size_t n,
                                         std::vector<rng>* dropout) {
  const size_t rows = std::min(n, static_cast<size_t>(batch_)), per = static_cast<size_t>(per_);
  active_ = (rows + per - 1) / per;
  return each_replica(data, idx, n, [&](network& net, int t, size_t rows, const float* y, size_t total) {
    return net.train_step(rows, y, dropout ? &(*dropout)[static_cast<size_t>(t)] : nullptr, total, t == 0);
  });
}

void parallel_network::update(optimizer& opt, double lr) {
  opt.begin_step(lr);
  for (size_t t = 0; t < active_; ++t)
    grads_[t] = replicas_[t]->grads().data();
  float* params = replicas_[0]->params().data();
  const size_t len = replicas_[0]->params().size();
  const size_t parts = std::max<size_t>(active_, 1);
  const size_t chunk = ((len + static_cast<size_t>(threads()) - 1) / static_cast<size_t>(threads()) + 15) / 16 * 16;
  pool_.run([&](int t) {
    size_t lo = std::min(len, static_cast<size_t>(t) * chunk), hi = std::min(len, lo + chunk);
    if (lo < hi)
      opt.update(params, grads_.data(), parts, lo, hi);
  });
}

batch_stats parallel_network::evaluate(const dataset& data, const uint32_t* idx, size_t n) {
  return each_replica(data, idx, n,
                      [](network& net, int, size_t rows, const float* y, size_t) { return net.evaluate(rows, y); });
}

void parallel_network::predict(const float* rows, size_t n, float* out) {
  omp_threads_scope one(1);
  const size_t per = static_cast<size_t>(per_);
  const size_t cols = static_cast<size_t>(primary().spec().inputs);
  const size_t k = static_cast<size_t>(primary().spec().outputs);
  for (size_t start = 0; start < n; start += static_cast<size_t>(batch_)) {
    size_t m = std::min(static_cast<size_t>(batch_), n - start);
    pool_.run([&](int t) {
      size_t lo = static_cast<size_t>(t) * per, hi = std::min(m, lo + per);
      if (lo >= hi)
        return;
      auto& net = *replicas_[static_cast<size_t>(t)];
      std::memcpy(net.input(), rows + (start + lo) * cols, (hi - lo) * cols * sizeof(float));
      const float* p = net.predict(hi - lo);
      std::memcpy(out + (start + lo) * k, p, (hi - lo) * k * sizeof(float));
    });
  }
}

} // namespace loom::ops::train
