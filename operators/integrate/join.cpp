// join — a hash join: the right table is held in memory, the left one streams.
#include "integrate.hpp"

#include <loom/frame.hpp>
#include <loom/params.hpp>
#include <loom/sdk.hpp>

#include <cmath>
#include <deque>
#include <set>
#include <unordered_map>

namespace loom::ops::integrate {

class join_op final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "join", "0.1.0",
      "Joins two tables on equal key values (a hash join). The right table (the build side) is "
      "held in memory, as a hash table on its keys; the left table (the probe side) streams, so it "
      "may be larger than memory: put the smaller table on the right. Left frames that arrive before "
      "the right input has ended are held until it ends, then probed; later ones are probed as they "
      "arrive. `how`: inner (matching pairs only), left (also left rows without a match, right "
      "columns null), right (also right rows without a match, emitted at the end, left columns "
      "null), outer (both). Every matching pair is emitted (duplicate keys on both sides give every "
      "combination), in left row order, then right arrival order. SQL semantics for nulls: a null "
      "(or NaN) in any key column never matches anything; such rows still appear in the left, "
      "right and outer joins as unmatched rows. Keys are paired by `on` (same names on both sides) "
      "or `left_on`/`right_on`. Paired key columns must both be numbers (i64, f64, f32: compared by "
      "value, so 2 matches 2.0), both bool or both string; any other pairing fails the node. "
      "Output columns: every left column, then the right columns, except that a right key column "
      "with the same name as its left key appears once (in the left key's place, with the right "
      "row's value for unmatched right rows, promoted to f64 when the two sides are i64 and f64). "
      "Other names present on both sides get `suffixes` (left, right). Left columns are nullable in "
      "right and outer joins, right columns in left and outer joins. Output frames hold at most `frame_rows` rows. Rows are not rejected: rows "
      "that find no match in an inner join are simply not part of the result, so the rows in/out "
      "counters do not balance the way they do for filters. If an input sends no frame at all, its "
      "columns are unknown and left out of the output.",
      "- id: enriched\n  op: join\n  inputs: {left: events.out, right: users.out}\n"
      "  with: {on: [user_id], how: left}\n"
      "- id: by_two_keys\n  op: join\n  inputs: {left: sales.out, right: prices.out}\n"
      "  with: {left_on: [shop, item], right_on: [shop_id, item_id], how: outer, suffixes: [\"\", _price]}\n"};
    s.inputs = {{"left", LOOM_MSG_FRAME, "the probe side: streamed, may be larger than memory"},
                {"right", LOOM_MSG_FRAME, "the build side: held in memory as a hash table"}};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the joined rows: left columns, then right columns"}};
    s.params = {
      {"on", LOOM_PARAM_LIST, false, nullptr, "key columns, named the same on both sides"},
      {"left_on", LOOM_PARAM_LIST, false, nullptr, "key columns of the left table (with right_on, instead of on)"},
      {"right_on", LOOM_PARAM_LIST, false, nullptr, "key columns of the right table, paired in order with left_on"},
      {"how", LOOM_PARAM_STRING, false, "\"inner\"", "inner, left, right or outer"},
      {"suffixes", LOOM_PARAM_LIST, false, "[\"_left\", \"_right\"]",
       "two suffixes added to a non-key column name present on both sides: [left, right]"},
      {"frame_rows", LOOM_PARAM_INT, false, "8192",
       "most rows in one output frame: the matches of one left frame (many, with duplicate keys on both "
       "sides) are emitted as several frames"},
    };
    return s;
  }

  explicit join_op(sdk::context& ctx) {
    auto on = sdk::param_strings(ctx, "on");
    left_on_ = sdk::param_strings(ctx, "left_on");
    right_on_ = sdk::param_strings(ctx, "right_on");
    if (!on.empty()) {
      if (!left_on_.empty() || !right_on_.empty())
        throw sdk::error("join: give either on or left_on and right_on, not both");
      left_on_ = right_on_ = on;
    } else if (left_on_.empty() || right_on_.empty()) {
      throw sdk::error("join: name the key columns with on (or with left_on and right_on)");
    }
    if (left_on_.size() != right_on_.size())
      throw sdk::error("join: left_on names " + std::to_string(left_on_.size()) + " columns but right_on names " +
                       std::to_string(right_on_.size()));
    std::string how = ctx.param_string("how");
    if (how == "inner")
      keep_left_ = keep_right_ = false;
    else if (how == "left")
      keep_left_ = true;
    else if (how == "right")
      keep_right_ = true;
    else if (how == "outer")
      keep_left_ = keep_right_ = true;
    else
      throw sdk::error("join: how must be inner, left, right or outer, not '" + how + "'");
    suffixes_ = sdk::param_strings(ctx, "suffixes");
    auto frame_rows = ctx.param_int("frame_rows");
    if (frame_rows <= 0)
      throw sdk::error("join: frame_rows must be positive, got " + std::to_string(frame_rows));
    frame_rows_ = static_cast<size_t>(frame_rows);
    if (suffixes_.size() != 2)
      throw sdk::error("join: suffixes must be two strings [left, right], got " + std::to_string(suffixes_.size()));
  }

  void on_input(sdk::context& ctx, uint32_t port, const sdk::message& msg) override {
    auto f = sdk::frame_view::of(msg);
    if (port == 1) {
      if (right_.check(f))
        right_keys_ = key_columns(f, right_on_, "right");
      add_right(msg);
      return;
    }
    if (left_.check(f))
      left_keys_ = key_columns(f, left_on_, "left");
    auto bytes = msg.bytes();
    pending_.emplace_back(bytes.begin(), bytes.end());
    // probe at most two held frames per call, so that what one call emits stays bounded
    if (right_done_)
      for (int i = 0; i < 2 && !pending_.empty(); ++i)
        probe_next(ctx);
  }

  void on_input_end(sdk::context&, uint32_t port) override {
    if (port == 1)
      right_done_ = true;
  }

  bool produce(sdk::context& ctx) override {
    if (ctx.cancelled())
      throw sdk::error("cancelled", LOOM_ERR_CANCELLED);
    if (!pending_.empty()) {
      probe_next(ctx);
      return pending_.empty() && !keep_right_;
    }
    if (!keep_right_)
      return true;
    // right rows that no left row matched, one right frame per call
    while (next_unmatched_ < right_frames_.size()) {
      size_t fi = next_unmatched_++;
      if (emit_unmatched(ctx, fi))
        return next_unmatched_ == right_frames_.size();
    }
    return true;
  }

