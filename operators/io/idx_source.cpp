// ingest.idx — reads IDX files (the MNIST / Fashion-MNIST format: a big-endian header
// of magic and dimensions, then the values row-major), plain or gzip, into frames.
#include "io_common.hpp"
#include "io_ops.hpp"

namespace loom::ops {

namespace {

/// The header of an IDX file: magic 0x0000TTDD (TT the value type, DD the number of
/// dimensions), then DD big-endian u32 sizes. Record r is the r-th slice along the
/// first dimension.
struct idx_header {
  uint8_t type = 0;
  std::vector<uint32_t> dims;
  uint64_t records = 0;      ///< dims[0]
  uint64_t values = 0;       ///< values per record: the product of the other dims
  size_t value_bytes = 0;    ///< bytes per value
  uint64_t header_bytes = 0; ///< 4 + 4 * dims

  uint64_t record_bytes() const { return values * value_bytes; }
  std::string shape() const {
    std::string s;
    for (size_t i = 1; i < dims.size(); ++i)
      s += (i > 1 ? "x" : "") + std::to_string(dims[i]);
    return s.empty() ? "scalar" : s;
  }
};

const char* type_name(uint8_t t) {
  switch (t) {
    case 0x08: return "u8";
    case 0x09: return "i8";
    case 0x0B: return "i16";
    case 0x0C: return "i32";
    case 0x0D: return "f32";
    case 0x0E: return "f64";
    default: return nullptr;
  }
}

size_t type_size(uint8_t t) {
  switch (t) {
    case 0x08:
    case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C:
    case 0x0D: return 4;
    case 0x0E: return 8;
    default: return 0;
  }
}

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

/// Value i of a record of type `t` (big-endian) as a double.
double value_at(uint8_t t, const unsigned char* p, size_t i) {
  switch (t) {
    case 0x08: return p[i];
    case 0x09: return static_cast<int8_t>(p[i]);
    case 0x0B: {
      p += 2 * i;
      return static_cast<int16_t>(static_cast<uint16_t>((p[0] << 8) | p[1]));
    }
    case 0x0C: return static_cast<int32_t>(be32(p + 4 * i));
    case 0x0D: {
      uint32_t u = be32(p + 4 * i);
      float f;
      std::memcpy(&f, &u, 4);
      return f;
    }
    case 0x0E: {
      p += 8 * i;
      uint64_t u = (uint64_t{be32(p)} << 32) | be32(p + 4);
      double d;
      std::memcpy(&d, &u, 8);
      return d;
    }
  }
  return 0;
}

/// One IDX file being read record by record.
class idx_reader {
public:
  /// Opens `path` (a name ending in .gz is gunzipped) and reads its header.
  explicit idx_reader(const std::string& path) : input_(open_file(path)) {
    unsigned char head[4];
    read_exact(head, 4, "its header");
    uint32_t magic = be32(head);
    h_.type = head[2];
    size_t ndims = head[3];
    if (head[0] != 0 || head[1] != 0 || type_name(h_.type) == nullptr || ndims == 0)
      throw sdk::error(name() + ": not an IDX file (magic number " + hex32(magic) +
                         "; expected 0x00000803 for images, 0x00000801 for labels, or 0x0000TTDD with value type "
                         "TT in 08 (u8), 09 (i8), 0B (i16), 0C (i32), 0D (f32), 0E (f64) and DD >= 1 dimensions)",
                       LOOM_ERR_BAD_DATA);
    h_.value_bytes = type_size(h_.type);
    std::vector<unsigned char> dims(4 * ndims);
    read_exact(dims.data(), dims.size(), "its header (" + std::to_string(ndims) + " dimensions)");
    h_.values = 1;
    for (size_t i = 0; i < ndims; ++i) {
      h_.dims.push_back(be32(&dims[4 * i]));
      if (i > 0)
        h_.values *= h_.dims.back();
      if (h_.values > (uint64_t{1} << 24))
        throw sdk::error(name() + ": a record of shape " + h_.shape() + " has more than 16777216 values", LOOM_ERR_BAD_DATA);
    }
    h_.records = h_.dims[0];
    h_.header_bytes = 4 + 4 * ndims;
    if (h_.values == 0)
      throw sdk::error(name() + ": records of shape " + h_.shape() + " have no values", LOOM_ERR_BAD_DATA);
    // a plain file can be checked against its header before anything is read
    if (input_->gz == nullptr) {
      std::error_code ec;
      auto size = std::filesystem::file_size(path, ec);
      uint64_t want = h_.header_bytes + h_.records * h_.record_bytes();
      if (!ec && size < want)
        throw sdk::error(name() + ": truncated: the header declares " + std::to_string(h_.records) + " records of " +
                           h_.shape() + " " + type_name(h_.type) + " (" + std::to_string(want) +
                           " bytes with the header), but the file has " + std::to_string(size) + " bytes",
                         LOOM_ERR_BAD_DATA);
      if (!ec && size > want)
        throw sdk::error(name() + ": " + std::to_string(size - want) + " bytes after the " +
                           std::to_string(h_.records) + " records the header declares (wrong dimensions?)",
                         LOOM_ERR_BAD_DATA);
    }
  }

