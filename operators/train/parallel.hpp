// Data parallelism for training and scoring on a few cores.
//
// oneDNN's own OpenMP parallelism synchronises its threads several times inside every
// primitive: tens of barriers per batch. On a machine shared with other busy processes a
// barrier waits until every thread has been scheduled again, and training slows down
// many times over. So each of `threads` replicas of the network (sharing one parameter
// buffer) runs oneDNN single-threaded on its own thread, on its share of every batch's
// rows; the threads meet twice per batch: after the forward/backward passes, and after
// the parameter update, which they split by ranges of the buffer. The gradient of the
// batch is the replicas' gradients summed in replica order, so a given thread count
// always gives the same bits.
#pragma once

#include "dataset.hpp"
#include "nn.hpp"
#include "optimizer.hpp"

#include <atomic>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace loom::ops::train {

/// `threads` - 1 helper threads plus the caller. The helpers make no host calls; they
/// are joined by the destructor.
class worker_pool {
public:
  explicit worker_pool(int threads);
  ~worker_pool();
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  int size() const { return static_cast<int>(helpers_.size()) + 1; }

  /// Runs fn(t) for t = 0 .. size() - 1 — t = 0 on the calling thread — and returns
  /// when all have returned; rethrows the first exception one of them threw. Waiting
  /// spins briefly, then sleeps (futex), so a busy machine loses little to it. Allocates
  /// nothing (fn is called through a pointer, not copied into a std::function).
  template <class F>
  void run(F&& fn) {
    using fn_type = std::remove_reference_t<F>;
    run_impl([](void* f, int t) { (*static_cast<fn_type*>(f))(t); }, const_cast<void*>(static_cast<const void*>(&fn)));
  }

private:
  void run_impl(void (*call)(void*, int), void* fn);
  void helper(int t);

  std::vector<std::thread> helpers_;
  void (*call_)(void*, int) = nullptr;
  void* fn_ = nullptr;
  std::atomic<uint32_t> generation_{0};
  std::atomic<uint32_t> done_{0};
  std::atomic<bool> stop_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

/// Sets the calling thread's OpenMP thread count (what oneDNN uses) for a scope.
class omp_threads_scope {
public:
  explicit omp_threads_scope(int threads);
  ~omp_threads_scope();

private:
  int before_;
};

/// Threads worth using for batches of `batch` rows: one per core, but no more than one
/// per 10 MFLOP of work per batch (2 flops per weight and row forward, `passes` passes:
/// 1 scoring, 3 training), so small models do not pay for synchronising threads.
int auto_threads(const net_spec& spec, int64_t batch, int passes);

/// Replicas of one network, one per pool thread, splitting every batch by rows.
class parallel_network {
public:
  /// `batch` rows per call, split into replicas of ceil(batch / threads) rows.
  parallel_network(const net_spec& spec, int64_t batch, bool training, int threads);
  ~parallel_network();

  /// Replica 0: owns the parameters; set_layer/get_layer/init/penalty go through it.
  network& primary() { return *replicas_[0]; }
  const network& primary() const { return *replicas_[0]; }
  int64_t batch() const { return batch_; }
  int threads() const { return pool_.size(); }

  /// Forward and backward of rows idx[0, n) of `data` (n <= batch()); each replica's
  /// dropout masks come from (*dropout)[replica] (nullptr: no dropout). The gradient
  /// stays spread over the replicas until update().
  batch_stats train_step(const dataset& data, const uint32_t* idx, size_t n, std::vector<rng>* dropout);

  /// One optimizer step with the gradient of the last train_step.
  void update(optimizer& opt, double lr);

  /// Loss and metrics of rows idx[0, n) (n <= batch()), without dropout.
  batch_stats evaluate(const dataset& data, const uint32_t* idx, size_t n);

  /// Outputs (see network::predict) of n row-major rows of spec.inputs floats each, any n.
  void predict(const float* rows, size_t n, float* out);

private:
  /// Gathers rows idx[0, n) (n <= batch()) into the replicas' inputs and targets, a
  /// slice each, runs step(replica, thread, rows, targets, n) on every replica that
  /// got rows, and sums their stats.
  template <class Step>
  batch_stats each_replica(const dataset& data, const uint32_t* idx, size_t n, Step&& step);

  std::vector<std::unique_ptr<network>> replicas_;
  int64_t batch_ = 0, per_ = 0;
  size_t active_ = 0; ///< replicas that had rows in the last train_step
  std::vector<std::vector<float>> targets_;
  std::vector<batch_stats> stats_;
  std::vector<const float*> grads_;
  worker_pool pool_;
};

} // namespace loom::ops::train
