#include "trainer.hpp"

#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>

namespace loom::ops::train {

bool higher_is_better(const std::string& name) { return name.find("accuracy") != std::string::npos; }

namespace {

bool classification(const network& net) { return net.spec().loss != loss_kind::mse; }

void add_measures(std::vector<std::pair<std::string, double>>& out, const std::string& prefix, bool classify,
                  const batch_stats& sum, size_t rows) {
  double n = static_cast<double>(rows);
  out.emplace_back(prefix + "loss", sum.loss / n);
  if (classify) {
    out.emplace_back(prefix + "accuracy", static_cast<double>(sum.correct) / n);
  } else {
    out.emplace_back(prefix + "rmse", std::sqrt(sum.loss / n));
    out.emplace_back(prefix + "mae", sum.abs_err / n);
  }
}

/// Scratch for measure(), allocated once per fit.
struct measure_buffers {
  std::vector<uint32_t> idx;
};

std::vector<std::pair<std::string, double>> measure_with(parallel_network& net, const dataset& data,
                                                         measure_buffers& buf) {
  std::vector<std::pair<std::string, double>> out;
  if (data.size() == 0)
    return out;
  const size_t b = static_cast<size_t>(net.batch());
  buf.idx.resize(b);
  batch_stats sum;
  for (size_t start = 0; start < data.size(); start += b) {
    size_t n = std::min(b, data.size() - start);
    std::iota(buf.idx.begin(), buf.idx.begin() + static_cast<std::ptrdiff_t>(n), static_cast<uint32_t>(start));
    auto st = net.evaluate(data, buf.idx.data(), n);
    sum.loss += st.loss;
    sum.abs_err += st.abs_err;
    sum.correct += st.correct;
  }
  add_measures(out, "", classification(net.primary()), sum, data.size());
  return out;
}

} // namespace

std::vector<std::pair<std::string, double>> measure(parallel_network& net, const dataset& data) {
  measure_buffers buf;
  return measure_with(net, data, buf);
}

train_result fit(parallel_network& pnet, const dataset& train, const dataset* validation, const train_options& o,
                 const train_callbacks& cb) {
  using clock = std::chrono::steady_clock;
  network& net = pnet.primary();
  if (train.size() == 0)
    throw std::invalid_argument("no training rows");
  if (train.size() > UINT32_MAX)
    throw std::invalid_argument("more than 2^32 - 1 training rows");
  if (pnet.batch() != o.batch_size)
    throw std::logic_error("the network is built for another batch size");
  const bool has_val = validation != nullptr && validation->size() > 0;
  const bool classify = classification(net);
  const size_t b = static_cast<size_t>(o.batch_size);
  const size_t rows = train.size();

  // everything the loop needs, allocated before it
  optimizer opt(o.opt, net.params().size());
  std::vector<uint32_t> order(rows);
  std::iota(order.begin(), order.end(), 0u);
  rng shuffle_rng(o.seed, 2);
  std::vector<rng> dropout_rngs;
  for (int t = 0; t < pnet.threads(); ++t)
    dropout_rngs.emplace_back(o.seed, 3 + static_cast<uint64_t>(t));
  std::vector<rng>* drop = net.spec().dropout > 0 ? &dropout_rngs : nullptr;
  std::vector<float> best_params;
  measure_buffers mbuf;
  double best_value = 0;
  int64_t since_best = 0;

  train_result result;
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    auto t0 = clock::now();
    epoch_report rep;
    rep.epoch = epoch + 1;
    rep.lr = learning_rate(o.opt, epoch, o.epochs);
    if (o.shuffle)
      shuffle_rng.shuffle(order);
    batch_stats sum;
    for (size_t start = 0; start < rows; start += b) {
      if (cb.cancelled && cb.cancelled())
        throw cancelled_error();
      size_t n = std::min(b, rows - start);
      auto st = pnet.train_step(train, order.data() + start, n, drop);
      pnet.update(opt, rep.lr);
      sum.loss += st.loss;
      sum.abs_err += st.abs_err;
      sum.correct += st.correct;
    }
    rep.train_seconds = std::chrono::duration<double>(clock::now() - t0).count();
    if (!std::isfinite(sum.loss))
      throw std::runtime_error("the training loss is not finite in epoch " + std::to_string(epoch + 1) +
                               " (diverged: lower lr, or standardize the features)");
    add_measures(rep.values, "train_", classify, sum, rows);
    rep.values.emplace_back("lr", rep.lr);
    if (has_val)
      for (auto& [k, v] : measure_with(pnet, *validation, mbuf))
        rep.values.emplace_back("val_" + k, v);

    // the monitored metric: the best epoch and early stopping
    double current = 0;
    bool found = false;
    for (auto& [k, v] : rep.values)
      if (k == o.monitor) {
        current = v;
        found = true;
      }
    if (!found && (has_val || o.patience > 0))
      throw std::invalid_argument("monitor: no metric '" + o.monitor + "' in this training" +
                                  (has_val ? "" : " (metrics starting with val_ need a validation input)"));
    bool improved = found && (epoch == 0 || (higher_is_better(o.monitor) ? current > best_value + o.min_delta
                                                                         : current < best_value - o.min_delta));
    if (improved) {
      best_value = current;
      result.best_epoch = epoch + 1;
      since_best = 0;
      if (has_val && o.restore_best) {
        auto p = net.params();
        best_params.assign(p.begin(), p.end());
      }
    } else {
      ++since_best;
    }
    rep.best = improved;
    rep.seconds = std::chrono::duration<double>(clock::now() - t0).count();
    result.epochs.push_back(rep);
    if (cb.on_epoch)
      cb.on_epoch(result.epochs.back());
    if (o.patience > 0 && since_best >= o.patience && epoch + 1 < o.epochs) {
      result.stopped_early = true;
      break;
    }
  }
  if (has_val && o.restore_best && !best_params.empty()) {
    auto p = net.params();
    std::copy(best_params.begin(), best_params.end(), p.begin());
  } else {
    result.best_epoch = static_cast<int64_t>(result.epochs.size());
  }
  return result;
}

} // namespace loom::ops::train
