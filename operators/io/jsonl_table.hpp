// Reading JSON Lines inputs (one or more files, or a body in memory) as one table:
// used by ingest.jsonl and ingest.http.
#pragma once

#include "io_common.hpp"

#include <deque>
#include <unordered_map>

namespace loom::ops {

struct jsonl_options : table_options {
  bool reject_unknown_keys = true;
};

/// The parameters of ingest.jsonl that are not in table_params().
inline std::vector<sdk::param> jsonl_params() {
  return {
    {"unknown_keys", LOOM_PARAM_STRING, false, "\"reject\"",
     "what to do with a key that is not a column (it first appears after the `infer_rows` sample and "
     "is not in `schema`): reject (the line goes to rejects) or ignore (the key is dropped, the rest "
     "of the line kept)"},
  };
}

inline jsonl_options read_jsonl_options(const sdk::context& ctx) {
  jsonl_options o;
  static_cast<table_options&>(o) = read_table_options(ctx);
  auto u = ctx.param_string("unknown_keys");
  if (u != "reject" && u != "ignore")
    throw sdk::error("unknown_keys must be reject or ignore, got '" + u + "'");
  o.reject_unknown_keys = u == "reject";
  return o;
}

/// One record as read, before its values are typed.
struct jsonl_record {
  std::vector<std::pair<std::string, nlohmann::ordered_json>> values; ///< flattened, in order
  uint64_t line = 0;
  std::string raw;
  size_t file = 0;
};

class jsonl_table : public sampled_table<jsonl_table, jsonl_record> {
public:
  jsonl_table(jsonl_options o, std::vector<input_opener> inputs)
    : sampled_table(o.max_errors, o.frame_rows), o_(std::move(o)), inputs_(std::move(inputs)) {}

private:
  friend class sampled_table<jsonl_table, jsonl_record>;
  using record = jsonl_record;

  /// Flattens `v` into `out` with dotted names; false (and `dup` set) on a name clash.
  static bool flatten(const nlohmann::ordered_json& v, const std::string& prefix,
                      std::vector<std::pair<std::string, nlohmann::ordered_json>>& out, std::string& dup) {
    for (auto& [k, x] : v.items()) {
      std::string name = prefix.empty() ? k : prefix + "." + k;
      if (x.is_object()) {
        if (!flatten(x, name, out, dup))
          return false;
        continue;
      }
      for (auto& e : out)
        if (e.first == name) {
          dup = name;
          return false;
        }
      out.emplace_back(std::move(name), x);
    }
    return true;
  }

  bool read(sdk::context& ctx, record& rec) {
    while (!eof_) {
      if (current_ == nullptr) {
        if (next_input_ >= inputs_.size()) {
          eof_ = true;
          return false;
        }
        current_ = inputs_[next_input_++]();
        file_names_.push_back(current_->name);
        line_ = 0;
      }
      if (!std::getline(*current_->in, rec.raw)) {
        current_->check();
        current_.reset();
        continue;
      }
      ++line_;
      if (!rec.raw.empty() && rec.raw.back() == '\r')
        rec.raw.pop_back();
      if (line_ == 1 && rec.raw.starts_with("\xEF\xBB\xBF"))
        rec.raw.erase(0, 3);
      if (rec.raw.find_first_not_of(" \t") == std::string::npos)
        continue; // blank line
      rec.line = line_;
      rec.file = file_names_.size() - 1;
      rec.values.clear();
      nlohmann::ordered_json j;
      try {
        j = nlohmann::ordered_json::parse(rec.raw);
      } catch (const nlohmann::ordered_json::parse_error& e) {
        std::string what = e.what();
        auto colon = what.find("parse error");
        rejects_.add(ctx, file_names_.back(), line_,
                     "not valid JSON: " + (colon == std::string::npos ? what : what.substr(colon)), rec.raw);
        continue;
      }
      if (!j.is_object()) {
        rejects_.add(ctx, file_names_.back(), line_, std::string("not a JSON object but ") + j.type_name(),
                     rec.raw);
        continue;
      }
      std::string dup;
      if (!flatten(j, "", rec.values, dup)) {
        rejects_.add(ctx, file_names_.back(), line_, "key '" + dup + "' appears twice once nested objects are flattened",
                     rec.raw);
        continue;
      }
      return true;
    }
    return false;
  }

  enum kind : unsigned { k_int = 1, k_float = 2, k_bool = 4, k_string = 8 };

