#include "model_bundle.hpp"

#include <loom/fb/model_generated.h>

namespace loom::ops::train {

bool operator==(const sdk::field& a, const sdk::field& b) {
  return a.name == b.name && a.type == b.type && a.nullable == b.nullable;
}

std::vector<uint8_t> model_bundle::serialize() const {
  size_t floats = 0;
  for (auto& t : tensors)
    floats += t.data.size();
  flatbuffers::FlatBufferBuilder b(4096 + floats * sizeof(float) + preprocessing.size());
  // children first, in a fixed order; empty strings and lists are left out (parse reads
  // them back as empty), so equal values always give equal bytes
  auto str = [&](const std::string& s) { return s.empty() ? 0 : b.CreateString(s); };
  auto kind_o = b.CreateString(kind);
  auto version_o = str(version);
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Param>>> hyper_o;
  if (!hyperparameters.empty()) {
    std::vector<flatbuffers::Offset<fb::Param>> v;
    for (auto& [k, val] : hyperparameters)
      v.push_back(fb::CreateParam(b, b.CreateString(k), str(val)));
    hyper_o = b.CreateVector(v);
  }
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Field>>> schema_o;
  if (!input_schema.empty()) {
    std::vector<flatbuffers::Offset<fb::Field>> v;
    for (auto& f : input_schema)
      v.push_back(fb::CreateField(b, b.CreateString(f.name), static_cast<fb::ColumnType>(f.type), f.nullable));
    schema_o = b.CreateVector(v);
  }
  auto target_o = str(target);
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>> classes_o;
  if (!classes.empty()) {
    std::vector<flatbuffers::Offset<flatbuffers::String>> v;
    for (auto& c : classes)
      v.push_back(b.CreateString(c));
    classes_o = b.CreateVector(v);
  }
  auto pre_o = str(preprocessing);
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Tensor>>> tensors_o;
  if (!tensors.empty()) {
    std::vector<flatbuffers::Offset<fb::Tensor>> v;
    for (auto& t : tensors) {
      auto name = b.CreateString(t.name);
      auto shape = b.CreateVector(t.shape);
      auto data = b.CreateVector(t.data);
      v.push_back(fb::CreateTensor(b, name, shape, data));
    }
    tensors_o = b.CreateVector(v);
  }
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::HistoryPoint>>> history_o;
  if (!history.empty()) {
    std::vector<flatbuffers::Offset<fb::HistoryPoint>> v;
    for (auto& h : history)
      v.push_back(fb::CreateHistoryPoint(b, h.epoch, str(h.name), h.value));
    history_o = b.CreateVector(v);
  }
  auto m = fb::CreateModel(b, kind_o, version_o, hyper_o, schema_o, target_o, classes_o, pre_o, tensors_o, history_o);
  fb::FinishModelBuffer(b, m);
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

model_bundle model_bundle::parse(std::span<const uint8_t> bytes) {
  flatbuffers::Verifier v(bytes.data(), bytes.size());
  if (bytes.data() == nullptr || bytes.size() < 8 || !fb::ModelBufferHasIdentifier(bytes.data()) ||
      !fb::VerifyModelBuffer(v))
    throw sdk::error("model: the message (" + std::to_string(bytes.size()) + " bytes) is not a valid Model",
                     LOOM_ERR_BAD_DATA);
  auto* m = fb::GetModel(bytes.data());
  auto s = [](const flatbuffers::String* x) { return x ? x->str() : std::string(); };
  model_bundle out;
  out.kind = m->kind()->str();
  out.version = s(m->version());
  if (m->hyperparameters())
    for (auto* p : *m->hyperparameters())
      out.hyperparameters.emplace_back(p->key()->str(), s(p->value()));
  if (m->input_schema())
    for (auto* f : *m->input_schema()) {
      auto t = static_cast<int>(f->type());
      if (t < 0 || t > static_cast<int>(sdk::col_type::string))
        throw sdk::error("model: input_schema column '" + f->name()->str() + "' has an unknown type " +
                           std::to_string(t),
                         LOOM_ERR_BAD_DATA);
      out.input_schema.push_back({f->name()->str(), static_cast<sdk::col_type>(t), f->nullable()});
    }
  out.target = s(m->target());
  if (m->classes())
    for (auto* c : *m->classes())
      out.classes.push_back(c ? c->str() : std::string());
  out.preprocessing = s(m->preprocessing());
  if (m->tensors())
    for (auto* t : *m->tensors()) {
      tensor x;
      x.name = t->name()->str();
      if (t->shape())
        x.shape.assign(t->shape()->begin(), t->shape()->end());
      if (t->data())
        x.data.assign(t->data()->begin(), t->data()->end());
      out.tensors.push_back(std::move(x));
    }
  if (m->history())
    for (auto* h : *m->history())
      out.history.push_back({h->epoch(), s(h->name()), h->value()});
  return out;
}

const std::string* model_bundle::hyperparameter(std::string_view key) const {
  for (auto& [k, v] : hyperparameters)
    if (k == key)
      return &v;
  return nullptr;
}

const tensor* model_bundle::find_tensor(std::string_view name) const {
  for (auto& t : tensors)
    if (t.name == name)
      return &t;
  return nullptr;
}

} // namespace loom::ops::train
