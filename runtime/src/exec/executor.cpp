#include "loom/runtime/executor.hpp"

#include "loom/runtime/host.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::message_ptr)

namespace loom {

namespace {

using start_atom = caf::atom_constant<caf::atom("start")>;
using data_atom = caf::atom_constant<caf::atom("data")>;
using end_atom = caf::atom_constant<caf::atom("end")>;
using abort_atom = caf::atom_constant<caf::atom("abort")>;
using credit_atom = caf::atom_constant<caf::atom("credit")>;
using pump_atom = caf::atom_constant<caf::atom("pump")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
using giveup_atom = caf::atom_constant<caf::atom("giveup")>;
using expire_atom = caf::atom_constant<caf::atom("expire")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using state_atom = caf::atom_constant<caf::atom("state")>;
using failed_atom = caf::atom_constant<caf::atom("failed")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
using log_atom = caf::atom_constant<caf::atom("log")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using detach_atom = caf::atom_constant<caf::atom("detach")>;

using clock = std::chrono::steady_clock;

/// Counters of one node, written by its actor and read by the run actor.
struct node_stats {
  std::atomic<uint64_t> rows_in{0}, rows_out{0}, rows_rejected{0}, frames_in{0}, frames_out{0},
    bytes_in{0}, bytes_out{0};
  std::mutex mtx;
  std::map<std::string, double> metrics;
  std::map<uint32_t, size_t> max_queued; ///< per input port: most messages sent, not yet taken
  std::atomic<bool> cancelled{false};    ///< this node's cancel flag (timeout or run cancel)
  std::atomic<double> timed_out{0};      ///< the timeout (s) that expired this attempt, 0 = none
};

struct consumer_ref {
  size_t node;
  uint32_t port;
};

struct producer_ref {
  size_t node;
  uint32_t port;
  uint32_t slot; ///< index among the consumers of that output port
  bool connected = false; ///< false: an optional input the graph left unconnected
};

struct node_plan {
  const node_spec* spec = nullptr;
  const operator_info* op = nullptr;
  std::vector<std::vector<consumer_ref>> outputs; ///< per output port
  std::vector<producer_ref> inputs;               ///< per input port
};

struct run_shared {
  const graph_spec* graph = nullptr;
  run_options opts;
  std::vector<node_plan> plan;
  std::vector<caf::actor> actors;
  caf::actor run;
  std::vector<std::unique_ptr<node_stats>> stats;
  std::atomic<bool> cancelled{false};
  clock::time_point started = clock::now();
  std::promise<run_result> result;

  double elapsed() const {
    return std::chrono::duration<double>(clock::now() - started).count();
  }
};

using shared_ptr_t = std::shared_ptr<run_shared>;

// ---- node actor ----------------------------------------------------------------

struct inbox_item {
  uint32_t port;
  message_ptr msg; ///< null = end of input on `port`
  bool replay;     ///< already credited (replayed for a retry)
};

enum class node_mode { idle, running, waiting, draining, done };

struct node_state : node_host {
  caf::event_based_actor* self = nullptr;
  shared_ptr_t run;
  size_t index = 0;
  const node_plan* plan = nullptr;
  node_stats* stats = nullptr;

  node_mode mode = node_mode::idle;
  uint32_t attempt = 0;
  loom_context ctx;
  void* instance = nullptr;
  bool instance_live = false;

  std::deque<inbox_item> inbox;
  std::vector<inbox_item> consumed; ///< this attempt's inputs, kept for a retry
  std::vector<bool> ended;          ///< per input port: producer said end/abort
  std::vector<bool> end_seen;       ///< per input port: the operator saw on_input_end
  std::vector<std::deque<message_ptr>> outbox;
  std::vector<std::vector<size_t>> credit; ///< per output port, per consumer
  std::vector<std::vector<bool>> gone;     ///< per output port, per consumer: actor died
  std::vector<uint64_t> delivered;         ///< per output port, over all attempts
  std::vector<uint64_t> emitted;           ///< per output port, this attempt
  bool produce_done = false;
  bool pump_scheduled = false;
  std::string final_state; ///< in draining mode: failed, skipped, cancelled

