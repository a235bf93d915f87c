// Reading CSV inputs (one or more files, or a body in memory) as one table: used by
// ingest.csv and ingest.http.
//
// How it reads: the header and the `infer_rows` sample are read one record at a time;
// after that the input is read in blocks of a few MiB. Each block is cut into one chunk
// per thread at record boundaries (found by quote parity, so a quoted line break never
// splits a record), and the chunks are parsed at once, straight into typed columns.
// The cut is only a guess until checked: chunk k+1 is kept only if the parse of chunk k
// ended exactly where it starts (stray quotes in malformed data can fool the parity);
// otherwise it is parsed again from where chunk k ended. So the rows, the rejects and
// their line numbers are those of a parse from start to end, whatever the number of
// threads; frames are then cut from the parsed rows every `frame_rows` rows.
#pragma once

#include "csv.hpp"
#include "io_common.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

namespace loom::ops {

struct csv_options : table_options {
  char delim = ',';
  bool header = true;
  std::vector<std::string> null_values{"", "NA", "null"};
  int64_t threads = 0; ///< parsing threads; 0: one per core
};

/// The parameters of ingest.csv that are not in table_params().
inline std::vector<sdk::param> csv_params() {
  return {
    {"delimiter", LOOM_PARAM_STRING, false, "\",\"", "field delimiter: one character (\",\" \";\" \"|\"), or \"tab\""},
    {"header", LOOM_PARAM_BOOL, false, "true",
     "the first record of each file holds the column names (with several files, all must have the same "
     "header); without a header the columns are named c0, c1, ..."},
    {"null_values", LOOM_PARAM_LIST, false, "[\"\", \"NA\", \"null\"]",
     "field values read as null, compared with the unquoted value (so \"NA\" in quotes is null too); "
     "[] makes every value a value (an empty field is then an empty string)"},
    {"threads", LOOM_PARAM_INT, false, "0",
     "threads parsing at once (0: one per core, at most 8); the frames and rejects are the same for any number"},
  };
}

inline csv_options read_csv_options(const sdk::context& ctx) {
  csv_options o;
  static_cast<table_options&>(o) = read_table_options(ctx);
  o.delim = csv_delimiter(ctx.param_string("delimiter"));
  o.header = ctx.param_bool("header");
  o.null_values = sdk::param_strings(ctx, "null_values");
  o.threads = ctx.param_int("threads");
  if (o.threads < 0)
    throw sdk::error("threads must be 0 (one per core) or positive, got " + std::to_string(o.threads));
  return o;
}

/// One record as read, before its values are typed (the header and the sample).
struct csv_record {
  std::vector<std::string> fields;
  uint64_t line = 0;
  std::string raw;
  size_t file = 0; ///< index into the table's file names
};

/// Rows parsed into typed columns, with the records rejected among them. Value r of
/// every column is row r; a null holds 0 (an empty string) and 0 in `valid`. The
/// vectors are sized to `capacity` rows and reused batch after batch.
struct csv_batch {
  struct column {
    col_type type = col_type::string;
    std::vector<int64_t> i64;
    std::vector<double> f64;
    std::vector<float> f32;
    std::vector<uint8_t> bools;
    std::vector<uint8_t> valid;
    std::vector<uint32_t> offsets; ///< strings: row r is chars[offsets[r], offsets[r + 1])
    std::vector<char> chars;
  };
  struct reject {
    size_t at;     ///< the rows of this batch before it
    uint64_t line; ///< where the record starts
    std::string reason, raw;
  };

  std::vector<column> cols;
  size_t rows = 0, capacity = 0;
  size_t file = 0;                     ///< the input the rows come from
  const std::string* name = nullptr;   ///< its name (set when queued)
  std::vector<reject> rejects;
  std::exception_ptr error; ///< the input fails after these rows and rejects

  void reset(const std::vector<col_type>& types) {
    if (cols.size() != types.size())
      cols.resize(types.size());
    for (size_t c = 0; c < types.size(); ++c)
      cols[c].type = types[c];
    rows = 0;
    file = 0;
    name = nullptr;
    rejects.clear();
    error = nullptr;
    for (auto& c : cols)
      if (c.valid.size() != capacity) // moved from
        capacity = 0;
    if (capacity == 0) {
      for (auto& c : cols) {
        column fresh;
        fresh.type = c.type;
        c = std::move(fresh);
      }
      grow(1024);
    }
  }

  /// Room for `cap` rows.
  void grow(size_t cap) {
    for (auto& c : cols) {
      c.valid.resize(cap);
      switch (c.type) {
        case col_type::i64: c.i64.resize(cap); break;
        case col_type::f64: c.f64.resize(cap); break;
        case col_type::f32: c.f32.resize(cap); break;
        case col_type::boolean: c.bools.resize(cap); break;
        case col_type::string:
          c.offsets.resize(cap + 1);
          c.offsets[0] = 0;
          if (c.chars.empty())
            c.chars.resize(16 * cap);
          break;
      }
    }
    capacity = cap;
  }
};

/// What the parsers share, read-only while they run: the columns and the null values.
class csv_layout {
public:
  csv_layout() = default;
  csv_layout(std::vector<std::string> names, std::vector<col_type> types, const std::vector<std::string>& nulls)
    : names_(std::move(names)), types_(std::move(types)), nulls_(nulls) {
    for (auto& n : nulls_) {
      if (n.size() < 64)
        null_lengths_ |= uint64_t{1} << n.size();
      else
        long_nulls_ = true;
      if (!n.empty())
        null_first_[static_cast<unsigned char>(n[0])] = true;
      // a null value that reads as a number or bool must be checked before the value is
      int64_t i;
      double d;
      bool b;
      nulls_parse_[static_cast<size_t>(col_type::i64)] |= parse_i64(n, i);
      nulls_parse_[static_cast<size_t>(col_type::f64)] |= parse_f64(n, d);
      nulls_parse_[static_cast<size_t>(col_type::f32)] |= parse_f64(n, d);
      nulls_parse_[static_cast<size_t>(col_type::boolean)] |= parse_bool(n, b);
    }
  }

