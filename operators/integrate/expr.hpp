// The expression language of `derive`: a recursive-descent parser into a small typed
// tree, a type checker (run once without column types, at construction, and again
// with the real column types, at the first frame) and a row-at-a-time evaluator.
//
//   expr    := or
//   or      := and ('or' and)*
//   and     := not ('and' not)*
//   not     := 'not' not | compare
//   compare := sum (('=='|'!='|'<'|'<='|'>'|'>=') sum)?
//   sum     := product (('+'|'-') product)*
//   product := unary (('*'|'/'|'%') unary)*
//   unary   := '-' unary | primary
//   primary := number | string | true | false | null | name '(' args ')' | name
//            | `quoted name` | '(' expr ')'
//
// Positions in messages are 0-based character offsets into the expression.
#pragma once

#include "integrate.hpp"

#include <loom/parse.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace loom::ops::integrate::expr {

/// Static (and dynamic) value types. `null` is the type of the literal null; `any` is a
/// column whose type is not known yet (before the first frame).
enum class vtype { null, boolean, i64, f64, string, any };

inline const char* type_name(vtype t) {
  switch (t) {
    case vtype::null: return "null";
    case vtype::boolean: return "bool";
    case vtype::i64: return "i64";
    case vtype::f64: return "f64";
    case vtype::string: return "string";
    case vtype::any: return "any";
  }
  return "?";
}

inline vtype from_col(col_type t) {
  switch (t) {
    case col_type::f32:
    case col_type::f64: return vtype::f64;
    case col_type::i64: return vtype::i64;
    case col_type::boolean: return vtype::boolean;
    case col_type::string: return vtype::string;
  }
  return vtype::any;
}

inline col_type to_col(vtype t) {
  switch (t) {
    case vtype::boolean: return col_type::boolean;
    case vtype::i64: return col_type::i64;
    case vtype::f64: return col_type::f64;
    default: return col_type::string; // string, and an always-null expression
  }
}

struct value {
  vtype t = vtype::null;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string s;

  bool null() const { return t == vtype::null; }
  double num() const { return t == vtype::i64 ? static_cast<double>(i) : d; }
  static value of_bool(bool v) { value x; x.t = vtype::boolean; x.b = v; return x; }
  static value of_i64(int64_t v) { value x; x.t = vtype::i64; x.i = v; return x; }
  static value of_f64(double v) { value x; x.t = vtype::f64; x.d = v; return x; }
  static value of_str(std::string v) { value x; x.t = vtype::string; x.s = std::move(v); return x; }
  std::string text() const {
    switch (t) {
      case vtype::boolean: return b ? "true" : "false";
      case vtype::i64: return number_text(i);
      case vtype::f64: return number_text(d);
      case vtype::string: return s;
      default: return {};
    }
  }
};

/// A syntax or type error; `pos` is the offset it points at.
struct syntax_error {
  std::string what;
  size_t pos;
};

/// A value that makes one row fail (the row is rejected with this reason).
struct row_error {
  std::string what;
};

enum class kind { literal, column, unary_minus, not_, binary, and_, or_, call };

struct node {
  kind k = kind::literal;
  std::string op; ///< operator or function name
  size_t pos = 0;
  value lit;
  std::string name; ///< column name
  int slot = -1;    ///< bound: index into the row's value getters
  std::vector<std::unique_ptr<node>> args;
  vtype type = vtype::any;
};

// ---- the parser ---------------------------------------------------------------------

class parser {
public:
  explicit parser(std::string_view text) : s_(text) {}

  std::unique_ptr<node> parse() {
    skip();
    if (p_ >= s_.size())
      fail("empty expression", 0);
    auto n = parse_or();
    skip();
    if (p_ < s_.size())
      fail("unexpected " + describe_here(), p_);
    return n;
  }

private:
  [[noreturn]] void fail(std::string what, size_t pos) { throw syntax_error{std::move(what), pos}; }

