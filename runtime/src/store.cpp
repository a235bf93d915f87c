#include "loom/runtime/store.hpp"

#include <lmdb.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <string_view>
#include <system_error>

namespace loom {

namespace {

using json = nlohmann::json;

constexpr uint64_t default_map_size_mb = 1024;
constexpr size_t run_key_digits = 12;
constexpr size_t seq_digits = 16;
constexpr const char* next_run_id_key = "next_run_id";

template <class T>
T get_or(const json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    return fallback;
  return it->template get<T>();
}

// Strings from operators may hold invalid UTF-8; replace it rather than throw.
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string pad(uint64_t n, size_t width) {
  std::string digits = std::to_string(n);
  if (digits.size() >= width)
    return digits;
  return std::string(width - digits.size(), '0') + digits;
}

// Parses a public run id ("42", also "000042"); 0 and malformed ids are rejected.
bool parse_run_id(std::string_view id, uint64_t& out) {
  if (id.empty() || id.size() > run_key_digits)
    return false;
  for (char c : id)
    if (c < '0' || c > '9')
      return false;
  auto [ptr, ec] = std::from_chars(id.data(), id.data() + id.size(), out);
  return ec == std::errc{} && ptr == id.data() + id.size() && out != 0;
}

bool parse_u64(std::string_view text, uint64_t& out) {
  if (text.empty())
    return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && ptr == text.data() + text.size();
}

MDB_val to_val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

std::string_view to_view(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

} // namespace

// --- JSON ------------------------------------------------------------------------

json to_json(const node_record& n) {
  json metrics = json::object();
  for (const auto& [key, value] : n.metrics)
    metrics[key] = value;
  return json{{"id", n.id},
              {"op", n.op},
              {"state", n.state},
              {"attempts", n.attempts},
              {"started_ms", n.started_ms},
              {"ended_ms", n.ended_ms},
              {"error", n.error},
              {"rows_in", n.rows_in},
              {"rows_out", n.rows_out},
              {"rows_rejected", n.rows_rejected},
              {"frames_in", n.frames_in},
              {"frames_out", n.frames_out},
              {"bytes_in", n.bytes_in},
              {"bytes_out", n.bytes_out},
              {"metrics", std::move(metrics)}};
}

json to_json(const run_record& r) {
  json nodes = json::array();
  for (const auto& n : r.nodes)
    nodes.push_back(to_json(n));
  return json{{"id", r.id},
              {"graph_name", r.graph_name},
              {"graph_file", r.graph_file},
              {"graph_hash", r.graph_hash},
              {"graph_text", r.graph_text},
              {"params", r.params},
              {"state", r.state},
              {"started_ms", r.started_ms},
              {"ended_ms", r.ended_ms},
              {"error", r.error},
              {"host", r.host},
              {"pid", r.pid},
              {"nodes", std::move(nodes)},
              {"artifacts", r.artifacts}};
}

json to_json(const log_record& l) {
  return json{{"run_id", l.run_id},   {"seq", l.seq},   {"time_ms", l.time_ms},
              {"node", l.node},       {"level", l.level}, {"message", l.message}};
}

node_record node_from_json(const json& j) {
  node_record n;
  n.id = get_or<std::string>(j, "id", "");
  n.op = get_or<std::string>(j, "op", "");
  n.state = get_or<std::string>(j, "state", "pending");
  n.attempts = get_or<uint32_t>(j, "attempts", 0);
  n.started_ms = get_or<int64_t>(j, "started_ms", 0);
  n.ended_ms = get_or<int64_t>(j, "ended_ms", 0);
  n.error = get_or<std::string>(j, "error", "");
  n.rows_in = get_or<uint64_t>(j, "rows_in", 0);
  n.rows_out = get_or<uint64_t>(j, "rows_out", 0);
  n.rows_rejected = get_or<uint64_t>(j, "rows_rejected", 0);
  n.frames_in = get_or<uint64_t>(j, "frames_in", 0);
  n.frames_out = get_or<uint64_t>(j, "frames_out", 0);
  n.bytes_in = get_or<uint64_t>(j, "bytes_in", 0);
  n.bytes_out = get_or<uint64_t>(j, "bytes_out", 0);
  if (auto it = j.find("metrics"); it != j.end() && it->is_object()) {
    // NaN and infinities are written as null.
    for (const auto& [key, value] : it->items())
      n.metrics[key] = value.is_number() ? value.get<double>()
                                         : std::numeric_limits<double>::quiet_NaN();
  }
  return n;
}

run_record run_from_json(const json& j) {
  run_record r;
  r.id = get_or<std::string>(j, "id", "");
  r.graph_name = get_or<std::string>(j, "graph_name", "");
  r.graph_file = get_or<std::string>(j, "graph_file", "");
  r.graph_hash = get_or<std::string>(j, "graph_hash", "");
  r.graph_text = get_or<std::string>(j, "graph_text", "");
  if (auto it = j.find("params"); it != j.end() && !it->is_null())
    r.params = *it;
  r.state = get_or<std::string>(j, "state", "running");
  r.started_ms = get_or<int64_t>(j, "started_ms", 0);
  r.ended_ms = get_or<int64_t>(j, "ended_ms", 0);
  r.error = get_or<std::string>(j, "error", "");
  r.host = get_or<std::string>(j, "host", "");
  r.pid = get_or<int>(j, "pid", 0);
  if (auto it = j.find("nodes"); it != j.end() && it->is_array())
    for (const auto& n : *it)
      r.nodes.push_back(node_from_json(n));
  if (auto it = j.find("artifacts"); it != j.end() && it->is_array())
    for (const auto& a : *it)
      r.artifacts.push_back(a.get<std::string>());
  return r;
}

log_record log_from_json(const json& j) {
  log_record l;
  l.run_id = get_or<std::string>(j, "run_id", "");
  l.seq = get_or<uint64_t>(j, "seq", 0);
  l.time_ms = get_or<int64_t>(j, "time_ms", 0);
  l.node = get_or<std::string>(j, "node", "");
  l.level = get_or<std::string>(j, "level", "");
  l.message = get_or<std::string>(j, "message", "");
  return l;
}

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// --- the store -------------------------------------------------------------------

struct run_store::impl {
  MDB_env* env = nullptr;
  MDB_dbi meta = 0;
  MDB_dbi runs = 0;
  MDB_dbi events = 0;
  MDB_dbi artifacts = 0;
  std::string path;
  // Held shared by every transaction; exclusively to adopt a map grown by another
  // process (mdb_env_set_mapsize needs no live transaction in this process).
  mutable std::shared_mutex resize_mutex;

