// sink.jsonl — writes the frames it receives as JSON Lines.
#include "io_common.hpp"
#include "io_ops.hpp"

namespace loom::ops {

/// Appends `s` as a JSON string literal (invalid UTF-8 bytes become U+FFFD).
inline void json_append_string(std::string& out, std::string_view s) {
  std::string fixed;
  if (utf8_invalid_at(s) != std::string_view::npos) {
    fixed = utf8_sanitize(s);
    s = fixed;
  }
  static const char* hex = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 15]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

class jsonl_sink final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "sink.jsonl", "0.1.0",
      "Writes a table as JSON Lines, streaming: one object per row with the columns in order as keys. "
      "Nulls are null, i64 and f32/f64 are JSON numbers (a float always has a decimal point or an "
      "exponent, so reading the file back gives floats again; NaN and infinities, which JSON cannot "
      "hold, are written as null), bools are true/false, strings are escaped (invalid UTF-8 bytes "
      "become U+FFFD). The file is written under a temporary name and renamed when the input ends, so "
      "a failed or cancelled run never leaves a half-written file under the final name. Parent "
      "directories are created.",
      "- id: dump\n  op: sink.jsonl\n  inputs: load\n  with: {path: out/rows.jsonl}\n"};
    s.inputs = {{"data", LOOM_MSG_FRAME, "the table to write"}};
    s.params = {
      {"path", LOOM_PARAM_STRING, true, nullptr, "output file, relative to the graph file"},
    };
    return s;
  }

  explicit jsonl_sink(sdk::context& ctx)
    : file_(ctx.resolve_path(ctx.param_string("path")), ctx.run_id() + "-" + std::to_string(ctx.attempt())) {}

  void on_input(sdk::context&, uint32_t, const sdk::message& msg) override {
    auto f = sdk::frame_view::of(msg);
    std::vector<std::string> keys;
    for (size_t c = 0; c < f.num_columns(); ++c) {
      std::string k;
      json_append_string(k, f.name(c));
      keys.push_back(k + ":");
    }
    char buf[64];
    for (size_t r = 0; r < f.num_rows(); ++r) {
      line_.clear();
      line_.push_back('{');
      for (size_t c = 0; c < f.num_columns(); ++c) {
        if (c)
          line_.push_back(',');
        line_ += keys[c];
        if (!f.valid(c, r)) {
          line_ += "null";
          continue;
        }
        switch (f.type(c)) {
          case col_type::i64: {
            auto res = std::to_chars(buf, buf + sizeof buf, f.i64(c, r));
            line_.append(buf, res.ptr);
            break;
          }
          case col_type::f32:
          case col_type::f64: {
            double d = f.type(c) == col_type::f32 ? static_cast<double>(f.f32(c, r)) : f.f64(c, r);
            if (!std::isfinite(d)) {
              line_ += "null";
              break;
            }
            auto res = f.type(c) == col_type::f32 ? std::to_chars(buf, buf + sizeof buf, f.f32(c, r))
                                                  : std::to_chars(buf, buf + sizeof buf, d);
            std::string_view num(buf, res.ptr - buf);
            line_ += num;
            if (num.find_first_of(".eE") == std::string_view::npos)
              line_ += ".0";
            break;
          }
          case col_type::boolean: line_ += f.boolean(c, r) ? "true" : "false"; break;
          case col_type::string: json_append_string(line_, f.str(c, r)); break;
        }
      }
      line_ += "}\n";
      file_.write(line_);
    }
  }

  bool produce(sdk::context&) override {
    file_.commit();
    return true;
  }

private:
  atomic_file file_;
  std::string line_;
};

const sdk::op_registration jsonl_sink_op = sdk::registration<jsonl_sink>;

} // namespace loom::ops