  void skip() {
    while (p_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[p_])))
      ++p_;
  }
  std::string describe_here() {
    if (p_ >= s_.size())
      return "end of expression";
    size_t e = p_;
    if (is_ident_start(s_[e]))
      while (e < s_.size() && is_ident_char(s_[e]))
        ++e;
    else
      ++e;
    return "'" + std::string(s_.substr(p_, e - p_)) + "'";
  }
  static bool is_ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
  static bool is_ident_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
  }
  /// Is the next token the keyword `kw` (any case)?
  bool keyword(std::string_view kw) {
    skip();
    if (p_ + kw.size() > s_.size())
      return false;
    for (size_t i = 0; i < kw.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(s_[p_ + i])) != kw[i])
        return false;
    if (p_ + kw.size() < s_.size() && is_ident_char(s_[p_ + kw.size()]))
      return false;
    return true;
  }
  bool symbol(std::string_view sym) {
    skip();
    return s_.substr(p_, sym.size()) == sym;
  }
  void expect(char c) {
    skip();
    if (p_ >= s_.size() || s_[p_] != c)
      fail(std::string("expected '") + c + "' but found " + describe_here(), p_);
    ++p_;
  }

  static std::unique_ptr<node> make(kind k, std::string op, size_t pos) {
    auto n = std::make_unique<node>();
    n->k = k;
    n->op = std::move(op);
    n->pos = pos;
    return n;
  }
  static std::unique_ptr<node> binary(kind k, std::string op, size_t pos, std::unique_ptr<node> a,
                                      std::unique_ptr<node> b) {
    auto n = make(k, std::move(op), pos);
    n->args.push_back(std::move(a));
    n->args.push_back(std::move(b));
    return n;
  }

  std::unique_ptr<node> parse_or() {
    auto l = parse_and();
    while (keyword("or")) {
      size_t at = p_;
      p_ += 2;
      l = binary(kind::or_, "or", at, std::move(l), parse_and());
    }
    return l;
  }
  std::unique_ptr<node> parse_and() {
    auto l = parse_not();
    while (keyword("and")) {
      size_t at = p_;
      p_ += 3;
      l = binary(kind::and_, "and", at, std::move(l), parse_not());
    }
    return l;
  }
  std::unique_ptr<node> parse_not() {
    if (keyword("not")) {
      auto n = make(kind::not_, "not", p_);
      p_ += 3;
      n->args.push_back(parse_not());
      return n;
    }
    return parse_compare();
  }
  std::unique_ptr<node> parse_compare() {
    auto l = parse_sum();
    for (std::string_view op : {"==", "!=", "<=", ">=", "<", ">"}) {
      if (symbol(op)) {
        size_t at = p_;
        p_ += op.size();
        auto n = binary(kind::binary, std::string(op), at, std::move(l), parse_sum());
        skip();
        for (std::string_view again : {"==", "!=", "<", ">"})
          if (symbol(again))
            fail("comparisons do not chain: use 'and' before " + describe_here(), p_);
        return n;
      }
    }
    skip();
    if (p_ < s_.size() && s_[p_] == '=')
      fail("unexpected '=': compare with '=='", p_);
    return l;
  }
  std::unique_ptr<node> parse_sum() {
    auto l = parse_product();
    for (;;) {
      skip();
      if (p_ < s_.size() && (s_[p_] == '+' || s_[p_] == '-')) {
        size_t at = p_++;
        l = binary(kind::binary, std::string(1, s_[at]), at, std::move(l), parse_product());
      } else {
        return l;
      }
    }
  }
  std::unique_ptr<node> parse_product() {
    auto l = parse_unary();
    for (;;) {
      skip();
      if (p_ < s_.size() && (s_[p_] == '*' || s_[p_] == '/' || s_[p_] == '%')) {
        size_t at = p_++;
        l = binary(kind::binary, std::string(1, s_[at]), at, std::move(l), parse_unary());
      } else {
        return l;
      }
    }
  }
  std::unique_ptr<node> parse_unary() {
    skip();
    if (p_ < s_.size() && s_[p_] == '-') {
      auto n = make(kind::unary_minus, "-", p_++);
      n->args.push_back(parse_unary());
      return n;
    }
    return parse_primary();
  }

  std::unique_ptr<node> parse_primary() {
    skip();
    if (p_ >= s_.size())
      fail("expected a value but found end of expression", p_);
    size_t start = p_;
    char c = s_[p_];
    if (c == '(') {
      ++p_;
      auto n = parse_or();
      expect(')');
      return n;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '.' && p_ + 1 < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_ + 1]))))
      return parse_number();
    if (c == '\'' || c == '"')
      return parse_string();
    if (c == '`') {
      size_t end = s_.find('`', p_ + 1);
      if (end == std::string_view::npos)
        fail("unterminated `quoted name`", start);
      auto n = make(kind::column, "", start);
      n->name = std::string(s_.substr(p_ + 1, end - p_ - 1));
      p_ = end + 1;
      return n;
    }
    if (is_ident_start(c)) {
      while (p_ < s_.size() && is_ident_char(s_[p_]))
        ++p_;
      std::string word(s_.substr(start, p_ - start));
      std::string lower = word;
      for (auto& ch : lower)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (lower == "true" || lower == "false") {
        auto n = make(kind::literal, "", start);
        n->lit = value::of_bool(lower == "true");
        return n;
      }
      if (lower == "null") {
        auto n = make(kind::literal, "", start);
        return n;
      }
      if (lower == "and" || lower == "or" || lower == "not")
        fail("expected a value but found '" + word + "'", start);
      skip();
      if (p_ < s_.size() && s_[p_] == '(')
        return parse_call(lower, start);
      auto n = make(kind::column, "", start);
      n->name = word;
      return n;
    }
    fail("expected a value but found " + describe_here(), p_);
  }

  std::unique_ptr<node> parse_number() {
    size_t start = p_;
    bool is_float = false;
    while (p_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_])))
      ++p_;
    if (p_ < s_.size() && s_[p_] == '.') {
      is_float = true;
      ++p_;
      while (p_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_])))
        ++p_;
    }
    if (p_ < s_.size() && (s_[p_] == 'e' || s_[p_] == 'E')) {
      size_t q = p_ + 1;
      if (q < s_.size() && (s_[q] == '+' || s_[q] == '-'))
        ++q;
      if (q < s_.size() && std::isdigit(static_cast<unsigned char>(s_[q]))) {
        is_float = true;
        p_ = q;
        while (p_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_])))
          ++p_;
      }
    }
    if (p_ < s_.size() && is_ident_start(s_[p_]))
      fail("malformed number '" + std::string(s_.substr(start, p_ - start + 1)) + "'", start);
    auto text = s_.substr(start, p_ - start);
    auto n = make(kind::literal, "", start);
    if (is_float) {
      double d = 0;
      auto r = std::from_chars(text.data(), text.data() + text.size(), d);
      if (r.ec != std::errc() || r.ptr != text.data() + text.size())
        fail("malformed number '" + std::string(text) + "'", start);
      n->lit = value::of_f64(d);
    } else {
      int64_t i = 0;
      auto r = std::from_chars(text.data(), text.data() + text.size(), i);
      if (r.ec != std::errc() || r.ptr != text.data() + text.size())
        fail("integer " + std::string(text) + " is out of range (write " + std::string(text) + ".0 for a float)",
             start);
      n->lit = value::of_i64(i);
    }
    return n;
  }

  std::unique_ptr<node> parse_string() {
    size_t start = p_;
    char q = s_[p_++];
    std::string out;
    for (;;) {
      if (p_ >= s_.size())
        fail("unterminated string", start);
      char c = s_[p_++];
      if (c == q)
        break;
      if (c == '\\') {
        if (p_ >= s_.size())
          fail("unterminated string", start);
        char e = s_[p_++];
        switch (e) {
          case 'n': out.push_back('\n'); break;
          case 't': out.push_back('\t'); break;
          case '\\':
          case '\'':
          case '"': out.push_back(e); break;
          default: fail(std::string("unknown escape '\\") + e + "' in string", p_ - 2);
        }
        continue;
      }
      out.push_back(c);
    }
    auto n = make(kind::literal, "", start);
    n->lit = value::of_str(std::move(out));
    return n;
  }

  struct arity {
    size_t min, max; // max 0: unbounded
  };
  static const std::map<std::string, arity>& functions() {
    static const std::map<std::string, arity> f{
      {"abs", {1, 1}},      {"sqrt", {1, 1}},        {"log", {1, 1}},         {"exp", {1, 1}},
      {"round", {1, 2}},    {"floor", {1, 1}},       {"ceil", {1, 1}},        {"min", {2, 0}},
      {"max", {2, 0}},      {"coalesce", {1, 0}},    {"is_null", {1, 1}},     {"lower", {1, 1}},
      {"upper", {1, 1}},    {"trim", {1, 1}},        {"length", {1, 1}},      {"concat", {1, 0}},
      {"substr", {2, 3}},   {"contains", {2, 2}},    {"starts_with", {2, 2}}, {"ends_with", {2, 2}},
      {"replace", {3, 3}},  {"to_string", {1, 1}},   {"to_number", {1, 1}},   {"if", {3, 3}},
    };
    return f;
  }

  std::unique_ptr<node> parse_call(const std::string& name, size_t start) {
    auto it = functions().find(name);
    if (it == functions().end()) {
      std::string known;
      for (auto& [n, a] : functions())
        known += (known.empty() ? "" : ", ") + n;
      fail("unknown function '" + name + "' (functions: " + known + ")", start);
    }
    auto n = make(kind::call, name, start);
    expect('(');
    skip();
    if (p_ < s_.size() && s_[p_] == ')') {
      ++p_;
    } else {
      for (;;) {
        n->args.push_back(parse_or());
        skip();
        if (p_ < s_.size() && s_[p_] == ',') {
          ++p_;
          continue;
        }
        expect(')');
        break;
      }
    }
    auto [lo, hi] = it->second;
    size_t got = n->args.size();
    if (got < lo || (hi != 0 && got > hi)) {
      std::string want = hi == lo ? std::to_string(lo)
                         : hi == 0 ? "at least " + std::to_string(lo)
                                   : std::to_string(lo) + " or " + std::to_string(hi);
      fail(name + "() takes " + want + " argument" + (want == "1" ? "" : "s") + ", got " + std::to_string(got),
           start);
    }
    return n;
  }

  std::string_view s_;
  size_t p_ = 0;
};