  ~impl() {
    if (env)
      mdb_env_close(env);
  }

  uint64_t map_size_mb() const {
    MDB_envinfo info{};
    mdb_env_info(env, &info);
    return static_cast<uint64_t>(info.me_mapsize) / (1024 * 1024);
  }

  caf::error lmdb_error(int rc, std::string_view op) const {
    if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL || rc == ENOSPC || rc == EDQUOT) {
      std::string what = rc == MDB_MAP_FULL   ? "map is full"
                         : rc == MDB_TXN_FULL ? "transaction is too large"
                                              : "disk is full";
      return make_error(errc::store_full,
                        "run store " + path + ": " + std::string(op) + " failed: " + what +
                          " (" + mdb_strerror(rc) + "); map size is " +
                          std::to_string(map_size_mb()) +
                          " MiB; raise LOOM_STORE_MAP_MB (or free disk space)");
    }
    return make_error(errc::store, "run store " + path + ": " + std::string(op) +
                                     " failed: " + mdb_strerror(rc));
  }

  // A transaction that is aborted unless committed.
  class txn {
  public:
    txn() = default;
    txn(txn&&) = default;
    txn& operator=(txn&&) = delete;
    ~txn() {
      if (handle_)
        mdb_txn_abort(handle_);
    }
    MDB_txn* get() const {
      return handle_;
    }
    int commit() {
      int rc = mdb_txn_commit(handle_); // frees the handle even on failure
      handle_ = nullptr;
      return rc;
    }

  private:
    friend struct impl;
    MDB_txn* handle_ = nullptr;
    std::shared_lock<std::shared_mutex> lock_;
  };