  ~node_state() override { destroy_instance(); }

  std::string label() const {
    return "node '" + plan->spec->id + "' (" + plan->op->name + ")";
  }

  void init() {
    auto nin = plan->op->inputs.size();
    auto nout = plan->op->outputs.size();
    ended.assign(nin, false);
    end_seen.assign(nin, false);
    // an optional input left unconnected has ended before anything arrives: the
    // operator gets on_input_end for it first (and again in every retry, as replay)
    for (size_t p = 0; p < nin; ++p)
      if (!plan->inputs[p].connected) {
        ended[p] = true;
        inbox.push_back({static_cast<uint32_t>(p), nullptr, true});
      }
    outbox.resize(nout);
    credit.resize(nout);
    gone.resize(nout);
    for (size_t p = 0; p < nout; ++p) {
      credit[p].assign(plan->outputs[p].size(), run->opts.credit);
      gone[p].assign(plan->outputs[p].size(), false);
    }
    delivered.assign(nout, 0);
    ctx.host = this;
    ctx.op = plan->op;
    ctx.params = plan->spec->with;
    ctx.params_text = plan->spec->with.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    ctx.node_id = plan->spec->id;
    ctx.run_id = run->opts.run_id;
    ctx.base_dir = run->graph->base_dir;
    ctx.cancelled = &stats->cancelled;
  }

  // -- node_host: called by the operator during one of our calls into it ----------

  loom_error* emit(uint32_t port, message_ptr msg) override {
    if (port >= outbox.size())
      return new_error(LOOM_ERR_INVALID_ARGUMENT,
                       "emit on output port " + std::to_string(port) + ", but the operator has " +
                         std::to_string(outbox.size()) + " output ports");
    auto want = plan->op->outputs[port].type;
    if (want != LOOM_MSG_ANY && msg->type != want)
      return new_error(LOOM_ERR_INVALID_ARGUMENT,
                       std::string("emitted a ") + to_string(msg->type) + " message on port '" +
                         plan->op->outputs[port].name + "', which carries " + to_string(want));
    if (emitted[port]++ < delivered[port])
      return nullptr; // already delivered by an earlier attempt
    ++delivered[port];
    if (plan->outputs[port].empty())
      count_out(port, *msg); // unconnected port: counted, then dropped
    else
      outbox[port].push_back(std::move(msg));
    return nullptr;
  }

  // Rows on a port named "rejects" are the operator's rejected rows (it counts them
  // with add_counter), so they are not rows out: rows in = rows out + rows rejected.
  void count_out(uint32_t port, const loom_message& msg) {
    if (plan->op->outputs[port].name != "rejects")
      stats->rows_out += msg.rows;
    stats->frames_out += 1;
    stats->bytes_out += msg.bytes.size;
  }

  void log(loom_log_level level, const std::string& message) override {
    static const char* names[] = {"debug", "info", "warn", "error"};
    self->send(run->run, log_atom::value, index, std::string(names[level & 3]), message);
  }

  void add_counter(loom_counter counter, uint64_t delta) override {
    switch (counter) {
      case LOOM_COUNTER_ROWS_IN: stats->rows_in += delta; break;
      case LOOM_COUNTER_ROWS_OUT: stats->rows_out += delta; break;
      case LOOM_COUNTER_ROWS_REJECTED: stats->rows_rejected += delta; break;
      case LOOM_COUNTER_BYTES_IN: stats->bytes_in += delta; break;
      case LOOM_COUNTER_BYTES_OUT: stats->bytes_out += delta; break;
    }
  }

  void record_metric(const std::string& name, double value) override {
    std::lock_guard<std::mutex> guard(stats->mtx);
    stats->metrics[name] = value;
  }

