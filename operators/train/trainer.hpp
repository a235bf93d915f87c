// The training loop: epochs of shuffled mini-batches through a network (nn.hpp) and an
// optimizer (optimizer.hpp), validation after every epoch, early stopping and the best
// checkpoint. Independent of the operator SDK, so tests drive it directly.
#pragma once

#include "dataset.hpp"
#include "nn.hpp"
#include "optimizer.hpp"
#include "parallel.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace loom::ops::train {

struct train_options {
  int64_t epochs = 10;
  int64_t batch_size = 128;
  bool shuffle = true;
  uint64_t seed = 42;
  optimizer_spec opt;
  int64_t patience = 0;             ///< epochs without improvement before stopping; 0 = never
  std::string monitor = "val_loss"; ///< metric watched for the best epoch and early stopping
  double min_delta = 0;             ///< smallest change that counts as an improvement
  bool restore_best = true;         ///< end with the best epoch's weights (needs validation)
};

/// Whether a larger value of metric `name` is better (accuracy) or a smaller one (losses, errors).
bool higher_is_better(const std::string& name);

struct epoch_report {
  int64_t epoch = 0; ///< 1-based
  double lr = 0;
  std::vector<std::pair<std::string, double>> values; ///< train_loss, train_accuracy, val_loss, ...
  double seconds = 0;     ///< wall time of the epoch (training and validation)
  double train_seconds = 0; ///< wall time of the training batches alone
  bool best = false;        ///< the monitored metric improved
};

struct train_result {
  std::vector<epoch_report> epochs;
  int64_t best_epoch = 0; ///< 1-based epoch whose weights the network holds at the end
  bool stopped_early = false;
};

struct train_callbacks {
  std::function<void(const epoch_report&)> on_epoch;
  std::function<bool()> cancelled; ///< checked between batches; true ends training with cancelled_error
};

struct cancelled_error : std::exception {
  const char* what() const noexcept override { return "cancelled"; }
};

/// Trains `net` (built for options.batch_size rows, with training) on `train`,
/// validating on `validation` (may be null or empty). At the end the network holds the
/// best epoch's weights (monitor, when validation is given and restore_best) or the last
/// epoch's. Classification (softmax_ce, sigmoid_bce) reports accuracies; regression (mse)
/// root mean squared and mean absolute errors. This code allocates nothing per batch
/// (oneDNN's primitive execution itself makes a few small allocations per call).
train_result fit(parallel_network& net, const dataset& train, const dataset* validation,
                 const train_options& options, const train_callbacks& callbacks = {});

/// Loss and metrics of `net` on `data`, in batches of net.batch(): {"loss", "accuracy"} or
/// {"loss", "rmse", "mae"} (loss: mean cross-entropy or mean squared error).
std::vector<std::pair<std::string, double>> measure(parallel_network& net, const dataset& data);

} // namespace loom::ops::train