// ---- types ----------------------------------------------------------------------------

inline bool numeric(vtype t) {
  return t == vtype::i64 || t == vtype::f64;
}

/// Resolves a column name to its type (any before the schema is known) and slot;
/// returns false when there is no such column.
using resolver = std::function<bool(const std::string& name, vtype& type, int& slot)>;

class checker {
public:
  explicit checker(resolver r) : resolve_(std::move(r)) {}

  vtype check(node& n) {
    n.type = infer(n);
    return n.type;
  }

private:
  [[noreturn]] static void fail(const node& n, std::string what) { throw syntax_error{std::move(what), n.pos}; }
  static std::string op_name(const node& n) {
    return n.k == kind::call ? n.op + "()" : "'" + n.op + "'";
  }

  /// Operand of `n` must be a number (or null / not yet known).
  static void want_number(const node& n, vtype t, const char* what = "a number") {
    if (!(numeric(t) || t == vtype::null || t == vtype::any))
      fail(n, op_name(n) + " needs " + what + ", got " + type_name(t));
  }
  static void want(const node& n, vtype t, vtype w) {
    if (!(t == w || t == vtype::null || t == vtype::any))
      fail(n, op_name(n) + " needs a " + type_name(w) + ", got " + type_name(t));
  }
  /// Common type of values that may be mixed (if branches, coalesce, min, max).
  static vtype unify(const node& n, vtype a, vtype b) {
    if (a == b)
      return a;
    if (a == vtype::null)
      return b;
    if (b == vtype::null)
      return a;
    if (a == vtype::any || b == vtype::any)
      return vtype::any;
    if (numeric(a) && numeric(b))
      return vtype::f64;
    fail(n, op_name(n) + " mixes " + type_name(a) + " and " + type_name(b));
  }