  loom_error* record_artifact(const std::string& name, const std::string& media_type,
                              std::string data) override {
    if (run->opts.store == nullptr)
      return nullptr;
    artifact_record art{run->opts.run_id, plan->spec->id, name, media_type, std::move(data)};
    if (auto err = run->opts.store->put_artifact(art))
      return new_error(LOOM_ERR_IO, "cannot store artifact '" + name + "': " + error_message(err));
    return nullptr;
  }

  // -- attempts -------------------------------------------------------------------

  void destroy_instance() {
    if (instance_live && plan->op->vtable.destroy != nullptr)
      plan->op->vtable.destroy(instance);
    instance = nullptr;
    instance_live = false;
  }

  void start_attempt() {
    ++attempt;
    mode = node_mode::running;
    stats->cancelled = run->cancelled.load();
    stats->timed_out = 0;
    stats->rows_in = 0;
    stats->frames_in = 0;
    stats->bytes_in = 0;
    stats->rows_rejected = 0;
    emitted.assign(outbox.size(), 0);
    produce_done = false;
    std::fill(end_seen.begin(), end_seen.end(), false);
    ctx.attempt = attempt;
    ctx.string_params.clear();
    // replay what the failed attempt had consumed, ahead of what is still queued
    for (auto it = consumed.rbegin(); it != consumed.rend(); ++it)
      inbox.push_front({it->port, it->msg, true});
    consumed.clear();
    self->send(run->run, state_atom::value, index, std::string("running"), attempt, std::string());
    if (auto* err = plan->op->vtable.create(&ctx, &instance)) {
      attempt_failed(err);
      return;
    }
    instance_live = true;
    pump();
  }

  void attempt_failed(loom_error* err) {
    std::string why = err ? err->message : "unknown error";
    delete err;
    if (auto t = stats->timed_out.load(); t > 0) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "timed out after %gs", t);
      why = buf;
    }
    attempt_failed(why);
  }

  void attempt_failed(const std::string& why) {
    destroy_instance();
    for (size_t p = 0; p < outbox.size(); ++p) {
      delivered[p] -= outbox[p].size(); // never sent: the next attempt emits them again
      outbox[p].clear();
    }
    mode = node_mode::waiting;
    self->send(run->run, failed_atom::value, index, attempt, why);
  }

  // -- the pump: flush outputs, then take the next input or produce -----------------

  bool outbox_empty() const {
    for (auto& o : outbox)
      if (!o.empty())
        return false;
    return true;
  }

  void flush() {
    for (size_t p = 0; p < outbox.size(); ++p) {
      auto& cs = plan->outputs[p];
      while (!outbox[p].empty()) {
        bool room = true;
        for (auto c : credit[p])
          room = room && c > 0;
        if (!room)
          break;
        auto msg = std::move(outbox[p].front());
        outbox[p].pop_front();
        count_out(static_cast<uint32_t>(p), *msg);
        for (size_t k = 0; k < cs.size(); ++k) {
          --credit[p][k];
          if (!gone[p][k])
            note_outstanding(cs[k], run->opts.credit - credit[p][k]);
          self->send(run->actors[cs[k].node], data_atom::value, cs[k].port, msg);
        }
      }
    }
  }

  /// Records how many messages are sent but not yet taken by that consumer.
  void note_outstanding(const consumer_ref& c, size_t outstanding) {
    auto& st = *run->stats[c.node];
    std::lock_guard<std::mutex> guard(st.mtx);
    auto& m = st.max_queued[c.port];
    m = std::max(m, outstanding);
  }

  bool all_inputs_seen() const {
    for (bool b : end_seen)
      if (!b)
        return false;
    return true;
  }

  void schedule_pump() {
    if (!pump_scheduled) {
      pump_scheduled = true;
      self->send(self, pump_atom::value);
    }
  }