  static unsigned kind_of(const nlohmann::ordered_json& v) {
    switch (v.type()) {
      case nlohmann::ordered_json::value_t::number_integer: return k_int;
      case nlohmann::ordered_json::value_t::number_unsigned:
        return v.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX) ? k_int : k_float;
      case nlohmann::ordered_json::value_t::number_float: return k_float;
      case nlohmann::ordered_json::value_t::boolean: return k_bool;
      case nlohmann::ordered_json::value_t::null: return 0;
      default: return k_string; // strings, arrays (kept as JSON text)
    }
  }

  void start(sdk::context& ctx) {
    started_ = true;
    while (sample_.size() < static_cast<size_t>(o_.infer_rows)) {
      record rec;
      if (!read(ctx, rec))
        break;
      sample_.push_back(std::move(rec));
    }
    std::vector<std::string> names;
    std::vector<unsigned> kinds;
    for (auto& rec : sample_)
      for (auto& [k, v] : rec.values) {
        auto [it, fresh] = index_.emplace(k, names.size());
        if (fresh) {
          names.push_back(k);
          kinds.push_back(0);
        }
        kinds[it->second] |= kind_of(v);
      }
    if (o_.schema.is_object())
      for (auto& [k, v] : o_.schema.items())
        if (index_.emplace(k, names.size()).second) { // a column the sample did not show
          names.push_back(k);
          kinds.push_back(0);
        }
    if (names.empty() && !file_names_.empty() && sample_.empty() && rejects_.count() == 0)
      throw sdk::error(file_names_.front() + ": no records (the input is empty)", LOOM_ERR_BAD_DATA);
    for (size_t c = 0; c < names.size(); ++c) {
      unsigned k = kinds[c];
      col_type t = k == k_int                       ? col_type::i64
                   : k != 0 && (k & ~(k_int | k_float)) == 0 ? col_type::f64
                   : k == k_bool                    ? col_type::boolean
                                                    : col_type::string;
      if (o_.schema.is_object() && o_.schema.contains(names[c]))
        t = type_from_name(o_.schema[names[c]].get<std::string>(), names[c]);
      out_.add_column(names[c], t, true);
    }
    cells_.resize(names.size());
  }

  /// Why `v` does not fit column c, or "" when it does.
  std::string misfit(size_t c, const nlohmann::ordered_json& v) const {
    auto t = out_.column(c).type;
    bool ok = true;
    switch (t) {
      case col_type::i64: ok = kind_of(v) == k_int; break;
      case col_type::f64:
      case col_type::f32: ok = v.is_number(); break;
      case col_type::boolean: ok = v.is_boolean(); break;
      case col_type::string: break;
    }
    if (ok)
      return {};
    std::string text = v.dump();
    if (text.size() > 60)
      text = text.substr(0, 57) + "...";
    return "column '" + out_.column(c).name + "': " + text + " is not a valid " + sdk::to_string(t);
  }

  void add(sdk::context& ctx, const record& rec) {
    std::fill(cells_.begin(), cells_.end(), nullptr);
    for (auto& [k, v] : rec.values) {
      auto it = index_.find(k);
      if (it == index_.end()) {
        if (!o_.reject_unknown_keys)
          continue;
        rejects_.add(ctx, file_names_[rec.file], rec.line,
                     "key '" + k + "' is not a column (it is not in the first infer_rows = " +
                       std::to_string(o_.infer_rows) + " records; name it in schema, or set unknown_keys: ignore)",
                     rec.raw);
        return;
      }
      if (v.is_null())
        continue;
      auto why = misfit(it->second, v);
      if (!why.empty()) {
        rejects_.add(ctx, file_names_[rec.file], rec.line, why, rec.raw);
        return;
      }
      cells_[it->second] = &v;
    }
    for (size_t c = 0; c < cells_.size(); ++c) {
      const nlohmann::ordered_json* v = cells_[c];
      if (v == nullptr) {
        out_.append_null(c);
        continue;
      }
      switch (out_.column(c).type) {
        case col_type::i64: out_.append_i64(c, v->get<int64_t>()); break;
        case col_type::f64: out_.append_f64(c, v->get<double>()); break;
        case col_type::f32: out_.append_f32(c, v->get<float>()); break;
        case col_type::boolean: out_.append_bool(c, v->get<bool>()); break;
        case col_type::string:
          if (v->is_string())
            out_.append_string(c, v->get_ref<const std::string&>());
          else
            out_.append_string(c, v->dump());
          break;
      }
    }
    out_.end_row();
  }

  jsonl_options o_;
  std::vector<input_opener> inputs_;
  size_t next_input_ = 0;
  std::unique_ptr<named_input> current_;
  std::vector<std::string> file_names_;
  uint64_t line_ = 0;
  std::unordered_map<std::string, size_t> index_;
  std::vector<const nlohmann::ordered_json*> cells_;
};

} // namespace loom::ops