  const idx_header& header() const { return h_; }
  const std::string& name() const { return input_->name; }

  /// Reads the next `n` records into buf (resized); throws if the file ends first.
  void read_records(std::vector<unsigned char>& buf, uint64_t n) {
    buf.resize(n * h_.record_bytes());
    read_exact(buf.data(), buf.size(),
               "record " + std::to_string(next_ + 1) + " of the " + std::to_string(h_.records) + " its header declares");
    next_ += n;
  }

  /// After the last record: there must be nothing more.
  void check_end() {
    char c;
    if (input_->in->read(&c, 1).gcount() != 0)
      throw sdk::error(name() + ": data after the " + std::to_string(h_.records) +
                         " records the header declares (wrong dimensions?)",
                       LOOM_ERR_BAD_DATA);
    input_->check();
  }

private:
  void read_exact(void* dst, size_t n, const std::string& what) {
    auto got = static_cast<size_t>(input_->in->read(static_cast<char*>(dst), static_cast<std::streamsize>(n)).gcount());
    if (got < n) {
      input_->check(); // a gzip error says more than "truncated"
      throw sdk::error(name() + ": truncated: the file ends within " + what, LOOM_ERR_BAD_DATA);
    }
  }

  std::unique_ptr<named_input> input_;
  idx_header h_;
  uint64_t next_ = 0;
};

} // namespace

class idx_source final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "ingest.idx", "0.1.0",
      "Reads IDX files — the format of MNIST and Fashion-MNIST (Debian's dataset-fashion-mnist installs them "
      "in /usr/share/datasets/fashion-mnist/) — into frames, streaming (one frame of records is held in "
      "memory at a time). A file whose name ends in .gz is decompressed on the fly. `images` is an IDX file "
      "of any value type (u8, i8, i16, i32, f32, f64; magic 0x00000803 for MNIST's 3-dimensional u8 images): "
      "record r (the r-th slice along the first dimension) becomes row r, its values in row-major order the "
      "f32 columns pixel_0 .. pixel_{N-1} (N = 784 for 28x28 images); with `normalize`, u8 values are divided "
      "by 255 (other types are kept as they are). `labels` (optional) is a one-dimensional IDX file of "
      "integers (magic 0x00000801 for u8) with one label per image: the column `label`, i64, or, when "
      "`class_names` is given, the string class_names[label]. A file that is not IDX (wrong magic number), "
      "ends before the records its header declares, has data after them, or a labels file whose count "
      "differs from the images' fails the node with a message naming the file; so does a label outside "
      "class_names.",
      "- id: train_data\n  op: ingest.idx\n  with:\n"
      "    images: /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz\n"
      "    labels: /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz\n"
      "    class_names: [T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot]\n"};
    s.outputs = {{"out", LOOM_MSG_FRAME, "f32 columns pixel_0..pixel_{N-1}, then label (i64 or string) when labels is set"}};
    s.params = {
      {"images", LOOM_PARAM_STRING, true, nullptr, "IDX file of the images (or any records), relative to the graph file; .gz is gunzipped"},
      {"labels", LOOM_PARAM_STRING, false, nullptr, "IDX file of one integer label per image, relative to the graph file; .gz is gunzipped"},
      {"normalize", LOOM_PARAM_BOOL, false, "true", "divide u8 values by 255, giving pixels in [0, 1]"},
      {"class_names", LOOM_PARAM_LIST, false, nullptr,
       "names of the classes: label i becomes the string class_names[i] (otherwise the label column is i64)"},
      {"rows_per_frame", LOOM_PARAM_INT, false, "1024",
       "records per emitted frame (fewer when a frame would exceed 64 MiB of pixels)"},
      {"limit", LOOM_PARAM_INT, false, "0", "read only the first `limit` records (0: all of them)"},
    };
    return s;
  }

  explicit idx_source(sdk::context& ctx)
    : normalize_(ctx.param_bool("normalize")), rows_per_frame_(ctx.param_int("rows_per_frame")) {
    if (rows_per_frame_ <= 0)
      throw sdk::error("rows_per_frame must be positive, got " + std::to_string(rows_per_frame_));
    int64_t limit = ctx.param_int("limit");
    if (limit < 0)
      throw sdk::error("limit must be 0 (all records) or positive, got " + std::to_string(limit));
    class_names_ = sdk::param_strings(ctx, "class_names");
    if (ctx.has_param("class_names") && class_names_.empty())
      throw sdk::error("class_names: the list is empty (name the classes in label order, or leave it out)");
    images_ = std::make_unique<idx_reader>(ctx.resolve_path(ctx.param_string("images")));
    const auto& ih = images_->header();
    total_ = ih.records;
    if (ctx.has_param("labels")) {
      labels_ = std::make_unique<idx_reader>(ctx.resolve_path(ctx.param_string("labels")));
      const auto& lh = labels_->header();
      if (lh.dims.size() != 1 || lh.type == 0x0D || lh.type == 0x0E)
        throw sdk::error(labels_->name() + ": a labels file holds one integer per image (a one-dimensional IDX file "
                           "of u8, i8, i16 or i32, magic 0x00000801 for u8), but this one holds " +
                           std::to_string(lh.records) + " records of " + lh.shape() + " " + type_name(lh.type),
                         LOOM_ERR_BAD_DATA);
      if (lh.records != ih.records)
        throw sdk::error(labels_->name() + " has " + std::to_string(lh.records) + " labels but " + images_->name() +
                           " has " + std::to_string(ih.records) + " images: the counts must match",
                         LOOM_ERR_BAD_DATA);
    } else if (!class_names_.empty()) {
      throw sdk::error("class_names is set but labels is not: name the labels file");
    }
    read_all_ = limit == 0 || static_cast<uint64_t>(limit) >= total_;
    if (!read_all_)
      total_ = static_cast<uint64_t>(limit);
    for (uint64_t i = 0; i < ih.values; ++i)
      out_.add_column("pixel_" + std::to_string(i), col_type::f32, false);
    if (labels_ != nullptr)
      label_col_ = out_.add_column("label", class_names_.empty() ? col_type::i64 : col_type::string, false);
    ctx.info(images_->name() + ": " + std::to_string(ih.records) + " records of " + ih.shape() + " " +
             type_name(ih.type) + (read_all_ ? "" : ", reading the first " + std::to_string(total_)));
  }

  bool produce(sdk::context& ctx) override {
    if (ctx.cancelled())
      throw sdk::error("cancelled", LOOM_ERR_CANCELLED);
    const auto& ih = images_->header();
    // at most rows_per_frame records, and at most frame_bytes of pixels (one record at least)
    uint64_t n = std::min<uint64_t>({static_cast<uint64_t>(rows_per_frame_), total_ - done_,
                                     std::max<uint64_t>(1, frame_bytes / (ih.values * sizeof(float)))});
    images_->read_records(image_buf_, n);
    if (labels_ != nullptr)
      labels_->read_records(label_buf_, n);
    const auto cols = static_cast<size_t>(ih.values);
    const bool scale = normalize_ && ih.type == 0x08;
    for (uint64_t r = 0; r < n; ++r) {
      const unsigned char* rec = image_buf_.data() + r * ih.record_bytes();
      if (ih.type == 0x08) {
        for (size_t c = 0; c < cols; ++c)
          out_.append_f32(c, scale ? static_cast<float>(rec[c]) / 255.0f : static_cast<float>(rec[c]));
      } else {
        for (size_t c = 0; c < cols; ++c)
          out_.append_f32(c, static_cast<float>(value_at(ih.type, rec, c)));
      }
      if (labels_ != nullptr)
        append_label(r);
      out_.end_row();
    }
    done_ += n;
    ctx.emit(0, out_.finish(seq_++));
    if (done_ < total_)
      return false;
    if (read_all_) {
      images_->check_end();
      if (labels_ != nullptr)
        labels_->check_end();
    }
    return true;
  }