  void pump() {
    if (mode != node_mode::running)
      return;
    for (int step = 0; step < 32; ++step) {
      flush();
      if (!outbox_empty())
        return; // wait for credit
      if (stats->cancelled.load() && !run->cancelled.load())
        return; // timed out: the run actor's expire message follows
      if (!inbox.empty()) {
        auto item = std::move(inbox.front());
        inbox.pop_front();
        if (plan->spec->retries > 0)
          consumed.push_back(item);
        if (!take(item))
          return;
        continue;
      }
      if (all_inputs_seen() && !produce_done) {
        int finished = 1;
        if (plan->op->vtable.produce != nullptr) {
          if (auto* err = plan->op->vtable.produce(instance, &ctx, &finished)) {
            attempt_failed(err);
            return;
          }
        }
        produce_done = finished != 0;
        continue;
      }
      if (produce_done) {
        succeed();
        return;
      }
      return; // wait for input
    }
    schedule_pump();
  }

  /// Hands one inbox item to the operator; false if the attempt failed.
  bool take(const inbox_item& item) {
    if (!item.replay && item.msg) {
      auto& src = plan->inputs[item.port];
      self->send(run->actors[src.node], credit_atom::value, src.port, src.slot);
    }
    loom_error* err = nullptr;
    if (item.msg) {
      stats->rows_in += item.msg->rows;
      stats->frames_in += 1;
      stats->bytes_in += item.msg->bytes.size;
      err = plan->op->vtable.on_input(instance, &ctx, item.port, item.msg.get());
    } else {
      end_seen[item.port] = true;
      if (plan->op->vtable.on_input_end != nullptr)
        err = plan->op->vtable.on_input_end(instance, &ctx, item.port);
    }
    if (err != nullptr) {
      attempt_failed(err);
      return false;
    }
    return true;
  }

  void succeed() {
    destroy_instance();
    for (size_t p = 0; p < plan->outputs.size(); ++p)
      for (auto& c : plan->outputs[p])
        self->send(run->actors[c.node], end_atom::value, c.port);
    mode = node_mode::done;
    self->send(run->run, state_atom::value, index, std::string("succeeded"), attempt, std::string());
    finish();
  }

  /// Stops working: tells consumers, returns credit for what is queued, and waits
  /// for the remaining inputs to end while discarding them.
  void drain(const std::string& state) {
    destroy_instance();
    final_state = state;
    mode = node_mode::draining;
    for (auto& o : outbox)
      o.clear();
    for (size_t p = 0; p < plan->outputs.size(); ++p)
      for (auto& c : plan->outputs[p])
        self->send(run->actors[c.node], abort_atom::value, c.port);
    for (auto& item : inbox)
      if (!item.replay && item.msg) {
        auto& src = plan->inputs[item.port];
        self->send(run->actors[src.node], credit_atom::value, src.port, src.slot);
      }
    inbox.clear();
    consumed.clear();
    maybe_finish_draining();
  }

  void maybe_finish_draining() {
    if (mode != node_mode::draining)
      return;
    for (bool b : ended)
      if (!b)
        return;
    mode = node_mode::done;
    finish();
  }

  void finish() {
    self->send(run->run, done_atom::value, index);
    self->quit();
  }

  // -- message handlers -------------------------------------------------------------

  void on_data(uint32_t port, message_ptr msg) {
    if (port >= ended.size())
      return;
    if (mode == node_mode::draining || mode == node_mode::done) {
      auto& src = plan->inputs[port];
      self->send(run->actors[src.node], credit_atom::value, src.port, src.slot);
      return;
    }
    inbox.push_back({port, std::move(msg), false});
    pump();
  }