private:
  enum class key_class { number, boolean, string };
  static key_class class_of(col_type t) {
    return t == col_type::string ? key_class::string : t == col_type::boolean ? key_class::boolean : key_class::number;
  }

  std::vector<size_t> key_columns(const sdk::frame_view& f, const std::vector<std::string>& names, const char* side) {
    std::vector<size_t> out;
    for (auto& n : names) {
      int c = f.index(n);
      if (c < 0)
        throw sdk::error("join: no key column '" + n + "' in the " + side + " input (columns: " +
                           f.describe_columns() + ")",
                         LOOM_ERR_BAD_DATA);
      out.push_back(static_cast<size_t>(c));
    }
    if (left_.known() && right_.known())
      check_key_types();
    return out;
  }

  void check_key_types() const {
    auto& ls = left_.schema();
    auto& rs = right_.schema();
    for (size_t k = 0; k < left_on_.size(); ++k) {
      int lc = index_of(ls, left_on_[k]), rc = index_of(rs, right_on_[k]);
      if (lc < 0 || rc < 0)
        continue; // reported by key_columns
      auto lt = ls[static_cast<size_t>(lc)].type, rt = rs[static_cast<size_t>(rc)].type;
      if (class_of(lt) != class_of(rt))
        throw sdk::error("join: key '" + left_on_[k] + "' is " + sdk::to_string(lt) + " on the left but '" +
                           right_on_[k] + "' is " + sdk::to_string(rt) +
                           " on the right (keys must both be numbers, both bool or both string)",
                         LOOM_ERR_BAD_DATA);
    }
  }

  static int index_of(const std::vector<sdk::field>& s, const std::string& n) {
    for (size_t i = 0; i < s.size(); ++i)
      if (s[i].name == n)
        return static_cast<int>(i);
    return -1;
  }

  /// The key of a row as bytes; false when a key value is null or NaN (never matches).
  /// Numbers that are whole and fit in i64 are encoded as i64, so 2 and 2.0 are equal.
  static bool encode(const sdk::frame_view& f, const std::vector<size_t>& cols, size_t row, std::string& out) {
    out.clear();
    for (size_t c : cols) {
      if (!f.valid(c, row))
        return false;
      switch (f.type(c)) {
        case col_type::string: {
          auto s = f.str(c, row);
          uint32_t n = static_cast<uint32_t>(s.size());
          out.push_back('s');
          out.append(reinterpret_cast<const char*>(&n), sizeof n);
          out.append(s);
          break;
        }
        case col_type::boolean: out.push_back(f.boolean(c, row) ? 'T' : 'F'); break;
        case col_type::i64: {
          int64_t v = f.i64(c, row);
          out.push_back('i');
          out.append(reinterpret_cast<const char*>(&v), sizeof v);
          break;
        }
        case col_type::f32:
        case col_type::f64: {
          double d = f.number(c, row);
          if (std::isnan(d))
            return false;
          if (d == std::trunc(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
            int64_t v = static_cast<int64_t>(d);
            out.push_back('i');
            out.append(reinterpret_cast<const char*>(&v), sizeof v);
          } else {
            out.push_back('d');
            out.append(reinterpret_cast<const char*>(&d), sizeof d);
          }
          break;
        }
      }
    }
    return true;
  }

  void add_right(const sdk::message& msg) {
    auto bytes = msg.bytes();
    right_bytes_.emplace_back(bytes.begin(), bytes.end());
    right_frames_.push_back(sdk::frame_view::of(right_bytes_.back()));
    auto& f = right_frames_.back();
    uint32_t fi = static_cast<uint32_t>(right_frames_.size() - 1);
    matched_.emplace_back(f.num_rows(), false);
    std::string key;
    for (size_t r = 0; r < f.num_rows(); ++r)
      if (encode(f, right_keys_, r, key))
        table_[key].push_back({fi, static_cast<uint32_t>(r)});
  }

  /// Output column: from the left (col >= 0), the right (rcol >= 0) or a shared key (both).
  struct out_col {
    int lcol = -1, rcol = -1;
  };

  void ensure_schema() {
    if (schema_ready_)
      return;
    schema_ready_ = true;
    std::vector<sdk::field> ls = left_.known() ? left_.schema() : std::vector<sdk::field>{};
    std::vector<sdk::field> rs = right_.known() ? right_.schema() : std::vector<sdk::field>{};
    // right key columns named like their left key are merged into it
    std::vector<int> merged_into(rs.size(), -1);
    if (left_.known() && right_.known())
      for (size_t k = 0; k < left_on_.size(); ++k)
        if (left_on_[k] == right_on_[k])
          merged_into[right_keys_[k]] = static_cast<int>(left_keys_[k]);
    std::set<std::string> lnames, rnames;
    for (auto& f : ls)
      lnames.insert(f.name);
    for (size_t c = 0; c < rs.size(); ++c)
      if (merged_into[c] < 0)
        rnames.insert(rs[c].name);
    std::vector<sdk::field> out;
    for (size_t c = 0; c < ls.size(); ++c) {
      out_col oc;
      oc.lcol = static_cast<int>(c);
      sdk::field f = ls[c];
      f.nullable = f.nullable || keep_right_;
      for (size_t rc = 0; rc < rs.size(); ++rc)
        if (merged_into[rc] == static_cast<int>(c)) {
          oc.rcol = static_cast<int>(rc);
          f.type = promote(ls[c].type, rs[rc].type);
          f.nullable = ls[c].nullable || rs[rc].nullable;
        }
      if (oc.rcol < 0 && rnames.count(f.name))
        f.name += suffixes_[0];
      cols_.push_back(oc);
      out.push_back(f);
    }
    if (!left_.known()) // only right rows will come: keep the key values under their right names
      for (auto& c : merged_into)
        c = -1;
    for (size_t c = 0; c < rs.size(); ++c) {
      if (merged_into[c] >= 0)
        continue;
      out_col oc;
      oc.rcol = static_cast<int>(c);
      sdk::field f = rs[c];
      f.nullable = f.nullable || keep_left_;
      if (lnames.count(f.name))
        f.name += suffixes_[1];
      cols_.push_back(oc);
      out.push_back(f);
    }
    std::set<std::string> seen;
    for (auto& f : out)
      if (!seen.insert(f.name).second)
        throw sdk::error("join: the output would have two columns named '" + f.name +
                           "' (change suffixes, or rename a column first)");
    out_ = sdk::frame_builder(out);
  }

  /// Appends one output row: left row `lr` of `lf` (or none) with right row `rr` of `rf` (or none).
  void append_row(const sdk::frame_view* lf, size_t lr, const sdk::frame_view* rf, size_t rr) {
    for (size_t c = 0; c < cols_.size(); ++c) {
      auto& oc = cols_[c];
      if (oc.lcol >= 0 && lf)
        append_converted(out_, c, *lf, static_cast<size_t>(oc.lcol), lr);
      else if (oc.rcol >= 0 && rf)
        append_converted(out_, c, *rf, static_cast<size_t>(oc.rcol), rr);
      else
        out_.append_null(c);
    }
    out_.end_row();
  }

  /// Emits the rows built so far once there are frame_rows of them (all, if `all`).
  void flush(sdk::context& ctx, bool all) {
    if (out_.num_rows() >= frame_rows_ || (all && out_.num_rows() > 0))
      ctx.emit(0, out_.finish(seq_++));
  }

  void probe_next(sdk::context& ctx) {
    ensure_schema();
    auto bytes = std::move(pending_.front());
    pending_.pop_front();
    auto f = sdk::frame_view::of(bytes);
    std::string key;
    for (size_t r = 0; r < f.num_rows(); ++r) {
      const std::vector<std::pair<uint32_t, uint32_t>>* hits = nullptr;
      if (encode(f, left_keys_, r, key))
        if (auto it = table_.find(key); it != table_.end())
          hits = &it->second;
      if (hits == nullptr) {
        if (keep_left_) {
          append_row(&f, r, nullptr, 0);
          flush(ctx, false);
        }
        continue;
      }
      for (auto [fi, rr] : *hits) {
        append_row(&f, r, &right_frames_[fi], rr);
        matched_[fi][rr] = true;
        flush(ctx, false);
      }
    }
    flush(ctx, true);
  }

  bool emit_unmatched(sdk::context& ctx, size_t fi) {
    ensure_schema();
    auto& f = right_frames_[fi];
    bool any = false;
    for (size_t r = 0; r < f.num_rows(); ++r)
      if (!matched_[fi][r]) {
        append_row(nullptr, 0, &f, r);
        any = true;
        flush(ctx, false);
      }
    flush(ctx, true);
    return any;
  }

  std::vector<std::string> left_on_, right_on_, suffixes_;
  bool keep_left_ = false, keep_right_ = false;
  schema_guard left_{"join: left input"}, right_{"join: right input"};
  std::vector<size_t> left_keys_, right_keys_;
  // the build side
  std::deque<std::vector<uint8_t>> right_bytes_;
  std::vector<sdk::frame_view> right_frames_;
  std::vector<std::vector<bool>> matched_;
  std::unordered_map<std::string, std::vector<std::pair<uint32_t, uint32_t>>> table_;
  bool right_done_ = false;
  // the probe side
  std::deque<std::vector<uint8_t>> pending_;
  // output
  bool schema_ready_ = false;
  std::vector<out_col> cols_;
  sdk::frame_builder out_;
  size_t next_unmatched_ = 0, frame_rows_ = 8192;
  uint64_t seq_ = 0;
};

const sdk::op_registration join_registration = sdk::registration<join_op>;

} // namespace loom::ops::integrate
