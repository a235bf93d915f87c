// The plugin loader: every way a library can fail to load, the good fixture plugin's
// description, the host function table, and the fixture operators through the vtable.
#include "loom/runtime/host.hpp"
#include "loom/runtime/plugin_registry.hpp"

#include <loom/fb/model_generated.h>
#include <loom/frame.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

using namespace loom;
using json = nlohmann::json;

namespace {

const std::string fixture_dir = LOOM_FIXTURE_DIR;
const std::string good_dir = fixture_dir + "/good";
const std::string broken_dir = fixture_dir + "/broken";
const std::string good_plugin = good_dir + "/libtest_ops.so";

std::string broken(const std::string& name) {
  return broken_dir + "/" + name;
}

/// Loads `path`, which must fail with errc::plugin; returns the message.
std::string load_error(plugin_registry& reg, const std::string& path) {
  auto r = reg.load(path);
  REQUIRE_FALSE(r);
  CHECK(error_code(r.error()) == errc::plugin);
  auto msg = error_message(r.error());
  CHECK(msg.find('\n') == std::string::npos);
  CHECK(msg.find(path) != std::string::npos);
  return msg;
}

/// The registry still works: the good plugin loads and its operators are found.
void check_still_works(plugin_registry& reg) {
  auto before = reg.plugins().size();
  auto r = reg.load(good_plugin);
  REQUIRE(r);
  CHECK(r->name == "loom-test-ops");
  CHECK(reg.find("test.gen") != nullptr);
  CHECK(reg.plugins().size() == before + 1);
}

void free_error(loom_error* err) {
  host_api()->error_free(err);
}

/// Takes an error returned through the ABI; "" for success.
std::string take_error(loom_error* err) {
  if (err == nullptr)
    return {};
  std::string msg = err->message;
  free_error(err);
  return msg;
}

/// A node_host that records everything an operator does.
class recording_host : public node_host {
public:
  struct emitted {
    uint32_t port;
    message_ptr msg;
  };
  std::vector<emitted> messages;
  std::vector<std::pair<loom_log_level, std::string>> logs;
  std::map<loom_counter, uint64_t> counters;
  std::map<std::string, double> metrics;
  std::map<std::string, std::pair<std::string, std::string>> artifacts; ///< name -> type, data
  /// Refuse messages whose type is not this (LOOM_MSG_ANY: accept all).
  loom_message_type accept = LOOM_MSG_ANY;

  loom_error* emit(uint32_t port, message_ptr msg) override {
    if (accept != LOOM_MSG_ANY && msg->type != accept)
      return new_error(LOOM_ERR_BAD_DATA, std::string("port expects ") + to_string(accept) +
                                            ", got " + to_string(msg->type));
    messages.push_back({port, std::move(msg)});
    return nullptr;
  }
  void log(loom_log_level level, const std::string& message) override {
    logs.emplace_back(level, message);
  }
  void add_counter(loom_counter counter, uint64_t delta) override { counters[counter] += delta; }
  void record_metric(const std::string& name, double value) override { metrics[name] = value; }
  loom_error* record_artifact(const std::string& name, const std::string& media_type,
                              std::string data) override {
    artifacts[name] = {media_type, std::move(data)};
    return nullptr;
  }
};

/// Defaults of the operator's parameters overlaid with `given` (what the executor does).
json with_defaults(const operator_info& op, json given) {
  json out = json::object();
  for (auto& p : op.params)
    if (p.default_json)
      out[p.name] = json::parse(*p.default_json);
  for (auto& [k, v] : given.items())
    out[k] = v;
  return out;
}

/// One operator instance driven by hand through its vtable.
class instance {
public:
  instance(const operator_info& op, json params, uint32_t attempt = 1) : op_(op) {
    ctx_.host = &host;
    ctx_.op = &op;
    ctx_.params = with_defaults(op, std::move(params));
    ctx_.params_text = ctx_.params.dump();
    ctx_.node_id = "node";
    ctx_.run_id = "run";
    ctx_.base_dir = "/tmp";
    ctx_.attempt = attempt;
    ctx_.cancelled = &cancelled;
  }
  ~instance() {
    if (created_ && op_.vtable.destroy)
      op_.vtable.destroy(state_);
  }
  instance(const instance&) = delete;
  instance& operator=(const instance&) = delete;