  void on_end(uint32_t port, bool aborted) {
    if (port >= ended.size() || ended[port])
      return;
    ended[port] = true;
    if (mode == node_mode::draining || mode == node_mode::done) {
      maybe_finish_draining();
      return;
    }
    if (aborted) {
      auto& src = plan->inputs[port];
      auto& producer = run->plan[src.node].spec->id;
      self->send(run->run, state_atom::value, index, std::string("skipped"), attempt,
                 "upstream node '" + producer + "' did not succeed");
      drain("skipped");
      return;
    }
    inbox.push_back({port, nullptr, false});
    pump();
  }

  void on_credit(uint32_t port, uint32_t slot) {
    if (port < credit.size() && slot < credit[port].size())
      ++credit[port][slot];
    if (mode == node_mode::running)
      pump();
  }
};

caf::behavior node_actor(caf::stateful_actor<node_state>* self, shared_ptr_t run, size_t index) {
  auto& st = self->state;
  st.self = self;
  st.run = run;
  st.index = index;
  st.plan = &run->plan[index];
  st.stats = run->stats[index].get();
  st.init();
  return {
    [=](start_atom) { self->state.start_attempt(); },
    [=](retry_atom) {
      if (self->state.mode == node_mode::waiting)
        self->state.start_attempt();
    },
    [=](giveup_atom, const std::string& state) {
      if (self->state.mode != node_mode::draining && self->state.mode != node_mode::done)
        self->state.drain(state);
    },
    [=](expire_atom, uint32_t attempt, const std::string& why) {
      if (self->state.mode == node_mode::running && self->state.attempt == attempt)
        self->state.attempt_failed(why);
    },
    [=](data_atom, uint32_t port, message_ptr msg) { self->state.on_data(port, std::move(msg)); },
    [=](end_atom, uint32_t port) { self->state.on_end(port, false); },
    [=](abort_atom, uint32_t port) { self->state.on_end(port, true); },
    [=](credit_atom, uint32_t port, uint32_t slot) { self->state.on_credit(port, slot); },
    [=](detach_atom, uint32_t port, uint32_t slot) {
      auto& c = self->state.credit;
      if (port < c.size() && slot < c[port].size()) {
        c[port][slot] = SIZE_MAX / 2; // consumer is gone: never wait for it
        self->state.gone[port][slot] = true;
      }
      self->state.on_credit(port, slot);
    },
    [=](pump_atom) {
      self->state.pump_scheduled = false;
      self->state.pump();
    },
  };
}

// ---- run actor -------------------------------------------------------------------

/// One timer serves progress events and periodic persisting: the shorter of the two
/// intervals that are on (persisting only matters when there is a store).
std::chrono::milliseconds tick_interval(const run_options& o) {
  double s = o.progress_interval_s > 0 ? o.progress_interval_s : 0;
  if (o.store != nullptr && o.record != nullptr && o.persist_interval_s > 0)
    s = s > 0 ? std::min(s, o.persist_interval_s) : o.persist_interval_s;
  return std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
}

struct run_state_t {
  caf::event_based_actor* self = nullptr;
  shared_ptr_t run;
  std::vector<node_record> nodes;
  std::vector<bool> done;
  size_t remaining = 0;
  bool cancel_requested = false;
  std::string first_error;
  bool finished = false;

  void emit_event(run_event ev) {
    if (run->opts.on_event)
      run->opts.on_event(ev);
  }

  node_record snapshot(size_t i) {
    auto r = nodes[i];
    auto& s = *run->stats[i];
    r.rows_in = s.rows_in;
    r.rows_out = s.rows_out;
    r.rows_rejected = s.rows_rejected;
    r.frames_in = s.frames_in;
    r.frames_out = s.frames_out;
    r.bytes_in = s.bytes_in;
    r.bytes_out = s.bytes_out;
    std::lock_guard<std::mutex> guard(s.mtx);
    r.metrics = s.metrics;
    return r;
  }

  void persist() {
    auto* store = run->opts.store;
    auto* rec = run->opts.record;
    if (store == nullptr || rec == nullptr)
      return;
    rec->nodes.clear();
    for (size_t i = 0; i < nodes.size(); ++i)
      rec->nodes.push_back(snapshot(i));
    if (auto err = store->update_run(*rec))
      emit_event({run_event::log, run->elapsed(), "", "warn", "cannot record run: " + error_message(err), {}});
  }