  vtype infer(node& n) {
    std::vector<vtype> t;
    for (auto& a : n.args)
      t.push_back(check(*a));
    switch (n.k) {
      case kind::literal: return n.lit.t;
      case kind::column: {
        vtype ty = vtype::any;
        int slot = -1;
        if (!resolve_(n.name, ty, slot))
          fail(n, "unknown column '" + n.name + "'");
        n.slot = slot;
        return ty;
      }
      case kind::unary_minus:
        want_number(n, t[0]);
        return t[0];
      case kind::not_:
        want(n, t[0], vtype::boolean);
        return vtype::boolean;
      case kind::and_:
      case kind::or_:
        want(n, t[0], vtype::boolean);
        want(n, t[1], vtype::boolean);
        return vtype::boolean;
      case kind::binary: {
        const std::string& op = n.op;
        if (op == "+" || op == "-" || op == "*" || op == "/" || op == "%") {
          want_number(n, t[0], "numbers");
          want_number(n, t[1], "numbers");
          if (op == "/")
            return vtype::f64;
          if (t[0] == vtype::any || t[1] == vtype::any)
            return vtype::any;
          if (t[0] == vtype::null && t[1] == vtype::null)
            return vtype::null;
          bool ints = (t[0] == vtype::i64 || t[0] == vtype::null) && (t[1] == vtype::i64 || t[1] == vtype::null);
          return ints ? vtype::i64 : vtype::f64;
        }
        // comparisons
        vtype a = t[0], b = t[1];
        bool ok = a == vtype::any || b == vtype::any || a == vtype::null || b == vtype::null || a == b ||
                  (numeric(a) && numeric(b));
        if (!ok)
          fail(n, "cannot compare " + std::string(type_name(a)) + " with " + type_name(b) + " using " + op_name(n));
        return vtype::boolean;
      }
      case kind::call: return infer_call(n, t);
    }
    return vtype::any;
  }

