#include "loom/runtime/plugin_registry.hpp"

#include "loom/runtime/host.hpp"

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

struct loom_registrar {
  std::vector<loom::operator_info> ops;
};

namespace loom {

namespace {

std::string str(const char* s) {
  return s ? s : "";
}

bool valid_op_name(const std::string& n) {
  if (n.empty() || n.size() > 128)
    return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

bool json_matches(const nlohmann::json& j, loom_param_type t) {
  switch (t) {
    case LOOM_PARAM_STRING: return j.is_string();
    case LOOM_PARAM_INT: return j.is_number_integer();
    case LOOM_PARAM_FLOAT: return j.is_number();
    case LOOM_PARAM_BOOL: return j.is_boolean();
    case LOOM_PARAM_LIST: return j.is_array();
    case LOOM_PARAM_MAP: return j.is_object();
  }
  return false;
}

// The type's LOOM_PORT_OPTIONAL bit becomes port_info::optional.
std::vector<port_info> copy_ports(const loom_port_def* ports, uint32_t n) {
  std::vector<port_info> out;
  for (uint32_t i = 0; i < n; ++i) {
    auto raw = static_cast<uint32_t>(ports[i].type);
    out.push_back({str(ports[i].name), static_cast<loom_message_type>(raw & ~uint32_t{LOOM_PORT_OPTIONAL}),
                   str(ports[i].description), (raw & LOOM_PORT_OPTIONAL) != 0});
  }
  return out;
}

bool known_type(loom_message_type t) {
  return t == LOOM_MSG_ANY || t == LOOM_MSG_FRAME || t == LOOM_MSG_MODEL || t == LOOM_MSG_METRICS ||
         t == LOOM_MSG_EVENT;
}

struct loaded_plugin {
  boost::dll::shared_library lib;
  plugin_info info;
};

// Opens a library and runs its init; nothing is registered yet.
caf::expected<std::pair<std::shared_ptr<loaded_plugin>, std::vector<operator_info>>>
open_plugin(const std::string& path_in) {
  auto fail = [&](const std::string& why) {
    return make_error(errc::plugin, "plugin " + path_in + ": " + why);
  };
  std::error_code ec;
  auto path = std::filesystem::absolute(path_in, ec);
  if (ec || !std::filesystem::exists(path))
    return fail("no such file");
  if (!std::filesystem::is_regular_file(path))
    return fail("not a regular file");
  auto p = std::make_shared<loaded_plugin>();
  p->info.path = path.string();
  try {
    p->lib.load(boost::dll::fs::path(path.string()),
                boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    std::string why = e.what();
    if (why.find("ELF") != std::string::npos || why.find("too short") != std::string::npos)
      return fail("not a shared library (" + why + ")");
    return fail("cannot load: " + why);
  }
  // A plugin library is never unmapped: libraries such as oneDNN and libgomp keep
  // worker threads and atexit handlers that point into their code, so a dlclose
  // while the process lives is unsafe. Pinning also lets tools like LeakSanitizer
  // name the plugin's frames at exit instead of an "<unknown module>".
  if (::dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) == nullptr)
    return fail(std::string("cannot pin the library: ") + ::dlerror());
  if (!p->lib.has(LOOM_PLUGIN_ENTRY_SYMBOL))
    return fail(std::string("no entry point: the library does not export '") +
                LOOM_PLUGIN_ENTRY_SYMBOL + "' (is it a Loom plugin? use LOOM_PLUGIN(...))");
  const loom_plugin_header* header = nullptr;
  try {
    auto entry = p->lib.get<const loom_plugin_header*()>(LOOM_PLUGIN_ENTRY_SYMBOL);
    header = entry();
  } catch (...) {
    return fail("the entry point threw an exception");
  }
  if (header == nullptr)
    return fail("the entry point returned no plugin header");
  p->info.abi_major = header->abi_major;
  p->info.abi_minor = header->abi_minor;
  auto ver = [](uint32_t a, uint32_t b) { return std::to_string(a) + "." + std::to_string(b); };
  if (header->abi_major != LOOM_ABI_VERSION_MAJOR)
    return fail("ABI version mismatch: plugin is built for ABI " + ver(header->abi_major, header->abi_minor) +
                ", this host speaks ABI " + ver(LOOM_ABI_VERSION_MAJOR, LOOM_ABI_VERSION_MINOR) +
                " (major versions must match; rebuild the plugin against this SDK)");
  if (header->abi_minor > LOOM_ABI_VERSION_MINOR)
    return fail("plugin needs ABI " + ver(header->abi_major, header->abi_minor) +
                " but this host provides only ABI " + ver(LOOM_ABI_VERSION_MAJOR, LOOM_ABI_VERSION_MINOR) +
                " (upgrade Loom)");
  p->info.name = str(header->name);
  p->info.version = str(header->version);
  if (header->init == nullptr)
    return fail("the plugin header has no init function");
  loom_registrar reg;
  loom_error* err = nullptr;
  try {
    err = header->init(host_api(), &reg);
  } catch (const std::exception& e) {
    return fail(std::string("init threw an exception: ") + e.what());
  } catch (...) {
    return fail("init threw an exception");
  }
  if (err != nullptr) {
    std::string msg = err->message;
    delete err;
    return fail("init failed: " + msg);
  }
  for (auto& op : reg.ops) {
    op.plugin_name = p->info.name;
    op.plugin_path = p->info.path;
    op.plugin_version = p->info.version;
    p->info.operators.push_back(op.name);
  }
  return std::make_pair(std::move(p), std::move(reg.ops));
}

/// Error messages name the path as the user gave it.
std::string replace_path(std::string message, const std::string& canonical, const std::string& given) {
  if (!canonical.empty() && canonical != given)
    if (auto pos = message.find(canonical); pos != std::string::npos)
      message.replace(pos, canonical.size(), given);
  return message;
}

} // namespace

loom_error* register_operator_impl(loom_registrar* reg, const loom_operator_def* def) {
  if (reg == nullptr || def == nullptr)
    return new_error(LOOM_ERR_INVALID_ARGUMENT, "register_operator: null argument");
  operator_info op;
  op.name = str(def->name);
  if (!valid_op_name(op.name))
    return new_error(LOOM_ERR_INVALID_ARGUMENT,
                     "invalid operator name '" + op.name + "' (letters, digits, '.', '_', '-')");
  for (auto& other : reg->ops)
    if (other.name == op.name)
      return new_error(LOOM_ERR_INVALID_ARGUMENT, "operator '" + op.name + "' registered twice");
  if (def->vtable.create == nullptr)
    return new_error(LOOM_ERR_INVALID_ARGUMENT, "operator '" + op.name + "' has no create function");
  if (def->num_inputs > 0 && def->vtable.on_input == nullptr)
    return new_error(LOOM_ERR_INVALID_ARGUMENT,
                     "operator '" + op.name + "' has inputs but no on_input function");
  op.version = str(def->version);
  op.description = str(def->description);
  op.examples = str(def->examples);
  op.inputs = copy_ports(def->inputs, def->num_inputs);
  op.outputs = copy_ports(def->outputs, def->num_outputs);
  std::set<std::string> seen;
  for (auto& p : op.inputs)
    if (p.name.empty() || !seen.insert("in:" + p.name).second)
      return new_error(LOOM_ERR_INVALID_ARGUMENT, "operator '" + op.name + "': empty or duplicate input port '" + p.name + "'");
  for (auto& p : op.outputs)
    if (p.name.empty() || !seen.insert("out:" + p.name).second)
      return new_error(LOOM_ERR_INVALID_ARGUMENT, "operator '" + op.name + "': empty or duplicate output port '" + p.name + "'");
  for (auto* ports : {&op.inputs, &op.outputs})
    for (auto& p : *ports)
      if (!known_type(p.type))
        return new_error(LOOM_ERR_INVALID_ARGUMENT, "operator '" + op.name + "': port '" + p.name +
                                                      "' has unknown message type " + std::to_string(p.type));
  for (auto& p : op.outputs)
    if (p.optional)
      return new_error(LOOM_ERR_INVALID_ARGUMENT, "operator '" + op.name + "': output port '" + p.name +
                                                    "' is marked optional; only input ports can be");
  for (uint32_t i = 0; i < def->num_params; ++i) {
    auto& d = def->params[i];
    param_info p;
    p.name = str(d.name);
    p.type = d.type;
    p.required = d.required != 0;
    p.description = str(d.description);
    if (p.name.empty() || !seen.insert("param:" + p.name).second)
      return new_error(LOOM_ERR_INVALID_ARGUMENT, "operator '" + op.name + "': empty or duplicate parameter '" + p.name + "'");
    if (d.default_json != nullptr) {
      auto j = nlohmann::json::parse(d.default_json, nullptr, false);
      if (j.is_discarded() || !json_matches(j, d.type))
        return new_error(LOOM_ERR_INVALID_ARGUMENT, "operator '" + op.name + "': default of parameter '" + p.name +
                                                      "' is not a valid " + to_string(d.type) + ": " + d.default_json);
      p.default_json = j.dump();
    }
    op.params.push_back(std::move(p));
  }
  op.resources = def->resources;
  op.vtable = def->vtable;
  reg->ops.push_back(std::move(op));
  return nullptr;
}

struct plugin_registry::impl {
  std::vector<std::shared_ptr<loaded_plugin>> libs;
  std::vector<plugin_info> infos;
  std::map<std::string, operator_info> ops;
};

plugin_registry::plugin_registry() : impl_(std::make_unique<impl>()) {}

plugin_registry::~plugin_registry() {
  // operators must go before their libraries
  impl_->ops.clear();
}

caf::expected<plugin_info> plugin_registry::load(const std::string& path) {
  std::error_code ec;
  auto canonical = std::filesystem::weakly_canonical(std::filesystem::absolute(path, ec), ec).string();
  for (auto& p : impl_->infos)
    if (p.path == canonical)
      return p; // already loaded: init does not run twice
  auto opened = open_plugin(canonical.empty() ? path : canonical);
  if (!opened)
    return make_error(errc::plugin, replace_path(error_message(opened.error()), canonical, path));
  auto& [lib, ops] = *opened;
  for (auto& op : ops) {
    auto it = impl_->ops.find(op.name);
    if (it != impl_->ops.end())
      return make_error(errc::plugin, "plugin " + path + ": operator '" + op.name +
                                        "' is already defined by " + it->second.plugin_path +
                                        "; plugin not loaded");
  }
  for (auto& op : ops)
    impl_->ops.emplace(op.name, std::move(op));
  impl_->libs.push_back(lib);
  impl_->infos.push_back(lib->info);
  return lib->info;
}

std::vector<std::string> plugin_registry::load_directories(const std::vector<std::string>& dirs) {
  std::vector<std::string> errors;
  for (auto& dir : dirs) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
      continue;
    std::vector<std::string> files;
    for (auto& e : std::filesystem::directory_iterator(dir, ec))
      if (e.path().extension() == ".so")
        files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    for (auto& f : files)
      if (auto r = load(f); !r)
        errors.push_back(error_message(r.error()));
  }
  return errors;
}

caf::expected<std::pair<plugin_info, std::vector<operator_info>>>
plugin_registry::inspect(const std::string& path) {
  auto opened = open_plugin(path);
  if (!opened)
    return opened.error();
  // the vtables point into the library, which closes when `opened` goes: clear them
  auto ops = std::move(opened->second);
  for (auto& op : ops)
    op.vtable = {};
  return std::make_pair(opened->first->info, std::move(ops));
}

const operator_info* plugin_registry::find(const std::string& name) const {
  auto it = impl_->ops.find(name);
  return it == impl_->ops.end() ? nullptr : &it->second;
}

std::vector<std::string> plugin_registry::names() const {
  std::vector<std::string> out;
  for (auto& [name, _] : impl_->ops)
    out.push_back(name);
  return out;
}

const std::vector<plugin_info>& plugin_registry::plugins() const {
  return impl_->infos;
}

std::string executable_dir() {
  try {
    return boost::dll::program_location().parent_path().string();
  } catch (...) {
    return ".";
  }
}

std::vector<std::string> plugin_registry::default_search_path() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("LOOM_PLUGIN_PATH")) {
    std::string s = env;
    size_t start = 0;
    while (start <= s.size()) {
      auto end = s.find(':', start);
      if (end == std::string::npos)
        end = s.size();
      if (end > start)
        out.push_back(s.substr(start, end - start));
      start = end + 1;
    }
  }
  auto dir = std::filesystem::path(executable_dir()) / LOOM_PLUGIN_RELDIR;
  out.push_back(dir.lexically_normal().string());
  return out;
}