  std::string create() {
    auto err = take_error(op_.vtable.create(&ctx_, &state_));
    created_ = err.empty();
    return err;
  }
  std::string input(uint32_t port, const message_ptr& msg) {
    return take_error(op_.vtable.on_input(state_, &ctx_, port, msg.get()));
  }
  std::string input_end(uint32_t port) {
    return take_error(op_.vtable.on_input_end(state_, &ctx_, port));
  }
  /// Calls produce until finished (at most `limit` times); returns the first error.
  std::string produce_all(int limit = 1000) {
    for (int i = 0; i < limit; ++i) {
      int finished = 0;
      if (auto err = take_error(op_.vtable.produce(state_, &ctx_, &finished)); !err.empty())
        return err;
      if (finished)
        return {};
    }
    return "did not finish";
  }
  loom_context& ctx() { return ctx_; }

  recording_host host;
  std::atomic<bool> cancelled{false};

private:
  const operator_info& op_;
  loom_context ctx_;
  void* state_ = nullptr;
  bool created_ = false;
};

sdk::frame_view view(const message_ptr& msg) {
  return sdk::frame_view::of(std::span<const uint8_t>(msg->bytes.data, msg->bytes.size));
}

message_ptr make_frame(uint64_t sequence, std::vector<int64_t> seqs) {
  sdk::frame_builder b;
  auto c = b.add_column("seq", sdk::col_type::i64, false);
  for (auto s : seqs) {
    b.append_i64(c, s);
    b.end_row();
  }
  auto buf = b.finish(sequence);
  auto msg = copy_message(buf.data(), buf.size());
  REQUIRE(msg);
  return *msg;
}

std::string temp_dir(const std::string& tag) {
  auto dir = std::filesystem::temp_directory_path() /
             ("loom_loader_test_" + tag + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

} // namespace

// ---- failures -----------------------------------------------------------------------

TEST_CASE("loading a missing file fails with 'no such file'", "[loader]") {
  plugin_registry reg;
  auto path = fixture_dir + "/does/not/exist.so";
  auto msg = load_error(reg, path);
  CHECK(msg.find("no such file") != std::string::npos);
  check_still_works(reg);
}

TEST_CASE("loading a directory fails", "[loader]") {
  plugin_registry reg;
  auto msg = load_error(reg, good_dir);
  CHECK(msg.find("not a regular file") != std::string::npos);
  check_still_works(reg);
}

TEST_CASE("loading a text file fails with 'not a shared library'", "[loader]") {
  plugin_registry reg;
  auto msg = load_error(reg, broken("not_a_library.so"));
  CHECK(msg.find("not a shared library") != std::string::npos);
  check_still_works(reg);
}

TEST_CASE("a library without loom_plugin_entry is refused", "[loader]") {
  plugin_registry reg;
  auto msg = load_error(reg, broken("libno_entry.so"));
  CHECK(msg.find("no entry point") != std::string::npos);
  CHECK(msg.find("loom_plugin_entry") != std::string::npos);
  check_still_works(reg);
}

TEST_CASE("a plugin of another ABI major version is refused", "[loader]") {
  plugin_registry reg;
  auto msg = load_error(reg, broken("libabi_major.so"));
  CHECK(msg.find("ABI version mismatch") != std::string::npos);
  CHECK(msg.find("ABI " + std::to_string(LOOM_ABI_VERSION_MAJOR + 1) + "." +
                 std::to_string(LOOM_ABI_VERSION_MINOR)) != std::string::npos);
  CHECK(msg.find("ABI " + std::to_string(LOOM_ABI_VERSION_MAJOR) + "." +
                 std::to_string(LOOM_ABI_VERSION_MINOR)) != std::string::npos);
  check_still_works(reg);
}

TEST_CASE("a plugin needing a newer ABI minor version is refused", "[loader]") {
  plugin_registry reg;
  auto msg = load_error(reg, broken("libabi_minor.so"));
  auto need = std::to_string(LOOM_ABI_VERSION_MAJOR) + "." + std::to_string(LOOM_ABI_VERSION_MINOR + 1);
  auto have = std::to_string(LOOM_ABI_VERSION_MAJOR) + "." + std::to_string(LOOM_ABI_VERSION_MINOR);
  CHECK(msg.find("needs ABI " + need) != std::string::npos);
  CHECK(msg.find("provides only ABI " + have) != std::string::npos);
  check_still_works(reg);
}

TEST_CASE("an operator name defined by two plugins is refused", "[loader]") {
  plugin_registry reg;
  auto a = reg.load(broken("libdup_a.so"));
  REQUIRE(a);
  CHECK(a->name == "dup-a");
  CHECK(a->operators == std::vector<std::string>{"dup.op"});
  auto msg = load_error(reg, broken("libdup_b.so"));
  CHECK(msg.find("operator 'dup.op'") != std::string::npos);
  CHECK(msg.find("already defined by " + a->path) != std::string::npos);
  // the first definition stays, the second plugin is not recorded
  REQUIRE(reg.find("dup.op") != nullptr);
  CHECK(reg.find("dup.op")->plugin_name == "dup-a");
  CHECK(reg.plugins().size() == 1);
  check_still_works(reg);
}

TEST_CASE("an exception escaping init is caught", "[loader]") {
  plugin_registry reg;
  auto msg = load_error(reg, broken("libinit_throws.so"));
  CHECK(msg.find("init threw") != std::string::npos);
  CHECK(msg.find("boom in init") != std::string::npos);
  check_still_works(reg);
}

TEST_CASE("an error returned by init is reported", "[loader]") {
  plugin_registry reg;
  auto msg = load_error(reg, broken("libinit_error.so"));
  CHECK(msg.find("init failed: database not configured") != std::string::npos);
  check_still_works(reg);
}

TEST_CASE("a parameter default of the wrong type is refused", "[loader]") {
  plugin_registry reg;
  auto msg = load_error(reg, broken("libbad_default.so"));
  CHECK(msg.find("init failed") != std::string::npos);
  CHECK(msg.find("default of parameter 'count'") != std::string::npos);
  CHECK(msg.find("not a valid int") != std::string::npos);
  CHECK(msg.find("\"abc\"") != std::string::npos);
  CHECK(reg.find("bad.default") == nullptr);
  check_still_works(reg);
}

TEST_CASE("an output port marked optional, or a port of an unknown message type, is refused", "[loader]") {
  plugin_registry reg;
  auto msg = load_error(reg, broken("liboptional_output.so"));
  CHECK(msg.find("init failed") != std::string::npos);
  CHECK(msg.find("operator 'bad.port': output port 'out' is marked optional; only input ports can be") !=
        std::string::npos);
  auto msg2 = load_error(reg, broken("libunknown_port_type.so"));
  CHECK(msg2.find("operator 'bad.port': port 'out' has unknown message type 77") != std::string::npos);
  CHECK(reg.find("bad.port") == nullptr);
  check_still_works(reg);
}

TEST_CASE("load_directories reports each broken library and loads the rest", "[loader]") {
  plugin_registry reg;
  auto errors = reg.load_directories({broken_dir, fixture_dir + "/missing", good_dir});
  // libdup_a.so loads (it is first); libdup_b.so is the broken one of the pair
  const std::vector<std::string> failing = {"libabi_major.so", "libabi_minor.so",
                                            "libbad_default.so", "libdup_b.so",
                                            "libinit_error.so", "libinit_throws.so",
                                            "libno_entry.so", "liboptional_output.so",
                                            "libunknown_port_type.so", "not_a_library.so"};
  REQUIRE(errors.size() == failing.size());
  for (size_t i = 0; i < failing.size(); ++i) {
    INFO(errors[i]);
    CHECK(errors[i].find(broken(failing[i])) != std::string::npos);
    CHECK(errors[i].find('\n') == std::string::npos);
  }
  for (auto name : {"test.gen", "test.slow", "test.fail", "test.collect", "test.merge",
                    "test.hang", "test.model_src", "test.bad_emit", "test.params", "test.model",
                    "test.save", "dup.op"})
    CHECK(reg.find(name) != nullptr);
  REQUIRE(reg.plugins().size() == 2);
  CHECK(reg.plugins()[0].name == "dup-a");
  CHECK(reg.plugins()[1].name == "loom-test-ops");
}

TEST_CASE("loading the same plugin twice is harmless", "[loader]") {
  plugin_registry reg;
  auto first = reg.load(good_plugin);
  REQUIRE(first);
  auto names = reg.names();
  auto second = reg.load(good_plugin);
  REQUIRE(second);
  CHECK(second->path == first->path);
  CHECK(second->operators == first->operators);
  CHECK(reg.plugins().size() == 1);
  CHECK(reg.names() == names);
  // the operators still work after the second load
  instance gen(*reg.find("test.gen"), {{"frames", 1}, {"rows", 2}});
  REQUIRE(gen.create() == "");
  REQUIRE(gen.produce_all() == "");
  CHECK(gen.host.messages.size() == 1);
}

// ---- description ----------------------------------------------------------------------

namespace {

struct param_expect {
  std::string name;
  loom_param_type type;
  bool required;
  std::optional<std::string> default_json;
};

void check_op(const std::vector<operator_info>& ops, const std::string& name,
              std::vector<std::pair<std::string, loom_message_type>> inputs,
              std::vector<std::pair<std::string, loom_message_type>> outputs,
              std::vector<param_expect> params) {
  INFO(name);
  auto it = std::find_if(ops.begin(), ops.end(), [&](auto& o) { return o.name == name; });
  REQUIRE(it != ops.end());
  auto& op = *it;
  CHECK(op.version == "1.0.0");
  CHECK_FALSE(op.description.empty());
  CHECK(op.plugin_name == "loom-test-ops");
  CHECK(op.plugin_version == "1.0.0");
  CHECK(op.plugin_path == std::filesystem::absolute(good_plugin).string());
  REQUIRE(op.inputs.size() == inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    CHECK(op.inputs[i].name == inputs[i].first);
    CHECK(op.inputs[i].type == inputs[i].second);
  }
  REQUIRE(op.outputs.size() == outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    CHECK(op.outputs[i].name == outputs[i].first);
    CHECK(op.outputs[i].type == outputs[i].second);
  }
  REQUIRE(op.params.size() == params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    INFO(params[i].name);
    CHECK(op.params[i].name == params[i].name);
    CHECK(op.params[i].type == params[i].type);
    CHECK(op.params[i].required == params[i].required);
    CHECK(op.params[i].default_json == params[i].default_json);
  }
  // inspect never hands out pointers into a library it has closed
  CHECK(op.vtable.create == nullptr);
  CHECK(op.vtable.produce == nullptr);
}

} // namespace

TEST_CASE("inspect describes every operator of the good plugin", "[loader]") {
  auto r = plugin_registry::inspect(good_plugin);
  REQUIRE(r);
  auto& [info, ops] = *r;
  CHECK(info.name == "loom-test-ops");
  CHECK(info.version == "1.0.0");
  CHECK(info.abi_major == LOOM_ABI_VERSION_MAJOR);
  CHECK(info.abi_minor == LOOM_ABI_VERSION_MINOR);
  CHECK(info.path == std::filesystem::absolute(good_plugin).string());
  const std::vector<std::string> names = {"test.gen", "test.slow", "test.fail",
                                          "test.collect", "test.merge", "test.hang",
                                          "test.model_src", "test.bad_emit", "test.params",
                                          "test.model", "test.save"};
  CHECK(info.operators == names);
  REQUIRE(ops.size() == names.size());

  const auto F = LOOM_MSG_FRAME;
  check_op(ops, "test.gen", {}, {{"out", F}},
           {{"frames", LOOM_PARAM_INT, false, "10"},
            {"rows", LOOM_PARAM_INT, false, "100"},
            {"sleep_ms", LOOM_PARAM_INT, false, "0"},
            {"fail_at", LOOM_PARAM_INT, false, "-1"},
            {"fail_attempts", LOOM_PARAM_INT, false, "1000000"}});
  check_op(ops, "test.slow", {{"data", F}}, {{"out", F}},
           {{"sleep_ms", LOOM_PARAM_INT, false, "5"}});
  check_op(ops, "test.fail", {{"data", F}}, {{"out", F}},
           {{"fail_in", LOOM_PARAM_STRING, false, "\"input\""},
            {"after", LOOM_PARAM_INT, false, "0"},
            {"attempts", LOOM_PARAM_INT, false, "1000000"},
            {"message", LOOM_PARAM_STRING, false, "\"injected failure\""}});
  check_op(ops, "test.collect", {{"data", F}}, {},
           {{"path", LOOM_PARAM_STRING, true, std::nullopt}});
  check_op(ops, "test.merge", {{"a", F}, {"b", F}}, {{"out", F}}, {});
  check_op(ops, "test.hang", {}, {{"out", F}}, {{"sleep_ms", LOOM_PARAM_INT, false, "60000"}});
  check_op(ops, "test.model_src", {}, {{"model", LOOM_MSG_MODEL}}, {});
  check_op(ops, "test.bad_emit", {}, {{"out", F}}, {});
  check_op(ops, "test.params", {}, {{"out", F}},
           {{"s", LOOM_PARAM_STRING, false, "\"x\""},
            {"i", LOOM_PARAM_INT, false, "3"},
            {"f", LOOM_PARAM_FLOAT, false, "0.5"},
            {"b", LOOM_PARAM_BOOL, false, "false"},
            {"l", LOOM_PARAM_LIST, false, "[1,2]"}});
  check_op(ops, "test.model", {}, {{"model", LOOM_MSG_MODEL}},
           {{"kind", LOOM_PARAM_STRING, false, "\"logistic\""},
            {"target", LOOM_PARAM_STRING, false, "\"\""},
            {"classes", LOOM_PARAM_LIST, false, "[]"},
            {"history", LOOM_PARAM_LIST, false, "[]"},
            {"emit", LOOM_PARAM_BOOL, false, "true"}});
  check_op(ops, "test.save", {{"data", LOOM_MSG_ANY}}, {}, {{"path", LOOM_PARAM_STRING, true, std::nullopt}});

  // inspect registers nothing and leaves the plugin loadable
  plugin_registry reg;
  CHECK(reg.names().empty());
  check_still_works(reg);
}

TEST_CASE("inspect reports the same failures as load", "[loader]") {
  auto r = plugin_registry::inspect(broken("libabi_major.so"));
  REQUIRE_FALSE(r);
  CHECK(error_code(r.error()) == errc::plugin);
  CHECK(error_message(r.error()).find("ABI version mismatch") != std::string::npos);
}

// ---- host function table --------------------------------------------------------------

TEST_CASE("host_api parameter getters", "[loader][host]") {
  const loom_host_api* h = host_api();
  CHECK(h->abi_major == LOOM_ABI_VERSION_MAJOR);
  CHECK(h->abi_minor == LOOM_ABI_VERSION_MINOR);
  CHECK(h->struct_size == sizeof(loom_host_api));

  loom_context ctx;
  ctx.params = json::parse(R"({"s": "hello", "i": 42, "f": 1.5, "fi": 7, "b": true,
                               "l": [1, 2, 3], "m": {"k": "v"}, "n": null})");
  ctx.params_text = ctx.params.dump();

  SECTION("values of the right type") {
    const char* s = nullptr;
    REQUIRE(take_error(h->param_string(&ctx, "s", &s)) == "");
    CHECK(std::string(s) == "hello");
    // the string stays valid across later calls
    const char* s2 = nullptr;
    REQUIRE(take_error(h->param_string(&ctx, "s", &s2)) == "");
    CHECK(std::string(s) == "hello");
    int64_t i = 0;
    REQUIRE(take_error(h->param_int(&ctx, "i", &i)) == "");
    CHECK(i == 42);
    double f = 0;
    REQUIRE(take_error(h->param_float(&ctx, "f", &f)) == "");
    CHECK(f == 1.5);
    REQUIRE(take_error(h->param_float(&ctx, "fi", &f)) == ""); // int accepted as float
    CHECK(f == 7.0);
    int b = 0;
    REQUIRE(take_error(h->param_bool(&ctx, "b", &b)) == "");
    CHECK(b == 1);
    CHECK(h->param_has(&ctx, "l") == 1);
    CHECK(h->param_has(&ctx, "n") == 0); // null counts as unset
    CHECK(h->param_has(&ctx, "absent") == 0);
    CHECK(json::parse(h->params_json(&ctx)) == ctx.params);
  }

  SECTION("wrong types name the parameter") {
    int64_t i = 0;
    auto msg = take_error(h->param_int(&ctx, "s", &i));
    CHECK(msg.find("'s'") != std::string::npos);
    CHECK(msg.find("integer") != std::string::npos);
    msg = take_error(h->param_int(&ctx, "f", &i));
    CHECK(msg.find("'f'") != std::string::npos);
    const char* s = nullptr;
    msg = take_error(h->param_string(&ctx, "i", &s));
    CHECK(msg.find("'i'") != std::string::npos);
    CHECK(msg.find("string") != std::string::npos);
    double f = 0;
    msg = take_error(h->param_float(&ctx, "b", &f));
    CHECK(msg.find("'b'") != std::string::npos);
    CHECK(msg.find("number") != std::string::npos);
    int b = 0;
    msg = take_error(h->param_bool(&ctx, "l", &b));
    CHECK(msg.find("'l'") != std::string::npos);
    CHECK(msg.find("bool") != std::string::npos);
  }

  SECTION("absent and null parameters are errors naming them") {
    int64_t i = 0;
    auto msg = take_error(h->param_int(&ctx, "absent", &i));
    CHECK(msg.find("'absent'") != std::string::npos);
    CHECK(msg.find("not set") != std::string::npos);
    msg = take_error(h->param_int(&ctx, "n", &i));
    CHECK(msg.find("'n'") != std::string::npos);
  }

  SECTION("errors carry their code") {
    loom_error* err = h->error_new(LOOM_ERR_IO, "disk on fire");
    REQUIRE(err != nullptr);
    CHECK(err->code == LOOM_ERR_IO);
    CHECK(err->message == "disk on fire");
    h->error_free(err);
  }
}

// ---- fixture operators through the vtable ---------------------------------------------

TEST_CASE("test.fail with fail_in=create returns an error, not an exception", "[loader][fixtures]") {
  plugin_registry reg;
  REQUIRE(reg.load(good_plugin));
  auto* op = reg.find("test.fail");
  REQUIRE(op != nullptr);

  loom_context ctx;
  recording_host host;
  ctx.host = &host;
  ctx.op = op;
  ctx.params = with_defaults(*op, {{"fail_in", "create"}});
  ctx.params_text = ctx.params.dump();
  void* state = nullptr;
  loom_error* err = op->vtable.create(&ctx, &state);
  REQUIRE(err != nullptr);
  CHECK(err->message == "injected failure");
  CHECK(err->code == LOOM_ERR_UNKNOWN); // a std::runtime_error, converted by the wrapper
  free_error(err);

  SECTION("a custom message, and no failure once attempts are used up") {
    instance custom(*op, {{"fail_in", "create"}, {"message", "custom words"}});
    CHECK(custom.create() == "custom words");
    instance later(*op, {{"fail_in", "create"}, {"attempts", 1}}, 2);
    CHECK(later.create() == "");
  }
}

TEST_CASE("test.fail fails on input `after` and at input end", "[loader][fixtures]") {
  plugin_registry reg;
  REQUIRE(reg.load(good_plugin));
  auto& op = *reg.find("test.fail");

  SECTION("input") {
    instance inst(op, {{"after", 2}});
    REQUIRE(inst.create() == "");
    CHECK(inst.input(0, make_frame(0, {1})) == "");
    CHECK(inst.input(0, make_frame(1, {2})) == "");
    CHECK(inst.input(0, make_frame(2, {3})) == "injected failure");
    CHECK(inst.host.messages.size() == 2);
  }
  SECTION("end") {
    instance inst(op, {{"fail_in", "end"}});
    REQUIRE(inst.create() == "");
    CHECK(inst.input(0, make_frame(0, {1})) == "");
    CHECK(inst.input_end(0) == "injected failure");
  }
  SECTION("pass-through after the failing attempts") {
    instance inst(op, {{"after", 0}, {"attempts", 2}}, 3);
    REQUIRE(inst.create() == "");
    CHECK(inst.input(0, make_frame(0, {1})) == "");
    CHECK(inst.input_end(0) == "");
    CHECK(inst.produce_all() == "");
    CHECK(inst.host.messages.size() == 1);
  }
  SECTION("bad fail_in") {
    instance inst(op, {{"fail_in", "never"}});
    CHECK(inst.create().find("fail_in") != std::string::npos);
  }
}

TEST_CASE("test.gen emits the documented frames", "[loader][fixtures]") {
  plugin_registry reg;
  REQUIRE(reg.load(good_plugin));
  auto& op = *reg.find("test.gen");

  SECTION("content") {
    instance inst(op, {{"frames", 3}, {"rows", 4}});
    REQUIRE(inst.create() == "");
    REQUIRE(inst.produce_all() == "");
    REQUIRE(inst.host.messages.size() == 3);
    for (uint64_t i = 0; i < 3; ++i) {
      auto& m = inst.host.messages[i];
      CHECK(m.port == 0);
      CHECK(m.msg->type == LOOM_MSG_FRAME);
      CHECK(m.msg->rows == 4);
      auto f = view(m.msg);
      CHECK(f.sequence() == i);
      REQUIRE(f.num_columns() == 3);
      CHECK(f.name(0) == "seq");
      CHECK(f.type(0) == sdk::col_type::i64);
      CHECK(f.name(1) == "value");
      CHECK(f.type(1) == sdk::col_type::f64);
      CHECK(f.name(2) == "name");
      CHECK(f.type(2) == sdk::col_type::string);
      for (size_t r = 0; r < 4; ++r) {
        int64_t seq = static_cast<int64_t>(i * 4 + r);
        CHECK(f.i64(0, r) == seq);
        if (seq % 10 == 9) {
          CHECK_FALSE(f.valid(1, r));
        } else {
          CHECK(f.valid(1, r));
          CHECK(f.f64(1, r) == seq * 0.5);
        }
        CHECK(f.str(2, r) == "r" + std::to_string(seq));
      }
    }
  }
  SECTION("one frame per produce call") {
    instance inst(op, {{"frames", 2}, {"rows", 1}});
    REQUIRE(inst.create() == "");
    REQUIRE(inst.produce_all(1) == "did not finish");
    CHECK(inst.host.messages.size() == 1);
    REQUIRE(inst.produce_all(1) == "");
    CHECK(inst.host.messages.size() == 2);
  }
  SECTION("zero frames") {
    instance inst(op, {{"frames", 0}});
    REQUIRE(inst.create() == "");
    REQUIRE(inst.produce_all(1) == "");
    CHECK(inst.host.messages.empty());
  }
  SECTION("fail_at and fail_attempts") {
    instance inst(op, {{"frames", 5}, {"rows", 1}, {"fail_at", 2}, {"fail_attempts", 1}});
    REQUIRE(inst.create() == "");
    CHECK(inst.produce_all() == "injected failure at frame 2");
    CHECK(inst.host.messages.size() == 2);
    instance retry(op, {{"frames", 5}, {"rows", 1}, {"fail_at", 2}, {"fail_attempts", 1}}, 2);
    REQUIRE(retry.create() == "");
    CHECK(retry.produce_all() == "");
    CHECK(retry.host.messages.size() == 5);
  }
  SECTION("cancelled") {
    instance inst(op, {{"frames", 5}});
    REQUIRE(inst.create() == "");
    inst.cancelled = true;
    CHECK(inst.produce_all() == "cancelled");
    CHECK(inst.host.messages.empty());
  }
}

TEST_CASE("test.hang stops when cancelled", "[loader][fixtures]") {
  plugin_registry reg;
  REQUIRE(reg.load(good_plugin));
  instance inst(*reg.find("test.hang"), {{"sleep_ms", 30}});
  REQUIRE(inst.create() == "");
  CHECK(inst.produce_all(1) == "");
  CHECK(inst.host.messages.empty());
  instance cancelled(*reg.find("test.hang"), json::object());
  REQUIRE(cancelled.create() == "");
  cancelled.cancelled = true;
  CHECK(cancelled.produce_all(1) == "cancelled");
}

TEST_CASE("test.slow and test.merge forward messages without copying", "[loader][fixtures]") {
  plugin_registry reg;
  REQUIRE(reg.load(good_plugin));
  auto frame = make_frame(7, {1, 2});
  instance slow(*reg.find("test.slow"), {{"sleep_ms", 1}});
  REQUIRE(slow.create() == "");
  CHECK(slow.input(0, frame) == "");
  REQUIRE(slow.host.messages.size() == 1);
  CHECK(slow.host.messages[0].msg.get() == frame.get());

  instance merge(*reg.find("test.merge"), json::object());
  REQUIRE(merge.create() == "");
  CHECK(merge.input(0, frame) == "");
  CHECK(merge.input(1, make_frame(8, {3})) == "");
  CHECK(merge.input_end(0) == "");
  CHECK(merge.input_end(1) == "");
  CHECK(merge.produce_all() == "");
  REQUIRE(merge.host.messages.size() == 2);
  CHECK(merge.host.messages[0].port == 0);
  CHECK(merge.host.messages[1].port == 0);
}

TEST_CASE("test.collect writes its file, metric and artifact", "[loader][fixtures]") {
  plugin_registry reg;
  REQUIRE(reg.load(good_plugin));
  auto dir = temp_dir("collect");
  instance inst(*reg.find("test.collect"), {{"path", "sub/out.txt"}});
  inst.ctx().base_dir = dir;
  REQUIRE(inst.create() == "");
  CHECK(inst.input(0, make_frame(0, {5, 6, 7})) == "");
  CHECK(inst.input(0, make_frame(1, {})) == "");
  CHECK(inst.input_end(0) == "");
  CHECK(inst.produce_all() == "");
  std::ifstream in(dir + "/sub/out.txt");
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str() == "0 3 5\n1 0 -1\n");
  CHECK(inst.host.metrics["rows"] == 3.0);
  CHECK(inst.host.artifacts["summary.txt"] == std::make_pair(std::string("text/plain"), std::string("rows=3\n")));
  std::filesystem::remove_all(dir);
}

