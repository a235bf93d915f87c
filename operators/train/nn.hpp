// The neural-network core of the train operator: a dense feed-forward network (no
// hidden layer = linear, logistic or softmax regression; hidden layers = an MLP) whose
// forward and backward passes run on oneDNN primitives.
//
// Everything is sized for one batch of `batch` rows when the network is built: the
// primitives (inner product forward / backward data / backward weights with the
// activation fused into the forward pass as a post-op, eltwise backward, softmax) are
// created once, and every buffer (input, activations, gradients, oneDNN scratchpad) is
// allocated once. A batch of fewer rows (the last one of an epoch) runs through the
// same primitives: rows past `n` are masked out of the loss and the gradients.
//
// The parameters live in one flat float buffer, each layer's weights in the layout
// oneDNN chose for its fastest kernel (blocked and zero-padded), so an optimizer can
// update them with one loop over contiguous floats. set_layer/get_layer convert from and
// to the plain [outputs x inputs] row-major layout used in Model messages.
//
// Threading: oneDNN runs its primitives on OpenMP threads of the calling thread; the
// caller sets their number (omp_set_num_threads) before building the network. One
// network must be used by one thread at a time. dnnl.hpp is kept out of this header.
#pragma once

#include "rng.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace loom::ops::train {

enum class activation { relu, tanh, sigmoid };
enum class loss_kind {
  mse,         ///< one output, mean squared error (regression)
  sigmoid_bce, ///< one output, sigmoid + binary cross-entropy (binary classification)
  softmax_ce   ///< one output per class, softmax + cross-entropy (multi-class)
};

const char* to_string(activation a);
const char* to_string(loss_kind k);

struct net_spec {
  int64_t inputs = 0;
  std::vector<int64_t> hidden; ///< hidden layer sizes; empty for the linear models
  int64_t outputs = 1;
  activation act = activation::relu; ///< of every hidden layer
  float dropout = 0;                 ///< dropout rate after every hidden layer (training only)
  loss_kind loss = loss_kind::mse;
  float l1 = 0, l2 = 0; ///< penalty l1 * sum|w| + l2 / 2 * sum w^2 over the weights (not biases)
};

/// Sums over the rows of one batch.
struct batch_stats {
  double loss = 0;    ///< data loss summed over the rows (cross-entropy, or squared error)
  double abs_err = 0; ///< regression: summed |prediction - target|
  size_t correct = 0; ///< classification: rows whose arg-max class is the target
};

class network {
public:
  /// Builds the primitives and buffers for batches of up to `batch` rows.
  /// `training`: also the backward pass (else forward only, dropout ignored).
  /// `share_params_with`: a network of the same spec and batch whose parameter buffer
  /// this one reads instead of owning one (a replica for data parallelism; it must
  /// outlive this one). Throws std::invalid_argument for a bad spec and
  /// std::runtime_error for oneDNN failures. oneDNN plans its kernels for the OpenMP
  /// thread count of the calling thread.
  network(const net_spec& spec, int64_t batch, bool training, const network* share_params_with = nullptr);
  ~network();
  network(const network&) = delete;
  network& operator=(const network&) = delete;

  const net_spec& spec() const;
  int64_t batch() const;
  size_t num_layers() const;
  int64_t layer_inputs(size_t layer) const;
  int64_t layer_outputs(size_t layer) const;
  /// Parameters of the model (weights and biases), without layout padding.
  size_t num_params() const;
  /// Name of each primitive implementation oneDNN picked (for logs), e.g. "brgemm:avx512_core".
  std::string implementation() const;

  /// The flat parameter buffer and its gradient (same layout; padding stays zero).
  std::span<float> params();
  std::span<const float> params() const;
  std::span<float> grads();

  /// Weight [outputs x inputs] row-major and bias [outputs] of one layer.
  void set_layer(size_t layer, std::span<const float> weight, std::span<const float> bias);
  void get_layer(size_t layer, std::vector<float>& weight, std::vector<float>& bias) const;

  /// Initial parameters: zeros without hidden layers; otherwise weights uniform in
  /// +-sqrt(6 / fan_in) (relu, He) or +-sqrt(6 / (fan_in + fan_out)) (tanh and sigmoid
  /// layers and the output layer, Glorot), biases zero.
  void init(uint64_t seed);

  /// The input of the next batch: batch() x inputs floats, row-major. Rows past the `n`
  /// given to the next call are ignored (they must hold finite numbers).
  float* input();

  /// Forward, loss over rows [0, n) against `target` (a class index as a float for
  /// softmax_ce, 0/1 for sigmoid_bce, the value for mse) and backward: grads() becomes
  /// the gradient of (mean data loss over the n rows + penalty). Dropout masks are
  /// drawn from `dropout_rng` (nullptr: no dropout).
  batch_stats train_step(size_t n, const float* target, rng* dropout_rng) {
    return train_step(n, target, dropout_rng, n, true);
  }
  /// The same for a part of a batch of `total` rows spread over replicas: the data loss
  /// is averaged over `total` rows, and the penalty's gradient is added only when
  /// `with_penalty` (by one replica), so the replicas' gradients sum to the batch's.
  batch_stats train_step(size_t n, const float* target, rng* dropout_rng, size_t total, bool with_penalty);

  /// Forward and loss only (no gradients); dropout only when dropout_rng is given.
  batch_stats evaluate(size_t n, const float* target, rng* dropout_rng = nullptr);

  /// Forward of rows [0, n) without dropout. Returns batch() x outputs floats:
  /// class probabilities (softmax_ce), the probability of class 1 (sigmoid_bce), or
  /// the predicted value (mse). Valid until the next call.
  const float* predict(size_t n);

  /// The penalty term l1 * sum|w| + l2 / 2 * sum w^2 at the current weights.
  double penalty() const;

private:
  struct impl;
  std::unique_ptr<impl> p_;
};

} // namespace loom::ops::train
