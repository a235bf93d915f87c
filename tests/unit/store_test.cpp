#include "loom/runtime/store.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

using namespace loom;

namespace {

// A fresh directory under /tmp, removed at the end of the test.
struct temp_home {
  std::string path;
  temp_home() {
    char tmpl[] = "/tmp/loom_store_test_XXXXXX";
    char* dir = mkdtemp(tmpl);
    REQUIRE(dir != nullptr);
    path = dir;
  }
  ~temp_home() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

std::unique_ptr<run_store> open_store(const std::string& home, store_options opts = {}) {
  auto store = run_store::open(home, opts);
  if (!store)
    FAIL("open failed: " << error_message(store.error()));
  return std::move(*store);
}

run_record sample_run(const std::string& name) {
  run_record run;
  run.graph_name = name;
  run.graph_file = "/graphs/" + name + ".yaml";
  run.graph_hash = "abc123";
  run.graph_text = "name: " + name + "\nnodes: []\n";
  run.params = {{"rows", 10}, {"path", "in.csv"}};
  run.started_ms = now_ms();
  run.host = "host1";
  run.pid = 4242;
  return run;
}

log_record make_log(const std::string& run_id, const std::string& message) {
  log_record rec;
  rec.run_id = run_id;
  rec.time_ms = now_ms();
  rec.node = "n1";
  rec.level = "info";
  rec.message = message;
  return rec;
}

// Runs `body` in a forked child; the child's exit status is body's return value.
template <class F>
pid_t fork_child(F&& body) {
  pid_t pid = fork();
  if (pid == 0) {
    int code = 1;
    try {
      code = body();
    } catch (...) {
      code = 2;
    }
    _exit(code);
  }
  return pid;
}

} // namespace

TEST_CASE("create, get and update round-trip a run with nodes and metrics", "[store]") {
  temp_home home;
  auto store = open_store(home.path);
  CHECK(store->path() == home.path + "/store");
  CHECK(std::filesystem::exists(home.path + "/store/data.mdb"));

  run_record run = sample_run("etl");
  node_record node;
  node.id = "read";
  node.op = "csv_reader";
  node.state = "running";
  node.attempts = 1;
  node.started_ms = 1000;
  node.rows_out = 5;
  node.metrics["throughput"] = 12.5;
  run.nodes.push_back(node);
  REQUIRE(!store->create_run(run));
  CHECK(run.id == "1");

  auto got = store->get_run("1");
  REQUIRE(got);
  CHECK(got->id == "1");
  CHECK(got->graph_name == "etl");
  CHECK(got->graph_file == "/graphs/etl.yaml");
  CHECK(got->graph_hash == "abc123");
  CHECK(got->graph_text == run.graph_text);
  CHECK(got->params == run.params);
  CHECK(got->state == "running");
  CHECK(got->host == "host1");
  CHECK(got->pid == 4242);
  CHECK(got->started_ms == run.started_ms);
  REQUIRE(got->nodes.size() == 1);
  CHECK(got->nodes[0].id == "read");
  CHECK(got->nodes[0].op == "csv_reader");
  CHECK(got->nodes[0].attempts == 1);
  CHECK(got->nodes[0].rows_out == 5);
  CHECK(got->nodes[0].metrics.at("throughput") == 12.5);
  CHECK(got->artifacts.empty());

  run.state = "failed";
  run.error = "boom";
  run.ended_ms = run.started_ms + 10;
  run.nodes[0].state = "failed";
  run.nodes[0].error = "bad row";
  run.nodes[0].rows_in = 7;
  run.nodes[0].rows_rejected = 2;
  run.nodes[0].bytes_out = 1ull << 40;
  run.nodes[0].metrics["loss"] = 0.25;
  REQUIRE(!store->update_run(run));

  got = store->get_run("1");
  REQUIRE(got);
  CHECK(got->state == "failed");
  CHECK(got->error == "boom");
  CHECK(got->ended_ms == run.ended_ms);
  REQUIRE(got->nodes.size() == 1);
  CHECK(got->nodes[0].state == "failed");
  CHECK(got->nodes[0].error == "bad row");
  CHECK(got->nodes[0].rows_in == 7);
  CHECK(got->nodes[0].rows_rejected == 2);
  CHECK(got->nodes[0].bytes_out == (1ull << 40));
  CHECK(got->nodes[0].metrics.size() == 2);
  CHECK(got->nodes[0].metrics.at("loss") == 0.25);

  // JSON field names are the member names.
  auto j = to_json(*got);
  CHECK(j.at("graph_text") == run.graph_text);
  CHECK(j.at("nodes").at(0).at("rows_rejected") == 2);
  auto back = run_from_json(j);
  CHECK(to_json(back) == j);
}

TEST_CASE("run ids increase and list_runs is newest first with a limit", "[store]") {
  temp_home home;
  auto store = open_store(home.path);
  for (int i = 1; i <= 12; ++i) {
    run_record run = sample_run("g" + std::to_string(i));
    REQUIRE(!store->create_run(run));
    CHECK(run.id == std::to_string(i));
  }
  auto all = store->list_runs();
  REQUIRE(all);
  REQUIRE(all->size() == 12);
  for (size_t i = 0; i < all->size(); ++i)
    CHECK((*all)[i].id == std::to_string(12 - i)); // 10, 11, 12 sort after 9
  CHECK((*all)[0].graph_text == "name: g12\nnodes: []\n");

  auto some = store->list_runs(3);
  REQUIRE(some);
  REQUIRE(some->size() == 3);
  CHECK((*some)[0].id == "12");
  CHECK((*some)[2].id == "10");

  // Ids keep increasing after a reopen.
  store.reset();
  store = open_store(home.path);
  run_record run = sample_run("later");
  REQUIRE(!store->create_run(run));
  CHECK(run.id == "13");
}

TEST_CASE("logs come back in sequence order per run", "[store]") {
  temp_home home;
  auto store = open_store(home.path);
  run_record a = sample_run("a");
  run_record b = sample_run("b");
  REQUIRE(!store->create_run(a));
  REQUIRE(!store->create_run(b));
  for (int i = 0; i < 20; ++i) {
    auto rec = make_log(i % 2 ? a.id : b.id, "msg " + std::to_string(i));
    REQUIRE(!store->append_log(rec));
    CHECK(rec.seq == static_cast<uint64_t>(i / 2 + 1));
  }
  auto logs = store->logs(a.id);
  REQUIRE(logs);
  REQUIRE(logs->size() == 10);
  for (size_t i = 0; i < logs->size(); ++i) {
    CHECK((*logs)[i].seq == i + 1);
    CHECK((*logs)[i].run_id == a.id);
    CHECK((*logs)[i].message == "msg " + std::to_string(2 * i + 1));
    CHECK((*logs)[i].level == "info");
    CHECK((*logs)[i].node == "n1");
  }
  auto none = store->logs("99");
  REQUIRE(!none);
  CHECK(error_code(none.error()) == errc::not_found);
  auto orphan = make_log("99", "x");
  CHECK(error_code(store->append_log(orphan)) == errc::not_found);
}

TEST_CASE("artifacts round-trip binary bytes", "[store]") {
  temp_home home;
  auto store = open_store(home.path);
  run_record run = sample_run("a");
  REQUIRE(!store->create_run(run));

  artifact_record art;
  art.run_id = run.id;
  art.node = "train";
  art.name = "model/weights.bin";
  art.media_type = "application/octet-stream";
  for (int i = 0; i < 3000; ++i)
    art.data.push_back(static_cast<char>(i % 256));
  art.data += std::string("\0\n\0\n", 4);
  REQUIRE(!store->put_artifact(art));
  artifact_record other = art;
  other.name = "report.txt";
  other.media_type = "text/plain";
  other.data = "line1\nline2\n";
  REQUIRE(!store->put_artifact(other));

  auto got = store->get_artifact(run.id, "model/weights.bin");
  REQUIRE(got);
  CHECK(got->run_id == run.id);
  CHECK(got->node == "train");
  CHECK(got->name == "model/weights.bin");
  CHECK(got->media_type == "application/octet-stream");
  CHECK(got->data == art.data);

  auto r = store->get_run(run.id);
  REQUIRE(r);
  CHECK(r->artifacts == std::vector<std::string>{"model/weights.bin", "report.txt"});

  auto missing = store->get_artifact(run.id, "nope");
  REQUIRE(!missing);
  CHECK(error_code(missing.error()) == errc::not_found);
  art.run_id = "77";
  CHECK(error_code(store->put_artifact(art)) == errc::not_found);
}

TEST_CASE("unknown run ids are not_found", "[store]") {
  temp_home home;
  auto store = open_store(home.path);
  for (std::string id : {"1", "0", "", "abc", "-1", "1234567890123"}) {
    auto got = store->get_run(id);
    REQUIRE(!got);
    CHECK(error_code(got.error()) == errc::not_found);
    CHECK(error_message(got.error()) == "no run with id " + id);
  }
  run_record ghost = sample_run("ghost");
  ghost.id = "5";
  CHECK(error_code(store->update_run(ghost)) == errc::not_found);
  auto runs = store->list_runs();
  REQUIRE(runs);
  CHECK(runs->empty());
}

TEST_CASE("threads share one store", "[store]") {
  temp_home home;
  auto store = open_store(home.path);
  run_record run = sample_run("t");
  REQUIRE(!store->create_run(run));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto rec = make_log(run.id, std::to_string(t));
        if (store->append_log(rec) || !store->get_run(run.id))
          ++failures;
      }
    });
  for (auto& th : threads)
    th.join();
  CHECK(failures == 0);
  auto logs = store->logs(run.id);
  REQUIRE(logs);
  REQUIRE(logs->size() == 200);
  for (size_t i = 0; i < logs->size(); ++i)
    CHECK((*logs)[i].seq == i + 1);
}