  void set_state(size_t i, const std::string& state, const std::string& error) {
    auto& n = nodes[i];
    auto now = now_ms();
    if (state == "running" && n.started_ms == 0)
      n.started_ms = now;
    if (state == "succeeded" || state == "failed" || state == "skipped" || state == "cancelled")
      n.ended_ms = now;
    n.state = state;
    if (!error.empty())
      n.error = error;
    persist();
    emit_event({run_event::node_state, run->elapsed(), n.id, state, error, snapshot(i)});
  }

  void log(size_t i, const std::string& level, const std::string& message) {
    std::string node = i < nodes.size() ? nodes[i].id : "";
    if (run->opts.store != nullptr) {
      log_record rec{run->opts.run_id, 0, now_ms(), node, level, message};
      (void)run->opts.store->append_log(rec);
    }
    emit_event({run_event::log, run->elapsed(), node, level, message, {}});
  }

  void on_failed(size_t i, uint32_t attempt, const std::string& why) {
    auto& spec = *run->plan[i].spec;
    auto& n = nodes[i];
    n.attempts = attempt;
    std::string msg = "attempt " + std::to_string(attempt) + ": " + why;
    if (!cancel_requested && static_cast<int>(attempt) <= spec.retries) {
      double delay = spec.retry_backoff_s * double(1u << std::min<uint32_t>(attempt - 1, 16));
      log(i, "warn", msg + "; retrying in " + std::to_string(delay) + "s");
      set_state(i, "retrying", msg);
      self->delayed_send(run->actors[i], std::chrono::milliseconds(static_cast<int64_t>(delay * 1000)),
                         retry_atom::value);
      return;
    }
    std::string final_state = cancel_requested ? "cancelled" : "failed";
    if (final_state == "failed" && first_error.empty())
      first_error = "node '" + n.id + "' failed: " + why;
    log(i, "error", msg);
    set_state(i, final_state, why);
    self->send(run->actors[i], giveup_atom::value, final_state);
  }

  void on_state(size_t i, const std::string& state, uint32_t attempt, const std::string& error) {
    auto& n = nodes[i];
    if (n.state == "failed" || n.state == "cancelled" || n.state == "skipped")
      return;
    n.attempts = std::max(n.attempts, attempt);
    set_state(i, state, error);
    if (state == "running") {
      auto& spec = *run->plan[i].spec;
      if (spec.timeout_s) {
        auto ms = static_cast<int64_t>(*spec.timeout_s * 1000);
        self->delayed_send(self, std::chrono::milliseconds(ms), expire_atom::value,
                           static_cast<uint32_t>(i), attempt);
      }
    }
  }

  void on_expire(size_t i, uint32_t attempt) {
    auto& n = nodes[i];
    if (n.state != "running" || n.attempts != attempt)
      return;
    run->stats[i]->timed_out = *run->plan[i].spec->timeout_s;
    run->stats[i]->cancelled = true; // the operator may poll is_cancelled
    auto& spec = *run->plan[i].spec;
    char buf[64];
    std::snprintf(buf, sizeof buf, "timed out after %gs", *spec.timeout_s);
    self->send(run->actors[i], expire_atom::value, attempt, std::string(buf));
  }

