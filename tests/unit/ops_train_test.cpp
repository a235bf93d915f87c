// train / predict: the network's gradients against finite differences (the oneDNN code
// itself), then real graphs through the executor: convergence, determinism, the Model
// round trip, the bundled featurizer, early stopping and bad input.
#include "run_env.hpp"
#include "sink_table.hpp"

#include "../../operators/train/model_bundle.hpp"
#include "../../operators/train/nn.hpp"
#include "../../operators/train/trained_model.hpp"
#include "../../operators/train/trainer.hpp"

#include <loom/fb/metrics_generated.h>

#include <nlohmann/json.hpp>

#include <omp.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

using loom::test::contains;
using loom::test::env;
using loom::test::node;
using loom::test::read_file;
using loom::test::write_file;
namespace tr = loom::ops::train;

namespace {

// ---- helpers --------------------------------------------------------------------------

using table = loom::test::sink_table;

table read_csv(env& e, const std::string& file) { return table::parse(read_file(e, file)); }

std::vector<uint8_t> read_bytes(env& e, const std::string& file) {
  auto s = read_file(e, file);
  return {s.begin(), s.end()};
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  return buf;
}

/// Runs a graph expected to fail and returns its error.
std::string failure(env& e, const std::string& yaml) {
  auto r = e.run(e.graph(yaml));
  CHECK(r.state == "failed");
  return r.error;
}

/// The JSON value of a hyperparameter.
nlohmann::json hyper(const tr::model_bundle& m, const char* key) {
  auto* v = m.hyperparameter(key);
  REQUIRE(v != nullptr);
  return nlohmann::json::parse(*v);
}

/// The history values called `name`, epoch by epoch.
std::vector<double> history(const tr::model_bundle& m, const std::string& name) {
  std::vector<double> out;
  for (auto& h : m.history)
    if (h.name == name) {
      CHECK(h.epoch == out.size() + 1);
      out.push_back(h.value);
    }
  return out;
}

/// The share of rows whose `prediction` equals `target`.
double accuracy(const table& t, const std::string& target) {
  size_t hit = 0;
  for (size_t r = 0; r < t.rows.size(); ++r)
    hit += t.at(r, "prediction") == t.at(r, target);
  return static_cast<double>(hit) / static_cast<double>(t.rows.size());
}

// ---- finite differences ------------------------------------------------------------------

/// The objective a train step differentiates: the mean data loss over n rows plus the
/// penalty; dropout masks drawn from a copy of `masks` so every call sees the same ones.
double objective(tr::network& net, size_t n, const std::vector<float>& y, const tr::rng* masks) {
  tr::rng copy = masks ? *masks : tr::rng(0);
  return net.evaluate(n, y.data(), masks ? &copy : nullptr).loss / static_cast<double>(n) + net.penalty();
}

/// Checks every parameter's gradient from train_step against central differences.
void check_gradients(const tr::net_spec& spec, int64_t batch, size_t n, const std::vector<float>& y,
                     bool with_dropout = false) {
  omp_set_num_threads(1);
  tr::network net(spec, batch, true);
  net.init(7);
  // biases away from zero too, so their gradients are exercised at a general point
  for (size_t l = 0; l < net.num_layers(); ++l) {
    std::vector<float> w, b;
    net.get_layer(l, w, b);
    for (size_t i = 0; i < b.size(); ++i)
      b[i] = 0.1f * static_cast<float>(i % 5) - 0.2f;
    if (spec.hidden.empty()) // the linear models start at zero: move them off it
      for (size_t i = 0; i < w.size(); ++i)
        w[i] = 0.3f * std::sin(static_cast<float>(i) * 1.7f + 0.4f);
    net.set_layer(l, w, b);
  }
  tr::rng data(11);
  for (int64_t i = 0; i < batch * spec.inputs; ++i)
    net.input()[i] = 2.0f * data.uniform() - 1.0f;
  tr::rng masks(99);
  tr::rng step_masks = masks;
  net.train_step(n, y.data(), with_dropout ? &step_masks : nullptr);
  std::vector<float> grad(net.grads().begin(), net.grads().end());

  auto p = net.params();
  const float eps = 1e-3f;
  size_t checked = 0, nonzero = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    float orig = p[i];
    if (spec.l1 > 0 && orig != 0 && std::abs(orig) < 4 * eps)
      continue; // |w| is not differentiable at 0
    p[i] = orig + eps;
    double up = objective(net, n, y, with_dropout ? &masks : nullptr);
    p[i] = orig - eps;
    double down = objective(net, n, y, with_dropout ? &masks : nullptr);
    p[i] = orig;
    double numeric = (up - down) / (static_cast<double>(orig + eps) - static_cast<double>(orig - eps));
    double analytic = grad[i];
    INFO("parameter " << i << " of " << p.size() << ": numeric " << numeric << ", analytic " << analytic);
    CHECK(std::abs(numeric - analytic) <= 3e-4 + 2e-2 * std::max(std::abs(numeric), std::abs(analytic)));
    ++checked;
    nonzero += std::abs(analytic) > 1e-6;
  }
  CHECK(checked >= net.num_params());
  CHECK(nonzero * 2 >= net.num_params()); // the check compared real gradients, not zeros
}

std::vector<float> class_targets(size_t n, int classes) {
  std::vector<float> y(n);
  for (size_t i = 0; i < n; ++i)
    y[i] = static_cast<float>((i * 7 + 3) % static_cast<size_t>(classes));
  return y;
}

std::vector<float> value_targets(size_t n) {
  std::vector<float> y(n);
  for (size_t i = 0; i < n; ++i)
    y[i] = std::cos(static_cast<float>(i)) * 1.5f;
  return y;
}

} // namespace

// ---- the network --------------------------------------------------------------------------

