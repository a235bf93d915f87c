// The SDK's frame helpers: a round trip of every column type, builder misuse, and
// hostile bytes (a message from a peer must never crash the reader).
#include <loom/frame.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <random>

using namespace loom::sdk;

namespace {

flatbuffers::DetachedBuffer sample_frame(uint64_t seq) {
  frame_builder b;
  auto f32 = b.add_column("f32", col_type::f32);
  auto f64 = b.add_column("f64", col_type::f64);
  auto i64 = b.add_column("i64", col_type::i64, false);
  auto bl = b.add_column("bool", col_type::boolean);
  auto s = b.add_column("str", col_type::string);
  for (int r = 0; r < 20; ++r) {
    b.append_f32(f32, r * 0.25f);
    if (r % 3 == 0)
      b.append_null(f64);
    else
      b.append_f64(f64, r * 1.5);
    b.append_i64(i64, int64_t{1} << (r + 30));
    if (r % 4 == 1)
      b.append_null(bl);
    else
      b.append_bool(bl, r % 2 == 0);
    if (r % 5 == 2)
      b.append_null(s);
    else
      b.append_string(s, std::string(static_cast<size_t>(r), 'a' + static_cast<char>(r % 26)) + ",\"q\"");
    b.end_row();
  }
  return b.finish(seq);
}

} // namespace

TEST_CASE("frames round-trip every column type with nulls", "[sdk][frame]") {
  auto buf = sample_frame(42);
  auto f = frame_view::of({buf.data(), buf.size()});
  REQUIRE(f.num_rows() == 20);
  REQUIRE(f.num_columns() == 5);
  CHECK(f.sequence() == 42);
  CHECK(f.name(4) == "str");
  CHECK(f.type(2) == col_type::i64);
  CHECK_FALSE(f.nullable(2));
  CHECK(f.index("bool") == 3);
  CHECK(f.index("nope") == -1);
  CHECK_THROWS_WITH(f.require("nope"), Catch::Contains("no column 'nope'") && Catch::Contains("str (string)"));
  for (size_t r = 0; r < 20; ++r) {
    CHECK(f.f32(0, r) == r * 0.25f);
    CHECK(f.valid(1, r) == (r % 3 != 0));
    if (r % 3 != 0)
      CHECK(f.f64(1, r) == r * 1.5);
    CHECK(f.i64(2, r) == int64_t{1} << (r + 30));
    CHECK(f.valid(3, r) == (r % 4 != 1));
    if (r % 4 != 1)
      CHECK(f.boolean(3, r) == (r % 2 == 0));
    CHECK(f.valid(4, r) == (r % 5 != 2));
    if (r % 5 != 2)
      CHECK(f.str(4, r) == std::string(r, 'a' + static_cast<char>(r % 26)) + ",\"q\"");
    else
      CHECK(f.text(4, r).empty());
  }
  CHECK(f.text(1, 1) == "1.5");
  CHECK(f.text(3, 0) == "true");
  CHECK(f.number(2, 0) == std::ldexp(1.0, 30));
  CHECK_THROWS_AS(f.number(4, 0), error);
}

TEST_CASE("a builder keeps its schema across frames and checks its use", "[sdk][frame]") {
  frame_builder b;
  auto x = b.add_column("x", col_type::i64);
  b.append_i64(x, 1);
  b.end_row();
  auto first = b.finish(0);
  CHECK(b.num_rows() == 0);
  b.append_i64(x, 2);
  b.end_row();
  auto second = b.finish(1);
  auto f = frame_view::of({second.data(), second.size()});
  CHECK(f.num_rows() == 1);
  CHECK(f.i64(0, 0) == 2);
  CHECK_THROWS_WITH(b.append_f64(x, 1.0), Catch::Contains("is i64, not f64"));
  auto y = b.add_column("y", col_type::string);
  b.append_i64(x, 3);
  CHECK_THROWS_WITH(b.end_row(), Catch::Contains("column 'y'"));
  (void)y;
  // an empty frame is still a valid frame
  frame_builder e(std::vector<field>{{"a", col_type::f64, true}});
  auto empty = e.finish(7);
  auto ev = frame_view::of({empty.data(), empty.size()});
  CHECK(ev.num_rows() == 0);
  CHECK(ev.schema().size() == 1);
}

TEST_CASE("schema_guard keeps the first frame's columns and refuses others", "[sdk][frame]") {
  auto frame = [](std::vector<field> cols, uint64_t seq) {
    frame_builder b(cols);
    return b.finish(seq);
  };
  schema_guard g("my.op");
  CHECK_FALSE(g.known());
  auto a = frame({{"x", col_type::i64, false}, {"s", col_type::string, true}}, 0);
  CHECK(g.check(frame_view::of({a.data(), a.size()})));
  REQUIRE(g.known());
  CHECK(g.schema().size() == 2);
  auto b = frame({{"x", col_type::i64, true}, {"s", col_type::string, true}}, 1); // nullability may change
  CHECK_FALSE(g.check(frame_view::of({b.data(), b.size()})));
  auto c = frame({{"x", col_type::f64, true}, {"s", col_type::string, true}}, 2);
  CHECK_THROWS_WITH(g.check(frame_view::of({c.data(), c.size()})),
                    "my.op: frame 2 has columns x (f64), s (string), but the first frame had x (i64), s (string)");
  auto d = frame({{"x", col_type::i64, true}}, 3);
  CHECK_THROWS_WITH(g.check(frame_view::of({d.data(), d.size()})), Catch::Contains("frame 3 has columns x (i64), but"));
}

TEST_CASE("bytes that are not a frame are refused", "[sdk][frame][hostile]") {
  std::vector<uint8_t> zeros(64, 0);
  CHECK_THROWS_AS(frame_view::of({zeros.data(), zeros.size()}), error);
  auto buf = sample_frame(1);
  for (size_t n : {size_t{0}, size_t{4}, size_t{8}, buf.size() / 2, buf.size() - 1}) {
    std::vector<uint8_t> cut(buf.data(), buf.data() + n);
    CHECK_THROWS_AS(frame_view::of({cut.data(), cut.size()}), error);
  }
}

TEST_CASE("random corruption never crashes the reader", "[sdk][frame][hostile]") {
  auto buf = sample_frame(3);
  std::vector<uint8_t> good(buf.data(), buf.data() + buf.size());
  std::mt19937 rng(12345);
  int refused = 0, accepted = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    auto bytes = good;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k)
      bytes[rng() % bytes.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
    try {
      auto f = frame_view::of({bytes.data(), bytes.size()});
      // accepted: then every cell must be readable within bounds
      for (size_t c = 0; c < f.num_columns(); ++c)
        for (size_t r = 0; r < f.num_rows(); ++r)
          (void)f.text(c, r);
      ++accepted;
    } catch (const error&) {
      ++refused;
    }
  }
  CHECK(refused + accepted == 3000);
  CHECK(refused > 0);
}
