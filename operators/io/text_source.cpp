// ingest.text — unstructured text: one document per file of a folder tree (label =
// the folder it is in) or one document per line.
#include "io_common.hpp"
#include "io_ops.hpp"

namespace loom::ops {

namespace fs = std::filesystem;

class text_source final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "ingest.text", "0.1.0",
      "Reads unstructured text documents into frames, streaming (one frame of documents is held in "
      "memory at a time). In mode `files`, `path` is a folder: every file below it (recursively, "
      "in sorted order of their paths, filtered by `extensions`) is one document, and its label is "
      "the name of the folder that holds it, as in the classic text-classification layout "
      "path/<label>/<doc>.txt (files directly in `path` get a null label); columns path (relative to "
      "`path`), label, text. In mode `lines`, `path` is a file (a glob of files, or .gz files, as in "
      "ingest.csv) and every line is one document; columns path, line (1-based), text; blank lines "
      "are skipped unless `skip_blank` is false, and CRLF line ends are accepted. A leading UTF-8 byte "
      "order mark is removed. A document larger than `max_bytes` or not valid UTF-8 is rejected to "
      "the `rejects` output (file, line (0 for a whole file), reason, raw: the start of the text) and "
      "counted; the run fails only when more than `max_errors` were rejected.",
      "- id: reviews\n  op: ingest.text\n  with: {path: data/reviews, mode: files, extensions: [.txt]}\n"
      "- id: sentences\n  op: ingest.text\n  with: {path: data/corpus.txt.gz, mode: lines}\n"};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the documents: path, label, text (files) or path, line, text (lines)"},
                 {"rejects", LOOM_MSG_FRAME, "rejected documents: file, line, reason, raw"}};
    s.params = {
      {"path", LOOM_PARAM_STRING, true, nullptr,
       "a folder (mode files) or a file, glob or .gz file (mode lines), relative to the graph file"},
      {"mode", LOOM_PARAM_STRING, false, "\"files\"", "files: one document per file; lines: one per line"},
      {"extensions", LOOM_PARAM_LIST, false, "[]",
       "mode files: read only files with these extensions (e.g. [.txt, .md]; case-sensitive); [] reads every file"},
      {"max_bytes", LOOM_PARAM_INT, false, "10485760", "largest document in bytes; larger ones are rejected"},
      {"skip_blank", LOOM_PARAM_BOOL, false, "true", "mode lines: skip empty and all-whitespace lines"},
      {"frame_rows", LOOM_PARAM_INT, false, "1024",
       "documents per emitted frame (a frame is also closed after 64 MiB of text)"},
      {"max_errors", LOOM_PARAM_INT, false, "-1", "fail when more documents are rejected (-1: never)"},
    };
    return s;
  }

  explicit text_source(sdk::context& ctx) : rejects_(ctx.param_int("max_errors")) {
    path_ = ctx.resolve_path(ctx.param_string("path"));
    auto mode = ctx.param_string("mode");
    if (mode != "files" && mode != "lines")
      throw sdk::error("mode must be files or lines, got '" + mode + "'");
    lines_ = mode == "lines";
    max_bytes_ = ctx.param_int("max_bytes");
    frame_rows_ = ctx.param_int("frame_rows");
    skip_blank_ = ctx.param_bool("skip_blank");
    if (max_bytes_ <= 0)
      throw sdk::error("max_bytes must be positive, got " + std::to_string(max_bytes_));
    if (frame_rows_ <= 0)
      throw sdk::error("frame_rows must be positive, got " + std::to_string(frame_rows_));
    for (auto e : sdk::param_strings(ctx, "extensions")) {
      if (e.empty())
        throw sdk::error("extensions: an entry is empty (write e.g. .txt)");
      extensions_.push_back(e.front() == '.' ? e : "." + e);
    }
    out_.add_column("path", col_type::string, false);
    if (lines_) {
      inputs_ = file_inputs(path_);
      out_.add_column("line", col_type::i64, false);
    } else {
      std::error_code ec;
      if (!fs::is_directory(path_, ec))
        throw sdk::error("path: " + path_ + " is not a folder (mode files reads a folder of documents)", LOOM_ERR_IO);
      list_files();
      out_.add_column("label", col_type::string, true);
    }
    out_.add_column("text", col_type::string, false);
  }

  bool produce(sdk::context& ctx) override {
    if (ctx.cancelled())
      throw sdk::error("cancelled", LOOM_ERR_CANCELLED);
    bytes_ = 0;
    bool done = lines_ ? produce_lines(ctx) : produce_files(ctx);
    rejects_.flush(ctx, 1);
    if (out_.num_rows() > 0)
      ctx.emit(0, out_.finish(seq_++));
    return done;
  }