TEST_CASE("every layer's gradient matches finite differences", "[train][nn]") {
  tr::net_spec s;
  s.inputs = 5;
  SECTION("dense + mse (linear regression)") {
    s.loss = tr::loss_kind::mse;
    check_gradients(s, 8, 8, value_targets(8));
  }
  SECTION("dense + sigmoid + binary cross-entropy (logistic regression)") {
    s.loss = tr::loss_kind::sigmoid_bce;
    check_gradients(s, 8, 8, class_targets(8, 2));
  }
  SECTION("dense + softmax + cross-entropy (softmax regression)") {
    s.loss = tr::loss_kind::softmax_ce;
    s.outputs = 4;
    check_gradients(s, 8, 8, class_targets(8, 4));
  }
  SECTION("relu hidden layers") {
    s.hidden = {9, 6};
    s.act = tr::activation::relu;
    s.loss = tr::loss_kind::softmax_ce;
    s.outputs = 3;
    check_gradients(s, 8, 8, class_targets(8, 3));
  }
  SECTION("tanh hidden layers") {
    s.hidden = {7, 6};
    s.act = tr::activation::tanh;
    s.loss = tr::loss_kind::mse;
    check_gradients(s, 8, 8, value_targets(8));
  }
  SECTION("sigmoid hidden layers") {
    s.hidden = {7};
    s.act = tr::activation::sigmoid;
    s.loss = tr::loss_kind::sigmoid_bce;
    check_gradients(s, 8, 8, class_targets(8, 2));
  }
  SECTION("l2 penalty") {
    s.hidden = {6};
    s.act = tr::activation::tanh;
    s.loss = tr::loss_kind::softmax_ce;
    s.outputs = 3;
    s.l2 = 0.3f;
    check_gradients(s, 8, 8, class_targets(8, 3));
  }
  SECTION("l1 penalty") {
    s.loss = tr::loss_kind::mse;
    s.l1 = 0.2f;
    check_gradients(s, 8, 8, value_targets(8));
  }
  SECTION("dropout (a fixed mask)") {
    s.hidden = {12, 8};
    s.act = tr::activation::tanh;
    s.dropout = 0.4f;
    s.loss = tr::loss_kind::softmax_ce;
    s.outputs = 3;
    check_gradients(s, 8, 8, class_targets(8, 3), true);
  }
  SECTION("a short last batch: rows past n are masked out") {
    s.hidden = {6};
    s.act = tr::activation::relu;
    s.loss = tr::loss_kind::softmax_ce;
    s.outputs = 3;
    check_gradients(s, 16, 5, class_targets(16, 3));
  }
}

TEST_CASE("a short batch gives the gradient of a network built for exactly those rows", "[train][nn]") {
  omp_set_num_threads(1);
  tr::net_spec s;
  s.inputs = 6;
  s.hidden = {10};
  s.outputs = 3;
  s.loss = tr::loss_kind::softmax_ce;
  tr::network big(s, 32, true), small(s, 5, true);
  big.init(3);
  small.init(3);
  tr::rng r(4);
  for (int i = 0; i < 32 * 6; ++i)
    big.input()[i] = r.uniform() - 0.5f; // rows 5.. differ from anything in `small`
  std::copy_n(big.input(), 5 * 6, small.input());
  auto y = class_targets(32, 3);
  big.train_step(5, y.data(), nullptr);
  small.train_step(5, y.data(), nullptr);
  std::vector<float> wb, bb, ws, bs, gb, gs;
  for (size_t l = 0; l < 2; ++l) {
    big.get_layer(l, wb, bb);
    small.get_layer(l, ws, bs);
    CHECK(wb == ws);
  }
  // gradients compared through a step of plain SGD (lr 1) applied to both
  tr::optimizer_spec o;
  o.kind = tr::optimizer_kind::sgd;
  o.momentum = 0;
  tr::optimizer ob(o, big.params().size()), os(o, small.params().size());
  ob.step(big.params(), big.grads(), 1.0);
  os.step(small.params(), small.grads(), 1.0);
  for (size_t l = 0; l < 2; ++l) {
    big.get_layer(l, wb, bb);
    small.get_layer(l, ws, bs);
    REQUIRE(wb.size() == ws.size());
    for (size_t i = 0; i < wb.size(); ++i)
      CHECK(wb[i] == Approx(ws[i]).margin(1e-6));
    for (size_t i = 0; i < bb.size(); ++i)
      CHECK(bb[i] == Approx(bs[i]).margin(1e-6));
  }
}

TEST_CASE("without a mask, dropout is the identity and predict gives probabilities", "[train][nn]") {
  omp_set_num_threads(1);
  tr::net_spec s;
  s.inputs = 4;
  s.hidden = {8};
  s.outputs = 3;
  s.loss = tr::loss_kind::softmax_ce;
  s.dropout = 0.5f;
  tr::net_spec plain = s;
  plain.dropout = 0;
  tr::network a(s, 6, true), b(plain, 6, false);
  a.init(5);
  std::vector<float> w, bias;
  for (size_t l = 0; l < 2; ++l) {
    a.get_layer(l, w, bias);
    b.set_layer(l, w, bias);
  }
  tr::rng r(8);
  for (int i = 0; i < 24; ++i)
    a.input()[i] = b.input()[i] = r.uniform();
  std::vector<float> pa(a.predict(6), a.predict(6) + 18);
  std::vector<float> pb(b.predict(6), b.predict(6) + 18);
  CHECK(pa == pb);
  for (int i = 0; i < 6; ++i) {
    double sum = 0;
    for (int c = 0; c < 3; ++c)
      sum += pa[static_cast<size_t>(i * 3 + c)];
    CHECK(sum == Approx(1.0).epsilon(1e-6));
  }
}