TEST_CASE("concurrent writer processes get distinct ids", "[store]") {
  temp_home home;
  constexpr int n_children = 4;
  constexpr int runs_each = 50;
  std::vector<pid_t> children;
  for (int c = 0; c < n_children; ++c)
    children.push_back(fork_child([&] {
      auto store = run_store::open(home.path);
      if (!store)
        return 3;
      for (int i = 0; i < runs_each; ++i) {
        run_record run = sample_run("child" + std::to_string(c));
        run.pid = getpid();
        if ((*store)->create_run(run))
          return 4;
        for (int l = 0; l < 2; ++l) {
          auto rec = make_log(run.id, "from child " + std::to_string(c));
          if ((*store)->append_log(rec) || rec.seq != static_cast<uint64_t>(l + 1))
            return 5;
        }
      }
      return 0;
    }));
  for (pid_t pid : children) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }

  auto store = open_store(home.path);
  auto runs = store->list_runs();
  REQUIRE(runs);
  REQUIRE(runs->size() == n_children * runs_each);
  std::set<std::string> ids;
  for (const auto& r : *runs) {
    ids.insert(r.id);
    auto got = store->get_run(r.id);
    REQUIRE(got);
    CHECK(got->graph_name.rfind("child", 0) == 0);
    auto logs = store->logs(r.id);
    REQUIRE(logs);
    CHECK(logs->size() == 2);
  }
  CHECK(ids.size() == n_children * runs_each);
  for (int i = 1; i <= n_children * runs_each; ++i)
    CHECK(ids.count(std::to_string(i)) == 1);
}