  vtype infer_call(node& n, const std::vector<vtype>& t) {
    const std::string& f = n.op;
    if (f == "abs" || f == "floor" || f == "ceil") {
      want_number(n, t[0]);
      return t[0] == vtype::null ? vtype::f64 : t[0];
    }
    if (f == "sqrt" || f == "log" || f == "exp") {
      want_number(n, t[0]);
      return vtype::f64;
    }
    if (f == "round") {
      want_number(n, t[0]);
      if (t.size() == 2)
        want(n, t[1], vtype::i64);
      return t[0] == vtype::null ? vtype::f64 : t[0];
    }
    if (f == "min" || f == "max" || f == "coalesce" || f == "if") {
      size_t first = f == "if" ? 1 : 0;
      if (f == "if")
        want(n, t[0], vtype::boolean);
      vtype r = t[first];
      for (size_t i = first + 1; i < t.size(); ++i)
        r = unify(n, r, t[i]);
      if (f == "min" || f == "max")
        if (!(numeric(r) || r == vtype::string || r == vtype::null || r == vtype::any))
          fail(n, op_name(n) + " needs numbers or strings, got " + type_name(r));
      return r;
    }
    if (f == "is_null")
      return vtype::boolean;
    if (f == "lower" || f == "upper" || f == "trim") {
      want(n, t[0], vtype::string);
      return vtype::string;
    }
    if (f == "length") {
      want(n, t[0], vtype::string);
      return vtype::i64;
    }
    if (f == "concat" || f == "to_string")
      return vtype::string;
    if (f == "substr") {
      want(n, t[0], vtype::string);
      for (size_t i = 1; i < t.size(); ++i)
        want(n, t[i], vtype::i64);
      return vtype::string;
    }
    if (f == "contains" || f == "starts_with" || f == "ends_with") {
      want(n, t[0], vtype::string);
      want(n, t[1], vtype::string);
      return vtype::boolean;
    }
    if (f == "replace") {
      for (auto x : t)
        want(n, x, vtype::string);
      return vtype::string;
    }
    if (f == "to_number") {
      if (t[0] == vtype::boolean)
        fail(n, "to_number() needs a string or a number, got bool");
      return vtype::f64;
    }
    fail(n, "unknown function '" + f + "'");
  }

