// Optimizers (SGD with momentum, Adam) and learning-rate schedules. An update is a loop
// over a range of the flat parameter buffer of a network (nn.hpp), element by element:
// several threads may update disjoint ranges of one step, and the result does not depend
// on how the buffer is split. The loop is compiled for AVX-512, AVX2 and baseline x86-64
// and picked at load time; no fused multiply-add is used, so every variant gives the same
// bits.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

namespace loom::ops::train {

enum class optimizer_kind { sgd, adam };
enum class schedule_kind { none, step, cosine };

struct optimizer_spec {
  optimizer_kind kind = optimizer_kind::adam;
  double lr = 0.001;
  double momentum = 0.9;                         ///< sgd
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8; ///< adam
  schedule_kind schedule = schedule_kind::none;
  int64_t step_size = 10; ///< step: epochs between decays
  double gamma = 0.1;     ///< step: decay factor
};

/// The learning rate of epoch `epoch` (0-based) of `epochs`: constant; lr * gamma^floor(epoch /
/// step_size) (step); or lr * (1 + cos(pi * epoch / epochs)) / 2 (cosine, as PyTorch's
/// CosineAnnealingLR with T_max = epochs and eta_min = 0, stepped once per epoch).
double learning_rate(const optimizer_spec& s, int64_t epoch, int64_t epochs);

class optimizer {
public:
  optimizer(const optimizer_spec& spec, size_t size);

  /// Starts update number t + 1 at learning rate `lr` (call once per step, then update()).
  void begin_step(double lr);

  /// Updates params[lo, hi) with the gradient sum grads[0][i] + ... + grads[parts - 1][i]
  /// (summed in that order):
  ///   sgd:  v = momentum * v + g;  p -= lr * v            (PyTorch's SGD)
  ///   adam: m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
  ///         p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)   (PyTorch's Adam)
  void update(float* params, const float* const* grads, size_t parts, size_t lo, size_t hi);

  /// begin_step + update of the whole buffer with one gradient.
  void step(std::span<float> params, std::span<const float> grads, double lr) {
    if (params.size() != m_.size() || grads.size() != m_.size())
      throw std::logic_error("optimizer: parameter count changed");
    begin_step(lr);
    const float* g = grads.data();
    update(params.data(), &g, 1, 0, m_.size());
  }

  size_t size() const { return m_.size(); }
  uint64_t steps() const { return t_; }

private:
  optimizer_spec spec_;
  std::vector<float> m_, v_;
  uint64_t t_ = 0;
  float a_ = 0, b_ = 0; ///< this step's coefficients (sgd: lr; adam: lr / bc1, 1 / sqrt(bc2))
};

} // namespace loom::ops::train
