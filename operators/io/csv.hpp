// RFC 4180 reading and writing shared by ingest.csv and sink.csv.
#pragma once

#include <loom/sdk.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace loom::ops {

/// Splits CSV text in memory into records (RFC 4180): quoted fields, doubled quotes,
/// delimiters and line breaks inside quotes, CRLF or LF line ends. A quote opens a
/// quoted field only at the start of a field; anywhere else it is data, and so is a CR
/// not followed by LF. Text after a closing quote belongs to the field (`"ab"c` is
/// `abc`).
///
/// Nothing is copied: a field is a view into the text, except a quoted field with a
/// doubled quote (or text after its closing quote), which is put together in the
/// tokenizer's own arena. The views are valid while the text is and until the next
/// call, or with keep_arena(true) until clear_arena(). An arena field is followed by at
/// least 64 readable bytes. Not thread-safe: one tokenizer per thread.
class csv_tokenizer {
public:
  enum class status {
    ok,          ///< a record
    need_more,   ///< the record runs past the end of the text, and more text may follow
    unterminated ///< a quoted field runs to the end of the input (the text is all there is)
  };

  struct record {
    std::vector<std::string_view> fields;
    const char* raw_end = nullptr; ///< the record's text ends here (its line break excluded)
    const char* next = nullptr;    ///< where the following record starts
    uint64_t line_breaks = 0;      ///< LFs in the record: inside quotes and the one ending it
  };

  explicit csv_tokenizer(char delimiter) : delim_(delimiter) {
#if defined(__SSE2__)
    delim16_ = _mm_set1_epi8(delimiter);
#endif
  }

  /// Tokenizes the record that starts at `p` in the text [p, e) (p < e); `eof`: the
  /// input ends at e. On `unterminated` the record is the rest of the text (raw_end =
  /// next = e) and its last field holds everything after the opening quote. Calls on
  /// the same text should go forward (each from where the last ended, or past it); call
  /// forget() when the bytes of the text change.
  status next(const char* p, const char* const e, const bool eof, record& r) {
    if (e != end_ || p < window_) {
      end_ = e;
      window_ = e; // no window yet
      run_ = quoted_ = 0;
    }
    // the window, in registers while the record is read
    const char* win = window_;
    uint64_t run = run_, quoted = quoted_;
    r.fields.clear();
    if (!keep_arena_)
      clear_arena();
    uint64_t lf = 0;
    status st = status::ok;
    // the first bit set in `bits` (run: delimiter, LF or CR; quoted: quote or LF) at or
    // after q, or e; `bits` is `run` or `quoted`, both refilled as the window moves
    auto next_of = [&](const char* q, const uint64_t& bits) __attribute__((always_inline)) -> const char* {
      for (;;) {
        const auto off = static_cast<size_t>(q - win);
        if (off < 64) {
          if (uint64_t m = bits >> off)
            return q + __builtin_ctzll(m);
          q = win + 64;
        }
        if (q >= e)
          return e;
        win = q;
        const masks m = load(q, e);
        run = m.run;
        quoted = m.quoted;
      }
    };
    auto next_run = [&](const char* q) __attribute__((always_inline)) { return next_of(q, run); };
    auto next_quoted = [&](const char* q) __attribute__((always_inline)) { return next_of(q, quoted); };
    // the end of a run of field text: the first delimiter, LF, or CR of a CRLF at or
    // after q, or e; nullptr when it reaches e and more text may follow. Quotes and lone
    // CRs are data.
    auto scan_run = [&](const char* q) __attribute__((always_inline)) -> const char* {
      for (;;) {
        q = next_run(q);
        if (q == e)
          return eof ? q : nullptr;
        if (*q != '\r')
          return q;
        if (q + 1 == e)
          return eof ? e : nullptr; // a CR at the very end is data
        if (q[1] == '\n')
          return q;
        ++q; // a lone CR
      }
    };
    for (;;) {
      // one field; p is at its first character (or at e)
      const char* value = p; // the value is [value, p) unless it is in the arena
      bool in_arena = false;
      if (p < e && *p == '"') {
        value = ++p;
        const char* seg = p; // quoted text not yet copied to the arena
        const char* q = p;
        field_ = used_; // where an arena value would start
        for (;;) {
          q = next_quoted(q);
          if (q == e) {
            if (!eof) {
              st = status::need_more;
              goto done;
            }
            if (in_arena)
              to_arena(seg, e);
            push(r, in_arena, value, e);
            r.raw_end = r.next = e;
            st = status::unterminated;
            goto done;
          }
          if (*q == '\n') {
            ++lf;
            ++q;
            continue;
          }
          if (q + 1 == e && !eof) {
            st = status::need_more; // a doubled quote or a closing one?
            goto done;
          }
          if (q + 1 < e && q[1] == '"') {
            in_arena = true;
            to_arena(seg, q + 1); // the text and one quote
            seg = q += 2;
            continue;
          }
          break; // q is the closing quote
        }
        const char* after = q + 1;
        p = scan_run(after);
        if (p == nullptr) {
          st = status::need_more;
          goto done;
        }
        if (p != after) // text after the closing quote
          in_arena = true;
        if (in_arena) {
          to_arena(seg, q);
          to_arena(after, p);
        }
        push(r, in_arena, value, q);
      } else {
        p = scan_run(p);
        if (p == nullptr) {
          st = status::need_more;
          goto done;
        }
        push(r, false, value, p);
      }
      // p is at the delimiter, the line break, or e (only when eof)
      if (p == e) {
        r.raw_end = r.next = e;
        break;
      }
      if (*p == delim_) {
        ++p;
        continue;
      }
      ++lf;
      r.raw_end = p;
      r.next = p + (*p == '\r' ? 2 : 1);
      break;
    }
  done:
    window_ = win;
    run_ = run;
    quoted_ = quoted;
    r.line_breaks = lf;
    return st;
  }