  size_t columns() const { return types_.size(); }
  const std::vector<col_type>& types() const { return types_; }

  bool is_null(std::string_view v) const {
    if (v.size() < 64 ? ((null_lengths_ >> v.size()) & 1) == 0 : !long_nulls_)
      return false; // no null value has this length
    if (!v.empty() && !null_first_[static_cast<unsigned char>(v[0])])
      return false; // nor starts so
    for (auto& n : nulls_)
      if (n.size() == v.size() && std::memcmp(n.data(), v.data(), v.size()) == 0)
        return true;
    return false;
  }

  /// Appends a record of columns() fields as the next row of `b`, or, if a value does not
  /// parse as its column's type, adds it to b's rejects (leaving no partial row).
  void append(csv_batch& b, const std::string_view* fields, uint64_t line, std::string_view raw) const {
    if (b.rows == b.capacity)
      b.grow(2 * b.capacity);
    const size_t r = b.rows;
    for (size_t c = 0; c < types_.size(); ++c) {
      const std::string_view v = fields[c];
      auto& col = b.cols[c];
      const col_type t = types_[c];
      // a value that parses is no null unless some null value parses too
      if (t == col_type::i64 && !nulls_parse_[static_cast<size_t>(t)] && parse_i64_fast(v, col.i64[r])) {
        col.valid[r] = 1;
        continue;
      }
      if (t == col_type::f64 && !nulls_parse_[static_cast<size_t>(t)] && parse_f64_fast(v, col.f64[r])) {
        col.valid[r] = 1;
        continue;
      }
      const bool null = is_null(v);
      col.valid[r] = !null;
      bool ok = true;
      switch (t) {
        case col_type::i64:
          if (null)
            col.i64[r] = 0;
          else
            ok = parse_i64_fast(v, col.i64[r]);
          break;
        case col_type::f64:
          if (null)
            col.f64[r] = 0;
          else
            ok = parse_f64_fast(v, col.f64[r]);
          break;
        case col_type::f32: {
          double d = 0;
          ok = null || parse_f64_fast(v, d);
          col.f32[r] = static_cast<float>(d);
          break;
        }
        case col_type::boolean: {
          bool x = false;
          ok = null || parse_bool(v, x);
          col.bools[r] = x;
          break;
        }
        case col_type::string: {
          const uint32_t at = col.offsets[r];
          const size_t n = null ? 0 : v.size();
          if (at + n > col.chars.size()) {
            if (at + n > UINT32_MAX)
              throw sdk::error("a block of CSV text holds more than 4 GiB of strings", LOOM_ERR_UNSUPPORTED);
            col.chars.resize(std::max(2 * col.chars.size(), at + n));
          }
          if (n != 0)
            std::memcpy(col.chars.data() + at, v.data(), n);
          col.offsets[r + 1] = static_cast<uint32_t>(at + n);
          break;
        }
      }
      if (!ok) {
        b.rejects.push_back({b.rows, line,
                             "column '" + names_[c] + "': '" + std::string(v) + "' is not a valid " +
                               sdk::to_string(types_[c]),
                             std::string(raw)});
        return;
      }
    }
    ++b.rows;
  }

