// select, rename, derive — column-wise transforms that stream frame by frame.
#include "expr.hpp"
#include "integrate.hpp"

#include <loom/frame.hpp>
#include <loom/params.hpp>
#include <loom/sdk.hpp>

#include <map>
#include <set>

namespace loom::ops::integrate {

// ---- select ---------------------------------------------------------------------------

class select_op final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "select", "0.1.0",
      "Keeps only the listed columns, in the listed order. Streams: each frame is handled as it "
      "arrives and nothing is held in memory. A listed column missing from the input fails the node "
      "with a message naming it and the columns present; listing a column twice is an error.",
      "- id: features\n  op: select\n  inputs: load\n  with: {columns: [sepal_length, petal_length, species]}\n"};
    s.inputs = {{"data", LOOM_MSG_FRAME, "input table"}};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the table with only the listed columns, in that order"}};
    s.params = {
      {"columns", LOOM_PARAM_LIST, true, nullptr, "names of the columns to keep, in output order"},
    };
    return s;
  }

  explicit select_op(sdk::context& ctx) : columns_(sdk::param_strings(ctx, "columns")) {
    if (columns_.empty())
      throw sdk::error("select: columns: name at least one column to keep");
    std::set<std::string> seen;
    for (auto& c : columns_)
      if (!seen.insert(c).second)
        throw sdk::error("select: columns: '" + c + "' is listed twice");
  }

  void on_input(sdk::context& ctx, uint32_t, const sdk::message& msg) override {
    auto f = sdk::frame_view::of(msg);
    std::vector<size_t> cols;
    bool identity = columns_.size() == f.num_columns();
    for (auto& n : columns_) {
      cols.push_back(f.require(n));
      identity = identity && cols.back() == cols.size() - 1;
    }
    if (identity) {
      ctx.forward_message(0, msg);
      return;
    }
    sdk::frame_builder b;
    for (auto c : cols)
      b.add_column(std::string(f.name(c)), f.type(c), f.nullable(c));
    for (size_t r = 0; r < f.num_rows(); ++r) {
      for (size_t k = 0; k < cols.size(); ++k)
        b.append_from(k, f, cols[k], r);
      b.end_row();
    }
    ctx.emit(0, b.finish(f.sequence()));
  }

private:
  std::vector<std::string> columns_;
};

// ---- rename ---------------------------------------------------------------------------

class rename_op final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "rename", "0.1.0",
      "Renames columns (old name -> new name), keeping their order, types and values. Streams: each "
      "frame is handled as it arrives. An old name missing from the input, or a new name that "
      "collides with another column, fails the node. Names may be swapped ({a: b, b: a}).",
      "- id: tidy\n  op: rename\n  inputs: load\n  with: {columns: {species: label, \"sepal length\": sepal_length}}\n"};
    s.inputs = {{"data", LOOM_MSG_FRAME, "input table"}};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the same table with the columns renamed"}};
    s.params = {
      {"columns", LOOM_PARAM_MAP, true, nullptr, "old name -> new name"},
    };
    return s;
  }

  explicit rename_op(sdk::context& ctx) : rename_(sdk::param_string_map(ctx, "columns")) {
    if (rename_.empty())
      throw sdk::error("rename: columns: name at least one column to rename");
    for (auto& [from, to] : rename_)
      if (to.empty())
        throw sdk::error("rename: columns: the new name of '" + from + "' is empty");
  }

  void on_input(sdk::context& ctx, uint32_t, const sdk::message& msg) override {
    auto f = sdk::frame_view::of(msg);
    for (auto& [from, to] : rename_)
      f.require(from);
    sdk::frame_builder b;
    std::set<std::string> names;
    for (size_t c = 0; c < f.num_columns(); ++c) {
      std::string name(f.name(c));
      if (auto it = rename_.find(name); it != rename_.end())
        name = it->second;
      if (!names.insert(name).second)
        throw sdk::error("rename: the output would have two columns named '" + name + "' (columns: " +
                         f.describe_columns() + ")");
      b.add_column(name, f.type(c), f.nullable(c));
    }
    for (size_t r = 0; r < f.num_rows(); ++r) {
      for (size_t c = 0; c < f.num_columns(); ++c)
        b.append_from(c, f, c, r);
      b.end_row();
    }
    ctx.emit(0, b.finish(f.sequence()));
  }