  /// With `keep`, arena fields stay valid across calls until clear_arena().
  void keep_arena(bool keep) { keep_arena_ = keep; }
  void clear_arena() {
    block_ = 0;
    used_ = field_ = 0;
  }

  /// Drops what the tokenizer knows of the text (call when its bytes change).
  void forget() {
    end_ = window_ = nullptr;
    run_ = quoted_ = 0;
  }

private:
  struct masks {
    uint64_t run, quoted;
  };

  /// The masks of the 64 bytes at p (fewer at e): bit i of `run` is set when p[i] is the
  /// delimiter, LF or CR, of `quoted` when it is a quote or LF.
  masks load(const char* p, const char* e) const {
    const size_t n = static_cast<size_t>(e - p);
    if (n >= 64) [[likely]]
      return masks64(p);
    char tail[64];
    std::memcpy(tail, p, n);
    std::memset(tail + n, 0, 64 - n);
    masks m = masks64(tail);
    const uint64_t keep = (uint64_t{1} << n) - 1;
    return {m.run & keep, m.quoted & keep};
  }

  masks masks64(const char* p) const {
    uint64_t run = 0, quoted = 0;
#if defined(__SSE2__)
    const __m128i d = delim16_, q = _mm_set1_epi8('"'), lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
    for (int k = 0; k < 4; ++k) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
      __m128i is_lf = _mm_cmpeq_epi8(v, lf);
      __m128i r = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, d), is_lf), _mm_cmpeq_epi8(v, cr));
      __m128i qq = _mm_or_si128(_mm_cmpeq_epi8(v, q), is_lf);
      run |= static_cast<uint64_t>(static_cast<unsigned>(_mm_movemask_epi8(r))) << (16 * k);
      quoted |= static_cast<uint64_t>(static_cast<unsigned>(_mm_movemask_epi8(qq))) << (16 * k);
    }
#else
    for (int i = 0; i < 64; ++i) {
      const char ch = p[i];
      run |= static_cast<uint64_t>(ch == delim_ || ch == '\n' || ch == '\r') << i;
      quoted |= static_cast<uint64_t>(ch == '"' || ch == '\n') << i;
    }
