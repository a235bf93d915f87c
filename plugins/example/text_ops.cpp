// loom-example — a template plugin with two operators:
//
//   example.upper   upper-cases the named string columns
//   example.filter  keeps the rows whose numeric column is >= a minimum
//
// Copy this folder, rename the operators, and build it with find_package(Loom) +
// loom_add_plugin (see CMakeLists.txt and README.md). docs/plugins.md explains every
// piece used here.
#include <loom/frame.hpp> // frame_view, frame_builder
#include <loom/sdk.hpp>   // op, op_spec, context, error, LOOM_PLUGIN

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace example {

namespace sdk = loom::sdk;

namespace {

// -- a list parameter ---------------------------------------------------------------
//
// The host validates parameter types against the schema, but lists and maps reach the
// operator only as JSON text (ctx.params_json()). This small reader pulls one list of
// strings out of that text so that the example needs nothing but the Loom SDK. A
// plugin that already links a JSON library (e.g. nlohmann_json, through
// loom_add_plugin(... LINK_LIBRARIES ...)) parses params_json() with it instead.
class json_reader {
public:
  explicit json_reader(std::string_view text) : s_(text) {}

  /// The list of strings stored under `key` in the top-level object.
  std::vector<std::string> string_list(const std::string& key) {
    expect('{');
    if (peek() == '}')
      throw sdk::error("parameter '" + key + "' is missing");
    while (true) {
      std::string k = string();
      expect(':');
      if (k == key)
        return strings_array(key);
      skip_value();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      throw sdk::error("parameter '" + key + "' is missing");
    }
  }

private:
  char peek() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t'))
      ++i_;
    return i_ < s_.size() ? s_[i_] : '\0';
  }
  void expect(char c) {
    if (peek() != c)
      throw sdk::error(std::string("malformed parameter JSON: expected '") + c + "'", LOOM_ERR_INTERNAL);
    ++i_;
  }
  std::vector<std::string> strings_array(const std::string& key) {
    if (peek() != '[')
      throw sdk::error("parameter '" + key + "' must be a list of column names");
    ++i_;
    std::vector<std::string> out;
    if (peek() == ']') {
      ++i_;
      return out;
    }
    while (true) {
      if (peek() != '"')
        throw sdk::error("parameter '" + key + "': every entry must be a column name (a string)");
      out.push_back(string());
      if (peek() == ']') {
        ++i_;
        return out;
      }
      expect(',');
    }
  }
  std::string string() {
    expect('"');
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size())
        break;
      switch (char e = s_[i_++]) {
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': append_utf8(out, code_point()); break;
        default: out += e; // \" \\ and \/
      }
    }
    expect('"');
    return out;
  }
  uint32_t hex4() {
    if (i_ + 4 > s_.size())
      throw sdk::error("malformed parameter JSON: short \\u escape", LOOM_ERR_INTERNAL);
    uint32_t v = static_cast<uint32_t>(std::strtoul(std::string(s_.substr(i_, 4)).c_str(), nullptr, 16));
    i_ += 4;
    return v;
  }
  uint32_t code_point() {
    uint32_t cp = hex4();
    if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(i_, 2) == "\\u") { // surrogate pair
      i_ += 2;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4() - 0xDC00);
    }
    return cp;
  }
  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  void skip_value() {
    char c = peek();
    if (c == '"') {
      string();
    } else if (c == '{' || c == '[') {
      char close = c == '{' ? '}' : ']';
      ++i_;
      if (peek() == close) {
        ++i_;
        return;
      }
      while (true) {
        if (c == '{') {
          string();
          expect(':');
        }
        skip_value();
        if (peek() == close) {
          ++i_;
          return;
        }
        expect(',');
      }
    } else { // number, true, false, null
      while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != '}' && s_[i_] != ']')
        ++i_;
    }
  }

  std::string_view s_;
  size_t i_ = 0;
};

/// "a (string), b (f64)": the columns of a frame, for error messages.
std::string list_columns(const sdk::frame_view& f) {
  std::string out;
  for (size_t c = 0; c < f.num_columns(); ++c)
    out += (c ? ", " : "") + std::string(f.name(c)) + " (" + sdk::to_string(f.type(c)) + ")";
  return out;
}

/// Index of column `name`, or an error that names it and lists the columns present.
size_t require_column(const sdk::frame_view& f, const std::string& name) {
  int i = f.index(name);
  if (i < 0)
    throw sdk::error("no column '" + name + "' in the input (columns: " + list_columns(f) + ")",
                     LOOM_ERR_BAD_DATA);
  return static_cast<size_t>(i);
}

} // namespace

// -- example.upper ----------------------------------------------------------------------