TEST_CASE("learning-rate schedules", "[train][nn]") {
  tr::optimizer_spec o;
  o.lr = 0.1;
  CHECK(tr::learning_rate(o, 7, 10) == 0.1);
  o.schedule = tr::schedule_kind::step;
  o.step_size = 3;
  o.gamma = 0.5;
  CHECK(tr::learning_rate(o, 2, 10) == 0.1);
  CHECK(tr::learning_rate(o, 3, 10) == Approx(0.05));
  CHECK(tr::learning_rate(o, 7, 10) == Approx(0.025));
  o.schedule = tr::schedule_kind::cosine;
  CHECK(tr::learning_rate(o, 0, 4) == Approx(0.1));
  CHECK(tr::learning_rate(o, 2, 4) == Approx(0.05));
  CHECK(tr::learning_rate(o, 3, 4) == Approx(0.1 * (1 + std::cos(M_PI * 0.75)) / 2));
}

// ---- graphs ------------------------------------------------------------------------------

namespace {

/// Two well separated classes in the plane: y = yes when x1 + 2 x2 > 0.3 (margin 0.1).
std::string separable_csv(int rows, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::string s = "x1,x2,y\n";
  for (int i = 0; i < rows;) {
    double a = u(g), b = u(g), m = a + 2 * b - 0.3;
    if (std::abs(m) < 0.1)
      continue;
    s += num(a) + "," + num(b) + "," + (m > 0 ? "yes" : "no") + "\n";
    ++i;
  }
  return s;
}

/// Three blobs with integer labels 0, 1, 2.
std::string blobs_csv(int rows, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> u(-0.6, 0.6);
  const double cx[] = {0, 3, 0}, cy[] = {0, 0, 3};
  std::string s = "a,b,label\n";
  for (int i = 0; i < rows; ++i) {
    int k = i % 3;
    s += num(cx[k] + u(g)) + "," + num(cy[k] + u(g)) + "," + std::to_string(k) + "\n";
  }
  return s;
}

/// XOR: the class is the sign of x1 * x2 (no line separates it).
std::string xor_csv(int rows, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> u(0.15, 1);
  std::string s = "x1,x2,cls\n";
  for (int i = 0; i < rows; ++i) {
    double a = u(g) * (i % 2 ? 1 : -1), b = u(g) * (i % 4 < 2 ? 1 : -1);
    s += num(a) + "," + num(b) + "," + (a * b > 0 ? "same" : "diff") + "\n";
  }
  return s;
}

/// data.csv -> train (with `with`) -> predict on the same rows -> pred.csv.
std::string fit_predict_graph(const std::string& with) {
  return "name: t\nnodes:\n"
         "  - {id: data, op: ingest.csv, with: {path: data.csv}}\n"
         "  - {id: fit, op: train, inputs: {train: data.out}, with: {" + with + "}}\n"
         "  - {id: score, op: predict, inputs: {model: fit.model, data: data.out}}\n"
         "  - {id: out, op: sink.csv, inputs: score.predictions, with: {path: pred.csv}}\n";
}

} // namespace

TEST_CASE("logistic, softmax and MLP models separate separable data", "[train][graph]") {
  env e;
  SECTION("logistic regression") {
    write_file(e, "data.csv", separable_csv(200, 1));
    auto r = e.run(e.graph(fit_predict_graph("model: logistic, target: y, lr: 0.1, epochs: 40, batch_size: 16, "
                                             "save: model.bin")));
    REQUIRE(r.state == "succeeded");
    auto t = read_csv(e, "pred.csv");
    CHECK(t.header == std::vector<std::string>{"x1", "x2", "y", "prediction", "prob_no", "prob_yes"});
    REQUIRE(t.rows.size() == 200);
    CHECK(accuracy(t, "y") == 1.0);
    for (size_t i = 0; i < t.rows.size(); ++i)
      CHECK(t.num(i, "prob_no") + t.num(i, "prob_yes") == Approx(1.0));
    auto m = tr::model_bundle::parse(read_bytes(e, "model.bin"));
    CHECK(m.kind == "logistic");
    CHECK(m.classes == std::vector<std::string>{"no", "yes"});
    // the boundary is x1 + 2 x2 = 0.3: the weights point that way
    auto* w = m.find_tensor("dense0.weight");
    REQUIRE(w != nullptr);
    CHECK(w->shape == std::vector<int64_t>{1, 2});
    CHECK(w->data[1] / w->data[0] == Approx(2.0).epsilon(0.15));
    CHECK(node(r, "fit").metrics.at("train_accuracy") > 0.97);
  }
  SECTION("softmax regression on integer labels") {
    write_file(e, "data.csv", blobs_csv(150, 2));
    auto r = e.run(e.graph(fit_predict_graph("model: softmax, target: label, lr: 0.05, epochs: 30, batch_size: 8, "
                                             "save: model.bin")));
    REQUIRE(r.state == "succeeded");
    auto t = read_csv(e, "pred.csv");
    CHECK(t.header ==
          std::vector<std::string>{"a", "b", "label", "prediction", "prob_0", "prob_1", "prob_2"});
    CHECK(accuracy(t, "label") == 1.0);
    auto m = tr::model_bundle::parse(read_bytes(e, "model.bin"));
    CHECK(m.classes == std::vector<std::string>{"0", "1", "2"});
  }
  SECTION("an MLP learns XOR, which no linear model can") {
    write_file(e, "data.csv", xor_csv(200, 3));
    auto r = e.run(e.graph(fit_predict_graph("model: mlp, target: cls, layers: [16, 16], activation: tanh, "
                                             "lr: 0.02, epochs: 60, batch_size: 16")));
    REQUIRE(r.state == "succeeded");
    CHECK(accuracy(read_csv(e, "pred.csv"), "cls") == 1.0);
    // a linear model cannot
    auto lin = e.run(e.graph(fit_predict_graph("model: softmax, target: cls, lr: 0.02, epochs: 60, batch_size: 16")));
    REQUIRE(lin.state == "succeeded");
    CHECK(accuracy(read_csv(e, "pred.csv"), "cls") < 0.8);
  }
  SECTION("an MLP with sgd, momentum, a step schedule and relu") {
    write_file(e, "data.csv", xor_csv(200, 4));
    auto r = e.run(e.graph(fit_predict_graph("model: mlp, target: cls, layers: [32], optimizer: sgd, lr: 0.2, "
                                             "momentum: 0.9, schedule: step, step_size: 40, gamma: 0.5, "
                                             "epochs: 80, batch_size: 16")));
    REQUIRE(r.state == "succeeded");
    CHECK(accuracy(read_csv(e, "pred.csv"), "cls") == 1.0);
  }
}