TEST_CASE("a killed writer loses nothing it reported as stored", "[store]") {
  temp_home home;
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t child = fork_child([&] {
    close(fds[0]);
    auto store = run_store::open(home.path);
    if (!store)
      return 3;
    for (;;) {
      run_record run = sample_run("victim");
      if ((*store)->create_run(run))
        return 4;
      auto rec = make_log(run.id, "started");
      if ((*store)->append_log(rec))
        return 5;
      artifact_record art{run.id, "n", "blob", "application/octet-stream",
                          std::string(8192, 'x')};
      if ((*store)->put_artifact(art))
        return 6;
      std::string line = run.id + "\n";
      if (write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size()))
        return 7;
    }
  });
  REQUIRE(child > 0);
  close(fds[1]);

  std::string buffer;
  auto lines = [&] { return std::count(buffer.begin(), buffer.end(), '\n'); };
  char chunk[256];
  while (lines() < 30) {
    ssize_t n = read(fds[0], chunk, sizeof chunk);
    REQUIRE(n > 0);
    buffer.append(chunk, static_cast<size_t>(n));
  }
  REQUIRE(kill(child, SIGKILL) == 0);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  // Everything the child wrote before dying counts as reported.
  for (ssize_t n; (n = read(fds[0], chunk, sizeof chunk)) > 0;)
    buffer.append(chunk, static_cast<size_t>(n));
  close(fds[0]);

  std::vector<std::string> reported;
  for (size_t pos = 0, nl; (nl = buffer.find('\n', pos)) != std::string::npos; pos = nl + 1)
    reported.push_back(buffer.substr(pos, nl - pos));
  REQUIRE(reported.size() >= 30);

  auto store = open_store(home.path);
  uint64_t max_id = 0;
  for (const auto& id : reported) {
    auto got = store->get_run(id);
    REQUIRE(got);
    CHECK(got->graph_name == "victim");
    CHECK(got->artifacts == std::vector<std::string>{"blob"});
    auto logs = store->logs(id);
    REQUIRE(logs);
    CHECK(logs->size() == 1);
    auto art = store->get_artifact(id, "blob");
    REQUIRE(art);
    CHECK(art->data == std::string(8192, 'x'));
    max_id = std::max<uint64_t>(max_id, std::stoull(id));
  }

  run_record run = sample_run("after");
  REQUIRE(!store->create_run(run));
  CHECK(std::stoull(run.id) > max_id);
  auto rec = make_log(run.id, "still works");
  REQUIRE(!store->append_log(rec));
  CHECK(rec.seq == 1);
  auto got = store->get_run(run.id);
  REQUIRE(got);
  CHECK(got->graph_name == "after");
}

