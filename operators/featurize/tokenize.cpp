// featurize.tokenize — text columns to their tokens (and n-grams), row by row.
#include "featurizer.hpp"

#include <loom/params.hpp>

namespace loom::ops {

using namespace featurize;

class featurize_tokenize final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "featurize.tokenize", "0.1.0",
      "Splits text columns into tokens, streaming (nothing is fitted, so it can run anywhere in a "
      "pipeline, on every split alike). It uses the same tokenizer as the hashing and tfidf transforms of "
      "featurize.fit: ASCII letters are lower-cased (`lowercase`), tokens are the maximal runs of ASCII "
      "letters, digits and bytes >= 0x80 (UTF-8 words stay whole), tokens shorter than `min_token_length` "
      "bytes and the words in `stop_words` (compared after lower-casing) are dropped, then the n-grams for "
      "n in `ngrams` [min, max] are formed (words joined by one space). The tokens of a row are written as "
      "one string, joined by `separator`, into a new column `<column><suffix>` right after the column "
      "(or into the column itself when `suffix` is empty). A null text gives a null; a text with no "
      "tokens gives an empty string. Every row goes out (no rejects). Metrics: tokens (emitted), "
      "empty (non-null texts without a token). Fails when a column is missing or not a string column, "
      "or when a new column's name is already taken.",
      "- id: words\n  op: featurize.tokenize\n  inputs: load.out\n"
      "  with: {columns: [review], ngrams: [1, 2], stop_words: [a, an, the, and, of]}\n"
      "- id: in_place\n  op: featurize.tokenize\n  inputs: load.out\n"
      "  with: {columns: [title, body], suffix: \"\", separator: \"|\"}\n"};
    s.inputs = {{"data", LOOM_MSG_FRAME, "the table with the text columns"}};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the table with the token columns"}};
    s.params = {
      {"columns", LOOM_PARAM_LIST, true, nullptr, "the string columns to tokenize"},
      {"lowercase", LOOM_PARAM_BOOL, false, "true", "lower-case ASCII letters first"},
      {"ngrams", LOOM_PARAM_LIST, false, "[1, 1]", "[min, max] n-gram sizes, 1 <= min <= max <= 16"},
      {"min_token_length", LOOM_PARAM_INT, false, "1", "shortest token kept, in bytes"},
      {"stop_words", LOOM_PARAM_LIST, false, nullptr, "words to drop (before n-grams are formed)"},
      {"separator", LOOM_PARAM_STRING, false, "\" \"", "put between the tokens of a row"},
      {"suffix", LOOM_PARAM_STRING, false, "\"_tokens\"",
       "the new column is <column><suffix>; empty: the tokens replace the text"},
    };
    return s;
  }

  explicit featurize_tokenize(sdk::context& ctx) {
    columns_ = sdk::param_strings(ctx, "columns");
    if (columns_.empty())
      throw sdk::error("columns: name at least one string column");
    tok_.lowercase = ctx.param_bool("lowercase");
    auto p = sdk::params(ctx);
    const auto& ng = p.at("ngrams");
    if (!ng.is_array() || ng.size() != 2 || !ng[0].is_number_integer() || !ng[1].is_number_integer() ||
        ng[0].get<int64_t>() < 1 || ng[0].get<int64_t>() > ng[1].get<int64_t>() || ng[1].get<int64_t>() > 16)
      throw sdk::error("ngrams must be [min, max] with 1 <= min <= max <= 16, found " + ng.dump());
    tok_.ngram_min = ng[0].get<int64_t>();
    tok_.ngram_max = ng[1].get<int64_t>();
    tok_.min_length = ctx.param_int("min_token_length");
    if (tok_.min_length < 1)
      throw sdk::error("min_token_length must be at least 1, got " + std::to_string(tok_.min_length));
    for (auto w : sdk::param_strings(ctx, "stop_words")) {
      if (tok_.lowercase)
        for (auto& c : w)
          if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
      tok_.stop_words.insert(w);
    }
    separator_ = ctx.param_string("separator");
    suffix_ = ctx.param_string("suffix");
  }

  void on_input(sdk::context& ctx, uint32_t, const sdk::message& msg) override {
    auto f = sdk::frame_view::of(msg);
    bind(f);
    out_.clear();
    std::vector<std::string> terms, words;
    std::string joined;
    for (size_t r = 0; r < f.num_rows(); ++r) {
      for (size_t c = 0; c < f.num_columns(); ++c) {
        const auto o = out_col_[c];
        if (token_col_[c] < 0 || !suffix_.empty())
          out_.append_from(o, f, c, r);
        if (token_col_[c] < 0)
          continue;
        const size_t t = suffix_.empty() ? o : o + 1;
        if (!f.valid(c, r)) {
          out_.append_null(t);
          continue;
        }
        tok_.terms(f.str(c, r), terms, words);
        joined.clear();
        for (size_t i = 0; i < terms.size(); ++i) {
          if (i > 0)
            joined += separator_;
          joined += terms[i];
        }
        tokens_ += terms.size();
        empty_ += terms.empty();
        out_.append_string(t, joined);
      }
      out_.end_row();
    }
    ctx.emit(0, out_.finish(f.sequence()));
  }

  void on_input_end(sdk::context& ctx, uint32_t) override {
    ctx.metric("tokens", static_cast<double>(tokens_));
    ctx.metric("empty", static_cast<double>(empty_));
  }

private:
  /// The output columns, from the first frame; later frames must have the same columns.
  void bind(const sdk::frame_view& f) {
    if (!guard_.check(f))
      return;
    const auto& schema = guard_.schema();
    token_col_.assign(schema.size(), -1);
    for (size_t k = 0; k < columns_.size(); ++k) {
      const size_t c = f.require(columns_[k]);
      if (schema[c].type != col_type::string)
        throw sdk::error("columns: '" + columns_[k] + "' is " + std::string(to_string(schema[c].type)) +
                           ", not a string column",
                         LOOM_ERR_BAD_DATA);
      if (token_col_[c] >= 0)
        throw sdk::error("columns: '" + columns_[k] + "' is listed twice");
      token_col_[c] = static_cast<int>(k);
    }
    std::set<std::string> names;
    for (auto& fl : schema)
      names.insert(fl.name);
    out_col_.resize(schema.size());
    for (size_t c = 0; c < schema.size(); ++c) {
      out_col_[c] = out_.num_columns();
      if (token_col_[c] >= 0 && suffix_.empty()) {
        out_.add_column(schema[c].name, col_type::string, schema[c].nullable);
        continue;
      }
      out_.add_column(schema[c].name, schema[c].type, schema[c].nullable);
      if (token_col_[c] < 0)
        continue;
      const std::string name = schema[c].name + suffix_;
      if (!names.insert(name).second)
        throw sdk::error("the new column '" + name + "' is already a column of the input; choose another suffix",
                         LOOM_ERR_BAD_DATA);
      out_.add_column(name, col_type::string, schema[c].nullable);
    }
  }

  std::vector<std::string> columns_;
  tokenizer tok_;
  std::string separator_, suffix_;
  sdk::schema_guard guard_{"featurize.tokenize"};
  std::vector<int> token_col_;    ///< by input column: index into columns_, or -1
  std::vector<size_t> out_col_;   ///< by input column: its output column
  sdk::frame_builder out_;
  uint64_t tokens_ = 0, empty_ = 0;
};

extern const sdk::op_registration featurize_tokenize_op = sdk::registration<featurize_tokenize>;

} // namespace loom::ops