TEST_CASE("linear regression recovers known coefficients", "[train][graph]") {
  env e;
  std::mt19937 g(5);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<std::array<double, 2>> x;
  std::string csv = "x1,x2,y\n";
  for (int i = 0; i < 120; ++i) {
    double a = u(g), b = u(g);
    x.push_back({a, b});
    csv += num(a) + "," + num(b) + "," + num(2 * a - 3 * b + 0.5) + "\n";
  }
  write_file(e, "data.csv", csv);
  SECTION("least squares") {
    auto r = e.run(e.graph(fit_predict_graph("model: linear, target: y, optimizer: sgd, lr: 0.1, momentum: 0.9, "
                                             "epochs: 150, batch_size: 16, save: model.bin")));
    REQUIRE(r.state == "succeeded");
    auto m = tr::model_bundle::parse(read_bytes(e, "model.bin"));
    auto& w = m.find_tensor("dense0.weight")->data;
    CHECK(w[0] == Approx(2.0).margin(1e-3));
    CHECK(w[1] == Approx(-3.0).margin(1e-3));
    CHECK(m.find_tensor("dense0.bias")->data[0] == Approx(0.5).margin(1e-3));
    auto t = read_csv(e, "pred.csv");
    CHECK(t.header == std::vector<std::string>{"x1", "x2", "y", "prediction"});
    CHECK(t.num(7, "prediction") == Approx(t.num(7, "y")).margin(5e-3));
    CHECK(node(r, "fit").metrics.at("train_rmse") < 1e-3);
  }
  SECTION("ridge (l2): the penalized optimum, solved here in closed form") {
    // full batch gradient descent converges to argmin mean((w.x + b - y)^2) + l2/2 |w|^2
    const double l2 = 0.5;
    auto r = e.run(e.graph(fit_predict_graph("model: linear, target: y, optimizer: sgd, lr: 0.2, momentum: 0.5, "
                                             "epochs: 400, batch_size: 120, l2: 0.5, save: model.bin")));
    REQUIRE(r.state == "succeeded");
    // normal equations of [w1 w2 b]: (2/n) X^T X [w; b] + l2 [w; 0] = (2/n) X^T y
    double A[3][4] = {};
    for (size_t i = 0; i < x.size(); ++i) {
      double row[3] = {x[i][0], x[i][1], 1.0};
      double y = 2 * x[i][0] - 3 * x[i][1] + 0.5;
      for (int a = 0; a < 3; ++a) {
        for (int b = 0; b < 3; ++b)
          A[a][b] += 2.0 / 120 * row[a] * row[b];
        A[a][3] += 2.0 / 120 * row[a] * y;
      }
    }
    A[0][0] += l2;
    A[1][1] += l2;
    for (int p = 0; p < 3; ++p) // Gauss-Jordan
      for (int q = 0; q < 3; ++q)
        if (q != p) {
          double f = A[q][p] / A[p][p];
          for (int c = 0; c < 4; ++c)
            A[q][c] -= f * A[p][c];
        }
    auto m = tr::model_bundle::parse(read_bytes(e, "model.bin"));
    auto& w = m.find_tensor("dense0.weight")->data;
    CHECK(w[0] == Approx(A[0][3] / A[0][0]).margin(1e-4));
    CHECK(w[1] == Approx(A[1][3] / A[1][1]).margin(1e-4));
    CHECK(m.find_tensor("dense0.bias")->data[0] == Approx(A[2][3] / A[2][2]).margin(1e-4));
    CHECK(std::abs(w[0]) < 1.9); // shrunk
  }
  SECTION("an MLP regresses a numeric target (task auto)") {
    auto r = e.run(e.graph(fit_predict_graph("model: mlp, target: y, layers: [16], lr: 0.01, epochs: 100, "
                                             "batch_size: 16, save: model.bin")));
    REQUIRE(r.state == "succeeded");
    auto m = tr::model_bundle::parse(read_bytes(e, "model.bin"));
    CHECK(hyper(m, "task") == "regression");
    CHECK(m.classes.empty());
    CHECK(node(r, "fit").metrics.at("train_rmse") < 0.1);
  }
}

TEST_CASE("the same seed gives the same model bit for bit, another seed another one", "[train][graph]") {
  env e;
  write_file(e, "data.csv", xor_csv(300, 6));
  auto graph = [](int seed, const std::string& file) {
    return fit_predict_graph("model: mlp, target: cls, layers: [24, 12], dropout: 0.2, lr: 0.01, epochs: 4, "
                             "batch_size: 32, threads: 2, seed: " +
                             std::to_string(seed) + ", save: " + file);
  };
  REQUIRE(e.run(e.graph(graph(42, "a.bin"))).state == "succeeded");
  auto first = read_file(e, "pred.csv");
  REQUIRE(e.run(e.graph(graph(42, "b.bin"))).state == "succeeded");
  REQUIRE(e.run(e.graph(graph(43, "c.bin"))).state == "succeeded");
  auto a = read_bytes(e, "a.bin"), b = read_bytes(e, "b.bin"), c = read_bytes(e, "c.bin");
  CHECK(a.size() > 1000);
  CHECK(a == b);
  CHECK(a != c);
  REQUIRE(e.run(e.graph(graph(42, "d.bin"))).state == "succeeded");
  CHECK(read_file(e, "pred.csv") == first);
}