  int begin(bool write, txn& out) const {
    for (int attempt = 0;; ++attempt) {
      std::shared_lock lock(resize_mutex);
      MDB_txn* handle = nullptr;
      int rc = mdb_txn_begin(env, nullptr, write ? 0 : MDB_RDONLY, &handle);
      if (rc == MDB_MAP_RESIZED && attempt < 3) {
        lock.unlock();
        std::unique_lock exclusive(resize_mutex);
        mdb_env_set_mapsize(env, 0);
        continue;
      }
      if (rc != MDB_SUCCESS)
        return rc;
      out.handle_ = handle;
      out.lock_ = std::move(lock);
      return MDB_SUCCESS;
    }
  }

  static caf::error no_run(const std::string& id) {
    return make_error(errc::not_found, "no run with id " + id);
  }

  // Reads a run inside `t`; not_found if it does not exist.
  caf::expected<run_record> read_run(MDB_txn* t, const std::string& key,
                                     const std::string& id) const {
    MDB_val k = to_val(key);
    MDB_val v;
    int rc = mdb_get(t, runs, &k, &v);
    if (rc == MDB_NOTFOUND)
      return no_run(id);
    if (rc != MDB_SUCCESS)
      return lmdb_error(rc, "read run " + id);
    run_record run = run_from_json(json::parse(to_view(v)));
    run.artifacts.clear();
    auto names = artifact_names(t, key);
    if (!names)
      return std::move(names.error());
    run.artifacts = std::move(*names);
    return run;
  }

  caf::expected<std::vector<std::string>> artifact_names(MDB_txn* t,
                                                         const std::string& key) const {
    std::vector<std::string> names;
    std::string prefix = key + '/';
    int rc = for_each_prefixed(t, artifacts, prefix, [&](std::string_view k, const MDB_val&) {
      names.emplace_back(k.substr(prefix.size()));
    });
    if (rc != MDB_SUCCESS)
      return lmdb_error(rc, "list artifacts");
    return names;
  }

  template <class F>
  static int for_each_prefixed(MDB_txn* t, MDB_dbi dbi, const std::string& prefix, F&& f) {
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(t, dbi, &cursor);
    if (rc != MDB_SUCCESS)
      return rc;
    MDB_val k = to_val(prefix);
    MDB_val v;
    rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS && starts_with(to_view(k), prefix)) {
      f(to_view(k), v);
      rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    return rc == MDB_NOTFOUND || rc == MDB_SUCCESS ? MDB_SUCCESS : rc;
  }

  // Runs `body(txn)` in a write transaction and commits it; aborts on any error.
  template <class F>
  caf::error write(std::string_view op, F&& body) {
    try {
      txn t;
      if (int rc = begin(true, t); rc != MDB_SUCCESS)
        return lmdb_error(rc, op);
      if (auto err = body(t.get()))
        return err;
      if (int rc = t.commit(); rc != MDB_SUCCESS)
        return lmdb_error(rc, op);
      return {};
    } catch (const std::exception& e) {
      return make_error(errc::store, "run store " + path + ": " + std::string(op) +
                                       " failed: " + e.what());
    }
  }