TEST_CASE("test.model_src, test.bad_emit and test.params", "[loader][fixtures]") {
  plugin_registry reg;
  REQUIRE(reg.load(good_plugin));

  SECTION("model") {
    instance inst(*reg.find("test.model_src"), json::object());
    REQUIRE(inst.create() == "");
    REQUIRE(inst.produce_all() == "");
    REQUIRE(inst.host.messages.size() == 1);
    auto& msg = *inst.host.messages[0].msg;
    CHECK(msg.type == LOOM_MSG_MODEL);
    CHECK(fb::GetModel(msg.bytes.data)->kind()->str() == "dummy");
  }
  SECTION("bad emit is refused by a host that checks the port type") {
    instance inst(*reg.find("test.bad_emit"), json::object());
    inst.host.accept = LOOM_MSG_FRAME;
    REQUIRE(inst.create() == "");
    CHECK(inst.produce_all().find("port expects frame") != std::string::npos);
    CHECK(inst.host.messages.empty());
  }
  SECTION("params") {
    instance inst(*reg.find("test.params"), {{"s", "hi"}, {"i", 9}, {"b", true}});
    REQUIRE(inst.create() == "");
    REQUIRE(inst.produce_all() == "");
    REQUIRE(inst.host.messages.size() == 1);
    auto f = view(inst.host.messages[0].msg);
    REQUIRE(f.num_rows() == 1);
    CHECK(f.str(0, 0) == "hi");
    CHECK(f.i64(1, 0) == 9);
    CHECK(f.f64(2, 0) == 0.5);
    CHECK(f.boolean(3, 0));
    REQUIRE(inst.host.logs.size() == 1);
    CHECK(inst.host.logs[0].first == LOOM_LOG_INFO);
    CHECK(json::parse(inst.host.logs[0].second) ==
          json::parse(R"({"s":"hi","i":9,"f":0.5,"b":true,"l":[1,2]})"));
  }
}