  /// The same as append() for each of n records in order (fields[i * columns() + c] is
  /// field c of record i), faster: column by column. Every field must be followed by at
  /// least 64 readable bytes (values are read and copied in whole words). If a value does
  /// not parse, the records go one by one through append().
  void append_group(csv_batch& b, const std::string_view* fields, size_t n, const uint64_t* lines,
                    const std::string_view* raws) const {
    const size_t ncols = types_.size();
    while (b.capacity < b.rows + n)
      b.grow(2 * b.capacity);
    const size_t base = b.rows;
    bool ok = true;
    for (size_t c = 0; c < ncols && ok; ++c) {
      auto& col = b.cols[c];
      const std::string_view* f = fields + c;
      uint8_t* valid = col.valid.data() + base;
      switch (types_[c]) {
        case col_type::i64:
          ok = parse_numbers(f, n, ncols, col.i64.data() + base, valid, col_type::i64,
                             [](std::string_view v, int64_t& x) { return parse_i64_padded(v, x); });
          break;
        case col_type::f64:
          ok = parse_numbers(f, n, ncols, col.f64.data() + base, valid, col_type::f64,
                             [](std::string_view v, double& x) { return parse_f64_padded(v, x); });
          break;
        case col_type::f32: {
          float* out = col.f32.data() + base;
          for (size_t i = 0; i < n && ok; ++i, f += ncols) {
            double d = 0;
            const bool null = is_null(*f);
            ok = null || parse_f64_padded(*f, d);
            valid[i] = !null;
            out[i] = static_cast<float>(d);
          }
          break;
        }
        case col_type::boolean: {
          uint8_t* out = col.bools.data() + base;
          for (size_t i = 0; i < n && ok; ++i, f += ncols) {
            bool x = false;
            const bool null = is_null(*f);
            ok = null || parse_bool(*f, x);
            valid[i] = !null;
            out[i] = x;
          }
          break;
        }
        case col_type::string: {
          size_t total = 0;
          for (size_t i = 0; i < n; ++i)
            total += f[i * ncols].size();
          uint32_t at = col.offsets[base];
          if (at + total + 64 > col.chars.size()) {
            if (at + total > UINT32_MAX)
              throw sdk::error("a block of CSV text holds more than 4 GiB of strings", LOOM_ERR_UNSUPPORTED);
            col.chars.resize(std::max(2 * col.chars.size(), at + total + 64));
          }
          char* chars = col.chars.data();
          uint32_t* offsets = col.offsets.data() + base + 1;
          for (size_t i = 0; i < n; ++i, f += ncols) {
            const bool null = is_null(*f);
            valid[i] = !null;
            const size_t len = null ? 0 : f->size();
            copy_padded(chars + at, f->data(), len);
            at += static_cast<uint32_t>(len);
            offsets[i] = at;
          }
          break;
        }
      }
    }
    if (ok) {
      b.rows += n;
      return;
    }
    for (size_t i = 0; i < n; ++i) // some value is bad: one record at a time, exactly
      append(b, fields + i * ncols, lines[i], raws[i]);
  }

private:
  /// Parses field i * stride of `f` (i < n) into out[i] with `parse`, a null into 0 and
  /// valid[i] = 0; false at the first value that is neither. Values that can be null
  /// and parse too (a null value "0") are checked for null first.
  template <class T, class Parse>
  bool parse_numbers(const std::string_view* f, size_t n, size_t stride, T* out, uint8_t* valid, col_type type,
                     Parse parse) const {
    const bool nulls_first = nulls_parse_[static_cast<size_t>(type)];
    for (size_t i = 0; i < n; ++i, f += stride) {
      if (!nulls_first && parse(*f, out[i])) {
        valid[i] = 1;
      } else if (is_null(*f)) {
        valid[i] = 0;
        out[i] = 0;
      } else {
        valid[i] = 1;
        if (!parse(*f, out[i]))
          return false;
      }
    }
    return true;
  }

  /// Copies n bytes; may read and write up to 64 bytes more than n (at least 64 readable
  /// after src, writable after dst).
  static void copy_padded(char* dst, const char* src, size_t n) {
#if defined(__SSE2__)
    if (n <= 64) {
      for (size_t k = 0; k < n; k += 16)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + k), _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k)));
      return;
    }
#endif
    std::memcpy(dst, src, n);
  }

  std::vector<std::string> names_;
  std::vector<col_type> types_;
  std::vector<std::string> nulls_;
  uint64_t null_lengths_ = 0;     ///< bit n: some null value has n characters
  bool long_nulls_ = false;       ///< some null value has 64 or more
  bool null_first_[256] = {};     ///< the first characters of the null values
  bool nulls_parse_[5] = {};      ///< by col_type: some null value parses as one
};

/// Parses the records that start in one chunk of a block into a batch. One per thread.
class csv_chunk_parser {
public:
  struct result {
    csv_batch batch;
    const char* end = nullptr; ///< where the first record not parsed starts
    uint64_t line_breaks = 0;  ///< in the records parsed
    bool need_more = false;    ///< stopped at a record that runs past the text read so far
    bool unterminated = false; ///< the last record never closes its quote (the input ends)
    std::exception_ptr error;
  };

  explicit csv_chunk_parser(char delim) : tok_(delim) {}

  /// The records that start in [p, limit) of the text [p, e), which ends the input if
  /// `eof` and is followed by at least 64 readable bytes. Line numbers in the rejects
  /// count from 0 at p. Never throws (errors go to out.error), so it can run on any
  /// thread.
  void run(const csv_layout& layout, const char* p, const char* limit, const char* e, bool eof,
           result& out) noexcept {
    try {
      tok_.forget(); // a new text
      tok_.keep_arena(true);
      auto& b = out.batch;
      const size_t ncols = layout.columns();
      fields_.resize(group * ncols);
      uint64_t lf = 0;
      bool stop = false;
      while (p < limit && !stop) {
        // a group of records; one with the wrong number of fields ends it
        tok_.clear_arena();
        size_t n = 0;
        while (n < group && p < limit) {
          auto st = tok_.next(p, e, eof, rec_);
          if (st == csv_tokenizer::status::need_more) {
            out.need_more = stop = true;
            break;
          }
          if (st == csv_tokenizer::status::unterminated) {
            layout.append_group(b, fields_.data(), n, lines_, raws_);
            n = 0;
            b.rejects.push_back({b.rows, lf, "unterminated quoted field", std::string(p, e)});
            lf += rec_.line_breaks;
            p = e;
            out.unterminated = stop = true;
            break;
          }
          const uint64_t line = lf;
          const std::string_view raw(p, static_cast<size_t>(rec_.raw_end - p));
          lf += rec_.line_breaks;
          p = rec_.next;
          if (raw.empty())
            continue; // a blank line
          if (rec_.fields.size() != ncols) {
            layout.append_group(b, fields_.data(), n, lines_, raws_);
            n = 0;
            b.rejects.push_back({b.rows, line,
                                 "expected " + std::to_string(ncols) + " fields, found " +
                                   std::to_string(rec_.fields.size()),
                                 std::string(raw)});
            continue;
          }
          std::string_view* to = fields_.data() + n * ncols;
          for (size_t c = 0; c < ncols; ++c) // (std::copy would call memmove)
            to[c] = rec_.fields[c];
          lines_[n] = line;
          raws_[n] = raw;
          ++n;
        }
        layout.append_group(b, fields_.data(), n, lines_, raws_);
      }
      out.end = p;
      out.line_breaks = lf;
    } catch (...) {
      out.error = std::current_exception();
    }
  }

private:
  static constexpr size_t group = 128; ///< records converted together