private:
  std::map<std::string, std::string> rename_;
};

// ---- derive ---------------------------------------------------------------------------

class derive_op final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "derive", "0.1.0",
      "Adds (or replaces) columns computed per row from expressions over the other columns. "
      "Streams: each frame is handled as it arrives; nothing is held in memory. "
      "`columns` maps a column name to an expression; a name that exists in the input is replaced in "
      "place, new names are appended after the input's columns in the order `columns` lists them. "
      "An expression may use other derived columns: they are computed first "
      "(dependency order; a cycle is an error); a column's own name in its expression means the input "
      "column. "
      "Language: numbers (1, 2.5, 1e3), strings in single or double quotes (backslash escapes \\n \\t "
      "\\' \\\" \\\\), true, false, null, column names (letters, digits, _ and .; any other name in "
      "backquotes: `sepal length`), + - * / % and unary -, comparisons == != < <= > >= (numbers with "
      "numbers, strings with strings, bools with bools), and, or, not (SQL three-valued logic), "
      "parentheses. Precedence, loosest first: or; and; not; comparisons (do not chain); + -; * / %; "
      "unary -. Functions: if(cond, a, b) (a null cond takes b), abs, sqrt, log (natural), exp, "
      "round(x[, digits]) (half away from zero), floor, ceil, min(a, b, ...), max(a, b, ...) (nulls "
      "skipped; numbers or strings), coalesce(a, b, ...), is_null(x), lower, upper, trim (ASCII), "
      "length (characters), concat(a, b, ...) (any values as text, nulls skipped), substr(s, start[, "
      "len]) (start counts characters from 1), contains(s, sub), starts_with(s, p), ends_with(s, p), "
      "replace(s, from, to) (every occurrence), to_string(x), to_number(s) (f64; empty text gives "
      "null). "
      "Types: i64 + - * % i64 gives i64 (% takes the sign of the dividend); any other arithmetic, "
      "and every /, gives f64; comparisons give bool; string functions give string. Nulls propagate "
      "through arithmetic and functions (null + 1 is null) except where stated; division or % by zero, "
      "sqrt of a negative number and log of a number <= 0 give null. Derived columns are nullable; an "
      "expression that is always null gives a string column. "
      "Errors: a syntax error, an unknown function or a type error that the literals show (such as "
      "'abc' * 2) fails the node at creation, and an unknown column or a type error against the "
      "input's column types fails it at the first frame; each message names the column, the "
      "expression and the 0-based character position. A row on which a value fails (to_number of "
      "text that is not a number, i64 overflow) is rejected: it goes to `rejects` with the reason "
      "and is counted, so rows in = rows out + rows rejected.",
      "- id: features\n  op: derive\n  inputs: load\n  with:\n    columns:\n"
      "      ratio: \"petal_length / petal_width\"\n"
      "      big: \"if(petal_length > 5 and not is_null(species), 'yes', 'no')\"\n"
      "      name: \"upper(trim(`species name`))\"\n"};
    s.inputs = {{"data", LOOM_MSG_FRAME, "input table"}};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the input columns (replaced where derived) then the new columns"},
                 {"rejects", LOOM_MSG_FRAME, "rows on which an expression failed: reason, then the input row"}};
    s.params = {
      {"columns", LOOM_PARAM_MAP, true, nullptr, "column name -> expression (see the language above)"},
    };
    return s;
  }

  explicit derive_op(sdk::context& ctx) {
    auto pairs = sdk::param_string_pairs(ctx, "columns");
    std::map<std::string, std::string> defs;
    for (auto& [name, text] : pairs) {
      if (!defs.emplace(name, text).second)
        throw sdk::error("derive: columns: '" + name + "' is given twice");
      order_.push_back(name);
    }
    if (defs.empty())
      throw sdk::error("derive: columns: give at least one column: expression");
    std::map<std::string, std::unique_ptr<expr::node>> parsed;
    for (auto& [name, text] : defs) {
      if (name.empty())
        throw sdk::error("derive: columns: a column name is empty");
      try {
        parsed[name] = expr::parser(text).parse();
      } catch (const expr::syntax_error& e) {
        fail(name, text, e);
      }
    }
    // dependency order: references to other derived names are edges
    std::map<std::string, int> state; // 1: visiting, 2: done
    std::function<void(const std::string&, std::vector<std::string>&)> visit =
      [&](const std::string& name, std::vector<std::string>& path) {
        if (state[name] == 2)
          return;
        if (state[name] == 1) {
          std::string cycle;
          bool in = false;
          for (auto& p : path) {
            in = in || p == name;
            if (in)
              cycle += "'" + p + "' -> ";
          }
          throw sdk::error("derive: columns refer to each other in a cycle: " + cycle + "'" + name + "'");
        }
        state[name] = 1;
        path.push_back(name);
        std::vector<std::string> refs;
        collect_refs(*parsed[name], refs);
        for (auto& r : refs)
          if (r != name && parsed.count(r))
            visit(r, path);
        path.pop_back();
        state[name] = 2;
        cols_.push_back({name, defs[name], std::move(parsed[name]), -1, -1, expr::vtype::any});
      };
    for (auto& [name, text] : defs) {
      std::vector<std::string> path;
      visit(name, path);
    }
    // check what can be checked before the input's types are known
    for (size_t k = 0; k < cols_.size(); ++k) {
      expr::checker chk([&](const std::string& n, expr::vtype& t, int& slot) {
        slot = -1;
        t = derived_type(n, k);
        return true;
      });
      try {
        cols_[k].type = chk.check(*cols_[k].root);
      } catch (const expr::syntax_error& e) {
        fail(cols_[k].name, cols_[k].text, e);
      }
    }
  }

  void on_input(sdk::context& ctx, uint32_t, const sdk::message& msg) override {
    auto f = sdk::frame_view::of(msg);
    if (guard_.check(f))
      bind(f);
    cur_ = &f;
    rejects_.start(f.schema()); // rows of this frame only; the columns never change
    for (size_t r = 0; r < f.num_rows(); ++r) {
      row_ = r;
      size_t k = 0;
      try {
        for (k = 0; k < cols_.size(); ++k)
          eval_.eval(*cols_[k].root, vals_[k]);
      } catch (const expr::row_error& e) {
        rejects_.add("derive: column '" + cols_[k].name + "': " + e.what, f, r);
        continue;
      }
      for (size_t c = 0; c < out_map_.size(); ++c) {
        int src = out_map_[c];
        if (src >= 0)
          out_.append_from(c, f, static_cast<size_t>(src), r);
        else
          append(c, vals_[static_cast<size_t>(-src - 1)]);
      }
      out_.end_row();
    }
    cur_ = nullptr;
    ctx.emit(0, out_.finish(f.sequence()));
    rejects_.flush(ctx, 1);
  }