class upper_op final : public sdk::op {
public:
  // What the host (and `loom ops describe`) knows about the operator.
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "example.upper", "0.1.0",
      "Upper-cases the string columns named in `columns` (ASCII letters; other bytes are kept). "
      "Other columns and nulls pass through unchanged. A named column that is missing or is "
      "not a string fails the node with a message listing the columns present.",
      "- id: shout\n  op: example.upper\n  inputs: load\n  with: {columns: [species]}\n"};
    s.inputs = {{"data", LOOM_MSG_FRAME, "input table"}};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the table with the named columns upper-cased"}};
    s.params = {
      {"columns", LOOM_PARAM_LIST, true, nullptr, "names of the string columns to upper-case"},
    };
    return s;
  }

  // One instance per graph node (and per attempt): read and check parameters here, so
  // that a bad parameter fails before any data flows.
  explicit upper_op(sdk::context& ctx) {
    columns_ = json_reader(ctx.params_json()).string_list("columns");
    if (columns_.empty())
      throw sdk::error("columns: name at least one column to upper-case");
  }

  // Called once per frame, in order. `msg` is borrowed: build a new frame and emit it.
  void on_input(sdk::context& ctx, uint32_t, const sdk::message& msg) override {
    auto f = sdk::frame_view::of(msg); // verifies the bytes; throws on garbage
    std::vector<bool> upper(f.num_columns(), false);
    for (auto& name : columns_) {
      size_t c = require_column(f, name);
      if (f.type(c) != sdk::col_type::string)
        throw sdk::error("column '" + name + "' is " + sdk::to_string(f.type(c)) +
                           ", not a string; example.upper needs string columns (columns: " +
                           list_columns(f) + ")",
                         LOOM_ERR_BAD_DATA);
      upper[c] = true;
    }
    sdk::frame_builder out(f.schema()); // same columns, types and nullability
    std::string cell;
    for (size_t r = 0; r < f.num_rows(); ++r) {
      for (size_t c = 0; c < f.num_columns(); ++c) {
        if (!upper[c] || !f.valid(c, r)) {
          out.append_from(c, f, c, r);
          continue;
        }
        cell.assign(f.str(c, r));
        for (auto& ch : cell)
          if (ch >= 'a' && ch <= 'z')
            ch = static_cast<char>(ch - 'a' + 'A');
        out.append_string(c, cell);
      }
      out.end_row();
    }
    ctx.emit(0, out.finish(f.sequence())); // ownership of the buffer passes to the host
  }

private:
  std::vector<std::string> columns_;
};

// -- example.filter ---------------------------------------------------------------------

class filter_op final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "example.filter", "0.1.0",
      "Keeps the rows whose numeric `column` is at least `min`. Rows with a null in the column "
      "are dropped and counted as rejected; a frame whose rows all pass is forwarded without a "
      "copy. Records the metric `rows_kept`.",
      "- id: big\n  op: example.filter\n  inputs: load\n  with: {column: petal_length, min: 5.0}\n"};
    s.inputs = {{"data", LOOM_MSG_FRAME, "input table"}};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the rows that passed"}};
    s.params = {
      {"column", LOOM_PARAM_STRING, true, nullptr, "numeric column (i64, f64, f32 or bool) to test"},
      {"min", LOOM_PARAM_FLOAT, true, nullptr, "smallest value kept (inclusive)"},
    };
    return s;
  }

  explicit filter_op(sdk::context& ctx)
    : column_(ctx.param_string("column")), min_(ctx.param_float("min")) {}

  void on_input(sdk::context& ctx, uint32_t, const sdk::message& msg) override {
    auto f = sdk::frame_view::of(msg);
    size_t col = require_column(f, column_);
    if (f.type(col) == sdk::col_type::string)
      throw sdk::error("column '" + column_ + "' is a string, not a number; example.filter needs a "
                       "numeric column (columns: " + list_columns(f) + ")",
                       LOOM_ERR_BAD_DATA);

    std::vector<size_t> keep;
    uint64_t nulls = 0;
    for (size_t r = 0; r < f.num_rows(); ++r) {
      if (!f.valid(col, r))
        ++nulls;
      else if (f.number(col, r) >= min_)
        keep.push_back(r);
    }
    if (nulls > 0)
      ctx.add_rejected(nulls); // rows in = rows out + filtered + rejected
    kept_ += keep.size();

    if (keep.size() == f.num_rows()) {
      ctx.forward_message(0, msg); // nothing dropped: pass the same buffer on, no copy
      return;
    }
    sdk::frame_builder out(f.schema());
    for (size_t r : keep) {
      for (size_t c = 0; c < f.num_columns(); ++c)
        out.append_from(c, f, c, r);
      out.end_row();
    }
    ctx.emit(0, out.finish(f.sequence()));
  }

  // The input has ended: every frame has been seen.
  void on_input_end(sdk::context& ctx, uint32_t) override {
    ctx.metric("rows_kept", static_cast<double>(kept_));
    ctx.info("kept " + std::to_string(kept_) + " rows with " + column_ + " >= " + std::to_string(min_));
  }

private:
  std::string column_;
  double min_;
  uint64_t kept_ = 0;
};

} // namespace example

// The plugin's one exported symbol: its name, version and operators.
LOOM_PLUGIN("loom-example", "0.1.0", example::upper_op, example::filter_op)