  csv_tokenizer tok_;
  csv_tokenizer::record rec_;
  std::vector<std::string_view> fields_; ///< of the group's records, record by record
  uint64_t lines_[group];
  std::string_view raws_[group];
};

class csv_table {
public:
  csv_table(csv_options o, std::vector<input_opener> inputs)
    : o_(std::move(o)), inputs_(std::move(inputs)), rejects_(o_.max_errors),
      frame_rows_(static_cast<size_t>(o_.frame_rows)), tok_(o_.delim) {
    size_t t = o_.threads > 0 ? static_cast<size_t>(o_.threads) : std::thread::hardware_concurrency();
    threads_ = std::clamp<size_t>(t, 1, o_.threads > 0 ? 256 : 8);
    block_bytes_ = threads_ * chunk_bytes;
    max_chunks_ = threads_ == 1 ? 1 : threads_ * chunks_per_thread;
  }

  ~csv_table() {
    if (producer_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(mtx_);
        stop_ = true;
      }
      cv_.notify_all();
      producer_.join();
    }
  }
  csv_table(const csv_table&) = delete;
  csv_table& operator=(const csv_table&) = delete;

  /// Emits at most one frame of rows (port `out`) and the rejects so far (port `rej`);
  /// true when the table is finished. With more than one thread, the blocks are parsed
  /// by a thread of the table's own, a block or two ahead of the frames.
  bool produce(sdk::context& ctx, uint32_t out = 0, uint32_t rej = 1) {
    if (!started_) {
      start();
      if (input_done_) // the sample was all there is
        blocks_done_ = true;
      else if (threads_ > 1)
        producer_ = std::thread([this] { produce_blocks(); });
    }
    if (ctx.cancelled())
      throw sdk::error("cancelled", LOOM_ERR_CANCELLED);
    while (queued_rows_ < frame_rows_ && !too_many_rejects() && !blocks_done_) {
      if (threads_ == 1) {
        if (input_done_) {
          blocks_done_ = true;
          break;
        }
        parse_block();
        take_ready();
        continue;
      }
      std::unique_lock<std::mutex> lock(mtx_);
      cv_.wait(lock, [&] { return !handoff_.empty() || producer_done_; });
      if (handoff_.empty()) { // the producer has finished
        blocks_done_ = true;
        if (producer_error_)
          std::rethrow_exception(producer_error_);
        break;
      }
      for (auto& b : handoff_) {
        queued_rows_ += b.rows;
        queued_rejects_ += b.rejects.size();
        queue_.push_back(std::move(b));
      }
      handoff_.clear();
      for (auto& b : free_) // recycled, for the producer
        pool_.push_back(std::move(b));
      free_.clear();
      lock.unlock();
      cv_.notify_all();
    }
    // one frame: rows of the queued batches in order; a reject is handled in the call
    // whose frame holds the row that follows it (or in the last call)
    size_t taken = 0;
    while (taken < frame_rows_ && !queue_.empty()) {
      auto& b = queue_.front();
      size_t k = std::min(frame_rows_ - taken, b.rows - cursor_);
      if (k > 0) {
        take_rejects(ctx, b, cursor_ + k - 1);
        append_rows(b, cursor_, k);
        taken += k;
        cursor_ += k;
        queued_rows_ -= k;
      }
      if (cursor_ == b.rows && taken < frame_rows_) { // the rejects after its last row come next
        take_rejects(ctx, b, SIZE_MAX);
        if (b.error)
          std::rethrow_exception(b.error);
        recycle(std::move(b));
        queue_.pop_front();
        cursor_ = 0;
        reject_cursor_ = 0;
      }
    }
    rejects_.flush(ctx, rej);
    if (taken > 0) {
      out_.end_rows(taken);
      ctx.emit(out, out_.finish(seq_++));
    }
    return queue_.empty() && blocks_done_;
  }