TEST_CASE("a full map is reported as store_full and the store stays usable", "[store]") {
  temp_home home;
  std::vector<std::string> ids;
  std::vector<std::string> stored; // run ids with an artifact
  caf::error err;
  {
    store_options opts;
    opts.map_size_mb = 1;
    auto store = open_store(home.path, opts);
    const std::string blob(64 * 1024, 'z');
    for (int i = 0; i < 100 && !err; ++i) {
      run_record run = sample_run("full");
      err = store->create_run(run);
      if (err)
        break;
      ids.push_back(run.id);
      err = store->put_artifact({run.id, "n", "blob", "application/octet-stream", blob});
      if (!err)
        stored.push_back(run.id);
    }
    REQUIRE(err);
    CHECK(error_code(err) == errc::store_full);
    auto msg = error_message(err);
    CHECK_THAT(msg, Catch::Contains("LOOM_STORE_MAP_MB"));
    CHECK_THAT(msg, Catch::Contains("1 MiB"));
    CHECK_THAT(msg, Catch::Contains(store->path()));
    // Fewer than 1 MiB of artifacts fit.
    CHECK(stored.size() < 16);
    REQUIRE(!stored.empty());

    for (const auto& id : ids)
      CHECK(store->get_run(id));
    for (const auto& id : stored)
      CHECK(store->get_artifact(id, "blob")->data == blob);
  }

  // Reopens fine; with a bigger map, writes work again.
  {
    store_options opts;
    opts.map_size_mb = 1;
    auto store = open_store(home.path, opts);
    auto runs = store->list_runs();
    REQUIRE(runs);
    CHECK(runs->size() == ids.size());
  }
  {
    store_options opts;
    opts.map_size_mb = 8;
    auto store = open_store(home.path, opts);
    for (const auto& id : ids)
      CHECK(store->get_run(id));
    run_record run = sample_run("more");
    REQUIRE(!store->create_run(run));
    CHECK(!store->put_artifact({run.id, "n", "blob", "", std::string(64 * 1024, 'y')}));
  }
}

TEST_CASE("LOOM_STORE_MAP_MB sets the map size", "[store]") {
  temp_home home;
  setenv("LOOM_STORE_MAP_MB", "lots", 1);
  auto bad = run_store::open(home.path);
  REQUIRE(!bad);
  CHECK(error_code(bad.error()) == errc::invalid_argument);

  setenv("LOOM_STORE_MAP_MB", "1", 1);
  auto store = open_store(home.path);
  unsetenv("LOOM_STORE_MAP_MB");
  run_record run = sample_run("env");
  REQUIRE(!store->create_run(run));
  caf::error err;
  int written = 0;
  for (; written < 100 && !err; ++written)
    err = store->put_artifact({run.id, "n", "a" + std::to_string(written), "",
                               std::string(64 * 1024, 'q')});
  REQUIRE(err);
  CHECK(error_code(err) == errc::store_full);
  CHECK_THAT(error_message(err), Catch::Contains("1 MiB"));
  CHECK(written < 17);
}