TEST_CASE("a Model read back and written again is identical, and predicts the same", "[train][graph]") {
  env e;
  write_file(e, "data.csv", blobs_csv(90, 7));
  auto r = e.run(e.graph(fit_predict_graph("model: mlp, task: classification, target: label, layers: [8, 6], "
                                           "activation: sigmoid, epochs: 3, save: model.bin")));
  REQUIRE(r.state == "succeeded");
  auto bytes = read_bytes(e, "model.bin");
  auto m = tr::model_bundle::parse(bytes);
  CHECK(m.serialize() == bytes);

  // everything the contract says the Model carries
  CHECK(m.kind == "mlp");
  CHECK(m.version == "1");
  CHECK(m.target == "label");
  CHECK(m.classes == std::vector<std::string>{"0", "1", "2"});
  REQUIRE(m.input_schema.size() == 2);
  CHECK(m.input_schema[0].name == "a");
  CHECK(m.input_schema[1].name == "b");
  CHECK(m.preprocessing.empty());
  CHECK(hyper(m, "layers") == nlohmann::json::array({8, 6}));
  CHECK(hyper(m, "activation") == "sigmoid");
  CHECK(hyper(m, "features") == nlohmann::json::array({"a", "b"}));
  CHECK(hyper(m, "epochs_run") == 3);
  CHECK(history(m, "train_loss").size() == 3);
  CHECK(history(m, "train_accuracy").size() == 3);
  std::vector<std::string> names;
  for (auto& t : m.tensors)
    names.push_back(t.name + " " + std::to_string(t.data.size()));
  CHECK(names == std::vector<std::string>{"dense0.weight 16", "dense0.bias 8", "dense1.weight 48", "dense1.bias 6",
                                          "dense2.weight 18", "dense2.bias 3"});

  // a network built from the parsed Model scores the rows exactly as predict did
  auto layout = tr::read_layout(m);
  tr::network net(layout.spec, 90, false);
  tr::load_weights(net, m);
  auto t = read_csv(e, "pred.csv");
  REQUIRE(t.rows.size() == 90);
  for (size_t i = 0; i < 90; ++i) {
    net.input()[i * 2] = static_cast<float>(t.num(i, "a"));
    net.input()[i * 2 + 1] = static_cast<float>(t.num(i, "b"));
  }
  const float* p = net.predict(90);
  for (size_t i = 0; i < 90; ++i)
    for (size_t c = 0; c < 3; ++c)
      CHECK(static_cast<double>(p[i * 3 + c]) == t.num(i, "prob_" + std::to_string(c)));

  // a damaged Model is refused with a reason
  auto broken = bytes;
  broken.resize(bytes.size() / 2);
  CHECK_THROWS_WITH(tr::model_bundle::parse(broken), Catch::Contains("not a valid Model"));
  auto other = m;
  other.tensors.pop_back();
  CHECK_THROWS_WITH(tr::read_layout(other), Catch::Contains("no tensor 'dense2.bias'"));
}

