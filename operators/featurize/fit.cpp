// featurize.fit — fits a featurization on the training split; emits the fitted state
// (a Model of kind "featurizer") and the training rows transformed.
#include "featurizer.hpp"

#include <loom/atomic_file.hpp>
#include <loom/params.hpp>

#include <deque>

namespace loom::ops {

using namespace featurize;

class featurize_fit final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "featurize.fit", "0.1.0",
      "Fits feature transforms on a training table and emits the fitted state (a Model of kind "
      "\"featurizer\") and the training table transformed. It holds the whole training table in memory "
      "(the frames as received): fitting must see every training row, then the buffered frames are "
      "transformed and emitted one frame per input frame, with the same sequence numbers. Connect `state` "
      "to featurize.apply to transform the validation and test splits (and anything served later) with "
      "exactly the same fitted values; the train operator bundles `state` into its model.\n"
      "\n"
      "`transforms` is a list of maps, applied to the *input* columns (a transform never sees another "
      "transform's output). Keys every entry takes: `column` (required: the input column), `op` "
      "(required, below), `output` (the output column name for ops with one output column, else the "
      "prefix of the output names; default: the input column's name), `keep_input` (default false). "
      "Output layout: input columns keep their order; a column that no transform reads passes through "
      "unchanged (dropped instead with `drop_input: true`); a column that transforms read is replaced, "
      "at its place, by their output columns in the order of `transforms` (the original kept in front of "
      "them if any of them says `keep_input: true`). Two outputs with the same name are an error.\n"
      "\n"
      "Numeric ops (the column must be i64, f64, f32 or bool; null and NaN stay null in the output unless "
      "`fill: <number>` is given, which is then written instead, and are left out of the fit; a row with "
      "+-inf is rejected):\n"
      "  standardize: (x - mean) / std, f64; mean and population std fitted; std 0 gives 0.\n"
      "  minmax: (x - min) / (max - min), f64; a constant column gives 0; values outside the training "
      "range go outside [0, 1] unless `clip: true`.\n"
      "  log: log1p(x) = ln(1 + x), f64, nothing fitted. A negative x is rejected "
      "(`on_negative: reject`, the default), fails the run (`error`), or gives null/`fill` (`null`).\n"
      "  bucketize: i64 bucket index = how many boundaries are <= x (0 .. number of boundaries), so bucket "
      "i is [b[i-1], b[i]). Either `boundaries: [b0, b1, ...]` (strictly increasing) or `bins: k` (k >= 2): "
      "the k-1 boundaries are the i/k quantiles of the training values (linear interpolation, numpy's "
      "default), duplicates merged. `fill` must be a whole number.\n"
      "Categorical ops (any column type, values compared as their CSV text; null is the category "
      "\"__null__\", one-hot/ordinal-encoded like any other value when training had nulls and as unknown "
      "otherwise):\n"
      "  one_hot: one f32 0/1 column `<output>=<value>` per training category, sorted by value (bytes), "
      "plus `<output>=__unknown__` for values not seen in training. `max_categories: n` keeps the n most "
      "frequent (ties: smaller value first); rarer ones count as unknown.\n"
      "  ordinal: i64 index of the value in the sorted training categories, -1 for unknown; "
      "`max_categories` as for one_hot.\n"
      "  hash: feature hashing into `buckets: n` (required) f32 0/1 columns `<output>#0` .. `<output>#n-1`: "
      "the 1 is in column FNV-1a 64 of the value's bytes modulo n. Nothing fitted.\n"
      "Text ops (null is an empty document): the text is tokenized — ASCII letters lower-cased "
      "(`lowercase: false` keeps case), split on every byte that is not an ASCII letter or digit (bytes of "
      "UTF-8 characters count as letters), tokens shorter than `min_token_length` (default 1) dropped — "
      "then n-grams for n in `ngrams: [min, max]` (default [1, 1]) are formed with words joined by one "
      "space.\n"
      "  hashing: hashing vectorizer: `buckets: n` (required) f32 columns `<output>#i` holding the count "
      "of terms whose FNV-1a 64 hash modulo n is i. Nothing fitted.\n"
      "  tfidf: a vocabulary fitted on training: terms in at least `min_df` (default 1) documents, the "
      "`max_features` (default 0: all) most frequent over the corpus if given (ties: smaller term first); "
      "idf = ln((1 + n) / (1 + df)) + 1 (scikit-learn's smooth_idf), n = training rows. One f32 column "
      "`<output>:<term>` per term (sorted) holding count * idf, each row l2-normalised (all zeros when no "
      "term is known).\n"
      "\n"
      "Rejected rows (non-finite numbers, negatives for log) go to `rejects` (a `reason` column, then the "
      "row's values) and are counted; they are neither fitted on nor in `out`.",
      "- id: features\n"
      "  op: featurize.fit\n"
      "  inputs: split.train\n"
      "  with:\n"
      "    transforms:\n"
      "      - {column: price, op: standardize, fill: 0}\n"
      "      - {column: rooms, op: bucketize, bins: 4}\n"
      "      - {column: area, op: log}\n"
      "      - {column: city, op: one_hot, max_categories: 20}\n"
      "      - {column: description, op: tfidf, ngrams: [1, 2], min_df: 2, max_features: 500}\n"
      "- id: test_features\n"
      "  op: featurize.apply\n"
      "  inputs: {state: features.state, data: split.test}\n"};
    s.inputs = {{"data", LOOM_MSG_FRAME, "the training table (all of it is held in memory)"}};
    s.outputs = {
      {"state", LOOM_MSG_MODEL,
       "the fitted featurization: one Model of kind \"featurizer\", version 1, whose `preprocessing` is JSON "
       "{format: loom.featurizer, version: 1, drop_input, rows_fitted, input_schema, transforms: [each "
       "transform's options with defaults filled in, plus `fitted`: its fitted values]}; emitted before `out`"},
      {"out", LOOM_MSG_FRAME, "the training table transformed (one frame per input frame)"},
      {"rejects", LOOM_MSG_FRAME, "rejected rows: reason, then the row's values"},
    };
    s.params = {
      {"transforms", LOOM_PARAM_LIST, true, nullptr,
       "list of maps {column, op, ...}: the transforms, their keys as described above"},
      {"drop_input", LOOM_PARAM_BOOL, false, "false",
       "drop the input columns that no transform reads (default: they pass through, e.g. the label)"},
      {"save", LOOM_PARAM_STRING, false, nullptr,
       "also write the state Model message (FlatBuffers bytes) to this file, relative to the graph file"},
    };
    return s;
  }

  explicit featurize_fit(sdk::context& ctx) : z_(featurizer::from_params(sdk::params(ctx))) {
    if (ctx.has_param("save")) {
      save_ = ctx.resolve_path(ctx.param_string("save"));
      if (ctx.param_string("save").empty())
        throw sdk::error("save: expected a file name");
      save_tag_ = ctx.run_id() + "-" + std::to_string(ctx.attempt());
    }
  }

  void on_input(sdk::context&, uint32_t, const sdk::message& msg) override {
    auto f = sdk::frame_view::of(msg);
    z_.bind(f);
    z_.observe(f);
    auto bytes = msg.bytes();
    frames_.emplace_back(bytes.begin(), bytes.end());
  }

  bool produce(sdk::context& ctx) override {
    if (ctx.cancelled())
      throw sdk::error("cancelled", LOOM_ERR_CANCELLED);
    if (!fitted_) {
      z_.finish_fit();
      fitted_ = true;
      if (z_.rows_fitted() == 0)
        ctx.warn("featurize.fit: no training rows; every transform is fitted on nothing");
      ctx.metric("rows_fitted", static_cast<double>(z_.rows_fitted()));
      ctx.artifact("featurizer.json", "application/json", z_.state().dump(2));
      auto model = z_.model();
      if (!save_.empty())
        save(model);
      ctx.emit(0, std::move(model));
      return frames_.empty();
    }
    if (!frames_.empty()) {
      auto f = sdk::frame_view::of(frames_.front());
      auto res = z_.apply(f);
      ctx.emit(1, std::move(*res.out));
      if (res.rejects) {
        ctx.add_rejected(res.rejected);
        ctx.emit(2, std::move(*res.rejects));
      }
      frames_.pop_front();
    }
    return frames_.empty();
  }

private:
  void save(const flatbuffers::DetachedBuffer& model) {
    sdk::atomic_file file(save_, save_tag_);
    file.write({reinterpret_cast<const char*>(model.data()), model.size()});
    file.commit();
  }

  featurizer z_;
  std::deque<std::vector<uint8_t>> frames_;
  bool fitted_ = false;
  std::string save_, save_tag_;
};

extern const sdk::op_registration featurize_fit_op = sdk::registration<featurize_fit>;

} // namespace loom::ops