  resolver resolve_;
};

// ---- evaluation ----------------------------------------------------------------------

/// Where a bound column reference reads its value for the current row.
using getter = std::function<void(value& out)>;

namespace detail {

inline size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    n += (c & 0xC0) != 0x80;
  return n;
}

/// Byte offset of code point `cp` in s (s.size() when past the end).
inline size_t utf8_offset(std::string_view s, size_t cp) {
  size_t i = 0;
  while (i < s.size() && cp > 0) {
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80)
      ++i;
    --cp;
  }
  return i;
}

inline std::string ascii_case(std::string s, bool upper) {
  for (auto& c : s)
    c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
  return s;
}

inline int compare(const value& a, const value& b) {
  if (a.t == vtype::i64 && b.t == vtype::i64)
    return (a.i > b.i) - (a.i < b.i);
  if (a.t == vtype::string)
    return a.s.compare(b.s) < 0 ? -1 : a.s.compare(b.s) > 0 ? 1 : 0;
  if (a.t == vtype::boolean)
    return static_cast<int>(a.b) - static_cast<int>(b.b);
  double x = a.num(), y = b.num();
  return (x > y) - (x < y);
}

} // namespace detail

class evaluator {
public:
  explicit evaluator(std::vector<getter> slots) : slots_(std::move(slots)) {}

  void eval(const node& n, value& out) const {
    switch (n.k) {
      case kind::literal: out = n.lit; return;
      case kind::column: slots_[static_cast<size_t>(n.slot)](out); return;
      case kind::unary_minus: {
        eval(*n.args[0], out);
        if (out.t == vtype::i64) {
          if (out.i == std::numeric_limits<int64_t>::min())
            throw row_error{"integer overflow in '-' at position " + std::to_string(n.pos)};
          out.i = -out.i;
        } else if (out.t == vtype::f64) {
          out.d = -out.d;
        }
        return;
      }
      case kind::not_:
        eval(*n.args[0], out);
        if (!out.null())
          out.b = !out.b;
        return;
      case kind::and_:
      case kind::or_: {
        // SQL three-valued logic: false and null = false, true or null = true
        bool decisive = n.k == kind::or_;
        eval(*n.args[0], out);
        if (!out.null() && out.b == decisive)
          return;
        value r;
        eval(*n.args[1], r);
        if (!r.null() && r.b == decisive) {
          out = std::move(r);
          return;
        }
        if (out.null() || r.null())
          out = value{};
        else
          out = value::of_bool(!decisive);
        return;
      }
      case kind::binary: return binary(n, out);
      case kind::call: return call(n, out);
    }
  }

private:
  void binary(const node& n, value& out) const {
    value a, b;
    eval(*n.args[0], a);
    eval(*n.args[1], b);
    if (a.null() || b.null()) {
      out = value{};
      return;
    }
    char op = n.op[0];
    if (n.op.size() == 1 && std::string_view("+-*/%").find(op) != std::string_view::npos) {
      if (n.type == vtype::i64) {
        int64_t r = 0;
        bool overflow = false;
        switch (op) {
          case '+': overflow = __builtin_add_overflow(a.i, b.i, &r); break;
          case '-': overflow = __builtin_sub_overflow(a.i, b.i, &r); break;
          case '*': overflow = __builtin_mul_overflow(a.i, b.i, &r); break;
          case '%':
            if (b.i == 0) {
              out = value{};
              return;
            }
            r = b.i == -1 ? 0 : a.i % b.i;
            break;
        }
        if (overflow)
          throw row_error{"integer overflow in '" + n.op + "' at position " + std::to_string(n.pos)};
        out = value::of_i64(r);
        return;
      }
      double x = a.num(), y = b.num(), r = 0;
      switch (op) {
        case '+': r = x + y; break;
        case '-': r = x - y; break;
        case '*': r = x * y; break;
        case '/':
        case '%':
          if (y == 0) {
            out = value{};
            return;
          }
          r = op == '/' ? x / y : std::fmod(x, y);
          break;
      }
      out = value::of_f64(r);
      return;
    }
    int c = detail::compare(a, b);
    bool r = n.op == "==" ? c == 0 : n.op == "!=" ? c != 0 : n.op == "<" ? c < 0 : n.op == "<=" ? c <= 0
           : n.op == ">" ? c > 0 : c >= 0;
    out = value::of_bool(r);
  }