  void cancel() {
    if (cancel_requested)
      return;
    cancel_requested = true;
    run->cancelled = true;
    for (auto& s : run->stats)
      s->cancelled = true;
    log(SIZE_MAX, "warn", "run cancelled");
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (done[i])
        continue;
      auto& st = nodes[i].state;
      if (st != "succeeded" && st != "failed" && st != "skipped") {
        set_state(i, "cancelled", "run cancelled");
        self->send(run->actors[i], giveup_atom::value, std::string("cancelled"));
      }
    }
  }

  void on_done(size_t i) {
    if (done[i])
      return;
    done[i] = true;
    if (nodes[i].state == "running" || nodes[i].state == "pending")
      set_state(i, "cancelled", "");
    if (--remaining == 0)
      complete();
  }

  void complete() {
    if (finished)
      return;
    finished = true;
    run_result res;
    bool all_ok = true;
    for (size_t i = 0; i < nodes.size(); ++i) {
      res.nodes.push_back(snapshot(i));
      all_ok = all_ok && nodes[i].state == "succeeded";
      for (auto& [port, q] : run->stats[i]->max_queued) {
        auto& src = run->plan[i].inputs[port];
        auto& sp = run->plan[src.node];
        res.max_queued[sp.spec->id + "." + sp.op->outputs[src.port].name + "->" + nodes[i].id + "." +
                       run->plan[i].op->inputs[port].name] = q;
      }
    }
    res.state = cancel_requested ? "cancelled" : all_ok ? "succeeded" : "failed";
    res.error = cancel_requested ? "run cancelled" : first_error;
    if (res.state == "failed" && res.error.empty())
      res.error = "some nodes did not succeed";
    if (auto* rec = run->opts.record) {
      rec->state = res.state;
      rec->error = res.state == "succeeded" ? "" : res.error;
      rec->ended_ms = now_ms();
    }
    persist();
    emit_event({run_event::run_state, run->elapsed(), "", res.state, res.error, {}});
    run->result.set_value(std::move(res));
    self->quit();
  }
};

caf::behavior run_actor(caf::stateful_actor<run_state_t>* self, shared_ptr_t run) {
  auto& st = self->state;
  st.self = self;
  st.run = run;
  // set here, before any node exists: nodes send to run->run from their own threads,
  // and the spawning thread may not have stored the handle yet
  run->run = caf::actor_cast<caf::actor>(self);
  auto n = run->plan.size();
  st.done.assign(n, false);
  st.remaining = n;
  for (auto& p : run->plan) {
    node_record r;
    r.id = p.spec->id;
    r.op = p.op->name;
    st.nodes.push_back(r);
  }
  st.persist();
  for (size_t i = 0; i < n; ++i) {
    // detached: operator calls block (files, compute); on a thread of its own a node
    // never holds up the run actor or other nodes
    run->actors.push_back(run->opts.detached_nodes ? self->spawn<caf::detached>(node_actor, run, i)
                                                   : self->spawn(node_actor, run, i));
    self->monitor(run->actors.back());
  }
  // a node actor that dies without saying done (a bug, an exception escaping an
  // operator call) must not hang the run
  self->set_down_handler([=](caf::down_msg& dm) {
    // A node that quits normally has sent `done` first, but CAF may deliver the down
    // message ahead of it (system messages take priority): only abnormal exits count.
    if (!dm.reason || dm.reason == caf::exit_reason::normal)
      return;
    auto& s = self->state;
    for (size_t i = 0; i < s.run->actors.size(); ++i) {
      if (s.run->actors[i].address() != dm.source || s.done[i])
        continue;
      auto why = "node actor terminated unexpectedly: " + caf::to_string(dm.reason);
      if (s.first_error.empty())
        s.first_error = "node '" + s.nodes[i].id + "' failed: " + why;
      s.set_state(i, "failed", why);
      // unblock its neighbours: consumers see an abort, producers stop waiting for credit
      auto& plan = s.run->plan[i];
      for (size_t p = 0; p < plan.outputs.size(); ++p)
        for (auto& c : plan.outputs[p])
          self->send(s.run->actors[c.node], abort_atom::value, c.port);
      for (auto& src : plan.inputs)
        if (src.connected)
          self->send(s.run->actors[src.node], detach_atom::value, src.port, src.slot);
      s.on_done(i);
    }
  });
  for (auto& a : run->actors)
    self->send(a, start_atom::value);
  if (n == 0)
    st.complete();
  auto tick = tick_interval(run->opts);
  if (tick.count() > 0)
    self->delayed_send(self, tick, tick_atom::value);
  return {
    [=](state_atom, size_t i, const std::string& state, uint32_t attempt, const std::string& error) {
      self->state.on_state(i, state, attempt, error);
    },
    [=](failed_atom, size_t i, uint32_t attempt, const std::string& why) {
      self->state.on_failed(i, attempt, why);
    },
    [=](log_atom, size_t i, const std::string& level, const std::string& message) {
      self->state.log(i, level, message);
    },
    [=](expire_atom, uint32_t i, uint32_t attempt) { self->state.on_expire(i, attempt); },
    [=](done_atom, size_t i) { self->state.on_done(i); },
    [=](cancel_atom) { self->state.cancel(); },
    [=](tick_atom) {
      auto& s = self->state;
      if (s.run->opts.progress_interval_s > 0)
        for (size_t i = 0; i < s.nodes.size(); ++i)
          if (s.nodes[i].state == "running")
            s.emit_event({run_event::progress, s.run->elapsed(), s.nodes[i].id, "running", "", s.snapshot(i)});
      s.persist();
      self->delayed_send(self, tick_interval(s.run->opts), tick_atom::value);
    },
  };
}

} // namespace

