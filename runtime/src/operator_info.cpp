#include "loom/runtime/operator_info.hpp"

namespace loom {

namespace {
template <class Vec>
int index_of(const Vec& ports, const std::string& name) {
  for (size_t i = 0; i < ports.size(); ++i)
    if (ports[i].name == name)
      return static_cast<int>(i);
  return -1;
}
} // namespace

const port_info* operator_info::find_input(const std::string& port) const {
  auto i = input_index(port);
  return i < 0 ? nullptr : &inputs[i];
}

const port_info* operator_info::find_output(const std::string& port) const {
  auto i = output_index(port);
  return i < 0 ? nullptr : &outputs[i];
}

const param_info* operator_info::find_param(const std::string& param) const {
  auto i = index_of(params, param);
  return i < 0 ? nullptr : &params[i];
}

int operator_info::input_index(const std::string& port) const {
  return index_of(inputs, port);
}

int operator_info::output_index(const std::string& port) const {
  return index_of(outputs, port);
}

const char* to_string(loom_message_type type) {
  switch (type) {
    case LOOM_MSG_ANY: return "any";
    case LOOM_MSG_FRAME: return "frame";
    case LOOM_MSG_MODEL: return "model";
    case LOOM_MSG_METRICS: return "metrics";
    case LOOM_MSG_EVENT: return "event";
  }
  return "unknown";
}

const char* to_string(loom_param_type type) {
  switch (type) {
    case LOOM_PARAM_STRING: return "string";
    case LOOM_PARAM_INT: return "int";
    case LOOM_PARAM_FLOAT: return "float";
    case LOOM_PARAM_BOOL: return "bool";
    case LOOM_PARAM_LIST: return "list";
    case LOOM_PARAM_MAP: return "map";
  }
  return "unknown";
}

} // namespace loom