TEST_CASE("a bundled featurizer: predict on raw rows = featurize.apply then a model without it", "[train][graph]") {
  env e;
  std::mt19937 g(9);
  std::uniform_real_distribution<double> u(0, 100);
  const char* cities[] = {"paris", "rome", "oslo"};
  auto rows = [&](int n, bool test) {
    std::string s = "price,city,size,bought\n";
    for (int i = 0; i < n; ++i) {
      double price = u(g), size = u(g) / 10;
      const char* city = cities[i % 3];
      bool yes = price / 50 + (city[0] == 'r' ? 1.0 : 0.0) - size / 5 > 0.5;
      std::string p = test && i == 3 ? "" : num(price);            // null: null after standardize
      std::string sz = test && i == 5 ? "inf" : num(size);         // the featurizer rejects it
      s += p + "," + (test && i == 7 ? "tokyo" : city) + "," + sz + "," + (yes ? "y" : "n") + "\n";
    }
    return s;
  };
  write_file(e, "train.csv", rows(150, false));
  write_file(e, "test.csv", rows(40, true));
  auto r = e.run(e.graph(R"(name: t
nodes:
  - {id: tr, op: ingest.csv, with: {path: train.csv}}
  - {id: te, op: ingest.csv, with: {path: test.csv}}
  - id: features
    op: featurize.fit
    inputs: tr.out
    with:
      transforms:
        - {column: price, op: standardize}
        - {column: city, op: one_hot}
        - {column: size, op: minmax}
  - id: bundled
    op: train
    inputs: {train: tr.out, featurizer: features.state}
    with: {model: logistic, target: bought, lr: 0.05, epochs: 20, batch_size: 16, save: bundled.bin}
  - id: plain
    op: train
    inputs: {train: features.out}
    with: {model: logistic, target: bought, lr: 0.05, epochs: 20, batch_size: 16, save: plain.bin}
  - {id: raw_scores, op: predict, inputs: {model: bundled.model, data: te.out}}
  - {id: applied, op: featurize.apply, inputs: {state: features.state, data: te.out}}
  - {id: applied_scores, op: predict, inputs: {model: plain.model, data: applied.out}}
  - {id: out1, op: sink.csv, inputs: raw_scores.predictions, with: {path: raw.csv}}
  - {id: rej1, op: sink.csv, inputs: raw_scores.rejects, with: {path: raw_rejects.csv}}
  - {id: out2, op: sink.csv, inputs: applied_scores.predictions, with: {path: applied.csv}}
)"));
  REQUIRE(r.state == "succeeded");
  auto bundled = tr::model_bundle::parse(read_bytes(e, "bundled.bin"));
  auto plain = tr::model_bundle::parse(read_bytes(e, "plain.bin"));
  CHECK(!bundled.preprocessing.empty());
  CHECK(plain.preprocessing.empty());
  CHECK(bundled.tensors == plain.tensors); // the same featurized rows, the same training
  // input_schema: the raw columns, as the featurizer reads them
  std::vector<std::string> raw_cols;
  for (auto& f : bundled.input_schema)
    raw_cols.push_back(f.name);
  CHECK(raw_cols == std::vector<std::string>{"price", "city", "size", "bought"});
  CHECK(hyper(bundled, "features") ==
        nlohmann::json::array({"price", "city=oslo", "city=paris", "city=rome", "city=__unknown__", "size"}));

  auto raw = read_csv(e, "raw.csv"), applied = read_csv(e, "applied.csv");
  // raw rows in, raw columns out (not the featurized ones)
  CHECK(raw.header == std::vector<std::string>{"price", "city", "size", "bought", "prediction", "prob_n", "prob_y"});
  // row 3 (null price: null after standardize) and row 5 (inf size: the featurizer
  // rejects it) cannot be scored, in either graph
  REQUIRE(raw.rows.size() == 38);
  REQUIRE(applied.rows.size() == 38);
  for (size_t i = 0; i < raw.rows.size(); ++i) {
    CHECK(raw.at(i, "prediction") == applied.at(i, "prediction"));
    CHECK(raw.at(i, "prob_n") == applied.at(i, "prob_n"));
    CHECK(raw.at(i, "prob_y") == applied.at(i, "prob_y"));
  }
  CHECK(raw.at(5, "city") == "tokyo"); // an unseen category: the unknown slot, still scored
  auto rejects = read_csv(e, "raw_rejects.csv");
  REQUIRE(rejects.rows.size() == 2);
  CHECK(rejects.at(0, "reason") == "column 'price' is null");
  CHECK(contains(rejects.at(1, "reason"), "featurizer: column 'size'"));
  CHECK(rejects.at(1, "size") == "inf");
  CHECK(node(r, "raw_scores").rows_in == 40);
  CHECK(node(r, "raw_scores").rows_out == 38);
  CHECK(node(r, "raw_scores").rows_rejected == 2);
}

TEST_CASE("early stopping stops after `patience` and keeps the best epoch", "[train][graph]") {
  env e;
  // validation labels are the opposite of the training labels: the better the model
  // learns the training rows, the worse it does on validation, so epoch 1 is the best
  std::mt19937 g(10);
  std::uniform_real_distribution<double> u(-1, 1);
  std::string train = "x,other,y\n", val = "x,other,y\n";
  for (int i = 0; i < 200; ++i) {
    double x = u(g), o = u(g);
    train += num(x) + "," + num(o) + "," + (x > 0 ? "up" : "down") + "\n";
    double v = u(g);
    val += num(v) + "," + num(o) + "," + (v > 0 ? "down" : "up") + "\n";
  }
  val += "0.5,0.5,sideways\n"; // a class training never saw: rejected
  write_file(e, "train.csv", train);
  write_file(e, "val.csv", val);
  auto graph = [](int epochs, const std::string& file) {
    return "name: t\nnodes:\n"
           "  - {id: tr, op: ingest.csv, with: {path: train.csv}}\n"
           "  - {id: va, op: ingest.csv, with: {path: val.csv}}\n"
           "  - id: fit\n    op: train\n    inputs: {train: tr.out, validation: va.out}\n"
           "    with: {model: logistic, target: y, lr: 0.05, batch_size: 20, patience: 2, epochs: " +
           std::to_string(epochs) + ", save: " + file + "}\n"
           "  - {id: rej, op: sink.csv, inputs: fit.rejects, with: {path: rejects.csv}}\n"
           "  - {id: m, op: test.save, inputs: fit.metrics, with: {path: metrics.bin}}\n";
  };
  auto r = e.run(e.graph(graph(20, "long.bin")));
  REQUIRE(r.state == "succeeded");
  auto m = tr::model_bundle::parse(read_bytes(e, "long.bin"));
  auto val_loss = history(m, "val_loss");
  REQUIRE(val_loss.size() == 3); // epoch 1 best, 2 and 3 worse: stopped
  CHECK(val_loss[1] > val_loss[0]);
  CHECK(val_loss[2] > val_loss[0]);
  CHECK(history(m, "val_accuracy").size() == 3);
  CHECK(hyper(m, "best_epoch") == 1);
  CHECK(hyper(m, "stopped_early") == true);
  CHECK(hyper(m, "validation_rows") == 200);
  // the recorded metrics are the latest epoch's, as the run went
  auto& metrics = node(r, "fit").metrics;
  CHECK(metrics.at("epoch") == 3);
  CHECK(metrics.at("val_loss") == val_loss[2]);
  // the Metrics message carries the best epoch
  auto mb = read_bytes(e, "metrics.bin");
  auto* mm = loom::fb::GetMetrics(mb.data());
  std::map<std::string, double> values;
  for (auto* v : *mm->values())
    values[v->name()->str()] = v->value();
  CHECK(values.at("val_loss") == val_loss[0]);
  CHECK(values.at("best_epoch") == 1);
  CHECK(values.at("epochs_run") == 3);
  CHECK(values.at("rejected_rows") == 1);
  auto rejects = read_csv(e, "rejects.csv");
  REQUIRE(rejects.rows.size() == 1);
  CHECK(rejects.at(0, "input") == "validation");
  CHECK(rejects.at(0, "row") == "201");
  CHECK(contains(rejects.at(0, "reason"), "class 'sideways'"));

  // the emitted weights are epoch 1's: the same as training for one epoch
  REQUIRE(e.run(e.graph(graph(1, "one.bin"))).state == "succeeded");
  auto one = tr::model_bundle::parse(read_bytes(e, "one.bin"));
  CHECK(one.tensors == m.tensors);

  SECTION("restore_best: false keeps the last epoch's weights") {
    auto text = graph(20, "last.bin");
    text.replace(text.find("patience: 2"), 11, "patience: 2, restore_best: false");
    REQUIRE(e.run(e.graph(text)).state == "succeeded");
    CHECK(tr::model_bundle::parse(read_bytes(e, "last.bin")).tensors != m.tensors);
  }
}

TEST_CASE("bad input: clear errors that name the column or parameter", "[train][graph]") {
  env e;
  write_file(e, "data.csv", "x,city,y\n1,paris,a\n2,rome,b\n3,oslo,a\n");
  write_file(e, "num.csv", "x,z,y\n1,5,a\n2,6,b\n3,7,c\n,8,a\n");
  auto one = [](const std::string& file, const std::string& with) {
    return "name: t\nnodes:\n"
           "  - {id: data, op: ingest.csv, with: {path: " + file + "}}\n"
           "  - {id: fit, op: train, inputs: {train: data.out}, with: {" + with + "}}\n";
  };
  SECTION("a target column that does not exist") {
    auto err = failure(e, one("data.csv", "model: softmax, target: label"));
    CHECK(contains(err, "target column 'label' is not in the training data"));
    CHECK(contains(err, "x (i64), city (string), y (string)"));
  }
  SECTION("a string feature without a featurizer") {
    auto err = failure(e, one("data.csv", "model: softmax, target: y"));
    CHECK(contains(err, "column 'city' is a string column"));
    CHECK(contains(err, "featurize.fit"));
    err = failure(e, one("data.csv", "model: softmax, target: y, features: [x, city]"));
    CHECK(contains(err, "feature column 'city' is a string column"));
  }
  SECTION("a feature that does not exist") {
    auto err = failure(e, one("num.csv", "model: softmax, target: y, features: [x, w]"));
    CHECK(contains(err, "no feature column 'w'"));
  }
  SECTION("logistic regression with three classes") {
    auto err = failure(e, one("num.csv", "model: logistic, target: y"));
    CHECK(contains(err, "target column 'y' has 3 classes (a, b, c)"));
    CHECK(contains(err, "model: softmax"));
  }
  SECTION("regression on a string target") {
    auto err = failure(e, one("num.csv", "model: linear, target: y"));
    CHECK(contains(err, "target column 'y' is a string column"));
  }
  SECTION("parameters") {
    CHECK(contains(failure(e, one("num.csv", "model: forest, target: y")),
                   "model: expected one of linear, logistic, softmax, mlp, found 'forest'"));
    CHECK(contains(failure(e, one("num.csv", "model: mlp, target: y, layers: [8, 0]")), "layers:"));
    CHECK(contains(failure(e, one("num.csv", "model: linear, target: x, monitor: val_accuracy")),
                   "monitor: val_accuracy needs a classification model"));
    CHECK(contains(failure(e, one("num.csv", "model: softmax, target: y, patience: 3")),
                   "patience: early stopping watches val_loss, which needs validation rows"));
    CHECK(contains(failure(e, one("num.csv", "model: softmax, target: y, dropout: 1.5")), "dropout:"));
    CHECK(contains(failure(e, one("num.csv", "model: softmax, target: y, features: [y]")),
                   "features: 'y' is the target"));
  }
  SECTION("no training rows") {
    write_file(e, "empty.csv", "x,z,y\n");
    CHECK(contains(failure(e, one("empty.csv", "model: softmax, target: y")),
                   "no usable training rows (the train input was empty)"));
  }
  SECTION("a featurizer input that is not a featurizer") {
    auto err = failure(e, one("num.csv", "model: softmax, target: y, epochs: 1") +
                              "  - {id: again, op: train, inputs: {train: data.out, featurizer: fit.model}, "
                              "with: {model: softmax, target: y}}\n");
    CHECK(contains(err, "featurizer input:"));
    CHECK(contains(err, "kind 'softmax'"));
  }
  SECTION("rows with a null feature are rejected, not trained on") {
    write_file(e, "nulls.csv", "x,z,y\n1,5,a\n2,,b\n3,7,a\n4,8,b\n,9,a\n");
    auto r = e.run(e.graph(one("nulls.csv", "model: softmax, target: y, epochs: 1, save: m.bin") +
                           "  - {id: rej, op: sink.csv, inputs: fit.rejects, with: {path: rej.csv}}\n"));
    REQUIRE(r.state == "succeeded");
    auto m = tr::model_bundle::parse(read_bytes(e, "m.bin"));
    CHECK(hyper(m, "train_rows") == 3);
    CHECK(node(r, "fit").rows_rejected == 2);
    auto rej = read_csv(e, "rej.csv");
    REQUIRE(rej.rows.size() == 2);
    CHECK(rej.at(0, "row") == "2");
    CHECK(rej.at(0, "reason") == "column 'z' is null");
    CHECK(rej.at(1, "reason") == "column 'x' is null");
  }
}

TEST_CASE("predict: unseen classes, text in a feature column, keep, and name clashes", "[train][graph]") {
  env e;
  write_file(e, "train.csv", "x,z,y\n1,5,a\n2,6,b\n3,7,a\n4,8,b\n5,9,a\n");
  // z as text: numbers that parse are scored, the others rejected; y has an unseen class
  write_file(e, "test.csv", "x,z,y\n1,5,a\n2,six,zzz\n3, 7 ,b\n4,8,zzz\n");
  auto graph = [](const std::string& with) {
    return "name: t\nnodes:\n"
           "  - {id: tr, op: ingest.csv, with: {path: train.csv}}\n"
           "  - {id: te, op: ingest.csv, with: {path: test.csv, schema: {z: string}}}\n"
           "  - {id: fit, op: train, inputs: {train: tr.out}, with: {model: logistic, target: y, epochs: 2}}\n"
           "  - {id: score, op: predict, inputs: {model: fit.model, data: te.out}, with: {" + with + "}}\n"
           "  - {id: out, op: sink.csv, inputs: score.predictions, with: {path: pred.csv}}\n"
           "  - {id: rej, op: sink.csv, inputs: score.rejects, with: {path: rej.csv}}\n";
  };
  auto r = e.run(e.graph(graph("keep: [y, x]")));
  REQUIRE(r.state == "succeeded");
  auto t = read_csv(e, "pred.csv");
  CHECK(t.header == std::vector<std::string>{"y", "x", "prediction", "prob_a", "prob_b"});
  REQUIRE(t.rows.size() == 3);
  CHECK(t.at(2, "y") == "zzz"); // passed through; evaluate reports it
  auto rej = read_csv(e, "rej.csv");
  REQUIRE(rej.rows.size() == 1);
  CHECK(rej.at(0, "reason") == "column 'z' value 'six' is not a number");
  CHECK(node(r, "score").rows_in == 4);
  CHECK(node(r, "score").rows_out + node(r, "score").rows_rejected == 4);

  CHECK(contains(failure(e, graph("keep: [nope]")), "keep: no column 'nope'"));
  CHECK(contains(failure(e, graph("prediction: x")), "output column 'x' is already an input column"));
  // a featurizer state is not a trained model
  auto err = failure(e, R"(name: t
nodes:
  - {id: tr, op: ingest.csv, with: {path: train.csv}}
  - {id: f, op: featurize.fit, inputs: tr.out, with: {transforms: [{column: x, op: standardize}]}}
  - {id: score, op: predict, inputs: {model: f.state, data: tr.out}}
)");
  CHECK(contains(err, "the Model is of kind 'featurizer'"));
  // no rows to score: nothing out, no failure
  write_file(e, "test.csv", "x,z,y\n");
  r = e.run(e.graph(graph("batch_size: 2")));
  REQUIRE(r.state == "succeeded");
  CHECK(node(r, "score").rows_out == 0);
}

TEST_CASE("train and predict are documented for `loom ops describe`", "[train]") {
  env e;
  for (const char* name : {"train", "predict"}) {
    auto* op = e.reg.find(name);
    REQUIRE(op != nullptr);
    CHECK(op->description.size() > 500);
    CHECK(contains(op->examples, std::string("op: ") + name));
    for (auto& p : op->params) {
      INFO(name << " parameter " << p.name);
      CHECK(p.description.size() > 10);
      CHECK((p.required || p.default_json || contains(p.description, "default")));
    }
  }
  auto* train = e.reg.find("train");
  CHECK(train->inputs.size() == 3);
  CHECK(!train->inputs[0].optional);
  CHECK(train->inputs[1].optional);
  CHECK(train->inputs[2].optional);
}

// Hidden (run by hand: loom_ops_train_test "[.fashion]"; LOOM_TRAIN_THREADS=n sets
// `threads`): the Fashion-MNIST MLP of the benchmark (Adam 0.001 with a cosine schedule,
// batch 128, 5 epochs) through a real graph, printing the time per epoch; checks the
// accuracy only.
TEST_CASE("Fashion-MNIST MLP 784-256-128-10 reaches 0.87 test accuracy", "[.fashion]") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(dir + "/train-images-idx3-ubyte.gz")) {
    WARN("dataset-fashion-mnist is not installed");
    return;
  }
  env e;
  const char* threads = std::getenv("LOOM_TRAIN_THREADS");
  auto r = e.run(e.graph("name: fashion\nnodes:\n"
                         "  - {id: tr, op: ingest.idx, with: {images: " + dir + "/train-images-idx3-ubyte.gz, labels: " +
                         dir + "/train-labels-idx1-ubyte.gz}}\n"
                         "  - {id: te, op: ingest.idx, with: {images: " + dir + "/t10k-images-idx3-ubyte.gz, labels: " +
                         dir + "/t10k-labels-idx1-ubyte.gz}}\n"
                         "  - id: fit\n    op: train\n    inputs: {train: tr.out}\n"
                         "    with: {model: mlp, task: classification, target: label, layers: [256, 128], epochs: 5, "
                         "batch_size: 128, lr: 0.001, schedule: cosine, save: fashion.bin, threads: " +
                         std::string(threads ? threads : "0") + "}\n"
                         "  - {id: score, op: predict, inputs: {model: fit.model, data: te.out}, with: {keep: [label]}}\n"
                         "  - {id: out, op: sink.csv, inputs: score.predictions, with: {path: pred.csv}}\n"));
  REQUIRE(r.state == "succeeded");
  auto t = read_csv(e, "pred.csv");
  double acc = accuracy(t, "label");
  auto m = tr::model_bundle::parse(read_bytes(e, "fashion.bin"));
  WARN("test accuracy " << acc << "; last epoch " << node(r, "fit").metrics.at("epoch_seconds") << " s, "
                        << node(r, "fit").metrics.at("samples_per_second") << " rows/s; threads "
                        << hyper(m, "threads"));
  CHECK(acc >= 0.87);
}