private:
  static constexpr size_t frame_bytes = 64u << 20;

  bool frame_full() const { return out_.num_rows() >= static_cast<size_t>(frame_rows_) || bytes_ >= frame_bytes; }

  void list_files() {
    std::error_code ec;
    fs::recursive_directory_iterator it(path_, fs::directory_options::none, ec), end;
    if (ec)
      throw sdk::error("cannot read folder " + path_ + ": " + ec.message(), LOOM_ERR_IO);
    for (; it != end; it.increment(ec)) {
      if (ec)
        throw sdk::error("cannot read folder " + path_ + ": " + ec.message(), LOOM_ERR_IO);
      if (!it->is_regular_file(ec))
        continue;
      auto rel = it->path().lexically_relative(path_);
      if (!extensions_.empty() &&
          std::find(extensions_.begin(), extensions_.end(), rel.extension().string()) == extensions_.end())
        continue;
      files_.push_back(rel.generic_string());
    }
    std::sort(files_.begin(), files_.end());
  }

  /// Checks a document; false (and rejected) if it is too large or not UTF-8.
  bool check(sdk::context& ctx, const std::string& file, uint64_t line, std::string_view text) {
    if (text.size() > static_cast<size_t>(max_bytes_)) {
      rejects_.add(ctx, file, line,
                   "document is " + std::to_string(text.size()) + " bytes, more than max_bytes = " +
                     std::to_string(max_bytes_),
                   utf8_sanitize(text, 200));
      return false;
    }
    size_t bad = utf8_invalid_at(text);
    if (bad != std::string_view::npos) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(text[bad]));
      rejects_.add(ctx, file, line,
                   "not valid UTF-8 (byte " + std::string(hex) + " at offset " + std::to_string(bad) + ")",
                   utf8_sanitize(text, 200));
      return false;
    }
    return true;
  }

  static void strip_bom(std::string& s) {
    if (s.starts_with("\xEF\xBB\xBF"))
      s.erase(0, 3);
  }

  bool produce_files(sdk::context& ctx) {
    while (next_ < files_.size() && !frame_full()) {
      const std::string& rel = files_[next_++];
      std::string full = (fs::path(path_) / rel).string();
      std::error_code ec;
      auto size = fs::file_size(full, ec);
      if (!ec && size > static_cast<uintmax_t>(max_bytes_)) {
        rejects_.add(ctx, full, 0,
                     "document is " + std::to_string(size) + " bytes, more than max_bytes = " + std::to_string(max_bytes_),
                     "");
        continue;
      }
      std::ifstream in(full, std::ios::binary);
      if (!in)
        throw sdk::error("cannot open " + full + ": " + std::strerror(errno), LOOM_ERR_IO);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (in.bad())
        throw sdk::error("cannot read " + full, LOOM_ERR_IO);
      strip_bom(text);
      if (!check(ctx, full, 0, text))
        continue;
      auto parent = fs::path(rel).parent_path();
      out_.append_string(0, rel);
      if (parent.empty())
        out_.append_null(1);
      else
        out_.append_string(1, parent.filename().string());
      out_.append_string(2, text);
      out_.end_row();
      bytes_ += text.size();
    }
    return next_ == files_.size();
  }

  bool produce_lines(sdk::context& ctx) {
    while (!frame_full()) {
      if (current_ == nullptr) {
        if (next_ >= inputs_.size())
          return true;
        current_ = inputs_[next_++]();
        line_no_ = 0;
      }
      if (!std::getline(*current_->in, line_)) {
        current_->check();
        current_.reset();
        continue;
      }
      ++line_no_;
      if (!line_.empty() && line_.back() == '\r')
        line_.pop_back();
      if (line_no_ == 1)
        strip_bom(line_);
      if (skip_blank_ && line_.find_first_not_of(" \t\f\v") == std::string::npos)
        continue;
      if (!check(ctx, current_->name, line_no_, line_))
        continue;
      out_.append_string(0, current_->name);
      out_.append_i64(1, static_cast<int64_t>(line_no_));
      out_.append_string(2, line_);
      out_.end_row();
      bytes_ += line_.size();
    }
    return false;
  }

  std::string path_;
  bool lines_ = false, skip_blank_ = true;
  int64_t max_bytes_ = 0, frame_rows_ = 0;
  std::vector<std::string> extensions_, files_;
  std::vector<input_opener> inputs_;
  std::unique_ptr<named_input> current_;
  size_t next_ = 0, bytes_ = 0;
  uint64_t line_no_ = 0;
  std::string line_;
  reject_log rejects_;
  sdk::frame_builder out_;
  uint64_t seq_ = 0;
};

const sdk::op_registration text_source_op = sdk::registration<text_source>;

} // namespace loom::ops