private:
  static constexpr uint64_t frame_bytes = 64u << 20;

  void append_label(uint64_t r) {
    const auto& lh = labels_->header();
    auto v = static_cast<int64_t>(value_at(lh.type, label_buf_.data() + r * lh.record_bytes(), 0));
    if (class_names_.empty())
      return out_.append_i64(label_col_, v);
    if (v < 0 || static_cast<uint64_t>(v) >= class_names_.size())
      throw sdk::error(labels_->name() + ": label " + std::to_string(v) + " of record " + std::to_string(done_ + r + 1) +
                         " has no name: class_names names " + std::to_string(class_names_.size()) +
                         " classes (labels 0.." + std::to_string(class_names_.size() - 1) + ")",
                       LOOM_ERR_BAD_DATA);
    out_.append_string(label_col_, class_names_[static_cast<size_t>(v)]);
  }

  bool normalize_;
  int64_t rows_per_frame_;
  std::vector<std::string> class_names_;
  std::unique_ptr<idx_reader> images_, labels_;
  uint64_t total_ = 0, done_ = 0;
  bool read_all_ = true;
  size_t label_col_ = 0;
  std::vector<unsigned char> image_buf_, label_buf_;
  sdk::frame_builder out_;
  uint64_t seq_ = 0;
};

const sdk::op_registration idx_source_op = sdk::registration<idx_source>;

} // namespace loom::ops