#endif
    return {run, quoted};
  }

  /// Adds a field: [value, end) of the text, or the value being put together in the arena.
  __attribute__((always_inline)) void push(record& r, bool in_arena, const char* value, const char* end) {
    if (in_arena)
      r.fields.emplace_back(blocks_[block_].data.get() + field_, used_ - field_);
    else
      r.fields.emplace_back(value, static_cast<size_t>(end - value));
  }

  /// Appends [b, e) to the value being put together (from field_ to used_ of the
  /// current block). A value that does not fit moves to a new block: blocks never move,
  /// so the values already made stay where they are.
  void to_arena(const char* b, const char* e) {
    const size_t n = static_cast<size_t>(e - b);
    if (blocks_.empty() || used_ + n > blocks_[block_].cap) {
      const size_t have = used_ - field_;
      size_t next = blocks_.empty() ? 0 : block_ + 1;
      if (next < blocks_.size() && blocks_[next].cap < have + n)
        blocks_.resize(next); // too small to reuse
      if (next == blocks_.size()) {
        size_t cap = std::max<size_t>(size_t{64} << 10, 2 * (have + n));
        auto data = std::make_unique_for_overwrite<char[]>(cap + 64); // readable slack
        std::memset(data.get() + cap, 0, 64);
        blocks_.push_back({std::move(data), cap});
      }
      if (have != 0)
        std::memcpy(blocks_[next].data.get(), blocks_[block_].data.get() + field_, have);
      block_ = next;
      field_ = 0;
      used_ = have;
    }
    std::memcpy(blocks_[block_].data.get() + used_, b, n);
    used_ += n;
  }

  struct block {
    std::unique_ptr<char[]> data;
    size_t cap = 0;
  };
  char delim_;
#if defined(__SSE2__)
  __m128i delim16_;
#endif
  const char* end_ = nullptr;    ///< of the text the window is in
  const char* window_ = nullptr; ///< 64 bytes from here (fewer at end_) are in the masks
  uint64_t run_ = 0, quoted_ = 0; ///< see load()
  std::vector<block> blocks_; ///< the arena: unescaped values
  size_t block_ = 0, used_ = 0, field_ = 0;
  bool keep_arena_ = false;
};

/// Whether [p, e) holds an odd number of '"'.
inline bool csv_odd_quotes(const char* p, const char* e) {
  unsigned odd = 0;
#if defined(__SSE2__)
  const __m128i q = _mm_set1_epi8('"');
  __m128i acc = _mm_setzero_si128(); // per byte lane: the parity of the quotes seen there
  while (e - p >= 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    acc = _mm_xor_si128(acc, _mm_cmpeq_epi8(v, q));
    p += 16;
  }
  for (unsigned m = static_cast<unsigned>(_mm_movemask_epi8(acc)); m != 0; m &= m - 1)
    odd ^= 1;
#endif
  for (; p < e; ++p)
    odd ^= *p == '"';
  return odd != 0;
}

/// Appends `field` to `out`, quoted if it contains the delimiter, a quote or a line break.
inline void csv_append_field(std::string& out, std::string_view field, char delimiter) {
  bool quote = field.find_first_of(std::string{delimiter, '"', '\n', '\r'}) != std::string_view::npos;
  if (!quote) {
    out.append(field);
    return;
  }
  out.push_back('"');
  for (char ch : field) {
    if (ch == '"')
      out.push_back('"');
    out.push_back(ch);
  }
  out.push_back('"');
}

/// The one-character delimiter named by a parameter ("," ";" "|" "\t" or "tab").
inline char csv_delimiter(const std::string& text) {
  if (text == "\\t" || text == "tab")
    return '\t';
  if (text.size() != 1 || text[0] == '"' || text[0] == '\n' || text[0] == '\r')
    throw loom::sdk::error("delimiter must be one character other than a quote or line break, got '" +
                                text + "'");
  return text[0];
}

} // namespace loom::ops
