// ingest.http — fetches a CSV or JSON Lines body over HTTP(S) and parses it like the
// file ingesters (same columns, inference, rejects).
#include "csv_table.hpp"
#include "io_ops.hpp"
#include "jsonl_table.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <zlib.h>

#include <chrono>
#include <map>
#include <optional>

namespace loom::ops {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

struct url_parts {
  bool tls = false;
  std::string host, port, target;
};

url_parts parse_url(const std::string& url) {
  url_parts u;
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    u.tls = true;
    rest = url.substr(8);
  } else {
    throw sdk::error("url: '" + url + "' must start with http:// or https://");
  }
  auto slash = rest.find_first_of("/?#");
  std::string authority = rest.substr(0, slash);
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (auto hash = u.target.find('#'); hash != std::string::npos)
    u.target.erase(hash);
  if (u.target.empty() || u.target.front() != '/')
    u.target.insert(0, "/");
  if (authority.find('@') != std::string::npos)
    throw sdk::error("url: '" + url + "': user:password@ in URLs is not supported (use headers: {Authorization: ...})");
  std::string port;
  if (!authority.empty() && authority.front() == '[') { // [IPv6]:port
    auto close = authority.find(']');
    if (close == std::string::npos)
      throw sdk::error("url: '" + url + "': unterminated [ in the host");
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':')
        throw sdk::error("url: '" + url + "': bad host");
      port = authority.substr(close + 2);
    }
  } else {
    auto colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos)
      port = authority.substr(colon + 1);
  }
  if (u.host.empty())
    throw sdk::error("url: '" + url + "' has no host");
  if (!port.empty()) {
    int64_t p = 0;
    if (!parse_i64(port, p) || p <= 0 || p > 65535)
      throw sdk::error("url: '" + url + "': bad port '" + port + "'");
    u.port = port;
  } else {
    u.port = u.tls ? "443" : "80";
  }
  return u;
}

struct response {
  unsigned status = 0;
  std::string reason, content_type, content_encoding, location, body;
};

struct fetch_options {
  std::chrono::milliseconds timeout{30000};
  bool verify_tls = true;
  std::string ca_file;
  std::map<std::string, std::string> headers;
  uint64_t max_bytes = 1ull << 30;
};

class fetcher {
public:
  fetcher(const std::string& url, const fetch_options& o) : url_(url), o_(o), deadline_(steady::now() + o.timeout) {}

  response get() {
    auto u = parse_url(url_);
    tcp::resolver resolver(ioc_);
    tcp::resolver::results_type endpoints;
    bool done = false;
    beast::error_code ec;
    resolver.async_resolve(u.host, u.port, [&](beast::error_code e, tcp::resolver::results_type r) {
      ec = e;
      endpoints = std::move(r);
      done = true;
    });
    ioc_.run_until(deadline_);
    if (!done) {
      resolver.cancel();
      ioc_.restart();
      ioc_.run();
      fail("cannot resolve " + u.host + ": timed out after " + std::to_string(o_.timeout.count()) + " ms");
    }
    if (ec)
      fail("cannot resolve " + u.host + ": " + ec.message());
    if (!u.tls) {
      beast::tcp_stream stream(ioc_);
      connect(stream, endpoints, u);
      return exchange(stream, u);
    }
    ssl::context tls(ssl::context::tls_client);
    if (o_.verify_tls) {
      tls.set_verify_mode(ssl::verify_peer);
      beast::error_code e;
      if (!o_.ca_file.empty())
        tls.load_verify_file(o_.ca_file, e);
      else
        tls.set_default_verify_paths(e);
      if (e)
        throw sdk::error("ca_file: cannot load " + o_.ca_file + ": " + e.message(), LOOM_ERR_IO);
    } else {
      tls.set_verify_mode(ssl::verify_none);
    }
    beast::ssl_stream<beast::tcp_stream> stream(ioc_, tls);
    if (!SSL_set_tlsext_host_name(stream.native_handle(), u.host.c_str()))
      fail("cannot set the TLS server name " + u.host);
    if (o_.verify_tls)
      stream.set_verify_callback(ssl::host_name_verification(u.host));
    connect(beast::get_lowest_layer(stream), endpoints, u);
    beast::get_lowest_layer(stream).expires_at(deadline_);
    run([&](auto h) { stream.async_handshake(ssl::stream_base::client, h); }, "TLS handshake with " + u.host);
    return exchange(stream, u);
  }

private:
  [[noreturn]] void fail(const std::string& what) const {
    throw sdk::error("ingest.http: GET " + url_ + ": " + what, LOOM_ERR_IO);
  }