run_result execute(caf::actor_system& sys, const graph_spec& graph, const operator_catalog& catalog,
                   const run_options& opts) {
  auto run = std::make_shared<run_shared>();
  run->graph = &graph;
  run->opts = opts;
  if (run->opts.credit == 0)
    run->opts.credit = 1;
  std::map<std::string, size_t> index;
  for (auto& n : graph.nodes) {
    node_plan p;
    p.spec = &n;
    p.op = catalog.find(n.op);
    if (p.op == nullptr) {
      run_result res;
      res.state = "failed";
      res.error = "unknown operator '" + n.op + "' (validate the graph first)";
      return res;
    }
    p.outputs.resize(p.op->outputs.size());
    p.inputs.resize(p.op->inputs.size());
    index[n.id] = run->plan.size();
    run->plan.push_back(std::move(p));
    run->stats.push_back(std::make_unique<node_stats>());
  }
  for (size_t i = 0; i < run->plan.size(); ++i) {
    auto& p = run->plan[i];
    for (auto& b : p.spec->inputs) {
      auto src = index.find(b.node);
      int in = p.op->input_index(b.port);
      if (src == index.end() || in < 0) {
        run_result res;
        res.state = "failed";
        res.error = "node '" + p.spec->id + "': unresolved input '" + b.port + "' (validate the graph first)";
        return res;
      }
      auto& sp = run->plan[src->second];
      int out = sp.op->output_index(b.node_port);
      if (out < 0) {
        run_result res;
        res.state = "failed";
        res.error = "node '" + p.spec->id + "': unresolved output '" + b.node + "." + b.node_port + "'";
        return res;
      }
      auto& consumers = sp.outputs[out];
      p.inputs[in] = {src->second, static_cast<uint32_t>(out), static_cast<uint32_t>(consumers.size()), true};
      consumers.push_back({i, static_cast<uint32_t>(in)});
    }
  }
  auto future = run->result.get_future();
  auto supervisor = sys.spawn(run_actor, run);
  bool cancel_sent = false;
  auto wait = std::chrono::milliseconds(opts.drive ? 0 : 50);
  while (future.wait_for(wait) != std::future_status::ready) {
    if (opts.drive)
      opts.drive();
    if (!cancel_sent && opts.cancel != nullptr && opts.cancel->load()) {
      caf::anon_send(supervisor, cancel_atom::value);
      cancel_sent = true;
    }
  }
  auto res = future.get();
  // the run actor and node actors have quit; drop handles so they can be released
  run->actors.clear();
  run->run = nullptr;
  return res;
}

} // namespace loom