  template <class T, class F>
  caf::expected<T> read(std::string_view op, F&& body) const {
    try {
      txn t;
      if (int rc = begin(false, t); rc != MDB_SUCCESS)
        return lmdb_error(rc, op);
      return body(t.get());
    } catch (const std::exception& e) {
      return make_error(errc::store, "run store " + path + ": " + std::string(op) +
                                       " failed: " + e.what());
    }
  }
};

run_store::run_store(std::unique_ptr<impl> p) : impl_(std::move(p)) {
}

run_store::~run_store() = default;

const std::string& run_store::path() const {
  return impl_->path;
}

caf::expected<std::unique_ptr<run_store>> run_store::open(const std::string& home,
                                                          store_options opts) {
  uint64_t map_mb = opts.map_size_mb;
  if (map_mb == 0) {
    map_mb = default_map_size_mb;
    if (const char* env = std::getenv("LOOM_STORE_MAP_MB"); env && *env) {
      if (!parse_u64(env, map_mb) || map_mb == 0 || map_mb > (uint64_t{1} << 30))
        return make_error(errc::invalid_argument,
                          std::string("LOOM_STORE_MAP_MB must be a positive number of MiB, got '") +
                            env + "'");
    }
  }
  auto p = std::make_unique<impl>();
  p->path = (std::filesystem::path(home) / "store").string();
  std::error_code ec;
  std::filesystem::create_directories(p->path, ec);
  if (ec)
    return make_error(errc::io, "cannot create run store directory " + p->path + ": " +
                                  ec.message());
  if (int rc = mdb_env_create(&p->env); rc != MDB_SUCCESS) {
    p->env = nullptr;
    return p->lmdb_error(rc, "create environment");
  }
  if (int rc = mdb_env_set_maxdbs(p->env, 8); rc != MDB_SUCCESS)
    return p->lmdb_error(rc, "set max databases");
  if (int rc = mdb_env_set_mapsize(p->env, static_cast<size_t>(map_mb) * 1024 * 1024);
      rc != MDB_SUCCESS)
    return p->lmdb_error(rc, "set map size");
  if (int rc = mdb_env_open(p->env, p->path.c_str(), MDB_NOTLS, 0644); rc != MDB_SUCCESS)
    return p->lmdb_error(rc, "open");
  int dead = 0;
  if (int rc = mdb_reader_check(p->env, &dead); rc != MDB_SUCCESS)
    return p->lmdb_error(rc, "clear stale readers");
  auto err = p->write("open databases", [&](MDB_txn* t) -> caf::error {
    std::pair<const char*, MDB_dbi*> dbs[] = {
      {"meta", &p->meta}, {"runs", &p->runs}, {"events", &p->events},
      {"artifacts", &p->artifacts}};
    for (auto [name, dbi] : dbs)
      if (int rc = mdb_dbi_open(t, name, MDB_CREATE, dbi); rc != MDB_SUCCESS)
        return p->lmdb_error(rc, std::string("open database ") + name);
    return {};
  });
  if (err)
    return err;
  return std::unique_ptr<run_store>(new run_store(std::move(p)));
}

caf::error run_store::create_run(run_record& run) {
  auto& s = *impl_;
  std::string id;
  auto err = s.write("create run", [&](MDB_txn* t) -> caf::error {
    MDB_val k = to_val(next_run_id_key);
    MDB_val v;
    uint64_t next = 1;
    int rc = mdb_get(t, s.meta, &k, &v);
    if (rc == MDB_SUCCESS) {
      if (!parse_u64(to_view(v), next) || next == 0)
        return make_error(errc::store, "run store " + s.path + ": corrupt run id counter");
    } else if (rc != MDB_NOTFOUND) {
      return s.lmdb_error(rc, "create run");
    }
    id = std::to_string(next);
    json j = to_json(run);
    j["id"] = id;
    j.erase("artifacts");
    std::string key = pad(next, run_key_digits);
    std::string value = dump(j);
    MDB_val rk = to_val(key);
    MDB_val rv = to_val(value);
    if (rc = mdb_put(t, s.runs, &rk, &rv, MDB_NOOVERWRITE); rc != MDB_SUCCESS)
      return s.lmdb_error(rc, "create run " + id);
    std::string counter = std::to_string(next + 1);
    MDB_val cv = to_val(counter);
    if (rc = mdb_put(t, s.meta, &k, &cv, 0); rc != MDB_SUCCESS)
      return s.lmdb_error(rc, "create run " + id);
    return {};
  });
  if (!err)
    run.id = std::move(id);
  return err;
}

caf::error run_store::update_run(const run_record& run) {
  auto& s = *impl_;
  uint64_t n = 0;
  if (!parse_run_id(run.id, n))
    return impl::no_run(run.id);
  return s.write("update run " + run.id, [&](MDB_txn* t) -> caf::error {
    std::string key = pad(n, run_key_digits);
    MDB_val k = to_val(key);
    MDB_val v;
    int rc = mdb_get(t, s.runs, &k, &v);
    if (rc == MDB_NOTFOUND)
      return impl::no_run(run.id);
    if (rc != MDB_SUCCESS)
      return s.lmdb_error(rc, "update run " + run.id);
    json j = to_json(run);
    j["id"] = std::to_string(n);
    j.erase("artifacts");
    std::string value = dump(j);
    MDB_val nv = to_val(value);
    if (rc = mdb_put(t, s.runs, &k, &nv, 0); rc != MDB_SUCCESS)
      return s.lmdb_error(rc, "update run " + run.id);
    return {};
  });
}

caf::error run_store::append_log(log_record& rec) {
  auto& s = *impl_;
  uint64_t n = 0;
  if (!parse_run_id(rec.run_id, n))
    return impl::no_run(rec.run_id);
  uint64_t seq = 0;
  auto err = s.write("append log to run " + rec.run_id, [&](MDB_txn* t) -> caf::error {
    std::string run_key = pad(n, run_key_digits);
    MDB_val k = to_val(run_key);
    MDB_val v;
    int rc = mdb_get(t, s.runs, &k, &v);
    if (rc == MDB_NOTFOUND)
      return impl::no_run(rec.run_id);
    if (rc != MDB_SUCCESS)
      return s.lmdb_error(rc, "append log");
    // The last event of this run is the one just before "<run>0" ('0' follows '/').
    std::string prefix = run_key + '/';
    std::string bound = run_key + '0';
    MDB_cursor* cursor = nullptr;
    if (rc = mdb_cursor_open(t, s.events, &cursor); rc != MDB_SUCCESS)
      return s.lmdb_error(rc, "append log");
    MDB_val ck = to_val(bound);
    MDB_val cv;
    rc = mdb_cursor_get(cursor, &ck, &cv, MDB_SET_RANGE);
    if (rc == MDB_SUCCESS)
      rc = mdb_cursor_get(cursor, &ck, &cv, MDB_PREV);
    else if (rc == MDB_NOTFOUND)
      rc = mdb_cursor_get(cursor, &ck, &cv, MDB_LAST);
    uint64_t last = 0;
    if (rc == MDB_SUCCESS && starts_with(to_view(ck), prefix))
      parse_u64(to_view(ck).substr(prefix.size()), last);
    mdb_cursor_close(cursor);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
      return s.lmdb_error(rc, "append log");
    seq = last + 1;
    log_record stored = rec;
    stored.run_id = std::to_string(n);
    stored.seq = seq;
    std::string key = prefix + pad(seq, seq_digits);
    std::string value = dump(to_json(stored));
    MDB_val ek = to_val(key);
    MDB_val ev = to_val(value);
    if (rc = mdb_put(t, s.events, &ek, &ev, MDB_NOOVERWRITE); rc != MDB_SUCCESS)
      return s.lmdb_error(rc, "append log to run " + rec.run_id);
    return {};
  });
  if (!err)
    rec.seq = seq;
  return err;
}

caf::error run_store::put_artifact(const artifact_record& art) {
  auto& s = *impl_;
  uint64_t n = 0;
  if (!parse_run_id(art.run_id, n))
    return impl::no_run(art.run_id);
  if (art.name.empty())
    return make_error(errc::invalid_argument, "artifact name must not be empty");
  std::string run_key = pad(n, run_key_digits);
  std::string key = run_key + '/' + art.name;
  if (key.size() > static_cast<size_t>(mdb_env_get_maxkeysize(s.env)))
    return make_error(errc::invalid_argument, "artifact name is too long: " + art.name);
  return s.write("store artifact " + art.name, [&](MDB_txn* t) -> caf::error {
    MDB_val k = to_val(run_key);
    MDB_val v;
    int rc = mdb_get(t, s.runs, &k, &v);
    if (rc == MDB_NOTFOUND)
      return impl::no_run(art.run_id);
    if (rc != MDB_SUCCESS)
      return s.lmdb_error(rc, "store artifact " + art.name);
    json meta = {{"node", art.node},
                 {"name", art.name},
                 {"media_type", art.media_type},
                 {"size", art.data.size()}};
    std::string value = dump(meta);
    value += '\n';
    value += art.data;
    MDB_val ak = to_val(key);
    MDB_val av = to_val(value);
    if (rc = mdb_put(t, s.artifacts, &ak, &av, 0); rc != MDB_SUCCESS)
      return s.lmdb_error(rc, "store artifact " + art.name);
    return {};
  });
}

caf::expected<run_record> run_store::get_run(const std::string& id) const {
  const auto& s = *impl_;
  uint64_t n = 0;
  if (!parse_run_id(id, n))
    return impl::no_run(id);
  return s.read<run_record>("read run " + id, [&](MDB_txn* t) {
    return s.read_run(t, pad(n, run_key_digits), id);
  });
}

caf::expected<std::vector<run_record>> run_store::list_runs(size_t limit) const {
  const auto& s = *impl_;
  using result = std::vector<run_record>;
  return s.read<result>("list runs", [&](MDB_txn* t) -> caf::expected<result> {
    MDB_cursor* cursor = nullptr;
    if (int rc = mdb_cursor_open(t, s.runs, &cursor); rc != MDB_SUCCESS)
      return s.lmdb_error(rc, "list runs");
    std::vector<std::pair<std::string, std::string>> found; // key, value
    MDB_val k;
    MDB_val v;
    int rc = mdb_cursor_get(cursor, &k, &v, MDB_LAST);
    while (rc == MDB_SUCCESS && (limit == 0 || found.size() < limit)) {
      found.emplace_back(to_view(k), to_view(v));
      rc = mdb_cursor_get(cursor, &k, &v, MDB_PREV);
    }
    mdb_cursor_close(cursor);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
      return s.lmdb_error(rc, "list runs");
    result runs;
    runs.reserve(found.size());
    for (const auto& [key, value] : found) {
      run_record run = run_from_json(json::parse(value));
      auto names = s.artifact_names(t, key);
      if (!names)
        return std::move(names.error());
      run.artifacts = std::move(*names);
      runs.push_back(std::move(run));
    }
    return runs;
  });
}

caf::expected<std::vector<log_record>> run_store::logs(const std::string& run_id) const {
  const auto& s = *impl_;
  uint64_t n = 0;
  if (!parse_run_id(run_id, n))
    return impl::no_run(run_id);
  using result = std::vector<log_record>;
  return s.read<result>("read logs of run " + run_id,
                        [&](MDB_txn* t) -> caf::expected<result> {
    std::string run_key = pad(n, run_key_digits);
    MDB_val k = to_val(run_key);
    MDB_val v;
    int rc = mdb_get(t, s.runs, &k, &v);
    if (rc == MDB_NOTFOUND)
      return impl::no_run(run_id);
    if (rc != MDB_SUCCESS)
      return s.lmdb_error(rc, "read logs of run " + run_id);
    result out;
    rc = impl::for_each_prefixed(t, s.events, run_key + '/',
                                 [&](std::string_view, const MDB_val& value) {
                                   out.push_back(log_from_json(json::parse(to_view(value))));
                                 });
    if (rc != MDB_SUCCESS)
      return s.lmdb_error(rc, "read logs of run " + run_id);
    return out;
  });
}

caf::expected<artifact_record> run_store::get_artifact(const std::string& run_id,
                                                       const std::string& name) const {
  const auto& s = *impl_;
  uint64_t n = 0;
  if (!parse_run_id(run_id, n))
    return impl::no_run(run_id);
  return s.read<artifact_record>("read artifact " + name,
                                 [&](MDB_txn* t) -> caf::expected<artifact_record> {
    std::string key = pad(n, run_key_digits) + '/' + name;
    MDB_val k = to_val(key);
    MDB_val v;
    int rc = mdb_get(t, s.artifacts, &k, &v);
    if (rc == MDB_NOTFOUND)
      return make_error(errc::not_found,
                        "no artifact '" + name + "' in run " + run_id);
    if (rc != MDB_SUCCESS)
      return s.lmdb_error(rc, "read artifact " + name);
    std::string_view value = to_view(v);
    size_t nl = value.find('\n');
    if (nl == std::string_view::npos)
      return make_error(errc::store, "run store " + s.path + ": corrupt artifact " + name);
    json meta = json::parse(value.substr(0, nl));
    artifact_record art;
    art.run_id = std::to_string(n);
    art.node = get_or<std::string>(meta, "node", "");
    art.name = name;
    art.media_type = get_or<std::string>(meta, "media_type", "");
    art.data.assign(value.substr(nl + 1));
    return art;
  });
}

} // namespace loom