private:
  struct derived {
    std::string name, text;
    std::unique_ptr<expr::node> root;
    int input_col;  ///< the input column it replaces, or -1
    int out_col;
    expr::vtype type;
  };

  [[noreturn]] static void fail(const std::string& name, const std::string& text, const expr::syntax_error& e,
                                 const std::string& more = "") {
    throw sdk::error("derive: column '" + name + "': " + e.what + " at position " + std::to_string(e.pos) +
                     " in '" + text + "'" + more);
  }

  static void collect_refs(const expr::node& n, std::vector<std::string>& out) {
    if (n.k == expr::kind::column)
      out.push_back(n.name);
    for (auto& a : n.args)
      collect_refs(*a, out);
  }

  /// The type of derived column `n` as seen from cols_[k] (any when not derived before k).
  expr::vtype derived_type(const std::string& n, size_t k) const {
    for (size_t j = 0; j < k; ++j)
      if (cols_[j].name == n && n != cols_[k].name)
        return cols_[j].type;
    return expr::vtype::any;
  }

  void bind(const sdk::frame_view& f) {
    std::vector<expr::getter> slots;
    // slots 0..cols_-1: derived values of this row; then input columns on demand
    for (size_t k = 0; k < cols_.size(); ++k)
      slots.push_back([this, k](expr::value& out) { out = vals_[k]; });
    std::map<std::string, int> input_slots;
    for (size_t k = 0; k < cols_.size(); ++k) {
      expr::checker chk([&](const std::string& n, expr::vtype& t, int& slot) {
        for (size_t j = 0; j < k; ++j)
          if (cols_[j].name == n && n != cols_[k].name) {
            t = cols_[j].type;
            slot = static_cast<int>(j);
            return true;
          }
        int c = f.index(n);
        if (c < 0)
          return false;
        t = expr::from_col(f.type(static_cast<size_t>(c)));
        auto [it, fresh] = input_slots.emplace(n, static_cast<int>(slots.size()));
        if (fresh)
          slots.push_back(input_getter(static_cast<size_t>(c)));
        slot = it->second;
        return true;
      });
      try {
        cols_[k].type = chk.check(*cols_[k].root);
      } catch (const expr::syntax_error& e) {
        std::string more;
        if (e.what.starts_with("unknown column"))
          more = " (columns: " + f.describe_columns() + ")";
        fail(cols_[k].name, cols_[k].text, e, more);
      }
    }
    eval_ = expr::evaluator(std::move(slots));
    vals_.assign(cols_.size(), expr::value{});
    // output: the input's columns, derived ones replaced in place, then new ones
    out_ = sdk::frame_builder();
    out_map_.clear();
    for (size_t c = 0; c < f.num_columns(); ++c) {
      std::string name(f.name(c));
      int src = static_cast<int>(c);
      sdk::field fl{name, f.type(c), f.nullable(c)};
      for (size_t k = 0; k < cols_.size(); ++k)
        if (cols_[k].name == name) {
          src = -static_cast<int>(k) - 1;
          fl = {name, expr::to_col(cols_[k].type), true};
        }
      out_.add_column(fl.name, fl.type, fl.nullable);
      out_map_.push_back(src);
    }
    for (auto& name : new_names(f))
      for (size_t k = 0; k < cols_.size(); ++k)
        if (cols_[k].name == name) {
          out_.add_column(name, expr::to_col(cols_[k].type), true);
          out_map_.push_back(-static_cast<int>(k) - 1);
        }
  }

  /// The derived names that are not input columns, in the order `columns` gives them.
  std::vector<std::string> new_names(const sdk::frame_view& f) const {
    std::vector<std::string> names;
    for (auto& n : order_)
      if (f.index(n) < 0)
        names.push_back(n);
    return names;
  }

  expr::getter input_getter(size_t c) {
    auto t = cur_type(c);
    return [this, c, t](expr::value& out) {
      const auto& f = *cur_;
      if (!f.valid(c, row_)) {
        out = expr::value{};
        return;
      }
      switch (t) {
        case col_type::f32: out = expr::value::of_f64(f.f32(c, row_)); return;
        case col_type::f64: out = expr::value::of_f64(f.f64(c, row_)); return;
        case col_type::i64: out = expr::value::of_i64(f.i64(c, row_)); return;
        case col_type::boolean: out = expr::value::of_bool(f.boolean(c, row_)); return;
        case col_type::string:
          out.t = expr::vtype::string;
          out.s.assign(f.str(c, row_));
          return;
      }
    };
  }
  col_type cur_type(size_t c) const { return guard_.schema()[c].type; }

  void append(size_t c, const expr::value& v) {
    if (v.null())
      return out_.append_null(c);
    switch (out_.column(c).type) {
      case col_type::i64: return out_.append_i64(c, v.i);
      case col_type::f64: return out_.append_f64(c, v.num());
      case col_type::boolean: return out_.append_bool(c, v.b);
      case col_type::string: return out_.append_string(c, v.text());
      case col_type::f32: return out_.append_f32(c, static_cast<float>(v.num()));
    }
  }

  std::vector<derived> cols_;
  std::vector<std::string> order_; ///< derived names in the order the graph lists them
  schema_guard guard_{"derive"};
  expr::evaluator eval_{{}};
  std::vector<expr::value> vals_;
  sdk::frame_builder out_;
  std::vector<int> out_map_; ///< per output column: input column, or -(derived index)-1
  rejects_builder rejects_;
  const sdk::frame_view* cur_ = nullptr;
  size_t row_ = 0;
};

const sdk::op_registration select_registration = sdk::registration<select_op>;
const sdk::op_registration rename_registration = sdk::registration<rename_op>;
const sdk::op_registration derive_registration = sdk::registration<derive_op>;

} // namespace loom::ops::integrate