  void call(const node& n, value& out) const {
    const std::string& f = n.op;
    // the functions that look at nulls themselves
    if (f == "if") {
      value c;
      eval(*n.args[0], c);
      eval(*n.args[!c.null() && c.b ? 1 : 2], out);
      return widen(n, out);
    }
    if (f == "coalesce") {
      for (auto& a : n.args) {
        eval(*a, out);
        if (!out.null())
          return widen(n, out);
      }
      return;
    }
    if (f == "is_null") {
      eval(*n.args[0], out);
      out = value::of_bool(out.null());
      return;
    }
    if (f == "min" || f == "max") { // nulls are skipped; null only when all are
      value best, v;
      for (auto& a : n.args) {
        eval(*a, v);
        if (v.null())
          continue;
        int c = best.null() ? 0 : detail::compare(v, best);
        if (best.null() || (f == "min" ? c < 0 : c > 0))
          best = v;
      }
      out = std::move(best);
      return widen(n, out);
    }
    if (f == "concat") { // nulls are skipped
      std::string s;
      value v;
      for (auto& a : n.args) {
        eval(*a, v);
        s += v.text();
      }
      out = value::of_str(std::move(s));
      return;
    }
    // every other function: a null argument gives null
    std::vector<value> v(n.args.size());
    for (size_t i = 0; i < n.args.size(); ++i) {
      eval(*n.args[i], v[i]);
      if (v[i].null()) {
        out = value{};
        return;
      }
    }
    if (f == "abs") {
      if (v[0].t == vtype::i64) {
        if (v[0].i == std::numeric_limits<int64_t>::min())
          throw row_error{"integer overflow in abs() at position " + std::to_string(n.pos)};
        out = value::of_i64(v[0].i < 0 ? -v[0].i : v[0].i);
      } else {
        out = value::of_f64(std::fabs(v[0].d));
      }
      return;
    }
    if (f == "sqrt" || f == "log") { // outside the domain: null
      double x = v[0].num();
      if (f == "sqrt" ? x < 0 : x <= 0)
        out = value{};
      else
        out = value::of_f64(f == "sqrt" ? std::sqrt(x) : std::log(x));
      return;
    }
    if (f == "exp") {
      out = value::of_f64(std::exp(v[0].num()));
      return;
    }
    if (f == "floor" || f == "ceil") {
      out = v[0].t == vtype::i64 ? v[0] : value::of_f64(f == "floor" ? std::floor(v[0].d) : std::ceil(v[0].d));
      return;
    }
    if (f == "round") {
      int64_t digits = v.size() > 1 ? v[1].i : 0;
      if (digits < -18 || digits > 18)
        throw row_error{"round(): digits must be between -18 and 18, got " + std::to_string(digits)};
      if (v[0].t == vtype::i64) {
        if (digits >= 0) {
          out = v[0];
        } else {
          int64_t p = 1;
          for (int64_t k = 0; k < -digits; ++k)
            p *= 10;
          int64_t q = v[0].i / p, rem = v[0].i % p;
          if (2 * (rem < 0 ? -rem : rem) >= p)
            q += v[0].i < 0 ? -1 : 1;
          int64_t r = 0;
          if (__builtin_mul_overflow(q, p, &r))
            throw row_error{"integer overflow in round() at position " + std::to_string(n.pos)};
          out = value::of_i64(r);
        }
        return;
      }
      double p = std::pow(10.0, static_cast<double>(digits));
      out = value::of_f64(digits == 0 ? std::round(v[0].d) : std::round(v[0].d * p) / p);
      return;
    }
    if (f == "lower" || f == "upper") {
      out = value::of_str(detail::ascii_case(std::move(v[0].s), f == "upper"));
      return;
    }
    if (f == "trim") {
      auto& s = v[0].s;
      size_t b = 0, e = s.size();
      while (b < e && std::isspace(static_cast<unsigned char>(s[b])))
        ++b;
      while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])))
        --e;
      out = value::of_str(s.substr(b, e - b));
      return;
    }
    if (f == "length") {
      out = value::of_i64(static_cast<int64_t>(detail::utf8_length(v[0].s)));
      return;
    }
    if (f == "substr") { // 1-based start, in characters; no length: to the end
      std::string_view s = v[0].s;
      int64_t start = v[1].i, len = v.size() > 2 ? v[2].i : std::numeric_limits<int64_t>::max();
      if (start < 1) { // like SQL: positions before the first character count against len
        if (len != std::numeric_limits<int64_t>::max())
          len = std::max<int64_t>(0, len - (1 - start));
        start = 1;
      }
      if (len < 0)
        throw row_error{"substr(): negative length " + std::to_string(len) + " at position " + std::to_string(n.pos)};
      size_t b = detail::utf8_offset(s, static_cast<size_t>(start - 1));
      size_t e = len == std::numeric_limits<int64_t>::max() ? s.size()
                                                            : b + detail::utf8_offset(s.substr(b), static_cast<size_t>(len));
      out = value::of_str(std::string(s.substr(b, e - b)));
      return;
    }
    if (f == "contains") {
      out = value::of_bool(v[0].s.find(v[1].s) != std::string::npos);
      return;
    }
    if (f == "starts_with") {
      out = value::of_bool(v[0].s.starts_with(v[1].s));
      return;
    }
    if (f == "ends_with") {
      out = value::of_bool(v[0].s.ends_with(v[1].s));
      return;
    }
    if (f == "replace") {
      std::string s = std::move(v[0].s);
      const std::string& from = v[1].s;
      const std::string& to = v[2].s;
      if (!from.empty())
        for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
          s.replace(at, from.size(), to);
      out = value::of_str(std::move(s));
      return;
    }
    if (f == "to_string") {
      out = value::of_str(v[0].text());
      return;
    }
    if (f == "to_number") {
      if (v[0].t != vtype::string) {
        out = value::of_f64(v[0].num());
        return;
      }
      std::string_view s = v[0].s;
      while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
      while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
      if (s.empty()) {
        out = value{};
        return;
      }
      double d = 0;
      if (!sdk::parse_f64(s, d))
        throw row_error{"to_number(): '" + v[0].s + "' is not a number"};
      out = value::of_f64(d);
      return;
    }
    throw row_error{"unknown function '" + f + "'"};
  }

  /// An i64 value where the expression's type is f64 (mixed branches) becomes f64.
  static void widen(const node& n, value& v) {
    if (n.type == vtype::f64 && v.t == vtype::i64)
      v = value::of_f64(static_cast<double>(v.i));
  }

  std::vector<getter> slots_;
};

} // namespace loom::ops::integrate::expr