private:
  static constexpr size_t chunk_bytes = size_t{1} << 20; ///< text per thread and block
  static constexpr size_t chunks_per_thread = 4; ///< a block is cut into up to threads x this

  /// One input being read: its bytes in a buffer, where the next record starts and on
  /// which line.
  struct source {
    std::unique_ptr<named_input> in;
    size_t file = 0;
    static constexpr size_t pad = 64; ///< readable bytes after the text, for csv_layout::append_group
    std::unique_ptr<char[]> buf;      ///< cap + pad bytes; only [pos, end) is text
    size_t cap = 0, pos = 0, end = 0;
    bool eof = false;
    uint64_t line = 1;

    const char* data() const { return buf.get(); }
    /// Keeps the unread bytes (moved to the front; the buffer grows to `block` bytes, or
    /// doubles if they fill it) and reads as many more as fit.
    void fill(size_t block) {
      if (eof)
        return;
      if (pos > 0) {
        std::memmove(buf.get(), buf.get() + pos, end - pos);
        end -= pos;
        pos = 0;
      }
      if (end == cap || cap < block) {
        size_t n = std::max(end == cap ? 2 * cap : cap, block);
        auto bigger = std::make_unique_for_overwrite<char[]>(n + pad);
        std::memset(bigger.get() + n, 0, pad);
        if (end > 0)
          std::memcpy(bigger.get(), buf.get(), end);
        buf = std::move(bigger);
        cap = n;
      }
      auto want = static_cast<std::streamsize>(cap - end);
      in->in->read(buf.get() + end, want);
      auto got = in->in->gcount();
      end += static_cast<size_t>(got);
      if (got < want)
        eof = true;
    }

    // Reading ahead: while a block is parsed, the bytes after it are read into `ahead`,
    // after `head` bytes of room for the end of the block that no record finished.
    static constexpr size_t head = size_t{64} << 10;
    std::unique_ptr<char[]> ahead;
    size_t ahead_cap = 0, ahead_len = 0;
    bool ahead_eof = false, have_ahead = false;

    /// Reads up to `block` bytes ahead (not when at eof). Touches only `in` and ahead*,
    /// so it may run while the text in `buf` is parsed.
    void read_ahead(size_t block) {
      if (ahead_cap < head + block) {
        ahead = std::make_unique_for_overwrite<char[]>(head + block + pad);
        std::memset(ahead.get() + head + block, 0, pad);
        ahead_cap = head + block;
      }
      auto want = static_cast<std::streamsize>(block);
      in->in->read(ahead.get() + head, want);
      auto got = in->in->gcount();
      ahead_len = static_cast<size_t>(got);
      ahead_eof = got < want;
      have_ahead = true;
    }

    /// The text becomes the unparsed end of the block followed by the bytes read ahead.
    void take_ahead() {
      const size_t left = end - pos;
      if (left <= head) {
        std::memcpy(ahead.get() + head - left, buf.get() + pos, left);
        std::swap(buf, ahead);
        std::swap(cap, ahead_cap);
        pos = head - left;
        end = head + ahead_len;
      } else { // a record longer than the room: one buffer of both
        const size_t n = left + ahead_len;
        auto both = std::make_unique_for_overwrite<char[]>(n + pad);
        std::memset(both.get() + n, 0, pad);
        std::memcpy(both.get(), buf.get() + pos, left);
        std::memcpy(both.get() + left, ahead.get() + head, ahead_len);
        buf = std::move(both);
        cap = n;
        pos = 0;
        end = n;
      }
      eof = ahead_eof;
      have_ahead = false;
      ahead_len = 0;
    }
  };

  // ---- the header and the sample, one record at a time ----------------------------------

  /// The next record of the current input as strings (ok, eof or unterminated).
  csv_tokenizer::status next_record(source& s, csv_record& rec, bool& at_eof) {
    at_eof = false;
    for (;;) {
      if (s.pos == s.end) {
        if (s.eof) {
          at_eof = true;
          return csv_tokenizer::status::ok;
        }
        s.fill(block_bytes_);
        tok_.forget();
        continue;
      }
      const char* p = s.data() + s.pos;
      auto st = tok_.next(p, s.data() + s.end, s.eof, trec_);
      if (st == csv_tokenizer::status::need_more) {
        s.fill(block_bytes_);
        tok_.forget();
        continue;
      }
      rec.line = s.line;
      rec.file = s.file;
      rec.fields.assign(trec_.fields.begin(), trec_.fields.end());
      rec.raw.assign(p, trec_.raw_end);
      s.line += trec_.line_breaks;
      s.pos = static_cast<size_t>(trec_.next - s.data());
      return st;
    }
  }

  /// The next data record of any input (headers are consumed here); false at the end
  /// of the last input. Rejects go to `reject(file, line, reason, raw)`.
  template <class Reject>
  bool read(csv_record& rec, Reject&& reject) {
    while (!input_done_) {
      if (cur_ == nullptr && !open_next())
        return false;
      bool at_eof = false;
      auto st = next_record(*cur_, rec, at_eof);
      const std::string& file = file_names_[cur_->file];
      if (at_eof) {
        close_current();
        continue;
      }
      if (st == csv_tokenizer::status::unterminated) {
        reject(cur_->file, rec.line, "unterminated quoted field", rec.raw);
        close_current();
        continue;
      }
      if (rec.raw.empty())
        continue; // blank line
      if (need_header_) {
        need_header_ = false;
        if (!have_names_) {
          names_ = rec.fields;
          ncols_ = names_.size();
          have_names_ = true;
        } else if (rec.fields != names_) {
          throw sdk::error(file + ":" + std::to_string(rec.line) + ": the header (" + join(rec.fields) +
                             ") differs from the header of " + file_names_.front() + " (" + join(names_) +
                             "); all files of one table must have the same columns",
                           LOOM_ERR_BAD_DATA);
        }
        continue;
      }
      if (ncols_ == 0)
        ncols_ = rec.fields.size(); // no header: the first record decides
      if (rec.fields.size() != ncols_) {
        reject(cur_->file, rec.line,
               "expected " + std::to_string(ncols_) + " fields, found " + std::to_string(rec.fields.size()),
               rec.raw);
        continue;
      }
      return true;
    }
    return false;
  }

  bool open_next() {
    if (next_input_ >= inputs_.size()) {
      input_done_ = true;
      return false;
    }
    auto s = std::make_unique<source>();
    s->in = inputs_[next_input_++]();
    s->file = file_names_.size();
    file_names_.push_back(s->in->name);
    s->fill(small_block_bytes); // the next fill grows it to a whole block

    if (s->end >= 3 && std::memcmp(s->data(), "\xEF\xBB\xBF", 3) == 0)
      s->pos = 3; // UTF-8 byte order mark
    cur_ = std::move(s);
    tok_.forget();
    need_header_ = o_.header;
    return true;
  }

  void close_current() {
    auto s = std::move(cur_);
    s->in->check();
  }

  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i)
      s += (i ? "," : "") + v[i];
    return s;
  }

  void start() {
    started_ = true;
    // the sample, with the records rejected among them (those with a reason)
    struct sampled {
      csv_record rec;
      std::string reason;
    };
    std::vector<sampled> sample;
    size_t records = 0, rejected = 0;
    auto reject_later = [&](size_t file, uint64_t line, const std::string& reason, const std::string& raw) {
      sample.push_back({{{}, line, raw, file}, reason});
      ++rejected;
    };
    csv_record rec;
    while (records < static_cast<size_t>(o_.infer_rows) &&
           (o_.max_errors < 0 || rejected <= static_cast<uint64_t>(o_.max_errors)) && read(rec, reject_later)) {
      sample.push_back({rec, {}});
      ++records;
    }
    if (records == 0 && !have_names_)
      throw sdk::error((file_names_.empty() ? std::string("input") : file_names_.front()) +
                         ": no records (the input is empty)",
                       LOOM_ERR_BAD_DATA);
    if (!o_.header)
      for (size_t i = 0; i < ncols_; ++i)
        names_.push_back("c" + std::to_string(i));
    csv_layout probe({}, {}, o_.null_values);
    std::vector<col_type> types(ncols_, col_type::string);
    for (size_t c = 0; c < ncols_; ++c) {
      bool seen = false, can_i64 = true, can_f64 = true, can_bool = true;
      for (auto& [r, reason] : sample) {
        if (!reason.empty())
          continue;
        auto& v = r.fields[c];
        if (probe.is_null(v))
          continue;
        seen = true;
        int64_t i;
        double d;
        bool b;
        can_i64 = can_i64 && parse_i64(v, i);
        can_f64 = can_f64 && parse_f64(v, d);
        can_bool = can_bool && parse_bool(v, b);
      }
      types[c] = !seen     ? col_type::string
                 : can_i64 ? col_type::i64
                 : can_f64 ? col_type::f64
                 : can_bool ? col_type::boolean
                            : col_type::string;
    }
    if (o_.schema.is_object())
      for (auto& [key, value] : o_.schema.items()) {
        auto it = std::find(names_.begin(), names_.end(), key);
        if (it == names_.end())
          throw sdk::error("schema names column '" + key + "', which is not in " + file_names_.front() +
                           " (columns: " + join(names_) + ")");
        types[it - names_.begin()] = type_from_name(value.get<std::string>(), key);
      }
    for (size_t c = 0; c < ncols_; ++c)
      out_.add_column(names_[c], types[c], true);
    layout_ = csv_layout(names_, types, o_.null_values);
    size_t sample_bytes = 0;
    for (auto& [r, reason] : sample)
      sample_bytes += r.raw.size() + 1;
    if (records > 64)
      row_bytes_ = std::max<size_t>(1, sample_bytes / sample.size());
    // the sample's rows and rejects come first, in the order of the input, like those of
    // the blocks after it
    csv_batch b = fresh_batch();
    b.file = sample.empty() ? 0 : sample.front().rec.file;
    std::vector<std::string_view> views(ncols_);
    for (auto& [r, reason] : sample) {
      if (r.file != b.file) {
        enqueue(std::move(b));
        b = fresh_batch();
        b.file = r.file;
      }
      if (!reason.empty()) {
        b.rejects.push_back({b.rows, r.line, std::move(reason), std::move(r.raw)});
        continue;
      }
      for (size_t c = 0; c < ncols_; ++c)
        views[c] = r.fields[c];
      layout_.append(b, views.data(), r.line, r.raw);
    }
    enqueue(std::move(b));
    take_ready();
  }

  // ---- the producer ----------------------------------------------------------------------
  //
  // parse_block() and what it calls (inputs, cur_, file_names_, parsers, spare_, ready_,
  // input_done_) run on the producer thread, or inline with one thread; produce() touches
  // only the queue and the output. They meet under mtx_: handoff_ (batches made), pool_
  // (batches to reuse), producer_done_, producer_error_, stop_.

  /// The producer thread: parses blocks, at most a few batches ahead of the frames.
  void produce_blocks() noexcept {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mtx_);
        cv_.wait(lock, [&] { return stop_ || handoff_.size() < max_chunks_ + 1; }); // about a block ahead
        if (stop_)
          return;
        while (!pool_.empty() && spare_.size() < 2 * max_chunks_ + 2) {
          spare_.push_back(std::move(pool_.back()));
          pool_.pop_back();
        }
      }
      std::exception_ptr error;
      try {
        parse_block();
      } catch (...) {
        error = std::current_exception();
      }
      // past max_errors the table fails once the rejects are taken: no need to read on
      const bool done = input_done_ || error || (o_.max_errors >= 0 && made_rejects_ > static_cast<uint64_t>(o_.max_errors));
      {
        std::lock_guard<std::mutex> lock(mtx_);
        for (auto& b : ready_)
          handoff_.push_back(std::move(b));
        producer_error_ = error;
        producer_done_ = done;
      }
      ready_.clear();
      cv_.notify_all();
      if (done)
        return;
    }
  }

  /// What parse_block() (or start()) made, to the queue (inline, no producer thread).
  void take_ready() {
    for (auto& b : ready_) {
      queued_rows_ += b.rows;
      queued_rejects_ += b.rejects.size();
      queue_.push_back(std::move(b));
    }
    ready_.clear();
    while (!free_.empty() && spare_.size() < 2 * max_chunks_ + 2) {
      spare_.push_back(std::move(free_.back()));
      free_.pop_back();
    }
  }

  // ---- blocks ------------------------------------------------------------------------------

  /// Parses the next block of the current input (or opens the next input, reading its
  /// header) and queues the batches.
  void parse_block() {
    if (cur_ == nullptr) {
      csv_batch b = fresh_batch();
      try {
        if (!open_next())
          return;
        b.file = cur_->file;
        if (need_header_) {
          // the header of a further file of a glob: check it, and nothing else
          csv_record rec;
          auto reject_later = [&](size_t, uint64_t line, const std::string& reason, const std::string& raw) {
            b.rejects.push_back({0, line, reason, raw});
          };
          while (cur_ != nullptr && need_header_) {
            bool at_eof = false;
            auto st = next_record(*cur_, rec, at_eof);
            if (at_eof) {
              close_current();
            } else if (st == csv_tokenizer::status::unterminated) {
              reject_later(cur_->file, rec.line, "unterminated quoted field", rec.raw);
              close_current();
            } else if (!rec.raw.empty()) {
              need_header_ = false;
              if (rec.fields != names_)
                throw sdk::error(file_names_[cur_->file] + ":" + std::to_string(rec.line) + ": the header (" +
                                   join(rec.fields) + ") differs from the header of " + file_names_.front() +
                                   " (" + join(names_) + "); all files of one table must have the same columns",
                                 LOOM_ERR_BAD_DATA);
            }
          }
        }
      } catch (...) {
        b.error = std::current_exception();
        input_done_ = true; // the table fails once the rows before this are out
      }
      enqueue(std::move(b));
      return;
    }
    source& s = *cur_;
    if (s.have_ahead)
      s.take_ahead();
    if (s.pos == s.end && s.eof) {
      csv_batch b = fresh_batch();
      b.file = s.file;
      try {
        close_current();
      } catch (...) {
        b.error = std::current_exception();
        input_done_ = true;
      }
      enqueue(std::move(b));
      return;
    }
    if (s.cap < block_bytes_) // the first block: read now (later ones are read ahead)
      s.fill(block_bytes_);
    const char* const begin = s.data() + s.pos;
    const char* const e = s.data() + s.end;

    // the chunks: [cuts[k], cuts[k + 1]), each ending after an LF outside quotes (by
    // parity, counted from the start of the block, which starts a record)
    std::vector<const char*> cuts{begin};
    const size_t total = static_cast<size_t>(e - begin);
    size_t n = std::min(max_chunks_, std::max<size_t>(1, total / min_chunk_bytes));
    for (size_t k = 1; k < n; ++k) {
      const char* from = cuts.back(); // starts a record: even parity
      const char* t = begin + total * k / n;
      if (t <= from)
        continue;
      bool odd = csv_odd_quotes(from, t);
      const char* p = t;
      for (; p < e; ++p) {
        if (*p == '"')
          odd = !odd;
        else if (*p == '\n' && !odd)
          break;
      }
      if (p + 1 >= e)
        break; // the rest is one record
      cuts.push_back(p + 1);
    }
    n = cuts.size();
    cuts.push_back(e);

    const size_t workers_n = std::min(threads_, n); // parsing threads, this one included
    while (parsers_.size() < workers_n)
      parsers_.emplace_back(o_.delim);
    results_.resize(std::max(results_.size(), n));
    for (size_t k = 0; k < n; ++k) {
      auto& r = results_[k];
      r.batch = fresh_batch();
      // room for the rows expected (from the bytes per row so far), not grown row by row
      const auto bytes = static_cast<size_t>(cuts[k + 1] - cuts[k]);
      const size_t expect = row_bytes_ > 0 ? bytes / row_bytes_ + bytes / row_bytes_ / 8 + 64 : 0;
      if (r.batch.capacity < expect)
        r.batch.grow(expect);
      r.end = nullptr;
      r.line_breaks = 0;
      r.need_more = r.unterminated = false;
      r.error = nullptr;
    }
    std::exception_ptr read_error;
    {
      std::vector<std::jthread> workers;
      if (!s.eof) // the next block, meanwhile
        workers.emplace_back([&] {
          try {
            s.read_ahead(block_bytes_);
          } catch (...) {
            read_error = std::current_exception();
          }
        });
      // more chunks than threads, taken in turn: a thread that the frames (or the read
      // ahead) slow down takes fewer, and no thread waits long for another at the end
      std::atomic<size_t> next{0};
      auto parse_chunks = [&](size_t t) {
        for (size_t k; (k = next.fetch_add(1, std::memory_order_relaxed)) < n;)
          parsers_[t].run(layout_, cuts[k], cuts[k + 1], e, s.eof, results_[k]);
      };
      for (size_t t = 1; t < workers_n; ++t)
        workers.emplace_back(parse_chunks, t);
      parse_chunks(0);
    } // joined
    if (read_error)
      std::rethrow_exception(read_error);

    // keep the chunks in order while each one ended where the next begins
    for (size_t k = 0; k < n; ++k) {
      auto& r = results_[k];
      if (r.error)
        std::rethrow_exception(r.error);
      if (r.batch.rows > 64)
        row_bytes_ = std::max<size_t>(1, static_cast<size_t>(r.end - cuts[k]) / r.batch.rows);
      r.batch.file = s.file;
      for (auto& rj : r.batch.rejects)
        rj.line += s.line;
      s.line += r.line_breaks;
      s.pos = static_cast<size_t>(r.end - s.data());
      enqueue(std::move(r.batch));
      if (r.need_more || r.unterminated || r.end != cuts[k + 1]) {
        for (size_t j = k + 1; j < n; ++j)
          spare_.push_back(std::move(results_[j].batch));
        break;
      }
    }
  }

  // ---- batches ---------------------------------------------------------------------------

  /// An empty batch for parse_block() (or start()).
  csv_batch fresh_batch() {
    csv_batch b;
    if (!spare_.empty()) {
      b = std::move(spare_.back());
      spare_.pop_back();
    }
    b.reset(layout_.types());
    return b;
  }

  /// A batch parse_block() (or start()) made, ready for the queue.
  void enqueue(csv_batch&& b) {
    if (b.rows == 0 && b.rejects.empty() && !b.error) {
      spare_.push_back(std::move(b));
      return;
    }
    b.name = &file_names_[b.file]; // a deque: stays put
    made_rejects_ += b.rejects.size();
    ready_.push_back(std::move(b));
  }

  /// A batch the queue is done with.
  void recycle(csv_batch&& b) {
    if (free_.size() < 2 * max_chunks_ + 2)
      free_.push_back(std::move(b));
  }

  bool too_many_rejects() const {
    return o_.max_errors >= 0 && rejects_.count() + queued_rejects_ > static_cast<uint64_t>(o_.max_errors);
  }

  /// Hands the rejects of b that come before row `row` (all for SIZE_MAX) to the log.
  void take_rejects(sdk::context& ctx, const csv_batch& b, size_t row) {
    while (reject_cursor_ < b.rejects.size() && b.rejects[reject_cursor_].at <= row) {
      auto& rj = b.rejects[reject_cursor_++];
      --queued_rejects_;
      rejects_.add(ctx, *b.name, rj.line, rj.reason, rj.raw);
    }
  }

  /// Appends rows [from, from + n) of b to the frame being built.
  void append_rows(const csv_batch& b, size_t from, size_t n) {
    for (size_t c = 0; c < b.cols.size(); ++c) {
      auto& col = b.cols[c];
      const uint8_t* valid = col.valid.data() + from;
      switch (col.type) {
        case col_type::i64: out_.append_i64s(c, {col.i64.data() + from, n}, valid); break;
        case col_type::f64: out_.append_f64s(c, {col.f64.data() + from, n}, valid); break;
        case col_type::f32: out_.append_f32s(c, {col.f32.data() + from, n}, valid); break;
        case col_type::boolean: out_.append_bools(c, {col.bools.data() + from, n}, valid); break;
        case col_type::string: out_.append_strings(c, {col.offsets.data() + from, n + 1}, col.chars.data(), valid); break;
      }
    }
  }

  static constexpr size_t small_block_bytes = size_t{64} << 10; ///< the first read of an input
  static constexpr size_t min_chunk_bytes = size_t{256} << 10; ///< smaller blocks are not split

  csv_options o_;
  std::vector<input_opener> inputs_;
  reject_log rejects_;
  size_t frame_rows_;
  size_t threads_ = 1, block_bytes_ = chunk_bytes, max_chunks_ = 1;

  // reading
  size_t next_input_ = 0;
  std::unique_ptr<source> cur_;
  std::deque<std::string> file_names_; ///< every input opened so far, in order
  bool started_ = false, input_done_ = false;
  bool need_header_ = false, have_names_ = false;
  std::vector<std::string> names_;
  size_t ncols_ = 0;
  csv_tokenizer tok_;
  csv_tokenizer::record trec_;
  csv_layout layout_;
  size_t row_bytes_ = 0; ///< bytes per row seen (0: none yet)
  std::deque<csv_chunk_parser> parsers_;
  std::vector<csv_chunk_parser::result> results_;

  // parsed, not yet emitted
  std::vector<csv_batch> spare_, ready_; ///< the producer's empty and done batches
  uint64_t made_rejects_ = 0;            ///< in all batches made (the sample's included)

  // between the producer and produce()
  std::thread producer_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<csv_batch> handoff_, pool_;
  bool producer_done_ = false, stop_ = false;
  std::exception_ptr producer_error_;
  bool blocks_done_ = false; ///< produce(): no more batches will come

  // parsed, not yet emitted
  std::deque<csv_batch> queue_;
  size_t cursor_ = 0, reject_cursor_ = 0; ///< in queue_.front()
  size_t queued_rows_ = 0, queued_rejects_ = 0;
  std::vector<csv_batch> free_;

  sdk::frame_builder out_;
  uint64_t seq_ = 0;
};

} // namespace loom::ops