  /// Starts an async operation (passing it a handler) and runs it to completion.
  template <class Start>
  void run(Start start, const std::string& what) {
    beast::error_code result;
    start([&](beast::error_code e, auto&&...) { result = e; });
    ioc_.restart();
    ioc_.run();
    if (result == beast::error::timeout)
      fail(what + ": timed out after " + std::to_string(o_.timeout.count()) + " ms (timeout_ms)");
    if (result == http::error::body_limit)
      fail("the response body is larger than max_bytes = " + std::to_string(o_.max_bytes));
    if (result)
      fail(what + ": " + result.message());
  }

  void connect(beast::tcp_stream& s, const tcp::resolver::results_type& eps, const url_parts& u) {
    s.expires_at(deadline_);
    run([&](auto h) { s.async_connect(eps, h); }, "cannot connect to " + u.host + ":" + u.port);
  }

  template <class Stream>
  response exchange(Stream& stream, const url_parts& u) {
    http::request<http::empty_body> req{http::verb::get, u.target, 11};
    bool default_port = u.port == (u.tls ? "443" : "80");
    req.set(http::field::host, (u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host) +
                                 (default_port ? "" : ":" + u.port));
    req.set(http::field::user_agent, "loom-ingest.http/0.1");
    req.set(http::field::accept, "text/csv, application/x-ndjson, application/jsonl, */*;q=0.5");
    req.set(http::field::accept_encoding, "gzip");
    req.set(http::field::connection, "close");
    for (auto& [k, v] : o_.headers)
      req.set(k, v);
    beast::get_lowest_layer(stream).expires_at(deadline_);
    run([&](auto h) { http::async_write(stream, req, h); }, "sending the request");
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(o_.max_bytes);
    run([&](auto h) { http::async_read(stream, buffer, parser, h); }, "reading the response");
    auto& res = parser.get();
    response r;
    r.status = res.result_int();
    r.reason = std::string(res.reason());
    r.content_type = std::string(res[http::field::content_type]);
    r.location = std::string(res[http::field::location]);
    r.content_encoding = std::string(res[http::field::content_encoding]);
    r.body = std::move(res.body());
    if (r.body.size() > o_.max_bytes) // the parser's limit, whatever the framing
      fail("the response body is larger than max_bytes = " + std::to_string(o_.max_bytes));
    beast::error_code ignored;
    beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
    return r;
  }

  std::string url_;
  const fetch_options& o_;
  steady::time_point deadline_;
  net::io_context ioc_;
};

/// The data of a gzip stream (one or more members, RFC 1952), at most `max_bytes` of it;
/// throws, naming `what`, on a corrupt or truncated stream.
std::string gunzip(const std::string& in, uint64_t max_bytes, const std::string& what) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) // 16: gzip framing
    throw sdk::error(what + ": cannot start zlib", LOOM_ERR_INTERNAL);
  const char* next = in.data();
  size_t in_left = in.size(), done = 0;
  std::string out(std::min<uint64_t>(std::max<size_t>(4 * in.size(), size_t{1} << 16), max_bytes + 1), '\0');
  int rc = Z_OK;
  for (;;) {
    if (z.avail_in == 0 && in_left > 0) { // zlib counts in 32 bits
      const size_t n = std::min<size_t>(in_left, size_t{1} << 30);
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(next));
      z.avail_in = static_cast<uInt>(n);
      next += n;
      in_left -= n;
    }
    if (done == out.size()) {
      if (done > max_bytes)
        break;
      out.resize(std::min<uint64_t>(2 * out.size(), max_bytes + 1));
    }
    z.next_out = reinterpret_cast<Bytef*>(out.data() + done);
    z.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - done, size_t{1} << 30));
    const uInt room = z.avail_out;
    rc = inflate(&z, Z_NO_FLUSH);
    done += room - z.avail_out;
    if (rc == Z_STREAM_END) {
      if (z.avail_in == 0 && in_left == 0)
        break;
      inflateReset(&z); // another gzip member follows
      rc = Z_OK;
      continue;
    }
    if (rc != Z_OK) // Z_BUF_ERROR: the input ended within the stream
      break;
  }
  const std::string msg = z.msg != nullptr ? z.msg : "";
  inflateEnd(&z);
  if (done > max_bytes)
    throw sdk::error(what + ": the decompressed body is larger than max_bytes = " + std::to_string(max_bytes),
                     LOOM_ERR_IO);
  if (rc != Z_STREAM_END)
    throw sdk::error(what + ": cannot decompress the gzip body: " +
                       (rc == Z_BUF_ERROR ? std::string("it is truncated")
                        : msg.empty()     ? "zlib error " + std::to_string(rc)
                                          : msg),
                     LOOM_ERR_IO);
  out.resize(done);
  return out;
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

} // namespace

