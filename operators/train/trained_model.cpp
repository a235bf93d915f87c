#include "trained_model.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace loom::ops::train {

namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& what) {
  throw sdk::error("model: " + what, LOOM_ERR_BAD_DATA);
}

json hyper(const model_bundle& m, const char* key) {
  auto* text = m.hyperparameter(key);
  if (text == nullptr)
    bad(std::string("the Model has no hyperparameter '") + key + "'");
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded())
    bad(std::string("hyperparameter '") + key + "' is not JSON: " + *text);
  return j;
}

std::string weight_name(size_t l) { return "dense" + std::to_string(l) + ".weight"; }
std::string bias_name(size_t l) { return "dense" + std::to_string(l) + ".bias"; }

} // namespace

model_layout read_layout(const model_bundle& m) {
  model_layout out;
  out.kind = m.kind;
  if (std::find_if(std::begin(model_kinds), std::end(model_kinds), [&](const char* k) { return m.kind == k; }) ==
      std::end(model_kinds))
    bad("the Model is of kind '" + m.kind +
        "', not one train makes (linear, logistic, softmax, mlp); connect the model output of a train node");
  try {
    auto task = hyper(m, "task").get<std::string>();
    if (task != "classification" && task != "regression")
      bad("hyperparameter 'task' is '" + task + "'");
    out.classification = task == "classification";
    out.features = hyper(m, "features").get<std::vector<std::string>>();
    if (out.features.empty())
      bad("the Model has no features");
    auto& s = out.spec;
    s.inputs = static_cast<int64_t>(out.features.size());
    if (m.kind == "mlp") {
      s.hidden = hyper(m, "layers").get<std::vector<int64_t>>();
      auto act = hyper(m, "activation").get<std::string>();
      if (act == "relu")
        s.act = activation::relu;
      else if (act == "tanh")
        s.act = activation::tanh;
      else if (act == "sigmoid")
        s.act = activation::sigmoid;
      else
        bad("hyperparameter 'activation' is '" + act + "'");
    }
    auto loss = hyper(m, "loss").get<std::string>();
    if (loss == to_string(loss_kind::mse))
      s.loss = loss_kind::mse;
    else if (loss == to_string(loss_kind::sigmoid_bce))
      s.loss = loss_kind::sigmoid_bce;
    else if (loss == to_string(loss_kind::softmax_ce))
      s.loss = loss_kind::softmax_ce;
    else
      bad("hyperparameter 'loss' is '" + loss + "'");
  } catch (const json::exception& e) {
    bad(std::string("a hyperparameter has the wrong type: ") + e.what());
  }
  auto& s = out.spec;
  if (out.classification) {
    if (m.classes.size() < 2)
      bad("a classification Model needs at least two classes, it has " + std::to_string(m.classes.size()));
    if (s.loss == loss_kind::mse)
      bad("a classification Model with loss mse");
    if (s.loss == loss_kind::sigmoid_bce && m.classes.size() != 2)
      bad("a binary (sigmoid) Model with " + std::to_string(m.classes.size()) + " classes");
    s.outputs = s.loss == loss_kind::softmax_ce ? static_cast<int64_t>(m.classes.size()) : 1;
  } else {
    if (s.loss != loss_kind::mse)
      bad("a regression Model with loss " + std::string(to_string(s.loss)));
    s.outputs = 1;
  }
  int64_t in = s.inputs;
  for (size_t l = 0; l <= s.hidden.size(); ++l) {
    int64_t o = l < s.hidden.size() ? s.hidden[l] : s.outputs;
    if (o < 1)
      bad("layer " + std::to_string(l) + " has " + std::to_string(o) + " outputs");
    auto* w = m.find_tensor(weight_name(l));
    auto* b = m.find_tensor(bias_name(l));
    if (w == nullptr || b == nullptr)
      bad("the Model has no tensor '" + (w ? bias_name(l) : weight_name(l)) + "'");
    if (w->shape != std::vector<int64_t>{o, in} || w->data.size() != static_cast<size_t>(o * in))
      bad("tensor '" + w->name + "' should be " + std::to_string(o) + " x " + std::to_string(in) + " with " +
          std::to_string(o * in) + " values");
    if (b->shape != std::vector<int64_t>{o} || b->data.size() != static_cast<size_t>(o))
      bad("tensor '" + b->name + "' should hold " + std::to_string(o) + " values");
    in = o;
  }
  return out;
}

void store_weights(const network& net, model_bundle& m) {
  m.tensors.clear();
  std::vector<float> w, b;
  for (size_t l = 0; l < net.num_layers(); ++l) {
    net.get_layer(l, w, b);
    m.tensors.push_back({weight_name(l), {net.layer_outputs(l), net.layer_inputs(l)}, w});
    m.tensors.push_back({bias_name(l), {net.layer_outputs(l)}, b});
  }
}

void load_weights(network& net, const model_bundle& m) {
  for (size_t l = 0; l < net.num_layers(); ++l) {
    auto* w = m.find_tensor(weight_name(l));
    auto* b = m.find_tensor(bias_name(l));
    if (w == nullptr || b == nullptr)
      bad("the Model has no tensors for layer " + std::to_string(l));
    net.set_layer(l, w->data, b->data);
  }
}

} // namespace loom::ops::train