bool load_graph_plugins(graph_spec& graph, plugin_registry& registry, diagnostics& out) {
  size_t before = out.size();
  for (auto& path : graph.plugins)
    if (auto r = registry.load(path); !r)
      out.push_back({graph.file, {}, "error", error_message(r.error())});
  for (auto& node : graph.nodes) {
    auto hash = node.op.find('#');
    auto lib = node.op.substr(0, hash);
    if (lib.size() < 4 || (lib.compare(lib.size() - 3, 3, ".so") != 0 && lib.find(".so.") == std::string::npos))
      continue; // an operator name
    auto path = std::filesystem::path(lib);
    if (path.is_relative())
      path = std::filesystem::path(graph.base_dir) / path;
    auto loaded = registry.load(path.lexically_normal().string());
    if (!loaded) {
      out.push_back({graph.file, node.op_pos, "error", error_message(loaded.error())});
      continue;
    }
    auto& ops = loaded->operators;
    std::string list;
    for (auto& o : ops)
      list += (list.empty() ? "" : ", ") + o;
    if (hash != std::string::npos) {
      auto name = node.op.substr(hash + 1);
      if (std::find(ops.begin(), ops.end(), name) == ops.end()) {
        out.push_back({graph.file, node.op_pos, "error",
                       "plugin " + lib + " has no operator '" + name + "' (it provides: " + list + ")"});
        continue;
      }
      node.op = name;
    } else if (ops.size() == 1) {
      node.op = ops.front();
    } else {
      out.push_back({graph.file, node.op_pos, "error",
                     "plugin " + lib + " provides " + std::to_string(ops.size()) + " operators (" + list +
                       "); name one as " + lib + "#NAME"});
    }
  }
  return out.size() == before;
}

} // namespace loom