class http_source final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "ingest.http", "0.1.0",
      "Fetches a CSV or JSON Lines table with an HTTP(S) GET and parses it exactly like ingest.csv / "
      "ingest.jsonl (same inference, `schema`, rejects and `max_errors`; rejects name the URL as "
      "their file). The whole response body is held in memory (up to `max_bytes`); the rows are then "
      "emitted as a stream of frames. The format is `format`, or with auto, taken from the "
      "Content-Type (text/csv, ...csv -> csv; application/x-ndjson, application/jsonl, ...json -> "
      "jsonl), else from the URL's extension (.csv, .tsv, .jsonl, .ndjson). https:// verifies the "
      "server's certificate and host name against the system's CA store, or `ca_file`, unless "
      "`verify_tls` is false. Bodies may be gzip-compressed: the request offers Accept-Encoding: "
      "gzip, and a body with Content-Encoding: gzip, or one that is a gzip file (e.g. data.csv.gz), is "
      "decompressed (up to `max_bytes` after decompression; a corrupt or truncated one fails the node). Redirects (301, 302, 303, 307, 308) are followed up to 5 times. The node "
      "fails with a message naming the URL on a bad URL, a failed connection (e.g. connection "
      "refused), a TLS failure, a timeout (`timeout_ms` covers the whole exchange) and a status "
      "other than 2xx (the message has the status code and the start of the body).",
      "- id: orders\n  op: ingest.http\n  with: {url: \"https://api.example.com/export/orders.csv\", "
      "headers: {Authorization: \"Bearer ${params.token}\"}, timeout_ms: 10000}\n"
      "- id: events\n  op: ingest.http\n  with: {url: \"http://10.0.0.5:8080/events\", format: jsonl}\n"};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the table, as frames of at most frame_rows rows"},
                 {"rejects", LOOM_MSG_FRAME, "rejected records: file (the URL), line, reason, raw"}};
    s.params = {
      {"url", LOOM_PARAM_STRING, true, nullptr, "http:// or https:// URL to GET"},
      {"format", LOOM_PARAM_STRING, false, "\"auto\"", "csv, jsonl, or auto (from Content-Type, then the URL)"},
      {"timeout_ms", LOOM_PARAM_INT, false, "30000",
       "time allowed for the whole request: resolving, connecting, TLS, sending and receiving the body"},
      {"verify_tls", LOOM_PARAM_BOOL, false, "true",
       "https: check the server certificate and host name (false accepts any certificate: testing only)"},
      {"ca_file", LOOM_PARAM_STRING, false, nullptr,
       "https: PEM file of the CA certificates to trust instead of the system's, relative to the graph file"},
      {"headers", LOOM_PARAM_MAP, false, nullptr, "extra request headers, e.g. {Authorization: \"Bearer ...\"}"},
      {"max_bytes", LOOM_PARAM_INT, false, "1073741824",
       "largest response body accepted, in bytes, as sent and (gzip) as decompressed"},
    };
    for (auto& p : csv_params())
      s.params.push_back(p);
    for (auto& p : jsonl_params())
      s.params.push_back(p);
    for (auto& p : table_params())
      s.params.push_back(p);
    return s;
  }

  explicit http_source(sdk::context& ctx) : url_(ctx.param_string("url")) {
    parse_url(url_); // a bad URL fails at once
    format_ = ctx.param_string("format");
    if (format_ != "auto" && format_ != "csv" && format_ != "jsonl")
      throw sdk::error("format must be csv, jsonl or auto, got '" + format_ + "'");
    auto timeout = ctx.param_int("timeout_ms");
    if (timeout <= 0)
      throw sdk::error("timeout_ms must be positive, got " + std::to_string(timeout));
    fo_.timeout = std::chrono::milliseconds(timeout);
    fo_.verify_tls = ctx.param_bool("verify_tls");
    if (ctx.has_param("ca_file"))
      fo_.ca_file = ctx.resolve_path(ctx.param_string("ca_file"));
    fo_.headers = sdk::param_string_map(ctx, "headers");
    auto max_bytes = ctx.param_int("max_bytes");
    if (max_bytes <= 0)
      throw sdk::error("max_bytes must be positive, got " + std::to_string(max_bytes));
    fo_.max_bytes = static_cast<uint64_t>(max_bytes);
    csv_ = read_csv_options(ctx);
    jsonl_ = read_jsonl_options(ctx);
  }

  bool produce(sdk::context& ctx) override {
    if (csv_table_)
      return csv_table_->produce(ctx);
    if (jsonl_table_)
      return jsonl_table_->produce(ctx);
    std::string url = url_;
    response r;
    for (int hops = 0;; ++hops) {
      r = fetcher(url, fo_).get();
      bool redirect = r.status == 301 || r.status == 302 || r.status == 303 || r.status == 307 || r.status == 308;
      if (!redirect || r.location.empty())
        break;
      if (hops == 5)
        throw sdk::error("ingest.http: GET " + url_ + ": more than 5 redirects", LOOM_ERR_IO);
      if (r.location.front() == '/') { // same scheme and host
        auto scheme_end = url.find("://") + 3;
        url = url.substr(0, url.find('/', scheme_end)) + r.location;
      } else {
        url = r.location;
      }
    }
    if (r.status < 200 || r.status > 299) {
      std::string start = utf8_sanitize(r.body, 200);
      throw sdk::error("ingest.http: GET " + url + ": HTTP " + std::to_string(r.status) + " " + r.reason +
                         (start.empty() ? "" : ": " + start),
                       LOOM_ERR_IO);
    }
    ctx.metric("http_status", r.status);
    ctx.metric("bytes", static_cast<double>(r.body.size()));
    // gzip: as a Content-Encoding, or a .gz file served as it is (the gzip magic bytes
    // cannot start CSV or JSON text)
    const auto encoding = lower(r.content_encoding);
    const bool gzip_magic = r.body.size() >= 2 && r.body[0] == '\x1f' && r.body[1] == '\x8b';
    if (encoding == "gzip" || encoding == "x-gzip" || gzip_magic) {
      r.body = gunzip(r.body, fo_.max_bytes, "ingest.http: GET " + url);
      ctx.metric("bytes_decompressed", static_cast<double>(r.body.size()));
    } else if (!encoding.empty() && encoding != "identity") {
      throw sdk::error("ingest.http: GET " + url + ": unsupported Content-Encoding '" + r.content_encoding +
                         "' (gzip and identity are)",
                       LOOM_ERR_IO);
    }
    std::string fmt = format_ == "auto" ? detect(url, r.content_type) : format_;
    auto body = std::make_shared<std::string>(std::move(r.body));
    input_opener in = [url, body] { return memory_input(url, std::move(*body)); };
    if (fmt == "csv")
      csv_table_.emplace(csv_, std::vector<input_opener>{in});
    else
      jsonl_table_.emplace(jsonl_, std::vector<input_opener>{in});
    return produce(ctx);
  }

private:
  std::string detect(const std::string& url, const std::string& content_type) const {
    auto ct = lower(content_type);
    if (ct.find("csv") != std::string::npos || ct.find("tab-separated") != std::string::npos)
      return "csv";
    if (ct.find("json") != std::string::npos)
      return "jsonl";
    auto path = lower(url.substr(0, url.find_first_of("?#")));
    if (ends_with(path, ".gz"))
      path.resize(path.size() - 3);
    if (ends_with(path, ".csv") || ends_with(path, ".tsv"))
      return "csv";
    if (ends_with(path, ".jsonl") || ends_with(path, ".ndjson") || ends_with(path, ".json"))
      return "jsonl";
    throw sdk::error("ingest.http: GET " + url + ": cannot tell whether the body is CSV or JSON Lines (Content-Type: '" +
                       content_type + "'); set format: csv or format: jsonl",
                     LOOM_ERR_BAD_DATA);
  }

  std::string url_, format_;
  fetch_options fo_;
  csv_options csv_;
  jsonl_options jsonl_;
  std::optional<csv_table> csv_table_;
  std::optional<jsonl_table> jsonl_table_;
};

const sdk::op_registration http_source_op = sdk::registration<http_source>;

} // namespace loom::ops
